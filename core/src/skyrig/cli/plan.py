"""``skyrig plan``: what an apply would do, and why."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

from skyrig.cli.session import app_dir_option, env_option, open_session, show_plan

if TYPE_CHECKING:
    from skyrig.engine.plan import Plan


@click.command()
@env_option
@click.option("--json", "as_json", is_flag=True, help="Print the plan as JSON.")
@click.option(
    "--out", type=click.Path(dir_okay=False), help="Save the plan, to apply exactly: skyrig apply FILE."
)
@click.option(
    "--detailed-exitcode", is_flag=True, help="Exit 2 when there are changes, 0 when there are none."
)
@click.option("--include-data", is_flag=True, help="Plan to delete removed databases and buckets too.")
@click.option(
    "--refresh/--no-refresh",
    default=True,
    show_default=True,
    help="Read what is provisioned from the cloud first; without, state is taken as the truth.",
)
@app_dir_option
def plan(
    env_name: str,
    as_json: bool,
    out: str | None,
    detailed_exitcode: bool,
    include_data: bool,
    refresh: bool,
    app_dir: str | None,
) -> int:
    """Refresh what is provisioned, compare it with the app, and list each change with its reason."""
    session = open_session(app_dir, env_name)
    made = session.plan(include_data=include_data, refresh=refresh)
    refuse_missing_migrations(made)
    if out:
        Path(out).write_text(made.to_json() + "\n")
    if as_json:
        sys.stdout.write(made.to_json() + "\n")
    else:
        show_plan(made)
        if out:
            click.echo(f"saved to {out}: apply it exactly with skyrig apply --env {env_name} {out}")
    return 2 if detailed_exitcode and made.has_changes() else 0


def refuse_missing_migrations(made: Plan) -> None:
    """Refuse a plan that would update a database to the app's migrations while the database has one
    applied that the app no longer has (its file deleted or renumbered): no apply could ever converge."""
    from skyrig.errors import UserError
    from skyrig.runtime.migrations import describe_missing, missing

    for change in made.changes:
        kind, _, database = (change.node.resource or "").partition("/")
        if kind != "sql_database" or change.action not in ("update", "replace"):
            continue
        try:
            applied, wanted = change.fields["migrations"]
            gone = missing(applied, wanted)
        except (
            KeyError,
            TypeError,
            ValueError,
            IndexError,
        ):  # no migrations, or not recorded as the runner does
            continue
        if gone:
            problem, hint = describe_missing(database, gone, change.node.properties.get("files") or {})
            raise UserError(
                f"{change.id}: {problem}; nothing was changed",
                f"{hint} (or, where its data may go: skyrig db reset {database} --env {made.environment})",
            )
