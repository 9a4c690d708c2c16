"""The base of every AWS node type: errors in the engine's terms, and what a node's create leaves behind.

Subclasses implement ``_read``, ``_find``, ``_create``, ``_update`` and ``_delete`` (and ``_read_many``
and ``_find_many`` where AWS answers for several resources in one call); this class turns a vanished
resource into ``None`` (read, find) or success (delete), a dependency not yet visible right after its
creation (AWS is eventually consistent) into a :class:`TransientError` that the engine retries, and
remembers where each node is for the nodes created after it in the same command.

The rule every ``_find`` keeps (the engine's :meth:`~skyrig.provider.NodeType.find`): whatever point a
create was interrupted at, and whether or not the node's dependencies exist, it answers found or not
found. The node is found once its main resource exists; a create adopts whatever other part an earlier
one left (it looks each up before making it), and a found resource reports the steps of its create that
are missing as properties that differ, so that the engine's update finishes it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Mapping
from typing import Any, ClassVar

from skyrig.provider import Context, Node, NodeType, Observed, TransientError
from skyrig_aws.api import NotFound


class AwsNodeType(NodeType):
    """One kind of AWS resource. ``arn_types`` are its main resource's types in the tagging API
    (``ec2:vpc``), which :meth:`skyrig_aws.AwsProvider.inventory` maps back to the node type."""

    arn_types: ClassVar[tuple[str, ...]] = ()

    # -- the contract, wrapped ---------------------------------------------------------------------

    def read(self, context: Context, node: Node, provider_id: str) -> Observed | None:
        try:
            return self._read(context, node, provider_id)
        except NotFound:
            return None

    def read_many(self, context: Context, nodes: list[tuple[Node, str]]) -> dict[str, Observed | None]:
        try:
            return self._read_many(context, nodes)
        except NotFound:
            return {node.id: self.read(context, node, provider_id) for node, provider_id in nodes}

    def find(self, context: Context, node: Node) -> Observed | None:
        try:
            found = self._find(context, node)
        except NotFound:
            return None
        if found is not None:
            context.client.remember(node.id, found.provider_id)
        return found

    def find_many(self, context: Context, nodes: list[Node]) -> dict[str, Observed | None]:
        try:
            found = self._find_many(context, nodes)
        except NotFound:
            found = {node.id: self.find(context, node) for node in nodes}
        for node in nodes:
            observed = found.get(node.id)
            if observed is not None:
                context.client.remember(node.id, observed.provider_id)
        return found

    def create(self, context: Context, node: Node) -> Observed:
        try:
            observed = self._create(context, node)
        except NotFound as error:
            raise TransientError(f"{node.id}: a resource it needs is not visible yet: {error}") from None
        context.client.remember(node.id, observed.provider_id)
        return observed

    def update(self, context: Context, node: Node, provider_id: str, changes: Mapping[str, Any]) -> Observed:
        try:
            return self._update(context, node, provider_id, changes)
        except NotFound as error:
            raise TransientError(f"{node.id}: {error}") from None

    def delete(self, context: Context, node: Node, provider_id: str) -> None:
        with contextlib.suppress(NotFound):
            self._delete(context, node, provider_id)

    # -- what subclasses implement ---------------------------------------------------------------

    def _read(self, context: Context, node: Node, provider_id: str) -> Observed | None:
        raise NotImplementedError

    def _read_many(self, context: Context, nodes: list[tuple[Node, str]]) -> dict[str, Observed | None]:
        return {node.id: self.read(context, node, provider_id) for node, provider_id in nodes}

    def _find(self, context: Context, node: Node) -> Observed | None:
        raise NotImplementedError

    def _find_many(self, context: Context, nodes: list[Node]) -> dict[str, Observed | None]:
        return {node.id: self.find(context, node) for node in nodes}

    def _create(self, context: Context, node: Node) -> Observed:
        raise NotImplementedError

    def _update(self, context: Context, node: Node, provider_id: str, changes: Mapping[str, Any]) -> Observed:
        raise NotImplementedError

    def _delete(self, context: Context, node: Node, provider_id: str) -> None:
        raise NotImplementedError

    # -- helpers -----------------------------------------------------------------------------------

    def observed(
        self,
        node: Node,
        provider_id: str,
        properties: Mapping[str, Any],
        outputs: Mapping[str, Any] | None = None,
    ) -> Observed:
        """What was read, in the node's terms: properties AWS does not report back are taken as asked."""
        return Observed(provider_id, {**dict(node.properties), **dict(properties)}, dict(outputs or {}))

    def exists(self, context: Context, provider_id: str) -> bool:
        """Whether a resource the tagging API lists still exists (it lists deleted ones for a while)."""
        return True

    def inventory_id(self, arn: str) -> str:
        """The provider id of the resource with ``arn`` (by default its last path element)."""
        return arn.rpartition("/")[2] if "/" in arn else arn.rpartition(":")[2]


def common_prefix(names: list[str]) -> str:
    """The longest prefix all ``names`` share: what a list call filtered by name prefix is asked for."""
    if not names:
        return ""
    prefix = min(names)
    for name in names:
        while not name.startswith(prefix):
            prefix = prefix[:-1]
    return prefix


def resolve(context: Context, node_id: str, find: Callable[[], str | None]) -> str:
    """The provider id of dependency ``node_id``: remembered from this command, else recorded in state (an
    imported resource has a name of its own), else found in AWS."""
    known = context.client.known.get(node_id) or context.recorded.get(node_id)
    if known is not None:
        return known
    found = find()
    if found is None:
        raise TransientError(f"{node_id} is not visible in AWS yet (or was deleted outside skyrig)")
    context.client.remember(node_id, found)
    return found
