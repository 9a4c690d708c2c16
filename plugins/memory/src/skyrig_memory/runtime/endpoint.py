"""The object endpoint: public and signed bucket URLs of the memory cloud, served over HTTP.

The memory cloud has no server of its own, so the process that asks for a URL serves it: a small HTTP
server on 127.0.0.1 (a random port), started on first use in a daemon thread, reading and writing the
cloud's SQLite file. URLs therefore work while the process that issued them lives.

``GET /BUCKET/KEY`` reads an object: anyone may on a public bucket, otherwise only with a valid,
unexpired signature for GET. ``PUT /BUCKET/KEY`` writes one, only with a valid signature for PUT. A
signed URL carries ``expires`` (Unix time) and ``signature`` (:func:`skyrig_memory.storage.signature`).
"""

from __future__ import annotations

import hmac
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from skyrig_memory.cloud import open_cloud
from skyrig_memory.storage import Storage, check_key, signature

MAX_UPLOAD = 256 * 1024 * 1024
"""The largest body a PUT may carry, in bytes."""

_lock = threading.Lock()
_servers: dict[str, ObjectServer] = {}


def base_url(cloud: str) -> str:
    """The URL of this process's endpoint for the cloud at ``cloud``, started on first use."""
    with _lock:
        server = _servers.get(cloud)
        if server is None:
            server = _servers[cloud] = ObjectServer(Storage(open_cloud(cloud)))
        return server.url


class ObjectServer(ThreadingHTTPServer):
    """Serves one cloud's buckets on 127.0.0.1 until the process ends."""

    daemon_threads = True

    def __init__(self, storage: Storage) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.storage = storage
        self.url = f"http://127.0.0.1:{self.server_address[1]}"
        threading.Thread(target=self.serve_forever, name="skyrig-memory-objects", daemon=True).start()


class _Handler(BaseHTTPRequestHandler):
    server: ObjectServer

    def do_GET(self) -> None:
        self._serve("GET")

    def do_PUT(self) -> None:
        self._serve("PUT")

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the endpoint serves tests and development, not an audience."""

    def _serve(self, method: str) -> None:
        status, body = self._answer(method)
        self.send_response(status)
        self.send_header("Content-Type", "application/octet-stream" if status == 200 else "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _answer(self, method: str) -> tuple[int, bytes]:
        url = urlsplit(self.path)
        bucket, _, key = unquote(url.path).lstrip("/").partition("/")
        try:
            check_key(key)
        except ValueError:
            return 404, b"no such object\n"
        storage = self.server.storage
        found = storage.find(bucket)
        if found is None:
            return 404, b"no such bucket\n"
        bucket_id, properties = found
        params = {name: values[0] for name, values in parse_qs(url.query).items()}
        if "signature" in params:
            refused = _check_signature(storage.url_key(), method, bucket, key, params)
            if refused:
                return 403, refused
        elif method != "GET" or properties.get("public_access_blocked", True):
            return 403, f"bucket {bucket} is private: {method} needs a signed URL\n".encode()
        if method == "PUT":
            length = int(self.headers.get("Content-Length") or 0)
            if length > MAX_UPLOAD:
                return 413, b"the object is too large\n"
            storage.put(bucket_id, key, self.rfile.read(length))
            return 200, b""
        data = storage.get(bucket_id, key)
        return (404, b"no such object\n") if data is None else (200, data)


def _check_signature(key: bytes, method: str, bucket: str, name: str, params: dict[str, str]) -> bytes:
    """Why a signed request is refused, or empty bytes if its signature is valid and unexpired."""
    try:
        expires = int(params["expires"])
    except (KeyError, ValueError):
        return b"the signed URL has no valid expiry\n"
    if not hmac.compare_digest(signature(key, method, bucket, name, expires), params["signature"]):
        return b"the signature does not match\n"
    if expires < time.time():
        return b"the signed URL has expired\n"
    return b""
