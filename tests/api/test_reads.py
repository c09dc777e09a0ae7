"""Tracks, assets, the research log, variant detail and the HTML leaderboard."""

from __future__ import annotations

import hashlib

import pytest

from tests.api.conftest import BASELINE, TRACK, Coordinator, calibrate


def test_track_detail_carries_the_spec_a_harness_needs(coordinator: Coordinator) -> None:
    body = coordinator.client.get(f"/v1/tracks/{TRACK}").json()
    assert body["spec"]["track_id"] == TRACK
    assert body["spec"]["time_budget_s"] == 10.0
    assert set(body["spec"]["assets"]) == {"train", "val", "token_bytes", "tokenizer"}
    assert body["brief"] == "Make val_bpb go down."
    assert body["baseline_hash"] == hashlib.sha256(BASELINE.encode()).hexdigest()


def test_assets_are_served_by_hash_and_only_the_tracks_own(coordinator: Coordinator) -> None:
    for sha, data in coordinator.assets.items():
        response = coordinator.client.get(f"/v1/tracks/{TRACK}/assets/{sha}")
        assert response.status_code == 200
        assert response.content == data
        assert hashlib.sha256(response.content).hexdigest() == sha
    response = coordinator.client.get(f"/v1/tracks/{TRACK}/assets/{'a' * 64}")
    assert (response.status_code, response.json()["code"]) == (404, "not_found")


def test_unknown_track_has_a_stable_code(coordinator: Coordinator) -> None:
    response = coordinator.client.get("/v1/tracks/nope/leaderboard")
    assert (response.status_code, response.json()["code"]) == (404, "unknown_track")


def test_the_research_log_pages_newest_first_with_deltas(coordinator: Coordinator, make_worker) -> None:
    alice = make_worker("a1", "alice")
    calibrate(coordinator, [1.0, 1.0])
    for value in (1.10, 1.20, 1.30):
        alice.run(alice.lease(), value, hypothesis=f"try {value}")
    first = coordinator.client.get(f"/v1/tracks/{TRACK}/log?limit=2").json()
    assert [e["hypothesis"] for e in first["entries"]] == ["try 1.3", "try 1.2"]
    assert abs(first["entries"][0]["delta"] - 0.3) < 1e-9
    rest = coordinator.client.get(f"/v1/tracks/{TRACK}/log?limit=2&cursor={first['next_cursor']}").json()
    assert [e["hypothesis"] for e in rest["entries"]] == ["try 1.1"]
    assert rest["next_cursor"] is None
    only = coordinator.client.get(f"/v1/tracks/{TRACK}/log?status=candidate").json()
    assert only["entries"] == []


def test_variant_detail_gives_lineage_runs_and_signature(coordinator: Coordinator, make_worker) -> None:
    alice, bob = make_worker("a1", "alice"), make_worker("b1", "bob")
    calibrate(coordinator, [1.0, 1.0])
    claim = alice.run(alice.lease(), 0.9)
    bob.run(bob.lease(), 0.9)
    detail = coordinator.client.get(f"/v1/variants/{claim['variant_hash']}").json()
    root = hashlib.sha256(BASELINE.encode()).hexdigest()
    assert detail["lineage"] == [claim["variant_hash"], root]
    assert [(r["kind"], r["account"]) for r in detail["runs"]] == [("explore", "alice"), ("verify", "bob")]
    assert detail["signature"]
    missing = coordinator.client.get(f"/v1/variants/{'f' * 64}")
    assert (missing.status_code, missing.json()["code"]) == (404, "unknown_variant")


def test_the_html_leaderboard_lists_verified_variants(coordinator: Coordinator, make_worker) -> None:
    alice, bob = make_worker("a1", "alice"), make_worker("b1", "bob")
    calibrate(coordinator, [1.0, 1.0])
    claim = alice.run(alice.lease(), 0.9, hypothesis="LR 0.004 -> 0.006")
    bob.run(bob.lease(), 0.88)
    page = coordinator.client.get(f"/tracks/{TRACK}")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    html = page.text
    assert claim["variant_hash"][:10] in html
    assert "0.8800" in html and "-0.1200" in html
    assert "a1 (alice)" in html and "LR 0.004 -&gt; 0.006" in html
    index = coordinator.client.get("/").text
    assert f'href="/tracks/{TRACK}"' in index


def test_the_research_log_filters_by_lineage_and_has_a_compact_form(coordinator: Coordinator, make_worker) -> None:
    alice, bob = make_worker("a1", "alice"), make_worker("b1", "bob")
    calibrate(coordinator, [1.0, 1.0])
    root = coordinator.client.get(f"/v1/tracks/{TRACK}").json()["baseline_hash"]
    alice.run(alice.lease(), 1.2, hypothesis="from the root")
    claim = alice.run(alice.lease(), 0.9, hypothesis="better")
    bob.run(bob.lease(), 0.9)  # promoted: the new head
    calibrate(coordinator, [0.9, 0.9])
    sibling_lease = alice.lease()
    assert sibling_lease["variant"]["hash"] == claim["variant_hash"]
    # Paired with its parent on alice's machine: 0.05 worse.
    alice.run(sibling_lease, 0.95, hypothesis="from the new head", control_bpb=0.90)

    def hypotheses(query: str) -> list[str]:
        return [e["hypothesis"] for e in coordinator.client.get(f"/v1/tracks/{TRACK}/log?{query}").json()["entries"]]

    assert hypotheses(f"lineage={claim['variant_hash']}") == ["from the new head", "better", "from the root"]
    assert hypotheses(f"lineage={root}") == ["better", "from the root"]
    compact = coordinator.client.get(f"/v1/tracks/{TRACK}/log?compact=true&limit=1").json()["entries"]
    assert compact == [{"hash": compact[0]["hash"], "parent": claim["variant_hash"][:10], "status": "discarded",
                        "delta": pytest.approx(0.05), "hypothesis": "from the new head"}]
    assert len(compact[0]["hash"]) == 10


@pytest.mark.parametrize(
    "cursor",
    [
        "not a cursor",
        "-1",
        "0",
        "1e5",
        "9" * 10,  # past the ids' type
        "MTI",  # the old base64 form
    ],
)
def test_a_cursor_the_log_could_not_have_handed_out_is_a_clear_422(coordinator: Coordinator, cursor: str) -> None:
    response = coordinator.client.get(f"/v1/tracks/{TRACK}/log", params={"cursor": cursor})

    assert response.status_code == 422
    assert response.json()["code"] == "bad_request"
    assert "cursor" in response.json()["message"]


def test_any_cursor_the_schema_admits_pages_from_there(coordinator: Coordinator, make_worker) -> None:
    # A cursor is an opaque position: one past every id, or before the first, is an answer too.
    assert coordinator.client.get(f"/v1/tracks/{TRACK}/log", params={"cursor": "9" * 9}).status_code == 200
    page = coordinator.client.get(f"/v1/tracks/{TRACK}/log", params={"cursor": "1"}).json()
    assert (page["entries"], page["next_cursor"]) == ([], None)


def test_the_schema_advertises_the_error_shape_the_api_sends(coordinator: Coordinator) -> None:
    schema = coordinator.client.get("/openapi.json").json()
    lease_answers = schema["paths"]["/v1/leases"]["post"]["responses"]

    assert {"400", "401", "403", "404", "422", "429", "503"} <= set(lease_answers)
    for status in ("401", "422", "429"):
        assert lease_answers[status]["content"]["application/json"]["schema"] == {
            "$ref": "#/components/schemas/ErrorBody"
        }
    assert "HTTPValidationError" not in schema["components"]["schemas"]
