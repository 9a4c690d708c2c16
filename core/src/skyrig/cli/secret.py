"""``skyrig secret set``: store a secret's value with the environment's secrets provider."""

from __future__ import annotations

import sys

import click

from skyrig.cli.session import app_dir_option, env_option, open_session
from skyrig.errors import UserError


@click.group()
def secret() -> None:
    """Manage secret values (they live with the provider, never in skyrig's state)."""


@secret.command(name="set")
@click.argument("name")
@env_option
@app_dir_option
def set_(name: str, env_name: str, app_dir: str | None) -> None:
    """Set secret NAME: the value is read from standard input or a hidden prompt, never an argument."""
    session = open_session(app_dir, env_name)
    if session.model.resource("secret", name) is None:
        declared = ", ".join(r.name for r in session.model.of_kind("secret")) or "none"
        raise UserError(f"the app declares no secret {name!r}", f"declared secrets: {declared}")
    if sys.stdin.isatty():
        value = click.prompt(f"value of {name}", hide_input=True)
    else:
        value = sys.stdin.read().rstrip("\n")
    if not value:
        raise UserError("the value is empty: nothing was stored")
    from skyrig.plugins.capabilities import SecretStore, capability

    provider = session.environment.provider_for("secrets")
    store = capability(session.provider(provider), SecretStore)
    if store is None:
        raise UserError(f"provider {provider!r} stores no secrets: nothing was stored")
    store.set_secret(session.context(provider), name, value)
    click.echo(f"secret {name} set for {session.app}/{env_name} (stored by {provider}; skyrig keeps no copy)")
