"""The sql family against the FAKE Cloud SQL Admin and Secret Manager APIs (skyrig_gcp.fake, not Google: Cloud
SQL has no emulator), read back with Google's real client libraries: a private, mutual-TLS instance with
backups and point-in-time recovery, highly available and protected from deletion in production; the
``postgres`` password only in Secret Manager; a tier changed in the console adopted, backups turned off
restored; the data plane's client certificate. Its PostgreSQL is the conformance suite's stand-in (the
FAKE has no server behind an instance)."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from google.auth.credentials import AnonymousCredentials
from google.cloud import secretmanager_v1
from googleapiclient.discovery import build

from skyrig.cli.testing import invoke
from skyrig_gcp import names, provider, sql
from skyrig_gcp.conformance import PROJECT, settings

APP = "ledgers"
COMPUTE = [] if "service" in provider.manifest.kinds else ['compute = "memory"']
RESOURCES = """
from skyrig import SQLDatabase

ledger = SQLDatabase("ledger", migrations="./migrations")
"""
USE = """
from .resources import ledger


def use() -> None:
    ledger.connect()
"""


@pytest.fixture
def app(tmp_path: Path, gcp_backends: Any, fake: Any, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An app with one SQL database, environments dev (development) and prod (production) on the FAKE
    (its service on the memory provider where this provider does not run services)."""
    endpoints = gcp_backends[0]
    root = tmp_path / "app"
    files = {
        "alpha/__init__.py": 'from skyrig import Service\n\nservice = Service("alpha", app="alpha.web:app")\n',
        "alpha/web.py": "async def app(scope, receive, send):\n    pass\n",
        "alpha/resources.py": RESOURCES,
        "alpha/use.py": USE,
        "alpha/migrations/0001_entries.up.sql": "CREATE TABLE entries (id serial PRIMARY KEY);\n",
    }
    lines = [f'app = "{APP}"']
    for env, kind in (("dev", "development"), ("prod", "production")):
        lines += [
            f"[env.{env}]",
            f'type = "{kind}"',
            'provider = "gcp"',
            *COMPUTE,
            f"[env.{env}.gcp]",
        ]
        for key, value in settings(endpoints).items():
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


def sqladmin(fake: Any) -> Any:
    return build(
        "sqladmin",
        "v1",
        credentials=AnonymousCredentials(),
        client_options={"api_endpoint": fake.discovery_endpoint("sqladmin")},
        static_discovery=True,
        cache_discovery=False,
    )


def instance(fake: Any, env: str) -> dict[str, Any]:
    name = names.sql_instance_name(APP, env)
    return sqladmin(fake).instances().get(project=PROJECT, instance=name).execute()


def password(fake: Any, env: str) -> str:
    client = secretmanager_v1.SecretManagerServiceClient(
        credentials=AnonymousCredentials(),
        transport="rest",
        client_options={"api_endpoint": fake.endpoint("secretmanager")},
    )
    secret = f"projects/{PROJECT}/secrets/{names.sql_password_secret(APP, env)}/versions/latest"
    return client.access_secret_version(name=secret).payload.data.decode()


def test_production_instance_is_private_mutual_tls_highly_available_and_backed_up(
    app: Path, fake: Any
) -> None:
    applied = skyrig(app, "apply", "--env", "prod", "--yes")
    db = instance(fake, "prod")
    settings_ = db["settings"]
    backups = settings_["backupConfiguration"]
    assert backups["enabled"] is True and backups["pointInTimeRecoveryEnabled"] is True
    assert backups["backupRetentionSettings"]["retainedBackups"] == 7
    assert backups["transactionLogRetentionDays"] == 7
    ip = settings_["ipConfiguration"]
    assert ip["ipv4Enabled"] is False, "a public IP"
    assert ip["privateNetwork"].endswith("/networks/" + names.network_name(APP, "prod"))
    assert ip["sslMode"] == "TRUSTED_CLIENT_CERTIFICATE_REQUIRED"
    assert [a["type"] for a in db["ipAddresses"]] == ["PRIVATE"]
    assert settings_["availabilityType"] == "REGIONAL" and db["secondaryGceZone"]
    assert settings_["deletionProtectionEnabled"] is True
    assert settings_["tier"] == "db-custom-1-3840" and settings_["edition"] == "ENTERPRISE"
    assert settings_["storageAutoResize"] is True and db["databaseVersion"] == "POSTGRES_17"
    databases = sqladmin(fake).databases().list(project=PROJECT, instance=db["name"]).execute()["items"]
    assert [d["name"] for d in databases] == ["ledger"]

    # the postgres password: in Secret Manager, given to Cloud SQL once, nowhere else
    secret = password(fake, "prod")
    assert len(secret) >= 32
    stored = b"".join(p.read_bytes() for p in (app / ".skyrig").rglob("*") if p.is_file())
    assert secret.encode() not in stored, "the password is in state or a runtime config"
    plan = skyrig(app, "plan", "--env", "prod", "--json")
    assert secret not in plan.text + applied.text
    config = json.loads((app / ".skyrig" / "runtime" / "prod" / "alpha.json").read_text())
    entry = config["resources"]["sql_database/ledger"]
    assert entry["password"].endswith(f"/secrets/{names.sql_password_secret(APP, 'prod')}/versions/latest")
    assert entry["sslmode"] == "verify-ca" and entry["host"] == db["ipAddresses"][0]["ipAddress"]

    # destroy --include-data lifts the protection, keeps a final backup, and takes the password with it
    fake.calls.clear()
    skyrig(app, "destroy", "--env", "prod", "--yes", "--include-data")
    assert fake.get_resource("sqladmin", f"projects/{PROJECT}/instances/{db['name']}") is None
    deletes = [c.path for c in fake.calls.select("sqladmin", "instances.delete")]
    assert deletes and fake.resources("secretmanager", f"projects/{PROJECT}/secrets/") == []


def test_console_tier_is_adopted_and_turned_off_backups_are_restored(app: Path, fake: Any) -> None:
    skyrig(app, "apply", "--env", "dev", "--yes")
    db = instance(fake, "dev")
    assert db["settings"]["availabilityType"] == "ZONAL"
    assert db["settings"]["deletionProtectionEnabled"] is False
    fake.calls.clear()
    assert "nothing to do" in skyrig(app, "apply", "--env", "dev", "--yes").text
    assert fake.calls.mutating() == [], "a second apply changed something"
    fake.calls.clear()
    skyrig(app, "plan", "--env", "dev")
    lists = {method: fake.calls.count("sqladmin", method) for method in ("instances.list", "databases.list")}
    assert all(count <= 1 for count in lists.values()), f"a refresh listed a type more than once: {lists}"

    key = f"projects/{PROJECT}/instances/{db['name']}"
    fake.update_resource(
        "sqladmin",
        key,
        {
            "settings": {
                "tier": "db-custom-2-7680",
                "backupConfiguration": {"enabled": False, "pointInTimeRecoveryEnabled": False},
                "ipConfiguration": {"sslMode": "ENCRYPTED_ONLY"},
            }
        },
    )
    plan = json.loads(skyrig(app, "plan", "--env", "dev", "--json").out)
    [change] = [c for c in plan["changes"] if c["node"] == names.SQL_INSTANCE_ID]
    assert change["action"] == "update"
    skyrig(app, "apply", "--env", "dev", "--yes")
    settings_ = instance(fake, "dev")["settings"]
    assert settings_["tier"] == "db-custom-2-7680", "a tier changed in the console was reverted"
    assert settings_["backupConfiguration"]["enabled"] is True
    assert settings_["backupConfiguration"]["pointInTimeRecoveryEnabled"] is True
    assert settings_["ipConfiguration"]["sslMode"] == "TRUSTED_CLIENT_CERTIFICATE_REQUIRED"
    after = json.loads(skyrig(app, "plan", "--env", "dev", "--json").out)
    assert [c for c in after["changes"] if c["action"] not in ("noop", "retain")] == []


def test_a_password_an_interrupted_create_left_is_the_one_cloud_sql_gets(app: Path, fake: Any) -> None:
    client = secretmanager_v1.SecretManagerServiceClient(
        credentials=AnonymousCredentials(),
        transport="rest",
        client_options={"api_endpoint": fake.endpoint("secretmanager")},
    )
    secret = client.create_secret(
        parent=f"projects/{PROJECT}",
        secret_id=names.sql_password_secret(APP, "dev"),
        secret={"replication": {"automatic": {}}},
    )
    client.add_secret_version(parent=secret.name, payload={"data": b"left-by-an-earlier-create"})
    skyrig(app, "apply", "--env", "dev", "--yes")
    stored = fake.get_resource(
        "sqladmin", f"projects/{PROJECT}/instances/{names.sql_instance_name(APP, 'dev')}"
    )
    assert stored["_rootPassword"] == "left-by-an-earlier-create"
    assert password(fake, "dev") == "left-by-an-earlier-create", "a second password was made"


def test_the_data_plane_gets_a_client_certificate_and_the_password_from_secret_manager(
    app: Path, fake: Any
) -> None:
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    from skyrig_gcp.runtime.sql import database

    skyrig(app, "apply", "--env", "dev", "--yes")
    config = json.loads((app / ".skyrig" / "runtime" / "dev" / "alpha.json").read_text())
    entry = {**config["resources"]["sql_database/ledger"], "host": None}  # the host found through the API
    client = database(entry, config)
    url = client.url()
    folder = Path(url.partition("sslrootcert=")[2].partition("&")[0]).parent
    certificate = x509.load_pem_x509_certificate((folder / "cert.pem").read_bytes())
    key = serialization.load_pem_private_key((folder / "key.pem").read_bytes(), password=None)
    assert certificate.public_key().public_numbers() == key.public_key().public_numbers()
    assert (folder / "key.pem").stat().st_mode & 0o077 == 0, "the private key is readable by others"
    assert "sslmode=verify-ca" in url and f"@{instance(fake, 'dev')['ipAddresses'][0]['ipAddress']}:" in url
    assert f":{password(fake, 'dev')}@" in url
    assert fake.calls.count("sqladmin", "connect.generateEphemeral") == 1
    client.url()
    assert fake.calls.count("sqladmin", "connect.generateEphemeral") == 1, "renewed a valid certificate"


def test_the_migration_job_hook_names_the_job_and_carries_no_secret(app: Path, gcp_backends: Any) -> None:
    from types import SimpleNamespace

    from skyrig.analysis import build_model
    from skyrig_gcp.settings import GcpSettings

    environment = SimpleNamespace(name="dev", type="development")
    scope = SimpleNamespace(
        app=APP, environment=environment, settings=GcpSettings(**settings(gcp_backends[0]))
    )
    job = sql.migration_job(scope, build_model(app, APP).resource("sql_database", "ledger"))  # type: ignore[arg-type]
    assert (
        job["name"] == names.migrate_job_name(APP, "dev", "ledger") and job["after"] == "sql.database/ledger"
    )
    assert json.loads(job["environment"]["SKYRIG_MIGRATIONS"]) == job["migrations"] != []
    connection = json.loads(job["environment"]["SKYRIG_DB_CONNECTION"])
    assert connection["password"].endswith("/versions/latest") and connection["sslmode"] == "verify-ca"


@pytest.mark.skipif("service" not in provider.manifest.kinds, reason="this provider runs no services yet")
def test_the_migration_job_migrates_a_real_postgresql_before_the_services_roll_out(
    app: Path, fake: Any
) -> None:
    """The compute family's Cloud Run job runs ``python -m skyrig_gcp.runtime.migrate`` with the variables
    :func:`skyrig_gcp.sql.migration_job` gives it: here the FAKE's job runner runs that command, pointed at
    a real PostgreSQL (the conformance suite's stand-in) where Cloud SQL's private IP would be."""
    import os
    import subprocess
    import sys

    import psycopg

    from skyrig_conformance import stand_ins

    with stand_ins.postgres() as server:
        server._start()
        folder = str(server._folder / "data")  # type: ignore[operator]
        ran: list[str] = []

        def runner(name: str, job: dict[str, Any]) -> bool:
            container = job["template"]["template"]["containers"][0]
            variables = {e["name"]: e.get("value", "") for e in container.get("env", [])}
            connection = json.loads(variables["SKYRIG_DB_CONNECTION"])
            assert "password" not in variables and connection["password"].endswith("/versions/latest")
            # what the private IP would reach: the stand-in, without Cloud SQL's certificates or password
            connection.update({"host": folder, "sslmode": "disable", "password": None})
            database = variables["SKYRIG_DATABASE"]
            with psycopg.connect(host=folder, dbname="postgres", user="postgres", autocommit=True) as admin:
                if not admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", (database,)).fetchone():
                    admin.execute(f'CREATE DATABASE "{database}"')  # the Admin API's databases.insert
            environ = {**os.environ, **variables, "SKYRIG_DB_CONNECTION": json.dumps(connection)}
            done = subprocess.run(
                [sys.executable, *container["command"][1:]], env={**environ, "SKYRIG_APP_ROOT": str(app)}
            )
            ran.append(name)
            return done.returncode == 0

        fake.job_runner = runner
        try:
            skyrig(app, "apply", "--env", "dev", "--yes")
        finally:
            fake.job_runner = None
        assert ran == [
            f"projects/{PROJECT}/locations/us-central1/jobs/{names.migrate_job_name(APP, 'dev', 'ledger')}"
        ]
        with psycopg.connect(host=folder, dbname="ledger", user="postgres") as connection:
            applied = connection.execute("SELECT number FROM skyrig_migrations").fetchall()
            assert applied == [(1,)]
            connection.execute("INSERT INTO entries DEFAULT VALUES")


@contextmanager
def tls_postgres(certificate: str, key: str, client_ca: str, password: str) -> Iterator[int]:
    """A real PostgreSQL on 127.0.0.1 as a Cloud SQL instance with ``TRUSTED_CLIENT_CERTIFICATE_REQUIRED``
    is: TLS only, presenting ``certificate``, and a connection needs a client certificate ``client_ca``
    signed as well as the password. Yields its port."""
    import shutil
    import subprocess
    import tempfile

    from skyrig.provider import free_port

    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))
    if not found:
        pytest.skip("no PostgreSQL server binaries (Debian's postgresql) on this machine")
    binaries = found[-1].parent
    as_postgres = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    folder = Path(tempfile.mkdtemp(prefix="skyrig-mtls-"))
    folder.chmod(0o755)
    port = free_port()
    try:
        files = {"server.crt": certificate, "server.key": key, "client-ca.crt": client_ca, "pw": password}
        for name, text in files.items():
            (folder / name).write_text(text)
            (folder / name).chmod(0o600)
            if as_postgres:
                shutil.chown(folder / name, "postgres", "postgres")
        if as_postgres:
            shutil.chown(folder, "postgres", "postgres")
        data = folder / "data"
        run = [*as_postgres, str(binaries / "initdb"), "-D", str(data), "-U", "postgres", "--no-sync"]
        subprocess.run(
            [*run, "--auth=scram-sha-256", f"--pwfile={folder / 'pw'}"], check=True, capture_output=True
        )
        settings_ = {
            "listen_addresses": "'127.0.0.1'",
            "port": str(port),
            "unix_socket_directories": f"'{folder}'",
            "ssl": "on",
            "ssl_cert_file": f"'{folder / 'server.crt'}'",
            "ssl_key_file": f"'{folder / 'server.key'}'",
            "ssl_ca_file": f"'{folder / 'client-ca.crt'}'",
            "fsync": "off",
        }
        with (data / "postgresql.conf").open("a") as conf:
            conf.writelines(f"{name} = {value}\n" for name, value in settings_.items())
        (data / "pg_hba.conf").write_text("hostssl all all 127.0.0.1/32 scram-sha-256 clientcert=verify-ca\n")
        start = [
            *as_postgres,
            str(binaries / "pg_ctl"),
            "-D",
            str(data),
            "-l",
            str(folder / "log"),
            "-w",
            "start",
        ]
        subprocess.run(start, check=True, capture_output=True)
        try:
            yield port
        finally:
            stop = [*as_postgres, str(binaries / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop"]
            subprocess.run(stop, capture_output=True)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def test_the_data_plane_connects_with_mutual_tls_as_the_instance_requires(app: Path, fake: Any) -> None:
    """The whole handshake a service makes: its ephemeral certificate accepted by a server that trusts
    only the FAKE's client CA, the server checked against the instance's own CA, the password from
    Secret Manager; without a client certificate the server refuses."""
    import psycopg

    from skyrig.provider import PostgresClient
    from skyrig_gcp.runtime.sql import database

    skyrig(app, "apply", "--env", "dev", "--yes")
    config = json.loads((app / ".skyrig" / "runtime" / "dev" / "alpha.json").read_text())
    handler = fake.handlers["sqladmin"]
    certificate, key = handler.server_identity(
        f"projects/{PROJECT}/instances/{names.sql_instance_name(APP, 'dev')}"
    )
    with tls_postgres(certificate, key, handler.client_ca(), password(fake, "dev")) as port:
        where = {"host": "127.0.0.1", "port": port, "database": "postgres"}
        entry = {**config["resources"]["sql_database/ledger"], **where}
        with database(entry, config).connect() as connection:
            ssl, client = connection.execute(
                "SELECT ssl, client_dn FROM pg_stat_ssl WHERE pid = pg_backend_pid()"
            ).fetchone()
        assert ssl is True and client == f"/CN={PROJECT}:{names.sql_instance_name(APP, 'dev')}"
        plain = PostgresClient({**entry, "sslmode": "require"}, lambda reference: password(fake, "dev"))
        with pytest.raises(psycopg.OperationalError, match="certificate"):
            plain.connect().close()
