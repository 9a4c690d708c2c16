"""GitHub webhooks on the host (skyrig_hosted.host.webhooks) and its preview jobs (skyrig_hosted.host.jobs).

The first tests serve the API in this process over a real PostgreSQL, with a real git repository the test
makes, and a stand-in for ``skyrig preview open/close`` (the job's command is injectable): it records what
it was run with (the commit checked out, its environment, the deploy token's digest) into ``.skyrig/``,
which the checkout keeps between jobs. The last tests run ``skyrig-hosted serve`` itself: deliveries
refused across a restart, and a pull request's preview opened, moved and closed by real ``skyrig preview``
commands."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
import time
import urllib.parse
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from support import InProcessServer, data_folder, write_files

from skyrig_hosted.host.api import HostApi
from skyrig_hosted.host.crypto import HostKey
from skyrig_hosted.host.store import Store, database_dsn
from skyrig_hosted.host.tokens import admin_token
from skyrig_hosted.host.webhooks import Webhooks, same_repository, signature

SECRET = "a webhook secret of the test"

FAKE_PREVIEW = r"""
import hashlib, json, os, pathlib, sys, time
action, pr, gate = sys.argv[1], sys.argv[2], pathlib.Path(sys.argv[3])
(gate / f"started-{pr}").touch()
while (gate / "hold").exists():
    time.sleep(0.02)
head = pathlib.Path(".git/HEAD").read_text().strip()
token = os.environ.get("SKYRIG_HOSTED_TOKEN", "")
print(f"preview {action} --pr {pr} at {head}", flush=True)
print(f"the token is {token}", flush=True)  # a careless command: the host hides it in the log
pathlib.Path(".skyrig").mkdir(exist_ok=True)
with open(".skyrig/runs.jsonl", "a") as runs:
    record = {"action": action, "pr": int(pr), "head": head, "variables": sorted(os.environ),
              "token": hashlib.sha256(token.encode()).hexdigest(), "files": sorted(os.listdir("."))}
    runs.write(json.dumps(record) + "\n")
sys.exit(3 if pathlib.Path("fail").exists() else 0)
"""


# -- a repository ---------------------------------------------------------------------------------------


class Repository:
    """A git repository at ``PARENT/acme/shop`` (so GitHub's full name ``acme/shop`` ends its path)."""

    def __init__(self, parent: Path) -> None:
        self.path = parent / "acme" / "shop"
        self.path.mkdir(parents=True)
        self.git("init", "--quiet", "--initial-branch=main")

    def git(self, *arguments: str) -> str:
        environ = {
            "PATH": os.environ["PATH"],
            "HOME": str(self.path),
            "GIT_AUTHOR_NAME": "t",
            "GIT_AUTHOR_EMAIL": "t@example.com",
            "GIT_COMMITTER_NAME": "t",
            "GIT_COMMITTER_EMAIL": "t@example.com",
        }
        done = subprocess.run(
            ["git", *arguments], cwd=self.path, env=environ, capture_output=True, text=True, check=True
        )
        return done.stdout.strip()

    def commit(self, files: dict[str, str], message: str = "a change") -> str:
        write_files(self.path, files)
        self.git("add", "--all")
        self.git("commit", "--quiet", "-m", message)
        return self.git("rev-parse", "HEAD")

    def payload(self, action: str, pr: int, sha: str, full_name: str = "acme/shop") -> dict[str, Any]:
        clone_url = str(self.path) if full_name == "acme/shop" else f"https://github.com/{full_name}.git"
        return {
            "action": action,
            "number": pr,
            "pull_request": {"number": pr, "head": {"sha": sha, "ref": f"feature-{pr}"}},
            "repository": {"full_name": full_name, "clone_url": clone_url},
        }


def deliver(
    client: httpx.Client,
    app: str,
    payload: dict[str, Any],
    *,
    event: str = "pull_request",
    delivery: str | None = None,
    secret: str = SECRET,
    sign: bool = True,
) -> httpx.Response:
    """POSTs a delivery as GitHub does: the raw JSON signed with the secret."""
    body = json.dumps(payload).encode()
    headers = {
        "Content-Type": "application/json",
        "X-GitHub-Event": event,
        "X-GitHub-Delivery": delivery or str(uuid.uuid4()),
        "User-Agent": "GitHub-Hookshot/test",
    }
    if sign:
        headers["X-Hub-Signature-256"] = signature(secret, body)
    return client.post(f"/apps/{app}/github/webhook", content=body, headers=headers)


def wait_for(client: httpx.Client, app: str, job: int, states: tuple[str, ...], timeout: float = 60) -> Any:
    """The job once it is in one of ``states``."""
    deadline = time.monotonic() + timeout
    while True:
        answer = client.get(f"/apps/{app}/jobs/{job}")
        assert answer.status_code == 200, answer.text
        found = answer.json()["job"]
        if found["state"] in states:
            return found
        assert time.monotonic() < deadline, f"job {job} stayed {found['state']}:\n{found['log']}"
        time.sleep(0.05)


# -- the API in this process ------------------------------------------------------------------------------


class Served(InProcessServer):
    """The host's API with its webhooks, served by uvicorn on 127.0.0.1 in this process; jobs run
    ``FAKE_PREVIEW`` (held while ``gate/hold`` exists)."""

    def __init__(self, admin_dsn: str, data: Path, gate: Path, timeout: float | None = None) -> None:
        self.data = data
        data.mkdir(exist_ok=True)
        self.store = Store.open(admin_dsn, HostKey.load(data), pool_size=8)
        self.admin = admin_token(data)
        self.store.keep_admin_token(self.admin)
        script = gate / "fake_preview.py"
        script.write_text(FAKE_PREVIEW)

        def command(action: str, pr: int) -> list[str]:
            return [sys.executable, str(script), action, str(pr), str(gate)]

        self.api = HostApi(self.store, tenancy=None)  # type: ignore[arg-type]  # no server is used here
        self.webhooks = Webhooks(self.store, data, command=command, timeout=timeout)
        self.webhooks.start()
        self.api.webhooks = self.webhooks
        super().__init__(self.api.application())

    def close(self) -> None:
        super().close()
        self.webhooks.close()
        self.store.close()


@pytest.fixture
def gate(tmp_path: Path) -> Path:
    folder = tmp_path / "gate"
    folder.mkdir()
    return folder


@pytest.fixture
def served(admin_dsn: str, tmp_path: Path, gate: Path) -> Iterator[Served]:
    host = Served(admin_dsn, tmp_path / "data", gate)
    yield host
    host.close()


@pytest.fixture
def repository(tmp_path: Path) -> Repository:
    return Repository(tmp_path / "git")


def configured(served: Served, repository: Repository) -> tuple[str, httpx.Client]:
    """A new app whose webhook is configured on ``repository``: its name and a client with its token."""
    name = f"app-{secrets.token_hex(4)}"
    made = served.client(served.admin).post("/apps", json={"name": name})
    assert made.status_code == 201, made.text
    client = served.client(made.json()["token"])
    answer = client.put(f"/apps/{name}/github", json={"secret": SECRET, "repository": str(repository.path)})
    assert answer.status_code == 201, answer.text
    return name, client


def runs(served: Served, app: str) -> list[dict[str, Any]]:
    """What the stand-in command recorded in the checkout's ``.skyrig/`` (kept between jobs)."""
    path = served.data / "apps" / app / "checkout" / ".skyrig" / "runs.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def test_the_configuration_keeps_the_secret_encrypted_and_never_shows_it(
    served: Served, repository: Repository, admin_dsn: str
):
    app, client = configured(served, repository)
    assert client.get(f"/apps/{app}/github").json() == {
        "github": {"repository": str(repository.path), "forks": False, "configured": True}
    }
    again = client.put(f"/apps/{app}/github", json={"secret": SECRET, "repository": str(repository.path)})
    assert again.status_code == 200 and SECRET not in again.text
    short = client.put(f"/apps/{app}/github", json={"secret": "short", "repository": "x"})
    assert short.status_code == 422 and "at least 16" in short.json()["error"]["message"]
    option = client.put(f"/apps/{app}/github", json={"secret": SECRET, "repository": "--upload-pack=x"})
    assert option.status_code == 422
    url = "https://bot:ghp_password@github.com/acme/shop.git"
    shown = client.put(f"/apps/{app}/github", json={"secret": SECRET, "repository": url}).json()
    assert shown == {
        "github": {"repository": "https://***@github.com/acme/shop.git", "forks": False, "configured": True}
    }
    other = served.client(served.admin).post("/apps", json={"name": f"o-{app}"}).json()["token"]
    assert served.client(other).get(f"/apps/{app}/github").status_code == 403
    assert (
        served.client(other)
        .put(f"/apps/{app}/github", json={"secret": SECRET, "repository": "x"})
        .status_code
        == 403
    )
    with psycopg.connect(database_dsn(admin_dsn)) as db:
        dump = repr(db.execute("SELECT * FROM github WHERE app = %s", (app,)).fetchall())
    assert SECRET not in dump and "ghp_password" not in dump
    assert served.client(served.admin).get("/apps/nope/jobs").status_code == 404
    assert client.get(f"/apps/{app}/jobs/12345678").status_code == 404
    assert client.delete(f"/apps/{app}/github").status_code == 204
    assert client.get(f"/apps/{app}/github").status_code == 404
    refused = deliver(served.client(), app, {"zen": "x"}, event="ping")
    assert refused.status_code == 404 and refused.json()["error"]["code"] == "not_configured"


def test_deliveries_are_checked_signature_event_repository_and_replay(served: Served, repository: Repository):
    app, client = configured(served, repository)
    sha = repository.commit({"app.py": "x = 1\n"})
    anyone = served.client()
    opened = repository.payload("opened", 5, sha)

    forged = deliver(anyone, app, opened, secret="another secret of 16+ chars")
    assert forged.status_code == 401 and forged.json()["error"]["code"] == "bad_signature"
    assert deliver(anyone, app, opened, sign=False).status_code == 401
    body = json.dumps(opened).encode()
    tampered = anyone.post(
        f"/apps/{app}/github/webhook",
        content=body + b" ",
        headers={
            "X-Hub-Signature-256": signature(SECRET, body),
            "X-GitHub-Event": "pull_request",
            "X-GitHub-Delivery": str(uuid.uuid4()),
        },
    )
    assert tampered.status_code == 401
    assert deliver(anyone, app, {"zen": "Keep it logically awesome.", "hook_id": 1}, event="ping").json() == {
        "pong": True
    }
    other_ping = {"zen": "x", "repository": {"full_name": "acme/other"}}
    assert deliver(anyone, app, other_ping, event="ping").status_code == 422, "a ping names its repository"
    form = urllib.parse.urlencode({"payload": json.dumps({"zen": "x", "hook_id": 2})}).encode()
    as_form = anyone.post(
        f"/apps/{app}/github/webhook",
        content=form,
        headers={
            "Content-Type": "application/x-www-form-urlencoded",
            "X-Hub-Signature-256": signature(SECRET, form),
            "X-GitHub-Event": "ping",
            "X-GitHub-Delivery": str(uuid.uuid4()),
        },
    )
    assert as_form.json() == {"pong": True}, "GitHub's form content type is read too"
    wrong = deliver(anyone, app, repository.payload("opened", 5, sha, full_name="acme/other"))
    assert wrong.status_code == 422 and "acme/other" in wrong.json()["error"]["message"]
    ignored = deliver(anyone, app, repository.payload("labeled", 5, sha))
    assert ignored.status_code == 200 and "labeled" in ignored.json()["ignored"]
    assert (
        deliver(anyone, app, {"ref": "main", "repository": opened["repository"]}, event="push").status_code
        == 200
    )
    from_fork = repository.payload("opened", 5, sha)
    from_fork["pull_request"]["head"]["repo"] = {"full_name": "stranger/shop"}
    ignored = deliver(anyone, app, from_fork)
    assert ignored.status_code == 200 and "stranger/shop" in ignored.json()["ignored"]
    assert client.get(f"/apps/{app}/jobs").json() == {"jobs": []}, "nothing was queued"
    forks = {"secret": SECRET, "repository": str(repository.path), "forks": True}
    assert client.put(f"/apps/{app}/github", json=forks).json()["github"]["forks"] is True
    assert deliver(anyone, app, from_fork).status_code == 202, "forks previewed when the app says so"
    client.put(f"/apps/{app}/github", json={"secret": SECRET, "repository": str(repository.path)})

    delivery = str(uuid.uuid4())
    accepted = deliver(anyone, app, opened, delivery=delivery)
    assert accepted.status_code == 202, accepted.text
    job = accepted.json()["job"]
    assert job == {"id": job["id"], "action": "open", "pr": 5, "sha": sha, "state": "queued"}
    replayed = deliver(anyone, app, opened, delivery=delivery)
    assert replayed.status_code == 409 and replayed.json()["error"]["code"] == "replayed"
    assert len(client.get(f"/apps/{app}/jobs").json()["jobs"]) == 2
    missing = anyone.post(
        f"/apps/{app}/github/webhook", content=body, headers={"X-Hub-Signature-256": signature(SECRET, body)}
    )
    assert missing.status_code == 400


def test_a_pull_request_is_opened_moved_and_closed_at_its_head(
    served: Served, repository: Repository, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setenv("SKYRIG_STATE", "postgresql://the-hosts-own-variable")  # never given to a job
    app, client = configured(served, repository)
    first = repository.commit({"skyrig.toml": "[app]\n", "app.py": "x = 1\n"})
    anyone = served.client()

    job = deliver(anyone, app, repository.payload("opened", 7, first)).json()["job"]
    done = wait_for(client, app, job["id"], ("succeeded", "failed"))
    assert done["state"] == "succeeded", done["log"]
    assert done["exit_code"] == 0 and done["event"] == "opened" and done["attempts"] == 1
    assert f"preview open --pr 7 at {first}" in done["log"]
    assert "the token is ***" in done["log"]
    [run] = runs(served, app)
    assert (run["action"], run["pr"], run["head"]) == ("open", 7, first)
    assert "SKYRIG_STATE" not in run["variables"] and "SKYRIG_HOSTED_TOKEN" in run["variables"]
    assert set(run["variables"]) <= {
        "PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "TZ", "PYTHONUNBUFFERED", "NO_COLOR", "SKYRIG_HOSTED_TOKEN", "LC_CTYPE",
    }  # fmt: skip
    with served.store._transaction() as connection:
        token = connection.execute(
            "SELECT kind, app FROM tokens WHERE sha256 = %s", (run["token"],)
        ).fetchone()
    assert token == {"kind": "app", "app": app}, "the job deploys with an app token of its own app"

    # a new commit on the PR: the job runs again at it, in the same checkout; .skyrig/ survives git clean
    (served.data / "apps" / app / "checkout" / "left-over.txt").write_text("from the last job")
    second = repository.commit({"app.py": "x = 2\n"})
    job = deliver(anyone, app, repository.payload("synchronize", 7, second)).json()["job"]
    assert wait_for(client, app, job["id"], ("succeeded", "failed"))["state"] == "succeeded"
    latest = runs(served, app)[-1]
    assert (latest["action"], latest["head"]) == ("open", second)
    assert "left-over.txt" not in latest["files"] and ".skyrig" in latest["files"]
    assert not (served.data / "apps" / app / "checkout" / ".git" / "FETCH_HEAD").exists()
    assert latest["token"] == run["token"], "one deploy token per app, kept"

    job = deliver(anyone, app, repository.payload("closed", 7, second)).json()["job"]
    done = wait_for(client, app, job["id"], ("succeeded", "failed"))
    assert done["state"] == "succeeded" and done["action"] == "close"
    assert [(r["action"], r["pr"]) for r in runs(served, app)] == [("open", 7), ("open", 7), ("close", 7)]
    listed = client.get(f"/apps/{app}/jobs").json()["jobs"]
    assert [j["event"] for j in listed] == ["closed", "synchronize", "opened"]
    assert "log" not in listed[0]
    text = json.dumps(listed) + json.dumps([client.get(f"/apps/{app}/jobs/{j['id']}").json() for j in listed])
    assert SECRET not in text and "skh_app_" not in text


def test_a_newer_commit_supersedes_the_queued_one_and_a_failure_is_kept(
    served: Served, repository: Repository, gate: Path
):
    app, client = configured(served, repository)
    shas = [repository.commit({"app.py": f"x = {n}\n"}) for n in range(3)]
    anyone = served.client()
    (gate / "hold").write_text("")
    running = deliver(anyone, app, repository.payload("opened", 1, shas[0])).json()["job"]
    wait_for(client, app, running["id"], ("running",))
    older = deliver(anyone, app, repository.payload("synchronize", 1, shas[1])).json()["job"]
    other_pr = deliver(anyone, app, repository.payload("opened", 2, shas[1])).json()["job"]
    newer = deliver(anyone, app, repository.payload("synchronize", 1, shas[2])).json()["job"]
    (gate / "hold").unlink()
    for job in (running, other_pr, newer):
        assert wait_for(client, app, job["id"], ("succeeded", "failed"))["state"] == "succeeded"
    skipped = client.get(f"/apps/{app}/jobs/{older['id']}").json()["job"]
    assert skipped["state"] == "superseded" and skipped["superseded_by"] == newer["id"]
    assert [(r["pr"], r["head"]) for r in runs(served, app)] == [(1, shas[0]), (2, shas[1]), (1, shas[2])]

    failing = repository.commit({"fail": "the stand-in exits 3\n"})
    job = deliver(anyone, app, repository.payload("synchronize", 1, failing)).json()["job"]
    done = wait_for(client, app, job["id"], ("succeeded", "failed"))
    assert (done["state"], done["exit_code"]) == ("failed", 3)
    assert done["error"] == "skyrig preview open --pr 1 exited with status 3"
    unknown = "0" * 40
    job = deliver(anyone, app, repository.payload("synchronize", 1, unknown)).json()["job"]
    done = wait_for(client, app, job["id"], ("succeeded", "failed"))
    assert done["state"] == "failed" and f"could not fetch {unknown}" in done["error"]

    # a password in the repository's URL is never shown: not in the job's error nor in git's output
    private = {"secret": SECRET, "repository": "http://bot:s3cret-pat@127.0.0.1:9/acme/shop.git"}
    assert client.put(f"/apps/{app}/github", json=private).status_code == 200
    job = deliver(anyone, app, repository.payload("synchronize", 1, shas[2])).json()["job"]
    done = wait_for(client, app, job["id"], ("succeeded", "failed"))
    assert done["state"] == "failed" and "http://***@127.0.0.1:9/acme/shop.git" in done["error"]
    assert "127.0.0.1" in done["log"] and "s3cret-pat" not in json.dumps(done)


def test_a_job_the_host_stopped_runs_again_at_its_next_start(
    admin_dsn: str, tmp_path: Path, gate: Path, repository: Repository
):
    first = Served(admin_dsn, tmp_path / "data", gate)
    try:
        app, client = configured(first, repository)
        sha = repository.commit({"app.py": "x = 1\n"})
        (gate / "hold").write_text("")
        job = deliver(first.client(), app, repository.payload("opened", 3, sha)).json()["job"]
        wait_for(client, app, job["id"], ("running",))
        token = client.headers["Authorization"].removeprefix("Bearer ")
    finally:
        first.close()  # stops the job's command; the job stays running in the store
    (gate / "hold").unlink()
    second = Served(admin_dsn, tmp_path / "data", gate)
    try:
        done = wait_for(second.client(token), app, job["id"], ("succeeded", "failed"))
        assert (done["state"], done["attempts"]) == ("succeeded", 2), done["log"]
        assert "the host stopped while this job ran" in done["log"]
        assert [r["head"] for r in runs(second, app)] == [sha]
    finally:
        second.close()


def test_deleting_the_app_stops_its_jobs_and_removes_its_checkout(
    served: Served, repository: Repository, gate: Path
):
    app, _ = configured(served, repository)
    sha = repository.commit({"app.py": "x = 1\n"})
    (gate / "hold").write_text("")
    deliver(served.client(), app, repository.payload("opened", 1, sha))
    deadline = time.monotonic() + 30
    while not (gate / "started-1").exists():  # the job's command runs
        assert time.monotonic() < deadline
        time.sleep(0.02)
    deliver(served.client(), app, repository.payload("opened", 2, sha))
    checkout = served.data / "apps" / app / "checkout"
    assert (checkout / "app.py").exists()
    started = time.monotonic()
    assert served.client(served.admin).delete(f"/apps/{app}").status_code == 204
    assert time.monotonic() - started < 10
    assert not checkout.exists() and not served.webhooks.jobs._processes
    assert app not in served.webhooks.jobs._workers
    assert runs(served, app) == [], "neither job's command ran to its end"


def test_a_failure_of_the_host_fails_the_job_and_the_next_one_runs(served: Served, repository: Repository):
    app, client = configured(served, repository)
    sha = repository.commit({"app.py": "x = 1\n"})
    original = served.webhooks.jobs.command

    def failing_for_pr_1(action: str, pr: int) -> list[str]:
        if pr == 1:
            raise RuntimeError("a bug of the host")
        return original(action, pr)

    served.webhooks.jobs.command = failing_for_pr_1
    first, second = (
        deliver(served.client(), app, repository.payload("opened", pr, sha)).json()["job"] for pr in (1, 2)
    )
    done = wait_for(client, app, first["id"], ("succeeded", "failed"))
    assert (done["state"], done["error"]) == ("failed", "the host failed: RuntimeError")
    assert wait_for(client, app, second["id"], ("succeeded", "failed"))["state"] == "succeeded"


def test_a_job_past_its_time_limit_is_stopped_and_fails(
    admin_dsn: str, tmp_path: Path, gate: Path, repository: Repository
):
    served = Served(admin_dsn, tmp_path / "data", gate, timeout=2.0)
    try:
        app, client = configured(served, repository)
        sha = repository.commit({"app.py": "x = 1\n"})
        (gate / "hold").write_text("")  # the stand-in never ends
        job = deliver(served.client(), app, repository.payload("opened", 9, sha)).json()["job"]
        started = time.monotonic()
        done = wait_for(client, app, job["id"], ("succeeded", "failed"))
        assert time.monotonic() - started < 15
        assert done["state"] == "failed" and "ran longer than the jobs' limit (2 s)" in done["error"]
    finally:
        served.close()


def test_a_dead_hosts_leftover_command_is_stopped_only_when_it_is_a_jobs():
    from skyrig_hosted.host.jobs import _stop_leftover

    def started(*argv: str) -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            [sys.executable, "-c", "import time; time.sleep(60)", *argv], start_new_session=True
        )

    leftover, unrelated = started("-m", "skyrig", "preview", "open"), started("something-else")
    try:
        for process in (leftover, unrelated):  # once each runs its own program, as a dead host's would
            while b"sleep" not in Path(f"/proc/{process.pid}/cmdline").read_bytes():
                time.sleep(0.01)
        _stop_leftover(leftover.pid)
        _stop_leftover(unrelated.pid)
        assert leftover.wait(10) == -9
        time.sleep(0.2)
        assert unrelated.poll() is None, "a pid now naming another program is left alone"
    finally:
        for process in (leftover, unrelated):
            process.kill()
            process.wait()


def test_the_repository_matches_by_url_or_full_name():
    repository = {"full_name": "Acme/Shop", "clone_url": "https://github.com/Acme/Shop.git"}
    for configured_as in (
        "https://github.com/acme/shop.git",
        "https://bot:pat@github.com/acme/shop",
        "git@github.com:acme/shop.git",
        "ssh://git@github.com/acme/shop",
        "/srv/git/acme/shop/",
    ):
        assert same_repository(configured_as, repository), configured_as
    for configured_as in ("https://github.com/evil-acme/shop.git", "https://github.com/acme/shop-2"):
        assert not same_repository(configured_as, repository), configured_as
    assert not same_repository("https://github.com/acme/shop", None)


# -- skyrig-hosted serve ----------------------------------------------------------------------------------


@pytest.fixture
def host_data() -> Iterator[Path]:
    with data_folder("skyrig-hosted-webhooks-") as folder:
        yield folder


def _client(url: str, token: str | None = None) -> httpx.Client:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx.Client(base_url=url, headers=headers, timeout=60)


@pytest.mark.slow
def test_a_replayed_delivery_is_refused_after_a_restart_too(host_data: Path, repository: Repository):
    from skyrig_hosted.conformance import Host

    sha = repository.commit({"app.py": "x = 1\n"})
    delivery = str(uuid.uuid4())
    with Host(host_data) as host:
        token = _client(host.url, host.admin_token).post("/apps", json={"name": "shop"}).json()["token"]
        client = _client(host.url, token)
        put = client.put("/apps/shop/github", json={"secret": SECRET, "repository": str(repository.path)})
        assert put.status_code == 201, put.text
        assert (
            deliver(
                _client(host.url), "shop", repository.payload("closed", 4, sha), delivery=delivery
            ).status_code
            == 202
        )
        assert (
            deliver(
                _client(host.url), "shop", repository.payload("closed", 4, sha), delivery=delivery
            ).status_code
            == 409
        )
    with Host(host_data) as host:
        again = deliver(_client(host.url), "shop", repository.payload("closed", 4, sha), delivery=delivery)
        assert again.status_code == 409, again.text
        [job] = _client(host.url, token).get("/apps/shop/jobs").json()["jobs"]
        assert job["delivery"] == delivery


SHOP_TOML = """app = "{app}"

[env.preview]
type = "preview"
provider = "hosted"
compute = "memory"
cron = "memory"
pubsub = "memory"

[env.preview.hosted]
url = "{url}"
"""
SHOP = {
    "shop/__init__.py": 'from skyrig import Service\n\nservice = Service("shop", app="shop.web:app")\n',
    "shop/web.py": "async def app(scope, receive, send):\n    pass\n",
    "shop/resources.py": """from skyrig import CacheCluster, SQLDatabase

orders = SQLDatabase("orders", migrations="./migrations")
sessions = CacheCluster("sessions")


def use() -> None:
    orders.connect()
    sessions.client()
""",
    "shop/migrations/0001_orders.up.sql": "CREATE TABLE orders (id serial PRIMARY KEY);\n",
}


@pytest.mark.slow
def test_a_pull_request_opens_moves_and_closes_its_preview_on_the_host(host: Any, repository: Repository):
    """Real deliveries, real ``skyrig preview open/close`` runs in the host's checkout, a real host."""
    app = f"shop-{secrets.token_hex(3)}"
    token = _client(host.url, host.admin_token).post("/apps", json={"name": app}).json()["token"]
    client = _client(host.url, token)
    put = client.put(f"/apps/{app}/github", json={"secret": SECRET, "repository": str(repository.path)})
    assert put.status_code == 201, put.text
    first = repository.commit({"skyrig.toml": SHOP_TOML.format(app=app, url=host.url), **SHOP})
    github = _client(host.url)

    def run(action: str, sha: str) -> dict[str, Any]:
        job = deliver(github, app, repository.payload(action, 7, sha)).json()["job"]
        done = wait_for(client, app, job["id"], ("succeeded", "failed"), timeout=300)
        assert done["state"] == "succeeded", done["log"]
        assert "skh_" not in done["log"]
        return done

    def resources() -> set[tuple[str, str]]:
        answer = client.get(f"/apps/{app}/envs/pr:7/resources")
        assert answer.status_code == 200, answer.text
        return {(r["kind"], r["name"]) for r in answer.json()["resources"]}

    opened = run("opened", first)
    assert {("database", "orders"), ("cache", "sessions")} <= resources()
    assert opened["result"]["environment"] == "pr:7" and opened["result"]["ok"] is True
    assert opened["urls"] == opened["result"]["urls"], "the preview's services' URLs, in the job"
    assert client.get(f"/apps/{app}/envs/pr:7").json()["env"]["type"] == "preview"

    audit = {"shop/audit.py": 'from skyrig import SQLDatabase\n\naudit = SQLDatabase("audit")\n'}
    second = repository.commit(audit, "an audit database")
    done = run("synchronize", second)
    assert f"--detach {second}" in done["log"]
    assert ("database", "audit") in resources(), "the job ran at the new head"

    assert run("closed", second)["result"]["existed"] is True
    assert client.get(f"/apps/{app}/envs/pr:7").status_code == 404


@pytest.mark.slow
def test_jobs_queued_when_the_host_is_killed_run_at_its_next_start(host_data: Path, repository: Repository):
    from skyrig_hosted.conformance import Host

    with Host(host_data) as host:
        app = "shop"
        token = _client(host.url, host.admin_token).post("/apps", json={"name": app}).json()["token"]
        client = _client(host.url, token)
        client.put(f"/apps/{app}/github", json={"secret": SECRET, "repository": str(repository.path)})
        sha = repository.commit({"skyrig.toml": SHOP_TOML.format(app=app, url=host.url), **SHOP})
        jobs = [
            deliver(_client(host.url), app, repository.payload("opened", pr, sha)).json()["job"]
            for pr in (1, 2, 3)
        ]
        assert host.process is not None
        host.process.kill()  # kill -9, with jobs queued (and one perhaps running)
        host.process.wait(30)
    with Host(host_data) as host:
        client = _client(host.url, token)
        for job in jobs:
            done = wait_for(client, app, job["id"], ("succeeded", "failed"), timeout=300)
            assert done["state"] == "succeeded", done["log"]
        assert {e["name"] for e in client.get(f"/apps/{app}/envs").json()["envs"]} == {"pr:1", "pr:2", "pr:3"}


SERVED_TOML = """app = "{app}"

[env.preview]
type = "preview"
provider = "hosted"

[env.preview.hosted]
url = "{url}"
"""
SERVED = {
    "web/__init__.py": 'from skyrig import Service\n\nservice = Service("web", app="web.app:app")\n',
    "web/resources.py": 'from skyrig import SQLDatabase\n\nnotes = SQLDatabase("notes")\n',
    "web/app.py": """from .resources import notes

GREETING = "{greeting}"


async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    with notes.connect() as connection:
        one = connection.execute("SELECT 1").fetchone()[0]
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
    await send({"type": "http.response.body", "body": f"{GREETING} {one}".encode()})
""",
}


def _hosts_services() -> bool:
    from skyrig_hosted import HostedProvider

    return "service" in HostedProvider.manifest.kinds


@pytest.mark.slow
def test_a_pull_requests_service_answers_on_the_host_at_each_head(host: Any, repository: Repository):
    """Everything on the host, the service too: after each delivery's job, the preview's service answers
    through the host's proxy with the code of the PR's head; after closed, it is gone."""
    if not _hosts_services():
        pytest.skip("the hosted provider does not run services yet")
    app = f"web-{secrets.token_hex(3)}"
    token = _client(host.url, host.admin_token).post("/apps", json={"name": app}).json()["token"]
    client = _client(host.url, token)
    client.put(f"/apps/{app}/github", json={"secret": SECRET, "repository": str(repository.path)})
    files = {"skyrig.toml": SERVED_TOML.format(app=app, url=host.url), **SERVED}
    api = httpx.URL(host.url)

    def answer(url: str) -> httpx.Response:
        netloc = httpx.URL(url).netloc.decode()
        return httpx.get(f"http://127.0.0.1:{api.port}/", headers={"Host": netloc}, timeout=60)

    def run(action: str, sha: str) -> dict[str, Any]:
        job = deliver(_client(host.url), app, repository.payload(action, 11, sha)).json()["job"]
        done = wait_for(client, app, job["id"], ("succeeded", "failed"), timeout=300)
        assert done["state"] == "succeeded", done["log"]
        return done

    first = repository.commit({k: v.replace("{greeting}", "hello") for k, v in files.items()})
    url = run("opened", first)["urls"]["web"]
    assert url.startswith(f"http://web.pr-11.{app}.localhost:"), url
    assert (answer(url).status_code, answer(url).text) == (200, "hello 1")

    second = repository.commit({"web/app.py": SERVED["web/app.py"].replace("{greeting}", "bonjour")})
    assert run("synchronize", second)["urls"]["web"] == url
    assert answer(url).text == "bonjour 1", "the service runs the PR's new head"

    run("closed", second)
    assert answer(url).status_code == 404
