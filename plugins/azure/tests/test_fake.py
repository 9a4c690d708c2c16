"""Tests of the FAKE Azure Resource Manager (skyrig_azure.fake): this is not Azure.

ARM has no emulator, so skyrig-azure's tests run against a strict fake; these tests drive it with
Microsoft's own clients (azure-mgmt-resource, -keyvault, -network, -authorization, azure-keyvault-secrets)
and with raw requests, to show that it answers as ARM does where the provider relies on it: creation,
reads, lists with paging, updates, deletes, long-running operations polled through Azure-AsyncOperation,
idempotent PUT, each kind of rejected body, ARM's 404 codes, role assignments on scopes and Key Vault
secrets.
"""

from __future__ import annotations

import json
import ssl
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from typing import Any

import pytest
from azure.core.credentials import AccessToken, AccessTokenInfo
from azure.core.exceptions import HttpResponseError, ResourceExistsError, ResourceNotFoundError
from azure.keyvault.secrets import SecretClient
from azure.mgmt.authorization import AuthorizationManagementClient
from azure.mgmt.keyvault import KeyVaultManagementClient
from azure.mgmt.keyvault.models import Sku, VaultCreateOrUpdateParameters, VaultProperties
from azure.mgmt.network import NetworkManagementClient
from azure.mgmt.resource.resources import ResourceManagementClient

from skyrig_azure.fake import FakeAzure

SUB = "11111111-2222-3333-4444-555555555555"
TENANT = "99999999-8888-7777-6666-555555555555"
SECRETS_USER = "4633458b-17de-408a-b874-0445c86b69e6"
BUILT_IN = {
    SECRETS_USER: "Key Vault Secrets User",
    "69a216fc-b8fb-44d8-bc22-1f3c2cd27a39": "Azure Service Bus Data Sender",
    "4f6d3b9b-027b-4f4c-9142-0e5a2a2247e0": "Azure Service Bus Data Receiver",
    "2a2b9908-6ea1-4ae2-8e65-a410df84e7d1": "Storage Blob Data Reader",
    "ba92f5b4-2d11-453d-a403-e96b0029c9fe": "Storage Blob Data Contributor",
    "7f951dda-4ed3-4680-a7ca-43fe172d538d": "AcrPull",
}
KV_API = "2026-05-15"
NET_API = "2026-03-01"
RG_API = "2025-04-01"


class StaticCredential:
    """Any token: the fake accepts every bearer token (skyrig_azure.credentials.EmulatorCredential's role)."""

    def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        return AccessToken("header.payload.signature", int(time.time()) + 3600)

    def get_token_info(self, *scopes: str, options: Any = None) -> AccessTokenInfo:
        return AccessTokenInfo("header.payload.signature", int(time.time()) + 3600)


CREDENTIAL = StaticCredential()


@pytest.fixture(scope="module")
def fake():
    with FakeAzure(subscription=SUB, tenant=TENANT, lro_delay=0.05) as server:
        yield server


@pytest.fixture(autouse=True)
def clean(fake: FakeAzure):
    fake.reset()
    fake.page_size = 100
    yield


def options(fake: FakeAzure, **extra: Any) -> dict[str, Any]:
    return {
        "base_url": fake.endpoint,
        "connection_verify": fake.ca_bundle,
        "credential_scopes": ["https://management.azure.com/.default"],
        **extra,
    }


@pytest.fixture(scope="module")
def arm(fake: FakeAzure):
    """The real management clients, pointed at the fake."""

    class Clients:
        resources = ResourceManagementClient(CREDENTIAL, SUB, **options(fake))
        vaults = KeyVaultManagementClient(CREDENTIAL, SUB, **options(fake))
        network = NetworkManagementClient(CREDENTIAL, SUB, **options(fake))
        auth = AuthorizationManagementClient(CREDENTIAL, SUB, **options(fake))

    return Clients


def raw(
    fake: FakeAzure,
    method: str,
    path: str,
    body: Any = None,
    *,
    api_version: str | None = KV_API,
    token: str | None = "t.o.k",
    headers: dict[str, str] | None = None,
) -> tuple[int, Any, dict[str, str]]:
    """One request to the fake without an SDK: status, JSON body, headers."""
    url = fake.endpoint + path + (f"?api-version={api_version}" if api_version else "")
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method)
    request.add_header("Content-Type", "application/json")
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    for key, value in (headers or {}).items():
        request.add_header(key, value)
    context = ssl.create_default_context(cafile=fake.ca_bundle)
    try:
        with urllib.request.urlopen(request, context=context) as response:
            text = response.read()
            return response.status, json.loads(text) if text else None, dict(response.headers)
    except urllib.error.HTTPError as error:
        text = error.read()
        return error.code, json.loads(text) if text else None, dict(error.headers)


def group_id(name: str) -> str:
    return f"/subscriptions/{SUB}/resourceGroups/{name}"


def vault_id(group: str, name: str) -> str:
    return f"{group_id(group)}/providers/Microsoft.KeyVault/vaults/{name}"


def vault_body(**properties: Any) -> dict[str, Any]:
    return {
        "location": "westeurope",
        "properties": {"tenantId": TENANT, "sku": {"family": "A", "name": "standard"}, **properties},
    }


def make_vault(arm: Any, group: str = "rg", name: str = "kv-skyrig") -> Any:
    arm.resources.resource_groups.create_or_update(group, {"location": "westeurope"})
    params = VaultCreateOrUpdateParameters(
        location="westeurope",
        properties=VaultProperties(
            tenant_id=TENANT, sku=Sku(family="A", name="standard"), enable_rbac_authorization=True
        ),
    )
    return arm.vaults.vaults.begin_create_or_update(group, name, params).result()


# -- the protocol ---------------------------------------------------------------------------------------------


def test_a_request_without_a_bearer_token_is_401(fake: FakeAzure):
    status, body, headers = raw(
        fake, "GET", f"/subscriptions/{SUB}/resourcegroups", token=None, api_version=RG_API
    )
    assert status == 401
    assert body["error"]["code"] == "AuthenticationFailed"
    assert headers["WWW-Authenticate"].startswith("Bearer ")


def test_api_version_is_required_and_checked_per_type(fake: FakeAzure):
    path = f"/subscriptions/{SUB}/resourcegroups/rg"
    status, body, _ = raw(fake, "GET", path, api_version=None)
    assert (status, body["error"]["code"]) == (400, "MissingApiVersionParameter")
    status, body, _ = raw(fake, "GET", path, api_version="2001-01-01")
    assert (status, body["error"]["code"]) == (400, "NoRegisteredProviderFound")
    assert RG_API in body["error"]["message"]


def test_unknown_namespaces_types_and_subscriptions_are_refused(fake: FakeAzure):
    base = f"/subscriptions/{SUB}/resourceGroups/rg/providers"
    status, body, _ = raw(fake, "GET", f"{base}/Microsoft.Nothing/things/x")
    assert (status, body["error"]["code"]) == (400, "InvalidResourceNamespace")
    status, body, _ = raw(fake, "GET", f"{base}/Microsoft.KeyVault/safes/x")
    assert (status, body["error"]["code"]) == (400, "InvalidResourceType")
    status, body, _ = raw(
        fake,
        "GET",
        "/subscriptions/00000000-0000-0000-0000-000000000000/resourcegroups/rg",
        api_version=RG_API,
    )
    assert (status, body["error"]["code"]) == (404, "SubscriptionNotFound")


# -- resource groups ----------------------------------------------------------------------------------------


def test_resource_group_create_get_update_and_idempotent_put(fake: FakeAzure, arm: Any):
    group = arm.resources.resource_groups.create_or_update(
        "rg", {"location": "West Europe", "tags": {"a": "1"}}
    )
    assert group.id == group_id("rg")
    assert group.location == "westeurope"
    assert group.properties.provisioning_state == "Succeeded"
    again = arm.resources.resource_groups.create_or_update(
        "rg", {"location": "westeurope", "tags": {"a": "1"}}
    )
    assert again.tags == {"a": "1"}
    puts = fake.calls.select("Microsoft.Resources/resourceGroups", "PUT")
    assert [call.status for call in puts] == [201, 200]
    updated = arm.resources.resource_groups.update("rg", {"tags": {"b": "2"}})
    assert updated.tags == {"b": "2"}
    assert arm.resources.resource_groups.get("rg").tags == {"b": "2"}
    assert arm.resources.resource_groups.check_existence("rg") is True
    assert arm.resources.resource_groups.check_existence("nope") is False


def test_a_resource_group_cannot_move(fake: FakeAzure, arm: Any):
    arm.resources.resource_groups.create_or_update("rg", {"location": "westeurope"})
    with pytest.raises(HttpResponseError) as caught:
        arm.resources.resource_groups.create_or_update("rg", {"location": "northeurope"})
    assert caught.value.status_code == 409
    assert caught.value.error.code == "InvalidResourceGroupLocation"


def test_lists_are_paged_with_next_links(fake: FakeAzure, arm: Any):
    fake.page_size = 2
    for index in range(5):
        arm.resources.resource_groups.create_or_update(f"rg{index}", {"location": "westeurope"})
    fake.calls.clear()
    names = sorted(group.name for group in arm.resources.resource_groups.list())
    assert names == [f"rg{index}" for index in range(5)]
    assert fake.calls.count("Microsoft.Resources/resourceGroups", "GET") == 3
    status, body, _ = raw(fake, "GET", f"/subscriptions/{SUB}/resourcegroups", api_version=RG_API)
    assert (
        status == 200 and len(body["value"]) == 2 and "$skiptoken" in urllib.parse.unquote(body["nextLink"])
    )


def test_deleting_a_resource_group_is_long_running_and_takes_its_resources(fake: FakeAzure, arm: Any):
    vault = make_vault(arm)
    poller = arm.resources.resource_groups.begin_delete("rg")
    assert fake.resource(group_id("rg"))["properties"]["provisioningState"] == "Deleting"
    assert not poller.done()
    poller.result()
    assert fake.resource(group_id("rg")) is None
    assert fake.resource(vault.id) is None
    assert fake.calls.count("Microsoft.Resources/resourceGroups", poll=True) >= 1
    with pytest.raises(ResourceNotFoundError) as caught:
        arm.resources.resource_groups.get("rg")
    assert caught.value.error.code == "ResourceGroupNotFound"


def test_deleting_what_does_not_exist_is_204(fake: FakeAzure, arm: Any):
    arm.resources.resource_groups.create_or_update("rg", {"location": "westeurope"})
    status, body, _ = raw(fake, "DELETE", vault_id("rg", "missing"))
    assert (status, body) == (204, None)
    arm.vaults.vaults.delete("rg", "missing")


# -- 404s ---------------------------------------------------------------------------------------------------


def test_not_found_codes(fake: FakeAzure, arm: Any):
    with pytest.raises(ResourceNotFoundError) as caught:
        arm.vaults.vaults.get("no-group", "kv")
    assert caught.value.error.code == "ResourceGroupNotFound"
    arm.resources.resource_groups.create_or_update("rg", {"location": "westeurope"})
    with pytest.raises(ResourceNotFoundError) as caught:
        arm.vaults.vaults.get("rg", "kv")
    assert caught.value.error.code == "ResourceNotFound"
    with pytest.raises(ResourceNotFoundError) as caught:
        arm.network.subnets.get("rg", "no-vnet", "app")
    assert caught.value.error.code == "ParentResourceNotFound"
    with pytest.raises(ResourceNotFoundError) as caught:
        arm.auth.role_assignments.create(
            vault_id("rg", "kv"),
            str(uuid.uuid4()),
            {
                "properties": {
                    "roleDefinitionId": f"/providers/Microsoft.Authorization/roleDefinitions/{SECRETS_USER}",
                    "principalId": str(uuid.uuid4()),
                }
            },
        )
    assert caught.value.error.code == "ParentResourceNotFound"


# -- Key Vault vaults: long-running PUT, idempotence, immutables --------------------------------------------


def test_vault_creation_is_a_long_running_operation(fake: FakeAzure, arm: Any):
    arm.resources.resource_groups.create_or_update("rg", {"location": "westeurope"})
    params = VaultCreateOrUpdateParameters(
        location="westeurope",
        properties=VaultProperties(tenant_id=TENANT, sku=Sku(family="A", name="standard")),
    )
    poller = arm.vaults.vaults.begin_create_or_update("rg", "kv-lro", params)
    creating = arm.vaults.vaults.get("rg", "kv-lro")
    assert creating.properties.provisioning_state == "RegisteringDns"
    vault = poller.result()
    assert vault.properties.provisioning_state == "Succeeded"
    assert vault.properties.vault_uri.startswith("https://127.0.0.1:")
    assert vault.properties.enable_soft_delete is True
    put = fake.calls.select("Microsoft.KeyVault/vaults", "PUT")
    assert [call.status for call in put] == [201]
    assert fake.calls.count("Microsoft.KeyVault/vaults", poll=True) >= 1


def test_the_same_put_again_changes_nothing(fake: FakeAzure, arm: Any):
    vault = make_vault(arm)
    before = fake.resource(vault.id)
    fake.calls.clear()
    params = VaultCreateOrUpdateParameters(
        location="westeurope",
        properties=VaultProperties(
            tenant_id=TENANT, sku=Sku(family="A", name="standard"), enable_rbac_authorization=True
        ),
    )
    arm.vaults.vaults.begin_create_or_update("rg", "kv-skyrig", params).result()
    assert [call.status for call in fake.calls.select("Microsoft.KeyVault/vaults", "PUT")] == [200]
    assert fake.calls.count(poll=True) == 0
    assert fake.resource(vault.id) == before


def test_a_changed_put_updates_and_an_immutable_change_is_refused(fake: FakeAzure, arm: Any):
    vault = make_vault(arm)
    updated = arm.vaults.vaults.begin_create_or_update(
        "rg", "kv-skyrig", vault_body(enableRbacAuthorization=True) | {"tags": {"env": "prod"}}
    ).result()
    assert updated.tags == {"env": "prod"}
    assert fake.resource(vault.id)["tags"] == {"env": "prod"}
    status, body, _ = raw(
        fake, "PUT", vault.id, vault_body(tenantId=str(uuid.uuid4())) | {"tags": {"env": "prod"}}
    )
    assert (status, body["error"]["code"]) == (400, "PropertyChangeNotAllowed")
    status, body, _ = raw(fake, "PUT", vault.id, {**vault_body(), "location": "northeurope"})
    assert (status, body["error"]["code"]) == (400, "InvalidResourceLocation")


def test_patch_merges(fake: FakeAzure, arm: Any):
    vault = make_vault(arm)
    patched = arm.vaults.vaults.update("rg", "kv-skyrig", {"properties": {"enabledForDeployment": True}})
    assert patched.properties.enabled_for_deployment is True
    assert patched.properties.enable_rbac_authorization is True
    assert patched.properties.sku.name == "standard"
    assert fake.resource(vault.id)["properties"]["enabledForDeployment"] is True


def test_vault_names_are_global(fake: FakeAzure, arm: Any):
    make_vault(arm, "rg", "kv-shared")
    arm.resources.resource_groups.create_or_update("other", {"location": "westeurope"})
    with pytest.raises(HttpResponseError) as caught:
        arm.vaults.vaults.begin_create_or_update("other", "kv-shared", vault_body()).result()
    assert caught.value.error.code == "VaultAlreadyExists"


def test_a_deleted_vault_is_soft_deleted_until_purged_or_recovered(fake: FakeAzure, arm: Any):
    make_vault(arm, "rg", "kv-soft")
    arm.vaults.vaults.delete("rg", "kv-soft")
    deleted = arm.vaults.vaults.get_deleted("kv-soft", "westeurope")
    assert deleted.properties.vault_id == vault_id("rg", "kv-soft")
    assert [v.name for v in arm.vaults.vaults.list_deleted()] == ["kv-soft"]
    with pytest.raises(HttpResponseError) as caught:
        arm.vaults.vaults.begin_create_or_update("rg", "kv-soft", vault_body()).result()
    assert caught.value.error.code == "ConflictError"
    recovered = arm.vaults.vaults.begin_create_or_update(
        "rg", "kv-soft", vault_body(createMode="recover")
    ).result()
    assert recovered.properties.provisioning_state == "Succeeded"
    arm.vaults.vaults.delete("rg", "kv-soft")
    arm.vaults.vaults.begin_purge_deleted("kv-soft", "westeurope").result()
    with pytest.raises(ResourceNotFoundError):
        arm.vaults.vaults.get_deleted("kv-soft", "westeurope")
    assert list(arm.vaults.vaults.list_deleted()) == []
    arm.vaults.vaults.begin_create_or_update("rg", "kv-soft", vault_body()).result()


def test_vault_name_availability(fake: FakeAzure, arm: Any):
    make_vault(arm, "rg", "kv-taken")
    check = arm.vaults.vaults.check_name_availability
    assert check({"name": "kv-free", "type": "Microsoft.KeyVault/vaults"}).name_available is True
    taken = check({"name": "KV-TAKEN", "type": "Microsoft.KeyVault/vaults"})
    assert (taken.name_available, taken.reason) == (False, "AlreadyExists")
    arm.vaults.vaults.delete("rg", "kv-taken")
    assert check({"name": "kv-taken", "type": "Microsoft.KeyVault/vaults"}).name_available is False
    assert check({"name": "1-bad", "type": "Microsoft.KeyVault/vaults"}).reason == "AccountNameInvalid"
    assert fake.calls.count("Microsoft.KeyVault/checkNameAvailability", "POST", mutating=False) == 4


# -- rejected bodies ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "words"),
    [
        (lambda b: b["properties"].pop("sku"), ["Required property 'sku'", "Path 'properties'"]),
        (
            lambda b: b["properties"].update(hsmPoolResourceId="x"),
            ["properties.hsmPoolResourceId", "read-only"],
        ),
        (lambda b: b["properties"]["sku"].update(name="platinum"), ["platinum", "properties.sku.name"]),
        (
            lambda b: b["properties"].update(softDelete=True),
            ["Could not find member 'softDelete'", "properties.softDelete"],
        ),
        (lambda b: b["properties"].update(enableSoftDelete="yes"), ["properties.enableSoftDelete"]),
        (lambda b: b.pop("location"), ["Required property 'location'"]),
    ],
    ids=["missing-required", "read-only", "bad-enum", "unknown-member", "wrong-type", "missing-location"],
)
def test_vault_bodies_are_validated_with_the_sdk_model(
    fake: FakeAzure, arm: Any, change: Any, words: list[str]
):
    arm.resources.resource_groups.create_or_update("rg", {"location": "westeurope"})
    body = vault_body()
    change(body)
    with pytest.raises(HttpResponseError) as caught:
        arm.vaults.vaults.begin_create_or_update("rg", "kv-bad", body).result()
    assert caught.value.status_code == 400
    assert caught.value.error.code == "InvalidRequestContent"
    for word in words:
        assert word in caught.value.error.message
    assert fake.resource(vault_id("rg", "kv-bad")) is None


def test_enums_compare_case_insensitively(fake: FakeAzure, arm: Any):
    arm.resources.resource_groups.create_or_update("rg", {"location": "westeurope"})
    body = vault_body()
    body["properties"]["sku"]["name"] = "Standard"
    vault = arm.vaults.vaults.begin_create_or_update("rg", "kv-case", body).result()
    assert vault.properties.sku.name.lower() == "standard"


def test_msrest_models_validate_too(fake: FakeAzure, arm: Any):
    """The role assignment's SDK model is an older msrest model (``_validation``, ``_attribute_map``)."""
    arm.resources.resource_groups.create_or_update("rg", {"location": "westeurope"})
    path = f"{group_id('rg')}/providers/Microsoft.Authorization/roleAssignments/{uuid.uuid4()}"
    role = f"/subscriptions/{SUB}/providers/Microsoft.Authorization/roleDefinitions/{SECRETS_USER}"
    cases = [
        ({"roleDefinitionId": role}, "Required property 'principalId'"),
        ({"roleDefinitionId": role, "principalId": "p", "principalType": "Robot"}, "Robot"),
        ({"roleDefinitionId": role, "principalId": "p", "scope": "/"}, "properties.scope"),
        ({"roleDefinitionId": role, "principalId": "p", "color": "red"}, "Could not find member 'color'"),
    ]
    for properties, words in cases:
        status, body, _ = raw(fake, "PUT", path, {"properties": properties}, api_version="2022-04-01")
        assert (status, body["error"]["code"]) == (400, "InvalidRequestContent"), properties
        assert words in body["error"]["message"]


def test_msrest_constraints_are_checked(fake: FakeAzure):
    from skyrig_azure.fake.errors import ArmError
    from skyrig_azure.fake.schema import load, validate

    schema = load("azure.mgmt.redis.models:RedisCreateParameters")
    body = {
        "location": "westeurope",
        "properties": {"sku": {"name": "Standard", "family": "C", "capacity": 1}},
    }
    validate(body, schema)
    body["properties"]["staticIP"] = "not-an-address"
    with pytest.raises(ArmError) as caught:
        validate(body, schema)
    assert caught.value.code == "InvalidParameter"
    assert "properties.staticIP" in caught.value.message


# -- virtual networks and subnets ---------------------------------------------------------------------------


def vnet_body(*subnets: tuple[str, str]) -> dict[str, Any]:
    return {
        "location": "westeurope",
        "properties": {
            "addressSpace": {"addressPrefixes": ["10.0.0.0/16"]},
            "subnets": [{"name": name, "properties": {"addressPrefix": prefix}} for name, prefix in subnets],
        },
    }


def test_virtual_network_with_subnets(fake: FakeAzure, arm: Any):
    arm.resources.resource_groups.create_or_update("rg", {"location": "westeurope"})
    vnet = arm.network.virtual_networks.begin_create_or_update(
        "rg", "vnet", vnet_body(("app", "10.0.1.0/24"))
    ).result()
    assert vnet.provisioning_state == "Succeeded"
    assert [s.name for s in vnet.subnets] == ["app"]
    assert vnet.subnets[0].id == f"{vnet.id}/subnets/app"
    db = arm.network.subnets.begin_create_or_update(
        "rg", "vnet", "db", {"properties": {"addressPrefix": "10.0.2.0/24"}}
    ).result()
    assert db.etag and db.provisioning_state == "Succeeded"
    assert sorted(s.name for s in arm.network.virtual_networks.get("rg", "vnet").subnets) == ["app", "db"]
    assert sorted(s.name for s in arm.network.subnets.list("rg", "vnet")) == ["app", "db"]
    # a PUT of the network replaces its subnets, as Azure does
    arm.network.virtual_networks.begin_create_or_update(
        "rg", "vnet", vnet_body(("app", "10.0.1.0/24"))
    ).result()
    assert [s.name for s in arm.network.subnets.list("rg", "vnet")] == ["app"]
    arm.network.virtual_networks.begin_delete("rg", "vnet").result()
    assert fake.resources("Microsoft.Network/virtualNetworks/subnets") == []


def test_the_same_network_put_again_changes_nothing(fake: FakeAzure, arm: Any):
    arm.resources.resource_groups.create_or_update("rg", {"location": "westeurope"})
    vnet = arm.network.virtual_networks.begin_create_or_update(
        "rg", "vnet", vnet_body(("app", "10.0.1.0/24"))
    ).result()
    fake.calls.clear()
    again = arm.network.virtual_networks.begin_create_or_update(
        "rg", "vnet", vnet_body(("app", "10.0.1.0/24"))
    ).result()
    assert again.etag == vnet.etag
    assert [call.status for call in fake.calls.select("Microsoft.Network", "PUT")] == [200]


def test_subnet_rules_and_nested_validation(fake: FakeAzure, arm: Any):
    arm.resources.resource_groups.create_or_update("rg", {"location": "westeurope"})
    arm.network.virtual_networks.begin_create_or_update(
        "rg", "vnet", vnet_body(("app", "10.0.1.0/24"))
    ).result()
    for prefix, code in (
        ("10.9.0.0/24", "NetcfgSubnetRangeOutsideVnet"),
        ("10.0.1.128/25", "NetcfgSubnetRangesOverlap"),
    ):
        with pytest.raises(HttpResponseError) as caught:
            arm.network.subnets.begin_create_or_update(
                "rg", "vnet", "x", {"properties": {"addressPrefix": prefix}}
            ).result()
        assert caught.value.error.code == code
    body = vnet_body(("app", "10.0.1.0/24"))
    body["properties"]["subnets"][0]["properties"]["addresPrefix"] = "10.0.3.0/24"
    status, answer, _ = raw(
        fake,
        "PUT",
        f"{group_id('rg')}/providers/Microsoft.Network/virtualNetworks/vnet",
        body,
        api_version=NET_API,
    )
    assert status == 400
    assert "properties.subnets[0].properties.addresPrefix" in answer["error"]["message"]
    body = vnet_body(("app", "10.0.1.0/24"))
    body["properties"]["subnets"][0]["properties"]["privateEndpointNetworkPolicies"] = "Sometimes"
    status, answer, _ = raw(
        fake,
        "PUT",
        f"{group_id('rg')}/providers/Microsoft.Network/virtualNetworks/vnet",
        body,
        api_version=NET_API,
    )
    assert status == 400 and "Sometimes" in answer["error"]["message"]


def test_if_match_and_etags(fake: FakeAzure, arm: Any):
    arm.resources.resource_groups.create_or_update("rg", {"location": "westeurope"})
    vnet = arm.network.virtual_networks.begin_create_or_update("rg", "vnet", vnet_body()).result()
    fake.settle(everything=True)
    path = vnet.id
    status, body, _ = raw(
        fake,
        "PUT",
        path,
        vnet_body(("a", "10.0.5.0/24")),
        api_version=NET_API,
        headers={"If-Match": 'W/"stale"'},
    )
    assert (status, body["error"]["code"]) == (412, "PreconditionFailed")
    edited = fake.edit(path, {"tags": {"by": "portal"}})
    assert edited["etag"] != vnet.etag
    status, body, _ = raw(
        fake, "PUT", path, vnet_body(), api_version=NET_API, headers={"If-Match": edited["etag"]}
    )
    assert status == 200


# -- role assignments and definitions -------------------------------------------------------------------------


def role_id(role: str = SECRETS_USER) -> str:
    return f"/subscriptions/{SUB}/providers/Microsoft.Authorization/roleDefinitions/{role}"


def assign(arm: Any, scope: str, principal: str, role: str = SECRETS_USER, name: str | None = None) -> Any:
    return arm.auth.role_assignments.create(
        scope,
        name or str(uuid.uuid4()),
        {
            "properties": {
                "roleDefinitionId": role_id(role),
                "principalId": principal,
                "principalType": "ServicePrincipal",
            }
        },
    )


def test_built_in_role_definitions(fake: FakeAzure, arm: Any):
    for role, name in BUILT_IN.items():
        definition = arm.auth.role_definitions.get(f"/subscriptions/{SUB}", role)
        assert definition.role_name == name
        assert definition.id == role_id(role)
    found = list(arm.auth.role_definitions.list(f"/subscriptions/{SUB}", filter="roleName eq 'AcrPull'"))
    assert [d.name for d in found] == ["7f951dda-4ed3-4680-a7ca-43fe172d538d"]


def test_role_assignments_on_scopes(fake: FakeAzure, arm: Any):
    vault = make_vault(arm)
    alice, bob = str(uuid.uuid4()), str(uuid.uuid4())
    on_vault = assign(arm, vault.id, alice)
    assert on_vault.scope == vault.id
    assert on_vault.principal_type == "ServicePrincipal"
    on_group = assign(arm, group_id("rg"), bob)
    on_sub = assign(arm, f"/subscriptions/{SUB}", bob, role="7f951dda-4ed3-4680-a7ca-43fe172d538d")
    at_vault = {r.name for r in arm.auth.role_assignments.list_for_scope(vault.id)}
    assert at_vault == {on_vault.name, on_group.name, on_sub.name}
    at_group = {r.name for r in arm.auth.role_assignments.list_for_scope(group_id("rg"), filter="atScope()")}
    assert at_group == {on_group.name, on_sub.name}
    below_group = {r.name for r in arm.auth.role_assignments.list_for_scope(group_id("rg"))}
    assert below_group == {on_vault.name, on_group.name, on_sub.name}
    for_alice = {
        r.name
        for r in arm.auth.role_assignments.list_for_scope(
            f"/subscriptions/{SUB}", filter=f"principalId eq '{alice}'"
        )
    }
    assert for_alice == {on_vault.name}
    same = assign(arm, vault.id, alice, name=on_vault.name)
    assert same.id == on_vault.id
    with pytest.raises(ResourceExistsError) as caught:
        assign(arm, vault.id, alice)
    assert caught.value.error.code == "RoleAssignmentExists"
    with pytest.raises(HttpResponseError) as caught:
        assign(arm, vault.id, bob, name=on_vault.name)
    assert caught.value.error.code == "RoleAssignmentUpdateNotPermitted"
    deleted = arm.auth.role_assignments.delete(vault.id, on_vault.name)
    assert deleted.name == on_vault.name
    assert arm.auth.role_assignments.delete(vault.id, on_vault.name) is None


def test_role_assignment_refusals(fake: FakeAzure, arm: Any):
    arm.resources.resource_groups.create_or_update("rg", {"location": "westeurope"})
    path = f"{group_id('rg')}/providers/Microsoft.Authorization/roleAssignments"
    cases = [
        (str(uuid.uuid4()), role_id(str(uuid.uuid4())), "RoleDefinitionDoesNotExist"),
        (str(uuid.uuid4()), "Key Vault Secrets User", "LinkedInvalidPropertyId"),
        ("not-a-guid", role_id(), "InvalidRoleAssignmentId"),
        (str(uuid.uuid4()), role_id(), "InvalidPrincipalId"),
    ]
    for name, role, code in cases:
        status, body, _ = raw(
            fake,
            "PUT",
            f"{path}/{name}",
            {"properties": {"roleDefinitionId": role, "principalId": "p"}},
            api_version="2022-04-01",
        )
        assert (status, body["error"]["code"]) == (400, code)


def test_deleting_a_resource_takes_its_role_assignments(fake: FakeAzure, arm: Any):
    vault = make_vault(arm)
    assign(arm, vault.id, str(uuid.uuid4()))
    arm.vaults.vaults.delete("rg", "kv-skyrig")
    assert fake.resources("Microsoft.Authorization/roleAssignments") == []


# -- Key Vault secrets -------------------------------------------------------------------------------------


def secret_client(fake: FakeAzure, vault: Any) -> SecretClient:
    return SecretClient(
        vault.properties.vault_uri,
        CREDENTIAL,
        connection_verify=fake.ca_bundle,
        verify_challenge_resource=False,
    )


def test_secrets_versions_and_listing(fake: FakeAzure, arm: Any):
    vault = make_vault(arm)
    client = secret_client(fake, vault)
    first = client.set_secret("db-password", "one", content_type="text/plain")
    second = client.set_secret("db-password", "two")
    assert first.properties.version != second.properties.version
    assert client.get_secret("db-password").value == "two"
    assert client.get_secret("db-password", first.properties.version).value == "one"
    client.set_secret("api-key", "k")
    assert sorted(p.name for p in client.list_properties_of_secrets()) == ["api-key", "db-password"]
    versions = {p.version for p in client.list_properties_of_secret_versions("db-password")}
    assert versions == {first.properties.version, second.properties.version}
    assert fake.vault("kv-skyrig").value("db-password") == "two"
    # the challenge: the first request goes without a token and is told where to get one
    first = fake.calls.select("KeyVault/secrets")[0]
    assert (first.status, first.mutating) == (401, False)
    assert fake.calls.count("KeyVault/secrets", "PUT", mutating=True) == 3


def test_disabled_versions_deleted_and_purged_secrets(fake: FakeAzure, arm: Any):
    vault = make_vault(arm)
    client = secret_client(fake, vault)
    old = client.set_secret("token", "old")
    client.set_secret("token", "new")
    client.update_secret_properties("token", old.properties.version, enabled=False)
    with pytest.raises(HttpResponseError) as caught:
        client.get_secret("token", old.properties.version)
    assert caught.value.status_code == 403
    assert client.get_secret("token").value == "new"
    client.begin_delete_secret("token").result()
    client.begin_recover_deleted_secret("token").result()
    assert client.get_secret("token").value == "new"
    client.begin_delete_secret("token").result()
    with pytest.raises(ResourceNotFoundError) as missing:
        client.get_secret("token")
    assert "SecretNotFound" in str(missing.value)
    assert [d.name for d in client.list_deleted_secrets()] == ["token"]
    with pytest.raises(ResourceExistsError):
        client.set_secret("token", "again")
    client.purge_deleted_secret("token")
    assert list(client.list_deleted_secrets()) == []
    client.set_secret("token", "again")
    assert client.get_secret("token").value == "again"


def test_the_challenge_resource_check_must_be_turned_off(fake: FakeAzure, arm: Any):
    vault = make_vault(arm)
    strict = SecretClient(vault.properties.vault_uri, CREDENTIAL, connection_verify=fake.ca_bundle)
    with pytest.raises(ValueError, match="verify_challenge_resource"):
        strict.get_secret("anything")


# -- for tests: calls, injected errors, portal edits, reset ---------------------------------------------


def test_injected_throttling_is_retried_by_the_sdk(fake: FakeAzure, arm: Any):
    make_vault(arm)
    fake.calls.clear()
    fake.inject(429, type="Microsoft.KeyVault/vaults", method="GET", retry_after=0.05)
    assert arm.vaults.vaults.get("rg", "kv-skyrig").name == "kv-skyrig"
    assert [c.status for c in fake.calls.select("Microsoft.KeyVault/vaults", "GET")] == [429, 200]


def test_injected_conflicts_and_server_errors(fake: FakeAzure, arm: Any):
    make_vault(arm)
    fake.inject(409, type="Microsoft.KeyVault", method="PATCH")
    with pytest.raises(HttpResponseError) as caught:
        arm.vaults.vaults.update("rg", "kv-skyrig", {"tags": {"a": "b"}})
    assert (caught.value.status_code, caught.value.error.code) == (409, "Conflict")
    no_retry = KeyVaultManagementClient(CREDENTIAL, SUB, **options(fake, retry_total=0))
    fake.inject(500, path="/vaults/kv-skyrig")
    with pytest.raises(HttpResponseError) as caught:
        no_retry.vaults.get("rg", "kv-skyrig")
    assert caught.value.status_code == 500
    assert no_retry.vaults.get("rg", "kv-skyrig").name == "kv-skyrig"


def test_a_failed_operation_raises_and_the_same_put_runs_again(fake: FakeAzure, arm: Any):
    arm.resources.resource_groups.create_or_update("rg", {"location": "westeurope"})
    fake.fail_operations(type="Microsoft.KeyVault/vaults", kind="put", code="VaultCreationFailed")
    with pytest.raises(HttpResponseError) as caught:
        arm.vaults.vaults.begin_create_or_update("rg", "kv-fails", vault_body()).result()
    assert "VaultCreationFailed" in str(caught.value)
    assert fake.resource(vault_id("rg", "kv-fails"))["properties"]["provisioningState"] == "Failed"
    vault = arm.vaults.vaults.begin_create_or_update("rg", "kv-fails", vault_body()).result()
    assert vault.properties.provisioning_state == "Succeeded"


def test_calls_are_logged_with_mutations_and_polls_apart(fake: FakeAzure, arm: Any):
    make_vault(arm)
    arm.vaults.vaults.get("rg", "kv-skyrig")
    mutating = fake.calls.mutating()
    assert [(c.type, c.method) for c in mutating] == [
        ("Microsoft.Resources/resourceGroups", "PUT"),
        ("Microsoft.KeyVault/vaults", "PUT"),
    ]
    assert all(not c.mutating for c in fake.calls.select(poll=True))
    assert fake.calls.count("Microsoft.KeyVault/vaults", "GET") >= 1


def test_portal_edits_are_seen_by_reads(fake: FakeAzure, arm: Any):
    vault = make_vault(arm)
    fake.edit(vault.id, {"properties": {"enabledForDeployment": True}, "tags": {"owner": "ops"}})
    read = arm.vaults.vaults.get("rg", "kv-skyrig")
    assert read.properties.enabled_for_deployment is True
    assert read.tags == {"owner": "ops"}
    with pytest.raises(KeyError):
        fake.edit(vault_id("rg", "missing"), {})


def test_reset_forgets_everything(fake: FakeAzure, arm: Any):
    make_vault(arm)
    fake.inject(500, type="Microsoft.Resources")
    fake.reset()
    assert fake.resources() == []
    assert len(fake.calls) == 0
    assert arm.resources.resource_groups.check_existence("rg") is False


def test_generic_lists_find_resources_by_tag_and_type(fake: FakeAzure, arm: Any):
    vault = make_vault(arm)
    arm.vaults.vaults.update("rg", "kv-skyrig", {"tags": {"skyrig-app": "shop"}})
    arm.network.virtual_networks.begin_create_or_update("rg", "vnet", vnet_body()).result()
    everything = {r.id for r in arm.resources.resources.list_by_resource_group("rg")}
    assert everything == {vault.id, f"{group_id('rg')}/providers/Microsoft.Network/virtualNetworks/vnet"}
    tagged = list(arm.resources.resources.list(filter="tagName eq 'skyrig-app' and tagValue eq 'shop'"))
    assert [(r.id, r.tags) for r in tagged] == [(vault.id, {"skyrig-app": "shop"})]
    typed = list(arm.resources.resources.list(filter="resourceType eq 'Microsoft.Network/virtualNetworks'"))
    assert [r.name for r in typed] == ["vnet"]
    with pytest.raises(HttpResponseError) as caught:
        list(arm.resources.resources.list(filter="location eq 'westeurope'"))
    assert caught.value.error.code == "InvalidFilterInQueryString"
    with pytest.raises(ResourceNotFoundError):
        list(arm.resources.resources.list_by_resource_group("nope"))
