"""Managed cron on the host (``cron.managed``): a resource of kind ``cron_job`` per ``CronJob``, with its
service, endpoint and timing (a five-field ``schedule``, UTC, or ``every``).

The host's scheduler fires each job when it is due: a ``POST /__skyrig/cron/JOB`` to the service's process,
signed with the environment's signing key (:func:`skyrig.provider.signed_cron_call`), waking the
environment if it was idle; a firing missed while the host was down is made once when it starts. The key is
the host's, kept encrypted, made with the environment: the service host checks a request against it,
reading it from the host's ``cron-key`` endpoint with the process's runtime token
(:mod:`skyrig_hosted.runtime.cron`); it is never in skyrig's state, outputs or runtime configs.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from skyrig.provider import Context, Node, Observed, Scope, cron_job_nodes
from skyrig_hosted import names
from skyrig_hosted.nodes import ResourceType, client, where


class JobType(ResourceType):
    """A cron job of the environment on the host, fired by the host's scheduler."""

    type = "hosted.cron.job"
    kind = "cron_job"
    sent = frozenset({"service", "endpoint", "schedule", "every"})

    def _observe(self, context: Any, node: Node, resource: dict[str, Any]) -> Observed:
        found = super()._observe(context, node, resource)
        outputs = {key: value for key, value in found.outputs.items() if key != "credentials"}
        return Observed(found.provider_id, found.properties, outputs)

    def runtime_entry(self, node: Node, observed: Observed) -> dict[str, Any] | None:
        """Where the service host reads the signing key: the host's API, the app and the environment."""
        o = observed.outputs
        return {"type": self.type, "api": o["api"], "app": o["app"], "env": o["env"]}


JOB = JobType()
TYPES = (JOB,)


def expand(scope: Scope) -> list[Node]:
    """A cron job per ``cron_job`` (the SDK's nodes, named, in the environment)."""
    return [
        replace(
            node,
            properties={"name": node.id.partition("/")[2], **node.properties},
            depends_on=(names.ENVIRONMENT_ID, *node.depends_on),
        )
        for node in cron_job_nodes(scope, JOB.type)
    ]


def call(url: str, job: str, key: bytes) -> dict[str, Any]:
    """The signed call of ``job`` to the service at ``url``, as the host's scheduler makes it
    (:func:`skyrig.provider.signed_cron_call`). A service under the host's default domain
    (``http://web.pr-1.shop.localhost:8700``) is reached on 127.0.0.1 with its name as the ``Host``, as
    browsers do (``*.localhost`` is loopback, RFC 6761), where this machine's resolver does not know it."""
    from urllib.parse import urlsplit

    from skyrig.provider import signed_cron_call

    parts = urlsplit(url)
    if parts.scheme != "http" or not (parts.hostname or "").endswith(".localhost"):
        return signed_cron_call(url, job, key)
    import httpx

    from skyrig.runtime.signing import HEADER, sign

    path = f"/__skyrig/cron/{job}"
    loopback = f"http://127.0.0.1:{parts.port or 80}{path}"
    headers = {"Host": parts.netloc, HEADER: sign(key, "POST", path, b"")}
    response = httpx.post(loopback, content=b"", headers=headers, timeout=60)
    if response.status_code not in (200, 500):  # 500: the job ran and failed, its outcome is the answer
        response.raise_for_status()
    return response.json()


def signing_key(context: Context) -> str:
    """The environment's signing key (hex), from the host, for this command only."""
    app, env = where(context)
    return client(context).cron_key(app, env)
