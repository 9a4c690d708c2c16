"""Testing skyrig and apps built on it.

- ``skyrig test`` runs an app's tests with the pytest plugin :mod:`skyrig.testing.plugin` (inert in any
  other pytest run) and its fixtures (:mod:`skyrig.testing.fixtures`), over the harness
  (:mod:`skyrig.testing.harness`): in-process pub/sub (:mod:`skyrig.testing.pubsub`) and the providers'
  test servers (:mod:`skyrig.testing.support`).
- :func:`run_cli` and :class:`Result` run the ``skyrig`` command in-process in skyrig's own tests.
"""

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
