"""The EKS provider: an AWS environment's services on Kubernetes (``compute = "eks"`` beside ``provider =
"aws"``), every other kind staying with the aws provider.

The cluster runs in the aws provider's VPC: an EKS cluster with a managed node group (or Fargate profiles)
in its private subnets, an IAM OIDC provider, and per service the shared Kubernetes objects
(:mod:`skyrig_kubernetes`) with a ServiceAccount bound by IRSA to a role holding the aws provider's
managed policy of that service (``identity/SERVICE``: exactly its grants), routed by the AWS Load Balancer
Controller. Family modules: :mod:`skyrig_eks.iam`, :mod:`skyrig_eks.cluster`, :mod:`skyrig_eks.compute`.
This module stays light (no boto3, no Kubernetes client): ``skyrig providers`` imports it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from skyrig.provider import ConfigProblem, Manifest, Provider

if TYPE_CHECKING:
    from collections.abc import Mapping
    from pathlib import Path

    from skyrig.provider import Context, Environment, Node


class EksProvider(Provider):
    """Runs the services of development and production environments on EKS, beside the aws provider."""

    manifest = Manifest(
        name="eks",
        kinds=frozenset({"service"}),
        environment_types=frozenset({"development", "production"}),
        settings="skyrig_eks.settings:EksSettings",
        # the nodes and pods run in the aws provider's private subnets, whose default route is a NAT gateway;
        # a service's databases' migrations on aws run as Jobs before it rolls out
        traits=frozenset({"compute.internet", "compute.aws_vpc"}),
        description='EKS: the services on Kubernetes in the aws provider\'s VPC (compute = "eks")',
    )

    modules = ("skyrig_eks.cluster", "skyrig_eks.iam", "skyrig_eks.compute")
    data_planes: dict[str, str] = {}

    def connect(self, app: str, environment: Environment, settings: Any, root: Path) -> Any:
        """The AWS SDK (the aws provider's region, profile and endpoint unless set) and the cluster's API."""
        from skyrig_eks.api import EksClient

        return EksClient(app, environment, settings)

    def check_environment(
        self, environment: Environment, environments: Mapping[str, Environment]
    ) -> list[ConfigProblem]:
        """EKS runs in the aws provider's VPC and binds the services to its identities: some family of the
        environment must be the aws provider's."""
        if "aws" in environment.providers.values():
            return []
        return [
            ConfigProblem(
                ("compute",),
                "eks runs the services in the aws provider's network, with its identities: set "
                'provider = "aws" in this environment (compute = "eks" beside it)',
            )
        ]

    def deliver_runtime(self, context: Context, configs: dict[str, dict[str, Any]]) -> None:
        """Each service's runtime config into its ConfigMap, rolling the pods whose config changed."""
        from skyrig_kubernetes.delivery import deliver

        deliver(context, configs, wait=False)

    def kubernetes_manifests(
        self, context: Context, nodes: list[Node], configs: Mapping[str, Mapping[str, Any]]
    ) -> str:
        """The objects the service nodes among ``nodes`` apply, as YAML (``skyrig build k8s``)."""
        from skyrig_eks.compute import manifests

        return manifests(context, nodes, configs)

    def inventory(self, context: Context) -> list[tuple[str, str]]:
        """The environment's cluster (by name, tagged as its), node group or Fargate profile, roles (by
        path), OIDC provider (by tags), namespace and service Deployments (by labels)."""
        from skyrig_eks.inventory import inventory

        return inventory(context)


provider = EksProvider()
