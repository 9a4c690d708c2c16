"""The shop example (three services, every kind of resource) on Azure, against Azurite and the FAKES
(skyrig_azure.fake: Resource Manager and Key Vault, not Azure, which has no emulator of them; the FAKE
Service Bus broker): it applies, re-plans empty, applies again without a mutating call, and destroy leaves
only what holds data (and nothing with ``--include-data``)."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

from skyrig_azure import api

SHOP = Path(__file__).resolve().parents[3] / "examples" / "shop"

KINDS = {
    "services": "Microsoft.Web/sites",
    "jobs": "Microsoft.App/jobs",
    "databases": "Microsoft.DBforPostgreSQL/flexibleServers",
    "caches": "Microsoft.Cache/redis",
    "topics": "Microsoft.ServiceBus/namespaces",
    "buckets": "Microsoft.Storage/storageAccounts",
    "secrets": "Microsoft.KeyVault/vaults",
}
"""The app's kinds, by the Azure resource that holds them (a topic's namespace, a bucket's account, the
secrets' vault)."""

HOLDING_DATA = ("databases", "buckets", "secrets")
"""What ``skyrig destroy`` keeps without ``--include-data``: the database server, the storage account (its
blobs) and the vault (its secrets). A Service Bus namespace is not data (as a Pub/Sub topic on GCP): its
messages in flight go with it."""


@pytest.fixture
def shop(azure_app: Any) -> Any:
    """The shop example's code in an app folder (its own ``skyrig.toml`` replaced)."""
    for entry in SHOP.iterdir():
        if entry.is_dir() and entry.name not in (".skyrig", "__pycache__"):
            shutil.copytree(entry, azure_app.root / entry.name, ignore=shutil.ignore_patterns("__pycache__"))
    azure_app.write({})
    return azure_app


def _left(fake: Any) -> dict[str, list[str]]:
    """What the FAKE still holds of the app's kinds, by kind."""
    return {kind: fake.resources(type_name) for kind, type_name in KINDS.items()}


def test_the_shop_applies_replans_empty_and_a_second_apply_changes_nothing(shop: Any, fake: Any) -> None:
    shop.apply()
    one_by_one = [
        call.path
        for call in fake.calls
        if call.method == "GET"
        and call.status == 404
        and call.type in ("Microsoft.Web/sites", "Microsoft.Network/virtualNetworks/subnets")
        and not call.path.rstrip("/").endswith(("/sites", "/subnets"))
    ]
    assert one_by_one == [], "the lookups before creating list the web apps and subnets, not each by name"
    assert shop.plan() == [], "a plan right after an apply changes nothing"
    left = _left(fake)
    assert all(left.values()), left
    assert len(left["services"]) == 3, "a web app per service"
    fake.calls.clear()
    before = api.mutating_calls().copy()
    shop.apply()
    assert fake.calls.mutating() == [], "a second apply makes no mutating call to the FAKE"
    assert api.mutating_calls() == before, "nor to anything else Azure"


def test_destroy_keeps_what_holds_data_and_with_it_leaves_nothing(shop: Any, fake: Any) -> None:
    shop.apply()
    shop.cli("destroy", "--env", "dev", "--yes")
    left = _left(fake)
    assert all(left[kind] for kind in HOLDING_DATA), left
    assert not any(left[kind] for kind in KINDS if kind not in HOLDING_DATA), left
    shop.cli("destroy", "--env", "dev", "--yes", "--include-data")
    assert all(not ids for ids in _left(fake).values()), _left(fake)
    assert fake.resources() == [], "nothing at all is left of the environment"
    assert shop.plan() and all(change["action"] == "create" for change in shop.plan())
