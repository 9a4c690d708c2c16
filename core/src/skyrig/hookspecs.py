"""Hook specifications: the cross-cutting points where providers and plugins take part.

Modelled on pytest's ``hookspec.py``: every hook is documented here, once. Implement one with
``@skyrig.provider.hookimpl`` on a method of your provider object (entry point ``skyrig.providers``) or
of a plugin (entry point ``skyrig.plugins``); the implementation may accept any subset of the
parameters. Unless marked *firstresult*, every implementation is called and the results are collected
in a list, the most recently registered plugin first.

Per-node-type operations (read / create / update / delete) are not hooks: they belong to exactly one
provider and are part of the provider contract, not of this module.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    from skyrig.config import Environment
    from skyrig.model import AppModel

hookspec = pluggy.HookspecMarker("skyrig")


@dataclass(frozen=True)
class Veto:
    """A refusal of a plan, with the reason shown to the user and the node it concerns, if one."""

    reason: str
    node: str | None = None


@dataclass(frozen=True)
class Annotation:
    """A note attached to a plan or one of its nodes: a cost estimate, a warning, a link."""

    label: str
    """What it is about, e.g. ``"monthly cost"``."""
    value: str
    node: str | None = None


@hookspec
def skyrig_resource_defaults(kind: str, name: str, environment: Environment) -> dict[str, Any] | None:
    """Provider-side settings for a resource in an environment, before expansion into nodes.

    :param kind: the resource kind (``"sql_database"``, ...).
    :param name: the resource name.
    :param environment: the resolved environment (name, type, providers and their settings).
    :return: settings such as ``{"instance_class": "db.t4g.micro"}``, or None to say nothing.

    When several plugins answer, the most recently registered wins for each key it sets; user settings
    in ``skyrig.toml`` override them all.
    """


@hookspec
def skyrig_validate_model(model: AppModel, environment: Environment) -> list[Veto] | None:
    """Check an app's model for an environment before anything is planned.

    :return: vetoes, each refusing the model with a reason (a policy that forbids public buckets in
        production, say), or None to accept.

    Every implementation is called; any veto stops the command before a provider is called.
    """


@hookspec
def skyrig_validate_plan(plan: Any, environment: Environment) -> list[Veto] | None:
    """Check a plan before it is applied.

    :param plan: the plan (its nodes and their create / update / replace / delete actions).
    :return: vetoes refusing the plan, or None to accept. Any veto stops the apply before the first call.
    """


@hookspec
def skyrig_annotate_plan(plan: Any, environment: Environment) -> list[Annotation] | None:
    """Notes to show with a plan, such as cost estimates; they never change the plan.

    :param plan: the plan (:class:`skyrig.engine.plan.Plan`): ``changes``, each with its ``node`` (``id``,
        ``type``, ``provider``, ``properties`` as wanted; for a delete, as last seen), ``action`` and
        ``fields`` (property -> ``[now, wanted]``).
    :return: annotations, each about one node (``node`` is its id) or the whole plan (``None``), or None.

    Called on every plan (``skyrig plan``, ``apply``, ``destroy``), through the session's plugin manager;
    the notes are shown with the plan's table and written to its JSON (``annotations``). An
    implementation that raises becomes a note ``annotation failed``: the plan goes on.
    """


@hookspec
def skyrig_before_apply(plan: Any, environment: Environment) -> None:
    """Called once before the first change of an apply (after validation and the lock)."""


@hookspec
def skyrig_after_apply(plan: Any, environment: Environment, succeeded: bool) -> None:
    """Called once after an apply ends, whether it succeeded or stopped on an error."""
