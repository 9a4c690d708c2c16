"""``skyrig model``: the Application Model, as a tree for people or JSON for machines."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from skyrig.cli.app import app_name, app_root
from skyrig.cli.output import console, print_json

if TYPE_CHECKING:
    from rich.tree import Tree

    from skyrig.model import AppModel

SHOWN = 5
"""Places named at most where a use's operations are not visible (then: and N more)."""


@click.command()
@click.argument("app_dir", required=False)
@click.option("-C", "--app-dir", "app_dir_option", default=None, help="The app's folder (same as APP_DIR).")
@click.option(
    "--json", "as_json", is_flag=True, help="Print the model as JSON (see docs/app-model.schema.json)."
)
@click.option("--no-cache", is_flag=True, help="Parse every file again, ignoring .skyrig/cache.")
def model(app_dir: str | None, app_dir_option: str | None, as_json: bool, no_cache: bool) -> None:
    """Show the Application Model read from the app's code (no app code is run).

    APP_DIR is the app's folder (default: the current one, or the nearest above it with skyrig.toml).
    """
    from skyrig.analysis import build_model, model_json

    root = app_root(app_dir or app_dir_option, require_config=False)
    if as_json:  # served from the cache as text when nothing changed: no model objects are built
        print_json(model_json(root, app_name(root), cache=not no_cache))
    else:
        console().print(render_tree(build_model(root, app_name(root), cache=not no_cache)))


def render_tree(app_model: AppModel) -> Tree:
    """The model as a tree: services, what each owns, and what each uses."""
    from rich.markup import escape
    from rich.tree import Tree

    count = len(app_model.resources)
    services = len(app_model.services)
    tree = Tree(
        f"[bold]{escape(app_model.app)}[/]  [dim]{services} service{'s' * (services != 1)}, "
        f"{count} resource{'s' * (count != 1)}[/]"
    )
    for service in app_model.services:
        branch = tree.add(
            f"[bold cyan]service {escape(service.name)}[/]  {escape(service.app)}  "
            f"[dim]{escape(str(service.location))}[/]"
        )
        for resource in app_model.resources:
            if resource.service != service.name:
                continue
            node = branch.add(
                f"[green]{resource.kind.replace('_', ' ')}[/] [bold]{escape(resource.name)}[/]"
                f"{_details(resource)}  [dim]{escape(str(resource.location))}[/]"
            )
            for keyspace in getattr(resource, "keyspaces", []):
                expiry = f", expires after {keyspace.default_expiry}" if keyspace.default_expiry else ""
                node.add(f"keyspace {escape(keyspace.pattern)} → {_short(keyspace.value_type)}{expiry}")
        uses = app_model.uses_by(service.name)
        if uses:
            used = branch.add("[magenta]uses[/]")
            for use in uses:
                owner = next(
                    (r.service for r in app_model.resources if r.kind == use.kind and r.name == use.resource),
                    "?",
                )
                origin = "" if owner == service.name else f" [dim](of {escape(owner)})[/]"
                line = used.add(
                    f"{use.kind.replace('_', ' ')} {escape(use.resource)}{origin}: "
                    f"{', '.join(use.operations)}"
                )
                if use.operations_not_visible:
                    places = use.operations_not_visible
                    more = f" and {len(places) - SHOWN} more" if len(places) > SHOWN else ""
                    line.add(
                        "[yellow]operations not visible: all granted[/]  "
                        f"[dim]{escape(', '.join(places[:SHOWN]))}{more}[/]"
                    )
    return tree


def _details(resource) -> str:
    from rich.markup import escape

    from skyrig.kinds import KINDS

    text = KINDS[resource.kind].summary(resource)
    return f"  {escape(text)}" if text else ""


def _short(reference: str) -> str:
    return reference.rpartition(":")[2]
