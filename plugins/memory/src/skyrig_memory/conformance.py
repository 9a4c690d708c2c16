"""The memory provider's conformance profile.

Its cloud is a SQLite file in the app's folder: nothing to start. Its SQL databases have no PostgreSQL
behind them (the cloud records them; their endpoints are made up), so the suite wires their runtime
config to a real PostgreSQL stand-in, where the provider's own SQL data plane connects.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from skyrig_conformance import Profile, stand_ins


@contextmanager
def profile() -> Iterator[Profile]:
    with stand_ins.postgres() as postgres:
        yield Profile(provider="memory", environment_type="development", stand_ins={"sql_database": postgres})
