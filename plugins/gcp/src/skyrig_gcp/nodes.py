"""The base of every GCP node type: :class:`skyrig.provider.CloudNodeType` (a vanished resource is
``None``, a dependency not yet visible is retried, each node found or made is remembered), with the
labels a GCP resource carries and the ``full name`` form Google's APIs take; :class:`NamedNodeType` for a
resource whose provider id is its name."""

from __future__ import annotations

from typing import Any

from skyrig import provider
from skyrig.provider import CloudNodeType, Context, Node
from skyrig_gcp import names


class GcpNodeType(CloudNodeType):
    """One kind of Google Cloud resource."""

    def labels(self, context: Context, node: Node) -> dict[str, str]:
        """The ownership labels of ``node``'s resource (``skyrig-app``, ``skyrig-env``, ``skyrig-node``)."""
        return names.labels(context.app, context.environment.name, node.id)

    def owned(self, context: Context, labels: dict[str, Any] | None) -> bool:
        """Whether a resource's labels say it belongs to this app and environment."""
        wanted = names.labels(context.app, context.environment.name, "")
        found = labels or {}
        return all(found.get(key) == wanted[key] for key in ("skyrig-app", "skyrig-env"))


class NamedNodeType(GcpNodeType, provider.NamedNodeType):
    """A Google Cloud resource whose provider id is its name (``node.properties["name"]``): found, one or
    many, by reading it by that name (``_read`` / ``_read_many``, which the type implements)."""
