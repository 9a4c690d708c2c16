"""The AWS provider's conformance profile: moto's server on a free loopback port, started for the run.

moto answers every API this provider calls, with three gaps the profile says so about: RDS and ElastiCache
endpoints have no server behind them (the suite's stand-ins, a real PostgreSQL and a real Redis, take their
place in the runtime config), ECS runs no task, and Scheduler never fires (``run_cron_job`` does what a
schedule's task does).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

REGION = "us-east-1"
CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": REGION,
}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextmanager
def moto_server() -> Iterator[str]:
    """moto's server on 127.0.0.1 and a free port, until the block ends; yields its URL."""
    port = free_port()
    executable = Path(sys.executable).with_name("moto_server")
    command = [str(executable)] if executable.exists() else [sys.executable, "-m", "moto.server"]
    process = subprocess.Popen(
        [*command, "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        # ACM issues a certificate requested with DNS validation a second after the request (AWS: once
        # the validation record resolves), so an apply sees it pending first
        env={**os.environ, "MOTO_ACM_VALIDATION_WAIT": "1"},
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


def settings(endpoint: str) -> dict[str, Any]:
    """Provider settings for moto's server at ``endpoint``: no long waits, no engine version listing."""
    return {
        "region": REGION,
        "endpoint_url": endpoint,
        "emulator": "moto",
        "wait_delay": 0.01,
        "wait_timeout": 30,
        "sql_engine_version": "17.4",
        "max_attempts": 2,
        "image": "skyrig/app:test",
    }


@contextmanager
def profile() -> Iterator[Any]:
    """The profile ``skyrig conformance aws`` and the provider's tests use."""
    from skyrig_conformance import Profile, stand_ins

    with moto_server() as endpoint:
        yield Profile(
            provider="aws",
            environment_type="development",
            settings=settings(endpoint),
            environ={**CREDENTIALS, "SKYRIG_AWS_POLL_SECONDS": "1"},
            stand_ins={"sql_database": stand_ins.postgres(), "cache_cluster": stand_ins.redis()},
            limits={
                "objects.signed_url_tampering": "moto does not verify the signatures of presigned URLs",
                "lifecycle.recreate_after_destroy": (
                    "moto never finishes deleting ElastiCache replication groups and users, so their names "
                    "cannot be taken again within one emulator run"
                ),
            },
        )
