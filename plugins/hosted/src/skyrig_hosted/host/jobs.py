"""Preview jobs: what a GitHub ``pull_request`` webhook asks the host to do, one at a time per app.

A job is ``open`` (opened, reopened, synchronize: ``skyrig preview open --pr N`` at the PR's head) or
``close`` (closed: ``skyrig preview close --pr N``). Jobs are rows of the host's store (table ``jobs``), so
a host that stops (``kill -9`` included) runs its queued and interrupted jobs again at its next start
(opening and closing a preview are idempotent). Each app has one worker thread while it has jobs: its
jobs run in order, and a newer job for a pull request supersedes its queued older one.

A job runs in ``DATA/apps/APP/checkout``, kept between jobs: ``git fetch`` of the head commit from the
app's repository, ``git checkout --force SHA``, ``git clean -fdx -e .skyrig`` (the app's skyrig state in
``.skyrig/`` survives), then the preview command in that folder with a minimal environment (``PATH``,
``HOME``, ``LANG``...) and ``SKYRIG_HOSTED_TOKEN``: the app's deploy token. Never the host's own
variables. The last lines of its output are kept with the job, with the deploy token and the
repository's password replaced by ``***``.

With a service user (``serve --service-user``), ``git`` and ``skyrig`` run as an unprivileged user with
the services' interpreter, in a checkout and a ``HOME`` of their own (:mod:`.jobuser`); whatever the
user, a ``skyrig.toml`` that keeps state in a SQLite file outside the checkout fails the job.
"""

from __future__ import annotations

import collections
import contextlib
import json
import logging
import os
import pwd
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from psycopg.types.json import Jsonb

from skyrig_hosted.host.isolation import ServiceUser
from skyrig_hosted.host.jobuser import SCHEMA as USER_SCHEMA
from skyrig_hosted.host.jobuser import JobUserError, job_folders, job_user, state_outside
from skyrig_hosted.host.store import Store

log = logging.getLogger("skyrig_hosted.host.jobs")

SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    id bigserial PRIMARY KEY,
    app text NOT NULL REFERENCES apps (name) ON DELETE CASCADE,
    action text NOT NULL CHECK (action IN ('open', 'close')),
    pr integer NOT NULL CHECK (pr > 0),
    sha text NOT NULL,
    event text NOT NULL,
    delivery text,
    state text NOT NULL CHECK (state IN ('queued', 'running', 'succeeded', 'failed', 'superseded')),
    superseded_by bigint,
    attempts integer NOT NULL DEFAULT 0,
    pid integer,
    exit_code integer,
    error text,
    log text NOT NULL DEFAULT '',
    created_at timestamptz NOT NULL DEFAULT now(),
    started_at timestamptz,
    finished_at timestamptz
);
CREATE INDEX IF NOT EXISTS jobs_app_state ON jobs (app, state, id);
ALTER TABLE jobs ADD COLUMN IF NOT EXISTS result jsonb;
"""

OPEN, CLOSE = "open", "close"
QUEUED, RUNNING, SUCCEEDED, FAILED, SUPERSEDED = "queued", "running", "succeeded", "failed", "superseded"
LOG_LINES = 200
"""Lines of a job's output kept with it (the last ones)."""
TIMEOUT = 1800.0
"""Seconds a job's command may run before it is stopped (the job fails)."""
GIT_PROTOCOLS = "file:git:http:https:ssh"
"""The transports ``git`` may use for an app's repository (never ``ext::``, which runs commands)."""
PASSED_VARIABLES = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "TZ")
"""The host's environment variables a job's commands get (no others: not the host's secrets)."""
TOKEN_VARIABLE = "SKYRIG_HOSTED_TOKEN"


@dataclass(frozen=True)
class Job:
    """One job, as the store keeps it."""

    id: int
    app: str
    action: str
    pr: int
    sha: str
    event: str
    state: str
    delivery: str | None = None
    superseded_by: int | None = None
    attempts: int = 0
    exit_code: int | None = None
    error: str | None = None
    log: str = ""
    result: dict[str, Any] | None = None
    created_at: str | None = None
    started_at: str | None = None
    finished_at: str | None = None

    @classmethod
    def of(cls, row: dict[str, Any]) -> Job:
        """The job of a ``jobs`` row."""
        times = {
            k: row[k].isoformat() if row[k] else None for k in ("created_at", "started_at", "finished_at")
        }
        fields = {k: row[k] for k in cls.__dataclass_fields__ if k in row and k not in times}
        return cls(**fields, **times)

    def view(self, *, with_log: bool = False) -> dict[str, Any]:
        """What the API answers of it (its log only when asked: ``GET .../jobs/ID``)."""
        view: dict[str, Any] = {
            "id": self.id,
            "action": self.action,
            "pr": self.pr,
            "sha": self.sha,
            "state": self.state,
            "event": self.event,
            "delivery": self.delivery,
            "attempts": self.attempts,
            "exit_code": self.exit_code,
            "error": self.error,
            "urls": (self.result or {}).get("urls"),
            "created_at": self.created_at,
            "started_at": self.started_at,
            "finished_at": self.finished_at,
        }
        if self.superseded_by is not None:
            view["superseded_by"] = self.superseded_by
        if with_log:
            view["result"] = self.result
            view["log"] = self.log
        return view


@dataclass(frozen=True)
class Checkout:
    """Where a job of an app gets its code and with which token it deploys (see :class:`Jobs`)."""

    repository: str
    token: str


def preview_command(action: str, pr: int, python: str = sys.executable) -> list[str]:
    """The command a job runs in the app's checkout: ``skyrig preview open|close --pr N --json`` (its
    outcome on standard output, kept as the job's result; its progress on standard error, its log), with
    the interpreter ``python``."""
    return [python, "-m", "skyrig", "preview", action, "--pr", str(pr), "--json"]


def shown(location: str) -> str:
    """A repository's location with any password in it (``https://user:pat@host/...``) as ``***``."""
    return re.sub(r"^([a-zA-Z][a-zA-Z0-9+.-]*://)[^/@]*@", r"\1***@", location)


def _password(location: str) -> str | None:
    found = re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]*://([^/@]*)@", location)
    return found.group(1) if found else None


class JobStore:
    """The ``jobs`` table of the host's store."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def _transaction(self) -> contextlib.AbstractContextManager[Any]:
        return self.store._transaction()  # one transaction on the store's pool

    def create_schema(self) -> None:
        """Makes the table if missing (one schema change at a time, as the store does)."""
        with self._transaction() as connection:
            connection.execute("SELECT pg_advisory_xact_lock(17017)")
            connection.execute(SCHEMA)
            connection.execute(USER_SCHEMA)

    @staticmethod
    def enqueue(connection: Any, app: str, action: str, pr: int, sha: str, event: str, delivery: str) -> Job:
        """Queues a job in the caller's transaction; a queued older job of the same PR is superseded."""
        row = connection.execute(
            "INSERT INTO jobs (app, action, pr, sha, event, delivery, state) "
            "VALUES (%s, %s, %s, %s, %s, %s, 'queued') RETURNING *",
            (app, action, pr, sha, event, delivery),
        ).fetchone()
        connection.execute(
            "UPDATE jobs SET state = 'superseded', superseded_by = %s, finished_at = now() "
            "WHERE app = %s AND pr = %s AND state = 'queued' AND id < %s",
            (row["id"], app, pr, row["id"]),
        )
        return Job.of(row)

    def claim(self, app: str) -> Job | None:
        """The app's oldest queued job, now running; None when it has none."""
        with self._transaction() as connection:
            row = connection.execute(
                "UPDATE jobs SET state = 'running', started_at = now(), attempts = attempts + 1, "
                "exit_code = NULL, error = NULL WHERE id = (SELECT id FROM jobs WHERE app = %s "
                "AND state = 'queued' ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED) RETURNING *",
                (app,),
            ).fetchone()
        return None if row is None else Job.of(row)

    def running(self, job: int, pid: int | None) -> None:
        """Records the pid of the job's command (a later host stops it if this one dies)."""
        with self._transaction() as connection:
            connection.execute("UPDATE jobs SET pid = %s WHERE id = %s", (pid, job))

    def log(self, job: int, text: str) -> None:
        """Replaces the job's log tail."""
        with self._transaction() as connection:
            connection.execute("UPDATE jobs SET log = %s WHERE id = %s", (text, job))

    def finish(
        self,
        job: int,
        state: str,
        exit_code: int | None,
        error: str | None,
        text: str,
        result: dict[str, Any] | None = None,
    ) -> None:
        """Records the job's outcome."""
        with self._transaction() as connection:
            connection.execute(
                "UPDATE jobs SET state = %s, exit_code = %s, error = %s, log = %s, result = %s, pid = NULL, "
                "finished_at = now() WHERE id = %s",
                (state, exit_code, error, text, None if result is None else Jsonb(result), job),
            )

    def job(self, app: str, job: int) -> Job | None:
        """One job of the app, or None."""
        with self._transaction() as connection:
            row = connection.execute("SELECT * FROM jobs WHERE app = %s AND id = %s", (app, job)).fetchone()
        return None if row is None else Job.of(row)

    def jobs(self, app: str, limit: int = 100) -> list[Job]:
        """The app's latest jobs, newest first."""
        with self._transaction() as connection:
            rows = connection.execute(
                "SELECT * FROM jobs WHERE app = %s ORDER BY id DESC LIMIT %s", (app, limit)
            ).fetchall()
        return [Job.of(row) for row in rows]

    def interrupted(self) -> list[tuple[int, int | None]]:
        """At a start: the jobs a previous host left running are queued again (superseded when a newer
        job of their PR waits); answers their ids and the pids their commands had."""
        with self._transaction() as connection:
            rows = connection.execute(
                "SELECT id, app, pr, pid FROM jobs WHERE state = 'running' FOR UPDATE"
            ).fetchall()
            for row in rows:
                newer = connection.execute(
                    "SELECT min(id) AS id FROM jobs WHERE app = %s AND pr = %s AND state = 'queued' "
                    "AND id > %s",
                    (row["app"], row["pr"], row["id"]),
                ).fetchone()["id"]
                state = QUEUED if newer is None else SUPERSEDED
                connection.execute(
                    "UPDATE jobs SET state = %s, superseded_by = %s, pid = NULL, "
                    "log = log || %s WHERE id = %s",
                    (state, newer, "\n[the host stopped while this job ran]\n", row["id"]),
                )
        return [(row["id"], row["pid"]) for row in rows]

    def cancel(self, app: str, reason: str) -> None:
        """The app's queued jobs fail with ``reason``."""
        with self._transaction() as connection:
            connection.execute(
                "UPDATE jobs SET state = 'failed', error = %s, finished_at = now() "
                "WHERE app = %s AND state = 'queued'",
                (reason, app),
            )

    def apps_with_queued_jobs(self) -> list[str]:
        """The apps that have jobs waiting."""
        with self._transaction() as connection:
            rows = connection.execute("SELECT DISTINCT app FROM jobs WHERE state = 'queued'").fetchall()
        return [row["app"] for row in rows]


class _Stopping(Exception):
    """The host stops: the job stays running in the store and runs again at the next start."""


class Jobs:
    """The job queue and its workers (one thread per app while it has jobs).

    ``checkout(app)`` answers the app's repository and deploy token (None: the app has no GitHub
    configuration any more, and its jobs fail saying so); ``command(action, pr)`` the argv a job runs
    (:func:`preview_command`). With ``user``, every command runs as that user (with ``uids``, as a uid of
    the app's own from that range: :mod:`.jobuser`)."""

    def __init__(
        self,
        store: Store,
        data: Path,
        checkout: Callable[[str], Checkout | None],
        *,
        command: Callable[[str, int], list[str]] = preview_command,
        timeout: float = TIMEOUT,
        user: ServiceUser | None = None,
        uids: tuple[int, int] | None = None,
    ) -> None:
        self.store = store
        self.user = user
        self.uids = uids if user is not None else None
        self.table = JobStore(store)
        self.data = data
        self.checkout = checkout
        self.command = command
        self.timeout = timeout
        self._lock = threading.Lock()
        self._workers: dict[str, threading.Thread] = {}
        self._again: set[str] = set()
        self._processes: dict[int, tuple[str, subprocess.Popen[str]]] = {}
        self._stopping = threading.Event()

    # -- lifecycle ---------------------------------------------------------------------------------------

    def start(self) -> None:
        """Makes the table, stops what a dead host's jobs left running, and runs the queued jobs."""
        self.table.create_schema()
        for _, pid in self.table.interrupted():
            if pid:
                _stop_leftover(pid)
        for app in self.table.apps_with_queued_jobs():
            self.kick(app)

    def close(self, wait: float = 15.0) -> None:
        """Stops the workers: a running command is stopped and its job stays ``running`` in the store
        (the next start runs it again)."""
        self._stopping.set()
        with self._lock:
            processes = [process for _, process in self._processes.values()]
            workers = list(self._workers.values())
        for process in processes:
            _stop_group(process, grace=5.0)
        deadline = time.monotonic() + wait
        for worker in workers:
            worker.join(max(0.0, deadline - time.monotonic()))

    def forget(self, app: str, wait: float = 15.0) -> None:
        """The app is being deleted: its queued jobs fail, its running command is stopped, its checkout
        removed."""
        self.table.cancel(app, "the app was deleted")
        with self._lock:
            processes = [process for owner, process in self._processes.values() if owner == app]
            worker = self._workers.get(app)
        for process in processes:
            _stop_group(process, grace=5.0)
        if worker is not None:
            worker.join(wait)
        remove_checkout(self.data, app)

    def __enter__(self) -> Jobs:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- the queue ---------------------------------------------------------------------------------------

    def kick(self, app: str) -> None:
        """The app has a new job: its worker runs it (started if it has none)."""
        if self._stopping.is_set():
            return
        with self._lock:
            if app in self._workers:
                self._again.add(app)
                return
            worker = threading.Thread(target=self._work, args=(app,), name=f"jobs-{app}", daemon=True)
            self._workers[app] = worker
        worker.start()

    def _work(self, app: str) -> None:
        try:
            while not self._stopping.is_set():
                job = self.table.claim(app)
                if job is None:
                    with self._lock:
                        if app not in self._again:
                            return
                        self._again.discard(app)
                    continue
                self._run(job)
        except Exception:  # the store failed: the job stays in it and runs again at the next start
            log.exception("the jobs of app %s stopped", app)
        finally:
            with self._lock:
                self._workers.pop(app, None)
                self._again.discard(app)

    # -- one job -----------------------------------------------------------------------------------------

    def _run(self, job: Job) -> None:
        output = _Output(self.table, job.id, job.log)  # an interrupted attempt's output stays above
        try:
            settings = self.checkout(job.app)
            if settings is None:
                raise _Failed(f"app {job.app!r} has no GitHub configuration (PUT /v1/apps/{job.app}/github)")
            output.hide(settings.token, _password(settings.repository))
            runner = _Runner.of(self, job.app)
            folder = runner.checkout
            self._fetch(job, settings.repository, runner, output)
            refused = state_outside(folder, job.pr)
            if refused is not None:
                raise _Failed(refused)
            argv = self.command(job.action, job.pr)
            output.line(f"$ {_described(argv)}")
            answer: list[str] = []
            environ = runner.environ({TOKEN_VARIABLE: settings.token})
            code = self._execute(job, argv, runner, environ, output, answer=answer)
            result = output.result("".join(answer))
        except _Stopping:
            output.line("[stopped with the host: this job runs again at its next start]")
            self.table.log(job.id, output.text())
            return
        except _Failed as failure:
            output.line(f"error: {failure}")
            self.table.finish(job.id, FAILED, None, str(failure), output.text())
            return
        except Exception as error:  # the host's own failure: the job fails, the next one still runs
            log.exception("job %s of app %s failed", job.id, job.app)
            failure = f"the host failed: {type(error).__name__}"
            self.table.finish(job.id, FAILED, None, failure, output.text())
            return
        if code == 0:
            self.table.finish(job.id, SUCCEEDED, 0, None, output.text(), result)
        else:
            error = f"skyrig preview {job.action} --pr {job.pr} exited with status {code}"
            self.table.finish(job.id, FAILED, code, error, output.text(), result)

    def _fetch(self, job: Job, repository: str, runner: _Runner, output: _Output) -> None:
        """The PR's head commit, checked out in the runner's checkout (made on the first job);
        ``.skyrig/`` kept."""
        folder = runner.checkout
        environ = runner.environ(
            {"GIT_TERMINAL_PROMPT": "0", "GIT_ALLOW_PROTOCOL": GIT_PROTOCOLS, "GIT_CONFIG_NOSYSTEM": "1"}
        )

        def git(*arguments: str) -> int:
            output.line("$ git " + " ".join(shown(a) for a in arguments))
            return self._execute(job, ["git", *arguments], runner, environ, output)

        if not (folder / ".git").is_dir() and git("init", "--quiet", ".") != 0:
            raise _Failed(f"git init failed in {folder}")
        # no FETCH_HEAD: it would name the repository, a password in its URL too
        fetch = ("fetch", "--quiet", "--no-tags", "--no-write-fetch-head")
        fetched = git(*fetch, "--depth=1", "--", repository, job.sha) == 0
        if not fetched:  # a fork's commit: GitHub serves it as the base repository's refs/pull/N/head
            fetched = git(*fetch, "--", repository, f"refs/pull/{job.pr}/head") == 0
        if not fetched and not (job.action == CLOSE and (folder / "skyrig.toml").exists()):
            raise _Failed(f"git could not fetch {job.sha} from {shown(repository)}")
        if runner.user is None:  # one an earlier host's git left
            with contextlib.suppress(OSError):
                (folder / ".git" / "FETCH_HEAD").unlink()
        if fetched:
            if git("checkout", "--quiet", "--force", "--detach", job.sha) != 0:
                raise _Failed(f"git could not check out {job.sha}")
            if git("clean", "--quiet", "-f", "-d", "-x", "-e", ".skyrig") != 0:
                raise _Failed("git clean failed")

    def _execute(
        self,
        job: Job,
        argv: list[str],
        runner: _Runner,
        environ: dict[str, str],
        output: _Output,
        *,
        answer: list[str] | None = None,
    ) -> int:
        """Runs ``argv`` in the runner's checkout as its user, its output into ``output``; answers its exit
        status. With ``answer``, its standard output goes there instead (its standard error still to
        ``output``)."""
        if self._stopping.is_set():
            raise _Stopping
        try:
            process = subprocess.Popen(
                argv,
                cwd=runner.checkout,
                env=environ,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT if answer is None else subprocess.PIPE,
                text=True,
                errors="replace",
                start_new_session=True,  # its own process group: stopped whole, on timeout or shutdown
                **(runner.user.popen() if runner.user else {}),  # type: ignore[arg-type]
            )
        except OSError as error:
            raise _Failed(f"{argv[0]} could not start: {error.strerror or error}") from None
        with self._lock:
            self._processes[job.id] = (job.app, process)
        self.table.running(job.id, process.pid)
        timed_out = threading.Event()

        def stop() -> None:
            timed_out.set()
            _stop_group(process)

        timer = threading.Timer(self.timeout, stop)
        timer.daemon = True
        timer.start()
        try:
            assert process.stdout is not None
            if answer is None:
                for line in process.stdout:
                    output.line(line.rstrip("\n"))
            else:
                errors = threading.Thread(target=output.lines_of, args=(process.stderr,), daemon=True)
                errors.start()
                answer.append(process.stdout.read())
                errors.join()
            code = process.wait()
        finally:
            timer.cancel()
            with self._lock:
                self._processes.pop(job.id, None)
        if self._stopping.is_set():
            raise _Stopping
        if timed_out.is_set():
            raise _Failed(f"{_described(argv)} ran longer than the jobs' limit ({self.timeout:g} s): stopped")
        return code


class _Failed(Exception):
    """The job failed before or outside its command: the message says why (one line)."""


@dataclass(frozen=True)
class _Runner:
    """Who runs an app's job's commands and where: the host's own user (``user`` None) or the job's
    unprivileged one, with a ``HOME`` of its own."""

    checkout: Path
    user: ServiceUser | None = None
    home: Path | None = None

    @classmethod
    def of(cls, jobs: Jobs, app: str) -> _Runner:
        """The runner of ``app``'s jobs, its folders made (:mod:`.jobuser`)."""
        try:
            user = job_user(jobs.store, app, jobs.user, jobs.uids)
            if user is None:
                checkout = jobs.data / "apps" / app / "checkout"
                checkout.mkdir(parents=True, exist_ok=True)
                return cls(checkout)
            checkout, home = job_folders(jobs.data, app, user)
        except JobUserError as error:
            raise _Failed(str(error)) from None
        return cls(checkout, user, home)

    def environ(self, extra: dict[str, str]) -> dict[str, str]:
        """A command's whole environment (:func:`_environ`), ``HOME`` and ``TMPDIR`` the job user's."""
        if self.user is None or self.home is None:
            return _environ(extra)
        # who holds a lock, as skyrig says it (getpass reads these first: a uid of the range has no name)
        name = _user_name(self.user.uid)
        own = {"HOME": str(self.home), "TMPDIR": str(self.home), "USER": name, "LOGNAME": name}
        return _environ({**own, **extra})


class _Output:
    """A job's output: its last :data:`LOG_LINES` lines with secrets hidden, written to the store at most
    once a second while it runs."""

    def __init__(self, table: JobStore, job: int, previous: str = "") -> None:
        self.table = table
        self.job = job
        self.lines: collections.deque[str] = collections.deque(previous.splitlines(), maxlen=LOG_LINES)
        self.hidden: list[str] = []
        self.written = 0.0
        self.lock = threading.Lock()

    def hide(self, *texts: str | None) -> None:
        """Texts replaced by ``***`` wherever they appear."""
        self.hidden.extend(t for t in texts if t and len(t) >= 4)

    def _hidden(self, text: str) -> str:
        for secret in self.hidden:
            text = text.replace(secret, "***")
        return text

    def line(self, text: str) -> None:
        """One more line of output."""
        with self.lock:
            self.lines.append(self._hidden(text))
            if time.monotonic() - self.written <= 1.0:
                return
            self.written = time.monotonic()
            text = self.text()
        self.table.log(self.job, text)

    def lines_of(self, stream: Any) -> None:
        """Every line of ``stream`` (until it ends)."""
        for line in stream:
            self.line(line.rstrip("\n"))

    def result(self, text: str) -> dict[str, Any] | None:
        """The command's JSON outcome, or None (its standard output then joins the log)."""
        try:
            found = json.loads(text) if text.strip() and self._hidden(text) == text else None
        except ValueError:
            found = None
        if isinstance(found, dict):
            return found
        for line in text.splitlines():
            self.line(line)
        return None

    def text(self) -> str:
        return "\n".join(self.lines) + ("\n" if self.lines else "")


def _user_name(uid: int) -> str:
    """The name of the user ``uid``, or ``skyrig-job-UID`` when it has none."""
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return f"skyrig-job-{uid}"


def _described(argv: list[str]) -> str:
    """How the log names a command: ``skyrig preview open --pr 7`` for ``python -m skyrig ...``."""
    return " ".join(argv[2:] if argv[1:3] == ["-m", "skyrig"] else argv)


def _environ(extra: dict[str, str]) -> dict[str, str]:
    environ = {name: os.environ[name] for name in PASSED_VARIABLES if name in os.environ}
    environ.setdefault("PATH", os.defpath)
    environ.setdefault("LANG", "C.UTF-8")
    return {**environ, "PYTHONUNBUFFERED": "1", "NO_COLOR": "1", **extra}


def _stop_group(process: subprocess.Popen[str], grace: float = 10.0) -> None:
    """Stops the process's group: SIGTERM, then SIGKILL after ``grace`` seconds."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(grace)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, signal.SIGKILL)


def _stop_leftover(pid: int) -> None:
    """Stops the process group a dead host's job left (pid = its group), only if that process still
    leads its own group and runs git or skyrig (so the pid was not given to another program meanwhile)."""
    with contextlib.suppress(ProcessLookupError, PermissionError, OSError):
        command = Path(f"/proc/{pid}/cmdline").read_bytes()
        if os.getpgid(pid) == pid and (b"skyrig" in command or command.startswith(b"git")):
            os.killpg(pid, signal.SIGKILL)


def remove_checkout(data: Path, app: str) -> None:
    """Removes the app's checkout (and its ``.skyrig`` state): a new app of an old name starts afresh."""
    shutil.rmtree(data / "apps" / app, ignore_errors=True)
