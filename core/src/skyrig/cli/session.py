"""What the engine's commands share: opening an environment, and showing a plan."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

import click

from skyrig.cli.app import app_root

if TYPE_CHECKING:
    from skyrig.engine.plan import Plan
    from skyrig.engine.session import Session

app_dir_option = click.option(
    "-C", "--app-dir", "app_dir", default=None, help="The app's folder (default: here, or the nearest above)."
)
env_option = click.option(
    "--env", "env_name", required=True, help="The environment, as named in skyrig.toml."
)
local_env_option = click.option(
    "--env", "env_name", default="local", show_default=True, help="The environment, as named in skyrig.toml."
)

SYMBOLS = {"create": "+", "update": "~", "replace": "±", "delete": "-", "retain": "=", "noop": " "}
COLOURS = {"create": "green", "update": "yellow", "replace": "magenta", "delete": "red", "retain": "cyan"}


def open_session(app_dir: str | None, env_name: str) -> Session:
    """The environment ``env_name`` of the app at ``app_dir``, configuration validated."""
    from skyrig.config import load_config
    from skyrig.engine.session import Session

    return Session(load_config(app_root(app_dir, require_config=True)), env_name)


def show_plan(plan: Plan, *, err: bool = False) -> None:
    """The plan as a person reads it: a summary line, then each change with its fields and reasons."""
    from rich.console import Console
    from rich.markup import escape

    from skyrig.cli.output import annotations_by_node
    from skyrig.engine.session import describe

    console = Console(stderr=err, highlight=False, soft_wrap=True)
    counts = plan.counts()
    adopted = sum(1 for c in plan.changes if c.adopt)
    what = "destroy" if plan.destroy else "plan"
    summary = ", ".join(
        f"{counts.get(action, 0)} to {action}" for action in ("create", "update", "replace", "delete")
    )
    extra = f", {counts['retain']} kept (hold data)" if counts.get("retain") else ""
    extra += f", {adopted} adopted from the cloud" if adopted else ""
    console.print(f"[bold]{what} for {plan.app}/{plan.environment}[/]: {summary}{extra}")
    notes = annotations_by_node(plan)
    for change in plan.changes:
        if change.action == "noop" and not change.adopt:
            continue
        colour = COLOURS.get(change.action, "blue")
        symbol = SYMBOLS.get(change.action, "~")
        console.print(f"  [{colour}]{symbol} {change.action:<7}[/] {escape(describe(change))}")
        for note in notes.get(change.id, []):
            console.print(f"              [dim]{escape(note['label'])}: {escape(note['value'])}[/]")
    if not plan.has_changes():
        console.print(
            "  nothing to change in the cloud"
            if plan.has_adoptions()
            else "  nothing to do: the cloud matches the app"
        )
    for note in notes.get(None, []):
        about = f" ({note['node']})" if note.get("node") else ""
        console.print(f"  [blue]{escape(note['label'])}{escape(about)}[/]: {escape(note['value'])}")


def confirm(question: str, *, yes: bool) -> None:
    """Go on only with ``--yes`` or a yes at the prompt; without a terminal, ``--yes`` is required."""
    from skyrig.errors import UserError

    if yes:
        return
    if not sys.stdin.isatty():
        raise UserError(f"{question} needs confirmation", "pass --yes to go ahead without a prompt")
    if not click.confirm(question, default=False):
        raise UserError("stopped: nothing was changed")
