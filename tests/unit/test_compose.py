"""docker-compose.yml cannot be run here (no Docker engine), so check what can be checked."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml

from coordinator.config import Settings

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.yml"


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load(COMPOSE.read_text())


def test_compose_has_the_services_of_the_design(compose: dict) -> None:
    assert set(compose["services"]) == {
        "postgres", "redis", "migrate", "coordinator", "proxy", "worker", "prometheus", "grafana"
    }  # fmt: skip


def test_the_coordinator_serves_only_after_migrations_and_healthy_stores(compose: dict) -> None:
    services = compose["services"]
    assert services["migrate"]["command"] == ["coordinator", "migrate", "--tracks"]  # tracks made once, not raced
    assert services["migrate"]["depends_on"] == {"postgres": {"condition": "service_healthy"}}
    coordinator = services["coordinator"]
    assert "--no-migrate" in coordinator["command"]
    assert coordinator["depends_on"] == {
        "migrate": {"condition": "service_completed_successfully"},
        "redis": {"condition": "service_healthy"},
    }
    assert services["proxy"]["depends_on"] == {"coordinator": {"condition": "service_healthy"}}
    assert services["worker"]["depends_on"] == {"proxy": {"condition": "service_healthy"}}


def test_every_long_running_service_has_a_healthcheck(compose: dict) -> None:
    for name in ("postgres", "redis", "coordinator", "proxy", "worker", "prometheus", "grafana"):
        assert compose["services"][name]["healthcheck"]["test"], name
    assert compose["services"]["coordinator"]["healthcheck"]["test"][-1].endswith("/v1/info")


def test_the_coordinator_environment_is_a_valid_production_configuration(
    compose: dict, monkeypatch: pytest.MonkeyPatch
) -> None:
    environment = compose["services"]["coordinator"]["environment"]
    assert environment == compose["services"]["migrate"]["environment"]
    known = {f"ARN_{name.upper()}" for name in Settings.model_fields}
    assert set(environment) <= known
    for name, value in environment.items():
        substituted = (
            str(value)
            .replace("${POSTGRES_PASSWORD}", "pw")
            .replace("${ARN_SIGNING_KEY:?set ARN_SIGNING_KEY in .env}", "A" * 43 + "=")
        )
        monkeypatch.setenv(name, substituted)
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    assert settings.env == "production"
    assert settings.resolved_database_url.startswith("postgresql+psycopg://arn:pw@postgres:5432/")
    assert settings.redis_url == "redis://redis:6379/0"
    # Behind the proxy every request comes from it: the client is the one its X-Forwarded-For names.
    assert settings.forwarded_allow_ips == "*"
    assert "ports" not in compose["services"]["coordinator"]


def test_production_refuses_insecure_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ARN_ENV", "production")
    with pytest.raises(ValueError, match="ARN_SIGNING_KEY must be set"):
        Settings(_env_file=None)  # type: ignore[call-arg]


def test_the_gpu_worker_reserves_a_gpu_and_is_opt_in(compose: dict) -> None:
    worker = compose["services"]["worker"]
    assert worker["profiles"] == ["gpu"]
    devices = worker["deploy"]["resources"]["reservations"]["devices"]
    assert devices[0]["capabilities"] == ["gpu"]


def test_the_gpu_worker_is_healthy_while_worker_status_says_it_runs(compose: dict) -> None:
    worker = compose["services"]["worker"]
    command = worker["command"]
    home = command[command.index("--home") + 1]
    assert worker["healthcheck"]["test"] == ["CMD", "worker", "status", "--home", home]
    assert f"worker-home:{home}" in worker["volumes"]


def test_the_image_runs_as_an_unprivileged_user_that_owns_the_volumes(compose: dict) -> None:
    lines = (ROOT / "Dockerfile").read_text().splitlines()
    [user] = [line.split()[1] for line in lines if line.startswith("USER ")][-1:]
    assert user not in ("root", "0")
    build = " ".join(line.rstrip("\\") for line in lines)
    mounts = {
        volume.split(":")[1]
        for service in compose["services"].values()
        if service.get("build") == "."
        for volume in service.get("volumes", [])
    }
    assert mounts == {"/data", "/home/arn/worker"}
    for mount in mounts:
        assert f"useradd --create-home --uid 1000 {user}" in build
        assert mount in build.split("mkdir -p", 1)[1].split("&&", 1)[0], mount
        assert mount in build.split(f"chown {user}:{user}", 1)[1].split("&&", 1)[0], mount


def test_monitoring_is_opt_in_and_scrapes_the_coordinators_metrics(compose: dict) -> None:
    services = compose["services"]
    assert services["prometheus"]["profiles"] == ["monitoring"] == services["grafana"]["profiles"]
    assert "./monitoring/prometheus.yml:/etc/prometheus/prometheus.yml:ro" in services["prometheus"]["volumes"]
    job = yaml.safe_load((ROOT / "monitoring/prometheus.yml").read_text())["scrape_configs"][0]
    assert job["metrics_path"] == "/metrics"
    # Every replica, as Docker's DNS names them, not whichever one a single address reaches.
    assert job["dns_sd_configs"] == [{"names": ["coordinator"], "type": "A", "port": 8000, "refresh_interval": "30s"}]
    for volume in services["grafana"]["volumes"]:
        assert (ROOT / volume.split(":")[0]).is_dir(), volume


def test_the_dashboard_charts_every_metric_the_coordinator_exports() -> None:
    from tests.api.test_metrics import EXPORTED

    dashboard = json.loads((ROOT / "monitoring/grafana/dashboards/coordinator.json").read_text())
    datasource = yaml.safe_load((ROOT / "monitoring/grafana/provisioning/datasources/prometheus.yml").read_text())
    expressions = " ".join(target["expr"] for panel in dashboard["panels"] for target in panel["targets"])
    assert {name for name in EXPORTED if name.split("_total")[0] in expressions} == set(EXPORTED)
    uids = {panel["datasource"]["uid"] for panel in dashboard["panels"]}
    assert uids == {datasource["datasources"][0]["uid"]}


def test_replicas_scale_out_behind_a_proxy_that_streams_events_unbuffered(compose: dict) -> None:
    services = compose["services"]
    coordinator, proxy = services["coordinator"], services["proxy"]
    assert "ports" not in coordinator  # replicas share no host port: the proxy is the one address
    assert coordinator["deploy"]["replicas"] == "${COORDINATOR_REPLICAS:-2}"
    assert proxy["ports"] == ["8000:8000"]
    assert "./proxy/nginx.conf:/etc/nginx/nginx.conf:ro" in proxy["volumes"]
    assert services["worker"]["command"][2] == "http://proxy:8000"

    conf = (ROOT / "proxy/nginx.conf").read_text()
    assert re.search(r"upstream coordinators \{[^}]*server coordinator:8000 resolve;", conf)
    assert "resolver 127.0.0.11" in conf  # Docker's DNS, asked again as replicas come and go
    events, _, rest = conf.partition("location ~ ^/v1/tracks/[^/]+/events$ {")[2].partition("}")
    assert "proxy_buffering off;" in events and "proxy_pass http://coordinators;" in events
    assert re.fullmatch(r"/v1/tracks/[^/]+/events", "/v1/tracks/cpu-tiny/events")
    assert "proxy_pass http://coordinators;" in rest.partition("location / {")[2]
    assert conf.count("{") == conf.count("}")
