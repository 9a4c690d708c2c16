"""Managed cron on the host: each environment's signing key, and the scheduler that fires its cron jobs.

A cron job is a resource of kind ``cron_job`` (properties ``service``, ``endpoint``, ``schedule``: five
cron fields, UTC, or ``every``: whole minutes dividing a day, counted from midnight UTC, as skyrig's own
:func:`skyrig.declarations.cron.next_run`). The scheduler thread looks at every job each
:data:`TICK` seconds; a job that is due is fired in a worker: its service is woken
(:meth:`~skyrig_hosted.host.services.Services.wake`, which starts a suspended environment's processes),
the environment's idle clock starts again, and a ``POST /__skyrig/cron/JOB`` signed with the
environment's key (:mod:`skyrig.runtime.signing`) goes to the service's process on 127.0.0.1, whose
service host checks the signature and runs the job's endpoint. Its outcome (``ok``, ``error``, seconds)
is kept.

What the scheduler knows of a job is kept in the host's store: the due time it last fired for (or, for a
job it has not fired yet, when it first saw it). That time is written before the job is fired, so a
firing is made at most once, and after a host was down past one or more due times, the job is fired once
at start (not once per missed time).

The signing key: 32 random bytes (hex), one per environment, kept encrypted with the host key, made with
the environment's first cron job (or first asked for); ``GET .../cron-key`` gives it to the admin, the
app's token and the environment's own runtime token (its services check requests with it).

Tests move the scheduler's clock: a host started with ``--fast`` (tests only) reads the time from
``DATA/cron-clock`` (unix seconds) while that file exists. Signatures always carry the real time.
"""

from __future__ import annotations

import contextlib
import logging
import re
import secrets
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg

from skyrig_hosted.host.store import Environment, NotFound, Store

log = logging.getLogger("skyrig_hosted.host.cron")

TICK = 1.0
"""Seconds between two looks at the jobs."""
RUN_TIMEOUT = 900.0
"""Seconds a job's request may take before its run is counted as failed."""
CLOCK_FILE = "cron-clock"
DAY = 24 * 3600

SCHEMA = """
CREATE TABLE IF NOT EXISTS cron_keys (
    environment text PRIMARY KEY REFERENCES environments (id) ON DELETE CASCADE,
    key_encrypted text NOT NULL
);
CREATE TABLE IF NOT EXISTS cron_runs (
    environment text NOT NULL REFERENCES environments (id) ON DELETE CASCADE,
    job text NOT NULL,
    due_at timestamptz NOT NULL,
    last_run timestamptz,
    ok boolean,
    error text,
    seconds double precision,
    PRIMARY KEY (environment, job)
);
"""

_DURATION = re.compile(r"^(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$")


# -- when a job is due --------------------------------------------------------------------------------------


def interval_seconds(every: str) -> int:
    """Seconds of ``every`` (``"5m"``, ``"1h30m"``): whole minutes from 1m to 24h that divide 24h."""
    match = _DURATION.match(every or "")
    if not every or match is None:
        raise ValueError(f"every={every!r} is not a duration like 5m, 1h or 6h")
    units = zip(match.groups(), (DAY, 3600, 60, 1), strict=True)
    seconds = sum(int(part) * unit for part, unit in units if part)
    if seconds % 60 or not 60 <= seconds <= DAY or DAY % seconds:
        raise ValueError(f"every={every!r} must be whole minutes from 1m to 24h that divide 24h")
    return seconds


def check_timing(schedule: Any, every: Any) -> None:
    """A :class:`ValueError` unless exactly one of a valid five-field ``schedule`` and ``every`` is given."""
    if (schedule is None) == (every is None):
        raise ValueError("give exactly one of 'schedule' and 'every'")
    if every is not None:
        if not isinstance(every, str):
            raise ValueError("'every' must be a string like 1h")
        interval_seconds(every)
        return
    from croniter import croniter

    if not isinstance(schedule, str) or len(schedule.split()) != 5 or not croniter.is_valid(schedule):
        raise ValueError(f"schedule {schedule!r} is not a five-field cron expression like '0 3 * * *'")


def next_due(schedule: str | None, every: str | None, after: datetime) -> datetime:
    """The first due time strictly after ``after`` (UTC)."""
    after = after.astimezone(UTC)
    if every is not None:
        step = interval_seconds(every)
        midnight = after.replace(hour=0, minute=0, second=0, microsecond=0)
        elapsed = (after - midnight).total_seconds()
        return midnight + timedelta(seconds=(elapsed // step + 1) * step)
    from croniter import croniter

    return croniter(schedule, after).get_next(datetime)


def latest_due(schedule: str | None, every: str | None, since: datetime, now: datetime) -> datetime | None:
    """The last due time in (``since``, ``now``], or None when none is: what a firing now is for (one
    firing however many due times passed)."""
    first = next_due(schedule, every, since)
    if first > now:
        return None
    now = now.astimezone(UTC)
    if every is not None:
        step = interval_seconds(every)
        midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)
        elapsed = (now - midnight).total_seconds()
        return max(first, midnight + timedelta(seconds=(elapsed // step) * step))
    from croniter import croniter

    found = croniter(schedule, now).get_prev(datetime)
    following = croniter(schedule, found).get_next(datetime)
    return max(first, following if following <= now else found)


# -- the clock -----------------------------------------------------------------------------------------------


def real_clock() -> datetime:
    """Now, UTC."""
    return datetime.now(UTC)


def file_clock(path: Path) -> Callable[[], datetime]:
    """A clock for tests: the unix time written in ``path`` while it exists, else the real time."""

    def now() -> datetime:
        with contextlib.suppress(OSError, ValueError):
            return datetime.fromtimestamp(float(path.read_text().strip()), UTC)
        return real_clock()

    return now


# -- the scheduler -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Job:
    """A cron job of an environment, as the scheduler sees it."""

    environment: Environment
    name: str
    service: str
    schedule: str | None
    every: str | None
    due_at: datetime | None
    last_run: datetime | None = None
    ok: bool | None = None
    error: str | None = None
    seconds: float | None = None

    @property
    def key(self) -> tuple[str, str]:
        return (self.environment.id, self.name)


class Cron:
    """The environments' signing keys and the scheduler (:meth:`start` at host start, :meth:`close` at its
    end). ``services``: the host's :class:`~skyrig_hosted.host.services.Services`."""

    def __init__(
        self,
        store: Store,
        services: Any,
        *,
        clock: Callable[[], datetime] = real_clock,
        tick: float = TICK,
        workers: int = 8,
    ) -> None:
        self.store = store
        self.services = services
        self.clock = clock
        self.tick_seconds = tick
        self._running: set[tuple[str, str]] = set()
        self._lock = threading.Lock()
        self._closing = threading.Event()
        self._thread: threading.Thread | None = None
        self._pool = ThreadPoolExecutor(workers, thread_name_prefix="skyrig-cron")
        with store._transaction() as connection:
            connection.execute("SELECT pg_advisory_xact_lock(17019)")  # one schema change at a time
            connection.execute(SCHEMA)

    # -- the signing key ---------------------------------------------------------------------------------

    def signing_key(self, environment: Environment) -> str:
        """The environment's signing key (hex), made if it has none (concurrent callers get one key)."""
        select = "SELECT key_encrypted FROM cron_keys WHERE environment = %s"
        try:
            with self.store._transaction() as connection:
                row = connection.execute(select, (environment.id,)).fetchone()
                if row is None:
                    connection.execute(
                        "INSERT INTO cron_keys (environment, key_encrypted) VALUES (%s, %s) "
                        "ON CONFLICT (environment) DO NOTHING",
                        (environment.id, self.store.key.encrypt(secrets.token_hex(32))),
                    )
                    row = connection.execute(select, (environment.id,)).fetchone()
        except psycopg.errors.ForeignKeyViolation:
            raise NotFound(f"no environment {environment.name!r} of app {environment.app!r}") from None
        return self.store.key.decrypt(row["key_encrypted"])

    def forget(self, environment: Environment, job: str) -> None:
        """Forgets what the scheduler knew of ``job`` (it is deleted; a job made again starts afresh)."""
        with self.store._transaction() as connection:
            connection.execute(
                "DELETE FROM cron_runs WHERE environment = %s AND job = %s", (environment.id, job)
            )

    # -- what the API shows ------------------------------------------------------------------------------

    def jobs(self, environment: Environment | None = None) -> list[Job]:
        """The cron jobs of ``environment`` (of every environment when None), by environment and name."""
        with self.store._transaction() as connection:
            rows = connection.execute(
                "SELECT e.app, e.name AS env, e.type, e.id, r.name, r.properties, c.due_at, c.last_run, "
                "c.ok, c.error, c.seconds FROM resources r JOIN environments e ON e.id = r.environment "
                "LEFT JOIN cron_runs c ON c.environment = r.environment AND c.job = r.name "
                "WHERE r.kind = 'cron_job' AND r.outputs IS NOT NULL "
                "AND (%(id)s::text IS NULL OR e.id = %(id)s) ORDER BY e.app, e.name, r.name",
                {"id": environment.id if environment else None},
            ).fetchall()
        return [
            Job(
                Environment(row["app"], row["env"], row["type"], row["id"]),
                row["name"],
                str(row["properties"].get("service") or ""),
                row["properties"].get("schedule"),
                row["properties"].get("every"),
                row["due_at"],
                row["last_run"],
                row["ok"],
                row["error"],
                row["seconds"],
            )
            for row in rows
        ]

    def view(self, job: Job) -> dict[str, Any]:
        """A job as ``GET .../cron`` shows it (times in ISO 8601, UTC)."""
        try:
            upcoming = next_due(job.schedule, job.every, job.due_at or self.clock())
        except ValueError:
            upcoming = None
        return {
            "name": job.name,
            "service": job.service,
            "schedule": job.schedule,
            "every": job.every,
            "last_run": _iso(job.last_run),
            "ok": job.ok,
            "error": job.error,
            "seconds": job.seconds,
            "next_run": _iso(upcoming),
            "running": job.key in self._running,
        }

    # -- the scheduler -----------------------------------------------------------------------------------

    def start(self) -> None:
        """Starts the scheduler thread (its first look fires what was missed while the host was down)."""
        self._thread = threading.Thread(target=self._loop, name="skyrig-cron", daemon=True)
        self._thread.start()

    def close(self) -> None:
        """Stops the scheduler; runs in flight are not waited for (their outcome is lost, not their
        due time: they are not fired again)."""
        self._closing.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._pool.shutdown(wait=False, cancel_futures=True)

    def __enter__(self) -> Cron:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _loop(self) -> None:
        while not self._closing.is_set():
            try:
                self.tick()
            except Exception:  # the loop must go on (the store restarting, say)
                log.exception("the cron scheduler failed a round")
            self._closing.wait(self.tick_seconds)

    def tick(self, now: datetime | None = None) -> list[Any]:
        """One look at every job: a job seen for the first time is remembered from ``now``; a due one is
        recorded as fired for its latest due time, then fired in a worker. The futures of the runs."""
        now = now or self.clock()
        started = []
        for job in self.jobs():
            with self._lock:
                if job.key in self._running:
                    continue
            if job.due_at is None:  # made while no scheduler ran: counted from now
                self.remember(job.environment, job.name, now)
                continue
            try:
                due = latest_due(job.schedule, job.every, job.due_at, now)
            except ValueError as error:
                self._record(job, False, f"the job's timing is not valid: {error}", None)
                continue
            if due is None:
                continue
            if not self._claim(job, due):
                continue
            with self._lock:
                self._running.add(job.key)
            started.append(self._pool.submit(self._fire, job))
        return started

    def remember(self, environment: Environment, job: str, now: datetime | None = None) -> None:
        """Starts counting ``job``'s due times from ``now`` (when it is made; a job known already keeps
        its own)."""
        with contextlib.suppress(psycopg.errors.ForeignKeyViolation), self.store._transaction() as connection:
            connection.execute(
                "INSERT INTO cron_runs (environment, job, due_at) VALUES (%s, %s, %s) "
                "ON CONFLICT (environment, job) DO NOTHING",
                (environment.id, job, now or self.clock()),
            )

    def _claim(self, job: Job, due: datetime) -> bool:
        """Records ``due`` as fired (before firing: at most once); False when the job changed meanwhile."""
        with self.store._transaction() as connection:
            row = connection.execute(
                "UPDATE cron_runs SET due_at = %s WHERE environment = %s AND job = %s AND due_at = %s "
                "RETURNING job",
                (due, job.environment.id, job.name, job.due_at),
            ).fetchone()
        return row is not None

    def _record(self, job: Job, ok: bool, error: str | None, seconds: float | None) -> None:
        with self.store._transaction() as connection:
            connection.execute(
                "UPDATE cron_runs SET last_run = %s, ok = %s, error = %s, seconds = %s "
                "WHERE environment = %s AND job = %s",
                (real_clock(), ok, error, seconds, job.environment.id, job.name),
            )

    def _fire(self, job: Job) -> dict[str, Any]:
        try:
            outcome = self.run(job.environment, job.service, job.name)
            self._record(job, bool(outcome.get("ok")), outcome.get("error"), outcome.get("seconds"))
            return outcome
        except Exception as error:  # kept as the outcome; the scheduler goes on
            log.exception("cron job %s failed", job.name)
            self._record(job, False, f"{type(error).__name__}: {error}", None)
            return {"job": job.name, "ok": False, "error": str(error)}
        finally:
            with self._lock:
                self._running.discard(job.key)

    def run(self, environment: Environment, service: str, job: str) -> dict[str, Any]:
        """Fire ``job`` now: wake ``service`` and send it the signed request; its outcome ``{"job", "ok",
        "error", "seconds"}`` (a refusal or a failure to reach the service is an outcome too)."""
        import httpx

        from skyrig.runtime.signing import HEADER, sign

        started = time.monotonic()
        try:
            port = self.services.wake(environment, service)
        except Exception as error:  # not deployed, or failed to start: said in the outcome
            return {"job": job, "ok": False, "error": f"service {service!r}: {error}", "seconds": None}
        self.services.touch(environment)
        path = f"/__skyrig/cron/{job}"
        signature = sign(self.signing_key(environment).encode(), "POST", path, b"")
        try:
            url = f"http://127.0.0.1:{port}{path}"
            response = httpx.post(url, content=b"", headers={HEADER: signature}, timeout=RUN_TIMEOUT)
        except httpx.HTTPError as error:
            seconds = round(time.monotonic() - started, 3)
            answer = f"the service did not answer: {error}"
            return {"job": job, "ok": False, "error": answer, "seconds": seconds}
        finally:
            self.services.touch(environment)
        try:
            answer = response.json()
        except ValueError:
            answer = {}
        if not isinstance(answer, dict):
            answer = {}
        ok = response.status_code == 200 and bool(answer.get("ok", True))
        error = None if ok else str(answer.get("error") or f"the service answered {response.status_code}")
        seconds = answer.get("seconds", round(time.monotonic() - started, 3))
        return {"job": job, "ok": ok, "error": error, "seconds": seconds}


def routes(api: Any) -> list[Any]:
    """The API's cron routes on :class:`~skyrig_hosted.host.api.HostApi` ``api`` (whose ``cron`` is a
    :class:`Cron`): ``GET .../cron-key`` (the signing key) and ``GET .../cron`` (the jobs, with their last
    and next runs), for the admin, the app's token and the environment's runtime token."""
    from starlette.routing import Route

    def cron_key(call: Any) -> tuple[int, Any]:
        app, env = call.params["app"], call.params["env"]
        api._reader(call, app, env)
        environment = api._environment(app, env)
        return 200, {"key": api.cron.signing_key(environment)}

    def cron_jobs(call: Any) -> tuple[int, Any]:
        app, env = call.params["app"], call.params["env"]
        api._reader(call, app, env)
        environment = api._environment(app, env)
        return 200, {"jobs": [api.cron.view(job) for job in api.cron.jobs(environment)]}

    base = "/apps/{app}/envs/{env}"
    return [
        Route(f"{base}/cron-key", api._endpoint(cron_key), methods=["GET"]),
        Route(f"{base}/cron", api._endpoint(cron_jobs), methods=["GET"]),
    ]


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.astimezone(UTC).isoformat().replace("+00:00", "Z")
