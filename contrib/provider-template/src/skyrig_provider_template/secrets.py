"""Secrets: a container in the vault per declared secret. The node type tells the engine how to provision
it; ``expand`` says which nodes the model needs."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from skyrig.engine.contract import Context, NodeType, Observed
from skyrig.engine.graph import Node, Scope


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

    def runtime(self, node: Node, observed: Observed) -> dict[str, Any] | None:
        # a reference the data plane resolves when the app asks: never the value
        return {"provider": "template", "key": observed.provider_id, "vault": observed.outputs["vault"]}


SECRET = SecretType()


def expand(scope: Scope) -> list[Node]:
    return [
        Node(
            f"secrets.secret/{r.name}",
            SECRET.type,
            "template",
            {"key": f"{scope.app}/{scope.environment.name}/{r.name}"},
            resource=f"secret/{r.name}",
        )
        for r in scope.resources()
        if r.kind == "secret"
    ]
