"""SQL: one Azure Database for PostgreSQL flexible server per environment (the seeds' "cluster": a PostgreSQL
server holding every database of the app), and a database per SQLDatabase on it.

The server has private access only (VNet integration: a subnet delegated to it and a private DNS zone,
both the network family's; public network access disabled), TLS required (the server parameter
``require_secure_transport`` on), automatic daily backups kept 7 days with point-in-time recovery to any
moment within them (Azure's, for every flexible server: ``backup.earliestRestoreDate`` says how far back),
storage auto-grow, and zone-redundant high availability in production (a standby in another zone,
automatic failover), none in development. Its compute size (``sql_sku``, ``sql_tier``) and storage are
user-tunable.

The administrator's password is made here, kept only in the environment's Key Vault (secret
:data:`names.SQL_ADMIN_SECRET`) and given to Azure once, in the create: never in state, plans or logs. The
runtime config names only the secret's URI, which the data plane reads with the service's managed
identity (:mod:`skyrig_azure.runtime.sql`).

Migrations run before the services roll out, as a job of the service's image (``python -m
skyrig_azure.runtime.sql``, its environment from :func:`migration_job`): the compute family makes and runs
it after the database node.
"""

from __future__ import annotations

import contextlib
import json
import secrets as random
from collections.abc import Mapping
from typing import Any

from skyrig.provider import (
    Context,
    Node,
    NotFound,
    Observed,
    ProviderError,
    Scope,
    plan_of,
    resolve,
    wait_for,
)
from skyrig_azure import names
from skyrig_azure.api import Conflict
from skyrig_azure.nodes import AzureNodeType, NamedNodeType

ADMIN = "skyrigadmin"
"""The server's password-based administrator (Azure refuses ``postgres``, ``admin``, ``azure_*``...)."""
BACKUP_RETENTION_DAYS = 7
"""Daily backups, and point-in-time recovery, reach back this many days."""
SECURE_TRANSPORT = "require_secure_transport"
"""The server parameter that refuses connections without TLS."""
PORT = 5432
CHARSET, COLLATION = "UTF8", "en_US.utf8"
READY = "Ready"
_SERVERS = "postgresql.servers"
"""The resource group's servers: the listing the databases' read keeps for the servers' (the client's
:meth:`~skyrig_azure.api.AzureClient.listing`)."""


def _last(provider_id: str) -> str:
    """A name from a provider id that may be an ARM id (``/subscriptions/.../vaults/NAME``)."""
    return provider_id.rstrip("/").rpartition("/")[2]


def _value(item: Any, *path: str) -> Any:
    """``item.a.b`` for ``path`` ``("a", "b")``, None where a step is missing."""
    for step in path:
        if item is None:
            return None
        item = getattr(item, step, None)
    return item


def _text(value: Any) -> str | None:
    """An SDK enum or string as its string."""
    if value is None:
        return None
    return str(getattr(value, "value", value))


def _servers_seen(context: Context) -> dict[str, Any]:
    """The servers read in this command, by name: the databases' nodes take their host from there
    instead of reading the server again."""
    client = context.client
    if not hasattr(client, "sql_servers_seen"):
        client.sql_servers_seen = {}
    return client.sql_servers_seen  # type: ignore[no-any-return]


# -- the administrator's password in Key Vault -------------------------------------------------------


def vault_url(context: Context) -> str:
    """The URI of the environment's Key Vault (``https://NAME.vault.azure.net/``), from its node; read
    once per command."""
    client = context.client
    known = getattr(client, "sql_vault_url", None)
    if known:
        return str(known)

    def find() -> str:
        return names.key_vault_name(client.subscription, context.app, context.environment.name)

    vault = _last(resolve(context, names.KEY_VAULT_ID, find))
    try:
        found = client.mgmt("keyvault").vaults.get(client.resource_group, vault)
    except NotFound:
        # the vault is gone (the secrets family makes it again): where Azure puts a vault of that name,
        # so that reading a database does not take it for gone too
        return f"https://{vault}.vault.azure.net/"
    client.sql_vault_url = str(found.properties.vault_uri)
    return client.sql_vault_url


def secret_client(context: Context, url: str) -> Any:
    """azure-keyvault-secrets' client of the vault at ``url``, as the deployer (this command's
    credential)."""
    from azure.keyvault.secrets import SecretClient

    options = {k: v for k, v in context.client.client_options().items() if k != "polling_interval"}
    if context.settings.emulator:
        options["verify_challenge_resource"] = False  # the fake vault is not at *.vault.azure.net
    return SecretClient(url, context.client.credential, **options)


def new_password() -> str:
    """A random administrator password (256 bits) of the character classes Azure asks for (three of
    lower case, upper case, digits and others)."""
    while True:
        password = random.token_urlsafe(32)
        if all(any(test(c) for c in password) for test in (str.islower, str.isupper, str.isdigit)):
            return password


def admin_password(context: Context, url: str) -> str:
    """The administrator's password: the secret's current value, made (random) where there is none (an
    earlier create's password may already be the server's); a secret deleted with an earlier server but
    kept by the vault (soft delete: its name cannot be set again) is recovered and used."""
    from azure.core.exceptions import ResourceExistsError, ResourceNotFoundError

    vault = secret_client(context, url)
    try:
        with contextlib.closing(vault):
            try:
                value = vault.get_secret(names.SQL_ADMIN_SECRET).value
                if value:
                    return str(value)
            except ResourceNotFoundError:
                pass
            password = new_password()
            try:
                vault.set_secret(names.SQL_ADMIN_SECRET, password, content_type="password")
            except ResourceExistsError:
                vault.begin_recover_deleted_secret(names.SQL_ADMIN_SECRET).wait()
                recovered = vault.get_secret(names.SQL_ADMIN_SECRET).value
                if recovered:
                    return str(recovered)
                vault.set_secret(names.SQL_ADMIN_SECRET, password, content_type="password")
            return password
    except Exception as error:  # reported in skyrig's terms, without the value
        from skyrig_azure.api import translate

        raise translate(error, f"Key Vault secret {names.SQL_ADMIN_SECRET}") from None


def admin_secret_uri(url: str) -> str:
    """The reference the runtime config carries: the secret's URI (latest version)."""
    return f"{url.rstrip('/')}/secrets/{names.SQL_ADMIN_SECRET}"


# -- the server -------------------------------------------------------------------------------------------


class ServerType(NamedNodeType):
    """The PostgreSQL flexible server, with its ``require_secure_transport`` parameter. It is the node's
    main resource: until it exists the node is not found, and the create adopts the password an earlier
    one kept in Key Vault."""

    type = "azure.sql.server"
    stateful = True
    tunable = frozenset({"sku", "tier", "storage_gb"})
    invariant = frozenset(
        {
            "backup_retention_days",
            "storage_auto_grow",
            "public_network_access",
            "high_availability",
            "require_secure_transport",
            "password_auth",
        }
    )
    replace_on = frozenset({"version", "location"})
    identity = frozenset({"name"})

    # -- reading ------------------------------------------------------------------------------------

    def _observe(self, context: Context, node: Node, server: Any, secure: str | None) -> Observed:
        _servers_seen(context)[server.name] = server
        p = server.properties
        network = _value(p, "network")
        properties = {
            "name": server.name,
            "location": (server.location or "").replace(" ", "").lower(),
            "version": _text(_value(p, "version")),
            "sku": _value(server, "sku", "name"),
            "tier": _text(_value(server, "sku", "tier")),
            "storage_gb": int(_value(p, "storage", "storage_size_gb") or 0),
            "storage_auto_grow": _text(_value(p, "storage", "auto_grow")) == "Enabled",
            "backup_retention_days": int(_value(p, "backup", "backup_retention_days") or 0),
            "public_network_access": _text(_value(network, "public_network_access")),
            "high_availability": _text(_value(p, "high_availability", "mode")) or "Disabled",
            "password_auth": _text(_value(p, "auth_config", "password_auth")) == "Enabled",
            "require_secure_transport": (secure or "").lower() or None,
        }
        earliest = _value(p, "backup", "earliest_restore_date")
        outputs = {
            "host": _value(p, "fully_qualified_domain_name"),
            "port": PORT,
            "user": ADMIN,
            "state": _text(_value(p, "state")),
            "earliest_restore": earliest.isoformat() if hasattr(earliest, "isoformat") else earliest,
            "id": server.id,
            "subnet": _value(network, "delegated_subnet_resource_id"),
            "dns_zone": _value(network, "private_dns_zone_arm_resource_id"),
        }
        return self.observed(node, server.name, properties, outputs)

    def _secure(self, context: Context, name: str) -> str | None:
        client = context.client
        try:
            found = client.mgmt("postgresql").configurations.get(
                client.resource_group, name, SECURE_TRANSPORT
            )
        except NotFound:
            return None
        return _value(found, "properties", "value")

    def _get(self, context: Context, name: str) -> Any:
        client = context.client
        return client.mgmt("postgresql").servers.get(client.resource_group, name)

    def _list(self, context: Context) -> list[Any]:
        client = context.client
        return client.mgmt("postgresql").servers.list_by_resource_group(client.resource_group)

    @staticmethod
    def _gone(server: Any) -> bool:
        return _text(_value(server, "properties", "state")) == "Dropping"

    def _read(self, context: Context, node: Node, provider_id: str) -> Observed | None:
        server = self._get(context, provider_id)
        if self._gone(server):
            return None
        return self._observe(context, node, server, self._secure(context, provider_id))

    def _read_many(self, context: Context, nodes: list[tuple[Node, str]]) -> dict[str, Observed | None]:
        # a refresh reads the databases first (their type sorts first): their listing of the servers serves
        listed = context.client.listing(_SERVERS, lambda: self._list(context))
        found = {s.name: s for s in listed if not self._gone(s)}
        return {
            n.id: self._observe(context, n, found[pid], self._secure(context, pid)) if pid in found else None
            for n, pid in nodes
        }

    def inventory(self, context: Context) -> list[str]:
        """The servers whose tags say they are this app's and environment's (none without the resource
        group)."""
        try:
            servers = self._list(context)
        except NotFound:
            return []
        return [s.name for s in servers if not self._gone(s) and self.owned(context, s.tags)]

    # -- creating -----------------------------------------------------------------------------------

    def _network(self, context: Context, node: Node) -> dict[str, Any]:
        client = context.client
        app, env = context.app, context.environment.name
        subnet = resolve(context, names.DATABASE_SUBNET_ID, lambda: f"{names.vnet_name(app, env)}/database")
        zone = resolve(context, names.POSTGRES_DNS_ID, lambda: names.postgres_dns_zone(app, env))
        if not subnet.startswith("/"):  # VNET/SUBNET
            subnet = client.resource_id("Microsoft.Network/virtualNetworks/subnets", *subnet.split("/")[-2:])
        if not zone.startswith("/"):
            zone = client.resource_id("Microsoft.Network/privateDnsZones", zone)
        return {
            "publicNetworkAccess": node.properties["public_network_access"],
            "delegatedSubnetResourceId": subnet,
            "privateDnsZoneArmResourceId": zone,
        }

    @staticmethod
    def _storage(node: Node) -> dict[str, Any]:
        p = node.properties
        return {
            "storageSizeGB": p["storage_gb"],
            "autoGrow": "Enabled" if p["storage_auto_grow"] else "Disabled",
        }

    @staticmethod
    def _high_availability(node: Node) -> dict[str, Any]:
        return {"mode": node.properties["high_availability"]}

    def _create(self, context: Context, node: Node) -> Observed:
        p = node.properties
        client = context.client
        url = vault_url(context)
        body = {
            "location": p["location"],
            "tags": self.tags(context, node),
            "sku": {"name": p["sku"], "tier": p["tier"]},
            "properties": {
                "createMode": "Create",
                "version": p["version"],
                "administratorLogin": ADMIN,
                "administratorLoginPassword": admin_password(context, url),
                "authConfig": {
                    "passwordAuth": "Enabled" if p["password_auth"] else "Disabled",
                    "activeDirectoryAuth": "Disabled",
                },
                "storage": self._storage(node),
                "backup": {
                    "backupRetentionDays": p["backup_retention_days"],
                    "geoRedundantBackup": "Disabled",
                },
                "network": self._network(context, node),
                "highAvailability": self._high_availability(node),
            },
        }
        servers = client.mgmt("postgresql").servers
        try:
            operation = servers.begin_create_or_update(client.resource_group, p["name"], body)
        except Conflict:
            pass  # an earlier create's, still running: adopted once ready
        else:
            client.wait(context, operation, f"PostgreSQL server {p['name']}")
        self._require_tls(context, node, p["name"])
        return self._ready(context, node, p["name"])

    def _require_tls(self, context: Context, node: Node, name: str) -> None:
        """Sets ``require_secure_transport`` as the node wants it, where the server says otherwise (Azure's
        default is on: a new server needs no call)."""
        wanted = node.properties["require_secure_transport"]
        if (self._secure(context, name) or "").lower() == wanted:
            return
        client = context.client
        operation = client.mgmt("postgresql").configurations.begin_put(
            client.resource_group,
            name,
            SECURE_TRANSPORT,
            {"properties": {"value": wanted, "source": "user-override"}},
        )
        client.wait(context, operation, f"{SECURE_TRANSPORT} of PostgreSQL server {name}")

    def _ready(self, context: Context, node: Node, name: str) -> Observed:
        seen: dict[str, Any] = {}

        def ready() -> tuple[bool, str]:
            seen["server"] = self._get(context, name)
            state = _text(_value(seen["server"], "properties", "state")) or "Provisioning"
            return state == READY, state.lower()

        wait_for(context, f"PostgreSQL server {name}", ready)
        return self._observe(context, node, seen["server"], self._secure(context, name))

    def _update(self, context: Context, node: Node, provider_id: str, changes: Mapping[str, Any]) -> Observed:
        p = node.properties
        client = context.client
        if "public_network_access" in changes:
            raise ProviderError(
                f"{node.id}: public network access of PostgreSQL server {provider_id} is not "
                f"{changes['public_network_access']!r}, and Azure cannot change it on a VNet-integrated "
                "server: delete the server (the next apply makes it again, empty) or turn it back in the "
                "portal"
            )
        patch: dict[str, Any] = {}
        properties: dict[str, Any] = {}
        if {"sku", "tier"} & set(changes):
            patch["sku"] = {"name": p["sku"], "tier": p["tier"]}
        if {"storage_gb", "storage_auto_grow"} & set(changes):
            properties["storage"] = self._storage(node)
        if "backup_retention_days" in changes:
            properties["backup"] = {"backupRetentionDays": p["backup_retention_days"]}
        if "password_auth" in changes:
            properties["authConfig"] = {"passwordAuth": "Enabled" if p["password_auth"] else "Disabled"}
        servers = client.mgmt("postgresql").servers
        if "high_availability" in changes:
            # Azure changes high availability alone: a standby is added or removed
            operation = servers.begin_update(
                client.resource_group,
                provider_id,
                {"properties": {"highAvailability": self._high_availability(node)}},
            )
            client.wait(context, operation, f"high availability of PostgreSQL server {provider_id}")
        if properties:
            patch["properties"] = properties
        if patch:
            operation = servers.begin_update(client.resource_group, provider_id, patch)
            client.wait(context, operation, f"PostgreSQL server {provider_id}")
        if "require_secure_transport" in changes:
            self._require_tls(context, node, provider_id)
        return self._ready(context, node, provider_id)

    def _delete(self, context: Context, node: Node, provider_id: str) -> None:
        client = context.client
        operation = client.mgmt("postgresql").servers.begin_delete(client.resource_group, provider_id)
        client.wait(context, operation, f"deleting PostgreSQL server {provider_id}")
        # the password goes with the server (the vault itself, with soft delete, is the secrets family's)
        with contextlib.suppress(ProviderError):
            url = vault_url(context)
            vault = secret_client(context, url)
            with contextlib.closing(vault), contextlib.suppress(Exception):
                vault.begin_delete_secret(names.SQL_ADMIN_SECRET).wait()


# -- the databases ----------------------------------------------------------------------------------------


class DatabaseType(AzureNodeType):
    """A database on the server. Its migrations run in the job the compute family makes from
    :func:`migration_job`."""

    type = "azure.sql.database"
    stateful = True
    replace_on = frozenset({"name", "server", "charset", "collation"})
    identity = frozenset({"name"})

    def _server_name(self, context: Context, node: Node) -> str:
        return _last(context.recorded.get(names.SQL_SERVER_ID) or node.properties["server"])

    def _server(self, context: Context, name: str) -> Any:
        client = context.client
        seen = _servers_seen(context).get(name)
        if seen is not None:  # read by the server's node in this command (its host name does not change)
            return seen
        try:
            return client.mgmt("postgresql").servers.get(client.resource_group, name)
        except NotFound:
            return None

    def _observe(
        self, context: Context, node: Node, server_name: str, database: Any, server: Any
    ) -> Observed:
        host = _value(server, "properties", "fully_qualified_domain_name")
        properties = {
            "name": database.name,
            "server": server_name,
            "charset": _value(database, "properties", "charset"),
            "collation": _value(database, "properties", "collation"),
        }
        outputs = {**connection(context), "host": host, "database": database.name}
        return self.observed(node, f"{server_name}/{database.name}", properties, outputs)

    def _list(self, context: Context, server: str) -> list[Any]:
        client = context.client
        return client.mgmt("postgresql").databases.list_by_server(client.resource_group, server)

    def _read(self, context: Context, node: Node, provider_id: str) -> Observed | None:
        server_name, _, name = provider_id.partition("/")
        client = context.client
        database = client.mgmt("postgresql").databases.get(client.resource_group, server_name, name)
        return self._observe(context, node, server_name, database, self._server(context, server_name))

    def _read_many(self, context: Context, nodes: list[tuple[Node, str]]) -> dict[str, Observed | None]:
        found: dict[str, Observed | None] = {}
        servers = SERVER._list(context)
        context.client.keep_listing(_SERVERS, servers)  # for the server's node, read next (its _read_many)
        by_name = {s.name: s for s in servers}
        for server_name in sorted({pid.partition("/")[0] for _, pid in nodes}):
            server = by_name.get(server_name)
            listed = (
                {f"{server_name}/{d.name}": d for d in self._list(context, server_name)} if server else {}
            )
            for node, provider_id in nodes:
                if provider_id.partition("/")[0] == server_name:
                    database = listed.get(provider_id)
                    found[node.id] = (
                        self._observe(context, node, server_name, database, server) if database else None
                    )
        return found

    def _find(self, context: Context, node: Node) -> Observed | None:
        return self._read(context, node, f"{self._server_name(context, node)}/{node.properties['name']}")

    def _find_many(self, context: Context, nodes: list[Node]) -> dict[str, Observed | None]:
        return self._read_many(
            context,
            [(node, f"{self._server_name(context, node)}/{node.properties['name']}") for node in nodes],
        )

    def _create(self, context: Context, node: Node) -> Observed:
        client = context.client
        server = self._server_name(context, node)
        p = node.properties
        body = {"properties": {"charset": p["charset"], "collation": p["collation"]}}
        operation = client.mgmt("postgresql").databases.begin_create(
            client.resource_group, server, p["name"], body
        )
        client.wait(context, operation, f"database {p['name']}")
        return self._read(context, node, f"{server}/{p['name']}")  # type: ignore[return-value]

    def _update(self, context: Context, node: Node, provider_id: str, changes: Mapping[str, Any]) -> Observed:
        return self._read(context, node, provider_id)  # type: ignore[return-value]

    def _delete(self, context: Context, node: Node, provider_id: str) -> None:
        server, _, name = provider_id.partition("/")
        client = context.client
        operation = client.mgmt("postgresql").databases.begin_delete(client.resource_group, server, name)
        client.wait(context, operation, f"deleting database {name}")

    def inventory(self, context: Context) -> list[str]:
        """The databases of this environment's server (``postgres`` and the ``azure_*`` ones are Azure's)."""
        client = context.client
        server = names.sql_server_name(client.subscription, context.app, context.environment.name)
        try:  # the server's databases, read now (none without the server or its resource group)
            databases = self._list(context, server)
        except NotFound:
            return []
        return [f"{server}/{d.name}" for d in databases if d.name not in SYSTEM_DATABASES]

    def runtime_entry(self, node: Node, observed: Observed) -> dict[str, Any] | None:
        return {"type": self.type, **observed.outputs}


SYSTEM_DATABASES = frozenset({"postgres", "azure_maintenance", "azure_sys"})
"""The databases every flexible server has (Azure's own)."""

SERVER = ServerType()
DATABASE = DatabaseType()
TYPES = (SERVER, DATABASE)


def connection(context: Context) -> dict[str, Any]:
    """How a service reaches the environment's server (a runtime entry of :mod:`skyrig.runtime.servers`'
    shape, the server checked by name against the system's CAs), but the host and the database: no
    secret, only the URI of the password's Key Vault secret."""
    entry = connection_of(
        context.client.subscription, context.app, context.environment.name, context.settings
    )
    return {**entry, "password": admin_secret_uri(vault_url(context))}


def connection_of(subscription: str, app: str, env: str, settings: Any) -> dict[str, Any]:
    """:func:`connection` from names alone, without the password's reference (the migration job's
    environment, made at expansion)."""
    return {
        "port": PORT,
        "user": ADMIN,
        "sslmode": "verify-full",
        "server": names.sql_server_name(subscription, app, env),
        "emulator": settings.emulator,
    }


def migration_job(scope: Scope, database: Any) -> dict[str, Any]:
    """What the compute family needs to make and run ``database``'s migration job (a job of the service's
    image running ``python -m skyrig_azure.runtime.sql`` under the service's identity, before the
    services roll out): its name, the node it depends on, and its environment (no secret: the password is
    read from Key Vault in the job). The compute family adds ``SKYRIG_DB_HOST`` (the server node's
    ``host`` output) and ``SKYRIG_DB_PASSWORD`` (the database node's ``password`` output: the secret's
    URI, not its value)."""
    app, env = scope.app, scope.environment.name
    migrations, files = plan_of(database)
    subscription = scope.settings.subscription_id
    environment = {
        "SKYRIG_DATABASE": database.name,
        "SKYRIG_DB_CONNECTION": json.dumps(
            connection_of(subscription, app, env, scope.settings), separators=(",", ":"), sort_keys=True
        ),
        "SKYRIG_MIGRATIONS": json.dumps(migrations, separators=(",", ":")),
        "SKYRIG_MIGRATION_FILES": json.dumps(files, separators=(",", ":"), sort_keys=True),
    }
    return {
        "name": names.join_name(app, env, "migrate", database.name, limit=32),
        "after": names.sql_database_id(database.name),
        "service": database.service,
        "command": ["python", "-m", "skyrig_azure.runtime.sql"],
        "environment": environment,
        "migrations": migrations,
    }


def expand(scope: Scope) -> list[Node]:
    """The server and a database per ``sql_database``, after the delegated subnet, the private DNS zone
    and the Key Vault."""
    databases = scope.of_kind("sql_database")
    if not databases:
        return []
    settings = scope.settings
    production = scope.environment.type == "production"
    app, env = scope.app, scope.environment.name
    server = names.sql_server_name(settings.subscription_id, app, env)
    nodes = [
        scope.node(
            names.SQL_SERVER_ID,
            SERVER.type,
            {
                "name": server,
                "location": settings.location,
                "version": settings.sql_version,
                "sku": settings.sql_sku,
                "tier": settings.sql_tier,
                "storage_gb": settings.sql_storage_gb,
                "storage_auto_grow": True,
                "backup_retention_days": BACKUP_RETENTION_DAYS,
                "public_network_access": "Disabled",
                "high_availability": "ZoneRedundant" if production else "Disabled",
                "require_secure_transport": "on",
                "password_auth": True,
            },
            (names.RESOURCE_GROUP_ID, names.DATABASE_SUBNET_ID, names.POSTGRES_DNS_ID, names.KEY_VAULT_ID),
        )
    ]
    for database in databases:
        nodes.append(
            scope.node(
                names.sql_database_id(database.name),
                DATABASE.type,
                {"name": database.name, "server": server, "charset": CHARSET, "collation": COLLATION},
                (names.SQL_SERVER_ID,),
                resource=database,
            )
        )
    return nodes
