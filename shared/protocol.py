"""The HTTP/JSON protocol under /v1, as pydantic models shared by coordinator and worker.

Every error body is `ErrorBody` with a stable `code` (see `ErrorCode`) and a human message.
Run reports are signed: the worker signs `canonical_json(RunPayload.model_dump(mode="json"))`.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

API_PREFIX = "/v1"
MAX_SOURCE_BYTES = 256 * 1024
MAX_BODY_BYTES = 1024 * 1024


class ErrorCode(StrEnum):
    bad_request = "bad_request"
    body_too_large = "body_too_large"
    unauthorized = "unauthorized"
    forbidden = "forbidden"
    not_found = "not_found"
    rate_limited = "rate_limited"
    bad_signature = "bad_signature"
    stale_registration = "stale_registration"
    worker_quarantined = "worker_quarantined"
    unknown_track = "unknown_track"
    unknown_variant = "unknown_variant"
    ambiguous_variant = "ambiguous_variant"
    unknown_lease = "unknown_lease"
    not_lease_owner = "not_lease_owner"
    lease_expired = "lease_expired"
    lease_released = "lease_released"
    lease_already_reported = "lease_already_reported"
    payload_mismatch = "payload_mismatch"
    policy_violation = "policy_violation"
    internal = "internal"


class ErrorBody(BaseModel):
    code: ErrorCode
    message: str
    detail: Any = None


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


# --- info and registration -----------------------------------------------------------------


class InfoResponse(_Model):
    name: str
    version: str
    protocol: Literal["v1"] = "v1"
    public_key: str  # the coordinator's Ed25519 key, base64; workers pin it at join


class HardwareInfo(_Model):
    hardware_class: str = Field(max_length=64)  # e.g. "cpu", "h100-80gb"
    device_name: str = Field(default="", max_length=200)
    driver: str = Field(default="", max_length=100)
    torch: str = Field(default="", max_length=50)
    triton: str = Field(default="", max_length=50)
    cpu_count: int = 0
    memory_bytes: int = 0


class RegistrationPayload(_Model):
    """What the worker signs with the key it registers, proving it holds that key."""

    public_key: str = Field(max_length=100)
    name: str = Field(min_length=1, max_length=100)
    account: str = Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9_.@-]+$")
    hardware: HardwareInfo
    issued_at: datetime  # refused if far from the coordinator's clock, to bound replays


class RegisterRequest(_Model):
    payload: RegistrationPayload
    signature: str = Field(max_length=200)


class RegisterResponse(_Model):
    worker_id: str
    token: str  # bearer token; the coordinator keeps only its hash
    account: str


# --- leases --------------------------------------------------------------------------------


class LeaseKind(StrEnum):
    explore = "explore"  # mutate variant, train, report
    verify = "verify"  # train variant unchanged with the given seed, report
    calibrate = "calibrate"  # train the head unchanged, to measure the track's seed noise


class LeaseRequest(_Model):
    track_id: str | None = None  # None: any track of the worker's hardware class


class VariantRef(_Model):
    """A variant as handed out: its source and the coordinator's signature over it."""

    hash: str
    track_id: str
    source: str
    signature: str  # coordinator's signature of {"track_id": ..., "hash": ...}


class Lease(_Model):
    id: str
    kind: LeaseKind
    track_id: str
    variant: VariantRef  # the parent for explore; the variant to rerun for verify/calibrate
    seed: int
    deadline: datetime
    heartbeat_interval_s: float
    time_budget_s: float


class LeaseResponse(_Model):
    lease: Lease | None
    retry_after_s: float | None = None  # set when lease is None


class HeartbeatRequest(_Model):
    phase: Literal["agent", "training", "evaluating", "reporting"] = "training"
    step: int | None = None
    loss: float | None = None
    elapsed_s: float | None = None


class HeartbeatResponse(_Model):
    deadline: datetime


class ReleaseRequest(_Model):
    reason: str = Field(max_length=2000)


# --- run reports ---------------------------------------------------------------------------


class RunStatus(StrEnum):
    ok = "ok"
    crashed = "crashed"  # the variant raised, ran out of time or memory
    rejected = "rejected"  # a policy or integrity check refused it; reason names which


class RunMetrics(_Model):
    val_bpb: float | None = None
    val_loss: float | None = None
    steps: int | None = None
    tokens: int | None = None
    train_seconds: float | None = None
    eval_seconds: float | None = None
    peak_memory_bytes: int | None = None
    num_params: int | None = None


class AgentUsage(_Model):
    agent: str
    model: str | None = None
    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    cost_usd: float = 0.0
    attempts: int = 1


class RunPayload(_Model):
    """The signed report of one lease. Every field is covered by the signature."""

    lease_id: str
    worker_id: str
    track_id: str
    kind: LeaseKind
    variant_hash: str  # the variant that was trained: new for explore, the leased one otherwise
    parent_hash: str | None = None  # explore only
    source: str | None = Field(default=None, max_length=MAX_SOURCE_BYTES)  # explore only
    hypothesis: str | None = Field(default=None, max_length=500)  # explore only
    seed: int
    status: RunStatus
    reason: str | None = Field(default=None, max_length=2000)
    metrics: RunMetrics = Field(default_factory=RunMetrics)
    env: dict[str, Any] = Field(default_factory=dict)
    agent: AgentUsage | None = None
    finished_at: datetime


class ResultRequest(_Model):
    payload: RunPayload
    signature: str = Field(max_length=200)


class VariantStatus(StrEnum):
    candidate = "candidate"
    verified = "verified"
    rejected = "rejected"
    discarded = "discarded"
    crashed = "crashed"


class ResultResponse(_Model):
    run_id: int
    duplicate: bool  # True when this exact report was already accepted (a retry)
    variant_hash: str
    variant_status: VariantStatus
    message: str


# --- reads ---------------------------------------------------------------------------------


class TrackSummary(BaseModel):
    id: str
    name: str
    hardware_class: str
    time_budget_s: float
    head_hash: str | None
    head_val_bpb: float | None
    variants: int
    verified: int


class TrackDetail(TrackSummary):
    spec: dict[str, Any]  # shared.track_spec.TrackSpec.to_json()
    brief: str
    quorum: int
    tolerance: float
    noise_sigma: float | None
    calibration_runs: int
    baseline_hash: str
    baseline_val_bpb: float | None


class LeaderboardEntry(BaseModel):
    rank: int
    hash: str
    short_hash: str
    val_bpb: float
    delta_vs_baseline: float | None
    author: str | None  # "worker-name (account)"
    hypothesis: str | None
    verified_at: datetime | None
    runs: int


class Leaderboard(BaseModel):
    track_id: str
    baseline_hash: str
    baseline_val_bpb: float | None
    entries: list[LeaderboardEntry]


class LogEntry(BaseModel):
    """One experiment of the research log, as agents read it."""

    hash: str
    parent_hash: str | None
    hypothesis: str | None
    status: VariantStatus
    val_bpb: float | None  # verified mean where verified, else the author's claim
    parent_val_bpb: float | None
    delta: float | None  # val_bpb - parent_val_bpb; negative is better
    author: str | None
    reason: str | None
    created_at: datetime


class CompactLogEntry(BaseModel):
    """A log line for prompts: short hashes, the outcome and the delta, nothing else."""

    hash: str  # first 10 hex digits
    parent: str | None
    status: VariantStatus
    delta: float | None
    hypothesis: str | None


class ResearchLog(BaseModel):
    track_id: str
    entries: list[LogEntry] | list[CompactLogEntry]
    next_cursor: str | None = None


class RunSummary(BaseModel):
    id: int
    kind: LeaseKind
    worker: str
    account: str
    seed: int
    status: RunStatus
    reason: str | None
    val_bpb: float | None
    steps: int | None
    train_seconds: float | None
    created_at: datetime


class VariantDetail(BaseModel):
    hash: str
    track_id: str
    parent_hash: str | None
    lineage: list[str]  # hashes from this variant back to the root, this one first
    status: VariantStatus
    hypothesis: str | None
    author: str | None
    val_bpb: float | None
    claimed_val_bpb: float | None
    reason: str | None
    source: str
    signature: str | None
    created_at: datetime
    verified_at: datetime | None
    runs: list[RunSummary]
