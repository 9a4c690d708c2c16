"""The HTTP listener of the FAKE Neon API (:mod:`skyrig_neon.fake`): a :class:`ThreadingHTTPServer` on
127.0.0.1 and a free port, HTTP/1.1 with keep-alive, plain http (the fake has no TLS)."""

from __future__ import annotations

import contextlib
import json
import socket
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

#: ``answer(method, path, headers, payload) -> (status, body)``; a body that is not None is JSON.
Answer = Callable[[str, str, dict[str, str], bytes], tuple[int, Any]]


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: Listener

    def setup(self) -> None:
        super().setup()
        # headers and body go in two writes: without this, each answer waits for the client's delayed ACK
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        payload = self.rfile.read(length) if length else b""
        headers = {key.lower(): value for key, value in self.headers.items()}
        status, body = self.server.answer(self.command, self.path, headers, payload)
        data = b"" if body is None or status == 204 else json.dumps(body).encode()
        self.send_response(status)
        if data:
            self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if data:
            self.wfile.write(data)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = _answer

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the fake's calls are in ``FakeNeon.calls``."""


class Listener(ThreadingHTTPServer):
    """One HTTP listener on 127.0.0.1, answering every request with ``answer``."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, answer: Answer) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.answer = answer
        self._connections: set[socket.socket] = set()
        self._guard = threading.Lock()
        self.thread = threading.Thread(
            target=self.serve_forever, kwargs={"poll_interval": 0.05}, name="fake-neon-api", daemon=True
        )

    @property
    def port(self) -> int:
        """The port it listens on."""
        return int(self.server_address[1])

    def start(self) -> Listener:
        """Serves in a daemon thread; answers itself."""
        self.thread.start()
        return self

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
