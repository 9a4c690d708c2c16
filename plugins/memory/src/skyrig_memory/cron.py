"""Cron jobs: a schedule that calls the endpoint of the service that declares the job."""

from __future__ import annotations

from skyrig.engine.graph import Node, Scope
from skyrig_memory.nodes import node_type

JOB = node_type("memory.cron.job")


def expand(scope: Scope) -> list[Node]:
    return [
        Node(
            f"cron.job/{r.name}",
            JOB.type,
            "memory",
            {"schedule": r.schedule, "every": r.every, "endpoint": r.endpoint, "service": r.service},
            (f"@service/{r.service}",),
            resource=f"cron_job/{r.name}",
        )
        for r in scope.resources()
        if r.kind == "cron_job"
    ]
