"""The ``skyrig`` command. Subcommands are imported only when run, so ``skyrig --help`` stays instant."""

from __future__ import annotations

import importlib
import sys

import click

import skyrig

COMMANDS: dict[str, tuple[str, str]] = {
    "init": ("skyrig.cli.init:init", "Create a new app: skyrig.toml and a first service."),
    "model": ("skyrig.cli.model:model", "Show the Application Model read from the app's code."),
    "check": ("skyrig.cli.check:check", "Check the app's code and configuration for an environment."),
    "config": ("skyrig.cli.config:config", "Show the resolved configuration (secrets masked)."),
    "providers": ("skyrig.cli.providers:providers", "List installed providers and their capabilities."),
    "graph": ("skyrig.cli.graph:graph", "Show the infrastructure graph of an environment."),
    "plan": ("skyrig.cli.plan:plan", "Show what an apply would change, and why."),
    "apply": ("skyrig.cli.apply:apply", "Provision an environment (or apply a saved plan exactly)."),
    "destroy": ("skyrig.cli.apply:destroy", "Delete what an environment provisioned."),
    "status": ("skyrig.cli.status:status", "Show what is provisioned now."),
    "drift": ("skyrig.cli.status:drift", "Refresh only: adopt console changes, report drifted invariants."),
    "import": ("skyrig.cli.status:import_", "Adopt an existing resource into state."),
    "state": (
        "skyrig.cli.state:state",
        "Repair state (recover), move it to another store (migrate), end a lock (unlock).",
    ),
    "secret": ("skyrig.cli.secret:secret", "Set secret values (kept by the provider, never by skyrig)."),
    "run": ("skyrig.cli.run:run", "Provision the local environment and run every service."),
    "test": ("skyrig.cli.test:test", "Run the app's tests (pytest) on fresh test databases."),
    "db": ("skyrig.cli.db:db", "Open a psql shell on a database, or reset it to its migrations."),
    "cron": ("skyrig.cli.cron:cron", "List cron jobs, or run one now."),
    "preview": (
        "skyrig.cli.preview:preview",
        "Open, close and list preview environments (pr:N, one per pull request).",
    ),
    "build": (
        "skyrig.cli.build:build",
        "Write what a cloud deploy builds from: a Dockerfile for the app, Kubernetes manifests.",
    ),
    "conformance": (
        "skyrig.cli.conformance:conformance",
        "Run the provider conformance suite and show the capability matrix.",
    ),
}
"""Command name -> (``module:attribute``, one-line help). Engine commands register here too."""


class _LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in COMMANDS:
            return None
        module, _, attribute = COMMANDS[cmd_name][0].partition(":")
        return getattr(importlib.import_module(module), attribute)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        with formatter.section("Commands"):
            formatter.write_dl([(name, help_text) for name, (_, help_text) in COMMANDS.items()])


@click.group(cls=_LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(skyrig.__version__, prog_name="skyrig")
def cli() -> None:
    """skyrig: infrastructure from code, for Python.

    Declare what your app needs in its code; skyrig provisions it in every environment.
    """


def main(argv: list[str] | None = None) -> None:
    """Run the CLI: user errors print a message and a hint, never a traceback."""
    from skyrig.errors import UserError

    try:
        result = cli.main(args=argv, prog_name="skyrig", standalone_mode=False)
    except click.exceptions.Exit as done:
        sys.exit(done.exit_code)
    except click.ClickException as error:
        error.show()
        sys.exit(error.exit_code)
    except click.Abort:
        click.echo("aborted", err=True)
        sys.exit(130)
    except UserError as error:
        click.echo(error.render(), err=True)
        sys.exit(error.exit_code)
    except KeyboardInterrupt:
        click.echo("interrupted", err=True)
        sys.exit(130)
    except OSError as error:
        hint = _os_error_hint(error)
        if hint is None:
            raise
        where = f": {error.filename}" if error.filename else ""
        click.echo(f"error: {error.strerror or error}{where}\n  hint: {hint}", err=True)
        sys.exit(1)
    sys.exit(result if isinstance(result, int) else 0)


def _os_error_hint(error: OSError) -> str | None:
    """What to do about an error of the machine the user can fix (a full disk, a file that may not be
    written, a file where a folder should be); None for any other (a fault of skyrig's: a traceback)."""
    import errno
    import getpass

    if error.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
        return (
            "free space on that disk (or raise the limit) and run the command again: what state recorded is "
            "kept, and operations cut short keep their intents, so the next apply adopts what they made"
        )
    if error.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        user = getpass.getuser()
        return (
            f"make it writable by user {user!r} (chown, chmod, a read-write mount), or run skyrig as its "
            "owner"
        )
    if error.errno in (errno.ENOTDIR, errno.EISDIR, errno.EEXIST):
        return "a file stands where skyrig keeps a folder, or a folder where it keeps a file: move it away"
    return None
