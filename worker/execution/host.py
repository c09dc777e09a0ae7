"""The variant's process: train it under the context, then compute logits for what the scorer asks.

    python -m worker.execution.host --spec spec.json --train-py train.py --data-dir data --seed 1 \\
        --device cpu --events-fd 3 --request-fd 4 --response-fd 5 --buffers-fd 6

The scorer starts this process inside the sandbox. Everything here after the variant is imported
must be assumed hostile: the variant may run any Python in this process. So this process holds
nothing worth forging. It never sees the val shard, the targets or the score, only the input
windows of each request; it has no descriptor that leads to them or to the result. Its events
(progress, `train_finished`) are read by the supervisor as claims, never as facts.

Order: set up (torch, threads, train shards, the shared buffers), capture torch's settings, install
the run-time guard, send `train_started`, import the variant and call `train(ctx)`, revoke `ctx`,
send `train_finished`, then switch the model to eval mode without calling its overrides, restore
the settings, and answer forward requests until the scorer says `finish`.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import time
import traceback
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import torch

from shared.data_format import read_tokens
from shared.run_codes import (
    CHECKSUM,
    CONTRACT_VIOLATION,
    CRASHED,
    OUTPUT_DTYPE,
    OUTPUT_SHAPE,
    REJECTED,
    VARIANT_CRASHED,
)
from shared.track_spec import TrackSpec
from worker.execution import buffers as shared_buffers
from worker.execution import snapshot
from worker.execution.channels import ChannelError, LineReader, write_message
from worker.execution.context import TrainBatches, TrainClock, TrainContext
from worker.execution.crash import crash_parts, crash_reason
from worker.execution.failures import RunFailed, contract_violation, probe_failed
from worker.execution.guard import GuardConfig, install, readable_for_run
from worker.execution.modelstate import count_parameters, model_tensors, state_digests
from worker.execution.progress import ProgressChannel
from worker.execution.torch_state import TorchSettings

# The variant's module name, as `train.py` would have if run from its own folder.
VARIANT_MODULE = "train"
SETUP_FAILED = 2


class SetupError(Exception):
    """The run could not start for the worker's reasons (data, device): not the variant's fault."""


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m worker.execution.host", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--spec", type=Path, required=True)
    parser.add_argument("--train-py", type=Path, required=True)
    parser.add_argument("--data-dir", type=Path, required=True)
    parser.add_argument("--seed", type=int, required=True)
    parser.add_argument("--device", choices=["cpu", "cuda"], required=True)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--events-fd", type=int, required=True, help="events to the supervisor")
    parser.add_argument("--request-fd", type=int, required=True, help="requests from the scorer")
    parser.add_argument("--response-fd", type=int, required=True, help="answers to the scorer")
    parser.add_argument("--buffers-fd", type=int, default=None, help="the shared eval buffers (CPU)")
    parser.add_argument("--no-guard", action="store_true", help="do not install the run-time guard")
    parser.add_argument("--no-seccomp", action="store_true", help="the guard's audit hook only")
    parser.add_argument("--toolchain", action="append", default=[], help="a program libraries may run")
    parser.add_argument(
        "--snapshot-fd",
        type=int,
        default=None,
        help="the trained model's copy: written here, or read (replica)",
    )
    parser.add_argument(
        "--replica",
        action="store_true",
        help="load the model's copy instead of training, then answer requests",
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    events = ProgressChannel(args.events_fd)
    try:
        spec = TrackSpec.from_json(json.loads(args.spec.read_text(encoding="utf-8")))
        train_shards = set_up(args, spec, train_data=not args.replica)
    except (SetupError, OSError, ValueError, KeyError, TypeError) as exc:
        events.emit("setup_failed", reason=str(exc)[:500])
        print(f"host: error: {exc}", file=sys.stderr)
        return SETUP_FAILED
    buffers = (
        shared_buffers.open_cpu(
            args.buffers_fd, batch=spec.eval_batch_size, seq_len=spec.seq_len, vocab_size=spec.vocab_size
        )
        if args.buffers_fd is not None
        else None
    )
    settings = TorchSettings.capture()  # as evaluation needs them, before the variant can change any
    variant_path = args.train_py.resolve()
    if not args.no_guard:
        readable = [args.data_dir / digest for digest in (*spec.assets.train, spec.assets.token_bytes)]
        install(
            GuardConfig(
                variant_path=variant_path,
                scratch=Path.cwd(),
                readable=readable_for_run(readable),
                toolchain=tuple(Path(p) for p in args.toolchain),
                seccomp=not args.no_seccomp,
                events_fd=args.events_fd,
            )
        )
    if args.replica:
        return run_replica(args, settings=settings, buffers=buffers, variant_path=variant_path)
    clock = TrainClock(spec.time_budget_s)
    ctx = TrainContext(
        device=args.device,
        seed=args.seed,
        vocab_size=spec.vocab_size,
        seq_len=spec.seq_len,
        hardware_class=spec.hardware_class,
        track_id=spec.track_id,
        clock=clock,
        batches=TrainBatches(train_shards, seed=args.seed, device=args.device),
        progress=events,
    )
    events.emit("train_started", time_budget_s=spec.time_budget_s)
    clock.start()
    try:
        model = train_variant(variant_path, ctx)
        ctx.revoke()
        # On the clock: the copy the replica answers from is the model as train() returned it.
        if args.snapshot_fd is not None:
            send_snapshot(model, args.snapshot_fd)
    except RunFailed as failure:
        ctx.revoke()
        events.flush_progress()
        events.emit(
            "failed",
            status=failure.status,
            code=failure.code,
            reason=failure.reason,
            parts=failure.parts,
            steps=ctx.steps,
            tokens=ctx.tokens,
        )
        return 0
    end_training(ctx, events, device=args.device)
    requests = LineReader(args.request_fd)
    try:
        serve(
            model,
            requests=requests,
            response_fd=args.response_fd,
            buffers=buffers,
            settings=settings,
            args=args,
        )
    except ChannelError:
        return 0  # the scorer is gone: it decided the run already
    return 0


def set_up(args: argparse.Namespace, spec: TrackSpec, *, train_data: bool = True) -> list[np.ndarray]:
    if args.device == "cuda":
        if not torch.cuda.is_available():
            raise SetupError("--device cuda was asked for, but torch sees no CUDA device")
        torch.cuda.init()  # before the guard: the driver opens its device files and libraries now
        torch.cuda.reset_peak_memory_stats()
        warm_up_triton()
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    try:
        shards = [read_tokens(args.data_dir / digest) for digest in spec.assets.train] if train_data else []
    except (OSError, ValueError) as exc:
        raise SetupError(f"cannot read the track's train shards: {exc}") from exc
    # torch.optim imports torch._dynamo when the first optimizer is built: over a second on a CPU,
    # charged to whichever variant happened to build one. Done here, before the clock.
    import torch._dynamo as _dynamo  # noqa: F401

    random.seed(args.seed)
    np.random.seed(args.seed % 2**32)
    torch.manual_seed(args.seed)  # seeds every CUDA device too
    return shards


def warm_up_triton() -> None:
    """Load Triton's CUDA driver utilities now: the first use builds them with the C compiler, which
    is harness set-up, not the variant's time."""
    try:
        import triton

        triton.runtime.driver.active.get_current_device()
    except Exception as exc:  # a variant that does not use Triton must still run
        print(f"host: Triton's CUDA driver did not load ({exc})", file=sys.stderr)


def send_snapshot(model: torch.nn.Module, fd: int) -> None:
    """Pickle the trained model to the scorer, which hands it, unread, to a fresh replica process."""
    try:
        data = snapshot.dumps(model)
    except Exception as exc:
        raise contract_violation(
            f"the trained model cannot be copied ({type(exc).__name__}: {str(exc)[:200]}): the harness checks"
            " a fresh copy of it, so the model must pickle as torch.save(model) does (classes defined at the"
            " top level of train.py; lambdas and nested functions are fine)"
        ) from exc
    write_message(fd, {"snapshot_bytes": len(data)}, data)
    os.close(fd)


def run_replica(
    args: argparse.Namespace,
    *,
    settings: TorchSettings,
    buffers: shared_buffers.EvalBuffers | None,
    variant_path: Path,
) -> int:
    """A fresh copy of the trained model, from the snapshot the scorer passes on: it answers some of
    the windows the model answered during evaluation, in another order, and must answer alike."""
    try:
        data = read_snapshot(args.snapshot_fd)
        try:
            import_variant(variant_path)  # the model's classes live in train.py, as module "train"
        except (Exception, SystemExit) as exc:
            raise crash("importing train.py raised", exc, variant_path) from exc
        try:
            model = snapshot.loads(data)
        except Exception as exc:
            raise crash("loading the model's copy raised", exc, variant_path) from exc
        if not isinstance(model, torch.nn.Module):
            raise contract_violation(f"the model's copy is a {type(model).__name__}, not a torch.nn.Module")
        if args.device == "cuda":
            model = model.to("cuda")
    except RunFailed as failure:
        answer_failure(args.response_fd, failure)
        return 0
    write_message(args.response_fd, {"ok": True, "ready": True})
    try:
        serve(
            model,
            requests=LineReader(args.request_fd),
            response_fd=args.response_fd,
            buffers=buffers,
            settings=settings,
            args=args,
        )
    except ChannelError:
        return 0
    return 0


def read_snapshot(fd: int | None) -> bytes:
    if fd is None:
        raise contract_violation("the replica was started without the model's copy")
    reader = LineReader(fd)
    try:
        header = reader.read_message(120.0)
        return reader.read_exact(int(header["snapshot_bytes"]), 600.0)
    except (ChannelError, KeyError, TypeError, ValueError) as exc:
        raise contract_violation(f"the model's copy did not arrive whole ({exc})") from exc


def end_training(ctx: TrainContext, events: ProgressChannel, *, device: str) -> None:
    ctx.revoke()
    if device == "cuda":
        torch.cuda.synchronize()  # queued kernels are training time, not eval time
    events.flush_progress()
    events.emit("train_finished", steps=ctx.steps, tokens=ctx.tokens)


def train_variant(train_py: Path, ctx: TrainContext) -> torch.nn.Module:
    """Import `train_py` and call its `train(ctx)`; turn whatever goes wrong into RunFailed."""
    try:
        module = import_variant(train_py)
    except (Exception, SystemExit) as exc:
        raise crash("importing train.py raised", exc, train_py) from exc
    train = getattr(module, "train", None)
    if not callable(train):
        raise RunFailed(REJECTED, CONTRACT_VIOLATION, "train.py defines no train(ctx) function")
    try:
        model = train(ctx)
    except (Exception, SystemExit) as exc:
        raise crash("train() raised", exc, train_py) from exc
    if not isinstance(model, torch.nn.Module):
        raise RunFailed(
            REJECTED, CONTRACT_VIOLATION, f"train() returned {type(model).__name__}, not a torch.nn.Module"
        )
    return model


def import_variant(train_py: Path) -> ModuleType:
    import importlib.util

    spec = importlib.util.spec_from_file_location(VARIANT_MODULE, train_py)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {train_py.name}")
    module = importlib.util.module_from_spec(spec)
    # Registered before it runs, as a normal import is: dataclasses and torch.compile look it up.
    sys.modules[VARIANT_MODULE] = module
    spec.loader.exec_module(module)
    return module


def crash(what: str, exc: BaseException, train_py: Path) -> RunFailed:
    """A "crashed" failure; the whole traceback goes to stderr (the run's log) for whoever debugs it."""
    traceback.print_exception(exc, file=sys.stderr)
    return RunFailed(
        CRASHED,
        VARIANT_CRASHED,
        crash_reason(what, exc, variant_file=train_py),
        parts=crash_parts(what, exc, variant_file=train_py),
    )


# --- evaluation ---------------------------------------------------------------------------------


def switch_to_eval(model: torch.nn.Module) -> None:
    """`model.eval()` without calling any method the variant may have overridden on its modules.

    A module class that overrides `train` or `eval` is refused: the harness switches modes itself,
    and an override would be a place to work off the clock (training in the `train(False)` call
    the harness used to make).
    """
    stack: list[object] = [model]
    seen: set[int] = set()
    while stack:
        module = stack.pop()
        if id(module) in seen:
            continue
        seen.add(id(module))
        kind = type(module)
        for method in ("train", "eval"):
            if getattr(kind, method, None) is not getattr(torch.nn.Module, method):
                raise contract_violation(
                    f"{kind.__name__} overrides nn.Module.{method}(): the harness switches the model to"
                    " eval mode itself, so a model may not override train() or eval()"
                )
        if isinstance(getattr(kind, "training", None), property):
            raise contract_violation(
                f"{kind.__name__} defines `training` itself; it must be nn.Module's flag"
            )
        object.__getattribute__(module, "__dict__")["training"] = False
        children = object.__getattribute__(module, "__dict__").get("_modules", {})
        stack.extend(child for child in dict(children).values() if child is not None)


def serve(
    model: torch.nn.Module,
    *,
    requests: LineReader,
    response_fd: int,
    buffers: shared_buffers.EvalBuffers | None,
    settings: TorchSettings,
    args: argparse.Namespace,
) -> None:
    """Answer the scorer: `forward` requests until `finish`, then the checksum and the model's facts."""
    try:
        switch_to_eval(model)
        settings.restore(device=args.device)
        before = state_digests(model)
    except RunFailed as failure:
        answer_failure(response_fd, failure)
        return
    except Exception as exc:
        answer_failure(response_fd, crash("switching the model to eval mode raised", exc, args.train_py))
        return
    while True:
        message = requests.read_message(None)
        op = message.get("op")
        if op == "buffers":
            buffers = shared_buffers.open_cuda(bytes.fromhex(str(message["handles"])))
            write_message(response_fd, {"ok": True})
        elif op == "forward" and buffers is not None:
            try:
                compute_s = forward_into(model, buffers)
            except RunFailed as failure:
                answer_failure(response_fd, failure)
                return
            except Exception as exc:
                answer_failure(response_fd, crash("evaluation raised", exc, args.train_py))
                return
            write_message(
                response_fd, {"ok": True, "id": message.get("id"), "compute_s": round(compute_s, 6)}
            )
        elif op == "finish":
            answer_finish(model, before, response_fd=response_fd, device=args.device)
            return
        else:
            return  # the scorer never sends anything else


def forward_into(model: torch.nn.Module, buffers: shared_buffers.EvalBuffers) -> float:
    """The model's logits for the buffer's inputs, written back; returns the forward's own seconds.

    That figure is the host's claim, used only to report what the transfers cost beside it.
    """
    batch, seq_len, vocab_size = buffers.logits.shape
    # The model gets a copy: the shared buffer is the scorer's, and a model must not keep it.
    x = buffers.x.clone()
    started = time.perf_counter()
    with torch.no_grad():
        logits = model(x)
    if isinstance(logits, torch.Tensor) and logits.is_cuda:
        torch.cuda.synchronize()
    compute_s = time.perf_counter() - started
    check_logits(logits, batch=batch, seq_len=seq_len, vocab_size=vocab_size)
    with torch.no_grad():
        buffers.logits.copy_(logits.detach().to(torch.float32))
    if buffers.logits.is_cuda:
        torch.cuda.synchronize()
    return compute_s


def check_logits(logits: object, *, batch: int, seq_len: int, vocab_size: int) -> None:
    # `type() is`, not isinstance: a tensor subclass can redefine every operation applied to it.
    if type(logits) is not torch.Tensor:
        if isinstance(logits, torch.Tensor):
            raise probe_failed(
                OUTPUT_SHAPE,
                f"model returned a {type(logits).__name__}, a subclass of torch.Tensor;"
                " logits must be a plain torch.Tensor",
            )
        raise probe_failed(OUTPUT_SHAPE, f"model returned {type(logits).__name__}, not a tensor of logits")
    expected = (batch, seq_len, vocab_size)
    if tuple(logits.shape) != expected:
        raise probe_failed(
            OUTPUT_SHAPE,
            f"logits have shape {tuple(logits.shape)}; expected {expected} = (batch, seq_len, vocab_size)",
        )
    if not logits.is_floating_point():
        raise probe_failed(OUTPUT_DTYPE, f"logits have dtype {logits.dtype}; expected a floating-point dtype")


def answer_finish(model: torch.nn.Module, before: dict[str, str], *, response_fd: int, device: str) -> None:
    after = state_digests(model)
    if after.keys() != before.keys():
        added = [f"+{name}" for name in after if name not in before]
        removed = [f"-{name}" for name in before if name not in after]
        answer_failure(
            response_fd,
            probe_failed(
                CHECKSUM, f"the model's tensors changed during evaluation: {', '.join(added + removed)}"
            ),
        )
        return
    changed = [name for name, digest in before.items() if after[name] != digest]
    if changed:
        more = f" (and {len(changed) - 1} more)" if len(changed) > 1 else ""
        answer_failure(response_fd, probe_failed(CHECKSUM, f"{changed[0]} changed during evaluation{more}"))
        return
    facts: dict[str, Any] = {
        "num_params": count_parameters(model),
        "tensors": sum(1 for _ in model_tensors(model)),
    }
    if device == "cuda":
        facts["peak_memory_bytes"] = int(torch.cuda.max_memory_allocated())
    write_message(response_fd, {"ok": True, "finished": True, **facts})


def answer_failure(response_fd: int, failure: RunFailed) -> None:
    write_message(
        response_fd,
        {
            "ok": False,
            "status": failure.status,
            "code": failure.code,
            "reason": failure.reason,
            "parts": failure.parts,
        },
    )


if __name__ == "__main__":
    try:
        code = main()
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
    os._exit(code)  # no interpreter teardown: a variant's atexit or __del__ code gets no last word
