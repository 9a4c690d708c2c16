"""What the local provider holds for an environment, found on this machine, whatever state says: the
PostgreSQL cluster and its databases, cache servers' files, bucket folders, service and cron records, and
the broker's topics and subscriptions. Secrets hold nothing here: their values stay in the user's file
(destroying an environment does not lose a credential)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from skyrig.provider import Context
from skyrig.runtime.jetstream import loop as natsio
from skyrig.runtime.jetstream import streams
from skyrig_local import postgres
from skyrig_local.pubsub import broker
from skyrig_local.records import environment_folder

SYSTEM_DATABASES = ("postgres", "template0", "template1")


def inventory(context: Context) -> list[tuple[str, str]]:
    folder = environment_folder(context)
    found: list[tuple[str, str]] = []
    data = folder / "postgres"
    if postgres.initialised(data):
        found.append(("local.sql.cluster", str(data)))
        found += [("local.sql.database", name) for name in _databases(data)]
    found += [
        ("local.cache.cluster", str(p.with_suffix(".rdb"))) for p in sorted((folder / "cache").glob("*.json"))
    ]
    found += [
        ("local.objects.bucket", str(p.parent)) for p in sorted((folder / "objects").glob("*/.bucket.json"))
    ]
    found += [("local.compute.service", str(p)) for p in sorted((folder / "services").glob("*.json"))]
    found += [("local.cron.job", str(p)) for p in sorted((folder / "cron").glob("*.json"))]
    defined = broker.definitions(folder)
    found += [("local.pubsub.topic", streams.topic_stream(name)) for name in sorted(defined["topics"])]
    found += [
        ("local.pubsub.subscription", f"{properties['topic']}/{name}")
        for name, properties in sorted(defined["subscriptions"].items())
    ]
    return found


def _databases(data: Path) -> list[str]:
    import psycopg

    with psycopg.connect(postgres.uri(data, "postgres"), autocommit=True) as connection:
        rows = connection.execute(
            "SELECT datname FROM pg_database WHERE NOT datname = ANY(%s)", (list(SYSTEM_DATABASES),)
        )
        return sorted(row[0] for row in rows)


def dead_letters(context: Context, subscription: str) -> list[dict[str, Any]]:
    """The messages in ``subscription``'s dead-letter stream, oldest first, left in place."""
    url = broker.ensure(environment_folder(context))

    async def run() -> list[dict[str, Any]]:
        return await streams.read_dead_letters(await natsio.jetstream(url), subscription)

    return natsio.run(run())
