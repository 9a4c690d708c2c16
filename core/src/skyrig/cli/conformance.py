"""``skyrig conformance PROVIDER``: the shared conformance suite against an installed provider."""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

import click

from skyrig.errors import UserError

CONFTEST = '''"""Written by skyrig conformance: the suite against {provider!r}."""

from skyrig_conformance import provider_profile

skyrig_profile = provider_profile({provider!r})
'''
TESTS = '''"""Written by skyrig conformance: the shared suite, unmodified."""

from skyrig_conformance.suite import *  # noqa: F403
'''


@click.command(context_settings={"ignore_unknown_options": True})
@click.argument("provider")
@click.option("--json", "json_path", type=click.Path(dir_okay=False), help="Write the matrix as JSON here.")
@click.option("--markdown", "markdown_path", type=click.Path(dir_okay=False), help="Write it as Markdown.")
@click.argument("pytest_args", nargs=-1, type=click.UNPROCESSED)
def conformance(
    provider: str, json_path: str | None, markdown_path: str | None, pytest_args: tuple[str, ...]
) -> int:
    """Run the conformance suite against installed provider PROVIDER, with the profile it registers
    (entry point group skyrig.conformance), and print its capability matrix. Arguments after the options
    go to pytest (-x, -k EXPR, -n 4, ...)."""
    from importlib.util import find_spec

    from skyrig.plugins.registry import load_provider

    if find_spec("skyrig_conformance") is None:
        raise UserError("the conformance suite is not installed", "pip install skyrig-conformance")
    load_provider(provider)  # a clear error when it is not installed
    with tempfile.TemporaryDirectory(prefix="skyrig-conformance-") as folder:
        root = Path(folder)
        (root / "conftest.py").write_text(CONFTEST.format(provider=provider))
        (root / "test_conformance.py").write_text(TESTS)
        matrix_json = root / "matrix.json"
        command = [sys.executable, "-m", "pytest", str(root), "-p", "no:cacheprovider", "-q", "-rs"]
        command += ["--rootdir", str(root), "--skyrig-matrix-json", str(matrix_json), *pytest_args]
        if markdown_path:
            command += ["--skyrig-matrix-md", str(Path(markdown_path).resolve())]
        done = subprocess.run(command, cwd=root, check=False)
        if not matrix_json.exists():
            raise UserError(f"the suite did not run against {provider!r} (pytest exited {done.returncode})")
        table = json.loads(matrix_json.read_text())
    if json_path:
        Path(json_path).write_text(json.dumps(table, indent=2, ensure_ascii=False) + "\n")
    _show(table)
    return done.returncode


def _show(table: dict[str, dict[str, dict[str, object]]]) -> None:
    from rich.table import Table

    from skyrig.cli.output import console

    colours = {"passed": "green", "failed": "red", "not shown by the backend": "yellow"}
    for provider, rows in table.items():
        view = Table(title=f"conformance of {provider}", title_justify="left")
        view.add_column("capability")
        view.add_column("result")
        view.add_column("tests passed", justify="right")
        view.add_column("notes")
        for row, entry in rows.items():
            status = str(entry["status"])
            notes = [f"failed: {name}" for name in entry["failed"]]  # type: ignore[union-attr]
            notes += [f"not shown: {note}" for note in entry["limits"]]  # type: ignore[union-attr]
            colour = colours.get(status, "dim")
            view.add_row(row, f"[{colour}]{status}[/]", str(entry["passed"]), "\n".join(notes))
        console().print(view)
