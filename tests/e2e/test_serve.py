"""`coordinator serve` as operators run it: open event streams, several processes, shutdown."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.e2e.network import BIN, Network
from tests.services import require_redis

pytestmark = pytest.mark.slow

STREAMS = 60  # more than the request thread pool (40)
STOPPED = (0, -signal.SIGTERM)  # uvicorn shuts down cleanly, then re-raises the signal it caught


@pytest.fixture
def network(tmp_path: Path) -> Iterator[Network]:
    network = Network(tmp_path)
    try:
        yield network
    finally:
        network.stop_all()


async def _open_streams(url: str, count: int) -> tuple[httpx.AsyncClient, list[object]]:
    client = httpx.AsyncClient(timeout=10, limits=httpx.Limits(max_connections=count + 10))
    streams = []
    for _ in range(count):
        stream = client.stream("GET", f"{url}/v1/tracks/cpu-tiny/events")
        response = await stream.__aenter__()
        assert response.status_code == 200
        first = await anext(response.aiter_text())
        assert first.startswith("retry:")
        streams.append(stream)
    return client, streams


def test_open_event_streams_hold_no_request_thread(network: Network) -> None:
    network.start_coordinator()

    async def scenario() -> float:
        client, streams = await _open_streams(network.url, STREAMS)
        try:
            started = time.monotonic()
            # Each stream is now waiting for an event; a stream that held a thread would leave none.
            response = await client.get(f"{network.url}/v1/info", timeout=5)
            assert response.status_code == 200
            return time.monotonic() - started
        finally:
            for stream in streams:
                await stream.__aexit__(None, None, None)  # type: ignore[attr-defined]
            await client.aclose()

    asyncio.run(scenario())


def test_shutdown_with_streams_open_finishes_within_seconds(network: Network) -> None:
    coordinator = network.start_coordinator()

    async def scenario() -> None:
        client, _open = await _open_streams(network.url, 5)  # left open through the shutdown
        try:
            coordinator.popen.send_signal(signal.SIGTERM)
            started = time.monotonic()
            await asyncio.to_thread(coordinator.popen.wait, 20)
            assert time.monotonic() - started < 12, coordinator.output()[-2000:]
        finally:
            await client.aclose()

    asyncio.run(scenario())
    assert coordinator.popen.returncode in STOPPED, coordinator.output()[-2000:]
    assert "Application shutdown complete" in coordinator.output()


def test_several_processes_serve_one_port_and_stop_together(network: Network) -> None:
    coordinator = network.start_coordinator("--workers", "2", ARN_REDIS_URL=require_redis())

    for _ in range(20):
        assert [track["id"] for track in network.get("/v1/tracks")] == ["cpu-tiny"]
    children = subprocess.run(
        ["pgrep", "-P", str(coordinator.popen.pid)], capture_output=True, text=True, check=False
    ).stdout.split()
    assert len(children) >= 2, coordinator.output()[-2000:]  # uvicorn's processes, beside its supervisor

    coordinator.popen.send_signal(signal.SIGTERM)
    assert coordinator.popen.wait(timeout=20) in STOPPED, coordinator.output()[-2000:]


def test_several_processes_without_redis_are_refused_with_the_reason(tmp_path: Path) -> None:
    result = subprocess.run(
        [str(BIN / "coordinator"), "serve", "--workers", "2", "--port", "0"],
        capture_output=True, text=True, timeout=60, env={"ARN_DATA_DIR": str(tmp_path), "PATH": "/usr/bin:/bin"},
    )  # fmt: skip

    assert result.returncode == 2
    assert "ARN_REDIS_URL" in result.stdout
