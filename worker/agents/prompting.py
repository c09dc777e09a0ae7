"""The words every model-backed agent is given: contract rules, research-log digest, leaderboard, lineage.

The `claude` agent puts these in its prompt and the `command` agent writes them into its
workspace (program.md, research_log.md), so both see the same picture of the track. Everything
here is built only from the ProposalContext, which holds what the coordinator published; nothing
is read from the volunteer's machine.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from shared.policy.rules import ALLOWED_IMPORT_ROOTS

HYPOTHESIS_MAX_CHARS = 200
_LOG_HYPOTHESIS_CHARS = 140
_LOG_REASON_CHARS = 120
_MAX_LINEAGE = 30
_MAX_IMPROVEMENTS = 10
LEADERBOARD_TOP = 5

VARIANT_RULES = """\
You improve `train.py`, the training script of a small GPT, one experiment at a time. A harness
on a volunteer's machine runs your file for a fixed time budget and then measures validation
bits per byte (val_bpb); lower is better. Improvements are re-run on other volunteers' machines
with fresh seeds, and only those that beat the current best by more than seed noise are kept.

The contract the harness enforces:
- train.py defines `train(ctx) -> torch.nn.Module`. `ctx` gives: device, seed, vocab_size,
  seq_len, time_budget_s, time_left(), batches(batch_size, seq_len) -> iterator of (x, y) on the
  device, and report(step=, loss=). The returned model maps int64 token ids (B, T) to logits
  (B, T, vocab_size) and must be causal.
- The clock starts when train(ctx) is called and covers everything, compilation included. Stop
  before time_left() runs out: the run is killed at the budget plus a short grace.
- Training data comes only from ctx.batches. The harness evaluates the model afterwards in eval()
  mode under no_grad, and checks that it is causal, stateless between calls, and that its
  parameters do not change during evaluation.
- A static policy reads the file before it runs, and a refused file is never run. Imports may
  come only from these modules: {allowed_imports}; and from shared.kernels (the project's
  Triton kernels). No exec, eval, compile, open or __import__; no dunder attribute access; no
  assignment to attributes of imported modules; no file, network, process or environment access.

How to work:
- Make one focused change whose effect you can state in one line, so the research log stays
  readable and the result teaches something either way.
- Build on what the research log shows. Do not repeat a change that was already tried, whether
  it won or lost, unless your hypothesis says why this attempt differs.
- Return the complete file, not a diff, with a one-line hypothesis (under 200 characters) like a
  commit message: what changed and why val_bpb should drop.""".format(
    allowed_imports=", ".join(sorted(ALLOWED_IMPORT_ROOTS - {"__future__"}))
)

# Directions an agent is nudged towards, picked by the lease's seed, so that several workers
# exploring the same parent at once do not all try the same obvious idea.
_FOCUS_AREAS = (
    "the optimizer: learning rates, betas, weight decay, or how parameters are split between Muon and AdamW",
    "the learning-rate schedule: warmup, decay shape and the final fraction of the budget",
    "the architecture: depth versus width, attention heads, MLP ratio, normalization placement",
    "throughput: tokens per second within the fixed budget (batch size, sequence packing, kernel use)",
    "initialization and residual scaling",
    "regularization and the loss: logit softcap, label smoothing, z-loss, dropout",
    "the attention block: rotary settings, QK-norm, value or key sharing",
    "the embedding and output head: sizes, tying, scaling, and their learning rates",
)


def one_line(text: str, *, limit: int) -> str:
    """`text` with runs of whitespace (newlines included) collapsed to one space, clipped to `limit`."""
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1].rstrip() + "…"


def exploration_focus(seed: int) -> str:
    return _FOCUS_AREAS[seed % len(_FOCUS_AREAS)]


def research_log_digest(entries: Sequence[Mapping[str, Any]], *, max_entries: int = 40) -> str:
    """A compact, newest-first table of the track's experiments, then what improved verified results.

    `entries` are research-log dicts (shared.protocol.LogEntry or CompactLogEntry shape), newest
    first, as the coordinator serves them. The summary of verified improvements covers every
    entry given, not only the rows shown, so a long log still credits its early wins.
    """
    if not entries:
        return "Research log: no experiments are recorded on this track yet."
    shown = entries[:max_entries]
    lines = [
        f"Research log: the {len(shown)} most recent experiments on this track, newest first.",
        "delta = val_bpb minus the parent's val_bpb; negative is better. Verified deltas come from",
        "independent re-runs; every other delta is the author's own claim.",
        "",
        f"{'status':<10} {'delta':>8}  hypothesis",
    ]
    lines.extend(_log_row(entry) for entry in shown)
    hidden = len(entries) - len(shown)
    if hidden > 0:
        lines.append(f"({hidden} older experiments not shown)")
    lines.append("")
    lines.append(_improvements_summary(entries))
    return "\n".join(lines)


def leaderboard_text(entries: Sequence[Mapping[str, Any]], *, top: int = LEADERBOARD_TOP) -> str:
    """The track's best verified variants, best first: rank, short hash, val_bpb, gain, hypothesis.

    `entries` are shared.protocol.LeaderboardEntry dicts. Authors are left out on purpose: the
    model needs what worked, not who found it.
    """
    if not entries:
        return "Leaderboard: no verified variant yet."
    lines = [f"Leaderboard: the track's {min(top, len(entries))} best verified variants, best first."]
    for entry in entries[:top]:
        gain = entry.get("delta_vs_baseline")
        gain_text = f" ({gain:+.4f} vs baseline)" if isinstance(gain, int | float) else ""
        val_bpb = entry.get("val_bpb")
        val_text = f"val_bpb {val_bpb:.4f}" if isinstance(val_bpb, int | float) else "val_bpb n/a"
        hypothesis = one_line(str(entry.get("hypothesis") or "(the baseline)"), limit=_LOG_HYPOTHESIS_CHARS)
        short = str(entry.get("short_hash") or entry.get("hash") or "")[:10]
        lines.append(f"{entry.get('rank', '?')}. {short} {val_text}{gain_text}  {hypothesis}")
    return "\n".join(lines)


def lineage_text(hypotheses: Sequence[str]) -> str:
    """The parent's ancestry as numbered hypotheses: the parent's own first, then older ones."""
    named = [one_line(h, limit=_LOG_HYPOTHESIS_CHARS) for h in hypotheses if h and h.strip()]
    if not named:
        return "Lineage: the parent is the track's baseline; no changes have been made to it yet."
    lines = ["Lineage: the changes that led to the parent, the parent's own change first."]
    lines.extend(f"{number}. {hypothesis}" for number, hypothesis in enumerate(named[:_MAX_LINEAGE], 1))
    if len(named) > _MAX_LINEAGE:
        lines.append(f"({len(named) - _MAX_LINEAGE} earlier changes not shown)")
    return "\n".join(lines)


def _log_row(entry: Mapping[str, Any]) -> str:
    status = str(entry.get("status") or "unknown")
    delta = entry.get("delta")
    delta_text = f"{delta:+.4f}" if isinstance(delta, int | float) else "n/a"
    hypothesis = one_line(str(entry.get("hypothesis") or "(no hypothesis)"), limit=_LOG_HYPOTHESIS_CHARS)
    row = f"{status:<10} {delta_text:>8}  {hypothesis}"
    note = _outcome_note(status, entry.get("reason"))
    return f"{row}  [{note}]" if note else row


def _outcome_note(status: str, reason: object) -> str:
    # Why something failed is the most reusable finding in the log, so it is kept for rejections
    # and crashes; for the other statuses the status and delta already say what happened.
    if status in ("rejected", "crashed") and reason:
        return one_line(str(reason), limit=_LOG_REASON_CHARS)
    if status == "candidate":
        return "awaiting verification"
    return ""


def _improvements_summary(entries: Sequence[Mapping[str, Any]]) -> str:
    wins = [
        entry
        for entry in entries
        if entry.get("status") == "verified"
        and isinstance(entry.get("delta"), int | float)
        and entry["delta"] < 0
    ]
    if not wins:
        return "Verified improvements: none yet."
    wins.sort(key=lambda entry: entry["delta"])
    lines = ["Verified improvements, best first:"]
    for entry in wins[:_MAX_IMPROVEMENTS]:
        hypothesis = one_line(str(entry.get("hypothesis") or "(no hypothesis)"), limit=_LOG_HYPOTHESIS_CHARS)
        lines.append(f"- {hypothesis} ({entry['delta']:+.4f})")
    if len(wins) > _MAX_IMPROVEMENTS:
        lines.append(f"({len(wins) - _MAX_IMPROVEMENTS} smaller verified improvements not shown)")
    return "\n".join(lines)
