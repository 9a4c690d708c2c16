"""Credentials: Entra ID's in Azure (``DefaultAzureCredential``: ``az login``, a service principal's
environment variables, a managed identity in App Service), a test token on the emulators and fakes.

The runtime (a service's data plane) takes its credential from here too, so that the same code runs in
App Service and in the tests.

The test token is :class:`skyrig_state_azblob.testing.FakeCredential`'s (an unsigned JWT for whatever scope
is asked, with the claims Entra ID puts in one; Azurite and the fakes take it, nothing in Azure does),
installed with the fakes (the ``fake`` extra) and imported only when a credential for them is asked:
``EmulatorCredential`` names it here.
"""

from __future__ import annotations

from typing import Any


def __getattr__(name: str) -> Any:
    # EmulatorCredential, imported on first use: skyrig-state-azblob comes with the fake extra only
    if name == "EmulatorCredential":
        from skyrig_state_azblob.testing import FakeCredential

        return FakeCredential
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def credential(emulator: str | None) -> Any:
    """The credential calls carry: the test token on the fakes, else ``DefaultAzureCredential`` (its
    tenant is the credentials' own, or ``AZURE_TENANT_ID``)."""
    if emulator == "fake":
        from skyrig_state_azblob.testing import FakeCredential

        return FakeCredential()
    from azure.identity import DefaultAzureCredential

    return DefaultAzureCredential()
