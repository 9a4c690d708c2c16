"""Secrets: the environment's Key Vault (RBAC authorization, soft delete, purge protection in production),
and a node per declared secret: the vault plus the secret's name in it. Key Vault has no secret without a
value, so skyrig never makes one: ``skyrig secret set NAME --env E`` writes a version (:func:`set_value`),
:func:`is_set` checks that an enabled version exists, and each service reads the value at run time, with
its own identity (the Key Vault Secrets User role on that secret alone: the iam family), through Key Vault
references in its app settings and the data plane (:mod:`skyrig_azure.runtime.secrets`).

The vault also keeps skyrig's own secrets (the PostgreSQL administrator's password, the cron signing key,
named ``skyrig-...``), so it is made whenever a family that keeps one is used. It is stateful: ``skyrig
destroy`` keeps it unless ``--include-data``, which deletes it and, where purge protection allows (not in
production), purges it so that its name can be used again; a production vault deleted and soft-deleted is
recovered by the next apply.

Writing and listing a vault's secrets are data actions: the identity skyrig runs as needs the Key Vault
Secrets Officer role (see docs/providers/azure.md).
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from typing import Any

from skyrig.provider import Context, Node, NotFound, Observed, ProviderError, Scope, UserError
from skyrig_azure import names
from skyrig_azure.api import Conflict, translate
from skyrig_azure.nodes import AzureNodeType, NamedNodeType
from skyrig_azure.objects import wire

VAULT_KINDS = ("secret", "sql_database", "cache_cluster", "cron_job")
"""The kinds whose families keep a secret in the vault: the vault is made when any is declared."""
ARM_SCOPE = "https://management.azure.com/.default"


def tenant_id(context: Context) -> str:
    """The Entra ID tenant of the credentials skyrig runs with (a vault trusts one tenant): the ``tid``
    claim of its Resource Manager token."""
    token = context.client.credential.get_token(ARM_SCOPE).token
    try:
        payload = token.split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        return str(claims["tid"])
    except (IndexError, ValueError, KeyError):
        raise ProviderError(
            "Azure: the credentials' token names no tenant (tid): sign in with Entra ID (az login)"
        ) from None


def vault_name(context: Context) -> str:
    """The environment's Key Vault."""
    return names.key_vault_name(context.client.subscription, context.app, context.environment.name)


class VaultType(AzureNodeType):
    """The environment's Key Vault."""

    type = "azure.secrets.vault"
    stateful = True
    identity = frozenset({"name"})
    replace_on = frozenset({"location"})
    # purge protection cannot be turned off by anyone once on: turned on in the portal, it is adopted
    tunable = frozenset({"sku", "purge_protection"})
    invariant = frozenset({"rbac", "soft_delete", "network_access"})

    def _body(self, context: Context, node: Node, recover: bool = False) -> dict[str, Any]:
        p = node.properties
        properties: dict[str, Any] = {
            "tenantId": tenant_id(context),
            "sku": {"family": "A", "name": p["sku"]},
            "enableRbacAuthorization": p["rbac"],
            "enableSoftDelete": p["soft_delete"],
            "softDeleteRetentionInDays": 90,
            "publicNetworkAccess": p["network_access"],
            "enabledForDeployment": False,
            "enabledForDiskEncryption": False,
            "enabledForTemplateDeployment": False,
        }
        if p["purge_protection"]:  # Azure refuses false: it is left unset where it is not wanted
            properties["enablePurgeProtection"] = True
        if recover:
            properties["createMode"] = "recover"
        return {"location": p["location"], "tags": self.tags(context, node), "properties": properties}

    def _observe(self, node: Node, vault: Mapping[str, Any]) -> Observed:
        found = vault.get("properties") or {}
        properties = {
            "name": vault["name"],
            "location": str(vault.get("location", "")).lower(),
            "sku": (found.get("sku") or {}).get("name"),
            "rbac": bool(found.get("enableRbacAuthorization")),
            "soft_delete": found.get("enableSoftDelete", True) is not False,
            "purge_protection": bool(found.get("enablePurgeProtection")),
            "network_access": found.get("publicNetworkAccess") or "Enabled",
        }
        outputs = {"vault": vault["name"], "vault_uri": found.get("vaultUri"), "id": vault.get("id")}
        return self.observed(node, vault["name"], properties, outputs)

    def _read(self, context: Context, node: Node, provider_id: str) -> Observed | None:
        vaults = context.client.mgmt("keyvault").vaults
        return self._observe(node, wire(vaults.get(context.client.resource_group, provider_id)))

    def _find(self, context: Context, node: Node) -> Observed | None:
        group, name = context.client.resource_group, node.properties["name"]
        vault = wire(context.client.mgmt("keyvault").vaults.get(group, name))
        if not self.owned(context, vault.get("tags")):
            raise ProviderError(
                f"{node.id}: the Key Vault {name!r} in resource group {group!r} is not this environment's "
                "(its skyrig tags say otherwise): remove it or set another resource_group"
            )
        return self._observe(node, vault)

    def _create(self, context: Context, node: Node) -> Observed:
        client, name = context.client, node.properties["name"]
        vaults = client.mgmt("keyvault").vaults
        # a PUT of a vault that exists (a create cut short) updates it: nothing to adopt apart
        try:
            operation = vaults.begin_create_or_update(client.resource_group, name, self._body(context, node))
        except Conflict as error:
            if "deleted" not in str(error).lower():
                raise
            # deleted but kept (soft delete, purge protection): Azure wants it recovered, with its secrets
            body = self._body(context, node, recover=True)
            operation = vaults.begin_create_or_update(client.resource_group, name, body)
        client.wait(context, operation, f"Key Vault {name}")
        return self._read(context, node, name)  # type: ignore[return-value]

    def _update(self, context: Context, node: Node, provider_id: str, changes: Mapping[str, Any]) -> Observed:
        p = node.properties
        properties: dict[str, Any] = {
            "enableRbacAuthorization": p["rbac"],
            "enableSoftDelete": p["soft_delete"],
            "publicNetworkAccess": p["network_access"],
        }
        if "sku" in changes:
            properties["sku"] = {"family": "A", "name": p["sku"]}
        if "purge_protection" in changes and p["purge_protection"]:
            properties["enablePurgeProtection"] = True
        body = {"tags": self.tags(context, node), "properties": properties}
        context.client.mgmt("keyvault").vaults.update(context.client.resource_group, provider_id, body)
        return self._read(context, node, provider_id)  # type: ignore[return-value]

    def _delete(self, context: Context, node: Node, provider_id: str) -> None:
        client = context.client
        vaults = client.mgmt("keyvault").vaults
        found = self._read(context, node, provider_id)
        vaults.delete(client.resource_group, provider_id)
        if found is not None and not found.properties["purge_protection"]:
            try:  # so that the name can be used again at once
                operation = vaults.begin_purge_deleted(provider_id, node.properties["location"])
                client.wait(context, operation, f"purging Key Vault {provider_id}")
            except NotFound:
                pass

    def inventory(self, context: Context) -> list[str]:
        """The environment's Key Vaults, by their tags."""
        vaults = context.client.mgmt("keyvault").vaults
        try:
            listed = [wire(v) for v in vaults.list_by_resource_group(context.client.resource_group)]
        except NotFound:  # no resource group: nothing of ours
            return []
        return sorted(v["name"] for v in listed if self.owned(context, v.get("tags")))

    def runtime_entry(self, node: Node, observed: Observed) -> dict[str, Any] | None:
        return None


class SecretType(NamedNodeType):
    """A declared secret: its name in the environment's vault. Nothing is made: Key Vault has no secret
    without a value, and the value comes from ``skyrig secret set``."""

    type = "azure.secrets.secret"
    stateful = True
    identity = frozenset({"name"})
    replace_on = frozenset({"vault"})

    def _observe(self, context: Context, node: Node, vault: Mapping[str, Any]) -> Observed:
        uri = (vault.get("properties") or {}).get("vaultUri") or ""
        secret = node.properties["name"]
        outputs = {
            "vault": vault["name"],
            "vault_uri": uri,
            "secret": secret,
            "reference": names.key_vault_reference(uri, secret),
            "emulator": context.settings.emulator,
        }
        return self.observed(node, secret, {"vault": vault["name"]}, outputs)

    def _vault(self, context: Context, name: str) -> dict[str, Any]:
        return wire(context.client.mgmt("keyvault").vaults.get(context.client.resource_group, name))

    def _read(self, context: Context, node: Node, provider_id: str) -> Observed | None:
        return self._observe(context, node, self._vault(context, node.properties["vault"]))

    def _read_many(self, context: Context, nodes: list[tuple[Node, str]]) -> dict[str, Observed | None]:
        if not nodes:
            return {}
        vault = self._vault(context, nodes[0][0].properties["vault"])  # one vault: one call
        return {n.id: self._observe(context, n, vault) for n, _ in nodes}

    def _create(self, context: Context, node: Node) -> Observed:
        return self._read(context, node, node.properties["name"])  # type: ignore[return-value]

    def _update(self, context: Context, node: Node, provider_id: str, changes: Mapping[str, Any]) -> Observed:
        return self._read(context, node, provider_id)  # type: ignore[return-value]

    def _delete(self, context: Context, node: Node, provider_id: str) -> None:
        """Deletes the secret's versions (``--include-data``), and purges them where the vault allows."""
        from azure.core.exceptions import HttpResponseError, ResourceNotFoundError

        vault = self._vault(context, node.properties["vault"])
        with data_plane(context, vault) as client:
            try:
                client.begin_delete_secret(provider_id).wait()
            except ResourceNotFoundError:
                return
            except HttpResponseError as error:
                raise translate(error, "Key Vault delete_secret") from None
            if not (vault.get("properties") or {}).get("enablePurgeProtection"):
                try:
                    client.purge_deleted_secret(provider_id)
                except HttpResponseError as error:
                    raise translate(error, "Key Vault purge_deleted_secret") from None

    def inventory(self, context: Context) -> list[str]:
        """None of its own: a secret lives and dies with the vault, which is listed."""
        return []

    def runtime_entry(self, node: Node, observed: Observed) -> dict[str, Any] | None:
        return {"type": self.type, **observed.outputs}


def data_plane(context: Context, vault: Mapping[str, Any]) -> Any:
    """An azure-keyvault-secrets client of ``vault`` (as Resource Manager answered it) with skyrig's
    credentials, counted as every other call."""
    from azure.keyvault.secrets import SecretClient

    options = context.client.client_options()
    options.pop("polling_interval", None)
    uri = (vault.get("properties") or {}).get("vaultUri")
    # a fake's vault is at 127.0.0.1, not under vault.azure.net: the challenge's resource cannot match
    verify = context.settings.emulator is None
    return SecretClient(uri, context.client.credential, verify_challenge_resource=verify, **options)


def _vault_or_apply_first(context: Context, name: str) -> dict[str, Any]:
    vaults = context.client.mgmt("keyvault").vaults
    vault = vault_name(context)
    try:
        return wire(vaults.get(context.client.resource_group, vault))
    except NotFound:
        raise UserError(
            f"secret {name!r} cannot be stored: the environment's Key Vault ({vault}) does not exist yet",
            f"run skyrig apply --env {context.environment.name} first",
        ) from None


def set_value(context: Context, name: str, value: str) -> None:
    """Stores ``value`` as the new version of declared secret ``name`` in the environment's vault (the
    value is in no error: Key Vault's answers never repeat it)."""
    from azure.core.exceptions import HttpResponseError, ServiceRequestError

    env = context.environment.name
    with data_plane(context, _vault_or_apply_first(context, name)) as client:
        try:
            client.set_secret(
                names.vault_secret_name(name),
                value,
                content_type="text/plain",
                tags=names.tags(context.app, env, names.secret_id(name)),
            )
        except (HttpResponseError, ServiceRequestError) as error:
            problem = translate(error, "Key Vault set_secret")
            raise UserError(
                f"secret {name!r} was not stored: {problem}", "nothing was stored: run it again"
            ) from None


def is_set(context: Context, name: str) -> bool:
    """Whether declared secret ``name`` has an enabled version in the vault (no value is read)."""
    from azure.core.exceptions import HttpResponseError, ResourceNotFoundError

    vaults = context.client.mgmt("keyvault").vaults
    try:
        vault = wire(vaults.get(context.client.resource_group, vault_name(context)))
    except NotFound:
        return False
    with data_plane(context, vault) as client:
        try:
            versions = client.list_properties_of_secret_versions(names.vault_secret_name(name))
            return any(version.enabled for version in versions)
        except ResourceNotFoundError:
            return False
        except HttpResponseError as error:
            raise translate(error, "Key Vault list_properties_of_secret_versions") from None


VAULT = VaultType()
SECRET = SecretType()
TYPES = (VAULT, SECRET)


def expand(scope: Scope) -> list[Node]:
    """The vault (when a family that keeps a secret in it is used) and a node per declared secret."""
    if not any(scope.of_kind(kind) for kind in VAULT_KINDS):
        return []
    app, env, settings = scope.app, scope.environment.name, scope.settings
    production = scope.environment.type == "production"
    vault = names.key_vault_name(settings.subscription_id, app, env)
    nodes = [
        scope.node(
            names.KEY_VAULT_ID,
            VAULT.type,
            {
                "name": vault,
                "location": settings.location,
                "sku": "standard",
                "rbac": True,
                "soft_delete": True,
                "purge_protection": production,
                "network_access": "Enabled",
            },
            (names.RESOURCE_GROUP_ID,),
        )
    ]
    for r in scope.of_kind("secret"):
        properties = {"name": names.vault_secret_name(r.name), "vault": vault}
        nodes.append(
            scope.node(names.secret_id(r.name), SECRET.type, properties, (names.KEY_VAULT_ID,), resource=r)
        )
    return nodes
