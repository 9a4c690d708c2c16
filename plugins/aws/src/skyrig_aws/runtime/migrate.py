"""The one-off task that creates a database in the RDS instance and applies its migrations
(``python -m skyrig_aws.runtime.migrate``, with the ``SKYRIG_DB_*`` variables the task definition sets)."""

from __future__ import annotations

import json
import os
from pathlib import Path


def main() -> None:
    import psycopg
    from psycopg import sql

    from skyrig.provider import PostgresClient, migrate
    from skyrig_aws.runtime.secrets import resolver

    database = os.environ["SKYRIG_DATABASE"]
    entry = {
        "host": os.environ["SKYRIG_DB_HOST"],
        "port": int(os.environ["SKYRIG_DB_PORT"]),
        "user": os.environ["SKYRIG_DB_USER"],
        "sslmode": "require",
        "password": os.environ["SKYRIG_DB_SECRET"],
        "region": os.environ.get("AWS_REGION"),
        "endpoint_url": os.environ.get("AWS_ENDPOINT_URL"),
    }
    server = PostgresClient({**entry, "database": "postgres"}, resolver(entry, "password"))
    with server.connect(autocommit=True) as connection:
        if not connection.execute("SELECT 1 FROM pg_database WHERE datname = %s", (database,)).fetchone():
            connection.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(database)))
    target = PostgresClient({**entry, "database": database}, resolver(entry, "password"))
    migrations = json.loads(os.environ["SKYRIG_MIGRATIONS"])
    files = json.loads(os.environ["SKYRIG_MIGRATION_FILES"])
    with target.connect(autocommit=True) as connection:
        migrate(connection, database, migrations, files, Path(os.environ.get("SKYRIG_APP_ROOT", ".")))
    print(f"database {database}: {len(migrations)} migration(s) applied or present")
    del psycopg


if __name__ == "__main__":
    main()
