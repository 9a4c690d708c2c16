"""The one node type implementation of the memory provider; each family module declares its types."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from skyrig.provider import Context, Node, NodeType, Observed


class MemoryNodeType(NodeType):
    """A resource of the simulated cloud: read, found by tags, created, updated and deleted there."""

    outputs: ClassVar[tuple[str, ...]] = ()
    """Properties that are also outputs (what users of the resource need)."""

    def read(self, context: Context, node: Node, provider_id: str) -> Observed | None:
        properties = context.client.get(int(provider_id))
        return (
            None if properties is None else self.outputs_of(context, self._observed(provider_id, properties))
        )

    def read_many(self, context: Context, nodes: list[tuple[Node, str]]) -> dict[str, Observed | None]:
        # One list call for all nodes of this type, as a cloud's describe call would.
        existing = context.client.list(self.type, context.app, context.environment.name)
        found = {}
        for node, provider_id in nodes:
            row = existing.get(int(provider_id))
            if row is None:  # not tagged as ours (imported, say): ask for it by id
                found[node.id] = self.read(context, node, provider_id)
            else:
                found[node.id] = self.outputs_of(context, self._observed(provider_id, row[1]))
        return found

    def find(self, context: Context, node: Node) -> Observed | None:
        matches = context.client.find(self.type, context.tags(node))
        return (
            self.outputs_of(context, self._observed(str(matches[0][0]), matches[0][1])) if matches else None
        )

    def find_many(self, context: Context, nodes: list[Node]) -> dict[str, Observed | None]:
        # One list call for all nodes of this type: the environment's resources of the type, by node tag
        # (the oldest first, as find answers, should an earlier version have left two).
        existing = context.client.list(self.type, context.app, context.environment.name)
        by_node: dict[str, tuple[int, dict[str, Any]]] = {}
        for resource_id, (node_id, properties) in sorted(existing.items()):
            by_node.setdefault(node_id, (resource_id, properties))
        found: dict[str, Observed | None] = {}
        for node in nodes:
            match = by_node.get(node.id)
            found[node.id] = (
                None if match is None else self.outputs_of(context, self._observed(str(match[0]), match[1]))
            )
        return found

    def create(self, context: Context, node: Node) -> Observed:
        properties = dict(node.properties)
        resource_id = context.client.create(self.type, context.tags(node), context.token(node), properties)
        return self.outputs_of(context, self._observed(str(resource_id), properties))

    def update(self, context: Context, node: Node, provider_id: str, changes: Mapping[str, Any]) -> Observed:
        updated = context.client.update(int(provider_id), dict(changes))
        return self.outputs_of(context, self._observed(provider_id, updated))

    def delete(self, context: Context, node: Node, provider_id: str) -> None:
        context.client.delete(int(provider_id))

    def _observed(self, provider_id: str, properties: Mapping[str, Any]) -> Observed:
        outputs = {key: properties[key] for key in self.outputs if key in properties}
        return Observed(provider_id, dict(properties), {"id": f"memory:{self.type}:{provider_id}", **outputs})

    def runtime_entry(self, node: Node, observed: Observed) -> dict[str, Any] | None:
        return self.entry(observed)

    def entry(self, observed: Observed) -> dict[str, Any]:
        """The runtime config entry every memory resource has: who provisioned it, its outputs (its
        ``id`` among them), and where the data plane finds it: the cloud's file and its row there."""
        return {
            "type": self.type,
            "id": observed.provider_id,
            **observed.outputs,
            "resource_id": int(observed.provider_id),
        }

    def outputs_of(self, context: Context, observed: Observed) -> Observed:
        """``observed`` with where the simulated cloud is among its outputs (its data plane needs it)."""
        return Observed(
            observed.provider_id, observed.properties, {**observed.outputs, "cloud": str(context.client.path)}
        )


def node_type(
    name: str,
    *,
    tunable: frozenset[str] = frozenset(),
    invariant: frozenset[str] = frozenset(),
    replace_on: frozenset[str] = frozenset(),
    stateful: bool = False,
    outputs: tuple[str, ...] = (),
) -> MemoryNodeType:
    """A memory node type with its diff rules (see :class:`skyrig.engine.contract.NodeType`)."""
    attributes = {
        "type": name,
        "tunable": tunable,
        "invariant": invariant,
        "replace_on": replace_on,
        "stateful": stateful,
        "outputs": outputs,
    }
    return type(name.title().replace(".", ""), (MemoryNodeType,), attributes)()
