"""Fixtures for engine tests on the reference provider: a copy of the shop app and ways to run skyrig."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from skyrig.cli.testing import Result, run_cli

SHOP = Path(__file__).resolve().parents[2] / "examples" / "shop"
CONFIG = """\
app = "shop"

[env.local]
type = "local"
provider = "memory"

[env.dev]
type = "development"
provider = "memory"

[env.prod]
type = "production"
provider = "memory"
"""


@pytest.fixture
def app(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh copy of the shop example with local, dev and prod environments on the memory provider."""
    root = tmp_path / "shop"
    shutil.copytree(SHOP, root, ignore=shutil.ignore_patterns(".skyrig", "__pycache__"))
    (root / "skyrig.toml").write_text(CONFIG)
    monkeypatch.setenv("SKYRIG_RETRY_BASE_MS", "1")
    return root


@pytest.fixture
def skyrig(app: Path, capsys: pytest.CaptureFixture[str]) -> Callable[..., Result]:
    """Run ``skyrig ARGS -C app`` in-process."""
    return lambda *args: run_cli([*args, "-C", str(app)], capsys)


def run_process(
    app: Path, *args: str, env: dict[str, str] | None = None, **kwargs
) -> subprocess.CompletedProcess:
    """Run skyrig in its own process (for crashes and concurrent applies)."""
    return subprocess.run(
        [sys.executable, "-m", "skyrig", *args, "-C", str(app)],
        capture_output=True,
        text=True,
        env={**os.environ, "SKYRIG_RETRY_BASE_MS": "1", **(env or {})},
        **kwargs,
    )


def cloud(app: Path):
    """The memory provider's simulated cloud of ``app``, opened without faults."""
    from skyrig_memory.cloud import MemoryCloud
    from skyrig_memory.settings import MemorySettings

    return MemoryCloud(app / ".skyrig" / "memory-cloud.db", MemorySettings())
