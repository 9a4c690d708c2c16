"""``skyrig state``: repairing an environment's state. ``skyrig state recover`` rebuilds lost state from the
cloud: every node of the graph is looked up by its identity (ownership tags or deterministic name), as
an apply does before creating anything state does not record, and what is found is recorded."""

from __future__ import annotations

import json
import sys

import click

from skyrig.cli.session import app_dir_option, env_option, open_session


@click.group()
def state() -> None:
    """Repair an environment's state (see also skyrig status and skyrig import)."""


@state.command()
@env_option
@click.option(
    "--force",
    is_flag=True,
    help="Go ahead although state records nodes: those are kept, the others looked up and recorded.",
)
@click.option("--wait", is_flag=True, help="Wait for another apply's lock instead of failing at once.")
@click.option("--json", "as_json", is_flag=True, help="Print what was adopted and not found as JSON.")
@app_dir_option
def recover(env_name: str, force: bool, wait: bool, as_json: bool, app_dir: str | None) -> int:
    """Rebuild lost state from the cloud: find every node of the graph and record what exists.

    Refused when the environment's state is not empty, unless --force. Nothing in the cloud changes;
    the next apply creates what was not found and writes the runtime configs."""
    session = open_session(app_dir, env_name)
    with session.locked(wait=wait) as fence:
        recovery = session.recover(fence, force=force)
    graph = session.graph
    if as_json:
        data = {
            "app": session.app,
            "environment": env_name,
            "adopted": recovery.adopted,
            "missing": recovery.missing,
            "failed": recovery.failed,
            "kept": recovery.kept,
        }
        sys.stdout.write(json.dumps(data, indent=2, sort_keys=True) + "\n")
        return 1 if recovery.failed else 0
    from rich.markup import escape
    from rich.table import Table

    from skyrig.cli.output import console

    table = Table(
        "node",
        "type",
        "found",
        "provider id",
        title=f"{session.app}/{env_name}: state recovered from the cloud",
    )
    rows = {
        **{node: ("[cyan]adopted[/]", escape(pid)) for node, pid in recovery.adopted.items()},
        **{node: ("[yellow]not found[/]", "-") for node in recovery.missing},
        **{node: ("[red]lookup failed[/]", escape(why)) for node, why in recovery.failed.items()},
        **{node: ("[dim]kept (recorded)[/]", "-") for node in recovery.kept},
    }
    for node_id in graph.order:
        if node_id in rows:
            found, detail = rows[node_id]
            table.add_row(escape(node_id), graph.nodes[node_id].type, found, detail)
    output = console()
    output.print(table)
    summary = f"{len(recovery.adopted)} adopted, {len(recovery.missing)} not found"
    if recovery.failed:
        summary += f", {len(recovery.failed)} could not be looked up"
    if recovery.kept:
        summary += f", {len(recovery.kept)} kept as recorded"
    output.print(summary)
    output.print(
        f"next: skyrig plan --env {env_name} shows what is left to do; skyrig apply --env {env_name} "
        "creates what was not found and writes the runtime configs"
    )
    return 1 if recovery.failed else 0
