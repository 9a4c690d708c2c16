"""Cron jobs: a schedule that calls the endpoint of the service that declares the job.

The memory cloud's scheduler signs each call with the environment's signing key (``cron.managed``,
:func:`skyrig.provider.signed_cron_call`). The key is a random value the cloud keeps in its secret
store, never in skyrig's state or outputs: it is made with the environment's first cron job and deleted
with its last.
Each job's runtime entry carries a reference to it, which the service host resolves to check requests.
"""

from __future__ import annotations

import secrets

from skyrig.provider import Context, Node, Observed, Scope, cron_job_nodes
from skyrig_memory.nodes import MemoryNodeType

SIGNING_KEY = "skyrig:cron-signing-key"
"""The key's name in the secret store: not a valid resource name, so no declared secret can take it."""


def signing_key_reference(app: str, environment: str) -> str:
    """The reference to environment ``environment``'s cron signing key."""
    return f"memory://{app}/{environment}/secrets/{SIGNING_KEY}"


class JobType(MemoryNodeType):
    """A cron job: its schedule and endpoint; the environment's signing key comes and goes with the jobs."""

    type = "memory.cron.job"

    def create(self, context: Context, node: Node) -> Observed:
        # the key first: a crash after it and before the job leaves a key the retry reuses
        app, environment = context.app, context.environment.name
        context.client.generate_secret(app, environment, SIGNING_KEY, secrets.token_hex(32))
        return super().create(context, node)

    def delete(self, context: Context, node: Node, provider_id: str) -> None:
        super().delete(context, node, provider_id)
        app, environment = context.app, context.environment.name
        if not context.client.list(self.type, app, environment):
            context.client.delete_secret(app, environment, SIGNING_KEY)

    def outputs_of(self, context: Context, observed: Observed) -> Observed:
        found = super().outputs_of(context, observed)
        reference = signing_key_reference(context.app, context.environment.name)
        return Observed(found.provider_id, found.properties, {**found.outputs, "signing_key": reference})


JOB = JobType()


TYPES = (JOB,)


def expand(scope: Scope) -> list[Node]:
    return cron_job_nodes(scope, JOB.type)
