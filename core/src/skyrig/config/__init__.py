"""Configuration: ``skyrig.toml`` at the app root, ``SKYRIG_`` environment variables over it, and each
environment's providers resolved and their settings validated, all before any provider is called."""

from __future__ import annotations

import os
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from skyrig.errors import UserError

CONFIG_FILE = "skyrig.toml"


class ConfigError(UserError):
    """Configuration that cannot be used, reported field by field."""

    def __init__(self, problems: list[str], hint: str | None = None) -> None:
        self.problems = problems
        count = len(problems)
        super().__init__(f"{count} problem{'s' if count != 1 else ''} in configuration", hint)

    def render(self) -> str:
        lines = [f"error: {problem}" for problem in self.problems]
        if self.hint:
            lines.append(f"  hint: {self.hint}")
        return "\n".join(lines)


@dataclass(frozen=True)
class Environment:
    """One environment, resolved: its type, the provider of each family and their validated settings."""

    name: str
    type: str
    providers: dict[str, str]
    """Family (``compute``, ``sql``, ...) -> provider name."""
    settings: dict[str, Any]
    """Provider name -> its validated settings model (or a plain dict when it has no model)."""
    state: str = "sqlite:///.skyrig/state.db"
    """The URL of the store that keeps this environment's state: the first of ``SKYRIG_ENV__NAME__STATE``,
    ``[env.NAME] state``, ``SKYRIG_STATE``, the app's ``state``, the default."""
    template: str | None = None
    """For a preview (``pr:N``) derived from the app's preview template, the template's name: a provider
    may let the preview read what the template holds (the hosted provider: its secret values)."""

    def provider_for(self, family: str) -> str:
        """The provider that provisions ``family`` in this environment."""
        return self.providers[family]

    def kinds_of(self, provider: str) -> frozenset[str]:
        """The kinds ``provider`` provisions in this environment (the families handed to it)."""
        from skyrig.kinds import KINDS

        return frozenset(name for name, kind in KINDS.items() if self.providers[kind.family] == provider)


PREVIEW_NAME = re.compile(r"pr:([1-9][0-9]{0,8})")
"""The name of a preview environment: ``pr:N`` for pull request N."""


@dataclass(frozen=True)
class Config:
    """A loaded, validated ``skyrig.toml``."""

    root: Path
    """The app root: the folder of ``skyrig.toml``."""
    project: Any  # ProjectConfig; typed loosely so that importing this module stays cheap
    environments: dict[str, Environment]

    @property
    def app(self) -> str:
        return self.project.app

    def environment(self, name: str) -> Environment:
        """The environment ``name``, or a :class:`ConfigError` listing those that exist. A preview
        ``pr:N`` not declared in ``[env]`` is derived from the preview template
        (:mod:`skyrig.config.preview`)."""
        if name not in self.environments and PREVIEW_NAME.fullmatch(name):
            from skyrig.config.preview import derive

            return derive(self, name)
        if name not in self.environments:
            known = ", ".join(sorted(self.environments)) or "none"
            raise ConfigError(
                [f"{CONFIG_FILE}: no environment {name!r} (environments: {known})"],
                f"add a table [env.{name}] with type and provider",
            )
        return self.environments[name]


def find_root(start: Path) -> Path:
    """The app root at or above ``start``: the nearest folder holding ``skyrig.toml``."""
    start = start.resolve()
    for folder in (start, *start.parents):
        if (folder / CONFIG_FILE).is_file():
            return folder
    raise UserError(
        f"no {CONFIG_FILE} in {start} or any folder above it",
        "run skyrig in an app's folder, pass the folder, or create an app with 'skyrig init'",
    )


def load_config(root: Path) -> Config:
    """Read and validate ``root/skyrig.toml`` with its environment overrides and provider settings, and
    the ``SKYRIG_`` variables that tune commands (:mod:`skyrig.config.variables`): every problem at once."""
    from skyrig.config.variables import problems

    variables = problems()
    try:
        config = _load(root)
    except ConfigError as error:
        raise ConfigError([*variables, *error.problems], error.hint) from None
    if variables:
        raise ConfigError(variables)
    return config


def _load(root: Path) -> Config:
    from pydantic import ValidationError
    from pydantic_settings import SettingsError

    from skyrig.config.schema import ProjectConfig

    path = root / CONFIG_FILE
    text = path.read_text(encoding="utf-8")
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        position = re.search(r"\(at line (\d+), column (\d+)\)", str(error))
        where = f"{CONFIG_FILE}:{position[1]}:{position[2]}" if position else CONFIG_FILE
        message = re.sub(r"\s*\(at line \d+, column \d+\)", "", str(error))
        raise ConfigError([f"{where}: invalid TOML: {message}"]) from None
    _no_credentials(data, text)
    try:
        project = ProjectConfig(**data)
    except ValidationError as error:
        raise ConfigError([_describe(item, text) for item in error.errors(include_url=False)]) from None
    except SettingsError as error:
        raise ConfigError([_unparsed(error)]) from None
    environments = _environments(project, text)
    from skyrig.config.preview import problems as preview_problems

    found = preview_problems(project, environments, text)
    if found:
        raise ConfigError(found)
    return Config(root, project, environments)


_PASSWORD = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://[^/?#@]*:[^/?#@]+@|[?&](password|secret)=", re.IGNORECASE)


def _no_credentials(data: dict[str, Any], text: str) -> None:
    """Refuse a state URL with a password in ``skyrig.toml``: the file is committed, read by everyone who
    reads the code, and copied into CI logs. The password comes from the store's usual chain instead."""
    found = []
    places: list[tuple[str, ...]] = [("state",)]
    environments = data.get("env")
    if isinstance(environments, dict):
        places += [("env", name, "state") for name, env in environments.items() if isinstance(env, dict)]
    for place in places:
        value: Any = data
        for key in place:
            value = value.get(key) if isinstance(value, dict) else None
        if isinstance(value, str) and _PASSWORD.search(value):
            line = _line_of(place, text)
            where = f"{CONFIG_FILE}:{line}" if line else CONFIG_FILE
            variable = "SKYRIG_" + "__".join(place).upper()
            found.append(
                f"{where}: {'.'.join(place)}: the URL holds a password, and {CONFIG_FILE} holds no "
                f"credentials: remove it, and let the store's usual chain supply it (PGPASSWORD or "
                f"~/.pgpass for postgresql, the AWS chain for s3, Application Default Credentials for gs), "
                f"or set the whole URL in {variable}"
            )
    if found:
        raise ConfigError(found, "a state URL in skyrig.toml names where state is, never how to log in")


def _unparsed(error: Exception) -> str:
    """A variable that sets a whole table (``SKYRIG_ENV``) to something that is not JSON."""
    field = re.search(r'field "([^"]+)"', str(error))
    name = field[1] if field else "?"
    variable = next(
        (key for key in os.environ if key.upper() == f"SKYRIG_{name.upper()}"), f"SKYRIG_{name.upper()}"
    )
    return (
        f"{variable}: {name}: {os.environ.get(variable, '')!r} is not JSON: a variable that sets a whole "
        f"table takes a JSON object; set one field at a time instead, such as "
        f"SKYRIG_{name.upper()}__DEV__TYPE=development"
    )


def _environments(project: Any, text: str) -> dict[str, Environment]:
    import dataclasses

    problems: list[str] = []
    environments = {}
    for name, env in sorted(project.env.items()):
        resolved = _environment(name, env, text, problems)
        environments[name] = dataclasses.replace(resolved, state=env.state or project.state)
    problems.extend(_provider_checks(environments, text))
    if problems:
        raise ConfigError(problems)
    return environments


def _provider_checks(
    environments: dict[str, Environment], text: str, only: tuple[str, ...] | None = None
) -> list[str]:
    """What each environment's providers say of it (:meth:`skyrig.provider.Provider.check_environment`),
    asked of every provider that loaded and whose settings are valid (of the environments ``only`` names,
    when given)."""
    from skyrig.plugins.registry import load_provider

    problems = []
    for name, environment in environments.items():
        if only is not None and name not in only:
            continue
        for provider_name in sorted(set(environment.providers.values()) & set(environment.settings)):
            try:
                found = load_provider(provider_name).check_environment(environment, environments)
            except UserError:  # failed to load: reported where the environment names it
                continue
            except Exception as error:  # the provider's fault: say so, and go on
                where = _where(("env", name), text)
                problems.append(
                    f"{where}: provider {provider_name!r} failed to check this environment: "
                    f"{type(error).__name__}: {error}"
                )
                continue
            problems.extend(
                f"{_where(('env', name, *problem.field), text)}: {problem.message}" for problem in found
            )
    return problems


def _environment(name: str, env: Any, text: str, problems: list[str]) -> Environment:
    """Resolve one environment's providers and validate their settings, adding any problem found."""
    from pydantic import ValidationError

    from skyrig.kinds import FAMILIES
    from skyrig.plugins.registry import load_provider, providers_where

    providers = {family: getattr(env, family) or env.provider for family in FAMILIES}
    overrides = {family: provider for family, provider in providers.items() if getattr(env, family)}
    # each provider is checked once, at the field that first names it
    fields = {env.provider: "provider"} | {p: f for f, p in overrides.items() if p != env.provider}
    settings: dict[str, Any] = {}
    loaded = {}
    for provider_name, field in fields.items():
        where = _where(("env", name, field), text)
        try:
            manifest = load_provider(provider_name).manifest
        except UserError as error:
            problems.append(f"{where}: {error.message}" + (f" ({error.hint})" if error.hint else ""))
            continue
        loaded[provider_name] = manifest
        if env.type not in manifest.environment_types:
            problems.append(
                f"{where}: provider {provider_name!r} does not serve {env.type} environments "
                f"(it serves: {', '.join(sorted(manifest.environment_types))})"
            )
        table = env.provider_tables().get(provider_name, {})
        model = manifest.settings_model()
        try:
            settings[provider_name] = model(**table) if model is not None else table
        except ValidationError as error:
            prefix = ("env", name, provider_name)
            problems.extend(_describe(item, text, prefix) for item in error.errors(include_url=False))
    for family, provider_name in overrides.items():
        manifest = loaded.get(provider_name)
        if manifest is not None and family not in manifest.families:
            others = providers_where(
                lambda manifest, family=family: (
                    family in manifest.families and env.type in manifest.environment_types
                )
            )
            problems.append(
                f"{_where(('env', name, family), text)}: provider {provider_name!r} does not provision "
                f"{family} (providers that do: {', '.join(others) or 'none installed'})"
            )
    problems.extend(_apart(name, env, providers, loaded, text))
    problems.extend(_needs(name, env, providers, loaded, text))
    problems.extend(_main(name, env, loaded, text))
    for table_name in sorted(set(env.provider_tables()) - set(fields)):
        problems.append(
            f"{_where(('env', name, table_name), text)}: settings for provider {table_name!r}, "
            f"which environment {name!r} does not use (it uses: {', '.join(sorted(fields))})"
        )
    return Environment(name, env.type, providers, settings)


def _apart(name: str, env: Any, providers: dict[str, str], loaded: dict[str, Any], text: str) -> list[str]:
    """Families handed to a provider that serves them only beside others of its own (its manifest's
    ``together``), while the environment hands those to another provider."""
    from skyrig.plugins.registry import providers_where

    problems = []
    for family, provider_name in providers.items():
        manifest = loaded.get(provider_name)
        for needed in sorted(manifest.together.get(family, ()) if manifest else ()):
            other = providers[needed]
            if other == provider_name:
                continue
            alternatives = providers_where(
                lambda m, family=family, needed=needed, other=other: (
                    family in m.families
                    and env.type in m.environment_types
                    and (needed not in m.together.get(family, ()) or m.name == other)
                )
            )
            field = family if getattr(env, family) else "provider"
            problems.append(
                f"{_where(('env', name, field), text)}: provider {provider_name!r} serves {family} only "
                f"beside its own {needed} (its {family} nodes depend on its {needed} nodes), and this "
                f"environment hands {needed} to {other!r}: set {needed} = {provider_name!r} in "
                f"[env.{name}], or choose a {family} provider that works beside {other!r} (providers that "
                f"do: {', '.join(alternatives) or 'none installed'})"
            )
    return problems


def _needs(name: str, env: Any, providers: dict[str, str], loaded: dict[str, Any], text: str) -> list[str]:
    """Families handed to a provider that needs a trait (its manifest's ``needs``) of another family whose
    provider in this environment does not declare it (its manifest's ``traits``)."""
    from skyrig.kinds import TRAITS
    from skyrig.plugins.manifest import trait_family
    from skyrig.plugins.registry import providers_where

    problems = []
    for family, provider_name in providers.items():
        manifest = loaded.get(provider_name)
        for trait in sorted(manifest.needs.get(family, ()) if manifest else ()):
            other_family = trait_family(trait)
            other = providers[other_family]
            if other not in loaded or trait in loaded[other].traits:
                continue
            if other_family not in loaded[other].families:  # it cannot serve that family: said apart
                continue
            alternatives = providers_where(
                lambda m, other_family=other_family, trait=trait: (
                    other_family in m.families and env.type in m.environment_types and trait in m.traits
                )
            )
            where = _where(("env", name, family if getattr(env, family) else "provider"), text)
            problems.append(
                f"{where}: provider {provider_name!r} serves {family} only where "
                f"{TRAITS[trait].split(' (')[0]} ({trait}), and this environment's {other_family} provider "
                f"{other!r} does not say so: set {other_family} in [env.{name}] to a provider that does "
                f"({', '.join(alternatives) or 'none installed'}), or choose another {family} provider"
            )
    return problems


def _main(name: str, env: Any, loaded: dict[str, Any], text: str) -> list[str]:
    """An environment's ``provider`` takes every family not set apart, its services included: one that
    cannot run services (Neon, which serves SQL beside another) may be its ``provider`` only where
    ``compute`` is set apart."""
    from skyrig.kinds import FAMILIES
    from skyrig.plugins.registry import providers_where

    manifest = loaded.get(env.provider)
    if manifest is None or env.compute or "compute" in manifest.families:
        return []
    served = [family for family in FAMILIES if family in manifest.families]
    others = providers_where(lambda m: "compute" in m.families and env.type in m.environment_types)
    overrides = " and ".join(f"{family} = {env.provider!r}" for family in served)
    return [
        f"{_where(('env', name, 'provider'), text)}: provider {env.provider!r} provisions only "
        f"{', '.join(served)}, beside another provider, and an environment's provider provisions every "
        f"family not set apart, its services included: in [env.{name}] set provider to one that runs "
        f"services ({', '.join(others) or 'none installed'}) and {overrides}"
    ]


def _describe(item: dict[str, Any], text: str, prefix: tuple[str, ...] = ()) -> str:
    location = (*prefix, *(str(part) for part in item["loc"]))
    message = item["msg"].removeprefix("Value error, ")
    if location[-1] == "[key]":  # a table name that is not a valid environment name
        location = location[:-1]
        message = f"invalid environment name {location[-1]!r}: {message}"
    if item["type"] == "extra_forbidden":
        message = "unknown field"
    elif item["type"] == "dict_type" and location[:1] == ("env",) and len(location) == 3:
        message = (
            "unknown field: an environment has type, provider, per-kind providers (compute, sql, "
            "pubsub, cache, cron, objects, secrets) and provider settings tables"
        )
    elif item["type"] == "missing":
        message = "missing: this field is required"
    return f"{_where(location, text)}: {message}"


def _where(location: tuple[str, ...], text: str) -> str:
    """``skyrig.toml:LINE: a.b.c`` or ``SKYRIG_A__B__C: a.b.c`` when an environment variable set it."""
    dotted = ".".join(location)
    variable = "SKYRIG_" + "__".join(location).upper()
    if any(key.upper() == variable for key in os.environ):
        return f"{variable}: {dotted}"
    line = _line_of(location, text)
    return f"{CONFIG_FILE}:{line}: {dotted}" if line else f"{CONFIG_FILE}: {dotted}"


def _line_of(location: tuple[str, ...], text: str) -> int | None:
    """The line of ``text`` that sets ``location``, else the header of the closest enclosing table."""
    table: tuple[str, ...] = ()
    enclosing, depth = None, -1
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.split("#", 1)[0].strip()
        header = re.fullmatch(r"\[\s*([^\[\]]+?)\s*\]", line)
        if header:
            table = _key_path(header[1])
            if location[: len(table)] == table and len(table) > depth:
                enclosing, depth = number, len(table)
            continue
        key = re.match(r"([A-Za-z0-9_.\"' -]+?)\s*=", line)
        if key and table + _key_path(key[1]) == location:
            return number
    return enclosing


def _key_path(key: str) -> tuple[str, ...]:
    return tuple(part.strip().strip("\"'") for part in key.split("."))
