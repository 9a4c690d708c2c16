"""Settings of the GCP provider: ``[env.NAME.gcp]`` in ``skyrig.toml``."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

API_NAMES = frozenset(
    {
        "artifactregistry",
        "cloudresourcemanager",
        "cloudscheduler",
        "compute",
        "iam",
        "pubsub",
        "redis",
        "run",
        "secretmanager",
        "servicenetworking",
        "serviceusage",
        "sqladmin",
        "storage",
    }
)
"""The Google APIs this provider calls, by their short names (the keys of ``endpoints``)."""


class GcpSettings(BaseModel):
    """Where to provision (credentials come from Application Default Credentials), sizes, and how long to
    wait.

    Sizes are only the defaults of a new environment: changed in the Google Cloud console afterwards, they
    are adopted and never reverted (see ``docs/providers/gcp.md``).
    """

    model_config = ConfigDict(extra="forbid")

    project: str | None = Field(None, pattern=r"^[a-z][-a-z0-9]{4,28}[a-z0-9]$")
    """An existing project to provision in. By default skyrig creates one project per environment (under
    ``parent``, billed to ``billing_account``)."""
    parent: str | None = Field(None, pattern=r"^(organizations|folders)/\d+$")
    """Where a project skyrig creates goes: ``organizations/ID`` or ``folders/ID``."""
    billing_account: str | None = Field(None, pattern=r"^billingAccounts/[0-9A-F-]+$")
    """The billing account a project skyrig creates is linked to (``billingAccounts/XXXXXX-XXXXXX-...``)."""
    region: str = "us-central1"
    """The region of everything regional: Cloud Run, Cloud SQL, Memorystore, Scheduler, the subnet."""
    endpoints: dict[str, str] = Field(default_factory=dict)
    """API short name (``sqladmin``, ``run``, ``storage``, ``pubsub``, ...) -> its endpoint: an emulator or
    a fake (``http://127.0.0.1:8085``). Calls to an API not named go to Google."""
    emulator: Literal["fake"] | None = None
    """The endpoints are emulators and skyrig's test fake: calls go without credentials, and what they do
    not implement is skipped (see ``docs/providers/gcp.md``). Never set it for Google Cloud."""
    subnet_cidr: str = Field("10.10.0.0/20", pattern=r"^\d+\.\d+\.\d+\.\d+/\d+$")
    """The environment's subnet in its VPC (the region's)."""
    image: str | None = None
    """Pins the container image of the services: every plan deploys it unless ``--image`` says otherwise
    (``SKYRIG_ENV__<ENV>__GCP__IMAGE`` sets it per deploy). Unset (the usual way: deploy with ``--image``),
    the services keep the image they run, and a new environment runs its repository's ``latest``."""
    domain: str | None = Field(None, pattern=r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?\.)+[a-z]{2,}$")
    """Where another provider's services answer (``compute = "gke"``): ``SERVICE.DOMAIN``, which that
    provider routes (GKE takes it unless set for GKE). Cron jobs of those services call it."""
    certificate: str | None = Field(None, pattern=r"^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$")
    """A pre-shared SSL certificate of the project covering ``*.DOMAIN``: another provider's services then
    answer over HTTPS only (GKE's Ingresses serve it unless GKE names another)."""
    service_cpu: str = Field("1", pattern=r"^(\d+|\d+m)$")
    """CPU of each Cloud Run service's container (``1``, ``2``, ``1000m``); user-tunable in the console."""
    service_memory: str = Field("512Mi", pattern=r"^\d+(Mi|Gi)$")
    """Memory of each service's container; user-tunable in the console."""
    service_max_instances: int = Field(10, ge=1, le=1000)
    """The most instances of a service Cloud Run scales to; user-tunable in the console."""
    service_port: int = Field(8080, ge=1, le=65535)
    """The port the service's container listens on."""
    sql_tier: str = Field("db-custom-1-3840", pattern=r"^db-(custom-\d+-\d+|[a-z0-9-]+)$")
    """The Cloud SQL machine type: 1 vCPU / 3.75 GiB, the smallest that supports autoscaling."""
    sql_disk_gb: int = Field(10, ge=10, le=65536)
    """The Cloud SQL disk size (automatic storage increase grows it)."""
    sql_version: str = Field("POSTGRES_17", pattern=r"^POSTGRES_\d+$")
    """The PostgreSQL version of a new Cloud SQL instance."""
    cache_memory_gb: int = Field(5, ge=1, le=300)
    """Memorystore for Redis capacity: 5 GiB, the smallest standard tier with read replicas."""
    cache_version: str = Field("REDIS_7_2", pattern=r"^REDIS_\d+(_\d+)?$")
    """The Redis version of new Memorystore instances."""
    wait_delay: float = Field(10.0, gt=0, le=300)
    """Seconds between two checks of a long-running operation."""
    wait_timeout: float = Field(3600.0, gt=0)
    """Seconds to wait for one operation before giving up (the next apply adopts the resource when it is
    ready)."""
    max_attempts: int = Field(5, ge=1, le=20)
    """Attempts of each API call on throttling and 5xx answers, before skyrig's own retries."""

    def endpoint(self, api: str) -> str | None:
        """The endpoint configured for ``api``, if any."""
        return self.endpoints.get(api)
