"""The Azure provider's tests: the conformance suite's profile (Azurite and the FAKES of Azure Resource
Manager, Key Vault and Service Bus), and the same backends for the provider's own tests."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from skyrig_azure.conformance import SUBSCRIPTION, backends, settings
from skyrig_conformance import provider_profile
from skyrig_conformance.folder import AppFolder

skyrig_profile = provider_profile("azure")


Backends = tuple[dict[str, str], dict[str, str], Any, dict[str, str], str]


@pytest.fixture(scope="session")
def all_backends() -> Iterator[Backends]:
    """The FAKE ARM, the FAKE Service Bus broker and Azurite for this test process (each xdist worker
    starts its own): (endpoints, environment, the fake ARM, limits, CA bundle)."""
    with backends() as found:
        yield found


@pytest.fixture(scope="module")
def azure_backends(request: pytest.FixtureRequest) -> Iterator[Backends]:
    """A test module's backends, shaped as :func:`all_backends`: those, or, in a module that sets
    ``ARM_ONLY = True`` (its family needs neither Service Bus nor Blob Storage), the FAKE ARM (with Key
    Vault) alone, started for the module."""
    if not getattr(request.module, "ARM_ONLY", False):
        yield request.getfixturevalue("all_backends")
        return
    from skyrig_azure.fake import FakeAzure

    with FakeAzure(subscription=SUBSCRIPTION, lro_delay=0.05) as arm:
        environ = {"REQUESTS_CA_BUNDLE": arm.ca_bundle, "SSL_CERT_FILE": arm.ca_bundle}
        yield {"arm": arm.endpoint}, environ, arm, {}, arm.ca_bundle


@pytest.fixture(scope="module")
def arm(azure_backends: Backends) -> Any:
    """The module's FAKE Azure Resource Manager as it is (:func:`fake` wipes it first)."""
    return azure_backends[2]


@pytest.fixture
def fake(azure_backends: Backends) -> Any:
    """The FAKE Azure Resource Manager, wiped before the test (the conformance subscription still known)."""
    fake = azure_backends[2]
    fake.reset()
    return fake


@pytest.fixture
def azure_app(
    azure_backends: Backends, fake: Any, tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> AppFolder:
    """An app in ``tmp_path`` on Azurite and the (wiped) FAKES (``.endpoints``: theirs)."""
    for key, value in azure_backends[1].items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("SKYRIG_RETRY_BASE_MS", "1")
    endpoints, bundle = azure_backends[0], azure_backends[4]
    return AppFolder(tmp_path, "azure", settings(endpoints, bundle), endpoints=endpoints)


@pytest.fixture
def deploy(azure_app: AppFolder) -> Callable[[dict[str, str]], AppFolder]:
    """Writes ``files`` as :func:`azure_app` with its services (compute) and cron on the memory provider,
    for a module about another family; returns the app."""

    def write(files: dict[str, str]) -> AppFolder:
        azure_app.write(files)
        toml = azure_app.root / "skyrig.toml"
        text = toml.read_text().replace(
            'provider = "azure"\n', 'provider = "azure"\ncompute = "memory"\ncron = "memory"\n'
        )
        toml.write_text(text)
        return azure_app

    return write


@pytest.fixture
def suite_app(
    azure_backends: Backends, fake: Any, tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Callable[[Any, tuple[str, ...], dict[str, str]], Any]]:
    """Makes the conformance suite's app (``make(manifest, modules, others)``: what ``manifest`` provisions
    declared, the provider expanding ``modules``, the families ``others`` on other providers), written but
    not applied, with the secrets' data plane cache forgotten; destroyed with its data at the end."""
    from skyrig_azure import AzureProvider
    from skyrig_azure.runtime import secrets
    from skyrig_conformance import Profile
    from skyrig_conformance.deployment import MAIN, Deployment

    made: list[Deployment] = []

    def make(manifest: Any, modules: tuple[str, ...], others: dict[str, str]) -> Deployment:
        endpoints, environ, _fake, _limits, bundle = azure_backends
        for key, value in {**environ, "SKYRIG_RETRY_BASE_MS": "1"}.items():
            monkeypatch.setenv(key, value)
        monkeypatch.setattr(AzureProvider, "modules", modules)
        profile = Profile(provider="azure", settings=settings(endpoints, bundle), families=others)
        made.append(Deployment(tmp_path / "app", profile, manifest))
        secrets.forget()
        return made[-1]

    yield make
    for deployment in made:
        deployment.cli("destroy", "--env", MAIN, "--yes", "--include-data")
