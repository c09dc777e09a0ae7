"""Prometheus metrics at `/metrics`: what this process did, and what the database holds.

Events are counted where they happen, in this process: leases by kind and outcome, results by
kind and status, promotions, request latency. Prometheus sums them over replicas (scrape each
replica; with `serve --workers N`, each scrape reaches one of the N processes). State is read
from the database at scrape time, so every replica reports the same figures: the verification
backlog and its age, quarantined workers. The database pool's use is this process's own.

    curl -s localhost:8000/metrics | grep ^arn_
"""

from __future__ import annotations

import time
from collections.abc import Iterator

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session, sessionmaker
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from coordinator.models import Variant, Worker, utcnow
from shared.protocol import VariantStatus

# Lease outcomes: handed out, then exactly one of the other four.
ISSUED, COMPLETED, RELEASED, EXPIRED = "issued", "completed", "released", "expired"
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class Metrics:
    """The coordinator's metrics, in a registry of their own (one per app)."""

    def __init__(self, session_factory: sessionmaker[Session], engine: Engine) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.leases = Counter(
            "arn_leases", "Leases by kind (calibrate, verify, explore) and outcome (issued, completed, "
            "released, expired).", ["kind", "outcome"], registry=self.registry,
        )  # fmt: skip
        self.results = Counter(
            "arn_results", "Results accepted, by run kind and run status.", ["kind", "status"], registry=self.registry
        )
        self.promotions = Counter(
            "arn_promotions", "Candidates verified and promoted to a track's head.", ["track"], registry=self.registry
        )
        self.request_seconds = Histogram(
            "arn_request_seconds", "Request latency, by method, route template and status.",
            ["method", "route", "status"], buckets=LATENCY_BUCKETS, registry=self.registry,
        )  # fmt: skip
        self.registry.register(_DatabaseState(session_factory, engine))

    def leases_expired(self, kinds: dict[str, int]) -> None:
        for kind, count in kinds.items():
            self.leases.labels(kind, EXPIRED).inc(count)


class _DatabaseState(Collector):
    """Gauges read at scrape time: the same on every replica."""

    def __init__(self, session_factory: sessionmaker[Session], engine: Engine) -> None:
        self._session_factory, self._engine = session_factory, engine

    def describe(self) -> list[Metric]:
        return []  # the families are built per scrape; nothing to check at registration

    def collect(self) -> Iterator[Metric]:
        backlog = GaugeMetricFamily(
            "arn_verification_backlog", "Candidates waiting for verification, by track.", labels=["track"]
        )
        age = GaugeMetricFamily(
            "arn_verification_backlog_age_seconds", "Age of the oldest candidate waiting, by track.", labels=["track"]
        )
        quarantined = GaugeMetricFamily("arn_quarantined_workers", "Workers quarantined after invalid results.")
        now = utcnow()  # the clock the database stamps created_at with
        with self._session_factory() as session:
            waiting = session.execute(
                select(Variant.track_id, func.count(), func.min(Variant.created_at))
                .where(Variant.status == VariantStatus.candidate.value)
                .group_by(Variant.track_id)
            )
            for track_id, count, oldest in waiting:
                backlog.add_metric([track_id], count)
                age.add_metric([track_id], max(0.0, (now - oldest).total_seconds()))
            quarantined.add_metric([], session.scalar(select(func.count()).where(Worker.quarantined.is_(True))) or 0)
        yield from (backlog, age, quarantined)
        yield from self._pool()

    def _pool(self) -> Iterator[Metric]:
        pool = self._engine.pool
        checked_out = getattr(pool, "checkedout", None)
        if checked_out is None:
            return
        connections = GaugeMetricFamily(
            "arn_db_pool_connections", "This process's database connections, by state.", labels=["state"]
        )
        connections.add_metric(["in_use"], checked_out())
        connections.add_metric(["idle"], pool.checkedin())  # type: ignore[attr-defined]
        size = GaugeMetricFamily("arn_db_pool_size", "Connections the pool keeps (more may overflow).")
        size.add_metric([], pool.size())  # type: ignore[attr-defined]
        yield from (connections, size)


class RequestTimer:
    """Times every HTTP request into `arn_request_seconds`, labelled by its route's template."""

    def __init__(self, app: ASGIApp, *, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_and_note(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_and_note)
        finally:
            self.metrics.request_seconds.labels(scope["method"], route_template(scope), str(status)).observe(
                time.perf_counter() - started
            )


def route_template(scope: Scope) -> str:
    """The path with its parameters put back as `{name}`: one series per route, whatever ids the
    paths carry; "unmatched" for a path no route serves (so a scanner adds no series)."""
    if scope.get("route") is None:
        return "unmatched"
    names = {str(value): name for name, value in scope.get("path_params", {}).items()}
    return "/".join(f"{{{names[part]}}}" if part in names else part for part in scope["path"].split("/"))
