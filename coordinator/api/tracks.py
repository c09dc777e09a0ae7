from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import FileResponse
from pydantic import RootModel

from coordinator.api.deps import SessionDep, StateDep
from coordinator.errors import DomainError
from coordinator.read_cache import ALL_TRACKS, track_scope
from coordinator.services import views
from coordinator.services.tracks import get_track, list_tracks, track_asset_hashes
from coordinator.services.variants import get_variant
from shared.protocol import (
    ErrorCode,
    Leaderboard,
    ResearchLog,
    TrackDetail,
    TrackSummary,
    VariantDetail,
    VariantStatus,
)

router = APIRouter(tags=["tracks"])


class TrackList(RootModel[list[TrackSummary]]):
    pass


@router.get("/tracks")
def tracks(session: SessionDep, state: StateDep) -> list[TrackSummary]:
    def compute() -> TrackList:
        return TrackList([views.track_summary(session, track) for track in list_tracks(session)])

    return state.read_cache.read(ALL_TRACKS, "tracks", (), TrackList, compute).root


@router.get("/tracks/{track_id}")
def track(track_id: str, session: SessionDep, state: StateDep) -> TrackDetail:
    return state.read_cache.read(
        track_scope(track_id), "detail", (), TrackDetail, lambda: views.track_detail(session, get_track(session, track_id))
    )


@router.get(
    "/tracks/{track_id}/assets/{sha256}",
    response_class=FileResponse,
    responses={
        200: {
            "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}},
            "description": "The asset's bytes, whose sha256 is the path's (the worker checks it).",
        },
        206: {
            "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}},
            "description": "The bytes a `Range: bytes=N-` header asked for, so an interrupted download"
            " resumes; `Content-Range: bytes N-LAST/SIZE` says where they lie.",
        },
        416: {"description": "The range starts at or past the end; `Content-Range: bytes */SIZE` gives the size."},
    },
)
def asset(track_id: str, sha256: str, session: SessionDep, state: StateDep) -> FileResponse:
    # Only a track's own assets are served, so the asset store is not a general file server.
    if sha256 not in track_asset_hashes(get_track(session, track_id)):
        raise DomainError(ErrorCode.not_found, f"track {track_id} has no asset {sha256[:12]}")
    path = state.settings.assets_dir / sha256
    if not path.is_file():
        raise DomainError(ErrorCode.internal, f"asset {sha256[:12]} is missing from the asset store")
    # FileResponse answers Range itself (206 with Content-Range, 416 past the end); the ETag is the
    # content address, so an If-Range from any earlier download of these bytes still matches.
    return FileResponse(path, media_type="application/octet-stream", headers={"ETag": f'"{sha256}"'})


@router.get("/tracks/{track_id}/leaderboard")
def leaderboard(
    track_id: str, session: SessionDep, state: StateDep, limit: Annotated[int, Query(ge=1, le=1000)] = 100
) -> Leaderboard:
    return state.read_cache.read(
        track_scope(track_id), "leaderboard", limit, Leaderboard,
        lambda: views.leaderboard(session, get_track(session, track_id), limit=limit),
    )  # fmt: skip


@router.get("/tracks/{track_id}/head")
def head(track_id: str, session: SessionDep, state: StateDep) -> VariantDetail:
    def compute() -> VariantDetail:
        track = get_track(session, track_id)
        if track.head is None:
            raise DomainError(ErrorCode.unknown_variant, f"track {track_id} has no head yet")
        return views.variant_detail(session, track.head)

    return state.read_cache.read(track_scope(track_id), "head", (), VariantDetail, compute)


@router.get("/tracks/{track_id}/log")
def research_log(
    track_id: str,
    session: SessionDep,
    state: StateDep,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    cursor: Annotated[
        str | None, Query(pattern=views.CURSOR_PATTERN, description="The next_cursor of the previous page.")
    ] = None,
    status: Annotated[VariantStatus | None, Query(description="Only experiments with this outcome.")] = None,
    lineage: Annotated[
        str | None, Query(description="Only experiments made from this variant or its ancestors.")
    ] = None,
    compact: Annotated[bool, Query(description="Short entries for agent prompts.")] = False,
) -> ResearchLog:
    def compute() -> ResearchLog:
        track = get_track(session, track_id)
        lineage_of = get_variant(session, lineage, track_id=track_id) if lineage else None
        return views.research_log(
            session, track, limit=limit, cursor=cursor, status=status, lineage_of=lineage_of, compact=compact
        )

    params = (limit, cursor, status, lineage, compact)
    return state.read_cache.read(track_scope(track_id), "log", params, ResearchLog, compute)


@router.get("/variants/{variant_hash}")
def variant(variant_hash: str, session: SessionDep, state: StateDep, track_id: str | None = None) -> VariantDetail:
    # Without a track, the hash may name a variant of any track: any track's change invalidates it.
    scope = track_scope(track_id) if track_id is not None else ALL_TRACKS
    return state.read_cache.read(
        scope, "variant", variant_hash, VariantDetail,
        lambda: views.variant_detail(session, get_variant(session, variant_hash, track_id=track_id)),
    )  # fmt: skip
