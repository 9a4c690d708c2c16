"""The local provider's conformance profile: its own embedded servers, nothing to emulate."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from skyrig_conformance import Profile


@contextmanager
def profile() -> Iterator[Profile]:
    """The local environment type, with the object server on a free port of this run's."""
    from skyrig.provider import free_port

    yield Profile(provider="local", environment_type="local", settings={"objects_port": free_port()})
