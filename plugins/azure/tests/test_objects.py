"""The objects family: the storage account and its blob containers, and Azure Front Door in front of the
public ones, against the FAKE Azure Resource Manager (:mod:`skyrig_azure.fake`: not Azure, Resource
Manager has no emulator), read back with Microsoft's own management clients (azure-mgmt-storage,
azure-mgmt-cdn) as someone checking the portal would; blobs through the runtime client against Azurite
(Microsoft's Storage emulator, over HTTPS with OAuth: Entra ID tokens and user delegation SAS checked as in
Azure), into which the FAKE mirrors each container it makes.

Nothing serves a Front Door endpoint here (the FAKE answers its management API only): the public URL is
read back, not fetched; anonymous reads are shown on the blob endpoint itself. Azurite keeps no blob
versions: versioning is read back from Resource Manager, not exercised. The suite's services run on the
memory provider (their families are not this module's).
"""

from __future__ import annotations

import dataclasses
import shutil
import ssl
import urllib.error
import urllib.request
from typing import Any

import pytest

from skyrig.plugins.registry import load_provider
from skyrig_azure import AzureProvider, api, names
from skyrig_azure.conformance import SUBSCRIPTION
from skyrig_conformance.deployment import MAIN, Deployment

OTHERS = {family: "memory" for family in ("compute", "sql", "pubsub", "cache", "cron")}
OURS = dataclasses.replace(
    load_provider("azure").manifest,
    kinds=frozenset({"bucket", "secret"}),
    features=frozenset({"bucket.public", "bucket.versioning"}),
    together={},
    traits=frozenset(),
)
"""The manifest the suite's app is written for: only this module's families' kinds are declared."""
MODULES = ("skyrig_azure.network", "skyrig_azure.objects", "skyrig_azure.secrets")
SCOPES = ["https://management.azure.com/.default"]
STORAGE, CDN = "Microsoft.Storage", "Microsoft.Cdn"


@pytest.fixture
def app(suite_app: Any) -> Deployment:
    """The conformance suite's app (buckets files, history versioned, assets public; secret api-key) on
    Azure for objects and secrets, written but not applied; destroyed with its data at the end."""
    return suite_app(OURS, MODULES, OTHERS)


def mgmt(app: Deployment, cls: Any) -> Any:
    """A management client of the FAKE, as the portal would read it."""
    from skyrig_azure.credentials import EmulatorCredential

    arm = app.profile.settings["endpoints"]["arm"]
    return cls(EmulatorCredential(), SUBSCRIPTION, base_url=arm, credential_scopes=SCOPES)


def storage(app: Deployment) -> Any:
    from azure.mgmt.storage import StorageManagementClient

    return mgmt(app, StorageManagementClient)


def cdn(app: Deployment) -> Any:
    from azure.mgmt.cdn import CdnManagementClient

    return mgmt(app, CdnManagementClient)


def group(app: Deployment) -> str:
    return names.resource_group_name(app.app, MAIN)


def account(app: Deployment) -> str:
    return names.storage_account_name(SUBSCRIPTION, app.app, MAIN)


def container(app: Deployment, bucket: str) -> str:
    return names.container_name(app.app, MAIN, bucket)


def part(app: Deployment, name: str) -> str:
    return names.front_door_name(app.app, MAIN, name)


def account_id(app: Deployment) -> str:
    return (
        f"/subscriptions/{SUBSCRIPTION}/resourceGroups/{group(app)}/providers/Microsoft.Storage/"
        f"storageAccounts/{account(app)}"
    )


def fetch(url: str, bundle: str, method: str = "GET", data: bytes | None = None, **headers: str) -> int:
    """The HTTP status of ``url``, fetched anonymously (the CA bundle trusts Azurite)."""
    request = urllib.request.Request(url, data=data, method=method, headers=headers)
    context = ssl.create_default_context(cafile=bundle)
    try:
        with urllib.request.urlopen(request, timeout=30, context=context) as response:
            return int(response.status)
    except urllib.error.HTTPError as error:
        return int(error.code)


def test_the_account_is_https_only_tls12_keyless_and_public_only_where_a_bucket_is(app: Deployment) -> None:
    app.apply()
    client = storage(app)
    found = client.storage_accounts.get_properties(group(app), account(app)).as_dict()
    p = found["properties"]
    assert (found["kind"], found["sku"]["name"], found["location"]) == ("StorageV2", "Standard_LRS", "eastus")
    assert p["supportsHttpsTrafficOnly"] is True and p["minimumTlsVersion"] == "TLS1_2"
    assert p["allowSharedKeyAccess"] is False, "shared key access is on: anyone with the key reads everything"
    assert p["allowBlobPublicAccess"] is True, "a bucket is public: the account must allow it"
    assert found["tags"] == names.tags(app.app, MAIN, names.STORAGE_ACCOUNT_ID)
    service = client.blob_services.get_service_properties(group(app), account(app)).as_dict()
    assert service["properties"]["isVersioningEnabled"] is True, "a versioned bucket and no versioning"
    containers = {
        c.name: c.as_dict()["properties"] for c in client.blob_containers.list(group(app), account(app))
    }
    assert {n: c["publicAccess"] for n, c in containers.items()} == {
        container(app, "files"): "None",
        container(app, "history"): "None",
        container(app, "assets"): "Blob",
    }, "anonymous reads on the public bucket only (and never a listing of it)"
    assert containers[container(app, "files")]["metadata"]["skyrig_app"] == app.app


def test_the_runtime_reads_and_writes_blobs_with_its_token_and_signs_urls_with_a_delegation_key(
    app: Deployment, azure_backends: Any
) -> None:
    app.apply()
    bundle = azure_backends[4]
    resources = app.bind("alpha").resources
    try:
        files, assets = resources.files, resources.assets
        files.upload("a/one.txt", b"one")
        assert files.download("a/one.txt") == b"one" and files.list("a/") == ["a/one.txt"]
        url = files.signed_url("a/one.txt", "5m")
        assert "skoid=" in url and "sig=" in url, "not a user delegation SAS"
        assert fetch(url, bundle) == 200
        assert fetch(url[:-1] + ("0" if url[-1] != "0" else "1"), bundle) == 403, (
            "a tampered URL was honoured"
        )
        put = files.signed_url("a/two.txt", "5m", "PUT")
        assert fetch(put, bundle, "PUT", b"two", **{"x-ms-blob-type": "BlockBlob"}) == 201
        assert files.download("a/two.txt") == b"two"
        with pytest.raises(ValueError, match="7 days"):
            files.signed_url("a/one.txt", "8d")
        with pytest.raises(PermissionError):
            files.public_url("a/one.txt")
        assets.upload("logo.svg", b"<svg/>")
        endpoint = app.bind("alpha").config["resources"]["bucket/files"]["endpoint"]
        assert fetch(f"{endpoint}/{container(app, 'assets')}/logo.svg", bundle) == 200, (
            "public blob not served"
        )
        assert fetch(f"{endpoint}/{container(app, 'files')}/a/one.txt", bundle) in (403, 404), (
            "a private blob was served to anyone"
        )
        files.remove("a/one.txt")
        files.remove("never-there")
        with pytest.raises(KeyError):
            files.download("a/one.txt")
    finally:
        app.unbind()


def test_a_public_bucket_is_served_through_front_door_from_the_blob_endpoint(app: Deployment) -> None:
    app.apply()
    client, rg = cdn(app), group(app)
    profile = client.profiles.get(rg, part(app, "profile")).as_dict()
    assert profile["sku"]["name"] == "Standard_AzureFrontDoor" and profile["location"] == "global"
    endpoint = client.afd_endpoints.get(rg, part(app, "profile"), part(app, "endpoint")).as_dict()
    host = endpoint["properties"]["hostName"]
    assert host.endswith(".z01.azurefd.net") and endpoint["properties"]["enabledState"] == "Enabled"
    origin = client.afd_origins.get(
        rg, part(app, "profile"), part(app, "origins"), part(app, "blob")
    ).as_dict()
    blob = f"{account(app)}.blob.core.windows.net"
    assert origin["properties"]["hostName"] == blob
    assert origin["properties"]["originHostHeader"] == blob, "Blob Storage answers only its own host name"
    assert origin["properties"]["enforceCertificateNameCheck"] is True
    route = client.routes.get(rg, part(app, "profile"), part(app, "endpoint"), part(app, "buckets")).as_dict()
    r = route["properties"]
    assert r["patternsToMatch"] == [f"/{container(app, 'assets')}/*"], "the public bucket only"
    assert r["originGroup"]["id"].endswith(f"/originGroups/{part(app, 'origins')}")
    assert (r["linkToDefaultDomain"], r["httpsRedirect"], r["forwardingProtocol"]) == (
        "Enabled",
        "Enabled",
        "HttpsOnly",
    )
    config = app.bind("alpha").config["resources"]
    app.unbind()
    assert config["bucket/assets"]["public_url"] == f"https://{host}/{container(app, 'assets')}"
    assert "public_url" not in config["bucket/files"]


def test_a_second_apply_changes_nothing_and_a_refresh_reads_each_resource_once(
    app: Deployment, fake: Any
) -> None:
    app.apply()
    fake.calls.clear()
    api.CALLS.clear()
    assert "nothing to do" in app.apply().text
    assert fake.calls.mutating(STORAGE) == [] and fake.calls.mutating(CDN) == []
    assert api.CALLS[("Microsoft.Storage/storageAccounts/blobServices/containers", "GET")] == 1, (
        "one list call reads every container"
    )
    assert api.CALLS[("Microsoft.Storage/storageAccounts", "GET")] <= 2
    for kind in ("profiles", "profiles/afdEndpoints", "profiles/originGroups/origins"):
        assert api.CALLS[(f"Microsoft.Cdn/{kind}", "GET")] <= 2, kind


def test_portal_changes_to_invariants_are_restored_and_the_redundancy_is_adopted(
    app: Deployment, fake: Any
) -> None:
    app.apply()
    fake.edit(
        account_id(app), {"sku": {"name": "Standard_GRS"}, "properties": {"allowSharedKeyAccess": True}}
    )
    files = f"{account_id(app)}/blobServices/default/containers/{container(app, 'files')}"
    fake.edit(files, {"properties": {"publicAccess": "Container"}})
    changes = app.changes(app.plan())
    assert sorted((c["node"], c["action"]) for c in changes) == [
        (names.STORAGE_ACCOUNT_ID, "update"),
        (names.container_id("files"), "update"),
    ]
    app.apply()
    client = storage(app)
    found = client.storage_accounts.get_properties(group(app), account(app)).as_dict()
    assert found["properties"]["allowSharedKeyAccess"] is False, "shared key access was left on"
    assert found["sku"]["name"] == "Standard_GRS", "the redundancy chosen in the portal was reverted"
    public = client.blob_containers.get(group(app), account(app), container(app, "files")).as_dict()
    assert public["properties"]["publicAccess"] == "None", "a private bucket was left public"
    assert app.changes(app.plan()) == []


def test_previous_versions_go_after_a_day_where_a_bucket_is_not_versioned_and_other_rules_stay(
    app: Deployment,
) -> None:
    """Versioning is the whole account's: skyrig's lifecycle rule deletes the previous versions in the
    containers not declared versioned; a rule someone adds to the account's one policy is kept."""
    app.apply()
    policies = storage(app).management_policies
    policy = policies.get(group(app), account(app), "default").as_dict()
    [rule] = policy["properties"]["policy"]["rules"]
    assert rule["definition"]["actions"] == {"version": {"delete": {"daysAfterCreationGreaterThan": 1}}}
    assert sorted(rule["definition"]["filters"]["prefixMatch"]) == sorted(
        f"{container(app, b)}/" for b in ("files", "assets")
    ), "the versioned bucket's versions would go, or another's stay"
    mine = {
        "enabled": True,
        "name": "mine",
        "type": "Lifecycle",
        "definition": {
            "actions": {"baseBlob": {"delete": {"daysAfterModificationGreaterThan": 30}}},
            "filters": {"blobTypes": ["blockBlob"], "prefixMatch": [f"{container(app, 'history')}/old/"]},
        },
    }
    policies.create_or_update(
        group(app), account(app), "default", {"properties": {"policy": {"rules": [mine]}}}
    )
    assert [(c["node"], c["action"]) for c in app.changes(app.plan())] == [("objects.lifecycle", "update")]
    app.apply()
    rules = policies.get(group(app), account(app), "default").as_dict()["properties"]["policy"]["rules"]
    assert sorted(r["name"] for r in rules) == ["mine", "skyrig-unversioned-1"], "a rule of the user's went"
    assert app.changes(app.plan()) == []


def test_an_interrupted_create_converges(app: Deployment, fake: Any) -> None:
    """A create that died before the account existed, then state lost after everything was made: the next
    applies make what is missing and adopt the rest, never a twin."""
    from skyrig.cli.testing import invoke

    fake.inject(400, type="Microsoft.Storage/storageAccounts", method="PUT", code="Interrupted")
    result = invoke(["apply", "--env", MAIN, "--yes", "-C", str(app.root)])
    assert result.code != 0 and "Interrupted" in result.text
    assert fake.resources("Microsoft.Storage/storageAccounts") == []
    app.apply()
    shutil.rmtree(app.root / ".skyrig")
    fake.calls.clear()
    app.apply()
    assert fake.calls.count("Microsoft.Storage/storageAccounts", "PUT") == 0, "the account was made again"
    assert fake.calls.count("Microsoft.Cdn/profiles", "PUT") == 0, "the profile was made again"
    assert len(fake.resources("Microsoft.Storage/storageAccounts/blobServices/containers")) == 3
    assert app.changes(app.plan()) == []


def test_an_account_azure_was_still_making_when_the_apply_died_is_waited_for(
    app: Deployment, fake: Any
) -> None:
    """The apply died right after asking for the account: the next one finds it still being made, waits
    (nothing can be made in it before), and makes the rest, without asking for the account again."""
    from azure.mgmt.resource.resources import ResourceManagementClient

    resources = mgmt(app, ResourceManagementClient).resource_groups
    tags = names.tags(app.app, MAIN, names.RESOURCE_GROUP_ID)
    resources.create_or_update(group(app), {"location": "eastus", "tags": tags})
    body = {
        "location": "eastus",
        "kind": "StorageV2",
        "sku": {"name": "Standard_LRS"},
        "tags": names.tags(app.app, MAIN, names.STORAGE_ACCOUNT_ID),
        "properties": {
            "allowSharedKeyAccess": False,
            "allowBlobPublicAccess": True,
            "minimumTlsVersion": "TLS1_2",
        },
    }
    delay, fake.lro_delay = fake.lro_delay, 1.5
    try:
        storage(app).storage_accounts.begin_create(group(app), account(app), body)  # not waited for
        fake.calls.clear()
        app.apply()
    finally:
        fake.lro_delay = delay
    assert fake.calls.count("Microsoft.Storage/storageAccounts", "PUT") == 0, (
        "the account was asked for again"
    )
    assert len(fake.resources("Microsoft.Storage/storageAccounts/blobServices/containers")) == 3
    assert app.changes(app.plan()) == []


def test_destroy_keeps_the_data_unless_include_data_and_then_leaves_nothing(
    app: Deployment, fake: Any
) -> None:
    app.apply()
    app.ok("destroy", "--env", MAIN, "--yes")
    assert fake.resources("Microsoft.Storage/storageAccounts"), "the account holds data: kept"
    assert len(fake.resources("Microsoft.Storage/storageAccounts/blobServices/containers")) == 3
    assert fake.resources("Microsoft.Cdn/profiles") == [], "Front Door holds no data: deleted"
    app.apply()
    app.ok("destroy", "--env", MAIN, "--yes", "--include-data")
    for kind in ("Microsoft.Storage/storageAccounts", "Microsoft.Cdn/profiles", "Microsoft.KeyVault/vaults"):
        assert fake.resources(kind) == [], f"{kind} left after --include-data"
    assert app.inventory() == []


SERVICE = {
    "web/__init__.py": """
        from skyrig import Bucket, Service

        service = Service("web", app="web.app:app")
        {buckets}
    """,
    "web/app.py": """
        async def app(scope, receive, send):
            pass
    """,
}


def web(azure_app: Any, buckets: str, production: bool = False) -> None:
    """The one-service app with ``buckets``, its service on the memory provider."""
    azure_app.write({**SERVICE, "web/__init__.py": SERVICE["web/__init__.py"].replace("{buckets}", buckets)})
    toml = azure_app.root / "skyrig.toml"
    others = "".join(f'{family} = "memory"\n' for family in OTHERS)
    text = toml.read_text().replace('provider = "azure"\n', f'provider = "azure"\n{others}')
    if production:
        text = text.replace('type = "development"', 'type = "production"')
    toml.write_text(text)


def test_front_door_is_there_for_public_buckets_only_and_routes_each(
    azure_app: Any, fake: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(AzureProvider, "modules", MODULES)
    web(azure_app, 'files = Bucket("files")')
    azure_app.apply()
    assert fake.resources("Microsoft.Cdn/profiles") == [], "no public bucket: no Front Door"
    properties = fake.resource(fake.resources("Microsoft.Storage/storageAccounts")[0])["properties"]
    assert properties["allowBlobPublicAccess"] is False, "no public bucket: no public access allowed"
    web(
        azure_app,
        'files = Bucket("files")\n        pics = Bucket("pics", public=True)\n'
        '        assets = Bucket("assets", public=True)',
    )
    azure_app.apply()
    [route] = fake.resources("Microsoft.Cdn/profiles/afdEndpoints/routes")
    expected = sorted(f"/{names.container_name(azure_app.name, 'dev', b)}/*" for b in ("assets", "pics"))
    assert fake.resource(route)["properties"]["patternsToMatch"] == expected, "each public bucket routed"
    assert azure_app.plan() == []
    web(azure_app, 'files = Bucket("files")\n        assets = Bucket("assets", public=True)')
    azure_app.apply()
    assert fake.resource(route)["properties"]["patternsToMatch"] == [
        f"/{names.container_name(azure_app.name, 'dev', 'assets')}/*"
    ], "a bucket no longer public is no longer routed"
    web(azure_app, 'files = Bucket("files")')
    azure_app.apply()
    assert fake.resources("Microsoft.Cdn/profiles") == [], "Front Door left without a public bucket"
    azure_app.cli("destroy", "--env", "dev", "--yes", "--include-data")
    assert fake.resources("Microsoft.Storage/storageAccounts") == []


def test_production_keeps_three_copies_in_three_zones(
    azure_app: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(AzureProvider, "modules", MODULES)
    web(azure_app, 'files = Bucket("files")', production=True)
    assert azure_app.graph()[names.STORAGE_ACCOUNT_ID]["properties"]["sku"] == "Standard_ZRS"
    web(azure_app, 'files = Bucket("files")')
    assert azure_app.graph()[names.STORAGE_ACCOUNT_ID]["properties"]["sku"] == "Standard_LRS"


def test_the_fake_refuses_what_azure_refuses(app: Deployment) -> None:
    """The FAKE's rules that the provider's requests must meet, shown with the real clients."""
    from azure.core.exceptions import HttpResponseError
    from azure.mgmt.resource.resources import ResourceManagementClient

    app.apply()
    client, rg, name = storage(app), group(app), account(app)
    client.storage_accounts.update(rg, name, {"properties": {"allowBlobPublicAccess": False}})
    with pytest.raises(HttpResponseError, match="PublicAccessNotPermitted"):
        client.blob_containers.create(rg, name, "opened", {"properties": {"publicAccess": "Blob"}})
    with pytest.raises(HttpResponseError, match="OperationNotAllowed"):
        client.storage_accounts.update(rg, name, {"sku": {"name": "Standard_ZRS"}})
    other_group = f"{rg}-other"  # account names are Azure's, not a resource group's
    mgmt(app, ResourceManagementClient).resource_groups.create_or_update(other_group, {"location": "eastus"})
    body = {"location": "eastus", "kind": "StorageV2", "sku": {"name": "Standard_LRS"}}
    with pytest.raises(HttpResponseError, match="StorageAccountAlreadyTaken"):
        client.storage_accounts.begin_create(other_group, name, body)
    front, profile = cdn(app), part(app, "profile")
    with pytest.raises(HttpResponseError, match="hostName"):
        front.afd_origins.begin_create(rg, profile, part(app, "origins"), "bare", {"properties": {}}).result()
    group_id = (
        f"/subscriptions/{SUBSCRIPTION}/resourceGroups/{rg}/providers/Microsoft.Cdn/profiles/{profile}/"
        f"originGroups/{part(app, 'origins')}"
    )
    twin = {
        "properties": {"originGroup": {"id": group_id}, "patternsToMatch": [f"/{container(app, 'assets')}/*"]}
    }
    with pytest.raises(HttpResponseError, match="Conflict"):
        front.routes.begin_create(rg, profile, part(app, "endpoint"), "twin", twin).result()
    other = {"properties": {"originGroup": {"id": group_id}, "patternsToMatch": ["/elsewhere/*"]}}
    made = front.routes.begin_create(rg, profile, part(app, "endpoint"), "other", other).result().as_dict()
    assert made["properties"]["linkToDefaultDomain"] == "Disabled", "Azure's default: not on the endpoint"
