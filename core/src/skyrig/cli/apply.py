"""``skyrig apply`` and ``skyrig destroy``: change the cloud, one recorded node at a time."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click

from skyrig.cli.plan import image_option, refuse_missing_migrations, refuse_stale
from skyrig.cli.session import app_dir_option, confirm, env_option, open_session, show_plan
from skyrig.errors import UserError


@click.command()
@env_option
@click.argument("plan_file", required=False, type=click.Path(exists=True, dir_okay=False))
@click.option(
    "--parallelism",
    default=10,
    show_default=True,
    type=click.IntRange(1, 256),
    help="How many nodes to work on at once.",
)
@click.option("--yes", is_flag=True, help="Apply without asking.")
@click.option("--wait", is_flag=True, help="Wait for another apply's lock instead of failing at once.")
@click.option("--include-data", is_flag=True, help="Also delete databases and buckets removed from the app.")
@image_option
@app_dir_option
def apply(
    env_name: str,
    plan_file: str | None,
    parallelism: int,
    yes: bool,
    wait: bool,
    include_data: bool,
    image: str | None,
    app_dir: str | None,
) -> int:
    """Provision the environment: plan (or take PLAN_FILE as saved), then apply it.

    The services run --image if given (PLAN_FILE: the image it was made with); else the compute
    provider's image setting, when configuration sets one; else the image they run now; else the
    provider's default."""
    from skyrig.engine import images
    from skyrig.engine.plan import Plan

    session = open_session(app_dir, env_name)
    with session.locked(wait=wait) as fence:
        if plan_file:
            try:
                made = Plan.from_json(Path(plan_file).read_text())
            except (ValueError, TypeError, KeyError) as error:
                raise UserError(
                    f"{plan_file} is not a skyrig plan this skyrig can apply: {error}",
                    f"make a new one: skyrig plan --env {env_name} --out {plan_file}",
                ) from None
            planned = made.fingerprints.get("image")
            if image and planned and image != planned:
                raise UserError(
                    f"{plan_file} deploys image {planned}, not {image}; nothing was applied",
                    f"apply it without --image, or make a new plan: skyrig plan --env {env_name} "
                    f"--image {image} --out {plan_file}",
                )
            if image or planned:
                images.use(session, image or planned, "--image" if image else "plan")
            if (made.app, made.environment) == (session.app, session.name):  # else refused when applied
                refuse_stale(made, session, plan_file)
        else:
            if image:
                images.use(session, image)
            made = session.plan(include_data=include_data)
            made.annotations[:0] = images.note(session.image)
        refuse_missing_migrations(made)
        show_plan(made, err=True)
        if not made.has_changes():
            if made.has_adoptions():
                return _run(session, made, fence, parallelism)
            if not plan_file:
                session.write_runtime_configs(made, fence)
            return 0
        if not plan_file:
            confirm(f"apply these changes to {session.app}/{env_name}?", yes=yes)
        return _run(session, made, fence, parallelism)


@click.command()
@env_option
@click.option("--yes", is_flag=True, help="Destroy without asking (production also asks for its name).")
@click.option(
    "--include-data", is_flag=True, help="Delete databases and buckets too (they are kept otherwise)."
)
@click.option("--wait", is_flag=True, help="Wait for another apply's lock instead of failing at once.")
@click.option("--parallelism", default=10, show_default=True, type=click.IntRange(1, 256))
@app_dir_option
def destroy(
    env_name: str, yes: bool, include_data: bool, wait: bool, parallelism: int, app_dir: str | None
) -> int:
    """Delete what the environment provisioned, in reverse dependency order."""
    session = open_session(app_dir, env_name)
    if session.environment.type == "production":
        if not yes:
            raise UserError(
                f"environment {env_name!r} is production: destroying it needs --yes",
                "and, at a terminal, typing its name",
            )
        if sys.stdin.isatty():
            typed = click.prompt(f"type the environment's name ({env_name}) to destroy it", default="")
            if typed != env_name:
                raise UserError("the name did not match: nothing was destroyed")
    with session.locked(wait=wait) as fence:
        made = session.plan(destroy=True, include_data=include_data)
        show_plan(made, err=True)
        if not made.has_changes():
            return 0
        confirm(f"destroy {session.app}/{env_name}?", yes=yes)
        return _run(session, made, fence, parallelism)


def _run(session, made, fence: int, parallelism: int) -> int:
    from contextlib import nullcontext

    from rich.console import Console
    from rich.markup import escape
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    console = Console(stderr=True, highlight=False, soft_wrap=True)
    marks = {
        "created": "[green]+[/]",
        "updated": "[yellow]~[/]",
        "deleted": "[red]-[/]",
        "adopted": "[cyan]⇐[/]",
        "failed": "[bold red]✗[/]",
    }
    total = sum(1 for c in made.changes if c.action in ("create", "update", "replace", "delete") or c.adopt)
    progress = (
        Progress(
            TextColumn("applying"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), console=console
        )
        if console.is_terminal
        else None
    )
    task = progress.add_task("apply", total=total) if progress else None

    def report(event: str, change, seconds: float) -> None:
        if event == "stopping":
            console.print(
                f"stopping: waiting for {int(seconds)} operation(s) in flight (Ctrl-C again to abort)"
            )
        elif event != "noop":
            console.print(f"  {marks.get(event, ' ')} {event} {escape(change.id)} [dim]({seconds:.2f} s)[/]")
            if progress is not None:
                progress.advance(task)

    try:
        with progress or nullcontext():
            outcome = session.apply(made, fence, parallelism=parallelism, report=report)
    except KeyboardInterrupt:
        console.print(
            "aborted: operations in flight keep their intents; the next apply adopts what they made"
        )
        sys.stderr.flush()
        os._exit(130)
    for node, error in sorted(outcome.failed.items()):  # a provider's text, brackets and all: not markup
        console.print(f"[red]error[/]: {escape(node)}: {escape(str(error))}")
    for node, why in sorted(outcome.skipped.items()):
        console.print(f"[yellow]not run[/]: {escape(node)}: {escape(str(why))}")
    done = len([a for a in outcome.done.values() if a != "noop"])
    retries = f", {outcome.retries} retried call(s)" if outcome.retries else ""
    console.print(
        f"{'stopped' if outcome.interrupted else 'done'}: {done} change(s) in {outcome.seconds:.1f} s"
        f"{retries}; {len(outcome.failed)} failed"
    )
    if outcome.interrupted:
        return 130
    return 0 if outcome.succeeded else 1
