"""``skyrig build docker``: the Dockerfile of an app's image. (No Docker engine runs on the test machines:
the file is checked, not built.)"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from skyrig.cli.testing import run_cli

APP = {
    "svc/__init__.py": 'from skyrig import Service\nservice = Service("svc", app="svc.api:app")\n',
    "svc/api.py": "app = None\n",
    "requirements.txt": "fastapi\n",
}
CONFIG = (
    'app = "built"\n[env.local]\ntype = "local"\nprovider = "memory"\n'
    '[env.prod]\ntype = "production"\nprovider = "memory"\n'
)


def _app(tmp_path: Path) -> Path:
    root = tmp_path / "built"
    for name, text in {**APP, "skyrig.toml": CONFIG}.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    return root


def test_one_image_serves_every_service_with_the_providers_its_clouds_use(tmp_path, capsys):
    root = _app(tmp_path)
    result = run_cli(["build", "docker", str(root)], capsys)
    assert result.code == 0, result.err
    dockerfile = (root / "Dockerfile").read_text()
    assert "RUN pip install --compile -r requirements.txt" in dockerfile
    assert "RUN pip install --compile skyrig uvicorn skyrig-memory\n" in dockerfile, "the data planes of prod"
    assert '"skyrig.runtime.host:create"' in dockerfile and "USER app" in dockerfile
    assert ".skyrig/" in (root / ".dockerignore").read_text(), "local state stays out of the image"


def _loaded_from_bytecode(root: Path) -> dict[str, bool]:
    """Whether importing each of the app's modules in ``root``, as a container runs it
    (``PYTHONDONTWRITEBYTECODE``), reads bytecode (``python -v`` says "code object from" a .pyc) or
    compiles the source."""
    modules = {"svc": root / "svc" / "__init__.py", "svc.api": root / "svc" / "api.py"}
    environment = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1", "PYTHONPATH": str(root)}
    environment.pop("PYTHONPYCACHEPREFIX", None)
    ran = subprocess.run(
        [sys.executable, "-v", "-c", "import svc.api"],
        cwd=root,
        env=environment,
        capture_output=True,
        text=True,
    )
    assert ran.returncode == 0, ran.stderr
    cached = {name: f"{path.parent / '__pycache__' / path.stem}." for name, path in modules.items()}
    return {
        name: any(
            line.startswith("# code object from") and prefix in line for line in ran.stderr.splitlines()
        )
        for name, prefix in cached.items()
    }


def test_the_image_compiles_the_apps_bytecode_when_it_is_built(tmp_path, capsys):
    root = _app(tmp_path)
    assert run_cli(["build", "docker", str(root)], capsys).code == 0
    lines = (root / "Dockerfile").read_text().splitlines()
    compile_line = next(i for i, line in enumerate(lines) if line.startswith("RUN python -m compileall"))
    assert lines.index("COPY . .") < compile_line < lines.index("USER app"), "after the code, as root"
    assert "*.pyc" in (root / ".dockerignore").read_text(), "the host's bytecode is not the image's"
    assert _loaded_from_bytecode(root) == {"svc": False, "svc.api": False}, "a start compiles without it"
    # what that RUN does in the image (its /app is the app's folder), with this Python
    command = lines[compile_line].removeprefix("RUN ").replace("/app", str(root)).split()
    subprocess.run([sys.executable, *command[1:]], check=True)
    assert _loaded_from_bytecode(root) == {"svc": True, "svc.api": True}


def test_an_existing_dockerfile_is_kept_unless_forced(tmp_path, capsys):
    root = _app(tmp_path)
    (root / "Dockerfile").write_text("FROM mine\n")
    result = run_cli(["build", "docker", str(root)], capsys)
    assert result.code == 1 and "Dockerfile exist" in result.err and "--force" in result.err
    assert (root / "Dockerfile").read_text() == "FROM mine\n" and not (root / ".dockerignore").exists()
    assert run_cli(["build", "docker", str(root), "--force", "--port", "9000"], capsys).code == 0
    assert '"--port", "9000"]' in (root / "Dockerfile").read_text()


def test_image_is_refused_where_the_compute_provider_runs_no_image(tmp_path, capsys):
    root = _app(tmp_path)
    result = run_cli(["apply", "--env", "local", "--yes", "--image", "built:v1", "-C", str(root)], capsys)
    assert result.code == 1
    assert "--image: provider 'memory' (compute of environment 'local') runs no images" in result.err
