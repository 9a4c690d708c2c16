"""Compute: each service runs as a process of its own on this machine, under ``skyrig run``.

There is nothing to create ahead of time; the node records which app the service runs, so that the
graph, ``skyrig status`` and the dashboard show services as for any other environment.
"""

from __future__ import annotations

from skyrig.provider import Node, Scope
from skyrig_local.records import RecordType


class ServiceType(RecordType):
    """A service: its ASGI app, served by ``skyrig run``."""

    type = "local.compute.service"
    folder = "services"
    tunable = frozenset({"app"})


SERVICE = ServiceType()


TYPES = (SERVICE,)


def expand(scope: Scope) -> list[Node]:
    return [
        scope.node(f"compute.service/{s.name}", SERVICE.type, {"app": s.app}, resource=s)
        for s in scope.of_kind("service")
    ]
