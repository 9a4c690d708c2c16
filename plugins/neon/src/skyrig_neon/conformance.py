"""The Neon provider's conformance profile: the FAKE Neon API (:mod:`skyrig_neon.fake`, not Neon: Neon
ships no emulator), which validates every request against Neon's OpenAPI description and keeps each branch
in a real PostgreSQL server, so that the suite's data plane checks and ``sql.branching`` run against real
databases. Neon provisions only SQL databases: every other family of the suite's environments is handed to
the memory provider.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from skyrig_neon.settings import API_KEY_VARIABLE


def settings(api_url: str) -> dict[str, Any]:
    """Provider settings for the FAKE at ``api_url``: short waits (its operations finish in a fraction of
    a second)."""
    return {"api_url": api_url, "wait_delay": 0.05, "wait_timeout": 60, "max_attempts": 3}


def families() -> dict[str, str]:
    """Every family but ``sql`` on the memory provider."""
    from skyrig.provider import FAMILIES

    return {family: "memory" for family in FAMILIES if family != "sql"}


def profile_for(neon: Any) -> Any:
    """The suite's profile on a running FAKE ``neon`` (:class:`skyrig_neon.fake.FakeNeon`)."""
    from skyrig_conformance import Profile

    return Profile(
        provider="neon",
        environment_type="development",
        settings=settings(neon.api_url),
        environ={API_KEY_VARIABLE: neon.api_key},
        families=families(),
    )


@contextmanager
def profile() -> Iterator[Any]:
    """The profile ``skyrig conformance neon`` uses: a FAKE of its own. Raises ``RuntimeError`` where the
    FAKE cannot start (Neon's OpenAPI description is not installed: it names the command that installs
    it)."""
    from skyrig_neon.fake import FakeNeon

    with FakeNeon() as neon:
        yield profile_for(neon)
