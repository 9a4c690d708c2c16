"""Secrets: a container in the vault per declared secret. The node type tells the engine how to provision
it; ``expand`` says which nodes the model needs."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from skyrig.provider import Context, Node, NodeType, Observed, Scope


class SecretType(NodeType):
    """A secret's container. Its only property is its key; nothing about it can change in place."""

    type = "template.secret"
    replace_on = frozenset({"key"})

    def read(self, context: Context, node: Node, provider_id: str) -> Observed | None:
        found = context.client.container(provider_id)
        # outputs: what the data plane needs to reach the vault (where it is), never the value
        vault = {"vault": str(context.client.folder.resolve())}
        return None if found is None else Observed(provider_id, {"key": found["key"]}, vault)

    def find(self, context: Context, node: Node) -> Observed | None:
        # names are deterministic, so a container an earlier, crashed apply made is found by its key
        return self.read(context, node, node.properties["key"])

    def create(self, context: Context, node: Node) -> Observed:
        context.client.create_container(node.properties["key"], context.tags(node))
        return self.read(context, node, node.properties["key"])  # type: ignore[return-value]

    def update(self, context: Context, node: Node, provider_id: str, changes: Mapping[str, Any]) -> Observed:
        return self.read(context, node, provider_id)  # type: ignore[return-value]

    def delete(self, context: Context, node: Node, provider_id: str) -> None:
        context.client.delete_container(provider_id)

    def runtime_entry(self, node: Node, observed: Observed) -> dict[str, Any] | None:
        # a reference the data plane resolves when the app asks: never the value
        return {"key": observed.provider_id, "vault": observed.outputs["vault"]}


SECRET = SecretType()
TYPES = (SECRET,)
"""The node types of this module: the provider's ``node_types()`` gathers them."""


def expand(scope: Scope) -> list[Node]:
    """A vault container per declared secret, the secret's main node (``resource=r``)."""
    return [
        scope.node(
            f"secrets.secret/{r.name}",
            SECRET.type,
            {"key": f"{scope.app}/{scope.environment.name}/{r.name}"},
            resource=r,
        )
        for r in scope.of_kind("secret")
    ]
