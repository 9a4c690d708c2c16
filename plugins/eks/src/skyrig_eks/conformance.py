"""The EKS provider's conformance profile: moto's server for EKS, IAM and EC2 (and for the aws provider
beside it, which keeps the network and the services' identities), and the FAKE Kubernetes API server of
:mod:`skyrig_kubernetes.fake` in place of the cluster's API (moto's clusters have no API server behind
their endpoints): the ``kubernetes_endpoint`` setting points the provider at it, with its token in
``EKS_KUBERNETES_TOKEN``. Neither is AWS or Kubernetes: moto answers the control plane's calls, the FAKE
validates every object against the official Kubernetes schemas and rolls Deployments out after a delay.

The suite's app declares only services (the kind EKS provisions); every other family is the aws
provider's, as in a real environment.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from skyrig.provider import free_port
from skyrig_eks.settings import TOKEN_VARIABLE

REGION = "us-east-1"
CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": REGION,
}
"""Credentials the AWS SDK wants, even for moto."""

FAMILIES = {family: "aws" for family in ("sql", "pubsub", "cache", "cron", "objects", "secrets")}
"""Who provisions the other families in the suite's environments."""


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
        # AWS's managed policies (AmazonEKSClusterPolicy, ...): moto loads them only when asked
        env={**os.environ, "MOTO_IAM_LOAD_MANAGED_POLICIES": "true"},
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


def aws_settings(endpoint: str) -> dict[str, Any]:
    """The aws provider's settings for moto's server (short waits, a fixed PostgreSQL version)."""
    return {
        "region": REGION,
        "endpoint_url": endpoint,
        "emulator": "moto",
        "wait_delay": 0.01,
        "wait_timeout": 30,
        "sql_engine_version": "17.4",
        "max_attempts": 2,
    }


def settings(kubernetes_url: str) -> dict[str, Any]:
    """EKS settings for moto's server (the aws provider's endpoint, inherited) and the FAKE API server."""
    return {
        "kubernetes_endpoint": kubernetes_url,
        "image": "skyrig/app:test",
        "wait_delay": 0.01,
        "wait_timeout": 30,
        "rollout_timeout": 60,
        "max_attempts": 2,
    }


def profile_for(moto: str, kubernetes: Any) -> Any:
    """The suite's profile on moto's server at ``moto`` and a started FAKE ``kubernetes``."""
    from skyrig_conformance import Profile

    return Profile(
        provider="eks",
        environment_type="development",
        settings=settings(kubernetes.url),
        environ={**CREDENTIALS, TOKEN_VARIABLE: kubernetes.token, "SKYRIG_AWS_POLL_SECONDS": "1"},
        families=FAMILIES,
        beside={"aws": aws_settings(moto)},
    )


@contextmanager
def profile() -> Iterator[Any]:
    """The profile ``skyrig conformance eks`` and the provider's tests use."""
    from skyrig_kubernetes.fake import FakeKubernetes

    # pods are ready 0.2 s after they are made and a rollout fails after ten times that: shorter, a busy
    # machine's controller thread lags past the deadline
    with moto_server() as moto, FakeKubernetes(rollout_seconds=0.2) as kubernetes:
        yield profile_for(moto, kubernetes)
