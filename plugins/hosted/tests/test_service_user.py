"""Services isolated from the host by the OS: ``skyrig-hosted serve --service-user nobody`` runs each service
process as ``nobody``, and from inside one, at request time, the host's key, its admin token, its servers'
data, the PostgreSQL superuser (over the Unix socket and over TCP, without a password) and the host's own
process environment are all refused, while the service serves and reads its own environment's secret with
its runtime token. ``--service-user root``, a user that does not exist and an interpreter the user cannot
run are refused with one line before anything starts."""

from __future__ import annotations

import hashlib
import json
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from support import ClientHost, no_nobody_python, nobody_python

PROBE = """
import json, os, urllib.request

def attempt(what):
    try:
        return "ok: " + str(what())[:80]
    except Exception as error:
        return f"{type(error).__name__}: {error}"[:200]

def read(path):
    with open(path, "rb") as handle:
        return handle.read(64)

def pg(**kwargs):
    import psycopg
    with psycopg.connect(connect_timeout=5, **kwargs) as connection:
        return connection.execute("SELECT current_user").fetchone()

def probe(asked):
    answers = {}
    for path in asked["read"]:
        answers["read " + path] = attempt(lambda: read(path))
    for path in asked["list"]:
        answers["list " + path] = attempt(lambda: os.listdir(path))
    for pid in asked.get("signal", []):
        answers[f"signal {pid}"] = attempt(lambda: os.kill(pid, 0))
    for name, kwargs in asked["pg"].items():
        answers["pg " + name] = attempt(lambda: pg(**kwargs))
    home = os.environ["HOME"]
    with open(os.path.join(home, "mine"), "w") as handle:
        handle.write("written")
    request = urllib.request.Request(
        asked["secret_url"], headers={"Authorization": "Bearer " + os.environ["SKYRIG_HOSTED_TOKEN"]}
    )
    own = json.load(urllib.request.urlopen(request, timeout=10))
    commands = []
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            try:
                commands.append(open(f"/proc/{pid}/cmdline", "rb").read().decode(errors="replace"))
            except OSError:
                pass
    from skyrig.runtime import load_runtime_config
    padding = load_runtime_config().get("padding", "")
    return {"answers": answers, "uid": os.getuid(), "pid": os.getpid(), "gid": os.getgid(), "groups": os.getgroups(),
            "home": home, "home_mode": oct(os.stat(home).st_mode & 0o777), "own_secret": own["value"], "padding": len(padding),
            "commands": chr(10).join(commands),
            "umask": oct(os.umask(0o077))}

async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    if scope["path"] == "/probe":
        answer, kind = json.dumps(probe(json.loads(body))).encode(), b"application/json"
    else:
        answer, kind = b"hello from " + os.environ["SKYRIG_SERVICE_APP"].encode(), b"text/plain"
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", kind)]})
    await send({"type": "http.response.body", "body": answer})
"""


def _archive(files: dict[str, str]) -> bytes:
    import io
    import tarfile

    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name, text in sorted(files.items()):
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), 0o600  # as an owner-only checkout would pack it
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


_SKIP = no_nobody_python("services")
pytestmark = pytest.mark.skipif(_SKIP is not None, reason=str(_SKIP))


@pytest.fixture(scope="module")
def python() -> Iterator[str]:
    """An interpreter ``nobody`` can run that finds this venv's packages (skyrig, uvicorn, psycopg)."""
    with nobody_python("skyrig-service-python-") as interpreter:
        checked = subprocess.run(
            [interpreter, "-c", "import skyrig.runtime.host"], user="nobody", capture_output=True, text=True
        )
        assert checked.returncode == 0, f"nobody cannot import skyrig with {interpreter}: {checked.stderr}"
        yield interpreter


def _deploy(client: httpx.Client, env: str, files: dict[str, str], **extra: Any) -> str:
    payload = _archive(files)
    sha = hashlib.sha256(payload).hexdigest()
    uploaded = client.put(f"/apps/shop/sources/{sha}", content=payload)
    assert uploaded.status_code in (200, 201), uploaded.text
    made = client.put(f"/apps/shop/envs/{env}/resources/service/web", json={"properties": {"app": "web:app"}})
    assert made.status_code in (200, 201), made.text
    config = {"app": "shop", "environment": env, "service": "web", "resources": {}, **extra}
    deployed = client.put(f"/apps/shop/envs/{env}/deployments/web", json={"source": sha, "config": config})
    view = deployed.json()["deployment"]
    assert view["state"] == "running", json.dumps(view)
    return sha


def test_services_run_as_the_service_user_and_reach_nothing_of_the_host(data: Path, python: str):
    with ClientHost(data, options=["--service-user", "nobody", "--service-python", python]) as host:
        assert host.process is not None
        admin = host.api(host.admin_token)
        client = host.api(admin.post("/apps", json={"name": "shop"}).json()["token"])
        for env in ("pr:1", "dev"):
            assert client.put(f"/apps/shop/envs/{env}", json={"type": "preview"}).status_code == 201
            client.put(f"/apps/shop/envs/{env}/secrets/API_KEY", json={"value": f"{env}'s key"})
        other_source = _deploy(client, "dev", {"web.py": PROBE + "\n# dev's copy\n"})
        # a config too long for an environment variable: in a file of the service's own folder
        _deploy(client, "pr:1", {"web.py": PROBE}, padding="x" * 200_000)
        port = host.url.split(":")[-1].split("/")[0]

        def through(path: str, **kwargs: Any) -> httpx.Response:
            return httpx.request(
                kwargs.pop("method", "GET"),
                f"http://127.0.0.1:{port}{path}",
                headers={"Host": "web.pr-1.shop.localhost"},
                timeout=60,
                **kwargs,
            )

        assert (through("/").status_code, through("/").text) == (200, "hello from web:app")

        servers = json.loads((data / "servers.json").read_text())
        socket_dir = str(data / "postgres" / "socket")
        superuser = {"user": "skyrig_admin", "dbname": "postgres", "port": servers["postgres"]}
        asked = {
            "read": [
                str(data / "host.key"),
                str(data / "admin-token"),
                str(data / "servers.json"),
                str(data / "host.json"),
                str(data / "redis" / "admin-password"),
                str(data / "redis" / "appendonly.aof"),
                str(data / "postgres" / "log"),
                str(data / "objects" / "admin.json"),
                f"/proc/{host.process.pid}/environ",
            ],
            "list": [
                str(data),
                str(data / "sources"),
                str(data / "homes"),
                str(data / "objects"),
                str(data / "services"),
                str(data / "postgres" / "socket"),
                str(data / "nats"),
            ],
            "pg": {
                "the superuser over the Unix socket": {**superuser, "host": socket_dir},
                "the superuser over TCP without a password": {**superuser, "host": "127.0.0.1"},
                "postgres over TCP without a password": {
                    **superuser,
                    "user": "postgres",
                    "host": "127.0.0.1",
                },
            },
            "secret_url": f"{host.url}/apps/shop/envs/pr:1/secrets/API_KEY",
        }
        seen = through("/probe", method="POST", json=asked)
        assert seen.status_code == 200, seen.text
        found = seen.json()
        succeeded = {what: said for what, said in found["answers"].items() if said.startswith("ok")}
        assert not succeeded, f"a service reached what it must not: {succeeded}"
        assert len(found["answers"]) == len(asked["read"]) + len(asked["list"]) + len(asked["pg"])
        for what, said in found["answers"].items():
            assert what.startswith("pg") or "PermissionError" in said, (what, said)
        socket_said = found["answers"]["pg the superuser over the Unix socket"]
        assert "ermission denied" in socket_said, socket_said
        tcp_said = found["answers"]["pg the superuser over TCP without a password"]
        assert "pg_hba.conf rejects" in tcp_said or "password" in tcp_said, tcp_said

        # it runs as nobody alone, umask 077, in a HOME of its own it can write; its secret it reads
        import pwd

        nobody = pwd.getpwnam("nobody")
        assert (found["uid"], found["gid"], found["groups"]) == (nobody.pw_uid, nobody.pw_gid, [])
        assert found["umask"] == "0o77" and found["home_mode"] == "0o700"
        assert found["own_secret"] == "pr:1's key" and found["padding"] == 200_000
        # every user reads command lines: another source's digest is in none of them
        assert "skyrig.runtime.host:create" in found["commands"] and other_source not in found["commands"]
        home = Path(found["home"])
        assert home.parent == data / "homes" and (home / "mine").read_text() == "written"
        assert home.stat().st_uid == nobody.pw_uid

        # what the host keeps is its own alone; the sources are readable (an app's code)
        assert stat.S_IMODE(data.stat().st_mode) == 0o711
        for entry in data.iterdir():
            mode = stat.S_IMODE(entry.lstat().st_mode)
            if entry.name in ("sources", "homes", "envs"):
                assert mode == 0o711, (entry, oct(mode))
            else:
                assert mode & 0o077 == 0, (entry, oct(mode))
        source = data / "sources" / other_source
        assert stat.S_IMODE(source.stat().st_mode) == 0o755
        assert stat.S_IMODE((source / "web.py").stat().st_mode) == 0o644
        assert stat.S_IMODE((data / "host.key").stat().st_mode) == 0o600

        # deleting the environment removes its HOME
        assert client.delete("/apps/shop/envs/pr:1").status_code in (200, 204)
        assert not home.exists()


def _serve(tmp_path: Path, *options: str) -> subprocess.CompletedProcess[str]:
    data = tmp_path / "data"
    done = subprocess.run(
        [sys.executable, "-m", "skyrig_hosted.host.cli", "serve", "--data", str(data), "--fast", *options],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert not data.exists(), "nothing is made before the options are checked"
    return done


@pytest.mark.parametrize(
    ("options", "said"),
    [
        (["--service-user", "root"], "--service-user root: services must not run as root"),
        (["--service-user", "0"], "services must not run as root"),
        (["--service-user", "no-such-user-here"], "--service-user no-such-user-here: no such user"),
        (["--service-user", "nobody"], "the service user nobody cannot run"),
        (["--service-user", "nobody", "--service-python", "/nowhere/python"], "/nowhere/python: no such"),
        (["--service-uids", "200000-200099"], "--service-uids goes with --service-user"),
        (["--service-user", "nobody", "--service-uids", "0-10"], "not a range of uids"),
        (["--service-user", "nobody", "--service-uids", "65000-65999"], "uid 65534 is the user nobody's"),
    ],
)
def test_a_wrong_service_user_is_one_line_and_starts_nothing(tmp_path: Path, options: list[str], said: str):
    tmp_path.chmod(0o711)
    done = _serve(tmp_path, *options)
    assert done.returncode == 2, done
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("skyrig-hosted: error: ") and said in lines[0], lines
    assert "Traceback" not in done.stderr and done.stdout == ""
    if options == ["--service-user", "nobody"]:  # this venv's interpreter is under the closed /root
        closed = [p for p in Path(sys.executable).resolve().parents if not p.stat().st_mode & stat.S_IXOTH]
        if closed:
            assert f"{closed[-1]} is closed to other users" in lines[0], lines
            assert "--service-python" in lines[0] and "chmod o+rx" in lines[0]


def test_a_root_host_without_a_service_user_warns_once(data: Path):
    with ClientHost(data) as host:
        warned = [line for line in host.output if "warning: services run as root" in line]
    assert len(warned) == 1 and "--service-user" in warned[0], host.output


def test_with_service_uids_environments_cannot_reach_each_other(data: Path, python: str):
    options = ("--service-user", "nobody", "--service-uids", "200000-200099", "--service-python", python)
    with ClientHost(data, options=options) as host:
        admin = host.api(host.admin_token)
        client = host.api(admin.post("/apps", json={"name": "shop"}).json()["token"])
        for env in ("pr:1", "dev"):
            assert client.put(f"/apps/shop/envs/{env}", json={"type": "preview"}).status_code == 201
            client.put(f"/apps/shop/envs/{env}/secrets/API_KEY", json={"value": f"{env}'s key"})
            _deploy(client, env, {"web.py": PROBE})
        port = host.url.split(":")[-1].split("/")[0]

        def probe(label: str, **asked: Any) -> dict[str, Any]:
            asked = {"read": [], "list": [], "pg": {}, **asked}
            asked["secret_url"] = f"{host.url}/apps/shop/envs/{label.replace('pr-', 'pr:')}/secrets/API_KEY"
            answer = httpx.post(
                f"http://127.0.0.1:{port}/probe",
                headers={"Host": f"web.{label}.shop.localhost"},
                json=asked,
                timeout=60,
            )
            assert answer.status_code == 200, answer.text
            return dict(answer.json())

        dev = probe("dev")
        theirs = Path(dev["home"])
        found = probe(
            "pr-1",
            read=[str(theirs / "mine"), f"/proc/{dev['pid']}/environ"],
            list=[str(theirs), f"/proc/{dev['pid']}/cwd", str(data / "sources")],
            signal=[dev["pid"]],
        )
        succeeded = {what: said for what, said in found["answers"].items() if said.startswith("ok")}
        assert not succeeded, f"one environment reached another's: {succeeded}"
        assert all("PermissionError" in said for said in found["answers"].values()), found["answers"]
        assert len(found["answers"]) == 6

        import grp

        nogroup = grp.getgrgid(found["gid"])
        assert found["gid"] == dev["gid"] == pwd_gid("nobody"), nogroup
        assert found["uid"] != dev["uid"] and {found["uid"], dev["uid"]} <= set(range(200000, 200100))
        assert (found["own_secret"], dev["own_secret"]) == ("pr:1's key", "dev's key")
        assert Path(found["home"]).stat().st_uid == found["uid"] and theirs.stat().st_uid == dev["uid"]

    with ClientHost(data, options=options) as host:  # a restarted host: each environment keeps its uid
        port = host.url.split(":")[-1].split("/")[0]
        again = probe("dev")
        assert (again["uid"], again["home"]) == (dev["uid"], dev["home"])


def pwd_gid(name: str) -> int:
    import pwd

    return pwd.getpwnam(name).pw_gid


def test_a_data_folder_made_before_is_closed_at_start_but_for_the_sources(tmp_path: Path):
    from skyrig_hosted.host.isolation import harden

    data = tmp_path / "data"
    (data / "redis").mkdir(parents=True, mode=0o755)
    (data / "redis" / "appendonly.aof").write_text("SET e_x:k v")
    (data / "host.key").write_text("key")
    (data / "host.key").chmod(0o644)
    source = data / "sources" / ("a" * 64)
    (source / "pkg").mkdir(parents=True)
    (source / "pkg" / "app.py").write_text("app = None")
    (source / "run.sh").write_text("#!/bin/sh")
    for path, mode in (
        (source / "pkg" / "app.py", 0o600),
        (source / "run.sh", 0o700),
        (source / "pkg", 0o700),
    ):
        path.chmod(mode)
    harden(data)
    modes = {p.relative_to(data).as_posix(): stat.S_IMODE(p.stat().st_mode) for p in data.rglob("*")}
    assert stat.S_IMODE(data.stat().st_mode) == 0o711
    assert modes["redis"] == 0o700 and modes["host.key"] == 0o600
    assert modes["sources"] == modes["homes"] == 0o711
    prefix = f"sources/{'a' * 64}"
    assert modes[prefix] == modes[f"{prefix}/pkg"] == modes[f"{prefix}/run.sh"] == 0o755
    assert modes[f"{prefix}/pkg/app.py"] == 0o644
