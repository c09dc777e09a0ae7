"""Run a kernel and its reference on identical leaf inputs and compare outputs and input gradients."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch

Fn = Callable[..., torch.Tensor]


def _leaves(inputs: Sequence[torch.Tensor]) -> list[torch.Tensor]:
    return [t.detach().clone().requires_grad_(t.is_floating_point()) for t in inputs]


def forward_and_grads(
    fn: Fn, inputs: Sequence[torch.Tensor], grad_output: torch.Tensor
) -> list[torch.Tensor]:
    """[output, grad of each floating-point input] for one forward and one backward of `fn`."""
    leaves = _leaves(inputs)
    output = fn(*leaves)
    output.backward(grad_output)
    grads = [leaf.grad for leaf in leaves if leaf.requires_grad]
    assert all(grad is not None for grad in grads), "every floating-point input must get a gradient"
    return [output.detach(), *(grad for grad in grads if grad is not None)]


def assert_matches_reference(
    kernel: Fn, reference: Fn, inputs: Sequence[torch.Tensor], *, rtol: float = 1e-5, atol: float = 1e-5
) -> None:
    """Output and every input gradient of `kernel` equal the reference's, in fp32, to tolerance."""
    probe = reference(*_leaves(inputs))
    grad_output = torch.randn(probe.shape, generator=torch.Generator().manual_seed(1234))
    expected = forward_and_grads(reference, inputs, grad_output)
    actual = forward_and_grads(kernel, inputs, grad_output)
    names = ["output"] + [f"grad of input {i}" for i, t in enumerate(inputs) if t.is_floating_point()]
    for name, got, want in zip(names, actual, expected, strict=True):
        try:
            torch.testing.assert_close(got, want, rtol=rtol, atol=atol)
        except AssertionError as exc:
            raise AssertionError(f"{name}: {exc}") from None
