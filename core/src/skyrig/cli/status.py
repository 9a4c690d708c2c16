"""``skyrig status``, ``skyrig drift`` and ``skyrig import``: what is provisioned, and bringing it in line."""

from __future__ import annotations

import json
import sys
import time

import click

from skyrig.cli.session import app_dir_option, env_option, open_session
from skyrig.errors import UserError


@click.command()
@env_option
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
@app_dir_option
def status(env_name: str, as_json: bool, app_dir: str | None) -> None:
    """What is provisioned now, from state: nodes, provider ids, outputs, drift, the image the services
    run (no cloud is called)."""
    from skyrig.engine import images

    session = open_session(app_dir, env_name)
    records = session.store.nodes(env_name)
    applied = session.store.applied_at(env_name)
    compute = images.provider_running_images(session.environment)
    data = {
        "app": session.app,
        "environment": env_name,
        "last_applied": applied,
        "serial": session.store.serial(env_name),
        "pending_intents": session.store.intents(env_name),
        # the image each service runs, as applied (None: the provider's default); null when compute runs
        # no images
        "images": images.applied(records, compute) if compute else None,
        "nodes": [
            {
                "id": r.id,
                "type": r.type,
                "provider": r.provider,
                "provider_id": r.provider_id,
                "resource": r.resource,
                "outputs": r.outputs,
                "drift": r.drift,
                "updated_at": r.updated_at,
            }
            for r in sorted(records.values(), key=lambda r: r.id)
        ],
    }
    if as_json:
        sys.stdout.write(json.dumps(data, indent=2, sort_keys=True) + "\n")
        return
    from rich.table import Table

    from skyrig.cli.output import console

    when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(applied)) if applied else "never"
    table = Table(
        "node", "type", "provider id", "drift", title=f"{session.app}/{env_name}: last applied {when}"
    )
    for row in data["nodes"]:
        table.add_row(row["id"], row["type"], row["provider_id"], ", ".join(row["drift"]) or "-")
    console().print(table)
    if data["images"]:
        default = "the provider's default"
        running = {image or default for image in data["images"].values()}
        if len(running) == 1:
            console().print(f"image: the services run {running.pop()}")
        else:  # an apply stopped halfway through a deploy: the next one carries the newest to all
            for service, image in sorted(data["images"].items()):
                console().print(f"image: {service} runs {image or default}")
    if data["pending_intents"]:
        console().print(
            f"unfinished operations: {', '.join(sorted(data['pending_intents']))} "
            "(the next apply looks them up and adopts what they made)"
        )


@click.command()
@env_option
@click.option("--detailed-exitcode", is_flag=True, help="Exit 2 when there is drift, 0 when there is none.")
@click.option("--wait", is_flag=True, help="Wait for another apply's lock instead of failing at once.")
@app_dir_option
def drift(env_name: str, detailed_exitcode: bool, wait: bool, app_dir: str | None) -> int:
    """Refresh only: adopt console changes to tunable settings; report changed invariants.

    Invariants (backups, encryption, TLS, public access) are restored by the next apply."""
    from skyrig.state import NodeRecord

    session = open_session(app_dir, env_name)
    found = 0
    with session.locked(wait=wait) as fence:
        records = session.store.nodes(env_name)
        observed = session.refresh(records)
        for record in sorted(records.values(), key=lambda r: r.id):
            node_type = session.types[record.type]
            now = observed.get(record.id)
            if now is None:
                click.echo(f"  missing  {record.id}: deleted outside skyrig; the next apply creates it again")
                found += 1
                continue
            adopted = {
                k: now.properties.get(k)
                for k in node_type.tunable
                if now.properties.get(k) != record.observed.get(k)
            }
            drifted = sorted(
                k
                for k in node_type.invariant
                if k in record.desired and now.properties.get(k) != record.desired[k]
            )
            for key, value in adopted.items():
                click.echo(f"  adopted  {record.id}: {key} = {value!r} (changed in the cloud; kept)")
            for key in drifted:
                click.echo(
                    f"  drifted  {record.id}: {key} = {now.properties.get(key)!r}, must be "
                    f"{record.desired[key]!r} (invariant; the next apply restores it)"
                )
            if adopted or drifted != record.drift:
                session.store.record(
                    env_name,
                    fence,
                    NodeRecord(
                        record.id,
                        record.type,
                        record.provider,
                        record.provider_id,
                        record.desired,
                        dict(now.properties),
                        dict(now.outputs),
                        record.resource,
                        record.depends_on,
                        drifted,
                    ),
                )
            found += len(adopted) + len(drifted)
    click.echo(f"drift: {found} difference(s)" if found else "no drift: the cloud matches state")
    return 2 if detailed_exitcode and found else 0


@click.command(name="import")
@env_option
@click.argument("node_id")
@click.argument("provider_id")
@app_dir_option
def import_(env_name: str, node_id: str, provider_id: str, app_dir: str | None) -> None:
    """Adopt an existing resource as NODE_ID of the graph, read through its provider.

    The next plan shows only real differences."""
    from skyrig.state import NodeRecord

    session = open_session(app_dir, env_name)
    node = session.graph.nodes.get(node_id)
    if node is None:
        close = ", ".join(sorted(session.graph.nodes)[:8])
        raise UserError(f"the graph of {env_name!r} has no node {node_id!r}", f"nodes include: {close}")
    with session.locked() as fence:
        if node_id in session.store.nodes(env_name):
            raise UserError(f"{node_id} is already in state", "skyrig status shows what it is bound to")
        observed = session.types[node.type].read(session.context(node.provider), node, provider_id)
        if observed is None:
            raise UserError(f"{node.provider} has no {node.type} with id {provider_id!r}")
        session.store.record(env_name, fence, NodeRecord.of(node, observed))
    click.echo(
        f"imported {node_id} as {observed.provider_id}; run skyrig plan --env {env_name} to see differences"
    )
