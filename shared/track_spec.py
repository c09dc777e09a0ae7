"""The fixed description of a track that a worker's harness needs to run a variant.

Standard library only: the harness reads this on a bare GPU box. The coordinator stores the same
fields in its `tracks` table and serves them as JSON; `TrackSpec.from_json` reads that.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from typing import Any

HARNESS_VERSION = "1"


@dataclass(frozen=True)
class TrackAssets:
    """sha256 addresses of a track's data files (see shared.data_format)."""

    train: tuple[str, ...]
    val: str
    token_bytes: str
    tokenizer: str | None = None


@dataclass(frozen=True)
class TrackSpec:
    track_id: str
    hardware_class: str
    vocab_size: int
    seq_len: int
    eval_tokens: int
    eval_batch_size: int
    time_budget_s: float
    grace_s: float
    assets: TrackAssets
    harness_version: str = HARNESS_VERSION
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["assets"]["train"] = list(self.assets.train)
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> TrackSpec:
        fields = {f.name for f in dataclasses.fields(cls)}
        values = {k: v for k, v in data.items() if k in fields}
        assets = dict(data["assets"])
        assets["train"] = tuple(assets["train"])
        values["assets"] = TrackAssets(**assets)
        return cls(**values)

    def dumps(self) -> str:
        return json.dumps(self.to_json(), sort_keys=True)
