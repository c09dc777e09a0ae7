"""The HTTP/JSON protocol under /v1, as pydantic models shared by coordinator and worker.

Every error body is `ErrorBody` with a stable `code` (see `ErrorCode`) and a human message.
Run reports are signed: the worker signs `canonical_json(RunPayload.model_dump(mode="json"))`.

Every field a worker reports is bounded here, so the same models refuse nonsense on both sides:
the worker cannot build (and so never signs) an out-of-range report, and the coordinator answers
one with 422 `bad_request` before anything reaches the database.
"""

from __future__ import annotations

import math
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field, WithJsonSchema

from shared.run_codes import CODE_PATTERN, MAX_BPB, MAX_COUNT, MAX_SECONDS, Layer

API_PREFIX = "/v1"
MAX_SOURCE_BYTES = 256 * 1024
MAX_BODY_BYTES = 1024 * 1024

# The largest integer every JSON reader holds exactly (a double's 53-bit mantissa).
MAX_COST_USD = 1e6
MAX_ENV_KEYS = 64
MAX_ENV_KEY_CHARS = 64
MAX_ENV_TEXT_CHARS = 500
MAX_ENV_ITEMS = 32  # entries of one list or dict value inside env

Count = Annotated[int, Field(ge=0, le=MAX_COUNT)]
Bpb = Annotated[float, Field(ge=0.0, le=MAX_BPB, allow_inf_nan=False)]
Seconds = Annotated[float, Field(ge=0.0, le=MAX_SECONDS, allow_inf_nan=False)]


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
    no_holdout = "no_holdout"  # the lease has no held-out windows (explore, or a track without a pool)
    conflict = "conflict"  # the request conflicts with what is stored
    too_many_pending = "too_many_pending"  # an account's submissions awaiting a verdict are at the limit
    unavailable = "unavailable"  # the coordinator cannot reach its database; retry after Retry-After
    worker_outdated = "worker_outdated"  # the worker is older than the coordinator accepts: upgrade it
    internal = "internal"


class ErrorBody(BaseModel):
    code: ErrorCode
    message: str
    detail: Any = None


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


def signed_fields(payload: BaseModel) -> dict[str, Any]:
    """What a signature covers: the fields the signer set, as JSON.

    The worker signs this and sends exactly these fields; the coordinator verifies the same view of
    what it parsed. A field the protocol adds later, with a default, is then absent from both
    sides of an older report, so a report signed by an older worker (waiting in its outbox across
    an upgrade) still verifies, and means what it meant.
    """
    return payload.model_dump(mode="json", exclude_unset=True)


# --- info and registration -----------------------------------------------------------------


class InfoResponse(BaseModel):
    # Unknown fields are ignored, unlike elsewhere: this is the first answer a worker of any release
    # reads, so a field added later must not stop an older worker before it can be told to upgrade.
    model_config = ConfigDict(extra="ignore")

    name: str
    version: str
    protocol: Literal["v1"] = "v1"
    public_key: str  # the coordinator's Ed25519 key, base64; workers pin it at join
    # The oldest worker release the coordinator leases work to; an older worker stops at join.
    min_worker_version: str | None = None
    # The training harness (metric, probes) that tracks are scored with; a worker with another
    # harness would report numbers that do not compare, so it stops at join too.
    harness_version: str | None = None


class HardwareInfo(_Model):
    hardware_class: str = Field(max_length=64)  # e.g. "cpu", "h100-sxm-80gb" (worker.hardware)
    device_name: str = Field(default="", max_length=200)
    driver: str = Field(default="", max_length=100)
    torch: str = Field(default="", max_length=50)
    triton: str = Field(default="", max_length=50)
    cpu_count: Count = 0
    memory_bytes: Count = 0


class RegistrationPayload(_Model):
    """What the worker signs with the key it registers, proving it holds that key."""

    public_key: str = Field(max_length=100)
    name: str = Field(min_length=1, max_length=100)
    account: str = Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9_.@-]+$")
    hardware: HardwareInfo
    issued_at: AwareDatetime  # with its time zone; refused if far from the coordinator's clock, to bound replays


class RegisterRequest(_Model):
    payload: RegistrationPayload
    signature: str = Field(max_length=200)
    # What a machine shows to join an account that has machines at another address.
    account_secret: str | None = Field(default=None, max_length=100)


class RegisterResponse(_Model):
    worker_id: str
    token: str  # bearer token; the coordinator keeps only its hash
    account: str
    account_secret: str | None = None  # what a further machine of the account joins with from elsewhere


# --- leases --------------------------------------------------------------------------------


class LeaseKind(StrEnum):
    explore = "explore"  # mutate variant, train, report
    verify = "verify"  # train variant unchanged with the given seed, report
    calibrate = "calibrate"  # train the head unchanged, to measure the track's seed noise


class LeaseRequest(_Model):
    track_id: str | None = Field(default=None, max_length=64)  # None: any track of the worker's hardware class


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
    # True when the run is scored on held-out windows too: fetch them from
    # GET /v1/leases/{id}/holdout and report metrics.holdout_bpb beside val_bpb.
    holdout: bool = False
    # A paired run: train this variant first, with the same seed (and the same held-out windows),
    # then `variant` (or the proposal), and report its metrics as the payload's `control`. Scores
    # are only ever compared within one pair, so the machine's speed and load cancel out.
    control: VariantRef | None = None


class LeaseResponse(_Model):
    lease: Lease | None
    retry_after_s: float | None = None  # set when lease is None


class HeartbeatRequest(_Model):
    phase: Literal["agent", "training", "evaluating", "reporting"] = "training"
    step: Count | None = None
    loss: Bpb | None = None
    elapsed_s: Seconds | None = None


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
    val_bpb: Bpb | None = None  # on the track's public val shard: comparable with explore claims
    # On the lease's held-out windows (verify and calibrate leases with `holdout`; never explore).
    holdout_bpb: Bpb | None = None
    val_loss: Bpb | None = None
    steps: Count | None = None
    tokens: Count | None = None
    train_seconds: Seconds | None = None
    eval_seconds: Seconds | None = None
    peak_memory_bytes: Count | None = None
    num_params: Count | None = None


class AgentUsage(_Model):
    agent: str = Field(max_length=100)
    model: str | None = Field(default=None, max_length=200)
    input_tokens: Count = 0
    output_tokens: Count = 0
    cache_read_tokens: Count = 0
    cache_write_tokens: Count = 0
    cost_usd: float = Field(default=0.0, ge=0.0, le=MAX_COST_USD, allow_inf_nan=False)
    attempts: int = Field(default=1, ge=0, le=10_000)


_ENV_SCALARS = (str, bool, int, float, type(None))


def _check_env_scalar(value: Any, where: str) -> None:
    if not isinstance(value, _ENV_SCALARS):
        raise ValueError(f"{where}: {type(value).__name__} is not a JSON scalar")
    if isinstance(value, str) and len(value) > MAX_ENV_TEXT_CHARS:
        raise ValueError(f"{where}: text over {MAX_ENV_TEXT_CHARS} characters")
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"{where}: not a finite number")
    if isinstance(value, int | float) and not isinstance(value, bool) and abs(value) > MAX_COUNT:
        raise ValueError(f"{where}: number beyond +-{MAX_COUNT}")


_ENV_SCALAR_SCHEMA: dict[str, Any] = {
    "anyOf": [
        {"type": "string", "maxLength": MAX_ENV_TEXT_CHARS},
        {"type": "number", "minimum": -MAX_COUNT, "maximum": MAX_COUNT},
        {"type": "boolean"},
        {"type": "null"},
    ]
}
_ENV_KEY_SCHEMA = {"maxLength": MAX_ENV_KEY_CHARS}
# What `_check_env` accepts, said in the schema, so that a client can tell from it alone.
ENV_SCHEMA: dict[str, Any] = {
    "type": "object",
    "maxProperties": MAX_ENV_KEYS,
    "propertyNames": _ENV_KEY_SCHEMA,
    "additionalProperties": {
        "anyOf": [
            _ENV_SCALAR_SCHEMA,
            {"type": "array", "maxItems": MAX_ENV_ITEMS, "items": _ENV_SCALAR_SCHEMA},
            {
                "type": "object",
                "maxProperties": MAX_ENV_ITEMS,
                "propertyNames": _ENV_KEY_SCHEMA,
                "additionalProperties": _ENV_SCALAR_SCHEMA,
            },
        ]
    },
}


def _check_env(env: dict[str, Any]) -> dict[str, Any]:
    """The run's environment: a flat record of versions and names, with at most one level of nesting."""
    if len(env) > MAX_ENV_KEYS:
        raise ValueError(f"env has {len(env)} keys, more than {MAX_ENV_KEYS}")
    for key, value in env.items():
        if len(key) > MAX_ENV_KEY_CHARS:
            raise ValueError(f"env key {key[:20]!r}... is longer than {MAX_ENV_KEY_CHARS} characters")
        if isinstance(value, list | dict):
            if len(value) > MAX_ENV_ITEMS:
                raise ValueError(f"env[{key!r}] holds {len(value)} entries, more than {MAX_ENV_ITEMS}")
            items = value.items() if isinstance(value, dict) else enumerate(value)
            for inner_key, inner in items:
                if isinstance(inner_key, str) and len(inner_key) > MAX_ENV_KEY_CHARS:
                    raise ValueError(f"env[{key!r}] has a key longer than {MAX_ENV_KEY_CHARS} characters")
                _check_env_scalar(inner, f"env[{key!r}][{inner_key!r}]")
        else:
            _check_env_scalar(value, f"env[{key!r}]")
    return env


class RunPayload(_Model):
    """The signed report of one lease. Every field is covered by the signature."""

    lease_id: str = Field(max_length=64)
    worker_id: str = Field(max_length=64)
    track_id: str = Field(max_length=64)
    kind: LeaseKind
    variant_hash: str = Field(max_length=64)  # the variant that was trained: new for explore, the leased one otherwise
    parent_hash: str | None = Field(default=None, max_length=64)  # explore only
    source: str | None = Field(default=None, max_length=MAX_SOURCE_BYTES)  # explore only
    hypothesis: str | None = Field(default=None, max_length=500)  # explore only
    seed: int = Field(ge=0, le=MAX_COUNT)  # leases draw 31 bits; any bound must be exact in a JSON number
    status: RunStatus
    # Where a run that did not score was stopped, and why, in shared.run_codes' words.
    layer: Layer | None = None
    code: str | None = Field(default=None, pattern=CODE_PATTERN)
    reason: str | None = Field(default=None, max_length=2000)
    metrics: RunMetrics = Field(default_factory=RunMetrics)
    control: RunMetrics | None = None  # the lease's control run, trained first with the same seed
    env: Annotated[dict[str, Any], AfterValidator(_check_env), WithJsonSchema(ENV_SCHEMA)] = Field(
        default_factory=dict
    )
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
    unverified = "unverified"  # waited past the track's limit without enough verifications; can be re-queued


class VariantOrigin(StrEnum):
    agent = "agent"  # proposed by a worker's agent on an explore lease
    person = "person"  # submitted by a researcher with `worker submit`


class SubmissionPayload(_Model):
    """A researcher's own variant, signed by their key. It carries no claim: the network measures it."""

    track_id: str = Field(max_length=64)
    source: str = Field(max_length=MAX_SOURCE_BYTES)
    hypothesis: str = Field(min_length=1, max_length=500)
    # A prefix of a verified variant's hash (7 hex digits or more); the head when absent.
    parent_hash: str | None = Field(default=None, pattern=r"^[0-9a-f]{7,64}$")


class SubmissionRequest(_Model):
    payload: SubmissionPayload
    signature: str = Field(max_length=200)


class SubmissionResponse(_Model):
    variant_hash: str
    track_id: str
    parent_hash: str
    status: VariantStatus
    duplicate: bool  # True when this account already submitted this source (a retry)
    message: str


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
    quorum: int  # distinct accounts whose paired verify runs a promotion needs
    tolerance: float  # the least shortfall below a claim that refutes it
    noise_sigma: float | None  # σ of a paired difference: configured, pooled with the track's history
    calibration_runs: int
    claim_margin: float | None = None  # an explore's paired gain must beat this many σ to be a candidate
    max_verifications: int | None = None
    verify_timeout_s: float | None = None  # an undecided candidate then expires as unverified
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
    origin: VariantOrigin = VariantOrigin.agent


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
    delta: float | None  # against the parent, negative is better: paired (one machine, one seed) where measured so
    author: str | None
    reason: str | None
    created_at: datetime
    origin: VariantOrigin = VariantOrigin.agent


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
    layer: str | None = None
    code: str | None = None
    reason: str | None
    val_bpb: float | None
    holdout_bpb: float | None = None
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
    holdout_bpb: float | None = None  # the verifiers' held-out mean (the calibration mean for a baseline)
    claimed_val_bpb: float | None
    reason: str | None
    source: str
    signature: str | None
    created_at: datetime
    verified_at: datetime | None
    runs: list[RunSummary]
    origin: VariantOrigin = VariantOrigin.agent


class LineageVariant(BaseModel):
    """One verified variant of a track's line: a commit of its `main`."""

    hash: str
    short_hash: str  # first 10 hex digits
    parent_hash: str | None  # None for the baseline
    val_bpb: float | None  # the verifiers' mean (the calibration mean for the baseline)
    hypothesis: str | None
    author: str | None  # "worker-name (account)"; None for the baseline
    verified_at: datetime | None


class TrackLineage(BaseModel):
    """The verified variants from the baseline to the head, baseline first."""

    track_id: str
    variants: list[LineageVariant]
