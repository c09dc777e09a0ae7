"""Each track's verified lineage as a read-only git repository: `git clone HOST/git/<track>.git`.

Git's smart HTTP protocol (v0/v1), fetch side only. Refusals are text/plain because that is what
git prints to the user (as `remote: ...`); they are not the API's JSON errors. The database is
read only while the lineage is looked up or rebuilt, never while a pack is written.
"""

from __future__ import annotations

from dulwich.errors import GitProtocolError
from dulwich.repo import MemoryRepo
from fastapi import APIRouter, Request
from fastapi.responses import PlainTextResponse, Response
from starlette.concurrency import run_in_threadpool

from coordinator.api.deps import AppState, LineageReposDep, StateDep
from coordinator.errors import DomainError
from coordinator.services import git_http
from coordinator.services.lineage_repo import LineageRepos
from coordinator.services.tracks import get_track

router = APIRouter(prefix="/git", tags=["git"], include_in_schema=False)

# Refs move with every promotion: no cache may answer for the coordinator.
_NO_CACHE = {"Cache-Control": "no-cache, max-age=0, must-revalidate", "Expires": "Fri, 01 Jan 1980 00:00:00 GMT"}
_READ_ONLY = (
    "this repository is read-only: a track's lineage grows only by verification."
    " Submit a variant with `worker submit train.py --hypothesis \"...\"`."
)


def _refuse(status_code: int, message: str) -> PlainTextResponse:
    return PlainTextResponse(message + "\n", status_code=status_code, headers=_NO_CACHE)


def _lineage(state: AppState, repos: LineageRepos, name: str) -> MemoryRepo | PlainTextResponse:
    """The track's repository (`name` with or without `.git`), or the refusal to send instead."""
    track_id = name.removesuffix(".git")
    with state.session_factory() as session:
        try:
            track = get_track(session, track_id)
        except DomainError as exc:
            return _refuse(exc.status_code, exc.message)
        repo = repos.get(session, track)
    return repo if repo is not None else _refuse(404, f"track {track_id!r} has no lineage yet")


@router.get("/{name}/info/refs")
async def info_refs(name: str, state: StateDep, repos: LineageReposDep, service: str | None = None) -> Response:
    if service == "git-receive-pack":
        return _refuse(403, _READ_ONLY)
    if service != git_http.UPLOAD_PACK:
        return _refuse(403, "only git's smart HTTP protocol is served (git 1.6.6 or later)")
    repo = await run_in_threadpool(_lineage, state, repos, name)
    if isinstance(repo, Response):
        return repo
    body = await run_in_threadpool(git_http.advertise_refs, repo)
    return Response(body, media_type=git_http.ADVERTISEMENT_TYPE, headers=_NO_CACHE)


@router.post("/{name}/git-upload-pack")
async def upload_pack(name: str, request: Request, state: StateDep, repos: LineageReposDep) -> Response:
    if request.headers.get("content-type") != git_http.REQUEST_TYPE:
        return _refuse(415, f"expected Content-Type {git_http.REQUEST_TYPE}")
    try:
        wants = git_http.decode_request(await request.body(), request.headers.get("content-encoding"))
    except git_http.RequestTooLarge as exc:
        return _refuse(413, str(exc))
    except ValueError as exc:
        return _refuse(400, str(exc))
    repo = await run_in_threadpool(_lineage, state, repos, name)
    if isinstance(repo, Response):
        return repo
    try:
        body = await run_in_threadpool(git_http.upload_pack, repo, wants)
    except GitProtocolError as exc:
        # Most often a want the lineage no longer has: a head revoked since the client read the refs.
        return _refuse(400, f"cannot serve this fetch ({exc}); fetch again")
    return Response(body, media_type=git_http.RESULT_TYPE, headers=_NO_CACHE)


@router.post("/{name}/git-receive-pack")
async def receive_pack(name: str) -> Response:
    return _refuse(403, _READ_ONLY)
