"""bench/move_yield.py pools the offline moves of kept networks by size, as the guided strategy sizes them."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from sqlalchemy.orm import Session

from coordinator.db import make_engine
from coordinator.models import Base, Track, Variant

REPO_ROOT = Path(__file__).resolve().parents[2]

# (hypothesis, status): two small float moves, a fraction moved on its odds, an int, a GPU constant.
EXPERIMENTS = [
    ("LR 0.004 -> 0.0042", "discarded"),  # 1.05x
    ("LR 0.004 -> 0.0047", "rejected"),  # 1.18x
    ("ADAM_BETA2 0.95 -> 0.9661", "verified"),  # 1.5x on the odds, 1.02x on the value
    ("DEPTH 4 -> 3", "verified"),  # 1.33x
    ("GPU_DEPTH 8 -> 9", "verified"),  # dead code on a CPU track: left out
    ("Use SwiGLU in the MLP", "verified"),  # not an offline move: left out
]


def _network(root: Path) -> Path:
    database = root / "coordinator" / "coordinator.sqlite3"
    database.parent.mkdir(parents=True)
    engine = make_engine(f"sqlite:///{database}")
    Base.metadata.create_all(engine)
    with Session(engine) as session:
        session.add(
            Track(
                id="cpu-tiny", name="cpu-tiny", hardware_class="cpu", vocab_size=256, seq_len=64,
                eval_tokens=1024, eval_batch_size=8, time_budget_s=5.0, grace_s=1.0, harness_version="1",
                brief="", assets={}, quorum=1, tolerance=0.5, calibration_runs=3,
            )
        )  # fmt: skip
        baseline = Variant(track_id="cpu-tiny", hash="0" * 64, source="", status="verified")
        session.add(baseline)
        session.flush()
        for number, (hypothesis, status) in enumerate(EXPERIMENTS, start=1):
            session.add(
                Variant(
                    track_id="cpu-tiny", hash=f"{number:064d}", parent_id=baseline.id,
                    hypothesis=hypothesis, source="", status=status,
                )
            )  # fmt: skip
        session.commit()
    engine.dispose()
    return root


def test_moves_are_bucketed_by_their_size_with_fractions_on_the_odds(tmp_path: Path) -> None:
    network = _network(tmp_path / "agent-search-guided-1")

    result = subprocess.run(
        [sys.executable, str(REPO_ROOT / "bench" / "move_yield.py"), str(network)],
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert result.returncode == 0, result.stderr
    rows = [line.split() for line in result.stdout.splitlines()[2:]]
    assert result.stdout.splitlines()[0] == "4 moves from 1 networks"
    assert rows == [
        ["float", "1.00-1.15x", "1", "0", "0", "0%"],
        ["float", "1.15-1.30x", "1", "1", "0", "0%"],
        ["float", "1.30-1.60x", "1", "1", "1", "100%"],
        ["int", "1.30-1.60x", "1", "1", "1", "100%"],
    ]


def test_a_folder_without_a_coordinator_database_is_named_in_one_line(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, str(REPO_ROOT / "bench" / "move_yield.py"), str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert result.returncode == 2
    assert f"no coordinator/coordinator.sqlite3 in: {tmp_path}" in result.stderr
