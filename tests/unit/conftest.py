"""Fixtures the unit tests share."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from shared.signing import SigningKey


@pytest.fixture
def impostor() -> Iterator[str]:
    """A real HTTP server answering /v1/info with a key no worker pinned: `worker join` stops there,
    before it registers or asks for a lease."""
    body = json.dumps(
        {"name": "x", "version": "0.1.0", "protocol": "v1", "public_key": SigningKey.generate().public_key}
    )

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(body.encode())

        def log_message(self, *_args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
