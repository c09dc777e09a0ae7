"""What of a failure's reason may leave the machine.

A reason is signed into the report and shown in the track's public research log. A reason that
came out of the variant's process (a crash, a broken contract, an output check, a guard refusal)
is text a hostile variant chose: it could carry a file of the volunteer's it managed to read. So
the report carries, for those, only what the supervisor can vouch for: a fixed description of
the code, and for a crash the exception's class (when Python, torch, numpy or triton defined it)
and the line numbers of the variant's own frames. The full reason stays on the worker: on its
screen, in `worker run`'s output and in the run's log. Reasons the supervisor, the scorer or the
policy wrote are published as they are.
"""

from __future__ import annotations

import builtins

from shared import run_codes as codes

WHATS = (
    "importing train.py raised",
    "train() raised",
    "evaluation raised",
    "switching the model to eval mode raised",
    "loading the model's copy raised",
)
# The exception classes a crash may be named by: Python's own, and those the libraries a variant
# uses raise (the variant's process claims the name; a name off these lists is not repeated).
BUILTIN_EXCEPTIONS = frozenset(
    name
    for name, value in vars(builtins).items()
    if isinstance(value, type) and issubclass(value, BaseException)
)
LIBRARY_EXCEPTIONS = frozenset(
    {
        "OutOfMemoryError", "AcceleratorError", "Unsupported", "BackendCompilerFailed", "TorchRuntimeError",
        "InternalTorchDynamoError", "InductorError", "LoweringException", "UserError", "CompilationError",
        "OutOfResources", "LinAlgError", "AxisError", "ContextRevoked", "GuardRefusal",
    }
)  # fmt: skip
MAX_LINE = 1_000_000

FIXED: dict[str, str] = {
    codes.GUARD_PROCESS: "the run-time guard refused starting a process",
    codes.GUARD_CODE: "the run-time guard refused running code built at run time",
    codes.GUARD_FILE: "the run-time guard refused a file the run may not use",
    codes.GUARD_NETWORK: "the run-time guard refused a network connection",
    codes.GUARD_NATIVE: "the run-time guard refused native code through ctypes",
    codes.GUARD_IMPORT: "the run-time guard refused an import off the allowlist",
    codes.GUARD_INTROSPECTION: "the run-time guard refused introspection of the interpreter",
    codes.CONTRACT_VIOLATION: "the model broke the train.py contract (no train(), not a torch.nn.Module,"
    " a torch mode left active, or train()/eval() overridden)",
    codes.OUTPUT_SHAPE: "probe output_shape: the logits were not a plain tensor of shape"
    " (batch, seq_len, vocab_size)",
    codes.OUTPUT_DTYPE: "probe output_dtype: the logits were not floating point",
    codes.CHECKSUM: "probe checksum: the model's parameters or buffers changed during evaluation",
    codes.VARIANT_CRASHED: "the variant raised an exception",
}
GENERIC = "the variant's process reported a failure"


def public_reason(code: str, parts: object) -> str:
    """The reason a report may carry for a failure the variant's process described."""
    if code == codes.VARIANT_CRASHED and isinstance(parts, dict):
        crash = _crash(parts)
        if crash is not None:
            return crash
    return FIXED.get(code, GENERIC)


def _crash(parts: dict[object, object]) -> str | None:
    what, name, module, lines = (
        parts.get("what"),
        parts.get("exception"),
        parts.get("module"),
        parts.get("lines"),
    )
    if what not in WHATS:
        return None
    known = isinstance(name, str) and (
        (module == "builtins" and name in BUILTIN_EXCEPTIONS)
        or (module != "train" and name in LIBRARY_EXCEPTIONS)
    )
    exception = name if known else "an exception train.py defines"
    numbers = (
        [n for n in lines if isinstance(n, int) and not isinstance(n, bool) and 0 < n < MAX_LINE][:3]
        if isinstance(lines, list)
        else []
    )
    where = f" at {' <- '.join(f'train.py:{n}' for n in numbers)}" if numbers else ""
    return f"{what} {exception}{where}"
