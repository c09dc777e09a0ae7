"""Shared by the red-team tests: a tiny real track, and one variant run down the lease's path."""

from __future__ import annotations

from pathlib import Path

import pytest

from shared.track_spec import TrackSpec
from tests.services import REQUIRED
from tests.trackfactory import build_track
from worker.localrun import LocalRunResult, run_local
from worker.sandbox import Sandbox, SandboxConfig

VARIANTS = Path(__file__).resolve().parent / "variants"
ROOT = Path(__file__).resolve().parents[2]
# A byte-level track (every token is one byte) with a short clock: an honest run takes a few seconds.
TIME_BUDGET_S = 1.5
GRACE_S = 1.0


def variant(name: str) -> str:
    return (VARIANTS / f"{name}.py").read_text(encoding="utf-8")


@pytest.fixture(scope="session")
def track(tmp_path_factory: pytest.TempPathFactory) -> tuple[TrackSpec, Path]:
    return build_track(tmp_path_factory.mktemp("redteam-track"), time_budget_s=TIME_BUDGET_S, grace_s=GRACE_S)


def run_variant(
    tmp_path: Path,
    track: tuple[TrackSpec, Path],
    source: str,
    *,
    sandbox: SandboxConfig | None = None,
    enforce_policy: bool = True,
) -> LocalRunResult:
    """`source` through run_local, the path every lease takes: policy, sandbox, harness, probes."""
    spec, data_dir = track
    return run_local(
        source=source,
        spec=spec,
        data_dir=data_dir,
        seed=1,
        workdir=tmp_path / "run",
        device="cpu",
        threads=1,
        sandbox=sandbox,
        enforce_policy=enforce_policy,
    )


def require_layers(*names: str, config: SandboxConfig | None = None) -> None:
    """Skip (fail under ARN_REQUIRE_SERVICES=1) when a sandbox layer a test relies on is missing here."""
    report = Sandbox.detect(config, device="cpu").report
    for name in names:
        layer = report.layer(name)
        if not layer.active:
            message = f"the sandbox's {name} layer is {layer.state} on this machine ({layer.detail})"
            if REQUIRED:
                pytest.fail(f"{message}; ARN_REQUIRE_SERVICES=1 makes it mandatory", pytrace=False)
            pytest.skip(f"{message}; install bubblewrap (bwrap) to run this test")
