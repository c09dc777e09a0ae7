"""The offline agent changes exactly one numeric hyperparameter, deterministically for a seed.

These hold for every strategy; the default (guided) one is used unless a test names another.
The guided strategy's own rules are in test_offline_agent_guided.py.
"""

from __future__ import annotations

import ast
import dataclasses
import math
import re

import pytest

from worker.agents import AgentError, ProposalContext, make_agent
from worker.agents.mutation import is_fraction, log_move, move_float
from worker.agents.offline import OfflineAgent, RandomStrategy, find_constants, mutate_int

PARENT = '''"""A tiny GPT — trained by the harness (docstring with non-ASCII: é, ü, 日本)."""

import torch

DEPTH = 4  # transformer blocks — more is slower
D_MODEL: int = 128  # width (é)
BATCH_SIZE = 32
LR = 0.004  # peak learning rate
WEIGHT_DECAY = 1e-2
LOG_SCALE = -0.5
WARMUP_FRAC = 0.0  # zero stays zero under jitter: never picked
USE_BIAS = True  # a bool, not a number
HEAD_DIM = 2 * 16  # an expression, not a literal
lowercase_value = 3


def train(ctx):
    LOCAL = 5  # not module level
    return torch.nn.Linear(D_MODEL, D_MODEL)
'''

MUTABLE = {"DEPTH", "D_MODEL", "BATCH_SIZE", "LR", "WEIGHT_DECAY", "LOG_SCALE"}
HYPOTHESIS = re.compile(r"^(?P<name>[A-Z][A-Z0-9_]*) (?P<old>\S+) -> (?P<new>\S+)$")


def context(seed: int, source: str = PARENT) -> ProposalContext:
    return ProposalContext(
        track_id="cpu-tiny", brief="", parent_hash="p" * 64, parent_source=source, seed=seed
    )


def test_constants_are_module_level_upper_case_numeric_literals_with_exact_spans() -> None:
    found = {c.name: c for c in find_constants(PARENT)}

    assert set(found) == MUTABLE | {"WARMUP_FRAC"}
    for constant in found.values():
        assert PARENT[constant.start : constant.end] == constant.literal
    assert (found["LOG_SCALE"].literal, found["LOG_SCALE"].value) == ("-0.5", -0.5)
    assert (found["D_MODEL"].literal, found["D_MODEL"].value) == ("128", 128)


def test_the_same_seed_gives_the_same_proposal() -> None:
    first = OfflineAgent().propose(context(seed=1234))
    again = OfflineAgent().propose(context(seed=1234))

    assert (first.source, first.hypothesis) == (again.source, again.hypothesis)


def test_different_seeds_explore_different_constants() -> None:
    hypotheses = [OfflineAgent().propose(context(seed)).hypothesis for seed in range(60)]

    names = {hypothesis.split(" ")[0] for hypothesis in hypotheses}

    assert names == MUTABLE


@pytest.mark.parametrize("seed", range(40))
def test_only_the_chosen_literal_changes_and_the_hypothesis_names_it(seed: int) -> None:
    proposal = OfflineAgent().propose(context(seed))

    match = HYPOTHESIS.match(proposal.hypothesis)
    assert match is not None, proposal.hypothesis
    constant = {c.name: c for c in find_constants(PARENT)}[match["name"]]
    assert match["old"] == constant.literal
    new_literal = match["new"]
    # Everything around the literal is byte-identical to the parent.
    assert proposal.source == PARENT[: constant.start] + new_literal + PARENT[constant.end :]
    assert proposal.source != PARENT
    new_value = ast.literal_eval(new_literal)
    assert type(new_value) is type(constant.value)
    assert new_value != constant.value
    assert (new_value > 0) == (constant.value > 0)  # never crosses or reaches zero
    assert proposal.usage is not None and proposal.usage.agent == "offline"


@pytest.mark.parametrize("seed", range(40))
def test_floats_are_jittered_to_three_significant_figures(seed: int) -> None:
    proposal = OfflineAgent().propose(context(seed, "LR = 0.004\n"))

    new_literal = HYPOTHESIS.match(proposal.hypothesis)["new"]  # type: ignore[index]
    value = float(new_literal)
    assert float(f"{value:.3g}") == value
    assert 0.0005 < value < 0.04  # multiplicative: same order of magnitude, same sign
    assert proposal.source == f"LR = {new_literal}\n"


def test_scientific_literals_stay_scientific() -> None:
    proposal = OfflineAgent().propose(context(3, "WD = 1e-2  # decay\n"))

    assert re.fullmatch(r"WD = \d(\.\d{1,2})?e-?\d+  # decay\n", proposal.source), proposal.source


def test_powers_of_two_from_8_double_or_halve_and_other_ints_step_by_one() -> None:
    import random

    rng = random.Random(0)
    assert {mutate_int(64, rng) for _ in range(50)} == {32, 128}
    assert {mutate_int(8, rng) for _ in range(50)} == {4, 16}
    assert {mutate_int(5, rng) for _ in range(50)} == {4, 6}
    assert {mutate_int(4, rng) for _ in range(50)} == {3, 5}
    assert {mutate_int(1, rng) for _ in range(50)} == {2}
    assert {mutate_int(-1, rng) for _ in range(50)} == {-2}
    assert {mutate_int(0, rng) for _ in range(50)} == {1}


def test_a_literal_after_non_ascii_text_on_its_line_is_rewritten_in_place() -> None:
    # Two statements on one line: ast counts LR's column in UTF-8 bytes, the rewrite in characters.
    source = "X = 'é日本'; LR = 0.5  # ü\nLR2 = 3\n"

    constants = {c.name: c for c in find_constants(source)}
    for seed in range(10):
        proposal = OfflineAgent().propose(context(seed, source))
        match = HYPOTHESIS.match(proposal.hypothesis)
        assert match is not None
        constant = constants[match["name"]]
        assert proposal.source == source[: constant.start] + match["new"] + source[constant.end :]
    assert source[constants["LR"].start : constants["LR"].end] == "0.5"


def test_the_last_binding_of_a_name_is_the_one_changed() -> None:
    source = "LR = 0.1\nLR = 0.2\n"

    [constant] = find_constants(source)

    assert (constant.value, constant.start) == (0.2, source.index("0.2"))


def test_a_parent_without_numeric_constants_is_refused() -> None:
    with pytest.raises(AgentError, match="no module-level UPPER_CASE numeric constants"):
        OfflineAgent().propose(context(0, "ZERO = 0.0\nFLAG = True\ndef train(ctx):\n    return None\n"))


def test_a_parent_that_does_not_parse_is_refused() -> None:
    with pytest.raises(AgentError, match="does not parse"):
        OfflineAgent().propose(context(0, "LR = (\n"))


def test_the_strategy_is_a_seam_for_smarter_choices() -> None:
    class AlwaysDepth:
        name = "depth"

        def pick(self, constants, context, rng):
            return next(c for c in constants if c.name == "DEPTH")

    proposal = OfflineAgent(strategy=AlwaysDepth()).propose(context(5))

    assert proposal.hypothesis in {"DEPTH 4 -> 3", "DEPTH 4 -> 5"}
    assert proposal.usage is not None and proposal.usage.model == "strategy:depth"
    assert isinstance(OfflineAgent(strategy="random").strategy, RandomStrategy)
    with pytest.raises(AgentError, match="unknown offline strategy 'clever'; choose one of: guided, random"):
        OfflineAgent(strategy="clever")


# What the random strategy proposed for PARENT and seeds 0..11 before the guided one existed.
RANDOM_PROPOSALS = [
    "LR 0.004 -> 0.00406",
    "D_MODEL 128 -> 256",
    "DEPTH 4 -> 5",
    "D_MODEL 128 -> 256",
    "D_MODEL 128 -> 64",
    "WEIGHT_DECAY 1e-2 -> 9.9e-3",
    "WEIGHT_DECAY 1e-2 -> 1.16e-2",
    "BATCH_SIZE 32 -> 64",
    "D_MODEL 128 -> 64",
    "LR 0.004 -> 0.00334",
    "WEIGHT_DECAY 1e-2 -> 1.4e-2",
    "LR 0.004 -> 0.00593",
]


def test_the_random_strategy_is_unchanged_and_ignores_the_log_and_the_hardware() -> None:
    tried = {"hash": "c" * 64, "parent_hash": "p" * 64, "hypothesis": "DEPTH 4 -> 5", "status": "crashed"}

    plain = [OfflineAgent(strategy="random").propose(context(seed)).hypothesis for seed in range(12)]
    informed = [
        OfflineAgent(strategy="random")
        .propose(dataclasses.replace(context(seed), research_log=[tried], hardware_class="h100-80gb"))
        .hypothesis
        for seed in range(12)
    ]

    assert plain == informed == RANDOM_PROPOSALS


def test_make_agent_builds_agents_by_name_and_names_the_choices_on_a_typo() -> None:
    assert isinstance(make_agent("offline"), OfflineAgent)
    assert isinstance(make_agent("offline", strategy="random").strategy, RandomStrategy)  # type: ignore[attr-defined]
    with pytest.raises(AgentError, match=r"unknown agent 'ofline'; choose one of: .*offline"):
        make_agent("ofline")


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        ("ADAM_BETA2", 0.95, True),
        ("BETA", 0.9, True),
        ("MUON_MOMENTUM", 0.95, True),
        ("WARMDOWN_FRACTION", 0.5, True),
        ("DROPOUT", 0.1, True),
        ("EMBEDDING_LR", 0.6, False),  # a learning rate may well go past 1
        ("MUON_MOMENTUM", 1.5, False),  # not a fraction now, whatever its name
        ("ALPHABETA", 0.5, False),  # the word must stand on its own
    ],
)
def test_fractions_are_named_as_such_and_lie_strictly_between_0_and_1(
    name: str, value: float, expected: bool
) -> None:
    assert is_fraction(name, value) is expected


def test_a_fraction_moves_on_its_odds_and_never_reaches_1() -> None:
    up = move_float(0.95, direction="up", log_step=math.log(1.5), fraction=True)
    down = move_float(0.95, direction="down", log_step=math.log(1.5), fraction=True)
    tiny = move_float(0.02, direction="up", log_step=math.log(2.0), fraction=True)

    assert (up, down, tiny) == (0.9661, 0.9268, 0.0392)
    assert log_move("ADAM_BETA2", 0.95, up) == pytest.approx(math.log(1.5), abs=2e-3)
    assert move_float(0.9999, direction="up", log_step=math.log(3.0), fraction=True) == 0.9999667
    assert move_float(0.95, direction="up", log_step=math.log(1.5)) == 1.42  # on the value itself


def test_a_move_is_sized_on_the_value_except_for_a_fraction() -> None:
    assert log_move("LR", 0.004, 0.005) == pytest.approx(math.log(1.25))
    assert log_move("BETA", 0.5, 0.75) == pytest.approx(math.log(3.0))
