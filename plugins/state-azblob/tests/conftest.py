"""The Azure Blob Storage store's tests: Azurite, once per test process (each xdist worker starts its own):
over plain HTTP with its well-known key for the store (through ``AZURE_STORAGE_CONNECTION_STRING``, which
the processes the store suite starts inherit), over HTTPS with OAuth for the Entra ID tests; and a container
on each. Without Azurite installed they skip, saying how to install it."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from skyrig_state_azblob.testing import Azurite, azurite, azurite_or_skip

CONTAINER = "skyrig-suite"
SET_ASIDE = ("AZURE_STORAGE_CONNECTION_STRING", "AZURE_STORAGE_KEY", "SKYRIG_AZBLOB_ENDPOINT")


@pytest.fixture(scope="session")
def azurite_http() -> Iterator[Azurite]:
    """Azurite over HTTP, with the environment pointing the store (in this process and in those it starts)
    at it through its connection string, and the container :data:`CONTAINER` made."""
    from azure.storage.blob import BlobServiceClient

    with azurite(https=False, command=azurite_or_skip()) as server:
        saved = {key: os.environ.pop(key, None) for key in SET_ASIDE}
        os.environ["AZURE_STORAGE_CONNECTION_STRING"] = server.connection_string
        try:
            with BlobServiceClient.from_connection_string(server.connection_string) as client:
                client.create_container(CONTAINER)
            yield server
        finally:
            for key, value in saved.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value


@pytest.fixture(scope="session")
def azurite_https() -> Iterator[Azurite]:
    """Azurite over HTTPS (a trustme CA: ``ca_bundle``) with ``--oauth basic``."""
    with azurite(https=True, command=azurite_or_skip()) as server:
        yield server
