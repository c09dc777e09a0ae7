"""The end-to-end tests' network: real processes under a test's own folder, stopped afterwards."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.network import Network


@pytest.fixture
def network(tmp_path: Path) -> Iterator[Network]:
    """A network of processes; on a failure its logs are printed, and it is always stopped."""
    net = Network(tmp_path)
    try:
        yield net
    except BaseException:
        print(net.logs())
        raise
    finally:
        net.stop_all()
