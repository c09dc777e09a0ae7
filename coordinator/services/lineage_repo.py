"""Read a track's verified lineage from the database and keep its git repository, per process.

The repository is rebuilt only when what it shows changes: the head, the baseline, the brief,
or the set of verified variants (with their promotion times). A busy clone or fetch costs one
small query; a rebuild reads the verified variants (and any ancestor they need), never the
track's other experiments.

When an audit revokes a promotion, the variant becomes `rejected` and the track's head goes back
to the previous head: the next read rebuilds without it, so `main` moves back and its tag is gone.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import datetime

from dulwich.repo import MemoryRepo
from sqlalchemy import select
from sqlalchemy.orm import Session

from coordinator.models import Track, Variant
from coordinator.services.lineage_commits import LineageTrack, LineageVariant, build_lineage_repo
from shared.protocol import VariantStatus

_VERIFIED = VariantStatus.verified.value


@dataclass(frozen=True)
class LineageKey:
    """Everything a track's lineage repository depends on, read in one small query."""

    head_id: int
    baseline_id: int | None
    brief: str
    verified: tuple[tuple[int, datetime | None], ...]  # (variant id, verified_at), by id


def lineage_key(session: Session, track: Track) -> LineageKey | None:
    """The key of `track`'s lineage as it stands, or None while the track has no head."""
    if track.head_variant_id is None:
        return None
    rows = session.execute(
        select(Variant.id, Variant.verified_at)
        .where(Variant.track_id == track.id, Variant.status == _VERIFIED)
        .order_by(Variant.id)
    ).all()
    return LineageKey(track.head_variant_id, track.baseline_variant_id, track.brief, tuple((i, at) for i, at in rows))


def _frozen(variant: Variant) -> LineageVariant:
    return LineageVariant(
        id=variant.id,
        hash=variant.hash,
        parent_id=variant.parent_id,
        source=variant.source,
        hypothesis=variant.hypothesis,
        author_account=variant.author.account.name if variant.author is not None else None,
        created_at=variant.created_at,
        verified_at=variant.verified_at,
        promoted_val_bpb=variant.promoted_val_bpb,
        verified_by=tuple(variant.verified_by) if variant.verified_by is not None else None,
        verified=variant.status == _VERIFIED,
    )


def load_lineage(session: Session, track: Track) -> tuple[LineageKey, list[LineageVariant]] | None:
    """The verified variants of `track`, the head and baseline, and every ancestor they need.

    A verified variant's parent is normally verified (or the baseline); one that is not (say, a
    head revoked after its child was promoted) is read too, so every commit has its parent. The
    key is derived from the rows read, so a repository is never filed under a newer state than
    the one it shows.
    """
    if track.head_variant_id is None:
        return None
    rows = {
        v.id: v
        for v in session.scalars(select(Variant).where(Variant.track_id == track.id, Variant.status == _VERIFIED))
    }

    def missing() -> set[int]:
        needed = {track.head_variant_id, track.baseline_variant_id} | {v.parent_id for v in rows.values()}
        return {i for i in needed if i is not None and i not in rows}

    while ids := missing():
        found = session.scalars(select(Variant).where(Variant.id.in_(ids))).all()
        if not found:  # foreign keys make this unreachable; never loop on it
            raise LookupError(f"track {track.id}: variants {sorted(ids)} are referenced but absent")
        rows.update((v.id, v) for v in found)
    variants = [_frozen(rows[i]) for i in sorted(rows)]
    verified = tuple((v.id, v.verified_at) for v in variants if v.verified)
    return LineageKey(track.head_variant_id, track.baseline_variant_id, track.brief, verified), variants


def _lineage_track(track: Track) -> LineageTrack:
    return LineageTrack(id=track.id, hardware_class=track.hardware_class, brief=track.brief,
                        created_at=track.created_at)


class LineageRepos:
    """Each track's lineage repository, built once per change of its `LineageKey`.

    One per process (coordinator/main.py). Built repositories are read-only afterwards, so
    requests share them across threads; building holds a lock so that a burst of clones after a
    promotion builds once.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._built: dict[str, tuple[LineageKey, MemoryRepo]] = {}

    def get(self, session: Session, track: Track) -> MemoryRepo | None:
        """`track`'s lineage repository, or None while the track has no head."""
        key = lineage_key(session, track)
        if key is None:
            return None
        with self._lock:
            cached = self._built.get(track.id)
            if cached is not None and cached[0] == key:
                return cached[1]
            loaded = load_lineage(session, track)
            if loaded is None:
                return None
            built_key, variants = loaded
            repo = build_lineage_repo(_lineage_track(track), variants, head_id=built_key.head_id)
            self._built[track.id] = (built_key, repo)
            return repo

    def commit_ids(self, session: Session, track: Track) -> dict[str, str]:
        """The lineage commit of each verified variant, by the variant's short hash (its tag's name)."""
        repo = self.get(session, track)
        if repo is None:
            return {}
        prefix = b"refs/tags/v/"
        return {
            ref.removeprefix(prefix).decode(): sha.decode()
            for ref, sha in repo.get_refs().items()
            if ref.startswith(prefix)
        }
