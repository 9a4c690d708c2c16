"""The base of every Azure node type: :class:`skyrig.provider.CloudNodeType` (a vanished resource is
``None``, a dependency not yet visible is retried, each node found or made is remembered), with the tags an
Azure resource carries."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from skyrig.provider import CloudNodeType, Context, Node
from skyrig_azure import names


class AzureNodeType(CloudNodeType):
    """One kind of Azure resource."""

    def tags(self, context: Context, node: Node) -> dict[str, str]:
        """The ownership tags of ``node``'s resource (``skyrig-app``, ``skyrig-env``, ``skyrig-node``)."""
        return names.tags(context.app, context.environment.name, node.id)

    def owned(self, context: Context, tags: Mapping[str, Any] | None) -> bool:
        """Whether a resource's tags say it belongs to this app and environment."""
        found = tags or {}
        env = context.environment.name
        return found.get(names.TAG_APP) == context.app and found.get(names.TAG_ENV) == env
