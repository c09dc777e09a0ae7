"""Shared by the red-team tests: a tiny real track, the executor a lease uses, and the runs.

Every run goes down the path a lease takes (`worker.execution.Executor.run`): the static policy,
then the sandbox, the supervisor, the scorer and the variant's host under the run-time guard.

A run costs seconds, nearly all of it two fresh interpreters importing torch (about 7 CPU-seconds
a run). So each module lists its runs as `CASES` (name -> Case) and its tests take the `case`
parameter; the first time a test asks for a run, every selected case of the session starts in
the background, `PARALLEL_RUNS` at a time, and each test waits for its own. Nothing in a case
depends on another run, and every deadline a case meets has room for a neighbour on the CPU.
"""

from __future__ import annotations

import dataclasses
import functools
import io
import re
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pytest

from shared.policy import PolicyReport
from shared.track_spec import TrackSpec
from tests.services import REQUIRED
from tests.trackfactory import build_track
from worker.execution import Executor, Outcome, RunRequest
from worker.execution.gate import policy_report
from worker.execution.sandbox import Sandbox, SandboxConfig

VARIANTS = Path(__file__).resolve().parent / "variants"
ROOT = Path(__file__).resolve().parents[2]
# A byte-level track (every token is one byte) with a short clock: an honest run takes a few seconds.
TIME_BUDGET_S = 1.5
GRACE_S = 1.0
SEED = 1
# Uniform logits over 256 one-byte tokens: exactly 8 bits per byte, the score of knowing nothing.
UNIFORM_BPB = 8.0
POLICY = "the static policy refused train.py: "
PARALLEL_RUNS = 3
# CPython 3.11 can raise a spurious "AST constructor recursion depth mismatch" when two threads
# build ASTs at once (python/cpython#106905), so this suite parses one source at a time: verdicts
# go into the executor's cache first, and a test that parses elsewhere holds `PARSING`.
PARSING = threading.Lock()

Track = tuple[TrackSpec, Path]
Edit = Callable[[str, Path, Track], str]


def variant(name: str) -> str:
    """The source of variants/<name>.py, or of the shipped baseline for "baseline"."""
    path = ROOT / "baseline" / "train.py" if name == "baseline" else VARIANTS / f"{name}.py"
    return path.read_text(encoding="utf-8")


@pytest.fixture(scope="session")
def track(tmp_path_factory: pytest.TempPathFactory) -> Track:
    return build_track(tmp_path_factory.mktemp("redteam-track"), time_budget_s=TIME_BUDGET_S, grace_s=GRACE_S)


@functools.cache
def executor(config: SandboxConfig | None = None) -> Executor:
    """What a lease runs in: every layer this machine has (or those `config` leaves on), on the CPU."""
    return Executor.detect(device="cpu", threads=1, config=config)


@dataclasses.dataclass(frozen=True)
class Case:
    """One run of a variant file, and how it is run."""

    variant: str
    enforce_policy: bool = True
    config: SandboxConfig | None = None  # None: every layer this machine has
    spec: tuple[tuple[str, Any], ...] = ()  # changes to the track's spec, e.g. (("grace_s", 3.0),)
    holdout: Callable[[Track], bytes] | None = None  # the lease's held-out windows
    edit: Edit | None = None  # (source, home, track) -> the source run; may plant files under home
    generate: Callable[[Track], str] | None = None  # the source, for a variant written per track


@dataclasses.dataclass(frozen=True)
class Run:
    outcome: Outcome
    home: Path  # the case's own folder; the run's scratch folder is home / "run"
    source: str  # as run

    @property
    def scratch(self) -> Path:
        return self.home / "run"

    def log(self) -> str:
        return (self.scratch / "harness.log").read_text(errors="replace")


def run_case(case: Case, home: Path, track: Track) -> Run:
    spec, data_dir = track
    if case.spec:
        spec = dataclasses.replace(spec, **dict(case.spec))
    (home / "run").mkdir(parents=True, exist_ok=True)
    source = case.generate(track) if case.generate is not None else variant(case.variant)
    if case.edit is not None:
        source = case.edit(source, home, track)
    policy_report_of(source)  # cached: the executor's own gate reads it back
    request = RunRequest(
        source=source,
        spec=spec,
        data_dir=data_dir,
        seed=SEED,
        workdir=home / "run",
        holdout=case.holdout(track) if case.holdout is not None else None,
    )
    return Run(executor(case.config).run(request, enforce_policy=case.enforce_policy), home, source)


class Pool:
    """Every selected case of the session, run `PARALLEL_RUNS` at a time from the first time one is
    asked for, in the order the tests will ask (modules overlap: no core idles at a module's end)."""

    def __init__(self, selected: list[tuple[ModuleType, str]], home: Path, track: Track) -> None:
        self._selected, self._home, self._track = selected, home, track
        self._pool: ThreadPoolExecutor | None = None
        self._futures: dict[tuple[str, str], Future[Run]] = {}

    def get(self, module: ModuleType, name: str) -> Run:
        if self._pool is None:
            self._pool = ThreadPoolExecutor(PARALLEL_RUNS, thread_name_prefix="redteam-run")
            for key in dict.fromkeys([(module, name), *self._selected]):
                self._submit(*key)
        if (module.__name__, name) not in self._futures:
            self._submit(module, name)
        return self._futures[module.__name__, name].result()

    def _submit(self, module: ModuleType, name: str) -> None:
        assert self._pool is not None
        home = self._home / module.__name__.rsplit(".", 1)[-1] / name.replace("/", "--")
        self._futures[module.__name__, name] = self._pool.submit(
            run_case, module.CASES[name], home, self._track
        )

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)


class Runs:
    """One module's view of the pool: `runs[name]` is the finished run of `CASES[name]`."""

    def __init__(self, pool: Pool, module: ModuleType) -> None:
        self._pool, self._module = pool, module

    def __getitem__(self, name: str) -> Run:
        return self._pool.get(self._module, name)


@pytest.fixture(scope="session")
def pool(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, track: Track
) -> Iterator[Pool]:
    selected = [
        (item.module, item.callspec.params["case"])
        for item in request.session.items
        if "case" in getattr(getattr(item, "callspec", None), "params", {})
        and item.callspec.params["case"] in getattr(item.module, "CASES", {})
    ]
    runs = Pool(list(dict.fromkeys(selected)), tmp_path_factory.mktemp("runs"), track)
    try:
        yield runs
    finally:
        runs.close()


@pytest.fixture(scope="module")
def runs(request: pytest.FixtureRequest, pool: Pool) -> Runs:
    return Runs(pool, request.module)


def decided(outcome: Outcome) -> tuple[str, str | None, str | None]:
    return outcome.status, outcome.layer, outcome.code


def assert_no_score(outcome: Outcome) -> None:
    """A run that was stopped carries no score: nothing a cheat did can be read as a result."""
    assert not {"val_bpb", "val_loss", "holdout_bpb"} & set(outcome.metrics), outcome.metrics


def policy_report_of(source: str) -> PolicyReport:
    with PARSING:
        return policy_report(source)


def policy_verdict(source: str) -> tuple[str, str] | None:
    """(code, "line N: code: message" of the first violation), or None when the policy passes it."""
    report = policy_report_of(source)
    if report.ok:
        return None
    first = report.violations[0]
    return first.code, first.describe()


def set_constant(source: str, name: str, value: object) -> str:
    """`source` with its one line `NAME = ...` (a variant's placeholder) set to `NAME = <value>`."""
    line = re.compile(rf"^{name} = .*$", re.MULTILINE)
    assert len(line.findall(source)) == 1, f"{name} is not a placeholder of this variant"
    return line.sub(lambda _: f"{name} = {value!r}", source)


def holdout_windows(count: int, *, seq_len: int) -> bytes:
    """A lease's held-out windows (.npy, (count, seq_len + 1)) from text of the track that the public
    val shard does not hold: the val documents past the tokens the shard was cut from."""
    from tests.trackfactory import _documents, _encode_documents

    _, val_docs = _documents()
    stream = _encode_documents(val_docs, merges=[])
    start = 8 * 1024  # well past the public shard's 4,097 tokens
    needed = count * (seq_len + 1)
    assert len(stream) >= start + needed, "the val documents are too short for these windows"
    windows = stream[start : start + needed].reshape(count, seq_len + 1).astype(np.uint16)
    buffer = io.BytesIO()
    np.save(buffer, windows, allow_pickle=False)
    return buffer.getvalue()


def require_layers(*names: str, config: SandboxConfig | None = None) -> None:
    """Skip (fail under ARN_REQUIRE_SERVICES=1) when a sandbox layer a test relies on is missing here."""
    report = Sandbox.detect(config, device="cpu").report
    for name in names:
        layer = report.layer(name)
        if not layer.active:
            message = f"the sandbox's {name} layer is {layer.state} on this machine ({layer.detail})"
            if REQUIRED:
                pytest.fail(f"{message}; ARN_REQUIRE_SERVICES=1 makes it mandatory", pytrace=False)
            pytest.skip(f"{message}; install bubblewrap (bwrap) to run this test")
