"""Coordinator settings, read from `ARN_*` environment variables (and a `.env` file)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from shared.track_spec import HARNESS_VERSION
from shared.versions import InvalidVersion, check_version
from worker import __version__ as WORKER_VERSION


class InsecureSettingsError(ValueError):
    """A setting that is fine for a laptop demo was left at its default in production."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="ARN_", env_file=".env", extra="ignore")

    env: Literal["development", "production"] = "development"
    name: str = "autoresearch-network"
    data_dir: Path = Path(".arn")
    # None means a SQLite file under data_dir; use postgresql+psycopg://... in production.
    database_url: str | None = None
    # None means in-process stand-ins for rate limits and events (one process only).
    redis_url: str | None = None
    # Every key and channel in Redis starts with this, so that networks can share one Redis.
    redis_prefix: str = Field(default="arn:", min_length=1, max_length=64)
    # Hot reads (leaderboard, head, log, track list and detail) are cached between the changes that
    # invalidate them, and for at most this long whatever happens (coordinator/read_cache.py); 0: off.
    read_cache_ttl_s: float = Field(default=10.0, ge=0.0)
    # base64 raw Ed25519 private key. Development generates one under data_dir.
    signing_key: SecretStr | None = None

    # Built-in track.
    create_builtin_tracks: bool = True
    # A folder where the built-in track's data is kept once built, so that coordinators starting on
    # fresh data folders on this machine copy it instead of building it (coordinator/trackdata/cache.py).
    trackdata_cache_dir: Path | None = None
    cpu_tiny_budget_s: float = 60.0
    cpu_tiny_quorum: int = 2
    cpu_tiny_calibration_runs: int = 2
    cpu_tiny_tolerance: float = 0.1
    # σ of a paired difference (candidate minus head, one machine, one seed) at the default budget,
    # as measured on a 2-core machine (bench/RESULTS.md, "cpu-tiny's noise"). Decisions pool it with
    # the track's own verify runs as they come.
    cpu_tiny_noise_sigma: float = 0.025

    # Negative results re-run by another account, by the reporter's trust (services/verification.py).
    spot_check_rate_untrusted: float = Field(default=0.05, ge=0.0, le=1.0)
    spot_check_rate_trusted: float = Field(default=0.01, ge=0.0, le=1.0)

    # Leases: a lease lives for the budget plus this slack, and each heartbeat renews it. Workers
    # heartbeat every tenth of the budget, at most every minute and at least every this often
    # (services/leases.heartbeat_interval).
    lease_slack_s: float = 300.0
    heartbeat_interval_s: float = 10.0
    no_work_retry_after_s: float = 5.0
    reaper_interval_s: float = 15.0

    # Requests inside the app at once; more wait up to admission_wait_s, then get 503 with
    # Retry-After. The database pool holds this many connections (plus a few for the reaper and
    # opening event streams), so an admitted request always gets one.
    max_concurrent_requests: int = Field(default=16, ge=1, le=1000)
    admission_wait_s: float = Field(default=10.0, gt=0)
    # Processes per serving process that run the static policy on received sources, off the
    # serving process's core (coordinator/policy_checks.py); 0 checks in the request's thread.
    policy_check_processes: int = Field(default=1, ge=0, le=64)

    # Compatibility, announced at /v1/info: workers older than min_worker_version (as their
    # User-Agent names it) are refused leases with `worker_outdated`, and a worker whose harness is
    # not harness_version stops at join. Results already in an older worker's outbox are still taken.
    min_worker_version: str = WORKER_VERSION
    harness_version: str = HARNESS_VERSION

    registration_max_skew_s: float = 600.0
    writes_per_minute_per_worker: int = 240
    writes_per_minute_per_ip: int = 600
    # New accounts an address may create per hour: independence is judged by account, so accounts
    # must not be free to mint in bulk.
    new_accounts_per_hour_per_ip: int = Field(default=20, ge=1)
    # Proxies whose X-Forwarded-For names the client (comma-separated addresses, or "*" where only
    # a proxy can reach the coordinator): rate limits and joining an account go by that address.
    forwarded_allow_ips: str = "127.0.0.1"
    # A researcher's submissions awaiting a verdict, per account and track (`worker submit`).
    max_pending_submissions: int = Field(default=3, ge=1)

    @field_validator("min_worker_version")
    @classmethod
    def _a_release_version(cls, value: str) -> str:
        try:
            return check_version(value)
        except InvalidVersion as exc:
            raise ValueError(f"ARN_MIN_WORKER_VERSION: {exc}") from exc

    @model_validator(mode="after")
    def _refuse_insecure_production(self) -> Settings:
        if self.env == "production":
            if self.signing_key is None:
                raise InsecureSettingsError("ARN_SIGNING_KEY must be set in production")
            if self.database_url is None or self.database_url.startswith("sqlite"):
                raise InsecureSettingsError("production needs ARN_DATABASE_URL pointing at PostgreSQL")
            if self.redis_url is None:
                raise InsecureSettingsError("production needs ARN_REDIS_URL (replicas share rate limits and events)")
        return self

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'coordinator.sqlite3').resolve()}"

    @property
    def assets_dir(self) -> Path:
        return self.data_dir / "assets"
