"""The Neon provider against the FAKE Neon API (skyrig_neon.fake, not Neon: Neon has no emulator), whose
branches are real PostgreSQL servers: an app of one service (on the memory provider) and one SQLDatabase
with migrations, in staging (development), pr-7 (a preview branched from staging) and prod (production),
driven through the skyrig command as a user would, its database reached through the provider's data plane.

What a user relies on: a preview starts with staging's rows and its writes stay in it; a migration added
in the preview applies only there; destroying the preview leaves staging whole; a console change to the
compute's autoscaling is adopted, never reverted; a rotated role password is picked up by the data plane's
next connection; the password is in no state, plan, JSON output or log; production is the project's
protected default branch, which a destroy without --include-data keeps with its data.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from skyrig.cli.testing import invoke
from skyrig.runtime.pools import sync_pool
from skyrig_neon import names, provider
from skyrig_neon.conformance import settings as fake_settings

SERVICE = 'from skyrig import Service\n\nservice = Service("shop", app="shop.web:app")\n'
WEB = "async def app(scope, receive, send):\n    pass\n"
RESOURCES = 'from skyrig import SQLDatabase\n\norders = SQLDatabase("orders", migrations="./migrations")\n'
USE = "from .resources import orders\n\n\ndef use() -> None:\n    orders.connect()\n"
FIRST = "CREATE TABLE orders (id serial PRIMARY KEY, item text NOT NULL);\n"
ENVIRONMENTS = (
    ("staging", "development", {}),
    ("pr-7", "preview", {"branch_from": "staging"}),
    ("prod", "production", {}),
)


class App:
    """The app in a folder of its own (its name unique per test: one Neon project each on the shared
    FAKE), with the skyrig command, its runtime config and Neon's console (the API, as a person uses it)."""

    def __init__(self, root: Path, neon: Any) -> None:
        self.root = root
        self.neon = neon
        self.name = f"shop-{uuid.uuid4().hex[:6]}"
        self.outputs: list[str] = []
        """Everything every command printed (the password must be in none of it)."""
        self.console = httpx.Client(
            base_url=neon.api_url, headers={"Authorization": f"Bearer {neon.api_key}"}, timeout=30
        )

    def write(self, environments: Any = ENVIRONMENTS, **settings: Any) -> None:
        """The app's files and ``skyrig.toml`` (``settings`` in every environment's ``[env.NAME.neon]``)."""
        files = {
            "shop/__init__.py": SERVICE,
            "shop/web.py": WEB,
            "shop/resources.py": RESOURCES,
            "shop/use.py": USE,
            "shop/migrations/0001_orders.up.sql": FIRST,
        }
        lines = [f'app = "{self.name}"']
        for env, kind, extra in environments:
            lines += [f"[env.{env}]", f'type = "{kind}"', 'provider = "memory"', 'sql = "neon"']
            lines.append(f"[env.{env}.neon]")
            for key, value in {**fake_settings(self.neon.api_url), **settings, **extra}.items():
                lines.append(f"{key} = {json.dumps(value)}")
        files["skyrig.toml"] = "\n".join(lines) + "\n"
        for name, text in files.items():
            path = self.root / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)

    # -- the skyrig command -------------------------------------------------------------------------------

    def cli(self, *args: str) -> Any:
        result = invoke([*args, "-C", str(self.root)])
        self.outputs += [result.out, result.err]
        return result

    def ok(self, *args: str) -> Any:
        result = self.cli(*args)
        assert result.code == 0, f"skyrig {' '.join(args)} exited {result.code}:\n{result.text}"
        return result

    def apply(self, env: str) -> Any:
        return self.ok("apply", "--env", env, "--yes")

    def plan(self, env: str) -> dict[str, Any]:
        return json.loads(self.ok("plan", "--env", env, "--json").out)

    @staticmethod
    def changes(plan: dict[str, Any]) -> list[dict[str, Any]]:
        return [c for c in plan["changes"] if c["action"] not in ("noop", "retain")]

    def recorded(self, env: str) -> dict[str, Any]:
        """Node id -> its record in state."""
        from skyrig.config import load_config
        from skyrig.engine.session import Session

        session = Session(load_config(self.root), env)
        try:
            return dict(session.store.nodes(env))
        finally:
            session.store.close()

    # -- the app's view: the data plane ---------------------------------------------------------------------

    def entry(self, env: str) -> dict[str, Any]:
        config = json.loads((self.root / ".skyrig" / "runtime" / env / "shop.json").read_text())
        return config["resources"]["sql_database/orders"]

    def database(self, env: str) -> Any:
        """The provider's data plane for ``orders`` in ``env``, from the runtime config apply wrote."""
        return provider.data_plane("sql_database", self.entry(env), {"environment": env})

    def rows(self, env: str) -> list[str]:
        with self.database(env).connect() as connection:
            return [row[0] for row in connection.execute("SELECT item FROM orders ORDER BY id")]

    def insert(self, env: str, *items: str) -> None:
        with self.database(env).connect() as connection:
            for item in items:
                connection.execute("INSERT INTO orders (item) VALUES (%s)", (item,))

    # -- Neon's console --------------------------------------------------------------------------------------

    def project(self) -> dict[str, Any]:
        found = self.console.get("/projects", params={"search": self.name}).json()["projects"]
        [project] = [p for p in found if p["name"] == self.name]
        return project

    def branches(self) -> dict[str, dict[str, Any]]:
        """Branch name -> branch."""
        listed = self.console.get(f"/projects/{self.project()['id']}/branches").json()["branches"]
        return {b["name"]: b for b in listed}

    def password(self, env: str) -> str:
        entry = self.entry(env)
        project, branch, role = names.parse_password_reference(entry["password"])
        path = f"/projects/{project}/branches/{branch}/roles/{role}/reveal_password"
        return self.console.get(path).json()["password"]


@pytest.fixture
def app(tmp_path: Path, fake_neon: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[App]:
    monkeypatch.setenv("NEON_API_KEY", fake_neon.api_key)
    monkeypatch.setenv("SKYRIG_RETRY_BASE_MS", "1")
    made = App(tmp_path / "app", fake_neon)
    made.write()
    yield made
    made.console.close()


def test_a_preview_branched_from_staging_has_its_rows_goes_its_own_way_and_goes_alone(
    app: App, fake_neon: Any
) -> None:
    fake_neon.calls.clear()
    app.apply("staging")
    mutations = [call for call in fake_neon.calls if call[0] != "GET"]
    assert len(mutations) == len(set(mutations)) == 5, f"mutations retried (423 Locked?): {mutations}"
    app.insert("staging", "from staging")
    fake_neon.calls.clear()
    assert "nothing to do" in app.apply("staging").text
    assert [call for call in fake_neon.calls if call[0] != "GET"] == [], "a no-change apply changed Neon"

    app.apply("pr-7")
    branches = app.branches()
    assert branches["pr-7"]["parent_id"] == branches["staging"]["id"], "the preview is not staging's branch"
    assert app.rows("pr-7") == ["from staging"], "the preview lacks staging's rows"
    app.insert("pr-7", "only in the preview")
    assert app.rows("staging") == ["from staging"], "a write to the preview reached staging"
    assert app.entry("pr-7")["password"].startswith("neon:"), "a password in the runtime config"

    # a migration added while working on the preview applies to the preview alone
    (app.root / "shop" / "migrations" / "0002_amount.up.sql").write_text(
        "ALTER TABLE orders ADD COLUMN amount integer NOT NULL DEFAULT 0;\n"
    )
    app.apply("pr-7")
    with app.database("pr-7").connect() as connection:
        assert connection.execute("SELECT item, amount FROM orders ORDER BY id").fetchall() == [
            ("from staging", 0),
            ("only in the preview", 0),
        ]
    with app.database("staging").connect() as connection:
        columns = connection.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_name = 'orders'"
        ).fetchall()
        applied = connection.execute("SELECT number FROM skyrig_migrations ORDER BY number").fetchall()
    assert ("amount",) not in columns and applied == [(1,)], "the preview's migration reached staging"
    [pending] = app.changes(app.plan("staging"))
    assert pending["node"] == names.database_id("orders") and pending["action"] == "update"
    assert app.changes(app.plan("pr-7")) == []

    # destroying the preview deletes its branch, and only it
    app.ok("destroy", "--env", "pr-7", "--yes", "--include-data")
    assert "pr-7" not in app.branches()
    assert app.recorded("pr-7") == {}
    assert app.rows("staging") == ["from staging"], "destroying the preview touched staging's data"
    assert app.changes(app.plan("staging")) == [pending]


def test_a_parent_with_a_preview_is_not_destroyed_from_under_it(app: App) -> None:
    app.apply("staging")
    app.apply("pr-7")
    refused = app.cli("destroy", "--env", "staging", "--yes", "--include-data")
    assert refused.code != 0 and "Traceback" not in refused.text
    assert "pr-7" in refused.text and "destroy those environments first" in refused.text, refused.text
    assert {"staging", "pr-7"} <= set(app.branches()), "a branch went with its parent"
    assert app.rows("pr-7") == [], "the preview's data went with its parent"

    # the preview made from production's branch instead: replaced, with what is on it, in one apply
    staging, _, prod = ENVIRONMENTS
    app.write((staging, ("pr-7", "preview", {}), prod))
    replaced = {c["node"] for c in app.changes(app.plan("pr-7")) if c["action"] == "replace"}
    assert replaced == {names.BRANCH_ID, names.ENDPOINT_ID, names.ROLE_ID, names.database_id("orders")}
    app.apply("pr-7")
    assert app.changes(app.plan("pr-7")) == [], "replacing the preview's branch took more than one apply"
    branches = app.branches()
    [default] = [b for b in branches.values() if b["default"]]
    assert branches["pr-7"]["parent_id"] == default["id"]
    assert app.rows("pr-7") == []
    app.ok("destroy", "--env", "staging", "--yes", "--include-data")  # nothing is branched from it now
    app.ok("destroy", "--env", "pr-7", "--yes", "--include-data")
    assert not {"staging", "pr-7"} & set(app.branches())


def test_console_autoscaling_is_adopted_and_a_rotated_password_is_picked_up_and_never_shown(
    app: App, fake_neon: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    app.apply("staging")
    endpoint_id = app.recorded("staging")[names.ENDPOINT_ID].provider_id
    project = app.project()["id"]
    endpoint = app.console.get(f"/projects/{project}/endpoints/{endpoint_id}").json()["endpoint"]
    assert (endpoint["autoscaling_limit_min_cu"], endpoint["autoscaling_limit_max_cu"]) == (0.25, 2)
    assert endpoint["suspend_timeout_seconds"] == 300, "a development endpoint does not scale to zero"

    # someone raises the limits in Neon's console: adopted, never reverted
    changed = {"autoscaling_limit_max_cu": 3, "suspend_timeout_seconds": 600}
    answer = app.console.patch(f"/projects/{project}/endpoints/{endpoint_id}", json={"endpoint": changed})
    assert answer.status_code == 200, answer.text
    fake_neon.settle()
    plan = app.plan("staging")
    assert app.changes(plan) == [], "a console change is to be adopted, not reverted"
    [adopting] = [c for c in plan["changes"] if c["node"] == names.ENDPOINT_ID]
    assert adopting["adopt"] == {"autoscaling_limit_max_cu": 3.0, "suspend_timeout_seconds": 600}
    app.apply("staging")
    observed = app.recorded("staging")[names.ENDPOINT_ID].observed
    assert observed["autoscaling_limit_max_cu"] == 3.0 and observed["suspend_timeout_seconds"] == 600
    endpoint = app.console.get(f"/projects/{project}/endpoints/{endpoint_id}").json()["endpoint"]
    assert endpoint["autoscaling_limit_max_cu"] == 3, "the console's change was reverted"
    assert app.changes(app.plan("staging")) == []

    # the role's password is rotated in Neon while a service runs: its next connection reads it again
    database = app.database("staging")
    app.insert("staging", "before the rotation")
    pool = sync_pool(f"{app.name}-rotation", database, min_size=0, max_size=2)
    with pool.connection():
        pass  # the old password is what this process, and its pool, hold now
    before = app.password("staging")
    project_, branch, role = names.parse_password_reference(app.entry("staging")["password"])
    reset = app.console.post(f"/projects/{project_}/branches/{branch}/roles/{role}/reset_password")
    assert reset.status_code == 200, reset.text
    fake_neon.settle()
    after = app.password("staging")
    assert after != before
    reveals = fake_neon.count(
        "GET", "/projects/{project_id}/branches/{branch_id}/roles/{role_name}/reveal_password"
    )
    with pool.connection() as held, pool.connection() as made_now:  # the second is a new connection
        for connection in (held, made_now):
            assert connection.execute("SELECT item FROM orders").fetchall() == [("before the rotation",)]
    pool.close()
    with database.connect() as connection:
        assert connection.execute("SELECT item FROM orders").fetchall() == [("before the rotation",)]
    assert (
        fake_neon.count(
            "GET", "/projects/{project_id}/branches/{branch_id}/roles/{role_name}/reveal_password"
        )
        == reveals + 1
    ), "the data plane did not read the rotated password once"
    assert app.changes(app.plan("staging")) == [], "the applying machine did not pick up the new password"

    # the password, before or after, is in no state, runtime config, plan, JSON output or log
    app.ok("status", "--env", "staging", "--json")
    app.ok("plan", "--env", "staging")
    stored = b"".join(p.read_bytes() for p in (app.root / ".skyrig").rglob("*") if p.is_file())
    shown = "\n".join(app.outputs) + caplog.text
    for password in (before, after):
        assert password.encode() not in stored, "a password is in state or a runtime config"
        assert password not in shown, "a password was printed or logged"


def test_production_is_the_protected_default_branch_and_a_destroy_without_data_keeps_it(app: App) -> None:
    app.apply("prod")
    project = app.project()
    [default] = [b for b in app.branches().values() if b["default"]]
    assert app.recorded("prod")[names.BRANCH_ID].provider_id == default["id"]
    assert default["protected"] is True, "production's branch is not protected"
    endpoint = app.console.get(f"/projects/{project['id']}/branches/{default['id']}/endpoints").json()
    [read_write] = endpoint["endpoints"]
    assert (read_write["autoscaling_limit_min_cu"], read_write["autoscaling_limit_max_cu"]) == (1, 4)
    assert read_write["suspend_timeout_seconds"] == -1, "production scales to zero"
    app.insert("prod", "a real order")

    # its protection lifted in the console: drift, restored by the next apply
    lifted = app.console.patch(
        f"/projects/{project['id']}/branches/{default['id']}", json={"branch": {"protected": False}}
    )
    assert lifted.status_code == 200, lifted.text
    [restoring] = app.changes(app.plan("prod"))
    assert restoring["node"] == names.BRANCH_ID and restoring["drift"] == ["protected"]
    app.apply("prod")
    assert app.branches()[default["name"]]["protected"] is True

    destroyed = app.ok("destroy", "--env", "prod", "--yes")
    assert "--include-data" in destroyed.text
    kept = app.recorded("prod")
    assert set(kept) == {names.BRANCH_ID, names.ROLE_ID, names.database_id("orders")}, sorted(kept)
    refused = app.console.delete(f"/projects/{project['id']}/branches/{default['id']}")
    assert refused.status_code == 400, "Neon deletes production's branch"
    databases = app.console.get(f"/projects/{project['id']}/branches/{default['id']}/databases").json()
    assert "orders" in [d["name"] for d in databases["databases"]]

    app.apply("prod")  # its compute comes back, and the data is where it was
    assert app.rows("prod") == ["a real order"]
    assert app.changes(app.plan("prod")) == []

    # with --include-data the databases and the role go; the default branch stays, as Neon wants
    app.ok("destroy", "--env", "prod", "--yes", "--include-data")
    assert app.recorded("prod") == {}
    assert provider.inventory(_context(app, "prod")) == []
    assert [b["id"] for b in app.branches().values() if b["default"]] == [default["id"]]


def test_a_missing_api_key_is_a_clear_error(app: App, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NEON_API_KEY")
    result = app.cli("apply", "--env", "staging", "--yes")
    assert result.code == 1 and "Traceback" not in result.text, result.text
    assert "NEON_API_KEY" in result.err and "skyrig.toml" in result.err


def test_a_configured_project_is_used_and_never_made(app: App, fake_neon: Any) -> None:
    answer = app.console.post("/projects", json={"project": {"name": "made-in-the-console"}})
    assert answer.status_code == 201, answer.text
    fake_neon.settle()
    project = answer.json()["project"]["id"]
    app.write(project_id="no-such-project")
    missing = app.cli("apply", "--env", "staging", "--yes")
    assert missing.code != 0 and "Traceback" not in missing.text, missing.text
    assert "no project 'no-such-project' (project_id in the neon settings of environment 'staging')" in (
        missing.text
    )

    app.write(project_id=project)
    fake_neon.calls.clear()
    app.apply("staging")
    assert fake_neon.count("POST", "/projects") == 0, "a project was made beside the configured one"
    listed = app.console.get(f"/projects/{project}/branches").json()["branches"]
    assert "staging" in [b["name"] for b in listed]
    app.ok("destroy", "--env", "staging", "--yes", "--include-data")
    assert app.console.get(f"/projects/{project}").status_code == 200, "destroy deleted the project"


def test_the_client_names_the_call_and_never_the_key(fake_neon: Any) -> None:
    from skyrig.provider import NotFound, ProviderError
    from skyrig_neon.api import CALLS, NeonClient

    wrong = NeonClient(fake_neon.api_url, "not-the-key", max_attempts=1)
    with pytest.raises(ProviderError) as refused:
        wrong.projects_named("anything")
    assert "NEON_API_KEY" in str(refused.value) and "not-the-key" not in str(refused.value)
    assert "not-the-key" not in repr(wrong)
    client = NeonClient(fake_neon.api_url, fake_neon.api_key, max_attempts=1)
    before = CALLS["GET /projects/{project_id}"]
    with pytest.raises(NotFound, match=r"GET /projects/\{project_id\}"):
        client.project("no-such-project")
    assert CALLS["GET /projects/{project_id}"] == before + 1


def _context(app: App, env: str) -> Any:
    """The provider's context in ``env``, as the engine makes it."""
    from skyrig.config import load_config
    from skyrig.engine.session import Session

    session = Session(load_config(app.root), env)
    try:
        return session.context("neon")
    finally:
        session.store.close()
