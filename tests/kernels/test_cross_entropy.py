from __future__ import annotations

import functools

import pytest
import torch
import torch.nn.functional as F

from shared.kernels import reference
from shared.kernels.cross_entropy import softcapped_cross_entropy_triton
from tests.kernels.compare import assert_matches_reference

VOCAB = 97  # prime: never a multiple of a tile


def _problem(n_rows: int, d_model: int, *, seed: int, scale: float = 1.0) -> list[torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    hidden = scale * torch.randn(n_rows, d_model, generator=generator)
    weight = torch.randn(VOCAB, d_model, generator=generator) / d_model**0.5
    targets = torch.randint(0, VOCAB, (n_rows,), generator=generator)
    targets[1::3] = -1  # every third row from the second on is ignored
    return [hidden, weight, targets]


@pytest.mark.parametrize("softcap", [15.0, None], ids=["softcap15", "nocap"])
@pytest.mark.parametrize("chunk_size", [None, 5], ids=["one-chunk", "chunks-of-5"])
@pytest.mark.parametrize(("n_rows", "d_model"), [(1, 16), (7, 40), (33, 16)], ids=str)
def test_chunked_cross_entropy_matches_reference_forward_and_backward(
    n_rows: int, d_model: int, chunk_size: int | None, softcap: float | None
) -> None:
    kernel = functools.partial(
        softcapped_cross_entropy_triton, softcap=softcap, chunk_size=chunk_size, vocab_block=32
    )
    ref = functools.partial(reference.softcapped_cross_entropy, softcap=softcap)

    assert_matches_reference(kernel, ref, _problem(n_rows, d_model, seed=n_rows))


def test_chunked_cross_entropy_equals_torch_cross_entropy_of_softcapped_logits() -> None:
    hidden, weight, targets = _problem(33, 40, seed=7)
    logits = hidden @ weight.T
    expected = F.cross_entropy(15.0 * torch.tanh(logits / 15.0), targets, ignore_index=-1)

    got = softcapped_cross_entropy_triton(hidden, weight, targets, softcap=15.0, chunk_size=8, vocab_block=16)

    torch.testing.assert_close(got, expected)


def test_cross_entropy_stays_exact_when_the_softcap_saturates() -> None:
    # Logits in the thousands: exp(2z/c) would overflow fp32 in a naive tanh.
    inputs = _problem(7, 16, seed=8, scale=3000.0)
    kernel = functools.partial(softcapped_cross_entropy_triton, softcap=15.0, vocab_block=32)
    ref = functools.partial(reference.softcapped_cross_entropy, softcap=15.0)

    assert_matches_reference(kernel, ref, inputs)
    assert torch.isfinite(kernel(*inputs))


def test_cross_entropy_honours_a_custom_ignore_index() -> None:
    hidden, weight, targets = _problem(9, 16, seed=9)
    targets[targets == -1] = -100

    got = softcapped_cross_entropy_triton(hidden, weight, targets, softcap=15.0, ignore_index=-100)

    expected = reference.softcapped_cross_entropy(hidden, weight, targets, softcap=15.0, ignore_index=-100)
    torch.testing.assert_close(got, expected)


def test_cross_entropy_accepts_batched_hidden_states_and_targets() -> None:
    hidden, weight, targets = _problem(12, 16, seed=10)

    got = softcapped_cross_entropy_triton(hidden.view(3, 4, 16), weight, targets.view(3, 4), softcap=15.0)

    torch.testing.assert_close(got, reference.softcapped_cross_entropy(hidden, weight, targets, softcap=15.0))


def test_cross_entropy_with_every_target_ignored_is_nan_like_torch() -> None:
    hidden, weight, targets = _problem(4, 16, seed=11)
    targets.fill_(-1)

    got = softcapped_cross_entropy_triton(hidden, weight, targets, softcap=15.0)

    assert torch.isnan(got)
    assert torch.isnan(reference.softcapped_cross_entropy(hidden, weight, targets, softcap=15.0))


def test_cross_entropy_rejects_a_vocab_block_that_is_not_a_power_of_two() -> None:
    hidden, weight, targets = _problem(2, 16, seed=12)

    with pytest.raises(ValueError, match="vocab_block must be a power of two, got 48"):
        softcapped_cross_entropy_triton(hidden, weight, targets, softcap=15.0, vocab_block=48)


def test_chunked_cross_entropy_keeps_no_logits_for_backward() -> None:
    hidden, weight, targets = _problem(33, 16, seed=13)
    saved: list[tuple[int, ...]] = []

    def pack(tensor: torch.Tensor) -> torch.Tensor:
        saved.append(tuple(tensor.shape))
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        softcapped_cross_entropy_triton(
            hidden.requires_grad_(), weight.requires_grad_(), targets, softcap=15.0, chunk_size=8
        )

    # hidden, weight, targets, the per-row logsumexp and the count of valid targets; no (N, V) logits.
    assert saved == [(33, 16), (VOCAB, 16), (33,), (33,), ()]
