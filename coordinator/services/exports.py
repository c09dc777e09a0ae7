"""Exports of a track: autoresearch's results.tsv, and the verified lineage from baseline to head."""

from __future__ import annotations

from collections.abc import Mapping

from sqlalchemy.orm import Session

from coordinator.models import Track, Variant
from coordinator.services.experiments import Experiment, Outcome, finished_experiments
from coordinator.services.variants import lineage
from shared.hashing import short_hash
from shared.protocol import LineageVariant, TrackLineage, VariantStatus

RESULTS_HEADER = ("commit", "val_bpb", "memory_gb", "status", "description")


def _one_line(text: str | None) -> str:
    """A hypothesis as one TSV field: tabs and line breaks would start new fields or rows."""
    return " ".join((text or "").split())


def results_row(experiment: Experiment, commits: Mapping[str, str]) -> str:
    """One row; `commit` is the variant's commit on the track's git lineage where it has one (a
    kept experiment), as in autoresearch, else the first digits of the variant's hash."""
    crashed = experiment.outcome is Outcome.crash
    val_bpb = 0.0 if crashed or experiment.val_bpb is None else experiment.val_bpb
    memory_gb = 0.0 if crashed or experiment.peak_memory_bytes is None else experiment.peak_memory_bytes / 1e9
    fields = (
        commits.get(short_hash(experiment.variant.hash), experiment.variant.hash)[:7],
        f"{val_bpb:.6f}",
        f"{memory_gb:.1f}",
        experiment.outcome.value,
        _one_line(experiment.variant.hypothesis),
    )
    return "\t".join(fields)


def results_tsv(session: Session, track: Track, commits: Mapping[str, str]) -> str:
    """`commits`: the lineage commit of each verified variant, by short hash (LineageRepos.commit_ids)."""
    rows = ["\t".join(RESULTS_HEADER), *(results_row(e, commits) for e in finished_experiments(session, track))]
    return "\n".join(rows) + "\n"


def verified_line(session: Session, track: Track) -> list[Variant]:
    """The head and its verified ancestors, baseline first: the commits of the track's `main`."""
    if track.head is None:
        return []
    chain = reversed(lineage(session, track.head, limit=None))  # the whole line, as the git lineage has it
    return [v for v in chain if v.status == VariantStatus.verified.value]


def track_lineage(session: Session, track: Track) -> TrackLineage:
    line = verified_line(session, track)
    return TrackLineage(
        track_id=track.id,
        variants=[
            LineageVariant(
                hash=v.hash,
                short_hash=short_hash(v.hash),
                parent_hash=v.parent.hash if v.parent else None,
                val_bpb=v.val_bpb,
                hypothesis=v.hypothesis,
                author=v.author.display_name if v.author else None,
                verified_at=v.verified_at,
            )
            for v in line
        ],
    )
