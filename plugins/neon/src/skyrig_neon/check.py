"""What the Neon provider needs of the configuration, beyond its settings model: the rules of ``branch_from``
and ``branch_at`` across environments, checked by ``skyrig check`` (and every command that reads
``skyrig.toml``) before anything calls Neon.

The provider's ``check_environment`` answers :func:`problems`. Two more rules live elsewhere: the
manifest's ``needs`` (Neon's databases are reached at public endpoints, so the environment's services
must reach the internet: ``compute.internet``) and the core's rule that a provider that runs no services
(Neon) cannot be an environment's ``provider`` unless ``compute`` is set apart.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from skyrig.provider import ConfigProblem, Environment

NAME = "neon"


def problems(environment: Environment, environments: Mapping[str, Environment]) -> list[ConfigProblem]:
    """Why ``environment``'s Neon settings cannot work beside ``environments`` (every environment of
    ``skyrig.toml``, by name): each problem names the field of ``[env.NAME.neon]`` and what to do."""
    settings = environment.settings.get(NAME)
    if settings is None or environment.providers.get("sql") != NAME:
        return []
    name = environment.name
    branch_from, branch_at = _get(settings, "branch_from"), _get(settings, "branch_at")
    if environment.type == "production":
        return _production(environment, environments, branch_from, branch_at)
    if branch_from is None:
        return []
    field = (NAME, "branch_from")
    on_neon = [n for n, env in environments.items() if n != name and env.providers.get("sql") == NAME]
    candidates = (
        f"environments whose sql is neon: {', '.join(sorted(on_neon))}"
        if on_neon
        else "none has sql = 'neon'"
    )
    if branch_from == name:
        return [
            ConfigProblem(
                field,
                f"names environment {name!r} itself: a branch is made from another environment's branch; "
                f"name another ({candidates}), or remove branch_from from [env.{name}.neon] to branch from "
                f"the project's default branch (production's)",
            )
        ]
    parent = environments.get(branch_from)
    if parent is None:
        return [
            ConfigProblem(
                field,
                f"names no environment of skyrig.toml ({candidates}): add [env.{branch_from}] with "
                f'sql = "neon", or name an existing one',
            )
        ]
    if parent.providers.get("sql") != NAME:
        return [
            ConfigProblem(
                field,
                f"names environment {branch_from!r}, whose sql is on {parent.providers.get('sql')!r}, not "
                f'Neon, so it has no Neon branch to branch from: set sql = "neon" in [env.{branch_from}], '
                f"or name another ({candidates})",
            )
        ]
    found = []
    if _project(parent) is not None and _project(parent) != _project(environment):
        found.append(
            ConfigProblem(
                field,
                f"names environment {branch_from!r}, which is in another Neon project "
                f"({_describe(_project(parent))} there, {_describe(_project(environment))} here): a branch "
                f"is made within one project; set the same project_id (and org_id) in [env.{name}.neon] "
                f"and [env.{branch_from}.neon]",
            )
        )
    cycle = _cycle(name, environments)
    if cycle:
        found.append(
            ConfigProblem(
                field,
                f"makes a cycle ({' -> '.join(cycle)}): a branch is made from a parent branch that exists "
                f"first; remove branch_from from one of [env.{name}.neon] and "
                f"{', '.join(f'[env.{n}.neon]' for n in cycle[1:-1])}",
            )
        )
    return found


def _production(
    environment: Environment,
    environments: Mapping[str, Environment],
    branch_from: str | None,
    branch_at: str | None,
) -> list[ConfigProblem]:
    """Production is on the project's default branch: made by Neon with the project, never from a parent,
    and not shared with another production environment."""
    name, found = environment.name, []
    for field, value in (("branch_from", branch_from), ("branch_at", branch_at)):
        if value is not None:
            found.append(
                ConfigProblem(
                    (NAME, field),
                    f"a production environment is on the Neon project's default branch, which Neon makes "
                    f"with the project and which is never made from another branch or point in time: "
                    f"remove {field} from [env.{name}.neon] (previews branch from production with "
                    f'branch_from = "{name}" in theirs)',
                )
            )
    twins = sorted(
        other.name
        for other in environments.values()
        if other.name != name
        and other.type == "production"
        and other.providers.get("sql") == NAME
        and NAME in other.settings
        and _project(other) == _project(environment)
    )
    if twins:
        found.append(
            ConfigProblem(
                ("sql",),
                f"production environments {', '.join(repr(n) for n in sorted([name, *twins]))} would share "
                f"one Neon project's default branch (and its data): give each its own project with "
                f"project_id in [env.{name}.neon]",
            )
        )
    return found


def _cycle(start: str, environments: Mapping[str, Environment]) -> list[str]:
    """The environments from ``start`` along ``branch_from`` back to ``start``, if the chain comes back."""
    chain, current = [start], start
    while True:
        env = environments.get(current)
        settings = env.settings.get(NAME) if env is not None else None
        parent = _get(settings, "branch_from") if settings is not None else None
        if parent is None or parent not in environments:
            return []
        if parent == start:
            return [*chain, start]
        if parent in chain:  # a cycle further up, reported at its own environments
            return []
        chain.append(parent)
        current = parent


def _project(environment: Environment) -> tuple[str, str | None] | None:
    """Which Neon project the environment is in, as far as configuration says: its ``project_id``, else
    the project named after the app in ``org_id``'s organization."""
    settings = environment.settings.get(NAME)
    if settings is None:
        return None
    project_id = _get(settings, "project_id")
    return ("project_id", project_id) if project_id else ("org_id", _get(settings, "org_id"))


def _describe(project: tuple[str, str | None] | None) -> str:
    if project is None:
        return "unknown"
    field, value = project
    if field == "project_id":
        return f"project_id {value!r}"
    return "the app's project" + (f" in org_id {value!r}" if value else "")


def _get(settings: Any, field: str) -> Any:
    """A setting of the validated model (or of the plain table of a provider without one)."""
    if isinstance(settings, Mapping):
        return settings.get(field)
    return getattr(settings, field, None)
