"""Secrets on the host: a secret per declared ``Secret``, kept by the host (encrypted with its key). skyrig
makes the secret, never its value: ``skyrig secret set NAME --env E`` stores it (through
:meth:`skyrig_hosted.HostedProvider.set_secret`), and the data plane reads it from the host's secrets
endpoint.

A secret holds a credential the user made, so it is stateful: ``skyrig destroy`` keeps it unless
``--include-data``.
"""

from __future__ import annotations

from typing import Any

from skyrig.provider import Context, Node, Observed, Scope
from skyrig_hosted import names
from skyrig_hosted.nodes import ResourceType, client, where


class SecretType(ResourceType):
    """A secret of the environment on the host, without a value until one is set."""

    type = "hosted.secret"
    kind = "secret"
    stateful = True

    def runtime_entry(self, node: Node, observed: Observed) -> dict[str, Any] | None:
        o = observed.outputs
        return {"type": self.type, "api": o["api"], "app": o["app"], "env": o["env"], "secret": o["name"]}


SECRET = SecretType()
TYPES = (SECRET,)


def expand(scope: Scope) -> list[Node]:
    """A secret per ``secret``, in the environment."""
    return [
        scope.node(
            names.node_id(SECRET.kind, secret.name),
            SECRET.type,
            {"name": secret.name},
            (names.ENVIRONMENT_ID,),
            resource=secret,
        )
        for secret in scope.of_kind("secret")
    ]


def set_secret(context: Context, name: str, value: str) -> None:
    """Store the value of declared secret ``name`` on the host."""
    from skyrig.provider import NotFound, UserError

    app, env = where(context)
    try:
        client(context).put_secret(app, env, name, value)
    except NotFound:
        raise UserError(
            f"secret {name!r} does not exist on the host yet (app {app}, environment {env})",
            f"run skyrig apply --env {env} first",
        ) from None


def secret_is_set(context: Context, name: str) -> bool:
    """Whether declared secret ``name`` has a value on the host."""
    app, env = where(context)
    return client(context).secret(app, env, name) is not None
