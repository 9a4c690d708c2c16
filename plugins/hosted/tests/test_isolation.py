"""Environments on the host's shared real servers are kept apart by the servers themselves.

Each test logs in with one environment's own credentials, as its services would, and tries to reach
another's database, keys, streams and bucket: the server must refuse. The servers start once per module
(fast mode: fsync off), on 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
import redis
from botocore.exceptions import ClientError

from skyrig_hosted.host.servers import Servers, Tenant
from skyrig_hosted.host.tenants import nats as nats_tenant
from skyrig_hosted.host.tenants import objects as objects_tenant
from skyrig_hosted.host.tenants import postgres as postgres_tenant
from skyrig_hosted.host.tenants import redis as redis_tenant

FAMILIES = {
    "postgres": (postgres_tenant, "database"),
    "redis": (redis_tenant, "cache"),
    "nats": (nats_tenant, "topic"),
    "objects": (objects_tenant, "bucket"),
}
A = Tenant("shop", "pr:1", "aaaa1111")
B = Tenant("shop", "pr:2", "bbbb2222")


class Env:
    """A tenant with its logins and the outputs of one resource of each family (named ``main``)."""

    def __init__(self, servers: Servers, tenant: Tenant) -> None:
        self.tenant = tenant
        self.logins: dict[str, dict[str, str]] = {}
        self.outputs: dict[str, dict[str, Any]] = {}
        for family, (module, kind) in FAMILIES.items():
            self.logins[family] = module.ensure(servers, tenant)
            self.outputs[family] = module.put(servers, tenant, self.logins[family], kind, "main", {})

    def sql(self, servers: Servers, database: str | None = None) -> Any:
        login = self.logins["postgres"]
        dsn = servers.postgres.dsn(
            login["username"], login["password"], database or self.outputs["postgres"]["database"]
        )
        return psycopg.connect(dsn, autocommit=True, connect_timeout=5)

    def redis(self, servers: Servers) -> redis.Redis:
        login = self.logins["redis"]
        return redis.Redis(
            host="127.0.0.1", port=servers.redis.port, username=login["username"], password=login["password"]
        )

    def s3(self, servers: Servers) -> Any:
        login = self.logins["objects"]
        return servers.objects.client("s3", login["username"], login["password"])

    async def nats(self, servers: Servers) -> Any:
        import nats

        login = self.logins["nats"]
        return await nats.connect(
            servers.nats.url, user=login["username"], password=login["password"], allow_reconnect=False
        )


def _data_folder() -> Path:
    folder = Path(tempfile.mkdtemp(prefix="skyrig-hosted-test-"))
    folder.chmod(0o711)  # as root, the PostgreSQL server's own user must reach DATA/postgres
    return folder


@pytest.fixture(scope="module")
def servers() -> Iterator[Servers]:
    folder = _data_folder()
    try:
        with Servers(folder, fast=True) as running:
            yield running
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="module")
def a(servers: Servers) -> Env:
    return Env(servers, A)


@pytest.fixture(scope="module")
def b(servers: Servers) -> Env:
    return Env(servers, B)


def test_each_environment_gets_its_own_login(a: Env, b: Env) -> None:
    for family in FAMILIES:
        assert a.logins[family]["username"] != b.logins[family]["username"]
        assert a.logins[family]["password"] != b.logins[family]["password"]
    assert a.logins["postgres"]["username"] == "e_aaaa1111"
    assert a.outputs["objects"]["bucket"] == "e-aaaa1111-main"
    assert "password" not in str(a.outputs) and a.logins["redis"]["password"] not in str(a.outputs)


# -- PostgreSQL ------------------------------------------------------------------------------------------


def test_postgres_refuses_another_environments_database(servers: Servers, a: Env, b: Env) -> None:
    with servers.postgres.connect() as admin:  # the host's own store, made after the servers started
        if not admin.execute("SELECT 1 FROM pg_database WHERE datname = 'skyrig_host'").fetchone():
            admin.execute("CREATE DATABASE skyrig_host")
    postgres_tenant.ensure(servers, Tenant("shop", "pr:9", "dddd4444"))
    with a.sql(servers) as own:
        own.execute("CREATE TABLE IF NOT EXISTS orders (id int)")
        own.execute("INSERT INTO orders VALUES (1)")
    for database in (b.outputs["postgres"]["database"], "postgres", "template1", "skyrig_host"):
        with pytest.raises(psycopg.OperationalError, match="permission denied for database"):
            a.sql(servers, database)


def test_postgres_refuses_the_superuser_over_tcp(servers: Servers) -> None:
    with pytest.raises(psycopg.OperationalError, match=r"rejects connection|no pg_hba\.conf entry"):
        psycopg.connect(servers.postgres.dsn("skyrig_admin", "anything", "postgres"), connect_timeout=5)


# -- Redis -----------------------------------------------------------------------------------------------


def test_redis_confines_an_environment_to_its_own_keys(servers: Servers, a: Env, b: Env) -> None:
    own, theirs = a.outputs["redis"]["key_prefix"], b.outputs["redis"]["key_prefix"]
    b.redis(servers).set(theirs + "secret", "b's")
    client = a.redis(servers)
    client.set(own + "cart", "1")
    assert client.get(own + "cart") == b"1"
    refused = [
        lambda: client.get(theirs + "secret"),
        lambda: client.set(theirs + "secret", "overwritten"),
        lambda: client.keys(theirs + "*"),
        lambda: client.keys("*"),
        lambda: client.scan(match="*"),
        lambda: client.randomkey(),
        lambda: client.flushall(),
        lambda: client.flushdb(),
        lambda: client.config_get("*"),
        lambda: client.config_set("maxmemory", "1"),
        lambda: client.execute_command("ACL", "LIST"),
        lambda: client.publish(theirs + "events", "x"),
        lambda: client.eval("return redis.call('get', KEYS[1])", 1, theirs + "secret"),
        lambda: client.rename(own + "cart", theirs + "cart"),
        lambda: client.dbsize(),
        lambda: client.info(),
    ]
    for call in refused:
        with pytest.raises(redis.exceptions.NoPermissionError):
            call()
    # a script's undeclared keys are checked too
    with pytest.raises(redis.exceptions.ResponseError, match="can't access"):
        client.eval(f"return redis.call('get', '{theirs}secret')", 0)
    listener = client.pubsub()
    listener.psubscribe("*")
    with pytest.raises(redis.exceptions.NoPermissionError):
        listener.get_message(timeout=1)
    assert b.redis(servers).get(theirs + "secret") == b"b's"


def test_redis_default_user_is_off(servers: Servers) -> None:
    with pytest.raises(redis.exceptions.RedisError):
        redis.Redis(host="127.0.0.1", port=servers.redis.port).get("anything")


# -- NATS ------------------------------------------------------------------------------------------------


def test_nats_accounts_share_no_streams_or_subjects(servers: Servers, a: Env, b: Env) -> None:
    from nats.js.errors import NotFoundError

    async def check() -> None:
        theirs, own = await b.nats(servers), await a.nats(servers)
        try:
            await theirs.jetstream().add_stream(name="only-b", subjects=["only.b"])
            subject = b.outputs["nats"]["subject"]
            await theirs.jetstream().publish(subject, b"for b")
            heard = await theirs.subscribe(subject)
            # a's publish on the same subject lands in a's account, never in b's
            await own.publish(subject, b"from a")
            await own.flush()
            with pytest.raises(asyncio.TimeoutError):
                await heard.next_msg(timeout=0.3)
            # both accounts have a stream of that name: each sees only its own
            stream = b.outputs["nats"]["stream"]
            assert a.outputs["nats"]["stream"] == stream
            assert (await own.jetstream().get_last_msg(stream, subject)).data == b"from a"
            assert (await theirs.jetstream().get_last_msg(stream, subject)).data == b"for b"
            with pytest.raises(NotFoundError):
                await own.jetstream().stream_info("only-b")
        finally:
            await own.close()
            await theirs.close()

    asyncio.run(check())


# -- objects ---------------------------------------------------------------------------------------------


def test_objects_server_refuses_another_environments_bucket(servers: Servers, a: Env, b: Env) -> None:
    theirs = b.outputs["objects"]["bucket"]
    b.s3(servers).put_object(Bucket=theirs, Key="report", Body=b"b's")
    client = a.s3(servers)
    client.put_object(Bucket=a.outputs["objects"]["bucket"], Key="report", Body=b"a's")
    refused = [
        lambda: client.get_object(Bucket=theirs, Key="report"),
        lambda: client.put_object(Bucket=theirs, Key="report", Body=b"overwritten"),
        lambda: client.list_objects_v2(Bucket=theirs),
        lambda: client.delete_object(Bucket=theirs, Key="report"),
        lambda: client.delete_bucket(Bucket=theirs),
        lambda: client.create_bucket(Bucket="e-bbbb2222-other"),
        lambda: client.list_buckets(),
    ]
    for call in refused:
        with pytest.raises(ClientError) as refusal:
            call()
        assert refusal.value.response["Error"]["Code"] == "AccessDenied"
    assert b.s3(servers).get_object(Bucket=theirs, Key="report")["Body"].read() == b"b's"
    # nor can its keys manage users: no key of b's made, no policy of its own widened
    iam = servers.objects.client("iam", a.logins["objects"]["username"], a.logins["objects"]["password"])
    for call in (
        lambda: iam.create_access_key(UserName=objects_tenant.user_name(B)),
        lambda: iam.put_user_policy(
            UserName=objects_tenant.user_name(A), PolicyName="all", PolicyDocument='{"Statement": []}'
        ),
        lambda: iam.list_users(),
    ):
        with pytest.raises(ClientError) as refusal:
            call()
        assert refusal.value.response["Error"]["Code"] == "AccessDenied"


def test_objects_server_checks_presigned_urls(servers: Servers, a: Env, b: Env) -> None:
    import time

    import httpx

    own, theirs = a.outputs["objects"]["bucket"], b.outputs["objects"]["bucket"]
    a.s3(servers).put_object(Bucket=own, Key="shared", Body=b"a's")
    b.s3(servers).put_object(Bucket=theirs, Key="shared", Body=b"b's")
    client = a.s3(servers)

    def url(bucket: str, expires: int = 60, method: str = "get_object") -> str:
        return str(
            client.generate_presigned_url(
                method, Params={"Bucket": bucket, "Key": "shared"}, ExpiresIn=expires
            )
        )

    assert httpx.get(url(own)).content == b"a's"
    assert httpx.put(url(own, method="put_object"), content=b"a's too").status_code == 200
    assert httpx.get(url(theirs)).status_code == 403  # signed with a's key: a's policy applies
    assert httpx.get(url(own).replace(own, theirs)).status_code == 403  # tampered
    short = url(own, expires=1)
    time.sleep(1.5)
    assert httpx.get(short).status_code == 403  # expired
    assert httpx.get(f"{servers.objects.endpoint}/{theirs}/shared").status_code == 403  # anonymous
    assert b.s3(servers).get_object(Bucket=theirs, Key="shared")["Body"].read() == b"b's"


def test_objects_server_refuses_its_control_endpoints(servers: Servers) -> None:
    import httpx

    # moto's /moto-api/reset-auth would turn authentication off for everyone
    assert httpx.post(f"{servers.objects.endpoint}/moto-api/reset-auth", content=b"100").status_code == 403


# -- lifecycle -------------------------------------------------------------------------------------------


def test_remove_leaves_other_environments_untouched_and_is_idempotent(
    servers: Servers, a: Env, b: Env
) -> None:
    with a.sql(servers) as connection:
        connection.execute("CREATE TABLE IF NOT EXISTS orders (id int)")
        connection.execute("INSERT INTO orders VALUES (1)")
    b.redis(servers).set(b.outputs["redis"]["key_prefix"] + "secret", "b's")
    b.s3(servers).put_object(Bucket=b.outputs["objects"]["bucket"], Key="report", Body=b"b's")
    c = Env(servers, Tenant("shop", "pr:3", "cccc3333"))
    again = Env(servers, c.tenant)  # ensure and put twice: the second login is the valid one
    assert again.outputs == c.outputs
    with again.sql(servers) as connection:
        connection.execute("CREATE TABLE t (id int)")
    again.redis(servers).set(again.outputs["redis"]["key_prefix"] + "k", "v")
    again.s3(servers).put_object(Bucket=again.outputs["objects"]["bucket"], Key="k", Body=b"v")
    assert all(
        module.usage(servers, c.tenant) > 0 for module, _ in FAMILIES.values() if module is not nats_tenant
    )
    for module, _ in FAMILIES.values():
        module.remove(servers, c.tenant)
        module.remove(servers, c.tenant)
        assert module.usage(servers, c.tenant) == 0
    with pytest.raises(psycopg.OperationalError):
        again.sql(servers)
    with pytest.raises(redis.exceptions.AuthenticationError):
        again.redis(servers).ping()
    with pytest.raises(ClientError):
        again.s3(servers).list_objects_v2(Bucket=again.outputs["objects"]["bucket"])
    with pytest.raises(Exception, match=r"[Aa]uthoriz"):
        asyncio.run(again.nats(servers))
    # the others still have everything
    with a.sql(servers) as connection:
        assert connection.execute("SELECT count(*) FROM orders").fetchone()[0] >= 1
    assert b.redis(servers).get(b.outputs["redis"]["key_prefix"] + "secret") == b"b's"
    assert (
        b.s3(servers).get_object(Bucket=b.outputs["objects"]["bucket"], Key="report")["Body"].read() == b"b's"
    )


def test_delete_removes_one_resource(servers: Servers, a: Env) -> None:
    for family, (module, kind) in FAMILIES.items():
        module.put(servers, A, a.logins[family], kind, "extra", {})
        module.delete(servers, A, kind, "extra")
        module.delete(servers, A, kind, "extra")
    with pytest.raises(psycopg.OperationalError, match="does not exist"):
        a.sql(servers, postgres_tenant.database_name(A, "extra"))
    with pytest.raises(ClientError):
        a.s3(servers).head_bucket(Bucket=objects_tenant.bucket_name(A, "extra"))
    with a.sql(servers) as connection:  # the environment's other database is still there
        connection.execute("SELECT 1")


def test_everything_survives_a_restart_of_the_servers(servers: Servers, a: Env, b: Env) -> None:
    with a.sql(servers) as connection:
        connection.execute("CREATE TABLE IF NOT EXISTS kept (v text)")
        connection.execute("INSERT INTO kept VALUES ('row')")
    a.redis(servers).set(a.outputs["redis"]["key_prefix"] + "kept", "key")
    a.s3(servers).put_object(Bucket=a.outputs["objects"]["bucket"], Key="kept", Body=b"object")

    async def publish() -> None:
        connection = await a.nats(servers)
        await connection.jetstream().publish(a.outputs["nats"]["subject"], b"message")
        await connection.close()

    asyncio.run(publish())
    gone = Env(servers, Tenant("shop", "pr:5", "eeee5555"))  # removed after the restart
    gone.s3(servers).put_object(Bucket=gone.outputs["objects"]["bucket"], Key="k", Body=b"v")
    ports = (servers.postgres.port, servers.redis.port, servers.nats.port, servers.objects.port)
    assert servers.data is not None
    servers.stop()
    servers.start(servers.data, fast=True)
    assert (servers.postgres.port, servers.redis.port, servers.nats.port, servers.objects.port) == ports

    with a.sql(servers) as connection:
        assert connection.execute("SELECT v FROM kept").fetchone() == ("row",)
    assert a.redis(servers).get(a.outputs["redis"]["key_prefix"] + "kept") == b"key"
    assert (
        a.s3(servers).get_object(Bucket=a.outputs["objects"]["bucket"], Key="kept")["Body"].read()
        == b"object"
    )

    async def read() -> int:
        connection = await a.nats(servers)
        info = await connection.jetstream().stream_info(a.outputs["nats"]["stream"])
        await connection.close()
        return int(info.state.messages)

    assert asyncio.run(read()) >= 1
    # the environments found again can be removed (their logins and keys included) ...
    for module, _ in FAMILIES.values():
        module.remove(servers, gone.tenant)
        assert module.usage(servers, gone.tenant) == 0
    with pytest.raises(ClientError):
        gone.s3(servers).list_objects_v2(Bucket=gone.outputs["objects"]["bucket"])
    # ... and isolation holds after the restart
    with pytest.raises(ClientError):
        a.s3(servers).list_objects_v2(Bucket=b.outputs["objects"]["bucket"])
    with pytest.raises(redis.exceptions.NoPermissionError):
        a.redis(servers).get(b.outputs["redis"]["key_prefix"] + "secret")


def test_servers_stop_when_the_host_is_killed() -> None:
    """A host killed with SIGKILL: its watchdog stops every server; the next start finds the data."""
    import signal
    import subprocess
    import sys

    folder = _data_folder()
    script = (
        "import sys, time\n"
        "from pathlib import Path\n"
        "from skyrig_hosted.host.servers import Servers\n"
        "servers = Servers()\n"
        "servers.start(Path(sys.argv[1]), fast=True)\n"
        "servers.redis.admin.set('kept', 'yes')\n"
        "servers.objects.admin_client('s3').create_bucket(Bucket='kept-bucket')\n"
        "servers.objects.admin_client('s3').put_object(Bucket='kept-bucket', Key='k', Body=b'yes')\n"
        "with servers.postgres.connect() as c: c.execute('CREATE TABLE kept AS SELECT 1 AS v')\n"
        "print('ready', flush=True)\n"
        "time.sleep(600)\n"
    )
    host = subprocess.Popen([sys.executable, "-c", script, str(folder)], stdout=subprocess.PIPE, text=True)
    try:
        assert host.stdout is not None and host.stdout.readline().strip() == "ready"
        pids = [
            int((folder / name).read_text().split()[0]) for name in ("redis/redis.pid", "objects/objects.pid")
        ]
        pids.append(int((folder / "postgres/data/postmaster.pid").read_text().split()[0]))
        os.kill(host.pid, signal.SIGKILL)
        host.wait()
        import time

        deadline = time.monotonic() + 20
        while any(Path(f"/proc/{pid}").exists() for pid in pids) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not [pid for pid in pids if Path(f"/proc/{pid}").exists()]
        with Servers(folder, fast=True) as again:
            assert again.redis.admin.get("kept") == "yes"
            kept = again.objects.admin_client("s3").get_object(Bucket="kept-bucket", Key="k")
            assert kept["Body"].read() == b"yes"
            with again.postgres.connect() as connection:
                assert connection.execute("SELECT v FROM kept").fetchone() == (1,)
    finally:
        if host.poll() is None:
            host.kill()
        shutil.rmtree(folder, ignore_errors=True)
