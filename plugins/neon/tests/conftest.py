"""The Neon provider's tests: one FAKE Neon API per test process (each xdist worker starts its own), for
the conformance suite's profile and for the provider's own tests. Where Neon's OpenAPI description is not
installed, the FAKE cannot start and every test here is skipped with the command that installs it."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from typing import Any

import pytest

from skyrig_conformance.profile import entered


@pytest.fixture(scope="session")
def fake_neon() -> Iterator[Any]:
    """The FAKE Neon API for this test process."""
    from skyrig_neon.fake import FakeNeon

    with ExitStack() as stack:
        try:
            neon = stack.enter_context(FakeNeon(operation_delay=0.05))
        except RuntimeError as error:
            pytest.skip(str(error))
        yield neon


@pytest.fixture(scope="session", name="skyrig_profile")
def skyrig_profile(fake_neon: Any) -> Iterator[Any]:
    """The conformance suite's profile on the process's FAKE (every family but sql on memory)."""
    from skyrig_neon.conformance import profile_for

    @contextmanager
    def factory() -> Iterator[Any]:
        yield profile_for(fake_neon)

    with entered(factory) as profile:
        yield profile
