"""SQL through the runtime SDK: migrations ran; a write is read back from a second connection; async
connections and pools work."""

from __future__ import annotations

import asyncio

import pytest

from skyrig_conformance import requirements as needs
from skyrig_conformance.plugin import Suite


class TestSQL(Suite):
    """A SQL database as the app sees it."""

    @pytest.fixture
    def app(self, deployment):
        needs.limited(deployment.profile, "sql.data_plane")
        yield deployment.bind("alpha")
        deployment.unbind()

    @needs.kinds("sql_database")
    def test_migrations_ran_and_a_write_is_read_back_from_a_second_connection(self, app):
        ledger = app.resources.ledger
        with ledger.connect() as connection:
            applied = connection.execute("SELECT number FROM skyrig_migrations ORDER BY number").fetchall()
            assert [row[0] for row in applied] == [1, 2], "both migrations, in order, once"
            connection.execute("INSERT INTO entries (note, amount) VALUES ('written', 42)")
        with ledger.connect() as other:
            found = other.execute("SELECT note, amount FROM entries WHERE note = 'written'").fetchall()
        assert found == [("written", 42)]

    @needs.kinds("sql_database")
    def test_async_connections_and_pools(self, app):
        ledger = app.resources.ledger
        with ledger.pool().connection() as connection:
            connection.execute("INSERT INTO entries (note) VALUES ('pooled')")

        async def read() -> list[tuple[str]]:
            async with await ledger.connect_async() as connection:
                cursor = await connection.execute("SELECT note FROM entries WHERE note = 'pooled'")
                return await cursor.fetchall()

        assert asyncio.run(read()) == [("pooled",)]

    @needs.feature("sql.branching")
    def test_a_branch_has_the_parents_data_and_then_goes_its_own_way(self, deployment, app):
        from skyrig_conformance.deployment import MAIN

        with app.resources.ledger.connect() as connection:
            connection.execute("INSERT INTO entries (note) VALUES ('before the branch')")
        provider = deployment.provider()
        entry = provider.branch_database(deployment.context(MAIN), "ledger", "ledger-branch")
        branch = provider.data_plane("sql_database", entry, app.config)
        with branch.connect() as connection:
            notes = [row[0] for row in connection.execute("SELECT note FROM entries")]
            assert "before the branch" in notes, "the branch lacks the parent's data"
            connection.execute("INSERT INTO entries (note) VALUES ('only in the branch')")
        with app.resources.ledger.connect() as connection:
            found = connection.execute("SELECT count(*) FROM entries WHERE note = 'only in the branch'")
            assert found.fetchone()[0] == 0, "a write to the branch reached its parent"
