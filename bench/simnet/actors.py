"""Simulated volunteers: what each kind of worker reports for a lease.

Honest workers train (in the landscape) what the lease names, with its seed, paired halves back to
back. Adversaries answer with what serves them:

- liar: claims a large gain it never measured;
- rubber: as a verifier, confirms a large gain whatever it measured;
- saboteur: as a verifier, reports others' variants worse; as an explorer, hides its own gains;
- sybil: a ring of accounts that fake claims like a liar and confirm each other's fakes;
- lazy: reports noise around the reference without training.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from bench.simnet.landscape import Landscape, Machine, Noise
from shared.hashing import variant_hash
from shared.protocol import (
    HardwareInfo,
    RegistrationPayload,
    RunMetrics,
    RunPayload,
    RunStatus,
    signed_fields,
)
from shared.signing import SigningKey
from worker.agents.base import ProposalContext
from worker.agents.offline import OfflineAgent
from worker.daemon import agent_seed_of

KINDS = ("honest", "liar", "rubber", "saboteur", "sybil", "lazy")
FAKE_GAIN_SIGMAS = 8.0  # what a faker claims, in σ of a paired difference


@dataclass
class Report:
    """One lease's outcome as the worker reports it, and what the simulator knows about it."""

    kind: str  # the lease's kind
    val_bpb: float
    control: float | None
    trainings: int
    source: str | None = None  # explore: the child
    hypothesis: str | None = None
    true_child: float | None = None
    true_parent: float | None = None


@dataclass
class Actor:
    index: int
    kind: str
    account: str
    machine: Machine
    rng: random.Random
    ring: set[str] = field(default_factory=set)  # sybil: the ring's own candidates, shared by its members
    references: dict[str, float] = field(default_factory=dict)  # parent hash -> this machine's control score
    runs: int = 0  # leases reported
    quarantined_after: int | None = None
    quarantine_reason: str | None = None  # as the coordinator told it

    def answer(self, lease: dict[str, Any], world: Landscape, noise: Noise, agent: OfflineAgent) -> Report:
        kind = lease["kind"]
        variant = lease["variant"]
        control = lease.get("control")
        seed = int(lease["seed"])
        sigma_p = noise.sigma_paired

        def measure(source: str) -> float:
            return self.machine.measure(world.true(source), seed, noise)

        if kind == "calibrate":
            previous = measure(control["source"]) if control is not None else None
            value = measure(variant["source"])
            if self.kind == "lazy":
                value = world.true(variant["source"]) + self.rng.gauss(0.0, noise.sigma_seed)
                previous = value + self.rng.gauss(0.0, sigma_p) if control is not None else None
            trainings = 0 if self.kind == "lazy" else (2 if control is not None else 1)
            return Report(kind, value, previous, trainings=trainings)

        if kind == "verify":
            # Without a control (a coordinator from before paired runs), the head's score is
            # estimated from the landscape, as a worker would guess it from the leaderboard.
            head_score = measure(control["source"]) if control is not None else None
            reference = head_score if head_score is not None else world.base
            score = measure(variant["source"])
            candidate = variant["hash"]
            if self.kind == "rubber" or (self.kind == "sybil" and candidate in self.ring):
                score = reference - FAKE_GAIN_SIGMAS * sigma_p
            elif self.kind == "saboteur":
                score = reference + 5.0 * sigma_p
            elif self.kind == "lazy":
                score = reference + self.rng.gauss(0.0, sigma_p)
            trainings = 0 if self.kind == "lazy" else (2 if control is not None else 1)
            return Report(kind, score, head_score, trainings=trainings)

        # explore
        parent = variant["source"]
        proposal = agent.propose(
            ProposalContext(
                track_id=lease["track_id"], brief="", parent_hash=variant["hash"], parent_source=parent,
                seed=agent_seed_of(lease["id"]),
            )
        )
        trainings = 1
        control_score: float | None = None
        if control is not None:
            control_score = measure(control["source"])
            self.references[variant["hash"]] = control_score
            trainings = 2
        reference = self.references.get(variant["hash"], world.true(parent))
        score = measure(proposal.source)
        if self.kind in ("liar", "sybil"):
            score = reference - FAKE_GAIN_SIGMAS * sigma_p
            if self.kind == "sybil":
                self.ring.add(variant_hash(proposal.source))
        elif self.kind == "saboteur":
            score = reference + abs(score - reference)  # never a gain: its finds are hidden
        elif self.kind == "lazy":
            score = reference + self.rng.gauss(0.0, sigma_p)
            trainings = 0
        return Report(
            kind, score, control_score, trainings=trainings, source=proposal.source, hypothesis=proposal.hypothesis,
            true_child=world.true(proposal.source), true_parent=world.true(parent),
        )


def assign_kinds(workers: int, fractions: dict[str, float], rng: random.Random) -> list[str]:
    kinds: list[str] = []
    for kind, share in fractions.items():
        kinds += [kind] * round(share * workers)
    kinds = kinds[:workers]
    kinds += ["honest"] * (workers - len(kinds))
    rng.shuffle(kinds)
    return kinds


def registration(key: SigningKey, *, name: str, account: str, hardware_class: str) -> dict[str, Any]:
    """A signed `POST /v1/workers` body for a simulated machine."""
    payload = RegistrationPayload(
        public_key=key.public_key, name=name, account=account, hardware=HardwareInfo(hardware_class=hardware_class),
        issued_at=datetime.now(UTC),
    ).model_dump(mode="json")  # fmt: skip
    return {"payload": payload, "signature": key.sign(payload)}


def run_payload(worker_id: str, lease: dict[str, Any], report: Report) -> RunPayload:
    """The run a simulated worker reports for `lease`: scores only, no training figures to speak of."""
    explore = lease["kind"] == "explore"
    # `control` is left unset, not None, when there is none: a coordinator from before paired runs
    # refuses the field, and the simulator measures that coordinator too (--coordinator-root).
    paired: dict[str, Any] = {}
    if report.control is not None:
        paired["control"] = RunMetrics(val_bpb=report.control, steps=100, tokens=12800, train_seconds=60.0)
    return RunPayload(
        lease_id=lease["id"], worker_id=worker_id, track_id=lease["track_id"], kind=lease["kind"],
        variant_hash=variant_hash(report.source) if explore and report.source else lease["variant"]["hash"],
        parent_hash=lease["variant"]["hash"] if explore else None,
        source=report.source if explore else None, hypothesis=report.hypothesis if explore else None,
        seed=lease["seed"], status=RunStatus.ok,
        metrics=RunMetrics(val_bpb=report.val_bpb, steps=100, tokens=12800, train_seconds=60.0),
        env={"simulated": True}, finished_at=datetime.now(UTC), **paired,
    )  # fmt: skip


def signed_run(key: SigningKey, worker_id: str, lease: dict[str, Any], report: Report) -> dict[str, Any]:
    """A signed `POST /v1/leases/{id}/result` body."""
    payload = run_payload(worker_id, lease, report)
    return {"payload": payload.model_dump(mode="json", exclude_unset=True), "signature": key.sign(signed_fields(payload))}
