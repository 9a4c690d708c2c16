"""``skyrig state``: repairing and moving an environment's state. ``skyrig state recover`` rebuilds lost state
from the cloud: every node of the graph is looked up by its identity (ownership tags or deterministic name),
as an apply does before creating anything state does not record, and what is found is recorded.
``skyrig state migrate`` moves it whole to another store; ``skyrig state unlock`` ends a lock, refusing a
live one unless ``--force`` (a crashed holder's lock runs out by itself)."""

from __future__ import annotations

import json
import sys

import click

from skyrig.cli.session import app_dir_option, env_option, open_session


@click.group()
def state() -> None:
    """Repair an environment's state, move it to another store, or end its lock (see also skyrig status
    and skyrig import)."""


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


def _holder(command: str) -> str:
    import getpass
    import os
    import socket

    return f"{getpass.getuser()}@{socket.gethostname()} pid {os.getpid()} (skyrig state {command})"


@state.command()
@env_option
@click.option("--to", "to_url", required=True, help="The URL of the store to move the state to.")
@click.option("--force", is_flag=True, help="Replace state of the environment the target holds already.")
@click.option("--keep", is_flag=True, help="Keep the state in the source store too (a copy, not a move).")
@click.option("--wait", is_flag=True, help="Wait for an apply's lock (on either store) instead of failing.")
@click.option("--json", "as_json", is_flag=True, help="Print what was moved as JSON.")
@app_dir_option
def migrate(
    env_name: str, to_url: str, force: bool, keep: bool, wait: bool, as_json: bool, app_dir: str | None
) -> None:
    """Move an environment's state to another store (SQLite, S3, PostgreSQL...), under both stores' locks.

    Everything moves, in one write: the records, the intents, the runtime configs, the time of the last
    apply, the serial and the highest lock fence. The copy is read back and compared; then the source is
    emptied (--keep keeps it). skyrig.toml is not changed: point the environment's state at the new store
    afterwards."""
    from skyrig.cli.app import app_root
    from skyrig.config import load_config
    from skyrig.engine.session import lock_ttl
    from skyrig.errors import UserError
    from skyrig.state import masked, open_store
    from skyrig.state.transfer import migrate as move

    config = load_config(app_root(app_dir, require_config=True))
    source_url = config.environment(env_name).state
    source = open_store(source_url, config.root)
    try:
        target = open_store(to_url, config.root)
        try:
            path = getattr(source, "path", None)  # one SQLite file, named two ways
            if source_url == to_url or (path is not None and path == getattr(target, "path", None)):
                raise UserError(
                    f"the state of environment {env_name!r} is in {masked(to_url)} already",
                    "name another store with --to",
                )
            moved = move(
                source,
                source_url,
                target,
                to_url,
                env_name,
                holder=_holder("migrate"),
                ttl=lock_ttl(),
                force=force,
                keep=keep,
                wait=wait,
            )
        finally:
            target.close()
    finally:
        source.close()
    if as_json:
        data = {
            "environment": env_name,
            "from": masked(source_url),
            "to": masked(to_url),
            "nodes": moved.nodes,
            "intents": moved.intents,
            "runtime_configs": moved.services,
            "serial": moved.serial,
            "fence": moved.fence,
            "source": "emptied" if moved.emptied else "kept",
        }
        sys.stdout.write(json.dumps(data, indent=2, sort_keys=True) + "\n")
        return
    from rich.markup import escape

    from skyrig.cli.output import console

    output = console()
    output.print(
        f"moved the state of environment {env_name!r} from {escape(masked(source_url))} to "
        f"{escape(masked(to_url))}: {moved.nodes} node(s), {moved.intents} intent(s), "
        f"{moved.services} runtime config(s); serial {moved.serial}, every fence from now on above "
        f"{moved.fence}"
    )
    output.print(
        f"the source's copy was {'kept: it no longer moves with the environment' if keep else 'emptied'}"
    )
    output.print(
        f'next: set state = "{escape(masked(to_url))}" in {escape(f"[env.{env_name}]")} of skyrig.toml (or '
        f"SKYRIG_ENV__{env_name.upper()}__STATE) before the next plan or apply: until then skyrig reads "
        f"{escape(masked(source_url))}{', now empty' if moved.emptied else ''}"
    )


@state.command()
@env_option
@click.option("--force", is_flag=True, help="Break the lock even though its holder is live.")
@app_dir_option
def unlock(env_name: str, force: bool, app_dir: str | None) -> None:
    """End an environment's lock. Never needed after a crash: a lock whose holder died runs out by itself
    (SKYRIG_LOCK_TTL, 30 s by default). A live lock is refused unless --force."""
    import time

    from skyrig.cli.app import app_root
    from skyrig.cli.output import console
    from skyrig.config import load_config
    from skyrig.state import open_store
    from skyrig.state.transfer import unlock as end

    config = load_config(app_root(app_dir, require_config=True))
    url = config.environment(env_name).state
    store = open_store(url, config.root)
    try:
        broken = end(store, url, env_name, holder=_holder("unlock"), force=force)
    finally:
        store.close()
    if broken is None:
        console().print(
            f"environment {env_name!r} is not locked: nothing to do (a lock whose holder died runs out by "
            "itself, within SKYRIG_LOCK_TTL)"
        )
        return
    since = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(broken.since))
    console().print(
        f"broke the lock on environment {env_name!r} held by {broken.holder} since {since}: its writes to "
        "state are refused from now on"
    )
