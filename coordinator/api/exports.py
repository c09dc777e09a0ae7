"""Exports of a track for researchers: autoresearch's results.tsv and the verified lineage."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import PlainTextResponse, Response

from coordinator.api.deps import LineageReposDep, SessionDep
from coordinator.services import exports
from coordinator.services.tracks import get_track
from shared.protocol import TrackLineage

router = APIRouter(tags=["exports"])

TSV = "text/tab-separated-values"
_RESULTS_EXAMPLE = "commit\tval_bpb\tmemory_gb\tstatus\tdescription\n1a2b3c4\t0.997900\t44.0\tkeep\tbaseline\n"


@router.get(
    "/tracks/{track_id}/results.tsv",
    # A response class without a media type of its own: the schema then lists the 200's type alone
    # (not text/plain beside it), and the error answers keep their application/json.
    response_class=Response,
    responses={
        200: {
            "description": "Every finished experiment, oldest first and the baseline first, as autoresearch's"
            " results.tsv: `commit` (7 hex digits of the variant's commit on the track's git lineage for a kept"
            " one, of the variant's hash for the others), `val_bpb` (6 decimals; 0 for a"
            " crash), `memory_gb` (peak memory, 1 decimal; 0 for a crash), `status` (keep, discard or"
            " crash) and `description` (the hypothesis on one line).",
            "content": {TSV: {"schema": {"type": "string"}, "example": _RESULTS_EXAMPLE}},
        }
    },
)
def results_tsv(track_id: str, session: SessionDep, repos: LineageReposDep) -> PlainTextResponse:
    track = get_track(session, track_id)
    body = exports.results_tsv(session, track, repos.commit_ids(session, track))
    return PlainTextResponse(body, media_type=TSV, headers={"Content-Disposition": 'inline; filename="results.tsv"'})


@router.get("/tracks/{track_id}/lineage")
def lineage(track_id: str, session: SessionDep) -> TrackLineage:
    """The verified variants from the baseline to the head: the commits of the track's `main`."""
    return exports.track_lineage(session, get_track(session, track_id))
