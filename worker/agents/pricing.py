"""What model calls cost, and what this worker has spent on them today.

Prices are ESTIMATES copied from Anthropic's public price list (USD per million tokens, standard
tier, 5-minute cache writes) as of November 2026. Change them in `PRICES` when the list changes.
The estimate decides when the daily spending cap stops the agent, so a model with no row here is
priced at the dearest row (`FALLBACK_PRICE`): an unknown model can only stop early, never overspend.
The provider's invoice, not this table, is what the volunteer pays.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from shared.protocol import AgentUsage

_PER_TOKEN = 1e-6  # the table is per million tokens
_KEEP_DAYS = 31


@dataclass(frozen=True)
class ModelPrice:
    input: float  # USD per million uncached input tokens
    output: float
    cache_write: float  # writing the prompt cache (5-minute lifetime)
    cache_read: float  # reading it back


PRICES: dict[str, ModelPrice] = {
    "claude-fable-5-1": ModelPrice(input=10.0, output=50.0, cache_write=12.5, cache_read=0.25),
    "claude-mythos-5-1": ModelPrice(input=10.0, output=50.0, cache_write=12.5, cache_read=0.25),
    "claude-fable-5": ModelPrice(input=10.0, output=50.0, cache_write=12.5, cache_read=1.0),
    "claude-mythos-5": ModelPrice(input=10.0, output=50.0, cache_write=12.5, cache_read=1.0),
    "claude-opus-5-5": ModelPrice(input=4.0, output=20.0, cache_write=5.0, cache_read=0.2),
    "claude-opus-5": ModelPrice(input=5.0, output=25.0, cache_write=6.25, cache_read=0.5),
    "claude-opus-4-8": ModelPrice(input=5.0, output=25.0, cache_write=6.25, cache_read=0.5),
    "claude-opus-4-7": ModelPrice(input=5.0, output=25.0, cache_write=6.25, cache_read=0.5),
    "claude-opus-4-6": ModelPrice(input=5.0, output=25.0, cache_write=6.25, cache_read=0.5),
    "claude-opus-4-5": ModelPrice(input=5.0, output=25.0, cache_write=6.25, cache_read=0.5),
    "claude-sonnet-5-5": ModelPrice(input=2.0, output=10.0, cache_write=2.5, cache_read=0.1),
    "claude-sonnet-5": ModelPrice(input=2.0, output=10.0, cache_write=2.5, cache_read=0.2),
    "claude-sonnet-4-6": ModelPrice(input=3.0, output=15.0, cache_write=3.75, cache_read=0.3),
    "claude-sonnet-4-5": ModelPrice(input=3.0, output=15.0, cache_write=3.75, cache_read=0.3),
    # Haiku 5.5 costs five times more for prompts over 100k tokens; train.py prompts stay far below.
    "claude-haiku-5-5": ModelPrice(input=0.1, output=0.5, cache_write=0.125, cache_read=0.01),
    "claude-haiku-4-5": ModelPrice(input=1.0, output=5.0, cache_write=1.25, cache_read=0.1),
}
FALLBACK_PRICE = max(PRICES.values(), key=lambda price: price.output)


def price_for(model: str) -> ModelPrice | None:
    """The row for `model`, matching dated or suffixed ids (`claude-opus-4-5-20251101`) by longest prefix."""
    matches = [
        name
        for name in PRICES
        if model == name or model.startswith(name + "-") or model.startswith(name + "[")
    ]
    return PRICES[max(matches, key=len)] if matches else None


def estimate_cost_usd(
    model: str,
    *,
    input_tokens: int,
    output_tokens: int,
    cache_write_tokens: int = 0,
    cache_read_tokens: int = 0,
) -> float:
    """Estimated USD for one call; `input_tokens` is the uncached part, as the API reports it."""
    price = price_for(model) or FALLBACK_PRICE
    return _PER_TOKEN * (
        input_tokens * price.input
        + output_tokens * price.output
        + cache_write_tokens * price.cache_write
        + cache_read_tokens * price.cache_read
    )


def describe_usage(usage: AgentUsage | None) -> str:
    """One line for the worker display: tokens and estimated cost of a proposal; "" if it used no model."""
    if usage is None or not (usage.input_tokens or usage.output_tokens or usage.cost_usd):
        return ""
    cached = usage.cache_read_tokens + usage.cache_write_tokens
    cache_text = f" (+{cached:,} cache: {usage.cache_read_tokens:,} read)" if cached else ""
    replies = f", {usage.attempts} replies" if usage.attempts > 1 else ""
    return (
        f"{usage.model or usage.agent}: {usage.input_tokens:,} in{cache_text} / {usage.output_tokens:,} out"
        f" tokens{replies}, ~${usage.cost_usd:.4f}"
    )


def _utc_now() -> datetime:
    return datetime.now(UTC)


class SpendLedger:
    """Estimated spend per UTC day, kept in a small JSON file so the cap survives restarts.

    The file is the source of truth: it is re-read on every question and replaced atomically on
    every write, so a crash mid-write leaves the previous totals rather than a torn file. One
    worker home has one daemon writing it. With `path=None` the ledger lives only in memory.
    """

    def __init__(self, path: Path | None, *, clock: Callable[[], datetime] = _utc_now) -> None:
        self.path = path
        self._clock = clock
        self._memory: dict[str, float] = {}

    def spent_today(self) -> float:
        return self._load().get(self._today(), 0.0)

    def record(self, cost_usd: float) -> None:
        days = self._load()
        today = self._today()
        days[today] = days.get(today, 0.0) + cost_usd
        oldest_kept = (self._clock() - timedelta(days=_KEEP_DAYS)).astimezone(UTC).date().isoformat()
        self._save({day: usd for day, usd in days.items() if day >= oldest_kept})

    def _today(self) -> str:
        return self._clock().astimezone(UTC).date().isoformat()

    def _load(self) -> dict[str, float]:
        if self.path is None:
            return dict(self._memory)
        if not self.path.exists():
            return {}
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
            return {str(day): float(usd) for day, usd in data["usd_by_utc_day"].items()}
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
            # Starting from zero would silently lift the cap, so an unreadable ledger stops the agent.
            raise ValueError(f"spending ledger {self.path} is unreadable ({exc}); fix or delete it") from exc

    def _save(self, days: dict[str, float]) -> None:
        if self.path is None:
            self._memory = days
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        temporary = self.path.with_name(self.path.name + ".tmp")
        temporary.write_text(json.dumps({"usd_by_utc_day": days}, indent=1, sort_keys=True), encoding="utf-8")
        os.replace(temporary, self.path)
