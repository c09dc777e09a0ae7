"""The progress chart of a track, in the spirit of autoresearch's progress.png, laid out for an SVG.

x is the experiment's number (oldest first, the baseline at 0), y its val_bpb (lower is better).
Every finished experiment is one point coloured by outcome; crashes, which have no score, sit in a
lane above the plot. The verified frontier is a step line through the kept variants, each step
labelled with its hypothesis. The layout is computed here so the template only draws it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from coordinator.models import Variant
from coordinator.services.experiments import Experiment, Outcome
from shared.hashing import short_hash

WIDTH, HEIGHT = 960, 440
LEFT, RIGHT, TOP, BOTTOM = 64, 24, 48, 44  # the plot's margins; the crash lane sits in TOP
CRASH_LANE_Y = 22
LABEL_CHARS = 42


@dataclass(frozen=True)
class Point:
    x: float
    y: float
    outcome: str
    hash: str
    track_id: str
    title: str
    clipped: bool  # above the plotted range: drawn at its top edge


@dataclass(frozen=True)
class Label:
    x: float
    y: float
    text: str
    anchor: str  # SVG text-anchor: labels in the right part of the plot run leftwards, to stay inside it
    angle: int  # degrees; the left part's labels tilt upwards, away from the step line below


@dataclass(frozen=True)
class Tick:
    at: float
    text: str


@dataclass(frozen=True)
class Chart:
    width: int
    height: int
    plot: tuple[float, float, float, float]  # left, top, right, bottom
    points: list[Point]
    frontier: str  # the SVG path of the running best
    labels: list[Label]
    x_ticks: list[Tick]
    y_ticks: list[Tick]
    baseline: Tick | None  # its y, and its label
    head: Point | None
    head_label: Label | None
    kept: int
    total: int  # finished experiments on the track; the chart may show only the newest


def _nice_step(span: float, count: int) -> float:
    raw = span / max(count, 1)
    magnitude = 10 ** math.floor(math.log10(raw))
    return next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)


def _ticks(lo: float, hi: float, count: int) -> list[float]:
    step = _nice_step(hi - lo, count)
    first = math.ceil(lo / step) * step
    return [first + i * step for i in range(int((hi - first) / step + 1e-9) + 1)]


def _y_range(experiments: list[Experiment]) -> tuple[float, float]:
    """From the best score to a little above the kept ones: far-off failures are clipped, not allowed
    to squash the frontier into a flat line."""
    values = [e.val_bpb for e in experiments if e.val_bpb is not None and e.outcome is not Outcome.crash]
    kept = [e.val_bpb for e in experiments if e.val_bpb is not None and e.outcome is Outcome.keep]
    lo = min(values)
    reference = max(kept) if kept else max(values)
    span = max(reference - lo, 1e-3)
    hi = min(max(values), reference + span)
    hi = max(hi, reference)
    pad = max((hi - lo) * 0.08, 5e-4)
    return lo - pad, hi + pad


def _shorten(text: str | None) -> str:
    text = " ".join((text or "").split())
    return text if len(text) <= LABEL_CHARS else text[: LABEL_CHARS - 1] + "…"


def progress_chart(
    experiments: list[Experiment], *, line: list[Variant], head: Variant | None, total: int | None = None
) -> Chart | None:
    if not any(e.val_bpb is not None and e.outcome is not Outcome.crash for e in experiments):
        return None
    left, top, right, bottom = LEFT, TOP, WIDTH - RIGHT, HEIGHT - BOTTOM
    lo, hi = _y_range(experiments)
    last = max(len(experiments) - 1, 1)

    def x_at(index: int) -> float:
        return round(left + (right - left) * index / last, 1)

    def y_at(value: float) -> float:
        return round(bottom - (bottom - top) * (min(value, hi) - lo) / (hi - lo), 1)

    def right_part(x: float) -> bool:
        """Labels here run leftwards, level with their point, to stay inside the plot: nothing kept
        sits left of a step at its level. Further left they tilt up-right, away from the line."""
        return x > left + (right - left) * 0.6

    points, index_of = [], {}
    for index, e in enumerate(experiments):
        index_of[e.variant.id] = index
        crashed = e.outcome is Outcome.crash or e.val_bpb is None
        score = "no score" if crashed else f"val_bpb {e.val_bpb:.6f}"
        points.append(
            Point(
                x=x_at(index),
                y=CRASH_LANE_Y if crashed else y_at(e.val_bpb or 0.0),
                outcome=e.outcome.value,
                hash=e.variant.hash,
                track_id=e.variant.track_id,
                title=f"#{index} {short_hash(e.variant.hash)} {e.outcome.value}, {score}: {e.variant.hypothesis or ''}",
                clipped=not crashed and (e.val_bpb or 0.0) > hi,
            )
        )
    steps = [(index_of[v.id], v) for v in line if v.id in index_of and v.val_bpb is not None]
    path, labels = "", []
    for n, (index, variant) in enumerate(steps):
        x, y = x_at(index), y_at(variant.val_bpb or 0.0)
        path += f"M{x},{y}" if n == 0 else f"H{x}V{y}"
        if variant.parent_id is not None:
            if right_part(x):
                labels.append(Label(x=x - 12, y=y + 4, text=_shorten(variant.hypothesis), anchor="end", angle=0))
            else:
                labels.append(Label(x=x + 5, y=y - 6, text=_shorten(variant.hypothesis), anchor="start", angle=-18))
    if steps:
        path += f"H{right}"
    baseline = next((v for v in line if v.parent_id is None and v.val_bpb is not None), None)
    head_point = next((p for p in points if head is not None and p.hash == head.hash), None)
    head_label = None
    if head_point is not None:  # on the side its step's label leaves free
        if right_part(head_point.x):
            head_label = Label(x=head_point.x, y=head_point.y - 14, text="head", anchor="middle", angle=0)
        else:
            head_label = Label(x=head_point.x - 14, y=head_point.y + 4, text="head", anchor="end", angle=0)
    x_step = max(1, math.ceil(_nice_step(last, 8)))
    return Chart(
        width=WIDTH,
        height=HEIGHT,
        plot=(left, top, right, bottom),
        points=points,
        frontier=path,
        labels=labels,
        x_ticks=[Tick(x_at(i), str(i)) for i in range(0, len(experiments), x_step)],
        y_ticks=[Tick(y_at(v), f"{v:.4f}") for v in _ticks(lo, hi, 5)],
        baseline=Tick(y_at(baseline.val_bpb or 0.0), f"baseline {baseline.val_bpb:.4f}") if baseline else None,
        head=head_point,
        head_label=head_label,
        kept=sum(1 for e in experiments if e.outcome is Outcome.keep and e.variant.parent_id is not None),
        total=max(total or 0, len(experiments)),
    )
