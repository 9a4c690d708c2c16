"""``skyrig cron``: list an app's cron jobs and run one now."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime

import click

from skyrig.cli.session import app_dir_option, local_env_option, open_session
from skyrig.errors import UserError


@click.group()
def cron() -> None:
    """Cron jobs: list them, run one now."""


@cron.command(name="list")
@local_env_option
@app_dir_option
def list_(env_name: str, app_dir: str | None) -> None:
    """The app's cron jobs, their schedule and next run (UTC)."""
    from rich.console import Console
    from rich.table import Table

    from skyrig.declarations.cron import next_run

    session = open_session(app_dir, env_name)
    now = datetime.now(UTC)
    table = Table("job", "service", "schedule", "next run (UTC)", "title")
    for job in session.model.of_kind("cron_job"):
        schedule = job.schedule or f"every {job.every}"
        table.add_row(
            job.name, job.service, schedule, f"{next_run(job, now):%Y-%m-%d %H:%M}", job.title or ""
        )
    Console().print(table)


@cron.command(name="run")
@click.argument("job")
@local_env_option
@app_dir_option
def run_(job: str, env_name: str, app_dir: str | None) -> None:
    """Run cron job JOB now: in the running service when skyrig run is up, else in a process of its own
    with the service's runtime config."""
    from skyrig.run.runfile import read_run_file, trigger_cron

    session = open_session(app_dir, env_name)
    found = session.model.resource("cron_job", job)
    if found is None:
        declared = ", ".join(r.name for r in session.model.of_kind("cron_job")) or "none"
        raise UserError(f"the app declares no cron job {job!r}", f"declared cron jobs: {declared}")
    state = read_run_file(session.root, env_name)
    if state is not None and found.service in state.services:
        outcome = trigger_cron(state, found.service, job)
    else:
        outcome = _run_alone(session.root, env_name, found.service, job)
    if not outcome.get("ok"):
        raise UserError(f"cron job {job!r} failed: {outcome.get('error')}")
    where = "in the running service" if state is not None else "in a process of its own"
    click.echo(f"cron job {job} ran {where} in {outcome.get('seconds', 0):.2f} s")


def _run_alone(root: os.PathLike[str], env_name: str, service: str, job: str) -> dict[str, object]:
    from pathlib import Path

    config = Path(root) / ".skyrig" / "runtime" / env_name.replace(":", "-") / f"{service}.json"
    if not config.exists():
        raise UserError(
            f"environment {env_name!r} has no runtime config for service {service!r}",
            f"provision it first: skyrig apply --env {env_name} (or start it with skyrig run)",
        )
    environment = {
        **os.environ,
        "SKYRIG_RUNTIME_CONFIG": str(config),
        "PYTHONPATH": os.pathsep.join([str(root), os.environ.get("PYTHONPATH", "")]),
    }
    done = subprocess.run(
        [sys.executable, "-c", "from skyrig.runtime.host import main_cron; main_cron()", job],
        cwd=root,
        env=environment,
        capture_output=True,
        text=True,
    )
    if done.stderr:
        sys.stderr.write(done.stderr)
    try:
        return json.loads(done.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        return {"job": job, "ok": False, "error": f"the job's process exited with code {done.returncode}"}
