"""Process-wide torch settings that evaluation runs under, put back as the harness found them.

The variant runs in the harness's process, so whatever global state it leaves behind (default
dtype or device, autocast, matmul precision, threads, a function mode) would also govern the
harness's own evaluation. The harness captures the settings before the variant is imported and
restores them once train() has returned, so every variant is scored under the same numerics.
The static policy refuses the obvious setters; this is the line behind it.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from worker.execution.failures import contract_violation

AUTOCAST_DEVICE_TYPES = ("cpu", "cuda")
# PyTorch's per-backend precision settings (the API that replaces `allow_tf32`). Once one of them
# is set, the legacy getters refuse to answer ("mix of the legacy and new APIs"), so they are
# captured and restored one by one, before the legacy setters run.
FP32_PRECISION_SETTINGS = (
    "backends",
    "backends.cuda.matmul",
    "backends.cudnn",
    "backends.cudnn.conv",
    "backends.cudnn.rnn",
    "backends.mkldnn",
    "backends.mkldnn.matmul",
    "backends.mkldnn.conv",
    "backends.mkldnn.rnn",
)


def _setting_owner(path: str) -> object | None:
    owner: object = torch
    for part in path.split("."):
        owner = getattr(owner, part, None)
        if owner is None:
            return None
    return owner if hasattr(owner, "fp32_precision") else None


@dataclass(frozen=True)
class TorchSettings:
    default_dtype: torch.dtype
    num_threads: int
    matmul_precision: str
    cudnn_allow_tf32: bool
    cuda_matmul_bf16_reduction: bool
    cuda_matmul_fp16_reduction: bool
    deterministic_algorithms: bool
    deterministic_warn_only: bool
    autocast_dtypes: tuple[tuple[str, torch.dtype], ...]
    fp32_precisions: tuple[tuple[str, str], ...] = ()

    @classmethod
    def capture(cls) -> TorchSettings:
        """Read the settings now; call it before any variant code has run."""
        return cls(
            default_dtype=torch.get_default_dtype(),
            num_threads=torch.get_num_threads(),
            matmul_precision=torch.get_float32_matmul_precision(),
            cudnn_allow_tf32=torch.backends.cudnn.allow_tf32,
            cuda_matmul_bf16_reduction=torch.backends.cuda.matmul.allow_bf16_reduced_precision_reduction,
            cuda_matmul_fp16_reduction=torch.backends.cuda.matmul.allow_fp16_reduced_precision_reduction,
            deterministic_algorithms=torch.are_deterministic_algorithms_enabled(),
            deterministic_warn_only=torch.is_deterministic_algorithms_warn_only_enabled(),
            autocast_dtypes=tuple((kind, torch.get_autocast_dtype(kind)) for kind in AUTOCAST_DEVICE_TYPES),
            fp32_precisions=tuple(
                (path, str(owner.fp32_precision))  # type: ignore[attr-defined]
                for path in FP32_PRECISION_SETTINGS
                if (owner := _setting_owner(path)) is not None
            ),
        )

    def restore(self, *, device: str) -> None:
        """Put the captured settings back, with autocast off and cuDNN deterministic for evaluation.

        Raises RunFailed (contract_violation) when the variant left a torch function or dispatch
        mode active: every torch call of the evaluation would run through the variant's code.
        """
        if device == "cuda":
            torch.cuda.synchronize()  # work queued on any stream belongs to training
            torch.cuda.set_stream(torch.cuda.default_stream())
        torch.set_default_device(None)  # pops the device mode that set_default_device pushed
        if torch._C._len_torch_function_stack() or torch._C._len_torch_dispatch_stack():
            raise contract_violation(
                "train() left a torch function or dispatch mode active; evaluation would run through it"
            )
        for path, value in self.fp32_precisions:
            owner = _setting_owner(path)
            if owner is not None:
                owner.fp32_precision = value  # type: ignore[attr-defined]
        torch.set_default_dtype(self.default_dtype)
        torch.set_num_threads(self.num_threads)
        # Sets the legacy TF32 flag and its newer per-backend form together, whichever was changed.
        torch.set_float32_matmul_precision(self.matmul_precision)
        torch.backends.cudnn.allow_tf32 = self.cudnn_allow_tf32
        torch.backends.cuda.matmul.allow_bf16_reduced_precision_reduction = self.cuda_matmul_bf16_reduction
        torch.backends.cuda.matmul.allow_fp16_reduced_precision_reduction = self.cuda_matmul_fp16_reduction
        torch.use_deterministic_algorithms(
            self.deterministic_algorithms, warn_only=self.deterministic_warn_only
        )
        # The probes score a batch again and compare: one cuDNN algorithm for every call.
        torch.backends.cudnn.benchmark = False
        torch.backends.cudnn.deterministic = True
        for kind, dtype in self.autocast_dtypes:
            torch.set_autocast_enabled(kind, False)
            torch.set_autocast_dtype(kind, dtype)
        torch.clear_autocast_cache()
        torch.set_flush_denormal(False)
