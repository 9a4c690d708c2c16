"""The GCP provider's conformance profile: emulators where Google ships or the community keeps one, and
skyrig's strict FAKE (:mod:`skyrig_gcp.fake`) for the APIs without one.

- Cloud Storage: fake-gcs-server (through ``skyrig_state_gcs.testing``, which the gs:// store's tests share),
  which honours generation preconditions.
- Pub/Sub: the Pub/Sub emulator of the Google Cloud SDK (``gcloud beta emulators pubsub start``), where this
  machine has it; without it, the profile says so and the Pub/Sub checks are skipped with that reason.
- Cloud SQL Admin, Cloud Run, Secret Manager, Memorystore, IAM, Resource Manager, Compute, Service
  Networking, Service Usage, Cloud Scheduler, Artifact Registry (and Kubernetes Engine, for GKE): the
  FAKE, which checks every request against the API's discovery document and answers long-running
  operations after a delay. The databases and caches it reports have no server behind them: the suite's
  stand-ins (a real PostgreSQL, a real Redis) take their place in the runtime config, as on AWS with moto.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

PROJECT = "skyrig-conformance"
"""The configured project the suite provisions in (the fake knows it from the start)."""
REGION = "us-central1"

DISCOVERY_APIS = ("sqladmin", "compute", "iam", "cloudresourcemanager", "servicenetworking", "serviceusage")
LIBRARY_APIS = ("run", "secretmanager", "redis", "cloudscheduler", "artifactregistry")
BESIDE_APIS = ("container",)
"""The FAKE's APIs that only a compute provider beside GCP calls (GKE's control plane): in the profile's
endpoints too, so that such a provider's profile, built on this one, finds them."""


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def pubsub_emulator_command() -> list[str] | None:
    """How to start the Pub/Sub emulator here (``gcloud``'s), or ``None`` where it is absent."""
    gcloud = shutil.which("gcloud")
    if gcloud is None:
        return None
    return [gcloud, "beta", "emulators", "pubsub", "start"]


@contextmanager
def pubsub_emulator() -> Iterator[str]:
    """The Pub/Sub emulator on 127.0.0.1 and a free port until the block ends; yields ``HOST:PORT`` (what
    ``PUBSUB_EMULATOR_HOST`` takes). Raises ``RuntimeError`` where it cannot start."""
    command = pubsub_emulator_command()
    if command is None:
        raise RuntimeError("the Pub/Sub emulator needs the Google Cloud SDK's gcloud, which is not installed")
    host = f"127.0.0.1:{_free_port()}"
    with tempfile.TemporaryDirectory(prefix="skyrig-pubsub-") as folder:
        data = Path(folder) / "data"
        data.mkdir()
        environ = {
            **os.environ,
            "CLOUDSDK_CONFIG": str(Path(folder) / "config"),
            "CLOUDSDK_CORE_DISABLE_PROMPTS": "1",
        }
        process = subprocess.Popen(
            [*command, f"--host-port={host}", f"--data-dir={data}"],
            env=environ,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,  # gcloud starts the emulator's Java process: stop them together
        )
        try:
            deadline = time.monotonic() + 60
            while True:
                try:
                    with socket.create_connection(tuple(host.split(":")), timeout=1):  # type: ignore[arg-type]
                        break
                except OSError:
                    if process.poll() is not None or time.monotonic() > deadline:
                        raise RuntimeError("the Pub/Sub emulator did not start") from None
                    time.sleep(0.1)
            yield host
        finally:
            _stop_group(process)


def _stop_group(process: subprocess.Popen[bytes]) -> None:
    import signal

    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=10)
    except ProcessLookupError:
        pass
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def settings(endpoints: dict[str, str]) -> dict[str, Any]:
    """Provider settings for the emulators and the fake at ``endpoints``: no long waits."""
    return {
        "project": PROJECT,
        "region": REGION,
        "endpoints": endpoints,
        "emulator": "fake",
        "wait_delay": 0.05,
        "wait_timeout": 30,
        "max_attempts": 2,
        "image": "us-central1-docker.pkg.dev/skyrig-conformance/app/app:test",
    }


@contextmanager
def backends() -> Iterator[tuple[dict[str, str], dict[str, str], Any, dict[str, str]]]:
    """The fake, fake-gcs-server and (where present) the Pub/Sub emulator until the block ends: yields
    (endpoints, process environment, the fake, limits: what could not start, and why)."""
    from skyrig_gcp.fake import FakeGcp
    from skyrig_state_gcs.testing import fake_gcs

    with ExitStack() as stack:
        fake = stack.enter_context(FakeGcp(lro_delay=0.1, projects=(PROJECT,)))
        endpoints = {api: fake.discovery_endpoint(api) for api in DISCOVERY_APIS}
        endpoints.update({api: fake.endpoint(api) for api in (*LIBRARY_APIS, *BESIDE_APIS)})
        storage = stack.enter_context(fake_gcs())
        endpoints["storage"] = storage
        environ = {"STORAGE_EMULATOR_HOST": storage, "GOOGLE_CLOUD_PROJECT": PROJECT}
        limits: dict[str, str] = {
            "lifecycle.recreate_after_destroy": (
                "Cloud SQL refuses a deleted instance's name for a week (the FAKE does as Google does), so "
                "an environment with a SQL database cannot be made again at once after its destroy"
            ),
        }
        try:
            pubsub = stack.enter_context(pubsub_emulator())
        except RuntimeError as error:
            limits["pubsub"] = str(error)
        else:
            endpoints["pubsub"] = pubsub
            environ["PUBSUB_EMULATOR_HOST"] = pubsub
            environ["SKYRIG_GCP_PULL_SECONDS"] = "1"  # the consumer's pulls: a stop is not kept waiting
        limits["objects.signed_url_tampering"] = "fake-gcs-server does not verify signed URLs' signatures"
        limits["objects.public_url_fetch"] = (
            "a public bucket's URL is its Cloud CDN load balancer's address, which the FAKE Compute Engine "
            "records but serves no traffic at"
        )
        yield endpoints, environ, fake, limits


@contextmanager
def profile() -> Iterator[Any]:
    """The profile ``skyrig conformance gcp`` and the provider's tests use."""
    from skyrig_conformance import Profile, stand_ins

    with backends() as (endpoints, environ, _fake, limits):
        yield Profile(
            provider="gcp",
            environment_type="development",
            settings=settings(endpoints),
            environ=environ,
            stand_ins={"sql_database": stand_ins.postgres(), "cache_cluster": stand_ins.redis()},
            limits=limits,
        )
