"""SQLAlchemy models: accounts, workers, tracks, variants, leases and runs.

Times are stored as UTC. Status and kind columns hold the string values of the enums in
shared.protocol, so the wire and the database speak the same words.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Integer,
    MetaData,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    func,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(TypeDecorator[datetime]):
    """A timezone-aware UTC datetime on every backend (SQLite forgets the zone)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetimes are not stored")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def utcnow() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class Account(Base):
    __tablename__ = "accounts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    # Set by a maintainer: the account's workers are quarantined and no new worker may join it.
    quarantine_reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, server_default=func.now())

    workers: Mapped[list[Worker]] = relationship(back_populates="account")


class Worker(Base):
    __tablename__ = "workers"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    public_key: Mapped[str] = mapped_column(String(100), unique=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    hardware_class: Mapped[str] = mapped_column(String(64), index=True)
    hardware: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    # Adaptive replication (BOINC): consecutive valid results; any failure resets it.
    valid_streak: Mapped[int] = mapped_column(Integer, default=0)
    invalid_results: Mapped[int] = mapped_column(Integer, default=0)
    quarantined: Mapped[bool] = mapped_column(Boolean, default=False)
    quarantine_reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    # The record of how much worse than others this worker reports what others measure too (a
    # CUSUM in σ, services/verdicts.next_report_bias), and the comparisons since it was last zero.
    report_bias: Mapped[float] = mapped_column(Float, default=0.0, server_default="0")
    report_bias_checks: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # A record of the same kind of how much better than another account reproduces them this
    # worker reports its own discarded changes (spot checks): the other side of the two-sided test.
    result_bias: Mapped[float] = mapped_column(Float, default=0.0, server_default="0")
    result_bias_checks: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, server_default=func.now())
    last_seen_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    # The address it last registered from: a further machine may join its account from there
    # without the account's secret (services/workers.py).
    registered_from: Mapped[str | None] = mapped_column(String(64), nullable=True)

    account: Mapped[Account] = relationship(back_populates="workers", lazy="joined")

    @property
    def display_name(self) -> str:
        return f"{self.name} ({self.account.name})"


class Track(Base):
    __tablename__ = "tracks"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    hardware_class: Mapped[str] = mapped_column(String(64), index=True)
    vocab_size: Mapped[int] = mapped_column(Integer)
    seq_len: Mapped[int] = mapped_column(Integer)
    eval_tokens: Mapped[int] = mapped_column(Integer)
    eval_batch_size: Mapped[int] = mapped_column(Integer)
    time_budget_s: Mapped[float] = mapped_column(Float)
    grace_s: Mapped[float] = mapped_column(Float)
    harness_version: Mapped[str] = mapped_column(String(20))
    brief: Mapped[str] = mapped_column(Text)
    # {"train": [sha...], "val": sha, "token_bytes": sha, "tokenizer": sha}
    assets: Mapped[dict[str, Any]] = mapped_column(JSON)
    # Verification policy.
    quorum: Mapped[int] = mapped_column(Integer)
    tolerance: Mapped[float] = mapped_column(Float)
    calibration_runs: Mapped[int] = mapped_column(Integer)
    # σ of one paired difference (services/verdicts.py) as configured; the measured history
    # (within-candidate sums of squares of counted verify differences) refines it.
    noise_sigma: Mapped[float | None] = mapped_column(Float, nullable=True)
    noise_sum_squares: Mapped[float] = mapped_column(Float, default=0.0, server_default="0")
    noise_df: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # An explore becomes a candidate when its own paired gain beats this many σ.
    claim_margin: Mapped[float] = mapped_column(Float, default=1.0, server_default="1.0")
    max_verifications: Mapped[int] = mapped_column(Integer, default=16, server_default="16")
    # A candidate still undecided this long after its claim expires as `unverified`.
    verify_timeout_s: Mapped[float] = mapped_column(Float, default=86400.0, server_default="86400")
    # The held-out pool's token file in the asset store. Never one of `assets`, so never served
    # whole: verify and calibrate leases get windows drawn from it (services/holdout.py).
    holdout_sha256: Mapped[str | None] = mapped_column(String(64), nullable=True)
    baseline_variant_id: Mapped[int | None] = mapped_column(
        ForeignKey("variants.id", use_alter=True, name="fk_tracks_baseline_variant_id_variants"), nullable=True
    )
    head_variant_id: Mapped[int | None] = mapped_column(
        ForeignKey("variants.id", use_alter=True, name="fk_tracks_head_variant_id_variants"), nullable=True
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, server_default=func.now())

    head: Mapped[Variant | None] = relationship(foreign_keys=[head_variant_id], post_update=True)
    baseline: Mapped[Variant | None] = relationship(foreign_keys=[baseline_variant_id], post_update=True)


class Variant(Base):
    __tablename__ = "variants"
    __table_args__ = (UniqueConstraint("track_id", "hash", name="uq_variants_track_id_hash"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    track_id: Mapped[str] = mapped_column(ForeignKey("tracks.id"), index=True)
    hash: Mapped[str] = mapped_column(String(64), index=True)
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("variants.id"), nullable=True, index=True)
    author_worker_id: Mapped[str | None] = mapped_column(ForeignKey("workers.id"), nullable=True, index=True)
    hypothesis: Mapped[str | None] = mapped_column(String(500), nullable=True)
    source: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(20), index=True)
    # The promoted metric: the verifiers' mean (or the calibration mean for a baseline).
    val_bpb: Mapped[float | None] = mapped_column(Float, nullable=True)
    # The same on held-out windows; the reference verify runs are judged against.
    holdout_bpb: Mapped[float | None] = mapped_column(Float, nullable=True)
    claimed_val_bpb: Mapped[float | None] = mapped_column(Float, nullable=True)
    # The author's own paired measurement: its parent's score minus this variant's, one machine, one seed.
    claimed_gain: Mapped[float | None] = mapped_column(Float, nullable=True)
    # The verifiers' mean paired gain over the head, once the candidate is decided.
    verified_gain: Mapped[float | None] = mapped_column(Float, nullable=True)
    # A negative result picked at random to be re-run by another account (services/verification.py).
    spot_check: Mapped[bool] = mapped_column(Boolean, default=False, server_default="0")
    # The verifiers refuted its author's claim. The author's later claims against the same
    # measurement of the parent (same worker, parent and seed) share its fault: they cost no more
    # trust, and that measurement is no longer reused (services/verification.py).
    claim_refuted: Mapped[bool] = mapped_column(Boolean, default=False, server_default="0")
    # Promoted from a spot check, its reporter took a strike for hiding it: taken back if the
    # promotion's audit refutes it (a gain that was never there was never hidden).
    hid_gain_charged: Mapped[bool] = mapped_column(Boolean, default=False, server_default="0")
    # Calibration runs its audit asks for, when its audits split (None: the track's calibration_runs).
    audit_runs: Mapped[int | None] = mapped_column(Integer, nullable=True)
    # The head this variant replaced when promoted: its calibration runs are paired with it, as an
    # audit of the promotion by accounts that took no part in it.
    previous_head_id: Mapped[int | None] = mapped_column(ForeignKey("variants.id"), nullable=True)
    # Frozen when the variant is promoted (val_bpb moves later, with the head's calibration): what
    # the lineage's git commit records, so its id never changes.
    promoted_val_bpb: Mapped[float | None] = mapped_column(Float, nullable=True)
    # The runs counted for the promotion: [{"run": id, "worker": name, "account": name}], in run order.
    verified_by: Mapped[list[dict[str, Any]] | None] = mapped_column(JSON, nullable=True)
    # Who proposed it: "agent" (a worker's explore run) or "person" (`worker submit`).
    origin: Mapped[str] = mapped_column(String(16), default="agent", server_default="agent")
    # The head's metric when this variant was judged, so the log shows a stable delta.
    parent_val_bpb: Mapped[float | None] = mapped_column(Float, nullable=True)
    reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    signature: Mapped[str | None] = mapped_column(String(200), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, server_default=func.now())
    # When a maintainer re-queued it after it expired unverified: its wait for verifiers restarts.
    requeued_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    verified_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)

    parent: Mapped[Variant | None] = relationship(remote_side=[id], foreign_keys=[parent_id])
    previous_head: Mapped[Variant | None] = relationship(remote_side=[id], foreign_keys=[previous_head_id])
    author: Mapped[Worker | None] = relationship(lazy="joined")


class Lease(Base):
    __tablename__ = "leases"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    track_id: Mapped[str] = mapped_column(ForeignKey("tracks.id"), index=True)
    kind: Mapped[str] = mapped_column(String(20))
    variant_id: Mapped[int] = mapped_column(ForeignKey("variants.id"), index=True)
    worker_id: Mapped[str] = mapped_column(ForeignKey("workers.id"), index=True)
    seed: Mapped[int] = mapped_column(BigInteger)
    # The variant trained first, with the same seed, as the run's paired reference: the head for
    # verify, the parent for an explore whose worker has no fresh measurement of it.
    control_variant_id: Mapped[int | None] = mapped_column(ForeignKey("variants.id"), nullable=True)
    # active -> completed | expired | released
    state: Mapped[str] = mapped_column(String(20), index=True, default="active")
    deadline: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, server_default=func.now())
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    release_reason: Mapped[str | None] = mapped_column(Text, nullable=True)

    variant: Mapped[Variant] = relationship(lazy="joined", foreign_keys=[variant_id])
    control: Mapped[Variant | None] = relationship(lazy="joined", foreign_keys=[control_variant_id])
    worker: Mapped[Worker] = relationship(lazy="joined")
    track: Mapped[Track] = relationship()


class Run(Base):
    __tablename__ = "runs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    lease_id: Mapped[str] = mapped_column(ForeignKey("leases.id"), unique=True)
    worker_id: Mapped[str] = mapped_column(ForeignKey("workers.id"), index=True)
    # The variant that was trained (for explore: the new one, once it exists).
    variant_id: Mapped[int | None] = mapped_column(ForeignKey("variants.id"), nullable=True, index=True)
    kind: Mapped[str] = mapped_column(String(20))
    seed: Mapped[int] = mapped_column(BigInteger)
    status: Mapped[str] = mapped_column(String(20))
    # shared.run_codes: the layer that stopped a run that did not score, and its stable code.
    layer: Mapped[str | None] = mapped_column(String(16), nullable=True)
    code: Mapped[str | None] = mapped_column(String(64), nullable=True)
    reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    val_bpb: Mapped[float | None] = mapped_column(Float, nullable=True)
    holdout_bpb: Mapped[float | None] = mapped_column(Float, nullable=True)
    # The paired control's scores and metrics, when the lease had a control.
    control_val_bpb: Mapped[float | None] = mapped_column(Float, nullable=True)
    control_holdout_bpb: Mapped[float | None] = mapped_column(Float, nullable=True)
    control_metrics: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    # Counts a worker reports go up to shared.protocol.MAX_COUNT (2**53 - 1): 64-bit columns.
    steps: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    train_seconds: Mapped[float | None] = mapped_column(Float, nullable=True)
    metrics: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    env: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    agent: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    # sha256 of the canonical signed payload: an identical resend is a duplicate, not a new run.
    payload_sha256: Mapped[str] = mapped_column(String(64))
    signature: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, server_default=func.now())

    worker: Mapped[Worker] = relationship(lazy="joined")
    lease: Mapped[Lease] = relationship()
