"""skyrig test on the local provider's test cluster, its pytest fixtures, and skyrig db shell / reset.

The app under test has its own tests (APP_TESTS below): what they assert is what the fixtures promise.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from skyrig.cli import main
from skyrig_local import postgres
from skyrig_local.testing import remove_orphans, storage, throwaway_folder

CONFIG = 'app = "shop"\n[env.local]\ntype = "local"\nprovider = "memory"\nsql = "local"\n'

APP = {
    "orders/__init__.py": """
        from skyrig import Service

        service = Service("orders", app="orders.api:app")
    """,
    "orders/db.py": """
        from skyrig import SQLDatabase

        db = SQLDatabase("orders", migrations="./migrations")
    """,
    "orders/migrations/0001_orders.up.sql": """
        CREATE TABLE orders (id serial PRIMARY KEY, customer text NOT NULL, receipt boolean DEFAULT false);
    """,
    "orders/migrations/0002_audit.up.sql": """
        CREATE TABLE audit (order_id int NOT NULL);
    """,
    "orders/events.py": """
        from pydantic import BaseModel

        from skyrig import Topic


        class OrderPlaced(BaseModel):
            order_id: int
            customer: str


        class ReceiptSent(BaseModel):
            order_id: int


        order_placed = Topic("order-placed", OrderPlaced, ordering_attribute="customer")
        receipt_sent = Topic("receipt-sent", ReceiptSent)
    """,
    "orders/api.py": """
        from skyrig import Secret

        from .db import db
        from .events import OrderPlaced, order_placed

        app = None
        api_key = Secret("api-key")


        def place(customer: str) -> int:
            with db.connect() as c:
                (order_id,) = c.execute(
                    "INSERT INTO orders (customer) VALUES (%s) RETURNING id", (customer,)
                ).fetchone()
            order_placed.publish(OrderPlaced(order_id=order_id, customer=customer))
            return order_id


        def key() -> str:
            return api_key.value
    """,
    "orders/receipts.py": """
        from skyrig import CronJob, Subscription

        from .db import db
        from .events import OrderPlaced, ReceiptSent, order_placed, receipt_sent


        async def send_receipt(event: OrderPlaced) -> None:
            if event.customer == "mallory":
                raise ValueError("no receipts for mallory")
            async with await db.connect_async() as c:
                await c.execute("UPDATE orders SET receipt = true WHERE id = %s", (event.order_id,))
            await receipt_sent.publish_async(ReceiptSent(order_id=event.order_id))


        def audit(event: ReceiptSent) -> None:
            with db.connect() as c:
                c.execute("INSERT INTO audit (order_id) VALUES (%s)", (event.order_id,))


        Subscription(order_placed, "send-receipt", handler=send_receipt)
        Subscription(receipt_sent, "audit", handler=audit)


        def purge() -> int:
            with db.connect() as c:
                return c.execute("DELETE FROM orders WHERE receipt").rowcount


        CronJob("purge", every="1h", endpoint=purge)
    """,
}

APP_TESTS = """
    import asyncio
    import os

    import pytest

    from orders.api import key, place
    from orders.db import db
    from orders.events import OrderPlaced, order_placed
    from skyrig.testing.pubsub import DeliveryError


    def count(table):
        with db.connect() as c:
            return c.execute(f"SELECT count(*) FROM {table}").fetchone()[0]


    def test_the_database_is_fresh_migrated_and_on_the_fast_cluster():
        assert count("orders") == 0
        with db.connect() as c:
            assert c.execute("SELECT number FROM skyrig_migrations ORDER BY 1").fetchall() == [(1,), (2,)]
            settings = c.execute(
                "SELECT name, setting FROM pg_settings "
                "WHERE name IN ('fsync', 'synchronous_commit', 'full_page_writes') ORDER BY 1"
            ).fetchall()
            assert settings == [("fsync", "off"), ("full_page_writes", "off"), ("synchronous_commit", "off")]
            assert c.execute("SHOW data_directory").fetchone()[0].startswith(os.environ["EXPECTED_STORAGE"])
        place("ada")
        assert count("orders") == 1


    def test_data_stays_for_the_session():
        assert count("orders") == 1


    def test_published_messages_and_drained_subscriptions(skyrig_published, skyrig_drain):
        order_id = place("bob")
        assert skyrig_published(order_placed) == [OrderPlaced(order_id=order_id, customer="bob")]
        [record] = skyrig_published.messages("order-placed")
        assert record.ordering_key == "bob" and record.data == {"order_id": order_id, "customer": "bob"}
        assert skyrig_published("receipt-sent") == []
        assert skyrig_drain() == 2  # send-receipt, then audit for the message send-receipt published
        assert [m.order_id for m in skyrig_published("receipt-sent")] == [order_id]
        assert count("audit") == 1
        assert skyrig_drain() == 0


    def test_no_message_leaks_into_the_next_test(skyrig_published, skyrig_drain):
        assert skyrig_published(order_placed) == []
        assert skyrig_drain.pending() == []


    def test_a_failing_handler_fails_the_drain_and_its_message_stays(skyrig_drain):
        place("mallory")
        with pytest.raises(DeliveryError, match="subscription 'send-receipt' failed .*no receipts for mallory"):
            skyrig_drain()
        assert [name for name, _ in skyrig_drain.pending()] == ["send-receipt"]


    def test_draining_from_async_code(skyrig_drain):
        async def scenario():
            place("carol")
            return await skyrig_drain.run_async("send-receipt")

        assert asyncio.run(scenario()) == 1
        assert [name for name, _ in skyrig_drain.pending()] == ["audit"]


    def test_a_cron_job_is_triggered_by_name(skyrig_cron):
        assert skyrig_cron("purge") == 2  # bob's and carol's orders have their receipts
        with pytest.raises(LookupError, match=r"no cron job 'nightly' \\(cron jobs: purge\\)"):
            skyrig_cron("nightly")


    def test_reset_gives_a_fresh_database(skyrig_reset):
        assert count("orders") == 0 and count("audit") == 0
        with db.connect() as c:
            assert c.execute("SELECT count(*) FROM skyrig_migrations").fetchone()[0] == 2


    def test_secrets_are_set_by_the_tests(skyrig_secrets):
        with pytest.raises(LookupError, match="set one with the skyrig_secrets fixture"):
            key()
        skyrig_secrets["api-key"] = "k-test"
        assert key() == "k-test"


    def test_fails_when_asked():
        assert not os.environ.get("SHOP_FAIL"), "asked to fail"
"""
PASSED = 10

FRESH_DATABASE = """
import json, sys, time
from pathlib import Path

from skyrig.analysis import build_model
from skyrig_local.testing import support

root = Path(sys.argv[1])
model = build_model(root, "shop")
started = time.perf_counter()
state = support.prepare(root, model)
database = support.open(state).client("sql_database", "orders")
with database.connect() as c:
    migrations = [row[0] for row in c.execute("SELECT number FROM skyrig_migrations ORDER BY 1")]
seconds = time.perf_counter() - started
database.close()
print(json.dumps({"seconds": seconds, "template": state["templates"]["orders"], "migrations": migrations}))
"""


def _write(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip())


def _cleanup(root: Path) -> None:
    folder = throwaway_folder(root, "shop")
    for data in (folder / "postgres", root / ".skyrig" / "local" / "local" / "postgres"):
        postgres.stop(data)
    shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The app, with its tests; its test cluster is removed afterwards."""
    root = tmp_path_factory.mktemp("apps") / "shop"
    _write(root, {"skyrig.toml": CONFIG, **APP, "tests/test_orders.py": APP_TESTS})
    yield root
    _cleanup(root)


@pytest.fixture
def shop_copy(shop: Path, tmp_path: Path) -> Iterator[Path]:
    """A copy of the app in another folder (so another test cluster), to change freely."""
    root = tmp_path / "shop"
    shutil.copytree(shop, root, ignore=shutil.ignore_patterns(".skyrig", "__pycache__", ".pytest_cache"))
    yield root
    _cleanup(root)


def _run(root: Path, *args: str, stdin: str | None = None, **env: str) -> subprocess.CompletedProcess[str]:
    variables = {**os.environ, "EXPECTED_STORAGE": str(storage()), "SKYRIG_RETRY_BASE_MS": "1", **env}
    return subprocess.run(
        [sys.executable, "-m", "skyrig", *args],
        cwd=root,
        env=variables,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
    )


def _server_running(data: Path) -> bool:
    pid = data / "postmaster.pid"
    if not pid.exists():
        return False
    try:
        os.kill(int(pid.read_text().split()[0]), 0)
    except ProcessLookupError:
        return False
    return True


def test_skyrig_test_runs_the_apps_tests_on_a_fresh_database_per_session(shop):
    for _ in range(2):  # the second session starts from a fresh database again
        result = _run(shop, "test", "-q")
        assert result.returncode == 0, result.stdout + result.stderr
        assert f"{PASSED} passed" in result.stdout
    data = throwaway_folder(shop, "shop") / "postgres"
    assert not _server_running(data), "the test cluster stops when skyrig test exits"
    assert not (shop / ".skyrig" / "local").exists(), "the local environment's cluster is not used"


def test_pytests_exit_code_and_arguments_pass_through(shop):
    failed = _run(shop, "test", "-q", "-k", "fails_when_asked or migrated", SHOP_FAIL="1")
    assert failed.returncode == 1, failed.stdout + failed.stderr
    assert "1 failed, 1 passed" in failed.stdout and "asked to fail" in failed.stdout
    nothing = _run(shop, "test", "--", "-q", "-k", "no_such_test")
    assert nothing.returncode == 5, nothing.stdout + nothing.stderr  # pytest: no tests collected
    here = _run(shop / "tests", "test", "-q", "test_orders.py::test_fails_when_asked")
    assert here.returncode == 0 and "1 passed" in here.stdout, "paths are taken from where skyrig test runs"


def test_the_plugin_is_inert_in_a_plain_pytest_run(shop):
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "skyrig", "tests"],
        cwd=shop,
        env={**os.environ, "PYTHONPATH": str(shop)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 1
    assert "fixture 'skyrig_published' not found" in result.stdout


def test_the_template_is_migrated_once_and_again_when_migrations_change(shop_copy):
    def fresh_database() -> dict:
        result = subprocess.run(
            [sys.executable, "-c", FRESH_DATABASE, str(shop_copy)],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert result.returncode == 0, result.stderr
        return json.loads(result.stdout)

    cold = fresh_database()
    warm = fresh_database()
    assert warm["template"] == cold["template"] and warm["migrations"] == [1, 2]
    assert warm["seconds"] < 2, f"a fresh migrated database took {warm['seconds']:.2f} s from a warm template"

    (shop_copy / "orders/migrations/0003_notes.up.sql").write_text(
        "ALTER TABLE orders ADD COLUMN note text;\n"
    )
    changed = fresh_database()
    assert changed["template"] != cold["template"] and changed["migrations"] == [1, 2, 3]

    (shop_copy / "orders/migrations/0004_broken.up.sql").write_text("ALTER TABLE nowhere ADD COLUMN x int;\n")
    broken = _run(shop_copy, "test", "-q")
    assert broken.returncode == 1
    assert "database 'orders' cannot be tested: orders/migrations/0004_broken.up.sql: migration failed" in (
        broken.stderr
    )
    assert 'relation "nowhere" does not exist' in broken.stderr and "Traceback" not in broken.stderr


def test_the_throwaway_folders_of_deleted_apps_are_removed(tmp_path):
    home = tmp_path / "home"
    for name, root in (("gone", tmp_path / "deleted-app"), ("kept", tmp_path), ("unknown", None)):
        (home / name).mkdir(parents=True)
        if root is not None:
            (home / name / "app-root").write_text(str(root))
    remove_orphans(home)
    assert sorted(p.name for p in home.iterdir()) == ["kept", "unknown"]


@pytest.fixture
def applied(shop_copy: Path, capsys: pytest.CaptureFixture[str]) -> Path:
    """The copy, with its local environment provisioned."""
    code = _skyrig(shop_copy, capsys, "apply", "--env", "local", "--yes")[0]
    assert code == 0
    return shop_copy


def _skyrig(root: Path, capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    capsys.readouterr()
    try:
        code = main([*args, "-C", str(root)])
    except SystemExit as done:
        code = done.code
    captured = capsys.readouterr()
    return int(code or 0), captured.out, captured.err


def test_db_shell_runs_psql_on_the_database(applied):
    piped = _run(applied, "db", "shell", "orders", stdin="INSERT INTO orders (customer) VALUES ('ada');\n")
    assert piped.returncode == 0, piped.stderr
    assert "INSERT 0 1" in piped.stdout
    command = _run(applied, "db", "shell", "orders", "--", "-tAc", "SELECT customer FROM orders")
    assert command.returncode == 0, command.stderr
    assert command.stdout.strip() == "ada"
    failing = _run(applied, "db", "shell", "orders", "--", "-v", "ON_ERROR_STOP=1", "-c", "SELECT nothing")
    assert failing.returncode != 0 and 'column "nothing" does not exist' in failing.stderr


def test_db_commands_name_the_known_databases(shop_copy, capsys):
    code, _, err = _skyrig(shop_copy, capsys, "db", "shell", "payments")
    assert code == 1
    assert "error: the app declares no SQL database 'payments'\n  hint: its databases: orders" in err
    code, _, err = _skyrig(shop_copy, capsys, "db", "reset", "orders", "--yes")
    assert code == 1
    assert "database 'orders' is not provisioned in environment 'local'" in err
    assert "skyrig apply --env local" in err


def test_db_reset_empties_the_database_and_migrates_it_again(applied, capsys):
    _run(applied, "db", "shell", "orders", "--", "-c", "INSERT INTO orders (customer) VALUES ('ada')")
    unconfirmed = _run(applied, "db", "reset", "orders")
    assert unconfirmed.returncode == 1 and "pass --yes" in unconfirmed.stderr

    code, out, err = _skyrig(applied, capsys, "db", "reset", "orders", "--yes")
    assert code == 0, err
    assert "database orders of shop/local reset: dropped and created again, 2 migration(s) applied" in out
    left = _run(applied, "db", "shell", "orders", "--", "-tAc", "SELECT count(*) FROM orders")
    assert left.stdout.strip() == "0"
    ledger = _run(applied, "db", "shell", "orders", "--", "-tAc", "SELECT number FROM skyrig_migrations")
    assert ledger.stdout.split() == ["1", "2"]
    assert _skyrig(applied, capsys, "plan", "--env", "local", "--detailed-exitcode")[0] == 0
