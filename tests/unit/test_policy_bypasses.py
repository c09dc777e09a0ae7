"""Ways around each rule of the static policy, and the refusal each one gets."""

from __future__ import annotations

import random
import string
import textwrap

import pytest

from shared.policy import check_source


def found(source: str) -> set[tuple[str, int]]:
    return {(v.code, v.line) for v in check_source(textwrap.dedent(source)).violations}


def case(name: str, source: str, code: str, line: int) -> object:
    return pytest.param(source, (code, line), id=name)


MONKEYPATCHING = [
    case(
        "import-alias", "import torch.nn.functional as F\nF.cross_entropy = None\n", "module_monkeypatch", 2
    ),
    case("assigned-alias", "import torch\nt = torch\nt.save = None\n", "module_monkeypatch", 3),
    case(
        "alias-of-alias-defined-later",
        "import torch\ndef f():\n    u.functional.cross_entropy = None\nu = t.nn\nt = torch\n",
        "module_monkeypatch",
        3,
    ),
    case(
        "from-import", "from torch.nn import functional\nfunctional.softmax = None\n", "module_monkeypatch", 2
    ),
    case("setattr-literal", "import torch\nsetattr(torch, 'load', None)\n", "module_monkeypatch", 2),
    case("delattr", "import math\ndelattr(math, 'log')\n", "module_monkeypatch", 2),
    case("del-statement", "import torch\ndel torch.nn.functional.cross_entropy\n", "module_monkeypatch", 2),
    case("augmented", "import math\nmath.pi += 1\n", "module_monkeypatch", 2),
    case("for-target", "import math\nfor math.pi in [3]:\n    pass\n", "module_monkeypatch", 2),
    case(
        "item-of-module-state",
        "import torch\ntorch.ops.aten.mm.default.py_kernels[0] = None\n",
        "module_monkeypatch",
        2,
    ),
    case(
        "tensor-method", "import torch\nTensor = torch.Tensor\nTensor.sum = None\n", "module_monkeypatch", 3
    ),
    case("module-in-a-list", "import torch\nm = [torch][0]\nm.load = None\n", "module_monkeypatch", 2),
    case(
        "module-as-argument",
        "import torch.nn.functional as F\ndef f(m):\n    m.x = 1\nf(F)\n",
        "module_monkeypatch",
        4,
    ),
    case(
        "module-as-default",
        "import torch.nn.functional as F\ndef f(m=F):\n    m.x = 1\n",
        "module_monkeypatch",
        2,
    ),
    case(
        "module-as-class-attribute",
        "import torch\nclass A:\n    m = torch\nA.m.load = None\n",
        "module_monkeypatch",
        3,
    ),
    case(
        "module-on-self",
        "import torch\nclass A:\n    def __init__(self):\n        self.m = torch\n",
        "module_monkeypatch",
        4,
    ),
    case("module-reexported", "import torch.nn.functional as F\nm = [F.torch][0]\n", "module_monkeypatch", 2),
    case(
        "import-in-a-class-body", "class A:\n    import torch\nA.torch.load = None\n", "module_monkeypatch", 2
    ),
    case(
        "lambda-setattr",
        "import torch.nn.functional as F\n(lambda m: setattr(m, 'cross_entropy', None))(F)\n",
        "module_monkeypatch",
        2,
    ),
    case(
        "decorator-partial-setattr",
        """\
        import functools
        import torch.nn.functional as F

        @functools.partial(setattr, F, "cross_entropy")
        def cross_entropy(*args, **kwargs):
            return 0
        """,
        "forbidden_call",
        4,
    ),
    case(
        "decorator-that-patches",
        """\
        import torch.nn.functional as F

        def install(fn):
            F.cross_entropy = fn
            return fn

        @install
        def cheap(*args, **kwargs):
            return 0
        """,
        "module_monkeypatch",
        4,
    ),
    case("tensor-class-in-a-list", "import torch\nT = [torch.Tensor][0]\n", "module_monkeypatch", 2),
    case(
        "module-class-reexported-elsewhere",
        "import torch\nM = [torch.nn.modules.linear.Module][0]\n",
        "module_monkeypatch",
        2,
    ),
    case(
        "isinstance-rebound-to-leak-the-class",
        "import torch\ndef f():\n    isinstance = lambda a, b: b\n    return isinstance(1, torch.Tensor)\n",
        "module_monkeypatch",
        4,
    ),
    case(
        "global-module-hook",
        "import torch\ntorch.nn.modules.module.register_module_forward_hook(print)\n",
        "module_monkeypatch",
        2,
    ),
    case(
        "operator-library",
        "import torch\nlib = torch.library.Library('aten', 'IMPL')\n",
        "module_monkeypatch",
        2,
    ),
    case(
        "kernel-for-an-aten-op",
        "import torch\ntorch.library.register_kernel('aten::log_softmax', 'cuda')(print)\n",
        "module_monkeypatch",
        2,
    ),
    case(
        "kernel-for-a-computed-op-name",
        "import torch\ntorch.library.register_kernel('at' + 'en::mm', 'cuda')(print)\n",
        "module_monkeypatch",
        2,
    ),
    case(
        "python-kernel-for-an-op",
        "import torch\ntorch.ops.aten.mm.default.py_impl(1)(print)\n",
        "module_monkeypatch",
        2,
    ),
    case(
        "precision-from-a-variable",
        "import torch\nmode = 'tf32'\ntorch.backends.cuda.matmul.fp32_precision = mode\n",
        "module_monkeypatch",
        3,
    ),
    case(
        "precision-bf16-on-cuda",
        "import torch\ntorch.backends.cudnn.fp32_precision = 'bf16'\n",
        "module_monkeypatch",
        2,
    ),
    case(
        "precision-augmented", "import torch\ntorch.backends.fp32_precision += 'x'\n", "module_monkeypatch", 2
    ),
    case("precision-deleted", "import torch\ndel torch.backends.fp32_precision\n", "module_monkeypatch", 2),
    case(
        "precision-unpacked",
        "import torch\ntorch.backends.fp32_precision, x = 'tf32', 1\n",
        "module_monkeypatch",
        2,
    ),
    case(
        "precision-loop-target",
        "import torch\nfor torch.backends.fp32_precision in ['tf32']:\n    pass\n",
        "module_monkeypatch",
        2,
    ),
    case(
        "precision-setattr-computed-value",
        "import torch\ndef f(v):\n    setattr(torch.backends.cudnn.conv, 'fp32_precision', v)\n",
        "module_monkeypatch",
        3,
    ),
    case(
        "precision-on-an-object-without-it",
        "import torch\ntorch.backends.cuda.fp32_precision = 'tf32'\n",
        "module_monkeypatch",
        2,
    ),
    case(
        "precision-holder-replaced",
        "import torch\ntorch.backends.cudnn.conv = None\n",
        "module_monkeypatch",
        2,
    ),
]

DUNDERS = [
    case("class-bases", "x = ().__class__.__bases__\n", "dunder_access", 1),
    case("subclasses", "xs = [c for c in object.__subclasses__()]\n", "dunder_access", 1),
    case("mro", "import torch\nx = torch.zeros(1)\nm = type(x).__mro__\n", "dunder_access", 3),
    case("mro-method", "class A:\n    pass\nbase = A.mro()[1]\n", "dunder_access", 3),
    case("builtins-name", "b = __builtins__\n", "dunder_access", 1),
    case("function-globals", "def f():\n    pass\ng = f.__globals__\n", "dunder_access", 3),
    case("format-field", "s = '{0.__class__}'.format(1)\n", "dunder_access", 1),
    case("dunder-string", "name = '__globals__'\n", "dunder_access", 1),
    case(
        "match-class-pattern", "match 1:\n    case object(__class__=c):\n        pass\n", "dunder_access", 2
    ),
    case(
        "torch-function",
        "class T:\n    def __torch_function__(self, *a):\n        return 0\n",
        "dunder_access",
        2,
    ),
    case("module-getattr", "def __getattr__(name):\n    return 0\n", "dunder_access", 1),
    case(
        "method-init-via-class",
        "import torch\nclass M(torch.nn.Module):\n    def __init__(self):\n        torch.nn.Module.__init__(self)\n",
        "dunder_access",
        4,
    ),
    case("dunder-binding", "__all__ = ['train']\n", "dunder_access", 1),
    case("slots-naming-dict", "class A:\n    __slots__ = ('a', '__dict__')\n", "dunder_access", 2),
    case("slots-naming-weakref", "class A:\n    __slots__ = '__weakref__'\n", "dunder_access", 2),
    case("slots-at-module-level", "__slots__ = ('a',)\n", "dunder_access", 1),
    case("slots-in-a-method", "class A:\n    def f(self):\n        __slots__ = ('a',)\n", "dunder_access", 3),
    case("slots-computed", "class A:\n    __slots__ = tuple('ab')\n", "dunder_access", 2),
    case("slots-unpacked", "class A:\n    __slots__ = ('a', *names)\n", "dunder_access", 2),
    case("slots-augmented", "class A:\n    __slots__ += ('a',)\n", "dunder_access", 2),
    case("slots-chained", "class A:\n    __slots__ = s = ('a',)\n", "dunder_access", 2),
    case("slots-as-a-mapping", "class A:\n    __slots__ = {'a': 'doc'}\n", "dunder_access", 2),
    case(
        "slots-read-from-the-class", "class A:\n    __slots__ = ('a',)\nn = A.__slots__\n", "dunder_access", 3
    ),
    case(
        "slots-read-in-the-class-body",
        "class A:\n    __slots__ = ('a',)\n    n = __slots__\n",
        "dunder_access",
        3,
    ),
    case(
        "exception-traceback",
        "try:\n    1 / 0\nexcept ZeroDivisionError as e:\n    tb = e.__traceback__\n",
        "dunder_access",
        4,
    ),
]

FORBIDDEN_CALLS = [
    case("eval-of-built-string", "code = 'pr' + 'int(1)'\neval(code)\n", "forbidden_call", 2),
    case("compile", "exec(compile('x = 1', 'x', 'exec'))\n", "forbidden_call", 1),
    case("breakpoint", "breakpoint()\n", "forbidden_call", 1),
    case("eval-aliased", "e = eval\n", "forbidden_call", 1),
    case("eval-in-a-list", "fs = [eval]\n", "forbidden_call", 1),
    case(
        "eval-with-a-shadowing-parameter-elsewhere",
        "def f(eval):\n    return eval\neval('1')\n",
        "forbidden_call",
        3,
    ),
    case("eval-rebound-at-module-level", "eval = eval\neval('1')\n", "forbidden_call", 1),
    case("compile-from-torch", "from torch import compile\n", "forbidden_call", 1),
    case("global-declaration", "def f():\n    global eval\n    eval = 1\n", "forbidden_call", 2),
    case("walrus-in-module-comprehension", "xs = [(eval := 1) for _ in range(2)]\n", "forbidden_call", 1),
    case("fullwidth-identifier", "\uff45\uff56\uff41\uff4c('1')\n", "forbidden_call", 1),
    case("getattr-built-name", "import torch\nf = getattr(torch, 'lo' + 'ad')\n", "forbidden_call", 2),
    case("getattr-dunder", "c = getattr(1, '__class__')\n", "forbidden_call", 1),
    case("getattr-as-value", "import functools\nget = functools.partial(getattr, 1)\n", "forbidden_call", 2),
    case("vars", "import torch\nns = vars(torch)\n", "forbidden_call", 2),
    case("globals", "globals()['x'] = 1\n", "forbidden_call", 1),
    case("dunder-import", "os = __import__('os')\n", "forbidden_call", 1),
    case("open", "text = open('/etc/passwd').read()\n", "forbidden_call", 1),
    case(
        "attrgetter-built-name",
        "import operator\nf = operator.attrgetter('__cl' + 'ass__')\n",
        "forbidden_call",
        2,
    ),
    case(
        "attrgetter-dunder",
        "from operator import attrgetter\nf = attrgetter('__class__')\n",
        "forbidden_call",
        2,
    ),
    case("type-three-arguments", "X = type('X', (object,), {})\n", "forbidden_call", 1),
    case(
        "type-to-patch-a-class", "import torch\np = torch.zeros(1)\ntype(p).sum = None\n", "forbidden_call", 3
    ),
    case("enum-functional-api", "import enum\nE = enum.Enum('E', {'a': 1})\n", "forbidden_call", 2),
    case(
        "namedtuple-metaclass", "import typing\nX = typing.NamedTupleMeta('X', (), {})\n", "forbidden_call", 2
    ),
    case("metaclass-subclassing-type", "class Meta(type):\n    pass\n", "forbidden_call", 1),
    case("get-type-hints", "import typing\nh = typing.get_type_hints(print)\n", "forbidden_call", 2),
    case(
        "make-dataclass", "import dataclasses\nX = dataclasses.make_dataclass('X', [])\n", "forbidden_call", 2
    ),
    case("fx", "import torch.fx\n", "forbidden_call", 1),
    case(
        "custom-compile-backend",
        "import torch\nm = torch.compile(print, backend=lambda gm, ex: gm)\n",
        "forbidden_call",
        2,
    ),
]

NATIVE = [
    case("cpp-extension-from-import", "from torch.utils import cpp_extension\n", "native_code", 1),
    case(
        "load-inline-chain",
        "import torch\ntorch.utils.cpp_extension.load_inline('m', '')\n",
        "native_code",
        2,
    ),
    case(
        "load-inline-by-getattr",
        "import torch\ngetattr(torch, 'utils').cpp_extension.load_inline('m', '')\n",
        "native_code",
        2,
    ),
    case("ops-load-library", "import torch\ntorch.ops.load_library('x.so')\n", "native_code", 2),
    case("classes-load-library", "import torch\ntorch.classes.load_library('x.so')\n", "native_code", 2),
    case("ctypes", "import ctypes\n", "native_code", 1),
    case("numpy-carries-ctypes", "import numpy as np\nlib = np.zeros(1).ctypes\n", "native_code", 2),
    case("jiterator", "import torch\nf = torch.cuda.jiterator._create_jit_fn('x')\n", "native_code", 2),
    case(
        "compiler-binary-option",
        "import torch\nm = torch.compile(print, options={'cpp.cxx': 'sh'})\n",
        "native_code",
        2,
    ),
    case("triton-runtime", "import triton\nd = triton.runtime.driver\n", "native_code", 2),
]

IO = [
    case("torch-load-aliased-import", "from torch import load as fetch\n", "io_access", 1),
    case("torch-save-via-getattr", "import torch\ngetattr(torch, 'save')(1, 'x')\n", "io_access", 2),
    case("torch-load-reexported", "import torch.nn.functional as F\nw = F.torch.load('x')\n", "io_access", 2),
    case("torch-load-from-an-unknown-object", "def f(m):\n    return m.torch.load('x')\n", "io_access", 2),
    case("numpy-load", "import numpy as np\na = np.load('x.npy')\n", "io_access", 2),
    case("numpy-fromfile", "from numpy import fromfile\n", "io_access", 1),
    case("numpy-memmap", "import numpy\nm = numpy.memmap('x')\n", "io_access", 2),
    case("tofile", "import torch\ntorch.zeros(1).numpy().tofile('x')\n", "io_access", 2),
    case("storage-from-file", "import torch\ns = torch.UntypedStorage.from_file('x')\n", "io_access", 2),
    case("hub", "import torch.hub\n", "io_access", 1),
    case("dataloader", "import torch\nd = torch.utils.data.DataLoader([], num_workers=2)\n", "io_access", 2),
    case("distributed", "import torch.distributed as dist\n", "io_access", 1),
]

HARNESS = [
    case("importlib", "import importlib\n", "harness_access", 1),
    case("sys-modules", "import sys\n", "harness_access", 1),
    case("worker-package", "from worker import harness\n", "harness_access", 1),
    case("shared-package", "from shared import signing\n", "harness_access", 1),
    case("shared-through-kernels", "import shared.kernels\nk = shared.signing\n", "harness_access", 2),
    case(
        "generator-frame", "def g():\n    yield 1\nf = g().gi_frame.f_back.f_globals\n", "harness_access", 3
    ),
    case("torch-private", "import torch\ntorch._C._set_grad_enabled(True)\n", "harness_access", 2),
    case(
        "private-of-another-object",
        "import numpy as np\nc = np.zeros(1).ctypes._ctypes\n",
        "harness_access",
        2,
    ),
    case("ctx-private", "def train(ctx):\n    return ctx._val_tokens\n", "harness_access", 2),
    case("ctx-assignment", "def train(ctx):\n    ctx.time_left = lambda: 1e9\n", "harness_access", 2),
    case("ctx-setattr", "def train(ctx):\n    setattr(ctx, 'seed', 0)\n", "harness_access", 2),
    case("function-mode", "from torch.overrides import TorchFunctionMode\n", "harness_access", 1),
    case("tensor-subclass", "import torch\nclass T(torch.Tensor):\n    pass\n", "harness_access", 2),
    case(
        "parameter-subclass-by-reexport",
        "import torch\nclass T(torch.nn.modules.module.Parameter):\n    pass\n",
        "harness_access",
        2,
    ),
    case(
        "parameter-subclass-by-alias",
        "from torch.nn import Parameter as P\nclass T(P):\n    pass\n",
        "harness_access",
        2,
    ),
    case("peak-memory-reset", "import torch\ntorch.cuda.reset_peak_memory_stats()\n", "harness_access", 2),
    case("default-dtype", "import torch\ntorch.set_default_dtype(torch.float16)\n", "harness_access", 2),
]

IMPORTS = [
    case("subprocess", "import subprocess\n", "import_not_allowed", 1),
    case("import-inside-a-function", "def f():\n    import socket\n", "import_not_allowed", 2),
    case("relative", "from . import train\n", "import_not_allowed", 1),
    case("torch-utils-outside-the-allowlist", "import torch.utils.collect_env\n", "import_not_allowed", 1),
    case("os-through-torch", "import torch\ntorch.os.system('true')\n", "import_not_allowed", 2),
    case(
        "sys-through-dataclasses",
        "import dataclasses\nm = dataclasses.sys.modules\n",
        "import_not_allowed",
        2,
    ),
    case("builtins-under-another-name", "import enum\ne = enum.bltns.eval\n", "import_not_allowed", 2),
    case("ops-import-module", "import torch\nos = torch.ops.import_module('os')\n", "import_not_allowed", 2),
]


def noise(length: int) -> str:
    """Random letters: text that compresses no better than the validation data it stands for."""
    rng = random.Random(length)
    return "".join(rng.choice(string.ascii_letters) for _ in range(length))


def functions_with_docstrings(count: int, length: int) -> str:
    return "".join(f'def f{i}():\n    """{noise(length)}"""\n    pass\n' for i in range(count))


# 24,576 bytes is the cap on literal data; each source carries 30,000 in one form or another.
DATA = [
    case(
        "many-small-strings",
        "".join(f"s{i} = '{noise(100)}'\n" for i in range(300)),
        "too_much_data",
        246,  # 246 * 100 > 24,576
    ),
    case("bytes", f"B = b'{noise(30_000)}'\n", "too_much_data", 1),
    case("docstrings", functions_with_docstrings(30, 1_000), "too_much_data", 74),  # the 25th docstring
    case("f-string-parts", f"s = f'{{0}}{noise(30_000)}'\n", "too_much_data", 1),
    case("hex-integer", f"N = 0x{'f' * 30_000}\n", "too_much_data", 1),
    case("annotation-string", f"x: '{noise(30_000)}' = 0\n", "too_much_data", 1),
]


@pytest.mark.parametrize(
    ("source", "expected"),
    [*MONKEYPATCHING, *DUNDERS, *FORBIDDEN_CALLS, *NATIVE, *IO, *HARNESS, *IMPORTS, *DATA],
)
def test_the_bypass_is_refused_with_the_rules_code_on_its_line(
    source: str, expected: tuple[str, int]
) -> None:
    assert expected in found(source)


def test_slots_that_name_a_dunder_are_refused_for_the_binding_and_for_the_string() -> None:
    report = check_source("class A:\n    __slots__ = ('a', '__dict__')\n")

    assert report.summary() == (
        "line 2: dunder_access: `__slots__` may only be set by `__slots__ = ...` directly in a class body, "
        "to a literal string or a tuple or list of literal attribute names that are not dunders\n"
        "line 2: dunder_access: the string '__dict__' names a dunder attribute, for lookup by name"
    )


@pytest.mark.parametrize(
    ("assignment", "values"),
    [
        ("torch.backends.cuda.matmul.fp32_precision = mode", "'ieee', 'none', 'tf32'"),
        ("torch.backends.cudnn.conv.fp32_precision = 'bf16'", "'ieee', 'none', 'tf32'"),
        ("torch.backends.fp32_precision = 'high'", "'bf16', 'ieee', 'none', 'tf32'"),
        ("torch.backends.mkldnn.matmul.fp32_precision: str = 'bf16'", "'bf16', 'ieee', 'none', 'tf32'"),
    ],
    ids=["variable", "bf16-on-cuda", "legacy-name", "annotated"],
)
def test_a_precision_setting_takes_only_a_literal_value_torch_accepts(assignment: str, values: str) -> None:
    (violation,) = check_source(f"import torch\nmode = 'tf32'\n{assignment}\n").violations

    setting = assignment.split(" ")[0].rstrip(":")
    assert (violation.code, violation.line) == ("module_monkeypatch", 3)
    assert violation.message == f"`{setting}` may be set only to a literal string, one of {values}"


def test_deleting_a_precision_setting_is_refused_like_any_module_attribute() -> None:
    (violation,) = check_source("import torch\ndel torch.backends.cudnn.rnn.fp32_precision\n").violations

    assert violation.message == (
        "deleting `torch.backends.cudnn.rnn.fp32_precision` would change it for the whole process, "
        "the harness's evaluation included"
    )


# --- routes past the policy, refused by class: the exact code, line and message ----------------------


def route(name: str, source: str, code: str, line: int, message: str) -> object:
    return pytest.param(source, (code, line, message), id=name)


# An exception that carries the object it was raised on.
EXCEPTION_OBJECTS = [
    route(
        "exception-obj",
        "import torch.nn.functional as F\ntry:\n    F.no_such\nexcept AttributeError as error:\n    hidden = error.obj\n",
        "harness_access",
        5,
        "`.obj` hands back the object a failed attribute lookup was made on (AttributeError.obj): a module, say, under a name this check does not know",
    ),
]

# A module handed back as a value, under a name the name table does not know.
MODULES_AS_VALUES = [
    route(
        "opt-einsum-module",
        "import torch\nm = torch.backends.opt_einsum.get_opt_einsum()\n",
        "module_monkeypatch",
        2,
        "`torch.backends.opt_einsum.get_opt_einsum` hands back the opt_einsum package as a value, under a "
        "name this check does not know",
    ),
    route(
        "cuda-runtime-module",
        "import torch\nrt = torch.cuda.cudart()\n",
        "native_code",
        2,
        "`torch.cuda.cudart` hands back the CUDA runtime's module, which takes raw pointers",
    ),
    route(
        "device-module",
        "import torch\nm = torch.get_device_module('cpu')\n",
        "module_monkeypatch",
        2,
        "`torch.get_device_module` hands back a torch module as a value, under a name this check does not know; use torch.cuda (or torch.cpu) by name",
    ),
    route(
        "module-never-imported",
        "import torch\nm = [torch.backends.mkldnn][0]\n",
        "module_monkeypatch",
        2,
        "the module `torch.backends.mkldnn` may be used only through its attributes or a plain `name = torch.backends.mkldnn` alias; as a value, changes made to it would escape this check",
    ),
    route(
        "module-under-another-name",
        "import torch\nm = [torch.nn.modules.linear.F][0]\n",
        "module_monkeypatch",
        2,
        "the module `torch.nn.modules.linear.F` may be used only through its attributes or a plain `name = torch.nn.modules.linear.F` alias; as a value, changes made to it would escape this check",
    ),
    route(
        "module-through-a-package-again",
        "import torch\nm = [torch.fft.torch.nn.functional][0]\n",
        "module_monkeypatch",
        2,
        "the module `torch.fft.torch.nn.functional` may be used only through its attributes or a plain `name = torch.fft.torch.nn.functional` alias; as a value, changes made to it would escape this check",
    ),
    route(
        "library-alias-to-private",
        "import numpy\nx = numpy.matrixlib.defmatrix.N.np.load('x')\n",
        "harness_access",
        2,
        "`numpy.matrixlib.defmatrix.N.np.load` (`numpy._core.numeric.np.load`) is private; private internals reach around this policy, use public APIs",
    ),
    route(
        "refused-module-on-an-object",
        "def f(m):\n    return m.os.system('true')\n",
        "import_not_allowed",
        2,
        "`.os.system` reaches a module that may not be imported (os), through another object",
    ),
]

# Library code that evaluates annotations, and annotations that are more than types.
ANNOTATIONS_AS_CODE = [
    route(
        "singledispatch",
        "import functools\n@functools.singledispatch\ndef f(x):\n    return x\n",
        "forbidden_call",
        2,
        "`functools.singledispatch` evaluates annotation strings as code (through typing.get_type_hints) and hands back the classes it registers; dispatch with isinstance()",
    ),
    route(
        "singledispatchmethod",
        "from functools import singledispatchmethod\n",
        "forbidden_call",
        1,
        "`functools.singledispatchmethod` evaluates annotation strings as code (through typing.get_type_hints) and hands back the classes it registers; dispatch with isinstance()",
    ),
    route(
        "triton-aggregate",
        "import triton\n@triton.aggregate\nclass A:\n    x: int\n",
        "forbidden_call",
        2,
        "`triton.aggregate` evaluates annotation strings as code (through typing.get_type_hints)",
    ),
    route(
        "torchscript",
        "import torch\n@torch.jit.script\ndef f(x):\n    return x\n",
        "forbidden_call",
        2,
        "`torch.jit.script` compiles TorchScript, which evaluates type comments and annotation strings as code; use torch.compile",
    ),
    route(
        "dataclass-fields",
        "import dataclasses\ndef f(c):\n    return dataclasses.fields(c)[0].type\n",
        "forbidden_call",
        3,
        "`dataclasses.fields` hands back the classes in a dataclass's annotations",
    ),
    route(
        "get-type-hints-reexported",
        "import torch\nh = torch.utils.checkpoint.get_type_hints(print)\n",
        "forbidden_call",
        2,
        "`torch.utils.checkpoint.get_type_hints` is `typing.get_type_hints`, which evaluates annotation strings as code",
    ),
    route(
        "annotation-code-string",
        "import torch\ndef f(x: \"torch.serialization.os.system('true')\"):\n    return x\n",
        "forbidden_call",
        2,
        "the annotation \"torch.serialization.os.system('true')\" is not a dotted type name: libraries evaluate annotation strings as code (typing.get_type_hints, torch.library.custom_op)",
    ),
    route(
        "annotation-name-of-a-string",
        "CODE = \"os.system('true')\"\ndef f(x: CODE):\n    return x\n",
        "forbidden_call",
        2,
        "`CODE` in an annotation must be a class, a type alias or an import: annotations are evaluated, and a library that evaluates this one would use whatever `CODE` holds",
    ),
    route(
        "annotation-call",
        "import torch.nn.functional as F\ndef patch(m):\n    return m\ndef f(x: patch(F)):\n    return x\n",
        "forbidden_call",
        4,
        "an annotation may only name types; a call in one is code, run when the function or class is defined and whenever a library evaluates its annotations",
    ),
    route(
        "annotation-module",
        "import torch.nn.functional as F\ndef f(x: F):\n    return x\n",
        "forbidden_call",
        2,
        "the module `torch.nn.functional` is not a type; an annotation would hand it on as a value",
    ),
    route(
        "annotation-library-dict",
        "import numpy\ndef f(x: numpy.sctypeDict['x']):\n    return x\n",
        "forbidden_call",
        2,
        "an annotation may subscript only typing's generics, builtin containers and classes of this file, not `numpy.sctypeDict`: a subscript of anything else is a lookup whose result libraries evaluate",
    ),
    route(
        "annotation-decorated-class",
        "def make(c):\n    return 'os.system(1)'\n@make\nclass C:\n    pass\ndef f(x: C):\n    return x\n",
        "forbidden_call",
        6,
        "`C` in an annotation must be a class, a type alias or an import: annotations are evaluated, and a library that evaluates this one would use whatever `C` holds",
    ),
    route(
        "annotation-class-attribute",
        "class C:\n    a = 'x'\ndef f(x: C.a):\n    return x\n",
        "forbidden_call",
        3,
        "a dotted name in an annotation must start from an import; an attribute of a class or variable of this file could hold any value, which libraries would evaluate",
    ),
    route(
        "annotation-literal-bytes",
        "from typing import Literal\ndef f(x: Literal[b'\"']):\n    return x\n",
        "forbidden_call",
        2,
        "typing.Literal in an annotation may hold only numbers, booleans, None and strings that are dotted names: libraries evaluate the strings in annotations as code",
    ),
    route(
        "triton-annotation-library-value",
        "import triton\nimport warnings\n@triton.jit\ndef k(x: warnings.filters):\n    pass\n",
        "forbidden_call",
        4,
        "a Triton kernel's annotations may name only classes of this file, builtin types and triton.language types (tl.constexpr), not `warnings.filters`: Triton writes each one into the Python source of the launcher it compiles",
    ),
]

# Attribute sets copied between objects by name, and checked calls made out of sight.
ATTRIBUTE_COPIES = [
    route(
        "partial-of-exec",
        "import functools\nrun = functools.partial(exec, 'x = 1')\n",
        "forbidden_call",
        2,
        "`exec` is not allowed: it runs code built from strings",
    ),
    route(
        "update-wrapper",
        "import functools\nimport torch.nn.functional as F\ndef f(*a):\n    return 0\nfunctools.update_wrapper(F.cross_entropy, f, assigned=('x',))\n",
        "forbidden_call",
        5,
        "`functools.update_wrapper` copies attributes between objects by name, dunders included, onto any object; decorate with @functools.wraps(f)",
    ),
    route(
        "update-wrapper-reexported",
        "import torch\nu = torch.distributions.utils.update_wrapper\n",
        "forbidden_call",
        2,
        "`torch.distributions.utils.update_wrapper` is `functools.update_wrapper`, which copies attributes between objects by name, dunders included, onto any object; decorate with @functools.wraps(f)",
    ),
    route(
        "wraps-assigned",
        "import functools\ndef d(fn):\n    @functools.wraps(fn, assigned=('x',))\n    def inner(*a):\n        return fn(*a)\n    return inner\n",
        "forbidden_call",
        3,
        "functools.wraps may only decorate a function defined here, as @functools.wraps(f): assigned= and updated= copy any attributes by name, dunders included, and a call can copy them onto any object",
    ),
    route(
        "wraps-called-on-an-object",
        "import functools\nimport torch.nn.functional as F\ndef f(*a):\n    return 0\nfunctools.wraps(f)(F.cross_entropy)\n",
        "forbidden_call",
        5,
        "functools.wraps may only decorate a function defined here, as @functools.wraps(f): assigned= and updated= copy any attributes by name, dunders included, and a call can copy them onto any object",
    ),
    route(
        "wraps-as-a-bare-decorator",
        "import functools\n@functools.wraps\ndef copier():\n    pass\n",
        "forbidden_call",
        2,
        "functools.wraps may only decorate a function defined here, as @functools.wraps(f): assigned= and updated= copy any attributes by name, dunders included, and a call can copy them onto any object",
    ),
    route(
        "compile-as-a-value",
        "import functools\nimport torch\nc = functools.partial(torch.compile, options={'cpp.cxx': 'sh'})\n",
        "forbidden_call",
        3,
        "`torch.compile` may only be called where it is named (or be a decorator): this check judges its arguments there, and a call made out of its sight would escape it",
    ),
    route(
        "attrgetter-as-a-value",
        "import operator\ng = [operator.attrgetter][0]\n",
        "forbidden_call",
        2,
        "`operator.attrgetter` may only be called where it is named (or be a decorator): this check judges its arguments there, and a call made out of its sight would escape it",
    ),
]

# Arrays and tensors over memory outside any array: forged object references.
RAW_MEMORY = [
    route(
        "annotated-ndarray-constructor",
        "import typing\nimport numpy as np\nmake = typing.Annotated[np.ndarray, 0]\n",
        "native_code",
        3,
        "`numpy.ndarray` may be named only in annotations, isinstance() checks and comparisons; used as a value, it builds an array over any buffer, and with an object dtype its elements are references forged from raw bytes (create arrays with numpy.array, numpy.zeros...)",
    ),
    route(
        "ndarray-generic-alias",
        "import numpy.typing as npt\nimport numpy as np\nmake = npt.NDArray[np.uint8]\n",
        "native_code",
        3,
        "`numpy.typing.NDArray` may be named only in annotations, isinstance() checks and comparisons; used as a value, it builds an array over any buffer, and with an object dtype its elements are references forged from raw bytes (create arrays with numpy.array, numpy.zeros...)",
    ),
    route(
        "sparse-from-dense",
        "import torch\ns = torch.zeros(4).to_sparse()\n",
        "native_code",
        2,
        "`.to_sparse` makes sparse tensors, whose index tensors torch trusts without checking: an index changed in place (s.indices().add_(n)) writes outside the tensor",
    ),
    route(
        "sparse-constructor",
        "import torch\ns = torch.sparse_coo_tensor([[9]], [1.0], (4,))\n",
        "native_code",
        2,
        "`.sparse_coo_tensor` makes sparse tensors, whose index tensors torch trusts without checking: an index changed in place (s.indices().add_(n)) writes outside the tensor",
    ),
    route(
        "sparse-module",
        "import torch.sparse\n",
        "native_code",
        1,
        "`torch.sparse` makes sparse tensors, whose index tensors torch trusts without checking: an index changed in place (s.indices().add_(n)) writes outside the tensor",
    ),
    route(
        "sparse-layout",
        "import torch\ns = torch.zeros(4, layout=torch.sparse_coo)\n",
        "native_code",
        2,
        "`.sparse_coo` makes sparse tensors, whose index tensors torch trusts without checking: an index changed in place (s.indices().add_(n)) writes outside the tensor",
    ),
    route(
        "sparse-flag-on-a-module",
        "import torch\ne = torch.nn.Embedding(8, 4)\ne.sparse = True\n",
        "native_code",
        3,
        "`.sparse` makes sparse tensors, whose index tensors torch trusts without checking: an index changed in place (s.indices().add_(n)) writes outside the tensor",
    ),
    route(
        "sparse-gradients",
        "import torch\ne = torch.nn.Embedding(8, 4, sparse=True)\n",
        "native_code",
        2,
        "sparse=True makes sparse tensors, whose index tensors torch trusts without checking: an index changed in place (s.indices().add_(n)) writes outside the tensor; an embedding layer's arguments from `sparse` on must be written out, by keyword",
    ),
    route(
        "sparse-gradients-positionally",
        "import torch\ne = torch.nn.Embedding(8, 4, None, None, 2.0, False, True)\n",
        "native_code",
        2,
        "sparse=True makes sparse tensors, whose index tensors torch trusts without checking: an index changed in place (s.indices().add_(n)) writes outside the tensor; an embedding layer's arguments from `sparse` on must be written out, by keyword",
    ),
    route(
        "embedding-handed-on",
        "import functools\nimport torch\nmake = functools.partial(torch.nn.Embedding, 8)\n",
        "forbidden_call",
        3,
        "`torch.nn.Embedding` may only be called where it is named (or be a decorator): this check judges its arguments there, and a call made out of its sight would escape it",
    ),
    route(
        "embedding-subclass",
        "import torch\nclass E(torch.nn.Embedding):\n    pass\n",
        "native_code",
        2,
        "subclassing `torch.nn.Embedding` is not allowed: its constructor, called through super(), could ask for sparse gradients out of this check's sight; configure an instance instead",
    ),
    route(
        "ndarray-over-a-buffer",
        "import numpy as np\na = np.ndarray((1,), dtype=np.uint8, buffer=bytearray(8))\n",
        "native_code",
        2,
        "`numpy.ndarray` may be named only in annotations, isinstance() checks and comparisons; called, it builds an array over any buffer, and with an object dtype its elements are references forged from raw bytes (create arrays with numpy.array, numpy.zeros...)",
    ),
    route(
        "ndarray-subclass",
        "import numpy as np\nclass A(np.ndarray):\n    pass\n",
        "native_code",
        2,
        "`numpy.ndarray` may be named only in annotations, isinstance() checks and comparisons; subclassed, it builds an array over any buffer, and with an object dtype its elements are references forged from raw bytes (create arrays with numpy.array, numpy.zeros...)",
    ),
    route(
        "ndarray-as-a-value",
        "import numpy as np\nmake = [np.ndarray][0]\n",
        "native_code",
        2,
        "`numpy.ndarray` may be named only in annotations, isinstance() checks and comparisons; used as a value, it builds an array over any buffer, and with an object dtype its elements are references forged from raw bytes (create arrays with numpy.array, numpy.zeros...)",
    ),
    route(
        "recarray",
        "import numpy as np\nr = np.recarray((1,), dtype=[('a', 'i8')], buf=bytearray(8))\n",
        "native_code",
        2,
        "`numpy.recarray` may be named only in annotations, isinstance() checks and comparisons; called, it builds an array over any buffer, and with an object dtype its elements are references forged from raw bytes (create arrays with numpy.array, numpy.zeros...)",
    ),
    route(
        "record-array-from-bytes",
        "import numpy as np\nr = np.rec.array(bytes(8), dtype=[('a', 'i8')])\n",
        "native_code",
        2,
        "`numpy.rec.array` builds record arrays over raw bytes, object fields included",
    ),
    route(
        "frombuffer",
        "import numpy as np\na = np.frombuffer(bytearray(8), dtype=np.uint8)\n",
        "native_code",
        2,
        "`numpy.frombuffer` builds an array over raw memory; use numpy.array or torch tensors",
    ),
    route(
        "stride-tricks",
        "import numpy as np\nw = np.lib.stride_tricks.sliding_window_view(np.zeros(4), 2)\n",
        "native_code",
        2,
        "`numpy.lib.stride_tricks.sliding_window_view` is as_strided and the helpers built on it, which view memory outside the array",
    ),
    route(
        "object-dtype-keyword",
        "import numpy as np\na = np.zeros(2, dtype=object)\n",
        "native_code",
        2,
        "numpy's object dtype makes arrays of raw object references; built over bytes, they forge references to any address",
    ),
    route(
        "object-dtype-code",
        "import numpy as np\na = np.empty(2, 'O')\n",
        "native_code",
        2,
        "numpy's object dtype makes arrays of raw object references; built over bytes, they forge references to any address",
    ),
    route(
        "object-dtype-structured",
        "import numpy as np\na = np.zeros(2, dtype='i8,O')\n",
        "native_code",
        2,
        "numpy's object dtype makes arrays of raw object references; built over bytes, they forge references to any address",
    ),
    route(
        "object-dtype-astype",
        "import numpy as np\na = np.zeros(2).astype(object)\n",
        "native_code",
        2,
        "numpy's object dtype makes arrays of raw object references; built over bytes, they forge references to any address",
    ),
    route(
        "object-scalar-type",
        "import numpy as np\nt = np.object_\n",
        "native_code",
        2,
        "`numpy.object_` makes arrays of raw object references; built over bytes, they forge references to any address",
    ),
    route(
        "tensor-set",
        "import torch\nt = torch.empty(0).set_(torch.zeros(4).untyped_storage(), 0, (100,), (1,))\n",
        "native_code",
        2,
        "`.set_` reaches memory outside the tensor's storage: torch does not check the bounds",
    ),
    route(
        "as-strided-copy",
        "import torch\nt = torch.as_strided_copy(torch.zeros(4), (100,), (1,))\n",
        "native_code",
        2,
        "`.as_strided_copy` reaches memory outside the tensor's storage: torch does not check the bounds",
    ),
    route(
        "prims",
        "import torch\nt = torch.ops.prims.as_strided(torch.zeros(4), [100], [1], 0)\n",
        "native_code",
        2,
        "`torch.ops.prims.as_strided` is one of torch's internal primitives, which skip its checks (prims.as_strided reaches memory outside the tensor)",
    ),
    route(
        "aten-set",
        "import torch\nt = torch.ops.aten.set.source_Storage(torch.empty(0), torch.zeros(4).untyped_storage())\n",
        "native_code",
        2,
        "`torch.ops.aten.set.source_Storage` reaches memory outside the tensor's storage: torch does not check the bounds",
    ),
]


@pytest.mark.parametrize(
    ("source", "expected"),
    [*EXCEPTION_OBJECTS, *MODULES_AS_VALUES, *ANNOTATIONS_AS_CODE, *ATTRIBUTE_COPIES, *RAW_MEMORY],
)
def test_each_route_past_the_policy_is_refused_with_its_code_and_message(
    source: str, expected: tuple[str, int, str]
) -> None:
    assert [(v.code, v.line, v.message) for v in check_source(source).violations] == [expected]
