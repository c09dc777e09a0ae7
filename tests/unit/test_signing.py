from __future__ import annotations

import math
import stat
from pathlib import Path

import pytest

from shared.canonical import CanonicalJSONError, canonical_json
from shared.signing import SignatureError, SigningKey, verify_signature


def test_canonical_json_is_independent_of_key_order_and_spacing() -> None:
    assert canonical_json({"b": 1, "a": {"y": [1, 2], "x": "é"}}) == canonical_json({"a": {"x": "é", "y": [1, 2]}, "b": 1})
    assert canonical_json({"b": 1, "a": 2.5}) == b'{"a":2.5,"b":1}'
    assert canonical_json({"t": "é"}) == '{"t":"é"}'.encode()


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_canonical_json_refuses_non_finite_numbers(bad: float) -> None:
    with pytest.raises(CanonicalJSONError):
        canonical_json({"val_bpb": bad})


def test_a_signature_verifies_under_its_key() -> None:
    key = SigningKey.generate()
    payload = {"lease_id": "L1", "metrics": {"val_bpb": 1.0}}
    verify_signature(key.public_key, payload, key.sign(payload))


def test_a_tampered_payload_is_refused() -> None:
    key = SigningKey.generate()
    payload = {"lease_id": "L1", "metrics": {"val_bpb": 1.0}}
    signature = key.sign(payload)
    with pytest.raises(SignatureError, match="does not match"):
        verify_signature(key.public_key, {"lease_id": "L1", "metrics": {"val_bpb": 0.5}}, signature)


def test_a_wrong_key_is_refused() -> None:
    payload = {"lease_id": "L1"}
    with pytest.raises(SignatureError, match="does not match"):
        verify_signature(SigningKey.generate().public_key, payload, SigningKey.generate().sign(payload))


def test_a_replayed_run_is_refused_because_the_lease_is_signed() -> None:
    # A report is bound to its lease: the same signature cannot vouch for another lease's report.
    key = SigningKey.generate()
    signature = key.sign({"lease_id": "L1", "val_bpb": 0.9})
    with pytest.raises(SignatureError):
        verify_signature(key.public_key, {"lease_id": "L2", "val_bpb": 0.9}, signature)


@pytest.mark.parametrize("bad_key", ["", "not base64!", "AAAA"])
def test_malformed_keys_and_signatures_are_refused_cleanly(bad_key: str) -> None:
    with pytest.raises(SignatureError):
        verify_signature(bad_key, {}, SigningKey.generate().sign({}))
    with pytest.raises(SignatureError):
        verify_signature(SigningKey.generate().public_key, {}, bad_key)


def test_a_key_file_is_created_private_and_reloaded(tmp_path: Path) -> None:
    path = tmp_path / "home" / "worker.key"
    key = SigningKey.load_or_create(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert SigningKey.load_or_create(path).public_key == key.public_key
