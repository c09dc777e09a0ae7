"""Exports: autoresearch's results.tsv and the verified lineage, with their OpenAPI entries."""

from __future__ import annotations

import csv
import hashlib
import io

from coordinator.models import Track
from coordinator.services.lineage_repo import LineageRepos
from shared.hashing import short_hash
from shared.protocol import RunMetrics
from tests.api.conftest import BASELINE, TRACK, Coordinator, Worker, calibrate

ROOT = hashlib.sha256(BASELINE.encode()).hexdigest()


def _history(coordinator: Coordinator, make_worker) -> dict[str, str]:  # type: ignore[no-untyped-def]
    """A calibrated baseline, then a discarded, a crashed and a verified experiment: their hashes."""
    alice, bob = make_worker("a1", "alice"), make_worker("b1", "bob")
    calibrate(coordinator, [1.0, 1.0])
    discarded = alice.run(alice.lease(), 1.05, hypothesis="halve the warmup")
    crashed = alice.run(alice.lease(), None, status="crashed", hypothesis="bf16 attention")  # type: ignore[arg-type]
    lease = alice.lease()
    payload = alice.report(lease, val_bpb=0.9, hypothesis="wider MLP\tand\nmore heads")
    payload = payload.model_copy(update={"metrics": RunMetrics(val_bpb=0.9, steps=100, peak_memory_bytes=4_300_000_000)})
    kept = alice.submit(payload).json()
    assert bob.run(bob.lease(), 0.9)["variant_status"] == "verified"
    return {"discarded": discarded["variant_hash"], "crashed": crashed["variant_hash"], "kept": kept["variant_hash"]}


def test_results_tsv_is_autoresearchs_format_with_the_baseline_first(coordinator: Coordinator, make_worker) -> None:
    made = _history(coordinator, make_worker)
    response = coordinator.client.get(f"/v1/tracks/{TRACK}/results.tsv")
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/tab-separated-values; charset=utf-8"
    with coordinator.session() as session:
        commits = LineageRepos().commit_ids(session, session.get(Track, TRACK))
    # A kept experiment's commit is its commit on the track's git (`git show` finds it); the
    # others have none, so theirs is the variant's hash.
    root_commit, kept_commit = commits[short_hash(ROOT)], commits[short_hash(made["kept"])]
    assert response.text == (
        "commit\tval_bpb\tmemory_gb\tstatus\tdescription\n"
        f"{root_commit[:7]}\t1.000000\t0.0\tkeep\tbaseline\n"
        f"{made['discarded'][:7]}\t1.050000\t0.0\tdiscard\thalve the warmup\n"
        f"{made['crashed'][:7]}\t0.000000\t0.0\tcrash\tbf16 attention\n"
        f"{kept_commit[:7]}\t0.900000\t4.3\tkeep\twider MLP and more heads\n"
    )

    # Read back as autoresearch's analysis notebook reads it: the csv module, tab-delimited.
    rows = list(csv.DictReader(io.StringIO(response.text), delimiter="\t"))
    assert [r["status"] for r in rows] == ["keep", "discard", "crash", "keep"]
    kept = [r for r in rows if r["status"] == "keep"]
    assert [float(r["val_bpb"]) for r in kept] == [1.0, 0.9]  # the frontier only improves
    assert all(float(r["val_bpb"]) == 0.0 and float(r["memory_gb"]) == 0.0 for r in rows if r["status"] == "crash")
    assert rows[-1]["description"] == "wider MLP and more heads" and float(rows[-1]["memory_gb"]) == 4.3
    assert all(len(r["commit"]) == 7 and int(r["commit"], 16) >= 0 for r in rows)


def test_results_tsv_leaves_out_candidates_and_an_uncalibrated_baseline(coordinator: Coordinator, make_worker) -> None:
    assert coordinator.client.get(f"/v1/tracks/{TRACK}/results.tsv").text == "commit\tval_bpb\tmemory_gb\tstatus\tdescription\n"
    alice: Worker = make_worker("a1", "alice")
    calibrate(coordinator, [1.0, 1.0])
    assert alice.run(alice.lease(), 0.9)["variant_status"] == "candidate"
    rows = coordinator.client.get(f"/v1/tracks/{TRACK}/results.tsv").text.splitlines()
    with coordinator.session() as session:
        root_commit = LineageRepos().commit_ids(session, session.get(Track, TRACK))[short_hash(ROOT)]
    assert rows[1:] == [f"{root_commit[:7]}\t1.000000\t0.0\tkeep\tbaseline"]


def test_the_lineage_runs_from_the_baseline_to_the_head(coordinator: Coordinator, make_worker) -> None:
    made = _history(coordinator, make_worker)
    body = coordinator.client.get(f"/v1/tracks/{TRACK}/lineage").json()
    assert body["track_id"] == TRACK
    assert [(v["hash"], v["parent_hash"], v["val_bpb"], v["author"]) for v in body["variants"]] == [
        (ROOT, None, 1.0, None),
        (made["kept"], ROOT, 0.9, "a1 (alice)"),
    ]
    assert body["variants"][1]["hypothesis"] == "wider MLP\tand\nmore heads"
    assert body["variants"][1]["verified_at"] is not None


def test_exports_of_an_unknown_track_are_refused_with_a_stable_code(coordinator: Coordinator) -> None:
    for path in ("results.tsv", "lineage"):
        response = coordinator.client.get(f"/v1/tracks/nope/{path}")
        assert (response.status_code, response.json()["code"]) == (404, "unknown_track")


def test_the_exports_are_described_in_the_openapi_schema(coordinator: Coordinator) -> None:
    paths = coordinator.client.get("/openapi.json").json()["paths"]
    answers = paths["/v1/tracks/{track_id}/results.tsv"]["get"]["responses"]
    tsv = answers["200"]
    assert list(tsv["content"]) == ["text/tab-separated-values"]
    assert list(answers["404"]["content"]) == ["application/json"]  # a refusal is an ErrorBody, as everywhere
    assert tsv["content"]["text/tab-separated-values"]["example"].startswith("commit\tval_bpb\tmemory_gb\tstatus\tdescription\n")
    lineage = paths["/v1/tracks/{track_id}/lineage"]["get"]["responses"]["200"]
    assert lineage["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/TrackLineage"}
