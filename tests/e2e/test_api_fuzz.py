"""schemathesis against a live coordinator's /openapi.json, on SQLite and on PostgreSQL.

Schema-valid and schema-invalid requests, with a worker's token: no 5xx, every answer conforms to
the schema (errors in the ErrorBody shape with a stable code), and nothing the schema admits is
refused. The examples per operation are bounded and the seed fixed, so this is quick and repeats;
a longer run is a bench command (bench/README.md).
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from shared.protocol import HardwareInfo, RegistrationPayload
from shared.signing import SigningKey
from tests.e2e.network import BIN, Network

pytestmark = pytest.mark.slow

EXAMPLES = 15
SEED = 20261202


@pytest.fixture
def network(tmp_path: Path, database_url: str) -> Iterator[Network]:
    network = Network(tmp_path)
    try:
        network.start_coordinator(
            ARN_DATABASE_URL=database_url,
            ARN_WRITES_PER_MINUTE_PER_IP="1000000",
            ARN_WRITES_PER_MINUTE_PER_WORKER="1000000",
            ARN_NEW_ACCOUNTS_PER_HOUR_PER_IP="1000000",
        )
        yield network
    finally:
        network.stop_all()


def worker_token(url: str) -> str:
    key = SigningKey.generate()
    payload = RegistrationPayload(
        public_key=key.public_key, name="fuzzer", account="fuzzer", hardware=HardwareInfo(hardware_class="cpu"),
        issued_at=datetime.now(UTC),
    ).model_dump(mode="json")  # fmt: skip
    return str(httpx.post(f"{url}/v1/workers", json={"payload": payload, "signature": key.sign(payload)}).json()["token"])


def test_no_request_gets_a_5xx_or_an_answer_the_schema_does_not_promise(network: Network) -> None:
    result = subprocess.run(
        [
            str(BIN / "st"), "run", f"{network.url}/openapi.json",
            "--header", f"Authorization: Bearer {worker_token(network.url)}",
            "--checks", "all",
            "--phases", "examples,coverage,fuzzing",
            # An event stream never ends: it has its own tests (tests/e2e/test_serve.py).
            "--exclude-path-regex", "/events$",
            "--max-examples", str(EXAMPLES), "--seed", str(SEED),
            "--generation-database", "none", "--request-timeout", "30",
        ],
        capture_output=True, text=True, timeout=600, cwd=network.root,  # its .schemathesis/ cache stays there
    )  # fmt: skip

    assert result.returncode == 0, result.stdout[-8000:] + result.stderr[-2000:]
