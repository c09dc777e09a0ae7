"""The scorer: the process that owns the metric. It never runs variant code.

    python -m worker.execution.scorer --spec spec.json --train-py train.py --data-dir data --seed 1 \\
        --device cpu --events-fd 3 --control-fd 4 --result-fd 5

The supervisor starts it inside the sandbox; it starts the variant's host process as its child,
handing it only the events pipe (to the supervisor), a request and a response pipe (to itself)
and the shared eval buffers. Then it waits for the supervisor's `begin`, which comes with the val
shard's bytes (and the lease's held-out windows) only once the supervisor has seen training end
within budget. It builds the plan (worker.execution.plan), writes each request's inputs into the
shared buffer, reads the logits back, and computes float32 cross-entropy against targets the host
never saw. The probes compare numbers this process recorded; the host can answer wrongly, but it
cannot know which answer is checked against which. The result goes to the supervisor on a pipe
only this process holds.

The process makes itself non-dumpable first, so a process of the same uid (the host) can neither
read its memory through /proc nor attach to it.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import io
import json
import math
import os
import platform
import secrets
import signal
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from shared.run_codes import (
    CAUSALITY,
    CONTRACT_VIOLATION,
    CRASHED,
    FINITE_LOGITS,
    HARNESS_SETUP_FAILED,
    KILLED_BY_SIGNAL,
    NO_RESULT,
    OK,
    REJECTED,
    SLOW_FORWARD,
    STATELESSNESS,
)
from shared.track_spec import TrackSpec
from worker.execution import process_tree
from worker.execution.buffers import create_cpu_fd
from worker.execution.channels import ChannelClosed, ChannelError, ChannelTimeout, LineReader, write_message
from worker.execution.timing import configured_warmup, eval_cap, warmup_wait

# How far (nats) the loss at one position may move between two answers that must agree. An honest
# model runs the same kernels on the same shapes, so on a CPU, and with torch's deterministic
# forward kernels on a GPU, answers agree bit for bit; 1e-4 leaves room for float32 sums reordered
# by atomics. It also bounds what a cheat hiding under it can gain: under 1.5e-4 bits per byte,
# an order of magnitude below seed noise.
LOSS_TOLERANCE_NATS = 1e-4
# Evaluation is not training time. An honest model's forwards cost about the same, but a busy
# machine preempts some of them, so the checks are on totals: the forwards' time beyond their
# median may not exceed the median forwards' own time (or EXCESS_FLOOR_S), and all of them
# together may not exceed the track's evaluation cap (worker.execution.timing). Off-clock work
# that changes the model between answers is the statelessness probe's to catch.
EXCESS_FLOOR_S = 3.0
# No forward is waited for longer than this multiple of the fastest, plus the slack.
HARD_FACTOR = 8.0
HARD_SLACK_S = 2.0
# On a CPU the first forward may cost a few forwards (allocations, thread pools), no more. The
# floor allows for a loaded machine: an honest first forward was measured at 1.46 s (median
# 0.046 s) on a 2-core machine running a second training beside it.
CPU_WARMUP_FACTOR = 4.0
CPU_WARMUP_FLOOR_S = 2.5
# The replica: its start-up (an interpreter, torch, the variant, the model's copy) and its forwards.
REPLICA_START_S = 120.0
REPLICA_NICENESS = 10
REPLICA_FORWARD_S = 60.0
MAX_SNAPSHOT_BYTES = 64 << 30
SNAPSHOT_WAIT_S = 1.0
# How far the replica's answers may be from the model's: bit for bit on a CPU (same kernels, same
# threads); on CUDA a fresh process may pick other kernels, so each window's mean loss is compared.
REPLICA_TOLERANCE_NATS = LOSS_TOLERANCE_NATS
CUDA_REPLICA_WINDOW_NATS = 1e-3
POLL_S = 0.2
# How long the last sweep waits for what the variant left running to exit after SIGKILL.
SWEEP_TIMEOUT_S = 5.0


class Refused(Exception):
    """`from_host`: the variant's process gave this reason (and `parts`), not this process."""

    def __init__(
        self, status: str, code: str, reason: str, *, from_host: bool = False, parts: object = None
    ) -> None:
        super().__init__(reason)
        self.status, self.code, self.reason = status, code, reason
        self.from_host, self.parts = from_host, parts


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m worker.execution.scorer", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--spec", type=Path, required=True)
    parser.add_argument("--train-py", type=Path, required=True)
    parser.add_argument("--data-dir", type=Path, required=True)
    parser.add_argument("--seed", type=int, required=True)
    parser.add_argument("--device", choices=["cpu", "cuda"], required=True)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--events-fd", type=int, required=True, help="the host's events, to the supervisor")
    parser.add_argument("--control-fd", type=int, required=True, help="from the supervisor: begin, val bytes")
    parser.add_argument("--result-fd", type=int, required=True, help="to the supervisor: the result")
    parser.add_argument("--no-guard", action="store_true")
    parser.add_argument("--no-seccomp", action="store_true")
    parser.add_argument("--toolchain", action="append", default=[])
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    _make_undumpable()
    # What the variant starts and orphans stays in this tree, to be swept with it below.
    process_tree.become_subreaper()
    spec = TrackSpec.from_json(json.loads(args.spec.read_text(encoding="utf-8")))
    from_host, to_host = os.pipe()
    to_replica_read, to_replica = os.pipe()
    host = start_host(args, spec, extra_fds={"--snapshot-fd": to_host})
    # The replica starts now, beside the host, so its start-up costs no time after training; it
    # loads the variant only once the model's copy arrives.
    replica = start_host(args, spec, extra_fds={"--snapshot-fd": to_replica_read}, replica=True)
    with contextlib.suppress(OSError):
        # Its start-up must not slow the host's, whose training is about to start.
        os.setpriority(os.PRIO_PROCESS, replica.process.pid, REPLICA_NICENESS)
    for fd in (to_host, to_replica_read, args.events_fd):
        os.close(fd)
    snapshot = SnapshotRelay(from_host, to_replica)
    scorer = Scorer(args, spec, host=host, replica=replica, snapshot=snapshot)
    try:
        result = scorer.run()
    except Refused as refusal:
        result = {"status": refusal.status, "code": refusal.code, "reason": refusal.reason}
        if refusal.from_host:
            result.update(from_host=True, parts=refusal.parts)
    finally:
        for link in (host, replica):
            # Mid-request or not, the run is decided. os.kill, not Popen.kill: that one reaps a
            # host that has exited, and with it the peak memory _reap reads.
            with contextlib.suppress(ProcessLookupError):
                os.kill(link.process.pid, signal.SIGKILL)
    result.setdefault("host", {}).update(_reap(host.process))
    _reap(replica.process)
    write_message(args.result_fd, result)
    # Whatever the variant left running (a session of its own included), after the result: its
    # kill costs no run time (a fork bomb's hundreds of copies take seconds to tear down). The
    # supervisor kills this tree too once the result is in; this sweep covers the moment after
    # this process has exited, when its orphans would have gone to init.
    process_tree.kill_tree(os.getpid(), group=False, reap_timeout_s=SWEEP_TIMEOUT_S)
    process_tree.reap_children()
    return 0


class HostLink:
    """One host process as the scorer sees it: its pipes and the buffers shared with it."""

    def __init__(
        self, process: subprocess.Popen[bytes], *, request_fd: int, response_fd: int, buffers_fd: int | None
    ) -> None:
        self.process = process
        self.request_fd = request_fd
        self.responses = LineReader(response_fd)
        self.buffers_fd = buffers_fd
        self.handles: bytes | None = None  # CUDA: the IPC handles of the buffers made for this host

    def ask(self, message: dict[str, Any], *, timeout_s: float, slow: bool = False) -> dict[str, Any]:
        try:
            # A host that failed may have answered (and exited) before reading this: its answer
            # is still in the pipe, and says why.
            with contextlib.suppress(BrokenPipeError):
                write_message(self.request_fd, message)
            answer = self.responses.read_message(timeout_s)
        except ChannelTimeout:
            if slow:
                raise Refused(
                    CRASHED,
                    SLOW_FORWARD,
                    f"an evaluation forward was still running after {timeout_s:.2f}s, past what this"
                    " evaluation allows (worker/SANDBOX.md, honest time): evaluation is not training time",
                ) from None
            raise Refused(
                CRASHED, NO_RESULT, f"the variant's process did not answer within {timeout_s:g}s"
            ) from None
        except (ChannelClosed, BrokenPipeError, ChannelError) as exc:
            raise Refused(CRASHED, NO_RESULT, f"the variant's process stopped answering ({exc})") from exc
        return checked_answer(answer)


def checked_answer(answer: dict[str, Any]) -> dict[str, Any]:
    if answer.get("ok") is True:
        return answer
    status = str(answer["status"]) if answer.get("status") in (CRASHED, REJECTED) else CRASHED
    code = str(answer.get("code") or NO_RESULT)[:64]
    raise Refused(
        status,
        code,
        str(answer.get("reason") or "the variant's process refused")[:2000],
        from_host=True,
        parts=answer.get("parts"),
    )


def start_host(
    args: argparse.Namespace, spec: TrackSpec, *, extra_fds: dict[str, int], replica: bool = False
) -> HostLink:
    """Spawn a host with its own pipes (and shared buffers on a CPU); only those fds reach it."""
    buffers_fd = (
        create_cpu_fd(batch=spec.eval_batch_size, seq_len=spec.seq_len, vocab_size=spec.vocab_size)
        if args.device == "cpu"
        else None
    )
    request_read, request_write = os.pipe()
    response_read, response_write = os.pipe()
    command = [
        sys.executable, "-m", "worker.execution.host",
        "--spec", str(args.spec), "--train-py", str(args.train_py), "--data-dir", str(args.data_dir),
        "--seed", str(args.seed), "--device", args.device,
        "--events-fd", str(args.events_fd), "--request-fd", str(request_read), "--response-fd", str(response_write),
    ]  # fmt: skip
    if args.threads is not None:
        command += ["--threads", str(args.threads)]
    if buffers_fd is not None:
        command += ["--buffers-fd", str(buffers_fd)]
    if args.no_guard:
        command.append("--no-guard")
    if args.no_seccomp:
        command.append("--no-seccomp")
    if replica:
        command.append("--replica")
    for program in args.toolchain:
        command += ["--toolchain", program]
    for flag, fd in extra_fds.items():
        command += [flag, str(fd)]
    passed = (args.events_fd, request_read, response_write, *extra_fds.values())
    passed += (buffers_fd,) if buffers_fd is not None else ()
    # No other descriptor of this process (control, result, the other host's) reaches the host.
    process = subprocess.Popen(command, stdin=subprocess.DEVNULL, pass_fds=passed, close_fds=True)
    for fd in (request_read, response_write):
        os.close(fd)
    return HostLink(process, request_fd=request_write, response_fd=response_read, buffers_fd=buffers_fd)


class SnapshotRelay:
    """Carries the trained model's pickled copy from the host to the replica, in a thread, unread.

    The scorer never unpickles it: both ends are processes of the variant's."""

    def __init__(self, source_fd: int, target_fd: int) -> None:
        self._source_fd = source_fd
        self._target_fd = target_fd
        self._done = threading.Event()
        self.size: int | None = None
        self.problem: str | None = None
        threading.Thread(target=self._relay, name="snapshot", daemon=True).start()

    def wait(self, timeout_s: float) -> int:
        """The copy's size, once it has gone through; a refusal if the host never sent one whole."""
        if not self._done.wait(timeout_s) or self.size is None:
            raise Refused(
                REJECTED,
                CONTRACT_VIOLATION,
                "the variant's process ended training without a whole copy of its model"
                + (f" ({self.problem})" if self.problem else ""),
            )
        return self.size

    def _relay(self) -> None:
        reader = LineReader(self._source_fd)
        try:
            header = reader.read_message(None)
            size = header.get("snapshot_bytes")
            if not isinstance(size, int) or not 0 < size <= MAX_SNAPSHOT_BYTES:
                raise ChannelError(f"a copy of {str(size)[:20]} bytes")
            data = reader.read_exact(size, None)
            self.size = size
            self._done.set()  # the host sent it whole; the replica's reading is the replica's affair
            with contextlib.suppress(OSError):
                write_message(self._target_fd, {"snapshot_bytes": size}, data)
        except ChannelError as exc:
            self.problem = str(exc)
        finally:
            self._done.set()
            for fd in (self._source_fd, self._target_fd):
                with contextlib.suppress(OSError):
                    os.close(fd)


class Scorer:
    def __init__(
        self,
        args: argparse.Namespace,
        spec: TrackSpec,
        *,
        host: HostLink,
        replica: HostLink,
        snapshot: SnapshotRelay,
    ) -> None:
        self.args = args
        self.spec = spec
        self.host = host
        self.replica = replica
        self.snapshot = snapshot
        self.control = LineReader(args.control_fd, max_line=4096)
        self.device = args.device

    def run(self) -> dict[str, Any]:
        import numpy as np

        from shared.data_format import read_token_bytes
        from worker.execution.plan import holdout_set, make_plan, public_windows, replica_requests

        if self.device == "cuda":  # on a CPU this process needs no torch: numpy does the arithmetic
            import torch

            if self.args.threads is not None:
                torch.set_num_threads(self.args.threads)
        spec = self.spec
        try:
            token_bytes = read_token_bytes(
                self.args.data_dir / spec.assets.token_bytes, vocab_size=spec.vocab_size
            )
        except (OSError, ValueError) as exc:
            raise Refused(
                CRASHED, HARNESS_SETUP_FAILED, f"cannot read the track's byte table: {exc}"
            ) from exc
        buffers = self._open_buffers(self.host)

        val_bytes, holdout_bytes = self._wait_for_begin()
        # The host sends the model's copy before it says training has ended: a copy that has not
        # come by now never will, or comes from a host that said so early to train on.
        self.snapshot.wait(SNAPSHOT_WAIT_S)
        sets = [
            public_windows(_parse_val(val_bytes, spec), seq_len=spec.seq_len, eval_tokens=spec.eval_tokens)
        ]
        if holdout_bytes:
            windows = np.load(io.BytesIO(holdout_bytes), allow_pickle=False)
            if windows.dtype.kind not in "iu" or (windows.size and int(windows.max()) >= spec.vocab_size):
                raise Refused(
                    CRASHED, HARNESS_SETUP_FAILED, "the held-out windows are not tokens of this track"
                )
            sets.append(holdout_set(windows, seq_len=spec.seq_len))
        rng = np.random.default_rng(secrets.randbits(128))  # not the run's seed: the variant knows that
        plan = make_plan(sets, batch=spec.eval_batch_size, vocab_size=spec.vocab_size, rng=rng)

        self._share_buffers(self.host, buffers)
        bytes_per_token = np.asarray(token_bytes, dtype=np.int64)
        nats: list[np.ndarray] = []
        seconds: list[float] = []
        warmup_limit = warmup_wait(spec, self.device)
        cap = eval_cap(spec)
        fastest = math.inf
        compute_s = 0.0  # the host's own account of its forwards: the rest of each round trip is ours
        started = time.monotonic()
        for index, request in enumerate(plan.requests):
            limit = (
                warmup_limit
                if math.isinf(fastest)
                else max(warmup_limit, HARD_FACTOR * fastest + HARD_SLACK_S)
            )
            if index > 0:
                # Never wait past the evaluation's cap: check_speed would refuse the run anyway.
                limit = min(limit, max(0.0, cap - sum(seconds[1:])) + 0.001)
            began = time.monotonic()
            answer, request_nats = self._forward(
                self.host, buffers, request, plan, index=index, timeout_s=limit
            )
            took = time.monotonic() - began
            claimed = answer.get("compute_s")
            if isinstance(claimed, float) and 0 <= claimed <= took:
                compute_s += claimed
            seconds.append(took)
            if index > 0:
                fastest = min(fastest, took)
            nats.append(request_nats)
        finish = self.host.ask({"op": "finish"}, timeout_s=60.0)
        eval_seconds = time.monotonic() - started

        check_speed(
            seconds,
            warmup_limit=configured_warmup(spec) or (warmup_limit if self.device == "cuda" else None),
            cap=cap,
        )
        scores = score(plan, nats, bytes_per_token=bytes_per_token)
        check_consistency(plan, nats)
        checks = replica_requests(plan, batch=spec.eval_batch_size, rng=rng)
        check_replica(
            plan, nats, checks, self._replica_answers(checks, plan, warmup_limit), device=self.device
        )
        metrics: dict[str, Any] = {
            "val_bpb": scores["val"]["bpb"],
            "val_loss": scores["val"]["loss"],
            "num_params": _bounded_int(finish.get("num_params")),
        }
        if "holdout" in scores:
            metrics["holdout_bpb"] = scores["holdout"]["bpb"]
        if self.device == "cuda":
            metrics["peak_memory_bytes"] = _bounded_int(finish.get("peak_memory_bytes"))
        timings = sorted(seconds[1:]) or [0.0]
        return {
            "status": OK,
            "code": None,
            "reason": None,
            "metrics": metrics,
            "env": environment(device=self.device, threads=self.args.threads or os.cpu_count() or 1),
            "eval": {
                "forwards": len(seconds),
                "probe_forwards": sum(1 for r in plan.requests if r.kind in ("twin", "rescore", "warmup")),
                "replica_forwards": len(checks),
                "warmup_s": round(seconds[0], 4),
                "fastest_s": round(timings[0], 4),
                "median_s": round(timings[len(timings) // 2], 4),
                "slowest_s": round(timings[-1], 4),
                "seconds": round(eval_seconds, 3),
                "round_trips_s": round(sum(seconds), 4),
                "host_compute_s": round(compute_s, 4),
            },
        }

    def _open_buffers(self, link: HostLink) -> Any:
        from worker.execution import buffers as shared_buffers

        spec = self.spec
        shape = {"batch": spec.eval_batch_size, "seq_len": spec.seq_len, "vocab_size": spec.vocab_size}
        if link.buffers_fd is not None:
            return shared_buffers.open_cpu_arrays(link.buffers_fd, **shape)
        buffers, link.handles = shared_buffers.create_cuda(**shape, device="cuda")
        return buffers

    def _share_buffers(self, link: HostLink, buffers: Any) -> None:
        """On CUDA the host opens the scorer's device buffers by IPC, once, before the first forward."""
        if link.handles is not None:
            link.ask({"op": "buffers", "handles": link.handles.hex()}, timeout_s=60.0)

    def _forward(
        self, link: HostLink, buffers: Any, request: Any, plan: Any, *, index: int, timeout_s: float
    ) -> tuple[dict[str, Any], Any]:
        """One request: inputs into the shared buffer, the host's answer, our cross-entropy on its logits."""
        targets = plan.windows[request.rows, 1:]
        if self.device == "cuda":
            import torch

            buffers.x.copy_(torch.from_numpy(request.x))
            torch.cuda.synchronize()
            answer = link.ask({"op": "forward", "id": index}, timeout_s=timeout_s, slow=True)
            return answer, cuda_nats(buffers.logits, targets)
        buffers.x[...] = request.x
        answer = link.ask({"op": "forward", "id": index}, timeout_s=timeout_s, slow=True)
        return answer, cpu_nats(buffers.logits, targets)

    def _replica_answers(self, checks: list[Any], plan: Any, warmup_limit: float) -> list[Any]:
        replica = self.replica
        buffers = self._open_buffers(replica)
        try:
            checked_answer(replica.responses.read_message(REPLICA_START_S + warmup_limit))  # {"ready": true}
        except ChannelTimeout:
            raise Refused(CRASHED, NO_RESULT, "the model's fresh copy did not load in time") from None
        except ChannelError as exc:
            raise Refused(CRASHED, NO_RESULT, f"the model's fresh copy stopped answering ({exc})") from exc
        self._share_buffers(replica, buffers)
        answers = []
        for index, request in enumerate(checks):
            timeout = warmup_limit + HARD_SLACK_S if index == 0 else REPLICA_FORWARD_S
            answers.append(self._forward(replica, buffers, request, plan, index=index, timeout_s=timeout)[1])
        return answers

    def _wait_for_begin(self) -> tuple[bytes, bytes]:
        """Block until the supervisor says training is over; the host must stay alive meanwhile."""
        while True:
            try:
                message = self.control.read_message(POLL_S)
                break
            except ChannelTimeout:
                if self.host.process.poll() is not None:
                    raise host_ended(self.host.process.returncode) from None
            except ChannelError as exc:
                raise Refused(CRASHED, NO_RESULT, f"the supervisor's control channel broke: {exc}") from exc
        if message.get("op") != "begin":
            raise Refused(CRASHED, NO_RESULT, "the supervisor ended the run before evaluation")
        val_size, holdout_size = int(message.get("val_bytes", 0)), int(message.get("holdout_bytes", 0))
        return self.control.read_exact(val_size, 120.0), self.control.read_exact(holdout_size, 120.0)


def cpu_nats(logits: Any, targets: Any) -> Any:
    """Cross-entropy in nats at each position (B, T), float32, from (B, T, V) float32 logits."""
    import numpy as np

    if not np.isfinite(logits).all():
        raise _not_finite(np.argwhere(~np.isfinite(logits))[0].tolist())
    top = logits.max(axis=-1, keepdims=True)  # (B, T, 1)
    log_total = np.log(np.exp(logits - top).sum(axis=-1, dtype=np.float32)) + top[..., 0]  # (B, T)
    picked = np.take_along_axis(logits, targets[..., None], axis=-1)[..., 0]  # (B, T)
    return (log_total - picked).astype(np.float32)


def cuda_nats(logits: Any, targets: Any) -> Any:
    """The same on the device: the logits never leave it."""
    import numpy as np
    import torch

    if not bool(torch.isfinite(logits).all()):
        raise _not_finite((~torch.isfinite(logits)).nonzero()[0].tolist())
    y = torch.from_numpy(targets).to(logits.device)
    nats = torch.nn.functional.cross_entropy(
        logits.reshape(-1, logits.shape[-1]), y.reshape(-1), reduction="none"
    )
    return nats.view_as(y).cpu().numpy().astype(np.float32)


def _not_finite(where: list[int]) -> Refused:
    return Refused(
        REJECTED,
        FINITE_LOGITS,
        f"probe {FINITE_LOGITS}: logits contain non-finite values (NaN or inf), the first at (row, position,"
        f" token) {tuple(where)}",
    )


def host_ended(returncode: int) -> Refused:
    """The host exited before evaluation: by a signal (named), or with a status and no word."""
    if returncode < 0:
        try:
            name = signal.Signals(-returncode).name
        except ValueError:
            name = str(-returncode)
        return Refused(CRASHED, KILLED_BY_SIGNAL, f"the variant's process was killed by signal {name}")
    return Refused(
        CRASHED, NO_RESULT, f"the variant's process exited with code {returncode} before evaluation"
    )


def check_speed(seconds: list[float], *, warmup_limit: float | None, cap: float = math.inf) -> None:
    """Refuse a run whose evaluation forwards took far longer than their median.

    `warmup_limit` None judges the first forward against the others (a CPU run, which compiles
    nothing); otherwise it is the first forward's own allowance.
    """
    rest = seconds[1:]
    median = statistics.median(rest) if rest else 0.0
    if seconds:
        limit = (
            warmup_limit
            if warmup_limit is not None
            else max(CPU_WARMUP_FLOOR_S, CPU_WARMUP_FACTOR * median + 0.5)
        )
        if seconds[0] > limit:
            raise Refused(
                CRASHED,
                SLOW_FORWARD,
                f"the first evaluation forward took {seconds[0]:.2f}s (allowed {limit:.2f}s, the others' median"
                f" is {median:.3f}s): evaluation is not training time",
            )
    total = sum(rest)
    if total > cap:
        raise Refused(
            CRASHED,
            SLOW_FORWARD,
            f"the evaluation's forwards took {total:.2f}s, over this track's cap of {cap:.2f}s: evaluation is"
            " not training time",
        )
    excess = sum(max(0.0, t - median) for t in rest)
    allowed = max(EXCESS_FLOOR_S, median * len(rest))
    if excess > allowed:
        raise Refused(
            CRASHED,
            SLOW_FORWARD,
            f"evaluation forwards took {excess:.2f}s beyond their median of {median:.3f}s (allowed {allowed:.2f}s):"
            " evaluation is not training time",
        )


def score(plan: Any, nats: list[Any], *, bytes_per_token: Any) -> dict[str, dict[str, float]]:
    """Per set: bits per byte and mean loss over counted targets, each window from its scoring row."""
    import numpy as np

    totals = {name: [0.0, 0, 0] for name in plan.set_names}  # nats, bytes, tokens
    for request, request_nats in zip(plan.requests, nats, strict=True):
        if request.kind != "score":
            continue
        for row in np.flatnonzero(request.scored_rows):
            window = int(request.rows[row])
            targets = plan.windows[window, 1:]
            weight = bytes_per_token[targets]
            counted = plan.scored[window] & (weight > 0)
            total = totals[plan.set_names[plan.set_of[window]]]
            total[0] += float(request_nats[row][counted].sum(dtype=np.float64))
            total[1] += int(weight[counted].sum())
            total[2] += int(counted.sum())
    result = {}
    for name, (total_nats, total_bytes, total_tokens) in totals.items():
        if total_bytes == 0:
            raise Refused(CRASHED, HARNESS_SETUP_FAILED, f"the {name} windows hold no scorable tokens")
        result[name] = {"bpb": total_nats / (math.log(2) * total_bytes), "loss": total_nats / total_tokens}
    return result


def reference_nats(plan: Any, nats: list[Any]) -> dict[int, Any]:
    """Each window's losses as scored: from the scoring row that counted it."""
    import numpy as np

    reference: dict[int, Any] = {}
    for request, request_nats in zip(plan.requests, nats, strict=True):
        if request.kind == "score":
            for counted in np.flatnonzero(request.scored_rows):
                reference[int(request.rows[counted])] = request_nats[counted]
    return reference


def check_consistency(plan: Any, nats: list[Any]) -> None:
    """Every answer for a window must match its scoring answer: statelessness, then causality."""
    import numpy as np

    reference = reference_nats(plan, nats)
    seq_len = plan.windows.shape[1] - 1
    for kind in ("warmup", "score", "rescore", "twin"):
        for request, request_nats in zip(plan.requests, nats, strict=True):
            if request.kind != kind:
                continue
            for row, window in enumerate(request.rows):
                expected = reference[int(window)]
                cut = seq_len if request.cuts is None else int(request.cuts[row])
                moved = np.abs(request_nats[row][:cut] - expected[:cut])
                if not moved.size or float(moved.max()) <= LOSS_TOLERANCE_NATS:
                    continue
                position = int(np.argmax(moved > LOSS_TOLERANCE_NATS))
                raise _inconsistent(request, row=row, cut=cut, seq_len=seq_len, position=position,
                                    got=float(request_nats[row][:cut].mean()), want=float(expected[:cut].mean()),
                                    moved=float(moved.max()))  # fmt: skip


def check_replica(plan: Any, nats: list[Any], checks: list[Any], answers: list[Any], *, device: str) -> None:
    """The fresh copy's answers must be the model's: on a CPU bit for bit (to the usual tolerance),
    on CUDA each window's mean loss within CUDA_REPLICA_WINDOW_NATS."""
    import numpy as np

    reference = reference_nats(plan, nats)
    for request, request_nats in zip(checks, answers, strict=True):
        for row, window in enumerate(request.rows):
            expected, got = reference[int(window)], request_nats[row]
            if device == "cuda":
                moved = abs(float(got.mean()) - float(expected.mean()))
                bad = moved > CUDA_REPLICA_WINDOW_NATS
            else:
                moved = float(np.abs(got - expected).max())
                bad = moved > REPLICA_TOLERANCE_NATS
            if bad:
                raise Refused(
                    REJECTED,
                    STATELESSNESS,
                    f"probe {STATELESSNESS}: a fresh copy of the trained model, asked a window the model"
                    f" answered during evaluation, gave loss {float(got.mean()):.4f}, not {float(expected.mean()):.4f}"
                    f" (by {moved:.2g} nats): the model changed while it was evaluated",
                )


def _inconsistent(
    request: Any, *, row: int, cut: int, seq_len: int, position: int, got: float, want: float, moved: float
) -> Refused:
    if request.kind != "twin":
        return Refused(
            REJECTED,
            STATELESSNESS,
            f"probe {STATELESSNESS}: a window scored again gave loss {got:.4f}, not {want:.4f} (a position moved"
            f" by {moved:.2g} nats): a model's output must depend on its input alone, not on what it saw"
            " before or on chance",
        )
    if cut < seq_len:
        changed = f"token {cut}" if cut == seq_len - 1 else f"tokens {cut} to {seq_len - 1}"
        return Refused(
            REJECTED,
            CAUSALITY,
            f"probe {CAUSALITY}: logits at position {position} changed when {changed} changed",
        )
    return Refused(
        REJECTED,
        CAUSALITY,
        f"probe {CAUSALITY}: logits at position {position} of a row changed when other rows of its batch"
        " changed: the rows of a batch must not see each other",
    )


def environment(*, device: str, threads: int) -> dict[str, Any]:
    """Versions as installed (read without importing torch or triton on a CPU) and the device."""
    from importlib import metadata

    def version(package: str) -> str | None:
        try:
            return metadata.version(package)
        except metadata.PackageNotFoundError:
            return None

    env: dict[str, Any] = {
        "python": platform.python_version(),
        "torch": version("torch"),
        "triton": version("triton"),
        "numpy": version("numpy"),
        "device_name": _cpu_name(),
        "cuda": None,
        "threads": threads,
        # Which device a worker of several GPUs was pinned to (worker.gpus); None: not pinned.
        "cuda_visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES"),
    }
    if device == "cuda":
        import torch

        env.update(device_name=torch.cuda.get_device_name(), cuda=torch.version.cuda)
    return env


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.machine()


def _parse_val(data: bytes, spec: TrackSpec) -> Any:
    import numpy as np

    digest = hashlib.sha256(data).hexdigest()
    if digest != spec.assets.val:
        raise Refused(
            CRASHED,
            HARNESS_SETUP_FAILED,
            f"the {len(data)} val bytes received hash to {digest[:12]}, not the track's",
        )
    tokens = np.load(io.BytesIO(data), allow_pickle=False)
    if tokens.ndim != 1 or tokens.dtype not in (np.uint16, np.uint32):
        raise Refused(CRASHED, HARNESS_SETUP_FAILED, f"the val shard is not a token shard ({tokens.dtype})")
    return tokens


def _bounded_int(value: object) -> int | None:
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= 2**53 - 1:
        return value
    return None


def _reap(host: subprocess.Popen[bytes]) -> dict[str, Any]:
    """Wait for a host (killed already) and read its peak memory from the kernel, not from the host."""
    try:
        _, status, usage = os.wait4(host.pid, 0)
    except ChildProcessError:
        return {}  # reaped already (it ended before evaluation): its exit was reported then
    host.returncode = os.waitstatus_to_exitcode(status)
    return {"exit": host.returncode, "peak_rss_bytes": usage.ru_maxrss * 1024}


def _make_undumpable() -> None:
    """PR_SET_DUMPABLE 0: /proc/<pid>/mem and ptrace of this process are refused to its own uid."""
    import ctypes

    pr_set_dumpable = 4
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(pr_set_dumpable, 0, 0, 0, 0)


if __name__ == "__main__":
    sys.exit(main())
