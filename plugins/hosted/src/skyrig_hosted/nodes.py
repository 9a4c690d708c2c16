"""The hosted provider's node types: the app and the environment on the host, and the base of every
resource of an environment (:class:`ResourceType`), one node type per kind of the host's API.

Each maps one-to-one to the API: read, create, update and delete are its ``GET``, ``PUT`` and ``DELETE``;
a resource's identity is its name (the model's), so ``find`` is a ``GET`` by that name and a ``PUT`` is
idempotent (a create cut short and run again makes nothing twice). The host keeps every resource inside its
environment: deleting the environment deletes them all, on every server.

- The app (:class:`AppType`) is found by its name and made if missing, which only the host's admin token
  may do; with the app's own token it must exist already. A destroy forgets it, never deletes it: the
  app's other environments are in it.
- The environment (:class:`EnvironmentType`): its type (``preview`` or ``development``) and, for a
  preview derived from the app's preview template, the template's name (the host lets the preview read
  the template's secret values where it has none of its own) are applied in place. It holds data, so a
  destroy keeps it unless ``--include-data``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from skyrig.provider import CloudNodeType, Context, Node, Observed, ProviderError, Scope, UserError
from skyrig_hosted import names
from skyrig_hosted.api import Conflict, HostedClient, Json, Refused

ENVIRONMENT_TYPES = frozenset({"preview", "development"})


def client(context: Context) -> HostedClient:
    """The command's client of the host."""
    return context.client


def where(context: Context) -> tuple[str, str]:
    """(app, environment) of ``context``: how the host names them."""
    return context.app, context.environment.name


class AppType(CloudNodeType):
    """The app on the host. A destroy forgets it and never deletes it."""

    type = "hosted.app"
    identity = frozenset({"name"})

    def _observe(self, node: Node, app: Json) -> Observed:
        name = app.get("name") or node.properties["name"]
        return self.observed(node, name, {"name": name}, {"name": name})

    def _read(self, context: Context, node: Node, provider_id: str) -> Observed | None:
        return self._observe(node, client(context).app(provider_id))

    def _find(self, context: Context, node: Node) -> Observed | None:
        return self._read(context, node, node.properties["name"])

    def _create(self, context: Context, node: Node) -> Observed:
        name = node.properties["name"]
        try:
            client(context).create_app(name)
        except Refused:
            raise ProviderError(
                f"the host has no app {name!r}, and the token in SKYRIG_HOSTED_TOKEN may not make one: ask "
                "the host's admin to make the app and give you its token"
            ) from None
        except Conflict:  # made meanwhile (an earlier create whose answer was lost): adopted
            pass
        return self._read(context, node, name)  # type: ignore[return-value]

    def _update(self, context: Context, node: Node, provider_id: str, changes: Mapping[str, Any]) -> Observed:
        return self._read(context, node, provider_id)  # type: ignore[return-value]

    def _delete(self, context: Context, node: Node, provider_id: str) -> None:
        """Nothing: the app holds its other environments (the host's admin deletes it, if ever)."""


class EnvironmentType(CloudNodeType):
    """The environment on the host, with its type."""

    type = "hosted.environment"
    stateful = True
    identity = frozenset({"name"})

    def _observe(self, node: Node, env: Json) -> Observed:
        name = env.get("name") or node.properties["name"]
        outputs = {"name": name, "id": env.get("id")}
        properties = {"name": name, "type": env.get("type"), "template": env.get("template")}
        return self.observed(node, name, properties, outputs)

    def _read(self, context: Context, node: Node, provider_id: str) -> Observed | None:
        return self._observe(node, client(context).environment(context.app, provider_id))

    def _find(self, context: Context, node: Node) -> Observed | None:
        return self._read(context, node, node.properties["name"])

    def _create(self, context: Context, node: Node) -> Observed:
        p = node.properties
        env = client(context).put_environment(context.app, p["name"], p["type"], p.get("template"))
        return self._observe(node, env)

    def _update(self, context: Context, node: Node, provider_id: str, changes: Mapping[str, Any]) -> Observed:
        p = node.properties
        return self._observe(
            node, client(context).put_environment(context.app, provider_id, p["type"], p.get("template"))
        )

    def _delete(self, context: Context, node: Node, provider_id: str) -> None:
        client(context).delete_environment(context.app, provider_id)


class ResourceType(CloudNodeType):
    """A resource of the environment on the host: ``/resources/{kind}/{name}``. A subclass names its
    :attr:`kind`, the node properties it sends (:attr:`sent`), and its runtime config entry, made from the
    outputs: the host's (where the resource is: host, port, its name on the server; never a secret) and
    where the provider finds it (``api``, ``app``, ``env``, ``kind``, ``name``, and ``credentials``, the
    reference the data plane resolves)."""

    kind: ClassVar[str]
    """The host's resource kind (``database``)."""
    sent: ClassVar[frozenset[str]] = frozenset()
    """The node properties that are the resource's properties on the host (read back from it)."""
    identity = frozenset({"name"})

    def properties(self, node: Node) -> dict[str, Any]:
        """What the host is asked to make of ``node``."""
        return {key: node.properties[key] for key in sorted(self.sent) if key in node.properties}

    def _observe(self, context: Context, node: Node, resource: Json) -> Observed:
        on_host = resource.get("properties") or {}
        name = resource["name"]
        properties = {"name": name, **{k: on_host[k] for k in self.sent if k in on_host}}
        app, env = where(context)
        outputs = {
            **(resource.get("outputs") or {}),
            "api": client(context).api_url,
            "app": app,
            "env": env,
            "kind": self.kind,
            "name": name,
            "credentials": names.credentials_reference(app, env, self.kind, name),
        }
        return self.observed(node, name, properties, outputs)

    def _read(self, context: Context, node: Node, provider_id: str) -> Observed | None:
        app, env = where(context)
        return self._observe(context, node, client(context).resource(app, env, self.kind, provider_id))

    def _listed(self, context: Context) -> dict[str, Json]:
        """This kind's resources of the environment, by name (one call)."""
        app, env = where(context)
        listed = client(context).resources(app, env)
        return {r["name"]: r for r in listed if r.get("kind") == self.kind}

    def _read_many(self, context: Context, nodes: list[tuple[Node, str]]) -> dict[str, Observed | None]:
        found = self._listed(context)
        return {
            node.id: self._observe(context, node, found[pid]) if pid in found else None for node, pid in nodes
        }

    def _find(self, context: Context, node: Node) -> Observed | None:
        return self._read(context, node, node.properties["name"])

    def _find_many(self, context: Context, nodes: list[Node]) -> dict[str, Observed | None]:
        return self._read_many(context, [(node, node.properties["name"]) for node in nodes])

    def _put(self, context: Context, node: Node, name: str) -> Observed:
        app, env = where(context)
        made = client(context).put_resource(app, env, self.kind, name, self.properties(node))
        return self._observe(context, node, made)

    def _create(self, context: Context, node: Node) -> Observed:
        return self._put(context, node, node.properties["name"])

    def _update(self, context: Context, node: Node, provider_id: str, changes: Mapping[str, Any]) -> Observed:
        return self._put(context, node, provider_id)

    def _delete(self, context: Context, node: Node, provider_id: str) -> None:
        app, env = where(context)
        client(context).delete_resource(app, env, self.kind, provider_id)


APP = AppType()
ENVIRONMENT = EnvironmentType()
TYPES = (APP, ENVIRONMENT)


def expand(scope: Scope) -> list[Node]:
    """The app and the environment, where the environment has any resource on the host."""
    environment = scope.environment
    if not any(scope.of_kind(kind) for kind in names.API_KINDS):
        return []
    if environment.type not in ENVIRONMENT_TYPES:
        raise UserError(
            f"environment {environment.name!r} is of type {environment.type!r}: the hosted provider serves "
            "preview and development environments",
            "use another provider for it, or change its type",
        )
    return [
        scope.node(names.APP_ID, APP.type, {"name": scope.app}),
        scope.node(
            names.ENVIRONMENT_ID,
            ENVIRONMENT.type,
            {"name": environment.name, "type": environment.type, "template": environment.template},
            (names.APP_ID,),
        ),
    ]
