"""Object storage: the environment's storage account (StorageV2; Standard_LRS, or Standard_ZRS in
production; HTTPS only, TLS 1.2 at least, shared key access off so that every request carries an Entra ID
token, public blob access allowed only when a bucket is public, blob versioning on when a bucket is
versioned) with one blob container per bucket (anonymous read of its blobs only when the bucket is
declared ``public``), and Azure Front Door (Standard) in front of the public ones: a profile, an endpoint,
an origin group whose one origin is the account's blob endpoint, and one route matching ``/CONTAINER/*`` of
each public bucket. A public bucket's URL is ``https://ENDPOINT-HOST/CONTAINER``: Front Door forwards the
path as it came, which is the blob's own path on the account.

Containers are named ``APP-ENV-BUCKET`` (:func:`skyrig_azure.names.container_name`) although the account
is the environment's own: Azurite, which the tests run against, has one account for every environment.

Blob versioning is a setting of the whole account in Azure: a versioned bucket turns it on for the
account; the previous versions in the other containers are deleted a day after they are made, by rules
of the account's lifecycle management policy (see docs/providers/azure.md).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from skyrig.provider import Context, Node, NotFound, Observed, ProviderError, Scope, wait_for
from skyrig_azure import names
from skyrig_azure.api import Conflict
from skyrig_azure.nodes import AzureNodeType, NamedNodeType

PUBLIC, PRIVATE = "Blob", "None"
"""A container's ``publicAccess``: anonymous read of its blobs (never listing them), or none."""
FRONT_DOOR_SKU = "Standard_AzureFrontDoor"
LIFECYCLE_ID = "objects.lifecycle"
LIFECYCLE_RULE = "skyrig-unversioned-"
"""How the names of skyrig's rules in an account's lifecycle management policy begin."""


def wire(model: Any) -> dict[str, Any]:
    """An azure-mgmt model (or None) as its JSON, with Azure's own member names."""
    if model is None:
        return {}
    return dict(model.as_dict()) if hasattr(model, "as_dict") else dict(model)


def blob_host(account: str) -> str:
    """The host name of a storage account's blob endpoint in Azure (the Front Door origin)."""
    return f"{account}.blob.core.windows.net"


class StorageAccountType(AzureNodeType):
    """The environment's storage account and its blob service's versioning."""

    type = "azure.objects.account"
    stateful = True
    identity = frozenset({"name"})
    replace_on = frozenset({"location", "kind"})
    tunable = frozenset({"sku"})
    invariant = frozenset(
        {"https_only", "min_tls", "shared_key_access", "public_access", "network_access", "versioning"}
    )

    def _body(self, context: Context, node: Node) -> dict[str, Any]:
        p = node.properties
        return {
            "location": p["location"],
            "kind": p["kind"],
            "sku": {"name": p["sku"]},
            "tags": self.tags(context, node),
            "properties": {
                **self._settings(p),
                "accessTier": "Hot",
                "defaultToOAuthAuthentication": True,
                "allowCrossTenantReplication": False,
            },
        }

    def _settings(self, p: Mapping[str, Any]) -> dict[str, Any]:
        """The account's properties skyrig guarantees, as Azure names them."""
        return {
            "supportsHttpsTrafficOnly": p["https_only"],
            "minimumTlsVersion": p["min_tls"],
            "allowSharedKeyAccess": p["shared_key_access"],
            "allowBlobPublicAccess": p["public_access"],
            "publicNetworkAccess": p["network_access"],
        }

    def _observe(self, node: Node, account: Mapping[str, Any], service: Mapping[str, Any]) -> Observed:
        found = account.get("properties") or {}
        versioning = (service.get("properties") or {}).get("isVersioningEnabled")
        properties = {
            "name": account["name"],
            "location": str(account.get("location", "")).lower(),
            "kind": account.get("kind"),
            "sku": (account.get("sku") or {}).get("name"),
            "https_only": found.get("supportsHttpsTrafficOnly", True),
            "min_tls": found.get("minimumTlsVersion") or "TLS1_0",
            # unset means allowed (Azure's reading of null)
            "shared_key_access": found.get("allowSharedKeyAccess") is not False,
            "public_access": bool(found.get("allowBlobPublicAccess")),
            "network_access": found.get("publicNetworkAccess") or "Enabled",
            "versioning": bool(versioning),
        }
        outputs = {
            "account": account["name"],
            "id": account.get("id"),
            "blob_endpoint": (found.get("primaryEndpoints") or {}).get("blob"),
        }
        return self.observed(node, account["name"], properties, outputs)

    def _read(self, context: Context, node: Node, provider_id: str) -> Observed | None:
        storage, group = context.client.mgmt("storage"), context.client.resource_group
        account = wire(storage.storage_accounts.get_properties(group, provider_id))
        service = wire(storage.blob_services.get_service_properties(group, provider_id))
        return self._observe(node, account, service)

    def _find(self, context: Context, node: Node) -> Observed | None:
        storage, group = context.client.mgmt("storage"), context.client.resource_group
        name = node.properties["name"]
        account = wire(storage.storage_accounts.get_properties(group, name))
        if not self.owned(context, account.get("tags")):
            raise ProviderError(
                f"{node.id}: the storage account {name!r} in resource group {group!r} is not this "
                "environment's (its skyrig tags say otherwise): remove it or set another resource_group"
            )
        state = (account.get("properties") or {}).get("provisioningState")
        if state not in (None, "Succeeded"):  # a create cut short while Azure was still making it

            def made() -> tuple[bool, str]:
                found = wire(storage.storage_accounts.get_properties(group, name))
                state = str((found.get("properties") or {}).get("provisioningState") or "Succeeded")
                return state in ("Succeeded", "Failed"), state

            wait_for(context, f"storage account {name}", made)
            account = wire(storage.storage_accounts.get_properties(group, name))
        service = wire(storage.blob_services.get_service_properties(group, name))
        return self._observe(node, account, service)

    def _set_versioning(self, context: Context, name: str, enabled: bool) -> None:
        storage, group = context.client.mgmt("storage"), context.client.resource_group
        body = {"properties": {"isVersioningEnabled": enabled}}
        storage.blob_services.set_service_properties(group, name, body)

    def _create(self, context: Context, node: Node) -> Observed:
        storage, group = context.client.mgmt("storage"), context.client.resource_group
        name = node.properties["name"]
        # a PUT of an account that exists (a create cut short) updates it: nothing to adopt apart
        operation = storage.storage_accounts.begin_create(group, name, self._body(context, node))
        context.client.wait(context, operation, f"storage account {name}")
        self._set_versioning(context, name, node.properties["versioning"])
        return self._read(context, node, name)  # type: ignore[return-value]

    def _update(self, context: Context, node: Node, provider_id: str, changes: Mapping[str, Any]) -> Observed:
        storage, group = context.client.mgmt("storage"), context.client.resource_group
        if changes.keys() - {"versioning"}:
            body: dict[str, Any] = {
                "tags": self.tags(context, node),
                "properties": self._settings(node.properties),
            }
            if "sku" in changes:
                body["sku"] = {"name": node.properties["sku"]}
            storage.storage_accounts.update(group, provider_id, body)
        if "versioning" in changes:
            self._set_versioning(context, provider_id, node.properties["versioning"])
        return self._read(context, node, provider_id)  # type: ignore[return-value]

    def _delete(self, context: Context, node: Node, provider_id: str) -> None:
        context.client.mgmt("storage").storage_accounts.delete(context.client.resource_group, provider_id)

    def inventory(self, context: Context) -> list[str]:
        """The environment's storage accounts, by their tags."""
        storage, group = context.client.mgmt("storage"), context.client.resource_group
        try:
            accounts = [wire(a) for a in storage.storage_accounts.list_by_resource_group(group)]
        except NotFound:  # no resource group: nothing of ours
            return []
        return sorted(a["name"] for a in accounts if self.owned(context, a.get("tags")))

    def runtime_entry(self, node: Node, observed: Observed) -> dict[str, Any] | None:
        return None


class ContainerType(NamedNodeType):
    """A bucket's blob container in the environment's storage account: the bucket's main node."""

    type = "azure.objects.container"
    stateful = True
    identity = frozenset({"name"})
    replace_on = frozenset({"account"})
    invariant = frozenset({"public_access"})

    def _observe(
        self,
        context: Context,
        node: Node,
        container: Mapping[str, Any],
        endpoint: str | None,
        host: str | None,
    ) -> Observed:
        found = container.get("properties") or {}
        name = container["name"]
        properties = {
            "name": name,
            "account": node.properties["account"],
            "public_access": found.get("publicAccess") or PRIVATE,
        }
        blob = (endpoint or f"https://{blob_host(node.properties['account'])}/").rstrip("/")
        outputs = {
            "account": node.properties["account"],
            "container": name,
            "endpoint": blob,
            "emulator": context.settings.emulator,
        }
        if node.properties["public_access"] == PUBLIC and host:
            outputs["public_url"] = f"https://{host}/{name}"
        return self.observed(node, name, properties, outputs)

    def _context(self, context: Context, nodes: list[Node]) -> tuple[str | None, str | None]:
        """The account's blob endpoint and, when one of ``nodes`` is public, the Front Door endpoint's
        host name (None where not made yet): one call each."""
        if not nodes:
            return None, None
        client = context.client
        account = nodes[0].properties["account"]
        found = wire(client.mgmt("storage").storage_accounts.get_properties(client.resource_group, account))
        endpoint = ((found.get("properties") or {}).get("primaryEndpoints") or {}).get("blob")
        host = None
        if any(n.properties["public_access"] == PUBLIC for n in nodes):
            app, env = context.app, context.environment.name
            try:
                made = client.mgmt("cdn").afd_endpoints.get(
                    client.resource_group,
                    names.front_door_name(app, env, "profile"),
                    names.front_door_name(app, env, "endpoint"),
                )
            except NotFound:  # not made yet: no public URL until it is
                pass
            else:
                host = (wire(made).get("properties") or {}).get("hostName")
        return endpoint, host

    def _listed(self, context: Context, account: str) -> dict[str, dict[str, Any]]:
        client = context.client
        listed = client.mgmt("storage").blob_containers.list(client.resource_group, account)
        return {c["name"]: c for c in map(wire, listed)}

    def _read(self, context: Context, node: Node, provider_id: str) -> Observed | None:
        client = context.client
        account = node.properties["account"]
        found = wire(client.mgmt("storage").blob_containers.get(client.resource_group, account, provider_id))
        return self._observe(context, node, found, *self._context(context, [node]))

    def _read_many(self, context: Context, nodes: list[tuple[Node, str]]) -> dict[str, Observed | None]:
        listed = self._listed(context, nodes[0][0].properties["account"]) if nodes else {}
        present = [n for n, pid in nodes if pid in listed]
        endpoint, host = self._context(context, present)
        return {
            n.id: self._observe(context, n, listed[pid], endpoint, host) if pid in listed else None
            for n, pid in nodes
        }

    def _metadata(self, context: Context, node: Node) -> dict[str, str]:
        """The ownership tags as container metadata (whose names must be C# identifiers: no hyphens)."""
        return {key.replace("-", "_"): value for key, value in self.tags(context, node).items()}

    def _create(self, context: Context, node: Node) -> Observed:
        client, p = context.client, node.properties
        body = {"properties": {"publicAccess": p["public_access"], "metadata": self._metadata(context, node)}}
        containers = client.mgmt("storage").blob_containers
        try:
            containers.create(client.resource_group, p["account"], p["name"], body)
        except Conflict:  # made by a create cut short after the call: adopted, set as asked
            containers.update(client.resource_group, p["account"], p["name"], body)
        return self._read(context, node, p["name"])  # type: ignore[return-value]

    def _update(self, context: Context, node: Node, provider_id: str, changes: Mapping[str, Any]) -> Observed:
        client, p = context.client, node.properties
        body = {"properties": {"publicAccess": p["public_access"]}}
        client.mgmt("storage").blob_containers.update(client.resource_group, p["account"], provider_id, body)
        return self._read(context, node, provider_id)  # type: ignore[return-value]

    def _delete(self, context: Context, node: Node, provider_id: str) -> None:
        client = context.client
        containers = client.mgmt("storage").blob_containers
        containers.delete(client.resource_group, node.properties["account"], provider_id)

    def inventory(self, context: Context) -> list[str]:
        """The containers of the environment's storage account that carry its metadata."""
        account = names.storage_account_name(
            context.client.subscription, context.app, context.environment.name
        )
        try:
            listed = self._listed(context, account)
        except NotFound:  # no account: no container
            return []
        ours = {
            names.TAG_APP.replace("-", "_"): context.app,
            names.TAG_ENV.replace("-", "_"): context.environment.name,
        }
        return sorted(
            name
            for name, c in listed.items()
            if all(((c.get("properties") or {}).get("metadata") or {}).get(k) == v for k, v in ours.items())
        )

    def runtime_entry(self, node: Node, observed: Observed) -> dict[str, Any] | None:
        return {
            "type": self.type,
            **observed.outputs,
            "public": node.properties["public_access"] == PUBLIC,
            "versioned": node.properties["versioned"],
        }


class LifecycleType(AzureNodeType):
    """skyrig's rules in the account's lifecycle management policy: previous versions of the blobs of
    containers not declared versioned are deleted a day after they were made (versioning is the whole
    account's in Azure). Rules of the policy that are not skyrig's are kept as they are."""

    type = "azure.objects.lifecycle"
    identity = frozenset({"account"})
    invariant = frozenset({"unversioned"})
    NAME = "default"
    """The one management policy an account has."""

    def _policy(self, context: Context, account: str) -> dict[str, Any]:
        storage, group = context.client.mgmt("storage"), context.client.resource_group
        return wire(storage.management_policies.get(group, account, self.NAME))

    @staticmethod
    def _rules(policy: Mapping[str, Any]) -> list[dict[str, Any]]:
        return list((((policy.get("properties") or {}).get("policy") or {}).get("rules")) or [])

    def _observe(self, node: Node, policy: Mapping[str, Any]) -> Observed:
        prefixes = [
            prefix
            for rule in self._rules(policy)
            if str(rule.get("name", "")).startswith(LIFECYCLE_RULE)
            and rule.get("enabled", True)
            and ((rule.get("definition") or {}).get("actions") or {}).get("version", {}).get("delete")
            for prefix in ((rule.get("definition") or {}).get("filters") or {}).get("prefixMatch") or []
        ]
        unversioned = sorted(prefix.rstrip("/") for prefix in prefixes)
        properties = {"account": node.properties["account"], "unversioned": unversioned}
        return self.observed(node, self.NAME, properties)

    def _read(self, context: Context, node: Node, provider_id: str) -> Observed | None:
        return self._observe(node, self._policy(context, node.properties["account"]))

    def _find(self, context: Context, node: Node) -> Observed | None:
        found = self._observe(node, self._policy(context, node.properties["account"]))
        return found if found.properties["unversioned"] else None

    def _put(self, context: Context, node: Node, ours: list[dict[str, Any]]) -> None:
        storage, group = context.client.mgmt("storage"), context.client.resource_group
        account = node.properties["account"]
        try:
            theirs = [
                r
                for r in self._rules(self._policy(context, account))
                if not str(r.get("name", "")).startswith(LIFECYCLE_RULE)
            ]
        except NotFound:
            theirs = []
        if theirs or ours:
            body = {"properties": {"policy": {"rules": theirs + ours}}}
            storage.management_policies.create_or_update(group, account, self.NAME, body)
        else:
            storage.management_policies.delete(group, account, self.NAME)

    def _ours(self, node: Node) -> list[dict[str, Any]]:
        prefixes = [f"{name}/" for name in node.properties["unversioned"]]
        return [
            {
                "enabled": True,
                "name": f"{LIFECYCLE_RULE}{index // 10 + 1}",
                "type": "Lifecycle",
                "definition": {
                    "actions": {"version": {"delete": {"daysAfterCreationGreaterThan": 1}}},
                    "filters": {"blobTypes": ["blockBlob"], "prefixMatch": prefixes[index : index + 10]},
                },
            }
            for index in range(0, len(prefixes), 10)  # a rule matches ten prefixes at most
        ]

    def _create(self, context: Context, node: Node) -> Observed:
        self._put(context, node, self._ours(node))
        return self._read(context, node, self.NAME)  # type: ignore[return-value]

    def _update(self, context: Context, node: Node, provider_id: str, changes: Mapping[str, Any]) -> Observed:
        return self._create(context, node)

    def _delete(self, context: Context, node: Node, provider_id: str) -> None:
        self._put(context, node, [])

    def inventory(self, context: Context) -> list[str]:
        """None of its own: the policy lives and dies with the account, which is listed."""
        return []

    def runtime_entry(self, node: Node, observed: Observed) -> dict[str, Any] | None:
        return None


class _FrontDoorPart(AzureNodeType):
    """A part of the environment's Front Door profile, found by its name (the profile by its tags too);
    made, changed (a PUT of the whole body) and deleted through long-running operations."""

    group: str
    """The operations group of the azure-mgmt-cdn client (``afd_endpoints``, ...)."""
    what: str
    identity = frozenset({"name"})

    def _parents(self, node: Node) -> tuple[str, ...]:
        """The names of the resources it is under (after the resource group)."""
        return (node.properties["profile"],)

    def _operations(self, context: Context) -> Any:
        return getattr(context.client.mgmt("cdn"), self.group)

    def _body(self, context: Context, node: Node) -> dict[str, Any]:
        raise NotImplementedError

    def _observe(self, context: Context, node: Node, found: Mapping[str, Any]) -> Observed:
        raise NotImplementedError

    def _read(self, context: Context, node: Node, provider_id: str) -> Observed | None:
        group = context.client.resource_group
        found = wire(self._operations(context).get(group, *self._parents(node), provider_id))
        return self._observe(context, node, found)

    def _find(self, context: Context, node: Node) -> Observed | None:
        return self._read(context, node, node.properties["name"])

    def _put(self, context: Context, node: Node, name: str) -> Observed:
        group = context.client.resource_group
        operation = self._operations(context).begin_create(
            group, *self._parents(node), name, self._body(context, node)
        )
        context.client.wait(context, operation, f"Front Door {self.what} {name}")
        return self._read(context, node, name)  # type: ignore[return-value]

    def _create(self, context: Context, node: Node) -> Observed:
        # a PUT is idempotent: a create cut short is finished by the same request
        return self._put(context, node, node.properties["name"])

    def _update(self, context: Context, node: Node, provider_id: str, changes: Mapping[str, Any]) -> Observed:
        return self._put(context, node, provider_id)

    def _delete(self, context: Context, node: Node, provider_id: str) -> None:
        group = context.client.resource_group
        operation = self._operations(context).begin_delete(group, *self._parents(node), provider_id)
        context.client.wait(context, operation, f"deleting Front Door {self.what} {provider_id}")

    def inventory(self, context: Context) -> list[str]:
        """None of its own: it lives and dies with the profile, which is listed."""
        return []

    def runtime_entry(self, node: Node, observed: Observed) -> dict[str, Any] | None:
        return None


class FrontDoorProfileType(_FrontDoorPart):
    """The environment's Azure Front Door (Standard) profile."""

    type = "azure.objects.cdn_profile"
    group, what = "profiles", "profile"
    tunable = frozenset({"sku"})

    def _parents(self, node: Node) -> tuple[str, ...]:
        return ()

    def _body(self, context: Context, node: Node) -> dict[str, Any]:
        return {
            "location": "global",
            "sku": {"name": node.properties["sku"]},
            "tags": self.tags(context, node),
            "properties": {"originResponseTimeoutSeconds": 60},
        }

    def _observe(self, context: Context, node: Node, found: Mapping[str, Any]) -> Observed:
        properties = {"name": found["name"], "sku": (found.get("sku") or {}).get("name")}
        return self.observed(node, found["name"], properties, {"id": found.get("id")})

    def _find(self, context: Context, node: Node) -> Observed | None:
        group, name = context.client.resource_group, node.properties["name"]
        found = wire(self._operations(context).get(group, name))
        if not self.owned(context, found.get("tags")):
            raise ProviderError(
                f"{node.id}: the Front Door profile {name!r} in resource group {group!r} is not this "
                "environment's (its skyrig tags say otherwise): remove it or set another resource_group"
            )
        return self._observe(context, node, found)

    def _update(self, context: Context, node: Node, provider_id: str, changes: Mapping[str, Any]) -> Observed:
        # the tier of a profile is changed by a migration, not a PUT: only its tags are ever updated
        group = context.client.resource_group
        body = {"tags": self.tags(context, node)}
        operation = self._operations(context).begin_update(group, provider_id, body)
        context.client.wait(context, operation, f"Front Door profile {provider_id}")
        return self._read(context, node, provider_id)  # type: ignore[return-value]

    def inventory(self, context: Context) -> list[str]:
        """The environment's Front Door profiles, by their tags."""
        group = context.client.resource_group
        try:
            listed = [wire(p) for p in self._operations(context).list_by_resource_group(group)]
        except NotFound:  # no resource group: nothing of ours
            return []
        return sorted(p["name"] for p in listed if self.owned(context, p.get("tags")))


class FrontDoorEndpointType(_FrontDoorPart):
    """The Front Door endpoint public buckets are served from (``NAME-HASH.z01.azurefd.net``)."""

    type = "azure.objects.cdn_endpoint"
    group, what = "afd_endpoints", "endpoint"
    replace_on = frozenset({"profile"})
    invariant = frozenset({"enabled"})

    def _body(self, context: Context, node: Node) -> dict[str, Any]:
        return {
            "location": "global",
            "tags": self.tags(context, node),
            "properties": {"enabledState": node.properties["enabled"]},
        }

    def _observe(self, context: Context, node: Node, found: Mapping[str, Any]) -> Observed:
        props = found.get("properties") or {}
        properties = {
            "name": found["name"],
            "profile": node.properties["profile"],
            "enabled": props.get("enabledState") or "Enabled",
        }
        return self.observed(node, found["name"], properties, {"host_name": props.get("hostName")})


class FrontDoorOriginGroupType(_FrontDoorPart):
    """The origin group of the storage account's blob endpoint: one origin, so no health probes (Azure's
    advice for a single origin: they would only add requests)."""

    type = "azure.objects.cdn_origin_group"
    group, what = "afd_origin_groups", "origin group"
    replace_on = frozenset({"profile"})

    def _body(self, context: Context, node: Node) -> dict[str, Any]:
        return {
            "properties": {
                "loadBalancingSettings": {
                    "sampleSize": 4,
                    "successfulSamplesRequired": 3,
                    "additionalLatencyInMilliseconds": 50,
                },
                "sessionAffinityState": "Disabled",
            }
        }

    def _observe(self, context: Context, node: Node, found: Mapping[str, Any]) -> Observed:
        properties = {"name": found["name"], "profile": node.properties["profile"]}
        return self.observed(node, found["name"], properties, {"id": found.get("id")})


class FrontDoorOriginType(_FrontDoorPart):
    """The origin: the storage account's blob endpoint, over HTTPS, with the blob host as the Host header
    (Blob Storage answers only its own host name) and its certificate's name checked."""

    type = "azure.objects.cdn_origin"
    group, what = "afd_origins", "origin"
    replace_on = frozenset({"profile", "origin_group"})
    invariant = frozenset({"host", "host_header", "enabled", "certificate_check"})

    def _parents(self, node: Node) -> tuple[str, ...]:
        return (node.properties["profile"], node.properties["origin_group"])

    def _body(self, context: Context, node: Node) -> dict[str, Any]:
        p = node.properties
        return {
            "properties": {
                "hostName": p["host"],
                "originHostHeader": p["host_header"],
                "httpPort": 80,
                "httpsPort": 443,
                "priority": 1,
                "weight": 1000,
                "enabledState": p["enabled"],
                "enforceCertificateNameCheck": p["certificate_check"],
            }
        }

    def _observe(self, context: Context, node: Node, found: Mapping[str, Any]) -> Observed:
        props = found.get("properties") or {}
        properties = {
            "name": found["name"],
            "profile": node.properties["profile"],
            "origin_group": node.properties["origin_group"],
            "host": props.get("hostName"),
            "host_header": props.get("originHostHeader"),
            "enabled": props.get("enabledState") or "Enabled",
            "certificate_check": props.get("enforceCertificateNameCheck", True),
        }
        return self.observed(node, found["name"], properties)


class FrontDoorRouteType(_FrontDoorPart):
    """The route of the endpoint: ``/CONTAINER/*`` of every public bucket to the origin group, HTTPS to
    the origin, HTTP redirected to HTTPS, on the endpoint's own domain, cached ignoring query strings."""

    type = "azure.objects.cdn_route"
    group, what = "routes", "route"
    replace_on = frozenset({"profile", "endpoint"})
    invariant = frozenset(
        {"patterns", "origin_group", "protocols", "https_redirect", "forwarding", "default_domain", "enabled"}
    )

    def _parents(self, node: Node) -> tuple[str, ...]:
        return (node.properties["profile"], node.properties["endpoint"])

    def _body(self, context: Context, node: Node) -> dict[str, Any]:
        p = node.properties
        group = context.client.resource_id(
            "Microsoft.Cdn/profiles/originGroups", p["profile"], p["origin_group"]
        )
        return {
            "properties": {
                "originGroup": {"id": group},
                "patternsToMatch": list(p["patterns"]),
                "supportedProtocols": list(p["protocols"]),
                "httpsRedirect": p["https_redirect"],
                "forwardingProtocol": p["forwarding"],
                "linkToDefaultDomain": p["default_domain"],
                "enabledState": p["enabled"],
                "cacheConfiguration": {"queryStringCachingBehavior": "IgnoreQueryString"},
            }
        }

    def _observe(self, context: Context, node: Node, found: Mapping[str, Any]) -> Observed:
        props = found.get("properties") or {}
        group_id = str((props.get("originGroup") or {}).get("id") or "")
        properties = {
            "name": found["name"],
            "profile": node.properties["profile"],
            "endpoint": node.properties["endpoint"],
            "origin_group": group_id.rstrip("/").rpartition("/")[2] or None,
            "patterns": sorted(props.get("patternsToMatch") or []),
            "protocols": sorted(props.get("supportedProtocols") or []),
            "https_redirect": props.get("httpsRedirect") or "Disabled",
            "forwarding": props.get("forwardingProtocol") or "MatchRequest",
            "default_domain": props.get("linkToDefaultDomain") or "Disabled",
            "enabled": props.get("enabledState") or "Enabled",
        }
        return self.observed(node, found["name"], properties)


ACCOUNT = StorageAccountType()
CONTAINER = ContainerType()
LIFECYCLE = LifecycleType()
CDN_PROFILE = FrontDoorProfileType()
CDN_ENDPOINT = FrontDoorEndpointType()
CDN_ORIGIN_GROUP = FrontDoorOriginGroupType()
CDN_ORIGIN = FrontDoorOriginType()
CDN_ROUTE = FrontDoorRouteType()
TYPES = (ACCOUNT, CONTAINER, LIFECYCLE, CDN_PROFILE, CDN_ENDPOINT, CDN_ORIGIN_GROUP, CDN_ORIGIN, CDN_ROUTE)


def expand(scope: Scope) -> list[Node]:
    """The storage account (when any bucket is declared), a container per bucket, and where a bucket is
    public the Front Door parts serving it: the endpoint before the public containers (whose URL is on
    its host), the route after the origin."""
    buckets = list(scope.of_kind("bucket"))
    if not buckets:
        return []
    app, env, settings = scope.app, scope.environment.name, scope.settings
    production = scope.environment.type == "production"
    account = names.storage_account_name(settings.subscription_id, app, env)
    public = sorted(r.name for r in buckets if r.public)
    nodes = [
        scope.node(
            names.STORAGE_ACCOUNT_ID,
            ACCOUNT.type,
            {
                "name": account,
                "location": settings.location,
                "kind": "StorageV2",
                "sku": "Standard_ZRS" if production else "Standard_LRS",
                "https_only": True,
                "min_tls": "TLS1_2",
                "shared_key_access": False,
                "public_access": bool(public),
                "network_access": "Enabled",
                "versioning": any(r.versioned for r in buckets),
            },
            (names.RESOURCE_GROUP_ID,),
        )
    ]
    part = {
        p: names.front_door_name(app, env, p) for p in ("profile", "endpoint", "origins", "blob", "buckets")
    }
    if public:
        nodes += [
            scope.node(
                names.FRONT_DOOR_PROFILE_ID,
                CDN_PROFILE.type,
                {"name": part["profile"], "sku": FRONT_DOOR_SKU},
                (names.RESOURCE_GROUP_ID,),
            ),
            scope.node(
                names.FRONT_DOOR_ENDPOINT_ID,
                CDN_ENDPOINT.type,
                {"name": part["endpoint"], "profile": part["profile"], "enabled": "Enabled"},
                (names.FRONT_DOOR_PROFILE_ID,),
            ),
            scope.node(
                names.FRONT_DOOR_ORIGIN_GROUP_ID,
                CDN_ORIGIN_GROUP.type,
                {"name": part["origins"], "profile": part["profile"]},
                (names.FRONT_DOOR_PROFILE_ID,),
            ),
            scope.node(
                names.FRONT_DOOR_ORIGIN_ID,
                CDN_ORIGIN.type,
                {
                    "name": part["blob"],
                    "profile": part["profile"],
                    "origin_group": part["origins"],
                    "host": blob_host(account),
                    "host_header": blob_host(account),
                    "enabled": "Enabled",
                    "certificate_check": True,
                },
                (names.FRONT_DOOR_ORIGIN_GROUP_ID, names.STORAGE_ACCOUNT_ID),
            ),
        ]
    for r in buckets:
        after = [names.STORAGE_ACCOUNT_ID] + ([names.FRONT_DOOR_ENDPOINT_ID] if r.public else [])
        properties = {
            "name": names.container_name(app, env, r.name),
            "account": account,
            "public_access": PUBLIC if r.public else PRIVATE,
            "versioned": r.versioned,
        }
        nodes.append(scope.node(names.container_id(r.name), CONTAINER.type, properties, after, resource=r))
    unversioned = sorted(names.container_name(app, env, r.name) for r in buckets if not r.versioned)
    if unversioned and len(unversioned) < len(buckets):  # versioning on, for some containers only
        lifecycle = {"account": account, "unversioned": unversioned}
        nodes.append(scope.node(LIFECYCLE_ID, LIFECYCLE.type, lifecycle, (names.STORAGE_ACCOUNT_ID,)))
    if public:
        route = {
            "name": part["buckets"],
            "profile": part["profile"],
            "endpoint": part["endpoint"],
            "origin_group": part["origins"],
            "patterns": sorted(f"/{names.container_name(app, env, b)}/*" for b in public),
            "protocols": ["Http", "Https"],
            "https_redirect": "Enabled",
            "forwarding": "HttpsOnly",
            "default_domain": "Enabled",
            "enabled": "Enabled",
        }
        after = (names.FRONT_DOOR_ENDPOINT_ID, names.FRONT_DOOR_ORIGIN_ID)
        nodes.append(scope.node(names.FRONT_DOOR_ROUTE_ID, CDN_ROUTE.type, route, after))
    return nodes
