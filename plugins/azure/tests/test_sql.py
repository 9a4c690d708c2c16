"""The sql family against the FAKE Azure Resource Manager (skyrig_azure.fake, not Azure: Resource Manager has
no emulator), read back with Microsoft's own management client (azure-mgmt-postgresqlflexibleservers) as
someone checking the portal would: one private PostgreSQL flexible server per environment (delegated
subnet, private DNS zone, no public access), TLS required, backups kept 7 days with point-in-time recovery,
zone-redundant high availability in production only; the administrator's password only in Key Vault; a
SKU changed in the portal adopted, TLS turned off restored; an interrupted create converges; destroy leaves
nothing. The FAKE has no PostgreSQL behind a server: the data plane is shown against a real PostgreSQL
(the conformance suite's stand-in, with TLS where it matters)."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from skyrig_azure import api, names, sql
from skyrig_azure.conformance import SUBSCRIPTION
from skyrig_azure.fake.resources.postgresql import DELEGATION

FILES = {
    "alpha/__init__.py": 'from skyrig import Service\n\nservice = Service("alpha", app="alpha.web:app")\n',
    "alpha/web.py": "async def app(scope, receive, send):\n    pass\n",
    "alpha/resources.py": """
        from skyrig import SQLDatabase

        ledger = SQLDatabase("ledger", migrations="./migrations")
        audit = SQLDatabase("audit")
    """,
    "alpha/use.py": """
        from .resources import audit, ledger


        def use() -> None:
            ledger.connect()
            audit.connect()
    """,
    "alpha/migrations/0001_entries.up.sql": "CREATE TABLE entries (id serial PRIMARY KEY);\n",
}


def deploy(azure_app: Any, production: bool = False) -> Any:
    """The app written with its services on the memory provider (this module is about sql), as a
    development or production environment."""
    azure_app.write(FILES)
    toml = azure_app.root / "skyrig.toml"
    text = toml.read_text().replace(
        'provider = "azure"\n', 'provider = "azure"\ncompute = "memory"\ncron = "memory"\n'
    )
    if production:
        text = text.replace('type = "development"', 'type = "production"')
    toml.write_text(text)
    return azure_app


def postgresql(azure_app: Any) -> Any:
    from azure.mgmt.postgresqlflexibleservers import PostgreSQLManagementClient

    from skyrig_azure.credentials import EmulatorCredential

    return PostgreSQLManagementClient(
        EmulatorCredential(),
        SUBSCRIPTION,
        base_url=azure_app.endpoints["arm"],
        credential_scopes=["https://management.azure.com/.default"],
    )


def server_name(azure_app: Any) -> str:
    return names.sql_server_name(SUBSCRIPTION, azure_app.name, "dev")


def group(azure_app: Any) -> str:
    return names.resource_group_name(azure_app.name, "dev")


def test_the_server_is_private_tls_only_backed_up_and_zone_redundant_in_production(
    azure_app: Any, fake: Any
) -> None:
    app = deploy(azure_app, production=True)
    applied = app.apply()
    client = postgresql(app)
    server = client.servers.get(group(app), server_name(app))
    p = server.properties
    assert p.network.public_network_access == "Disabled"
    assert p.network.delegated_subnet_resource_id.endswith("/subnets/database")
    assert p.network.private_dns_zone_arm_resource_id.endswith(names.postgres_dns_zone(app.name, "dev"))
    assert p.backup.backup_retention_days == 7 and p.backup.earliest_restore_date is not None
    assert p.high_availability.mode == "ZoneRedundant"
    assert p.storage.auto_grow == "Enabled" and p.version == "18"
    assert (server.sku.name, server.sku.tier) == ("Standard_D2s_v3", "GeneralPurpose")
    secure = client.configurations.get(group(app), server_name(app), sql.SECURE_TRANSPORT)
    assert secure.properties.value == "on"
    databases = {d.name for d in client.databases.list_by_server(group(app), server_name(app))}
    assert {"ledger", "audit"} <= databases

    # the administrator's password: in Key Vault only, never in state, plans, output or the runtime config
    vault = fake.vault(names.key_vault_name(SUBSCRIPTION, app.name, "dev"))
    password = vault.value(names.SQL_ADMIN_SECRET)
    assert password and len(password) >= 32
    stored = b"".join(p.read_bytes() for p in (app.root / ".skyrig").rglob("*") if p.is_file())
    assert password.encode() not in stored, "the password is in state or a runtime config"
    plan = app.cli("plan", "--env", "dev", "--json")
    assert password not in plan.text + applied.text
    config = json.loads((app.root / ".skyrig" / "runtime" / "dev" / "alpha.json").read_text())
    entry = config["resources"]["sql_database/ledger"]
    assert entry["password"].endswith(f"/secrets/{names.SQL_ADMIN_SECRET}")
    assert entry["host"] == f"{server_name(app)}.postgres.database.azure.com"
    assert (entry["sslmode"], entry["user"], entry["database"]) == ("verify-full", sql.ADMIN, "ledger")

    # high availability turned off in the portal is turned on again
    fake.edit(server.id, {"properties": {"highAvailability": {"mode": "Disabled", "state": "NotEnabled"}}})
    [change] = app.plan()
    assert change["node"] == names.SQL_SERVER_ID and "high_availability" in change["drift"]
    app.apply()
    assert (
        client.servers.get(group(app), server_name(app)).properties.high_availability.mode == "ZoneRedundant"
    )


def test_development_has_no_standby_and_a_second_apply_changes_nothing(azure_app: Any, fake: Any) -> None:
    app = deploy(azure_app)
    app.apply()
    # the minimum of changes: the server and each database made once; TLS is Azure's default, not set
    writes = fake.calls.select("Microsoft.DBforPostgreSQL", mutating=True)
    assert sorted(f"{call.type.rpartition('/')[2]} {call.method}" for call in writes) == [
        "databases PUT",
        "databases PUT",
        "flexibleServers PUT",
    ], writes
    server = postgresql(app).servers.get(group(app), server_name(app))
    assert server.properties.high_availability.mode == "Disabled"
    fake.calls.clear()
    api.CALLS.clear()
    assert app.plan() == []
    mutating = fake.calls.mutating()
    assert mutating == [], f"a plan changed something: {mutating}"
    # the minimum: the servers listed, the TLS parameter read, the databases listed
    reads = {
        kind.rpartition("/")[2]: count
        for (kind, method), count in api.CALLS.items()
        if kind.startswith("Microsoft.DBforPostgreSQL/") and method == "GET"
    }
    assert reads == {"flexibleServers": 1, "configurations": 1, "databases": 1}, reads
    assert "nothing to do" in app.apply().text
    assert fake.calls.mutating() == []


def test_a_sku_changed_in_the_portal_is_adopted_and_tls_and_retention_are_restored(
    azure_app: Any, fake: Any
) -> None:
    app = deploy(azure_app)
    app.apply()
    client = postgresql(app)
    server_id = client.servers.get(group(app), server_name(app)).id
    fake.edit(
        server_id, {"sku": {"name": "Standard_D4s_v3"}, "properties": {"backup": {"backupRetentionDays": 35}}}
    )
    client.configurations.begin_put(
        group(app), server_name(app), sql.SECURE_TRANSPORT, {"properties": {"value": "off"}}
    ).result()
    [change] = app.plan()
    assert change["node"] == names.SQL_SERVER_ID and change["action"] == "update"
    app.apply()
    server = client.servers.get(group(app), server_name(app))
    assert server.sku.name == "Standard_D4s_v3", "a SKU chosen in the portal was reverted"
    assert server.properties.backup.backup_retention_days == 7, "backup retention was left changed"
    secure = client.configurations.get(group(app), server_name(app), sql.SECURE_TRANSPORT)
    assert secure.properties.value == "on", "TLS was left off"
    assert app.plan() == []


def test_an_interrupted_create_converges_with_the_password_it_left(azure_app: Any, fake: Any) -> None:
    """A create that died after keeping the password in Key Vault (the server not made): the next apply
    gives the server that password, not a second one. State lost after the server was made: the server is
    found and adopted, not made again."""
    from skyrig.cli.testing import invoke

    app = deploy(azure_app)
    fake.inject(400, type="Microsoft.DBforPostgreSQL/flexibleServers", method="PUT", code="Interrupted")
    result = invoke(["apply", "--env", "dev", "--yes", "-C", str(app.root)])
    assert result.code != 0 and "Interrupted" in result.text
    assert fake.resources("Microsoft.DBforPostgreSQL/flexibleServers") == []
    vault = fake.vault(names.key_vault_name(SUBSCRIPTION, app.name, "dev"))
    left = vault.value(names.SQL_ADMIN_SECRET)
    assert left, "the password was not kept before the server was asked for"
    app.apply()
    assert vault.value(names.SQL_ADMIN_SECRET) == left, "a second password was made"
    assert len(fake.resources("Microsoft.DBforPostgreSQL/flexibleServers")) == 1

    shutil.rmtree(app.root / ".skyrig")
    fake.calls.clear()
    app.apply()
    assert fake.calls.count("Microsoft.DBforPostgreSQL/flexibleServers", "PUT") == 0, "made again"
    assert vault.value(names.SQL_ADMIN_SECRET) == left
    assert app.plan() == []


def test_a_password_secret_deleted_with_an_earlier_server_is_recovered(azure_app: Any, fake: Any) -> None:
    """Key Vault keeps a deleted secret (soft delete) and refuses its name until it is recovered or
    purged: a server made again after an earlier one was deleted gets the recovered password."""
    from azure.keyvault.secrets import SecretClient

    from skyrig_azure.credentials import EmulatorCredential

    app = deploy(azure_app)
    app.apply()
    client = postgresql(app)
    client.servers.begin_delete(group(app), server_name(app)).result()
    vault_name = names.key_vault_name(SUBSCRIPTION, app.name, "dev")
    vault_uri = fake.resource(
        f"/subscriptions/{SUBSCRIPTION}/resourceGroups/{group(app)}/providers/Microsoft.KeyVault/vaults/{vault_name}"
    )["properties"]["vaultUri"]
    secrets = SecretClient(
        vault_uri, EmulatorCredential(), connection_verify=fake.ca_bundle, verify_challenge_resource=False
    )
    before = secrets.get_secret(names.SQL_ADMIN_SECRET).value
    secrets.begin_delete_secret(names.SQL_ADMIN_SECRET).wait()
    assert fake.vault(vault_name).value(names.SQL_ADMIN_SECRET) is None
    app.apply()
    assert client.servers.get(group(app), server_name(app)).properties.state == "Ready"
    assert fake.vault(vault_name).value(names.SQL_ADMIN_SECRET) == before, "not the recovered password"
    assert app.plan() == []


def test_destroy_leaves_nothing(azure_app: Any, fake: Any) -> None:
    app = deploy(azure_app)
    app.apply()
    app.cli("destroy", "--env", "dev", "--yes", "--include-data")
    assert fake.resources("Microsoft.DBforPostgreSQL/flexibleServers") == []
    assert fake.resources("Microsoft.DBforPostgreSQL/flexibleServers/databases") == []


def test_the_migration_job_carries_no_secret(azure_app: Any) -> None:
    from types import SimpleNamespace

    from skyrig.analysis import build_model
    from skyrig_azure.settings import AzureSettings

    app = deploy(azure_app)
    environment = SimpleNamespace(name="dev", type="development")
    scope = SimpleNamespace(app=app.name, environment=environment, settings=AzureSettings(**app.settings))
    model = build_model(app.root, app.name)
    job = sql.migration_job(scope, model.resource("sql_database", "ledger"))  # type: ignore[arg-type]
    assert job["after"] == "sql.database/ledger" and job["command"][-1] == "skyrig_azure.runtime.sql"
    assert json.loads(job["environment"]["SKYRIG_MIGRATIONS"]) == job["migrations"] != []
    connection = json.loads(job["environment"]["SKYRIG_DB_CONNECTION"])
    assert "password" not in connection and connection["sslmode"] == "verify-full"


@contextmanager
def tls_postgres(user: str, password: str) -> Iterator[tuple[int, str]]:
    """A real PostgreSQL on 127.0.0.1 as a flexible server with ``require_secure_transport`` on is: TLS
    only, presenting a certificate for ``localhost`` from a CA of its own, ``user`` with ``password``.
    Yields (its port, the CA's PEM file)."""
    import os
    import subprocess
    import tempfile

    import trustme

    from skyrig.provider import free_port

    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))
    if not found:
        pytest.skip("no PostgreSQL server binaries (Debian's postgresql) on this machine")
    binaries = found[-1].parent
    as_postgres = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    authority = trustme.CA()
    identity = authority.issue_cert("localhost")
    folder = Path(tempfile.mkdtemp(prefix="skyrig-azure-pg-"))
    folder.chmod(0o755)
    port = free_port()
    try:
        authority.cert_pem.write_to_path(str(folder / "ca.pem"))
        files = {
            "server.crt": identity.cert_chain_pems[0].bytes().decode(),
            "server.key": identity.private_key_pem.bytes().decode(),
            "pw": password,
        }
        for name, text in files.items():
            (folder / name).write_text(text)
            (folder / name).chmod(0o600)
            if as_postgres:
                shutil.chown(folder / name, "postgres", "postgres")
        if as_postgres:
            shutil.chown(folder, "postgres", "postgres")
        data = folder / "data"
        run = [*as_postgres, str(binaries / "initdb"), "-D", str(data), "-U", user, "--no-sync"]
        subprocess.run(
            [*run, "--auth=scram-sha-256", f"--pwfile={folder / 'pw'}"], check=True, capture_output=True
        )
        conf = {
            "listen_addresses": "'127.0.0.1'",
            "port": str(port),
            "unix_socket_directories": f"'{folder}'",
            "ssl": "on",
            "ssl_cert_file": f"'{folder / 'server.crt'}'",
            "ssl_key_file": f"'{folder / 'server.key'}'",
            "fsync": "off",
        }
        with (data / "postgresql.conf").open("a") as written:
            written.writelines(f"{name} = {value}\n" for name, value in conf.items())
        (data / "pg_hba.conf").write_text("hostssl all all 127.0.0.1/32 scram-sha-256\n")
        ctl = [*as_postgres, str(binaries / "pg_ctl"), "-D", str(data)]
        subprocess.run([*ctl, "-l", str(folder / "log"), "-w", "start"], check=True, capture_output=True)
        try:
            yield port, str(folder / "ca.pem")
        finally:
            subprocess.run([*ctl, "-m", "immediate", "-w", "stop"], capture_output=True)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def test_the_data_plane_reads_the_password_from_key_vault_and_checks_the_server_by_name(
    azure_backends: Any, fake: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The whole connection a service makes: the password read from the vault with the service's
    credential (the runtime config holds the secret's URI), TLS with the server checked by host name
    against the system's roots (here a test CA made the system's); a server reached under a name its
    certificate does not carry is refused."""
    import psycopg
    from azure.keyvault.secrets import SecretClient

    from skyrig_azure.credentials import EmulatorCredential
    from skyrig_azure.runtime.sql import database, forget

    vault_uri = fake.open_vault("ledgervault")
    secrets = SecretClient(
        vault_uri, EmulatorCredential(), connection_verify=fake.ca_bundle, verify_challenge_resource=False
    )
    secret = secrets.set_secret(names.SQL_ADMIN_SECRET, "correct-Horse-battery-9")
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", fake.ca_bundle)
    forget()
    with tls_postgres(sql.ADMIN, "correct-Horse-battery-9") as (port, authority):
        monkeypatch.setenv("SSL_CERT_FILE", authority)
        entry = {
            "host": "localhost",
            "port": port,
            "user": sql.ADMIN,
            "database": "postgres",
            "sslmode": "verify-full",
            "password": f"{vault_uri.rstrip('/')}/secrets/{names.SQL_ADMIN_SECRET}",
            "emulator": "fake",
        }
        client = database(entry, {})
        with client.connect() as connection:
            (ssl,) = connection.execute("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()").fetchone()
        assert ssl is True
        assert "sslrootcert=system" in client.url() and secret.value in client.url()
        with pytest.raises(psycopg.OperationalError, match=r"certificate|does not match"):
            database({**entry, "host": "127.0.0.1"}, {}).connect().close()


def test_the_fake_refuses_what_azure_refuses(azure_app: Any, fake: Any) -> None:
    """Rules the provider could get wrong, as Azure enforces them: private access needs a subnet delegated
    to flexible servers and a private DNS zone, high availability is not offered on Burstable, the
    password is never answered nor kept."""
    from azure.core.exceptions import HttpResponseError
    from azure.mgmt.network import NetworkManagementClient
    from azure.mgmt.resource.resources import ResourceManagementClient

    from skyrig_azure.credentials import EmulatorCredential

    common = {
        "base_url": azure_app.endpoints["arm"],
        "credential_scopes": ["https://management.azure.com/.default"],
    }
    ResourceManagementClient(EmulatorCredential(), SUBSCRIPTION, **common).resource_groups.create_or_update(
        "rules", {"location": "eastus"}
    )
    network = NetworkManagementClient(EmulatorCredential(), SUBSCRIPTION, **common)
    subnets = [
        {"name": "plain", "properties": {"addressPrefix": "10.9.0.0/24"}},
        {
            "name": "db",
            "properties": {
                "addressPrefix": "10.9.1.0/24",
                "delegations": [{"name": "pg", "properties": {"serviceName": DELEGATION}}],
            },
        },
    ]
    vnet = network.virtual_networks.begin_create_or_update(
        "rules",
        "vnet",
        {
            "location": "eastus",
            "properties": {"addressSpace": {"addressPrefixes": ["10.9.0.0/16"]}, "subnets": subnets},
        },
    ).result()
    client = postgresql(azure_app)

    def server(name: str, subnet: str | None, tier: str = "GeneralPurpose", ha: str = "Disabled") -> Any:
        body = {
            "location": "eastus",
            "sku": {"name": "Standard_B1ms" if tier == "Burstable" else "Standard_D2s_v3", "tier": tier},
            "properties": {
                "version": "17",
                "administratorLogin": "owner",
                "administratorLoginPassword": "correct-Horse-battery-9",
                "storage": {"storageSizeGB": 32},
                "network": {
                    "publicNetworkAccess": "Disabled",
                    "delegatedSubnetResourceId": f"{vnet.id}/subnets/{subnet}",
                }
                if subnet
                else {"publicNetworkAccess": "Enabled"},
                "highAvailability": {"mode": ha},
            },
        }
        return client.servers.begin_create_or_update("rules", name, body).result()

    with pytest.raises(HttpResponseError, match="SubnetNotDelegated"):
        server("undelegated", "plain")
    with pytest.raises(HttpResponseError, match="PrivateDnsZoneRequired"):
        server("no-zone", "db")
    with pytest.raises(HttpResponseError, match="HighAvailabilityNotSupported"):
        server("burst", None, "Burstable", "ZoneRedundant")
    made = server("public", None)
    assert made.properties.administrator_login_password is None, "the fake answered the password"
    assert "correct-Horse" not in json.dumps(fake.resource(made.id))
