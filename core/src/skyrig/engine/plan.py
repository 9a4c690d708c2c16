"""Plans: what an apply will do to each node, and why, computed from the graph, state and a refresh."""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from typing import TYPE_CHECKING, Any

from skyrig.engine import dag
from skyrig.engine.graph import Node

if TYPE_CHECKING:
    from skyrig.engine.contract import NodeType, Observed
    from skyrig.engine.graph import Graph
    from skyrig.state import NodeRecord

PLAN_VERSION = 3
CHANGING = ("create", "update", "replace", "delete")


@dataclass
class Change:
    """What happens to one node."""

    node: Node
    """The node as the graph wants it (for a delete: as state last saw it), its dependencies resolved."""
    action: str
    """``create``, ``update``, ``replace``, ``delete``, ``retain`` (stateful, kept) or ``noop``."""
    fields: dict[str, list[Any]] = field(default_factory=dict)
    """Property -> ``[now, wanted]`` for each property that changes."""
    reasons: list[str] = field(default_factory=list)
    adopt: dict[str, Any] = field(default_factory=dict)
    """Tunable properties changed in the cloud: taken into state as they are, never reverted."""
    drift: list[str] = field(default_factory=list)
    """Invariant properties changed in the cloud: restored by this change."""

    @property
    def id(self) -> str:
        return self.node.id

    @property
    def type(self) -> str:
        return self.node.type

    def to_dict(self) -> dict[str, Any]:
        """The change as plans write it: the node's fields and the change's, side by side."""
        node = self.node
        return {
            "node": node.id,
            "action": self.action,
            "type": node.type,
            "provider": node.provider,
            "properties": dict(node.properties),
            "depends_on": list(node.depends_on),
            "resource": node.resource,
            "fields": self.fields,
            "reasons": self.reasons,
            "adopt": self.adopt,
            "drift": self.drift,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Change:
        node = Node(
            data["node"],
            data["type"],
            data["provider"],
            data["properties"],
            tuple(data["depends_on"]),
            data["resource"],
        )
        return cls(node, data["action"], data["fields"], data["reasons"], data["adopt"], data["drift"])


@dataclass
class Plan:
    """Every change for one environment, made against state at ``serial``."""

    app: str
    environment: str
    serial: int
    changes: list[Change]
    grants: dict[str, dict[str, list[str]]] = field(default_factory=dict)
    """Service -> ``kind/name`` -> operations: what each service may use, written into its runtime
    config after the apply."""
    destroy: bool = False
    include_data: bool = False
    fingerprints: dict[str, Any] = field(default_factory=dict)
    """What the plan was made from, as hashes: ``model`` and ``config``, each part -> its hash (written by
    ``skyrig plan --out``, checked by ``skyrig apply FILE``)."""
    annotations: list[dict[str, Any]] = field(default_factory=list)
    """Notes the ``skyrig_annotate_plan`` hooks gave (cost estimates, warnings): ``label``, ``value``,
    ``node`` (a node id, or None for the whole plan) and ``source`` (the plugin). They never change it."""
    created_at: float = field(default_factory=time.time)
    version: int = PLAN_VERSION

    def counts(self) -> dict[str, int]:
        found: dict[str, int] = {}
        for change in self.changes:
            found[change.action] = found.get(change.action, 0) + 1
        return found

    def has_changes(self) -> bool:
        """True when applying would change the cloud (adopting console changes into state does not)."""
        return any(c.action in CHANGING for c in self.changes)

    def has_adoptions(self) -> bool:
        """True when console changes to tunable properties wait to be taken into state."""
        return any(c.adopt for c in self.changes)

    def to_dict(self) -> dict[str, Any]:
        data = {item.name: getattr(self, item.name) for item in fields(self)}
        return {**data, "changes": [change.to_dict() for change in self.changes]}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=1, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> Plan:
        data = json.loads(text)
        if data.get("version") != PLAN_VERSION:
            raise ValueError(f"plan version {data.get('version')!r}, expected {PLAN_VERSION}")
        data["changes"] = [Change.from_dict(change) for change in data["changes"]]
        return cls(**data)


def diff(
    graph: Graph,
    records: Mapping[str, NodeRecord],
    observed: Mapping[str, Observed | None],
    types: Mapping[str, NodeType],
    intents: Mapping[str, str],
    *,
    include_data: bool = False,
) -> list[Change]:
    """The changes that take the cloud from what ``observed`` says to what ``graph`` wants.

    Forward changes come in dependency order, then deletions of nodes the graph no longer has, in
    reverse dependency order.
    """
    changes = []
    for node_id in graph.order:
        node = graph.nodes[node_id]
        change = Change(node, "noop")
        record = records.get(node_id)
        now = observed.get(node_id) if record else None
        if record is None:
            change.action = "create"
            if node_id in intents:
                change.reasons.append(
                    "an earlier apply stopped while creating it: it is looked up before creating"
                )
        elif now is None:
            change.action = "create"
            change.reasons.append("it no longer exists in the cloud: created again")
        elif now.properties != node.properties:  # equal: nothing to compare (most nodes, most plans)
            _compare(change, types[node.type], record, now.properties)
        changes.append(change)
    gone = {node_id: r.depends_on for node_id, r in records.items() if node_id not in graph.nodes}
    for node_id in reversed(dag.order(gone)):  # a node before those it depends on
        record = records[node_id]
        stateful = types[record.type].stateful if record.type in types else False
        keep = stateful and not include_data
        changes.append(
            Change(
                replace(record.node(), properties=dict(record.observed)),
                "retain" if keep else "delete",
                reasons=["holds data: kept (pass --include-data to delete it)"]
                if keep
                else ["no longer in the app"],
            )
        )
    return changes


def _compare(change: Change, node_type: NodeType, record: NodeRecord, now: Mapping[str, Any]) -> None:
    wanted = change.node.properties
    for key, value in wanted.items():
        current = now.get(key)
        if current == value or key in node_type.identity:
            continue
        if key in node_type.replace_on:
            change.action = "replace"
            change.fields[key] = [current, value]
            change.reasons.append(f"{key} cannot change in place")
        elif key in node_type.tunable:
            if record.desired.get(key) != value:  # changed in code or config: apply it
                change.fields[key] = [current, value]
                change.reasons.append(f"{key} changed in the app")
            elif record.observed.get(key) != current:  # changed in the cloud console: adopt, never revert
                change.adopt[key] = current
        elif key in node_type.invariant:
            change.fields[key] = [current, value]
            if record.desired.get(key) != value:  # the app asks for another value: not drift
                change.reasons.append(f"{key} changed in the app")
            else:
                change.drift.append(key)
                change.reasons.append(f"{key} drifted in the cloud and is an invariant: restored")
        else:
            change.fields[key] = [current, value]
            change.reasons.append(f"{key} changed" if record.desired.get(key) != value else f"{key} drifted")
    if change.action == "noop" and change.fields:
        change.action = "update"
