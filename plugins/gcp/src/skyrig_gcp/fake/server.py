"""The FAKE Google APIs' HTTP listeners (:mod:`skyrig_gcp.fake`): one per API, each on its own port.

One port per API keeps routing unambiguous: Cloud SQL Admin's paths start with ``v1/projects/`` as Secret
Manager's do, and the discovery-based clients use a document's ``rootUrl`` + ``servicePath`` where the
google-cloud-* libraries use their own hosts. Each listener is a :class:`ThreadingHTTPServer` bound to
127.0.0.1 on a free port, speaking HTTP/1.1 with keep-alive; it hands every request to
:meth:`FakeGcp.dispatch <skyrig_gcp.fake.FakeGcp.dispatch>`.
"""

from __future__ import annotations

import contextlib
import json
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from skyrig_gcp.fake.core import FakeGcp


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: ApiListener

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        payload = self.rfile.read(length) if length else b""
        method = self.headers.get("X-HTTP-Method-Override") or self.command
        status, body = self.server.fake.dispatch(self.server.api, method, self.path, payload)
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=UTF-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _answer

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the fake's calls are in :attr:`FakeGcp.calls <skyrig_gcp.fake.FakeGcp.calls>`."""


class ApiListener(ThreadingHTTPServer):
    """One API's listener on 127.0.0.1 (a free port unless one is given)."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, fake: FakeGcp, api: str, port: int = 0) -> None:
        super().__init__(("127.0.0.1", port), _Handler)
        self.fake = fake
        self.api = api
        self._connections: set[socket.socket] = set()
        self._guard = threading.Lock()
        self.thread = threading.Thread(
            target=self.serve_forever, kwargs={"poll_interval": 0.05}, name=f"fake-gcp-{api}", daemon=True
        )

    @property
    def port(self) -> int:
        """The port it listens on."""
        return int(self.server_address[1])

    def start(self) -> None:
        """Serves in a daemon thread."""
        self.thread.start()

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._guard:
            self._connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self._guard:
            self._connections.discard(request)
        super().shutdown_request(request)

    def stop(self) -> None:
        """Stops serving, closes the socket and ends the clients' kept-alive connections."""
        self.shutdown()
        self.server_close()
        with self._guard:
            open_connections = list(self._connections)
        for connection in open_connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)
        self.thread.join(timeout=5)
