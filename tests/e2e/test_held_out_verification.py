"""A variant that memorised the public val shard is a candidate on it, and is rejected on held-out text.

Real `coordinator serve`, real `worker join` processes of two accounts. Alice's agent is the
`command` agent running `cp memorizer.py train.py`: her explore run recites the val windows and
claims a large gain. Bob's worker verifies it on windows the coordinator draws for his lease from
the held-out pool, which no variant has seen: the claim is not reproduced.
"""

from __future__ import annotations

import io
from pathlib import Path

import httpx
import numpy as np
import pytest

from tests.e2e.network import Network, wait_for
from tests.memorizer import memorizer_source

pytestmark = pytest.mark.slow

SETTINGS = {
    "ARN_CPU_TINY_BUDGET_S": "3",
    "ARN_CPU_TINY_QUORUM": "1",
    "ARN_CPU_TINY_CALIBRATION_RUNS": "1",
    "ARN_CPU_TINY_TOLERANCE": "0.5",
    "ARN_HEARTBEAT_INTERVAL_S": "1",
}


def test_a_variant_that_memorised_the_public_val_shard_is_rejected_on_held_out_text(
    network: Network, tmp_path: Path
) -> None:
    network.start_coordinator(**SETTINGS)
    track = network.get("/v1/tracks/cpu-tiny")
    spec = track["spec"]
    val_bytes = httpx.get(f"{network.url}/v1/tracks/cpu-tiny/assets/{spec['assets']['val']}", timeout=30).content
    source = memorizer_source(
        np.load(io.BytesIO(val_bytes), allow_pickle=False),
        seq_len=spec["seq_len"],
        eval_tokens=spec["eval_tokens"],
        vocab_size=spec["vocab_size"],
    )
    memorizer = tmp_path / "memorizer.py"
    memorizer.write_text(source)

    network.start_worker("alice", "--agent", "command", "--agent-cmd", f"cp {memorizer} train.py")
    # Bob starts once Alice's claim is in, so the verify lease is his to take.
    from shared.hashing import variant_hash

    digest = variant_hash(source)

    def claimed() -> dict | None:
        try:
            return network.get(f"/v1/variants/{digest}?track_id=cpu-tiny")
        except httpx.HTTPStatusError:
            return None

    detail = wait_for(claimed, timeout_s=300, what="alice's memorising variant to be claimed", interval_s=2)
    assert detail["status"] == "candidate", detail
    # A large claimed gain on the public shard: Alice's own paired measurement, the baseline's score
    # minus the memoriser's (the head's calibration may still be pending on a busy machine).
    [(claimed_gain,)] = network.query("select claimed_gain from variants where hash = ?", digest)
    assert claimed_gain > 0.5

    network.start_worker("bob")

    def decided() -> dict | None:
        found = network.get(f"/v1/variants/{digest}?track_id=cpu-tiny")
        return found if found["status"] != "candidate" else None

    detail = wait_for(decided, timeout_s=300, what="bob's verification of the claim", interval_s=2)
    assert detail["status"] == "rejected"
    # Paired with the head on the same held-out windows, the memoriser is far worse there: the claim is refuted.
    assert detail["reason"].startswith("claim not reproduced: claimed a gain of "), detail["reason"]
    verify = [r for r in detail["runs"] if r["kind"] == "verify"]
    explore = [r for r in detail["runs"] if r["kind"] == "explore"]
    assert [r["account"] for r in verify] == ["bob"] and [r["account"] for r in explore] == ["alice"]
    # Bob's run reproduced the recital on the public shard and measured nothing of it on held-out
    # text: the verify run holds both figures.
    rows = network.query(
        "select r.metrics from runs r join variants v on v.id = r.variant_id where v.hash = ? and r.kind = 'verify'",
        digest,
    )
    import json

    metrics = json.loads(rows[0][0])
    assert metrics["val_bpb"] == pytest.approx(explore[0]["val_bpb"], abs=0.05)
    assert metrics["holdout_bpb"] > metrics["val_bpb"] + 1.0
    assert network.get("/v1/tracks/cpu-tiny")["head_hash"] != digest
