"""Who this worker is: its home directory, its Ed25519 key, and what it knows about each coordinator.

Layout of the home directory (default ~/.autoresearch-worker):

    worker.key                   the worker's private key (0600); its public half is the worker's identity
    worker.lock                  held while a daemon runs, so two daemons never share one outbox
    status.json                  what the running daemon is doing, for `worker status` (see worker.status)
    coordinators/<slug>.json     per coordinator URL: the pinned coordinator key, worker id and token (0600)
    outbox/                      signed results not yet accepted (see worker.outbox)
    assets/<sha256>              track data, content-addressed (see worker.assets)
    runs/<lease_id>/             scratch directory of one lease's runs (`worker run`: runs/local-...);
                                 the newest KEEP_RUNS are kept for a look after the fact

The coordinator key is pinned on first contact (trust on first use, like SSH). Every variant the
worker runs must carry that key's signature, so a coordinator that later presents another key is
refused: it could otherwise hand out arbitrary code.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import re
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import IO
from urllib.parse import urlsplit

from shared.signing import SigningKey

DEFAULT_HOME = Path("~/.autoresearch-worker")
# Run folders kept. A run's folder is its HOME and TMPDIR, so compiler caches land there (hundreds
# of MB on a GPU); a count, unlike an age, bounds the disk used however fast runs come.
KEEP_RUNS = 10


class IdentityError(Exception):
    """The worker's home or its saved state cannot be used as it is."""


class CoordinatorKeyMismatch(IdentityError):
    """The coordinator presents a different signing key from the one pinned at join."""


class HomeInUse(IdentityError):
    """Another daemon already runs with this home directory."""


@dataclass
class CoordinatorState:
    """What this worker remembers about one coordinator."""

    url: str
    public_key: str  # pinned at first contact
    worker_id: str | None = None
    token: str | None = None
    account: str | None = None
    account_secret: str | None = None  # what another machine shows to join the account from elsewhere
    name: str | None = None
    hardware_class: str | None = None

    @property
    def registered(self) -> bool:
        return self.worker_id is not None and self.token is not None


def normalize_url(url: str) -> str:
    """The form of a coordinator URL used as its identity: scheme and host lower-case, no trailing slash."""
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise IdentityError(f"not a coordinator URL (expected http:// or https://...): {url!r}")
    path = parts.path.rstrip("/")
    return f"{parts.scheme.lower()}://{parts.netloc.lower()}{path}"


def _slug(url: str) -> str:
    # Readable for a human listing the folder, unique thanks to the hash suffix.
    readable = re.sub(r"[^a-z0-9]+", "-", urlsplit(url).netloc.lower()).strip("-")[:60]
    return f"{readable}-{hashlib.sha256(url.encode()).hexdigest()[:10]}"


def _write_private(path: Path, text: str) -> None:
    """Write `text` to `path` atomically, readable by the owner only (it may hold a bearer token)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())
    os.chmod(tmp, 0o600)  # O_CREAT's mode does not apply to a tmp file left by an earlier crash
    os.replace(tmp, path)


class WorkerHome:
    """The worker's home directory and the files in it."""

    def __init__(self, root: Path) -> None:
        self.root = root.expanduser().resolve()
        self._lock_handle: IO[str] | None = None

    @property
    def key_path(self) -> Path:
        return self.root / "worker.key"

    @property
    def outbox_dir(self) -> Path:
        return self.root / "outbox"

    @property
    def assets_dir(self) -> Path:
        return self.root / "assets"

    @property
    def runs_dir(self) -> Path:
        return self.root / "runs"

    def prune_runs(self, *, keep: int = KEEP_RUNS) -> list[Path]:
        """Delete all but the `keep` newest run folders (by mtime); return the ones deleted."""
        if not self.runs_dir.is_dir():
            return []
        runs = sorted((p for p in self.runs_dir.iterdir() if p.is_dir()), key=lambda p: p.stat().st_mtime)
        old = runs[: max(0, len(runs) - keep)]
        for path in old:
            shutil.rmtree(path, ignore_errors=True)
        return old

    def signing_key(self) -> SigningKey:
        """The worker's key, created on first use."""
        self.root.mkdir(parents=True, exist_ok=True, mode=0o700)
        key = SigningKey.load_or_create(self.key_path)
        if self.key_path.stat().st_mode & 0o077:
            raise IdentityError(f"{self.key_path} is readable by other users; run: chmod 600 {self.key_path}")
        return key

    def lock(self) -> None:
        """Hold the home's lock for the life of this process, or raise HomeInUse."""
        self.root.mkdir(parents=True, exist_ok=True, mode=0o700)
        handle = (self.root / "worker.lock").open("a", encoding="utf-8")
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            handle.close()
            raise HomeInUse(f"another worker is already running with home {self.root}") from exc
        self._lock_handle = handle

    def unlock(self) -> None:
        if self._lock_handle is not None:
            self._lock_handle.close()  # closing the file releases the flock
            self._lock_handle = None

    def state_path(self, url: str) -> Path:
        return self.root / "coordinators" / f"{_slug(normalize_url(url))}.json"

    def load_state(self, url: str) -> CoordinatorState | None:
        path = self.state_path(url)
        if not path.exists():
            return None
        try:
            return CoordinatorState(**json.loads(path.read_text(encoding="utf-8")))
        except (ValueError, TypeError) as exc:
            raise IdentityError(f"{path} is damaged ({exc}); delete it to join again") from exc

    def save_state(self, state: CoordinatorState) -> None:
        _write_private(self.state_path(state.url), json.dumps(asdict(state), indent=2, sort_keys=True) + "\n")

    def pin_coordinator(self, url: str, public_key: str) -> CoordinatorState:
        """Return the saved state for `url`, pinning `public_key` on first contact.

        Raises CoordinatorKeyMismatch when a different key was pinned before.
        """
        url = normalize_url(url)
        state = self.load_state(url)
        if state is None:
            state = CoordinatorState(url=url, public_key=public_key)
            self.save_state(state)
            return state
        if state.public_key != public_key:
            raise CoordinatorKeyMismatch(
                f"REFUSING {url}: it presents signing key {public_key[:16]}..., but this worker pinned"
                f" {state.public_key[:16]}... when it joined. The coordinator's key changed or someone is"
                f" impersonating it. If the operator confirms a key rotation, delete {self.state_path(url)}"
                " and join again."
            )
        return state
