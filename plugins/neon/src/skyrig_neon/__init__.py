"""The Neon provider: serverless PostgreSQL for any environment, beside any compute provider
(``sql = "neon"``), with a copy-on-write branch of a parent environment's data per preview.

One project per app (or a configured one), a branch per environment (production on the project's default
branch, protected), its read-write compute endpoint, the app's role and a database per ``SQLDatabase``, all
through Neon's API (v2, :mod:`skyrig_neon.api`); the family module is :mod:`skyrig_neon.sql`. It claims
``sql.branching`` (:meth:`NeonProvider.branch_database`). This module stays light (no httpx, no psycopg):
``skyrig providers`` imports it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from skyrig.provider import ENVIRONMENT_TYPES, Manifest, Provider

if TYPE_CHECKING:
    from collections.abc import Mapping
    from pathlib import Path

    from skyrig.provider import ConfigProblem, Context, Environment


class NeonProvider(Provider):
    """Provisions SQL databases on Neon, in every environment type."""

    manifest = Manifest(
        name="neon",
        kinds=frozenset({"sql_database"}),
        environment_types=frozenset(ENVIRONMENT_TYPES),
        features=frozenset({"sql.branching"}),
        settings="skyrig_neon.settings:NeonSettings",
        # its databases are reached at public endpoints: the services must reach the internet
        needs={"sql": frozenset({"compute.internet"})},
        description='Neon: serverless PostgreSQL, a branch per environment (sql = "neon" beside compute)',
    )

    modules = ("skyrig_neon.sql",)
    data_planes: dict[str, str] = {"sql_database": "skyrig_neon.runtime.sql:database"}

    def connect(self, app: str, environment: Environment, settings: Any, root: Path) -> Any:
        """Neon's API with the key of ``NEON_API_KEY`` (a clear error when it is not set)."""
        from skyrig_neon.api import NeonClient

        client = NeonClient.for_environment(app, environment, settings)
        client.root = root
        return client

    def check_environment(
        self, environment: Environment, environments: Mapping[str, Environment]
    ) -> list[ConfigProblem]:
        """``branch_from`` and ``branch_at`` across environments (:func:`skyrig_neon.check.problems`)."""
        from skyrig_neon.check import problems

        return problems(environment, environments)

    def branch_database(self, context: Context, database: str, branch: str) -> dict[str, Any]:
        """A Neon branch of the environment's branch as it is now (``<its name>--<branch>``, with a
        read-write endpoint); the runtime config entry of ``database`` on it. A destroy of the environment
        deletes it with the environment's branch."""
        from skyrig_neon.sql import branch_database

        return branch_database(context, database, branch)

    def inventory(self, context: Context) -> list[tuple[str, str]]:
        """The environment's branch and the branches made under it; in production, the role and databases
        skyrig made on the default branch (see :func:`skyrig_neon.sql.inventory`)."""
        from skyrig_neon.sql import inventory

        return inventory(context)


provider = NeonProvider()
