"""The repository stays ruff clean (lint and format), so style never drifts between sessions, and its
layering holds: the import contracts in pyproject.toml (docs/architecture.md explains them)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _tool(name: str, *args: str, cwd: Path = ROOT, **env: str) -> subprocess.CompletedProcess[str]:
    found = shutil.which(name) or str(Path(sys.executable).with_name(name))
    if not Path(found).exists():
        pytest.skip(f"{name} is not installed (scripts/bootstrap installs it)")
    environment = {**os.environ, **env}
    return subprocess.run(
        [found, *args], cwd=cwd, capture_output=True, text=True, check=False, env=environment
    )


def _ruff(*args: str) -> subprocess.CompletedProcess[str]:
    return _tool("ruff", *args)


def test_ruff_lint_is_clean():
    result = _ruff("check", ".")
    assert result.returncode == 0, result.stdout + result.stderr


def test_ruff_format_is_clean():
    result = _ruff("format", "--check", ".")
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_import_contracts_hold():
    result = _tool("lint-imports", "--no-cache")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


def test_a_provider_importing_core_internals_breaks_the_contract(tmp_path):
    """The provider contract bites: a plugin that imports the engine directly is reported, by module and
    line, while one that imports only skyrig.provider passes."""
    contracts = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]["contracts"]
    [providers] = [c for c in contracts if c["name"].startswith("Providers import only")]
    for name, source in (
        ("skyrig_rogue", "from skyrig.engine.graph import Node\n"),
        ("skyrig_polite", "from skyrig.provider import Node\n"),
    ):
        package = tmp_path / name
        package.mkdir()
        (package / "__init__.py").write_text(source)
    config = tmp_path / "contracts.toml"
    forbidden = ", ".join(f'"{module}"' for module in providers["forbidden_modules"])
    config.write_text(
        "[tool.importlinter]\n"
        'root_packages = ["skyrig", "skyrig_rogue", "skyrig_polite"]\n'
        "exclude_type_checking_imports = true\n"
        "[[tool.importlinter.contracts]]\n"
        'name = "providers"\n'
        'type = "forbidden"\n'
        'source_modules = ["skyrig_rogue", "skyrig_polite"]\n'
        f"forbidden_modules = [{forbidden}]\n"
        "allow_indirect_imports = true\n"
    )
    result = _tool(
        "lint-imports", "--no-cache", "--config", str(config), cwd=tmp_path, PYTHONPATH=str(tmp_path)
    )
    assert result.returncode == 1, result.stdout + result.stderr
    assert "skyrig_rogue -> skyrig.engine.graph (l.1)" in result.stdout, result.stdout
    assert "skyrig_polite" not in result.stdout.split("Broken contracts")[-1], result.stdout
