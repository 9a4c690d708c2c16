"""The template provider's conformance profile: how the suite reaches its backend.

Its vault is a folder, so there is nothing to start. A provider whose backend is an emulator starts it
here (on 127.0.0.1, on a free port) and stops it on exit. The template provisions only secrets, so the
suite's environments hand services (the ``compute`` family) to the reference provider ``memory``.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from skyrig_conformance import Profile


@contextmanager
def profile() -> Iterator[Profile]:
    yield Profile(provider="template", environment_type="development", families={"compute": "memory"})
