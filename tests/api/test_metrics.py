"""`/metrics`: each figure moves when its event happens (scraped as Prometheus would)."""

from __future__ import annotations

from datetime import timedelta

from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import select, text

from coordinator.models import Variant, utcnow
from tests.api.conftest import TRACK, Coordinator, calibrate

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]

# Every family /metrics exports; the Grafana dashboard charts each (tests/unit/test_compose.py).
EXPORTED = (
    "arn_leases_total",
    "arn_results_total",
    "arn_promotions_total",
    "arn_request_seconds",
    "arn_verification_backlog",
    "arn_verification_backlog_age_seconds",
    "arn_quarantined_workers",
    "arn_db_pool_connections",
    "arn_db_pool_size",
)


def scrape(coordinator: Coordinator) -> Samples:
    response = coordinator.client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def leases(samples: Samples, kind: str, outcome: str) -> float:
    return value(samples, "arn_leases_total", kind=kind, outcome=outcome)


def test_leases_are_counted_by_kind_and_outcome_and_results_by_status(coordinator: Coordinator, make_worker) -> None:
    alice, bob = make_worker("a1", "alice"), make_worker("b1", "bob")
    assert leases(scrape(coordinator), "calibrate", "issued") == 0

    first = alice.lease()
    assert leases(scrape(coordinator), "calibrate", "issued") == 1
    assert alice.post(f"/v1/leases/{first['id']}/release", {"reason": "host busy"}).status_code == 204
    alice.post(f"/v1/leases/{first['id']}/release", {"reason": "host busy"})  # a retry counts once
    assert leases(scrape(coordinator), "calibrate", "released") == 1

    alice.lease()  # then alice's machine goes quiet past the lease's deadline
    coordinator.clock.advance(600)
    taken = bob.lease()  # the next request expires it
    samples = scrape(coordinator)
    assert leases(samples, "calibrate", "expired") == 1
    assert leases(samples, "calibrate", "issued") == 3

    bob.run(taken, 1.0)
    bob.submit(bob.report(taken, val_bpb=1.0))  # a duplicate of the same report is not counted again
    samples = scrape(coordinator)
    assert leases(samples, "calibrate", "completed") == 1
    assert value(samples, "arn_results_total", kind="calibrate", status="ok") == 1


def test_the_backlog_promotions_and_quarantine_follow_the_verification(coordinator: Coordinator, make_worker) -> None:
    alice, bob = make_worker("a1", "alice"), make_worker("b1", "bob")
    calibrate(coordinator, [1.00, 1.00])
    claim = alice.run(alice.lease(), 0.90)
    with coordinator.session() as session:  # the database stamps it; say it was made 30 s ago
        candidate = session.scalars(select(Variant).where(Variant.hash == claim["variant_hash"])).one()
        candidate.created_at = utcnow() - timedelta(seconds=30)
        session.commit()

    samples = scrape(coordinator)
    assert value(samples, "arn_verification_backlog", track=TRACK) == 1
    assert 30 <= value(samples, "arn_verification_backlog_age_seconds", track=TRACK) < 40
    assert value(samples, "arn_promotions_total", track=TRACK) == 0

    assert bob.run(bob.lease(), 0.92)["variant_status"] == "verified"
    samples = scrape(coordinator)
    assert value(samples, "arn_promotions_total", track=TRACK) == 1
    assert value(samples, "arn_verification_backlog", track=TRACK) == 0
    assert value(samples, "arn_quarantined_workers") == 0

    calibrate(coordinator, [0.92, 0.92])
    for _ in range(3):  # claims no verifier reproduces: the author is quarantined
        alice.run(alice.lease(), 0.50, control_bpb=0.92)
        assert bob.run(bob.lease(), 0.93, control_bpb=0.92)["variant_status"] == "rejected"
    samples = scrape(coordinator)
    assert value(samples, "arn_quarantined_workers") == 1
    assert value(samples, "arn_promotions_total", track=TRACK) == 1
    assert value(samples, "arn_results_total", kind="verify", status="ok") == 4


def test_request_latency_is_recorded_per_route_template_and_status(coordinator: Coordinator) -> None:
    coordinator.client.get(f"/v1/tracks/{TRACK}")
    coordinator.client.get("/v1/tracks/no-such-track")
    coordinator.client.post("/v1/leases", json={})  # no token

    samples = scrape(coordinator)
    count = "arn_request_seconds_count"
    assert value(samples, count, method="GET", route="/v1/tracks/{track_id}", status="200") == 1
    assert value(samples, count, method="GET", route="/v1/tracks/{track_id}", status="404") == 1
    assert value(samples, count, method="POST", route="/v1/leases", status="401") == 1
    assert value(samples, "arn_request_seconds_sum", method="GET", route="/v1/tracks/{track_id}", status="200") > 0


def test_database_pool_use_is_reported(coordinator: Coordinator) -> None:
    assert value(scrape(coordinator), "arn_db_pool_size") == coordinator.settings.max_concurrent_requests
    idle_before = value(scrape(coordinator), "arn_db_pool_connections", state="in_use")
    with coordinator.session() as session:
        session.execute(text("select 1"))  # holds a connection until closed
        assert value(scrape(coordinator), "arn_db_pool_connections", state="in_use") == idle_before + 1
    assert value(scrape(coordinator), "arn_db_pool_connections", state="in_use") == idle_before


def test_every_exported_family_is_in_a_scrape_once_its_events_happened(coordinator: Coordinator, make_worker) -> None:
    alice, bob = make_worker("a1", "alice"), make_worker("b1", "bob")
    calibrate(coordinator, [1.00, 1.00])
    alice.run(alice.lease(), 0.90)
    bob.run(bob.lease(), 0.92)
    calibrate(coordinator, [0.92, 0.92])
    alice.run(alice.lease(), 0.80, control_bpb=0.92)  # a candidate waiting

    names = {name for name, _labels in scrape(coordinator)}
    for family in EXPORTED:
        assert {family, f"{family}_count"} & names, family
