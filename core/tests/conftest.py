"""Fixtures for the core's tests: apps written to a temporary folder, and the CLI run in-process."""

from __future__ import annotations

import os
import sys
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from skyrig.cli.testing import Result, run_cli
from skyrig.plugins import registry

TEST_PLUGINS = Path(__file__).parent / "fixtures" / "plugins"
SHOP = Path(__file__).resolve().parents[2] / "examples" / "shop"


@pytest.fixture
def run(capsys: pytest.CaptureFixture[str]) -> Callable[..., Result]:
    """Run ``skyrig ARGS`` in-process, as the console script does; returns exit code and output."""
    return lambda *args: run_cli(list(args), capsys)


@pytest.fixture
def write_app(tmp_path: Path) -> Callable[..., Path]:
    """Write an app: ``{relative path: source}`` (dedented); ``skyrig.toml`` names it ``testapp``."""

    def write(files: dict[str, str], config: str | None = None) -> Path:
        root = tmp_path / "app"
        root.mkdir(exist_ok=True)
        (root / "skyrig.toml").write_text(config if config is not None else 'app = "testapp"\n')
        for relative, source in files.items():
            path = root / relative
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(textwrap.dedent(source).lstrip())
        return root

    return write


@pytest.fixture
def test_plugins(monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Install the test-only providers (partial, sqlonly, broken) and the policy plugin (nopublic)."""
    monkeypatch.syspath_prepend(str(TEST_PLUGINS))
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(TEST_PLUGINS), os.environ.get("PYTHONPATH", "")]))
    _forget_providers()
    yield TEST_PLUGINS
    _forget_providers()
    for name in ("skyrig_testproviders", "skyrig_testproviders_broken"):
        sys.modules.pop(name, None)


def _forget_providers() -> None:
    # Both skyrig and stevedore remember what they loaded; only tests change what is installed mid-process.
    from stevedore.extension import ExtensionManager

    registry.load_provider.cache_clear()
    getattr(ExtensionManager, "ENTRY_POINT_CACHE", {}).clear()
