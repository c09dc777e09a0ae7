"""A machine-wide cache of the built-in track's data, for coordinators that start on fresh data
folders (a demo run again, a test suite, replicas without a shared volume): built once, then
copied.

The build is deterministic: the same Python installation, build code, tokenizers release and
vocabulary give byte-identical files (tests/unit/test_trackdata_cpu_tiny.py). Those are the cache's
key, so a change to any of them builds afresh. Each file is checked against its sha256 name when
copied out, so a damaged cache is rebuilt rather than served. Entries are written to a temporary
folder and renamed into place, so two coordinators filling the cache at once never see half an
entry.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
import shutil
import sys
import tempfile
from importlib import metadata
from pathlib import Path

from coordinator.trackdata.build import BuiltAssets, build_cpu_tiny
from coordinator.trackdata.store import asset_path
from shared.hashing import sha256_file

log = logging.getLogger(__name__)

_BUILD_CODE = ("build.py", "corpus.py", "split.py", "store.py", "tokenizer.py")


def cpu_tiny_key(vocab_size: int) -> str:
    digest = hashlib.sha256()
    here = Path(__file__).resolve().parent
    for name in _BUILD_CODE:
        digest.update((here / name).read_bytes())
    for part in (sys.version, sys.platform, metadata.version("tokenizers"), metadata.version("numpy"), str(vocab_size)):
        digest.update(part.encode() + b"\0")
    return digest.hexdigest()


def cached_cpu_tiny(out_dir: Path, *, vocab_size: int, cache_dir: Path | None) -> BuiltAssets:
    """build_cpu_tiny(out_dir), from `cache_dir` when it holds this build; the build goes there
    when it does not. Without a cache folder, it builds."""
    if cache_dir is None:
        return build_cpu_tiny(out_dir, vocab_size=vocab_size)
    entry = cache_dir / f"cpu-tiny-{cpu_tiny_key(vocab_size)}"
    if entry.exists():
        cached = _copy_out(entry, out_dir)
        if cached is not None:
            log.info("the built-in track's data comes from the cache at %s", entry)
            return cached
        log.warning("the cached track data at %s is damaged; building it again", entry)
        shutil.rmtree(entry, ignore_errors=True)
    built = build_cpu_tiny(out_dir, vocab_size=vocab_size)
    _store(entry, out_dir, built)
    return built


def _copy_out(entry: Path, out_dir: Path) -> BuiltAssets | None:
    try:
        fields = json.loads((entry / "built.json").read_text())
        built = BuiltAssets(**fields)
    except (OSError, ValueError, TypeError):
        return None
    out_dir.mkdir(parents=True, exist_ok=True)
    for sha in built.hashes():
        source = asset_path(entry, sha)
        if not source.is_file() or sha256_file(source) != sha:
            return None
        target = asset_path(out_dir, sha)
        if not target.exists():
            partial = target.with_name(f".{sha}.partial")
            shutil.copyfile(source, partial)
            os.replace(partial, target)
    return built


def _store(entry: Path, out_dir: Path, built: BuiltAssets) -> None:
    try:
        entry.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=".staging-", dir=entry.parent))
        for sha in built.hashes():
            shutil.copyfile(asset_path(out_dir, sha), asset_path(staging, sha))
        (staging / "built.json").write_text(json.dumps(dataclasses.asdict(built)))
        try:
            staging.rename(entry)
        except OSError:  # another coordinator stored the same build first
            shutil.rmtree(staging, ignore_errors=True)
    except OSError as exc:
        log.warning("could not keep the built track data in the cache at %s: %s", entry.parent, exc)
