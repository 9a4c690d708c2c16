"""The base of every GKE node type: :class:`skyrig.provider.CloudNodeType` (a vanished resource is
``None``, a dependency not yet visible is retried, each node found or made is remembered), with the
labels a GKE resource carries."""

from __future__ import annotations

from typing import Any

from skyrig.provider import CloudNodeType, Context, Node, join_name


class GkeNodeType(CloudNodeType):
    """One kind of resource of the GKE provider."""

    def labels(self, context: Context, node: Node) -> dict[str, str]:
        """The ownership labels of ``node``'s resource, as the GCP provider's (``skyrig-app``,
        ``skyrig-env``, ``skyrig-node``), values cleaned to what labels take."""
        return {
            "skyrig-app": join_name(context.app),
            "skyrig-env": join_name(context.environment.name),
            "skyrig-node": join_name(node.id.replace("/", "_"))[:63],
        }

    def owned(self, context: Context, labels: dict[str, Any] | None) -> bool:
        """Whether a resource's labels say it belongs to this app and environment."""
        found = labels or {}
        return found.get("skyrig-app") == join_name(context.app) and found.get("skyrig-env") == join_name(
            context.environment.name
        )
