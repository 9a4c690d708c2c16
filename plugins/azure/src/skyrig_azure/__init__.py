"""The Azure provider: development and production environments on Microsoft Azure, provisioned with
Microsoft's own client libraries.

A resource group and a virtual network per environment, App Service (web apps for containers) under a
managed identity each, Azure Database for PostgreSQL flexible server, Service Bus, Azure Cache for Redis,
Blob Storage (with Azure Front Door for public buckets), Key Vault and Container Apps jobs for cron; one
module per family (:mod:`skyrig_azure.network`, ...), mirroring the AWS and GCP providers' layout. This
module stays light (no Azure library): ``skyrig providers`` imports it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from skyrig.provider import KINDS, Manifest, Provider

if TYPE_CHECKING:
    from pathlib import Path

    from skyrig.provider import Context, Environment

FAMILY_MODULES = ("network", "iam", "sql", "pubsub", "cache", "objects", "secrets", "compute", "cron")
"""The family modules, in the order their nodes are expanded (each family's nodes may depend on the
earlier ones')."""


class AzureProvider(Provider):
    """Provisions on Microsoft Azure for the development and production environment types."""

    manifest = Manifest(
        name="azure",
        kinds=frozenset(KINDS),
        environment_types=frozenset({"development", "production"}),
        features=frozenset(
            {
                "cache.eviction_policy",
                "bucket.public",
                "bucket.versioning",
                "cron.managed",
                "pubsub.ordering",
                "pubsub.exactly_once",
                "pubsub.dead_letter",
            }
        ),
        settings="skyrig_azure.settings:AzureSettings",
        # the web apps route all traffic into the VNet, whose NSGs skyrig gives inbound rules only (Azure's
        # AllowInternetOutBound stands) and no route table: public traffic leaves by the apps' outbound
        # addresses; the Container Apps jobs' environment is external
        traits=frozenset({"compute.internet"}),
        together={
            # a schedule starts its service's Container Apps job (the service's image and identity), which
            # exists only where this provider runs the services
            "cron": frozenset({"compute"}),
        },
        description=(
            "Azure: VNet, App Service, PostgreSQL flexible server, Service Bus, Azure Cache for Redis, "
            "Blob Storage, Key Vault, Container Apps jobs"
        ),
    )

    modules = tuple(f"skyrig_azure.{family}" for family in FAMILY_MODULES)
    data_planes: dict[str, str] = {
        "sql_database": "skyrig_azure.runtime.sql:database",
        "cache_cluster": "skyrig_azure.runtime.cache:cache",
        "bucket": "skyrig_azure.runtime.objects:BucketClient",
        "secret": "skyrig_azure.runtime.secrets:SecretClient",
        "cron_job": "skyrig_azure.runtime.cron:CronClient",
        "topic": "skyrig_azure.runtime.pubsub:TopicClient",
        "subscription": "skyrig_azure.runtime.pubsub:SubscriptionClient",
    }

    def connect(self, app: str, environment: Environment, settings: Any, root: Path) -> Any:
        from skyrig_azure.api import AzureClient

        return AzureClient(app, environment.name, settings)

    def deliver_runtime(self, context: Context, configs: dict[str, dict[str, Any]]) -> None:
        from skyrig_azure.delivery import deliver

        deliver(context, configs)

    def run_cron_job(self, context: Context, job: str, url: str) -> None:
        """Exactly what a service's schedule does when it fires: the signing key from Key Vault, then a
        signed ``POST /__skyrig/cron/JOB`` to ``url``."""
        from skyrig_azure.cron import run_job

        run_job(context, job, url)

    # -- secrets --------------------------------------------------------------------------------------

    def set_secret(self, context: Context, name: str, value: str) -> None:
        """Stores ``value`` as the new version of declared secret ``name`` in the environment's Key
        Vault."""
        from skyrig_azure.secrets import set_value

        set_value(context, name, value)

    def secret_is_set(self, context: Context, name: str) -> bool:
        """Whether declared secret ``name`` has an enabled version in the Key Vault (its value is not
        read)."""
        from skyrig_azure.secrets import is_set

        return is_set(context, name)

    # -- what the conformance suite looks at -----------------------------------------------------

    def dead_letters(self, context: Context, subscription: str) -> list[dict[str, Any]]:
        """The letters in the subscription's dead-letter queue, oldest first, left in place (peeked)."""
        from skyrig_azure.runtime.pubsub import read_dead_letters

        return read_dead_letters(context, subscription)


provider = AzureProvider()
