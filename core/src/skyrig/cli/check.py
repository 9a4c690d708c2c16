"""``skyrig check``: app code and configuration, checked for environments without calling a provider."""

from __future__ import annotations

import click

from skyrig.cli.app import app_root
from skyrig.cli.output import console


@click.command()
@click.argument("app_dir", required=False)
@click.option("-C", "--app-dir", "app_dir_option", default=None, help="The app's folder (same as APP_DIR).")
@click.option(
    "--env",
    "env_name",
    help="Check only this environment (default: every environment, and pr:N where a preview template is).",
)
def check(app_dir: str | None, app_dir_option: str | None, env_name: str | None) -> None:
    """Check the app's code, its configuration, and that each environment's providers support it.

    Nothing is provisioned and no provider API is called; exits 1 with every problem found.
    """
    from skyrig.analysis import build_model
    from skyrig.config import load_config
    from skyrig.plugins.support import check_support

    root = app_root(app_dir or app_dir_option, require_config=True)
    loaded = load_config(root)
    app_model = build_model(root, loaded.app)
    environments = [loaded.environment(env_name)] if env_name else list(loaded.environments.values())
    if not env_name:
        from skyrig.config.preview import sample

        environments += sample(loaded)
    check_support(app_model, environments)
    names = ", ".join(env.name for env in environments) or "no environments"
    services, resources = len(app_model.services), len(app_model.resources)
    console().print(
        f"[green]ok[/]: {services} service{'s' * (services != 1)} and {resources} "
        f"resource{'s' * (resources != 1)} check out for {names}"
    )
