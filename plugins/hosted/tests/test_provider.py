"""The hosted provider against scripted answers (httpx's MockTransport, no host): how the host's errors
become skyrig's, what is retried, calls counted, tokens kept out of records and messages; and its node
types, inventory and secrets against a small scripted host that keeps resources by name as the API does."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from skyrig.provider import (
    Context,
    Environment,
    Node,
    NotFound,
    ProviderError,
    ThrottledError,
    TransientError,
    UserError,
)
from skyrig_hosted import names, provider
from skyrig_hosted.api import CALLS, Conflict, HostedClient, token
from skyrig_hosted.nodes import APP, ENVIRONMENT
from skyrig_hosted.secrets import SECRET
from skyrig_hosted.settings import HostedSettings

URL = "http://host.example:8080"


def client(answer: Callable[[httpx.Request], httpx.Response], key: str = "the-token") -> HostedClient:
    return HostedClient(URL, key, max_attempts=3, wait_delay=0.001, transport=httpx.MockTransport(answer))


def scripted(*responses: httpx.Response) -> tuple[Callable[[httpx.Request], httpx.Response], list[str]]:
    """An answerer giving ``responses`` in turn (the last one again after them), and the requests seen."""
    seen: list[str] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(f"{request.method} {request.url.raw_path.decode()}")
        assert request.headers["authorization"] == "Bearer the-token"
        return responses[min(len(seen), len(responses)) - 1]

    return answer, seen


def error(status: int, message: str = "no", code: str = "x") -> httpx.Response:
    return httpx.Response(status, json={"error": {"code": code, "message": message}})


# -- the client -------------------------------------------------------------------------------------------


def test_the_api_url_ends_with_v1_however_it_is_written() -> None:
    for written in ("http://h:1", "http://h:1/", "http://h:1/v1", "http://h:1/v1/"):
        assert HostedSettings(url=written).url == "http://h:1/v1"
    answer, seen = scripted(httpx.Response(200, json={"app": {"name": "shop"}}))
    client(answer).app("shop")
    assert seen == ["GET /v1/apps/shop"]


def test_what_is_retried_and_what_is_not() -> None:
    answer, seen = scripted(error(503), error(502), httpx.Response(200, json={"app": {"name": "a"}}))
    assert client(answer).app("a") == {"name": "a"}, "a read is retried on 5xx"
    assert len(seen) == 3

    answer, seen = scripted(error(500))
    with pytest.raises(TransientError, match=r"PUT /apps/\{app\}/envs/\{env\}"):
        client(answer).put_environment("a", "pr:7", "preview")
    assert len(seen) == 1, "a mutation answered 500 may have happened: not retried by the client"

    def unreachable(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    with pytest.raises(TransientError, match="cannot reach"):
        client(unreachable).app("a")


def test_a_quota_is_an_error_with_the_quotas_message_that_the_engine_does_not_retry() -> None:
    answer, seen = scripted(
        error(429, "quota environments per app reached: the limit is 20", "quota_exceeded")
    )
    with pytest.raises(ProviderError, match="the limit is 20") as raised:
        client(answer).put_environment("a", "pr:21", "preview")
    assert not isinstance(raised.value, TransientError), "a quota does not lift by asking again"
    assert "ask the host's admin" in str(raised.value)
    assert len(seen) == 1


def test_a_429_without_a_quota_is_throttling_retried_with_backoff() -> None:
    answer, _ = scripted(error(429, "slow down"))
    with pytest.raises(ThrottledError, match="slow down"):
        client(answer).put_environment("a", "pr:21", "preview")


@pytest.mark.parametrize(
    ("status", "kind"), [(404, NotFound), (409, Conflict), (422, ProviderError), (401, ProviderError)]
)
def test_errors_name_the_call_and_never_the_token(status: int, kind: type[Exception]) -> None:
    answer, _ = scripted(error(status, "refused here"))
    with pytest.raises(kind) as raised:
        client(answer).app("a")
    text = str(raised.value)
    assert "GET /apps/{app}" in text and "refused here" in text and "the-token" not in text
    if status == 401:
        assert "SKYRIG_HOSTED_TOKEN" in text


def test_calls_are_counted_by_template() -> None:
    answer, _ = scripted(httpx.Response(200, json={"resources": []}))
    before = CALLS["GET /apps/{app}/envs/{env}/resources"]
    client(answer).resources("a", "one")
    client(answer).resources("a", "two")
    assert CALLS["GET /apps/{app}/envs/{env}/resources"] == before + 2


def test_names_in_paths_are_quoted() -> None:
    answer, seen = scripted(httpx.Response(200, json={"env": {"name": "pr:72"}}))
    client(answer).environment("shop", "pr/72")
    assert seen == ["GET /v1/apps/shop/envs/pr%2F72"]


def test_the_runtime_token_is_dropped_and_the_token_is_in_no_repr(monkeypatch: pytest.MonkeyPatch) -> None:
    made = {"env": {"name": "pr:7", "type": "preview", "id": "ab12cd34", "runtime_token": "s3cret"}}
    answer, _ = scripted(httpx.Response(201, json=made))
    host = client(answer)
    assert host.put_environment("a", "pr:7", "preview") == {
        "name": "pr:7",
        "type": "preview",
        "id": "ab12cd34",
    }
    assert "the-token" not in repr(host)

    monkeypatch.delenv("SKYRIG_HOSTED_TOKEN", raising=False)
    with pytest.raises(UserError, match="SKYRIG_HOSTED_TOKEN") as missing:
        token()
    assert "never read from skyrig.toml" in missing.value.render()


def test_a_credentials_reference_names_the_resource_and_nothing_else() -> None:
    reference = names.credentials_reference("shop", "pr:72", "database", "orders")
    assert reference == "hosted:shop/pr:72/database/orders"
    assert names.parse_credentials_reference(reference) == ("shop", "pr:72", "database", "orders")
    with pytest.raises(LookupError):
        names.parse_credentials_reference("neon:p/b/r")


# -- node types against a scripted host ---------------------------------------------------------------


class ScriptedHost:
    """The host's API as HOSTED.md describes it, in memory: apps (made by the admin token only),
    environments and resources by name, secrets; nothing behind them."""

    def __init__(self) -> None:
        self.apps: set[str] = set()
        self.envs: dict[tuple[str, str], dict[str, Any]] = {}
        self.resources: dict[tuple[str, str], dict[tuple[str, str], dict[str, Any]]] = {}
        self.secrets: dict[tuple[str, str, str], str] = {}

    def __call__(self, request: httpx.Request) -> httpx.Response:
        admin = request.headers["authorization"] == "Bearer admin"
        parts = [httpx.URL(f"http://x/{p}").path[1:] for p in request.url.raw_path.decode().split("/")[2:]]
        parts = [p.replace("%3A", ":").replace("%2F", "/") for p in parts]
        method = request.method
        body = json.loads(request.content) if request.content else {}
        if parts == ["apps"] and method == "POST":
            if not admin:
                return error(403, "only the admin makes apps", "forbidden")
            if body["name"] in self.apps:
                return error(409, "taken", "conflict")
            self.apps.add(body["name"])
            return httpx.Response(201, json={"app": {"name": body["name"]}, "token": "app-token"})
        app = parts[1]
        if app not in self.apps:
            return error(404, f"no app {app}", "not_found")
        if len(parts) == 2:
            return httpx.Response(200, json={"app": {"name": app}})
        env = parts[3]
        key = (app, env)
        if len(parts) == 4:
            if method == "PUT":
                made = key not in self.envs
                self.envs.setdefault(key, {"name": env, "id": "ab12cd34"})["type"] = body["type"]
                self.resources.setdefault(key, {})
                extra = {"runtime_token": "runtime-secret"} if made else {}
                return httpx.Response(201 if made else 200, json={"env": {**self.envs[key], **extra}})
            if key not in self.envs:
                return error(404, f"no environment {env}", "not_found")
            if method == "DELETE":
                del self.envs[key], self.resources[key]
                return httpx.Response(204)
            return httpx.Response(200, json={"env": self.envs[key]})
        if key not in self.envs:
            return error(404, f"no environment {env}", "not_found")
        held = self.resources[key]
        if parts[4] == "resources" and len(parts) == 5:
            return httpx.Response(200, json={"resources": list(held.values())})
        if parts[4] == "secrets":
            name = parts[5]
            if ("secret", name) not in held:
                return error(404, f"no secret {name}", "not_found")
            if method == "PUT":
                self.secrets[(app, env, name)] = body["value"]
                return httpx.Response(204)
            if (app, env, name) not in self.secrets:
                return error(404, f"secret {name} has no value", "not_found")
            return httpx.Response(200, json={"value": self.secrets[(app, env, name)]})
        kind, name = parts[5], parts[6]
        if method == "PUT":
            held[(kind, name)] = {"kind": kind, "name": name, "properties": body["properties"], "outputs": {}}
            return httpx.Response(200, json={"resource": held[(kind, name)]})
        if method == "DELETE":
            held.pop((kind, name), None)
            return httpx.Response(204)
        if (kind, name) not in held:
            return error(404, f"no {kind} {name}", "not_found")
        return httpx.Response(200, json={"resource": held[(kind, name)]})


def context(host: ScriptedHost, key: str = "admin", env: str = "pr:7") -> Context:
    settings = HostedSettings(url=URL)
    environment = Environment(env, "preview", {}, {"hosted": settings})
    made = HostedClient(URL, key, max_attempts=1, transport=httpx.MockTransport(host))
    return Context("shop", environment, settings, made)


def node(node_id: str, node_type: str, **properties: Any) -> Node:
    return Node(node_id, node_type, "hosted", properties, (), None)


def test_an_app_is_made_with_the_admin_token_and_refused_clearly_with_an_apps_own() -> None:
    host = ScriptedHost()
    app = node(names.APP_ID, APP.type, name="shop")
    with pytest.raises(ProviderError, match="ask the host's admin to make the app"):
        APP.create(context(host, key="app-token"), app)
    assert APP.find(context(host), app) is None
    made = APP.create(context(host), app)
    assert made.provider_id == "shop" and "app-token" not in json.dumps(made.outputs)
    assert APP.create(context(host), app).provider_id == "shop", "an app made meanwhile is adopted"
    APP.delete(context(host), app, "shop")
    assert host.apps == {"shop"}, "a destroy never deletes the app: its other environments are in it"


def test_an_environment_and_a_secret_are_found_made_and_deleted_by_name() -> None:
    host = ScriptedHost()
    host.apps.add("shop")
    ctx = context(host)
    env = node(names.ENVIRONMENT_ID, ENVIRONMENT.type, name="pr:7", type="preview")
    secret = node(names.node_id("secret", "api-key"), SECRET.type, name="api-key")
    assert SECRET.find(ctx, secret) is None, "no environment yet: not found, never an error"
    assert ENVIRONMENT.find(ctx, env) is None
    made = ENVIRONMENT.create(ctx, env)
    assert made.properties == {"name": "pr:7", "type": "preview", "template": None}
    assert "runtime-secret" not in json.dumps(made.outputs)
    observed = SECRET.create(ctx, secret)
    assert SECRET.find(ctx, secret) == observed
    entry = SECRET.runtime_entry(secret, observed)
    assert entry == {
        "type": "hosted.secret",
        "api": "http://host.example:8080/v1",
        "app": "shop",
        "env": "pr:7",
        "secret": "api-key",
    }
    assert provider.inventory(ctx) == [("hosted.environment", "pr:7"), ("hosted.secret", "api-key")]

    assert provider.secret_is_set(ctx, "api-key") is False
    provider.set_secret(ctx, "api-key", "canary")
    assert provider.secret_is_set(ctx, "api-key") is True
    with pytest.raises(UserError, match="does not exist on the host yet") as refused:
        provider.set_secret(ctx, "never-declared", "x")
    assert "skyrig apply --env pr:7" in refused.value.render()

    SECRET.delete(ctx, secret, "api-key")
    SECRET.delete(ctx, secret, "api-key")  # gone already: not an error
    ENVIRONMENT.delete(ctx, env, "pr:7")
    assert provider.inventory(ctx) == []


def test_a_resource_made_before_its_environment_is_visible_is_retried() -> None:
    host = ScriptedHost()
    host.apps.add("shop")
    secret = node(names.node_id("secret", "api-key"), SECRET.type, name="api-key")
    with pytest.raises(TransientError, match="not visible yet"):
        SECRET.create(context(host), secret)


def test_the_secret_data_plane_reads_the_host_and_says_how_to_set_a_missing_value(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from skyrig_hosted import runtime
    from skyrig_hosted.runtime import secrets

    host = ScriptedHost()
    host.apps.add("shop")
    ctx = context(host)
    ENVIRONMENT.create(ctx, node(names.ENVIRONMENT_ID, ENVIRONMENT.type, name="pr:7", type="preview"))
    secret = node(names.node_id("secret", "api-key"), SECRET.type, name="api-key")
    entry = SECRET.runtime_entry(secret, SECRET.create(ctx, secret))
    monkeypatch.setenv("SKYRIG_HOSTED_TOKEN", "admin")
    scripted_host = HostedClient(URL, "admin", transport=httpx.MockTransport(host))
    monkeypatch.setitem(runtime._clients, (entry["api"], "admin"), scripted_host)
    secrets.VALUES.forget()
    plane = provider.data_plane("secret", entry, {"environment": "pr:7"})
    with pytest.raises(LookupError, match="skyrig secret set api-key --env pr:7"):
        plane.value("api-key")
    provider.set_secret(ctx, "api-key", "canary")
    assert plane.value("api-key") == "canary"


# -- against a real host (skyrig-hosted serve on loopback, the session's) ----------------------------------

SHOP = {
    "skyrig.toml": """app = "{app}"

[env."pr:3"]
type = "preview"
provider = "hosted"
compute = "memory"
cron = "memory"
pubsub = "memory"

[env."pr:3".hosted]
url = "{url}"
""",
    "shop/__init__.py": 'from skyrig import Service\n\nservice = Service("shop", app="shop.web:app")\n',
    "shop/web.py": "async def app(scope, receive, send):\n    pass\n",
    "shop/resources.py": """from pydantic import BaseModel

from skyrig import CacheCluster, Secret, SQLDatabase


class Visit(BaseModel):
    count: int


orders = SQLDatabase("orders", migrations="./migrations")
sessions = CacheCluster("sessions")
visits = sessions.keyspace("visit/{id}", value=Visit)
stripe_key = Secret("stripe-key")


def use() -> None:
    orders.connect()
    visits.get(id="x")
    visits.set("x", None)
    stripe_key.value
""",
    "shop/migrations/0001_orders.up.sql": "CREATE TABLE orders (id serial PRIMARY KEY);\n",
}


def _skyrig(root: Any, *args: str, stdin: str = "") -> Any:
    from skyrig.cli.testing import invoke

    result = invoke([*args, "-C", str(root)], stdin=stdin)
    assert result.code == 0, result.text
    return result


def test_an_apps_own_token_provisions_its_preview_with_nothing_secret_in_skyrigs_files(
    host: Any, tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from skyrig.runtime import binding
    from skyrig_hosted.api import Refused, mutating_calls

    admin = HostedClient(host.url, host.admin_token)
    answer = admin.request("POST", "/apps", body={"name": "shop-token"})
    app_token = answer["token"]
    with pytest.raises(Refused):
        HostedClient(host.url, app_token).create_app("shop-other")

    for name, text in SHOP.items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text.replace("{app}", "shop-token").replace("{url}", host.url))
    monkeypatch.setenv("SKYRIG_HOSTED_TOKEN", app_token)

    before = mutating_calls().copy()
    _skyrig(tmp_path, "apply", "--env", "pr:3", "--yes")
    made = mutating_calls() - before
    assert made == {
        "PUT /apps/{app}/envs/{env}": 1,
        "PUT /apps/{app}/envs/{env}/resources/{kind}/{name}": 3,
    }, "a first apply makes the environment and each resource once"
    _skyrig(tmp_path, "secret", "set", "stripe-key", "--env", "pr:3", stdin="sk_canary\n")
    before = mutating_calls().copy()
    assert "nothing to do" in _skyrig(tmp_path, "apply", "--env", "pr:3", "--yes").text
    assert mutating_calls() - before == {}, "a second apply changes nothing on the host"

    config = json.loads((tmp_path / ".skyrig" / "runtime" / "pr-3" / "shop.json").read_text())
    entry = config["resources"]["sql_database/orders"]
    assert entry["password"] == "hosted:shop-token/pr:3/database/orders"
    cache = config["resources"]["cache_cluster/sessions"]
    assert cache["key_prefix"] and cache["username"] and cache["password"].startswith("hosted:")
    passwords = [
        admin.credentials("shop-token", "pr:3", kind, name)["password"]
        for kind, name in (("database", "orders"), ("cache", "sessions"))
    ]
    for path in (tmp_path / ".skyrig").rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            assert not any(p.encode() in data for p in [*passwords, "sk_canary", app_token]), path

    monkeypatch.setenv("SKYRIG_RUNTIME_CONFIG", str(tmp_path / ".skyrig" / "runtime" / "pr-3" / "shop.json"))
    monkeypatch.syspath_prepend(str(tmp_path))
    binding.reset()
    try:
        from shop import resources  # type: ignore[import-not-found]

        with resources.orders.connect() as connection:
            assert connection.execute("SELECT count(*) FROM orders").fetchone() == (0,)
        resources.visits.set("a", resources.Visit(count=3))
        assert resources.visits.get(id="a") == resources.Visit(count=3)
        assert resources.stripe_key.value == "sk_canary"
    finally:
        binding.reset()
        for name in [m for m in sys.modules if m == "shop" or m.startswith("shop.")]:
            del sys.modules[name]

    _skyrig(tmp_path, "destroy", "--env", "pr:3", "--yes")
    kept = sorted((r["kind"], r["name"]) for r in admin.resources("shop-token", "pr:3"))
    assert kept == [("database", "orders"), ("secret", "stripe-key")], (
        "a destroy keeps the data, not the cache"
    )
    assert admin.secret("shop-token", "pr:3", "stripe-key") == "sk_canary"
    _skyrig(tmp_path, "apply", "--env", "pr:3", "--yes")
    assert "nothing to do" in _skyrig(tmp_path, "apply", "--env", "pr:3", "--yes").text

    _skyrig(tmp_path, "destroy", "--env", "pr:3", "--yes", "--include-data")
    with pytest.raises(NotFound):
        admin.environment("shop-token", "pr:3")


@pytest.fixture
def bucket(host: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    """A bucket of a new environment on the host, as its node type makes it, and its data plane."""
    import uuid

    from skyrig_hosted import runtime
    from skyrig_hosted.objects import BUCKET
    from skyrig_hosted.runtime.objects import BucketClient

    monkeypatch.setenv("SKYRIG_HOSTED_TOKEN", host.admin_token)
    settings = HostedSettings(url=host.url)
    app = f"objects-{uuid.uuid4().hex[:6]}"
    ctx = Context(
        app,
        Environment("pr:9", "preview", {}, {"hosted": settings}),
        settings,
        HostedClient(host.url, host.admin_token),
    )
    APP.create(ctx, node(names.APP_ID, APP.type, name=app))
    ENVIRONMENT.create(ctx, node(names.ENVIRONMENT_ID, ENVIRONMENT.type, name="pr:9", type="preview"))
    files = node(names.node_id("bucket", "files"), BUCKET.type, name="files")
    entry = BUCKET.runtime_entry(files, BUCKET.create(ctx, files))
    assert entry["password"] == f"hosted:{app}/pr:9/bucket/files"
    runtime.forget()
    yield BucketClient(entry)
    ENVIRONMENT.delete(ctx, node(names.ENVIRONMENT_ID, ENVIRONMENT.type), "pr:9")


def test_a_buckets_data_plane_keeps_lists_and_removes_objects(bucket: Any) -> None:
    bucket.upload("a/1.txt", b"one")
    bucket.upload("a/2.bin", bytes(range(256)))
    assert bucket.download("a/2.bin") == bytes(range(256))
    assert bucket.list("a/") == ["a/1.txt", "a/2.bin"]
    bucket.remove("a/1.txt")
    bucket.remove("never-there")
    assert bucket.list() == ["a/2.bin"]
    with pytest.raises(KeyError):
        bucket.download("a/1.txt")
    with pytest.raises(PermissionError):
        bucket.public_url("a/2.bin")


def test_a_buckets_signed_url_is_served_over_http(bucket: Any) -> None:
    import urllib.request

    bucket.upload("signed.txt", b"for your eyes")
    with urllib.request.urlopen(bucket.signed_url("signed.txt", "5m"), timeout=30) as response:
        assert response.read() == b"for your eyes"


def test_a_database_password_refused_by_the_server_is_read_again_from_the_host(
    host: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    import uuid

    from skyrig_hosted import runtime
    from skyrig_hosted.sql import DATABASE

    monkeypatch.setenv("SKYRIG_HOSTED_TOKEN", host.admin_token)
    settings = HostedSettings(url=host.url)
    app = f"sql-{uuid.uuid4().hex[:6]}"
    environment = Environment("dev", "development", {}, {"hosted": settings})
    ctx = Context(app, environment, settings, HostedClient(host.url, host.admin_token))
    APP.create(ctx, node(names.APP_ID, APP.type, name=app))
    env = node(names.ENVIRONMENT_ID, ENVIRONMENT.type, name="dev", type="development")
    ENVIRONMENT.create(ctx, env)
    try:
        orders = node(
            names.node_id("database", "orders"), DATABASE.type, name="orders", migrations=[], files={}
        )
        entry = DATABASE.runtime_entry(orders, DATABASE.create(ctx, orders))
        plane = provider.data_plane("sql_database", entry, {"environment": "dev"})
        runtime.forget()
        runtime.LOGINS.read(entry["password"], lambda: f"{entry['user']}\0a-stale-password")
        with plane.connect() as connection:
            assert connection.execute("SELECT current_user").fetchone() == (entry["user"],)
        assert "a-stale-password" not in plane.url(), "the password read again is kept for what follows"
    finally:
        ENVIRONMENT.delete(ctx, env, "dev")


def test_a_host_started_for_tests_stops_when_its_test_process_is_killed(host: Any, tmp_path: Any) -> None:
    import subprocess
    import time
    from pathlib import Path

    script = (
        "import os, signal\n"
        "from skyrig_hosted.conformance import Host\n"
        "host = Host().__enter__()\n"
        "print(host.process.pid, host.data, flush=True)\n"
        "os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    killed = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=180)
    assert killed.returncode == -9, killed.stderr
    pid, folder = killed.stdout.split()
    process, data = Path(f"/proc/{pid}"), Path(folder)
    deadline = time.monotonic() + 60
    while (process.exists() or data.exists()) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not process.exists(), "the host outlived the test process that started it"
    assert not data.exists(), "the host's data folder was left behind"
