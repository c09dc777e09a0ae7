"""The synthetic world the simulated workers train in: a known true score per variant, and noise.

`true(source)` is a function of the variant's UPPER_CASE constants only (no torch runs):

- `null`: every change is dead; every variant is exactly as good as the baseline.
- `planted`: a change of one constant to one value carries a planted gain of `gain` σ_seed with
  probability `plant_rate` (decided by a hash of the name and the value, so the same change is
  always the same), and is dead otherwise. Children keep their parents' constants, so a planted
  gain is inherited until the constant changes again.
- `bowls`: each live constant is a bowl in log-space around a seeded optimum (within about 2x of
  the baseline's value, curvature 5-25 σ_seed per unit of log² so that a good move is worth about
  a σ near the baseline and less near the optimum), so a lineage can climb towards a best score;
  `dead_share` of the constants do nothing.

A measured score is `true + machine offset + load + shared(seed) + unshared`:
`shared(seed)` is the same for any variant trained with that seed (it cancels in a paired
difference), the unshared part does not. σ_seed² = σ_shared² + σ_unshared².
"""

from __future__ import annotations

import ast
import hashlib
import math
import random
from dataclasses import dataclass, field


def constants(source: str) -> dict[str, float]:
    """The module-level UPPER_CASE numeric constants of a train.py."""
    found: dict[str, float] = {}
    for node in ast.parse(source).body:
        if not isinstance(node, ast.Assign) or len(node.targets) != 1:
            continue
        target = node.targets[0]
        if not isinstance(target, ast.Name) or not target.id.isupper():
            continue
        try:
            value = ast.literal_eval(node.value)
        except ValueError:
            continue
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            found[target.id] = float(value)
    return found


def _unit(*parts: object) -> float:
    """A number in [0, 1) fixed by its parts."""
    digest = hashlib.sha256(":".join(map(str, parts)).encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


@dataclass
class Landscape:
    kind: str  # null | planted | bowls
    baseline: dict[str, float]
    sigma_seed: float
    gain: float = 2.0  # planted gains, in σ_seed
    plant_rate: float = 0.05
    dead_share: float = 0.5
    seed: int = 0
    base: float = 2.0  # the baseline's true score, in bpb
    _cache: dict[str, float] = field(default_factory=dict)

    def true(self, source: str) -> float:
        digest = hashlib.sha256(source.encode()).hexdigest()
        if digest not in self._cache:
            self._cache[digest] = self.base + self._true(constants(source))
        return self._cache[digest]

    def _true(self, values: dict[str, float]) -> float:
        if self.kind == "null":
            return 0.0
        if self.kind == "planted":
            planted = sum(
                1
                for name, value in values.items()
                if value != self.baseline.get(name) and _unit(self.seed, "plant", name, value) < self.plant_rate
            )
            return -self.gain * self.sigma_seed * planted
        total = 0.0
        for name, base in self.baseline.items():
            if _unit(self.seed, "dead", name) < self.dead_share or base <= 0:
                continue
            value = values.get(name, base)
            x = math.log(value / base) if value > 0 else -10.0
            optimum = (_unit(self.seed, "optimum", name) - 0.5) * 1.4  # within about 2x of the baseline
            curvature = self.sigma_seed * (5.0 + 20.0 * _unit(self.seed, "curvature", name))
            total += curvature * ((x - optimum) ** 2 - optimum**2)
        return total

    def best(self) -> float:
        """The lowest true score the landscape allows (bowls: every live constant at its optimum)."""
        if self.kind != "bowls":
            return self.base + self._true({})
        total = self.base
        for name, base in self.baseline.items():
            if _unit(self.seed, "dead", name) < self.dead_share or base <= 0:
                continue
            optimum = (_unit(self.seed, "optimum", name) - 0.5) * 1.4
            curvature = self.sigma_seed * (5.0 + 20.0 * _unit(self.seed, "curvature", name))
            total -= curvature * optimum**2
        return total


@dataclass(frozen=True)
class Noise:
    sigma_seed: float
    shared_fraction: float  # share of the seed's variance that a shared seed cancels
    sigma_machine: float
    load_rate: float = 0.0  # chance per run that a load episode starts
    load_runs: int = 8  # how long an episode lasts, in runs
    load_size: float = 3.0  # how much a loaded run loses, in σ_seed

    @property
    def sigma_shared(self) -> float:
        return self.sigma_seed * math.sqrt(self.shared_fraction)

    @property
    def sigma_unshared(self) -> float:
        return self.sigma_seed * math.sqrt(1.0 - self.shared_fraction)

    @property
    def sigma_paired(self) -> float:
        """σ of a paired difference: the unshared noise of two runs."""
        return math.sqrt(2.0) * self.sigma_unshared

    def shared(self, seed: int) -> float:
        rng = random.Random(f"shared:{seed}")
        return rng.gauss(0.0, self.sigma_shared)


@dataclass
class Machine:
    """One simulated worker's machine: a fixed offset and its own load episodes."""

    offset: float
    rng: random.Random
    loaded_for: int = 0

    def measure(self, true: float, seed: int, noise: Noise) -> float:
        if self.loaded_for > 0:
            self.loaded_for -= 1
        elif noise.load_rate and self.rng.random() < noise.load_rate:
            self.loaded_for = noise.load_runs
        load = noise.load_size * noise.sigma_seed if self.loaded_for > 0 else 0.0
        return true + self.offset + load + noise.shared(seed) + self.rng.gauss(0.0, noise.sigma_unshared)
