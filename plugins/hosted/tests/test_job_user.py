"""Preview jobs kept from the host (skyrig_hosted.host.jobuser): with ``serve --service-user nobody
--service-uids``, a pull request's ``git`` and ``skyrig preview open`` run as a uid of the app's own, in a
checkout and a ``HOME`` that uid owns, and the preview opens on the host, its service answering as the
environment's own uid; whatever the user, a ``skyrig.toml`` that keeps state in a SQLite file outside the
checkout fails the job in one line, before ``skyrig`` runs, and nothing is written there.

The repository is served by ``git daemon`` on 127.0.0.1 (``git://``), as GitHub serves one over the
network: git refuses a local repository another user owns."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import pwd
import shutil
import socket
import stat
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from support import no_nobody_python, nobody_python

from skyrig_hosted.conformance import Host
from skyrig_hosted.host.isolation import ServiceUser
from skyrig_hosted.host.jobuser import job_folders, state_outside

SECRET = "a webhook secret of the test"
UIDS = (200300, 200399)
SHOP_TOML = """app = "shop"
{state}
[env.preview]
type = "preview"
provider = "hosted"
compute = "hosted"
cron = "memory"
pubsub = "memory"
{env_state}
[env.preview.hosted]
url = "{url}"
"""
SHOP = {
    "shop/__init__.py": 'from skyrig import Service\n\nservice = Service("shop", app="shop.web:app")\n',
    "shop/web.py": """async def app(scope, receive, send):
    if scope["type"] == "http":
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"hello"})
""",
    "shop/resources.py": 'from skyrig import SQLDatabase\n\norders = SQLDatabase("orders", migrations="./migrations")\n',
    "shop/migrations/0001_orders.up.sql": "CREATE TABLE orders (id serial PRIMARY KEY);\n",
}


@pytest.fixture(scope="module")
def python() -> Iterator[str]:
    """An interpreter ``nobody`` can run that finds this venv's packages (skyrig and its providers)."""
    if (reason := no_nobody_python("jobs", git=True)) is not None:
        pytest.skip(reason)
    with nobody_python("skyrig-job-python-") as interpreter:
        yield interpreter


@pytest.fixture
def place() -> Iterator[Path]:
    """A folder every user reaches (the PostgreSQL server's user and the jobs' uid go through it)."""
    parent = Path(tempfile.mkdtemp(prefix="skyrig-job-user-"))
    parent.chmod(0o755)
    yield parent
    shutil.rmtree(parent, ignore_errors=True)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Served:
    """A git repository ``acme/shop`` served by ``git daemon`` on 127.0.0.1."""

    def __init__(self, base: Path) -> None:
        self.base = base
        self.path = base / "acme" / "shop"
        self.path.mkdir(parents=True)
        self.git("init", "--quiet", "--initial-branch=main")
        self.port = _free_port()
        self.url = f"git://127.0.0.1:{self.port}/acme/shop"
        daemon = ["git", "daemon", "--reuseaddr", "--export-all", "--informative-errors"]
        where = [f"--base-path={base}", "--listen=127.0.0.1", f"--port={self.port}", str(base)]
        self.daemon = subprocess.Popen(
            [*daemon, *where],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while True:
            with socket.socket() as sock:
                if sock.connect_ex(("127.0.0.1", self.port)) == 0:
                    break
            assert self.daemon.poll() is None and time.monotonic() < deadline, "git daemon did not start"
            time.sleep(0.02)

    def git(self, *arguments: str) -> str:
        environ = {
            "PATH": os.environ["PATH"],
            "HOME": str(self.path),
            **{f"GIT_{who}_{what}": value for who in ("AUTHOR", "COMMITTER") for what, value in
               (("NAME", "t"), ("EMAIL", "t@example.com"))},
        }  # fmt: skip
        done = subprocess.run(
            ["git", *arguments], cwd=self.path, env=environ, capture_output=True, text=True, check=True
        )
        return done.stdout.strip()

    def commit(self, files: dict[str, str], links: dict[str, str] | None = None) -> str:
        for name, text in files.items():
            (self.path / name).parent.mkdir(parents=True, exist_ok=True)
            (self.path / name).write_text(text)
        for name, target in (links or {}).items():
            (self.path / name).unlink(missing_ok=True)
            (self.path / name).symlink_to(target)
        self.git("add", "--all")
        self.git("commit", "--quiet", "-m", "a change")
        return self.git("rev-parse", "HEAD")

    def close(self) -> None:
        self.daemon.terminate()
        self.daemon.wait(10)


def _deliver(url: str, pr: int, sha: str) -> dict[str, Any]:
    payload = {
        "action": "opened",
        "number": pr,
        "pull_request": {"number": pr, "head": {"sha": sha}},
        "repository": {"full_name": "acme/shop"},
    }
    body = json.dumps(payload).encode()
    headers = {
        "Content-Type": "application/json",
        "X-GitHub-Event": "pull_request",
        "X-GitHub-Delivery": str(uuid.uuid4()),
        "X-Hub-Signature-256": "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest(),
    }
    answer = httpx.post(f"{url}/apps/shop/github/webhook", content=body, headers=headers, timeout=30)
    assert answer.status_code == 202, answer.text
    return dict(answer.json()["job"])


def _done(client: httpx.Client, job: int, timeout: float = 120) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        found = client.get(f"/apps/shop/jobs/{job}").json()["job"]
        if found["state"] in ("succeeded", "failed"):
            return dict(found)
        assert time.monotonic() < deadline, f"job {job} stayed {found['state']}:\n{found['log']}"
        time.sleep(0.05)


@pytest.mark.parametrize("uids", [True, False], ids=["a uid of the app's own", "the service user"])
def test_a_preview_job_runs_as_the_apps_uid_and_its_state_stays_in_the_checkout(
    place: Path, python: str, uids: bool
):
    served = Served(place / "git")
    outside = place / "outside"
    outside.mkdir()
    outside.chmod(0o1777)  # the jobs' uid could write there: only the host's check keeps state out of it
    (place / "git").chmod(0o755)
    options = ["--service-user", "nobody", "--service-python", python]
    if uids:
        options += ["--service-uids", "-".join(map(str, UIDS))]
    try:
        with Host(place / "data", options=options) as host:
            admin = httpx.Client(base_url=host.url, headers={"Authorization": f"Bearer {host.admin_token}"})
            token = admin.post("/apps", json={"name": "shop"}).json()["token"]
            client = httpx.Client(base_url=host.url, headers={"Authorization": f"Bearer {token}"}, timeout=30)
            put = client.put("/apps/shop/github", json={"secret": SECRET, "repository": served.url})
            assert put.status_code == 201, put.text

            toml = SHOP_TOML.format(url=host.url, state="", env_state="")
            opened = _done(client, _deliver(host.url, 7, served.commit({"skyrig.toml": toml, **SHOP}))["id"])
            assert opened["state"] == "succeeded", opened["log"]
            assert client.get("/apps/shop/envs/pr:7").status_code == 200, "the preview is on the host"
            assert ("database", "orders") in {
                (r["kind"], r["name"])
                for r in client.get("/apps/shop/envs/pr:7/resources").json()["resources"]
            }

            service = httpx.URL(opened["urls"]["shop"])  # its service answers through the host's proxy
            answer = httpx.get(
                f"http://127.0.0.1:{httpx.URL(host.url).port}/",
                headers={"Host": service.netloc.decode()},
                timeout=60,
            )
            assert (answer.status_code, answer.text) == (200, "hello"), opened["log"]

            data = place / "data"
            checkout, home = data / "apps" / "shop" / "checkout", data / "apps" / "shop" / "home"
            uid = checkout.stat().st_uid
            if uids:  # the range's top: its bottom goes to the environments' services
                assert uid == UIDS[1], f"the checkout is uid {uid}'s, not the range's first free from its top"
                services = {home.stat().st_uid for home in (data / "homes").iterdir()}
                assert services and uid not in services, "the service runs as the environment's own uid"
            else:
                assert uid == pwd.getpwnam("nobody").pw_uid, f"the checkout is uid {uid}'s, not nobody's"
            state = checkout / ".skyrig" / "state.db"
            assert state.stat().st_uid == uid and stat.S_IMODE(state.stat().st_mode) & 0o077 == 0
            owners = {p.lstat().st_uid for p in checkout.rglob("*")}
            assert owners == {uid}, f"every file of the checkout is the job's uid's: {owners}"
            assert home.stat().st_uid == uid and stat.S_IMODE(home.stat().st_mode) == 0o700
            assert stat.S_IMODE(checkout.stat().st_mode) == 0o700
            for way in (data / "apps", data / "apps" / "shop"):
                assert (way.stat().st_uid, stat.S_IMODE(way.stat().st_mode)) == (0, 0o711), way

            refused = {
                "state": ("sqlite:////" + str(outside / "outside.db").lstrip("/"), ""),
                "env.preview.state": ("", 'state = "sqlite:///../../../../outside/outside.db"'),
                "a link out": ('state = "sqlite:///out/outside.db"', ""),
            }
            for pr, (what, (app_state, env_state)) in enumerate(refused.items(), start=20):
                if what == "state":
                    app_state = f'state = "{app_state}"'
                toml = SHOP_TOML.format(url=host.url, state=app_state, env_state=env_state)
                links = {"out": str(outside)} if what == "a link out" else None
                sha = served.commit({"skyrig.toml": toml}, links)
                started = time.monotonic()
                done = _done(client, _deliver(host.url, pr, sha)["id"])
                assert done["state"] == "failed", (what, done["log"])
                error = done["error"]
                assert "\n" not in error and "outside the app's checkout" in error, (what, error)
                assert "skyrig.toml" in error and f"error: {error}" in done["log"], (what, done["log"])
                assert "$ skyrig preview" not in done["log"], f"{what}: skyrig never ran"
                assert time.monotonic() - started < 10
                assert list(outside.iterdir()) == [], f"{what}: nothing is written outside"
                assert client.get(f"/apps/shop/envs/pr:{pr}").status_code == 404
            assert state.stat().st_uid == uid, "the checkout's state stays the job's between jobs"
    finally:
        served.close()


def test_the_state_must_stay_in_the_checkout(tmp_path: Path):
    checkout = tmp_path / "checkout"
    checkout.mkdir()
    config = checkout / "skyrig.toml"

    def said(text: str, pr: int = 1) -> str | None:
        config.write_text('app = "shop"\n' + text)
        return state_outside(checkout, pr)

    preview = '[env.preview]\ntype = "preview"\nprovider = "memory"\n'
    for allowed in (
        "",
        'state = "sqlite:///.skyrig/state.db"\n',
        f'state = "sqlite:///{checkout}/x.db"\n',
        'state = "s3://bucket/state"\n',
        'state = "postgresql://db.example.com/state"\n',
        preview + 'state = "sqlite:///.skyrig/mine.db"\n',
        # another environment than the preview's: not the job's
        '[env.prod]\ntype = "production"\nprovider = "memory"\nstate = "sqlite:////var/lib/prod.db"\n',
        "this is not TOML [",  # skyrig says what is wrong with it
    ):
        assert said(allowed) is None, allowed
    for refused, where in (
        ('state = "sqlite:////etc/x.db"\n', "state = 'sqlite:////etc/x.db'"),
        ('STATE = "sqlite:///../x.db"\n', "STATE = "),
        (preview + 'state = "sqlite:////tmp/x.db"\n', "env.preview.state"),
        ('[preview]\ntemplate = "dev"\n[env.dev]\ntype = "development"\nprovider = "memory"\n'
         'state = "sqlite:////tmp/x.db"\n', "env.dev.state"),
        ('[env."pr:3"]\ntype = "preview"\nprovider = "memory"\nstate = "sqlite:////tmp/x.db"\n', "env.pr:3"),
    ):  # fmt: skip
        found = said(refused, pr=3)
        assert found is not None and where in found and "outside the app's checkout" in found, refused
    (tmp_path / "elsewhere.toml").write_text('app = "shop"\nstate = "sqlite:////etc/x.db"\n')
    config.unlink()
    config.symlink_to(tmp_path / "elsewhere.toml")
    found = state_outside(checkout, 1)
    assert found is not None and "outside the checkout" in found


def test_a_checkout_an_earlier_host_made_is_handed_over_without_following_links(tmp_path: Path):
    if os.geteuid() != 0:
        pytest.skip("hands folders over to another user: needs a test process running as root")
    data, elsewhere = tmp_path / "data", tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "host-file").write_text("the host's")
    checkout = data / "apps" / "shop" / "checkout"
    (checkout / ".skyrig").mkdir(parents=True)
    (checkout / ".skyrig" / "state.db").write_text("state")
    (checkout / "link").symlink_to(elsewhere)
    (checkout / "file-link").symlink_to(elsewhere / "host-file")
    user = ServiceUser("uid 200499", 200499, pwd.getpwnam("nobody").pw_gid)
    made, home = job_folders(data, "shop", user)
    assert made == checkout and home == data / "apps" / "shop" / "home"
    for path in (checkout, home, checkout / ".skyrig", checkout / ".skyrig" / "state.db", checkout / "link"):
        assert (path.lstat().st_uid, path.lstat().st_gid) == (user.uid, user.gid), path
    assert (checkout / ".skyrig" / "state.db").read_text() == "state", "its state is kept"
    for path in (elsewhere, elsewhere / "host-file"):
        assert path.stat().st_uid == 0, f"{path}: no link was followed"
    for path in (checkout, home):
        assert stat.S_IMODE(path.stat().st_mode) == 0o700
