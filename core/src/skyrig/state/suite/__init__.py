"""The store test suite: what every :class:`~skyrig.state.StateStore` must do, as pytest test classes.

A store (the built-in SQLite one, or a plugin's) passes it before anything relies on it: leases (refused
while held, expiring by themselves, kept by the heartbeat, one winner among processes), fencing (a stale
fence writes nothing), intents, the journal (whole records, durable, a serial that moves), ``finish``,
threads, and crash recovery (a writer killed at any instant leaves old or new records, never torn ones,
and loses nothing it was told was written); and, for a store that is also the optional
:class:`~skyrig.state.StateTransfer`, export, load and a broken lease.

A store plugin runs it from its own tests, with a ``store_factory`` fixture that gives a fresh, empty
state for each test::

    # tests/test_store_suite.py of skyrig-s3
    import uuid

    import pytest

    from skyrig.state.suite import *  # noqa: F403
    from skyrig.state.suite import StoreFactory


    @pytest.fixture
    def store_factory(tmp_path, moto_server):
        return StoreFactory(f"s3://suite-bucket/{uuid.uuid4().hex}", tmp_path, ttl=1.0)

The suite opens the store with :func:`skyrig.state.open_store` (``url``, ``root``) in the test's process
and in the other processes it starts (these inherit the environment, so an emulator's endpoint and
credentials can come from environment variables); the plugin must be installed so that its scheme is
registered. A subclass of :class:`StoreFactory` may override :meth:`StoreFactory.open` to open the
in-process handles differently, as long as they reach the same state as ``url``.

The core runs it against SQLite in ``core/tests/test_state_suite.py``.
"""

from skyrig.state.suite.base import StoreFactory
from skyrig.state.suite.batches import TestBatches, TestSnapshots
from skyrig.state.suite.in_process import (
    TestFencing,
    TestFinish,
    TestIntents,
    TestJournal,
    TestLease,
    TestProtocol,
)
from skyrig.state.suite.processes import TestCrashRecovery, TestLeaseAcrossProcesses
from skyrig.state.suite.transfer import TestTransfer

__all__ = [
    "StoreFactory",
    "TestBatches",
    "TestCrashRecovery",
    "TestFencing",
    "TestFinish",
    "TestIntents",
    "TestJournal",
    "TestLease",
    "TestLeaseAcrossProcesses",
    "TestProtocol",
    "TestSnapshots",
    "TestTransfer",
]
