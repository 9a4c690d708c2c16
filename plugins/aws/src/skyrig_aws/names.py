"""How the AWS provider names things: the AWS names of an environment's resources, and the ids of the nodes
one family module's nodes depend on in another's.

Every AWS name is deterministic (app, environment, resource) within its API's limits, with a hash suffix
when shortened or cleaned, so that a resource can always be found again by name. The family modules, the
provider (its inventory, secrets, dead letters and cron trigger) and the in-task commands
(:mod:`skyrig_aws.runtime.cron`) all take their names from here, and this module imports none of them:
a family module needs another only for what that one does, never for a name. The network's node ids stay
in :mod:`skyrig_aws.network`, which imports no family module either.
"""

from __future__ import annotations

from skyrig.provider import join_name

# -- node ids that nodes of another module depend on -------------------------------------------------

COMPUTE_CLUSTER_ID = "compute.cluster"
"""The ECS cluster: the databases' migration tasks run in it."""
SQL_INSTANCE_ID = "sql.cluster"
"""The RDS instance: the task roles of services using a database read its master password's secret."""
SIGNING_KEY_ID = "cron.signing_key"
"""The cron signing key: the task roles of services owning cron jobs read it."""
EXECUTION_ROLE = "iam.role/execution"
SCHEDULER_ROLE = "iam.role/scheduler"
TRIGGER_ROLE = "iam.role/cron"
"""The role of the cron trigger tasks when another provider runs the services."""


def role_id(role: str) -> str:
    """The node id of a role: a service's task role (``iam.role/SERVICE``), ``execution``, ``scheduler``."""
    return f"iam.role/{role}"


# -- compute: ECS, ECR, the load balancer, each service's runtime config parameter ----------------------


def cluster_name(app: str, env: str) -> str:
    """The ECS cluster."""
    return join_name(app, env, limit=255)


def repository_name(app: str, env: str) -> str:
    """The ECR repository of the environment's images."""
    return join_name(app, env, limit=256)


def task_family(app: str, env: str, service: str) -> str:
    """The ECS task definition family of ``service``."""
    return join_name(app, env, service, limit=255)


def load_balancer_name(app: str, env: str) -> str:
    return join_name(app, env, limit=32)


def target_group_name(app: str, env: str, service: str) -> str:
    return join_name(app, env, service, limit=32)


def internal_domain(app: str, env: str) -> str:
    """The services' domain when the ``domain`` setting is not set."""
    return f"{join_name(app, env)}.internal"


def runtime_parameter_name(app: str, env: str, service: str) -> str:
    """The SSM parameter holding ``service``'s runtime config (``*``: all of the environment's)."""
    return f"/skyrig/{app}/{env}/runtime/{service}"


# -- iam --------------------------------------------------------------------------------------------


def role_path(app: str, env: str) -> str:
    """The path of the environment's roles: how they are found again (IAM is not in the tagging API)."""
    return f"/skyrig/{join_name(app, env, limit=100)}/"


def role_name(app: str, env: str, role: str) -> str:
    return join_name(app, env, role, limit=64)


def policy_name(app: str, env: str, service: str) -> str:
    """The managed policy of ``service``'s identity when another provider runs the services."""
    return join_name(app, env, service, "identity", limit=128)


# -- sql --------------------------------------------------------------------------------------------


def instance_name(app: str, env: str) -> str:
    """The RDS instance's identifier."""
    return join_name(app, env, "sql", limit=63)


def db_subnet_group_name(app: str, env: str) -> str:
    return join_name(app, env, "sql", limit=255)


def migration_family(app: str, env: str, database: str) -> str:
    """The ECS task definition family that creates ``database`` and applies its migrations."""
    return join_name(app, env, "migrate", database, limit=255)


# -- cache ------------------------------------------------------------------------------------------


def replication_group_id(app: str, env: str, cluster: str) -> str:
    """The ElastiCache replication group of cache cluster ``cluster``."""
    return join_name(app, env, cluster, limit=40)


def cache_user_group_id(app: str, env: str, cluster: str) -> str:
    return join_name(app, env, cluster, limit=40)


def cache_user_id(app: str, env: str, cluster: str, user: str) -> str:
    """An ACL user of ``cluster``: ``user`` is ``user`` (skyrig's) or ``default``."""
    return join_name(app, env, cluster, user, limit=40)


def cache_parameter_group_name(app: str, env: str, cluster: str) -> str:
    return join_name(app, env, "cache", cluster, limit=255)


def cache_subnet_group_name(app: str, env: str) -> str:
    return join_name(app, env, "cache", limit=255)


def cache_password_secret(app: str, env: str, cluster: str) -> str:
    """The Secrets Manager secret holding the password of skyrig's user of ``cluster``."""
    return f"skyrig/{app}/{env}/cache/{cluster}"


# -- pubsub -----------------------------------------------------------------------------------------


def topic_name(app: str, env: str, topic: str, fifo: bool) -> str:
    return join_name(app, env, topic, limit=251) + (".fifo" if fifo else "")


def queue_name(app: str, env: str, subscription: str, fifo: bool, dead_letter: bool = False) -> str:
    parts = (app, env, subscription, "dlq") if dead_letter else (app, env, subscription)
    return join_name(*parts, limit=75) + (".fifo" if fifo else "")


# -- objects ----------------------------------------------------------------------------------------


def bucket_name(app: str, env: str, bucket: str) -> str:
    """The S3 name of ``bucket`` (S3 names are global: an app name taken elsewhere fails clearly)."""
    return join_name(app, env, bucket, limit=63)


# -- secrets ----------------------------------------------------------------------------------------


def secret_name(app: str, env: str, name: str) -> str:
    """The Secrets Manager name of declared secret ``name``: ``skyrig/APP/ENV/NAME``."""
    return f"skyrig/{app}/{env}/{name}"


# -- cron -------------------------------------------------------------------------------------------


def signing_key_name(app: str, env: str) -> str:
    """The Secrets Manager secret holding the environment's cron signing key."""
    return f"skyrig/{app}/{env}/cron-signing-key"


def schedule_group_name(app: str, env: str) -> str:
    return join_name(app, env, limit=64)


def schedule_name(app: str, env: str, job: str) -> str:
    return join_name(app, env, job, limit=64)
