"""What an agent is told about a lease: the brief, the parent and its lineage, the research log and
the leaderboard, read from the coordinator. Reads an agent can do without are retried briefly and
then dropped (with a warning), so a slow coordinator costs a proposal some context, not the lease.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from shared.hashing import short_hash
from shared.protocol import Lease
from worker.agents.base import ProposalContext
from worker.client import ClientError, CoordinatorClient, CoordinatorError, RetryPolicy
from worker.display import Display

LINEAGE_HOPS = 5  # how many ancestors' hypotheses an agent sees
LOG_ENTRIES = 50  # the most recent research-log entries network-wide an agent sees
LINEAGE_LOG_ENTRIES = 200  # and the experiments made from the parent or its ancestors
CONTEXT_READS = RetryPolicy(max_attempts=3, max_elapsed_s=20.0)


class AgentContextReader:
    def __init__(self, *, client: CoordinatorClient, display: Display) -> None:
        self._client = client
        self._display = display
        self._variants: dict[str, tuple[str | None, list[str]]] = {}

    def context(self, lease: Lease, *, brief: str, hardware_class: str, seed: int) -> ProposalContext:
        return ProposalContext(
            track_id=lease.track_id,
            brief=brief,
            parent_hash=lease.variant.hash,
            parent_source=lease.variant.source,
            lineage_hypotheses=self.lineage_hypotheses(lease),
            research_log=self.research_log(lease),
            leaderboard=self._read(
                lambda: [e.model_dump(mode="json") for e in self._client.leaderboard(lease.track_id).entries]
            ),
            seed=seed,
            hardware_class=hardware_class,
        )

    def is_known(self, digest: str, *, track_id: str) -> bool:
        """Whether the coordinator already has this variant; when it cannot say, assume not."""
        try:
            self._client.call(lambda: self._client.variant(digest, track_id=track_id), policy=CONTEXT_READS)
        except CoordinatorError as exc:
            if exc.status != 404:
                self._display.warning(f"could not ask whether {short_hash(digest)} is known: {exc}")
            return False
        except ClientError as exc:
            self._display.warning(f"could not ask whether {short_hash(digest)} is known: {exc}")
            return False
        return True

    def research_log(self, lease: Lease) -> list[dict[str, Any]]:
        """What was tried from the parent and its ancestors, plus the newest experiments anywhere.

        The lineage part is what an agent needs to avoid repeats and to follow what worked on the
        line it extends, however old; the recent part shows what others are trying right now.
        Deduplicated by hash, newest first.
        """

        def read(**filters: Any) -> list[dict[str, Any]]:
            return self._read(
                lambda: [
                    e.model_dump(mode="json")
                    for e in self._client.research_log(lease.track_id, **filters).entries
                ]
            )

        lineage = read(limit=LINEAGE_LOG_ENTRIES, lineage=lease.variant.hash)
        recent = read(limit=LOG_ENTRIES)
        merged = {entry["hash"]: entry for entry in [*lineage, *recent]}
        # ISO timestamps from one coordinator sort as text; the sort is stable for equal ones.
        return sorted(merged.values(), key=lambda entry: str(entry.get("created_at") or ""), reverse=True)

    def lineage_hypotheses(self, lease: Lease) -> list[str]:
        """The hypotheses of the parent and its nearest ancestors, the parent's first."""
        try:
            _, lineage = self._ancestry(lease.variant.hash, track_id=lease.track_id)
            found = [self._ancestry(h, track_id=lease.track_id)[0] for h in lineage[:LINEAGE_HOPS]]
        except ClientError as exc:
            self._display.warning(f"the agent works without the lineage: {exc}")
            return []
        return [h for h in found if h]

    def _ancestry(self, variant: str, *, track_id: str) -> tuple[str | None, list[str]]:
        """(hypothesis, lineage) of a variant; cached, since a variant and its ancestors never change."""
        if variant not in self._variants:
            detail = self._client.call(
                lambda: self._client.variant(variant, track_id=track_id), policy=CONTEXT_READS
            )
            self._variants[variant] = (detail.hypothesis, detail.lineage or [variant])
        return self._variants[variant]

    def _read(self, read: Callable[[], list[dict[str, Any]]]) -> list[dict[str, Any]]:
        try:
            return self._client.call(read, policy=CONTEXT_READS)
        except ClientError as exc:
            self._display.warning(f"the agent works without part of its context: {exc}")
            return []
