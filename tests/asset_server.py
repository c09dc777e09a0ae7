"""A small real HTTP server that serves assets as the coordinator's asset route does, with faults.

It answers `GET .../assets/<sha256>`: a `Range: bytes=N-` with 206 and Content-Range, a range
past the end with 416 and `Content-Range: bytes */SIZE`. It can cut its next answers short (the
network going away mid-download), ignore Range (answer 200 with everything), or flip a byte.
It records the Range of every request and counts every body byte it sends.
"""

from __future__ import annotations

import contextlib
import re
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class AssetServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, assets: dict[str, bytes]) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.assets = assets
        self.ranges: list[str | None] = []  # the Range header of each request, None when absent
        self.served = 0  # body bytes sent, over all answers
        self.cuts_left = 0  # this many answers are cut after `cut_after` bytes
        self.cut_after = 0
        self.honour_ranges = True
        self.corrupt_left = 0  # this many answers carry a wrong first byte
        self.lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


@contextlib.contextmanager
def serving(assets: dict[str, bytes]) -> Iterator[AssetServer]:
    server = AssetServer(assets)
    thread = threading.Thread(target=server.serve_forever, name="asset-server", daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: AssetServer

    def log_message(self, format: str, *args: object) -> None:  # keeps the test output readable
        pass

    def do_GET(self) -> None:
        server = self.server
        data = server.assets.get(self.path.rsplit("/", 1)[-1])
        asked = self.headers.get("Range")
        with server.lock:
            server.ranges.append(asked)
            corrupt = server.corrupt_left > 0
            server.corrupt_left -= corrupt
            cut = server.cuts_left > 0
            server.cuts_left -= cut
        if data is None:
            self._answer(404, b'{"code": "not_found", "message": "no such asset"}', cut=False)
            return
        if corrupt:
            data = bytes([data[0] ^ 0xFF]) + data[1:]
        start = 0
        headers = {"Accept-Ranges": "bytes"} if server.honour_ranges else {}
        if asked is not None and server.honour_ranges:
            match = re.fullmatch(r"bytes=(\d+)-", asked)
            assert match is not None, f"the worker asked for an unexpected range: {asked}"
            start = int(match.group(1))
            if start >= len(data):
                self._answer(416, b"", cut=False, headers={"Content-Range": f"bytes */{len(data)}"})
                return
            headers["Content-Range"] = f"bytes {start}-{len(data) - 1}/{len(data)}"
        self._answer(206 if "Content-Range" in headers else 200, data[start:], cut=cut, headers=headers)

    def _answer(self, status: int, body: bytes, *, cut: bool, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        sent = body[: self.server.cut_after] if cut else body
        self.wfile.write(sent)
        self.wfile.flush()
        with self.server.lock:
            self.server.served += len(sent)
        if cut:
            self.close_connection = True
            with contextlib.suppress(OSError):
                self.connection.shutdown(socket.SHUT_RDWR)
