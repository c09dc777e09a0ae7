"""Which single-constant moves became verified improvements, by the size of the move.

Reads the coordinator databases that `bench/agent_search.py --keep` leaves behind (one folder per
network) and pools every experiment whose hypothesis is an offline move (`NAME old -> new`),
whichever strategy made it. Moves are sized as the guided strategy sizes them
(worker.agents.guided.parse_change): the factor on the value, or on the odds for a fraction.
Constants of the other hardware (GPU_* on the CPU track) are left out: they cannot change the
model, so they say nothing about move sizes.

    python bench/agent_search.py --seeds 1 2 3 4 5 6 --experiments 16 --keep
    python bench/move_yield.py /tmp/agent-search-*

For each kind (float, int) and size bucket it prints the moves made, how many were claimed as an
improvement (candidate, then verified or rejected), and how many were verified.
"""

from __future__ import annotations

import argparse
import itertools
import math
import sys
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))  # run as a script from anywhere

from coordinator.db import make_engine  # noqa: E402
from coordinator.models import Variant  # noqa: E402
from worker.agents.guided import applies_to_hardware, parse_change  # noqa: E402

DATABASE = Path("coordinator") / "coordinator.sqlite3"
BUCKETS = (1.0, 1.15, 1.3, 1.6, 2.0, math.inf)  # bounds on the factor of a move
CLAIMED = frozenset({"candidate", "verified", "rejected"})


@dataclass(frozen=True)
class Move:
    kind: str  # "float" or "int"
    factor: float  # >= 1
    status: str


def _is_int(literal: str) -> bool:
    try:
        int(literal.replace("_", ""))
    except ValueError:
        return False
    return True


def read_moves(network: Path, *, hardware_class: str) -> list[Move]:
    engine = make_engine(f"sqlite:///{network / DATABASE}")
    moves = []
    with Session(engine) as session:
        for variant in session.scalars(select(Variant).where(Variant.parent_id.is_not(None))):
            entry = {"hypothesis": variant.hypothesis, "status": variant.status}
            change = parse_change(entry)
            if change is None or not applies_to_hardware(change.name, hardware_class):
                continue
            old, new = (variant.hypothesis or "").split(" ", 1)[1].split(" -> ")
            kind = "int" if _is_int(old) and _is_int(new) else "float"
            moves.append(Move(kind=kind, factor=math.exp(abs(change.log_factor)), status=variant.status))
    engine.dispose()
    return moves


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("networks", nargs="+", type=Path, help="folders kept by agent_search.py --keep")
    parser.add_argument("--hardware-class", default="cpu", help="the track's hardware class")
    args = parser.parse_args(argv)
    missing = [str(n) for n in args.networks if not (n / DATABASE).is_file()]
    if missing:
        parser.error(f"no {DATABASE} in: {', '.join(missing)}")
    moves = [m for network in args.networks for m in read_moves(network, hardware_class=args.hardware_class)]
    print(f"{len(moves)} moves from {len(args.networks)} networks")
    print(f"{'kind':<6} {'factor':<12} {'moves':>6} {'claimed':>8} {'verified':>9} {'share':>6}")
    for kind in ("float", "int"):
        for low, high in itertools.pairwise(BUCKETS):
            bucket = [m for m in moves if m.kind == kind and low <= m.factor < high]
            if not bucket:
                continue
            verified = sum(m.status == "verified" for m in bucket)
            claimed = sum(m.status in CLAIMED for m in bucket)
            span = f"{low:.2f}-{high:.2f}x" if math.isfinite(high) else f">= {low:.2f}x"
            print(
                f"{kind:<6} {span:<12} {len(bucket):>6} {claimed:>8} {verified:>9}"
                f" {verified / len(bucket):>6.0%}"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
