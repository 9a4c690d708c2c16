"""The names of what the GKE provider makes, and of what it uses of the GCP provider's.

What GCP offers a compute provider (``docs/providers/gcp.md``): the project (node ``network.project``, its
id ``APP-ENV`` as :func:`skyrig.provider.join_name` makes it with a limit of 30, or the configured one;
the GCP provider's settings, ``project`` and ``region``, are read where GKE's own leave them unset),
the VPC and subnet (nodes ``network.vpc`` and ``network.subnet``, both named ``APP-ENV`` with a limit of
63), each service's identity (node ``identity/SERVICE``, whose provider id is the service account's
email; the account is described ``skyrig APP/ENV iam.account/SERVICE``) and each database's migrations
(node ``compute.migration/DATABASE``, when GCP provisions the SQL databases).
"""

from __future__ import annotations

from typing import Any

from skyrig.provider import join_name

PROJECT_NODE = "network.project"
NETWORK_NODE = "network.vpc"
SUBNET_NODE = "network.subnet"

CLUSTER_ID = "gke.cluster"
POOL_ID = "gke.node_pool"
NAMESPACE_ID = "gke.namespace"

POOL = "skyrig"
"""The name of a Standard cluster's node pool."""

WORKLOAD_IDENTITY_USER = "roles/iam.workloadIdentityUser"


DEFAULT_REGION = "us-central1"
"""The GCP provider's default region."""


def project(app: str, environment: Any, settings: Any) -> str:
    """The project: GKE's ``project`` setting, else the GCP provider's (its ``project`` setting, else the
    project it makes for the environment)."""
    gcp = environment.settings.get("gcp")
    return str(
        settings.project or getattr(gcp, "project", None) or join_name(app, environment.name, limit=30)
    )


def domain(environment: Any, settings: Any) -> tuple[str | None, str | None]:
    """The domain the services answer at (``SERVICE.DOMAIN``) and its certificate: GKE's settings, else
    the GCP provider's, whose cron jobs call the services there."""
    gcp = environment.settings.get("gcp")
    if settings.domain:
        return settings.domain, settings.certificate
    return getattr(gcp, "domain", None), settings.certificate or getattr(gcp, "certificate", None)


def region(environment: Any, settings: Any) -> str:
    """The region: GKE's ``region`` setting, else the GCP provider's."""
    gcp = environment.settings.get("gcp")
    return str(settings.region or getattr(gcp, "region", None) or DEFAULT_REGION)


def network(app: str, env: str) -> str:
    """The GCP provider's VPC (and its subnet in the region: the same name)."""
    return join_name(app, env, limit=63)


def cluster(app: str, env: str) -> str:
    """The cluster skyrig makes: at most 40 characters, as GKE allows."""
    return join_name(app, env, limit=40)


def address(app: str, env: str, service: str) -> str:
    """A service's global static IP address (its Ingress's)."""
    return join_name(app, env, service, limit=63)


def account_description(app: str, env: str, service: str) -> str:
    """How the GCP provider describes ``service``'s service account: how it is found in this command."""
    return f"skyrig {app}/{env} iam.account/{service}"


def service_id(service: str) -> str:
    """The node id of a service (its main node)."""
    return f"compute.service/{service}"


def binding_id(service: str) -> str:
    """The node id of a service's Workload Identity binding."""
    return f"gke.workload_identity/{service}"


def address_id(service: str) -> str:
    """The node id of a service's static address."""
    return f"gke.address/{service}"


def migration_node(database: str) -> str:
    """The GCP provider's node that migrates ``database`` (when it provisions the SQL databases)."""
    return f"compute.migration/{database}"
