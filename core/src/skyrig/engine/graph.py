"""The infrastructure graph of one environment: the nodes the providers expand the model into."""

from __future__ import annotations

import heapq
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

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
    kinds: frozenset[str]
    """The kinds this provider provisions here (the environment may hand families to others)."""
    defaults: Mapping[str, Mapping[str, Any]]
    """``kind/name`` -> provider-side settings from the ``skyrig_resource_defaults`` hooks."""

    def resources(self) -> list[Any]:
        """The model's services and resources of this provider's kinds."""
        return [r for r in [*self.model.services, *self.model.resources] if r.kind in self.kinds]


class GraphError(UserError):
    """A provider expanded an inconsistent graph (a missing dependency, a cycle, a duplicate id)."""


class Graph:
    """Nodes by id, with their dependencies resolved, in a deterministic topological order."""

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
        self.order = self._topological()

    def _topological(self) -> list[str]:
        waiting = {node: len(deps) for node, deps in self.dependencies.items()}
        dependents: dict[str, list[str]] = {node: [] for node in self.nodes}
        for node, deps in self.dependencies.items():
            for dep in deps:
                dependents[dep].append(node)
        ready = [node for node, count in waiting.items() if count == 0]
        heapq.heapify(ready)
        order = []
        while ready:
            node = heapq.heappop(ready)
            order.append(node)
            for dependent in dependents[node]:
                waiting[dependent] -= 1
                if waiting[dependent] == 0:
                    heapq.heappush(ready, dependent)
        if len(order) != len(self.nodes):
            stuck = sorted(node for node, count in waiting.items() if count)
            raise GraphError(f"the graph has a dependency cycle through {', '.join(stuck[:5])}")
        self.dependents = dependents
        return order

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


def build_graph(app: str, model: AppModel, environment: Environment) -> Graph:
    """Ask each provider of ``environment`` to expand its share of ``model``, and join the nodes."""
    from skyrig.plugins import KIND_FAMILIES
    from skyrig.plugins.registry import load_provider
    from skyrig.plugins.support import plugin_manager

    manager = plugin_manager(environment)
    defaults: dict[str, dict[str, Any]] = {}
    for resource in [*model.services, *model.resources]:
        merged: dict[str, Any] = {}
        # pluggy answers most recently registered first: apply in reverse so that it wins
        for answer in reversed(
            manager.hook.skyrig_resource_defaults(
                kind=resource.kind, name=resource.name, environment=environment
            )
        ):
            merged.update(answer or {})
        defaults[f"{resource.kind}/{resource.name}"] = merged
    nodes: list[Node] = []
    for provider_name in sorted(set(environment.providers.values())):
        kinds = frozenset(
            kind for kind, family in KIND_FAMILIES.items() if environment.providers[family] == provider_name
        )
        scope = Scope(app, model, environment, kinds, defaults)
        nodes.extend(load_provider(provider_name).expand(scope))
    return Graph(nodes)
