"""``skyrig run``: provision the local environment and serve every service of the app."""

from __future__ import annotations

import signal
import time

import click

from skyrig.cli.app import app_root
from skyrig.errors import UserError


@click.command()
@click.argument("app_dir", required=False)
@click.option("--env", "env_name", default="local", show_default=True, help="A local environment.")
@click.option(
    "--port",
    default=4000,
    show_default=True,
    type=click.IntRange(1024, 65000),
    help="The first service's port; the others follow.",
)
def run(app_dir: str | None, env_name: str, port: int) -> None:
    """Provision the local environment (as apply does) and run every service until Ctrl-C."""
    from rich.console import Console
    from rich.table import Table

    from skyrig.config import load_config
    from skyrig.engine.session import Session
    from skyrig.runtime.supervisor import Supervisor

    console = Console(stderr=True, highlight=False, soft_wrap=True)
    started = time.perf_counter()
    session = Session(load_config(app_root(app_dir, require_config=True)), env_name)
    if session.environment.type != "local":
        raise UserError(
            f"environment {env_name!r} is {session.environment.type}, not local",
            "skyrig run serves local environments; use skyrig apply for the others",
        )
    with session.locked(wait=True) as fence:
        plan = session.plan()
        if plan.has_changes() or plan.has_adoptions():
            outcome = session.apply(plan, fence, parallelism=10)
            if not outcome.succeeded:
                problems = "; ".join(f"{node}: {error}" for node, error in sorted(outcome.failed.items()))
                raise UserError(
                    f"the local environment could not be provisioned: {problems}",
                    "fix it and run again; what did succeed is kept and reused",
                )
        else:
            session.write_runtime(plan, fence)
    provisioned = time.perf_counter() - started
    supervisor = Supervisor(session.root, session.root / ".skyrig" / "runtime" / env_name.replace(":", "-"))
    from skyrig.plugins.registry import load_provider

    servers = [
        server
        for name in sorted(set(session.environment.providers.values()))
        for server in load_provider(name).local_servers(session.context(name), session.model)
    ]
    stopping = False

    def stop(signum: int, frame: object) -> None:
        nonlocal stopping
        stopping = True

    # From here on Ctrl-C only asks to stop, so that it cannot cut between a process start and its record.
    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    try:
        running = supervisor.start(session.model.services, port, servers=servers)
        table = Table("service", "url", title=f"{session.app}/{env_name} is running")
        for item in running:
            table.add_row(item.service, item.url)
        console.print(table)
        console.print(
            f"ready in {time.perf_counter() - started:.1f} s (provisioning {provisioned:.1f} s); "
            "Ctrl-C stops everything"
        )
        while not stopping:
            crashed = supervisor.crashed()
            if crashed is not None:
                supervisor._collect(crashed)
                tail = "\n    ".join(crashed.log) or "(no output)"
                raise UserError(
                    f"service {crashed.service!r} stopped (exit code {crashed.process.returncode}); "
                    f"everything was stopped. Its last output:\n    {tail}"
                )
            time.sleep(0.2)
    finally:
        supervisor.stop()
    console.print("stopped: every service is down")
