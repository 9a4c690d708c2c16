"""``skyrig plan``: what an apply would do, and why.

A plan records what it was made from, as fingerprints: the model's, one hash per service and resource
(the model's deterministic JSON without where things are written: moving code stales no plan), and the
environment configuration's, one hash per field (the environment's type, each family's provider, each
provider setting as validated, ``SKYRIG_`` variables included), salted per plan so that no value, secret
or not, can be read back from it. ``skyrig apply FILE`` refuses a plan whose app or configuration changed
since (:func:`refuse_stale`), naming what changed.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from skyrig.cli.session import app_dir_option, env_option, open_session, show_plan

if TYPE_CHECKING:
    from skyrig.config import Environment
    from skyrig.engine.plan import Plan
    from skyrig.engine.session import Session
    from skyrig.model import AppModel

SHOWN = 12
"""Changed parts named at most in a refusal (then: and N more)."""

image_option = click.option(
    "--image",
    help="Deploy this container image (REPO:TAG or a digest), for compute providers that run images; "
    "without it the services keep the image they run (or the provider's image setting, when set).",
)


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
@image_option
@app_dir_option
def plan(
    env_name: str,
    as_json: bool,
    out: str | None,
    detailed_exitcode: bool,
    include_data: bool,
    refresh: bool,
    image: str | None,
    app_dir: str | None,
) -> int:
    """Refresh what is provisioned, compare it with the app, and list each change with its reason.

    The services run --image if given; else the compute provider's image setting, when configuration sets
    one; else the image they run now (the last apply's); else the provider's default."""
    from skyrig.engine import images

    session = open_session(app_dir, env_name)
    if image:
        images.use(session, image)
    made = session.plan(include_data=include_data, refresh=refresh)
    made.annotations[:0] = images.note(session.image)
    refuse_missing_migrations(made)
    made.fingerprints = fingerprints(session)
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


def fingerprints(session: Session) -> dict[str, Any]:
    """What a plan of ``session`` is made from: the model's and the configuration's fingerprints."""
    salt = secrets.token_hex(16)
    found = {
        "model": model_fingerprints(session.model),
        "config": config_fingerprints(session.environment, salt, configured_image(session)),
        "salt": salt,
    }
    if session.image is not None:  # what apply FILE deploys, as this plan was made (not a secret)
        found["image"] = session.image.ref
    return found


def configured_image(session: Session) -> dict[str, Any]:
    """``{PROVIDER: image}``: the compute provider's ``image`` setting as configured, before the command
    set it to the image it deploys (``--image``, or as applied), which the plan records apart."""
    image = session.image
    return {image.provider: image.setting} if image is not None else {}


def model_fingerprints(model: AppModel) -> dict[str, str]:
    """``kind/name`` of each service and resource (and ``app``) -> a hash of its part of the model's JSON,
    places left out; a service's part holds its uses."""
    data = _without_places(model.model_dump(mode="json"))
    parts: dict[str, Any] = {"app": [data["app"], data["schema_version"]]}
    for service in data["services"]:
        parts[f"service/{service['name']}"] = {**service, "uses": []}
    for use in data["uses"]:
        parts.setdefault(f"service/{use['service']}", {"uses": []})["uses"].append(use)
    for resource in data["resources"]:
        parts[f"{resource['kind']}/{resource['name']}"] = resource
    return {key: _digest("", value) for key, value in parts.items()}


def config_fingerprints(
    environment: Environment, salt: str, image: dict[str, Any] | None = None
) -> dict[str, str]:
    """``type``, ``providers.FAMILY`` and ``PROVIDER.SETTING`` -> a hash, salted with ``salt``, of its value
    (a secret setting's value included: only its salted hash is ever written). ``image``: ``{PROVIDER:
    image}``, the ``image`` setting as configured (see :func:`configured_image`)."""
    from pydantic import BaseModel

    parts: dict[str, Any] = {"type": environment.type}
    parts |= {f"providers.{family}": name for family, name in environment.providers.items()}
    for provider, settings in environment.settings.items():
        if isinstance(settings, BaseModel):
            values = {name: getattr(settings, name) for name in type(settings).model_fields}
        else:
            values = dict(settings or {})
        if provider in (image or {}):
            values["image"] = image[provider]  # type: ignore[index]
        parts |= {f"{provider}.{name}": value for name, value in values.items()}
    return {key: _digest(salt, value) for key, value in parts.items()}


def refuse_stale(made: Plan, session: Session, plan_file: str) -> None:
    """Refuse the saved plan ``made`` if the app or the environment's configuration changed since it was
    made (or if it does not say what it was made from), naming what changed."""
    from skyrig.errors import UserError

    hint = (
        f"make a new plan: skyrig plan --env {session.name} --out {plan_file} (with the configuration and "
        "SKYRIG_ variables the apply will have)"
    )
    recorded = made.fingerprints
    if not isinstance(recorded.get("model"), dict) or not isinstance(recorded.get("config"), dict):
        raise UserError(
            f"{plan_file} does not record the app and configuration it was made from; nothing was applied",
            hint,
        )
    problems = []
    model = _changes(recorded["model"], model_fingerprints(session.model), named=True)
    if model:
        problems.append(f"the app changed since the plan was made: {model}")
    now = config_fingerprints(session.environment, str(recorded.get("salt", "")), configured_image(session))
    config = _changes(recorded["config"], now, named=False)
    if config:
        problems.append(
            f"the configuration of environment {session.name!r} changed since the plan was made: {config}"
        )
    if problems:
        raise UserError("; ".join(problems) + "; nothing was applied", hint)


def _changes(then: dict[str, str], now: dict[str, str], *, named: bool) -> str:
    """The parts that differ, ``kind/name added``, ``... removed``, ``... changed`` (or only their names)."""
    found = [
        *(f"{key} added" for key in sorted(now.keys() - then.keys())),
        *(f"{key} removed" for key in sorted(then.keys() - now.keys())),
        *(f"{key} changed" for key in sorted(then.keys() & now.keys()) if then[key] != now[key]),
    ]
    if not named:
        found = sorted(item.rpartition(" ")[0] for item in found)
    more = f" and {len(found) - SHOWN} more" if len(found) > SHOWN else ""
    return ", ".join(found[:SHOWN]) + more


def _digest(salt: str, value: Any) -> str:
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), default=_plain)
    return hashlib.sha256((salt + text).encode()).hexdigest()[:32]


def _plain(value: Any) -> Any:
    """A JSON form of a setting's value: a secret's own value (hashed, never written), a model's fields."""
    from pydantic import BaseModel, SecretBytes, SecretStr

    if isinstance(value, SecretStr | SecretBytes):
        secret = value.get_secret_value()
        return secret.decode("utf-8", "replace") if isinstance(secret, bytes) else secret
    if isinstance(value, BaseModel):
        return {name: getattr(value, name) for name in type(value).model_fields}
    if isinstance(value, set | frozenset):
        return sorted(value, key=repr)
    return str(value)


PLACES = ("location", "locations", "operations_not_visible")
"""The model's fields that say where things are written (a use's places whose operations are not visible
too: what those places ask for is in its ``operations``)."""


def _without_places(value: Any) -> Any:
    """``value`` (the model's JSON data) without where things are written: where a declaration is written
    is not what it declares."""
    if isinstance(value, dict):
        return {k: _without_places(v) for k, v in value.items() if k not in PLACES}
    if isinstance(value, list):
        return [_without_places(item) for item in value]
    return value
