"""``skyrig preview``: open, close and list the app's preview environments, ``pr:N`` per pull request.

A preview is derived from the app's preview template (:mod:`skyrig.config.preview`); opening it is an
apply of ``pr:N`` (the same engine path as ``skyrig apply``), seeded from another environment when asked;
closing it is a destroy of ``pr:N`` with its data, without a prompt. Both are idempotent: a host running
them for each pull request webhook may run them twice.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click

from skyrig.cli.session import app_dir_option
from skyrig.errors import ProviderError, UserError

if TYPE_CHECKING:
    from skyrig.config import Config
    from skyrig.engine.session import Session

pr_option = click.option(
    "--pr", "pr", required=True, type=click.IntRange(1, 999_999_999), help="The pull request's number."
)
json_option = click.option("--json", "as_json", is_flag=True, help="Print the outcome as JSON.")
parallelism_option = click.option(
    "--parallelism", default=10, show_default=True, type=click.IntRange(1, 256), help="Nodes at once."
)


@click.group()
def preview() -> None:
    """Preview environments: pr:N for pull request N, made from the app's preview template."""


@preview.command("open")
@pr_option
@click.option(
    "--seed-from",
    "seed_from",
    default=None,
    help="Seed a new preview's SQL databases from this environment (default: [preview] seed_from).",
)
@parallelism_option
@json_option
@app_dir_option
def open_(pr: int, seed_from: str | None, parallelism: int, as_json: bool, app_dir: str | None) -> int:
    """Create or update environment pr:N (apply it), its databases seeded when it is new."""
    from skyrig.cli.apply import _run
    from skyrig.cli.plan import refuse_missing_migrations
    from skyrig.cli.session import show_plan
    from skyrig.config.preview import branches
    from skyrig.engine import previews
    from skyrig.engine.session import Session

    config = _config(app_dir)
    name = f"pr:{pr}"
    seed = seed_from or config.project.preview.seed_from
    declared = name in config.environments
    environment = config.environment(name)
    sql = environment.providers["sql"]
    branching = branches(environment.settings.get(sql))
    if seed is not None:
        _check_seed(config, name, seed)
        current = environment.settings[sql].branch_from if branching else seed
        if current != seed:  # what every other command takes for pr:N must be what it was opened with
            where = f"[env.{name}.{sql}]" if declared else "[preview] of skyrig.toml"
            raise UserError(
                f"preview {name}: its SQL provider {sql!r} branches, and every command takes {name} with "
                f"branch_from = {current!r}, not {seed!r}: another command would replace its branch",
                f'set branch_from = "{seed}" in [env.{name}.{sql}]'
                if declared
                else f'set seed_from = "{seed}" in {where} instead of passing --seed-from',
            )
    session = Session(config, name)
    copying = seed is not None and not branching
    if copying:
        _check_sources(config, seed, session)
    how = None if seed is None else ("branched" if branching else "copied")
    template_name = _template_name(config, declared)
    seeded: dict[str, Any] = {}
    code, noted = 1, False
    try:
        with session.locked(wait=True) as fence:
            made = session.plan()
            refuse_missing_migrations(made)
            show_plan(made, err=True)
            previews.note(session.store, name, template=template_name, seed_from=seed, state="opening")
            noted = True
            if made.has_changes() or made.has_adoptions():
                code = _run(session, made, fence, parallelism)
            else:
                session.write_runtime_configs(made, fence)
                code = 0
            if code == 0 and copying:
                code = 1  # until seeded
                seeded = _seed(config, session, seed)
                code = 0
    finally:
        if noted:  # how this open ended, for skyrig preview list
            state = "open" if code == 0 else "failed"
            previews.note(session.store, name, template=template_name, seed_from=seed, state=state)
    if as_json:
        from skyrig.cli.output import print_json

        print_json(
            {
                "app": session.app,
                "environment": name,
                "pr": pr,
                "type": session.environment.type,
                "template": template_name,
                "ok": code == 0,
                "seed": {"from": seed, "how": how, "databases": seeded} if seed is not None else None,
                "urls": _urls(session),
            }
        )
    elif code == 0:
        click.echo(f"preview {name} of {session.app} is open")
        for service, url in sorted(_urls(session).items()):
            click.echo(f"  {service}: {url}")
    return code


@preview.command("close")
@pr_option
@parallelism_option
@json_option
@app_dir_option
def close(pr: int, parallelism: int, as_json: bool, app_dir: str | None) -> int:
    """Destroy environment pr:N with its data (no prompt: it is a preview)."""
    from skyrig.cli.apply import _run
    from skyrig.cli.session import show_plan
    from skyrig.engine import previews
    from skyrig.engine.session import Session

    config = _config(app_dir)
    name = f"pr:{pr}"
    session = Session(config, name)
    if session.environment.type == "production":
        raise UserError(
            f"environment {name!r} is declared in skyrig.toml as a production environment: "
            "skyrig preview close destroys previews only",
            f"destroy it with skyrig destroy --env {name}",
        )
    with session.locked(wait=True) as fence:
        made = session.plan(destroy=True, include_data=True)
        existed = made.has_changes()
        code = 0
        if existed:
            show_plan(made, err=True)
            code = _run(session, made, fence, parallelism)
    if code == 0:
        previews.forget(session.store, name)
    if as_json:
        from skyrig.cli.output import print_json

        print_json({"app": session.app, "environment": name, "pr": pr, "ok": code == 0, "existed": existed})
    elif code == 0:
        outcome = "is closed" if existed else "is not open: nothing to close"
        click.echo(f"preview {name} of {session.app} {outcome}")
    return code


@preview.command("list")
@json_option
@app_dir_option
def list_(as_json: bool, app_dir: str | None) -> None:
    """The previews open (noted by skyrig preview open, until closed)."""
    from skyrig.config.preview import template
    from skyrig.engine import previews
    from skyrig.state import open_store

    config = _config(app_dir)
    store = open_store(template(config).state, config.root)
    try:
        entries = previews.listed(store)
        for entry in entries:
            entry["nodes"] = len(store.nodes(entry["environment"]))
    finally:
        store.close()
    if as_json:
        from skyrig.cli.output import print_json

        print_json({"app": config.app, "previews": entries})
        return
    if not entries:
        click.echo(f"no previews of {config.app} are open")
        return
    import datetime

    for entry in entries:
        opened = datetime.datetime.fromtimestamp(entry["opened_at"], datetime.UTC).strftime("%Y-%m-%d %H:%M")
        seed = f", seeded from {entry['seed_from']}" if entry.get("seed_from") else ""
        click.echo(
            f"{entry['environment']:<10} {entry['state']:<8} opened {opened} UTC, "
            f"{entry['nodes']} node(s){seed}"
        )


def _config(app_dir: str | None) -> Config:
    from skyrig.cli.app import app_root
    from skyrig.config import load_config

    return load_config(app_root(app_dir, require_config=True))


def _template_name(config: Config, declared: bool) -> str | None:
    """The template's name; None for a preview declared in [env] of an app without a template."""
    from skyrig.config import ConfigError
    from skyrig.config.preview import template

    try:
        return template(config).name
    except ConfigError:
        if declared:
            return None
        raise


def _check_seed(config: Config, name: str, seed: str) -> None:
    from skyrig.config import ConfigError

    if seed == name:
        raise ConfigError(
            [f"preview {name} cannot be seeded from itself"],
            "seed it from another environment: --seed-from ENV, or [preview] seed_from in skyrig.toml",
        )
    config.environment(seed)  # a ConfigError naming the environments when there is none such


def _check_sources(config: Config, seed: str, target: Session) -> None:
    """Stop the open early, before anything is applied, when a database of the app that ``target`` has
    not provisioned yet (one to seed) cannot be read in the seed environment."""
    recorded = target.store.nodes(target.name)
    fresh = [
        name
        for name in _databases(target)
        if not any(record.resource == f"sql_database/{name}" for record in recorded.values())
    ]
    if fresh:
        from skyrig.engine.session import Session

        source = Session(config, seed)
        for name in fresh:
            _source_url(source, seed, name, check=True)


def _databases(session: Session) -> list[str]:
    return sorted(resource.name for resource in session.model.of_kind("sql_database"))


def _source_url(source: Session, seed: str, database: str, *, check: bool = False) -> str:
    """The seed environment's URL of ``database`` (connected to once, when ``check``), or a clear error."""
    import psycopg

    from skyrig.cli.db import _provisioned, _url

    try:
        node, record = _provisioned(source, database)
    except UserError as error:
        raise UserError(
            f"cannot seed from environment {seed!r}: {error.message}",
            f"apply it first (skyrig apply --env {seed}), or seed from another environment",
        ) from None
    url = _url(source, node, record)
    if check:
        try:
            psycopg.connect(url, connect_timeout=15).close()
        except psycopg.Error as error:
            first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
            raise UserError(
                f"cannot seed from environment {seed!r}: its database {database!r} cannot be reached from "
                f"this machine: {first}",
                "seed from an environment whose databases this machine reaches, or open without a seed",
            ) from None
    return url


def _seed(config: Config, session: Session, seed: str) -> dict[str, Any]:
    """Seed each of the preview's databases that holds no row yet from ``seed``'s."""
    from skyrig.cli.db import _provisioned, _url
    from skyrig.engine.seed import seed as copy
    from skyrig.engine.session import Session

    done = {}
    sources: list[Session] = []

    def source_of(database: str) -> str:
        if not sources:
            sources.append(Session(config, seed))
        return _source_url(sources[0], seed, database)

    for database in _databases(session):
        node, record = _provisioned(session, database)
        try:
            outcome = copy(lambda database=database: source_of(database), _url(session, node, record))
        except ProviderError as error:
            raise UserError(
                f"database {database!r} of preview {session.name} could not be seeded from {seed!r}: {error}",
                f"the preview is provisioned; fix it and run skyrig preview open again (a database with rows "
                f"is not seeded again: skyrig db reset {database} --env {session.name} empties it)",
            ) from None
        done[database] = outcome.as_json()
        what = outcome.skipped or (
            f"{sum(outcome.rows.values())} row(s) in {len(outcome.rows)} table(s), "
            f"{outcome.sequences} sequence(s)"
        )
        click.echo(f"seeded {database} from {seed}: {what}", err=True)
    return done


def _urls(session: Session) -> dict[str, str]:
    """Each service's URL, where its compute provider records one."""
    found = {}
    for record in session.store.nodes(session.name).values():
        url = record.outputs.get("url")
        service = (record.resource or "").partition("/")[2]
        if isinstance(url, str) and (record.resource or "").startswith("service/") and service:
            found[service] = url
    return found
