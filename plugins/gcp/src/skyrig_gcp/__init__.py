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
    from collections.abc import Mapping
    from pathlib import Path

    from skyrig.provider import ConfigProblem, Context, Environment

FAMILY_MODULES = ("network", "iam", "sql", "pubsub", "cache", "objects", "secrets", "compute", "cron")
"""The family modules, in the order their nodes are expanded (each family's nodes may depend on the
earlier ones')."""


class GcpProvider(Provider):
    """Provisions on Google Cloud for the development and production environment types."""

    manifest = Manifest(
        name="gcp",
        kinds=frozenset(
            {
                "sql_database",
                "cache_cluster",
                "bucket",
                "secret",
                "service",
                "cron_job",
                "topic",
                "subscription",
            }
        ),
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
        settings="skyrig_gcp.settings:GcpSettings",
        # Cloud Run's own egress: the services' Direct VPC egress carries private ranges only
        traits=frozenset({"compute.internet"}),
        description=(
            "Google Cloud: VPC, Cloud Run, Cloud SQL, Pub/Sub, Memorystore, Cloud Storage, Secret Manager, "
            "Cloud Scheduler"
        ),
    )

    modules = tuple(f"skyrig_gcp.{family}" for family in FAMILY_MODULES)
    data_planes: dict[str, str] = {
        "sql_database": "skyrig_gcp.runtime.sql:database",
        "cache_cluster": "skyrig_gcp.runtime.cache:cache",
        "bucket": "skyrig_gcp.runtime.objects:BucketClient",
        "secret": "skyrig_gcp.runtime.secrets:SecretClient",
        "cron_job": "skyrig_gcp.runtime.cron:CronClient",
        "topic": "skyrig_gcp.runtime.pubsub:TopicClient",
        "subscription": "skyrig_gcp.runtime.pubsub:SubscriptionClient",
    }

    def connect(self, app: str, environment: Environment, settings: Any, root: Path) -> Any:
        from skyrig_gcp.api import GcpClient

        return GcpClient(app, environment.name, settings)

    def check_environment(
        self, environment: Environment, environments: Mapping[str, Environment]
    ) -> list[ConfigProblem]:
        """Cron jobs of services another provider runs are called at ``SERVICE.DOMAIN``: that needs the
        ``domain`` setting."""
        from skyrig.provider import ConfigProblem

        providers = environment.providers
        if providers["cron"] != "gcp" or providers["compute"] == "gcp" or environment.settings["gcp"].domain:
            return []
        return [
            ConfigProblem(
                ("cron",),
                f"gcp schedules the cron jobs of services {providers['compute']!r} runs by calling them at "
                f"SERVICE.DOMAIN: set domain in [env.{environment.name}.gcp] (the compute provider routes "
                "it), or hand cron to another provider",
            )
        ]

    def deliver_runtime(self, context: Context, configs: dict[str, dict[str, Any]]) -> None:
        from skyrig_gcp.delivery import deliver

        deliver(context, configs)

    def run_cron_job(self, context: Context, job: str, url: str) -> None:
        """Exactly what a service's trigger job does when Cloud Scheduler runs it: the signing key from
        Secret Manager, then a signed ``POST /__skyrig/cron/JOB`` to ``url``."""
        from skyrig.provider import signed_cron_call
        from skyrig_gcp.names import signing_key_name

        client = context.client
        secret = signing_key_name(context.app, context.environment.name)
        key = client.library("secretmanager").access_secret_version(
            name=f"projects/{client.project}/secrets/{secret}/versions/latest"
        )
        signed_cron_call(url, job, key.payload.data)

    # -- secrets --------------------------------------------------------------------------------------

    def set_secret(self, context: Context, name: str, value: str) -> None:
        """Adds a version holding ``value`` to declared secret ``name`` (its CRC32C sent along, so that
        Secret Manager refuses a payload damaged on the way)."""
        import google_crc32c

        from skyrig.provider import NotFound, ProviderError, UserError
        from skyrig_gcp.names import secret_name

        secret = secret_name(context.app, context.environment.name, name)
        data = value.encode()
        payload = {"data": data, "data_crc32c": int(google_crc32c.value(data))}
        try:
            context.client.library("secretmanager").add_secret_version(
                request={"parent": f"projects/{context.client.project}/secrets/{secret}", "payload": payload}
            )
        except NotFound:
            raise UserError(
                f"secret {name!r} does not exist in Secret Manager yet ({secret})",
                f"run skyrig apply --env {context.environment.name} first",
            ) from None
        except ProviderError as error:  # the error names the call, never the value
            raise UserError(
                f"secret {name!r} was not stored: {error}", "nothing was stored: run it again"
            ) from None

    def secret_is_set(self, context: Context, name: str) -> bool:
        """Whether declared secret ``name`` has an enabled version (its value is not read)."""
        from skyrig.provider import NotFound
        from skyrig_gcp.names import secret_name

        secret = secret_name(context.app, context.environment.name, name)
        request = {
            "parent": f"projects/{context.client.project}/secrets/{secret}",
            "filter": "state:ENABLED",
            "page_size": 1,
        }
        try:
            versions = context.client.library("secretmanager").list_secret_versions(request=request)
            return next(iter(versions), None) is not None
        except NotFound:
            return False

    # -- what the conformance suite looks at -----------------------------------------------------

    def dead_letters(self, context: Context, subscription: str) -> list[dict[str, Any]]:
        """The letters kept on the subscription's dead-letter topic, oldest first, left in place (each is
        pulled and given back at once)."""
        from skyrig_gcp.runtime.pubsub import read_dead_letters

        return read_dead_letters(context, subscription)


provider = GcpProvider()
