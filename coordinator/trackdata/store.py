"""Content-addressed files: each asset lives in one folder under the bare hex sha256 of its bytes."""

from __future__ import annotations

import contextlib
import os
import re
import uuid
from collections.abc import Callable
from pathlib import Path

from coordinator.trackdata.errors import TrackDataError
from shared.hashing import sha256_file

_SHA256 = re.compile(r"^[0-9a-f]{64}$")
WriteFile = Callable[[Path], None]


def asset_path(out_dir: Path, sha: str) -> Path:
    if not _SHA256.match(sha):
        raise TrackDataError(f"not a sha256 address: {sha!r}")
    return out_dir / sha


class AssetStore:
    """Writes files under their sha256. Each goes to a unique temporary name in the same folder
    and is renamed into place once complete, so a crash never leaves a partial file under a hash
    name, and concurrent builds of the same data cannot corrupt each other."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.sizes: dict[str, int] = {}

    def put_bytes(self, data: bytes) -> str:
        def write(path: Path) -> None:
            path.write_bytes(data)

        return self.put(write)

    def put(self, write: WriteFile) -> str:
        """Store what `write` writes to the path it is given; return its sha256."""
        # The .npy suffix stops np.save from appending one to the temporary name.
        tmp = self.root / f".{uuid.uuid4().hex}.tmp.npy"
        try:
            write(tmp)
            sha = sha256_file(tmp)
            final = asset_path(self.root, sha)
            if final.exists() and sha256_file(final) == sha:
                self.sizes[sha] = final.stat().st_size
                return sha  # already stored by an earlier build
            with tmp.open("rb") as handle:
                os.fsync(handle.fileno())
            os.chmod(tmp, 0o444)  # an address names fixed bytes
            os.replace(tmp, final)
            _fsync_dir(self.root)
            self.sizes[sha] = final.stat().st_size
            return sha
        finally:
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()


def _fsync_dir(path: Path) -> None:
    """Make a rename durable; a no-op where directories cannot be opened (Windows)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
