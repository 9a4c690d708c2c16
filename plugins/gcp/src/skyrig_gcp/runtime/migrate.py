"""The Cloud Run job that creates a database's tables: applies its migrations before the services roll out
(``python -m skyrig_gcp.runtime.migrate``, with the variables :func:`skyrig_gcp.sql.migration_job` gives the
job). The database itself is made by the Admin API (:class:`skyrig_gcp.sql.DatabaseType`); this job
connects to it as the services do (mutual TLS, the password from Secret Manager)."""

from __future__ import annotations

import json
import os
from pathlib import Path


def main() -> None:
    from skyrig.provider import migrate
    from skyrig_gcp.runtime.sql import CloudSqlClient

    database = os.environ["SKYRIG_DATABASE"]
    entry = {**json.loads(os.environ["SKYRIG_DB_CONNECTION"]), "database": database}
    migrations = json.loads(os.environ["SKYRIG_MIGRATIONS"])
    files = json.loads(os.environ["SKYRIG_MIGRATION_FILES"])
    with CloudSqlClient(entry).connect(autocommit=True) as connection:
        migrate(connection, database, migrations, files, Path(os.environ.get("SKYRIG_APP_ROOT", ".")))
    print(f"database {database}: {len(migrations)} migration(s) applied or present")


if __name__ == "__main__":
    main()
