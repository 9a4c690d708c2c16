"""The infrastructure graph of one environment: the nodes the providers expand the model into."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from skyrig.engine import dag
from skyrig.errors import UserError

if TYPE_CHECKING:
    from skyrig.config import Environment
    from skyrig.model import AppModel


@dataclass(frozen=True)
class Node:
    """One resource to provision: its type, desired properties and what it depends on."""

    id: str
    """Unique and stable within the environment: ``sql.database/orders``."""
    type: str
    """The node type that provisions it: ``memory.sql.database``."""
    provider: str
    properties: Mapping[str, Any] = field(default_factory=dict)
    """Desired properties: JSON values, never a secret value."""
    depends_on: tuple[str, ...] = ()
    """Node ids, or ``@kind/name`` for the main node of a model resource (which may be another provider's)."""
    resource: str | None = None
    """``kind/name`` of the model resource whose main node this is, if it is one."""


@dataclass(frozen=True)
class Scope:
    """What a provider is asked to expand: its share of the model, in one environment."""

    app: str
    model: AppModel
    environment: Environment
    provider: str
    """The provider expanding it: every node it makes is this provider's."""
    kinds: frozenset[str]
    """The kinds this provider provisions here (the environment may hand families to others)."""
    defaults: Mapping[str, Mapping[str, Any]]
    """``kind/name`` -> provider-side settings from the ``skyrig_resource_defaults`` hooks."""

    def of_kind(self, kind: str) -> list[Any]:
        """The model's services (``kind="service"``) or resources of ``kind``, if this provider provisions
        that kind here; else none."""
        return self.model.of_kind(kind) if kind in self.kinds else []

    def defaults_for(self, resource: Any) -> dict[str, Any]:
        """The provider-side settings the hooks gave model resource ``resource``."""
        return dict(self.defaults.get(resource_key(resource), {}))

    @property
    def settings(self) -> Any:
        """This provider's validated settings in the environment."""
        return self.environment.settings.get(self.provider)

    def node(
        self,
        id: str,
        type: str,
        properties: Mapping[str, Any] | None = None,
        depends_on: tuple[str, ...] | list[str] = (),
        *,
        resource: Any = None,
    ) -> Node:
        """A node of this provider; ``resource`` (a model record) makes it that resource's main node,
        the one others reach it by (``@kind/name``) and whose runtime config entry services get."""
        return Node(
            id,
            type,
            self.provider,
            dict(properties or {}),
            tuple(depends_on),
            resource_key(resource) if resource is not None else None,
        )


def cron_job_nodes(scope: Scope, node_type: str) -> list[Node]:
    """The usual nodes of the cron jobs in ``scope``: ``cron.job/NAME`` of type ``node_type``, with the
    job's schedule, endpoint and service as properties, after the service that serves it. For a
    provider whose scheduler needs nothing more (a cloud's own scheduler usually does: expand those
    yourself)."""
    return [
        scope.node(
            f"cron.job/{job.name}",
            node_type,
            {"schedule": job.schedule, "every": job.every, "endpoint": job.endpoint, "service": job.service},
            (f"@service/{job.service}",),
            resource=job,
        )
        for job in scope.of_kind("cron_job")
    ]


def resource_key(resource: Any) -> str:
    """``kind/name`` of a model resource or service: how graphs, state and runtime configs name it."""
    return f"{resource.kind}/{resource.name}"


class GraphError(UserError):
    """A provider expanded an inconsistent graph (a missing dependency, a cycle, a duplicate id)."""


class Graph:
    """Nodes by id, with their dependencies resolved (``@kind/name`` replaced by the resource's main node,
    sorted), in a deterministic topological order."""

    def __init__(self, nodes: list[Node]) -> None:
        self.nodes: dict[str, Node] = {}
        for node in nodes:
            if node.id in self.nodes:
                raise GraphError(
                    f"two nodes have the id {node.id!r} (providers {self.nodes[node.id].provider!r}, "
                    f"{node.provider!r})"
                )
            self.nodes[node.id] = node
        main = {node.resource: node.id for node in nodes if node.resource}
        self.dependencies: dict[str, tuple[str, ...]] = {}
        for node in nodes:
            resolved = []
            for dependency in node.depends_on:
                target = main.get(dependency[1:]) if dependency.startswith("@") else dependency
                if target is None or target not in self.nodes:
                    raise GraphError(
                        f"node {node.id!r} depends on {dependency!r}, which no provider expanded"
                    )
                resolved.append(target)
            self.dependencies[node.id] = tuple(sorted(set(resolved)))
            if node.depends_on != self.dependencies[node.id]:  # a copy only where it changes
                self.nodes[node.id] = replace(node, depends_on=self.dependencies[node.id])
        try:
            self.order = dag.order(self.dependencies)
        except dag.CycleError as error:
            raise GraphError(str(error)) from None

    def __len__(self) -> int:
        return len(self.nodes)

    # -- rendering ----------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        return {
            "nodes": [
                {
                    "id": node.id,
                    "type": node.type,
                    "provider": node.provider,
                    "resource": node.resource,
                    "depends_on": list(self.dependencies[node.id]),
                    "properties": dict(node.properties),
                }
                for node in (self.nodes[i] for i in self.order)
            ]
        }

    def render(self, fmt: str) -> str:
        """The graph as ``text``, ``json``, ``mermaid`` or ``dot``."""
        if fmt == "json":
            return json.dumps(self.to_dict(), indent=2)
        if fmt == "mermaid":
            ids = {node: f"n{index}" for index, node in enumerate(self.order)}
            lines = ["flowchart LR"]
            lines += [f'  {ids[n]}["{n}<br/><small>{self.nodes[n].type}</small>"]' for n in self.order]
            lines += [f"  {ids[d]} --> {ids[n]}" for n in self.order for d in self.dependencies[n]]
            return "\n".join(lines)
        if fmt == "dot":
            lines = ["digraph skyrig {", "  rankdir=LR;", "  node [shape=box, fontname=Helvetica];"]
            lines += [f'  "{n}" [label="{n}\\n{self.nodes[n].type}"];' for n in self.order]
            lines += [f'  "{d}" -> "{n}";' for n in self.order for d in self.dependencies[n]]
            return "\n".join([*lines, "}"])
        lines = []
        for node_id in self.order:
            node = self.nodes[node_id]
            after = f"  after {', '.join(self.dependencies[node_id])}" if self.dependencies[node_id] else ""
            lines.append(f"{node_id}  ({node.type}){after}")
        return "\n".join(lines)


def build_graph(app: str, model: AppModel, environment: Environment, plugins: Any) -> Graph:
    """Ask each provider of ``environment`` to expand its share of ``model``, and join the nodes;
    ``plugins`` (the session's plugin manager) answers the ``skyrig_resource_defaults`` hooks."""
    from skyrig.plugins.registry import load_provider

    defaults: dict[str, dict[str, Any]] = {}
    hook = plugins.hook.skyrig_resource_defaults
    answered = hook.get_hookimpls() if hasattr(hook, "get_hookimpls") else True
    for resource in [*model.services, *model.resources] if answered else []:  # no call where none answers
        merged: dict[str, Any] = {}
        # pluggy answers most recently registered first: apply in reverse so that it wins
        for answer in reversed(hook(kind=resource.kind, name=resource.name, environment=environment)):
            merged.update(answer or {})
        defaults[resource_key(resource)] = merged
    nodes: list[Node] = []
    for provider_name in sorted(set(environment.providers.values())):
        scope = Scope(app, model, environment, provider_name, environment.kinds_of(provider_name), defaults)
        nodes.extend(load_provider(provider_name).expand(scope))
    return Graph(nodes)
