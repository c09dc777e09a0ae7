"""The policy against the installed libraries: what allowed modules expose as attributes.

Modules keep the modules they import as attributes (`torch.os`, `dataclasses.sys`), and some
re-export dangerous functions (`torch.xpu.cast` is ctypes'). The policy refuses these by name,
so a library upgrade can add one it does not know; these tests walk the real modules and fail
when that happens. Walking uses module `__dict__`s, so nothing is imported lazily.

The same walk writes shared/policy/library.py, the modules the libraries hold under public
names, which the policy needs to tell a module from any other value:

    python -m tests.unit.test_policy_exposure   # after upgrading torch, numpy or triton
"""

from __future__ import annotations

import ast
import builtins
import functools
import importlib
import importlib.util
import inspect
import json
import os
import pkgutil
import subprocess
import sys
import textwrap
import types
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from shared.policy import check_source
from shared.policy.library import MODULE_ALIASES, MODULES
from shared.policy.paths import classify_path
from shared.policy.rules import (
    ALLOWED_IMPORT_ROOTS,
    ALLOWED_PROJECT_PACKAGE,
    FORBIDDEN_BUILTINS,
    PATH_RULES,
    PRECISION_STORES,
    SPARSE_FLAG_POSITIONS,
)

# Touching deprecated attributes (torch.distributed.reduce_op, numpy.core) warns; the walk only looks.
pytestmark = [
    pytest.mark.filterwarnings("ignore::FutureWarning"),
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),
]

DEPTH = 3
START = [*sorted(ALLOWED_IMPORT_ROOTS - {"__future__"}), "triton.language", ALLOWED_PROJECT_PACKAGE]

# Reachable, not importable, and harmless: nothing in them touches files, processes, memory or
# the interpreter's state.
HARMLESS_MODULES = frozenset({"re", "keyword", "textwrap", "ast", "contextvars", "bisect", "json"})

# Where a function must not come from, whatever name an allowed module gives it.
DANGEROUS_ORIGINS = frozenset(
    {
        "ctypes",
        "_ctypes",
        "importlib",
        "_frozen_importlib",
        "_frozen_importlib_external",
        "os",
        "posix",
        "io",
        "_io",
        "subprocess",
        "_posixsubprocess",
        "pickle",
        "_pickle",
        "marshal",
        "sys",
        "socket",
        "_socket",
        "shutil",
        "tempfile",
        "runpy",
        "gc",
        "pdb",
        "mmap",
    }
)


def public_attributes() -> Iterator[tuple[str, object]]:
    """(dotted path, value) for every public attribute of the allowed modules, DEPTH levels down."""
    seen: set[int] = set()
    frontier = [(name, importlib.import_module(name)) for name in START]
    for _ in range(DEPTH):
        deeper = []
        for path, module in frontier:
            for name, value in _namespace(module):
                if name.startswith("_"):
                    continue
                yield f"{path}.{name}", value
                if not isinstance(value, types.ModuleType) or _root(value.__name__) not in _ALLOWED:
                    continue
                if id(value) not in seen:
                    seen.add(id(value))
                    deeper.append((f"{path}.{name}", value))
        frontier = deeper


def _namespace(module: types.ModuleType) -> list[tuple[str, object]]:
    """A module's attributes: its own, and those of the module it forwards to when it is a
    stand-in (torch.backends' PropModule keeps the real module as `m` and answers for it)."""
    items = list(vars(module).items())
    inner = vars(module).get("m")
    if type(module) is not types.ModuleType and isinstance(inner, types.ModuleType):
        items += [(name, value) for name, value in vars(inner).items() if name not in vars(module)]
    return items


_ALLOWED = ALLOWED_IMPORT_ROOTS | {"shared"}


def _root(dotted: str) -> str:
    return dotted.split(".")[0]


def use(path: str) -> str:
    return f"import {_root(path)}\nx = {path}\n"


@pytest.fixture(scope="module")
def attributes() -> list[tuple[str, object]]:
    pytest.importorskip("torch")
    pytest.importorskip("triton")
    return list(public_attributes())


def test_every_module_reachable_through_an_allowed_one_is_allowed_refused_or_harmless(
    attributes: list[tuple[str, object]],
) -> None:
    leaks = [
        f"{path} is {value.__name__}"
        for path, value in attributes
        if isinstance(value, types.ModuleType)
        and _root(value.__name__) not in _ALLOWED
        and value.__name__ not in HARMLESS_MODULES
        and check_source(use(path)).ok
    ]
    assert leaks == []


def test_no_dangerous_function_is_reachable_under_another_name(attributes: list[tuple[str, object]]) -> None:
    forbidden_builtins = {id(getattr(builtins, name)) for name in FORBIDDEN_BUILTINS}
    leaks = []
    for path, value in attributes:
        origin = getattr(value, "__module__", None)
        dangerous = id(value) in forbidden_builtins or (
            callable(value) and isinstance(origin, str) and _root(origin) in DANGEROUS_ORIGINS
        )
        if dangerous and check_source(use(path)).ok:
            leaks.append(f"{path} is {origin}.{getattr(value, '__name__', '?')}")
    assert leaks == []


def _object_at(path: str) -> object | None:
    """What a dotted path names among the modules already imported (the walk sees no others)."""
    parts = path.split(".")
    for split in range(len(parts), 0, -1):
        value: object = sys.modules.get(".".join(parts[:split]))
        if value is None:
            continue
        for part in parts[split:]:
            value = getattr(value, part, None)
        return value
    return None


def test_what_a_path_rule_refuses_is_refused_under_every_public_name(
    attributes: list[tuple[str, object]],
) -> None:
    refused = {}
    for rule in PATH_RULES:
        value = _object_at(rule.prefix)
        if callable(value) and not isinstance(value, types.ModuleType):
            refused[id(value)] = rule.prefix
    leaks = [
        f"{path} is {refused[id(value)]}"
        for path, value in attributes
        if id(value) in refused and check_source(use(path)).ok
    ]
    assert leaks == []


def test_the_walk_finds_the_exposures_it_exists_to_catch(attributes: list[tuple[str, object]]) -> None:
    paths = {path for path, _ in attributes}
    assert {"torch.os", "dataclasses.sys", "enum.bltns", "torch.nn.functional.torch"} <= paths


# Run in a child process: setting these changes the test process's matmul numerics, and once the
# new settings are mixed with the legacy ones, torch's legacy getters raise.
_PRECISION_PROBE = """
import importlib, json, pkgutil, sys, warnings
warnings.simplefilter("ignore")
import torch, torch.backends
for info in pkgutil.walk_packages(torch.backends.__path__, "torch.backends."):
    try:
        importlib.import_module(info.name)
    except ImportError:
        pass  # optional backends (coreml) need packages that are not installed
def has_precision(value):
    try:
        return hasattr(value, "fp32_precision")
    except Exception:
        return False
holders = {}
for name in sorted(m for m in sys.modules if m == "torch.backends" or m.startswith("torch.backends.")):
    module = sys.modules[name]
    if has_precision(module):
        holders[name] = module
    for attr, value in [*vars(type(module)).items(), *vars(module).items()]:
        if attr.startswith("_") or isinstance(value, (type(torch), type)) or callable(value):
            continue
        if has_precision(value):  # an object such as torch.backends.cudnn.conv
            holders[f"{name}.{attr}"] = value
accepted = {}
for path, holder in holders.items():
    accepted[path + ".fp32_precision"] = ok = []
    for value in ("ieee", "tf32", "bf16", "none", "fp16", "high", "highest"):
        try:
            holder.fp32_precision = value
            ok.append(value)
        except RuntimeError:
            pass
print(json.dumps(accepted))
"""


def test_the_precision_settings_are_every_fp32_precision_in_torch_with_the_values_torch_accepts() -> None:
    pytest.importorskip("torch")
    probe = subprocess.run(
        [sys.executable, "-c", _PRECISION_PROBE], capture_output=True, text=True, check=True, timeout=120
    )
    accepted = {path: frozenset(values) for path, values in json.loads(probe.stdout).items()}
    assert accepted == PRECISION_STORES


# --- modules as values: the table in library.py ---------------------------------------------


def module_graph() -> tuple[set[str], dict[str, str]]:
    """Every module reachable from the allowed ones through public attributes, by the name it gives
    itself, and the attributes that hold one under another name (`numpy.emath` -> numpy.lib.scimath).

    The walk does not go past a module the policy refuses (a chain through it is refused anyway), nor
    record a top-level package under its own name (`torch.nn.functional.torch`): the policy treats
    such a segment as that package.
    """
    modules: set[str] = set()
    aliases: dict[str, str] = {}
    frontier = [importlib.import_module(name) for name in START]
    while frontier:
        deeper = []
        for module in frontier:
            if module.__name__ in modules:
                continue
            modules.add(module.__name__)
            for name, value in list(vars(module).items()):
                if name.startswith("_") or not isinstance(value, types.ModuleType):
                    continue
                if _root(value.__name__) not in _ALLOWED:
                    continue  # another test's business: refused, or harmless
                written = f"{module.__name__}.{name}"
                if value.__name__ != written and not (name in _ALLOWED and value.__name__ == name):
                    aliases[written] = value.__name__
                if classify_path(value.__name__) is None:
                    deeper.append(value)
        frontier = deeper
    return modules, aliases


def _import_public_submodules() -> None:
    """Imports what a training run could import later (torch.compile brings in much of torch)."""
    for root in ("torch", "numpy", "triton", ALLOWED_PROJECT_PACKAGE):
        package = importlib.import_module(root)
        for info in pkgutil.walk_packages(package.__path__, f"{root}."):
            parts = info.name.split(".")
            hidden = any(p.startswith("_") or p in ("tests", "testing") for p in parts[1:])
            if hidden or classify_path(info.name) is not None:
                continue
            try:
                importlib.import_module(info.name)
            except Exception:  # optional backends need packages that are not installed
                continue


def collect_graph() -> tuple[set[str], dict[str, str]]:
    """The graph before and after importing every public submodule, merged: importing a submodule
    can replace an alias of the same name on its package (torch.nn.quantized holds torch.ao's
    modules until its own are imported), and both states occur in a run."""
    fresh_modules, fresh_aliases = module_graph()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        _import_public_submodules()
    if os.environ.get("TRITON_INTERPRET") == "1":
        _as_after_interpreted_kernels()
    modules, aliases = module_graph()
    modules |= fresh_modules
    aliases.update(fresh_aliases)
    return modules, aliases


def _as_after_interpreted_kernels() -> None:
    """What running a kernel under TRITON_INTERPRET leaves behind: the interpreter copies its own
    globals (numpy as `np`, triton.language as `tl`...) into the module of every function it runs
    (triton/runtime/interpreter.py, `_compile_and_exec`), so those modules then hold them."""
    from triton.runtime import interpreter

    injected = {k: v for k, v in vars(interpreter).items() if isinstance(v, types.ModuleType)}
    for module in list(sys.modules.values()):
        names = vars(module) if isinstance(module, types.ModuleType) else {}
        if any(type(value).__name__ in ("JITFunction", "InterpretedFunction") for value in list(names.values())):
            for key, value in injected.items():
                names.setdefault(key, value)


def _graph_in_a_fresh_process(*, triton_interpret: bool) -> tuple[set[str], dict[str, str]]:
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    if triton_interpret:
        env["TRITON_INTERPRET"] = "1"  # Triton's interpreter gives triton.language modules more names
    root = Path(__file__).resolve().parents[2]
    code = "import json\nfrom tests.unit.test_policy_exposure import collect_graph\nm, a = collect_graph()\n"
    code += "print(json.dumps([sorted(m), a]))"
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=root,
        env={**env, "PYTHONPATH": str(root)},
    )  # fmt: skip
    modules, aliases = json.loads(done.stdout.strip().splitlines()[-1])
    return set(modules), dict(aliases)


def write_library_table(path: Path) -> None:
    # A CPU run with the kernels sets TRITON_INTERPRET; a GPU run does not: both states go in.
    modules, aliases = _graph_in_a_fresh_process(triton_interpret=False)
    interpreted_modules, interpreted_aliases = _graph_in_a_fresh_process(triton_interpret=True)
    modules |= interpreted_modules
    aliases.update(interpreted_aliases)
    versions = ", ".join(
        f"{name} {importlib.import_module(name).__version__}" for name in ("torch", "numpy", "triton")
    )
    module_lines = "\n".join(sorted(modules))
    alias_lines = "\n".join(f"{written} {target}" for written, target in sorted(aliases.items()))
    path.write_text(
        f'''"""The modules the allowed libraries hold under public names: generated, do not edit.

Written by `python -m tests.unit.test_policy_exposure` after importing every public submodule;
tests/unit/test_policy_exposure.py fails when the installed libraries hold a module this table
does not know. paths.py reads it to tell a module from other values.

Libraries: {versions}.
"""

# Modules reachable from the allowed ones through public attributes, by the name each gives itself.
MODULES: frozenset[str] = frozenset(
    """
{module_lines}
""".split()
)

# `module.attribute` -> the module it holds, where that is not its own name: `numpy.emath` is
# numpy.lib.scimath, and the torch.nn modules hold torch.nn.functional as `F`.
MODULE_ALIASES: dict[str, str] = {{
    written: target
    for written, target in (
        line.split()
        for line in """
{alias_lines}
""".strip().splitlines()
    )
}}
''',
        encoding="utf-8",
    )


@pytest.fixture(scope="module")
def graph() -> tuple[set[str], dict[str, str]]:
    pytest.importorskip("torch")
    pytest.importorskip("triton")
    return module_graph()


def test_the_library_table_knows_every_module_the_libraries_hold(
    graph: tuple[set[str], dict[str, str]],
) -> None:
    modules, aliases = graph

    assert sorted(modules - MODULES) == [], "regenerate: python -m tests.unit.test_policy_exposure"
    assert {w: t for w, t in aliases.items() if MODULE_ALIASES.get(w) != t} == {}, (
        "regenerate: python -m tests.unit.test_policy_exposure"
    )


def test_no_module_can_be_handed_on_as_a_value(graph: tuple[set[str], dict[str, str]]) -> None:
    modules, aliases = graph
    # One way of writing each module: its own name, and every attribute that holds it elsewhere.
    written = sorted(modules - _ALLOWED) + sorted(aliases)
    travels = [path for path in written if check_source(f"import {_root(path)}\nm = [{path}][0]\n").ok]
    assert travels == []


# --- functions that hand back a module ---------------------------------------------------------

_IMPORTERS = frozenset({"import_module", "__import__"})


@functools.cache
def _imported_names(module: str) -> frozenset[str]:
    """Names a module binds by `import` at its top level (in `try` and `if` blocks too), which are
    modules even where the import failed and left None (`torch.backends.opt_einsum`)."""
    path = getattr(sys.modules.get(module), "__file__", None)
    if path is None or not path.endswith(".py"):
        return frozenset()
    names: set[str] = set()
    stack: list[ast.AST] = [ast.parse(Path(path).read_bytes())]
    while stack:
        node = stack.pop()
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.Import):
                names.update(a.asname or a.name.split(".")[0] for a in child.names)
            elif isinstance(child, ast.ImportFrom):
                names.update(a.asname or a.name for a in child.names)  # a submodule, or not: judged below
            elif isinstance(child, (ast.Try, ast.If, ast.ExceptHandler)):
                stack.append(child)
    return frozenset(names)


def _module_returned(function: types.FunctionType) -> str | None:
    """The return statement by which `function` hands back a module, if its source shows one: an
    import by name, sys.modules, getattr on a module with a computed name, or a module itself."""
    globals_ = function.__globals__
    imported = {
        name
        for name in _imported_names(function.__module__)
        if globals_.get(name) is None or isinstance(globals_.get(name), types.ModuleType)
    }
    modules = imported | {name for name, value in globals_.items() if isinstance(value, types.ModuleType)}
    names = set(function.__code__.co_names)
    if not (names & (_IMPORTERS | {"modules", "getattr"}) or names & modules):
        return None
    try:
        tree = ast.parse(textwrap.dedent(inspect.getsource(function)))
    except (OSError, TypeError, SyntaxError):
        return None

    def gives_module(node: ast.expr) -> bool:
        if isinstance(node, ast.Name):
            return node.id in modules
        if isinstance(node, ast.Subscript):
            return isinstance(node.value, ast.Attribute) and node.value.attr == "modules"
        if not isinstance(node, ast.Call):
            return False
        func = node.func
        called = (
            func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else ""
        )
        if called in _IMPORTERS:
            return True
        if called == "get":
            return (
                isinstance(func, ast.Attribute)
                and isinstance(func.value, ast.Attribute)
                and func.value.attr == "modules"
            )
        return (
            called == "getattr"
            and len(node.args) >= 2
            and isinstance(node.args[0], ast.Name)
            and node.args[0].id in modules
            and not isinstance(node.args[1], ast.Constant)
        )

    assigned = {
        target.id
        for node in ast.walk(tree)
        if isinstance(node, ast.Assign) and gives_module(node.value)
        for target in node.targets
        if isinstance(target, ast.Name)
    }
    for node in ast.walk(tree):
        if isinstance(node, ast.Return) and node.value is not None:
            value = node.value
            if gives_module(value) or (isinstance(value, ast.Name) and value.id in assigned):
                return ast.unparse(node)
    return None


def test_no_allowed_function_hands_back_a_module(attributes: list[tuple[str, object]]) -> None:
    seen: set[int] = set()
    found = []
    for path, value in attributes:
        holders: list[tuple[str, object]] = [(path, value)]
        if isinstance(value, type) or (
            isinstance(value, types.ModuleType) and type(value) is not types.ModuleType
        ):
            holder = value if isinstance(value, type) else type(value)
            holders += [
                (f"{path}.{name}", member)
                for name, member in vars(holder).items()
                if not name.startswith("_")
            ]
        for where, member in holders:
            function = member.__func__ if isinstance(member, (staticmethod, classmethod)) else member
            function = inspect.unwrap(function) if callable(function) else function
            if not isinstance(function, types.FunctionType) or id(function) in seen:
                continue
            seen.add(id(function))
            returned = _module_returned(function)
            if returned is not None and check_source(use(where)).ok:
                found.append(f"{where}: {returned}")
    assert found == []


def test_the_module_walks_find_what_they_exist_to_catch(graph: tuple[set[str], dict[str, str]]) -> None:
    import torch

    _, aliases = graph
    assert aliases.get("numpy.emath") == "numpy.lib.scimath"
    assert aliases.get("torch.nn.modules.linear.F") == "torch.nn.functional"
    get_device_module = inspect.unwrap(torch.get_device_module)  # under functools.cache
    assert isinstance(get_device_module, types.FunctionType)
    assert _module_returned(get_device_module) == "return device_module"
    get_opt_einsum = torch.backends.opt_einsum.get_opt_einsum
    assert isinstance(get_opt_einsum, types.FunctionType)
    assert _module_returned(get_opt_einsum) == "return _opt_einsum"


if __name__ == "__main__":
    write_library_table(Path(__file__).resolve().parents[2] / "shared" / "policy" / "library.py")


# --- library code that evaluates annotations ----------------------------------------------------

# What evaluates strings as code, and the words that say it is about annotations.
_EVALUATING_CALLS = frozenset(
    {"eval", "exec", "_eval_type", "_evaluate", "get_type_hints", "evaluate_forward_ref"}
)
_ANNOTATION_WORDS = (b"annot", b"ForwardRef", b"type_hints", b"eval_str")
_EVALUATOR_STDLIB = (*sorted(ALLOWED_IMPORT_ROOTS - {"__future__"}), "inspect")

# Every function of the installed libraries that evaluates an annotation (or a string beside one)
# as code, with what keeps a variant's strings from it: the entry points that reach it, each
# refused by the policy, or why none need be.
ANNOTATION_EVALUATORS: dict[str, tuple[str, ...] | str] = {
    "typing:get_type_hints": ("typing.get_type_hints",),
    "typing:_eval_type": ("typing.get_type_hints", "typing.ForwardRef"),
    "functools:singledispatch": ("functools.singledispatch",),
    "functools:singledispatch.register": ("functools.singledispatch", "functools.singledispatchmethod"),
    "inspect:get_annotations": ("inspect",),
    "inspect:_signature_from_function": ("inspect",),
    "inspect:_signature_fromstr": ("inspect",),
    "dataclasses:_create_fn": "writes __init__ from field names, which are identifiers; values go in by reference",
    "collections:namedtuple": "writes __new__ from field names, which it checks are identifiers",
    "torch._library.infer_schema:infer_schema": "torch.library.custom_op, triton_op and infer_schema "
    "evaluate string annotations: the policy lets annotations be only type expressions, and strings "
    "in them only dotted names of types",
    "torch._library.infer_schema:infer_schema.convert_type_string": "as infer_schema",
    "triton.runtime.jit:create_function_from_signature": "writes a Triton kernel's annotations into "
    "source: the policy lets them be only triton.language types, classes and dotted names",
    "torch.jit.annotations:_eval_no_call": (
        "torch.jit.script",
        "torch.jit.script_method",
        "torch.jit.script_if_tracing",
        "torch.jit.interface",
        "torch.jit.trace",
        "torch.jit.trace_module",
        "torch.jit.annotations",
    ),
    "torch.jit.frontend:build_ignore_context_manager": ("torch.jit.script", "torch.jit.frontend"),
    "torch.fx.operator_schemas:_torchscript_type_to_python_type": "evaluates type names that torch's "
    "own schema parser produced",
    "torch.fx.graph_module:_exec_with_source": ("torch.fx",),
    "torch._export.serde.serialize:_dict_to_dataclass": ("torch.export",),
    "torch._dynamo.functional_export:dynamo_graph_capture_for_export": ("torch.export",),
    "torch._inductor.codegen.wrapper:PythonWrapperCodegen.generate_and_run_autotune_block": "runs the "
    "compiler's own generated code (it only mentions a variable annotation)",
    "torch.onnx._internal.exporter._schemas:op_signature_from_function": ("torch.onnx",),
    "torch.onnx._internal.torchscript_exporter.utils:_get_module_attributes": ("torch.onnx",),
    "torch.utils.data.datapipes._decorator:argument_validation": ("torch.utils.data",),
    "torch.utils.data.datapipes._typing:_dp_init_subclass": ("torch.utils.data",),
    "torch.distributed.flight_recorder.components.types:TypeInfo.from_type": ("torch.distributed",),
    "numpy.f2py.crackfortran:analyzeline": ("numpy.f2py",),
    "triton.language.core:_resolve_aggregate_fields": ("triton.aggregate",),
}


def _library_sources() -> Iterator[tuple[str, Path]]:
    for root in ("torch", "numpy", "triton"):
        spec = importlib.util.find_spec(root)
        assert spec is not None and spec.submodule_search_locations is not None
        base = Path(next(iter(spec.submodule_search_locations)))
        for path in base.rglob("*.py"):
            parts = path.relative_to(base.parent).with_suffix("").parts
            if not any(p in ("tests", "test", "testing") for p in parts):
                yield ".".join(parts).removesuffix(".__init__"), path
    for name in _EVALUATOR_STDLIB:
        spec = importlib.util.find_spec(name)
        if spec is not None and spec.origin is not None and spec.origin.endswith(".py"):
            yield name, Path(spec.origin)


def annotation_evaluators() -> dict[str, set[str]]:
    """`module:function` -> what it calls to evaluate strings, for each function of the libraries
    whose body evaluates strings and speaks of annotations. A byte search picks the files; only
    those are parsed."""
    found: dict[str, set[str]] = {}
    for module, path in _library_sources():
        data = path.read_bytes()
        if not any(word in data for word in _ANNOTATION_WORDS):
            continue
        if not any(f"{call}(".encode() in data for call in _EVALUATING_CALLS) and b"eval_str" not in data:
            continue
        lines = data.split(b"\n")
        stack: list[tuple[ast.AST, str]] = [(ast.parse(data), "")]
        while stack:
            node, prefix = stack.pop()
            for child in ast.iter_child_nodes(node):
                if isinstance(child, ast.ClassDef):
                    stack.append((child, f"{prefix}{child.name}."))
                elif isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    name = f"{prefix}{child.name}"
                    stack.append((child, f"{name}."))
                    text = b"\n".join(lines[child.lineno - 1 : child.end_lineno])
                    calls = _evaluating_calls(child)
                    if calls and any(word in text for word in _ANNOTATION_WORDS):
                        found[f"{module}:{name}"] = calls
    return found


def _evaluating_calls(function: ast.AST) -> set[str]:
    calls = set()
    for node in ast.walk(function):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        called = (
            func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else ""
        )
        if called in _EVALUATING_CALLS:
            calls.add(called)
        evaluates_strings = any(
            k.arg == "eval_str" and not (isinstance(k.value, ast.Constant) and not k.value.value)
            for k in node.keywords
        )
        if called in ("signature", "get_annotations") and evaluates_strings:
            calls.add(f"{called}(eval_str=True)")
    return calls


def test_every_library_function_that_evaluates_annotations_is_out_of_a_variants_reach() -> None:
    pytest.importorskip("torch")
    pytest.importorskip("triton")
    found = annotation_evaluators()

    unknown = sorted(set(found) - set(ANNOTATION_EVALUATORS))
    assert unknown == [], "decide how the policy keeps a variant's strings from each, and list it"
    entry_points = {
        e for entries in ANNOTATION_EVALUATORS.values() if isinstance(entries, tuple) for e in entries
    }
    assert [e for e in sorted(entry_points) if check_source(use(e)).ok] == []
    assert {"functools:singledispatch.register", "torch._library.infer_schema:infer_schema"} <= set(found)


# --- torch operators that view memory at an offset ----------------------------------------------

# Operators that point a tensor at a storage with a given offset and strides, and whether torch
# checks that the view stays inside the storage ("checked") or the policy refuses them.
STRIDED_VIEWS = {
    "as_strided": "checked",
    "as_strided_": "checked",
    "as_strided_copy": "refused",
    "as_strided_scatter": "refused",
    "set": "refused",
    "set_": "refused",
}


def test_every_operator_that_views_memory_at_an_offset_is_bounds_checked_or_refused() -> None:
    torch = pytest.importorskip("torch")
    ops: dict[str, set[str]] = {}
    for schema in torch._C._jit_get_all_schemas():
        namespace, _, name = schema.name.partition("::")
        takes_memory = any(a.name == "storage_offset" or "Storage" in str(a.type) for a in schema.arguments)
        if takes_memory and not name.startswith("_"):
            ops.setdefault(namespace, set()).add(name)

    namespaces = {ns for ns in ops if ns != "aten" and check_source(use(f"torch.ops.{ns}")).ok}
    assert namespaces == set(), "refuse the namespace, or judge its operators here"
    assert sorted(ops.get("aten", set()) - set(STRIDED_VIEWS)) == []
    for name, verdict in STRIDED_VIEWS.items():
        sources = [use(f"torch.ops.aten.{name}")]
        if hasattr(torch, name):
            sources.append(use(f"torch.{name}"))
        if hasattr(torch.Tensor, name):
            sources.append(f"def f(t):\n    return t.{name}\n")
        refused = [not check_source(source).ok for source in sources]
        assert refused == [verdict == "refused"] * len(sources), name
        if verdict == "checked":
            with pytest.raises(RuntimeError, match="requiring a storage size"):
                getattr(torch.ops.aten, name)(torch.zeros(4), [100], [1], 0)


# --- what asks torch for sparse tensors -----------------------------------------------------------


def _sparse_position(function: Callable[..., object]) -> int | None:
    """Where `sparse` falls among a callable's positional parameters, if it has one."""
    try:
        parameters = inspect.signature(function).parameters.values()
    except (TypeError, ValueError):
        return None
    positional = [p.name for p in parameters if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    return positional.index("sparse") if "sparse" in positional else None


def test_every_callable_that_takes_a_sparse_flag_positionally_is_held_before_it(
    attributes: list[tuple[str, object]],
) -> None:
    torch = pytest.importorskip("torch")
    found: dict[str, int] = {}

    def record(name: str, position: int | None) -> None:
        if position is not None:
            found[name] = min(position, found.get(name, position))

    for schema in torch._C._jit_get_all_schemas():
        name = schema.name.partition("::")[2]
        if not name.startswith("_"):
            record(name, next((i for i, a in enumerate(schema.arguments) if a.name == "sparse"), None))
    for path, value in attributes:
        if not (callable(value) and str(getattr(value, "__module__", "")).startswith("torch")):
            continue
        name = path.rsplit(".", 1)[-1]
        if isinstance(value, type):
            # The constructor's parameters, self aside, and any classmethod that builds one.
            init = _sparse_position(value)
            record(name, init)
            from_pretrained = getattr(value, "from_pretrained", None)
            if callable(from_pretrained):
                record("from_pretrained", _sparse_position(from_pretrained))
        else:
            record(name, _sparse_position(value))

    unheld = {
        name: position
        for name, position in found.items()
        if "sparse" not in name and SPARSE_FLAG_POSITIONS.get(name, position + 1) > position
    }
    assert unheld == {}
    assert {"Embedding", "embedding", "embedding_bag", "from_pretrained"} <= set(found)
