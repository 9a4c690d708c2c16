"""HTTPS listeners of the FAKE ARM (:mod:`skyrig_azure.fake`): one for ARM, one per Key Vault's data plane.

Each is a :class:`ThreadingHTTPServer` on 127.0.0.1 and a free port, speaking HTTP/1.1 with keep-alive
over TLS (azure-core's bearer-token policies refuse plain http) with a certificate for 127.0.0.1 from the
fake's own ``trustme`` CA. The TLS handshake runs in the connection's own thread, so a slow client does
not hold the others up.
"""

from __future__ import annotations

import contextlib
import json
import socket
import ssl
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

#: ``answer(method, path, headers, payload) -> (status, headers, body)``; a body that is not bytes is JSON.
Answer = Callable[[str, str, dict[str, str], bytes], tuple[int, dict[str, str], Any]]


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: Listener

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        payload = self.rfile.read(length) if length else b""
        headers = {key.lower(): value for key, value in self.headers.items()}
        status, extra, body = self.server.answer(self.command, self.path, headers, payload)
        if body is None or status == 204 or self.command == "HEAD":
            data = b""
        elif isinstance(body, bytes):
            data = body
        else:
            data = json.dumps(body).encode()
        self.send_response(status)
        if data:
            self.send_header("Content-Type", "application/json; charset=utf-8")
        for key, value in extra.items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if data:
            self.wfile.write(data)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = _answer

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the fake's calls are in :attr:`FakeAzure.calls <skyrig_azure.fake.FakeAzure.calls>`."""


class Listener(ThreadingHTTPServer):
    """One HTTPS listener on 127.0.0.1, answering every request with ``answer``."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, answer: Answer, context: ssl.SSLContext, name: str) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.answer = answer
        self.context = context
        self._connections: set[socket.socket] = set()
        self._guard = threading.Lock()
        self.thread = threading.Thread(
            target=self.serve_forever, kwargs={"poll_interval": 0.05}, name=name, daemon=True
        )

    @property
    def port(self) -> int:
        """The port it listens on."""
        return int(self.server_address[1])

    @property
    def url(self) -> str:
        """``https://127.0.0.1:PORT``."""
        return f"https://127.0.0.1:{self.port}"

    def start(self) -> Listener:
        """Serves in a daemon thread; answers itself."""
        self.thread.start()
        return self

    def get_request(self) -> tuple[Any, Any]:
        sock, address = self.socket.accept()
        return self.context.wrap_socket(sock, server_side=True, do_handshake_on_connect=False), address

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._guard:
            self._connections.add(request)
        super().process_request(request, client_address)

    def finish_request(self, request: Any, client_address: Any) -> None:
        request.settimeout(10)
        try:
            request.do_handshake()
        except (ssl.SSLError, OSError):
            return
        request.settimeout(None)
        super().finish_request(request, client_address)

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
