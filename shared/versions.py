"""Release versions, compared as versions rather than as text ("0.10.0" is newer than "0.9.0").

`packaging` (installed alongside the tokenizer stack) compares PEP 440 versions exactly. Without it,
the leading dotted numbers are compared and any suffix ("rc1", "+local") is ignored, which errs
towards letting a pre-release through rather than refusing a release.

Workers name their version in the User-Agent they send (`autoresearch-worker/0.1.0`), so the
coordinator can refuse work to one older than it accepts without a header of its own. A client that
does not name itself so is not judged: the check is a courtesy to volunteers, not a security layer
(anyone can write any User-Agent; signatures and the policy are what is enforced).
"""

from __future__ import annotations

import re
from typing import Any

WORKER_AGENT = "autoresearch-worker"

_LEADING_NUMBERS = re.compile(r"^\s*v?(\d+(?:\.\d+)*)")
_USER_AGENT = re.compile(rf"(?:^|\s){re.escape(WORKER_AGENT)}/(\S+)")


class InvalidVersion(ValueError):
    """Text that is not a release version."""


def _key(version: str) -> Any:
    try:
        from packaging.version import InvalidVersion as PackagingInvalid
        from packaging.version import Version
    except ImportError:  # packaging comes with the dependencies; this is the fallback
        pass
    else:
        try:
            return Version(version)
        except PackagingInvalid as exc:
            raise InvalidVersion(f"not a version: {version!r}") from exc
    match = _LEADING_NUMBERS.match(version)
    if match is None:
        raise InvalidVersion(f"not a version: {version!r}")
    numbers = [int(part) for part in match.group(1).split(".")]
    while len(numbers) > 1 and numbers[-1] == 0:  # 1.0 == 1.0.0
        numbers.pop()
    return tuple(numbers)


def check_version(version: str) -> str:
    """`version` unchanged, or InvalidVersion."""
    _key(version)
    return version


def is_older(version: str, than: str) -> bool:
    """True when release `version` comes before `than`; InvalidVersion for either that is not one."""
    return bool(_key(version) < _key(than))


def worker_version_of(user_agent: str | None) -> str | None:
    """The version a worker names in its User-Agent, or None for any other client."""
    match = _USER_AGENT.search(user_agent or "")
    return match.group(1) if match else None


def worker_user_agent(version: str) -> str:
    return f"{WORKER_AGENT}/{version}"
