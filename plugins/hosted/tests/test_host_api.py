"""The host's API (skyrig_hosted.host.api) and its store, on a real PostgreSQL: who may do what (admin,
app and runtime tokens), how bad requests are answered, idempotent PUTs, quotas under concurrent
requests, and that the store holds no token, password or secret value in clear.

The servers' side (what an environment gets on PostgreSQL, Redis, NATS and the object server) is a
recording stand-in here: these tests are about the API's rules; the tenants have their own tests, and the
restart test (test_restart.py) runs the whole host."""

from __future__ import annotations

import secrets
import threading
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from support import InProcessServer

from skyrig_hosted.host.api import HostApi
from skyrig_hosted.host.crypto import HostKey
from skyrig_hosted.host.quotas import GIB, Quotas
from skyrig_hosted.host.store import DATABASE, Environment, Store, database_dsn
from skyrig_hosted.host.tenancy import FAMILIES
from skyrig_hosted.host.tokens import admin_token


class RecordingTenancy:
    """The servers' side, recorded: logins are random passwords, outputs name what would be made."""

    def __init__(self) -> None:
        self.calls: Counter[tuple[str, ...]] = Counter()
        self.used = 0
        self.lock = threading.Lock()
        self.busy: set[tuple[str, ...]] = set()

    def ensure(self, environment: Environment, family: str) -> dict[str, str]:
        with self.lock:
            self.calls["ensure", environment.id, family] += 1
        time.sleep(0.02)  # a server's round trip: gives concurrent requests the chance to race
        return {"username": f"e_{environment.id}", "password": secrets.token_urlsafe(24)}

    def put(self, environment: Environment, login: dict[str, str], kind: str, name: str, properties: Any):
        if properties.get("refuse"):
            raise ValueError("refused by the server")
        key = ("put", environment.id, kind, name)
        with self.lock:
            if key in self.busy:  # a real server would make it twice, or fail one of them
                raise RuntimeError(f"two makes of {kind} {name} at once")
            self.busy.add(key)
            self.calls[key] += 1
        time.sleep(0.02)
        with self.lock:
            self.busy.discard(key)
        return {"host": "127.0.0.1", "port": 1, "name": f"e_{environment.id}_{name}"}

    def delete(self, environment: Environment, kind: str, name: str) -> None:
        with self.lock:
            self.calls["delete", environment.id, kind, name] += 1

    def remove(self, environment: Environment, family: str) -> None:
        with self.lock:
            self.calls["remove", environment.id, family] += 1

    def usage(self, environment: Environment) -> int:
        return self.used


class Host(InProcessServer):
    """The API served by uvicorn on 127.0.0.1 (as ``skyrig-hosted serve`` serves it)."""

    def __init__(self, admin_dsn: str, data: Path, quotas: Quotas) -> None:
        self.data = data
        self.admin_dsn = admin_dsn
        self.key = HostKey.load(data)
        self.store = Store.open(admin_dsn, self.key, pool_size=8)
        self.admin = admin_token(data)
        self.store.keep_admin_token(self.admin)
        self.tenancy = RecordingTenancy()
        self.api = HostApi(self.store, self.tenancy, quotas)
        super().__init__(self.api.application())

    def close(self) -> None:
        super().close()
        self.store.close()


@pytest.fixture(scope="module")
def host(admin_dsn: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Host]:
    served = Host(admin_dsn, tmp_path_factory.mktemp("data"), Quotas())
    yield served
    served.close()


@pytest.fixture
def app(host: Host) -> tuple[str, str]:
    """A new app: its name and token."""
    name = f"app-{secrets.token_hex(4)}"
    answer = host.client(host.admin).post("/apps", json={"name": name})
    assert answer.status_code == 201, answer.text
    return name, answer.json()["token"]


def _error(answer: httpx.Response, status: int, code: str | None = None) -> str:
    assert answer.status_code == status, answer.text
    error = answer.json()["error"]
    assert set(error) == {"code", "message"} and error["message"], error
    if code is not None:
        assert error["code"] == code, error
    return error["message"]


def test_the_admin_makes_apps_and_only_the_admin(host: Host, app: tuple[str, str]):
    name, token = app
    assert host.client(host.admin).get(f"/apps/{name}").json() == {"app": {"name": name, "envs": []}}
    assert host.client(token).get(f"/apps/{name}").status_code == 200
    _error(host.client(token).post("/apps", json={"name": "mine"}), 403, "forbidden")
    _error(host.client(token).delete(f"/apps/{name}"), 403, "forbidden")
    assert "exists" in _error(host.client(host.admin).post("/apps", json={"name": name}), 409, "conflict")


def test_a_new_admin_token_revokes_the_old_one(host: Host):
    """Rotating the admin token: remove DATA/admin-token and start the host again."""
    from skyrig_hosted.host.tokens import new_token

    replacement = new_token("admin")
    host.store.keep_admin_token(replacement)
    try:
        _error(host.client(host.admin).get("/apps/nope"), 401)
        _error(host.client(replacement).get("/apps/nope"), 404)
    finally:
        host.store.keep_admin_token(host.admin)
    _error(host.client(replacement).get("/apps/nope"), 401)


def test_no_token_or_an_unknown_one_is_401(host: Host, app: tuple[str, str]):
    name, _ = app
    answer = host.client().get(f"/apps/{name}")
    assert "bearer" in _error(answer, 401, "unauthorized").lower()
    assert answer.headers["www-authenticate"] == "Bearer"
    _error(host.client("skh_app_" + secrets.token_urlsafe(32)).get(f"/apps/{name}"), 401)
    _error(host.client().get(f"/apps/{name}", headers={"Authorization": "Basic eDp5"}), 401)


def test_another_apps_token_is_refused_403_everywhere(host: Host, app: tuple[str, str]):
    name, token = app
    other, other_token = host.client(host.admin).post("/apps", json={"name": f"o-{name}"}).json().values()
    mine = host.client(token)
    env = mine.put(f"/apps/{name}/envs/dev", json={"type": "development"}).json()["env"]
    mine.put(f"/apps/{name}/envs/dev/resources/database/main", json={"properties": {}})
    mine.put(f"/apps/{name}/envs/dev/secrets/API_KEY", json={"value": "v"})
    theirs = host.client(other_token)
    base = f"/apps/{name}/envs/dev"
    for method, path, body in [
        ("GET", f"/apps/{name}", None),
        ("GET", f"/apps/{name}/envs", None),
        ("PUT", base, {"type": "development"}),
        ("GET", base, None),
        ("DELETE", base, None),
        ("GET", f"{base}/resources", None),
        ("PUT", f"{base}/resources/database/main", {"properties": {}}),
        ("GET", f"{base}/resources/database/main", None),
        ("DELETE", f"{base}/resources/database/main", None),
        ("GET", f"{base}/credentials/database/main", None),
        ("PUT", f"{base}/secrets/API_KEY", {"value": "stolen"}),
        ("GET", f"{base}/secrets/API_KEY", None),
    ]:
        answer = theirs.request(method, path, json=body)
        assert f"not app {name!r}" in _error(answer, 403, "forbidden"), (method, path)
    # the other app's runtime token too, for what runtime tokens may read
    runtime = theirs.put(f"/apps/{other['name']}/envs/dev", json={"type": "development"}).json()["env"]
    assert runtime["id"] != env["id"]
    stranger = host.client(runtime["runtime_token"])
    _error(stranger.get(f"{base}/credentials/database/main"), 403)
    _error(stranger.get(f"{base}/secrets/API_KEY"), 403)
    assert mine.get(f"{base}/secrets/API_KEY").json() == {"value": "v"}, "nothing was overwritten"


def test_a_runtime_token_reads_its_own_environments_credentials_and_secrets_only(
    host: Host, app: tuple[str, str]
):
    name, token = app
    deployer = host.client(token)
    made = deployer.put(f"/apps/{name}/envs/pr:7", json={"type": "preview"})
    assert made.status_code == 201
    runtime = host.client(made.json()["env"]["runtime_token"])
    deployer.put(f"/apps/{name}/envs/pr:8", json={"type": "preview"})
    for env in ("pr:7", "pr:8"):
        assert deployer.put(f"/apps/{name}/envs/{env}/resources/cache/c", json={}).status_code == 201
        deployer.put(f"/apps/{name}/envs/{env}/secrets/TOKEN", json={"value": f"secret of {env}"})
    credentials = runtime.get(f"/apps/{name}/envs/pr:7/credentials/cache/c")
    assert credentials.status_code == 200 and set(credentials.json()) == {"username", "password"}
    assert deployer.get(f"/apps/{name}/envs/pr:7/credentials/cache/c").json() == credentials.json()
    assert runtime.get(f"/apps/{name}/envs/pr:7/secrets/TOKEN").json() == {"value": "secret of pr:7"}
    assert "pr:8" in _error(runtime.get(f"/apps/{name}/envs/pr:8/credentials/cache/c"), 403)
    _error(runtime.get(f"/apps/{name}/envs/pr:8/secrets/TOKEN"), 403)
    # it deploys nothing and reads no other route
    assert "runtime token" in _error(runtime.put(f"/apps/{name}/envs/pr:7/resources/cache/d", json={}), 403)
    _error(runtime.get(f"/apps/{name}/envs/pr:7/resources"), 403)
    _error(runtime.put(f"/apps/{name}/envs/pr:7/secrets/TOKEN", json={"value": "x"}), 403)


def test_a_preview_reads_its_templates_secret_values_where_it_has_none_of_its_own(
    host: Host, app: tuple[str, str]
):
    name, token = app
    deployer = host.client(token)
    deployer.put(f"/apps/{name}/envs/preview", json={"type": "preview"})
    deployer.put(f"/apps/{name}/envs/preview/secrets/STRIPE", json={"value": "sk_test_template"})
    deployer.put(f"/apps/{name}/envs/preview/secrets/SHARED", json={"value": "from the template"})
    made = deployer.put(f"/apps/{name}/envs/pr:9", json={"type": "preview", "template": "preview"})
    assert made.status_code == 201 and made.json()["env"]["template"] == "preview"
    runtime = host.client(made.json()["env"]["runtime_token"])
    deployer.put(f"/apps/{name}/envs/pr:9/secrets/SHARED", json={"value": "the preview's own"})
    assert runtime.get(f"/apps/{name}/envs/pr:9/secrets/STRIPE").json() == {"value": "sk_test_template"}
    assert runtime.get(f"/apps/{name}/envs/pr:9/secrets/SHARED").json() == {"value": "the preview's own"}
    # the runtime token still reads no other environment directly, the template included
    _error(runtime.get(f"/apps/{name}/envs/preview/secrets/STRIPE"), 403)
    # an environment without a template reads its own values only; the template is applied in place
    deployer.put(f"/apps/{name}/envs/pr:10", json={"type": "preview"})
    _error(deployer.get(f"/apps/{name}/envs/pr:10/secrets/STRIPE"), 404)
    assert "template" not in deployer.get(f"/apps/{name}/envs/pr:10").json()["env"]
    deployer.put(f"/apps/{name}/envs/pr:10", json={"type": "preview", "template": "preview"})
    assert deployer.get(f"/apps/{name}/envs/pr:10/secrets/STRIPE").json() == {"value": "sk_test_template"}
    assert deployer.get(f"/apps/{name}/envs/pr:10").json()["env"]["template"] == "preview"
    _error(deployer.put(f"/apps/{name}/envs/pr:11", json={"type": "preview", "template": "pr:11"}), 422)


def test_bad_requests_are_400_and_bad_bodies_422(host: Host, app: tuple[str, str]):
    name, token = app
    client = host.client(token)
    base = f"/apps/{name}/envs"
    assert "not JSON" in _error(client.put(f"{base}/dev", content=b"{type:"), 400, "bad_json")
    assert "'type'" in _error(client.put(f"{base}/dev", json={}), 422, "invalid")
    assert "JSON object" in _error(client.put(f"{base}/dev", json=["development"]), 422)
    assert "preview, development" in _error(client.put(f"{base}/dev", json={"type": "production"}), 422)
    assert "'typo'" in _error(client.put(f"{base}/dev", json={"type": "preview", "typo": 1}), 422)
    assert "string" in _error(client.put(f"{base}/dev", json={"type": 3}), 422)
    assert "environment 'Dev!'" in _error(
        client.put(f"{base}/Dev!", json={"type": "preview"}), 400, "bad_name"
    )
    client.put(f"{base}/dev", json={"type": "development"})
    assert "'queue'" in _error(client.put(f"{base}/dev/resources/queue/q", json={}), 400, "bad_kind")
    _error(client.put(f"{base}/dev/resources/database/a%20b", json={}), 400, "bad_name")
    _error(client.put(f"{base}/dev/resources/database/d", json={"properties": [1]}), 422)
    _error(client.put(f"{base}/dev/secrets/S", json={"value": 1}), 422)
    _error(client.put(f"{base}/dev/secrets/S", json={}), 422)
    assert "refused by the server" in _error(
        client.put(f"{base}/dev/resources/database/d", json={"properties": {"refuse": True}}), 422
    )
    _error(client.get(f"{base}/dev/resources/database/d"), 404)  # a refused resource is not recorded
    too_large = client.put(f"{base}/dev/secrets/BIG", json={"value": "x" * (2 * 1024 * 1024)})
    assert "too large" in _error(too_large, 413)
    _error(host.client(host.admin).post("/apps", json={"name": "Has Spaces"}), 422)
    _error(host.client(host.admin).post("/apps", json={}), 422)
    # a type other than the environment's is a contradiction
    assert "'development'" in _error(client.put(f"{base}/dev", json={"type": "preview"}), 409, "conflict")


def test_what_does_not_exist_is_404(host: Host, app: tuple[str, str]):
    name, token = app
    admin, client = host.client(host.admin), host.client(token)
    assert "no app 'nope'" in _error(admin.get("/apps/nope"), 404, "not_found")
    _error(admin.put("/apps/nope/envs/dev", json={"type": "preview"}), 404)
    assert "no environment 'dev'" in _error(client.get(f"/apps/{name}/envs/dev"), 404)
    _error(client.put(f"/apps/{name}/envs/dev/resources/database/d", json={}), 404)
    client.put(f"/apps/{name}/envs/dev", json={"type": "preview"})
    _error(client.get(f"/apps/{name}/envs/dev/resources/database/d"), 404)
    _error(client.get(f"/apps/{name}/envs/dev/credentials/database/d"), 404)
    _error(client.get(f"/apps/{name}/envs/dev/secrets/NONE"), 404)
    _error(client.get("/nothing/here"), 404)
    _error(client.post(f"/apps/{name}"), 405)


def test_puts_are_idempotent_and_deletes_answer_204(host: Host, app: tuple[str, str]):
    name, token = app
    client = host.client(token)
    env = f"/apps/{name}/envs/dev"
    first = client.put(env, json={"type": "development"})
    assert first.status_code == 201 and first.json()["env"]["runtime_token"].startswith("skh_runtime_")
    again = client.put(env, json={"type": "development"})
    assert again.status_code == 200
    assert again.json() == {"env": {"name": "dev", "type": "development", "id": first.json()["env"]["id"]}}
    assert client.get(env).json() == again.json()
    resource = f"{env}/resources/database/orders"
    made = client.put(resource, json={"properties": {"size": "small"}})
    assert made.status_code == 201
    body = made.json()["resource"]
    assert body["kind"] == "database" and body["properties"] == {"size": "small"}
    assert body["outputs"]["credentials"] == f"hosted:{name}/dev/database/orders"
    assert "password" not in str(body)
    assert client.put(resource, json={"properties": {"size": "small"}}).json() == made.json()
    assert client.put(resource, json={"properties": {"size": "small"}}).status_code == 200
    assert client.get(resource).json() == made.json()
    secret = client.put(f"{env}/resources/secret/API_KEY", json={}).json()["resource"]
    assert secret["outputs"] == {"reference": f"hosted:{name}/dev/secret/API_KEY"}
    listed = client.get(f"{env}/resources").json()["resources"]
    assert [(r["kind"], r["name"]) for r in listed] == [("database", "orders"), ("secret", "API_KEY")]
    environment = host.store.environment(name, "dev")
    assert environment is not None
    assert host.tenancy.calls["ensure", environment.id, "postgres"] == 1, "one login, made once"
    assert client.delete(resource).status_code == 204
    assert client.delete(resource).status_code == 204
    _error(client.get(resource), 404)
    assert host.tenancy.calls["delete", environment.id, "database", "orders"] == 2


def test_deleting_an_environment_removes_it_on_every_server_and_its_token_stops_working(
    host: Host, app: tuple[str, str]
):
    name, token = app
    client = host.client(token)
    env = client.put(f"/apps/{name}/envs/pr:1", json={"type": "preview"}).json()["env"]
    client.put(f"/apps/{name}/envs/pr:1/resources/bucket/files", json={})
    client.put(f"/apps/{name}/envs/pr:2", json={"type": "preview"})
    assert client.delete(f"/apps/{name}/envs/pr:1").status_code == 204
    assert all(host.tenancy.calls["remove", env["id"], family] == 1 for family in FAMILIES)
    _error(client.get(f"/apps/{name}/envs/pr:1"), 404)
    _error(host.client(env["runtime_token"]).get(f"/apps/{name}/envs/pr:1/secrets/X"), 401)
    assert client.delete(f"/apps/{name}/envs/pr:1").status_code == 204, "absent: 204 again"
    assert [e["name"] for e in client.get(f"/apps/{name}/envs").json()["envs"]] == ["pr:2"]
    # deleting the app deletes its environments and its token
    assert host.client(host.admin).delete(f"/apps/{name}").status_code == 204
    _error(client.get(f"/apps/{name}"), 401)
    _error(host.client(host.admin).get(f"/apps/{name}"), 404)


def test_the_environments_quota_holds_under_20_concurrent_creations(host: Host, app: tuple[str, str]):
    name, token = app
    client = host.client(token)
    for number in range(12):
        assert client.put(f"/apps/{name}/envs/pr:{number}", json={"type": "preview"}).status_code == 201

    def create(number: int) -> httpx.Response:
        with host.client(token) as own:
            return own.put(f"/apps/{name}/envs/pr:{100 + number}", json={"type": "preview"})

    with ThreadPoolExecutor(20) as pool:
        answers = list(pool.map(create, range(20)))
    statuses = Counter(answer.status_code for answer in answers)
    assert statuses == {201: 8, 429: 12}, statuses
    message = _error(next(a for a in answers if a.status_code == 429), 429, "quota_exceeded")
    assert "environments per app" in message and "20" in message
    assert len(client.get(f"/apps/{name}/envs").json()["envs"]) == 20
    # an existing environment is still answered: the quota counts new ones
    assert client.put(f"/apps/{name}/envs/pr:0", json={"type": "preview"}).status_code == 200


def test_one_login_per_environment_and_family_under_concurrent_resources(host: Host, app: tuple[str, str]):
    name, token = app
    client = host.client(token)
    env = client.put(f"/apps/{name}/envs/dev", json={"type": "development"}).json()["env"]

    def put(number: int) -> int:
        with host.client(token) as own:
            return own.put(f"/apps/{name}/envs/dev/resources/database/db{number}", json={}).status_code

    with ThreadPoolExecutor(10) as pool:
        assert list(pool.map(put, range(10))) == [201] * 10
    assert host.tenancy.calls["ensure", env["id"], "postgres"] == 1
    logins = {str(client.get(f"/apps/{name}/envs/dev/credentials/database/db{n}").json()) for n in range(10)}
    assert len(logins) == 1


def test_concurrent_puts_of_one_new_resource_make_it_once(host: Host, app: tuple[str, str]):
    name, token = app
    env = host.client(token).put(f"/apps/{name}/envs/dev", json={"type": "development"}).json()["env"]

    def put(_: int) -> int:
        with host.client(token) as own:
            return own.put(f"/apps/{name}/envs/dev/resources/bucket/shared", json={}).status_code

    with ThreadPoolExecutor(8) as pool:
        assert sorted(pool.map(put, range(8))) == [200] * 7 + [201]
    assert host.tenancy.calls["put", env["id"], "bucket", "shared"] == 8, "each PUT applied, one at a time"


def test_the_services_quota_holds_in_the_store_under_20_concurrent_requests(host: Host, app: tuple[str, str]):
    """Services arrive with the supervisor; the store's check-and-insert for them is here already."""
    from skyrig_hosted.host.quotas import QuotaExceeded

    name, _ = app
    environment, _ = host.store.put_environment(name, "dev", "development", 20)

    def begin(number: int) -> str:
        try:
            host.store.begin_resource(environment, "service", f"web{number}", {}, limit=10)
        except QuotaExceeded as error:
            return str(error)
        return f"web{number}"

    with ThreadPoolExecutor(20) as pool:
        outcomes = list(pool.map(begin, range(20)))
    refused = "quota services per environment reached: the limit is 10"
    assert outcomes.count(refused) == 10
    made = [outcome for outcome in outcomes if outcome != refused]
    assert len(made) == 10
    # one that exists is updated (not new), still under the quota
    assert host.store.begin_resource(environment, "service", made[0], {"again": True}, limit=10) is False


def test_the_storage_quota_names_itself_and_its_limit(host: Host, app: tuple[str, str]):
    name, token = app
    client = host.client(token)
    client.put(f"/apps/{name}/envs/dev", json={"type": "development"})
    client.put(f"/apps/{name}/envs/dev/resources/database/kept", json={})
    host.tenancy.used = GIB
    try:
        message = _error(client.put(f"/apps/{name}/envs/dev/resources/bucket/b", json={}), 429)
        assert message == "quota storage per environment reached: the limit is 1 GiB"
        # what exists may still be applied again; caches and secrets hold no stored data
        assert client.put(f"/apps/{name}/envs/dev/resources/database/kept", json={}).status_code == 200
        assert client.put(f"/apps/{name}/envs/dev/resources/cache/c", json={}).status_code == 201
    finally:
        host.tenancy.used = 0


def test_the_store_holds_no_token_password_or_secret_value_in_clear(host: Host, app: tuple[str, str]):
    name, token = app
    client = host.client(token)
    runtime = client.put(f"/apps/{name}/envs/dev", json={"type": "development"}).json()["env"][
        "runtime_token"
    ]
    client.put(f"/apps/{name}/envs/dev/resources/database/main", json={})
    client.put(f"/apps/{name}/envs/dev/resources/cache/main", json={})
    value = "the-secret-value-" + secrets.token_hex(8)
    client.put(f"/apps/{name}/envs/dev/secrets/STRIPE", json={"value": value})
    passwords = [
        client.get(f"/apps/{name}/envs/dev/credentials/{kind}/main").json()["password"]
        for kind in ("database", "cache")
    ]
    clear = [host.admin, token, runtime, value, *passwords]
    with psycopg.connect(database_dsn(host.admin_dsn)) as connection:
        tables = [
            row[0]
            for row in connection.execute(
                "SELECT tablename FROM pg_tables WHERE schemaname = 'public'"
            ).fetchall()
        ]
        assert {"apps", "tokens", "environments", "logins", "resources", "secrets"} <= set(tables)
        dump = "\n".join(
            str(row) for table in tables for row in connection.execute(f"SELECT * FROM {table}").fetchall()
        )
    for text in clear:
        assert text not in dump
    # tokens are kept as their SHA-256, and the key and the admin token are the owner's alone
    import hashlib

    assert hashlib.sha256(token.encode()).hexdigest() in dump
    assert (host.data / "host.key").stat().st_mode & 0o777 == 0o600
    assert (host.data / "admin-token").stat().st_mode & 0o777 == 0o600
    assert "hidden" in repr(host.key)
    assert DATABASE == "skyrig_host"
