"""``skyrig build docker``: the Dockerfile of an app's image, for providers that run containers; ``skyrig
build k8s``: the Kubernetes manifests a compute provider on Kubernetes (EKS, GKE) would apply, to read them.

One image serves every service of the app: the provider's task or pod sets ``SKYRIG_SERVICE_APP`` (which
service's ASGI app) and ``SKYRIG_RUNTIME_CONFIG``, and the image runs the service host under uvicorn.
The image holds the app's code with its migrations, its requirements, skyrig and the providers its
non-local environments use (their data planes).
"""

from __future__ import annotations

import click

from skyrig.cli.app import app_root
from skyrig.cli.output import console
from skyrig.cli.session import app_dir_option, env_option, open_session
from skyrig.errors import UserError

DOCKERFILE = """\
# Written by `skyrig build docker` for app {app!r}. One image serves every service: the provider sets
# SKYRIG_SERVICE_APP (which service) and SKYRIG_RUNTIME_CONFIG (how it reaches its resources).
FROM python:{python}-slim
# The bytecode is made here, once: pip compiles what it installs and compileall the app's code, so no
# container start compiles anything (and none writes: PYTHONDONTWRITEBYTECODE).
ENV PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1 PIP_NO_CACHE_DIR=1
WORKDIR /app
{requirements}RUN pip install --compile {packages}
COPY . .
RUN python -m compileall -q -j 0 /app
RUN useradd --system --uid 10001 app && chown -R app /app
USER app
EXPOSE {port}
CMD ["uvicorn", "--factory", "skyrig.runtime.host:create", "--host", "0.0.0.0", "--port", "{port}"]
"""
# the host's bytecode stays out (another Python may have made it): the image compiles its own
DOCKERIGNORE = ".skyrig/\n.venv/\n__pycache__/\n*.pyc\n.git/\nDockerfile\n.dockerignore\n"


@click.group()
def build() -> None:
    """Write what a cloud deploy builds from."""


@build.command()
@click.argument("app_dir", required=False)
@click.option("--port", default=8080, show_default=True, help="The port the service host listens on.")
@click.option("--python", "python", default="3.11", show_default=True, help="The Python of the base image.")
@click.option("--force", is_flag=True, help="Replace a Dockerfile or .dockerignore that exists.")
def docker(app_dir: str | None, port: int, python: str, force: bool) -> None:
    """Write a Dockerfile (and .dockerignore) for the app at APP_DIR: build it with docker or any OCI
    builder, push it, and deploy it with skyrig apply --env ENV --image REF."""
    from skyrig.config import load_config
    from skyrig.plugins.registry import PROVIDERS, installed

    root = app_root(app_dir, require_config=True)
    config = load_config(root)
    wanted = {
        provider
        for environment in config.environments.values()
        if environment.type != "local"
        for provider in environment.providers.values()
    }
    distributions = {p.name: p.distribution for p in installed(PROVIDERS)}
    packages = ["skyrig", "uvicorn", *sorted({distributions[p] for p in wanted if p in distributions})]
    requirements = ""
    if (root / "requirements.txt").exists():
        requirements = "COPY requirements.txt .\nRUN pip install --compile -r requirements.txt\n"
    targets = {root / "Dockerfile": DOCKERFILE, root / ".dockerignore": DOCKERIGNORE}
    existing = [path.name for path in targets if path.exists()]
    if existing and not force:
        raise UserError(
            f"{', '.join(existing)} exist in {root}: nothing was written", "pass --force to replace"
        )
    text = DOCKERFILE.format(
        app=config.app, python=python, requirements=requirements, packages=" ".join(packages), port=port
    )
    (root / "Dockerfile").write_text(text)
    (root / ".dockerignore").write_text(DOCKERIGNORE)
    console().print(
        f"wrote Dockerfile and .dockerignore in {root} (image of {config.app}: skyrig, uvicorn and "
        f"{', '.join(packages[2:]) or 'no provider'} installed)\n"
        f"next: docker build -t REPO:TAG {root} && docker push REPO:TAG && skyrig apply --env ENV --image REF"
    )


@build.command()
@env_option
@click.option(
    "--image",
    help="The services' image (REPO:TAG or a digest) in the manifests; without it, the image they run "
    "(or the provider's image setting).",
)
@click.option(
    "--out", type=click.Path(dir_okay=False), help="Write the YAML to this file, not standard output."
)
@app_dir_option
def k8s(env_name: str, image: str | None, out: str | None, app_dir: str | None) -> None:
    """Write the Kubernetes manifests the environment's compute provider (EKS, GKE) would apply, as YAML:
    every service's objects, with the runtime config the last apply recorded. Nothing is applied."""
    from pathlib import Path

    from skyrig.engine import images
    from skyrig.plugins.capabilities import KubernetesManifests, capability

    session = open_session(app_dir, env_name)
    if image:
        images.use(session, image)
    compute = session.environment.provider_for("compute")
    provider = capability(session.provider(compute), KubernetesManifests)
    if provider is None:
        raise UserError(
            f"environment {env_name!r} runs its services on {compute!r}, which does not run them on "
            "Kubernetes",
            f'hand compute to a Kubernetes provider in [env.{env_name}] (compute = "eks" or "gke")',
        )
    nodes = [node for node in session.graph.nodes.values() if node.provider == compute]
    try:
        configs = session.store.runtime_configs(env_name)
        text = provider.kubernetes_manifests(session.context(compute), nodes, configs)
    finally:
        session.store.close()
    if out:
        try:
            Path(out).write_text(text)
        except OSError as error:
            raise UserError(
                f"--out: cannot write {out}: {error.strerror or error}",
                "give a file in a folder that exists and that you can write",
            ) from None
        console().print(f"wrote the Kubernetes manifests of environment {env_name} to {out}")
    else:
        click.echo(text, nl=False)
