"""Cron: jobs are recorded but not triggered locally by default, as in the clouds' local emulators.

``skyrig cron run JOB`` and the dashboard's "Run now" run one at once; ``skyrig run --cron`` runs them on
their schedule, through the service's control endpoint.
"""

from __future__ import annotations

from skyrig.provider import Node, Scope, cron_job_nodes
from skyrig_local.records import RecordType


class JobType(RecordType):
    """A cron job: its schedule and endpoint."""

    type = "local.cron.job"
    folder = "cron"
    tunable = frozenset({"schedule", "every", "endpoint"})


JOB = JobType()


TYPES = (JOB,)


def expand(scope: Scope) -> list[Node]:
    return cron_job_nodes(scope, JOB.type)
