"""The asset route answers byte ranges, so a worker's interrupted download of a big shard resumes."""

from __future__ import annotations

import hashlib
from pathlib import Path

import httpx
from fastapi.testclient import TestClient

from tests.api.conftest import TRACK, Coordinator
from worker.assets import PARTIAL_SUFFIX, AssetStore
from worker.client import CoordinatorClient


class AppTransport(httpx.BaseTransport):
    """Carries the worker client's requests to the coordinator app, recording their Range headers."""

    def __init__(self, app_client: TestClient) -> None:
        self.app_client = app_client
        self.ranges: list[str | None] = []
        self.statuses: list[int] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.ranges.append(request.headers.get("Range"))
        answer = self.app_client.request(
            request.method, str(request.url), headers=dict(request.headers), content=request.read()
        )
        self.statuses.append(answer.status_code)
        return httpx.Response(answer.status_code, headers=answer.headers, content=answer.content)


def biggest_asset(coordinator: Coordinator) -> tuple[str, bytes]:
    sha, data = max(coordinator.assets.items(), key=lambda item: len(item[1]))
    assert len(data) > 12  # a few stand-in bytes: enough to cut anywhere
    return sha, data


def test_a_range_from_an_offset_gets_206_with_the_rest_and_where_it_lies(coordinator: Coordinator) -> None:
    sha, data = biggest_asset(coordinator)
    offset = len(data) // 2

    response = coordinator.client.get(
        f"/v1/tracks/{TRACK}/assets/{sha}", headers={"Range": f"bytes={offset}-"}
    )

    assert response.status_code == 206
    assert response.headers["Content-Range"] == f"bytes {offset}-{len(data) - 1}/{len(data)}"
    assert response.headers["Content-Length"] == str(len(data) - offset)
    assert response.content == data[offset:]


def test_a_whole_answer_says_ranges_are_accepted_and_names_the_content(coordinator: Coordinator) -> None:
    sha, data = biggest_asset(coordinator)

    response = coordinator.client.get(f"/v1/tracks/{TRACK}/assets/{sha}")

    assert response.status_code == 200
    assert response.headers["Accept-Ranges"] == "bytes"
    assert response.headers["ETag"] == f'"{sha}"'
    assert response.content == data


def test_a_range_at_or_past_the_end_gets_416_with_the_size(coordinator: Coordinator) -> None:
    sha, data = biggest_asset(coordinator)

    for start in (len(data), len(data) + 1000):
        response = coordinator.client.get(
            f"/v1/tracks/{TRACK}/assets/{sha}", headers={"Range": f"bytes={start}-"}
        )
        assert response.status_code == 416
        assert response.headers["Content-Range"] == f"bytes */{len(data)}"


def test_an_if_range_with_the_content_address_keeps_the_range(coordinator: Coordinator) -> None:
    sha, data = biggest_asset(coordinator)
    url = f"/v1/tracks/{TRACK}/assets/{sha}"

    same = coordinator.client.get(url, headers={"Range": "bytes=10-", "If-Range": f'"{sha}"'})
    other = coordinator.client.get(url, headers={"Range": "bytes=10-", "If-Range": '"something-else"'})

    assert (same.status_code, same.content) == (206, data[10:])
    assert (other.status_code, other.content) == (200, data)


def test_the_openapi_document_describes_the_partial_answers(coordinator: Coordinator) -> None:
    schema = coordinator.client.get("/openapi.json").json()
    responses = schema["paths"]["/v1/tracks/{track_id}/assets/{sha256}"]["get"]["responses"]

    assert responses["206"]["content"]["application/octet-stream"]["schema"] == {
        "type": "string",
        "format": "binary",
    }
    assert "Range: bytes=N-" in responses["206"]["description"]
    assert "bytes */SIZE" in responses["416"]["description"]


def test_a_worker_resumes_a_partial_download_from_the_coordinator(
    coordinator: Coordinator, tmp_path: Path
) -> None:
    sha, data = biggest_asset(coordinator)
    folder = tmp_path / "assets"
    folder.mkdir()
    kept = len(data) // 3
    (folder / (sha + PARTIAL_SUFFIX)).write_bytes(data[:kept])  # what an earlier, cut download left
    transport = AppTransport(coordinator.client)

    with CoordinatorClient("http://coordinator.test", transport=transport) as client:
        AssetStore(folder).ensure(client, track_id=TRACK, hashes=[sha])

    assert (folder / sha).read_bytes() == data
    assert hashlib.sha256((folder / sha).read_bytes()).hexdigest() == sha
    assert (transport.ranges, transport.statuses) == ([f"bytes={kept}-"], [206])
    assert not (folder / (sha + PARTIAL_SUFFIX)).exists()
