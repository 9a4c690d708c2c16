"""Running the ``skyrig`` command in-process, in tests: a public module for skyrig's own tests and for
provider authors' (the conformance suite drives every command through it).

:func:`run_cli` runs a command inside a pytest test, capturing its output with the ``capsys`` fixture;
:func:`invoke` runs one anywhere else, capturing its output itself. Both return a :class:`Result` and
never raise ``SystemExit``. :func:`interrupt_twice` presses Ctrl-C twice on a command running in a
process of its own. (App authors test their apps with :mod:`skyrig.testing` instead.)
"""

from __future__ import annotations

import contextlib
import io
import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import subprocess

    import pytest

__all__ = ["Result", "interrupt_twice", "invoke", "run_cli"]


@dataclass
class Result:
    """What a ``skyrig`` command did: its exit code and what it printed."""

    code: int
    out: str
    err: str

    @property
    def text(self) -> str:
        """Everything it printed: its output, then its errors."""
        return self.out + self.err


def run_cli(args: list[str], capsys: pytest.CaptureFixture[str]) -> Result:
    """Run ``skyrig ARGS`` in this process, as the console script would, capturing its output with
    pytest's ``capsys``."""
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


def invoke(args: list[str], *, stdin: str = "") -> Result:
    """Run ``skyrig ARGS`` in this process, as the console script would, with ``stdin`` as its input,
    capturing what it writes to ``sys.stdout`` and ``sys.stderr``."""
    from skyrig.cli import main

    out, err = io.StringIO(), io.StringIO()
    saved_stdin = sys.stdin
    sys.stdin = io.StringIO(stdin)
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                main(args)
                code = 0
            except SystemExit as done:
                code = done.code if isinstance(done.code, int) else (0 if done.code is None else 1)
    finally:
        sys.stdin = saved_stdin
    return Result(code, out.getvalue(), err.getvalue())


def interrupt_twice(command: subprocess.Popen[str], timeout: float = 60) -> str:
    """Press Ctrl-C on ``command`` (a ``skyrig`` process started with ``stderr=PIPE`` and ``text=True``),
    wait until it says it is stopping, press it again, and return everything it wrote to stderr once it
    has exited. Two signals that arrive before Python runs the handler count as one: hence the wait."""
    import signal

    assert command.stderr is not None, "start the command with stderr=subprocess.PIPE"
    command.send_signal(signal.SIGINT)
    seen = []
    for line in command.stderr:
        seen.append(line)
        if "stopping: waiting for" in line:
            break
    command.send_signal(signal.SIGINT)
    _, rest = command.communicate(timeout=timeout)
    return "".join(seen) + (rest or "")
