"""IAM: a role per service, granting exactly the operations the model says it performs."""

from __future__ import annotations

from skyrig.provider import Node, Scope
from skyrig_memory.nodes import node_type

ROLE = node_type("memory.iam.role", replace_on=frozenset({"service"}))


def role_id(service: str) -> str:
    return f"iam.role/{service}"


TYPES = (ROLE,)


def expand(scope: Scope) -> list[Node]:
    nodes = []
    for service in scope.of_kind("service"):
        uses = scope.model.uses_by(service.name)
        grants = sorted(f"{u.kind}/{u.resource}:{op}" for u in uses for op in u.operations)
        # cron jobs call the service, not the other way round: they need no grant (and depend on it)
        owned = sorted(
            f"{r.kind}/{r.name}"
            for r in scope.model.resources
            if r.service == service.name and r.kind != "cron_job"
        )
        depends = tuple(sorted({f"@{u.kind}/{u.resource}" for u in uses} | {f"@{o}" for o in owned}))
        nodes.append(
            scope.node(
                role_id(service.name),
                ROLE.type,
                {"service": service.name, "grants": grants, "owns": owned},
                depends,
            )
        )
    return nodes
