"""``skyrig test``: run the app's tests with pytest against fresh test databases and in-process pub/sub."""

from __future__ import annotations

import importlib.util
import json
import os
import signal
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from skyrig.errors import UserError

if TYPE_CHECKING:
    from skyrig.config import Config

VALUE_OPTIONS = frozenset({"-k", "-m", "-p", "-o", "-W", "-n"})
"""pytest options whose value, the next argument, is no path (never rebased)."""


@click.command(
    context_settings={"ignore_unknown_options": True, "allow_interspersed_args": False},
)
@click.option(
    "-C", "--app-dir", "app_dir", default=None, help="The app's folder (default: here, or the nearest above)."
)
@click.argument("pytest_args", nargs=-1, type=click.UNPROCESSED)
def test(app_dir: str | None, pytest_args: tuple[str, ...]) -> int:
    """Run the app's tests: pytest with PYTEST_ARGS, in the app's folder, against the test cluster.

    Every SQL database is a fresh clone of a template that has its migrations applied (migrated once,
    again only when they change); topics are in-process and deliver when a test drains them. The
    fixtures skyrig_published, skyrig_drain, skyrig_cron, skyrig_reset and skyrig_secrets are there for
    the tests. Exits with pytest's exit code. Put pytest's own options after '--' if they clash.
    """
    from skyrig.cli.app import app_root
    from skyrig.config import load_config

    if importlib.util.find_spec("pytest") is None:
        raise UserError("pytest is not installed", "pip install pytest")
    config = load_config(app_root(app_dir, require_config=True))
    session = _prepare(config)
    with tempfile.TemporaryDirectory(prefix="skyrig-test-") as folder:
        env = _environment(config.root, Path(folder), session)
        command = [
            sys.executable,
            "-m",
            "pytest",
            "-p",
            "skyrig",
            *_rebased(pytest_args, Path.cwd().resolve(), config.root),
        ]
        # pytest handles Ctrl-C itself (and reports); this process only waits for its exit code
        previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
        try:
            code = subprocess.run(command, cwd=config.root, env=env, check=False).returncode
        finally:
            signal.signal(signal.SIGINT, previous)
    return 128 - code if code < 0 else code  # killed by a signal: as a shell reports it


def _rebased(args: tuple[str, ...], here: Path, root: Path) -> list[str]:
    """``args`` with the paths the user gave relative to ``here`` made absolute (pytest runs in the app
    root): ``skyrig test test_orders.py::test_one`` from the tests folder still means that file."""
    rebased: list[str] = []
    for arg in args:
        path, separator, rest = arg.partition("::")
        is_value = bool(rebased) and rebased[-1] in VALUE_OPTIONS
        if here != root and not arg.startswith("-") and not is_value and path and (here / path).exists():
            arg = str((here / path).resolve()) + separator + rest
        rebased.append(arg)
    return rebased


def _prepare(config: Config) -> dict[str, Any]:
    """The session file's content: the model, and what each provider's test support prepared."""
    from skyrig.analysis import build_model
    from skyrig.testing.harness import runtime_config
    from skyrig.testing.support import choose_supports, support_of

    model = build_model(config.root, config.app)
    providers = choose_supports(config, model)
    supports = {
        name: support_of(name).prepare(config.root, model) for name in sorted(set(providers.values()))
    }
    return {
        "root": str(config.root),
        "model": model.to_json(),
        "providers": providers,
        "supports": supports,
        "runtime": runtime_config(model, providers),
    }


def _environment(root: Path, folder: Path, session: dict[str, Any]) -> dict[str, str]:
    """pytest's environment: the session, a runtime config granting everything, the app on the path."""
    from skyrig.runtime import VARIABLE
    from skyrig.testing.plugin import SESSION_VARIABLE

    (folder / "session.json").write_text(json.dumps(session), encoding="utf-8")
    (folder / "runtime.json").write_text(json.dumps(session["runtime"], indent=2), encoding="utf-8")
    env = dict(os.environ)
    env[SESSION_VARIABLE] = str(folder / "session.json")
    env[VARIABLE] = str(folder / "runtime.json")
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(root), env.get("PYTHONPATH", "")) if p)
    return env
