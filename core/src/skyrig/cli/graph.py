"""``skyrig graph``: the infrastructure graph of an environment."""

from __future__ import annotations

import click

from skyrig.cli.session import app_dir_option, env_option, open_session


@click.command()
@env_option
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "json", "mermaid", "dot"]),
    default="text",
    show_default=True,
    help="How to print it.",
)
@app_dir_option
def graph(env_name: str, fmt: str, app_dir: str | None) -> None:
    """Show the infrastructure graph the providers expand the app into (nothing is called)."""
    click.echo(open_session(app_dir, env_name).graph.render(fmt))
