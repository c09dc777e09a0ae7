"""The guided offline strategy: no repeats from a parent, credit from the log, the track's hardware only."""

from __future__ import annotations

import hashlib
import math
import re
from collections import Counter
from typing import Any

import pytest

from worker.agents import AgentError, ProposalContext
from worker.agents.guided import PastChange, credit, parse_change
from worker.agents.offline import OfflineAgent

PARENT = """\
LR = 0.004  # learning rate
DEPTH = 4
WEIGHT_DECAY = 0.1
BATCH_SIZE = 32
BETA = 0.9
WARMUP = 0.05
CPU_WIDTH = 128
GPU_WIDTH = 512
GPU_LR = 1e-3
"""
PARENT_HASH = "p" * 64
GRANDPARENT_HASH = "g" * 64
ELDER_HASH = "e" * 64
HYPOTHESIS = re.compile(r"^(?P<name>[A-Z][A-Z0-9_]*) (?P<old>\S+) -> (?P<new>\S+)$")
SEEDS = range(300)


def entry(hypothesis: str, *, parent: str, status: str, delta: float | None = None) -> dict[str, Any]:
    """A research-log entry as the daemon passes it (LogEntry's JSON shape)."""
    return {
        "hash": hashlib.sha256(f"{hypothesis} {parent} {status}".encode()).hexdigest(),
        "parent_hash": parent,
        "hypothesis": hypothesis,
        "status": status,
        "delta": delta,
    }


def context(
    seed: int,
    *,
    log: list[dict[str, Any]] | None = None,
    hardware: str | None = "cpu",
    source: str = PARENT,
) -> ProposalContext:
    return ProposalContext(
        track_id="cpu-tiny",
        brief="",
        parent_hash=PARENT_HASH,
        parent_source=source,
        research_log=log or [],
        seed=seed,
        hardware_class=hardware,
    )


def moves(
    log: list[dict[str, Any]] | None = None, *, hardware: str | None = "cpu"
) -> list[tuple[str, float, float]]:
    """(constant, old, new) proposed by the guided agent for every seed in SEEDS."""
    found = []
    for seed in SEEDS:
        match = HYPOTHESIS.match(OfflineAgent().propose(context(seed, log=log, hardware=hardware)).hypothesis)
        assert match is not None
        found.append((match["name"], float(match["old"]), float(match["new"])))
    return found


def test_guided_is_the_default_and_the_same_seed_and_log_give_the_same_child() -> None:
    log = [entry("LR 0.003 -> 0.004", parent=GRANDPARENT_HASH, status="verified", delta=-0.05)]

    first = OfflineAgent().propose(context(7, log=log))
    again = OfflineAgent(strategy="guided").propose(context(7, log=log))

    assert (first.source, first.hypothesis) == (again.source, again.hypothesis)
    assert first.usage is not None and first.usage.model == "strategy:guided"


def test_a_move_tried_from_this_parent_is_never_proposed_again_nor_one_within_20_percent_of_it() -> None:
    log = [
        entry("LR 0.004 -> 0.005", parent=PARENT_HASH, status="discarded", delta=0.01),
        entry("DEPTH 4 -> 5", parent=PARENT_HASH, status="discarded", delta=0.02),
    ]

    proposed = moves(log)

    lr_up = [new / old for name, old, new in proposed if name == "LR" and new > old]
    assert lr_up, "raising LR by another factor is still allowed"
    assert all(abs(math.log(factor) - math.log(1.25)) >= math.log(1.2) for factor in lr_up)
    assert ("DEPTH", 4, 5) not in proposed
    assert ("DEPTH", 4, 3) in proposed


def test_the_same_move_from_another_parent_is_not_a_repeat() -> None:
    log = [entry("DEPTH 4 -> 5", parent=GRANDPARENT_HASH, status="discarded", delta=0.001)]

    assert ("DEPTH", 4, 5) in moves(log)


def test_a_constant_awaiting_verification_from_this_parent_is_not_moved_the_same_way_again() -> None:
    log = [entry("LR 0.004 -> 0.006", parent=PARENT_HASH, status="candidate", delta=-0.02)]

    proposed = moves(log)

    raised = [m for m in proposed if m[0] == "LR" and m[2] > m[1]]
    lowered = [m for m in proposed if m[0] == "LR" and m[2] < m[1]]
    assert raised == []
    assert lowered, "the other direction of the same constant stays open"


def test_a_claim_awaiting_verification_elsewhere_still_draws_the_agent_to_its_arm() -> None:
    log = [entry("LR 0.003 -> 0.004", parent=GRANDPARENT_HASH, status="candidate", delta=-0.02)]

    raised = [m for m in moves(log) if m[0] == "LR" and m[2] > m[1]]

    uniform = len(SEEDS) / 14  # seven live constants, two directions each
    assert len(raised) > 2 * uniform


def test_a_compact_log_names_the_parent_by_its_short_hash() -> None:
    log = [
        {"hash": "c" * 10, "parent": PARENT_HASH[:10], "hypothesis": "DEPTH 4 -> 5", "status": "discarded"}
    ]

    assert ("DEPTH", 4, 5) not in moves(log)


def test_when_every_move_was_tried_from_this_parent_the_agent_says_so() -> None:
    log = [
        entry("DEPTH 4 -> 5", parent=PARENT_HASH, status="discarded"),
        entry("DEPTH 4 -> 3", parent=PARENT_HASH, status="crashed"),
    ]

    with pytest.raises(
        AgentError, match="every change this strategy can make was already tried from this parent"
    ):
        OfflineAgent().propose(context(0, log=log, source="DEPTH = 4\n"))


def test_a_constant_whose_increase_was_verified_is_raised_in_most_proposals() -> None:
    log = [
        entry("LR 0.003 -> 0.004", parent=GRANDPARENT_HASH, status="verified", delta=-0.04),
        entry("LR 0.0025 -> 0.003", parent=ELDER_HASH, status="verified", delta=-0.03),
        entry("WEIGHT_DECAY 0.1 -> 0.13", parent=GRANDPARENT_HASH, status="discarded", delta=0.01),
        entry("DEPTH 4 -> 5", parent=ELDER_HASH, status="discarded", delta=0.02),
    ]

    picks = Counter((name, "up" if new > old else "down") for name, old, new in moves(log))

    assert picks[("LR", "up")] > 0.5 * len(SEEDS)
    assert picks.most_common(1)[0][0] == ("LR", "up")
    assert picks[("LR", "down")] < picks[("LR", "up")] / 10  # undoing a verified gain is disfavoured


def test_a_direction_that_crashed_is_chosen_less_often_than_its_opposite() -> None:
    log = [
        entry("BATCH_SIZE 16 -> 32", parent=GRANDPARENT_HASH, status="crashed"),
        entry("BATCH_SIZE 8 -> 16", parent=ELDER_HASH, status="crashed"),
    ]

    picks = Counter((name, "up" if new > old else "down") for name, old, new in moves(log))

    assert picks[("BATCH_SIZE", "up")] < picks[("BATCH_SIZE", "down")]


def test_on_a_cpu_track_gpu_constants_are_never_changed_and_the_reverse() -> None:
    on_cpu = {name for name, _, _ in moves(hardware="cpu")}
    on_gpu = {name for name, _, _ in moves(hardware="h100-80gb")}
    unknown = {name for name, _, _ in moves(hardware=None)}

    shared = {"LR", "DEPTH", "WEIGHT_DECAY", "BATCH_SIZE", "BETA", "WARMUP"}
    assert on_cpu == shared | {"CPU_WIDTH"}
    assert on_gpu == shared | {"GPU_WIDTH", "GPU_LR"}
    assert unknown == shared | {"CPU_WIDTH", "GPU_WIDTH", "GPU_LR"}


def test_a_parent_with_only_other_hardware_constants_is_refused() -> None:
    with pytest.raises(AgentError, match="none of the parent's constants applies to hardware class 'cpu'"):
        OfflineAgent().propose(context(0, source="GPU_DEPTH = 8\n"))


def test_float_moves_are_at_least_30_percent_and_at_most_twofold_fractions_on_their_odds() -> None:
    factors = []
    for name, old, new in moves():
        if name in {"LR", "WEIGHT_DECAY", "WARMUP"}:
            factors.append(max(new / old, old / new))
        elif name == "BETA":  # a fraction: the factor is on the odds, and it stays below 1
            assert 0.0 < new < 1.0, new
            factors.append(math.exp(abs(math.log(new / (1 - new)) - math.log(old / (1 - old)))))
    assert factors
    # Rounding to 3 significant figures moves a bound by under 0.5%.
    assert all(1.29 <= factor <= 2.01 for factor in factors), sorted(factors)


@pytest.mark.parametrize(
    ("hypothesis", "expected"),
    [
        ("LR 0.004 -> 0.005", ("LR", "up", math.log(1.25))),
        ("GPU_BATCH_TOKENS 524_288 -> 262_144", ("GPU_BATCH_TOKENS", "down", math.log(0.5))),
        ("ADAM_EPS 1e-10 -> 1.5e-10", ("ADAM_EPS", "up", math.log(1.5))),
        ("LOG_SCALE -0.5 -> -0.6", ("LOG_SCALE", "down", math.log(1.2))),
    ],
)
def test_offline_hypotheses_are_read_back_as_moves(hypothesis: str, expected: tuple[str, str, float]) -> None:
    change = parse_change(entry(hypothesis, parent=PARENT_HASH, status="discarded", delta=0.01))

    assert change is not None
    assert (change.name, change.direction) == expected[:2]
    assert change.log_factor == pytest.approx(expected[2])
    assert (change.parent, change.status, change.delta) == (PARENT_HASH, "discarded", 0.01)


@pytest.mark.parametrize(
    "hypothesis",
    ["Use SwiGLU instead of ReLU² in the MLP", "LR 0.004 -> 0.004", "SCALE 1 -> -1", "LR 0.004 -> fast", ""],
)
def test_other_hypotheses_teach_the_strategy_nothing(hypothesis: str) -> None:
    assert parse_change(entry(hypothesis, parent=PARENT_HASH, status="verified")) is None


def test_credit_follows_the_documented_table_with_a_quarter_mirrored() -> None:
    def past(name: str, direction: str, status: str, delta: float | None = None) -> PastChange:
        return PastChange(name, direction, 0.2, PARENT_HASH, status, delta)  # type: ignore[arg-type]

    tally = credit(
        [
            past("LR", "up", "verified", -0.05),
            past("LR", "up", "rejected", -0.01),
            past("DEPTH", "up", "crashed"),
            past("WD", "down", "candidate"),  # no deltas to scale by: the base weight
        ]
    )

    assert tally == {
        ("LR", "up"): (2.0, 0.5),
        ("LR", "down"): (0.125, 0.5),
        ("DEPTH", "up"): (0.0, 1.0),
        ("DEPTH", "down"): (0.25, 0.0),
        ("WD", "down"): (0.5, 0.0),
        ("WD", "up"): (0.0, 0.125),
    }


def test_claims_are_weighed_by_their_delta_against_the_logs_median() -> None:
    def past(name: str, status: str, delta: float) -> PastChange:
        return PastChange(name, "up", 0.2, PARENT_HASH, status, delta)

    tally = credit(
        [
            past("A", "discarded", 0.01),
            past("B", "discarded", 0.01),
            past("C", "discarded", 0.5),  # a large swing: capped at twice the base weight
            past("D", "candidate", -0.001),  # a near-miss: floored at a quarter
        ]
    )  # median |delta| is 0.01

    assert tally[("A", "up")] == (0.0, 0.5)
    assert tally[("C", "up")] == (0.0, 1.0)
    assert tally[("D", "up")] == (0.125, 0.0)
