"""Settings of the GKE provider: ``[env.NAME.gke]`` in ``skyrig.toml``.

The cluster runs in the GCP provider's project and VPC (``provider = "gcp"``, ``compute = "gke"``): its
``project`` and ``region`` are the GCP provider's unless set here. Credentials come from Application
Default Credentials, as for the GCP provider.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

TOKEN_VARIABLE = "GKE_KUBERNETES_TOKEN"
"""The environment variable holding the bearer token of ``kubernetes_endpoint`` (never ``skyrig.toml``)."""

API_NAMES = frozenset({"container", "iam", "compute", "run"})
"""The Google APIs this provider calls, by their short names (the keys of ``endpoints``)."""


class GkeSettings(BaseModel):
    """Where the cluster is, what kind it is, how each service's pods are sized and routed, and how long to
    wait.

    Sizes and replica counts are only what a new Deployment gets: changed on the cluster afterwards, they
    are adopted and never reverted (see ``docs/providers/gke.md``).
    """

    model_config = ConfigDict(extra="forbid")

    project: str | None = Field(None, pattern=r"^[a-z][-a-z0-9]{4,28}[a-z0-9]$")
    """The project of the cluster. Unset (the usual way), the GCP provider's: its ``project`` setting, else
    the project it makes for the environment."""
    region: str | None = Field(None, pattern=r"^[a-z]+-[a-z]+[0-9]+$")
    """The region of the regional cluster. Unset (the usual way), the GCP provider's."""
    cluster: str | None = Field(None, pattern=r"^[a-z]([-a-z0-9]{0,38}[a-z0-9])?$")
    """An existing cluster of the project and region to run the services on: skyrig makes no cluster
    and never changes or deletes this one."""
    autopilot: bool = True
    """An Autopilot cluster (GKE manages the nodes); ``false`` for a Standard one with a node pool."""
    machine_type: str = Field("e2-standard-2", pattern=r"^[a-z0-9]+-[a-z0-9-]+$")
    """The machine type of a Standard cluster's node pool."""
    min_nodes: int = Field(1, ge=0, le=1000)
    """The fewest nodes per zone the Standard node pool's autoscaler keeps; user-tunable."""
    max_nodes: int = Field(3, ge=1, le=1000)
    """The most nodes per zone the Standard node pool's autoscaler adds; user-tunable."""
    master_cidr: str = Field("172.16.0.0/28", pattern=r"^\d+\.\d+\.\d+\.\d+/28$")
    """The private /28 of a Standard cluster's control plane (private nodes need one; it must not overlap
    the GCP provider's subnet)."""
    release_channel: Literal["RAPID", "REGULAR", "STABLE"] = "REGULAR"
    """The release channel a new cluster is enrolled in."""
    image: str | None = None
    """Pins the services' container image: every plan deploys it unless ``--image`` says otherwise. Unset
    (the usual way: deploy with ``--image``), the services keep the image they run."""
    service_cpu: str = Field("250m", pattern=r"^(\d+|\d+m)$")
    """Each pod's CPU request; user-tunable on the cluster."""
    service_memory: str = Field("512Mi", pattern=r"^\d+(Mi|Gi)$")
    """Each pod's memory request (and limit); user-tunable on the cluster."""
    min_replicas: int | None = Field(None, ge=1, le=1000)
    """The fewest pods of each service (a HorizontalPodAutoscaler scales between the two): by default 2 in
    production (a node drain or a rollout never leaves it without a ready pod), 1 elsewhere."""
    max_replicas: int = Field(3, ge=1, le=1000)
    """The most pods of each service; equal to ``min_replicas``, no autoscaler and a fixed count."""
    service_port: int = Field(8080, ge=1, le=65535)
    """The port the service's container listens on."""
    domain: str | None = Field(None, pattern=r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?\.)+[a-z]{2,}$")
    """Routes each service from outside: ``SERVICE.DOMAIN``, through an Ingress of class ``gce`` on a
    global static IP of its own. Unset, the GCP provider's ``domain`` (where its cron jobs call the
    services); with neither, the services are reached inside the cluster only."""
    certificate: str | None = Field(None, pattern=r"^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$")
    """A pre-shared SSL certificate of the project (``gcloud compute ssl-certificates``) covering
    ``*.DOMAIN``: the Ingresses then serve HTTPS only. Unset, the GCP provider's ``certificate``."""
    endpoints: dict[str, str] = Field(default_factory=dict)
    """API short name (``container``, ``iam``, ``compute``, ``run``) -> its endpoint: skyrig's test fake.
    Calls to an API not named go to Google."""
    emulator: Literal["fake"] | None = None
    """The endpoints are skyrig's test fake: calls go without credentials. Never set it for Google Cloud."""
    kubernetes_endpoint: str | None = None
    """The Kubernetes API server to use instead of the cluster's own: the tests' FAKE Kubernetes, whose
    bearer token is read from the environment variable ``GKE_KUBERNETES_TOKEN``. Never set it for GKE."""
    rollout_timeout: float = Field(600.0, gt=0)
    """Seconds a rollout (or a migrations Job) may take before the apply reports it failed."""
    wait_delay: float = Field(10.0, gt=0, le=300)
    """Seconds between two checks of a long-running operation."""
    wait_timeout: float = Field(3600.0, gt=0)
    """Seconds to wait for one operation before giving up (the next apply adopts the resource)."""
    max_attempts: int = Field(5, ge=1, le=20)
    """Attempts of each discovery-based API call on throttling and 5xx answers."""

    @model_validator(mode="after")
    def _ranges(self) -> GkeSettings:
        if self.min_replicas is not None and self.min_replicas > self.max_replicas:
            raise ValueError(
                f"min_replicas ({self.min_replicas}) is above max_replicas ({self.max_replicas})"
            )
        if self.min_nodes > self.max_nodes:
            raise ValueError(f"min_nodes ({self.min_nodes}) is above max_nodes ({self.max_nodes})")
        return self

    def fewest_replicas(self, environment_type: str) -> int:
        """``min_replicas``, or its default for an environment of ``environment_type``."""
        if self.min_replicas is not None:
            return self.min_replicas
        return min(2 if environment_type == "production" else 1, self.max_replicas)

    def endpoint(self, api: str) -> str | None:
        """The endpoint configured for ``api``, if any."""
        return self.endpoints.get(api)
