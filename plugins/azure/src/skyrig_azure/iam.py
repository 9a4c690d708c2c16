"""Identity and access: a user-assigned managed identity per service, and the Azure role assignments least
privilege needs, from the model: what each service's code does, on exactly the resources it does it to.

A role assignment is an extension resource on its target's scope (a topic, a subscription, a blob
container, a Key Vault secret): one node per (service, target, role), after the target's node. Its name is
a GUID derived from scope, role and the identity's principal (uuid5), so that a create interrupted at any
point is found again, and an identity made anew (a new principal) gets assignments of its own. What a
service gets:

- Azure Service Bus Data Sender on each topic it publishes to; Data Receiver on each subscription it
  consumes (its dead-letter queue is part of the subscription).
- Storage Blob Data Reader on each bucket's container it only reads or lists, Contributor where it uploads
  or removes; signed URLs need a user delegation key, which Azure grants only at the storage account
  (Storage Blob Delegator there: it makes keys, and reads nothing) beside Contributor on the container (a
  SAS can grant no more than its signer holds).
- Key Vault Secrets User on each declared secret it reads, on the PostgreSQL administrator's password when
  it uses a database (the data plane reads it), and on the cron signing key when it serves cron jobs. A
  declared secret exists in Azure only once ``skyrig secret set`` wrote a value: until then its grant is
  pending (there is nothing to read), and the first apply after the value is set makes it.
- Caches: none here (the cache family gives each service a Redis data access policy assignment).

A role added to a service's identity in the portal, within the environment's resource group, is an
invariant drift of the identity (``other_assignments``): the next apply takes it away.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

from skyrig.provider import Context, Node, NotFound, Observed, ProviderError, Scope, TransientError
from skyrig_azure import names
from skyrig_azure.api import Conflict
from skyrig_azure.network import resource_group
from skyrig_azure.nodes import AzureNodeType

SENDER = "69a216fc-b8fb-44d8-bc22-1f3c2cd27a39"
RECEIVER = "4f6d3b9b-027b-4f4c-9142-0e5a2a2247e0"
BLOB_READER = "2a2b9908-6ea1-4ae2-8e65-a410df84e7d1"
BLOB_CONTRIBUTOR = "ba92f5b4-2d11-453d-a403-e96b0029c9fe"
BLOB_DELEGATOR = "db58b8e5-c6ad-4a2a-8342-4190687cbf4a"
SECRETS_USER = "4633458b-17de-408a-b874-0445c86b69e6"
ACR_PULL = "7f951dda-4ed3-4680-a7ca-43fe172d538d"

ROLES = {
    SENDER: ("sender", "Azure Service Bus Data Sender"),
    RECEIVER: ("receiver", "Azure Service Bus Data Receiver"),
    BLOB_READER: ("blob-reader", "Storage Blob Data Reader"),
    BLOB_CONTRIBUTOR: ("blob-contributor", "Storage Blob Data Contributor"),
    BLOB_DELEGATOR: ("blob-delegator", "Storage Blob Delegator"),
    SECRETS_USER: ("secrets-user", "Key Vault Secrets User"),
    ACR_PULL: ("acr-pull", "AcrPull"),
}
"""Built-in role definition id -> (short name in node ids, Azure's name)."""

NAMESPACE = uuid.UUID("5b7f0f7e-3a43-5c1e-9f0b-736b79726967")
"""The uuid5 namespace of skyrig's role assignment names."""


def bucket_roles(operations: list[str]) -> list[str]:
    """The container roles of a service's operations on a bucket: Reader where it only downloads or
    lists, Contributor where it uploads, removes or signs URLs (a SAS grants at most what its signer
    holds); none for public URLs alone."""
    wanted = set(operations)
    if wanted & {"upload", "remove", "signed_url"}:
        return [BLOB_CONTRIBUTOR]
    if wanted & {"download", "list", "versions"}:
        return [BLOB_READER]
    return []


def assignment_id(service: str, target: str, role: str) -> str:
    """The node id of ``service``'s role ``role`` on ``target`` (``topic/events``):
    ``iam.role/SERVICE/TARGET/ROLE``."""
    return f"iam.role/{service}/{target}/{ROLES[role][0]}"


def assignment_name(scope: str, role: str, principal: str) -> str:
    """The role assignment's name: a GUID of its scope, role and principal (the same on every run)."""
    return str(uuid.uuid5(NAMESPACE, f"{scope.lower()}\0{role.lower()}\0{principal.lower()}"))


def role_definition_id(subscription: str, role: str) -> str:
    """The full id of built-in role ``role`` in ``subscription``."""
    return f"/subscriptions/{subscription}/providers/Microsoft.Authorization/roleDefinitions/{role}"


def _arm(settings: Any, group: str, namespace_type: str, *parts: str) -> str:
    namespace, *kinds = namespace_type.split("/")
    path = "/".join(f"{kind}/{name}" for kind, name in zip(kinds, parts, strict=True))
    return f"/subscriptions/{settings.subscription_id}/resourceGroups/{group}/providers/{namespace}/{path}"


def grants(scope: Scope, service: str) -> list[dict[str, Any]]:
    """``service``'s role assignments: what the model says it does, and no more. Each is ``{"target",
    "scope", "role", "depends"}``: the target's ``kind/name``, its ARM id, the built-in role's id, and the
    nodes it comes after."""
    app, env, settings = scope.app, scope.environment.name, scope.settings
    group = settings.resource_group or names.resource_group_name(app, env)
    sub = settings.subscription_id
    found: dict[tuple[str, str], dict[str, Any]] = {}

    def grant(
        target: str,
        arm_scope: str,
        role: str,
        *depends: str,
        secret: str | None = None,
        registry: str | None = None,
    ) -> None:
        entry = found.setdefault(
            (target, role), {"target": target, "scope": arm_scope, "role": role, "depends": set()}
        )
        entry["depends"].update(depends)
        if secret is not None:
            entry["secret"] = secret
        if registry is not None:
            entry["registry"] = registry

    namespace = names.servicebus_namespace_name(sub, app, env)
    account = names.storage_account_name(sub, app, env)
    vault = names.key_vault_name(sub, app, env)

    def vault_secret(secret: str) -> str:
        return _arm(settings, group, "Microsoft.KeyVault/vaults/secrets", vault, secret)

    for use in scope.model.uses_by(service):
        if use.kind not in scope.kinds:
            continue  # another provider's resource: its access is that provider's business
        target = f"{use.kind}/{use.resource}"
        if use.kind == "topic" and "publish" in use.operations:
            arm = _arm(
                settings,
                group,
                "Microsoft.ServiceBus/namespaces/topics",
                namespace,
                names.topic_name(use.resource),
            )
            grant(target, arm, SENDER, f"@{target}")
        elif use.kind == "bucket":
            container = names.container_name(app, env, use.resource)
            arm = _arm(
                settings,
                group,
                "Microsoft.Storage/storageAccounts/blobServices/containers",
                account,
                "default",
                container,
            )
            for role in bucket_roles(use.operations):
                grant(target, arm, role, f"@{target}")
            if "signed_url" in use.operations:
                arm = _arm(settings, group, "Microsoft.Storage/storageAccounts", account)
                grant("account", arm, BLOB_DELEGATOR, names.STORAGE_ACCOUNT_ID)
        elif use.kind == "secret" and "read" in use.operations:
            arm = vault_secret(names.vault_secret_name(use.resource))
            grant(target, arm, SECRETS_USER, f"@{target}", secret=use.resource)
        elif use.kind == "sql_database" and use.operations:
            grant("sql/admin", vault_secret(names.SQL_ADMIN_SECRET), SECRETS_USER, names.SQL_SERVER_ID)
    topics = {t.name: t for t in scope.model.of_kind("topic")}
    for subscription in scope.of_kind("subscription"):
        if subscription.service != service or subscription.topic not in topics:
            continue
        target = f"subscription/{subscription.name}"
        arm = _arm(
            settings,
            group,
            "Microsoft.ServiceBus/namespaces/topics/subscriptions",
            namespace,
            names.topic_name(subscription.topic),
            names.subscription_name(subscription.name),
        )
        grant(target, arm, RECEIVER, f"@{target}")
    registry = acr_registry(settings.image)
    if registry is not None:  # the web app pulls the image with the service's identity
        grant(f"registry/{registry}", "", ACR_PULL, names.RESOURCE_GROUP_ID, registry=registry)
    if any(job.service == service for job in scope.of_kind("cron_job")):
        grant("cron/signing-key", vault_secret(names.SIGNING_KEY_SECRET), SECRETS_USER, names.SIGNING_KEY_ID)
    return [
        {**entry, "depends": sorted(entry["depends"])}
        for _, entry in sorted(found.items(), key=lambda item: (item[0][0], ROLES[item[0][1]][0]))
    ]


# -- Azure calls ---------------------------------------------------------------------------------------------

ACR_SUFFIX = ".azurecr.io"
REGISTRIES = "Microsoft.ContainerRegistry/registries"


def acr_registry(image: str | None) -> str | None:
    """The Azure Container Registry an image is pulled from (``NAME`` of ``NAME.azurecr.io/...``), if any."""
    host = (image or "").split("/", 1)[0].lower()
    return host.removesuffix(ACR_SUFFIX) if host.endswith(ACR_SUFFIX) and "/" in (image or "") else None


def registry_id(context: Context, registry: str) -> str | None:
    """The ARM id of container registry ``registry`` in the subscription (whatever its resource group),
    or None: one lookup per command."""
    known: dict[str, str | None] = context.client.__dict__.setdefault("_skyrig_registries", {})
    if registry not in known:
        # ARM's $filter takes resourceType alone or with substringof, not with name eq: the name is
        # compared here (a subscription holds few registries)
        listed = context.client.mgmt("resource").resources.list(filter=f"resourceType eq '{REGISTRIES}'")
        found = [r for r in listed if str(r.name).lower() == registry.lower()]
        known[registry] = str(found[0].id) if found else None
    return known[registry]


def _identities(context: Context) -> dict[str, Any]:
    """The user-assigned identities of the resource group, by lower-cased name (one call)."""
    msi = context.client.mgmt("msi").user_assigned_identities
    try:
        return {str(i.name).lower(): i for i in msi.list_by_resource_group(resource_group(context))}
    except NotFound:
        return {}


def _assignments(context: Context) -> list[Any]:
    """The role assignments at, above and below the resource group (one call)."""
    assignments = context.client.mgmt("authorization").role_assignments
    try:
        return list(assignments.list_for_resource_group(resource_group(context)))
    except NotFound:
        return []


def _role_of(assignment: Any) -> str:
    return str(assignment.role_definition_id).rsplit("/", 1)[-1].lower()


def _same(a: str | None, b: str | None) -> bool:
    return str(a or "").lower() == str(b or "").lower()


class IdentityType(AzureNodeType):
    """A service's user-assigned managed identity: what its web app and jobs run as, and the principal
    its role assignments name. ``grants`` are the (scope, role) pairs the model gives it; any other role
    assignment of its principal in the resource group (added in the portal) is ``other_assignments``, an
    invariant: taken away by the next apply."""

    type = "azure.iam.identity"
    identity = frozenset({"name"})
    replace_on = frozenset({"name"})
    invariant = frozenset({"other_assignments"})

    def _others(self, node: Node, identity: Any, assignments: list[Any]) -> list[Any]:
        allowed = {(s.lower(), r.lower()) for s, r in node.properties.get("grants", [])}
        registries = {s.removeprefix("registry:") for s, _ in allowed if s.startswith("registry:")}

        def granted(a: Any) -> bool:
            scope, role = str(a.scope).lower(), _role_of(a)
            if (scope, role) in allowed:
                return True
            kind, _, name = scope.rpartition("/")
            return role == ACR_PULL and kind.endswith("/" + REGISTRIES.lower()) and name in registries

        return [a for a in assignments if _same(a.principal_id, identity.principal_id) and not granted(a)]

    def _observe(self, node: Node, identity: Any, assignments: list[Any]) -> Observed:
        others = sorted(
            f"{ROLES.get(_role_of(a), (None, _role_of(a)))[1]} on {a.scope}"
            for a in self._others(node, identity, assignments)
        )
        return self.observed(
            node,
            str(identity.id),
            {"name": identity.name, "other_assignments": others},
            {
                "id": identity.id,
                "name": identity.name,
                "principal_id": identity.principal_id,
                "client_id": identity.client_id,
            },
        )

    def _read(self, context: Context, node: Node, provider_id: str) -> Observed | None:
        msi = context.client.mgmt("msi").user_assigned_identities
        identity = msi.get(resource_group(context), provider_id.rsplit("/", 1)[-1])
        return self._observe(node, identity, _assignments(context))

    def _read_many(self, context: Context, nodes: list[tuple[Node, str]]) -> dict[str, Observed | None]:
        listed = _identities(context)
        assignments = _assignments(context) if listed else []
        found: dict[str, Observed | None] = {}
        for node, provider_id in nodes:
            identity = listed.get(provider_id.rsplit("/", 1)[-1].lower())
            found[node.id] = None if identity is None else self._observe(node, identity, assignments)
        return found

    def _find(self, context: Context, node: Node) -> Observed | None:
        return self._find_many(context, [node])[node.id]

    def _find_many(self, context: Context, nodes: list[Node]) -> dict[str, Observed | None]:
        listed = _identities(context)
        assignments = _assignments(context) if listed else []
        found: dict[str, Observed | None] = {}
        for node in nodes:
            identity = listed.get(node.properties["name"].lower())
            owned = identity is not None and self.owned(context, identity.tags)
            found[node.id] = self._observe(node, identity, assignments) if owned else None
        return found

    def _create(self, context: Context, node: Node) -> Observed:
        msi = context.client.mgmt("msi").user_assigned_identities
        body = {"location": context.client.location, "tags": self.tags(context, node)}
        identity = msi.create_or_update(resource_group(context), node.properties["name"], body)
        return self._observe(node, identity, [])

    def _update(self, context: Context, node: Node, provider_id: str, changes: Mapping[str, Any]) -> Observed:
        msi = context.client.mgmt("msi").user_assigned_identities
        identity = msi.get(resource_group(context), provider_id.rsplit("/", 1)[-1])
        assignments = context.client.mgmt("authorization").role_assignments
        for other in self._others(node, identity, _assignments(context)):
            assignments.delete_by_id(str(other.id))
        return self._read(context, node, provider_id)  # type: ignore[return-value]

    def _delete(self, context: Context, node: Node, provider_id: str) -> None:
        msi = context.client.mgmt("msi").user_assigned_identities
        msi.delete(resource_group(context), provider_id.rsplit("/", 1)[-1])

    def inventory(self, context: Context) -> list[str]:
        return sorted(str(i.id) for i in _identities(context).values() if self.owned(context, i.tags))


class RoleAssignmentType(AzureNodeType):
    """One built-in role of one service's identity on one scope. Role assignments cannot change: a
    different scope, role or identity is another assignment (replaced). One deleted in the portal is made
    again; one whose identity was made anew (another principal) reads as gone, and is made for the new
    principal. AcrPull names its registry (``registry``) rather than a scope: skyrig does not make the
    registry, and finds it in the subscription by name."""

    type = "azure.iam.role_assignment"
    replace_on = frozenset({"scope", "registry", "role", "identity"})

    def _scope(self, context: Context, node: Node) -> str | None:
        """The ARM id the assignment is on (a registry's: looked up, None when it is not found)."""
        p = node.properties
        return registry_id(context, p["registry"]) if "registry" in p else p["scope"]

    def _observe(self, node: Node, assignment: Any) -> Observed:
        found: dict[str, Any] = {"role": _role_of(assignment)}
        if "scope" in node.properties:
            scope = str(assignment.scope)
            found["scope"] = node.properties["scope"] if _same(scope, node.properties["scope"]) else scope
        return self.observed(
            node,
            str(assignment.id),
            found,
            {"id": assignment.id, "scope": assignment.scope, "principal_id": assignment.principal_id},
        )

    def _match(
        self, node: Node, scope: str | None, identity: Any | None, assignments: list[Any]
    ) -> Any | None:
        """The assignment of ``node``'s role on ``scope`` to the identity's current principal."""
        if identity is None or scope is None:
            return None
        for assignment in assignments:
            if (
                _same(assignment.scope, scope)
                and _role_of(assignment) == node.properties["role"].lower()
                and _same(assignment.principal_id, identity.principal_id)
            ):
                return assignment
        return None

    def _listed(self, context: Context, nodes: list[Node], identities: dict[str, Any]) -> list[Any]:
        """The role assignments the nodes may be: the resource group's (one call), and those of each
        registry outside it (one call per registry)."""
        if not identities:
            return []
        found = _assignments(context)
        group = context.client.group_id().lower() + "/"
        registries = {self._scope(context, n) for n in nodes if "registry" in n.properties} - {None}
        for registry in sorted(r for r in registries if r and not r.lower().startswith(group)):
            assignments = context.client.mgmt("authorization").role_assignments
            found += list(assignments.list_for_scope(registry))
        return found

    def _read(self, context: Context, node: Node, provider_id: str) -> Observed | None:
        return self._read_many(context, [(node, provider_id)])[node.id]

    def _read_many(self, context: Context, nodes: list[tuple[Node, str]]) -> dict[str, Observed | None]:
        identities = _identities(context)
        by_id = {str(a.id).lower(): a for a in self._listed(context, [n for n, _ in nodes], identities)}
        found: dict[str, Observed | None] = {}
        for node, provider_id in nodes:
            identity = identities.get(node.properties["identity"].lower())
            assignment = by_id.get(provider_id.lower())
            current = identity is not None and assignment is not None
            if current and not _same(assignment.principal_id, identity.principal_id):
                current = False  # the identity was made anew: this one names a principal that is gone
            if current:
                found[node.id] = self._observe(node, assignment)
            else:
                found[node.id] = self._pending(context, node, identity)
        return found

    def _pending(self, context: Context, node: Node, identity: Any | None) -> Observed | None:
        """A grant with nothing to grant on yet, as asked: a declared secret that holds no value (Azure
        has no secret to scope a role to until ``skyrig secret set`` writes one: the next apply after it
        makes the assignment), or an image registry this subscription does not hold (AcrPull is then
        the registry owner's to give). None for anything else."""
        p = node.properties
        if identity is None:
            return None
        if "registry" in p:
            if registry_id(context, p["registry"]) is not None:
                return None
            subscription = context.client.subscription
            why = f"registry {p['registry']} is not in subscription {subscription}: give AcrPull there"
            return self.observed(node, f"registry/{p['registry']}", {}, {"pending": why})
        secret = p.get("secret")
        if secret is None:
            return None
        from skyrig_azure.secrets import is_set

        if is_set(context, secret):
            return None
        name = assignment_name(p["scope"], p["role"], str(identity.principal_id))
        provider_id = f"{p['scope']}/providers/Microsoft.Authorization/roleAssignments/{name}"
        return self.observed(node, provider_id, {}, {"pending": f"secret {secret} has no value yet"})

    def _find(self, context: Context, node: Node) -> Observed | None:
        return self._find_many(context, [node])[node.id]

    def _find_many(self, context: Context, nodes: list[Node]) -> dict[str, Observed | None]:
        identities = _identities(context)
        assignments = self._listed(context, nodes, identities)
        found: dict[str, Observed | None] = {}
        for node in nodes:
            identity = identities.get(node.properties["identity"].lower())
            match = self._match(node, self._scope(context, node), identity, assignments)
            # a pending grant is found as it was made: as asked, with nothing in Azure
            found[node.id] = (
                self._pending(context, node, identity) if match is None else self._observe(node, match)
            )
        return found

    def _create(self, context: Context, node: Node) -> Observed:
        from azure.mgmt.authorization.models import RoleAssignmentCreateParameters

        client, p = context.client, node.properties
        identity = client.mgmt("msi").user_assigned_identities.get(resource_group(context), p["identity"])
        scope = self._scope(context, node)
        if scope is None:
            return self._pending(context, node, identity) or self._fail(node)
        principal = str(identity.principal_id)
        body = RoleAssignmentCreateParameters(
            role_definition_id=role_definition_id(client.subscription, p["role"]),
            principal_id=principal,
            principal_type="ServicePrincipal",  # a new identity: no wait for Entra ID's replication
            description=f"skyrig {context.app}/{context.environment.name} {node.id}",
        )
        assignments = client.mgmt("authorization").role_assignments
        try:
            made = assignments.create(scope, assignment_name(scope, p["role"], principal), body)
        except NotFound:
            pending = self._pending(context, node, identity)
            if pending is None:
                raise
            return pending
        except Conflict as error:
            if "RoleAssignmentExists" not in str(error):
                raise
            # made under another name (by hand, or before): that one is this node's
            match = self._match(node, scope, identity, self._listed(context, [node], {"": identity}))
            if match is None:
                raise TransientError(f"{node.id}: {error}") from None
            return self._observe(node, match)
        except ProviderError as error:
            if "PrincipalNotFound" in str(error):  # Entra ID has not seen the new principal yet
                raise TransientError(f"{node.id}: {error}") from None
            raise
        return self._observe(node, made)

    @staticmethod
    def _fail(node: Node) -> Observed:
        raise TransientError(f"{node.id}: its registry is not visible yet")

    def _update(self, context: Context, node: Node, provider_id: str, changes: Mapping[str, Any]) -> Observed:
        return self._read(context, node, provider_id) or self._create(context, node)

    def _delete(self, context: Context, node: Node, provider_id: str) -> None:
        if "/providers/Microsoft.Authorization/roleAssignments/" not in provider_id:
            return  # a pending grant: nothing was made
        context.client.mgmt("authorization").role_assignments.delete_by_id(provider_id)

    def inventory(self, context: Context) -> list[str]:
        identities = _identities(context)
        principals = {
            str(i.principal_id).lower() for i in identities.values() if IDENTITY.owned(context, i.tags)
        }
        if not principals:
            return []
        return sorted(str(a.id) for a in _assignments(context) if str(a.principal_id).lower() in principals)


IDENTITY = IdentityType()
ROLE_ASSIGNMENT = RoleAssignmentType()
TYPES = (IDENTITY, ROLE_ASSIGNMENT)


def expand(scope: Scope) -> list[Node]:
    """A managed identity per service, and its role assignments."""
    app, env = scope.app, scope.environment.name
    nodes: list[Node] = []
    for service in sorted(scope.of_kind("service"), key=lambda s: s.name):
        name = names.identity_name(app, env, service.name)
        found = grants(scope, service.name)
        nodes.append(
            scope.node(
                names.identity_id(service.name),
                IDENTITY.type,
                {
                    "name": name,
                    "grants": [[g["scope"] or f"registry:{g['registry']}", g["role"]] for g in found],
                    "other_assignments": [],
                },
                (names.RESOURCE_GROUP_ID,),
            )
        )
        for grant in found:
            nodes.append(
                scope.node(
                    assignment_id(service.name, grant["target"], grant["role"]),
                    ROLE_ASSIGNMENT.type,
                    {
                        **(
                            {"registry": grant["registry"]}
                            if "registry" in grant
                            else {"scope": grant["scope"]}
                        ),
                        "role": grant["role"],
                        "role_name": ROLES[grant["role"]][1],
                        "identity": name,
                        **({"secret": grant["secret"]} if "secret" in grant else {}),
                    },
                    tuple(sorted({names.identity_id(service.name), *grant["depends"]})),
                )
            )
    return nodes
