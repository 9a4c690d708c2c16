"""Secrets: a Secrets Manager secret per declared secret. skyrig creates the container, never the value:
``skyrig secret set NAME --env E`` writes it (through :meth:`skyrig_aws.AwsProvider.set_secret`).

A secret holds a credential the user made, so it is stateful: ``skyrig destroy`` keeps it unless
``--include-data`` (which deletes it at once, without a recovery window).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from skyrig.provider import Context, Node, Observed, Scope
from skyrig_aws.api import tag_dict, tag_list
from skyrig_aws.names import secret_name
from skyrig_aws.nodes import AwsNodeType


def environment_secrets(context: Context) -> list[dict[str, Any]]:
    """The environment's secrets (named ``skyrig/APP/ENV/...``: declared secrets, the cron signing key,
    the caches' passwords), but those scheduled for deletion: one ``ListSecrets`` that the node types of
    a command share, until it writes to Secrets Manager."""
    prefix = secret_name(context.app, context.environment.name, "")
    manager = context.client.secretsmanager

    def read() -> list[dict[str, Any]]:
        listed = manager.pages("list_secrets", "SecretList", Filters=[{"Key": "name", "Values": [prefix]}])
        return [s for s in listed if not s.get("DeletedDate") and s["Name"].startswith(prefix)]

    return context.client.shared(("secretsmanager", "ListSecrets", prefix), read)


class SecretType(AwsNodeType):
    """A Secrets Manager secret without a value until one is set."""

    type = "aws.secrets.secret"
    arn_types = ("secretsmanager:secret",)
    stateful = True
    replace_on = frozenset({"name"})

    def inventory_id(self, arn: str) -> str:
        return arn

    def _observe(self, context: Context, node: Node, secret: Mapping[str, Any]) -> Observed:
        return self.observed(
            node,
            secret["ARN"],
            {"name": secret["Name"]},
            {
                "arn": secret["ARN"],
                "secret": secret["Name"],
                "region": context.settings.region,
                "endpoint_url": context.settings.endpoint_url,
            },
        )

    def _read(self, context: Context, node: Node, provider_id: str) -> Observed | None:
        secret = context.client.secretsmanager.describe_secret(SecretId=provider_id)
        if secret.get("DeletedDate"):
            return None
        return self._observe(context, node, secret)

    def _read_many(self, context: Context, nodes: list[tuple[Node, str]]) -> dict[str, Observed | None]:
        found = {s["ARN"]: s for s in environment_secrets(context)}
        return {n.id: self._observe(context, n, found[pid]) if pid in found else None for n, pid in nodes}

    def _find(self, context: Context, node: Node) -> Observed | None:
        return self._read(context, node, node.properties["name"])

    def _find_many(self, context: Context, nodes: list[Node]) -> dict[str, Observed | None]:
        found = {s["Name"]: s for s in environment_secrets(context)}
        return {
            n.id: self._observe(context, n, found[n.properties["name"]])
            if n.properties["name"] in found
            else None
            for n in nodes
        }

    def _create(self, context: Context, node: Node) -> Observed:
        secret = context.client.secretsmanager.create_secret(
            Name=node.properties["name"],
            Description=node.properties["description"],
            Tags=tag_list(context.tags(node)),
        )
        return self._observe(context, node, {"ARN": secret["ARN"], "Name": secret["Name"]})

    def _update(self, context: Context, node: Node, provider_id: str, changes: Mapping[str, Any]) -> Observed:
        return self.read(context, node, provider_id)  # type: ignore[return-value]

    def _delete(self, context: Context, node: Node, provider_id: str) -> None:
        context.client.secretsmanager.delete_secret(SecretId=provider_id, ForceDeleteWithoutRecovery=True)

    def runtime_entry(self, node: Node, observed: Observed) -> dict[str, Any] | None:
        return {"type": self.type, **observed.outputs}


SECRET = SecretType()
TYPES = (SECRET,)


def owned_by_us(secret: Mapping[str, Any], context: Context) -> bool:
    tags = tag_dict(secret.get("Tags"))
    return tags.get("skyrig:app") == context.app and tags.get("skyrig:env") == context.environment.name


def expand(scope: Scope) -> list[Node]:
    app, env = scope.app, scope.environment.name
    return [
        scope.node(
            f"secrets.secret/{r.name}",
            SECRET.type,
            {
                "name": secret_name(app, env, r.name),
                "description": f"secret {r.name} of {app}/{env} (skyrig secret set {r.name} --env {env})",
            },
            resource=r,
        )
        for r in scope.of_kind("secret")
    ]
