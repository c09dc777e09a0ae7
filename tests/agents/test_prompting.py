"""The research-log digest and lineage text that model-backed agents read."""

from __future__ import annotations

from typing import Any

from tests.agents.conftest import LEADERBOARD, RESEARCH_LOG
from worker.agents.prompting import (
    exploration_focus,
    leaderboard_text,
    lineage_text,
    one_line,
    research_log_digest,
)


def entry(hypothesis: str, status: str, delta: float | None, reason: str | None = None) -> dict[str, Any]:
    return {
        "hash": "0" * 10,
        "parent": None,
        "status": status,
        "delta": delta,
        "hypothesis": hypothesis,
        "reason": reason,
    }


def test_the_digest_is_a_newest_first_table_with_a_summary_of_verified_wins() -> None:
    assert research_log_digest(RESEARCH_LOG) == (
        "Research log: the 2 most recent experiments on this track, newest first.\n"
        "delta = val_bpb minus the parent's val_bpb; negative is better. Verified deltas come from\n"
        "independent re-runs; every other delta is the author's own claim.\n"
        "\n"
        "status        delta  hypothesis\n"
        "rejected    +0.0100  Use a cosine learning-rate decay to zero  [not reproduced: verifiers measured +0.0100]\n"
        "verified    -0.0200  Double the batch size to 16\n"
        "\n"
        "Verified improvements, best first:\n"
        "- Double the batch size to 16 (-0.0200)"
    )


def test_the_digest_marks_candidates_crashes_and_missing_deltas() -> None:
    digest = research_log_digest(
        [
            entry("Try bf16 autocast", "candidate", -0.004),
            entry("Depth 16", "crashed", None, reason="CUDA out of memory at step 3"),
            entry("Halve warmup", "discarded", 0.0021),
        ]
    )

    assert "candidate   -0.0040  Try bf16 autocast  [awaiting verification]" in digest
    assert "crashed         n/a  Depth 16  [CUDA out of memory at step 3]" in digest
    assert "discarded   +0.0021  Halve warmup\n" in digest
    assert digest.endswith("Verified improvements: none yet.")


def test_the_summary_covers_entries_beyond_the_shown_rows() -> None:
    entries = [entry(f"Change {number}", "discarded", 0.001) for number in range(5)]
    entries.append(entry("An early win", "verified", -0.03))

    digest = research_log_digest(entries, max_entries=3)

    assert "Change 3" not in digest
    assert "(3 older experiments not shown)" in digest
    assert digest.endswith("Verified improvements, best first:\n- An early win (-0.0300)")


def test_an_empty_log_says_so() -> None:
    assert research_log_digest([]) == "Research log: no experiments are recorded on this track yet."


def test_hypotheses_are_flattened_to_one_clipped_line() -> None:
    digest = research_log_digest([entry("Line one\nline two  " + "x" * 300, "discarded", 0.001)])

    row = digest.splitlines()[5]
    assert row.startswith("discarded   +0.0010  Line one line two xxx")
    assert row.endswith("…")
    assert one_line(" a \n b\t c ", limit=10) == "a b c"


def test_lineage_lists_the_parent_change_first() -> None:
    assert lineage_text(["Double the batch size", "", "Add QK-norm"]) == (
        "Lineage: the changes that led to the parent, the parent's own change first.\n"
        "1. Double the batch size\n"
        "2. Add QK-norm"
    )
    assert (
        lineage_text([])
        == "Lineage: the parent is the track's baseline; no changes have been made to it yet."
    )


def test_the_leaderboard_lists_the_top_entries_best_first_without_their_authors() -> None:
    assert leaderboard_text(LEADERBOARD) == (
        "Leaderboard: the track's 2 best verified variants, best first.\n"
        "1. bbbbbbbbbb val_bpb 1.3000 (-0.0500 vs baseline)  Double the batch size to 16\n"
        "2. aaaaaaaaaa val_bpb 1.3500 (+0.0000 vs baseline)  (the baseline)"
    )
    many = [{**LEADERBOARD[0], "rank": rank} for rank in range(1, 9)]
    assert leaderboard_text(many, top=3).splitlines()[0] == (
        "Leaderboard: the track's 3 best verified variants, best first."
    )
    assert len(leaderboard_text(many, top=3).splitlines()) == 4
    assert leaderboard_text([]) == "Leaderboard: no verified variant yet."


def test_the_exploration_focus_depends_on_the_seed() -> None:
    assert exploration_focus(0) != exploration_focus(1)
    assert exploration_focus(3) == exploration_focus(3 + 8)
