"""Git's smart HTTP protocol, fetch side only, over a repository held in memory.

dulwich's upload-pack does the protocol (ref advertisement, want/have negotiation, packing);
this module only feeds it a request body and collects its answer, the way dulwich's own WSGI
server does (dulwich/web.py), so the coordinator's ASGI routes stay free of protocol detail.
Each call answers one stateless request: git's HTTP transport carries no session between them.

Answers are built whole in memory. A lineage's pack is its sources, delta-compressed: small.
"""

from __future__ import annotations

import io
import zlib

from dulwich.protocol import CAPABILITY_SHALLOW, ReceivableProtocol
from dulwich.repo import MemoryRepo
from dulwich.server import Backend, BackendRepo, UploadPackHandler

UPLOAD_PACK = "git-upload-pack"
ADVERTISEMENT_TYPE = f"application/x-{UPLOAD_PACK}-advertisement"
REQUEST_TYPE = f"application/x-{UPLOAD_PACK}-request"
RESULT_TYPE = f"application/x-{UPLOAD_PACK}-result"
# A negotiation lists the client's wants and haves: kilobytes, even for a deep lineage. The cap
# keeps a gzip bomb from inflating in memory.
MAX_REQUEST_BYTES = 8 * 1024 * 1024


class RequestTooLarge(ValueError):
    """The (decompressed) request body is over MAX_REQUEST_BYTES."""


class _OneRepo(Backend):
    """dulwich opens the repository by path; there is only ever the one in hand."""

    def __init__(self, repo: MemoryRepo) -> None:
        self.repo = repo

    def open_repository(self, path: str) -> BackendRepo:
        return self.repo  # type: ignore[return-value]


class _UploadPack(UploadPackHandler):
    """dulwich's upload-pack, adjusted to what it can honour over stateless HTTP.

    No `shallow`: a later fetch into a shallow clone sends no `deepen` line, which dulwich
    requires, so git is told up front (it refuses `--depth` with a clear message). A `filter`
    (partial clone) is accepted but not applied: the clone's later fetch of a missing blob would
    want an object that is no ref's tip, which dulwich refuses. A lineage is small: it is always
    sent whole.
    """

    def capabilities(self) -> list[bytes]:
        return [c for c in super().capabilities() if c != CAPABILITY_SHALLOW]

    @property
    def filter_spec(self) -> None:
        return None

    @filter_spec.setter
    def filter_spec(self, _requested: object) -> None:
        pass


def _serve(repo: MemoryRepo, request: bytes, *, advertise: bool) -> bytes:
    out = io.BytesIO()

    def write(data: bytes) -> int:
        return out.write(data)

    proto = ReceivableProtocol(io.BytesIO(request).read, write)
    handler = _UploadPack(_OneRepo(repo), ["/"], proto, stateless_rpc=True, advertise_refs=advertise)
    if advertise:
        proto.write_pkt_line(f"# service={UPLOAD_PACK}\n".encode())
        proto.write_pkt_line(None)
    handler.handle()
    return out.getvalue()


def advertise_refs(repo: MemoryRepo) -> bytes:
    """The body of `GET info/refs?service=git-upload-pack`: the refs, HEAD's symref, capabilities."""
    return _serve(repo, b"", advertise=True)


def upload_pack(repo: MemoryRepo, request: bytes) -> bytes:
    """The body answering `POST git-upload-pack`: negotiation acknowledgements and the pack."""
    return _serve(repo, request, advertise=False)


def decode_request(body: bytes, content_encoding: str | None) -> bytes:
    """The request as git meant it: git gzips large negotiation bodies."""
    if (content_encoding or "").strip().lower() not in ("gzip", "x-gzip"):
        if len(body) > MAX_REQUEST_BYTES:
            raise RequestTooLarge(f"the request is over {MAX_REQUEST_BYTES} bytes")
        return body
    inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
    try:
        data = inflater.decompress(body, MAX_REQUEST_BYTES + 1)
    except zlib.error as exc:
        raise ValueError(f"the gzip request body is corrupt: {exc}") from exc
    if len(data) > MAX_REQUEST_BYTES:
        raise RequestTooLarge(f"the request inflates to over {MAX_REQUEST_BYTES} bytes")
    return data
