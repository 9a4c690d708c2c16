"""How the hosted provider names things: the node ids of an environment's nodes, the host's resource kind
of each model kind, and the references to credentials.

On the host an app, its environments and their resources are named, never numbered: the app by the app's
name, an environment by the environment's, a resource by the model's (``ledger``), so that what an
interrupted apply made, or what lost state forgot, is found again by name. The family modules and the
provider take their names from here, and this module imports none of them.
"""

from __future__ import annotations

APP_ID = "hosted.app"
"""The app on the host (found by name, made if missing with an admin token; never deleted)."""
ENVIRONMENT_ID = "hosted.environment"
"""The environment on the host: every resource of it is in it; deleting it deletes them all."""

API_KINDS: dict[str, str] = {
    "sql_database": "database",
    "cache_cluster": "cache",
    "bucket": "bucket",
    "secret": "secret",
    "topic": "topic",
    "subscription": "subscription",
    "service": "service",
    "cron_job": "cron_job",
}
"""Model kind -> the host's resource kind (``/resources/{kind}/{name}``)."""

NODE_PREFIXES: dict[str, str] = {
    "database": "sql.database",
    "cache": "cache.cluster",
    "bucket": "objects.bucket",
    "secret": "secrets.secret",
    "topic": "pubsub.topic",
    "subscription": "pubsub.subscription",
    "service": "compute.service",
    "cron_job": "cron.job",
}
"""The host's resource kind -> the node ids of its resources (``sql.database/ledger``)."""

REFERENCE_SCHEME = "hosted"


def node_id(kind: str, name: str) -> str:
    """The node id of the host's resource ``kind``/``name``."""
    return f"{NODE_PREFIXES[kind]}/{name}"


NODE_TYPES: dict[str, str] = {"cron_job": "hosted.cron.job"}
"""The host's resource kinds whose node type is not ``hosted.KIND``."""


def node_type(kind: str) -> str:
    """The node type of the host's resource ``kind`` (``hosted.database``)."""
    return NODE_TYPES.get(kind, f"hosted.{kind}")


def credentials_reference(app: str, env: str, kind: str, name: str) -> str:
    """The runtime config's reference to a resource's credentials (never their value):
    ``hosted:APP/ENV/KIND/NAME``; the data plane reads them from the host's credentials endpoint."""
    return f"{REFERENCE_SCHEME}:{app}/{env}/{kind}/{name}"


def parse_credentials_reference(reference: str) -> tuple[str, str, str, str]:
    """(app, env, kind, name) of a :func:`credentials_reference`."""
    scheme, _, rest = reference.partition(":")
    parts = rest.split("/")
    if scheme != REFERENCE_SCHEME or len(parts) != 4 or not all(parts):
        raise LookupError(f"{reference!r} is not a hosted credentials reference (hosted:APP/ENV/KIND/NAME)")
    return parts[0], parts[1], parts[2], parts[3]
