"""The GKE provider's conformance profile: the GCP provider's own profile (its FAKE of the Google APIs,
Kubernetes Engine's among them, and its emulators) for every family but compute, and skyrig's FAKE
Kubernetes API server (:mod:`skyrig_kubernetes.fake`, not Kubernetes: no API server can run here) in
place of the cluster's, whose endpoint the FAKE GKE answers with but serves nothing at.

The GCP provider's settings are the profile's ``beside`` (written as its ``[env.NAME.gcp]`` tables). Cron
stays on the memory provider: the suite's app has no cron job beside gke, and GCP's cron beside another
compute provider needs a domain.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from skyrig_gke.settings import TOKEN_VARIABLE

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
        environ={**gcp.environ, TOKEN_VARIABLE: kubernetes.token},
        families=families(),
        beside={"gcp": dict(gcp.settings)},
    )


@contextmanager
def profile() -> Iterator[Any]:
    """The profile ``skyrig conformance gke`` and the provider's tests use."""
    from skyrig_conformance.profile import load_factory

    with load_factory("gcp")() as gcp, cluster() as kubernetes:
        yield profile_for(gcp, kubernetes)
