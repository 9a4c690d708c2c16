"""The GKE provider's conformance profile: the GCP provider's own profile (its FAKE of the Google APIs,
Kubernetes Engine's among them, and its emulators) for every family but compute, and skyrig's FAKE
Kubernetes API server (:mod:`skyrig_kubernetes.fake`, not Kubernetes: no API server can run here) in
place of the cluster's, whose endpoint the FAKE GKE answers with but serves nothing at.

The suite writes only the provider under test's settings into ``skyrig.toml``; the GCP provider's reach
its environments through ``SKYRIG_ENV__<ENV>__GCP`` variables (a JSON table each), as any setting can. A
variable names an environment in every app of the process, so the environments the suite adds to some
apps only (the fault tests' ``fault-N``) are given whole, as a JSON table of the environment. Cron stays on
the memory provider: GCP schedules only services it runs.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from skyrig_gke.settings import TOKEN_VARIABLE

ENVIRONMENTS = ("conformance", "conformance-b")
"""The environments of every app of the suite."""


def added_environments() -> list[str]:
    """The environments the suite's fault tests add to their apps (``SKYRIG_FAULT_KILLS`` + 1 of them)."""
    return [f"fault-{index}" for index in range(int(os.environ.get("SKYRIG_FAULT_KILLS", "4")) + 1)]


KUBERNETES_VERSION = "1.34"
"""The Kubernetes version of the FAKE API server: the one GKE's REGULAR channel runs."""


def families() -> dict[str, str]:
    """Every family but compute on GCP, and cron on memory."""
    from skyrig.provider import FAMILIES

    found = {family: "gcp" for family in FAMILIES if family != "compute"}
    found["cron"] = "memory"
    return found


def settings(gcp: dict[str, Any], kubernetes: str) -> dict[str, Any]:
    """GKE's settings beside the GCP profile's ``gcp`` settings (whose project and region it takes), with
    the FAKE Kubernetes at ``kubernetes``: no long waits."""
    endpoints = gcp["endpoints"]
    return {
        "endpoints": {api: endpoints[api] for api in ("container", "iam", "compute", "run")},
        "emulator": "fake",
        "kubernetes_endpoint": kubernetes,
        "image": "us-central1-docker.pkg.dev/skyrig-conformance/app/app:test",
        "rollout_timeout": 30,
        "wait_delay": 0.05,
        "wait_timeout": 30,
        "max_attempts": 2,
    }


def gcp_variable(environment: str) -> str:
    """The variable that holds the GCP provider's settings of ``environment``."""
    return f"SKYRIG_ENV__{environment.upper()}__GCP"


def environ(gcp: Any, kubernetes: Any) -> dict[str, str]:
    """The process environment: the GCP profile's, its settings per environment, the FAKE's token."""
    table = json.dumps(dict(gcp.settings))
    whole = json.dumps(
        {
            "type": "development",
            "provider": "gke",
            **families(),
            "gke": settings(dict(gcp.settings), kubernetes.url),
            "gcp": dict(gcp.settings),
        }
    )
    found = {**gcp.environ, TOKEN_VARIABLE: kubernetes.token}
    found |= {gcp_variable(name): table for name in ENVIRONMENTS}
    found |= {f"SKYRIG_ENV__{name.upper()}": whole for name in added_environments()}
    return found


@contextmanager
def cluster() -> Iterator[Any]:
    """The FAKE Kubernetes API server until the block ends."""
    from skyrig_kubernetes.fake import FakeKubernetes

    with FakeKubernetes(version=KUBERNETES_VERSION, rollout_seconds=0.1) as fake:
        yield fake


def profile_for(gcp: Any, kubernetes: Any) -> Any:
    """The suite's profile on the GCP profile ``gcp`` and the FAKE Kubernetes ``kubernetes``. The suite's
    app declares only services here, so none of the GCP profile's stand-ins and limits (of its databases,
    caches, buckets) apply."""
    from skyrig_conformance import Profile

    return Profile(
        provider="gke",
        environment_type="development",
        settings=settings(dict(gcp.settings), kubernetes.url),
        environ=environ(gcp, kubernetes),
        families=families(),
    )


@contextmanager
def profile() -> Iterator[Any]:
    """The profile ``skyrig conformance gke`` and the provider's tests use."""
    from skyrig_conformance.profile import load_factory

    with load_factory("gcp")() as gcp, cluster() as kubernetes:
        yield profile_for(gcp, kubernetes)
