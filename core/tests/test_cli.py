"""The skyrig command: init, version, help, and where it finds the app."""

from __future__ import annotations

import json
import subprocess
import sys

from skyrig import __version__


def test_init_scaffolds_an_app_that_checks_out(tmp_path, run):
    target = tmp_path / "my-shop"
    result = run("init", str(target))
    assert result.code == 0, result.err
    assert (target / "skyrig.toml").read_text().startswith("# skyrig configuration")
    assert 'app = "my-shop"' in (target / "skyrig.toml").read_text()
    assert run("check", str(target)).code == 0
    model = json.loads(run("model", str(target), "--json").out)
    assert [(s["name"], s["app"]) for s in model["services"]] == [("api", "api.api:app")]


def test_init_never_overwrites(tmp_path, run):
    (tmp_path / "skyrig.toml").write_text("mine")
    result = run("init", str(tmp_path), "--name", "demo")
    assert result.code == 1
    assert "already has skyrig.toml; nothing was written" in result.err
    assert (tmp_path / "skyrig.toml").read_text() == "mine"
    assert not (tmp_path / "api").exists()


def test_init_checks_names(tmp_path, run):
    result = run("init", str(tmp_path / "x"), "--service", "Bad_Service")
    assert result.code == 1
    assert "--service: invalid name 'Bad_Service'" in result.err
    assert not (tmp_path / "x").exists()


def test_model_finds_the_app_root_from_a_subfolder(write_app, run, monkeypatch):
    root = write_app(
        {"svc/__init__.py": 'from skyrig import Service\ns = Service("svc", app="svc:app")\napp = 1\n'}
    )
    monkeypatch.chdir(root / "svc")
    result = run("model", "--json")
    assert result.code == 0, result.err
    assert json.loads(result.out)["app"] == "testapp"


def test_version_and_help():
    process = subprocess.run([sys.executable, "-m", "skyrig", "--version"], capture_output=True, text=True)
    assert process.stdout.strip() == f"skyrig, version {__version__}"
    process = subprocess.run([sys.executable, "-m", "skyrig", "--help"], capture_output=True, text=True)
    for command in ("init", "model", "check", "config", "providers"):
        assert f"  {command} " in process.stdout


def test_unknown_command_is_a_usage_error(run):
    result = run("plna")
    assert result.code == 2
    assert "No such command 'plna'" in result.err


def test_missing_folder(run, tmp_path):
    result = run("model", str(tmp_path / "nowhere"))
    assert result.code == 1
    assert "is not a folder" in result.err


def test_an_apply_shows_a_providers_error_text_as_written(write_app, run, monkeypatch):
    """A provider's message is text, not markup: ``[env.dev.memory]`` in it is shown, not swallowed."""
    from skyrig.errors import ProviderError
    from skyrig_memory.nodes import MemoryNodeType

    root = write_app(
        {
            "shop/__init__.py": 'from skyrig import Bucket, Service\nshop = Service("shop", app="shop:app")\n'
            'files = Bucket("files")\napp = None\n'
        },
        'app = "testapp"\n[env.dev]\ntype = "development"\nprovider = "memory"\n',
    )

    def refuse(self, context, node):
        raise ProviderError(f"{node.id}: set [env.dev.memory] path to a [bold]writable[/] file")

    monkeypatch.setattr(MemoryNodeType, "create", refuse)
    result = run("apply", "-C", str(root), "--env", "dev", "--yes")
    assert result.code == 1
    assert "set [env.dev.memory] path to a [bold]writable[/] file" in result.err, result.err
