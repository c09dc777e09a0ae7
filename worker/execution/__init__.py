"""Running one variant: everything from "this source, this spec, this seed" to an Outcome.

    Executor.run(RunRequest) -> Outcome           (executor.py: the policy gate, then the supervisor)

Three processes take part; README.md draws them and lists the invariants:

- the **supervisor** (worker's process): sandbox, clocks, the val shard, the outcome;
- the **scorer** (in the sandbox): the metric and the probes; it never runs variant code;
- the **host** (in the sandbox, under the run-time guard): imports and trains the variant, then
  computes logits for what the scorer asks.
"""

from worker.execution.executor import Executor, RunRequest
from worker.execution.outcome import Outcome
from worker.execution.supervisor import Progress

__all__ = ["Executor", "Outcome", "Progress", "RunRequest"]
