"""Preview environments: ``pr:N`` (one per pull request), derived from the app's preview template.

``[preview] template = "ENV"`` in ``skyrig.toml`` names the environment previews copy (default: the only
environment of type ``preview``). A preview has the template's providers, settings and state store, the
name ``pr:N`` and the type ``preview`` (a template of type ``local`` gives ``local`` previews: the local
provider serves only local environments, so previews can be tried on one machine). Where the template's
SQL provider branches (its settings have ``branch_from``, as Neon's do) and the template sets none, the
preview's ``branch_from`` is ``[preview] seed_from``: every command derives the same branch for ``pr:N``.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any

from skyrig.config import CONFIG_FILE, PREVIEW_NAME, ConfigError, Environment, _provider_checks, _where

if TYPE_CHECKING:
    from skyrig.config import Config

PREVIEW_TYPE = "preview"


def problems(project: Any, environments: dict[str, Environment], text: str) -> list[str]:
    """What is wrong with ``[preview]``: a template or ``seed_from`` that names no environment."""
    found = []
    known = ", ".join(sorted(environments)) or "none"
    for field in ("template", "seed_from"):
        value = getattr(project.preview, field)
        if value is None or value in environments or (field == "seed_from" and PREVIEW_NAME.fullmatch(value)):
            continue
        found.append(
            f"{_where(('preview', field), text)}: names no environment {value!r} (environments: {known}): "
            f"name one of them, or add [env.{value}]"
        )
    return found


def template(config: Config) -> Environment:
    """The environment previews copy, or a :class:`ConfigError` naming ``skyrig.toml`` and what to set."""
    chosen = config.project.preview.template
    if chosen is not None:
        return config.environments[chosen]  # checked when the configuration loaded
    candidates = sorted(
        name
        for name, environment in config.environments.items()
        if environment.type == PREVIEW_TYPE and not PREVIEW_NAME.fullmatch(name)
    )
    if len(candidates) == 1:
        return config.environments[candidates[0]]
    if not candidates:
        raise ConfigError(
            [
                f"{CONFIG_FILE}: no preview template: a preview (pr:N) copies the app's preview template, "
                "and no [preview] template is set nor any environment of type preview declared"
            ],
            f'add [preview] template = "ENV" to {CONFIG_FILE}, naming the environment previews copy '
            '(or declare one environment with type = "preview")',
        )
    raise ConfigError(
        [
            f"{CONFIG_FILE}: several environments of type preview ({', '.join(candidates)}): which one "
            "previews (pr:N) copy is not clear"
        ],
        f'add [preview] template = "{candidates[0]}" (or another of them) to {CONFIG_FILE}',
    )


def branches(settings: Any) -> bool:
    """True when a SQL provider's settings model has a ``branch_from`` field (its databases are branched
    from another environment's, as Neon's are, rather than copied)."""
    fields = getattr(type(settings), "model_fields", None)
    return isinstance(fields, dict) and "branch_from" in fields


def derive(config: Config, name: str, seed_from: str | None = None) -> Environment:
    """The preview environment ``name`` (``pr:N``) as the template makes it; its SQL provider's
    ``branch_from`` (where it has one and the template sets none) is ``seed_from``, else
    ``[preview] seed_from``. A :class:`ConfigError` when the template cannot make it."""
    from pydantic import ValidationError

    from skyrig.plugins.registry import load_provider

    base = template(config)
    kind = "local" if base.type == "local" else PREVIEW_TYPE
    settings = dict(base.settings)
    sql = base.providers["sql"]
    seed = seed_from or config.project.preview.seed_from
    model = settings.get(sql)
    text = (config.root / CONFIG_FILE).read_text(encoding="utf-8")
    branched = seed is not None and branches(model) and model.branch_from is None
    if branched:
        try:
            settings[sql] = type(model).model_validate({**model.model_dump(), "branch_from": seed})
        except ValidationError as error:
            reason = error.errors(include_url=False)[0]["msg"]
            raise ConfigError(
                [f"{CONFIG_FILE}: preview {name}: {sql} cannot branch from {seed!r}: {reason}"],
                "seed previews from another environment",
            ) from None
    derived = dataclasses.replace(base, name=name, type=kind, settings=settings, template=base.name)
    found = []
    for provider in sorted(set(base.providers.values())):
        served = load_provider(provider).manifest.environment_types
        if kind not in served:
            found.append(
                f"{_where(('env', base.name), text)}: environment {base.name!r} is the preview template, "
                f"and its provider {provider!r} does not serve {kind} environments (it serves: "
                f"{', '.join(sorted(served))})"
            )
    if not found:
        found = _provider_checks({**config.environments, name: derived}, text, only=(name,))
    if found:
        hint = f'choose another template: [preview] template = "ENV" in {CONFIG_FILE}'
        if branched:
            hint = (
                f"{name}'s {sql} branch_from is the seed ({seed!r}, from --seed-from or [preview] seed_from "
                f"in {CONFIG_FILE}): seed previews from an environment whose sql is {sql!r} too, or {hint}"
            )
        raise ConfigError(found, hint)
    return derived


def sample(config: Config) -> list[Environment]:
    """The previews as the template makes them (an environment named ``pr:N``), for ``skyrig check``: none
    when the app has no preview template and ``[preview]`` asks for none."""
    asked = config.project.preview.template or config.project.preview.seed_from
    try:
        template(config)
    except ConfigError:
        if asked:
            raise
        return []
    return [derive(config, "pr:N")]
