"""The base of every Azure node type: :class:`skyrig.provider.CloudNodeType` (a vanished resource is
``None``, a dependency not yet visible is retried, each node found or made is remembered), with the tags an
Azure resource carries."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from skyrig import provider
from skyrig.provider import CloudNodeType, Context, Node, NotFound, Observed
from skyrig_azure import names
from skyrig_azure.api import GroupNotFound


class AzureNodeType(CloudNodeType):
    """One kind of Azure resource."""

    def find_many(self, context: Context, nodes: list[Node]) -> dict[str, Observed | None]:
        """The nodes looked up by their identity, as :class:`CloudNodeType` does; where the environment's
        resource group does not exist (a first apply), none of them is there: no lookup node by node."""
        try:
            found = self._find_many(context, nodes)
        except NotFound as error:
            group = context.client.resource_group.lower()
            if isinstance(error, GroupNotFound) and error.group.lower() == group:
                return {node.id: None for node in nodes}
            found = {node.id: self.find(context, node) for node in nodes}
        for node in nodes:
            observed = found.get(node.id)
            if observed is not None:
                context.client.remember(node.id, observed.provider_id)
        return found

    def tags(self, context: Context, node: Node) -> dict[str, str]:
        """The ownership tags of ``node``'s resource (``skyrig-app``, ``skyrig-env``, ``skyrig-node``)."""
        return names.tags(context.app, context.environment.name, node.id)

    def owned(self, context: Context, tags: Mapping[str, Any] | None) -> bool:
        """Whether a resource's tags say it belongs to this app and environment."""
        found = tags or {}
        env = context.environment.name
        return found.get(names.TAG_APP) == context.app and found.get(names.TAG_ENV) == env


class NamedNodeType(AzureNodeType, provider.NamedNodeType):
    """An Azure resource whose provider id is its name (``node.properties["name"]``): found, one or many,
    by reading it by that name (``_read`` / ``_read_many``, which the type implements)."""
