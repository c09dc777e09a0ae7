"""No false positives: honest train.py code of the kinds a small-GPT variant is made of."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from shared.policy import MAX_COMPRESSED_BYTES, MAX_LITERAL_BYTES, check_source, measure_data

BASELINE = Path(__file__).resolve().parents[2] / "baseline" / "train.py"

# A small GPT: dataclass config, attention with SDPA, cosine schedule, AdamW, compile, main guard.
SMALL_GPT = """\
'''A small GPT, trained for the harness's time budget.'''

from __future__ import annotations

import itertools
import math
import time
from dataclasses import dataclass, field
from functools import partial
from typing import Optional

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

torch.backends.cuda.matmul.allow_tf32 = True
torch.backends.cudnn.allow_tf32 = True
torch._inductor.config.coordinate_descent_tuning = True

DEPTH = 4
LR = 3e-4
WARMUP_STEPS = 20


@dataclass(frozen=True)
class GPTConfig:
    vocab_size: int = 8192
    seq_len: int = 256
    n_layer: int = DEPTH
    n_head: int = 4
    n_embd: int = 128
    dtype: torch.dtype = torch.bfloat16
    betas: tuple[float, float] = field(default_factory=lambda: (0.9, 0.95))


class CausalSelfAttention(nn.Module):
    def __init__(self, cfg: GPTConfig) -> None:
        super().__init__()
        self.n_head = cfg.n_head
        self.qkv = nn.Linear(cfg.n_embd, 3 * cfg.n_embd, bias=False)
        self.proj = nn.Linear(cfg.n_embd, cfg.n_embd, bias=False)

    def forward(self, x: Tensor) -> Tensor:
        B, T, C = x.size()
        q, k, v = self.qkv(x).split(C, dim=2)
        q = q.view(B, T, self.n_head, C // self.n_head).transpose(1, 2)  # (B, H, T, D)
        k = k.view(B, T, self.n_head, C // self.n_head).transpose(1, 2)
        v = v.view(B, T, self.n_head, C // self.n_head).transpose(1, 2)
        q, k = F.rms_norm(q, (q.size(-1),)), F.rms_norm(k, (k.size(-1),))
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        return self.proj(y.transpose(1, 2).contiguous().view(B, T, C))


class MLP(nn.Module):
    def __init__(self, cfg: GPTConfig):
        super().__init__()
        self.fc = nn.Linear(cfg.n_embd, 4 * cfg.n_embd, bias=False)
        self.proj = nn.Linear(4 * cfg.n_embd, cfg.n_embd, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(F.relu(self.fc(x)).square())


class Block(nn.Module):
    def __init__(self, cfg):
        super(Block, self).__init__()
        self.attn = CausalSelfAttention(cfg)
        self.mlp = MLP(cfg)

    def forward(self, x):
        x = x + self.attn(F.rms_norm(x, (x.size(-1),)))
        return x + self.mlp(F.rms_norm(x, (x.size(-1),)))


class GPT(nn.Module):
    def __init__(self, cfg: GPTConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.wte = nn.Embedding(cfg.vocab_size, cfg.n_embd)
        self.blocks = nn.ModuleList([Block(cfg) for _ in range(cfg.n_layer)])
        self.lm_head = nn.Linear(cfg.n_embd, cfg.vocab_size, bias=False)
        self.apply(self._init_weights)

    def _init_weights(self, module: nn.Module) -> None:
        if isinstance(module, (nn.Linear, nn.Embedding)):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)

    def forward(self, idx: Tensor, targets: Optional[Tensor] = None) -> Tensor:
        x = self.wte(idx)  # (B, T, C)
        for block in self.blocks:
            x = block(x)
        logits = self.lm_head(F.rms_norm(x, (x.size(-1),)))
        return 15 * torch.tanh(logits / 15)  # softcap


def lr_at(step: int, total: int) -> float:
    if step < WARMUP_STEPS:
        return LR * (step + 1) / WARMUP_STEPS
    progress = min(1.0, (step - WARMUP_STEPS) / max(1, total - WARMUP_STEPS))
    return LR * 0.5 * (1.0 + math.cos(math.pi * progress))


@torch.no_grad()
def estimate_norm(model: nn.Module) -> float:
    return sum(p.norm().item() for p in model.parameters())


def train(ctx) -> nn.Module:
    torch.manual_seed(ctx.seed)
    cfg = GPTConfig(vocab_size=ctx.vocab_size, seq_len=ctx.seq_len)
    model = GPT(cfg).to(ctx.device)
    model.lm_head.weight = model.wte.weight  # tie, on purpose
    compiled = torch.compile(model, dynamic=False, options={"max_autotune": False})
    opt = torch.optim.AdamW(model.parameters(), lr=LR, betas=cfg.betas, fused=True)
    batches = ctx.batches(16, ctx.seq_len)
    started = time.perf_counter()
    for step in itertools.count():
        if ctx.time_left() <= 0:
            break
        x, y = next(batches)
        for group in opt.param_groups:
            group["lr"] = lr_at(step, 1000)
        with torch.autocast(device_type=ctx.device.type, dtype=torch.bfloat16):
            logits = compiled(x)
            loss = F.cross_entropy(logits.float().view(-1, logits.size(-1)), y.view(-1))
        if not math.isfinite(loss.item()):
            raise FloatingPointError(f"loss is {loss.item()} at step {step}")
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        ctx.report(step=step, loss=loss.item())
    print(f"trained for {time.perf_counter() - started:.1f}s")
    return model


if __name__ == "__main__":
    print("train.py is run by the harness: worker run-local train.py")
"""

# A Muon optimizer subclassing torch.optim.Optimizer, a Triton kernel, an autograd.Function.
MUON_AND_TRITON = """\
'''Muon for matrices, AdamW for the rest.'''

import torch
import triton
import triton.language as tl
from torch import nn


@torch.compile
def zeropower_via_newtonschulz5(G: torch.Tensor, steps: int = 5) -> torch.Tensor:
    assert G.ndim >= 2
    a, b, c = (3.4445, -4.7750, 2.0315)
    X = G.bfloat16()
    if G.size(-2) > G.size(-1):
        X = X.mT
    X = X / (X.norm(dim=(-2, -1), keepdim=True) + 1e-7)
    for _ in range(steps):
        A = X @ X.mT
        B = b * A + c * A @ A
        X = a * X + B @ X
    if G.size(-2) > G.size(-1):
        X = X.mT
    return X


class Muon(torch.optim.Optimizer):
    '''Momentum, then orthogonalise each matrix update.'''

    def __init__(self, params, lr: float = 0.02, momentum: float = 0.95, nesterov: bool = True):
        defaults = dict(lr=lr, momentum=momentum, nesterov=nesterov)
        super().__init__(params, defaults)

    @torch.no_grad()
    def step(self, closure=None):
        for group in self.param_groups:
            for p in group["params"]:
                g = p.grad
                if g is None:
                    continue
                state = self.state[p]
                if "momentum_buffer" not in state:
                    state["momentum_buffer"] = torch.zeros_like(g)
                buf = state["momentum_buffer"]
                buf.lerp_(g, 1 - group["momentum"])
                g = g.lerp_(buf, group["momentum"]) if group["nesterov"] else buf
                g = zeropower_via_newtonschulz5(g)
                scale = max(1, p.size(-2) / p.size(-1)) ** 0.5
                p.add_(g.view_as(p), alpha=-group["lr"] * scale)
        torch._foreach_mul_([p for p in self.param_groups[0]["params"]], 1.0)


def split_params(model: nn.Module):
    matrices = [p for n, p in model.named_parameters() if p.ndim == 2 and "wte" not in n]
    others = [p for n, p in model.named_parameters() if p.ndim != 2 or "wte" in n]
    return matrices, others


@triton.jit
def _relu2_kernel(X, Y, N, BLOCK: tl.constexpr):
    pid = tl.program_id(0)
    offs = pid * BLOCK + tl.arange(0, BLOCK)
    mask = offs < N
    x = tl.load(X + offs, mask=mask)
    x = tl.maximum(x, 0.0)
    tl.store(Y + offs, x * x, mask=mask)


def relu2(x: torch.Tensor) -> torch.Tensor:
    y = torch.empty_like(x)
    n = x.numel()
    grid = lambda meta: (triton.cdiv(n, meta["BLOCK"]),)  # noqa: E731
    _relu2_kernel[grid](x, y, n, BLOCK=1024)
    return y


class Relu2(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        ctx.scale = 2.0
        return relu2(x)

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return grad * ctx.scale * torch.relu(x)


def make_optimizers(model: nn.Module):
    matrices, others = split_params(model)
    return [Muon(matrices), torch.optim.AdamW(others, lr=3e-4, betas=(0.8, 0.95), eps=1e-10)]


def forward_hook_free(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    if type(x) is not torch.Tensor:
        raise TypeError("expected a plain tensor")
    return model(x)


def train(input_ctx):
    model = nn.Sequential(nn.Linear(8, 8))
    optimizers = make_optimizers(model)
    for opt in optimizers:
        opt.zero_grad()
    return model
"""

# Allowed standard library modules, numpy statistics and the project's Triton kernels.
STDLIB_NUMPY_AND_KERNELS = """\
import collections
import contextlib
import enum
import random
import statistics
import warnings
from collections.abc import Iterator
from typing import NamedTuple

import numpy as np
import torch
from shared.kernels import fused_rmsnorm
from shared.kernels.rmsnorm import rmsnorm_fwd
import shared.kernels.cross_entropy as kce


class Phase(enum.Enum):
    WARMUP = "warmup"
    STABLE = "stable"


class Sample(NamedTuple):
    step: int
    loss: float


def schedule(step: int) -> Phase:
    return Phase.WARMUP if step < 10 else Phase.STABLE


def smooth(history: collections.deque) -> float:
    return statistics.fmean(history) if history else float("nan")


def shuffled(xs: list[int], seed: int) -> list[int]:
    rng = random.Random(seed)
    out = list(xs)
    rng.shuffle(out)
    return out


def stats(x: torch.Tensor) -> dict[str, float]:
    arr = x.detach().float().cpu().numpy()
    return {"mean": float(np.mean(arr)), "std": float(arr.std())}


def norm(x, w):
    if x.is_cuda:
        return fused_rmsnorm(x, w)
    return torch.nn.functional.rms_norm(x, (x.size(-1),), w)


def loop(ctx) -> Iterator[Sample]:
    recent: collections.deque = collections.deque(maxlen=20)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for step, (x, y) in enumerate(ctx.batches(8, ctx.seq_len)):
            loss = float(step)
            recent.append(loss)
            yield Sample(step, smooth(recent))


def forward(self, input):
    return input * 2


def train(ctx):
    with contextlib.nullcontext():
        for sample in loop(ctx):
            if sample.step > 3 or ctx.time_left() < 0:
                break
    return torch.nn.Identity()
"""

# A custom operator, checkpointing, compiler settings, namedtuples and fused optimizer ops.
CUSTOM_OPS_AND_SETTINGS = """\
'''Custom ops, checkpointing and small utilities, as a research variant might use them.'''

from __future__ import annotations

import enum
import math
from collections import namedtuple
from typing import NamedTuple, Optional

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.checkpoint import checkpoint

torch._dynamo.config.cache_size_limit = 64
torch.backends.cudnn.benchmark = True
Tensors = list[torch.Tensor]
Stats = namedtuple("Stats", ["loss", "tokens"])


class Schedule(enum.Enum):
    COSINE = "cosine"
    LINEAR = "linear"


class Shape(NamedTuple):
    batch: int
    seq: int


@torch.library.custom_op("variant::scaled_mm", mutates_args=())
def scaled_mm(a: torch.Tensor, b: torch.Tensor, scale: float) -> torch.Tensor:
    return (a @ b) * scale


@scaled_mm.register_fake
def _(a: torch.Tensor, b: torch.Tensor, scale: float) -> torch.Tensor:
    return a.new_empty(a.shape[0], b.shape[1])


class ScaledLinear(nn.Module):
    def __init__(self, d_in: int, d_out: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(d_out, d_in) / math.sqrt(d_in))
        self._cache: Optional[torch.Tensor] = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if type(x) is not torch.Tensor:
            raise TypeError("plain tensors only")
        norm = getattr(F, "rms_norm", None)
        if norm is not None and hasattr(F, "rms_norm"):
            x = norm(x, (x.size(-1),))
        return scaled_mm(x, self.weight.t(), 1.0)


class Stack(nn.Module):
    def __init__(self, depth: int, width: int) -> None:
        super(Stack, self).__init__()
        self.layers = nn.ModuleList(ScaledLinear(width, width) for _ in range(depth))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self.layers:
            x = x + checkpoint(layer, x, use_reentrant=False)
        return x


def lr_factor(step: int, total: int, kind: Schedule = Schedule.COSINE) -> float:
    progress = step / max(1, total)
    if kind is Schedule.COSINE:
        return 0.5 * (1 + math.cos(math.pi * progress))
    return 1 - progress


@torch.no_grad()
def decay(params: Tensors, factor: float) -> None:
    torch._foreach_mul_(params, factor)


def count(model: nn.Module) -> int:
    return sum(p.numel() for m in model.modules() if isinstance(m, nn.Module) for p in m.parameters(recurse=False))


def train(ctx) -> nn.Module:
    shape = Shape(batch=8, seq=ctx.seq_len)._replace(batch=4)
    model = Stack(depth=2, width=32).to(ctx.device)
    fast = torch.compile(model, mode="max-autotune-no-cudagraphs", options={"epilogue_fusion": True})
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    stats = Stats(loss=float("inf"), tokens=0)
    step = 0
    while ctx.time_left() > 0:
        x = torch.randn(shape.batch, 32, device=ctx.device)
        loss = fast(x).square().mean()
        loss.backward()
        for group in opt.param_groups:
            group["lr"] = 0.1 * lr_factor(step, 100)
        opt.step()
        opt.zero_grad(set_to_none=True)
        decay([p for p in model.parameters()], 0.999)
        stats = stats._replace(loss=loss.item(), tokens=stats.tokens + x.numel())
        step += 1
    print(stats._asdict(), count(model))
    return model
"""


@pytest.mark.parametrize(
    "source",
    [SMALL_GPT, MUON_AND_TRITON, STDLIB_NUMPY_AND_KERNELS, CUSTOM_OPS_AND_SETTINGS],
    ids=["small-gpt", "muon-and-triton", "stdlib-numpy-and-kernels", "custom-ops-and-settings"],
)
def test_honest_train_py_code_passes(source: str) -> None:
    assert check_source(source).summary() == ""


@pytest.mark.skipif(not BASELINE.exists(), reason="baseline/train.py is not in this checkout")
def test_the_baseline_train_py_passes() -> None:
    assert check_source(BASELINE.read_text(encoding="utf-8")).summary() == ""


@pytest.mark.parametrize(
    "source",
    [
        "def forward(self, input):\n    return input\n",
        "def f():\n    compile = True\n    return compile\n",
        "def f(open=False):\n    return [open for open in range(3)]\n",
        "def f():\n    eval = 1\n    return lambda: eval\n",
    ],
    ids=["input-parameter", "local-named-compile", "comprehension-variable", "closure-over-a-local"],
)
def test_a_local_that_shadows_a_refused_builtin_is_not_the_builtin(source: str) -> None:
    assert check_source(source).ok


@pytest.mark.parametrize(
    "source",
    [
        "import torch\ndef kind(x):\n    match x:\n        case torch.Tensor():\n            return 'tensor'\n",
        "class Timer:\n    def __init__(self, clock):\n        self.time = clock\n        self.code = 0\n",
        "import torch\nTensors = dict[str, torch.Tensor]\nok = isinstance(1, (torch.Tensor, int))\n",
        "from typing import cast\nfrom torch import Tensor\ndef f(x):\n    return cast(Tensor, x)\n",
    ],
    ids=[
        "match-on-tensor-class",
        "attributes-named-like-modules",
        "generic-alias-and-isinstance-tuple",
        "typing-cast",
    ],
)
def test_naming_harness_classes_and_module_like_attributes_in_inert_places_passes(source: str) -> None:
    assert check_source(source).ok


def test_private_attributes_are_fine_on_self_and_cls() -> None:
    source = textwrap.dedent(
        """\
        class Cache:
            def __init__(self):
                self._store = {}

            @classmethod
            def _fresh(cls):
                return cls()

            def get(self, key):
                def load():
                    return self._store.get(key)
                return load()
        """
    )
    assert check_source(source).ok


# Every documented TF32/precision switch of current PyTorch, old and new. The harness restores
# these before it evaluates, so a variant may leave any of them set.
PRECISION_SETTINGS = """\
import torch
from torch.backends import cudnn
from torch.nn.attention import SDPBackend, sdpa_kernel

torch.set_float32_matmul_precision("high")
torch.backends.cuda.matmul.allow_tf32 = True
torch.backends.cudnn.allow_tf32 = True
torch.backends.cudnn.benchmark = True
torch.backends.cudnn.deterministic = False
torch.backends.cuda.matmul.allow_bf16_reduced_precision_reduction = True
torch.backends.cuda.matmul.allow_fp16_reduced_precision_reduction = True
torch.backends.fp32_precision = "tf32"
torch.backends.cuda.matmul.fp32_precision = "tf32"
torch.backends.cudnn.fp32_precision = "ieee"
torch.backends.cudnn.conv.fp32_precision = "tf32"
torch.backends.cudnn.rnn.fp32_precision = "none"
cudnn.conv.fp32_precision = "tf32"
torch.backends.mkldnn.fp32_precision = "bf16"
torch.backends.mkldnn.matmul.fp32_precision = "bf16"
torch.backends.mkldnn.conv.fp32_precision = "tf32"
torch.backends.mkldnn.rnn.fp32_precision = "ieee"
setattr(torch.backends.cuda.matmul, "fp32_precision", "ieee")
torch.backends.cuda.enable_flash_sdp(True)
torch.backends.cuda.enable_mem_efficient_sdp(True)
torch.backends.cuda.enable_cudnn_sdp(False)
torch.backends.cuda.enable_math_sdp(False)
torch._dynamo.config.cache_size_limit = 64
torch._dynamo.config.capture_scalar_outputs = True
torch._inductor.config.coordinate_descent_tuning = True
torch._inductor.config.triton.unique_kernel_names = True


def attention(q, k, v):
    with sdpa_kernel([SDPBackend.FLASH_ATTENTION, SDPBackend.EFFICIENT_ATTENTION]):
        return torch.nn.functional.scaled_dot_product_attention(q, k, v, is_causal=True)
"""

# __slots__ in each form Python accepts for a fixed set of names.
SLOTS = """\
class Point:
    __slots__ = ("x", "y")

    def __init__(self, x: float, y: float) -> None:
        self.x = x
        self.y = y


class Counter:
    __slots__ = ["count", "__hidden"]


class Single:
    __slots__ = "value"


class Empty:
    __slots__ = ()
"""


@pytest.mark.parametrize("source", [PRECISION_SETTINGS, SLOTS], ids=["precision-settings", "slots"])
def test_honest_settings_and_slots_pass(source: str) -> None:
    assert check_source(source).summary() == ""


# Annotations of every kind honest code writes (they may only name types), numpy arrays named
# where naming them builds nothing, and the decorators whose arguments the policy checks.
ANNOTATIONS_AND_DECORATORS = """\
import collections
import dataclasses
import functools
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Final, Literal, NamedTuple, Optional, TypeVar, Union

import numpy as np
import numpy.typing as npt
import torch
import torch.nn as nn
import triton
import triton.language as tl
from torch import Tensor

T = TypeVar("T")
Tensors = list[torch.Tensor]
Array = np.ndarray
MAX_STEPS: Final = 10
Reduction = Literal["mean", "sum"]


@dataclass(frozen=True)
class Config:
    width: int = 64
    dtype: torch.dtype = torch.bfloat16
    betas: tuple[float, float] = field(default_factory=lambda: (0.9, 0.95))
    names: ClassVar[Sequence[str]] = ()
    schedule: Literal["cosine", "linear"] = "cosine"


@dataclasses.dataclass
class Batch:
    x: Tensor
    y: Optional["Tensor"] = None


class Sample(NamedTuple):
    step: int
    loss: float


class Node:
    def __init__(self, parent: Optional["Node"] = None, children: list["Node"] | None = None) -> None:
        self.parent = parent
        self.children = children or []


class Block(nn.Module):
    def forward(self, x: Tensor, mask: Tensor | None = None, *args: Any, **kwargs: Any) -> Tensor:
        return x


def identity(x: T) -> T:
    return x


def apply(fn: Callable[[Tensor], Tensor], xs: Tensors) -> Iterator[Tensor]:
    return (fn(x) for x in xs)


def stats(a: npt.NDArray[np.float32], b: Array, c: np.ndarray) -> dict[str, float]:
    if not isinstance(c, np.ndarray):
        raise TypeError("expected an array")
    return {"mean": float(a.mean()), "width": float(np.zeros(3, dtype=np.float32).sum())}


def reduce(x: Tensor, how: Reduction = "mean", mode: Literal["a", "b"] = "a") -> Tensor:
    recent: collections.deque = collections.deque(maxlen=4)
    return x.as_strided((1,), (1,))


def history(d: collections.deque[float], u: Union[int, float], cfg: "Config") -> "Sample":
    return Sample(0, 0.0)


@triton.jit
def kernel(x_ptr, y_ptr, n: int, BLOCK: tl.constexpr, EVEN: "tl.constexpr"):
    pass


def logged(fn):
    @functools.wraps(fn)
    def inner(*args, **kwargs):
        return fn(*args, **kwargs)

    return inner


@torch.library.custom_op("variant::scale", mutates_args=())
def scale(x: torch.Tensor, s: float, opt: Optional[torch.Tensor] = None) -> torch.Tensor:
    return x * s


@torch.compile
def fused(x: Tensor) -> Tensor:
    return x * 2


def train(ctx) -> nn.Module:
    return Block()
"""


@pytest.mark.parametrize("future", [False, True], ids=["annotations-evaluated", "from-future-annotations"])
def test_honest_annotations_and_decorators_pass(future: bool) -> None:
    prefix = "from __future__ import annotations\n\n" if future else ""

    assert check_source(prefix + ANNOTATIONS_AND_DECORATORS).summary() == ""


@pytest.mark.skipif(not BASELINE.exists(), reason="baseline/train.py is not in this checkout")
def test_the_baseline_carries_under_a_quarter_of_each_data_cap() -> None:
    figures = measure_data(BASELINE.read_text(encoding="utf-8"))
    assert figures.literal_bytes < MAX_LITERAL_BYTES / 4
    assert figures.compressed_bytes < MAX_COMPRESSED_BYTES / 4


@pytest.mark.parametrize(
    "source",
    [SMALL_GPT, MUON_AND_TRITON, STDLIB_NUMPY_AND_KERNELS, CUSTOM_OPS_AND_SETTINGS, PRECISION_SETTINGS],
    ids=["small-gpt", "muon-and-triton", "stdlib-numpy-and-kernels", "custom-ops-and-settings", "settings"],
)
def test_honest_sources_carry_a_small_fraction_of_each_data_cap(source: str) -> None:
    figures = measure_data(source)
    assert figures.literal_bytes < MAX_LITERAL_BYTES / 20
    assert figures.compressed_bytes < MAX_COMPRESSED_BYTES / 20
