"""moto's S3 server for tests: on ``127.0.0.1`` and a free port, with the environment that points boto3 at
it (fake credentials, a region, ``AWS_ENDPOINT_URL_S3``), so that every process started meanwhile reaches it.

Not imported by the store. The store's own tests and the engine's remote-state tests use it::

    with moto_s3() as endpoint:  # the environment points at it until the block ends
        boto3.client("s3").create_bucket(Bucket="state")
        url = "s3://state/shop"

It needs moto's server (``pip install 'moto[server]'``), which is not a dependency of this distribution.

moto checks a write's conditions (``If-None-Match``, ``If-Match``) and then writes, in two steps, and its
server answers requests on many threads: two writers racing to create one key can both succeed (seen once in
about 1,200 races), where S3 itself lets exactly one win. The store's locking rests on that guarantee, so the
server started here is moto's application with its writes taken one at a time (:class:`AtomicWrites`);
reads stay concurrent. ``python -m skyrig_state_s3.testing PORT`` runs it.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

ENVIRONMENT = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_REGION": "us-east-1",
}
"""Fake credentials and a region: moto takes any."""


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def moto_s3() -> Iterator[str]:
    """moto's server until the block ends, and ``os.environ`` pointing boto3 at it meanwhile (what was set
    before is put back after); yields its URL."""
    port = _free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "skyrig_state_s3.testing", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    saved = {key: os.environ.get(key) for key in [*ENVIRONMENT, "AWS_ENDPOINT_URL_S3", "AWS_PROFILE"]}
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"{url}/moto-api/", timeout=1):
                    break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"moto's server did not start on port {port}") from None
                time.sleep(0.05)
        os.environ.pop("AWS_PROFILE", None)
        os.environ.update({**ENVIRONMENT, "AWS_ENDPOINT_URL_S3": url})
        yield url
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


class AtomicWrites:
    """A WSGI middleware that lets one write (``PUT``, ``POST``, ``DELETE``) through at a time, its response
    read whole before the next begins: over moto, a conditional write is checked and made at once, as S3
    makes it."""

    WRITES = frozenset({"PUT", "POST", "DELETE"})

    def __init__(self, application: Any) -> None:
        self.application = application
        self.lock = threading.Lock()

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        if environ.get("REQUEST_METHOD") not in self.WRITES:
            return self.application(environ, start_response)
        with self.lock:
            response = self.application(environ, start_response)
            try:
                return [b"".join(response)]
            finally:
                getattr(response, "close", lambda: None)()


def serve(port: int) -> None:
    """moto's server application behind :class:`AtomicWrites`, on ``127.0.0.1:port``, until ended."""
    from moto.moto_server.werkzeug_app import (
        DomainDispatcherApplication,
        MotoRequestHandler,
        create_backend_app,
    )
    from werkzeug.serving import run_simple

    os.environ.setdefault("MOTO_PORT", str(port))
    run_simple(
        "127.0.0.1",
        port,
        AtomicWrites(DomainDispatcherApplication(create_backend_app)),
        threaded=True,
        request_handler=MotoRequestHandler,
    )


if __name__ == "__main__":
    serve(int(sys.argv[1]))
