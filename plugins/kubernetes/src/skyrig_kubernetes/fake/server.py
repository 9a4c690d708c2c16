"""The HTTP listener of the FAKE Kubernetes API server (:mod:`skyrig_kubernetes.fake`).

A :class:`ThreadingHTTPServer` bound to 127.0.0.1 on a free port, speaking HTTP/1.1 with keep-alive (over
TLS when given an SSL context), in a daemon thread; it hands every request to :meth:`FakeKubernetes.dispatch
<skyrig_kubernetes.fake.FakeKubernetes.dispatch>` and writes the JSON it answers. Stopping it also ends the
clients' kept-alive connections, so no thread outlives the fake.
"""

from __future__ import annotations

import contextlib
import json
import socket
import ssl
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any

from skyrig_kubernetes.fake.watch import WatchStream

if TYPE_CHECKING:
    from skyrig_kubernetes.fake.core import FakeKubernetes


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # headers and body go out in two writes: without TCP_NODELAY every kept-alive request waits ~40 ms
    disable_nagle_algorithm = True
    server: Listener

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        payload = self.rfile.read(length) if length else b""
        status, body = self.server.fake.dispatch(self.command, self.path, dict(self.headers.items()), payload)
        if isinstance(body, WatchStream):
            self._stream(body)
            return
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _stream(self, events: WatchStream) -> None:
        """A watch: chunked, one JSON event per line, until the watch ends."""
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        try:
            for event in events:
                line = json.dumps(event).encode() + b"\n"
                self.wfile.write(f"{len(line):X}\r\n".encode() + line + b"\r\n")
                self.wfile.flush()
            self.wfile.write(b"0\r\n\r\n")
        except OSError:
            self.close_connection = True

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = _answer

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the requests are in :attr:`FakeKubernetes.calls`."""


class Listener(ThreadingHTTPServer):
    """The fake's listener on 127.0.0.1, on a free port."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, fake: FakeKubernetes, tls: ssl.SSLContext | None = None) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        if tls is not None:
            # the handshake happens in the request's thread, on its first read, not in the accepting one
            self.socket = tls.wrap_socket(self.socket, server_side=True, do_handshake_on_connect=False)
        self.fake = fake
        self._connections: set[socket.socket] = set()
        self._guard = threading.Lock()
        self.thread = threading.Thread(
            target=self.serve_forever, kwargs={"poll_interval": 0.05}, name="fake-kubernetes", daemon=True
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
