"""Secrets: a Secret Manager secret per declared secret (automatic replication, labelled). skyrig creates
the container, never the value: ``skyrig secret set NAME --env E`` adds a version (through
:meth:`skyrig_gcp.GcpProvider.set_secret`), and the data plane reads ``versions/latest``.

A secret holds a credential the user made, so it is stateful: ``skyrig destroy`` keeps it unless
``--include-data`` (which deletes it with all its versions).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from skyrig.provider import Context, Node, Observed, Scope
from skyrig_gcp import names
from skyrig_gcp.api import Conflict
from skyrig_gcp.nodes import NamedNodeType

_NODE = "secrets_secret_"
"""How the ``skyrig-node`` label of a declared secret's node begins (other families' secrets, a
database's password, are not this node type's)."""


class SecretType(NamedNodeType):
    """A Secret Manager secret without a version until a value is set."""

    type = "gcp.secrets.secret"
    stateful = True
    identity = frozenset({"name"})
    replace_on = frozenset({"replication"})

    def _path(self, context: Context, secret: str) -> str:
        return f"projects/{context.client.project}/secrets/{secret}"

    def _observe(self, context: Context, node: Node, secret: Any) -> Observed:
        from google.cloud import secretmanager_v1

        name = str(secret.name).rpartition("/")[2]
        replication = secretmanager_v1.Replication.pb(secret.replication).WhichOneof("replication")
        settings = context.settings
        return self.observed(
            node,
            name,
            {"name": name, "replication": "automatic" if replication == "automatic" else replication},
            {
                "secret": name,
                "project": context.client.project,
                "endpoint": settings.endpoint("secretmanager"),
                "emulator": settings.emulator,
            },
        )

    def _listed(self, context: Context) -> dict[str, Any]:
        """This environment's secrets, by name: one list call, filtered by the ownership labels."""
        wanted = names.labels(context.app, context.environment.name, "")
        request = {
            "parent": f"projects/{context.client.project}",
            "filter": " AND ".join(f"labels.{key}:{wanted[key]}" for key in ("skyrig-app", "skyrig-env")),
        }
        return {
            str(s.name).rpartition("/")[2]: s
            for s in context.client.library("secretmanager").list_secrets(request=request)
            if self.owned(context, dict(s.labels)) and dict(s.labels).get("skyrig-node", "").startswith(_NODE)
        }

    def _read(self, context: Context, node: Node, provider_id: str) -> Observed | None:
        secret = context.client.library("secretmanager").get_secret(name=self._path(context, provider_id))
        return self._observe(context, node, secret)

    def _read_many(self, context: Context, nodes: list[tuple[Node, str]]) -> dict[str, Observed | None]:
        found = self._listed(context)
        missing = [(n, pid) for n, pid in nodes if pid not in found]
        # an imported secret (a name of its own, other labels) is not in the listing: read it by name
        read = {n.id: self.read(context, n, pid) for n, pid in missing}
        return {
            n.id: read[n.id] if pid not in found else self._observe(context, n, found[pid])
            for n, pid in nodes
        }

    def _find_many(self, context: Context, nodes: list[Node]) -> dict[str, Observed | None]:
        # one list call, which finds the environment's own only: a name not listed is not looked up
        found = self._listed(context)
        return {
            n.id: self._observe(context, n, found[n.properties["name"]])
            if n.properties["name"] in found
            else None
            for n in nodes
        }

    def _create(self, context: Context, node: Node) -> Observed:
        name = node.properties["name"]
        request = {
            "parent": f"projects/{context.client.project}",
            "secret_id": name,
            "secret": {"replication": {"automatic": {}}, "labels": self.labels(context, node)},
        }
        try:
            secret = context.client.library("secretmanager").create_secret(request=request)
        except Conflict:  # made by a create cut short after the call: adopted
            return self._read(context, node, name)  # type: ignore[return-value]
        return self._observe(context, node, secret)

    def _update(self, context: Context, node: Node, provider_id: str, changes: Mapping[str, Any]) -> Observed:
        return self._read(context, node, provider_id)  # type: ignore[return-value]

    def _delete(self, context: Context, node: Node, provider_id: str) -> None:
        context.client.library("secretmanager").delete_secret(name=self._path(context, provider_id))

    def inventory(self, context: Context) -> list[str]:
        """This environment's secrets, by their labels."""
        return sorted(self._listed(context))

    def runtime_entry(self, node: Node, observed: Observed) -> dict[str, Any] | None:
        return {"type": self.type, **observed.outputs}


SECRET = SecretType()
TYPES = (SECRET,)


def expand(scope: Scope) -> list[Node]:
    """A secret node per declared secret, in the environment's project."""
    app, env = scope.app, scope.environment.name
    return [
        scope.node(
            f"secrets.secret/{r.name}",
            SECRET.type,
            {"name": names.secret_name(app, env, r.name), "replication": "automatic"},
            (names.PROJECT_ID,),
            resource=r,
        )
        for r in scope.of_kind("secret")
    ]
