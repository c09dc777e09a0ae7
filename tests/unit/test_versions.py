"""Release versions compare as versions, with or without `packaging`."""

from __future__ import annotations

import sys

import pytest

from shared import versions
from shared.versions import InvalidVersion, is_older, worker_version_of


@pytest.fixture(params=["packaging", "fallback"])
def comparison(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    if request.param == "fallback":
        monkeypatch.setitem(sys.modules, "packaging.version", None)  # an import of it fails
    return str(request.param)


@pytest.mark.parametrize(
    ("version", "than", "older"),
    [
        ("0.9.0", "0.10.0", True),
        ("0.10.0", "0.9.0", False),
        ("1.0", "1.0.0", False),
        ("1.2.3", "1.2.3", False),
        ("1.2", "1.2.1", True),
    ],
)
def test_versions_compare_by_number_not_by_text(comparison: str, version: str, than: str, older: bool) -> None:
    assert is_older(version, than) is older


def test_text_that_is_not_a_version_is_refused(comparison: str) -> None:
    with pytest.raises(InvalidVersion, match="not a version: 'latest'"):
        versions.check_version("latest")


def test_a_pre_release_is_older_than_its_release_where_packaging_can_tell() -> None:
    assert is_older("1.0.0rc1", "1.0.0")


@pytest.mark.parametrize(
    ("user_agent", "version"),
    [
        ("autoresearch-worker/0.1.0", "0.1.0"),
        ("proxy/1.0 autoresearch-worker/2.3.4", "2.3.4"),
        ("python-httpx/0.27.0", None),
        ("not-autoresearch-worker/9", None),
        (None, None),
    ],
)
def test_a_worker_names_its_release_in_its_user_agent(user_agent: str | None, version: str | None) -> None:
    assert worker_version_of(user_agent) == version
