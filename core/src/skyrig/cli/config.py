"""``skyrig config``: the resolved configuration, with secrets masked."""

from __future__ import annotations

from typing import Any

import click
from rich.markup import escape
from rich.tree import Tree

from skyrig.cli.app import app_root
from skyrig.cli.output import console, print_json
from skyrig.config import load_config


@click.command()
@click.argument("app_dir", required=False)
@click.option("-C", "--app-dir", "app_dir_option", default=None, help="The app's folder (same as APP_DIR).")
@click.option("--env", "env_name", help="Show only this environment.")
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
def config(app_dir: str | None, app_dir_option: str | None, env_name: str | None, as_json: bool) -> None:
    """Show the resolved configuration: skyrig.toml, SKYRIG_ variables over it, defaults filled in."""
    loaded = load_config(app_root(app_dir or app_dir_option, require_config=True))
    environments = [loaded.environment(env_name)] if env_name else list(loaded.environments.values())
    data = {
        "app": loaded.app,
        "root": str(loaded.root),
        "state": mask_url(loaded.project.state),
        "env": {env.name: _environment(env) for env in environments},
        "preview": loaded.project.preview.model_dump(),
    }
    if as_json:
        print_json(data)
        return
    tree = Tree(f"[bold]{escape(data['app'])}[/]  [dim]{escape(data['root'])}[/]")
    tree.add(f"state: {escape(data['state'])}")
    if any(data["preview"].values()):
        shown = ", ".join(f"{key} = {value!r}" for key, value in data["preview"].items() if value)
        tree.add(f"preview: {escape(shown)}")
    for name, env in data["env"].items():
        branch = tree.add(f"[bold cyan]env {escape(name)}[/]  type {env['type']}")
        if env["state"] != data["state"]:
            branch.add(f"state: {escape(env['state'])}")
        for provider in dict.fromkeys(env["providers"].values()):
            families = [family for family, name in env["providers"].items() if name == provider]
            branch.add(f"{escape(provider)}: {', '.join(families)}")
        for provider, settings in env["settings"].items():
            table = branch.add(f"[green]{escape(provider)} settings[/]")
            for key, value in settings.items():
                table.add(f"{escape(key)} = {escape(repr(value))}")
    console().print(tree)


def _environment(env) -> dict[str, Any]:
    return {
        "type": env.type,
        "state": mask_url(env.state),
        "providers": env.providers,
        "settings": {
            name: settings.model_dump(mode="json") if hasattr(settings, "model_dump") else dict(settings)
            for name, settings in sorted(env.settings.items())
        },
    }


def mask_url(url: str) -> str:
    """``url`` with any password replaced by ``****``."""
    from skyrig.state import masked

    return masked(url)
