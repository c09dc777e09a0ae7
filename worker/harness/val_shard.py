"""The val shard, read only once train() has returned: from a pipe the runner fills, or from a file.

Under the worker's sandbox the val shard is not in the harness's filesystem at all; the runner
writes its bytes into an inherited pipe (`--val-fd`) once training has finished, so nothing the
variant does while it trains can read it. Reading the file from `--data-dir` is for running the
harness by hand.
"""

from __future__ import annotations

import hashlib
import io
import os
from pathlib import Path

import numpy as np

from shared.data_format import read_tokens
from shared.track_spec import TrackSpec
from worker.harness.evaluate import val_tokens_needed


def load_val_shard(spec: TrackSpec, *, data_dir: Path, val_fd: int | None) -> np.ndarray:
    """The val tokens, long enough for the track's eval windows. Raises OSError or ValueError."""
    tokens = read_tokens(data_dir / spec.assets.val) if val_fd is None else read_piped_shard(val_fd, spec)
    needed = val_tokens_needed(seq_len=spec.seq_len, eval_tokens=spec.eval_tokens)
    if len(tokens) < needed:
        raise ValueError(
            f"the val shard holds {len(tokens)} tokens; {spec.eval_tokens} targets in windows of"
            f" {spec.seq_len} need {needed}"
        )
    return tokens


def read_piped_shard(fd: int, spec: TrackSpec) -> np.ndarray:
    """Read the shard's .npy bytes from `fd` to EOF, check them against the track's sha256, parse."""
    with os.fdopen(fd, "rb") as pipe:
        data = pipe.read()
    digest = hashlib.sha256(data).hexdigest()
    if digest != spec.assets.val:
        raise ValueError(
            f"the {len(data)} bytes read from fd {fd} have sha256 {digest}, not the val shard's {spec.assets.val}"
        )
    tokens = np.load(io.BytesIO(data), allow_pickle=False)
    # The same shape and dtype rules as shared.data_format.read_tokens, which only reads files.
    if tokens.ndim != 1 or tokens.dtype not in (np.uint16, np.uint32):
        raise ValueError(f"fd {fd}: not a token shard (shape {tokens.shape}, dtype {tokens.dtype})")
    return tokens
