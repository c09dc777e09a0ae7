"""The harness's data paths in process: seeded train batches, fixed eval windows, bits per byte."""

from __future__ import annotations

import hashlib
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from shared.data_format import read_tokens
from tests.trackfactory import build_track
from worker.harness.context import TrainBatches
from worker.harness.evaluate import eval_batches, evaluate


@pytest.fixture(scope="module")
def shards(tmp_path_factory: pytest.TempPathFactory) -> list[np.ndarray]:
    spec, data_dir = build_track(tmp_path_factory.mktemp("track"), n_train_tokens=20_000)
    return [read_tokens(data_dir / digest) for digest in spec.assets.train]


def draw(shards: list[np.ndarray], *, seed: int, batches: int = 3) -> list[torch.Tensor]:
    stream = TrainBatches(shards, seed=seed, device="cpu").iterate(4, 32)
    return [x for x, _ in (next(stream) for _ in range(batches))]


def test_train_batches_depend_only_on_the_seed(shards: list[np.ndarray]) -> None:
    first = draw(shards, seed=3)
    torch.manual_seed(123)  # a variant's own randomness
    np.random.seed(123)
    again = draw(shards, seed=3)
    other = draw(shards, seed=4)

    assert all(torch.equal(a, b) for a, b in zip(first, again, strict=True))
    assert not all(torch.equal(a, b) for a, b in zip(first, other, strict=True))


def test_targets_are_the_inputs_shifted_by_one_from_a_real_window(shards: list[np.ndarray]) -> None:
    batches = TrainBatches(shards, seed=0, device="cpu")
    x, y = next(batches.iterate(8, 16))

    assert (x.shape, y.shape, x.dtype, y.dtype) == ((8, 16), (8, 16), torch.int64, torch.int64)
    assert torch.equal(x[:, 1:], y[:, :-1])
    windows = np.lib.stride_tricks.sliding_window_view(np.concatenate(shards), 17)
    assert (windows == np.append(x[0].numpy(), int(y[0, -1]))).all(axis=1).any()
    assert (batches.batches_drawn, batches.tokens_drawn) == (1, 8 * 16)


@pytest.mark.parametrize(("batch_size", "seq_len"), [(0, 16), (4, 0), (4, 10**9)])
def test_train_batches_refuse_impossible_shapes(
    shards: list[np.ndarray], batch_size: int, seq_len: int
) -> None:
    with pytest.raises(ValueError, match="must be"):
        next(TrainBatches(shards, seed=0, device="cpu").iterate(batch_size, seq_len))


def test_eval_windows_score_exactly_eval_tokens_targets() -> None:
    val = np.arange(1000, dtype=np.uint16)

    batches = list(eval_batches(val, seq_len=64, eval_tokens=150, batch_size=2))

    assert [b.x.shape for b in batches] == [(2, 64), (1, 64)]
    assert sum(int(b.scored.sum()) for b in batches) == 150
    assert batches[0].x[1, 0] == 64  # non-overlapping, consecutive windows from the start
    assert batches[1].y[0][batches[1].scored[0]][-1] == 150  # the last scored target is token 150


class Uniform(torch.nn.Module):
    def __init__(self, vocab_size: int) -> None:
        super().__init__()
        self.logit = torch.nn.Parameter(torch.zeros(vocab_size))

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        return self.logit.expand(*idx.shape, -1)


def test_bits_per_byte_weigh_tokens_by_their_bytes_and_skip_special_tokens() -> None:
    vocab_size = 4
    token_bytes = np.array([0, 1, 2, 3])  # token 0 is special
    val = np.array([0, 1, 2, 3, 0, 1, 2, 3, 0], dtype=np.uint16)

    score = evaluate(
        Uniform(vocab_size),
        val_tokens=val,
        token_bytes=token_bytes,
        seq_len=4,
        vocab_size=vocab_size,
        eval_tokens=8,
        batch_size=1,
        device="cpu",
    )

    # Targets 1,2,3,0,1,2,3,0: six count, holding 12 bytes, each costing ln 4 nats.
    assert (score.tokens, score.bytes) == (6, 12)
    assert score.val_loss == pytest.approx(math.log(4))
    assert score.val_bpb == pytest.approx(6 * math.log(4) / (math.log(2) * 12))


def test_trackfactory_writes_files_named_by_their_sha256(tmp_path: Path) -> None:
    spec, data_dir = build_track(tmp_path, vocab_size=300)

    names = {*spec.assets.train, spec.assets.val, spec.assets.token_bytes}
    assert {p.name for p in data_dir.iterdir()} == names
    assert all(hashlib.sha256((data_dir / name).read_bytes()).hexdigest() == name for name in names)
    assert int(read_tokens(data_dir / spec.assets.val).max()) < 300
