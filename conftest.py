"""The workspace's test run: temporary folders out of pytest's per-user folder.

Embedded PostgreSQL servers run as a system user of their own and must traverse the folders above their
data. pytest makes its per-user folder (``/tmp/pytest-of-USER``) private again each time any pytest
process starts without ``--basetemp``, and some tests start pytest (``skyrig test``), which would lock the
servers of other tests out mid-run. So this run keeps its temporary folders elsewhere: a folder per run,
removed by a later run once a day old.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from pathlib import Path

import pytest


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    if config.option.basetemp or hasattr(config, "workerinput"):  # given, or an xdist worker's
        return
    root = Path(tempfile.gettempdir()) / f"skyrig-pytest-{os.getuid()}"
    root.mkdir(mode=0o711, exist_ok=True)
    for old in root.glob("run-*"):
        if time.time() - old.stat().st_mtime > 86400:
            shutil.rmtree(old, ignore_errors=True)
    config.option.basetemp = root / f"run-{os.getpid()}"


def pytest_xdist_auto_num_workers(config: pytest.Config) -> int:
    """``-n auto``: one and a half workers a core. The tests mostly wait on servers and on the processes
    they start (a third of two cores stayed idle with one worker a core), so a worker more finishes the
    run a quarter sooner."""
    return max(2, (os.cpu_count() or 1) * 3 // 2)
