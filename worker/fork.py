"""`worker fork`: clone a track's verified lineage from its coordinator, with no git binary.

The coordinator serves each track's lineage at `<coordinator>/git/<track>.git` (coordinator/api/git.py):
`main` is the head, each verified variant a commit on its parent. A fork remembers where it came
from in its `origin` remote, so `worker run` and `worker submit` inside it need neither
`--coordinator` nor `--track`: `fork_origin` reads them back.
"""

from __future__ import annotations

import io
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

import urllib3
from dulwich import porcelain
from dulwich.config import ConfigFile
from dulwich.errors import GitProtocolError, NotGitRepository
from dulwich.objects import Commit
from dulwich.refs import HEADREF
from dulwich.repo import Repo

_ORIGIN_URL = re.compile(r"^(?P<coordinator>https?://[^/?#]+(?:/[^?#]*?)?)/git/(?P<track>[^/?#]+?)(?:\.git)?/?$")
_VARIANT_TRAILER = re.compile(r"^Variant: (?P<hash>[0-9a-f]{64})$", re.MULTILINE)
_TRACK_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


class ForkError(Exception):
    """A fork that could not be made, in one line a researcher can act on."""


@dataclass(frozen=True)
class ForkOrigin:
    """Where a fork was cloned from."""

    coordinator_url: str
    track_id: str


@dataclass(frozen=True)
class Fork:
    directory: Path
    head: str  # the commit id main points at
    subject: str  # its first message line: the head's hypothesis


def lineage_url(coordinator_url: str, track_id: str) -> str:
    return f"{coordinator_url.rstrip('/')}/git/{track_id}.git"


def parse_origin(url: str) -> ForkOrigin | None:
    """The coordinator and track of a lineage URL, `http(s)://HOST[:PORT][/prefix]/git/<track>.git`."""
    match = _ORIGIN_URL.match(url.strip())
    if match is None:
        return None
    return ForkOrigin(coordinator_url=match["coordinator"], track_id=match["track"])


def fork_origin(start: Path) -> ForkOrigin | None:
    """The origin of the fork that holds `start` (a folder or a file), or None when it is in none.

    Walks up to the nearest `.git`, as git does, and stops there: a repository nested in a fork
    is not the fork, and one whose origin is not a coordinator's lineage is not a fork at all.
    """
    here = start.resolve()
    if not here.is_dir():
        here = here.parent
    for folder in (here, *here.parents):
        dot_git = folder / ".git"
        if not dot_git.exists():
            continue
        try:
            url = ConfigFile.from_path(str(dot_git / "config")).get((b"remote", b"origin"), b"url")
        except (OSError, KeyError, ValueError):
            return None
        return parse_origin(url.decode("utf-8", "replace"))
    return None


def fork_parent(start: Path) -> str | None:
    """The variant the fork holding `start` has checked out: its HEAD commit's `Variant:` trailer.

    A submission from a fork builds on what the researcher checked out (an older `v/<hash>` tag,
    say), not on whatever the head is when they submit.
    """
    here = start.resolve()
    for folder in (here if here.is_dir() else here.parent, *here.parents):
        if (folder / ".git").exists():
            try:
                with Repo(str(folder)) as repo:
                    commit = repo[repo.refs[HEADREF]]
            except (OSError, KeyError, NotGitRepository):
                return None
            if not isinstance(commit, Commit):
                return None
            found = _VARIANT_TRAILER.search(commit.message.decode("utf-8", "replace"))
            return found["hash"] if found else None
    return None


def _unreachable_reason(error: BaseException) -> str:
    """The network's own words (`Connection refused`), not urllib3's retry wrapper around them."""
    cause = error.__cause__ or error
    reason = str(getattr(cause, "reason", None) or cause)
    errno_text = re.search(r"\[Errno -?\d+\] ([^\"')]+)", reason)
    return errno_text.group(1).strip() if errno_text else reason


def fork(coordinator_url: str, track_id: str, directory: Path) -> Fork:
    """Clone `track_id`'s lineage into `directory` (which must not exist, or be empty) and check out main."""
    if not _TRACK_ID.match(track_id):
        raise ForkError(f"not a track id: {track_id!r}")
    if directory.exists() and (not directory.is_dir() or any(directory.iterdir())):
        raise ForkError(f"{directory} already exists and is not empty; choose another folder")
    existed = directory.exists()
    url = lineage_url(coordinator_url, track_id)
    try:
        repo = porcelain.clone(url, str(directory), checkout=True, branch="main", errstream=io.BytesIO())
    except NotGitRepository:
        raise ForkError(f"the coordinator at {coordinator_url} has no track {track_id!r}") from None
    except GitProtocolError as exc:
        if isinstance(exc.__cause__, urllib3.exceptions.HTTPError):
            raise ForkError(f"cannot reach the coordinator at {coordinator_url}: {_unreachable_reason(exc)}") from None
        raise ForkError(f"the coordinator at {coordinator_url} did not serve the lineage: {exc}") from None
    finally:
        if existed and not (directory / "train.py").exists():
            shutil.rmtree(directory / ".git", ignore_errors=True)  # leave the empty folder as it was
    with repo:
        head = repo.refs[HEADREF]
        commit = repo[head]
        assert isinstance(commit, Commit), f"HEAD is a {commit.type_name!r}, not a commit"
        message = commit.message.decode("utf-8", "replace")
    return Fork(directory=directory, head=head.decode(), subject=message.splitlines()[0] if message else "")
