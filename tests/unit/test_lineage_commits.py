"""A lineage's commits from frozen facts: messages, trailers, identities, dates and refs."""

from __future__ import annotations

import gzip
from datetime import UTC, datetime, timedelta, timezone

import pytest
from dulwich.objects import Commit

from coordinator.services.git_http import MAX_REQUEST_BYTES, RequestTooLarge, decode_request
from coordinator.services.lineage_commits import (
    LineageTrack,
    LineageVariant,
    author_identity,
    build_lineage_repo,
    commit_message,
)

TRACK = LineageTrack(id="cpu-tiny", hardware_class="cpu", brief="Lower val_bpb.\n",
                     created_at=datetime(2026, 3, 1, 9, 0, tzinfo=UTC))
T0 = datetime(2026, 3, 2, 10, 0, 30, 999_999, tzinfo=UTC)


def variant(id: int, parent_id: int | None, **changes: object) -> LineageVariant:
    facts: dict[str, object] = dict(
        id=id, hash=f"{id:x}" * 64, parent_id=parent_id, source=f"# variant {id}\n",
        hypothesis=f"idea {id}", author_account="alice" if parent_id else None,
        created_at=T0 + timedelta(hours=id), verified_at=T0 + timedelta(hours=id, minutes=30),
        promoted_val_bpb=1.0 - id / 100 if parent_id else None,
        verified_by=({"run": 10 * id, "worker": "bob-gpu", "account": "bob"},
                     {"run": 10 * id + 1, "worker": "c1", "account": "carol"}) if parent_id else None,
        verified=True,
    )
    return LineageVariant(**{**facts, **changes})  # type: ignore[arg-type]


def commit(repo, ref: bytes) -> Commit:  # type: ignore[no-untyped-def]
    obj = repo[repo.refs[ref]]
    assert isinstance(obj, Commit)
    return obj


def test_a_variants_message_is_its_hypothesis_then_its_frozen_trailers() -> None:
    assert commit_message(TRACK, variant(2, 1)) == (
        "idea 2\n"
        "\n"
        f"Variant: {'2' * 64}\n"
        "Val-bpb: 0.980000\n"
        "Verified-by: bob (run 20, worker bob-gpu)\n"
        "Verified-by: carol (run 21, worker c1)\n"
        "Track: cpu-tiny\n"
        "Hardware-class: cpu\n"
    )


def test_the_baseline_says_so_and_carries_no_metric() -> None:
    assert commit_message(TRACK, variant(1, None, promoted_val_bpb=0.99)) == (
        f"Baseline of track cpu-tiny\n\nVariant: {'1' * 64}\nTrack: cpu-tiny\nHardware-class: cpu\n"
    )


def test_rows_promoted_before_the_values_were_frozen_omit_those_trailers() -> None:
    message = commit_message(TRACK, variant(3, 1, promoted_val_bpb=None, verified_by=None, hypothesis="a\nb  c"))
    assert message == f"a b c\n\nVariant: {'3' * 64}\nTrack: cpu-tiny\nHardware-class: cpu\n"


def test_an_author_is_an_account_at_an_address_that_cannot_be_delivered() -> None:
    assert author_identity(TRACK, variant(2, 1, author_account="ann@lab-pc")) == (
        b"ann@lab-pc <ann-lab-pc@cpu-tiny.autoresearch.invalid>"
    )
    assert author_identity(TRACK, variant(1, None)) == b"baseline <baseline@cpu-tiny.autoresearch.invalid>"


def test_the_repository_is_main_at_the_head_a_tag_per_verified_variant_and_head_on_main() -> None:
    lineage = [variant(1, None), variant(2, 1), variant(3, 2, verified=False), variant(4, 3)]
    repo = build_lineage_repo(TRACK, lineage, head_id=4)
    assert repo.refs.get_symrefs() == {b"HEAD": b"refs/heads/main"}
    tags = sorted(name for name in repo.get_refs() if name.startswith(b"refs/tags/"))
    # The unverified ancestor is a commit (its child needs a parent) but gets no tag.
    assert tags == [b"refs/tags/v/" + v.hash[:10].encode() for v in (lineage[0], lineage[1], lineage[3])]
    head = commit(repo, b"refs/heads/main")
    chain = [head]
    while chain[-1].parents:
        chain.append(repo[chain[-1].parents[0]])  # type: ignore[arg-type]
    assert [c.message.split(b"\n")[0] for c in chain] == [b"idea 4", b"idea 3", b"idea 2", b"Baseline of track cpu-tiny"]
    tree = repo[head.tree]
    assert sorted(entry.path for entry in tree.items()) == [b"program.md", b"train.py"]  # type: ignore[attr-defined]
    assert repo[tree[b"train.py"][1]].data == b"# variant 4\n"  # type: ignore[index]
    assert repo[tree[b"program.md"][1]].data == b"Lower val_bpb.\n"  # type: ignore[index]


def test_dates_are_whole_utc_seconds_from_creation_and_promotion() -> None:
    later_zone = timezone(timedelta(hours=5))
    repo = build_lineage_repo(TRACK, [variant(1, None), variant(2, 1, created_at=T0.astimezone(later_zone))], head_id=2)
    head = commit(repo, b"refs/heads/main")
    assert (head.author_time, head.author_timezone) == (int(T0.timestamp()), 0)
    assert (head.commit_time, head.commit_timezone) == (int((T0 + timedelta(hours=2, minutes=30)).timestamp()), 0)
    root = repo[head.parents[0]]
    assert root.commit_time == int(TRACK.created_at.timestamp())  # type: ignore[attr-defined]


def test_the_same_facts_give_the_same_ids_and_a_revoked_head_leaves_main() -> None:
    lineage = [variant(1, None), variant(2, 1), variant(3, 2)]
    first = build_lineage_repo(TRACK, lineage, head_id=3).get_refs()
    assert build_lineage_repo(TRACK, list(reversed(lineage)), head_id=3).get_refs() == first
    revoked = build_lineage_repo(TRACK, lineage[:2], head_id=2).get_refs()
    assert revoked[b"refs/heads/main"] == first[b"refs/tags/v/" + lineage[1].hash[:10].encode()]
    assert b"refs/tags/v/" + lineage[2].hash[:10].encode() not in revoked


def test_a_gzipped_negotiation_is_inflated_within_a_cap() -> None:
    assert decode_request(gzip.compress(b"0032want abc\n0000"), "gzip") == b"0032want abc\n0000"
    assert decode_request(b"0000", None) == b"0000"
    with pytest.raises(RequestTooLarge):
        decode_request(gzip.compress(b"0" * (MAX_REQUEST_BYTES + 1)), "gzip")
    with pytest.raises(ValueError, match="corrupt"):
        decode_request(b"not gzip", "gzip")
