"""IAM: a service account per service (and one for Cloud Scheduler, with cron jobs), and least-privilege
IAM bindings from the model: what each service's code does, on exactly the resources it does it to.

A binding lives on the resource where Google has resource-level IAM (topics, subscriptions, secrets,
buckets, Cloud Run jobs, service accounts), as one node per (service, resource) that depends on the
resource's node; it is a read-modify-write of the resource's policy with its etag, retried when another
writer got there first. Cloud SQL and Memorystore have no resource-level IAM: ``roles/cloudsql.client``
and a custom role reading AUTH strings (``iam.role/cache_auth``) are granted on the project. A binding
holds the roles the model asks for and no other: a role added in the console is an invariant drift,
taken away by the next apply. Service accounts take no labels: their description names the app,
environment and node, which is how they are found again.

When another provider runs the services (``compute = "gke"``), each model service still gets its account
and exactly the same bindings, and a node ``identity/SERVICE`` (:func:`skyrig.provider.identity_id`) that
is in place once they all are: the compute provider binds its workloads to that account (GKE's Workload
Identity) after it.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Mapping
from typing import Any

from skyrig.provider import (
    Context,
    Node,
    NotFound,
    Observed,
    ProviderError,
    Scope,
    TransientError,
    identity_id,
)
from skyrig_gcp import names
from skyrig_gcp.api import Conflict, translate
from skyrig_gcp.nodes import GcpNodeType

SCHEDULER = "scheduler"
"""The service account Cloud Scheduler calls with (``iam.account/scheduler``)."""

TOPIC_PUBLISH = "roles/pubsub.publisher"
SUBSCRIPTION_CONSUME = "roles/pubsub.subscriber"
SECRET_READ = "roles/secretmanager.secretAccessor"
SQL_CONNECT = "roles/cloudsql.client"
SIGN_AS_ITSELF = "roles/iam.serviceAccountTokenCreator"
RUN_TRIGGER = "roles/run.jobsExecutorWithOverrides"
OBJECT_VIEWER = "roles/storage.objectViewer"
OBJECT_CREATOR = "roles/storage.objectCreator"
OBJECT_USER = "roles/storage.objectUser"

CACHE_AUTH = "cache_auth"
"""The custom role reading Memorystore AUTH strings (``iam.role/cache_auth``): no predefined role has
``redis.instances.getAuthString`` without much else, and Memorystore has no instance-level IAM."""
CACHE_AUTH_PERMISSIONS = ["redis.instances.getAuthString"]


def role_id(role: str) -> str:
    """The node id of custom role ``role``."""
    return f"iam.role/{role}"


EMULATED = frozenset({"pubsub.topic", "pubsub.subscription", "storage"})
"""Where the emulators (Pub/Sub's, fake-gcs-server) have no IAM: under ``emulator = "fake"`` a binding
there is recorded as asked, not set."""


def bucket_roles(operations: list[str]) -> list[str]:
    """The object roles of a service's operations on a bucket: objectViewer where it only downloads or
    lists, objectCreator to upload, both for signed URLs; objectUser where it removes (Google has no
    narrower predefined role that deletes)."""
    wanted = set(operations)
    if "remove" in wanted:
        return [OBJECT_USER]
    roles = set()
    if wanted & {"download", "list", "signed_url"}:
        roles.add(OBJECT_VIEWER)
    if wanted & {"upload", "signed_url"}:
        roles.add(OBJECT_CREATOR)
    return sorted(roles)


def binding_id(account: str, target: str) -> str:
    """The node id of ``account``'s binding on ``target`` (``topic/events``, ``project``)."""
    return f"iam.binding/{account}/{target}"


def account_email(scope: Scope, account: str) -> str:
    """The email of the service account of ``account`` (a service, or ``scheduler``)."""
    app, env = scope.app, scope.environment.name
    project = scope.settings.project or names.project_id(app, env)
    return names.account_email(names.account_name(app, env, account), project)


def grants(scope: Scope, service: str) -> list[dict[str, Any]]:
    """``service``'s bindings: what the model says it does, and no more. Each is ``{"target", "api",
    "resource", "roles", "depends"}``: the target's ``kind/name``, the API whose IAM holds the binding, the
    resource's full name, the roles, and the nodes it needs first."""
    app, env, settings = scope.app, scope.environment.name, scope.settings
    project = settings.project or names.project_id(app, env)
    found: dict[str, dict[str, Any]] = {}

    def grant(target: str, api: str, resource: str, roles: list[str], depends: str) -> None:
        entry = found.setdefault(
            target, {"target": target, "api": api, "resource": resource, "roles": [], "depends": []}
        )
        entry["roles"] = sorted(set(entry["roles"]) | set(roles))
        entry["depends"] = sorted({*entry["depends"], depends})

    for use in scope.model.uses_by(service):
        if use.kind not in scope.kinds:
            continue  # another provider's resource: its access is that provider's business
        target = f"{use.kind}/{use.resource}"
        if use.kind == "topic" and "publish" in use.operations:
            name = f"projects/{project}/topics/{names.topic_name(app, env, use.resource)}"
            grant(target, "pubsub.topic", name, [TOPIC_PUBLISH], f"@{target}")
        elif use.kind == "bucket" and bucket_roles(use.operations):
            name = names.bucket_name(project, app, env, use.resource)
            grant(target, "storage", name, bucket_roles(use.operations), f"@{target}")
            if "signed_url" in use.operations:  # V4 signatures without a key: signBlob as itself
                email = account_email(scope, service)
                grant(
                    f"account/{service}",
                    "iam",
                    f"projects/{project}/serviceAccounts/{email}",
                    [SIGN_AS_ITSELF],
                    names.service_account_id(service),
                )
        elif use.kind == "secret" and "read" in use.operations:
            name = f"projects/{project}/secrets/{names.secret_name(app, env, use.resource)}"
            grant(target, "secretmanager", name, [SECRET_READ], f"@{target}")
        elif use.kind == "sql_database" and use.operations:
            grant("project", "project", f"projects/{project}", [SQL_CONNECT], names.PROJECT_ID)
            name = f"projects/{project}/secrets/{names.sql_password_secret(app, env)}"
            grant("sql/password", "secretmanager", name, [SECRET_READ], names.SQL_INSTANCE_ID)
        elif use.kind == "cache_cluster" and use.operations:
            role = f"projects/{project}/roles/{names.custom_role_name(app, env, CACHE_AUTH)}"
            grant("project", "project", f"projects/{project}", [role], role_id(CACHE_AUTH))
    for subscription in scope.of_kind("subscription"):
        if subscription.service == service:
            target = f"subscription/{subscription.name}"
            name = f"projects/{project}/subscriptions/{names.subscription_name(app, env, subscription.name)}"
            grant(target, "pubsub.subscription", name, [SUBSCRIPTION_CONSUME], f"@{target}")
            if subscription.max_retries != -1:  # its consumer dead-letters a message itself
                letters = names.dead_letter_topic_name(app, env, subscription.name)
                grant(
                    f"dead-letter/{subscription.name}",
                    "pubsub.topic",
                    f"projects/{project}/topics/{letters}",
                    [TOPIC_PUBLISH],
                    f"pubsub.dead_letter/{subscription.name}",
                )
    if any(job.service == service for job in scope.of_kind("cron_job")):
        name = f"projects/{project}/secrets/{names.signing_key_name(app, env)}"
        grant("cron/signing-key", "secretmanager", name, [SECRET_READ], names.SIGNING_KEY_ID)
    return [found[target] for target in sorted(found)]


def scheduler_grants(scope: Scope) -> list[dict[str, Any]]:
    """The scheduler account's bindings: running each cron trigger job (with the job and URL as
    arguments), and nothing else."""
    app, env, settings = scope.app, scope.environment.name, scope.settings
    project = settings.project or names.project_id(app, env)
    found = []
    for service in sorted({job.service for job in scope.of_kind("cron_job")}):
        job = names.trigger_job_name(app, env, service)
        found.append(
            {
                "target": f"trigger/{service}",
                "api": "run.jobs",
                "resource": f"projects/{project}/locations/{settings.region}/jobs/{job}",
                "roles": [RUN_TRIGGER],
                "depends": [names.trigger_job_id(service)],
            }
        )
    return found


# -- service accounts ------------------------------------------------------------------------------------


class AccountType(GcpNodeType):
    """A service account: what a service's Cloud Run revisions (or Cloud Scheduler) run as."""

    type = "gcp.iam.account"
    identity = frozenset({"name"})
    replace_on = frozenset({"name"})

    def _description(self, context: Context, node: Node) -> str:
        return f"skyrig {context.app}/{context.environment.name} {node.id}"

    def _observe(self, node: Node, account: Mapping[str, Any]) -> Observed:
        email = account["email"]
        return self.observed(
            node,
            email,
            {"name": email.partition("@")[0]},
            {"email": email, "member": f"serviceAccount:{email}", "unique_id": account.get("uniqueId")},
        )

    def _listed(self, context: Context) -> dict[str, Mapping[str, Any]]:
        client = context.client
        accounts = client.pages(
            client.api("iam").projects().serviceAccounts(),
            "list",
            "accounts",
            name=f"projects/{client.project}",
        )
        return {account["email"]: account for account in accounts}

    def _read(self, context: Context, node: Node, provider_id: str) -> Observed | None:
        client = context.client
        account = client.execute(
            client.api("iam")
            .projects()
            .serviceAccounts()
            .get(name=f"projects/{client.project}/serviceAccounts/{provider_id}")
        )
        return self._observe(node, account)

    def _read_many(self, context: Context, nodes: list[tuple[Node, str]]) -> dict[str, Observed | None]:
        listed = self._listed(context)
        return {node.id: self._observe(node, listed[pid]) if pid in listed else None for node, pid in nodes}

    def _email(self, context: Context, node: Node) -> str:
        return names.account_email(node.properties["name"], context.client.project)

    def _find(self, context: Context, node: Node) -> Observed | None:
        return self._read(context, node, self._email(context, node))

    def _find_many(self, context: Context, nodes: list[Node]) -> dict[str, Observed | None]:
        return self._read_many(context, [(node, self._email(context, node)) for node in nodes])

    def _create(self, context: Context, node: Node) -> Observed:
        client = context.client
        body = {
            "accountId": node.properties["name"],
            "serviceAccount": {
                "displayName": node.properties["display_name"],
                "description": self._description(context, node),
            },
        }
        account = client.execute(
            client.api("iam")
            .projects()
            .serviceAccounts()
            .create(name=f"projects/{client.project}", body=body)
        )
        return self._observe(node, account)

    def _update(self, context: Context, node: Node, provider_id: str, changes: Mapping[str, Any]) -> Observed:
        return self._read(context, node, provider_id)  # type: ignore[return-value]

    def _delete(self, context: Context, node: Node, provider_id: str) -> None:
        client = context.client
        client.execute(
            client.api("iam")
            .projects()
            .serviceAccounts()
            .delete(name=f"projects/{client.project}/serviceAccounts/{provider_id}")
        )

    def inventory(self, context: Context) -> list[str]:
        prefix = f"skyrig {context.app}/{context.environment.name} "
        return sorted(
            email
            for email, account in self._listed(context).items()
            if str(account.get("description", "")).startswith(prefix)
        )


# -- bindings ------------------------------------------------------------------------------------------

_LIBRARIES = {
    "secretmanager": "secretmanager",
    "pubsub.topic": "pubsub.publisher",
    "pubsub.subscription": "pubsub.subscriber",
    "run.jobs": "run.jobs",
}


def get_policy(context: Context, api: str, resource: str) -> dict[str, Any]:
    """The IAM policy of ``resource`` (of ``api``) as JSON: ``{"etag", "version", "bindings"}``."""
    client = context.client
    if api == "project":
        request = client.api("cloudresourcemanager").projects().getIamPolicy(resource=resource, body={})
        return dict(client.execute(request))
    if api == "iam":
        request = client.api("iam").projects().serviceAccounts().getIamPolicy(resource=resource)
        return dict(client.execute(request))
    if api == "storage":
        try:
            policy = client.storage().bucket(resource).get_iam_policy(requested_policy_version=1)
        except Exception as error:
            raise translate(error, "storage", "buckets.getIamPolicy") from None
        return {
            "etag": policy.etag,
            "version": policy.version,
            "bindings": [{"role": b["role"], "members": sorted(b["members"])} for b in policy.bindings],
        }
    from google.protobuf import json_format

    policy = client.library(_LIBRARIES[api]).get_iam_policy(request={"resource": resource})
    return json_format.MessageToDict(policy)


def set_policy(context: Context, api: str, resource: str, policy: dict[str, Any]) -> None:
    """Write ``policy`` (with the etag it was read with: a stale one is a :class:`Conflict`)."""
    client = context.client
    if api == "project":
        request = (
            client.api("cloudresourcemanager")
            .projects()
            .setIamPolicy(resource=resource, body={"policy": policy})
        )
        client.execute(request)
        return
    if api == "iam":
        request = (
            client.api("iam")
            .projects()
            .serviceAccounts()
            .setIamPolicy(resource=resource, body={"policy": policy})
        )
        client.execute(request)
        return
    if api == "storage":
        from google.api_core.iam import Policy

        bucket = client.storage().bucket(resource)
        written = Policy(etag=policy.get("etag"), version=policy.get("version"))
        written.bindings = [{"role": b["role"], "members": set(b["members"])} for b in policy["bindings"]]
        try:
            bucket.set_iam_policy(written)
        except Exception as error:
            raise translate(error, "storage", "buckets.setIamPolicy") from None
        return
    from google.iam.v1 import policy_pb2
    from google.protobuf import json_format

    message = json_format.ParseDict(policy, policy_pb2.Policy())
    client.library(_LIBRARIES[api]).set_iam_policy(request={"resource": resource, "policy": message})


def roles_of(policy: Mapping[str, Any], member: str) -> list[str]:
    """The roles ``member`` holds in ``policy`` (unconditionally)."""
    return sorted(
        {
            b["role"]
            for b in policy.get("bindings", [])
            if member in b.get("members", []) and not b.get("condition")
        }
    )


def with_roles(policy: Mapping[str, Any], member: str, roles: list[str]) -> dict[str, Any]:
    """``policy`` where ``member`` holds exactly ``roles`` (its conditional bindings left alone)."""
    bindings: list[dict[str, Any]] = []
    for binding in policy.get("bindings", []):
        members = list(binding.get("members", []))
        if not binding.get("condition") and member in members and binding["role"] not in roles:
            members.remove(member)
        if members:
            bindings.append({**binding, "members": members})
    for role in roles:
        held = [b for b in bindings if b["role"] == role and not b.get("condition")]
        if held:
            if member not in held[0]["members"]:
                held[0]["members"] = sorted([*held[0]["members"], member])
        else:
            bindings.append({"role": role, "members": [member]})
    written = {key: value for key, value in policy.items() if key != "bindings"}
    written["bindings"] = bindings
    return written


class BindingType(GcpNodeType):
    """The roles one service account holds on one resource (or the project): exactly those asked."""

    type = "gcp.iam.binding"
    replace_on = frozenset({"member", "resource", "api"})
    invariant = frozenset({"roles"})

    def _recorded_only(self, context: Context, node: Node) -> bool:
        return context.settings.emulator == "fake" and node.properties["api"] in EMULATED

    def _provider_id(self, node: Node) -> str:
        return f"{node.properties['resource']}#{node.properties['member']}"

    def _observe(self, node: Node, roles: list[str]) -> Observed:
        p = node.properties
        return self.observed(
            node,
            self._provider_id(node),
            {"member": p["member"], "resource": p["resource"], "api": p["api"], "roles": roles},
        )

    def _read(self, context: Context, node: Node, provider_id: str) -> Observed | None:
        if self._recorded_only(context, node):
            return self._observe(node, list(node.properties["roles"]))
        policy = get_policy(context, node.properties["api"], node.properties["resource"])
        roles = roles_of(policy, node.properties["member"])
        return self._observe(node, roles) if roles else None

    def _find(self, context: Context, node: Node) -> Observed | None:
        return self._read(context, node, self._provider_id(node))

    def _read_many(self, context: Context, nodes: list[tuple[Node, str]]) -> dict[str, Observed | None]:
        """One policy read per resource, whatever the number of bindings on it (the project's, a secret
        read by several services)."""
        found: dict[str, Observed | None] = {}
        policies: dict[tuple[str, str], dict[str, Any]] = {}
        for node, provider_id in nodes:
            p = node.properties
            if self._recorded_only(context, node):
                found[node.id] = self._read(context, node, provider_id)
                continue
            key = (p["api"], p["resource"])
            if key not in policies:
                try:
                    policies[key] = get_policy(context, *key)
                except NotFound:
                    policies[key] = {}
            roles = roles_of(policies[key], p["member"])
            found[node.id] = self._observe(node, roles) if roles else None
        return found

    def _find_many(self, context: Context, nodes: list[Node]) -> dict[str, Observed | None]:
        return self._read_many(context, [(node, self._provider_id(node)) for node in nodes])

    def _write(self, context: Context, node: Node, roles: list[str]) -> None:
        """Read-modify-write the resource's policy, again from the read where another writer came first."""
        p = node.properties
        if self._recorded_only(context, node):
            return
        for attempt in range(8):
            policy = get_policy(context, p["api"], p["resource"])
            if roles_of(policy, p["member"]) == sorted(roles):
                return
            try:
                set_policy(context, p["api"], p["resource"], with_roles(policy, p["member"], roles))
                return
            except Conflict:
                time.sleep(min(2.0, 0.05 * 2**attempt))
            except ProviderError as error:
                # a service account just made is not visible to every IAM policy at once
                if "does not exist" in str(error) and attempt < 7:
                    raise TransientError(str(error)) from None
                raise
        raise TransientError(f"the IAM policy of {p['resource']} kept changing while it was written")

    def _create(self, context: Context, node: Node) -> Observed:
        self._write(context, node, list(node.properties["roles"]))
        return self._observe(node, list(node.properties["roles"]))

    def _update(self, context: Context, node: Node, provider_id: str, changes: Mapping[str, Any]) -> Observed:
        self._write(context, node, list(node.properties["roles"]))
        return self._observe(node, list(node.properties["roles"]))

    def _delete(self, context: Context, node: Node, provider_id: str) -> None:
        with contextlib.suppress(NotFound):  # the resource went first, and its policy with it
            self._write(context, node, [])


class RoleType(GcpNodeType):
    """A custom role of the project, holding exactly its permissions. A deleted one keeps its id for 37
    days: made again, it is undeleted."""

    type = "gcp.iam.role"
    identity = frozenset({"name"})
    replace_on = frozenset({"name"})
    invariant = frozenset({"permissions"})

    def _full_name(self, context: Context, provider_id: str) -> str:
        return f"projects/{context.client.project}/roles/{provider_id}"

    def _get(self, context: Context, provider_id: str) -> dict[str, Any]:
        client = context.client
        request = client.api("iam").projects().roles().get(name=self._full_name(context, provider_id))
        return dict(client.execute(request))

    def _observe(self, node: Node, role: Mapping[str, Any]) -> Observed:
        name = role["name"].rpartition("/")[2]
        properties = {"name": name, "permissions": sorted(role.get("includedPermissions", []))}
        return self.observed(node, name, properties, {"role": role["name"]})

    def _read(self, context: Context, node: Node, provider_id: str) -> Observed | None:
        role = self._get(context, provider_id)
        return None if role.get("deleted") else self._observe(node, role)

    def _find(self, context: Context, node: Node) -> Observed | None:
        return self._read(context, node, node.properties["name"])

    def _body(self, context: Context, node: Node) -> dict[str, Any]:
        return {
            "title": node.properties["title"],
            "description": f"skyrig {context.app}/{context.environment.name} {node.id}",
            "includedPermissions": sorted(node.properties["permissions"]),
            "stage": "GA",
        }

    def _create(self, context: Context, node: Node) -> Observed:
        client = context.client
        roles = client.api("iam").projects().roles()
        name = node.properties["name"]
        try:
            request = roles.create(
                parent=f"projects/{client.project}", body={"roleId": name, "role": self._body(context, node)}
            )
            return self._observe(node, client.execute(request))
        except Conflict:
            if not self._get(context, name).get("deleted"):
                raise
        client.execute(roles.undelete(name=self._full_name(context, name), body={}))
        return self._update(context, node, name, {})

    def _update(self, context: Context, node: Node, provider_id: str, changes: Mapping[str, Any]) -> Observed:
        client = context.client
        request = (
            client.api("iam")
            .projects()
            .roles()
            .patch(
                name=self._full_name(context, provider_id),
                updateMask="title,description,includedPermissions,stage",
                body=self._body(context, node),
            )
        )
        return self._observe(node, client.execute(request))

    def _delete(self, context: Context, node: Node, provider_id: str) -> None:
        if self._get(context, provider_id).get("deleted"):
            return
        client = context.client
        client.execute(
            client.api("iam").projects().roles().delete(name=self._full_name(context, provider_id))
        )

    def inventory(self, context: Context) -> list[str]:
        client = context.client
        prefix = f"skyrig {context.app}/{context.environment.name} "
        roles = client.pages(
            client.api("iam").projects().roles(), "list", "roles", parent=f"projects/{client.project}"
        )
        return sorted(
            r["name"].rpartition("/")[2] for r in roles if str(r.get("description", "")).startswith(prefix)
        )


class IdentityType(GcpNodeType):
    """A service's identity for the provider that runs it, when that is another one: the service's
    account, in place once the account and every binding the model gives it are (the node depends on
    them). It makes nothing of its own: it reads the account, whose email is its provider id and its
    output; the account's and the bindings' own nodes make and delete them."""

    type = "gcp.iam.identity"
    replace_on = frozenset({"account"})

    def _read(self, context: Context, node: Node, provider_id: str) -> Observed | None:
        client = context.client
        account = client.execute(
            client.api("iam")
            .projects()
            .serviceAccounts()
            .get(name=f"projects/{client.project}/serviceAccounts/{provider_id}")
        )
        email = account["email"]
        return self.observed(
            node, email, {"account": email}, {"email": email, "member": f"serviceAccount:{email}"}
        )

    def _find(self, context: Context, node: Node) -> Observed | None:
        return self._read(context, node, node.properties["account"])

    def _create(self, context: Context, node: Node) -> Observed:
        return self._read(context, node, node.properties["account"])  # type: ignore[return-value]

    def _update(self, context: Context, node: Node, provider_id: str, changes: Mapping[str, Any]) -> Observed:
        return self._read(context, node, provider_id)  # type: ignore[return-value]

    def _delete(self, context: Context, node: Node, provider_id: str) -> None:
        """Nothing: the account goes with its own node."""


ACCOUNT = AccountType()
BINDING = BindingType()
ROLE = RoleType()
IDENTITY = IdentityType()
TYPES = (ACCOUNT, BINDING, ROLE, IDENTITY)


def handed_over(scope: Scope) -> list[str]:
    """The services another provider runs here (``compute = "gke"``), whose identities this provider
    keeps: every service of the model, or none when this provider runs them."""
    if scope.environment.provider_for("compute") == scope.provider:
        return []
    return sorted(service.name for service in scope.model.services)


def account_services(scope: Scope) -> list[str]:
    """The services that get an account here: those this provider runs, or those it keeps identities of."""
    return sorted({s.name for s in scope.of_kind("service")} | set(handed_over(scope)))


def _binding(scope: Scope, account: str, grant: dict[str, Any]) -> Node:
    return scope.node(
        binding_id(account, grant["target"]),
        BINDING.type,
        {
            "member": f"serviceAccount:{account_email(scope, account)}",
            "api": grant["api"],
            "resource": grant["resource"],
            "roles": grant["roles"],
        },
        tuple(sorted({names.service_account_id(account), *grant["depends"]})),
    )


def expand(scope: Scope) -> list[Node]:
    """A service account per service, with its bindings; the scheduler's with cron jobs; each service's
    identity node when another provider runs the services."""
    app, env = scope.app, scope.environment.name
    services = account_services(scope)
    nodes: list[Node] = []
    accounts = [(service, f"skyrig service {service}") for service in services]
    if services and scope.of_kind("cron_job"):
        accounts.append((SCHEDULER, "skyrig cron scheduler"))
    if services and any(
        use.kind == "cache_cluster" and use.operations
        for service in services
        for use in scope.model.uses_by(service)
        if use.kind in scope.kinds
    ):
        nodes.append(
            scope.node(
                role_id(CACHE_AUTH),
                ROLE.type,
                {
                    "name": names.custom_role_name(app, env, CACHE_AUTH),
                    "title": "skyrig: read Memorystore AUTH strings",
                    "permissions": CACHE_AUTH_PERMISSIONS,
                },
                (names.PROJECT_ID,),
            )
        )
    for account, display in accounts:
        nodes.append(
            scope.node(
                names.service_account_id(account),
                ACCOUNT.type,
                {"name": names.account_name(app, env, account), "display_name": display},
                (names.PROJECT_ID,),
            )
        )
        found = scheduler_grants(scope) if account == SCHEDULER else grants(scope, account)
        nodes += [_binding(scope, account, grant) for grant in found]
    for service in handed_over(scope):
        depends = {
            names.service_account_id(service),
            *(binding_id(service, g["target"]) for g in grants(scope, service)),
        }
        nodes.append(
            scope.node(
                identity_id(service),
                IDENTITY.type,
                {"account": account_email(scope, service)},
                tuple(sorted(depends)),
            )
        )
    return nodes
