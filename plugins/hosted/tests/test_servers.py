"""The host's shared servers in durable mode (as ``skyrig-hosted serve`` runs them): what each acknowledged
survives its own ``kill -9``; each listens on 127.0.0.1 only; the host's secrets are its alone."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import stat
import tempfile
import time
from pathlib import Path

import psycopg

from skyrig_hosted.host.servers import Servers, Tenant
from skyrig_hosted.host.tenants import nats as nats_tenant


def _listening_addresses(port: int) -> set[str]:
    """The local addresses with a socket listening on ``port`` (from /proc/net/tcp and tcp6)."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with Path(table).open() as lines:
            next(lines)
            for line in lines:
                local, state = line.split()[1], line.split()[3]
                address, hex_port = local.rsplit(":", 1)
                if state == "0A" and int(hex_port, 16) == port:
                    found.add(address)
    return found


def test_acknowledged_writes_survive_every_server_killed() -> None:
    folder = Path(tempfile.mkdtemp(prefix="skyrig-hosted-durable-"))
    folder.chmod(0o711)
    tenant = Tenant("shop", "dev", "ffff6666")
    servers = Servers(folder)
    try:
        servers.start(folder)
        ports = {name: getattr(servers, name).port for name in ("postgres", "redis", "nats", "objects")}
        for name, port in ports.items():
            assert _listening_addresses(port) == {"0100007F"}, f"{name} listens on 127.0.0.1 only"
        with servers.postgres.connect() as connection:
            assert connection.execute("SHOW fsync").fetchone() == ("on",)
            connection.execute("CREATE TABLE kept AS SELECT 'row' AS v")
        assert servers.redis.admin.config_get("appendfsync") == {"appendfsync": "always"}
        servers.redis.admin.set("kept", "key")
        s3 = servers.objects.admin_client("s3")
        s3.create_bucket(Bucket="kept-bucket")
        s3.put_object(Bucket="kept-bucket", Key="k", Body=b"object")
        login = nats_tenant.ensure(servers, tenant)
        outputs = nats_tenant.put(servers, tenant, login, "topic", "orders", {})

        async def publish() -> None:
            import nats

            connection = await nats.connect(
                servers.nats.url, user=login["username"], password=login["password"]
            )
            await connection.jetstream().publish(outputs["subject"], b"message")
            await connection.close()

        asyncio.run(publish())

        for secret in ("redis/admin-password", "nats/admin-password", "objects/admin.json", "nats/nats.conf"):
            assert stat.S_IMODE((folder / secret).stat().st_mode) == 0o600, secret

        # every server killed at once, as by a crash of the machine's processes
        pids = [
            int((folder / "postgres/data/postmaster.pid").read_text().split()[0]),
            int((folder / "redis/redis.pid").read_text().split()[0]),
            int((folder / "nats/nats.pid").read_text().split()[0]),
            int((folder / "objects/objects.pid").read_text().split()[0]),
        ]
        for pid in pids:
            os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 10
        while any(Path(f"/proc/{pid}").exists() for pid in pids) and time.monotonic() < deadline:
            for pid in pids:
                with contextlib.suppress(ChildProcessError):
                    os.waitpid(pid, os.WNOHANG)
            time.sleep(0.05)
        servers.stop()

        servers.start(folder)
        assert {name: getattr(servers, name).port for name in ports} == ports
        with servers.postgres.connect() as connection:
            assert connection.execute("SELECT v FROM kept").fetchone() == ("row",)
        assert servers.redis.admin.get("kept") == "key"
        kept = servers.objects.admin_client("s3").get_object(Bucket="kept-bucket", Key="k")
        assert kept["Body"].read() == b"object"

        async def read() -> bytes:
            import nats

            connection = await nats.connect(
                servers.nats.url, user=login["username"], password=login["password"]
            )
            message = await connection.jetstream().get_last_msg(outputs["stream"], outputs["subject"])
            await connection.close()
            return bytes(message.data or b"")

        assert asyncio.run(read()) == b"message"
        try:
            psycopg.connect(servers.postgres.dsn("skyrig_admin", "x", "postgres"), connect_timeout=5)
        except psycopg.OperationalError:
            pass
        else:
            raise AssertionError("the superuser logged in over TCP")
    finally:
        servers.stop()
        shutil.rmtree(folder, ignore_errors=True)
