"""The development dashboard, served by uvicorn as ``skyrig run`` serves it, driven in real headless Chromium.

A small app is applied to its ``local`` environment (memory provider) so that status has data; the
dashboard runs in a subprocess and the tests assert what a user sees on the page, plus the JSON endpoints.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from skyrig.dashboard import create_app
from skyrig.dashboard.svg import layers, render_svg
from skyrig.run.runfile import RunFile, remove_run_file, write_run_file

CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]
SECRET_VALUE = "correct-horse-battery-staple"

FILES = {
    "skyrig.toml": """
        app = "dashdemo"

        [env.local]
        type = "local"
        provider = "memory"

        [env.staging]
        type = "development"
        provider = "memory"
    """,
    "web/__init__.py": """
        from skyrig import Service

        service = Service("web", app="web.api:app")
    """,
    "web/api.py": """
        from pydantic import BaseModel

        from skyrig import Bucket, Secret, Topic


        class SignedUp(BaseModel):
            user_id: int


        signups = Topic("signups", SignedUp)
        avatars = Bucket("avatars")
        api_key = Secret("api-key")
        db_password = Secret("db-password")


        async def app(scope, receive, send):
            signups.publish(SignedUp(user_id=1))
            avatars.upload("a.png", b"")
            return api_key.value + db_password.value
    """,
    "worker/__init__.py": """
        from skyrig import Service

        service = Service("worker", app="worker.jobs:app")
    """,
    "worker/jobs.py": """
        import web.api

        from skyrig import CronJob, Subscription


        def clean_up() -> None:
            pass


        def report() -> None:
            raise RuntimeError("the report failed")


        async def welcome(event: web.api.SignedUp) -> None:
            pass


        async def app(scope, receive, send):
            pass


        CronJob("nightly-cleanup", title="Nightly cleanup", schedule="0 3 * * *", endpoint=clean_up)
        CronJob("hourly-report", every="1h", endpoint=report)
        Subscription(web.api.signups, "welcome", handler=welcome)
    """,
}


def _skyrig(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [sys.executable, "-m", "skyrig", *args], input=stdin, text=True, capture_output=True
    )
    assert result.returncode == 0, result.stderr
    return result


def _free_socket() -> socket.socket:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    return sock


def _get(url: str) -> tuple[int, Any]:
    return _request(url)


def _request(url: str, method: str = "GET", headers: dict[str, str] | None = None) -> tuple[int, Any]:
    request = urllib.request.Request(
        url, method=method, headers=headers or {}, data=b"" if method == "POST" else None
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


@contextlib.contextmanager
def _serve_in_thread(app: Any) -> Iterator[str]:
    """Serve ASGI ``app`` with uvicorn in a thread of this process; yields its URL."""
    import uvicorn

    sock = _free_socket()
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline, "the server never started"
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()


class StandInService:
    """Stands in for a service's host under ``skyrig run`` (built separately): it answers the control
    endpoint ``POST /__skyrig/cron/JOB`` as the host does, only with the run's token, and records every
    call so that the test can see what the dashboard sent."""

    def __init__(self, token: str) -> None:
        self.token = token
        self.calls: list[dict[str, str]] = []

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        assert scope["type"] == "http"
        headers = {k.decode(): v.decode() for k, v in scope["headers"]}
        self.calls.append(
            {"method": scope["method"], "path": scope["path"], "token": headers.get("x-skyrig-token", "")}
        )
        job = scope["path"].removeprefix("/__skyrig/cron/")
        if headers.get("x-skyrig-token") != self.token:
            status, body = 401, {"error": "wrong or missing control token"}
        elif scope["method"] != "POST" or job == scope["path"]:
            status, body = 404, {"error": "no such control endpoint"}
        elif job == "hourly-report":  # a job that raises: the host answers 500 with the outcome
            status, body = (
                500,
                {"job": job, "ok": False, "seconds": 0.01, "error": "RuntimeError: the report failed"},
            )
        else:
            status, body = 200, {"job": job, "ok": True, "seconds": 0.25, "error": None}
        payload = json.dumps(body).encode()
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [(b"content-type", b"application/json")],
            }
        )
        await send({"type": "http.response.body", "body": payload})


@pytest.fixture(scope="module")
def app_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("dashboard") / "dashdemo"
    for relative, text in FILES.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip())
    _skyrig("apply", "--env", "local", "--yes", "-C", str(root))
    _skyrig("secret", "set", "db-password", "--env", "local", "-C", str(root), stdin=SECRET_VALUE)
    return root


@pytest.fixture(scope="module")
def dashboard(app_dir: Path) -> Iterator[str]:
    """The dashboard of ``app_dir``/local, started the way ``skyrig run`` starts it; yields its URL."""
    with _free_socket() as probe:
        port = probe.getsockname()[1]
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "--factory",
            "skyrig.dashboard.app:from_environment",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--log-level",
            "warning",
        ],
        env={**os.environ, "SKYRIG_DASHBOARD_ROOT": str(app_dir), "SKYRIG_DASHBOARD_ENV": "local"},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if _get(f"{url}/healthz")[0] == 200:
                    break
            except OSError:
                pass
            assert process.poll() is None, process.communicate()[0]
            assert time.monotonic() < deadline, "the dashboard never answered"
            time.sleep(0.1)
        yield url
    finally:
        os.kill(process.pid, signal.SIGTERM)
        output = process.communicate(timeout=15)[0]
    assert "Traceback" not in output, output


def _chromium() -> str:
    found = os.environ.get("SKYRIG_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
    if not Path(found).is_file():
        pytest.fail(
            "the dashboard tests drive a real Chromium, and none was found: install Debian's package with "
            "'apt-get update && apt-get install -y --no-install-recommends chromium' (or name one in "
            "SKYRIG_CHROMIUM)"
        )
    return found


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    executable = _chromium()
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.fail("playwright is not installed: pip install -r requirements-dev.txt")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        yield launched
        launched.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    opened = context.new_page()
    opened.set_default_timeout(10_000)
    yield opened
    context.close()


# -- in the browser -------------------------------------------------------------------------------


def test_the_page_shows_model_graph_status_secrets_and_messages(page, dashboard):
    from playwright.sync_api import expect

    page.goto(dashboard)
    expect(page.locator("h1")).to_contain_text("dashdemo")

    model = page.locator("#model")
    expect(model).to_contain_text("2 services, 7 resources")
    for service in ("web", "worker"):
        expect(model.locator(f"tr[data-service='{service}']")).to_be_visible()
    topic = model.locator("tr[data-resource='topic/signups']")
    expect(topic).to_contain_text("web")  # the owning service
    expect(topic).to_contain_text("web/api.py:10")  # where it is declared
    expect(topic).to_contain_text("message_type = web.api:SignedUp")
    cron = model.locator("tr[data-resource='cron_job/nightly-cleanup']")
    expect(cron).to_contain_text("worker")
    expect(cron).to_contain_text("schedule = 0 3 * * *")
    expect(model).to_contain_text("publish")  # who uses what, with which operations

    svg = page.locator("#graph svg")
    expect(svg).to_be_visible()
    nodes = _get(f"{dashboard}/api/graph")[1]["nodes"]
    assert len(nodes) > 8
    text = svg.text_content()
    for node in nodes:
        assert node["id"] in text
    assert page.locator("#graph svg g.node").count() == len(nodes)
    assert page.locator("#graph svg path[data-from]").count() == sum(len(n["depends_on"]) for n in nodes)
    for node_id in ("pubsub.topic/signups", "compute.service/worker", "cron.job/nightly-cleanup"):
        expect(page.locator(f"#graph svg g[data-node='{node_id}']")).to_be_visible()

    local = page.locator("#status tr[data-env='local']")
    expect(local).to_contain_text(f"{len(nodes)} nodes")
    expect(local).to_contain_text("no drift")
    expect(local).to_contain_text("memory")
    expect(page.locator("#status tr[data-env='staging']")).to_contain_text("never applied")

    missing = page.locator("#secrets tr[data-secret='api-key']")
    expect(missing).to_contain_text("missing")
    expect(missing).to_contain_text("skyrig secret set api-key --env local")
    expect(page.locator("#secrets tr[data-secret='db-password']")).to_contain_text("set")
    expect(page.locator("#secrets")).not_to_contain_text("skyrig secret set db-password")

    expect(page.locator("#messages")).to_contain_text("No messages yet")
    assert SECRET_VALUE not in page.content()


def test_run_now_forwards_to_the_owning_service_or_says_why_it_cannot(page, dashboard, app_dir):
    from playwright.sync_api import expect

    remove_run_file(app_dir, "local")
    page.goto(dashboard)
    row = page.locator("#cron tr[data-job='nightly-cleanup']")
    expect(row).to_contain_text("Nightly cleanup")
    expect(row).to_contain_text("0 3 * * *")
    expect(row).to_contain_text("worker.jobs:clean_up")
    row.get_by_role("button", name="Run now").click()
    expect(row.locator(".outcome")).to_contain_text("no skyrig run is serving environment 'local'")
    expect(row.locator(".outcome")).to_contain_text("skyrig run --env local")

    token = secrets.token_hex(16)
    service = StandInService(token)
    with _serve_in_thread(service) as url:
        # a live run file, as skyrig run writes it: this test process stands in for its pid
        write_run_file(
            app_dir, RunFile(pid=os.getpid(), environment="local", services={"worker": url}, token=token)
        )
        try:
            page.reload()
            expect(page.locator("#cron")).to_contain_text("skyrig run is serving local")
            row.get_by_role("button", name="Run now").click()
            expect(row.locator(".outcome")).to_contain_text("ran in 0.25 s")
            failing = page.locator("#cron tr[data-job='hourly-report']")
            failing.get_by_role("button", name="Run now").click()
            expect(failing.locator(".outcome")).to_contain_text("failed: RuntimeError: the report failed")
        finally:
            remove_run_file(app_dir, "local")
    assert service.calls == [
        {"method": "POST", "path": "/__skyrig/cron/nightly-cleanup", "token": token},
        {"method": "POST", "path": "/__skyrig/cron/hourly-report", "token": token},
    ]


def test_an_error_in_one_section_shows_in_that_section_only(page, app_dir, tmp_path):
    from playwright.sync_api import expect

    broken = tmp_path / "broken"
    shutil.copytree(app_dir, broken, ignore=shutil.ignore_patterns(".skyrig"))
    config = broken / "skyrig.toml"
    config.write_text('state = "nosuch://somewhere"\n' + config.read_text())
    with _serve_in_thread(create_app(broken, "local")) as url:
        page.goto(url)
        expect(page.locator("#status .error")).to_contain_text("state: no store for URL scheme 'nosuch'")
        expect(page.locator("#model")).to_contain_text("2 services, 7 resources")
        expect(page.locator("#cron tr[data-job='nightly-cleanup']")).to_be_visible()
        expect(page.locator("#graph .error")).to_be_visible()


def test_messages_show_with_their_delivery_attempts_and_refresh(page, app_dir, monkeypatch):
    """A provider that reports messages (skyrig.provider.MessageHistory), stood in for by giving the memory
    provider a recent_messages it does not have, in a dashboard served from this process."""
    from playwright.sync_api import expect

    from skyrig_memory import MemoryProvider

    reported: list[dict[str, Any]] = []
    monkeypatch.setattr(
        MemoryProvider, "recent_messages", lambda self, context, limit=50: reported[:limit], raising=False
    )
    with _serve_in_thread(create_app(app_dir, "local")) as url:
        page.goto(url)
        expect(page.locator("#messages")).to_contain_text("No messages yet")
        reported.append(
            {
                "topic": "signups",
                "id": "m-1",
                "published_at": "2026-01-02T03:04:05+00:00",
                "data": {"user_id": 7},
                "deliveries": [
                    {
                        "subscription": "welcome",
                        "attempt": 1,
                        "outcome": "failed",
                        "error": "ConnectionError: mail server down",
                        "at": "2026-01-02T03:04:06+00:00",
                    },
                    {
                        "subscription": "welcome",
                        "attempt": 2,
                        "outcome": "ok",
                        "error": None,
                        "at": "2026-01-02T03:04:16+00:00",
                    },
                ],
            }
        )
        message = page.locator("#messages [data-message='m-1']")  # appears at the next refresh (2 s)
        expect(message).to_contain_text("signups")
        expect(message).to_contain_text('"user_id": 7')
        expect(message.locator("tbody tr")).to_have_count(2)
        expect(message.locator("tbody tr").nth(0)).to_contain_text("ConnectionError: mail server down")
        expect(message.locator("tbody tr").nth(1)).to_contain_text("ok")
        expect(page.locator("#messages")).not_to_contain_text("No messages yet")


# -- the JSON endpoints ---------------------------------------------------------------------------


def test_json_endpoints(dashboard, app_dir):
    assert _get(f"{dashboard}/healthz") == (
        200,
        {"ok": True, "environment": "local", "root": str(app_dir.resolve())},
    )

    status, model = _get(f"{dashboard}/api/model")
    assert status == 200 and model["app"] == "dashdemo"
    assert [s["name"] for s in model["services"]] == ["web", "worker"]
    bucket = next(r for r in model["resources"] if r["kind"] == "bucket")
    assert (
        bucket["name"] == "avatars"
        and bucket["service"] == "web"
        and re.fullmatch(r"web/api\.py:\d+", bucket["declared_at"])
    )
    use = next(u for u in model["uses"] if u["service"] == "worker" and u["kind"] == "topic")
    assert use == {
        "service": "worker",
        "kind": "topic",
        "resource": "signups",
        "owner": "web",
        "operations": ["subscribe"],
    }

    status, graph = _get(f"{dashboard}/api/graph")
    assert status == 200 and graph["svg"].startswith("<svg")
    assert all(f'data-node="{n["id"]}"' in graph["svg"] for n in graph["nodes"])

    status, envs = _get(f"{dashboard}/api/status")
    local, staging = envs["environments"]
    assert (local["name"], local["applied"], local["nodes"], local["drift"]) == (
        "local",
        True,
        len(graph["nodes"]),
        {},
    )
    assert local["last_applied"] and local["current"]
    assert (staging["name"], staging["applied"], staging["last_applied"]) == ("staging", False, None)

    assert _get(f"{dashboard}/api/messages") == (200, {"provider": "memory", "messages": []})

    status, cron = _get(f"{dashboard}/api/cron")
    assert (status, cron["running"]) == (200, False)
    assert [job["name"] for job in cron["jobs"]] == ["hourly-report", "nightly-cleanup"]
    assert cron["jobs"][1] == {
        "name": "nightly-cleanup",
        "title": "Nightly cleanup",
        "schedule": "0 3 * * *",
        "every": None,
        "service": "worker",
        "endpoint": "worker.jobs:clean_up",
        "declared_at": "worker/jobs.py:22",
    }
    assert (cron["jobs"][0]["every"], cron["jobs"][0]["title"]) == ("1h", None)

    status, found = _get(f"{dashboard}/api/secrets")
    assert found["missing"] == ["api-key"]
    assert {s["name"]: s["set"] for s in found["secrets"]} == {"api-key": False, "db-password": True}

    for path in ("/", "/api/model", "/api/graph", "/api/status", "/api/secrets", "/graph.svg"):
        with urllib.request.urlopen(f"{dashboard}{path}") as response:
            assert SECRET_VALUE not in response.read().decode()


def test_run_now_is_refused_politely(dashboard, app_dir):
    post = f"{dashboard}/api/cron/nightly-cleanup"
    page_header = {"x-skyrig-dashboard": "1"}
    status, body = _request(post, "POST")
    assert status == 403, "a POST without the page's header (say, a form on another site) runs nothing"
    status, body = _request(post, "POST", {**page_header, "origin": "http://elsewhere.example"})
    assert status == 403
    assert _request(f"{dashboard}/api/cron/no-such-job", "POST", page_header)[0] == 404
    assert _request(post, "GET")[0] == 405
    status, body = _request(post, "POST", page_header)
    assert status == 409 and "no skyrig run is serving environment 'local'" in body["error"]
    assert _get(f"{dashboard}/static/..%2F__init__.py")[0] == 404
    assert _get(f"{dashboard}/nowhere")[0] == 404


def test_the_layout_puts_each_node_right_of_what_it_depends_on():
    dependencies = {"net": (), "db": ("net",), "queue": (), "role": ("db", "queue"), "svc": ("net", "role")}
    order = ["net", "db", "queue", "role", "svc"]
    assert [sorted(column) for column in layers(order, dependencies)] == [
        ["net", "queue"],
        ["db"],
        ["role"],
        ["svc"],
    ]
    svg = render_svg(order, dict.fromkeys(order, "memory.thing"), dependencies)
    assert svg.count('class="node"') == 5 and svg.count("data-from=") == 5
    assert "no nodes" in render_svg([], {}, {})
