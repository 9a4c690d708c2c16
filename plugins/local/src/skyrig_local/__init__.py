"""The local provider: real servers on this machine, embedded and started by skyrig (no Docker).

Services run as processes under ``skyrig run``; SQL databases on an embedded PostgreSQL 18, with
migrations; a Redis server per cache cluster; topics and subscriptions on a NATS JetStream broker; buckets
on disk; secrets in a file only the user can read;
cron jobs run on demand (or on schedule with ``skyrig run --cron``). This module stays light (nothing
beyond skyrig's plugin API): ``skyrig providers`` imports it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from skyrig.provider import Manifest, Provider, hookimpl

if TYPE_CHECKING:
    from skyrig.provider import Environment


@dataclass(frozen=True)
class LocalClient:
    """What the local node types need: the app's folder."""

    root: Path


class LocalProvider(Provider):
    """Provisions on this machine, for the local environment type (objective: provisioning speed)."""

    manifest = Manifest(
        name="local",
        kinds=frozenset(
            {
                "service",
                "cron_job",
                "sql_database",
                "secret",
                "cache_cluster",
                "bucket",
                "topic",
                "subscription",
            }
        ),
        features=frozenset(
            {
                "cache.eviction_policy",
                "bucket.public",
                "bucket.versioning",
                "pubsub.ordering",
                "pubsub.exactly_once",
                "pubsub.dead_letter",
            }
        ),
        environment_types=frozenset({"local"}),
        traits=frozenset({"compute.internet"}),  # its services run on this machine
        settings="skyrig_local.settings:LocalSettings",
        description="local servers, embedded: PostgreSQL 18, Redis, NATS JetStream pub/sub, buckets, secrets",
    )

    modules = tuple(
        f"skyrig_local.{family}"
        for family in ("sql", "secrets", "cache", "objects", "compute", "cron", "pubsub")
    )
    data_planes = {
        "sql_database": "skyrig_local.runtime:DatabaseClient",
        "cache_cluster": "skyrig_local.cache:CacheClient",
        "bucket": "skyrig_local.objects:BucketClient",
        "topic": "skyrig_local.pubsub.client:TopicClient",
        "subscription": "skyrig_local.pubsub.client:SubscriptionClient",
        "secret": "skyrig_local.secrets:SecretClient",
    }

    def connect(self, app: str, environment: Environment, settings: Any, root: Path) -> Any:
        from skyrig_local.records import sweep_temporaries

        # what a crashed process was writing when it died: nobody finishes it, so it goes
        sweep_temporaries(Path(root) / settings.data / environment.name.replace(":", "-"))
        return LocalClient(Path(root))

    @hookimpl
    def skyrig_after_apply(self, succeeded: bool) -> None:
        """An apply that ended early (a second Ctrl-C aborts it with creates in flight) leaves no
        ``initdb`` running: the cluster's next create starts again from nothing."""
        if not succeeded:
            from skyrig_local.postgres import stop_initdb

            stop_initdb()

    def local_servers(self, context: Any, model: Any) -> list[dict[str, Any]]:
        from skyrig_local.objects import objects_folder

        if not any(
            r.kind == "bucket" for r in model.resources
        ) or "bucket" not in context.environment.kinds_of("local"):
            return []
        folder = objects_folder(context)
        return [
            {
                "name": "objects",
                "app": "skyrig_local.object_server:app",
                "port": context.settings.objects_port,
                "env": {"SKYRIG_LOCAL_OBJECTS": str(folder)},
            }
        ]

    def stop_local_servers(self, context: Any) -> None:
        from skyrig_local import cache, postgres
        from skyrig_local.pubsub import broker
        from skyrig_local.records import environment_folder

        postgres.stop(environment_folder(context) / "postgres")
        broker.stop(environment_folder(context))  # the one this process started, if any
        cache.stop_servers(environment_folder(context))

    def test_support(self) -> Any:
        from skyrig_local.testing import support

        return support

    def recent_messages(self, context: Any, limit: int = 50) -> list[dict[str, Any]]:
        from skyrig_local.pubsub.messages import recent_messages
        from skyrig_local.records import environment_folder

        if "topic" not in context.environment.kinds_of("local"):
            return []
        return recent_messages(environment_folder(context), limit)

    def inventory(self, context: Any) -> list[tuple[str, str]]:
        from skyrig_local.inventory import inventory

        return inventory(context)

    def dead_letters(self, context: Any, subscription: str) -> list[dict[str, Any]]:
        from skyrig_local.inventory import dead_letters

        return dead_letters(context, subscription)

    def set_secret(self, context: Any, name: str, value: str) -> None:
        from skyrig_local.secrets import secrets_file, write_value

        write_value(secrets_file(context.app, context.environment.name), name, value)

    def secret_is_set(self, context: Any, name: str) -> bool:
        from skyrig_local.secrets import read_values, secrets_file

        return name in read_values(secrets_file(context.app, context.environment.name))


provider = LocalProvider()
