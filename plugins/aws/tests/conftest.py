"""The AWS provider's tests: the conformance suite's profile, and a moto server for test_aws.py."""

from __future__ import annotations

import urllib.request
from collections.abc import Iterator

import pytest

from skyrig_aws.conformance import CREDENTIALS, moto_server
from skyrig_conformance import provider_profile
from skyrig_conformance.profile import environment

skyrig_profile = provider_profile("aws")


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    """moto's server for this test process (each xdist worker starts its own)."""
    with environment(CREDENTIALS), moto_server() as endpoint:
        yield endpoint


@pytest.fixture
def moto(moto_endpoint: str) -> str:
    """moto's server, wiped before the test."""
    request = urllib.request.Request(f"{moto_endpoint}/moto-api/reset", method="POST")
    urllib.request.urlopen(request, timeout=10).read()
    return moto_endpoint
