"""skyrig's pytest plugin (entry point ``pytest11``): inert unless ``skyrig test`` started the run.

In a run that ``skyrig test`` started, it binds every resource of the app to its test client before any
test runs and registers the fixtures of :mod:`skyrig.testing.fixtures`. In any other pytest run it does
nothing at all, so installing skyrig never changes someone else's test suite.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pytest

NAME = "skyrig-fixtures"
SESSION_VARIABLE = "SKYRIG_TEST_SESSION"
"""Set by ``skyrig test`` for pytest: the session file. The plugin is inert without it."""


def pytest_configure(config: pytest.Config) -> None:
    """Start the harness and register the fixtures, in a run of ``skyrig test`` only."""
    if not os.environ.get(SESSION_VARIABLE):
        return
    from skyrig.testing.fixtures import Fixtures
    from skyrig.testing.harness import load

    harness = load()
    assert harness is not None
    harness.install()
    config.pluginmanager.register(Fixtures(harness), NAME)


def pytest_unconfigure(config: pytest.Config) -> None:
    """Give back this process's test databases."""
    fixtures = config.pluginmanager.get_plugin(NAME)
    if fixtures is not None:
        fixtures.harness.close()
