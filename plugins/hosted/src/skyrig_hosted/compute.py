"""Compute on the host: a service per ``Service``, a resource of kind ``service`` whose outputs hold its
URL (``<service>.<env>.<app>.<domain>``, behind the host's one port).

The service resource is where the service is served; what it runs is its deployment, which skyrig hands
the host after every successful apply (:mod:`skyrig_hosted.delivery`): the app's source archive and the
service's runtime config. The host starts the service's process then, stops it when the environment is
idle and wakes it on the next request.
"""

from __future__ import annotations

from typing import Any

from skyrig.provider import Node, Observed, Scope
from skyrig_hosted import names
from skyrig_hosted.nodes import ResourceType


class ServiceType(ResourceType):
    """A service of the environment on the host: its ASGI app (``module:attribute``) and its URL."""

    type = "hosted.service"
    kind = "service"
    sent = frozenset({"app"})

    def _observe(self, context: Any, node: Node, resource: dict[str, Any]) -> Observed:
        found = super()._observe(context, node, resource)
        outputs = {key: value for key, value in found.outputs.items() if key != "credentials"}
        return Observed(found.provider_id, found.properties, outputs)


SERVICE = ServiceType()
TYPES = (SERVICE,)


def expand(scope: Scope) -> list[Node]:
    """A service per ``service``, in the environment."""
    return [
        scope.node(
            names.node_id(SERVICE.kind, service.name),
            SERVICE.type,
            {"name": service.name, "app": service.app},
            (names.ENVIRONMENT_ID,),
            resource=service,
        )
        for service in scope.of_kind("service")
    ]
