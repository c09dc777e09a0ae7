"""The data paths of a run, in process: seeded train batches, the evaluation plan with its hidden
probes, and the scorer's arithmetic and checks on constructed answers."""

from __future__ import annotations

import hashlib
import itertools
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from shared.data_format import read_tokens
from tests.trackfactory import build_track
from worker.execution.context import TrainBatches
from worker.execution.plan import (
    RESCORE_REQUESTS,
    WITHIN_ROW_TWINS,
    Plan,
    Request,
    holdout_set,
    make_plan,
    public_windows,
    replica_requests,
)
from worker.execution.scorer import (
    CUDA_REPLICA_WINDOW_NATS,
    LOSS_TOLERANCE_NATS,
    Refused,
    check_consistency,
    check_replica,
    check_speed,
    cpu_nats,
    score,
)

# --- train batches -----------------------------------------------------------------------------


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
def test_train_batches_refuse_impossible_shapes(shards: list[np.ndarray], batch_size: int, seq_len: int) -> None:
    with pytest.raises(ValueError, match="must be"):
        next(TrainBatches(shards, seed=0, device="cpu").iterate(batch_size, seq_len))


def test_trackfactory_writes_files_named_by_their_sha256(tmp_path: Path) -> None:
    spec, data_dir = build_track(tmp_path, vocab_size=300)

    names = {*spec.assets.train, spec.assets.val, spec.assets.token_bytes}
    assert {p.name for p in data_dir.iterdir()} == names
    assert all(hashlib.sha256((data_dir / name).read_bytes()).hexdigest() == name for name in names)
    assert int(read_tokens(data_dir / spec.assets.val).max()) < 300


# --- eval windows ------------------------------------------------------------------------------


def test_public_windows_are_consecutive_and_score_exactly_eval_tokens_targets() -> None:
    val = np.arange(1000, dtype=np.uint16)

    windows = public_windows(val, seq_len=64, eval_tokens=150)

    assert windows.tokens.shape == (3, 65) and windows.tokens.dtype == np.int64
    assert [int(w[0]) for w in windows.tokens] == [0, 64, 128]  # non-overlapping, from the start
    assert int(windows.scored.sum()) == 150
    targets = windows.tokens[:, 1:]
    assert int(targets[windows.scored].max()) == 150  # the last scored target is token 150


def test_a_val_shard_too_short_for_its_windows_is_refused() -> None:
    with pytest.raises(ValueError, match="the val shard holds 150 tokens, too few for 150 targets"):
        public_windows(np.arange(150, dtype=np.uint16), seq_len=64, eval_tokens=150)


def test_held_out_windows_must_have_the_tracks_window_length() -> None:
    windows = holdout_set(np.zeros((4, 65), dtype=np.uint16), seq_len=64)

    assert (windows.name, windows.tokens.shape, bool(windows.scored.all())) == ("holdout", (4, 65), True)
    with pytest.raises(ValueError, match=r"held-out windows have shape \(4, 64\); expected \(N, 65\)"):
        holdout_set(np.zeros((4, 64), dtype=np.uint16), seq_len=64)


# --- the plan ----------------------------------------------------------------------------------

SEQ_LEN = 16
VOCAB = 32
BATCH = 8


def plan_for(windows: int = 29, *, seed: int = 0, holdout: int = 0) -> Plan:
    rng = np.random.default_rng(seed)
    val = rng.integers(0, VOCAB, size=windows * SEQ_LEN + 1).astype(np.uint16)
    sets = [public_windows(val, seq_len=SEQ_LEN, eval_tokens=windows * SEQ_LEN)]
    if holdout:
        sets.append(holdout_set(rng.integers(0, VOCAB, size=(holdout, SEQ_LEN + 1)), seq_len=SEQ_LEN))
    return make_plan(sets, batch=BATCH, vocab_size=VOCAB, rng=rng)


def of_kind(plan: Plan, kind: str) -> list[Request]:
    return [r for r in plan.requests if r.kind == kind]


def base_of(plan: Plan, twin: Request) -> Request:
    """The scoring request a twin copies: the one with the same rows."""
    [base] = [r for r in of_kind(plan, "score") if np.array_equal(r.rows, twin.rows)]
    return base


@pytest.mark.parametrize("holdout", [0, 5])
def test_every_window_of_every_set_is_scored_exactly_once(holdout: int) -> None:
    plan = plan_for(29, holdout=holdout)

    counted = np.concatenate([r.rows[r.scored_rows] for r in of_kind(plan, "score")])

    assert sorted(counted.tolist()) == list(range(29 + holdout))
    assert plan.set_names == (["val", "holdout"] if holdout else ["val"])
    # A short last batch is filled to the full shape with rows that do not count.
    assert all(r.x.shape == (BATCH, SEQ_LEN) for r in plan.requests)
    assert sum(int((~r.scored_rows).sum()) for r in of_kind(plan, "score")) == -(29 + holdout) % BATCH


def test_inputs_are_the_windows_rows_except_where_a_twin_changed_them() -> None:
    plan = plan_for()

    for request in plan.requests:
        if request.kind != "twin":
            assert np.array_equal(request.x, plan.windows[request.rows, :-1])


def test_the_plan_holds_a_warmup_first_then_rescores_and_twins_after_what_they_refer_to() -> None:
    plan = plan_for()
    position = {id(r): i for i, r in enumerate(plan.requests)}
    scoring = of_kind(plan, "score")

    assert plan.requests[0].kind == "warmup"
    assert [r.kind for r in plan.requests].count("warmup") == 1
    assert len(of_kind(plan, "rescore")) == RESCORE_REQUESTS
    twins = of_kind(plan, "twin")
    bits = math.ceil(math.log2(BATCH))
    assert len(twins) == 2 * bits + WITHIN_ROW_TWINS
    assert len({id(base_of(plan, twin)) for twin in twins}) == 1  # all copy one scoring batch
    for twin in twins:
        assert position[id(twin)] > position[id(base_of(plan, twin))]
    for rescore in of_kind(plan, "rescore"):
        sources = [r for r in scoring if set(rescore.rows) & set(r.rows[r.scored_rows])]
        assert 1 <= len(sources) <= 2
        assert all(position[id(rescore)] > position[id(s)] for s in sources)


def test_for_every_ordered_pair_of_rows_a_twin_changes_all_of_one_and_none_of_the_other() -> None:
    for seed in range(5):  # each plan permutes the rows differently
        plan = plan_for(seed=seed)
        twins = of_kind(plan, "twin")

        for r, other in itertools.permutations(range(BATCH), 2):
            assert any(t.cuts is not None and t.cuts[r] == 0 and t.cuts[other] == SEQ_LEN for t in twins), (
                seed,
                r,
                other,
            )


def test_a_twin_changes_every_token_from_its_cut_and_nothing_before_it() -> None:
    plan = plan_for()

    for twin in of_kind(plan, "twin"):
        assert twin.cuts is not None
        base = base_of(plan, twin).x
        for row, cut in enumerate(twin.cuts):
            assert np.array_equal(twin.x[row, :cut], base[row, :cut])
            assert (twin.x[row, cut:] != base[row, cut:]).all()
            assert ((twin.x[row] >= 0) & (twin.x[row] < VOCAB)).all()
    within_row = [t for t in of_kind(plan, "twin") if t.cuts is not None and ((t.cuts > 0) & (t.cuts < SEQ_LEN)).all()]
    assert len(within_row) == WITHIN_ROW_TWINS


# --- the scorer's checks, on constructed answers -----------------------------------------------


def honest_answers(plan: Plan, *, seed: int = 0) -> list[np.ndarray]:
    """A stateless, causal model's losses: one fixed loss per (window, position), whatever else the batch holds."""
    per_window = np.random.default_rng(seed).uniform(0.5, 4.0, size=plan.scored.shape).astype(np.float32)
    return [per_window[request.rows].copy() for request in plan.requests]


def refusal(plan: Plan, nats: list[np.ndarray]) -> tuple[str, str, str]:
    with pytest.raises(Refused) as caught:
        check_consistency(plan, nats)
    return caught.value.status, caught.value.code, caught.value.reason


def test_identical_answers_pass_and_so_do_differences_within_the_tolerance() -> None:
    plan = plan_for()
    nats = honest_answers(plan)
    rescore = next(i for i, r in enumerate(plan.requests) if r.kind == "rescore")
    nats[rescore][0, 3] += 0.5 * LOSS_TOLERANCE_NATS

    check_consistency(plan, nats)


@pytest.mark.parametrize("kind", ["rescore", "warmup"])
def test_a_window_that_scores_differently_when_asked_again_breaks_statelessness(kind: str) -> None:
    plan = plan_for()
    nats = honest_answers(plan)
    index = next(i for i, r in enumerate(plan.requests) if r.kind == kind)
    nats[index][2, 5] += 0.01

    status, code, reason = refusal(plan, nats)

    assert (status, code) == ("rejected", "statelessness")
    assert reason.startswith("probe statelessness: a window scored again gave loss ")
    assert reason.endswith(
        "(a position moved by 0.01 nats): a model's output must depend on its input alone, not on what it"
        " saw before or on chance"
    )


def test_a_loss_before_a_twins_cut_that_moves_breaks_causality() -> None:
    plan = plan_for()
    nats = honest_answers(plan)
    index, twin = next(
        (i, r)
        for i, r in enumerate(plan.requests)
        if r.kind == "twin" and r.cuts is not None and 1 < r.cuts[0] < SEQ_LEN
    )
    assert twin.cuts is not None
    cut = int(twin.cuts[0])
    after = honest_answers(plan)
    after[index][0, cut:] += 1.0  # after the cut the input differs: any loss is allowed there
    check_consistency(plan, after)

    nats[index][0, cut - 1] += 0.01

    changed = f"token {cut}" if cut == SEQ_LEN - 1 else f"tokens {cut} to {SEQ_LEN - 1}"
    assert refusal(plan, nats) == (
        "rejected",
        "causality",
        f"probe causality: logits at position {cut - 1} changed when {changed} changed",
    )


def test_an_unchanged_row_of_a_twin_that_moves_breaks_causality_across_rows() -> None:
    plan = plan_for()
    nats = honest_answers(plan)
    index = next(
        i for i, r in enumerate(plan.requests) if r.kind == "twin" and r.cuts is not None and r.cuts[0] == SEQ_LEN
    )

    nats[index][0, 7] -= 0.01

    assert refusal(plan, nats) == (
        "rejected",
        "causality",
        "probe causality: logits at position 7 of a row changed when other rows of its batch changed:"
        " the rows of a batch must not see each other",
    )


def test_a_slow_first_forward_is_refused_beyond_its_allowance() -> None:
    check_speed([1.9, 0.1, 0.1], warmup_limit=2.0)
    # On a CPU (no allowance given) the first forward is judged by the others: 4x their median + 0.5 s.
    check_speed([0.95, 0.1, 0.1, 0.1], warmup_limit=None)

    with pytest.raises(Refused) as caught:
        check_speed([2.5, 0.1, 0.1], warmup_limit=2.0)
    assert (caught.value.status, caught.value.code, caught.value.reason) == (
        "crashed",
        "slow_forward",
        "the first evaluation forward took 2.50s (allowed 2.00s, the others' median is 0.100s):"
        " evaluation is not training time",
    )
    with pytest.raises(Refused) as caught:
        check_speed([2.7, 0.1, 0.1, 0.1], warmup_limit=None)
    assert caught.value.reason.startswith("the first evaluation forward took 2.70s (allowed 2.50s")
    # A loaded machine's honest first forward, as measured on a 2-core machine running two trainings.
    check_speed([1.46, *[0.046] * 20], warmup_limit=None)


def test_forwards_preempted_now_and_then_pass_but_work_hidden_in_forwards_is_refused() -> None:
    # An honest forward of 0.1 s preempted twice for half a second by a busy machine.
    check_speed([0.2, *[0.1] * 20, 0.6, 0.6], warmup_limit=None)
    # Three seconds of extra work in one forward, past the floor of 3 s and the 20 forwards' 2 s.
    with pytest.raises(Refused) as caught:
        check_speed([0.2, *[0.1] * 20, 3.2], warmup_limit=None)
    assert (caught.value.code, caught.value.reason) == (
        "slow_forward",
        "evaluation forwards took 3.10s beyond their median of 0.100s (allowed 3.00s):"
        " evaluation is not training time",
    )
    # For a slow model the allowance is its forwards' own time: 10 forwards of 1 s may carry 10 s.
    check_speed([1.0, *[1.0] * 10, 9.0], warmup_limit=None)
    with pytest.raises(Refused):
        check_speed([1.0, *[1.0] * 10, 12.5], warmup_limit=None)


def test_bits_per_byte_weigh_each_target_by_its_bytes_and_skip_special_tokens_and_filler_rows() -> None:
    vocab = 4
    bytes_per_token = np.array([0, 1, 2, 3])  # token 0 is special: no bytes
    rng = np.random.default_rng(1)
    val = rng.integers(0, vocab, size=11 * 4 + 1).astype(np.uint16)
    sets = [public_windows(val, seq_len=4, eval_tokens=42), holdout_set(rng.integers(0, vocab, size=(3, 5)), seq_len=4)]
    plan = make_plan(sets, batch=4, vocab_size=vocab, rng=rng)
    # A loss that depends on the target, so a miscounted row or position shows.
    nats = [(0.25 + plan.windows[r.rows, 1:]).astype(np.float32) for r in plan.requests]

    scores = score(plan, nats, bytes_per_token=bytes_per_token)

    for name, index in (("val", 0), ("holdout", 1)):
        targets = sets[index].tokens[:, 1:][sets[index].scored]
        counted = targets[bytes_per_token[targets] > 0]
        total_nats = float((0.25 + counted).sum())
        assert scores[name]["bpb"] == pytest.approx(total_nats / (math.log(2) * bytes_per_token[counted].sum()))
        assert scores[name]["loss"] == pytest.approx(total_nats / len(counted))


def test_uniform_losses_over_one_byte_tokens_are_exactly_eight_bits_per_byte() -> None:
    plan = plan_for()
    nats = [np.full((BATCH, SEQ_LEN), math.log(256), dtype=np.float32) for _ in plan.requests]

    scores = score(plan, nats, bytes_per_token=np.ones(VOCAB, dtype=np.int64))

    assert scores["val"]["bpb"] == pytest.approx(8.0, abs=1e-6)


def test_a_set_with_no_scorable_bytes_is_a_setup_failure() -> None:
    plan = plan_for()
    nats = honest_answers(plan)

    with pytest.raises(Refused) as caught:
        score(plan, nats, bytes_per_token=np.zeros(VOCAB, dtype=np.int64))

    assert (caught.value.code, caught.value.reason) == (
        "harness_setup_failed",
        "the val windows hold no scorable tokens",
    )


# --- the replica -------------------------------------------------------------------------------


def test_the_replica_is_asked_the_models_last_windows_and_some_of_all() -> None:
    plan = plan_for(windows=64)
    scoring = [r for r in plan.requests if r.kind == "score"]
    last = set(np.concatenate([r.rows[r.scored_rows] for r in scoring[-2:]]).tolist())

    first, second = replica_requests(plan, batch=8, rng=np.random.default_rng(1))

    assert set(first.rows.tolist()) <= last
    assert first.kind == second.kind == "replica"
    for request in (first, second):
        assert request.x.shape == (8, plan.windows.shape[1] - 1)
        assert (request.x == plan.windows[request.rows, :-1]).all()


def test_a_replica_answering_as_the_model_did_passes_and_one_that_differs_is_statelessness() -> None:
    plan = plan_for(windows=64)
    nats = honest_answers(plan)
    checks = replica_requests(plan, batch=8, rng=np.random.default_rng(1))
    per_window = {int(w): n for r, a in zip(plan.requests, nats, strict=True) for w, n in zip(r.rows, a, strict=True)}
    answers = [np.stack([per_window[int(w)] for w in request.rows]) for request in checks]

    check_replica(plan, nats, checks, answers, device="cpu")

    # A model that trained on while it was evaluated: its late answers are better than its copy's.
    drifted = [a.copy() for a in answers]
    drifted[0][2, 10] += 0.3
    with pytest.raises(Refused) as caught:
        check_replica(plan, nats, checks, drifted, device="cpu")
    assert (caught.value.status, caught.value.code) == ("rejected", "statelessness")
    assert caught.value.reason.startswith(
        "probe statelessness: a fresh copy of the trained model, asked a window the model answered during"
        " evaluation, gave loss "
    )
    assert caught.value.reason.endswith("(by 0.3 nats): the model changed while it was evaluated")

    # On CUDA each window's mean is compared: kernels a fresh process picks may round differently.
    nudged = [a + 0.5 * CUDA_REPLICA_WINDOW_NATS for a in answers]
    check_replica(plan, nats, checks, nudged, device="cuda")
    with pytest.raises(Refused):
        check_replica(plan, nats, checks, [a + 2 * CUDA_REPLICA_WINDOW_NATS for a in answers], device="cuda")


def test_the_scorers_cross_entropy_is_torchs() -> None:
    rng = np.random.default_rng(0)
    logits = rng.normal(scale=4.0, size=(3, 5, 17)).astype(np.float32)
    targets = rng.integers(0, 17, size=(3, 5))

    expected = torch.nn.functional.cross_entropy(
        torch.from_numpy(logits).reshape(-1, 17), torch.from_numpy(targets).reshape(-1), reduction="none"
    ).view(3, 5)

    np.testing.assert_allclose(cpu_nats(logits, targets), expected.numpy(), rtol=1e-6, atol=1e-6)
    logits[1, 2, 3] = np.nan
    with pytest.raises(Refused) as caught:
        cpu_nats(logits, targets)
    assert caught.value.code == "finite_logits" and caught.value.reason.endswith("(1, 2, 3)")
