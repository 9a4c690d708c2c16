"""An app's own dependencies on the host, through the real ``skyrig-hosted serve``: a source archive with a
``requirements.txt`` runs its services with a virtual environment of its own, built once per requirements
(a second deployment of the same ones reuses it), from a wheel shipped in the archive; requirements the
host's interpreter satisfies already install nothing; a requirement pip cannot install fails the deployment
with pip's message and leaves the host serving. The host's index is a closed port: no test here may reach
a network."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import shutil
import socket
import tarfile
import tempfile
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from skyrig_hosted.conformance import Host

WEB = """
import json, sys

async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    try:
        import greeting
        message = greeting.MESSAGE
    except ImportError as error:
        message = f"ImportError: {error}"
    import httpx
    body = json.dumps({"message": message, "prefix": sys.prefix, "httpx": httpx.__file__}).encode()
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"application/json")]})
    await send({"type": "http.response.body", "body": body})
"""


def _wheel() -> bytes:
    """A pure-Python wheel of the package ``greeting`` 1.0, made here (no build backend, no network)."""
    files = {
        "greeting/__init__.py": b'MESSAGE = "hello from the vendored greeting"\n',
        "greeting-1.0.dist-info/METADATA": b"Metadata-Version: 2.1\nName: greeting\nVersion: 1.0\n",
        "greeting-1.0.dist-info/WHEEL": (
            b"Wheel-Version: 1.0\nGenerator: skyrig-test\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
        ),
    }
    record = []
    for name, data in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        record.append(f"{name},sha256={digest},{len(data)}")
    record.append("greeting-1.0.dist-info/RECORD,,")
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as wheel:
        for name, data in files.items():
            wheel.writestr(name, data)
        wheel.writestr("greeting-1.0.dist-info/RECORD", "\n".join(record) + "\n")
    return buffer.getvalue()


def _archive(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name, data in sorted(files.items()):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class _Host(Host):
    def api(self, token: str) -> httpx.Client:
        return httpx.Client(base_url=self.url, headers={"Authorization": f"Bearer {token}"}, timeout=90)

    def get(self, host: str, path: str = "/") -> httpx.Response:
        port = urlsplit(self.url).port
        return httpx.get(f"http://127.0.0.1:{port}{path}", headers={"Host": host}, timeout=60)


@pytest.fixture(scope="module")
def host() -> Iterator[tuple[_Host, httpx.Client, Path]]:
    parent = Path(tempfile.mkdtemp(prefix="skyrig-hosted-requirements-"))
    parent.chmod(0o711)  # the PostgreSQL server's own user (as root) must reach DATA
    offline = {  # pip's index: a port nothing listens on, so any download fails at once
        "PIP_INDEX_URL": f"http://127.0.0.1:{_closed_port()}/simple",
        "PIP_RETRIES": "0",
        "PIP_TIMEOUT": "3",
    }
    saved = {name: os.environ.get(name) for name in offline}
    os.environ.update(offline)
    try:
        with _Host(parent / "data") as running:
            admin = running.api(running.admin_token)
            client = running.api(admin.post("/apps", json={"name": "shop"}).json()["token"])
            yield running, client, parent / "data"
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        shutil.rmtree(parent, ignore_errors=True)


def _deploy(client: httpx.Client, env: str, files: dict[str, bytes]) -> tuple[dict[str, Any], float]:
    """Uploads ``files`` as the source and deploys service ``web`` of ``env`` from it: the deployment's
    view, and how long the deployment took."""
    payload = _archive(files)
    sha = hashlib.sha256(payload).hexdigest()
    assert client.put(f"/apps/shop/sources/{sha}", content=payload).status_code in (200, 201)
    assert client.put(f"/apps/shop/envs/{env}", json={"type": "preview"}).status_code in (200, 201)
    made = client.put(f"/apps/shop/envs/{env}/resources/service/web", json={"properties": {"app": "web:app"}})
    assert made.status_code in (200, 201), made.text
    config = {"app": "shop", "environment": env, "service": "web", "resources": {}}
    started = time.monotonic()
    answer = client.put(f"/apps/shop/envs/{env}/deployments/web", json={"source": sha, "config": config})
    assert answer.status_code == 200, answer.text
    view = answer.json()["deployment"]
    deadline = time.monotonic() + 60
    while view["state"] == "starting" and time.monotonic() < deadline:  # as the provider waits
        time.sleep(0.2)
        view = client.get(f"/apps/shop/envs/{env}/deployments/web").json()["deployment"]
    return view, time.monotonic() - started


def _envs(data: Path) -> list[Path]:
    return sorted(path for path in (data / "envs").iterdir() if not path.name.startswith("."))


def test_a_wheel_shipped_in_the_archive_is_installed_once_and_imported(host: tuple[_Host, httpx.Client, Path]):
    running, client, data = host
    files = {
        "web.py": WEB.encode(),
        "requirements.txt": b"# the app's own package, shipped with it\n./vendor/greeting-1.0-py3-none-any.whl\n",
        "vendor/greeting-1.0-py3-none-any.whl": _wheel(),
    }
    view, first = _deploy(client, "dev", files)
    assert view["state"] == "running", json.dumps(view)
    assert any("installing the app's requirements.txt" in line for line in view["log"]), view["log"]
    answer = running.get("web.dev.shop.localhost").json()
    assert answer["message"] == "hello from the vendored greeting"
    built = [line for line in view["log"] if "requirements installed" in line]
    [env] = _envs(data)
    assert answer["prefix"] == str(env)  # the service runs with the env's python
    assert answer["httpx"].startswith(str(Path(httpx.__file__).parents[1]))  # the host's packages too
    assert "Successfully installed greeting-1.0" in (env / "build.log").read_text()
    mode = env.stat().st_mode & 0o777
    assert mode == 0o755 and (env / "build.log").stat().st_mode & 0o777 == 0o644
    built_at = (env / "build.log").stat().st_mtime_ns

    # the same requirements in another environment: the env is reused, nothing is installed again
    view, second = _deploy(client, "pr:1", files)
    assert view["state"] == "running", json.dumps(view)
    assert not any("installing" in line for line in view["log"]), view["log"]
    assert _envs(data) == [env] and (env / "build.log").stat().st_mtime_ns == built_at
    assert running.get("web.pr-1.shop.localhost").json()["message"] == "hello from the vendored greeting"
    print(f"first deployment (env built) {first:.2f} s, second (env reused) {second:.2f} s", built)
    assert second < first

    # a source without requirements.txt: the host's interpreter, and the env nobody uses is removed
    for env_name in ("dev", "pr:1"):
        view, _ = _deploy(client, env_name, {"web.py": WEB.encode()})
        assert view["state"] == "running", json.dumps(view)
    assert running.get("web.dev.shop.localhost").json()["message"].startswith("ImportError")
    # kept a while after its build (a deployment may be about to name it), then collected
    assert _envs(data) == [env]


def test_requirements_pip_cannot_install_fail_the_deployment_and_the_host_serves_on(
    host: tuple[_Host, httpx.Client, Path],
):
    _, client, data = host
    files = {"web.py": WEB.encode(), "requirements.txt": b"./vendor/missing\n"}
    view, _ = _deploy(client, "broken", files)
    assert view["state"] == "failed", json.dumps(view)
    log = "\n".join(view["log"])
    assert "does not exist" in log and "vendor/missing" in log, log
    assert not [path for path in (data / "envs").iterdir() if path.name.startswith(".build-")]
    # the host goes on: its API answers, and another deployment runs
    assert client.get("/apps/shop/envs/broken/deployments").status_code == 200
    view, _ = _deploy(client, "healthy", {"web.py": WEB.encode(), "requirements.txt": b"httpx\n"})
    assert view["state"] == "running", json.dumps(view)


def test_requirements_already_satisfied_install_nothing_and_need_no_network(
    host: tuple[_Host, httpx.Client, Path],
):
    running, client, data = host
    files = {"web.py": WEB.encode(), "requirements.txt": b"httpx\nuvicorn>=0.1\n"}
    view, seconds = _deploy(client, "satisfied", files)
    assert view["state"] == "running", json.dumps(view)
    answer = running.get("web.satisfied.shop.localhost").json()
    assert answer["httpx"].startswith(str(Path(httpx.__file__).parents[1]))
    logs = [(path / "build.log").read_text() for path in _envs(data)]
    said = next(text for text in logs if "Requirement already satisfied: httpx" in text)
    assert "Successfully installed" not in said
    print(f"deployed with satisfied requirements in {seconds:.2f} s", view["log"])
