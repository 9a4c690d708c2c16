"""Compute: each service runs as a process of its own on this machine, under ``skyrig run``.

There is nothing to create ahead of time; the node records which app the service runs, so that the
graph, ``skyrig status`` and the dashboard show services as for any other environment.
"""

from __future__ import annotations

from skyrig.engine.graph import Node, Scope
from skyrig_local.records import RecordType


class ServiceType(RecordType):
    """A service: its ASGI app, served by ``skyrig run``."""

    type = "local.compute.service"
    folder = "services"
    tunable = frozenset({"app"})


SERVICE = ServiceType()


def expand(scope: Scope) -> list[Node]:
    return [
        Node(f"compute.service/{s.name}", SERVICE.type, "local", {"app": s.app}, resource=f"service/{s.name}")
        for s in scope.resources()
        if s.kind == "service"
    ]
