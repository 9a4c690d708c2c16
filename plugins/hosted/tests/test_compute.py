"""Services on the host: the app's source archive (the same bytes for the same files), and against a real
host (``skyrig-hosted serve`` on loopback), an app using every family applied on hosted alone: its service
answers through the host's proxy with its database, cache, bucket and secret reached from inside the
service's process; a second apply changes nothing on the host (no upload, no deployment); a change of code
redeploys."""

from __future__ import annotations

import gzip
import io
import json
import os
import tarfile
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from support import write_files

from skyrig_hosted.source import files, pack

# -- the source archive -----------------------------------------------------------------------------------


def test_the_archive_is_the_same_bytes_for_the_same_files_and_leaves_out_what_tools_make(
    tmp_path: Path,
) -> None:
    one, two = tmp_path / "one", tmp_path / "two"
    content = {
        "skyrig.toml": 'app = "a"\n',
        "web/__init__.py": "",
        "web/app.py": "X = 1\n",
        "web/data/big.csv": "1,2\n",
        ".skyrigignore": "# data stays home\nweb/data\n*.log\n",
        "debug.log": "noise\n",
        ".skyrig/state.db": "state",
        ".git/HEAD": "ref",
        "web/__pycache__/app.cpython-311.pyc": "x",
        ".venv/bin/python": "x",
        "node_modules/x/index.js": "x",
        ".pytest_cache/v": "x",
    }
    write_files(one, content)
    write_files(two, dict(reversed(list(content.items()))))  # made in another order, at another time
    os.utime(two / "web" / "app.py", (1, 1))
    (two / "web" / "app.py").chmod(0o600)
    assert files(one) == [".skyrigignore", "skyrig.toml", "web/__init__.py", "web/app.py"]
    first, second = pack(one), pack(two)
    assert first.sha256 == second.sha256 and first.data == second.data
    with tarfile.open(fileobj=io.BytesIO(first.data), mode="r:gz") as tar:
        members = tar.getmembers()
    assert [m.name for m in members] == files(one)
    assert {(m.mtime, m.uid, m.gid, m.mode) for m in members} == {(0, 0, 0, 0o644)}
    assert gzip.decompress(first.data)  # a plain gzip stream

    (one / "web" / "app.py").write_text("X = 2\n")
    assert pack(one).sha256 != first.sha256, "a change of code is a new archive"


# -- against a real host ------------------------------------------------------------------------------------

APP_FILES = {
    "skyrig.toml": """app = "{app}"

[env."pr:1"]
type = "preview"
provider = "hosted"

[env."pr:1".hosted]
url = "{url}"
""",
    "web/__init__.py": 'from skyrig import Service\n\nservice = Service("web", app="web.app:app")\n',
    "web/resources.py": """from pydantic import BaseModel

from skyrig import Bucket, CacheCluster, CronJob, Secret, SQLDatabase, Subscription, Topic

from .jobs import handle, nightly


class Visit(BaseModel):
    count: int


class Note(BaseModel):
    text: str


notes = SQLDatabase("notes", migrations="./migrations")
sessions = CacheCluster("sessions")
visits = sessions.keyspace("visit/{id}", value=Visit)
files = Bucket("files")
api_key = Secret("api-key")
events = Topic("events", Note)
Subscription(events, "record", handler=handle)
CronJob("nightly", title="Nightly", schedule="0 3 * * *", endpoint=nightly)
""",
    "web/jobs.py": """from pathlib import Path

MARKS = {marks!r}


def handle(note) -> None:
    pass


def nightly() -> None:
    with Path(MARKS).open("a") as marks:
        marks.write("ran\\n")
""",
    "web/app.py": """from .resources import api_key, events, files, notes, visits, Visit

GREETING = "hello"


async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    with notes.connect() as connection:
        rows = connection.execute("SELECT count(*) FROM notes").fetchone()[0]
    visits.set("n", Visit(count=rows + 7))
    files.upload("seen", b"yes")
    text = f"{GREETING} rows={rows} cached={visits.get(id='n').count} "
    text += f"file={files.download('seen').decode()} key={api_key.value}"
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
    await send({"type": "http.response.body", "body": text.encode()})


def unused() -> None:
    events.publish(None)
""",
    "web/migrations/0001_notes.up.sql": "CREATE TABLE notes (id serial PRIMARY KEY);\n",
}


def write_app(root: Path, app: str, url: str, marks: Path) -> None:
    """The test app in ``root``: a service ``web`` with a database, a cache, a bucket, a secret, a topic
    and its subscription, and a cron job ``nightly`` that appends a line to ``marks``."""
    write_files(root, APP_FILES, {"{app}": app, "{url}": url, "{marks!r}": repr(str(marks))})


def skyrig(root: Path, *args: str, stdin: str = "") -> Any:
    """``skyrig ARGS -C root``, which must succeed."""
    from skyrig.cli.testing import invoke

    result = invoke([*args, "-C", str(root)], stdin=stdin)
    assert result.code == 0, result.text
    return result


def through_proxy(host: Any, service_url: str, path: str = "/", **kwargs: Any) -> httpx.Response:
    """A request to a service's URL (``http://web.pr-1.app.localhost:PORT``) sent to the host's port on
    127.0.0.1 with that Host header, as a browser resolving ``*.localhost`` to loopback does."""
    address = httpx.URL(service_url)
    api = httpx.URL(host.url)
    headers = {"Host": address.netloc.decode(), **kwargs.pop("headers", {})}
    method = kwargs.pop("method", "GET")
    url = f"http://127.0.0.1:{api.port}{path}"
    return httpx.request(method, url, headers=headers, timeout=60, **kwargs)


def test_an_app_on_hosted_alone_is_served_through_the_proxy_and_redeployed_only_when_its_code_changes(
    host: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from skyrig_hosted.api import HostedClient, mutating_calls

    app = "served"
    root = tmp_path / "app"
    write_app(root, app, host.url, tmp_path / "marks")
    monkeypatch.setenv("SKYRIG_HOSTED_TOKEN", host.admin_token)
    admin = HostedClient(host.url, host.admin_token)

    started = time.monotonic()
    skyrig(root, "apply", "--env", "pr:1", "--yes")
    skyrig(root, "secret", "set", "api-key", "--env", "pr:1", stdin="k-canary\n")
    first_apply = time.monotonic() - started
    (deployment,) = admin.deployments(app, "pr:1")
    assert deployment["service"] == "web" and deployment["state"] == "running", deployment
    url = deployment["url"]
    assert url.startswith("http://web.pr-1.served.localhost:"), url
    kinds = {(r["kind"], r["name"]) for r in admin.resources(app, "pr:1")}
    assert {("service", "web"), ("cron_job", "nightly"), ("database", "notes")} <= kinds

    answer = through_proxy(host, url)
    assert answer.status_code == 200, answer.text
    assert answer.text == "hello rows=0 cached=7 file=yes key=k-canary"
    config = json.loads((root / ".skyrig" / "runtime" / "pr-1" / "web.json").read_text())
    assert config["resources"]["cron_job/nightly"]["type"] == "hosted.cron.job"

    before = mutating_calls().copy()
    assert "nothing to do" in skyrig(root, "apply", "--env", "pr:1", "--yes").text
    assert mutating_calls() - before == {}, "a second apply with no change makes no upload nor deployment"
    assert admin.deployments(app, "pr:1")[0]["source"] == deployment["source"]

    app_py = root / "web" / "app.py"
    app_py.write_text(app_py.read_text().replace('GREETING = "hello"', 'GREETING = "bonjour"'))
    before = mutating_calls().copy()
    skyrig(root, "apply", "--env", "pr:1", "--yes")
    made = mutating_calls() - before
    assert made == {
        "PUT /apps/{app}/sources/{sha256}": 1,
        "PUT /apps/{app}/envs/{env}/deployments/{service}": 1,
    }
    (redeployed,) = admin.deployments(app, "pr:1")
    assert redeployed["source"] != deployment["source"] and redeployed["state"] == "running"
    assert through_proxy(host, url).text.startswith("bonjour rows=0"), "the new code answers"
    print(f"first apply with its deployment: {first_apply:.1f} s")

    skyrig(root, "destroy", "--env", "pr:1", "--yes", "--include-data")
    assert through_proxy(host, url).status_code == 404, "a destroyed environment's service is gone"


def test_a_service_that_does_not_start_fails_the_apply_with_the_end_of_its_output(
    host: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from skyrig.cli.testing import invoke

    root = tmp_path / "broken"
    files_ = {
        "skyrig.toml": APP_FILES["skyrig.toml"].replace("{app}", "broken").replace("{url}", host.url),
        "web/__init__.py": APP_FILES["web/__init__.py"],
        "web/app.py": 'raise RuntimeError("the canary cannot start")\n\n\nasync def app(scope, receive, send):\n    pass\n',
    }
    write_files(root, files_)
    monkeypatch.setenv("SKYRIG_HOSTED_TOKEN", host.admin_token)
    result = invoke(["apply", "--env", "pr:1", "--yes", "-C", str(root)])
    assert result.code != 0, result.text
    assert "service web did not start on the host" in result.text
    assert "the canary cannot start" in result.text, "the service's own output says why"
    assert "Traceback" not in result.text.split("did not start on the host")[0], "no traceback of skyrig's"


# -- delivery against scripted answers ------------------------------------------------------------------------


def test_delivery_uploads_only_what_the_host_lacks_and_deploys_only_what_changed(tmp_path: Path) -> None:
    from skyrig.provider import Context, Environment, UserError
    from skyrig_hosted.api import HostedClient
    from skyrig_hosted.delivery import config_sha256, deliver
    from skyrig_hosted.settings import HostedSettings

    write_files(tmp_path, {"web/__init__.py": "", "web/app.py": "X = 1\n"})
    source = pack(tmp_path)
    configs = {"web": {"service": "web", "resources": {}}, "api": {"service": "api", "resources": {}}}
    running = {
        "web": {"service": "web", "source": source.sha256, "config_sha256": config_sha256(configs["web"])}
    }
    held: set[str] = set()
    seen: list[str] = []
    state = {"api": "running", "web": "running"}

    def answer(request: httpx.Request) -> httpx.Response:
        path = request.url.path
        seen.append(f"{request.method} {path}")
        if path.endswith("/deployments"):
            return httpx.Response(200, json={"deployments": list(running.values())})
        if "/sources/" in path:
            digest = path.rpartition("/")[2]
            if request.method == "PUT":
                assert (
                    request.headers["content-type"] == "application/gzip" and request.content == source.data
                )
                held.add(digest)
                return httpx.Response(201, json={"source": {"sha256": digest, "size": len(request.content)}})
            return httpx.Response(200 if digest in held else 404, json={"source": {}})
        service = path.rpartition("/")[2]
        body = json.loads(request.content)
        running[service] = {
            "service": service,
            "source": body["source"],
            "config_sha256": config_sha256(body["config"]),
        }
        log = (
            ["Traceback (most recent call last):", "ImportError: no web"]
            if state[service] == "failed"
            else []
        )
        return httpx.Response(
            200, json={"deployment": {**running[service], "state": state[service], "log": log}}
        )

    settings = HostedSettings(url="http://host.example:8700")
    made = HostedClient(settings.url, "t", max_attempts=1, transport=httpx.MockTransport(answer))
    made.root = tmp_path
    context = Context("shop", Environment("pr:1", "preview", {}, {"hosted": settings}), settings, made)

    deliver(context, configs)
    assert seen == [
        "GET /v1/apps/shop/envs/pr:1/deployments",
        "PUT /v1/apps/shop/envs/pr:1/deployments/api",
    ], "web runs this source and config already (so the host has the source): only api is deployed"
    seen.clear()
    deliver(context, configs)
    assert seen == ["GET /v1/apps/shop/envs/pr:1/deployments"], "nothing changed: one list, nothing else"

    seen.clear()
    (tmp_path / "web" / "app.py").write_text("X = 2\n")
    source = pack(tmp_path)
    deliver(context, configs)
    assert seen == [
        "GET /v1/apps/shop/envs/pr:1/deployments",
        f"GET /v1/apps/shop/sources/{source.sha256}",
        f"PUT /v1/apps/shop/sources/{source.sha256}",
        "PUT /v1/apps/shop/envs/pr:1/deployments/api",
        "PUT /v1/apps/shop/envs/pr:1/deployments/web",
    ], "new code: uploaded once, then each service deployed"

    seen.clear()
    configs["api"]["resources"] = {"x": {}}
    state["api"] = "failed"
    with pytest.raises(UserError, match="service api did not start on the host") as failed:
        deliver(context, configs)
    assert "ImportError: no web" in str(failed.value)
    assert not any("/sources/" in call for call in seen), "a source some deployment runs is on the host"

    seen.clear()
    deliver(
        Context("shop", context.environment, settings.model_copy(update={"deploy": False}), made), configs
    )
    assert seen == [], "deploy = false: nothing is deployed"
