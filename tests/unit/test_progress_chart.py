"""The progress chart's layout: one point per finished experiment, the frontier, the clipped range."""

from __future__ import annotations

from coordinator.models import Variant
from coordinator.services.chart import CRASH_LANE_Y, progress_chart
from coordinator.services.experiments import Experiment, Outcome


def _variant(number: int, *, parent: int | None, status: str, val_bpb: float | None, hypothesis: str) -> Variant:
    return Variant(id=number, hash=f"{number:064x}", track_id="t", parent_id=parent, status=status,
                   val_bpb=val_bpb if status == "verified" else None, claimed_val_bpb=val_bpb, hypothesis=hypothesis)


def _experiments(*variants: Variant) -> list[Experiment]:
    outcomes = {"verified": Outcome.keep, "crashed": Outcome.crash, "discarded": Outcome.discard}
    return [Experiment(variant=v, outcome=outcomes[v.status], val_bpb=v.claimed_val_bpb, peak_memory_bytes=None)
            for v in variants]


BASE = _variant(1, parent=None, status="verified", val_bpb=1.0, hypothesis="baseline")
WORSE = _variant(2, parent=1, status="discarded", val_bpb=1.02, hypothesis="halve the warmup")
CRASH = _variant(3, parent=1, status="crashed", val_bpb=None, hypothesis="bf16 attention")
KEPT = _variant(4, parent=1, status="verified", val_bpb=0.95, hypothesis="cosine decay")
WILD = _variant(5, parent=4, status="discarded", val_bpb=7.5, hypothesis="learning rate x100")


def test_every_finished_experiment_is_one_point_in_order_and_crashes_sit_in_their_lane() -> None:
    chart = progress_chart(_experiments(BASE, WORSE, CRASH, KEPT), line=[BASE, KEPT], head=KEPT)
    assert chart is not None
    assert [p.outcome for p in chart.points] == ["keep", "discard", "crash", "keep"]
    assert [p.x for p in chart.points] == sorted(p.x for p in chart.points)
    base, worse, crash, kept = chart.points
    assert crash.y == CRASH_LANE_Y
    assert worse.y < base.y < kept.y  # SVG y grows downwards: a lower val_bpb sits lower
    assert chart.head == kept and chart.kept == 1
    assert [label.text for label in chart.labels] == ["cosine decay"]
    assert chart.baseline is not None and chart.baseline.text == "baseline 1.0000"


def test_a_far_off_failure_is_clipped_to_the_top_edge_instead_of_flattening_the_frontier() -> None:
    chart = progress_chart(_experiments(BASE, KEPT, WILD), line=[BASE, KEPT], head=KEPT)
    assert chart is not None
    base, kept, wild = chart.points
    top = chart.plot[1]
    assert wild.clipped and top <= wild.y < base.y
    assert kept.y - base.y > (chart.plot[3] - top) / 3  # the kept step still spans much of the plot


def test_there_is_no_chart_before_anything_has_a_score() -> None:
    assert progress_chart([], line=[], head=None) is None
    assert progress_chart(_experiments(CRASH), line=[], head=None) is None
