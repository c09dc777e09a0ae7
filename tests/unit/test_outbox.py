"""The outbox: a signed result is on disk before it is sent, and leaves only when accepted or refused."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from shared.protocol import LeaseKind, ResultRequest, RunMetrics, RunPayload, RunStatus, signed_fields
from shared.signing import SigningKey, verify_signature
from worker.client import CoordinatorClient, RetryPolicy
from worker.outbox import Outbox, OutboxError

KEY = SigningKey.from_raw(bytes(range(32)))


def signed_result(lease_id: str, *, worker_id: str = "worker-1", val_bpb: float = 1.25) -> ResultRequest:
    payload = RunPayload(
        lease_id=lease_id,
        worker_id=worker_id,
        track_id="cpu-tiny",
        kind=LeaseKind.verify,
        variant_hash="ab" * 32,
        seed=7,
        status=RunStatus.ok,
        metrics=RunMetrics(val_bpb=val_bpb, steps=10),
        finished_at=datetime(2026, 1, 1, 12, 0, tzinfo=UTC),
    )
    return ResultRequest(payload=payload, signature=KEY.sign(signed_fields(payload)))


def accepted(*, duplicate: bool = False) -> httpx.Response:
    body = {
        "run_id": 1,
        "duplicate": duplicate,
        "variant_hash": "ab" * 32,
        "variant_status": "verified",
        "message": "thanks",
    }
    return httpx.Response(200, json=body)


class Coordinator:
    """A MockTransport handler: answers result posts with `answer`, and keeps every body it got."""

    def __init__(self, answer: httpx.Response) -> None:
        self.answer = answer
        self.bodies: list[dict[str, object]] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.bodies.append(json.loads(request.content))
        return self.answer


def client_for(coordinator: Coordinator) -> CoordinatorClient:
    return CoordinatorClient(
        "http://coordinator.test",
        transport=httpx.MockTransport(coordinator),
        retry_policy=RetryPolicy(max_attempts=2),
        wait=lambda _s: False,
    )


def test_put_writes_the_exact_signed_report_and_nothing_else(tmp_path: Path) -> None:
    outbox = Outbox(tmp_path / "outbox")
    request = signed_result("lease-1")

    path = outbox.put("lease-1", request)

    assert path == tmp_path / "outbox" / "lease-1.json"
    assert sorted(p.name for p in (tmp_path / "outbox").iterdir()) == ["lease-1.json"]  # no tmp file left
    [pending] = outbox.pending()
    assert pending.lease_id == "lease-1" and pending.request == request
    verify_signature(
        KEY.public_key, signed_fields(pending.request.payload), pending.request.signature
    )


def test_an_accepted_report_is_deleted(tmp_path: Path) -> None:
    outbox = Outbox(tmp_path / "outbox")
    outbox.put("lease-1", signed_result("lease-1"))
    coordinator = Coordinator(accepted())

    report = outbox.deliver_all(client_for(coordinator))

    assert [lease for lease, _ in report.delivered] == ["lease-1"]
    assert outbox.pending() == []
    assert coordinator.bodies == [signed_result("lease-1").model_dump(mode="json", exclude_unset=True)]


def test_a_duplicate_answer_counts_as_accepted(tmp_path: Path) -> None:
    outbox = Outbox(tmp_path / "outbox")
    outbox.put("lease-1", signed_result("lease-1"))

    report = outbox.deliver_all(client_for(Coordinator(accepted(duplicate=True))))

    assert report.delivered[0][1].duplicate is True
    assert outbox.pending() == []


def test_a_definitive_refusal_moves_the_report_to_refused_with_the_reason(tmp_path: Path) -> None:
    outbox = Outbox(tmp_path / "outbox")
    outbox.put("lease-1", signed_result("lease-1"))
    refusal = httpx.Response(410, json={"code": "lease_expired", "message": "lease lease-1 expired"})

    report = outbox.deliver_all(client_for(Coordinator(refusal)))

    assert [(lease, error.code) for lease, error in report.refused] == [("lease-1", "lease_expired")]
    assert outbox.pending() == []
    assert outbox.refused() == [tmp_path / "outbox" / "refused" / "lease-1.json"]
    kept = ResultRequest.model_validate_json(outbox.refused()[0].read_bytes())
    assert kept == signed_result("lease-1")
    error = json.loads((tmp_path / "outbox" / "refused" / "lease-1.error.json").read_text())
    assert (error["code"], error["message"], error["status"]) == (
        "lease_expired",
        "lease lease-1 expired",
        410,
    )


@pytest.mark.parametrize("status", [408, 429, 500, 503])
def test_a_transient_failure_keeps_the_report_pending(tmp_path: Path, status: int) -> None:
    outbox = Outbox(tmp_path / "outbox")
    outbox.put("lease-1", signed_result("lease-1"))

    report = outbox.deliver_all(
        client_for(Coordinator(httpx.Response(status, json={"code": "internal", "message": "x"})))
    )

    assert [lease for lease, _ in report.failed] == ["lease-1"]
    assert [p.lease_id for p in outbox.pending()] == ["lease-1"]
    assert outbox.refused() == []


def test_a_report_survives_a_crash_between_put_and_send(tmp_path: Path) -> None:
    # A real process writes the report, then dies before it could send anything.
    root = Path(__file__).resolve().parents[2]
    script = textwrap.dedent(
        f"""
        import os, sys
        sys.path.insert(0, {str(root)!r})
        from pathlib import Path
        from tests.unit.test_outbox import signed_result
        from worker.outbox import Outbox
        Outbox(Path({str(tmp_path / "outbox")!r})).put("lease-9", signed_result("lease-9"))
        os._exit(9)
        """
    )
    crashed = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert crashed.returncode == 9, crashed.stderr

    restarted = Outbox(tmp_path / "outbox")
    coordinator = Coordinator(accepted())
    report = restarted.deliver_all(client_for(coordinator))

    assert [lease for lease, _ in report.delivered] == ["lease-9"]
    assert coordinator.bodies == [signed_result("lease-9").model_dump(mode="json", exclude_unset=True)]
    assert restarted.pending() == []


def test_delivery_skips_reports_of_another_worker_id(tmp_path: Path) -> None:
    outbox = Outbox(tmp_path / "outbox")
    outbox.put("lease-a", signed_result("lease-a", worker_id="worker-1"))
    outbox.put("lease-b", signed_result("lease-b", worker_id="worker-at-another-coordinator"))

    report = outbox.deliver_all(client_for(Coordinator(accepted())), worker_id="worker-1")

    assert [lease for lease, _ in report.delivered] == ["lease-a"]
    assert [p.lease_id for p in outbox.pending()] == ["lease-b"]


def test_a_damaged_file_is_set_aside_not_sent(tmp_path: Path) -> None:
    outbox = Outbox(tmp_path / "outbox")
    outbox.put("lease-1", signed_result("lease-1"))
    (tmp_path / "outbox" / "lease-2.json").write_text("{not json")

    assert [p.lease_id for p in outbox.pending()] == ["lease-1"]
    assert outbox.refused() == [tmp_path / "outbox" / "refused" / "lease-2.json"]
    assert (
        json.loads((tmp_path / "outbox" / "refused" / "lease-2.error.json").read_text())["code"]
        == "unreadable"
    )


@pytest.mark.parametrize("lease_id", ["../escape", "a/b", "", ".hidden"])
def test_a_lease_id_that_could_leave_the_folder_is_refused(tmp_path: Path, lease_id: str) -> None:
    with pytest.raises(OutboxError, match="unsafe lease id"):
        Outbox(tmp_path / "outbox").put(lease_id, signed_result("lease-1"))


def test_a_422_for_a_report_out_of_bounds_is_set_aside_at_once_never_retried(tmp_path: Path) -> None:
    outbox = Outbox(tmp_path / "outbox")
    outbox.put("lease-1", signed_result("lease-1"))
    detail = [{"loc": ["body", "payload", "metrics", "steps"], "msg": "Input should be less than or equal to 9"}]
    message = "the request body or parameters are invalid: payload.metrics.steps: Input should be less than or equal to 9"
    coordinator = Coordinator(httpx.Response(422, json={"code": "bad_request", "message": message, "detail": detail}))

    report = outbox.deliver_all(client_for(coordinator), forever=True)

    assert len(coordinator.bodies) == 1
    assert [(lease, str(error)) for lease, error in report.refused] == [("lease-1", f"bad_request: {message}")]
    assert outbox.pending() == []
    error = json.loads((tmp_path / "outbox" / "refused" / "lease-1.error.json").read_text())
    assert (error["status"], error["code"], error["message"], error["detail"]) == (422, "bad_request", message, detail)


def test_a_503_unavailable_keeps_the_report_for_the_next_pass(tmp_path: Path) -> None:
    outbox = Outbox(tmp_path / "outbox")
    outbox.put("lease-1", signed_result("lease-1"))
    unavailable = httpx.Response(
        503, json={"code": "unavailable", "message": "retry shortly"}, headers={"Retry-After": "5"}
    )

    report = outbox.deliver_all(client_for(Coordinator(unavailable)))

    assert [(lease, getattr(error, "retry_after_s", None)) for lease, error in report.failed] == [("lease-1", 5.0)]
    assert [p.lease_id for p in outbox.pending()] == ["lease-1"]
    report = outbox.deliver_all(client_for(Coordinator(accepted())))
    assert [lease for lease, _ in report.delivered] == ["lease-1"]


def test_a_full_disk_leaves_no_partial_file_and_says_so(tmp_path: Path) -> None:
    outbox = Outbox(tmp_path / "outbox")
    outbox.put("lease-1", signed_result("lease-1"))
    # The next report's temporary file lands on /dev/full: every write fails with ENOSPC.
    (outbox.root / ".lease-2.json.tmp").symlink_to("/dev/full")

    with pytest.raises(OutboxError, match=r"cannot save lease-2\.json .*: No space left on device"):
        outbox.put("lease-2", signed_result("lease-2"))

    assert sorted(p.name for p in outbox.root.iterdir()) == ["lease-1.json"]  # nothing half-written
    [kept] = outbox.pending()
    assert kept.request == signed_result("lease-1")  # what was there before is intact
