"""``skyrig providers``: the installed providers, their versions, capabilities and hooks."""

from __future__ import annotations

from typing import Any

import click
from rich.markup import escape
from rich.table import Table

from skyrig.cli.output import console, print_json
from skyrig.errors import UserError
from skyrig.plugins.registry import PLUGINS, PROVIDERS, installed, load_provider, named


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
def providers(as_json: bool) -> None:
    """List installed providers with version, capabilities and the hooks they implement, and plugins."""
    rows = [_describe(item) for item in installed(PROVIDERS)]
    plugins = _plugins()
    if as_json:
        print_json({"providers": rows, "plugins": plugins})
        return
    if plugins:
        table = Table("plugin", "version", "distribution", "hooks", title="installed plugins")
        for plugin in plugins:
            table.add_row(
                plugin["name"],
                plugin["version"],
                plugin["distribution"],
                "\n".join(plugin["hooks"]) or escape(plugin.get("error", "-")),
            )
        console().print(table)
    if not rows:
        console().print("no providers installed: pip install skyrig-local (or skyrig-aws, skyrig-gcp, ...)")
        return
    table = Table(
        "provider", "version", "kinds", "environments", "features", "hooks", title="installed providers"
    )
    for row in rows:
        if "error" in row:
            table.add_row(row["name"], row["version"], f"[red]{escape(row['error'])}[/]", "", "", "")
            continue
        table.add_row(
            row["name"],
            row["version"],
            "\n".join(row["kinds"]),
            "\n".join(row["environment_types"]),
            "\n".join(row["features"]) or "-",
            "\n".join(row["hooks"]) or "-",
        )
    console().print(table)


def _hooks(obj: object) -> list[str]:
    return sorted(
        name for name in dir(obj) if name.startswith("skyrig_") and hasattr(getattr(obj, name), "skyrig_impl")
    )


def _plugins() -> list[dict[str, Any]]:
    """Installed plugins (entry point group ``skyrig.plugins``) and the hooks they implement."""
    found = []
    for item in installed(PLUGINS):
        row: dict[str, Any] = {"name": item.name, "distribution": item.distribution, "version": item.version}
        try:
            row["hooks"] = _hooks(named(PLUGINS, item.name))
        except Exception as error:  # a broken plugin is shown, not fatal
            row.update(hooks=[], error=f"failed to load: {type(error).__name__}: {error}")
        found.append(row)
    return found


def _describe(item) -> dict[str, Any]:
    row: dict[str, Any] = {"name": item.name, "version": item.version, "distribution": item.distribution}
    try:
        provider = load_provider(item.name)
    except UserError as error:
        return {**row, "error": error.message}
    manifest = provider.manifest
    hooks = _hooks(provider)
    return {
        **row,
        "description": manifest.description,
        "kinds": sorted(manifest.kinds),
        "environment_types": sorted(manifest.environment_types),
        "features": sorted(manifest.features),
        "traits": sorted(manifest.traits),
        "needs": {family: sorted(traits) for family, traits in sorted(manifest.needs.items())},
        "settings": manifest.settings,
        "hooks": hooks,
    }
