"""The network family against the FAKE Azure Resource Manager (this is not Azure: ARM has no emulator; the
fake checks every request body against the azure-mgmt SDKs' own models): the resource group's lifecycle,
the VNet, the subnets the app uses with their delegations, the NSG of each subnet admitting only what it
needs, the private DNS zones linked to the VNet; the next plan empty; drift restored; interrupted creates
converging; destroy leaving nothing. Read back through Microsoft's management clients, as someone checking
the portal would.

The FAKE ARM runs alone here (a module fixture), and the provider expands only its network and iam
families: these tests look at the network, whatever the other families do.
"""

from __future__ import annotations

import time
from typing import Any

import pytest

import skyrig_azure
from skyrig_azure import names
from skyrig_azure.conformance import SUBSCRIPTION
from skyrig_azure.credentials import EmulatorCredential
from skyrig_azure.fake import FakeAzure
from skyrig_azure.network import DENY_VNET_PRIORITY, text
from skyrig_conformance.folder import AppFolder

SERVICE = {
    "alpha/__init__.py": """
        from skyrig import Service

        service = Service("alpha", app="alpha.web:app")
    """,
    "alpha/web.py": """
        async def app(scope, receive, send):
            pass
    """,
}
DATABASE = {
    "alpha/db.py": """
        from skyrig import SQLDatabase

        orders = SQLDatabase("orders")
    """
}
CACHE = {
    "alpha/cache.py": """
        from skyrig import CacheCluster

        sessions = CacheCluster("sessions")
    """
}
APP_CIDR, DB_CIDR, ENDPOINTS_CIDR = "10.20.0.0/24", "10.20.1.0/24", "10.20.2.0/24"
JOBS_CIDR = "10.20.3.0/24"


ARM_ONLY = True
"""The FAKE ARM alone (tests/conftest.py: ``arm``, ``fake`` wiped, ``azure_app`` on it)."""


@pytest.fixture
def app(azure_app: AppFolder, monkeypatch: pytest.MonkeyPatch) -> AppFolder:
    """An app in ``tmp_path`` on the (wiped) FAKE ARM, the provider expanding its network and iam only."""
    monkeypatch.setattr(skyrig_azure.AzureProvider, "modules", ("skyrig_azure.network", "skyrig_azure.iam"))
    return azure_app


def client(fake: FakeAzure, cls: Any) -> Any:
    return cls(
        EmulatorCredential(),
        SUBSCRIPTION,
        base_url=fake.endpoint,
        connection_verify=fake.ca_bundle,
        credential_scopes=["https://management.azure.com/.default"],
        polling_interval=0.01,
    )


def network(fake: FakeAzure) -> Any:
    from azure.mgmt.network import NetworkManagementClient

    return client(fake, NetworkManagementClient)


def dns(fake: FakeAzure) -> Any:
    from azure.mgmt.privatedns import PrivateDnsManagementClient

    return client(fake, PrivateDnsManagementClient)


def groups(fake: FakeAzure) -> Any:
    from azure.mgmt.resource.resources import ResourceManagementClient

    return client(fake, ResourceManagementClient).resource_groups


def rg(app: AppFolder) -> str:
    return names.resource_group_name(app.name, "dev")


def inbound(nsg: Any) -> list[tuple[int, str, str, str, list[str]]]:
    """(priority, access, source, destination, ports) of each custom rule."""
    return sorted(
        (
            r.priority,
            text(r.access),
            r.source_address_prefix,
            r.destination_address_prefix,
            sorted(r.destination_port_ranges or [r.destination_port_range]),
        )
        for r in nsg.security_rules
        if text(r.direction) == "Inbound"
    )


def test_subnets_delegations_and_nsgs_admit_only_what_each_needs(app, fake):
    app.write({**SERVICE, **DATABASE, **CACHE})
    app.apply()
    puts = {key[0]: n for key, n in fake.calls.counter().items() if key[1] == "PUT"}
    assert puts == {
        "Microsoft.Resources/resourceGroups": 1,
        "Microsoft.Network/virtualNetworks": 1,
        "Microsoft.Network/networkSecurityGroups": 4,
        "Microsoft.Network/virtualNetworks/subnets": 4,
        "Microsoft.Network/privateDnsZones": 2,
        "Microsoft.Network/privateDnsZones/virtualNetworkLinks": 2,
        "Microsoft.ManagedIdentity/userAssignedIdentities": 1,
    }, "one write per resource (a zone's link is a resource of its own)"
    net, group, vnet = network(fake), rg(app), names.vnet_name(app.name, "dev")
    assert net.virtual_networks.get(group, vnet).address_space.address_prefixes == ["10.20.0.0/16"]
    subnets = {s.name: s for s in net.subnets.list(group, vnet)}
    assert sorted(subnets) == ["app", "database", "endpoints", "jobs"]
    assert [d.service_name for d in subnets["app"].delegations] == ["Microsoft.Web/serverFarms"]
    assert [d.service_name for d in subnets["database"].delegations] == [
        "Microsoft.DBforPostgreSQL/flexibleServers"
    ]
    assert [d.service_name for d in subnets["jobs"].delegations] == ["Microsoft.App/environments"]
    assert not subnets["endpoints"].delegations
    assert text(subnets["endpoints"].private_endpoint_network_policies) == "Enabled", (
        "without network policies an NSG does not apply to private endpoints"
    )
    cidrs = {name: s.address_prefix for name, s in subnets.items()}
    assert cidrs == {"app": APP_CIDR, "database": DB_CIDR, "endpoints": ENDPOINTS_CIDR, "jobs": JOBS_CIDR}
    deny = (DENY_VNET_PRIORITY, "Deny", "VirtualNetwork", "*", ["*"])
    expected = {
        "app": [deny],
        "database": [
            (100, "Allow", APP_CIDR, DB_CIDR, ["5432"]),
            (105, "Allow", JOBS_CIDR, DB_CIDR, ["5432"]),
            (110, "Allow", DB_CIDR, DB_CIDR, ["5432", "6432"]),
            deny,
        ],
        "endpoints": [(100, "Allow", APP_CIDR, ENDPOINTS_CIDR, ["6380"]), deny],
        "jobs": [deny],
    }
    for name, subnet in subnets.items():
        nsg_name = subnet.network_security_group.id.rsplit("/", 1)[-1]
        assert nsg_name == names.nsg_name(app.name, "dev", name)
        assert inbound(net.network_security_groups.get(group, nsg_name)) == expected[name], name
    zones = {z.name: z for z in dns(fake).private_zones.list_by_resource_group(group)}
    assert sorted(zones) == [names.REDIS_DNS_ZONE, names.postgres_dns_zone(app.name, "dev")]
    for zone in zones:
        [link] = dns(fake).virtual_network_links.list(group, zone)
        assert link.virtual_network.id.endswith(f"/virtualNetworks/{vnet}")
        assert not link.registration_enabled
    assert app.plan() == []
    fake.calls.clear()
    app.apply()
    assert fake.calls.mutating() == [], "a second apply changed something"


def test_only_what_the_app_uses(app, fake):
    app.write(SERVICE)
    nodes = app.graph()
    assert sorted(n for n in nodes if n.startswith("network.")) == [
        "network.nsg/app",
        "network.resource_group",
        "network.subnet/app",
        "network.vnet",
    ], "no database subnet, endpoints subnet or DNS zone without a database or a cache"


def test_rules_and_links_changed_in_the_portal_are_restored(app, fake):
    app.write({**SERVICE, **DATABASE})
    app.apply()
    net, group = network(fake), rg(app)
    nsg = net.network_security_groups.get(group, names.nsg_name(app.name, "dev", "database"))
    opened = {
        "name": "open-everything",
        "properties": {
            "priority": 200,
            "direction": "Inbound",
            "access": "Allow",
            "protocol": "*",
            "sourceAddressPrefix": "*",
            "sourcePortRange": "*",
            "destinationAddressPrefix": "*",
            "destinationPortRange": "*",
        },
    }
    rules = fake.resource(nsg.id)["properties"]["securityRules"]
    fake.edit(nsg.id, {"properties": {"securityRules": [*rules, opened]}})
    subnet = net.subnets.get(group, names.vnet_name(app.name, "dev"), "app")
    fake.edit(subnet.id, {"properties": {"networkSecurityGroup": None}})
    zone = names.postgres_dns_zone(app.name, "dev")
    [link] = dns(fake).virtual_network_links.list(group, zone)
    dns(fake).virtual_network_links.begin_delete(group, zone, link.name).result()
    changes = {c["node"]: c for c in app.plan()}
    assert sorted(changes) == ["network.dns/postgres", "network.nsg/database", "network.subnet/app"]
    assert all(c["action"] == "update" for c in changes.values())
    app.apply()
    nsg = net.network_security_groups.get(group, nsg.name)
    assert "open-everything" not in {r.name for r in nsg.security_rules}
    assert net.subnets.get(group, names.vnet_name(app.name, "dev"), "app").network_security_group.id == (
        subnet.network_security_group.id
    )
    assert len(list(dns(fake).virtual_network_links.list(group, zone))) == 1
    assert app.plan() == []


def test_a_resource_group_skyrig_made_goes_only_with_the_data(app, fake):
    app.write(SERVICE)
    app.apply()
    group = groups(fake).get(rg(app))
    assert group.tags == names.tags(app.name, "dev", names.RESOURCE_GROUP_ID)
    app.cli("destroy", "--env", "dev", "--yes")
    assert groups(fake).check_existence(rg(app)), "destroy without --include-data deleted the group"
    # the network goes with the data: a database kept by destroy stays reachable in its subnet
    assert len(fake.resources("Microsoft.Network/virtualNetworks/subnets")) == 1
    assert fake.resources("Microsoft.ManagedIdentity/userAssignedIdentities") == []
    app.cli("destroy", "--env", "dev", "--yes", "--include-data")
    fake.settle(everything=True)
    assert not groups(fake).check_existence(rg(app))
    assert fake.resources() == []


def test_a_configured_resource_group_is_never_made_nor_deleted(app, fake):
    from skyrig.cli.testing import invoke

    app.write(SERVICE, resource_group="theirs")
    failed = invoke(["apply", "--env", "dev", "--yes", "-C", str(app.root)])
    assert (
        failed.code != 0
        and "resource group 'theirs' (the azure setting resource_group) does not exist" in failed.text
    )
    groups(fake).create_or_update("theirs", {"location": "westeurope", "tags": {"owner": "someone"}})
    app.apply()
    assert app.plan() == [], "the group's own region (not the resources') is the user's business"
    assert groups(fake).get("theirs").tags == {"owner": "someone"}, "skyrig changed the user's group"
    vnet = names.vnet_name(app.name, "dev")
    assert network(fake).virtual_networks.get("theirs", vnet).tags[names.TAG_ENV] == "dev"
    app.cli("destroy", "--env", "dev", "--yes", "--include-data")
    fake.settle(everything=True)
    assert groups(fake).check_existence("theirs")
    assert fake.resources() == ["/subscriptions/" + SUBSCRIPTION + "/resourceGroups/theirs"]


def test_another_environments_group_of_the_same_name_is_refused(app, fake):
    from skyrig.cli.testing import invoke

    groups(fake).create_or_update(rg(app), {"location": "eastus", "tags": {names.TAG_APP: "other"}})
    app.write(SERVICE)
    failed = invoke(["apply", "--env", "dev", "--yes", "-C", str(app.root)])
    assert failed.code != 0 and "is not this environment's" in failed.text
    assert groups(fake).get(rg(app)).tags == {names.TAG_APP: "other"}


def test_interrupted_creates_converge(app, fake):
    from azure.mgmt.network import models
    from azure.mgmt.privatedns.models import PrivateZone

    from skyrig.cli.testing import invoke

    app.write({**SERVICE, **DATABASE})
    group, vnet = rg(app), names.vnet_name(app.name, "dev")
    # a first apply cut short: the group and VNet made (not recorded), the DNS zone made without its link
    groups(fake).create_or_update(
        group, {"location": "eastus", "tags": names.tags(app.name, "dev", names.RESOURCE_GROUP_ID)}
    )
    body = models.VirtualNetwork(
        location="eastus",
        tags=names.tags(app.name, "dev", names.VNET_ID),
        address_space=models.AddressSpace(address_prefixes=["10.20.0.0/16"]),
    )
    network(fake).virtual_networks.begin_create_or_update(group, vnet, body).result()
    zone = names.postgres_dns_zone(app.name, "dev")
    tags = names.tags(app.name, "dev", names.POSTGRES_DNS_ID)
    dns(fake).private_zones.begin_create_or_update(
        group, zone, PrivateZone(location="global", tags=tags)
    ).result()
    # and an intent with nothing made: the NSG's PUT refused, the apply stopped there
    fake.inject(409, type="Microsoft.Network/networkSecurityGroups", method="PUT", code="Conflict", times=1)
    fake.calls.clear()
    assert invoke(["apply", "--env", "dev", "--yes", "-C", str(app.root)]).code != 0
    app.apply()
    assert fake.calls.count("Microsoft.Network/virtualNetworks", "PUT") == 0, "the VNet was made again"
    assert fake.calls.count("Microsoft.Resources/resourceGroups", "PUT") == 0
    assert len(fake.resources("Microsoft.Network/virtualNetworks")) == 1
    assert len(fake.resources("Microsoft.Network/privateDnsZones")) == 1
    assert len(list(dns(fake).virtual_network_links.list(group, zone))) == 1, (
        "the zone's link was not finished"
    )
    assert len(fake.resources("Microsoft.Network/networkSecurityGroups")) == 3, "app, database, jobs"
    assert app.plan() == []


def test_a_vnet_too_small_for_the_subnets_is_refused_before_any_call(app, fake):
    from skyrig.cli.testing import invoke

    app.write(SERVICE, vnet_cidr="10.20.0.0/26")
    failed = invoke(["plan", "--env", "dev", "-C", str(app.root)])
    assert failed.code != 0 and "too small" in failed.text and "/22" in failed.text
    assert len(fake.calls) == 0


def test_refresh_reads_the_network_in_few_calls(app, fake):
    app.write({**SERVICE, **DATABASE, **CACHE})
    app.apply()
    fake.calls.clear()
    started = time.monotonic()
    assert app.plan() == []
    counted = fake.calls.counter()
    assert not [c for c in fake.calls if c.mutating]
    # the group and the VNet of known names read; one list of the NSGs, one of the VNet's subnets, one
    # of the zones, and each zone's link read
    network = {
        key: n
        for key, n in counted.items()
        if key[0].startswith(("Microsoft.Network", "Microsoft.Resources/resourceGroups"))
    }
    assert network == {
        ("Microsoft.Resources/resourceGroups", "GET"): 1,
        ("Microsoft.Network/virtualNetworks", "GET"): 1,
        ("Microsoft.Network/networkSecurityGroups", "GET"): 1,
        ("Microsoft.Network/virtualNetworks/subnets", "GET"): 1,
        ("Microsoft.Network/privateDnsZones", "GET"): 1,
        ("Microsoft.Network/privateDnsZones/virtualNetworkLinks", "GET"): 2,
    }, counted
    assert time.monotonic() - started < 30


def test_the_fake_refuses_what_azure_refuses(fake):
    """The FAKE ARM's network rules the provider could get wrong, each refused with Azure's code."""
    from azure.core.exceptions import HttpResponseError
    from azure.mgmt.network import models
    from azure.mgmt.privatedns.models import PrivateZone, SubResource, VirtualNetworkLink

    groups(fake).create_or_update("g", {"location": "eastus"})
    net = network(fake)

    def refused(code: str, call: Any) -> None:
        with pytest.raises(HttpResponseError) as caught:
            call().result()
        assert caught.value.error.code == code, caught.value.message

    def rule(name: str, priority: int, **extra: Any) -> Any:
        fields = {
            "protocol": "Tcp",
            "source_address_prefix": "*",
            "source_port_range": "*",
            "destination_address_prefix": "*",
            "destination_port_range": "5432",
            "access": "Allow",
            "direction": "Inbound",
            **extra,
        }
        return models.SecurityRule(name=name, priority=priority, **fields)

    def nsg(*rules: Any) -> Any:
        return models.NetworkSecurityGroup(location="eastus", security_rules=list(rules))

    nsgs = net.network_security_groups
    refused("SecurityRuleInvalidPriority", lambda: nsgs.begin_create_or_update("g", "n", nsg(rule("a", 50))))
    refused(
        "SecurityRulesOverlapOrHaveSamePriority",
        lambda: nsgs.begin_create_or_update("g", "n", nsg(rule("a", 100), rule("b", 100))),
    )
    both = rule("a", 100, destination_port_ranges=["6379"])
    refused(
        "SecurityRuleParameterContainsUnsupportedValue",
        lambda: nsgs.begin_create_or_update("g", "n", nsg(both)),
    )
    vnet = models.VirtualNetwork(
        location="eastus", address_space=models.AddressSpace(address_prefixes=["10.0.0.0/16"])
    )
    net.virtual_networks.begin_create_or_update("g", "v", vnet).result()
    missing = models.NetworkSecurityGroup(
        id=f"/subscriptions/{SUBSCRIPTION}/resourceGroups/g/providers/Microsoft.Network/networkSecurityGroups/none"
    )
    refused(
        "InvalidResourceReference",
        lambda: net.subnets.begin_create_or_update(
            "g", "v", "s", models.Subnet(address_prefix="10.0.0.0/24", network_security_group=missing)
        ),
    )
    wrong = [models.Delegation(name="d", service_name="Microsoft.Nothing/here")]
    refused(
        "InvalidServiceNameOnDelegation",
        lambda: net.subnets.begin_create_or_update(
            "g", "v", "s", models.Subnet(address_prefix="10.0.0.0/24", delegations=wrong)
        ),
    )
    zones, links = dns(fake).private_zones, dns(fake).virtual_network_links
    refused(
        "InvalidLocation",
        lambda: zones.begin_create_or_update("g", "z.example", PrivateZone(location="eastus")),
    )
    zones.begin_create_or_update("g", "z.example", PrivateZone(location="global")).result()
    vnet_id = f"/subscriptions/{SUBSCRIPTION}/resourceGroups/g/providers/Microsoft.Network/virtualNetworks/v"
    link = VirtualNetworkLink(
        location="global", virtual_network=SubResource(id=vnet_id), registration_enabled=False
    )
    links.begin_create_or_update("g", "z.example", "one", link).result()
    refused("Conflict", lambda: links.begin_create_or_update("g", "z.example", "two", link))
    delegated = [models.Delegation(name="d", service_name="Microsoft.DBforPostgreSQL/flexibleServers")]
    net.subnets.begin_create_or_update(
        "g", "v", "db", models.Subnet(address_prefix="10.0.1.0/24", delegations=delegated)
    ).result()
    endpoint = models.PrivateEndpoint(
        location="eastus",
        subnet=models.Subnet(id=f"{vnet_id}/subnets/db"),
        private_link_service_connections=[
            models.PrivateLinkServiceConnection(name="c", private_link_service_id=vnet_id, group_ids=["x"])
        ],
    )
    refused(
        "PrivateEndpointCreationNotAllowedAsSubnetIsDelegated",
        lambda: net.private_endpoints.begin_create_or_update("g", "pe", endpoint),
    )
