"""A track's verified lineage as git objects: one commit per variant, from facts frozen in the database.

Every byte of a commit comes from columns that never change once the variant is promoted (its
source, hypothesis, author, creation and promotion times, the promoted metric and the runs that
counted), so any process that reads the same database writes the same commit ids, and a lineage
that grows by a promotion grows by commits on top of the ones a researcher already fetched. The
head's shown val_bpb moves later, with its calibration: it is never written here.

Pure: no database, no clock. coordinator/services/lineage_repo.py reads the rows and caches the result.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from dulwich.objects import Blob, Commit, ObjectID, Tree
from dulwich.refs import HEADREF, Ref
from dulwich.repo import MemoryRepo

from shared.hashing import short_hash

MAIN = Ref(b"refs/heads/main")
_FILE_MODE = 0o100644
_NOT_IN_EMAIL = re.compile(r"[^A-Za-z0-9._-]+")
BASELINE_AUTHOR = "baseline"
# The network commits what its verifiers promoted. A constant, not the deployment's name: a
# renamed coordinator must not rewrite every commit id.
COMMITTER = b"autoresearch-network <verification@autoresearch.invalid>"


@dataclass(frozen=True)
class LineageTrack:
    id: str
    hardware_class: str
    brief: str
    created_at: datetime


@dataclass(frozen=True)
class LineageVariant:
    """The frozen facts of one variant that its commit records."""

    id: int
    hash: str
    parent_id: int | None
    source: str
    hypothesis: str | None
    author_account: str | None  # None for the baseline
    created_at: datetime
    verified_at: datetime | None
    promoted_val_bpb: float | None
    verified_by: tuple[dict[str, Any], ...] | None
    verified: bool  # tagged; an ancestor kept only to connect the lineage is not


def commit_message(track: LineageTrack, variant: LineageVariant) -> str:
    """The hypothesis as the subject, then trailers that `git interpret-trailers` reads.

    A variant without a parent is the track's baseline: it has no Val-bpb trailer because its
    metric is its calibration mean, which moves as calibration runs arrive. Rows promoted before
    the promoted value and the counted runs were frozen have neither trailer.
    """
    if variant.parent_id is None:
        subject = f"Baseline of track {track.id}"
    else:
        subject = " ".join((variant.hypothesis or "").split()) or "(no hypothesis given)"
    trailers = [f"Variant: {variant.hash}"]
    if variant.parent_id is not None and variant.promoted_val_bpb is not None:
        trailers.append(f"Val-bpb: {variant.promoted_val_bpb:.6f}")
    for counted in variant.verified_by or ():
        trailers.append(f"Verified-by: {counted['account']} (run {counted['run']}, worker {counted['worker']})")
    trailers += [f"Track: {track.id}", f"Hardware-class: {track.hardware_class}"]
    return f"{subject}\n\n" + "\n".join(trailers) + "\n"


def author_identity(track: LineageTrack, variant: LineageVariant) -> bytes:
    """`account <account@track.autoresearch.invalid>`: an address that names the account and
    can never be delivered to (RFC 2606), since the coordinator knows no volunteer's email."""
    name = variant.author_account or BASELINE_AUTHOR
    local = _NOT_IN_EMAIL.sub("-", name).strip("-.") or "volunteer"
    domain = _NOT_IN_EMAIL.sub("-", track.id).strip("-.") or "track"
    display = name.replace("<", "").replace(">", "").replace("\n", " ")
    return f"{display} <{local}@{domain}.autoresearch.invalid>".encode()


def _tree(track: LineageTrack, variant: LineageVariant, repo: MemoryRepo) -> ObjectID:
    tree = Tree()
    for name, text in ((b"program.md", track.brief), (b"train.py", variant.source)):
        blob = Blob.from_string(text.encode())
        repo.object_store.add_object(blob)
        tree.add(name, _FILE_MODE, blob.id)
    repo.object_store.add_object(tree)
    return tree.id


def _commit(track: LineageTrack, variant: LineageVariant, parent: ObjectID | None, repo: MemoryRepo) -> ObjectID:
    commit = Commit()
    commit.tree = _tree(track, variant, repo)
    commit.parents = [parent] if parent is not None else []
    commit.author = author_identity(track, variant)
    commit.committer = COMMITTER
    # Git dates are whole seconds; UTC throughout, so no replica's zone leaks into an id.
    commit.author_time = int(variant.created_at.timestamp())
    committed = track.created_at if variant.parent_id is None else (variant.verified_at or variant.created_at)
    commit.commit_time = int(committed.timestamp())
    commit.author_timezone = commit.commit_timezone = 0
    commit.message = commit_message(track, variant).encode()
    repo.object_store.add_object(commit)
    return commit.id


def build_lineage_repo(track: LineageTrack, variants: Iterable[LineageVariant], *, head_id: int) -> MemoryRepo:
    """A bare in-memory repository: a commit for each of `variants` on its parent's commit, `main`
    at the head's, a lightweight tag `v/<short hash>` for each verified variant, HEAD → main.

    `variants` must hold every ancestor of each of them (the baseline is the root). When an audit
    revokes the head, the caller passes the lineage without it: main moves back to the previous
    head and the revoked variant's tag is gone.
    """
    by_id = {variant.id: variant for variant in variants}
    repo = MemoryRepo()
    commits: dict[int, ObjectID] = {}

    def commit_of(variant_id: int) -> ObjectID:
        # Parents before children, without recursion: a lineage may be thousands of promotions deep.
        chain = []
        cursor: int | None = variant_id
        while cursor is not None and cursor not in commits:
            chain.append(by_id[cursor])
            cursor = by_id[cursor].parent_id
        for variant in reversed(chain):
            parent = commits[variant.parent_id] if variant.parent_id is not None else None
            commits[variant.id] = _commit(track, variant, parent, repo)
        return commits[variant_id]

    for variant in sorted(by_id.values(), key=lambda v: v.id):
        sha = commit_of(variant.id)
        if variant.verified:
            repo.refs[Ref(b"refs/tags/v/" + short_hash(variant.hash).encode())] = sha
    repo.refs[MAIN] = commit_of(head_id)
    repo.refs.set_symbolic_ref(HEADREF, MAIN)
    return repo
