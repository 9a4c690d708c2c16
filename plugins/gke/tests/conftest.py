"""The GKE provider's tests: the conformance suite's profile (the GCP provider's FAKE and emulators, and
the FAKE Kubernetes API server: no real GKE, no real cluster), and the same backends for the provider's
own tests (:class:`GkeApp`: an app on GCP with ``compute = "gke"``)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from skyrig_conformance import provider_profile
from skyrig_conformance.folder import AppFolder
from skyrig_gke.settings import TOKEN_VARIABLE

skyrig_profile = provider_profile("gke")


def _table(values: dict[str, Any]) -> list[str]:
    return [f"{key} = {json.dumps(value)}" for key, value in values.items() if value is not None]


class GkeApp(AppFolder):
    """An app in a folder, in environment ``dev``: GCP for every family but compute (GKE) and cron
    (memory), on the profile's FAKEs; ``gke`` and ``gcp`` are the two providers' settings."""

    def __init__(self, root: Path, gke: dict[str, Any], gcp: dict[str, Any]) -> None:
        super().__init__(root, "gke", gke)
        self.gcp = gcp

    def write(
        self,
        files: dict[str, str],
        *,
        cron: str = "memory",
        gcp: dict[str, Any] | None = None,
        **settings: Any,
    ) -> None:
        """The app's files, and its ``skyrig.toml`` with GKE's settings and ``settings`` over them; cron on
        the ``cron`` provider, the GCP provider's settings with ``gcp`` over them."""
        super().write(files)
        lines = [
            f'app = "{self.name}"',
            "[env.dev]",
            'type = "development"',
            'provider = "gcp"',
            'compute = "gke"',
            f'cron = "{cron}"',
            "[env.dev.gcp]",
            *_table({k: v for k, v in {**self.gcp, **(gcp or {})}.items() if k != "endpoints"}),
            "[env.dev.gcp.endpoints]",
            *_table(self.gcp["endpoints"]),
            "[env.dev.gke]",
            *_table({k: v for k, v in {**self.settings, **settings}.items() if k != "endpoints"}),
            "[env.dev.gke.endpoints]",
            *_table(self.settings["endpoints"]),
        ]
        (self.root / "skyrig.toml").write_text("\n".join(lines) + "\n")

    def kubernetes(self) -> Any:
        """The FAKE Kubernetes API, as :class:`skyrig_kubernetes.cluster.Cluster`."""
        from skyrig_kubernetes.cluster import Cluster

        return Cluster.from_token(self.settings["kubernetes_endpoint"], os.environ[TOKEN_VARIABLE])

    def google(self, api: str) -> Any:
        """A google-api-python-client resource of ``api`` (``iam``, ``compute``) on the FAKE."""
        from google.auth.credentials import AnonymousCredentials
        from googleapiclient.discovery import build

        return build(
            api,
            "v1",
            credentials=AnonymousCredentials(),
            client_options={"api_endpoint": self.settings["endpoints"][api]},
            static_discovery=True,
        )

    def container(self) -> Any:
        """The Kubernetes Engine API's client on the FAKE."""
        from google.auth.credentials import AnonymousCredentials
        from google.cloud import container_v1

        return container_v1.ClusterManagerClient(
            credentials=AnonymousCredentials(),
            transport="rest",
            client_options={"api_endpoint": self.settings["endpoints"]["container"]},
        )


@pytest.fixture
def gke_app(skyrig_profile: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> GkeApp:
    """An app in ``tmp_path`` on the profile's FAKEs."""
    monkeypatch.setenv("SKYRIG_RETRY_BASE_MS", "1")
    return GkeApp(tmp_path, dict(skyrig_profile.settings), dict(skyrig_profile.beside["gcp"]))
