"""Track data on the worker: content-addressed files under home/assets/<sha256>.

A download goes to a temporary file in the same folder, is hashed, and is renamed
into place only when its sha256 matches the address. So a file under its final name was correct
when written, whatever the server or the network did.

Cache check: a cached file is re-hashed the first time this process uses it, then trusted for the
rest of the process as long as its size and mtime are unchanged. Hashing every use would re-read
gigabytes of GPU-track shards before each five-minute run; trusting the name alone would let a
disk error or a stray edit between runs silently change what every later run trains on. Once per
process catches that at each start, for the price of one read.
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Iterable
from pathlib import Path

from shared.hashing import sha256_file
from worker.client import CoordinatorClient

_SHA256 = re.compile(r"^[0-9a-f]{64}$")


class AssetError(Exception):
    """An asset could not be fetched or its bytes do not match its address."""


class AssetStore:
    """home/assets: every track's data files, named by their sha256 (the harness's data_dir)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._verified: dict[str, tuple[int, int]] = {}  # sha256 -> (size, mtime_ns) checked this process

    def path(self, sha256: str) -> Path:
        if not _SHA256.match(sha256):
            raise AssetError(f"not a sha256 address: {sha256!r}")
        return self.root / sha256

    def ensure(self, client: CoordinatorClient, *, track_id: str, hashes: Iterable[str]) -> Path:
        """Make every asset in `hashes` present and verified; return the folder holding them."""
        self.root.mkdir(parents=True, exist_ok=True)
        for sha256 in hashes:
            path = self.path(sha256)
            if path.exists() and self._cached_ok(sha256, path):
                continue
            self._download(client, track_id=track_id, sha256=sha256, path=path)
        return self.root

    def _cached_ok(self, sha256: str, path: Path) -> bool:
        stat = path.stat()
        if self._verified.get(sha256) == (stat.st_size, stat.st_mtime_ns):
            return True
        if sha256_file(path) != sha256:
            path.unlink()  # damaged: fetch it again
            return False
        self._verified[sha256] = (stat.st_size, stat.st_mtime_ns)
        return True

    def _download(self, client: CoordinatorClient, *, track_id: str, sha256: str, path: Path) -> None:
        tmp = path.with_name(f".{sha256}.{os.getpid()}.part")
        try:
            client.call(lambda: client.download_asset(track_id, sha256, tmp))
            actual = sha256_file(tmp)
            if actual != sha256:
                raise AssetError(
                    f"asset {sha256[:12]} of track {track_id} arrived with sha256 {actual[:12]}; discarded"
                )
            with tmp.open("rb") as handle:
                os.fsync(handle.fileno())
            os.chmod(tmp, 0o444)  # runs read the data; nothing should write it
            os.replace(tmp, path)
        finally:
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
        stat = path.stat()
        self._verified[sha256] = (stat.st_size, stat.st_mtime_ns)
