"""The memory provider: the reference implementation of the provider contract.

Its cloud is a SQLite file (:mod:`skyrig_memory.cloud`); one module per resource family declares its
node types and expands its share of the model, exactly as a real provider's modules would. Its data
plane (:mod:`skyrig_memory.runtime`) works on the same file: messages in its broker, cache keys,
objects, secrets; SQL is the one kind it cannot serve (no PostgreSQL runs in it). This module stays
light (nothing beyond skyrig's plugin API): ``skyrig providers`` imports it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from skyrig.provider import ENVIRONMENT_TYPES, KINDS, Manifest, Provider

if TYPE_CHECKING:
    from skyrig.provider import Context, Environment


class MemoryProvider(Provider):
    """Provisions every resource kind into a SQLite file that stands in for a cloud."""

    manifest = Manifest(
        name="memory",
        kinds=frozenset(KINDS),
        environment_types=frozenset(ENVIRONMENT_TYPES),
        # Not sql.branching (no PostgreSQL runs in the cloud) nor cache.eviction_policy (its cache is a
        # SQLite table: no memory limit, so nothing is ever evicted).
        features=frozenset(
            {
                "pubsub.ordering",
                "pubsub.exactly_once",
                "pubsub.dead_letter",
                "bucket.public",
                "bucket.versioning",
                "cron.managed",
            }
        ),
        traits=frozenset({"compute.internet"}),  # its services run on the machine that runs skyrig
        settings="skyrig_memory.settings:MemorySettings",
        description="reference provider: a SQLite file stands in for the cloud (SQL migrations not applied)",
    )

    modules = tuple(
        f"skyrig_memory.{family}"
        for family in ("network", "sql", "pubsub", "cache", "objects", "secrets", "iam", "compute", "cron")
    )
    data_planes = {
        "sql_database": "skyrig_memory.runtime.sql:DatabaseClient",
        "topic": "skyrig_memory.runtime.pubsub:TopicClient",
        "subscription": "skyrig_memory.runtime.pubsub:SubscriptionClient",
        "cache_cluster": "skyrig_memory.runtime.cache:CacheClient",
        "bucket": "skyrig_memory.runtime.objects:BucketClient",
        "secret": "skyrig_memory.runtime.secrets:SecretClient",
        "cron_job": "skyrig_memory.runtime.cron:CronClient",
    }

    def connect(self, app: str, environment: Environment, settings: Any, root: Any) -> Any:
        from skyrig_memory.cloud import MemoryCloud

        return MemoryCloud(root / settings.path, settings)

    def inventory(self, context: Context) -> list[tuple[str, str]]:
        return [
            (type_, str(id_))
            for id_, type_, _ in context.client.inventory(context.app, context.environment.name)
        ]

    def dead_letters(self, context: Context, subscription: str) -> list[dict[str, Any]]:
        from skyrig_memory.broker import Broker

        return Broker(context.client).dead_letters(context.app, context.environment.name, subscription)

    def run_cron_job(self, context: Context, job: str, url: str) -> None:
        from skyrig.provider import signed_cron_call
        from skyrig_memory.cron import JOB, SIGNING_KEY

        app, environment = context.app, context.environment.name
        jobs = context.client.list(JOB.type, app, environment).values()
        if not any(node == f"cron.job/{job}" for node, _ in jobs):
            raise LookupError(
                f"environment {environment!r} has no cron job {job!r} in the memory cloud: apply it first"
            )
        key = context.client.secret_value(app, environment, SIGNING_KEY)
        if key is None:
            raise LookupError(f"environment {environment!r} has no cron signing key: apply it first")
        signed_cron_call(url, job, key.encode())

    def set_secret(self, context: Context, name: str, value: str) -> None:
        context.client.put_secret(context.app, context.environment.name, name, value)

    def secret_is_set(self, context: Context, name: str) -> bool:
        return context.client.secret_value(context.app, context.environment.name, name) is not None


provider = MemoryProvider()
