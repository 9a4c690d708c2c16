"""Checking an app's model against an environment's providers, before any provider is called."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pluggy

from skyrig import hookspecs
from skyrig.errors import UserError
from skyrig.plugins.manifest import KIND_FAMILIES
from skyrig.plugins.registry import PLUGINS, load_provider, providers_where

if TYPE_CHECKING:
    from skyrig.config import Environment
    from skyrig.model import AppModel


class UnsupportedModel(UserError):
    """Environments cannot run the model: a provider lacks a kind or feature, or a plugin vetoed it."""

    def __init__(self, problems: dict[str, list[str]]) -> None:
        self.problems = problems
        names = ", ".join(repr(name) for name in problems)
        super().__init__(f"environment{'s' if len(problems) > 1 else ''} {names} cannot run this app")

    def render(self) -> str:
        lines = []
        for environment, problems in self.problems.items():
            lines.append(f"error: environment {environment!r} cannot run this app:")
            lines.extend(f"  {problem}" for problem in problems)
        return "\n".join(lines)


def plugin_manager(environment: Environment) -> pluggy.PluginManager:
    """A plugin manager with the hook specs, the environment's providers and every installed plugin."""
    manager = pluggy.PluginManager("skyrig")
    manager.add_hookspecs(hookspecs)
    for name in sorted(set(environment.providers.values())):
        manager.register(load_provider(name), name=f"provider:{name}")
    manager.load_setuptools_entrypoints(PLUGINS)
    return manager


def required_features(resource: Any, environment_type: str = "local") -> list[tuple[str, str]]:
    """The optional features a resource's declaration relies on in an environment of
    ``environment_type``, each with what it asks for. A provider that does not claim one refuses the
    declaration, rather than half-doing it: a message dropped instead of dead-lettered, a cron job that
    never fires, an eviction policy ignored."""
    wanted = []
    if resource.kind == "subscription" and resource.max_retries != -1:
        wanted.append(
            ("pubsub.dead_letter", f"a dead-letter destination after {resource.max_retries} retries")
        )
    elif resource.kind == "cache_cluster" and resource.eviction_policy != "allkeys-lru":
        wanted.append(("cache.eviction_policy", f"the eviction policy {resource.eviction_policy}"))
    elif resource.kind == "cron_job" and environment_type != "local":
        # local environments run cron jobs on demand only (skyrig cron run), as the seeds do
        wanted.append(("cron.managed", "running on its schedule"))
    elif resource.kind == "topic":
        if resource.delivery == "exactly-once":
            wanted.append(("pubsub.exactly_once", "exactly-once delivery"))
        if resource.ordering_attribute:
            wanted.append(("pubsub.ordering", f"ordering by {resource.ordering_attribute}"))
    elif resource.kind == "bucket":
        if resource.public:
            wanted.append(("bucket.public", "public access"))
        if resource.versioned:
            wanted.append(("bucket.versioning", "versioning"))
    return wanted


def support_problems(model: AppModel, environment: Environment) -> list[str]:
    """Every reason ``environment`` cannot run ``model``, each naming the resource and where it is declared.

    A kind or feature the responsible provider does not declare, and any veto of a plugin's
    ``skyrig_validate_model`` (asked only when the providers can run the model).
    """
    problems = []
    declared: list[Any] = [*model.services, *model.resources]
    for resource in declared:
        kind = resource.kind
        family = KIND_FAMILIES[kind]
        provider = environment.provider_for(family)
        manifest = load_provider(provider).manifest
        label = f"{resource.location}: {kind.replace('_', ' ')} {resource.name!r}"
        if kind not in manifest.kinds:
            problems.append(
                f"{label}: provider {provider!r} does not support {kind}; "
                + _alternatives(family, environment, lambda m, kind=kind: kind in m.kinds, provider)
            )
            continue
        for feature, asked in required_features(resource, environment.type):
            if feature not in manifest.features:
                problems.append(
                    f"{label} asks for {asked}, which provider {provider!r} does not offer ({feature}); "
                    + _alternatives(family, environment, lambda m, f=feature: f in m.features, provider)
                )
    if not problems:
        manager = plugin_manager(environment)
        for vetoes in manager.hook.skyrig_validate_model(model=model, environment=environment):
            problems.extend(f"vetoed: {veto.reason}" for veto in vetoes or [])
    return problems


def check_support(model: AppModel, environments: list[Environment]) -> None:
    """Refuse ``model`` if any of ``environments`` cannot run it, listing every problem of every one."""
    problems = {env.name: found for env in environments if (found := support_problems(model, env))}
    if problems:
        raise UnsupportedModel(problems)


def _alternatives(family: str, environment: Environment, supports: Any, current: str) -> str:
    """Installed providers that could take ``family`` over in ``environment`` (serving its type)."""
    others = [
        name
        for name in providers_where(lambda m: supports(m) and environment.type in m.environment_types)
        if name != current
    ]
    if not others:
        return "no installed provider does"
    return (
        f"set {family} = {others[0]!r} in [env.{environment.name}] (providers that do: {', '.join(others)})"
    )
