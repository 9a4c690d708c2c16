"""The iam family against the FAKE Azure Resource Manager (this is not Azure: ARM has no emulator; the fake
checks every request body against the azure-mgmt SDKs' own models): a user-assigned managed identity per
service, and role assignments exactly as narrow as the model says (a service gets nothing it does not
use), named deterministically so that an interrupted create is found again; a role added in the portal
taken away; destroy leaving nothing. Read back through Microsoft's management clients.

The FAKE ARM runs alone here (a module fixture). The narrowness of the grants is read from the graph, with
every family the provider has; the role assignments' lifecycle is shown on a scope the network family
makes (the provider expanding only network and iam), so that it does not hang on the other families.
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest

import skyrig_azure
from skyrig_azure import iam, names
from skyrig_azure.conformance import SUBSCRIPTION
from skyrig_azure.credentials import EmulatorCredential
from skyrig_azure.fake import FakeAzure
from skyrig_azure.iam import (
    ACR_PULL,
    BLOB_CONTRIBUTOR,
    BLOB_DELEGATOR,
    BLOB_READER,
    RECEIVER,
    SECRETS_USER,
    SENDER,
    assignment_name,
    bucket_roles,
)
from skyrig_conformance.folder import AppFolder

SERVICES = {
    "alpha/__init__.py": """
        from skyrig import Service

        service = Service("alpha", app="alpha.web:app")
    """,
    "alpha/web.py": """
        async def app(scope, receive, send):
            pass
    """,
    "beta/__init__.py": """
        from skyrig import Service

        service = Service("beta", app="beta.web:app")
    """,
    "beta/web.py": """
        async def app(scope, receive, send):
            pass
    """,
}
RESOURCES = {
    "alpha/resources.py": """
        from skyrig import Bucket, Secret

        files = Bucket("files")
        api_key = Secret("api-key")
    """,
    "alpha/use.py": """
        from .resources import api_key, files


        def use() -> None:
            files.upload("k", b"")
            files.download("k")
            api_key.value
    """,
    "beta/uses.py": """
        from alpha.resources import files


        def fetch(key: str) -> bytes:
            return files.download(key)


        def share(key: str) -> str:
            return files.signed_url(key)
    """,
}
PUBSUB = {
    "alpha/events.py": """
        from pydantic import BaseModel
        from skyrig import Subscription, Topic


        class Placed(BaseModel):
            id: str


        placed = Topic("placed", Placed)


        def send() -> None:
            placed.publish(Placed(id="1"))
    """,
    "beta/handlers.py": """
        from alpha.events import Placed, placed
        from skyrig import Subscription


        def handle(message: Placed) -> None:
            pass


        on_placed = Subscription(placed, "beta-placed", handler=handle)
    """,
}


ARM_ONLY = True
"""The FAKE ARM alone (tests/conftest.py: ``arm``, ``fake`` wiped, ``azure_app`` on it)."""


@pytest.fixture
def app(azure_app: AppFolder) -> AppFolder:
    """An app in ``tmp_path`` on the (wiped) FAKE ARM."""
    return azure_app


@pytest.fixture
def network_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """The provider expands its network and iam families only."""
    monkeypatch.setattr(skyrig_azure.AzureProvider, "modules", ("skyrig_azure.network", "skyrig_azure.iam"))


def client(fake: FakeAzure, cls: Any) -> Any:
    return cls(
        EmulatorCredential(),
        SUBSCRIPTION,
        base_url=fake.endpoint,
        connection_verify=fake.ca_bundle,
        credential_scopes=["https://management.azure.com/.default"],
        polling_interval=0.01,
    )


def identities(fake: FakeAzure) -> Any:
    from azure.mgmt.msi import ManagedServiceIdentityClient

    return client(fake, ManagedServiceIdentityClient).user_assigned_identities


def assignments(fake: FakeAzure) -> Any:
    from azure.mgmt.authorization import AuthorizationManagementClient

    return client(fake, AuthorizationManagementClient).role_assignments


def rg(app: AppFolder) -> str:
    return names.resource_group_name(app.name, "dev")


def arm_id(app: AppFolder, namespace_type: str, *parts: str) -> str:
    namespace, *kinds = namespace_type.split("/")
    path = "/".join(f"{k}/{n}" for k, n in zip(kinds, parts, strict=True))
    return f"/subscriptions/{SUBSCRIPTION}/resourceGroups/{rg(app)}/providers/{namespace}/{path}"


@pytest.fixture
def families(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The provider expands the families it has (while some are being written, those that import)."""
    import importlib

    present = []
    for family in skyrig_azure.FAMILY_MODULES:
        try:
            importlib.import_module(f"skyrig_azure.{family}")
        except ImportError:
            continue
        present.append(family)
    monkeypatch.setattr(skyrig_azure.AzureProvider, "modules", tuple(f"skyrig_azure.{f}" for f in present))
    return present


def needs(families: list[str], *wanted: str) -> None:
    for family in wanted:
        if family not in families:
            pytest.skip(f"the provider has no {family} family yet")


@pytest.mark.parametrize(
    ("operations", "roles"),
    [
        (["download"], [BLOB_READER]),
        (["list"], [BLOB_READER]),
        (["download", "list"], [BLOB_READER]),
        (["upload"], [BLOB_CONTRIBUTOR]),
        (["remove"], [BLOB_CONTRIBUTOR]),
        (["signed_url"], [BLOB_CONTRIBUTOR]),
        (["public_url"], []),
    ],
)
def test_container_roles_follow_the_operations(operations, roles):
    assert bucket_roles(operations) == roles


def test_an_assignment_name_is_the_same_on_every_run_and_new_for_a_new_principal():
    scope, role = "/subscriptions/s/resourceGroups/g", SENDER
    first = assignment_name(scope, role, "p1")
    assert first == assignment_name(scope.upper(), role.upper(), "P1")
    assert uuid.UUID(first).version == 5
    assert assignment_name(scope, role, "p2") != first


def test_role_assignments_are_exactly_as_narrow_as_the_model_says(app, families):
    needs(families, "objects", "secrets")
    app.write({**SERVICES, **RESOURCES})
    nodes = app.graph()
    roles = {
        node_id: (
            node["properties"]["role"],
            node["properties"].get("scope") or node["properties"]["registry"],
        )
        for node_id, node in nodes.items()
        if node["type"] == iam.ROLE_ASSIGNMENT.type
    }
    account = names.storage_account_name(SUBSCRIPTION, app.name, "dev")
    container = arm_id(
        app,
        "Microsoft.Storage/storageAccounts/blobServices/containers",
        account,
        "default",
        names.container_name(app.name, "dev", "files"),
    )
    secret = arm_id(
        app,
        "Microsoft.KeyVault/vaults/secrets",
        names.key_vault_name(SUBSCRIPTION, app.name, "dev"),
        names.vault_secret_name("api-key"),
    )
    assert roles == {
        "iam.role/alpha/bucket/files/blob-contributor": (BLOB_CONTRIBUTOR, container),
        "iam.role/alpha/secret/api-key/secrets-user": (SECRETS_USER, secret),
        # beta downloads and signs URLs: a SAS grants at most what its signer holds, and the user
        # delegation key is the account's
        "iam.role/beta/bucket/files/blob-contributor": (BLOB_CONTRIBUTOR, container),
        "iam.role/beta/account/blob-delegator": (
            BLOB_DELEGATOR,
            arm_id(app, "Microsoft.Storage/storageAccounts", account),
        ),
        # the image is pulled from an Azure Container Registry with each service's identity
        "iam.role/alpha/registry/skyrigconformance/acr-pull": (ACR_PULL, "skyrigconformance"),
        "iam.role/beta/registry/skyrigconformance/acr-pull": (ACR_PULL, "skyrigconformance"),
    }, "beta, which never reads the secret, may read it; or a service got more than it uses"
    main = {node["resource"]: node_id for node_id, node in nodes.items() if node["resource"]}
    assert set(nodes["iam.role/alpha/bucket/files/blob-contributor"]["depends_on"]) == {
        names.identity_id("alpha"),
        main["bucket/files"],
    }, "a role assignment comes after its identity and its target"
    assert set(nodes["iam.role/alpha/secret/api-key/secrets-user"]["depends_on"]) == {
        names.identity_id("alpha"),
        main["secret/api-key"],
    }
    grants = dict(nodes[names.identity_id("beta")]["properties"])["grants"]
    assert sorted(grants) == sorted(
        [
            [container, BLOB_CONTRIBUTOR],
            [arm_id(app, "Microsoft.Storage/storageAccounts", account), BLOB_DELEGATOR],
            ["registry:skyrigconformance", ACR_PULL],
        ]
    )


def test_publishers_send_and_consumers_receive_on_their_own_entities_only(app, families):
    needs(families, "pubsub")
    app.write({**SERVICES, **PUBSUB}, image="ghcr.io/example/shop:1")  # not an Azure registry: no AcrPull
    nodes = app.graph()
    namespace = names.servicebus_namespace_name(SUBSCRIPTION, app.name, "dev")
    topic = arm_id(app, "Microsoft.ServiceBus/namespaces/topics", namespace, names.topic_name("placed"))
    subscription = arm_id(
        app,
        "Microsoft.ServiceBus/namespaces/topics/subscriptions",
        namespace,
        names.topic_name("placed"),
        names.subscription_name("beta-placed"),
    )
    roles = {
        node_id: (node["properties"]["role"], node["properties"]["scope"])
        for node_id, node in nodes.items()
        if node["type"] == iam.ROLE_ASSIGNMENT.type
    }
    assert roles == {
        "iam.role/alpha/topic/placed/sender": (SENDER, topic),
        "iam.role/beta/subscription/beta-placed/receiver": (RECEIVER, subscription),
    }


@pytest.fixture
def on_the_vnet(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each service gets one role on the environment's VNet (a scope the network family makes): the role
    assignments' lifecycle, whatever the other families do."""

    def grants(scope: Any, service: str) -> list[dict[str, Any]]:
        settings_ = scope.settings
        group = settings_.resource_group or names.resource_group_name(scope.app, scope.environment.name)
        vnet = names.vnet_name(scope.app, scope.environment.name)
        arm = (
            f"/subscriptions/{settings_.subscription_id}/resourceGroups/{group}/providers/"
            f"Microsoft.Network/virtualNetworks/{vnet}"
        )
        return [{"target": "vnet", "scope": arm, "role": SECRETS_USER, "depends": [names.VNET_ID]}]

    monkeypatch.setattr(iam, "grants", grants)


def assigned(app: AppFolder, fake: FakeAzure) -> dict[str, list[tuple[str, str]]]:
    """Identity name -> (role, scope) of every role assignment naming its principal."""
    found: dict[str, list[tuple[str, str]]] = {}
    for identity in identities(fake).list_by_resource_group(rg(app)):
        found[identity.name] = sorted(
            (a.role_definition_id.rsplit("/", 1)[-1], a.scope)
            for a in assignments(fake).list_for_resource_group(rg(app))
            if a.principal_id == identity.principal_id
        )
    return found


def test_each_service_has_an_identity_of_its_own_and_its_roles(app, fake, network_only, on_the_vnet):
    app.write(SERVICES)
    app.apply()
    vnet = arm_id(app, "Microsoft.Network/virtualNetworks", names.vnet_name(app.name, "dev"))
    alpha, beta = (names.identity_name(app.name, "dev", s) for s in ("alpha", "beta"))
    assert assigned(app, fake) == {alpha: [(SECRETS_USER, vnet)], beta: [(SECRETS_USER, vnet)]}
    identity = identities(fake).get(rg(app), alpha)
    assert identity.tags == names.tags(app.name, "dev", names.identity_id("alpha"))
    [made] = [
        a
        for a in assignments(fake).list_for_resource_group(rg(app))
        if a.principal_id == identity.principal_id
    ]
    assert made.name == assignment_name(vnet, SECRETS_USER, identity.principal_id)
    assert str(made.principal_type) in ("ServicePrincipal", "PrincipalType.SERVICE_PRINCIPAL")
    fake.calls.clear()
    assert app.plan() == []
    # a refresh lists the identities and the role assignments once per node type, whatever the number of
    # services and grants: the identities' read checks for roles added in the portal, the assignments'
    # read that each names its identity's current principal
    assert fake.calls.count("Microsoft.ManagedIdentity/userAssignedIdentities", "GET") == 2
    assert fake.calls.count("Microsoft.Authorization/roleAssignments", "GET") == 2
    fake.calls.clear()
    app.apply()
    assert fake.calls.mutating() == [], "a second apply changed something"


def test_a_role_added_in_the_portal_is_taken_away(app, fake, network_only, on_the_vnet):
    from azure.mgmt.authorization.models import RoleAssignmentCreateParameters

    app.write(SERVICES)
    app.apply()
    identity = identities(fake).get(rg(app), names.identity_name(app.name, "dev", "alpha"))
    group = f"/subscriptions/{SUBSCRIPTION}/resourceGroups/{rg(app)}"
    body = RoleAssignmentCreateParameters(
        role_definition_id=iam.role_definition_id(SUBSCRIPTION, BLOB_CONTRIBUTOR),
        principal_id=identity.principal_id,
        principal_type="ServicePrincipal",
    )
    assignments(fake).create(group, str(uuid.uuid4()), body)
    [change] = app.plan()
    assert change["node"] == names.identity_id("alpha") and change["action"] == "update"
    assert change["drift"] == ["other_assignments"]
    app.apply()
    vnet = arm_id(app, "Microsoft.Network/virtualNetworks", names.vnet_name(app.name, "dev"))
    assert assigned(app, fake)[identity.name] == [(SECRETS_USER, vnet)]
    assert app.plan() == []


def test_an_assignment_deleted_or_an_identity_made_anew_is_assigned_again(
    app, fake, network_only, on_the_vnet
):
    app.write(SERVICES)
    app.apply()
    vnet = arm_id(app, "Microsoft.Network/virtualNetworks", names.vnet_name(app.name, "dev"))
    alpha = names.identity_name(app.name, "dev", "alpha")
    identity = identities(fake).get(rg(app), alpha)
    [made] = [
        a
        for a in assignments(fake).list_for_resource_group(rg(app))
        if a.principal_id == identity.principal_id
    ]
    assignments(fake).delete_by_id(made.id)
    [change] = app.plan()
    assert change["node"] == "iam.role/alpha/vnet/secrets-user" and change["action"] == "create"
    app.apply()
    assert assigned(app, fake)[alpha] == [(SECRETS_USER, vnet)]
    # the identity deleted and made again in the portal: a new principal, whose role the next apply gives
    identities(fake).delete(rg(app), alpha)
    tags = names.tags(app.name, "dev", names.identity_id("alpha"))
    again = identities(fake).create_or_update(rg(app), alpha, {"location": "eastus", "tags": tags})
    assert again.principal_id != identity.principal_id
    app.apply()
    assert assigned(app, fake)[alpha] == [(SECRETS_USER, vnet)]
    assert app.plan() == []


def test_an_interrupted_create_is_found_again_and_nothing_is_made_twice(app, fake, network_only, on_the_vnet):
    from azure.mgmt.authorization.models import RoleAssignmentCreateParameters

    app.write(SERVICES)
    # what a first apply cut short left: the group, VNet and alpha's identity, and alpha's role assignment
    # made under another name (by hand, say)
    app.apply()
    state = app.root / ".skyrig"
    for path in sorted(state.rglob("state.db*")):
        path.unlink()
    identity = identities(fake).get(rg(app), names.identity_name(app.name, "dev", "alpha"))
    vnet = arm_id(app, "Microsoft.Network/virtualNetworks", names.vnet_name(app.name, "dev"))
    [made] = [
        a
        for a in assignments(fake).list_for_resource_group(rg(app))
        if a.principal_id == identity.principal_id
    ]
    assignments(fake).delete_by_id(made.id)
    body = RoleAssignmentCreateParameters(
        role_definition_id=iam.role_definition_id(SUBSCRIPTION, SECRETS_USER),
        principal_id=identity.principal_id,
        principal_type="ServicePrincipal",
    )
    by_hand = assignments(fake).create(vnet, str(uuid.uuid4()), body)
    fake.calls.clear()
    app.apply()
    assert fake.calls.count("Microsoft.ManagedIdentity/userAssignedIdentities", "PUT") == 0
    assert fake.calls.count("Microsoft.Authorization/roleAssignments", "PUT") == 0
    assert [
        a.id
        for a in assignments(fake).list_for_resource_group(rg(app))
        if a.principal_id == identity.principal_id
    ] == [by_hand.id]
    assert app.plan() == []


def test_destroy_leaves_no_identity_and_no_assignment(app, fake, network_only, on_the_vnet):
    app.write(SERVICES)
    app.apply()
    app.cli("destroy", "--env", "dev", "--yes", "--include-data")
    fake.settle(everything=True)
    assert fake.resources("Microsoft.ManagedIdentity/userAssignedIdentities") == []
    assert fake.resources("Microsoft.Authorization/roleAssignments") == []
    assert fake.resources() == []


def test_a_secret_is_granted_once_it_holds_a_value(app, fake, families):
    from skyrig.cli.testing import invoke

    needs(families, "secrets", "compute")
    app.write(
        {
            **SERVICES,
            "alpha/secret.py": """
                from skyrig import Secret

                api_key = Secret("api-key")


                def read() -> str:
                    return api_key.value
            """,
        }
    )
    app.apply()
    # Key Vault has no secret without a value, and Azure no scope to grant on: nothing to read yet
    assert fake.resources("Microsoft.Authorization/roleAssignments") == []
    assert app.plan() == []
    for path in sorted(
        (app.root / ".skyrig").rglob("state.db*")
    ):  # state lost: the pending grant found again
        path.unlink()
    app.cli("state", "recover", "--env", "dev")
    assert app.plan() == []
    assert (
        invoke(["secret", "set", "api-key", "--env", "dev", "-C", str(app.root)], stdin="s3cret\n").code == 0
    )
    [change] = app.plan()
    assert (change["node"], change["action"]) == ("iam.role/alpha/secret/api-key/secrets-user", "create")
    app.apply()
    alpha = identities(fake).get(rg(app), names.identity_name(app.name, "dev", "alpha"))
    secret = arm_id(
        app,
        "Microsoft.KeyVault/vaults/secrets",
        names.key_vault_name(SUBSCRIPTION, app.name, "dev"),
        names.vault_secret_name("api-key"),
    )
    assert assigned(app, fake) == {
        alpha.name: [(SECRETS_USER, secret)],
        names.identity_name(app.name, "dev", "beta"): [],
    }, "the secret's reader is alpha alone, on that secret alone"
    assert app.plan() == []


def test_the_image_registry_is_pulled_from_with_acr_pull_on_it_alone(app, fake, network_only):
    groups = client(
        fake, __import__("azure.mgmt.resource.resources", fromlist=["x"]).ResourceManagementClient
    )
    groups.resource_groups.create_or_update("shared", {"location": "eastus"})
    registry = f"/subscriptions/{SUBSCRIPTION}/resourceGroups/shared/providers/Microsoft.ContainerRegistry/registries/skyrigtests"
    groups.resources.begin_create_or_update_by_id(
        registry, {"location": "eastus", "sku": {"name": "Basic"}}, api_version="2023-07-01"
    ).result()
    app.write(SERVICES, image="skyrigtests.azurecr.io/shop:1")
    app.apply()
    alpha, beta = (names.identity_name(app.name, "dev", s) for s in ("alpha", "beta"))
    for name in (alpha, beta):
        identity = identities(fake).get(rg(app), name)
        held = [
            (a.role_definition_id.rsplit("/", 1)[-1], a.scope)
            for a in assignments(fake).list_for_scope(registry)
            if a.principal_id == identity.principal_id
        ]
        assert held == [(ACR_PULL, registry)], name
    assert app.plan() == []
    # a registry this subscription does not hold: AcrPull is its owner's to give; nothing fails, nothing waits
    app.write(SERVICES, image="elsewhere.azurecr.io/shop:2")
    app.apply()
    assert app.plan() == []
    assert [a.scope for a in assignments(fake).list_for_scope(registry)] == [], (
        "the old registry's grant stayed"
    )
    app.cli("destroy", "--env", "dev", "--yes", "--include-data")
    assert fake.resources("Microsoft.Authorization/roleAssignments") == []
