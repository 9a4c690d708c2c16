"""Services on the host, through the real ``skyrig-hosted serve``: a source archive uploaded (its digest
checked, unsafe archives refused), a service deployed from it and reached through the host's one port by
its host name (``web.pr-7.shop.localhost``), its runtime config and runtime token handed to it and nothing
of the host's own; a crash restarted, an idle environment suspended and woken by its next request,
deleting a service or an environment stopping its processes, and a host killed with ``kill -9`` leaving
no service behind and serving them again once started."""

from __future__ import annotations

import hashlib
import io
import json
import os
import signal
import socket
import ssl
import tarfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from support import ClientHost

WEB = """
import json, os
from skyrig.runtime import load_runtime_config

async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    path = scope["path"]
    if path == "/crash":
        os._exit(3)
    if path == "/echo":
        answer, kind = body, b"application/octet-stream"
    elif path == "/whoami":
        config = load_runtime_config()
        headers = {k.decode(): v.decode() for k, v in scope["headers"]}
        answer = json.dumps(
            {"pid": os.getpid(), "greeting": config["greeting"], "environ": dict(os.environ), "headers": headers}
        ).encode()
        kind = b"application/json"
    else:
        answer, kind = b"hello from web", b"text/plain"
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", kind)]})
    await send({"type": "http.response.body", "body": answer})
"""

ALLOWED = {
    "PATH",
    "HOME",
    "LANG",
    "PYTHONPATH",
    "PYTHONUNBUFFERED",
    "SKYRIG_SERVICE_APP",
    "SKYRIG_RUNTIME_CONFIG",
}
ALLOWED |= {"SKYRIG_HOSTED_TOKEN", "LC_CTYPE"}  # LC_CTYPE: Python's own locale coercion


def archive(files: dict[str, str], *, evil: bool = False) -> bytes:
    """A gzip'd tar of ``files`` (and, when ``evil``, an entry that climbs out of its folder)."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name, text in sorted(files.items()):
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        if evil:
            info = tarfile.TarInfo("../escaped.py")
            info.size = 1
            tar.addfile(info, io.BytesIO(b"#"))
    return buffer.getvalue()


def _alive(pid: int) -> bool:
    try:
        return b"Z" not in Path(f"/proc/{pid}/stat").read_bytes().split(b")")[1][:3]
    except OSError:
        return False


def _until(check: Callable[[], Any], what: str, timeout: float = 20) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            found = check()
        except (httpx.HTTPError, ValueError):  # not answering yet, or answering 502 in plain text
            found = None
        if found:
            return found
        time.sleep(0.1)
    raise AssertionError(f"not in {timeout} s: {what}")


def _upload(client: httpx.Client, app: str, payload: bytes) -> str:
    sha = hashlib.sha256(payload).hexdigest()
    answer = client.put(
        f"/apps/{app}/sources/{sha}", content=payload, headers={"Content-Type": "application/gzip"}
    )
    assert answer.status_code in (200, 201), answer.text
    return sha


def _config(env: str, greeting: str) -> dict[str, Any]:
    return {"app": "shop", "environment": env, "service": "web", "resources": {}, "greeting": greeting}


def test_a_service_is_deployed_served_restarted_suspended_woken_and_stopped(data: Path):
    with ClientHost(data, options=["--idle-suspend", "2"]) as host:
        admin = host.api(host.admin_token)
        made = admin.post("/apps", json={"name": "shop"})
        client = host.api(made.json()["token"])
        runtime = {}
        for env in ("pr:7", "dev"):
            answer = client.put(f"/apps/shop/envs/{env}", json={"type": "preview"})
            runtime[env] = answer.json()["env"]["runtime_token"]
        clash = client.put("/apps/shop/envs/pr_7", json={"type": "preview"})
        assert clash.status_code == 409 and "'pr-7'" in clash.json()["error"]["message"]
        client.put("/apps/shop/envs/dev/secrets/API_KEY", json={"value": "dev's key"})
        client.put("/apps/shop/envs/pr:7/secrets/API_KEY", json={"value": "pr:7's key"})

        service = client.put(
            "/apps/shop/envs/pr:7/resources/service/web", json={"properties": {"app": "web:app"}}
        )
        assert service.status_code == 201, service.text
        assert service.json()["resource"]["outputs"] == {"url": f"http://web.pr-7.shop.localhost:{host.port}"}
        bad = client.put("/apps/shop/envs/pr:7/resources/service/api", json={"properties": {"app": "nope"}})
        assert bad.status_code == 422

        # the source: digest checked, unsafe archives refused, uploaded once
        payload = archive({"web.py": WEB})
        sha = hashlib.sha256(payload).hexdigest()
        assert client.get(f"/apps/shop/sources/{sha}").status_code == 404
        wrong = client.put(f"/apps/shop/sources/{'0' * 64}", content=payload)
        assert (wrong.status_code, wrong.json()["error"]["code"]) == (422, "digest_mismatch")
        evil = archive({"web.py": WEB}, evil=True)
        refused = client.put(f"/apps/shop/sources/{hashlib.sha256(evil).hexdigest()}", content=evil)
        assert (refused.status_code, refused.json()["error"]["code"]) == (422, "bad_archive")
        assert not (data / "sources" / "escaped.py").exists() and not (data / "escaped.py").exists()
        # over 64 MiB declared: refused unread
        request = (
            f"PUT /v1/apps/shop/sources/{sha} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            f"Authorization: {client.headers['Authorization']}\r\nContent-Length: {65 * 1024 * 1024}\r\n\r\n"
        )
        with socket.create_connection(("127.0.0.1", host.port), timeout=30) as raw:
            raw.sendall(request.encode())
            assert raw.recv(65536).startswith(b"HTTP/1.1 413 ")
        first = client.put(f"/apps/shop/sources/{sha}", content=payload)
        assert (first.status_code, first.json()) == (201, {"source": {"sha256": sha, "size": len(payload)}})
        assert client.put(f"/apps/shop/sources/{sha}", content=payload).status_code == 200
        assert client.get(f"/apps/shop/sources/{sha}").json()["source"]["sha256"] == sha
        assert host.api(runtime["pr:7"]).get(f"/apps/shop/sources/{sha}").status_code == 403

        # deployed: running once it answers; the same again changes nothing
        missing = client.put("/apps/shop/envs/pr:7/deployments/web", json={"source": "1" * 64, "config": {}})
        assert missing.status_code == 404
        body = {"source": sha, "config": _config("pr:7", "hello")}
        deployed = client.put("/apps/shop/envs/pr:7/deployments/web", json=body)
        assert deployed.status_code == 200, deployed.text
        view = deployed.json()["deployment"]
        assert (view["state"], view["changed"], view["source"]) == ("running", True, sha), view
        again = client.put("/apps/shop/envs/pr:7/deployments/web", json=body).json()["deployment"]
        assert (again["state"], again["changed"]) == ("running", False)
        assert [
            d["service"] for d in client.get("/apps/shop/envs/pr:7/deployments").json()["deployments"]
        ] == ["web"]

        # through the proxy, by host name; the API still answers on the same port
        name = "web.pr-7.shop.localhost"
        answer = host.get(f"{name}:{host.port}")
        assert (answer.status_code, answer.text) == (200, "hello from web")
        assert host.get("nothing.pr-7.shop.localhost").status_code == 404
        assert host.get(f"127.0.0.1:{host.port}", "/v1/apps/shop").status_code == 401
        assert host.get("host.localhost", "/v1/apps/shop").status_code == 401, "other names: the API"
        large = os.urandom(3 * 1024 * 1024)
        echoed = host.get(name, "/echo", method="POST", content=large)
        assert echoed.status_code == 200 and echoed.content == large
        seen = host.get(name, "/whoami").json()
        assert seen["greeting"] == "hello", "the runtime config arrived"
        assert seen["headers"]["x-forwarded-host"] == name
        assert seen["headers"]["x-forwarded-for"] == "127.0.0.1"
        assert seen["headers"]["x-forwarded-proto"] == "http"

        # its environment: its own runtime token, nothing of the host's
        environ = seen["environ"]
        assert environ["SKYRIG_HOSTED_TOKEN"] == runtime["pr:7"]
        assert set(environ) <= ALLOWED, set(environ) - ALLOWED
        everything = json.dumps(environ)
        assert host.admin_token not in everything
        assert (data / "host.key").read_text().strip() not in everything
        own = host.api(environ["SKYRIG_HOSTED_TOKEN"])
        assert own.get("/apps/shop/envs/pr:7/secrets/API_KEY").json() == {"value": "pr:7's key"}
        assert own.get("/apps/shop/envs/dev/secrets/API_KEY").status_code == 403
        assert own.get("/apps/shop/envs/dev/credentials/database/main").status_code == 403

        # a changed config: a process with it replaces the old one, and requests are answered all along
        # (a config too long for an environment variable is handed over in a file)
        body = {"source": sha, "config": {**_config("pr:7", "hello again"), "padding": "x" * 200_000}}
        statuses: list[int] = []
        done = threading.Event()

        def keep_asking() -> None:
            while not done.is_set():
                statuses.append(host.get(name).status_code)

        asking = threading.Thread(target=keep_asking)
        asking.start()
        try:
            changed = client.put("/apps/shop/envs/pr:7/deployments/web", json=body).json()["deployment"]
            time.sleep(0.3)
        finally:
            done.set()
            asking.join()
        assert len(statuses) >= 2 and set(statuses) == {200}, statuses
        assert (changed["state"], changed["changed"]) == ("running", True)
        now = host.get(name, "/whoami").json()
        assert now["greeting"] == "hello again" and now["pid"] != seen["pid"]
        seen = now

        # a crash is restarted (after 1 s)
        pid = seen["pid"]
        assert host.get(name, "/crash").status_code == 502  # the process died while answering
        pid = _until(lambda: (found := host.get(name, "/whoami").json()["pid"]) != pid and found, "a restart")
        log = client.get("/apps/shop/envs/pr:7/deployments/web").json()["deployment"]["log"]
        assert any("exited with status 3" in line for line in log), log

        # idle for 2 s: suspended (its process stopped); the next request wakes it
        _until(
            lambda: (
                client.get("/apps/shop/envs/pr:7/deployments/web").json()["deployment"]["state"]
                == "suspended"
            ),
            "suspended",
        )
        assert not _alive(pid)
        unchanged = client.put("/apps/shop/envs/pr:7/deployments/web", json=body).json()["deployment"]
        assert (unchanged["state"], unchanged["changed"]) == ("suspended", False), (
            "a no-change deploy wakes nothing"
        )
        woken = host.get(name, "/whoami")
        assert woken.status_code == 200 and woken.json()["pid"] != pid
        pid = woken.json()["pid"]

        # deleting the service stops its process; deleting the environment too
        assert client.delete("/apps/shop/envs/pr:7/resources/service/web").status_code == 204
        assert not _alive(pid)
        assert host.get(name).status_code == 404
        client.put("/apps/shop/envs/dev/resources/service/web", json={"properties": {"app": "web:app"}})
        dev = client.put(
            "/apps/shop/envs/dev/deployments/web", json={"source": sha, "config": _config("dev", "hi")}
        )
        assert dev.json()["deployment"]["state"] == "running"
        pid = host.get("web.dev.shop.localhost", "/whoami").json()["pid"]
        # a service that fails at its start: "failed" with its last output, 502 through the proxy
        client.put("/apps/shop/envs/dev/resources/service/api", json={"properties": {"app": "broken:app"}})
        sha = _upload(
            client, "shop", archive({"web.py": WEB, "broken.py": "raise RuntimeError('no config')\n"})
        )
        body = {"source": sha, "config": {**_config("dev", "hi"), "service": "api"}}
        failed = client.put("/apps/shop/envs/dev/deployments/api", json=body).json()["deployment"]
        assert failed["state"] == "failed", failed
        assert any("RuntimeError: no config" in line for line in failed["log"]), failed["log"]
        assert host.get("api.dev.shop.localhost").status_code == 502
        assert client.delete("/apps/shop/envs/dev").status_code == 204
        assert not _alive(pid)
        assert host.get("web.dev.shop.localhost").status_code == 404

        # sources no deployment uses are removed (once older than the grace a deploy in flight has)
        sources = sorted(p.name for p in (data / "sources").iterdir() if not p.name.startswith("."))
        assert len(sources) == 2
        with _superuser(data) as db:
            db.execute("UPDATE sources SET created_at = created_at - interval '1 hour'")
        assert client.delete("/apps/shop/envs/pr:7").status_code == 204
        assert [p.name for p in (data / "sources").iterdir() if not p.name.startswith(".")] == []
        assert client.get(f"/apps/shop/sources/{sources[0]}").status_code == 404
        sha = _upload(client, "shop", archive({"web.py": WEB}))
        assert admin.delete("/apps/shop").status_code == 204
        assert not (data / "sources" / sha).exists(), "a deleted app's sources go with it"
    assert "Traceback" not in "".join(host.output), "".join(host.output)


def _superuser(data: Path) -> Any:
    """A connection to the host's own database as its PostgreSQL's superuser (Unix socket)."""
    import psycopg

    port = json.loads((data / "servers.json").read_text())["postgres"]
    socket_dir = str(data / "postgres" / "socket")
    return psycopg.connect(
        host=socket_dir, port=port, user="skyrig_admin", dbname="skyrig_host", autocommit=True
    )


def test_no_service_outlives_a_killed_host_and_a_restarted_host_serves_them_again(data: Path):
    with ClientHost(data) as host:
        admin = host.api(host.admin_token)
        client = host.api(admin.post("/apps", json={"name": "shop"}).json()["token"])
        sha = _upload(client, "shop", archive({"web.py": WEB}))
        for env in ("pr:9", "pr:10"):
            client.put(f"/apps/shop/envs/{env}", json={"type": "preview"})
            client.put(
                f"/apps/shop/envs/{env}/resources/service/web", json={"properties": {"app": "web:app"}}
            )
            body = {"source": sha, "config": _config(env, f"hey from {env}")}
            deployed = client.put(f"/apps/shop/envs/{env}/deployments/web", json=body)
            assert deployed.json()["deployment"]["state"] == "running", deployed.text
        before = host.get("web.pr-9.shop.localhost", "/whoami").json()["pid"]
        suspended = host.get("web.pr-10.shop.localhost", "/whoami").json()["pid"]
        with _superuser(data) as db:  # as if pr:10 had been idle: suspended when the host dies
            db.execute("UPDATE environments SET suspended = true WHERE name = 'pr:10'")
        assert host.process is not None
        host.process.send_signal(signal.SIGKILL)
        host.process.wait(10)
        _until(lambda: not (_alive(before) or _alive(suspended)), "the services stopped with their host")
    with ClientHost(data) as again:
        client = again.api(client.headers["Authorization"].removeprefix("Bearer "))
        view = client.get("/apps/shop/envs/pr:10/deployments/web").json()["deployment"]
        assert view["state"] == "suspended", "not started with the host"
        view = client.get("/apps/shop/envs/pr:9/deployments/web").json()["deployment"]
        assert view["state"] in ("starting", "running"), "started with the host"
        assert view["url"] == f"http://web.pr-9.shop.localhost:{again.port}"
        answer = again.get("web.pr-9.shop.localhost", "/whoami")
        assert answer.status_code == 200 and answer.json()["greeting"] == "hey from pr:9"
        assert answer.json()["pid"] != before
        woken = again.get("web.pr-10.shop.localhost", "/whoami")
        assert woken.status_code == 200 and woken.json()["greeting"] == "hey from pr:10"
        # the services' watchdog killed too: the service outlives the host, and the next start stops it
        left = answer.json()["pid"]
        for watchdog in _watchdogs(data):  # the first host's may still be waiting for its services to go
            os.kill(watchdog, signal.SIGKILL)
        assert again.process is not None
        again.process.send_signal(signal.SIGKILL)
        again.process.wait(10)
        time.sleep(0.5)
        assert _alive(left), "nothing stopped it"
    with ClientHost(data) as third:
        assert not _alive(left), "the next host stopped what the dead one left"
        answer = third.get("web.pr-9.shop.localhost", "/whoami")
        assert answer.status_code == 200 and answer.json()["pid"] != left


def _watchdogs(data: Path) -> list[int]:
    """The pids of the services' watchdogs of the host in ``data``."""
    folder = str((data / "services").resolve()).encode()
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                arguments = (entry / "cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if b"-c" in arguments and folder in arguments:
                found.append(int(entry.name))
    return found


def _certificate(folder: Path) -> tuple[Path, Path]:
    """A self-signed certificate for ``*.localhost`` and 127.0.0.1, and its key (PEM files)."""
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "skyrig-hosted test")])
    now = datetime.datetime.now(datetime.UTC)
    names = [
        x509.DNSName("localhost"),
        x509.DNSName("*.pr-5.shop.localhost"),
        x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
    ]
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .sign(key, hashes.SHA256())
    )
    cert, private = folder / "host.pem", folder / "host.key.pem"
    cert.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    private.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return cert, private


def test_with_a_certificate_services_are_served_over_tls_on_the_one_port(data: Path):
    cert, key = _certificate(data.parent)
    trust = ssl.create_default_context(cafile=str(cert))
    with ClientHost(data, options=["--cert", str(cert), "--key", str(key)]) as host:
        assert host.url.startswith("https://")
        api = httpx.Client(
            base_url=host.url,
            headers={"Authorization": f"Bearer {host.admin_token}"},
            verify=trust,
            timeout=60,
        )
        client = httpx.Client(
            base_url=host.url,
            headers={"Authorization": f"Bearer {api.post('/apps', json={'name': 'shop'}).json()['token']}"},
            verify=trust,
            timeout=60,
        )
        client.put("/apps/shop/envs/pr:5", json={"type": "preview"})
        made = client.put(
            "/apps/shop/envs/pr:5/resources/service/web", json={"properties": {"app": "web:app"}}
        )
        url = made.json()["resource"]["outputs"]["url"]
        assert url == f"https://web.pr-5.shop.localhost:{host.port}"
        sha = _upload(client, "shop", archive({"web.py": WEB}))
        body = {"source": sha, "config": _config("pr:5", "over tls")}
        assert (
            client.put("/apps/shop/envs/pr:5/deployments/web", json=body).json()["deployment"]["state"]
            == "running"
        )
        # (browsers resolve *.localhost to loopback, this machine's resolver may not: its address, by Host)
        seen = httpx.get(
            f"https://127.0.0.1:{host.port}/whoami",
            headers={"Host": f"web.pr-5.shop.localhost:{host.port}"},
            verify=trust,
            timeout=60,
        ).json()
        assert seen["greeting"] == "over tls"
        assert seen["headers"]["x-forwarded-proto"] == "https"
    assert not _alive(seen["pid"]), "a host stopped (SIGTERM) stops its services"


@pytest.mark.parametrize(
    ("option", "said"),
    [
        (["--idle-suspend", "-1"], "--idle-suspend cannot be negative (0: never suspend)"),
        (["--domain", "."], "--domain cannot be empty"),
    ],
)
def test_a_wrong_services_option_is_one_line_and_makes_nothing(tmp_path: Path, option: list[str], said: str):
    import subprocess
    import sys

    done = subprocess.run(
        [sys.executable, "-m", "skyrig_hosted.host.cli", "serve", "--data", str(tmp_path / "data"), *option],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert (done.returncode, done.stdout, done.stderr) == (2, "", f"skyrig-hosted: error: {said}\n")
    assert not (tmp_path / "data").exists()
