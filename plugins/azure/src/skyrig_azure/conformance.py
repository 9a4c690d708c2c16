"""The Azure provider's conformance profile: Azurite for Blob Storage, and skyrig's FAKES where Azure has no
emulator that runs here.

- Blob Storage: Azurite over HTTPS with OAuth (through ``skyrig_state_azblob.testing``, which the azblob://
  store's tests share), so that Entra ID tokens and user delegation SAS work as in Azure.
- Azure Resource Manager (every management call) and Key Vault's secrets: the FAKE ARM
  (:mod:`skyrig_azure.fake`), which checks every request body against the azure-mgmt-* SDKs' own models
  and answers long-running operations through ``Azure-AsyncOperation`` polling.
- Service Bus: the FAKE broker (:mod:`skyrig_azure.fake.servicebus`), an AMQP 1.0 server that the real
  azure-servicebus client talks to, enforcing lock duration, max delivery count and dead-lettering,
  sessions and duplicate detection.
- The PostgreSQL servers and caches the FAKE reports have no server behind them: the suite's stand-ins (a
  real PostgreSQL, a real Redis) take their place in the runtime config, as on AWS with moto.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

SUBSCRIPTION = "00000000-0000-4000-8000-5c0f0c0ffee5"
"""The subscription the suite provisions in (the fake knows it from the start)."""
LOCATION = "eastus"


def settings(endpoints: dict[str, str], ca_bundle: str) -> dict[str, Any]:
    """Provider settings for the fakes and Azurite at ``endpoints``: no long waits."""
    return {
        "subscription_id": SUBSCRIPTION,
        "location": LOCATION,
        "endpoints": endpoints,
        "emulator": "fake",
        "ca_bundle": ca_bundle,
        "wait_delay": 0.05,
        "wait_timeout": 30,
        "max_attempts": 2,
        "image": "skyrigconformance.azurecr.io/app:test",
    }


@contextmanager
def backends() -> Iterator[tuple[dict[str, str], dict[str, str], Any, dict[str, str], str]]:
    """The FAKE ARM (with Key Vault), the FAKE Service Bus broker and Azurite until the block ends: yields
    (endpoints, process environment, the fake ARM, limits: what cannot be shown here and why, the CA
    bundle every endpoint's certificate is checked with)."""
    from skyrig_azure.fake import FakeAzure
    from skyrig_azure.fake.servicebus import FakeServiceBus
    from skyrig_state_azblob.testing import azurite

    with ExitStack() as stack:
        fake = stack.enter_context(FakeAzure(subscription=SUBSCRIPTION, lro_delay=0.1))
        broker = stack.enter_context(FakeServiceBus())
        storage = stack.enter_context(azurite(https=True))
        fake.connect(servicebus=broker, blob_endpoint=storage.endpoint, blob_ca_bundle=storage.ca_bundle)
        folder = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="skyrig-azure-ca-")))
        bundle = folder / "ca.pem"
        bundle.write_text(Path(fake.ca_bundle).read_text() + Path(storage.ca_bundle).read_text())
        endpoints = {"arm": fake.endpoint, "servicebus": broker.address}
        environ = {"REQUESTS_CA_BUNDLE": str(bundle), "SSL_CERT_FILE": str(bundle)}
        limits = {
            "objects.versions": "Azurite keeps no blob versions (it accepts versioning on an account and "
            "ignores it), so a versioned bucket's earlier versions cannot be read back here",
            "objects.public_url_fetch": "a public bucket's URL is its Azure Front Door endpoint's host, "
            "which the FAKE ARM records but nothing serves here",
        }
        yield endpoints, environ, fake, limits, str(bundle)


@contextmanager
def profile() -> Iterator[Any]:
    """The profile ``skyrig conformance azure`` and the provider's tests use."""
    from skyrig_conformance import Profile, stand_ins

    with backends() as (endpoints, environ, _fake, limits, bundle):
        yield Profile(
            provider="azure",
            environment_type="development",
            settings=settings(endpoints, bundle),
            environ=environ,
            stand_ins={"sql_database": stand_ins.postgres(), "cache_cluster": stand_ins.redis()},
            limits=limits,
        )
