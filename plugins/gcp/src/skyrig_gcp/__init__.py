"""The GCP provider: development and production environments on Google Cloud, provisioned with Google's
own client libraries.

A project per environment (or a configured one) with a VPC and private services access, Cloud Run services
under a service account each, Cloud SQL for PostgreSQL, Pub/Sub, Memorystore for Redis, Cloud Storage (with
Cloud CDN for public buckets), Secret Manager and Cloud Scheduler; one module per family
(:mod:`skyrig_gcp.network`, ...), mirroring the AWS provider's layout. This module stays light (no Google
library): ``skyrig providers`` imports it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from skyrig.provider import Manifest, Provider

if TYPE_CHECKING:
    from pathlib import Path

    from skyrig.provider import Context, Environment

FAMILY_MODULES = ("network", "pubsub")
"""The family modules, in the order their nodes are expanded (each family's nodes may depend on the
earlier ones')."""


class GcpProvider(Provider):
    """Provisions on Google Cloud for the development and production environment types."""

    manifest = Manifest(
        name="gcp",
        kinds=frozenset({"topic", "subscription"}),
        environment_types=frozenset({"development", "production"}),
        features=frozenset({"pubsub.ordering", "pubsub.exactly_once", "pubsub.dead_letter"}),
        settings="skyrig_gcp.settings:GcpSettings",
        description=(
            "Google Cloud: VPC, Cloud Run, Cloud SQL, Pub/Sub, Memorystore, Cloud Storage, Secret Manager, "
            "Cloud Scheduler"
        ),
    )

    modules = tuple(f"skyrig_gcp.{family}" for family in FAMILY_MODULES)
    data_planes: dict[str, str] = {
        "topic": "skyrig_gcp.runtime.pubsub:TopicClient",
        "subscription": "skyrig_gcp.runtime.pubsub:SubscriptionClient",
    }

    def connect(self, app: str, environment: Environment, settings: Any, root: Path) -> Any:
        from skyrig_gcp.api import GcpClient

        return GcpClient(app, environment.name, settings)

    # -- what the conformance suite looks at -----------------------------------------------------

    def inventory(self, context: Context) -> list[tuple[str, str]]:
        """Every resource of this app and environment, by the node types' own listings (each lists what
        its deterministic names and labels say is ours)."""
        found: set[tuple[str, str]] = set()
        for node_type in self.node_types().values():
            listing = getattr(node_type, "inventory", None)
            if listing is not None:
                found.update((node_type.type, provider_id) for provider_id in listing(context))
        return sorted(found)

    def dead_letters(self, context: Context, subscription: str) -> list[dict[str, Any]]:
        """The letters kept on the subscription's dead-letter topic, oldest first, left in place (each is
        pulled and given back at once)."""
        from skyrig_gcp.runtime.pubsub import read_dead_letters

        return read_dead_letters(context, subscription)


provider = GcpProvider()
