"""``skyrig run``: provision the local environment and serve every service of the app, until Ctrl-C."""

from __future__ import annotations

import signal
import time

import click

from skyrig.cli.app import app_root


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
@click.option(
    "--dashboard-port",
    default=9400,
    show_default=True,
    type=click.IntRange(0, 65000),
    help="The development dashboard's port (0: no dashboard).",
)
@click.option(
    "--cron",
    is_flag=True,
    help="Run cron jobs on their schedule (off by default, as in the clouds' "
    "local emulators; skyrig cron run JOB runs one now).",
)
@click.option("--reload/--no-reload", default=True, show_default=True, help="Restart on code changes.")
def run(app_dir: str | None, env_name: str, port: int, dashboard_port: int, cron: bool, reload: bool) -> None:
    """Provision the local environment (as apply does) and run every service until Ctrl-C.

    Each service runs in a process of its own with its subscriptions' consumers; a table shows where
    each one listens. A code change re-reads the model, provisions what changed and restarts the services
    that run the changed code; a service that crashes is restarted.
    """
    from rich.console import Console

    from skyrig.run.runner import LocalRun
    from skyrig.run.watch import Watcher
    from skyrig.run.zygote import Zygote

    started = time.perf_counter()
    console = Console(stderr=True, highlight=False, soft_wrap=True)
    root = app_root(app_dir, require_config=True)
    watcher = Watcher(root) if reload else None  # before the code is read: no change is missed
    zygote = Zygote.launch(root)  # first: it imports the services' frameworks while the model is read
    try:
        session = LocalRun(root, env_name, console, zygote)
    except BaseException:
        if zygote is not None:
            zygote.close()
        raise
    stopping = False

    def stop(signum: int, frame: object) -> None:
        nonlocal stopping
        if stopping:
            raise KeyboardInterrupt
        stopping = True

    session.prepare(dashboard_port)
    try:
        session.provision()
    except BaseException:
        session.stop(servers=False)
        raise
    # From here on Ctrl-C only asks to stop, so it cannot cut between a process start and its record.
    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    try:
        session.start(port, dashboard_port, cron=cron)
        session.show(time.perf_counter() - started)
        while not stopping:
            session.check()
            if cron:
                session.tick_cron()
            changes = watcher.changes() if watcher is not None else None
            if changes:
                session.reload(changes)
            time.sleep(0.1)
    finally:
        session.stop()
    console.print("stopped: every service is down")
