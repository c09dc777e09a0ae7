"""What a train.py may use, as data. README.md explains the choices; checker.py applies them.

Paths are dotted names as the policy resolves them through imports and aliases, so
`import numpy as np; np.load` is checked as `numpy.load`.
"""

from __future__ import annotations

from dataclasses import dataclass

from shared.policy.report import (
    DUNDER_ACCESS,
    FORBIDDEN_CALL,
    HARNESS_ACCESS,
    IMPORT_NOT_ALLOWED,
    IO_ACCESS,
    MODULE_MONKEYPATCH,
    NATIVE_CODE,
)

# --- imports ---------------------------------------------------------------------------------

ALLOWED_IMPORT_ROOTS: frozenset[str] = frozenset(
    {
        "torch",
        "triton",
        "numpy",
        "__future__",
        "abc",
        "collections",
        "contextlib",
        "copy",
        "dataclasses",
        "enum",
        "functools",
        "itertools",
        "math",
        "numbers",
        "operator",
        "random",
        "statistics",
        "time",
        "typing",
        "warnings",
    }
)

# The only part of this project a variant may import: the Triton kernels the baseline uses.
ALLOWED_PROJECT_PACKAGE = "shared.kernels"

# Roots refused with a more telling code than import_not_allowed.
REFUSED_IMPORT_ROOTS: dict[str, tuple[str, str]] = {
    "ctypes": (NATIVE_CODE, "loads native libraries and reads raw memory"),
    "cffi": (NATIVE_CODE, "compiles and loads native code"),
    "sys": (HARNESS_ACCESS, "reaches the interpreter (sys.modules, frames) and through it the harness"),
    "gc": (HARNESS_ACCESS, "finds every live object, the harness's included"),
    "inspect": (HARNESS_ACCESS, "reads stack frames and so the harness's variables"),
    "traceback": (HARNESS_ACCESS, "reads stack frames and so the harness's variables"),
    "builtins": (HARNESS_ACCESS, "changes builtins for the harness too"),
    "importlib": (HARNESS_ACCESS, "imports modules by name, around the import allowlist"),
    "types": (HARNESS_ACCESS, "builds functions, code objects and modules by hand"),
    "__main__": (HARNESS_ACCESS, "is the harness's own module"),
    "worker": (HARNESS_ACCESS, "is the worker that runs the harness"),
}


# --- dotted paths ----------------------------------------------------------------------------


@dataclass(frozen=True)
class PathRule:
    """Refuse `prefix` and everything under it."""

    prefix: str
    code: str
    reason: str


OBJECT_DTYPE_REASON = (
    "makes arrays of raw object references; built over bytes, they forge references to any address"
)
UNCHECKED_VIEW_REASON = "reaches memory outside the tensor's storage: torch does not check the bounds"
SPARSE_REASON = (
    "makes sparse tensors, whose index tensors torch trusts without checking: an index changed in "
    "place (s.indices().add_(n)) writes outside the tensor"
)

PATH_RULES: tuple[PathRule, ...] = (
    # Host native code.
    PathRule("torch.utils.cpp_extension", NATIVE_CODE, "compiles and loads C++/CUDA extensions"),
    PathRule("torch.utils.benchmark", NATIVE_CODE, "compiles C++ timing stubs"),
    PathRule("torch.ops.load_library", NATIVE_CODE, "loads a shared library"),
    PathRule("torch.classes.load_library", NATIVE_CODE, "loads a shared library"),
    PathRule("torch.cuda.jiterator", NATIVE_CODE, "compiles CUDA source strings"),
    PathRule(
        "torch.cuda.cudart", NATIVE_CODE, "hands back the CUDA runtime's module, which takes raw pointers"
    ),
    PathRule(
        "torch.cuda.memory.CUDAPluggableAllocator", NATIVE_CODE, "loads an allocator from a shared library"
    ),
    PathRule("torch.cuda.memory.change_current_allocator", NATIVE_CODE, "swaps in a native allocator"),
    PathRule("torch.compiler.load_cache_artifacts", NATIVE_CODE, "loads compiled code from bytes"),
    PathRule(
        "torch.xpu", NATIVE_CODE, "binds native libraries through ctypes; variants target CUDA or the CPU"
    ),
    PathRule("numpy.ctypeslib", NATIVE_CODE, "loads native libraries"),
    PathRule("numpy.f2py", NATIVE_CODE, "compiles and loads Fortran/C extensions"),
    PathRule("numpy.distutils", NATIVE_CODE, "compiles native extensions"),
    PathRule("numpy.testing.extbuild", NATIVE_CODE, "compiles native extensions"),
    PathRule("numpy.testing", IO_ACCESS, "creates files and directories"),
    PathRule(
        "triton.runtime", NATIVE_CODE, "drives the compiler and loads binaries directly; use triton.jit"
    ),
    PathRule(
        "triton.compiler", NATIVE_CODE, "drives the compiler and loads binaries directly; use triton.jit"
    ),
    PathRule(
        "triton.backends", NATIVE_CODE, "drives the compiler and loads binaries directly; use triton.jit"
    ),
    PathRule("triton.tools", NATIVE_CODE, "builds and links native code"),
    PathRule(
        "triton.experimental",
        NATIVE_CODE,
        "holds Triton's experimental front-ends (Gluon), unvetted and re-exporting what triton.aggregate does",
    ),
    # Memory outside any array or tensor: numpy arrays over a raw buffer (with an object dtype
    # their elements are references forged from the bytes), and torch operators that skip the
    # bounds check of the storage they view.
    PathRule(
        "numpy.frombuffer", NATIVE_CODE, "builds an array over raw memory; use numpy.array or torch tensors"
    ),
    PathRule("numpy.rec", NATIVE_CODE, "builds record arrays over raw bytes, object fields included"),
    PathRule(
        "numpy.core.records", NATIVE_CODE, "builds record arrays over raw bytes, object fields included"
    ),
    PathRule("numpy.object_", NATIVE_CODE, OBJECT_DTYPE_REASON),
    PathRule("numpy.dtypes.ObjectDType", NATIVE_CODE, OBJECT_DTYPE_REASON),
    PathRule(
        "torch.ops.prims",
        NATIVE_CODE,
        "is one of torch's internal primitives, which skip its checks (prims.as_strided reaches "
        "memory outside the tensor)",
    ),
    PathRule(
        "torch.ops.debugprims",
        NATIVE_CODE,
        "is one of torch's internal debugging primitives (they read files)",
    ),
    PathRule(
        "torch.ops.rngprims", NATIVE_CODE, "is one of torch's internal primitives, which skip its checks"
    ),
    PathRule("torch.sparse", NATIVE_CODE, SPARSE_REASON),
    PathRule("torch.ops.aten.set", NATIVE_CODE, UNCHECKED_VIEW_REASON),
    PathRule("torch.ops.aten.set_", NATIVE_CODE, UNCHECKED_VIEW_REASON),
    # Files, processes and the network.
    PathRule("torch.load", IO_ACCESS, "reads files; training data comes only through ctx.batches"),
    PathRule("torch.save", IO_ACCESS, "writes files"),
    PathRule("torch.from_file", IO_ACCESS, "reads files; training data comes only through ctx.batches"),
    PathRule("torch.serialization", IO_ACCESS, "reads and writes files"),
    PathRule("torch.hub", IO_ACCESS, "downloads code and weights"),
    PathRule("torch.package", IO_ACCESS, "reads and writes packaged code"),
    PathRule("torch.jit.load", IO_ACCESS, "reads files"),
    PathRule("torch.jit.save", IO_ACCESS, "writes files"),
    PathRule("torch.onnx", IO_ACCESS, "writes files"),
    PathRule("torch.profiler", IO_ACCESS, "writes trace files"),
    PathRule("torch.autograd.profiler", IO_ACCESS, "writes trace files"),
    PathRule(
        "torch.utils.data",
        IO_ACCESS,
        "reads files and starts worker processes; training data comes only through ctx.batches",
    ),
    PathRule("torch.utils.tensorboard", IO_ACCESS, "writes files"),
    PathRule("torch.utils.model_zoo", IO_ACCESS, "downloads weights"),
    PathRule("torch.distributed", IO_ACCESS, "opens network connections"),
    PathRule("torch.multiprocessing", IO_ACCESS, "starts processes"),
    PathRule("numpy.load", IO_ACCESS, "reads files"),
    PathRule("numpy.save", IO_ACCESS, "writes files"),
    PathRule("numpy.savez", IO_ACCESS, "writes files"),
    PathRule("numpy.savez_compressed", IO_ACCESS, "writes files"),
    PathRule("numpy.fromfile", IO_ACCESS, "reads files"),
    PathRule("numpy.memmap", IO_ACCESS, "maps files into memory"),
    PathRule("numpy.loadtxt", IO_ACCESS, "reads files"),
    PathRule("numpy.savetxt", IO_ACCESS, "writes files"),
    PathRule("numpy.genfromtxt", IO_ACCESS, "reads files"),
    PathRule("numpy.fromregex", IO_ACCESS, "reads files"),
    PathRule("numpy.recfromtxt", IO_ACCESS, "reads files"),
    PathRule("numpy.recfromcsv", IO_ACCESS, "reads files"),
    PathRule("numpy.DataSource", IO_ACCESS, "opens files and URLs"),
    PathRule("numpy.lib.npyio", IO_ACCESS, "reads and writes files"),
    PathRule("numpy.lib.format", IO_ACCESS, "reads and writes files"),
    PathRule("numpy.rec.fromfile", IO_ACCESS, "reads files"),
    PathRule("numpy.core.records.fromfile", IO_ACCESS, "reads files"),
    PathRule("numpy.ma.mrecords", IO_ACCESS, "reads files"),
    PathRule("torch.cuda.tunable", IO_ACCESS, "reads and writes tuning files"),
    # Code from strings, classes from dicts, values out of type expressions.
    PathRule("torch.fx", FORBIDDEN_CALL, "generates Python source and runs it"),
    PathRule("torch.jit.CompilationUnit", FORBIDDEN_CALL, "compiles TorchScript from strings"),
    PathRule("torch.export", FORBIDDEN_CALL, "builds fx graphs, which generate Python source and run it"),
    PathRule("typing.get_type_hints", FORBIDDEN_CALL, "evaluates annotation strings as code"),
    PathRule("typing.ForwardRef", FORBIDDEN_CALL, "evaluates strings as code"),
    PathRule("typing.get_args", FORBIDDEN_CALL, "hands back the classes inside a type expression"),
    PathRule("typing.get_origin", FORBIDDEN_CALL, "hands back the classes inside a type expression"),
    PathRule(
        "dataclasses.make_dataclass", FORBIDDEN_CALL, "builds a class from a namespace dict at run time"
    ),
    PathRule(
        "abc.ABCMeta", FORBIDDEN_CALL, "is a metaclass that builds classes from a namespace dict; use abc.ABC"
    ),
    PathRule("enum.EnumMeta", FORBIDDEN_CALL, "is a metaclass that builds classes from a namespace dict"),
    PathRule("enum.EnumType", FORBIDDEN_CALL, "is a metaclass that builds classes from a namespace dict"),
    PathRule(
        "typing.NamedTupleMeta", FORBIDDEN_CALL, "is a metaclass that builds classes from a namespace dict"
    ),
    PathRule(
        "torch.ops.import_module", IMPORT_NOT_ALLOWED, "imports modules by name, around the import allowlist"
    ),
    # Annotations evaluated as code, or handed back as values (README.md, "annotations").
    PathRule(
        "functools.singledispatch",
        FORBIDDEN_CALL,
        "evaluates annotation strings as code (through typing.get_type_hints) and hands back the "
        "classes it registers; dispatch with isinstance()",
    ),
    PathRule(
        "functools.singledispatchmethod",
        FORBIDDEN_CALL,
        "evaluates annotation strings as code (through typing.get_type_hints) and hands back the "
        "classes it registers; dispatch with isinstance()",
    ),
    PathRule("dataclasses.fields", FORBIDDEN_CALL, "hands back the classes in a dataclass's annotations"),
    PathRule(
        "triton.aggregate",
        FORBIDDEN_CALL,
        "evaluates annotation strings as code (through typing.get_type_hints)",
    ),
    *(
        PathRule(
            f"torch.jit.{name}",
            FORBIDDEN_CALL,
            "compiles TorchScript, which evaluates type comments and annotation strings as code; "
            "use torch.compile",
        )
        for name in (
            "script",
            "script_method",
            "script_if_tracing",
            "interface",
            "trace",
            "trace_module",
            "annotations",
            "frontend",
        )
    ),
    # Attribute sets copied between objects by name.
    PathRule(
        "functools.update_wrapper",
        FORBIDDEN_CALL,
        "copies attributes between objects by name, dunders included, onto any object; decorate "
        "with @functools.wraps(f)",
    ),
    # The harness's own machinery and measurements.
    PathRule(
        "torch.overrides", HARNESS_ACCESS, "function modes intercept every torch call, the harness's too"
    ),
    PathRule("torch.set_default_dtype", HARNESS_ACCESS, "changes the dtype the harness's evaluation creates"),
    PathRule(
        "torch.set_default_tensor_type", HARNESS_ACCESS, "changes the dtype the harness's evaluation creates"
    ),
    PathRule("torch.set_autocast_enabled", HARNESS_ACCESS, "leaves autocast on for the harness's evaluation"),
    PathRule("torch.set_autocast_dtype", HARNESS_ACCESS, "changes autocast for the harness's evaluation"),
    PathRule("torch.set_autocast_gpu_dtype", HARNESS_ACCESS, "changes autocast for the harness's evaluation"),
    PathRule("torch.set_autocast_cpu_dtype", HARNESS_ACCESS, "changes autocast for the harness's evaluation"),
    *(
        PathRule(f"{module}.{name}", HARNESS_ACCESS, "resets the peak-memory figure the harness reports")
        for module in ("torch.cuda", "torch.cuda.memory")
        for name in (
            "reset_peak_memory_stats",
            "reset_max_memory_allocated",
            "reset_max_memory_cached",
            "reset_accumulated_memory_stats",
        )
    ),
    PathRule("numpy.lib.stride_tricks.as_strided", HARNESS_ACCESS, "reads memory outside the array"),
    PathRule(
        "numpy.lib.stride_tricks",
        NATIVE_CODE,
        "is as_strided and the helpers built on it, which view memory outside the array",
    ),
    PathRule(
        "torch.backends.opt_einsum.get_opt_einsum",
        MODULE_MONKEYPATCH,
        "hands back the opt_einsum package as a value, under a name this check does not know",
    ),
    PathRule(
        "torch.get_device_module",
        MODULE_MONKEYPATCH,
        "hands back a torch module as a value, under a name this check does not know; use "
        "torch.cuda (or torch.cpu) by name",
    ),
    PathRule(
        "triton.knobs", HARNESS_ACCESS, "changes process-wide Triton settings and hooks, the harness's too"
    ),
)

# Rules whose last name is refused under any package path too: libraries re-export what they
# import (torch.utils.checkpoint.get_type_hints is typing's, torch.CompilationUnit is torch.jit's).
# Only names no honest API shares; tests/unit/test_policy_exposure.py finds every public path to
# each rule's object and fails when one is not refused.
REFUSED_UNDER_ANY_PACKAGE: frozenset[str] = frozenset(
    {
        "typing.get_type_hints",
        "typing.ForwardRef",
        "typing.get_args",
        "typing.get_origin",
        "typing.NamedTupleMeta",
        "dataclasses.make_dataclass",
        "abc.ABCMeta",
        "enum.EnumMeta",
        "enum.EnumType",
        "functools.update_wrapper",
        "functools.singledispatch",
        "functools.singledispatchmethod",
        "torch.jit.CompilationUnit",
        "torch.cuda.memory.CUDAPluggableAllocator",
        "torch.cuda.memory.change_current_allocator",
        "torch.compiler.load_cache_artifacts",
        "torch.get_device_module",
        "torch.backends.opt_einsum.get_opt_einsum",
        "torch.cuda.cudart",
        "torch.set_default_dtype",
        "torch.set_default_tensor_type",
        "numpy.frombuffer",
        "numpy.object_",
        "numpy.dtypes.ObjectDType",
    }
)

# Modules that allowed modules import for themselves and so expose as attributes (`torch.os`,
# `dataclasses.sys`, `enum.bltns`): reaching one that way would go around the import allowlist.
# A list of names cannot be complete across library versions; tests/unit/test_policy_exposure.py
# checks it against the installed torch, numpy and triton.
REFUSED_MODULE_ATTRIBUTES: frozenset[str] = frozenset(
    {
        "_thread",
        "amdsmi",  # torch.cuda's GPU management libraries (clocks, power limits), when installed
        "asyncio",
        "atexit",
        "bltns",
        "builtins",
        "bz2",
        "code",
        "codecs",
        "codeop",
        "dis",
        "concurrent",
        "copyreg",
        "ctypes",
        "dbm",
        "distutils",
        "fcntl",
        "fileinput",
        "gc",
        "glob",
        "gzip",
        "http",
        "importlib",
        "inspect",
        "io",
        "linecache",
        "logging",
        "lzma",
        "marshal",
        "mmap",
        "multiprocessing",
        "nt",
        "os",
        "pathlib",
        "pdb",
        "pickle",
        "pkgutil",
        "platform",
        "posix",
        "pty",
        "pynvml",
        "queue",
        "resource",
        "runpy",
        "selectors",
        "setuptools",
        "shelve",
        "shutil",
        "signal",
        "site",
        "socket",
        "sqlite3",
        "ssl",
        "string",
        "subprocess",
        "sys",
        "sysconfig",
        "tarfile",
        "tempfile",
        "threading",
        "tokenize",
        "traceback",
        "types",
        "urllib",
        "uuid",
        "weakref",
        "worker",
        "zipfile",
        "zipimport",
    }
)
# torch's own submodules that share a name with the list above.
TORCH_SUBMODULES_NAMED_LIKE_REFUSED: frozenset[str] = frozenset({"torch.types", "torch.signal"})

# torch.utils is refused unless the submodule is here.
TORCH_UTILS_ALLOWED: frozenset[str] = frozenset({"checkpoint", "hooks", "flop_counter", "dlpack"})

# torch.library may define new custom operators, never re-implement existing ones.
TORCH_LIBRARY_ALLOWED: frozenset[str] = frozenset(
    {
        "custom_op",
        "triton_op",
        "wrap_triton",
        "register_fake",
        "register_autograd",
        "register_kernel",
        "opcheck",
        "get_ctx",
        "infer_schema",
    }
)
# Calls whose first argument names the operator they define or extend.
TORCH_LIBRARY_OPERATOR_CALLS: frozenset[str] = frozenset(
    f"torch.library.{name}"
    for name in ("custom_op", "triton_op", "register_fake", "register_autograd", "register_kernel")
)
# Namespaces of operators that torch (and so the harness) already uses.
RESERVED_OPERATOR_NAMESPACES: frozenset[str] = frozenset(
    {
        "aten",
        "prim",
        "prims",
        "torch",
        "quantized",
        "_quantized",
        "quantized_decomposed",
        "mkldnn",
        "mkl",
        "onednn",
        "xnnpack",
        "fbgemm",
        "c10d",
        "c10d_functional",
        "_c10d_functional",
        "_dtensor",
        "inductor",
        "higher_order",
        "profiler",
        "debugprims",
        "rngprims",
        "symm_mem",
        "cuda",
        "triton",
    }
)

# Compiler settings a variant may change, by assignment or in torch.compile(options=...). Others
# can name an external compiler binary or trace directory, so they stay out.
INDUCTOR_OPTIONS: frozenset[str] = frozenset(
    {
        "coordinate_descent_tuning",
        "max_autotune",
        "max_autotune_gemm",
        "max_autotune_pointwise",
        "epilogue_fusion",
        "aggressive_fusion",
        "shape_padding",
        "freezing",
        "triton.cudagraphs",
        "triton.unique_kernel_names",
    }
)
DYNAMO_OPTIONS: frozenset[str] = frozenset(
    {
        "cache_size_limit",
        "recompile_limit",
        "accumulated_cache_size_limit",
        "accumulated_recompile_limit",
        "capture_scalar_outputs",
        "capture_dynamic_output_shape_ops",
        "automatic_dynamic_shapes",
        "assume_static_by_default",
        "suppress_errors",
    }
)

# The only attributes of imported modules that may be assigned (besides PRECISION_STORES).
CONFIG_STORES: frozenset[str] = frozenset(
    {
        "torch.backends.cuda.matmul.allow_tf32",
        "torch.backends.cuda.matmul.allow_bf16_reduced_precision_reduction",
        "torch.backends.cuda.matmul.allow_fp16_reduced_precision_reduction",
        "torch.backends.cudnn.allow_tf32",
        "torch.backends.cudnn.benchmark",
        "torch.backends.cudnn.deterministic",
        *(f"torch._inductor.config.{name}" for name in INDUCTOR_OPTIONS),
        *(f"torch._dynamo.config.{name}" for name in DYNAMO_OPTIONS),
    }
)

# PyTorch's per-backend float32 precision settings (the documented successor of `allow_tf32`),
# each with the literal values torch accepts for it: CUDA's refuse "bf16". They may be assigned
# only a literal string from that set. tests/unit/test_policy_exposure.py checks the table
# against the installed torch.
_PRECISIONS = frozenset({"ieee", "tf32", "bf16", "none"})
_CUDA_PRECISIONS = frozenset({"ieee", "tf32", "none"})
PRECISION_STORES: dict[str, frozenset[str]] = {
    "torch.backends.fp32_precision": _PRECISIONS,
    "torch.backends.cuda.matmul.fp32_precision": _CUDA_PRECISIONS,
    "torch.backends.cudnn.fp32_precision": _CUDA_PRECISIONS,
    "torch.backends.cudnn.conv.fp32_precision": _CUDA_PRECISIONS,
    "torch.backends.cudnn.rnn.fp32_precision": _CUDA_PRECISIONS,
    "torch.backends.mkldnn.fp32_precision": _PRECISIONS,
    "torch.backends.mkldnn.matmul.fp32_precision": _PRECISIONS,
    "torch.backends.mkldnn.conv.fp32_precision": _PRECISIONS,
    "torch.backends.mkldnn.rnn.fp32_precision": _PRECISIONS,
}

# --- literal data ----------------------------------------------------------------------------

# A variant may not carry a data set (the validation text, say) in its source. Literal data is
# the UTF-8 bytes of every str and bytes constant plus the source text of every number; the
# compressed size of the whole source bounds what is hidden in identifiers or code structure.
# baseline/train.py carries about an eighth of each (README.md has the figures).
MAX_LITERAL_BYTES = 24 * 1024
MAX_COMPRESSED_BYTES = 48 * 1024
COMPRESSION_LEVEL = 9  # zlib

# Private (`_name`) paths that are allowed: the compiler settings above and the fused ops that
# fast optimizers use. Everything else private is refused.
PRIVATE_ALLOWED: frozenset[str] = frozenset(
    {
        "torch._dynamo",
        "torch._dynamo.config",
        "torch._inductor",
        "torch._inductor.config",
        "torch._inductor.config.triton",
        "torch._scaled_mm",
        "torch._int_mm",
        "torch._assert",
        *CONFIG_STORES,
    }
)
PRIVATE_ALLOWED_TORCH_PREFIX = "_foreach_"  # torch._foreach_mul_ and friends

# --- modules and classes that must not travel as values ----------------------------------------

# Submodules the policy knows to be modules even when bound by `from x import y`.
KNOWN_MODULES: frozenset[str] = frozenset(
    {
        *ALLOWED_IMPORT_ROOTS,
        "collections.abc",
        "numpy.random",
        "numpy.linalg",
        "numpy.lib",
        "triton.language",
        "torch.nn",
        "torch.nn.functional",
        "torch.nn.init",
        "torch.nn.modules",
        "torch.nn.modules.module",
        "torch.nn.parameter",
        "torch.nn.utils",
        "torch.nn.attention",
        "torch.optim",
        "torch.optim.lr_scheduler",
        "torch.optim.optimizer",
        "torch.cuda",
        "torch.cuda.amp",
        "torch.cuda.memory",
        "torch.amp",
        "torch.backends",
        "torch.backends.cuda",
        "torch.backends.cudnn",
        "torch.autograd",
        "torch.compiler",
        "torch.library",
        "torch.ops",
        "torch.utils",
        "torch.utils.checkpoint",
        "torch.linalg",
        "torch.special",
        "torch.fft",
        "torch.func",
        "torch.random",
        "torch._dynamo",
        "torch._dynamo.config",
        "torch._inductor",
        "torch._inductor.config",
        ALLOWED_PROJECT_PACKAGE,
    }
)

# Classes the harness's evaluation relies on, by name: torch modules re-export them under many
# paths (`torch.nn.modules.linear.Module`). They may be named only where naming them cannot hand
# them to code that patches them.
SENSITIVE_CLASS_NAMES: frozenset[str] = frozenset({"Tensor", "Module", "Parameter", "Buffer"})

# numpy classes whose constructor builds an array over any buffer (with an object dtype, over
# references forged from its bytes), by name under any numpy path. Named only where naming them
# cannot construct or subclass them: annotations, isinstance() checks, comparisons. Not in a
# subscript outside annotations: `typing.Annotated[np.ndarray, ...]` and `np.ndarray[...]` are
# generic aliases, and calling one constructs its class.
# numpy.typing.NDArray is ndarray's generic alias, which constructs one when called.
RAW_BUFFER_CLASS_NAMES: frozenset[str] = frozenset({"ndarray", "recarray", "NDArray"})
# numpy's names for the object dtype, in the strings numpy accepts (a byte order or size prefix
# and field separators aside).
OBJECT_DTYPE_CODES: frozenset[str] = frozenset({"O", "O4", "O8", "object", "object_"})

# Sparse tensors: refused in every attribute whose name holds this (to_sparse, sparse_coo_tensor,
# torch.sparse_coo, embedding_sparse_backward, a module's `.sparse` flag), but the checks below.
SPARSE_NAME = "sparse"
SPARSE_NAMES_ALLOWED: frozenset[str] = frozenset({"is_sparse", "is_sparse_csr"})
# Embedding layers make sparse gradients when asked: by `sparse=` (refused unless a literal False)
# or positionally. Callables of torch so named take at most this many positional arguments, and
# none unpacked: the fewest before `sparse` among torch's callables of that name (torch.embedding
# has it fifth, torch.nn.functional.embedding seventh). tests/unit/test_policy_exposure.py checks
# the table against torch's operators.
SPARSE_FLAG_POSITIONS: dict[str, int] = {
    "Embedding": 6,
    "EmbeddingBag": 6,
    "from_pretrained": 6,
    "embedding": 4,
    "embedding_bag": 5,
    "embedding_backward": 5,
}

# torch classes a variant may subclass: modules, optimizers and autograd functions, but nothing
# that is itself a tensor (a tensor subclass can change how the harness's tensor ops behave).
TORCH_BASES_ALLOWED: tuple[str, ...] = (
    "torch.nn",
    "torch.optim",
    "torch.autograd.Function",
    "torch.autograd.function.Function",
)
TENSOR_CLASS_NAMES: frozenset[str] = frozenset(
    {"Tensor", "Parameter", "Buffer", "UninitializedParameter", "UninitializedBuffer"}
)

# --- names -----------------------------------------------------------------------------------

# Builtins refused outright, with the reason given.
FORBIDDEN_BUILTINS: dict[str, str] = {
    "exec": "it runs code built from strings",
    "eval": "it runs code built from strings",
    "compile": "it builds code from strings (torch.compile is fine)",
    "open": "it opens files; training data comes only through ctx.batches",
    "__import__": "it imports modules by name, around the import allowlist",
    "globals": "it exposes a namespace to lookup and change by string",
    "locals": "it exposes a namespace to lookup and change by string",
    "vars": "it exposes a namespace to lookup and change by string",
    "breakpoint": "it starts a debugger, which can import anything named in the environment",
    "input": "it reads the terminal; runs are unattended",
    "help": "it imports modules by name",
}
# Builtins that turn a string into attribute access: allowed only with a literal name.
ATTRIBUTE_BUILTINS: frozenset[str] = frozenset({"getattr", "setattr", "delattr"})
# Builtins whose meaning the checks rely on, so they may not be rebound at module or class level
# (where a later use could silently refer to either the binding or the builtin).
GUARDED_BUILTINS: frozenset[str] = frozenset(
    {*FORBIDDEN_BUILTINS, *ATTRIBUTE_BUILTINS, "hasattr", "type", "super", "isinstance", "issubclass"}
)
# Enum classes whose functional API (`Enum("E", {...})`) builds a class from names given as data.
ENUM_FACTORIES: frozenset[str] = frozenset(
    f"enum.{name}" for name in ("Enum", "IntEnum", "StrEnum", "Flag", "IntFlag", "ReprEnum")
)
# Library functions that, like getattr, take attribute names as strings.
STRING_ATTRIBUTE_FUNCTIONS: frozenset[str] = frozenset({"operator.attrgetter", "operator.methodcaller"})
# Functions whose arguments the call checks judge: they may only be called where they are named
# (or used as a decorator), never handed on as values to be called out of sight.
CALL_CHECKED_FUNCTIONS: frozenset[str] = frozenset(
    {
        *STRING_ATTRIBUTE_FUNCTIONS,
        "functools.wraps",
        "torch.compile",
        "torch.library.custom_op",
        "torch.library.triton_op",
        "torch.library.register_fake",
        "torch.library.register_autograd",
        "torch.library.register_kernel",
    }
)

# Dunder methods a class in train.py may define. Others (__torch_function__, __getattr__,
# __del__, __init_subclass__, ...) change how objects behave inside the harness's own code.
DUNDER_METHODS_ALLOWED: frozenset[str] = frozenset(
    {
        "__init__",
        "__post_init__",
        "__call__",
        "__repr__",
        "__str__",
        "__len__",
        "__iter__",
        "__next__",
        "__getitem__",
        "__contains__",
        "__enter__",
        "__exit__",
    }
)

_FRAME_ATTRIBUTES = (
    "gi_frame",
    "gi_code",
    "gi_yieldfrom",
    "cr_frame",
    "cr_code",
    "cr_await",
    "cr_origin",
    "ag_frame",
    "ag_code",
    "ag_await",
    "f_back",
    "f_globals",
    "f_locals",
    "f_builtins",
    "f_code",
    "f_trace",
    "tb_frame",
    "tb_next",
)

# Attribute names refused on any object, because what they reach does not depend on the receiver.
ATTRIBUTE_NAME_RULES: dict[str, tuple[str, str]] = {
    **{
        name: (HARNESS_ACCESS, "reaches stack frames and so the harness's variables")
        for name in _FRAME_ATTRIBUTES
    },
    "mro": (DUNDER_ACCESS, "reaches base classes, like __mro__"),
    "tofile": (IO_ACCESS, "writes files"),
    "dump": (IO_ACCESS, "writes files"),
    "from_file": (IO_ACCESS, "reads files"),
    "load_library": (NATIVE_CODE, "loads a shared library"),
    "load_inline": (NATIVE_CODE, "compiles and loads C++/CUDA source"),
    "ctypes": (NATIVE_CODE, "reaches the ctypes module (numpy arrays carry it)"),
    **{
        name: (NATIVE_CODE, "reads or writes raw memory, or loads native libraries (ctypes)")
        for name in (
            "from_address",
            "from_buffer",
            "from_buffer_copy",
            "addressof",
            "byref",
            "string_at",
            "wstring_at",
            "memmove",
            "memset",
            "CDLL",
            "PyDLL",
            "cdll",
            "pydll",
        )
    },
    **{
        name: (IMPORT_NOT_ALLOWED, "imports modules by name, around the import allowlist")
        for name in ("import_module", "module_from_spec", "spec_from_file_location", "spec_from_loader")
    },
    "py_impl": (MODULE_MONKEYPATCH, "replaces the kernel of an existing torch operator"),
    "obj": (
        HARNESS_ACCESS,
        "hands back the object a failed attribute lookup was made on (AttributeError.obj): a module, "
        "say, under a name this check does not know",
    ),
    **{
        name: (NATIVE_CODE, UNCHECKED_VIEW_REASON)
        for name in ("set_", "as_strided_copy", "as_strided_scatter")
    },
}
# Underscore names that are public API (namedtuple's methods, torch.compile's wrapped module), and
# so may be read on any object; other `_names` only on self or cls.
PUBLIC_UNDERSCORE_ATTRIBUTES: frozenset[str] = frozenset(
    {"_replace", "_asdict", "_fields", "_field_defaults", "_make", "_orig_mod"}
)

# torch.nn.modules.module.register_module_forward_hook and friends: hooks on every module.
GLOBAL_HOOK_PREFIX = "register_module_"

# --- annotations -----------------------------------------------------------------------------

# Class decorators that return the class they are given, so that the name stays a class.
CLASS_DECORATORS: frozenset[str] = frozenset(
    {
        "dataclasses.dataclass",
        "enum.unique",
        "functools.total_ordering",
        "typing.final",
        "typing.runtime_checkable",
    }
)
# Calls whose result is a type and may be named in annotations: `T = TypeVar("T")`.
TYPE_FACTORIES: frozenset[str] = frozenset({"typing.TypeVar", "typing.NewType"})
# What an annotation may subscript: typing's generics and the classes that take type arguments.
GENERIC_BUILTINS: frozenset[str] = frozenset({"list", "dict", "tuple", "set", "frozenset", "type"})
GENERIC_PREFIXES: tuple[str, ...] = (
    "typing",
    "collections",
    "numpy.typing",
    "numpy.ndarray",
    "numpy.dtype",
)
# Decorators that make a Triton kernel: Triton renders each parameter's annotation into the
# Python source of its launcher, so those may only be triton.language types (tl.constexpr).
TRITON_KERNEL_DECORATORS: tuple[str, ...] = ("triton.jit", "triton.autotune", "triton.heuristics")
TRITON_ANNOTATION_PREFIX = "triton.language"
