"""Tracks: creation from built assets, the built-in `cpu-tiny`, and read models."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from coordinator.errors import DomainError
from coordinator.models import Track, Variant, Worker
from coordinator.services.variants import create_variant
from shared.protocol import ErrorCode, VariantStatus
from shared.signing import SigningKey
from shared.track_spec import HARNESS_VERSION, TrackAssets, TrackSpec

log = logging.getLogger(__name__)

CPU_TINY = "cpu-tiny"


@dataclass(frozen=True)
class TrackParams:
    id: str
    name: str
    hardware_class: str
    vocab_size: int
    seq_len: int
    eval_tokens: int
    eval_batch_size: int
    time_budget_s: float
    grace_s: float
    quorum: int  # distinct accounts whose verify runs a decision needs
    tolerance: float  # the least shortfall (bpb) of the verifiers' gain below a claim that refutes it
    calibration_runs: int  # runs of each new head, from two accounts or more, that set its shown value
    noise_sigma: float | None = None  # σ of one paired difference; None: tolerance / 4 until measured
    claim_margin: float = 1.0  # an explore becomes a candidate when its paired gain beats this many σ
    # Paired verify runs after which an undecided candidate is rejected. A cap of 8 cut off the tail of
    # real gains that needed more runs; 16 finds more of them (power on 2σ_seed gains 61% -> 69%) for
    # almost nothing, since no-effect candidates are rejected long before (bench/RESULTS.md, "The cap").
    max_verifications: int = 16
    verify_timeout_s: float = 86_400.0  # an undecided candidate then expires as `unverified`


def baseline_source() -> str:
    return resources.files("baseline").joinpath("train.py").read_text(encoding="utf-8")


def baseline_brief() -> str:
    return resources.files("baseline").joinpath("program.md").read_text(encoding="utf-8")


def get_track(session: Session, track_id: str) -> Track:
    track = session.get(Track, track_id)
    if track is None:
        raise DomainError(ErrorCode.unknown_track, f"no track named {track_id!r}")
    return track


def create_track(
    session: Session,
    params: TrackParams,
    *,
    assets: TrackAssets,
    key: SigningKey,
    brief: str | None = None,
    baseline: str | None = None,
    holdout_sha256: str | None = None,
) -> Track:
    """Register a track whose asset files already sit in the asset store, with its baseline as head.

    The baseline starts `verified` with no metric: calibration leases measure it before any
    explore lease is handed out, so every claim is judged against a measured head.
    `holdout_sha256` names the held-out pool's token file, if the track has one.
    """
    if session.get(Track, params.id) is not None:
        raise DomainError(ErrorCode.bad_request, f"track {params.id!r} already exists")
    track = Track(
        id=params.id,
        name=params.name,
        hardware_class=params.hardware_class,
        vocab_size=params.vocab_size,
        seq_len=params.seq_len,
        eval_tokens=params.eval_tokens,
        eval_batch_size=params.eval_batch_size,
        time_budget_s=params.time_budget_s,
        grace_s=params.grace_s,
        harness_version=HARNESS_VERSION,
        brief=brief if brief is not None else baseline_brief(),
        assets={
            "train": list(assets.train),
            "val": assets.val,
            "token_bytes": assets.token_bytes,
            "tokenizer": assets.tokenizer,
        },
        quorum=params.quorum,
        tolerance=params.tolerance,
        calibration_runs=params.calibration_runs,
        noise_sigma=params.noise_sigma,
        claim_margin=params.claim_margin,
        max_verifications=params.max_verifications,
        verify_timeout_s=params.verify_timeout_s,
        holdout_sha256=holdout_sha256,
    )
    session.add(track)
    session.flush()
    root = create_variant(
        session,
        track_id=track.id,
        source=baseline if baseline is not None else baseline_source(),
        parent=None,
        author=None,
        hypothesis="baseline",
        status=VariantStatus.verified,
        key=key,
    )
    track.baseline_variant_id = root.id
    track.head_variant_id = root.id
    session.flush()
    return track


def track_spec(track: Track) -> TrackSpec:
    assets = track.assets
    return TrackSpec(
        track_id=track.id,
        hardware_class=track.hardware_class,
        vocab_size=track.vocab_size,
        seq_len=track.seq_len,
        eval_tokens=track.eval_tokens,
        eval_batch_size=track.eval_batch_size,
        time_budget_s=track.time_budget_s,
        grace_s=track.grace_s,
        harness_version=track.harness_version,
        assets=TrackAssets(
            train=tuple(assets["train"]),
            val=assets["val"],
            token_bytes=assets["token_bytes"],
            tokenizer=assets.get("tokenizer"),
        ),
    )


def track_asset_hashes(track: Track) -> set[str]:
    """What workers may download. The held-out pool is never among them, even if listed by mistake."""
    assets = track.assets
    hashes = {*assets["train"], assets["val"], assets["token_bytes"]}
    if assets.get("tokenizer"):
        hashes.add(assets["tokenizer"])
    hashes.discard(track.holdout_sha256 or "")
    return hashes


def list_tracks(session: Session) -> list[Track]:
    return list(session.scalars(select(Track).order_by(Track.id)))


def quorum_shortfalls(session: Session) -> list[tuple[Track, int]]:
    """Tracks whose quorum more accounts than have joined their hardware class would be needed for
    (the author's plus `quorum` others), with the number that have; none while no one has joined."""
    short = []
    for track in list_tracks(session):
        accounts = int(
            session.scalar(
                select(func.count(func.distinct(Worker.account_id))).where(Worker.hardware_class == track.hardware_class)
            )
            or 0
        )
        if 0 < accounts < track.quorum + 1:
            short.append((track, accounts))
    return short


def variant_counts(session: Session, track_id: str) -> dict[str, int]:
    rows = session.execute(
        select(Variant.status, func.count()).where(Variant.track_id == track_id).group_by(Variant.status)
    )
    return {status: count for status, count in rows}


def cpu_tiny_params(
    *, time_budget_s: float, quorum: int, calibration_runs: int, tolerance: float, noise_sigma: float | None = None
) -> TrackParams:
    return TrackParams(
        id=CPU_TINY,
        name="CPU tiny: a small GPT on Python's own documentation",
        hardware_class="cpu",
        vocab_size=512,
        seq_len=128,
        eval_tokens=32_768,
        eval_batch_size=16,
        time_budget_s=time_budget_s,
        grace_s=max(5.0, 0.2 * time_budget_s),
        quorum=quorum,
        tolerance=tolerance,
        calibration_runs=calibration_runs,
        noise_sigma=noise_sigma,
    )


def ensure_cpu_tiny(
    session: Session, *, assets_dir: Path, key: SigningKey, params: TrackParams, cache_dir: Path | None = None
) -> Track:
    """Create the built-in track on first start. Idempotent: an existing track is left as it is."""
    existing = session.get(Track, CPU_TINY)
    if existing is not None:
        if existing.time_budget_s != params.time_budget_s:
            log.warning(
                "track %s keeps its budget of %.0fs (ARN_CPU_TINY_BUDGET_S=%.0f applies only when the track is"
                " created, because results under different budgets are not comparable)",
                CPU_TINY,
                existing.time_budget_s,
                params.time_budget_s,
            )
        return existing
    from coordinator.trackdata.cache import cached_cpu_tiny

    built = cached_cpu_tiny(assets_dir, vocab_size=params.vocab_size, cache_dir=cache_dir)
    log.info(
        "built track %s: %d train shards, %d val tokens, a held-out pool of %d tokens",
        CPU_TINY, len(built.train), built.val_tokens, built.holdout_tokens,
    )
    return create_track(
        session, params, assets=built.to_track_assets(), key=key, holdout_sha256=built.holdout
    )

