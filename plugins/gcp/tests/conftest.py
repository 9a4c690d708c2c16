"""The GCP provider's tests: the conformance suite's profile (emulators and the FAKE), and the same
backends for the provider's own tests."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from skyrig_conformance import provider_profile
from skyrig_conformance.folder import AppFolder
from skyrig_gcp.conformance import backends, settings

skyrig_profile = provider_profile("gcp")


@pytest.fixture(scope="session")
def gcp_backends() -> Iterator[tuple[dict[str, str], dict[str, str], Any, dict[str, str]]]:
    """The FAKE, fake-gcs-server and the Pub/Sub emulator for this test process (each xdist worker starts
    its own): (endpoints, environment, the fake, limits)."""
    with backends() as found:
        yield found


@pytest.fixture
def fake(gcp_backends: tuple[dict[str, str], dict[str, str], Any, dict[str, str]]) -> Any:
    """The FAKE Google APIs, wiped before the test (the conformance project still known)."""
    fake = gcp_backends[2]
    fake.reset()
    return fake


@pytest.fixture
def gcp_app(
    gcp_backends: tuple[dict[str, str], dict[str, str], Any, dict[str, str]],
    fake: Any,
    tmp_path: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> AppFolder:
    """An app in ``tmp_path`` on the emulators and the (wiped) FAKE (``.endpoints``: theirs)."""
    for key, value in gcp_backends[1].items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("SKYRIG_RETRY_BASE_MS", "1")
    endpoints = gcp_backends[0]
    return AppFolder(tmp_path, "gcp", settings(endpoints), endpoints=endpoints)
