"""The hosted provider: development and preview environments on a host of your own (``skyrig-hosted
serve``), one per pull request, provisioned through the host's HTTP API like any cloud.

The app and the environment on the host, and per family its resources there (:mod:`skyrig_hosted.nodes`,
then one module per family: :mod:`skyrig_hosted.sql`, ...): databases on the host's PostgreSQL, caches on
its Redis, topics and subscriptions on its NATS JetStream (an account per environment), buckets on its
object server and secrets in its own store, each environment isolated by the servers themselves; services
as processes the host runs from the app's source (:mod:`skyrig_hosted.compute`, delivered after each apply
by :mod:`skyrig_hosted.delivery`) and cron jobs its scheduler fires (:mod:`skyrig_hosted.cron`). The app's
token comes from ``SKYRIG_HOSTED_TOKEN`` only. This module stays light (no httpx, no psycopg, and never
the host, :mod:`skyrig_hosted.host`): ``skyrig providers`` imports it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from skyrig.provider import Manifest, Provider

if TYPE_CHECKING:
    from pathlib import Path

    from skyrig.provider import Context, Environment

FAMILY_MODULES = ("nodes", "sql", "cache", "pubsub", "objects", "secrets", "compute", "cron")
"""The modules whose nodes are expanded, in order: the app and the environment first (every resource is in
the environment), then one module per family."""


class HostedProvider(Provider):
    """Provisions preview and development environments on a host."""

    manifest = Manifest(
        name="hosted",
        kinds=frozenset(
            {
                "sql_database",
                "cache_cluster",
                "topic",
                "subscription",
                "bucket",
                "secret",
                "service",
                "cron_job",
            }
        ),
        features=frozenset(
            {
                "pubsub.ordering",
                "pubsub.exactly_once",
                "pubsub.dead_letter",
                "cron.managed",
                "bucket.versioning",
                "bucket.public",
            }
        ),
        environment_types=frozenset({"preview", "development"}),
        # the services are processes on the host, which reach the internet through the host's own egress
        traits=frozenset({"compute.internet"}),
        together={
            # the host's scheduler fires the jobs at the services it runs itself
            "cron": frozenset({"compute"}),
        },
        settings="skyrig_hosted.settings:HostedSettings",
        description="a host of your own (skyrig-hosted serve): services behind its proxy, managed cron, "
        "PostgreSQL, Redis, NATS JetStream, objects and secrets per environment",
    )

    modules = tuple(f"skyrig_hosted.{family}" for family in FAMILY_MODULES)
    data_planes: dict[str, str] = {
        "sql_database": "skyrig_hosted.runtime.sql:database",
        "cache_cluster": "skyrig_hosted.runtime.cache:cache",
        "topic": "skyrig_hosted.runtime.pubsub:TopicClient",
        "subscription": "skyrig_hosted.runtime.pubsub:SubscriptionClient",
        "bucket": "skyrig_hosted.runtime.objects:BucketClient",
        "secret": "skyrig_hosted.runtime.secrets:SecretClient",
        "cron_job": "skyrig_hosted.runtime.cron:CronClient",
    }

    def connect(self, app: str, environment: Environment, settings: Any, root: Path) -> Any:
        """The host's API with the token of ``SKYRIG_HOSTED_TOKEN`` (a clear error when it is not set)."""
        from skyrig_hosted.api import HostedClient

        client = HostedClient.for_environment(environment, settings)
        client.root = root
        return client

    # -- secrets --------------------------------------------------------------------------------------

    def set_secret(self, context: Context, name: str, value: str) -> None:
        """Store the value of declared secret ``name`` on the host (it keeps it encrypted)."""
        from skyrig_hosted.secrets import set_secret

        set_secret(context, name, value)

    def secret_is_set(self, context: Context, name: str) -> bool:
        """Whether declared secret ``name`` has a value on the host."""
        from skyrig_hosted.secrets import secret_is_set

        return secret_is_set(context, name)

    # -- services and cron ------------------------------------------------------------------------

    def deliver_runtime(self, context: Context, configs: dict[str, dict[str, Any]]) -> None:
        """Deploy the services on the host: the app's source archive (uploaded when the host does not have
        it) and each service's runtime config; what the host runs already is left alone."""
        from skyrig_hosted.delivery import deliver

        deliver(context, configs)

    def run_cron_job(self, context: Context, job: str, url: str) -> None:
        """Exactly what the host's scheduler does when ``job`` is due: a ``POST /__skyrig/cron/JOB`` to
        ``url``, signed with the environment's signing key (read from the host for this call only)."""
        from skyrig_hosted.cron import call, signing_key

        call(url, job, signing_key(context).encode())

    # -- pub/sub --------------------------------------------------------------------------------------

    def dead_letters(self, context: Context, subscription: str) -> list[dict[str, Any]]:
        """The messages in ``subscription``'s dead-letter stream, oldest first, left in place."""
        from skyrig_hosted.pubsub import dead_letters

        return dead_letters(context, subscription)

    # -- what the conformance suite looks at -----------------------------------------------------

    def inventory(self, context: Context) -> list[tuple[str, str]]:
        """The environment on the host and every resource in it (the app is never listed: no destroy
        deletes it)."""
        from skyrig.provider import NotFound
        from skyrig_hosted.names import node_type

        client = context.client
        app, env = context.app, context.environment.name
        try:
            client.environment(app, env)
            resources = client.resources(app, env)
        except NotFound:
            return []
        found = [("hosted.environment", env)]
        found += [(node_type(r["kind"]), r["name"]) for r in resources]
        return sorted(found)


provider = HostedProvider()
