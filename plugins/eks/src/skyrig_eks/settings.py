"""Settings of the EKS provider: ``[env.NAME.eks]`` in ``skyrig.toml``."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

TOKEN_VARIABLE = "EKS_KUBERNETES_TOKEN"
"""The environment variable holding the bearer token for ``kubernetes_endpoint`` (never in skyrig.toml)."""

EKS_OIDC_THUMBPRINT = "9e99a48a9960b14926bb7f3b02e22da2b0ab7280"
"""The SHA-1 thumbprint of the root CA that signs EKS's OIDC issuers (oidc.eks.REGION.amazonaws.com),
the value ``eksctl`` and the AWS console register; IAM checks EKS issuers against its own trusted CAs
anyway, but the API wants one."""


class EksSettings(BaseModel):
    """Where the cluster is and how the services run on it. The region, profile and endpoint are the aws
    provider's of the same environment unless set here; sizes are the defaults of a new environment and
    are adopted when changed on the cluster or in the console (see docs/providers/eks.md)."""

    model_config = ConfigDict(extra="forbid")

    region: str | None = None
    """The AWS region; by default the aws provider's ``region`` in this environment."""
    profile: str | None = None
    """A named profile of the AWS configuration files; by default the aws provider's."""
    endpoint_url: str | None = None
    """One endpoint for every AWS API (an emulator such as moto's server); by default the aws provider's."""
    cluster: str | None = None
    """An existing EKS cluster to run the services on: skyrig then creates and deletes nothing of its
    control plane (it must have an IAM OIDC provider for its issuer, as ``eksctl utils
    associate-iam-oidc-provider`` makes)."""
    fargate: bool = False
    """Run the pods on Fargate (a Fargate profile for the environment's namespace) instead of a managed
    node group."""
    kubernetes_version: str = Field("1.33", pattern=r"^1\.\d+$")
    """The Kubernetes minor version of a new cluster."""
    instance_types: list[str] = Field(default_factory=lambda: ["t3.medium"], min_length=1)
    """The managed node group's instance types."""
    nodes_min: int = Field(1, ge=0, le=450)
    """The node group's smallest size."""
    nodes_max: int = Field(4, ge=1, le=450)
    """The node group's largest size."""
    nodes_desired: int = Field(2, ge=0, le=450)
    """The node group's size when it is made; user-tunable afterwards (a cluster autoscaler's or the
    console's count is adopted)."""
    image: str | None = None
    """Pins the services' container image (``REPO:TAG`` or a digest), as the aws provider's ``image``:
    ``--image`` sets it per deploy, and without either the services keep the image they run."""
    service_port: int = Field(8080, ge=1, le=65535)
    """The port the service's container listens on."""
    service_cpu: str = "250m"
    """Each pod's CPU request; user-tunable on the cluster."""
    service_memory: str = "512Mi"
    """Each pod's memory request (and limit); user-tunable on the cluster."""
    min_replicas: int | None = Field(None, ge=1)
    """The fewest pods of each service: by default 2 in production, 1 elsewhere."""
    max_replicas: int = Field(3, ge=1)
    """The most pods the HorizontalPodAutoscaler scales each service to."""
    domain: str | None = None
    """The DNS domain of the services: the load balancer routes ``SERVICE.DOMAIN`` to each. By default
    the aws provider's ``domain``, else ``APP-ENV.internal``, as on ECS."""
    certificate_arn: str | None = None
    """An ACM certificate for HTTPS on the load balancer (HTTP is then redirected to HTTPS); by default the
    aws provider's ``certificate_arn``."""
    oidc_thumbprint: str = Field(EKS_OIDC_THUMBPRINT, pattern=r"^[0-9a-f]{40}$")
    """The thumbprint registered with the cluster's IAM OIDC provider."""
    kubernetes_endpoint: str | None = None
    """The Kubernetes API server to talk to instead of the cluster's own endpoint, with the bearer token
    of the ``EKS_KUBERNETES_TOKEN`` environment variable: for tests against a FAKE API server (moto's
    clusters have no API server behind their endpoints). Never set it for EKS."""
    emulator: Literal["moto"] | None = None
    """The AWS endpoint is this emulator; by default the aws provider's. Never set it for AWS."""
    wait_delay: float = Field(15.0, gt=0, le=300)
    """Seconds between two status checks of the cluster, node group and Fargate profile."""
    wait_timeout: float = Field(1800.0, gt=0)
    """Seconds to wait for one of them before giving up (the next apply adopts it when it is ready)."""
    rollout_timeout: float = Field(600.0, gt=0)
    """Seconds to wait for a service's new pods to become ready."""
    max_attempts: int = Field(5, ge=1, le=20)
    """Attempts of each AWS API call by the AWS SDK (throttling and 5xx)."""
