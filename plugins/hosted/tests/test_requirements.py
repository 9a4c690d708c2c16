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
import pwd
import shutil
import signal
import socket
import stat
import tarfile
import tempfile
import time
import zipfile
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
from support import ClientHost, no_nobody_python, nobody_python

WEB = """
import json, os, sys

def writable():
    try:
        with open(os.path.join(sys.prefix, "bin", "planted"), "w"):
            return True
    except OSError:
        return False

async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    try:
        import greeting
        message, built_by = greeting.MESSAGE, getattr(greeting, "BUILT_BY_UID", None)
    except ImportError as error:
        message, built_by = f"ImportError: {error}", None
    import httpx
    body = json.dumps(
        {"message": message, "prefix": sys.prefix, "httpx": httpx.__file__, "built_by": built_by,
         "uid": os.getuid(), "writable": writable()}
    ).encode()
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"application/json")]})
    await send({"type": "http.response.body", "body": body})
"""


BACKEND = """
\"\"\"A build backend of its own (PEP 517), so that building this package needs nothing from an index.\"\"\"
import base64, hashlib, os, zipfile

WHEEL = "greeting-1.0-py3-none-any.whl"

def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
    files = {
        "greeting/__init__.py": (
            f'MESSAGE = "hello from the vendored greeting"\\nBUILT_BY_UID = {os.getuid()}\\n'.encode()
        ),
        "greeting-1.0.dist-info/METADATA": b"Metadata-Version: 2.1\\nName: greeting\\nVersion: 1.0\\n",
        "greeting-1.0.dist-info/WHEEL": (
            b"Wheel-Version: 1.0\\nGenerator: backend\\nRoot-Is-Purelib: true\\nTag: py3-none-any\\n"
        ),
    }
    record = []
    for name, data in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        record.append(f"{name},sha256={digest},{len(data)}")
    record.append("greeting-1.0.dist-info/RECORD,,")
    with zipfile.ZipFile(os.path.join(wheel_directory, WHEEL), "w") as wheel:
        for name, data in files.items():
            wheel.writestr(name, data)
        wheel.writestr("greeting-1.0.dist-info/RECORD", "\\n".join(record) + "\\n")
    return WHEEL
"""
PYPROJECT = '[build-system]\nrequires = []\nbuild-backend = "backend"\nbackend-path = ["."]\n'


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


class _Host(ClientHost):
    """The host with test clients; pip's builds are slow: the API's answers are waited for 90 s."""

    api_timeout = 90


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


def test_a_wheel_shipped_in_the_archive_is_installed_once_and_imported(
    host: tuple[_Host, httpx.Client, Path],
):
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
    # an editable line is refused, in one line, whether the service runs already or not
    view, _ = _deploy(client, "healthy-first", {"web.py": WEB.encode()})
    assert view["state"] == "running", json.dumps(view)
    files = {"web.py": WEB.encode(), "requirements.txt": b"-e ./vendor/greeting\n"}
    for env in ("healthy-first", "editable"):
        view, _ = _deploy(client, env, files)
        assert view["state"] == "failed", json.dumps(view)
        assert "editable installs (-e) are not supported" in view["log"][-1], view["log"]
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


_NO_NOBODY = no_nobody_python("services")


@pytest.fixture
def service_python() -> Iterator[str]:
    """An interpreter ``nobody`` can run that finds this venv's packages (skyrig, uvicorn, pip)."""
    with nobody_python("skyrig-service-python-") as interpreter:
        yield interpreter


@pytest.mark.skipif(_NO_NOBODY is not None, reason=str(_NO_NOBODY))
def test_with_a_service_user_pip_runs_as_it_and_the_env_is_sealed(
    service_python: str, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setenv("PIP_INDEX_URL", f"http://127.0.0.1:{_closed_port()}/simple")
    monkeypatch.setenv("PIP_RETRIES", "0")
    parent = Path(tempfile.mkdtemp(prefix="skyrig-hosted-requirements-user-"))
    parent.chmod(0o711)
    data = parent / "data"
    options = ["--service-user", "nobody", "--service-python", service_python]
    nobody = pwd.getpwnam("nobody").pw_uid
    try:
        with _Host(data, options=options) as running:
            admin = running.api(running.admin_token)
            token = admin.post("/apps", json={"name": "shop"}).json()["token"]
            client = running.api(token)
            # a local package folder: its build (its own backend's code) runs as nobody, never as root
            files = {
                "web.py": WEB.encode(),
                "requirements.txt": b"./vendor/greeting\n",
                "vendor/greeting/pyproject.toml": PYPROJECT.encode(),
                "vendor/greeting/backend.py": BACKEND.encode(),
            }
            view, _ = _deploy(client, "dev", files)
            assert view["state"] == "running", json.dumps(view)
            answer = running.get("web.dev.shop.localhost").json()
            assert answer["message"] == "hello from the vendored greeting"
            assert (answer["built_by"], answer["uid"], answer["writable"]) == (nobody, nobody, False)
            [env] = _envs(data)
            for root, folders, names in os.walk(env):
                for name in [*folders, *names]:
                    info = Path(root, name).lstat()
                    assert info.st_uid == 0, (root, name)
                    if not stat.S_ISLNK(info.st_mode):
                        assert stat.S_IMODE(info.st_mode) in (0o755, 0o644), (root, name, oct(info.st_mode))
            # the source's folder was not written in by the build
            assert not list((data / "sources").glob("*/vendor/greeting/*.egg-info"))
            view, _ = _deploy(client, "dev", {"web.py": WEB.encode()})  # no requirements any more
            assert view["state"] == "running"
        with _Host(data, options=options) as running:  # a build is kept a while; at a restart, no longer
            client = running.api(token)
            view, _ = _deploy(client, "pr:2", {"web.py": b"# another source\n" + WEB.encode()})
            assert view["state"] == "running"
            assert _envs(data) == []
    finally:
        shutil.rmtree(parent, ignore_errors=True)


def test_the_provider_fails_the_apply_with_pips_message_and_deploys_a_failed_service_again(
    host: tuple[_Host, httpx.Client, Path], tmp_path: Path
):
    from skyrig.provider import Context, Environment, UserError
    from skyrig_hosted.api import HostedClient
    from skyrig_hosted.delivery import deliver
    from skyrig_hosted.settings import HostedSettings

    running, client, _ = host
    assert client.put("/apps/shop/envs/applied", json={"type": "preview"}).status_code in (200, 201)
    made = client.put(
        "/apps/shop/envs/applied/resources/service/web", json={"properties": {"app": "web:app"}}
    )
    assert made.status_code in (200, 201), made.text
    (tmp_path / "web.py").write_text(WEB)
    (tmp_path / "requirements.txt").write_text("./vendor/missing\n")
    settings = HostedSettings(url=running.url)
    api = HostedClient(settings.url, client.headers["Authorization"].split()[1], max_attempts=1)
    api.root = tmp_path
    context = Context("shop", Environment("applied", "preview", {}, {"hosted": settings}), settings, api)
    configs = {"web": {"app": "shop", "environment": "applied", "service": "web", "resources": {}}}
    for _ in range(2):  # unchanged, a failed service is deployed again (and fails again)
        with pytest.raises(UserError, match="service web did not start on the host") as failed:
            deliver(context, configs)
        assert "does not exist" in str(failed.value) and "vendor/missing" in str(failed.value)
    (tmp_path / "requirements.txt").write_text("httpx\n")
    deliver(context, configs)
    assert running.get("web.applied.shop.localhost").json()["message"].startswith("ImportError")


def test_the_provider_waits_for_a_deployment_still_starting(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    from skyrig.provider import Context, Environment
    from skyrig_hosted import delivery
    from skyrig_hosted.api import HostedClient
    from skyrig_hosted.settings import HostedSettings

    monkeypatch.setattr(delivery, "POLL", 0.01)
    (tmp_path / "web.py").write_text(WEB)
    answers = iter(["starting", "starting", "running"])
    seen: list[str] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(f"{request.method} {request.url.path.rpartition('/')[2]}")
        if request.url.path.endswith("/deployments"):
            return httpx.Response(200, json={"deployments": []})
        if "/sources/" in request.url.path:
            return httpx.Response(200, json={"source": {}})
        view = {"service": "web", "source": "s", "config_sha256": "c", "state": next(answers), "log": []}
        return httpx.Response(200, json={"deployment": view})

    settings = HostedSettings(url="http://host.example:8700")
    api = HostedClient(settings.url, "t", max_attempts=1, transport=httpx.MockTransport(answer))
    api.root = tmp_path
    context = Context("shop", Environment("pr:1", "preview", {}, {"hosted": settings}), settings, api)
    delivery.deliver(context, {"web": {"service": "web", "resources": {}}})
    assert seen[-3:] == ["PUT web", "GET web", "GET web"], seen


def test_concurrent_deployments_of_the_same_requirements_build_once(
    host: tuple[_Host, httpx.Client, Path], tmp_path: Path
):
    running, client, data = host
    builds = tmp_path / "builds"
    counted = BACKEND.replace(
        "    record = []\n", f"    open({str(builds)!r}, 'a').write('built\\n')\n    record = []\n", 1
    )
    assert counted != BACKEND
    files = {
        "web.py": WEB.encode(),
        "requirements.txt": b"./vendor/greeting\n",
        "vendor/greeting/pyproject.toml": PYPROJECT.encode(),
        "vendor/greeting/backend.py": counted.encode(),
    }
    before = set(_envs(data))
    with ThreadPoolExecutor(max_workers=3) as pool:
        views = list(pool.map(lambda env: _deploy(client, env, files)[0], ["c-1", "c-2", "c-3"]))
    assert [view["state"] for view in views] == ["running"] * 3, json.dumps(views)
    assert builds.read_text() == "built\n"  # pip built the package once, for one env all three run with
    [env] = set(_envs(data)) - before
    for name in ("c-1", "c-2", "c-3"):
        answer = running.get(f"web.{name}.shop.localhost").json()
        assert (answer["message"], answer["prefix"]) == ("hello from the vendored greeting", str(env))


def test_a_host_killed_during_a_build_leaves_no_env_and_its_next_start_builds_it_whole(tmp_path: Path):
    started, slow = tmp_path / "started", tmp_path / "slow"
    slow.write_text("")
    waiting = (  # the package's build waits while the test wants it slow, saying its pid first
        f"    open({str(started)!r}, 'w').write(str(os.getpid()))\n"
        f"    while os.path.exists({str(slow)!r}):\n"
        "        __import__('time').sleep(0.05)\n"
        "    record = []\n"
    )
    files = {
        "web.py": WEB.encode(),
        "requirements.txt": b"./vendor/greeting\n",
        "vendor/greeting/pyproject.toml": PYPROJECT.encode(),
        "vendor/greeting/backend.py": BACKEND.replace("    record = []\n", waiting, 1).encode(),
    }
    parent = Path(tempfile.mkdtemp(prefix="skyrig-hosted-requirements-kill-"))
    parent.chmod(0o711)
    data = parent / "data"
    try:
        with _Host(data) as first:
            admin = first.api(first.admin_token)
            token = admin.post("/apps", json={"name": "shop"}).json()["token"]
            client = first.api(token)
            with ThreadPoolExecutor(max_workers=1) as pool:
                pending = pool.submit(_deploy, client, "dev", files)
                deadline = time.monotonic() + 30
                while not started.exists() and time.monotonic() < deadline:
                    time.sleep(0.05)
                builder = int(started.read_text())
                assert first.process is not None
                first.process.send_signal(signal.SIGKILL)
                first.process.wait(10)
                with pytest.raises(httpx.HTTPError):
                    pending.result(timeout=30)
            assert _alive(builder), "the build goes on without its host"
            assert _envs(data) == [] and list((data / "envs").glob(".build-*"))
        # what the dead host's build left is stopped and removed, then built again
        with _Host(data) as second:
            assert not _alive(builder), "the next start stopped the dead host's build"
            slow.unlink()
            # a request waits for the env's build and its process's start
            assert (
                second.get("web.dev.shop.localhost").json()["message"] == "hello from the vendored greeting"
            )
            [env] = _envs(data)
            assert "Successfully installed greeting-1.0" in (env / "build.log").read_text()
            assert not list((data / "envs").glob(".build-*")) and not list((data / "envs").glob(".pid-*"))
    finally:
        slow.unlink(missing_ok=True)
        shutil.rmtree(parent, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        return b"Z" not in Path(f"/proc/{pid}/stat").read_bytes().rsplit(b")", 1)[1][:3]
    except OSError:
        return False
