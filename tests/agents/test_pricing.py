"""Cost estimates and the persistent daily spend ledger."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from shared.protocol import AgentUsage
from worker.agents.pricing import (
    FALLBACK_PRICE,
    PRICES,
    SpendLedger,
    describe_usage,
    estimate_cost_usd,
    price_for,
)


def test_dated_and_suffixed_model_ids_find_their_row_by_longest_prefix() -> None:
    assert price_for("claude-opus-4-5-20251101") == PRICES["claude-opus-4-5"]
    assert price_for("claude-sonnet-5-5") == PRICES["claude-sonnet-5-5"]
    assert price_for("claude-sonnet-5-5[1m]") == PRICES["claude-sonnet-5-5"]
    assert price_for("claude-sonnet-5") == PRICES["claude-sonnet-5"]
    assert price_for("claude-sonnet-55") is None


def test_cost_counts_each_kind_of_token_at_its_own_rate() -> None:
    cost = estimate_cost_usd(
        "claude-sonnet-4-6",
        input_tokens=1_000_000,
        output_tokens=100_000,
        cache_write_tokens=200_000,
        cache_read_tokens=2_000_000,
    )

    assert cost == pytest.approx(3.0 + 1.5 + 0.75 + 0.6)


def test_an_unknown_model_is_priced_at_the_dearest_row() -> None:
    cost = estimate_cost_usd("claude-unlisted-9", input_tokens=1_000_000, output_tokens=0)

    assert cost == pytest.approx(FALLBACK_PRICE.input)
    assert FALLBACK_PRICE.input == max(price.input for price in PRICES.values())


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def test_the_ledger_survives_a_restart_and_starts_afresh_each_utc_day(tmp_path: Path) -> None:
    path = tmp_path / "home" / "spend.json"
    clock = Clock(datetime(2026, 11, 22, 23, 30, tzinfo=UTC))
    SpendLedger(path, clock=clock).record(1.25)
    SpendLedger(path, clock=clock).record(0.5)

    assert SpendLedger(path, clock=clock).spent_today() == pytest.approx(1.75)
    clock.now += timedelta(hours=1)
    assert SpendLedger(path, clock=clock).spent_today() == 0.0
    assert json.loads(path.read_text()) == {"usd_by_utc_day": {"2026-11-22": 1.75}}


def test_the_ledger_forgets_days_older_than_a_month(tmp_path: Path) -> None:
    path = tmp_path / "spend.json"
    clock = Clock(datetime(2026, 10, 1, tzinfo=UTC))
    ledger = SpendLedger(path, clock=clock)
    ledger.record(2.0)
    clock.now = datetime(2026, 11, 22, tzinfo=UTC)
    ledger.record(0.1)

    assert json.loads(path.read_text()) == {"usd_by_utc_day": {"2026-11-22": 0.1}}


def test_an_unreadable_ledger_is_an_error_rather_than_a_lifted_cap(tmp_path: Path) -> None:
    path = tmp_path / "spend.json"
    path.write_text("{not json")

    with pytest.raises(ValueError, match=r"spending ledger .*spend\.json is unreadable"):
        SpendLedger(path).spent_today()


def test_a_ledger_without_a_file_keeps_its_totals_in_memory() -> None:
    ledger = SpendLedger(None)
    ledger.record(0.25)
    ledger.record(0.25)

    assert ledger.spent_today() == pytest.approx(0.5)


def test_the_usage_line_names_tokens_cache_replies_and_cost_and_is_empty_without_a_model() -> None:
    usage = AgentUsage(
        agent="claude",
        model="claude-sonnet-4-6",
        input_tokens=2400,
        output_tokens=1600,
        cache_read_tokens=3000,
        cache_write_tokens=3000,
        cost_usd=0.05,
        attempts=2,
    )

    assert describe_usage(usage) == (
        "claude-sonnet-4-6: 2,400 in (+6,000 cache: 3,000 read) / 1,600 out tokens, 2 replies, ~$0.0500"
    )
    assert describe_usage(AgentUsage(agent="offline", model="strategy:guided")) == ""
    assert describe_usage(AgentUsage(agent="command", model="mycli")) == ""
    assert describe_usage(None) == ""
