"""The one vocabulary of run outcomes: statuses, the layer that decided, and stable codes.

The worker's execution package (supervisor, scorer, the variant's host process), the worker's
reports and the coordinator all speak it: a run that did not score says which layer stopped it
and why, as a code a program can branch on; the reason beside it is for people. Codes are never
renamed. Standard library only: the variant's host imports this on a bare GPU box.

| layer     | decided by                                            | codes                          |
|-----------|-------------------------------------------------------|--------------------------------|
| `policy`  | the static policy, before any process starts          | shared.policy.report.CODES     |
| `guard`   | the run-time guard inside the variant's process       | GUARD_CODES                    |
| `sandbox` | limits and namespaces around the run                  | SANDBOX_CODES                  |
| `budget`  | the supervisor's and the scorer's clocks              | BUDGET_CODES                   |
| `probe`   | integrity probes and output checks                    | PROBE_CODES                    |
| `report`  | fields the variant's process reported                 | REPORT_CODES                   |
| `harness` | the variant crashed or broke the contract; run set-up | HARNESS_CODES                  |
| None      | a valid run (code None), or one the worker aborted    | `aborted`                      |
"""

from __future__ import annotations

from enum import StrEnum

OK = "ok"
CRASHED = "crashed"
REJECTED = "rejected"
STATUSES = (OK, CRASHED, REJECTED)


class Layer(StrEnum):
    policy = "policy"
    guard = "guard"
    sandbox = "sandbox"
    budget = "budget"
    probe = "probe"
    report = "report"
    harness = "harness"


# --- guard: the variant's process tried what the policy meant to forbid --------------------------
GUARD_PROCESS = "guard_process"  # starting a process, forking, exec of a program
GUARD_CODE = "guard_code"  # compiling or executing new code from the variant's own frames
GUARD_FILE = (
    "guard_file"  # opening a file for writing outside scratch, or for reading off the paths a run needs
)
GUARD_NETWORK = "guard_network"  # sockets
GUARD_NATIVE = "guard_native"  # ctypes, loading native libraries
GUARD_IMPORT = "guard_import"  # an import off the allowlist made by the variant's code
GUARD_INTROSPECTION = "guard_introspection"  # frames, the garbage collector, the interpreter's hooks
SECCOMP = "seccomp"  # a system call the seccomp filter refuses killed the process
GUARD_CODES = (
    GUARD_PROCESS,
    GUARD_CODE,
    GUARD_FILE,
    GUARD_NETWORK,
    GUARD_NATIVE,
    GUARD_IMPORT,
    GUARD_INTROSPECTION,
    SECCOMP,
)

# --- sandbox ----------------------------------------------------------------------------------
OUT_OF_MEMORY = "out_of_memory"
FILE_TOO_LARGE = "file_too_large"
PROCESS_LIMIT = "process_limit"
SANDBOX_FAILED = "sandbox_failed"
SANDBOX_CODES = (OUT_OF_MEMORY, FILE_TOO_LARGE, PROCESS_LIMIT, SANDBOX_FAILED)

# --- budget -----------------------------------------------------------------------------------
BUDGET_EXCEEDED = "budget_exceeded"  # still training at budget + grace: killed
OVER_BUDGET = "over_budget"  # train() returned after budget + tolerance: the run is invalid
STARTUP_TIMEOUT = "startup_timeout"
EVAL_TIMEOUT = "eval_timeout"  # evaluation as a whole took too long
SLOW_FORWARD = "slow_forward"  # one evaluation forward took far longer than a plain one
EXIT_TIMEOUT = "exit_timeout"
BUDGET_CODES = (BUDGET_EXCEEDED, OVER_BUDGET, STARTUP_TIMEOUT, EVAL_TIMEOUT, SLOW_FORWARD, EXIT_TIMEOUT)

# --- probes -----------------------------------------------------------------------------------
CHECKSUM = "checksum"
STATELESSNESS = "statelessness"
CAUSALITY = "causality"
OUTPUT_SHAPE = "output_shape"
OUTPUT_DTYPE = "output_dtype"
FINITE_LOGITS = "finite_logits"
PROBE_CODES = (CHECKSUM, STATELESSNESS, CAUSALITY, OUTPUT_SHAPE, OUTPUT_DTYPE, FINITE_LOGITS)

# --- reported fields --------------------------------------------------------------------------
REPORT_OUT_OF_RANGE = "report_out_of_range"
REPORT_CODES = (REPORT_OUT_OF_RANGE,)

# --- harness ----------------------------------------------------------------------------------
VARIANT_CRASHED = "variant_crashed"  # train.py raised: on import, in train(), in its forward
CONTRACT_VIOLATION = "contract_violation"  # no train(), not a Module, a torch mode left active
KILLED_BY_SIGNAL = "killed_by_signal"
NO_RESULT = "no_result"
HARNESS_SETUP_FAILED = "harness_setup_failed"  # the worker's side could not run it (data, device)
UNREADABLE_RESULT = "unreadable_result"
HARNESS_CODES = (
    VARIANT_CRASHED,
    CONTRACT_VIOLATION,
    KILLED_BY_SIGNAL,
    NO_RESULT,
    HARNESS_SETUP_FAILED,
    UNREADABLE_RESULT,
)

ABORTED = "aborted"

LAYER_OF: dict[str, Layer | None] = {
    **dict.fromkeys(GUARD_CODES, Layer.guard),
    **dict.fromkeys(SANDBOX_CODES, Layer.sandbox),
    **dict.fromkeys(BUDGET_CODES, Layer.budget),
    **dict.fromkeys(PROBE_CODES, Layer.probe),
    **dict.fromkeys(REPORT_CODES, Layer.report),
    **dict.fromkeys(HARNESS_CODES, Layer.harness),
    ABORTED: None,
}

# What a code may look like on the wire (the protocol bounds it with this pattern).
CODE_PATTERN = r"^[a-z][a-z0-9_]{0,63}$"

# Bounds on every number a run reports: the protocol enforces them, and the worker's execution
# refuses a run that would break them before anything is signed.
MAX_COUNT = 2**53 - 1  # steps, tokens, bytes, parameters: exact in a JSON number
MAX_BPB = 1000.0  # bits per byte (and nats per token for losses); a uniform byte model scores 8
MAX_SECONDS = 1e7  # about 16 weeks
