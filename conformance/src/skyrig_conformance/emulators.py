"""Emulators that providers' conformance profiles and tests start: moto's server, for AWS's APIs."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

from skyrig.provider import free_port


@contextmanager
def moto_server(environ: Mapping[str, str] | None = None) -> Iterator[str]:
    """moto's server on 127.0.0.1 and a free port, until the block ends; yields its URL. ``environ`` is
    added to its environment: moto's own switches (``MOTO_ACM_VALIDATION_WAIT``, ...)."""
    port = free_port()
    executable = Path(sys.executable).with_name("moto_server")
    command = [str(executable)] if executable.exists() else [sys.executable, "-m", "moto.server"]
    process = subprocess.Popen(
        [*command, "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, **(environ or {})},
    )
    url = f"http://127.0.0.1:{port}"
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
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
