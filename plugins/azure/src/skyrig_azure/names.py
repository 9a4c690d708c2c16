"""How the Azure provider names things: the Azure names of an environment's resources, their tags, and the
ids of the nodes one family module's nodes depend on in another's.

Every name is deterministic (app, environment, resource) within Azure's limits for its type
(:func:`join_name` hash-suffixes what it cleans or shortens), so that a resource can always be found again
by name, even after state was lost. Names that must be unique in all of Azure (a storage account, a key
vault, a Service Bus namespace, a PostgreSQL server, a cache, a web app: they are DNS names) carry a hash of
the subscription too (:func:`global_name`), so that the same app deployed from two subscriptions does not
collide. The family modules, the provider and the runtime take their names from here, and this module
imports none of them.
"""

from __future__ import annotations

import hashlib
import re

from skyrig.provider import join_name

# -- node ids that nodes of another module depend on -------------------------------------------------

RESOURCE_GROUP_ID = "network.resource_group"
"""The environment's resource group (made, or the configured one): every other node is in it."""


def identity_id(service: str) -> str:
    """The node id of a service's user-assigned managed identity (``iam.identity/SERVICE``)."""
    return f"iam.identity/{service}"


DATABASE_SUBNET_ID = "network.subnet/database"
"""The subnet delegated to Microsoft.DBforPostgreSQL/flexibleServers (the PostgreSQL server's own)."""
ENDPOINTS_SUBNET_ID = "network.subnet/endpoints"
"""The subnet of the private endpoints (the caches')."""
POSTGRES_DNS_ID = "network.dns/postgres"
"""The private DNS zone of the PostgreSQL server (``NAME.private.postgres.database.azure.com``), linked to
the virtual network."""
REDIS_DNS_ID = "network.dns/redis"
"""The private DNS zone ``privatelink.redis.cache.windows.net``, linked to the virtual network."""
KEY_VAULT_ID = "secrets.vault"
"""The environment's Key Vault (where the PostgreSQL administrator's password is kept)."""
SQL_SERVER_ID = "sql.server"
"""The environment's PostgreSQL flexible server (every database of the app is on it)."""


VNET_ID = "network.vnet"
"""The environment's virtual network (``vnet_cidr``)."""
APP_SUBNET_ID = "network.subnet/app"
"""The subnet delegated to Microsoft.Web/serverFarms: the App Services' VNet integration (outbound)."""


SERVICEBUS_NAMESPACE_ID = "pubsub.namespace"
"""The environment's Service Bus namespace (every topic and subscription is in it)."""


def topic_id(topic: str) -> str:
    """The node id of a Service Bus topic (``pubsub.topic/NAME``)."""
    return f"pubsub.topic/{topic}"


def subscription_id(subscription: str) -> str:
    """The node id of a Service Bus subscription (``pubsub.subscription/NAME``)."""
    return f"pubsub.subscription/{subscription}"


def container_id(bucket: str) -> str:
    """The node id of a bucket's blob container (``objects.container/BUCKET``)."""
    return f"objects.container/{bucket}"


def secret_id(secret: str) -> str:
    """The node id of a declared secret in the Key Vault (``secrets.secret/NAME``)."""
    return f"secrets.secret/{secret}"


STORAGE_ACCOUNT_ID = "objects.account"
"""The environment's storage account (every bucket's blob container is in it)."""
FRONT_DOOR_PROFILE_ID = "objects.cdn_profile"
"""The environment's Azure Front Door (Standard) profile, made only when a bucket is public."""
FRONT_DOOR_ENDPOINT_ID = "objects.cdn_endpoint"
"""The Front Door endpoint (``NAME-HASH.z01.azurefd.net``) public buckets are served from."""
FRONT_DOOR_ORIGIN_GROUP_ID = "objects.cdn_origin_group"
"""The Front Door origin group of the storage account's blob endpoint."""
FRONT_DOOR_ORIGIN_ID = "objects.cdn_origin"
"""The Front Door origin: the storage account's blob endpoint."""
FRONT_DOOR_ROUTE_ID = "objects.cdn_route"
"""The Front Door route: ``/CONTAINER/*`` of each public bucket to the origin group."""


APP_PLAN_ID = "compute.plan"
"""The environment's App Service Plan (Linux): every service's web app runs on it."""
JOBS_ENVIRONMENT_ID = "compute.jobs"
"""The environment's Container Apps managed environment, where the migration jobs and the cron jobs run."""
JOBS_SUBNET_ID = "network.subnet/jobs"
"""The subnet delegated to Microsoft.App/environments (at least a /27) that the Container Apps environment
is integrated with, where the network family makes one (:func:`skyrig_azure.network.subnets_needed` says
``jobs``): what lets a migration job reach the private database."""
SIGNING_KEY_ID = "cron.signing_key"
"""The environment's cron signing key (a secret of the Key Vault): the service host checks the signature of
each scheduled request with it, and the scheduled jobs (and the service identities) read it."""


def site_id(service: str) -> str:
    """The node id of a service's App Service web app (``compute.site/SERVICE``)."""
    return f"compute.site/{service}"


def migration_id(database: str) -> str:
    """The node id of a database's migration job (``compute.migration/DATABASE``)."""
    return f"compute.migration/{database}"


def cron_job_id(job: str) -> str:
    """The node id of a cron job's Container Apps job (``cron.job/JOB``)."""
    return f"cron.job/{job}"


def sql_database_id(database: str) -> str:
    """The node id of a PostgreSQL database (``sql.database/NAME``)."""
    return f"sql.database/{database}"


def cache_id(cache: str) -> str:
    """The node id of an Azure Cache for Redis (``cache.cluster/NAME``)."""
    return f"cache.cluster/{cache}"


# -- names ------------------------------------------------------------------------------------------------


def resource_group_name(app: str, env: str) -> str:
    """The resource group skyrig makes for an environment (up to 90 characters)."""
    return join_name(app, env, limit=90)


def environment_digest(subscription: str, app: str, env: str, length: int = 6) -> str:
    """A short hash of subscription, app and environment: what keeps globally unique names apart."""
    return hashlib.sha256(f"{subscription}\0{app}\0{env}".encode()).hexdigest()[:length]


def global_name(
    subscription: str, app: str, env: str, *parts: str, limit: int, alphanumeric: bool = False
) -> str:
    """A name unique in all of Azure: ``APP-ENV-PARTS-DIGEST`` within ``limit`` characters (only
    ``[a-z0-9]`` when ``alphanumeric``: a storage account), deterministic for this subscription."""
    digest = environment_digest(subscription, app, env)
    if alphanumeric:
        text = re.sub(r"[^a-z0-9]+", "", "".join((app, env, *parts)).lower())
        if not text[:1].isalpha():
            text = "s" + text
        return text[: limit - len(digest)] + digest
    return join_name(join_name(app, env, *parts, limit=limit - len(digest) - 1), digest, limit=limit)


def sql_server_name(subscription: str, app: str, env: str) -> str:
    """The PostgreSQL flexible server (a DNS name: 3-63 characters, ``[a-z0-9-]``)."""
    return global_name(subscription, app, env, "pg", limit=63)


SQL_ADMIN_SECRET = "skyrig-sql-admin"
"""The secret of the environment's Key Vault holding the PostgreSQL administrator's password (skyrig's own,
beside the declared secrets; the secrets family must not give a declared secret this name)."""


def cache_name(subscription: str, app: str, env: str, cache: str) -> str:
    """An Azure Cache for Redis (a DNS name: 1-63 characters, ``[a-z0-9-]``)."""
    return global_name(subscription, app, env, cache, limit=63)


def vnet_name(app: str, env: str) -> str:
    """The environment's virtual network (2-64 characters)."""
    return join_name(app, env, limit=64)


def nsg_name(app: str, env: str, subnet: str) -> str:
    """The network security group of subnet ``subnet`` (``app``, ``database``, ``endpoints``)."""
    return join_name(app, env, subnet, limit=80)


def postgres_dns_zone(app: str, env: str) -> str:
    """The private DNS zone the PostgreSQL server's private address is published in (in the resource
    group; Azure asks for a name ending in ``.postgres.database.azure.com``)."""
    return f"{join_name(app, env, limit=63)}.private.postgres.database.azure.com"


REDIS_DNS_ZONE = "privatelink.redis.cache.windows.net"
"""The private DNS zone Azure Cache for Redis's private endpoints publish their addresses in (its name is
Azure's: a client resolving ``NAME.redis.cache.windows.net`` inside the VNet is sent there)."""


def identity_name(app: str, env: str, service: str) -> str:
    """A service's user-assigned managed identity (3-128 characters)."""
    return join_name(app, env, service, limit=128)


# The Azure names of the resources role assignments are scoped to (the iam family computes their ARM ids
# from these; each family makes its resources under the same names).


def servicebus_namespace_name(subscription: str, app: str, env: str) -> str:
    """The environment's Service Bus namespace (a DNS name: 6-50 characters)."""
    return global_name(subscription, app, env, "sb", limit=50)


def topic_name(topic: str) -> str:
    """A topic in the namespace (up to 260 characters)."""
    return join_name(topic, limit=260)


def subscription_name(subscription: str) -> str:
    """A subscription of its topic (up to 50 characters)."""
    return join_name(subscription, limit=50)


def storage_account_name(subscription: str, app: str, env: str) -> str:
    """The environment's storage account (3-24 characters, ``[a-z0-9]``)."""
    return global_name(subscription, app, env, limit=24, alphanumeric=True)


def container_name(app: str, env: str, bucket: str) -> str:
    """A bucket's blob container (3-63 characters): app and environment in it too, because Azurite serves
    every environment from one account."""
    return join_name(app, env, bucket, limit=63)


def front_door_name(app: str, env: str, part: str) -> str:
    """A part of the environment's Front Door (``profile``, ``endpoint``, ``origins``, ``blob``,
    ``buckets``): 1-46 characters, letters, digits and single hyphens. The endpoint's host name is
    ``NAME-HASH.z01.azurefd.net``, its hash Azure's own, so the name need not be globally unique."""
    return join_name(app, env, part, limit=46)


def key_vault_name(subscription: str, app: str, env: str) -> str:
    """The environment's Key Vault (a DNS name: 3-24 characters)."""
    return global_name(subscription, app, env, "kv", limit=24)


def vault_secret_name(secret: str) -> str:
    """A declared secret in the Key Vault (1-127 characters, ``[a-zA-Z0-9-]``)."""
    return join_name(secret, limit=127)


def plan_name(app: str, env: str) -> str:
    """The environment's App Service Plan (1-40 characters)."""
    return join_name(app, env, limit=40)


def site_name(subscription: str, app: str, env: str, service: str) -> str:
    """A service's web app (a DNS name, ``NAME.azurewebsites.net``: 2-60 characters)."""
    return global_name(subscription, app, env, service, limit=60)


def container_environment_name(app: str, env: str) -> str:
    """The environment's Container Apps managed environment (2-60 characters)."""
    return join_name(app, env, limit=60)


def cron_job_name(app: str, env: str, job: str) -> str:
    """A cron job's Container Apps job (2-32 characters, ``[a-z0-9-]``)."""
    return join_name(app, env, job, limit=32)


SIGNING_KEY_SECRET = "skyrig-cron-signing-key"
"""The Key Vault secret holding the environment's cron signing key (skyrig's own, beside the declared
secrets; the secrets family must not give a declared secret this name)."""


def secret_setting(secret: str) -> str:
    """The app setting of a web app that holds declared secret ``secret`` as a Key Vault reference
    (``SKYRIG_SECRET_STRIPE_API_KEY``): App Service puts the value in that environment variable of the
    container, where the runtime's secret client may read it."""
    return "SKYRIG_SECRET_" + re.sub(r"[^A-Z0-9]+", "_", secret.upper()).strip("_")


def key_vault_reference(vault_uri: str, secret: str) -> str:
    """What an App Service app setting holds for Key Vault secret ``secret`` (its latest version): App
    Service resolves it with the web app's ``keyVaultReferenceIdentity``, and the value never appears in
    the app settings."""
    return f"@Microsoft.KeyVault(SecretUri={vault_uri.rstrip('/')}/secrets/{secret}/)"


# -- tags --------------------------------------------------------------------------------------------------

TAG_APP, TAG_ENV, TAG_NODE = "skyrig-app", "skyrig-env", "skyrig-node"


def tags(app: str, env: str, node: str) -> dict[str, str]:
    """The tags every resource skyrig makes carries: whose it is (``skyrig-app``, ``skyrig-env``) and which
    node it is (``skyrig-node``): what finds it again, and what ``skyrig destroy`` may delete."""
    return {TAG_APP: app, TAG_ENV: env, TAG_NODE: node}
