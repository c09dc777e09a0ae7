"""Ways around each rule of the static policy, and the refusal each one gets."""

from __future__ import annotations

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


@pytest.mark.parametrize(
    ("source", "expected"), [*MONKEYPATCHING, *DUNDERS, *FORBIDDEN_CALLS, *NATIVE, *IO, *HARNESS, *IMPORTS]
)
def test_the_bypass_is_refused_with_the_rules_code_on_its_line(
    source: str, expected: tuple[str, int]
) -> None:
    assert expected in found(source)
