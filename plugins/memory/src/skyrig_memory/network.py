"""The environment's network: every other memory resource lives in it."""

from __future__ import annotations

from skyrig.provider import Node, Scope
from skyrig_memory.nodes import node_type

NETWORK = node_type("memory.network", invariant=frozenset({"private"}), replace_on=frozenset({"cidr"}))
NETWORK_ID = "network"


TYPES = (NETWORK,)


def expand(scope: Scope) -> list[Node]:
    zones = 1 if scope.environment.type in ("local", "preview") else 2
    return [scope.node(NETWORK_ID, NETWORK.type, {"cidr": "10.0.0.0/16", "zones": zones, "private": True})]
