"""Managed cron on the host: when a job is due (five-field schedules and ``every``, a firing missed while
the host was down made once), and against a real host of its own whose scheduler's clock the tests move
(``DATA/cron-clock``, read by a ``--fast`` host): the host fires a job on schedule with a signed request
its service accepts, once; unsigned and forged requests are refused; ``run_cron_job`` runs it through the
proxy; a job missed while the host was down fires once when it starts again."""

from __future__ import annotations

import shutil
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from support import write_files

from skyrig_hosted.host.cron import check_timing, file_clock, interval_seconds, latest_due, next_due


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


# -- when a job is due ----------------------------------------------------------------------------------------


def test_every_counts_from_midnight_utc_and_a_schedule_is_five_cron_fields() -> None:
    assert next_due(None, "1h", at("2026-01-01T10:20:00")) == at("2026-01-01T11:00:00")
    assert next_due(None, "15m", at("2026-01-01T10:15:00")) == at("2026-01-01T10:30:00"), "strictly after"
    assert next_due(None, "24h", at("2026-01-01T10:20:00")) == at("2026-01-02T00:00:00")
    assert next_due("0 3 * * *", None, at("2026-01-01T10:20:00")) == at("2026-01-02T03:00:00")
    assert interval_seconds("1h30m") == 5400 and interval_seconds("24h") == 86400
    for bad in ("7m", "25h", "30s", "1x", ""):
        with pytest.raises(ValueError):
            interval_seconds(bad)
    for schedule, every in ((None, None), ("0 3 * * *", "1h"), ("0 3 * *", None), ("61 * * * *", None)):
        with pytest.raises(ValueError):
            check_timing(schedule, every)
    check_timing("*/5 9-17 * * 1-5", None)
    check_timing(None, "6h")


def test_a_due_job_fires_for_its_latest_due_time_once_however_many_were_missed() -> None:
    since = at("2026-01-01T10:20:00")
    assert latest_due(None, "1h", since, at("2026-01-01T10:59:59")) is None
    assert latest_due(None, "1h", since, at("2026-01-01T11:00:00")) == at("2026-01-01T11:00:00")
    assert latest_due(None, "1h", since, at("2026-01-01T15:30:00")) == at("2026-01-01T15:00:00")
    fired = latest_due(None, "1h", since, at("2026-01-01T15:30:00"))
    assert fired is not None and latest_due(None, "1h", fired, at("2026-01-01T15:59:00")) is None

    nightly = "0 3 * * *"
    assert latest_due(nightly, None, since, at("2026-01-02T02:59:00")) is None
    assert latest_due(nightly, None, since, at("2026-01-02T03:00:00")) == at("2026-01-02T03:00:00")
    assert latest_due(nightly, None, since, at("2026-01-05T10:00:00")) == at("2026-01-05T03:00:00")
    assert latest_due("*/10 * * * *", None, since, at("2026-01-01T10:40:00")) == at("2026-01-01T10:40:00")


def test_a_test_clock_reads_its_file_while_it_exists(tmp_path: Path) -> None:
    path = tmp_path / "cron-clock"
    clock = file_clock(path)
    assert abs((clock() - datetime.now(UTC)).total_seconds()) < 5
    path.write_text(str(at("2030-06-01T03:00:00").timestamp()))
    assert clock() == at("2030-06-01T03:00:00")


# -- against a host of its own --------------------------------------------------------------------------------

APP = {
    "skyrig.toml": """app = "ticker"

[env."pr:2"]
type = "preview"
provider = "hosted"

[env."pr:2".hosted]
url = "{url}"
""",
    "clock/__init__.py": 'from skyrig import Service\n\nservice = Service("clock", app="clock.web:app")\n',
    "clock/web.py": """async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"tick tock"})
""",
    "clock/jobs.py": """from pathlib import Path

from skyrig import CronJob

MARKS = {marks!r}


def nightly() -> None:
    with Path(MARKS).open("a") as marks:
        marks.write("ran\\n")


CronJob("nightly", title="Nightly", schedule="0 3 * * *", endpoint=nightly)
""",
}


IDLE = 2
"""Seconds without a request after which the module's host suspends an environment's services."""


def suspending_host(data: Path) -> Any:
    """``skyrig-hosted serve --fast --idle-suspend IDLE`` on ``data``, for tests."""
    from skyrig_hosted.conformance import Host

    class Suspending(Host):
        def command(self) -> list[str]:
            return [*super().command(), "--idle-suspend", str(IDLE)]

    return Suspending(data)


@pytest.fixture(scope="module")
def cron_host() -> Iterator[Any]:
    """A host of this module's own (its scheduler's clock is moved; idle environments suspended after
    :data:`IDLE` seconds), with a data folder it keeps across a restart (under a folder the PostgreSQL
    server's own user can reach when the tests run as root)."""
    parent = Path(tempfile.mkdtemp(prefix="skyrig-hosted-cron-"))
    parent.chmod(0o755)
    try:
        with suspending_host(parent / "data") as running:
            yield running
    finally:
        shutil.rmtree(parent, ignore_errors=True)


@pytest.fixture(scope="module")
def ticker(cron_host: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """The app ``ticker`` applied on the module's host: service ``clock`` and its cron job ``nightly``."""
    from skyrig.cli.testing import invoke

    root = tmp_path_factory.mktemp("ticker")
    marks = root / "marks"
    write_files(root, APP, {"{url}": cron_host.url, "{marks!r}": repr(str(marks))})
    environ = {"SKYRIG_HOSTED_TOKEN": cron_host.admin_token}
    with pytest.MonkeyPatch.context() as patch:
        for name, value in environ.items():
            patch.setenv(name, value)
        result = invoke(["apply", "--env", "pr:2", "--yes", "-C", str(root)])
    assert result.code == 0, result.text
    yield {"root": root, "marks": marks}


def _marks(path: Path) -> int:
    return len(path.read_text().splitlines()) if path.exists() else 0


def _wait_for_marks(path: Path, count: int, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while _marks(path) < count:
        assert time.monotonic() < deadline, f"the job ran {_marks(path)} time(s), not {count}"
        time.sleep(0.1)


def _move_clock(host: Any, moment: datetime) -> None:
    (host.data / "cron-clock").write_text(str(moment.timestamp()))


def _jobs(host: Any) -> list[dict[str, Any]]:
    from skyrig_hosted.api import HostedClient

    return HostedClient(host.url, host.admin_token).cron_jobs("ticker", "pr:2")


def _proxied(host: Any, path: str, headers: dict[str, str]) -> httpx.Response:
    port = httpx.URL(host.url).port
    headers = {"Host": f"clock.pr-2.ticker.localhost:{port}", **headers}
    return httpx.post(f"http://127.0.0.1:{port}{path}", headers=headers, timeout=60)


def test_the_host_fires_a_due_job_once_with_a_signed_request_and_refuses_forged_ones(
    cron_host: Any, ticker: dict[str, Any]
) -> None:
    from skyrig.provider import Context, Environment
    from skyrig.runtime.signing import HEADER, sign
    from skyrig_hosted import provider
    from skyrig_hosted.api import HostedClient, Refused
    from skyrig_hosted.settings import HostedSettings

    marks = ticker["marks"]
    (job,) = _jobs(cron_host)
    assert job["name"] == "nightly" and job["service"] == "clock" and job["last_run"] is None
    due = datetime.fromisoformat(job["next_run"].replace("Z", "+00:00"))
    assert (due.hour, due.minute) == (3, 0)

    started = time.monotonic()
    _move_clock(cron_host, due + timedelta(seconds=30))
    _wait_for_marks(marks, 1)
    fired_in = time.monotonic() - started
    time.sleep(2.5)  # more looks of the scheduler: the job is not fired again
    assert _marks(marks) == 1, "a due job is fired once"
    (job,) = _jobs(cron_host)
    assert job["ok"] is True and job["error"] is None and job["last_run"]
    assert datetime.fromisoformat(job["next_run"].replace("Z", "+00:00")) == due + timedelta(days=1)

    path = "/__skyrig/cron/nightly"
    assert _proxied(cron_host, path, {}).status_code in (401, 403), "an unsigned request is refused"
    forged = sign(b"not the environment's key", "POST", path)
    assert _proxied(cron_host, path, {HEADER: forged}).status_code == 401, "a forged request is refused"
    assert _marks(marks) == 1

    admin = HostedClient(cron_host.url, cron_host.admin_token)
    key = admin.cron_key("ticker", "pr:2")
    assert len(key) == 64 and _proxied(cron_host, path, {HEADER: sign(key.encode(), "POST", path)}).is_success
    _wait_for_marks(marks, 2)
    skyrigs_files = [p.read_bytes() for p in (ticker["root"] / ".skyrig").rglob("*") if p.is_file()]
    assert not any(key.encode() in data for data in skyrigs_files), "the key is in none of skyrig's files"
    assert key not in "".join(cron_host.output), "nor in the host's output"
    other = admin.request("POST", "/apps", body={"name": "not-ticker"})["token"]
    with pytest.raises(Refused):
        HostedClient(cron_host.url, other).cron_key("ticker", "pr:2")

    # run_cron_job: what the scheduler does, to the service's public URL (*.localhost is loopback)
    settings = HostedSettings(url=cron_host.url)
    context = Context(
        "ticker",
        Environment("pr:2", "preview", {}, {"hosted": settings}),
        settings,
        HostedClient(cron_host.url, cron_host.admin_token),
    )
    (deployment,) = admin.deployments("ticker", "pr:2")
    provider.run_cron_job(context, "nightly", deployment["url"])
    assert _marks(marks) == 3
    print(f"fired {fired_in:.2f} s after the clock reached its due time")


def test_a_due_job_wakes_its_suspended_environment(cron_host: Any, ticker: dict[str, Any]) -> None:
    from skyrig_hosted.api import HostedClient

    admin = HostedClient(cron_host.url, cron_host.admin_token)
    deadline = time.monotonic() + 30
    while admin.deployments("ticker", "pr:2")[0]["state"] != "suspended":
        assert time.monotonic() < deadline, "the idle environment was not suspended"
        time.sleep(0.2)
    marks = ticker["marks"]
    before = _marks(marks)
    (job,) = _jobs(cron_host)
    due = datetime.fromisoformat(job["next_run"].replace("Z", "+00:00"))
    _move_clock(cron_host, due + timedelta(seconds=30))
    _wait_for_marks(marks, before + 1)
    assert admin.deployments("ticker", "pr:2")[0]["state"] == "running", "the job woke its service"
    assert _jobs(cron_host)[0]["ok"] is True


def test_the_host_refuses_a_cron_job_without_a_valid_timing(cron_host: Any, ticker: dict[str, Any]) -> None:
    from skyrig.provider import ProviderError
    from skyrig_hosted.api import HostedClient

    admin = HostedClient(cron_host.url, cron_host.admin_token)
    for properties, said in (
        ({"service": "clock", "schedule": "every night"}, "five-field cron expression"),
        ({"service": "clock", "every": "7m"}, "divide 24h"),
        ({"service": "clock", "schedule": "0 3 * * *", "every": "1h"}, "exactly one"),
        ({"schedule": "0 3 * * *"}, "'service'"),
    ):
        with pytest.raises(ProviderError, match=said) as refused:
            admin.put_resource("ticker", "pr:2", "cron_job", "bad", properties)
        assert "422" in str(refused.value)
    assert [job["name"] for job in _jobs(cron_host)] == ["nightly"], "a refused job is not kept"


def test_a_job_missed_while_the_host_was_down_fires_once_when_it_starts_again(
    cron_host: Any, ticker: dict[str, Any]
) -> None:
    """Last of the module: it stops the module's host."""
    marks = ticker["marks"]
    (job,) = _jobs(cron_host)
    due = datetime.fromisoformat(job["next_run"].replace("Z", "+00:00"))
    before = _marks(marks)
    cron_host.stop()
    _move_clock(cron_host, due + timedelta(days=3, seconds=30))  # four due times passed while down
    started = time.monotonic()
    with suspending_host(cron_host.data) as again:
        _wait_for_marks(marks, before + 1)
        caught_up = time.monotonic() - started
        time.sleep(2.5)
        assert _marks(marks) == before + 1, "missed firings are made once, not once each"
        (job,) = _jobs(again)
        assert job["ok"] is True
        assert datetime.fromisoformat(job["next_run"].replace("Z", "+00:00")) == due + timedelta(days=4)
    print(f"caught up {caught_up:.2f} s after the host's start")
