"""The suite's test classes. A provider's ``tests/test_conformance.py`` imports them all, unmodified::

from skyrig_conformance.suite import *  # noqa: F403
"""

from skyrig_conformance.suite.cache import TestCache
from skyrig_conformance.suite.cron import TestCron
from skyrig_conformance.suite.faults import TestFaults
from skyrig_conformance.suite.features import TestWhatIsNotClaimed
from skyrig_conformance.suite.lifecycle import TestLifecycle
from skyrig_conformance.suite.objects import TestObjects
from skyrig_conformance.suite.pubsub import TestPubSub
from skyrig_conformance.suite.robustness import TestRobustness
from skyrig_conformance.suite.secrets import TestSecrets
from skyrig_conformance.suite.sql import TestSQL

__all__ = [
    "TestCache",
    "TestCron",
    "TestFaults",
    "TestLifecycle",
    "TestObjects",
    "TestPubSub",
    "TestRobustness",
    "TestSQL",
    "TestSecrets",
    "TestWhatIsNotClaimed",
]
