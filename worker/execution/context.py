"""What `train(ctx)` gets: the track's numbers, the clock, training batches and a progress hook.

The context holds train shards only; the val shard never enters the variant's process. The
context is revoked when `train()` returns: its batches, clock and reports then refuse, so a
thread the variant left running cannot keep drawing data or reporting steps. The clock here only
paces the variant (`ctx.time_left()`); the supervisor measures the training time that counts.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence

import numpy as np
import torch

from worker.execution.progress import ProgressChannel

# The largest step a variant may report: steps travel as JSON numbers and are stored as BIGINT.
MAX_STEP = 2**53 - 1


class ContextRevoked(RuntimeError):
    """The context was used after train() returned."""

    def __init__(self) -> None:
        super().__init__("ctx was revoked when train() returned: training is over")


class TrainClock:
    """The track's time budget, counted from `start()`."""

    def __init__(self, budget_s: float) -> None:
        self.budget_s = budget_s
        self._started_at: float | None = None

    def start(self) -> None:
        self._started_at = time.monotonic()

    def elapsed(self) -> float:
        return 0.0 if self._started_at is None else time.monotonic() - self._started_at

    def left(self) -> float:
        return self.budget_s - self.elapsed()


class TrainBatches:
    """Random windows from the train shards, reproducible from the seed.

    Each call to `iterate` gets its own generator, spawned from the seed in call order, so a
    variant's own use of `random`/`torch` never changes which data it sees.
    """

    def __init__(self, shards: Sequence[np.ndarray], *, seed: int, device: str) -> None:
        self._shards = list(shards)
        self._device = torch.device(device)
        self._seeds = np.random.SeedSequence(seed)
        self.tokens_drawn = 0
        self.batches_drawn = 0
        self.revoked = False

    def longest_window(self) -> int:
        return max(len(shard) for shard in self._shards) - 1

    def iterate(self, batch_size: int, seq_len: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, not {batch_size}")
        if not 1 <= seq_len <= self.longest_window():
            raise ValueError(f"seq_len must be between 1 and {self.longest_window()}, not {seq_len}")
        # A window of seq_len + 1 tokens gives x and y = x shifted by one.
        starts_per_shard = np.array([max(0, len(shard) - seq_len) for shard in self._shards])
        cumulative = np.cumsum(starts_per_shard)
        rng = np.random.default_rng(self._seeds.spawn(1)[0])
        pin = self._device.type == "cuda"
        while True:
            if self.revoked:
                raise ContextRevoked()
            picks = rng.integers(0, cumulative[-1], size=batch_size)
            shard_of = np.searchsorted(cumulative, picks, side="right")
            offsets = picks - (cumulative[shard_of] - starts_per_shard[shard_of])
            rows = np.stack(
                [self._shards[s][o : o + seq_len + 1] for s, o in zip(shard_of, offsets, strict=True)]
            ).astype(np.int64)
            window = torch.from_numpy(rows)  # (B, T+1)
            if pin:
                window = window.pin_memory()
            window = window.to(self._device, non_blocking=True)
            self.batches_drawn += 1
            self.tokens_drawn += batch_size * seq_len
            yield window[:, :-1], window[:, 1:]  # (B, T), (B, T)


class TrainContext:
    """The `ctx` passed to `train(ctx)`; see DESIGN.md, "The variant contract"."""

    def __init__(
        self,
        *,
        device: str,
        seed: int,
        vocab_size: int,
        seq_len: int,
        hardware_class: str,
        track_id: str,
        clock: TrainClock,
        batches: TrainBatches,
        progress: ProgressChannel,
    ) -> None:
        self.device = device
        self.seed = seed
        self.vocab_size = vocab_size
        self.seq_len = seq_len
        self.time_budget_s = clock.budget_s
        self.hardware_class = hardware_class
        self.track_id = track_id
        self._clock = clock
        self._batches = batches
        self._progress = progress
        self._revoked = False
        self.last_reported_step: int | None = None

    def revoke(self) -> None:
        """End training: every later use of this context raises ContextRevoked."""
        self._revoked = True
        self._batches.revoked = True

    def time_left(self) -> float:
        """Seconds left of the budget; negative once it is spent."""
        self._check()
        return self._clock.left()

    def batches(
        self, batch_size: int, seq_len: int | None = None
    ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """An endless stream of (x, y) int64 (batch_size, seq_len) on `device`; y is x shifted by one."""
        self._check()
        return self._batches.iterate(batch_size, self.seq_len if seq_len is None else seq_len)

    def report(self, *, step: int, loss: float | torch.Tensor) -> None:
        """Tell the worker how training goes. Cheap to call every step: sends are throttled."""
        self._check()
        if isinstance(step, bool) or not isinstance(step, int | np.integer) or not 0 <= step <= MAX_STEP:
            raise ValueError(f"ctx.report(step=...) takes a whole number from 0 to {MAX_STEP}, not {step!r}")
        self.last_reported_step = int(step)
        self._progress.progress(step=int(step), loss=loss, elapsed_s=self._clock.elapsed())

    def _check(self) -> None:
        if self._revoked:
            raise ContextRevoked()

    @property
    def steps(self) -> int:
        """The last step reported, or the number of batches drawn if the variant never reported."""
        if self.last_reported_step is not None:
            return self.last_reported_step
        return self._batches.batches_drawn

    @property
    def tokens(self) -> int:
        return self._batches.tokens_drawn
