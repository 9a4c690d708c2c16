"""The GKE provider: the services of a GCP environment on Google Kubernetes Engine (``provider = "gcp"``,
``compute = "gke"``), every other kind staying with the GCP provider.

An Autopilot cluster by default (regional, VPC-native, private nodes, Workload Identity) in the GCP
provider's VPC, a Standard one with a node pool when configured, or an existing cluster named in settings
(:mod:`skyrig_gke.cluster`); per service, the Kubernetes objects of :mod:`skyrig_kubernetes`, applied with
server-side apply and rolled out (:mod:`skyrig_gke.compute`), its ServiceAccount acting as the service's
Google service account, which the GCP provider keeps with exactly the service's grants
(:mod:`skyrig_gke.iam`). This module stays light (no Google library, no Kubernetes client): ``skyrig
providers`` imports it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from skyrig.provider import Manifest, Provider

if TYPE_CHECKING:
    from collections.abc import Mapping
    from pathlib import Path

    from skyrig.provider import ConfigProblem, Context, Environment, Node


class GkeProvider(Provider):
    """Runs the services of development and production environments on GKE."""

    manifest = Manifest(
        name="gke",
        kinds=frozenset({"service"}),
        environment_types=frozenset({"development", "production"}),
        settings="skyrig_gke.settings:GkeSettings",
        description='Google Kubernetes Engine: the services of a GCP environment (compute = "gke")',
    )

    modules = ("skyrig_gke.cluster", "skyrig_gke.iam", "skyrig_gke.compute")

    def connect(self, app: str, environment: Environment, settings: Any, root: Path) -> Any:
        from skyrig_gke.api import GkeClient

        return GkeClient(app, environment, settings)

    def check_environment(
        self, environment: Environment, environments: Mapping[str, Environment]
    ) -> list[ConfigProblem]:
        """GKE runs in the gcp provider's project and VPC and binds the services to the service accounts it
        keeps: some family of the environment must be the gcp provider's."""
        from skyrig.provider import ConfigProblem

        if "gcp" in environment.providers.values():
            return []
        return [
            ConfigProblem(
                ("compute",),
                "gke runs the services in the gcp provider's project and network, as the service accounts "
                'it keeps: set provider = "gcp" in this environment (compute = "gke" beside it)',
            )
        ]

    def deliver_runtime(self, context: Context, configs: dict[str, dict[str, Any]]) -> None:
        from skyrig_kubernetes.delivery import deliver

        deliver(context, configs, wait=True)

    def kubernetes_manifests(
        self, context: Context, nodes: list[Node], configs: Mapping[str, Mapping[str, Any]]
    ) -> str:
        """The objects the service nodes among ``nodes`` apply, as YAML (``skyrig build k8s``)."""
        from skyrig_gke.compute import manifests

        return manifests(context, nodes, configs)


provider = GkeProvider()
