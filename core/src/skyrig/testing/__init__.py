"""Helpers for testing skyrig and apps built on it (the pytest plugin with fixtures comes with issue 5)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pytest


@dataclass
class Result:
    """What a ``skyrig`` command did: its exit code and what it printed."""

    code: int
    out: str
    err: str


def run_cli(args: list[str], capsys: pytest.CaptureFixture[str]) -> Result:
    """Run ``skyrig ARGS`` in this process, as the console script would, capturing its output."""
    from skyrig.cli import main

    capsys.readouterr()
    try:
        main(args)
    except SystemExit as done:
        code = done.code if isinstance(done.code, int) else 1
    else:
        code = 0
    captured = capsys.readouterr()
    return Result(code, captured.out, captured.err)
