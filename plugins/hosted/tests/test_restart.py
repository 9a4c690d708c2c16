"""``skyrig-hosted serve`` as a user runs it: a process of its own, killed with ``kill -9`` and started
again on the same data, with nothing lost (apps, environments, resources, tokens, secret values) and every
server serving the same credentials; and its mistakes (a data folder it cannot write, a port in use) are
one line and a non-zero exit, never a traceback."""

from __future__ import annotations

import json
import os
import queue
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import psycopg
import pytest

pytest.importorskip("skyrig_hosted.host.servers", reason="the host's servers are not installed")

COMMAND = [sys.executable, "-m", "skyrig_hosted.host.cli"]


class Served:
    """One ``skyrig-hosted serve`` process: its API's address once it printed it."""

    def __init__(self, data: Path) -> None:
        self.process = subprocess.Popen(
            [*COMMAND, "serve", "--data", str(data), "--fast"],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            text=True,
        )
        self.lines: queue.Queue[str | None] = queue.Queue()
        self.output: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()
        self.url = self._wait()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.put(line)
        self.lines.put(None)

    def _wait(self) -> str:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            try:
                line = self.lines.get(timeout=0.5)
            except queue.Empty:
                continue
            if line is None:
                break
            self.output.append(line)
            if found := re.search(r"serving (http://\S+/v1)", line):
                return found.group(1)
        self.kill()
        raise AssertionError("the host did not start:\n" + "".join(self.output))

    def kill(self, sig: int = signal.SIGKILL) -> None:
        if self.process.poll() is None:
            self.process.send_signal(sig)
            self.process.wait(30)


def _client(url: str, token: str) -> httpx.Client:
    return httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=30)


def _snapshot(client: httpx.Client, app: str) -> dict[str, object]:
    """Everything the API says of the app."""
    envs = client.get(f"/apps/{app}/envs").json()["envs"]
    return {
        "envs": envs,
        "resources": {e["name"]: client.get(f"/apps/{app}/envs/{e['name']}/resources").json() for e in envs},
        "credentials": {
            (e["name"], kind): client.get(f"/apps/{app}/envs/{e['name']}/credentials/{kind}/main").json()
            for e in envs
            for kind in ("database", "cache", "bucket")
        },
    }


def _use_the_servers(client: httpx.Client, app: str, env: str, write: bool) -> None:
    """Writes (or reads back) a row, a key and an object with the environment's own credentials."""
    import boto3
    import redis

    def outputs(kind: str) -> dict[str, object]:
        return client.get(f"/apps/{app}/envs/{env}/resources/{kind}/main").json()["resource"]["outputs"]

    def login(kind: str) -> dict[str, str]:
        return client.get(f"/apps/{app}/envs/{env}/credentials/{kind}/main").json()

    db, who = outputs("database"), login("database")
    with psycopg.connect(
        host=db["host"],
        port=db["port"],
        dbname=db["database"],
        user=who["username"],
        password=who["password"],
    ) as connection:
        if write:
            connection.execute("CREATE TABLE kept (value text)")
            connection.execute("INSERT INTO kept VALUES ('a row')")
        else:
            assert connection.execute("SELECT value FROM kept").fetchall() == [("a row",)]
    cache, who = outputs("cache"), login("cache")
    with redis.Redis(
        host=cache["host"], port=cache["port"], username=who["username"], password=who["password"]
    ) as keys:
        key = f"{cache['key_prefix']}greeting"
        if write:
            keys.set(key, "hello")
        else:
            assert keys.get(key) == b"hello"
    bucket, who = outputs("bucket"), login("bucket")
    s3 = boto3.client(
        "s3",
        endpoint_url=bucket["endpoint"],
        region_name=bucket["region"],
        aws_access_key_id=who["username"],
        aws_secret_access_key=who["password"],
    )
    if write:
        s3.put_object(Bucket=bucket["bucket"], Key="file.txt", Body=b"an object")
    else:
        assert s3.get_object(Bucket=bucket["bucket"], Key="file.txt")["Body"].read() == b"an object"


@pytest.mark.slow
def test_the_host_survives_kill_9_with_nothing_lost(data: Path):
    first = Served(data)
    try:
        admin = (data / "admin-token").read_text().strip()
        assert (data / "admin-token").stat().st_mode & 0o777 == 0o600
        made = _client(first.url, admin).post("/apps", json={"name": "shop"}).json()
        client = _client(first.url, made["token"])
        runtime = {}
        for env, type_ in (("pr:72", "preview"), ("dev", "development")):
            answer = client.put(f"/apps/shop/envs/{env}", json={"type": type_})
            assert answer.status_code == 201, answer.text
            runtime[env] = answer.json()["env"]["runtime_token"]
            for kind in ("database", "cache", "bucket", "topic"):
                answer = client.put(f"/apps/shop/envs/{env}/resources/{kind}/main", json={"properties": {}})
                assert answer.status_code == 201, answer.text
            client.put(f"/apps/shop/envs/{env}/secrets/API_KEY", json={"value": f"key of {env}"})
        _use_the_servers(client, "shop", "pr:72", write=True)
        before = _snapshot(client, "shop")
        passwords = [str(login["password"]) for login in before["credentials"].values()]  # type: ignore[union-attr]
        secrets = ["key of pr:72", "key of dev"]
        _nothing_in_clear(data, [admin, made["token"], *runtime.values(), *passwords, *secrets])
    finally:
        first.kill(signal.SIGKILL)

    second = Served(data)
    try:
        assert second.url == first.url, "the same address after a restart"
        client = _client(second.url, made["token"])
        assert _snapshot(client, "shop") == before
        for env, token in runtime.items():
            reader = _client(second.url, token)
            assert reader.get(f"/apps/shop/envs/{env}/secrets/API_KEY").json() == {"value": f"key of {env}"}
        _use_the_servers(client, "shop", "pr:72", write=False)
        # and it goes on: a new environment, then deleting one leaves the other serving
        assert client.put("/apps/shop/envs/pr:73", json={"type": "preview"}).status_code == 201
        deleted = client.delete("/apps/shop/envs/pr:72")
        assert deleted.status_code == 204, "".join(second.output) + deleted.text
        assert client.get("/apps/shop/envs/dev/resources/database/main").status_code == 200
    finally:
        second.kill(signal.SIGTERM)
    assert second.process.returncode == 0, "".join(second.output)
    assert "Traceback" not in "".join(second.output)


def _nothing_in_clear(data: Path, texts: list[str]) -> None:
    """No cell of the host's own tables holds any of ``texts`` (read as its PostgreSQL's superuser)."""
    socket_dir = data / "postgres" / "socket"
    port = json.loads((data / "servers.json").read_text())["postgres"]
    with psycopg.connect(host=str(socket_dir), port=port, user="skyrig_admin", dbname="skyrig_host") as db:
        tables = [row[0] for row in db.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")]
        assert {"tokens", "logins", "secrets"} <= set(tables)
        dump = repr([db.execute(f"SELECT * FROM {table}").fetchall() for table in tables])
    assert len(texts) == len(set(texts)) > 10
    for text in texts:
        assert text not in dump


def _fails(*arguments: str) -> str:
    done = subprocess.run([*COMMAND, *arguments], capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 2, done
    assert "Traceback" not in done.stderr and done.stdout == ""
    [line] = done.stderr.splitlines()
    assert line.startswith("skyrig-hosted: error: ")
    return line


def test_a_data_folder_that_cannot_be_written_is_one_line(tmp_path: Path):
    (tmp_path / "a-file").write_text("")
    assert "is not writable" in _fails("serve", "--data", str(tmp_path / "a-file" / "data"))
    assert "is not writable" in _fails("serve", "--data", str(tmp_path / "a-file"))


@pytest.mark.skipif(os.geteuid() != 0, reason="only root's PostgreSQL runs as a user of its own")
def test_a_data_folder_the_servers_user_cannot_reach_is_one_line(tmp_path: Path):
    closed = tmp_path / "closed"
    closed.mkdir(mode=0o700)
    line = _fails("serve", "--data", str(closed / "data"))
    assert f"chmod o+x {closed}" in line


def test_a_port_in_use_is_one_line(data: Path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        line = _fails("serve", "--data", str(data), "--port", str(port))
    assert f"port {port} on 127.0.0.1 is in use" in line
    assert not (data / "postgres").exists(), "no server was started"


def test_token_reads_the_admin_token_or_says_there_is_no_host(tmp_path: Path):
    assert "no host in" in _fails("token", "--data", str(tmp_path))
    (tmp_path / "admin-token").write_text("skh_admin_x\n")
    done = subprocess.run(
        [*COMMAND, "token", "--data", str(tmp_path)], capture_output=True, text=True, check=False
    )
    assert (done.returncode, done.stdout) == (0, "skh_admin_x\n")
    assert "--cert and --key go together" in _fails("serve", "--data", str(tmp_path), "--cert", __file__)
