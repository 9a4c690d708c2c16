"""``skyrig build docker``: the Dockerfile of an app's image. (No Docker engine runs on the test machines:
the file is checked, not built.)"""

from __future__ import annotations

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
    assert "RUN pip install -r requirements.txt" in dockerfile
    assert "RUN pip install skyrig uvicorn skyrig-memory\n" in dockerfile, "the data planes of prod"
    assert '"skyrig.runtime.host:create"' in dockerfile and "USER app" in dockerfile
    assert ".skyrig/" in (root / ".dockerignore").read_text(), "local state stays out of the image"


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
