"""Checking an app's model against an environment's providers, before any provider is called."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pluggy

from skyrig import hookspecs
from skyrig.errors import UserError
from skyrig.kinds import KINDS
from skyrig.plugins.registry import PLUGINS, every, load_provider, providers_where

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
    """A plugin manager with the hook specs, the environment's providers and every installed plugin.
    An engine session makes one and keeps it (:attr:`skyrig.engine.session.Session.plugins`)."""
    manager = pluggy.PluginManager("skyrig")
    manager.add_hookspecs(hookspecs)
    for name in sorted(set(environment.providers.values())):
        manager.register(load_provider(name), name=f"provider:{name}")
    for name, plugin in every(PLUGINS):
        manager.register(plugin, name=f"plugin:{name}")
    return manager


def support_problems(
    model: AppModel, environment: Environment, manager: pluggy.PluginManager | None = None
) -> list[str]:
    """Every reason ``environment`` cannot run ``model``, each naming the resource and where it is declared.

    A kind or feature the responsible provider does not declare, and any veto of a plugin's
    ``skyrig_validate_model`` (asked only when the providers can run the model).
    """
    problems = []
    declared: list[Any] = [*model.services, *model.resources]
    for resource in declared:
        kind = KINDS[resource.kind]
        family = kind.family
        provider = environment.provider_for(family)
        manifest = load_provider(provider).manifest
        label = f"{resource.location}: {kind.noun} {resource.name!r}"
        if kind.name not in manifest.kinds:
            problems.append(
                f"{label}: provider {provider!r} does not support {kind.name}; "
                + _alternatives(family, environment, lambda m, kind=kind.name: kind in m.kinds, provider)
            )
            continue
        for feature, asked in kind.wants(resource, environment.type):
            if feature not in manifest.features:
                problems.append(
                    f"{label} asks for {asked}, which provider {provider!r} does not offer ({feature}); "
                    + _alternatives(family, environment, lambda m, f=feature: f in m.features, provider)
                )
    if not problems:
        manager = manager or plugin_manager(environment)
        for vetoes in manager.hook.skyrig_validate_model(model=model, environment=environment):
            problems.extend(f"vetoed: {veto.reason}" for veto in vetoes or [])
    return problems


def check_support(
    model: AppModel, environments: list[Environment], manager: pluggy.PluginManager | None = None
) -> None:
    """Refuse ``model`` if any of ``environments`` cannot run it, listing every problem of every one
    (``manager``: the plugin manager of the one environment checked, if made already)."""
    problems = {env.name: found for env in environments if (found := support_problems(model, env, manager))}
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
