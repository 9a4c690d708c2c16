"""Local secrets: in a file only the user can read, outside the app and outside state."""

from __future__ import annotations

import stat
import subprocess
import sys

from skyrig.cli import main

CANARY = "local-canary-9b2e7d"


def test_a_local_secret_is_private_and_read_by_the_service(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    app = tmp_path / "app"
    (app / "pay").mkdir(parents=True)
    (app / "skyrig.toml").write_text(
        'app = "shop"\n[env.local]\ntype = "local"\nprovider = "memory"\nsecrets = "local"\n'
    )
    (app / "pay/__init__.py").write_text(
        'from skyrig import Secret, Service\nservice = Service("pay", app="pay:app")\napp = None\n'
        'key = Secret("api-key")\n\ndef charge():\n    return key.value\n'
    )
    monkeypatch.setattr(sys, "stdin", __import__("io").StringIO(CANARY))
    for args in (("secret", "set", "api-key", "--env", "local"), ("apply", "--env", "local", "--yes")):
        try:
            main([*args, "-C", str(app)])
        except SystemExit as done:
            assert not done.code, capsys.readouterr().err

    stored = tmp_path / "config" / "skyrig" / "secrets" / "shop-local.json"
    assert stat.S_IMODE(stored.stat().st_mode) == 0o600
    assert stat.S_IMODE(stored.parent.stat().st_mode) == 0o700
    for path in (app / ".skyrig").rglob("*"):
        if path.is_file():
            assert CANARY.encode() not in path.read_bytes(), path
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys; sys.path.insert(0, '.'); from pay import charge; print(charge())",
        ],
        cwd=app,
        capture_output=True,
        text=True,
        env={
            "SKYRIG_RUNTIME_CONFIG": str(app / ".skyrig/runtime/local/pay.json"),
            "XDG_CONFIG_HOME": str(tmp_path / "config"),
            "PATH": "/usr/bin:/bin",
        },
    )
    assert result.stdout.strip() == CANARY, result.stderr
