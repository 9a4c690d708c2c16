"""How the GCP provider names things: the Google names of an environment's resources, its labels, and the
ids of the nodes one family module's nodes depend on in another's.

Every name is deterministic (app, environment, resource) within its API's limits (:func:`join_name`
hash-suffixes what it cleans or shortens), so that a resource can always be found again by name, even
after state was lost. Names carry the app and environment even inside a project of the environment's own,
so that a configured project may hold several environments. The family modules, the provider and the
in-service commands take their names from here, and this module imports none of them.
"""

from __future__ import annotations

import hashlib
import re

from skyrig.provider import join_name

# -- node ids that nodes of another module depend on -------------------------------------------------

PROJECT_ID = "network.project"
"""The environment's project (made, or the configured one): every other node is in it."""
NETWORK_ID = "network.vpc"
"""The VPC: Cloud SQL and Memorystore reach it through private services access."""
PRIVATE_ACCESS_ID = "network.private_access"
"""The private services access connection: Cloud SQL and Memorystore need it before their create."""
SQL_INSTANCE_ID = "sql.instance"
"""The Cloud SQL instance: services using a database connect to it."""
SIGNING_KEY_ID = "cron.signing_key"
"""The cron signing key: services owning cron jobs read it."""
REPOSITORY_ID = "compute.repository"
"""The Artifact Registry repository of the environment's images."""


def service_account_id(service: str) -> str:
    """The node id of a service's service account (``iam.account/SERVICE``, ``scheduler``)."""
    return f"iam.account/{service}"


# -- the project and its network ------------------------------------------------------------------------


def project_id(app: str, env: str) -> str:
    """The project skyrig creates for an environment: 6 to 30 characters, globally unique in Google Cloud
    (a hash of app and environment keeps two apps of one name apart only by their environment: set
    ``project`` where the name is taken)."""
    return join_name(app, env, limit=30)


def network_name(app: str, env: str) -> str:
    """The VPC."""
    return join_name(app, env, limit=63)


def subnet_name(app: str, env: str) -> str:
    """The subnet of the environment's region."""
    return join_name(app, env, limit=63)


def private_range_name(app: str, env: str) -> str:
    """The global address range reserved for private services access (Cloud SQL, Memorystore)."""
    return join_name(app, env, "services", limit=63)


# -- IAM ----------------------------------------------------------------------------------------------


def account_name(app: str, env: str, service: str) -> str:
    """A service's service account id: 6 to 30 characters, ``[a-z][-a-z0-9]*[a-z0-9]``, unique in the
    project (the app and environment are hashed in: a configured project may hold several)."""
    digest = hashlib.sha256(f"{app}\0{env}\0{service}".encode()).hexdigest()[:6]
    return join_name(service, digest, limit=30)


def custom_role_name(app: str, env: str, role: str) -> str:
    """A custom role's id in the project: ``[a-zA-Z0-9_.]``, 3 to 64 (the app and environment hashed in; a
    deleted role's id cannot be taken again for 37 days, so it is undeleted instead)."""
    return f"skyrig_{environment_digest(app, env)}_{role}"[:64]


def account_email(account: str, project: str) -> str:
    """The email of service account ``account`` in ``project``."""
    return f"{account}@{project}.iam.gserviceaccount.com"


# -- compute: Artifact Registry, Cloud Run --------------------------------------------------------------


def repository_name(app: str, env: str) -> str:
    """The Artifact Registry repository (Docker format) of the environment's images."""
    return join_name(app, env, limit=63)


def run_service_name(app: str, env: str, service: str) -> str:
    """A Cloud Run service: lowercase, at most 49 characters."""
    return join_name(app, env, service, limit=49)


def migrate_job_name(app: str, env: str, database: str) -> str:
    """The Cloud Run job that migrates ``database`` before the services roll out."""
    return join_name(app, env, "migrate", database, limit=63)


# -- sql: Cloud SQL -----------------------------------------------------------------------------------


def sql_instance_name(app: str, env: str) -> str:
    """The environment's Cloud SQL instance (a name cannot be taken again for a week after a delete)."""
    return join_name(app, env, "sql", limit=84)


def sql_password_secret(app: str, env: str) -> str:
    """The Secret Manager secret holding the instance's ``postgres`` user's password."""
    return join_name(app, env, "sql-password", limit=255)


# -- pubsub -------------------------------------------------------------------------------------------


def topic_name(app: str, env: str, topic: str) -> str:
    """A Pub/Sub topic id: 3 to 255 characters, starting with a letter."""
    return join_name(app, env, topic, limit=255)


def subscription_name(app: str, env: str, subscription: str) -> str:
    """A Pub/Sub subscription id."""
    return join_name(app, env, subscription, limit=255)


def dead_letter_topic_name(app: str, env: str, subscription: str) -> str:
    """The dead-letter topic of ``subscription``."""
    return join_name(app, env, subscription, "dead-letter", limit=255)


def dead_letter_subscription_name(app: str, env: str, subscription: str) -> str:
    """The subscription that keeps ``subscription``'s dead letters (a topic keeps nothing by itself)."""
    return join_name(app, env, subscription, "dead-letter", limit=255)


def pubsub_service_agent(project_number: str) -> str:
    """The email of the project's Pub/Sub service agent (Google's account that dead-letters messages)."""
    return f"service-{project_number}@gcp-sa-pubsub.iam.gserviceaccount.com"


# -- cache: Memorystore for Redis -------------------------------------------------------------------------


def cache_instance_name(app: str, env: str, cluster: str) -> str:
    """A Memorystore instance id: lowercase, at most 40 characters."""
    return join_name(app, env, cluster, limit=40)


# -- objects: Cloud Storage ------------------------------------------------------------------------------


def bucket_name(project: str, app: str, env: str, bucket: str) -> str:
    """A bucket: 3 to 63 characters, unique across Google Cloud, so named after the project (itself
    globally unique), a hash of app and environment (a configured project may hold several, and a prefix
    of plain names would not tell environment ``a`` from ``a-b``) and the bucket."""
    return join_name(project, environment_digest(app, env), bucket, limit=63)


def bucket_prefix(project: str, app: str, env: str) -> str:
    """What every bucket name of the environment starts with: one list call finds them all."""
    return f"{project}-{environment_digest(app, env)}-"


def environment_digest(app: str, env: str) -> str:
    """Six hex digits that tell an app's environment from every other in one project."""
    return hashlib.sha256(f"{app}\0{env}".encode()).hexdigest()[:6]


def backend_bucket_name(app: str, env: str, bucket: str) -> str:
    """The Cloud CDN backend bucket of a public bucket."""
    return join_name(app, env, bucket, "cdn", limit=63)


def cdn_name(app: str, env: str, part: str) -> str:
    """A part of the environment's one Cloud CDN load balancer (``ip``, ``map``, ``proxy``, ``rule``): its
    global address, URL map, target HTTP proxy and global forwarding rule."""
    return join_name(app, env, "cdn", part, limit=63)


# -- secrets: Secret Manager ---------------------------------------------------------------------------


def secret_name(app: str, env: str, secret: str) -> str:
    """A Secret Manager secret id (``[A-Za-z0-9_-]``, at most 255 characters)."""
    return join_name(app, env, secret, limit=255)


def signing_key_name(app: str, env: str) -> str:
    """The secret holding the key cron calls are signed with."""
    return join_name(app, env, "cron-signing-key", limit=255)


# -- cron: Cloud Scheduler ------------------------------------------------------------------------------


def scheduler_job_name(app: str, env: str, job: str) -> str:
    """A Cloud Scheduler job id (``[A-Za-z0-9_-]``, at most 500 characters)."""
    return join_name(app, env, job, limit=500)


def trigger_job_name(app: str, env: str, service: str) -> str:
    """The Cloud Run job that sends ``service``'s cron jobs their signed requests (Cloud Scheduler runs it
    with the job and the URL as arguments)."""
    return join_name(app, env, service, "cron", limit=63)


def trigger_job_id(service: str) -> str:
    """The node id of ``service``'s cron trigger job (``cron.trigger/SERVICE``)."""
    return f"cron.trigger/{service}"


# -- labels -----------------------------------------------------------------------------------------------

_LABEL = re.compile(r"[^a-z0-9_-]+")


def label_value(text: str) -> str:
    """``text`` as a label value: at most 63 of ``[a-z0-9_-]`` (a hash suffix where anything changed)."""
    cleaned = _LABEL.sub("_", text.lower())
    if cleaned == text and len(text) <= 63:
        return text
    suffix = hashlib.sha256(text.encode()).hexdigest()[:6]
    return cleaned[: 63 - len(suffix) - 1] + "-" + suffix


def labels(app: str, env: str, node: str) -> dict[str, str]:
    """Ownership labels every resource that takes labels carries: its app, environment and node."""
    return {
        "skyrig-app": label_value(app),
        "skyrig-env": label_value(env),
        "skyrig-node": label_value(node),
    }
