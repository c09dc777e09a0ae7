"""Track data on the worker: content-addressed files under home/assets/<sha256>.

Downloads. A download goes to `<sha256>.partial` in the same folder, is hashed, and is renamed
into place only when its sha256 matches the address. So a file under its final name was correct
when written, whatever the server or the network did. GPU tracks ship shards of gigabytes, so an
interrupted download keeps its partial file, and the next attempt (the client's retry, or the
next start) asks for the rest with `Range: bytes=N-` and appends it. Bytes that arrive whole but
hash wrong are deleted and fetched once more from scratch: a partial file can hold a stale or
torn prefix (a crash mid-write, a power cut), and one clean download settles that. A second
mismatch is an AssetError. One download runs at a time per folder (a lock on the folder), so
`worker run` beside a daemon waits for the other's download rather than appending to it.

Cache check: a cached file is re-hashed the first time this process uses it, then trusted for the
rest of the process as long as its size and mtime are unchanged. Hashing every use would re-read
gigabytes of GPU-track shards before each five-minute run; trusting the name alone would let a
disk error or a stray edit between runs silently change what every later run trains on. Once per
process catches that at each start, for the price of one read.

Cache limit: with `max_bytes`, once a track's files are in place the least recently used files of
other tracks (and their partial downloads) are deleted until the folder fits. A file's last use
is its access time, which `ensure` sets explicitly each time it hands the file out, so a mount
with noatime does not make every file look unused. The files of the track at hand are never
deleted: a track larger than the limit keeps all of its files, with a warning.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Protocol

from rich.filesize import decimal as file_size

from shared.hashing import sha256_file, short_hash
from worker.client import CoordinatorClient

_SHA256 = re.compile(r"^[0-9a-f]{64}$")
PARTIAL_SUFFIX = ".partial"
BYTES_PER_GB = 10**9
BYTES_PER_S_PER_MBPS = 125_000  # one megabit per second


class AssetError(Exception):
    """An asset could not be fetched or its bytes do not match its address."""


class DownloadWatcher(Protocol):
    """Who is told how downloads go (worker.display's displays are)."""

    def event(self, message: str) -> None: ...

    def warning(self, message: str) -> None: ...

    def download_started(self, *, label: str, done: int, total: int | None) -> None: ...

    def download_advanced(self, *, done: int, total: int | None) -> None: ...

    def download_finished(self, *, label: str, ok: bool) -> None: ...


class Throttle:
    """A token bucket: at most `bytes_per_s` on average, in bursts of at most `burst` bytes.

    Each chunk takes its size in tokens; the bucket refills at the rate and holds at most `burst`
    (one second's worth by default). A chunk larger than what is left puts the bucket in debt,
    and the wait repays it. Reading slowly is enough to slow the sender: TCP flow control holds
    back what the worker has not read.
    """

    def __init__(
        self,
        bytes_per_s: float,
        *,
        burst: float | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if bytes_per_s <= 0:
            raise ValueError(f"a bandwidth limit must be positive, not {bytes_per_s}")
        self.bytes_per_s = bytes_per_s
        self.burst = burst if burst is not None else bytes_per_s
        self._clock = clock
        self._sleep = sleep
        self._tokens = self.burst
        self._last = clock()

    def delay(self, size: int) -> float:
        """Take `size` bytes' worth of tokens; the seconds to wait before reading on."""
        now = self._clock()
        self._tokens = min(self.burst, self._tokens + (now - self._last) * self.bytes_per_s)
        self._last = now
        self._tokens -= size
        return max(0.0, -self._tokens / self.bytes_per_s)

    def __call__(self, size: int) -> None:
        wait = self.delay(size)
        if wait > 0:
            self._sleep(wait)


class AssetStore:
    """home/assets: every track's data files, named by their sha256 (the harness's data_dir)."""

    def __init__(
        self,
        root: Path,
        *,
        max_bytes: int | None = None,
        max_bytes_per_s: float | None = None,
        watcher: DownloadWatcher | None = None,
    ) -> None:
        self.root = root
        self.max_bytes = max_bytes
        self.throttle = Throttle(max_bytes_per_s) if max_bytes_per_s else None
        self.watcher = watcher
        self._verified: dict[str, tuple[int, int]] = {}  # sha256 -> (size, mtime_ns) checked this process
        self._warned_over_limit: set[frozenset[str]] = set()

    @classmethod
    def with_limits(
        cls,
        root: Path,
        *,
        max_cache_gb: float | None = None,
        max_download_mbps: float | None = None,
        watcher: DownloadWatcher | None = None,
    ) -> AssetStore:
        """A store with the limits in the units a volunteer gives them (GB = 10^9 bytes, megabits/s)."""
        return cls(
            root,
            max_bytes=round(max_cache_gb * BYTES_PER_GB) if max_cache_gb is not None else None,
            max_bytes_per_s=max_download_mbps * BYTES_PER_S_PER_MBPS if max_download_mbps else None,
            watcher=watcher,
        )

    def path(self, sha256: str) -> Path:
        if not _SHA256.match(sha256):
            raise AssetError(f"not a sha256 address: {sha256!r}")
        return self.root / sha256

    def ensure(self, client: CoordinatorClient, *, track_id: str, hashes: Iterable[str]) -> Path:
        """Make every asset in `hashes` present and verified; return the folder holding them."""
        wanted = list(dict.fromkeys(hashes))
        self.root.mkdir(parents=True, exist_ok=True)
        missing = [sha256 for sha256 in wanted if not self._present(sha256)]
        if missing:
            self.evict(keep=wanted)  # room first, where the limit allows it
            with self._download_lock():
                for sha256 in missing:
                    if not self._present(sha256):  # another process may have fetched it meanwhile
                        self._fetch(client, track_id=track_id, sha256=sha256)
        for sha256 in wanted:
            self._mark_used(self.path(sha256))
        self.evict(keep=wanted)
        return self.root

    # --- the cache ------------------------------------------------------------------------------

    def _present(self, sha256: str) -> bool:
        path = self.path(sha256)
        return path.exists() and self._cached_ok(sha256, path)

    def _cached_ok(self, sha256: str, path: Path) -> bool:
        stat = path.stat()
        if self._verified.get(sha256) == (stat.st_size, stat.st_mtime_ns):
            return True
        if sha256_file(path) != sha256:
            path.unlink()  # damaged: fetch it again
            return False
        self._verified[sha256] = (stat.st_size, stat.st_mtime_ns)
        return True

    @staticmethod
    def _mark_used(path: Path) -> None:
        # The access time only: the mtime is part of what the once-per-process check trusts.
        with contextlib.suppress(OSError):
            os.utime(path, ns=(time.time_ns(), path.stat().st_mtime_ns))

    def evict(self, *, keep: Iterable[str]) -> list[str]:
        """Delete the least recently used files not in `keep` until the folder fits `max_bytes`.

        Returns the names deleted. Partial downloads count, dated by their last write.
        """
        if self.max_bytes is None or not self.root.is_dir():
            return []
        kept = set(keep)
        total = 0
        candidates: list[tuple[float, int, str]] = []  # (last use, size, name)
        for entry in os.scandir(self.root):
            sha256 = entry.name.removesuffix(PARTIAL_SUFFIX)
            if not _SHA256.match(sha256) or not entry.is_file(follow_symlinks=False):
                continue
            stat = entry.stat(follow_symlinks=False)
            total += stat.st_size
            if sha256 not in kept:
                last_use = stat.st_mtime if entry.name.endswith(PARTIAL_SUFFIX) else stat.st_atime
                candidates.append((last_use, stat.st_size, entry.name))
        removed: list[str] = []
        freed = 0
        for _last_use, size, name in sorted(candidates):
            if total <= self.max_bytes:
                break
            with contextlib.suppress(FileNotFoundError):
                (self.root / name).unlink()
            self._verified.pop(name, None)
            total -= size
            freed += size
            removed.append(name)
        if removed and self.watcher is not None:
            self.watcher.event(
                f"asset cache: deleted {len(removed)} least recently used file(s) of other tracks"
                f" ({file_size(freed)}) to stay under {file_size(self.max_bytes)}"
            )
        if total > self.max_bytes and kept and frozenset(kept) not in self._warned_over_limit:
            self._warned_over_limit.add(frozenset(kept))
            if self.watcher is not None:
                self.watcher.warning(
                    f"the data of the track at hand takes {file_size(total)}, over the cache limit"
                    f" of {file_size(self.max_bytes)}; it is kept, since the runs need it"
                )
        return removed

    # --- downloading ----------------------------------------------------------------------------

    @contextlib.contextmanager
    def _download_lock(self) -> Iterator[None]:
        folder = os.open(self.root, os.O_RDONLY)  # the lock is on the folder: no lock file to clutter it
        try:
            try:
                fcntl.flock(folder, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                if self.watcher is not None:
                    self.watcher.event(
                        f"waiting for another worker process to finish its download into {self.root}"
                    )
                fcntl.flock(folder, fcntl.LOCK_EX)
            yield
        finally:
            os.close(folder)  # closing releases the lock

    def _fetch(self, client: CoordinatorClient, *, track_id: str, sha256: str) -> None:
        path = self.path(sha256)
        partial = path.with_name(sha256 + PARTIAL_SUFFIX)
        for attempt in (1, 2):
            self._download(client, track_id=track_id, sha256=sha256, partial=partial)
            actual = sha256_file(partial)
            if actual == sha256:
                break
            partial.unlink()
            message = f"asset {sha256[:12]} of track {track_id} arrived with sha256 {actual[:12]}"
            if attempt == 2:
                raise AssetError(f"{message} again after a fresh download; discarded")
            if self.watcher is not None:
                self.watcher.warning(f"{message}; discarded, fetching it again from the start")
        with partial.open("rb") as handle:
            os.fsync(handle.fileno())
        os.chmod(partial, 0o444)  # runs read the data; nothing should write it
        os.replace(partial, path)
        stat = path.stat()
        self._verified[sha256] = (stat.st_size, stat.st_mtime_ns)

    def _download(self, client: CoordinatorClient, *, track_id: str, sha256: str, partial: Path) -> None:
        watcher = self.watcher
        label = f"asset {short_hash(sha256)} of {track_id}"
        started = announced = False

        def on_progress(done: int, total: int | None) -> None:
            nonlocal started, announced
            if watcher is None:
                return
            if not started:
                started = announced = True
                watcher.download_started(label=label, done=done, total=total)
            else:
                watcher.download_advanced(done=done, total=total)

        def attempt() -> None:
            nonlocal started
            started = False  # each attempt says where it starts from
            client.download_asset(track_id, sha256, partial, on_progress=on_progress, throttle=self.throttle)

        ok = False
        try:
            client.call(attempt)
            ok = True
        finally:
            if watcher is not None and announced:
                watcher.download_finished(label=label, ok=ok)
