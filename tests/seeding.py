"""A coordinator database with a track whose history shows every outcome, made through the real API.

`seed(database_url, data_dir)` drives the in-process app (tests/inprocess.py) the way volunteers
do: the baseline is calibrated, explore runs claim gains, verify runs from other accounts promote
them, calibration runs audit each new head. It leaves two promotions on the lineage, a rejected
claim, a discarded experiment, a crashed one, and one candidate awaiting verification. A real
`coordinator serve` then serves the same database: give it

    ARN_DATABASE_URL=<database_url>  ARN_DATA_DIR=<data_dir>  ARN_CREATE_BUILTIN_TRACKS=false

(the data dir holds the coordinator's signing key that `seed` created, so both sign alike).
`promote_pending(database_url, data_dir)` later promotes the waiting candidate, audits it, and
leaves a new candidate waiting, so a test can watch the lineage grow by one commit.

Values are fixed, not random: every head scores `SCORES[i]` on every machine, so each claim,
verification and audit agrees with the others, and the refuted claim is refuted by far.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from fastapi.testclient import TestClient
from sqlalchemy import select

from coordinator.config import Settings
from coordinator.main import create_app
from coordinator.models import Track, Variant, utcnow
from coordinator.services.tracks import TrackParams
from shared.protocol import VariantStatus
from tests.inprocess import BASELINE, Coordinator, Worker, add_track

SEEDED_TRACK = "seeded-track"
AUTHOR, VERIFIER, REFUTED_AUTHOR = "alice", "bob", "mallory"
# The head's score after 0, 1, 2, ... promotions (a step of 0.05 is 5σ on this track).
SCORES = tuple(round(1.0 - 0.05 * i, 2) for i in range(20))
_PARAMS = TrackParams(
    id=SEEDED_TRACK, name="Seeded track", hardware_class="cpu", vocab_size=256, seq_len=32, eval_tokens=1024,
    eval_batch_size=4, time_budget_s=10.0, grace_s=2.0, quorum=1, tolerance=0.05, calibration_runs=2,
    noise_sigma=0.01,
)


@dataclass(frozen=True)
class SeededTrack:
    """What `seed` made, by variant hash."""

    track_id: str
    baseline: str
    verified: tuple[str, ...]  # in promotion order; the last is the head
    rejected: str
    discarded: str
    crashed: str
    candidate: str  # awaiting verification

    @property
    def head(self) -> str:
        return self.verified[-1] if self.verified else self.baseline


def settings_for(database_url: str, data_dir: Path) -> Settings:
    """The settings `seed` runs under: no built-in track, no spot checks (so the next lease is known)."""
    return Settings(
        data_dir=data_dir, database_url=database_url, create_builtin_tracks=False,
        spot_check_rate_untrusted=0.0, spot_check_rate_trusted=0.0,
    )


def server_env(database_url: str, data_dir: Path) -> dict[str, str]:
    """The `ARN_*` variables under which `coordinator serve` reads what `seed` wrote."""
    return {"ARN_DATABASE_URL": database_url, "ARN_DATA_DIR": str(data_dir), "ARN_CREATE_BUILTIN_TRACKS": "false"}


@contextmanager
def _coordinator(database_url: str, data_dir: Path) -> Iterator[Coordinator]:
    # The real clock, not a fake one: a server started later must not find these leases and
    # candidates long expired.
    app = create_app(settings_for(database_url, data_dir), clock=utcnow, run_reaper=False)
    with TestClient(app) as client:
        yield Coordinator(client=client, clock=utcnow, settings=app.state.arn.settings)


class _Volunteers:
    """The seed's workers, registered on first use under fixed account names."""

    def __init__(self, coordinator: Coordinator) -> None:
        self.coordinator = coordinator
        self.workers: dict[str, Worker] = {}

    def __call__(self, account: str) -> Worker:
        if account not in self.workers:
            worker = Worker(self.coordinator, f"{account}-cpu", account, track_id=SEEDED_TRACK)
            self.workers[account] = worker.register()
        return self.workers[account]

    def lease(self, account: str, kind: str) -> tuple[Worker, dict]:
        worker = self(account)
        lease = worker.lease()
        assert lease is not None and lease["kind"] == kind, (account, kind, lease)
        return worker, lease


def _head(coordinator: Coordinator) -> tuple[str, int]:
    """The head's hash and how many promotions it is from the baseline."""
    with coordinator.session() as session:
        track = session.get(Track, SEEDED_TRACK)
        depth, variant = 0, track.head
        while variant.parent is not None:
            depth, variant = depth + 1, variant.parent
        return track.head.hash, depth


def _audit(volunteers: _Volunteers, head: str, depth: int) -> None:
    """The new head's calibration by two accounts that took no part in its promotion."""
    for i in range(_PARAMS.calibration_runs):
        worker, lease = volunteers.lease(f"auditor-{head[:8]}-{i}", "calibrate")
        worker.run(lease, SCORES[depth], control_bpb=SCORES[depth - 1] if depth else None)


def _explore(volunteers: _Volunteers, account: str, depth: int, *, val_bpb: float | None, hypothesis: str,
             change: str, status: str = "ok") -> dict:
    worker, lease = volunteers.lease(account, "explore")
    source = lease["variant"]["source"] + change
    return worker.run(lease, val_bpb, source=source, hypothesis=hypothesis, status=status,
                      control_bpb=SCORES[depth])


def _claim(volunteers: _Volunteers, depth: int, number: int) -> str:
    """The author's explore run that finds the next step down: a candidate."""
    outcome = _explore(volunteers, AUTHOR, depth, val_bpb=SCORES[depth + 1],
                       hypothesis=f"warmup {number * 50} steps, then cosine decay", change=f"WARMUP = {number * 50}\n")
    assert outcome["variant_status"] == VariantStatus.candidate, outcome
    return outcome["variant_hash"]  # type: ignore[no-any-return]


def _verify(volunteers: _Volunteers, candidate: str, depth: int, *, val_bpb: float) -> str:
    worker, lease = volunteers.lease(VERIFIER, "verify")
    assert lease["variant"]["hash"] == candidate, lease
    return worker.run(lease, val_bpb, control_bpb=SCORES[depth])["variant_status"]  # type: ignore[no-any-return]


def _promote(volunteers: _Volunteers, candidate: str, depth: int) -> None:
    assert _verify(volunteers, candidate, depth, val_bpb=SCORES[depth + 1]) == VariantStatus.verified
    _audit(volunteers, candidate, depth + 1)


def seed(database_url: str, data_dir: Path) -> SeededTrack:
    """Create `SEEDED_TRACK` on a migrated, empty database and give it every outcome (see the module
    docstring). `data_dir` receives the signing key and the track's stand-in asset files."""
    with _coordinator(database_url, data_dir) as coordinator:
        add_track(coordinator, _PARAMS, baseline=BASELINE)
        volunteers = _Volunteers(coordinator)
        baseline, _ = _head(coordinator)
        _audit(volunteers, baseline, 0)
        verified = []
        for depth in range(2):
            candidate = _claim(volunteers, depth, depth + 1)
            _promote(volunteers, candidate, depth)
            verified.append(candidate)
        depth = len(verified)
        discarded = _explore(volunteers, AUTHOR, depth, val_bpb=SCORES[depth] + 0.02,
                             hypothesis="double the batch size", change="BATCH_SIZE = 64\n")
        crashed = _explore(volunteers, AUTHOR, depth, val_bpb=None, status="crashed",
                           hypothesis="bf16 attention scores", change="ATTN_DTYPE = 'bf16'\n")
        claimed = _explore(volunteers, REFUTED_AUTHOR, depth, val_bpb=SCORES[depth] - 0.5,
                           hypothesis="a much wider MLP", change="MLP_RATIO = 8\n")
        assert _verify(volunteers, claimed["variant_hash"], depth, val_bpb=SCORES[depth]) == VariantStatus.rejected
        candidate = _claim(volunteers, depth, depth + 1)
        outcomes = {discarded["variant_status"], crashed["variant_status"]}
        assert outcomes == {VariantStatus.discarded, VariantStatus.crashed}, outcomes
        return SeededTrack(
            track_id=SEEDED_TRACK, baseline=baseline, verified=tuple(verified), rejected=claimed["variant_hash"],
            discarded=discarded["variant_hash"], crashed=crashed["variant_hash"], candidate=candidate,
        )


def promote_pending(database_url: str, data_dir: Path) -> str:
    """Promote the candidate `seed` left waiting (a verify run from another account, then the new
    head's audit), leave a new candidate waiting in its place, and return the new head's hash."""
    with _coordinator(database_url, data_dir) as coordinator:
        with coordinator.session() as session:
            waiting = session.scalars(
                select(Variant.hash).where(Variant.track_id == SEEDED_TRACK, Variant.status == VariantStatus.candidate)
            ).one()
        # Workers register afresh (their keys stay with the process that seeded); accounts carry over.
        volunteers = _Volunteers(coordinator)
        _, depth = _head(coordinator)
        _promote(volunteers, waiting, depth)
        _claim(volunteers, depth + 1, depth + 2)
        return waiting
