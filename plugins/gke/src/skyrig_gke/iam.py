"""Workload Identity: each service's Kubernetes ServiceAccount acts as the service's Google service
account, which the GCP provider keeps with exactly the grants the model gives the service (its node
``identity/SERVICE``). Here: ``roles/iam.workloadIdentityUser`` on that account for the member
``serviceAccount:PROJECT.svc.id.goog[NAMESPACE/KSA]``, and nothing else; the ServiceAccount is annotated
``iam.gke.io/gcp-service-account`` (:mod:`skyrig_gke.compute`).

The binding is a read-modify-write of the account's IAM policy with its etag, again from a fresh read when
another writer came first; other members and roles are left alone.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from skyrig.provider import Context, Node, Observed, Scope, TransientError, identity_id, resolve
from skyrig_gke import cluster, names
from skyrig_gke.api import Conflict
from skyrig_gke.nodes import GkeNodeType
from skyrig_kubernetes.workloads import Workload, namespace_name


def _listed_account(context: Context, service: str) -> str | None:
    """The email of the service account the GCP provider describes as ``service``'s, if there is one."""
    client = context.client
    wanted = names.account_description(context.app, context.environment.name, service)
    accounts = client.api("iam").projects().serviceAccounts()
    request = accounts.list(name=f"projects/{client.project}")
    while request is not None:
        page = client.execute(request)
        for account in page.get("accounts", []):
            if account.get("description") == wanted:
                return str(account["email"])
        request = accounts.list_next(request, page)
    return None


def account_of(context: Context, service: str) -> str:
    """The email of ``service``'s Google service account: the provider id of the GCP provider's
    ``identity/SERVICE``, else found by the account's description (a transient error until it exists)."""
    return resolve(context, identity_id(service), lambda: _listed_account(context, service))


def known_account(context: Context, service: str) -> str | None:
    """:func:`account_of`, or None where the account does not exist (yet)."""
    node_id = identity_id(service)
    return (
        context.client.known.get(node_id)
        or context.recorded.get(node_id)
        or _listed_account(context, service)
    )


def member(project: str, namespace: str, account: str) -> str:
    """The Workload Identity member of Kubernetes ServiceAccount ``account`` in ``namespace``."""
    return f"serviceAccount:{project}.svc.id.goog[{namespace}/{account}]"


class WorkloadIdentityType(GkeNodeType):
    """A service's ServiceAccount allowed to act as its Google service account."""

    type = "gke.workload_identity"
    replace_on = frozenset({"member", "service"})
    invariant = frozenset({"role"})

    def _resource(self, context: Context, email: str) -> str:
        return f"projects/{context.client.project}/serviceAccounts/{email}"

    def _policy(self, context: Context, email: str) -> dict[str, Any]:
        client = context.client
        request = (
            client.api("iam")
            .projects()
            .serviceAccounts()
            .getIamPolicy(resource=self._resource(context, email))
        )
        return dict(client.execute(request))

    def _observe(self, node: Node, email: str, policy: Mapping[str, Any]) -> Observed | None:
        wanted = node.properties["member"]
        held = [
            b["role"]
            for b in policy.get("bindings", [])
            if wanted in b.get("members", []) and not b.get("condition")
        ]
        if not held:
            return None
        role = names.WORKLOAD_IDENTITY_USER if names.WORKLOAD_IDENTITY_USER in held else sorted(held)[0]
        return self.observed(node, f"{email}#{wanted}", {"role": role}, {"account": email})

    def _read(self, context: Context, node: Node, provider_id: str) -> Observed | None:
        email = provider_id.partition("#")[0]
        return self._observe(node, email, self._policy(context, email))

    def _find(self, context: Context, node: Node) -> Observed | None:
        email = known_account(context, node.properties["service"])
        return self._observe(node, email, self._policy(context, email)) if email else None

    def _write(self, context: Context, email: str, node: Node, keep: bool) -> None:
        """The account's policy with the member holding the role (``keep``) or not, from a fresh read
        again where another writer came first."""
        client = context.client
        wanted = node.properties["member"]
        for attempt in range(8):
            policy = self._policy(context, email)
            bindings = [dict(b) for b in policy.get("bindings", [])]
            held = next(
                (b for b in bindings if b["role"] == names.WORKLOAD_IDENTITY_USER and not b.get("condition")),
                None,
            )
            if keep == bool(held and wanted in held["members"]):
                return
            if keep and held:
                held["members"] = sorted([*held["members"], wanted])
            elif keep:
                bindings.append({"role": names.WORKLOAD_IDENTITY_USER, "members": [wanted]})
            elif held:
                held["members"] = [m for m in held["members"] if m != wanted]
            written = {**policy, "bindings": [b for b in bindings if b["members"]]}
            request = (
                client.api("iam")
                .projects()
                .serviceAccounts()
                .setIamPolicy(resource=self._resource(context, email), body={"policy": written})
            )
            try:
                client.execute(request)
                return
            except Conflict:
                time.sleep(min(2.0, 0.05 * 2**attempt))
        raise TransientError(f"the IAM policy of {email} kept changing while it was written")

    def _create(self, context: Context, node: Node) -> Observed:
        email = account_of(context, node.properties["service"])
        self._write(context, email, node, keep=True)
        return self.observed(node, f"{email}#{node.properties['member']}", {}, {"account": email})

    def _update(self, context: Context, node: Node, provider_id: str, changes: Mapping[str, Any]) -> Observed:
        email = provider_id.partition("#")[0]
        self._write(context, email, node, keep=True)
        return self.observed(node, provider_id, {}, {"account": email})

    def _delete(self, context: Context, node: Node, provider_id: str) -> None:
        self._write(context, provider_id.partition("#")[0], node, keep=False)


WORKLOAD_IDENTITY = WorkloadIdentityType()
TYPES = (WORKLOAD_IDENTITY,)


def expand(scope: Scope) -> list[Node]:
    """A Workload Identity binding per service, after its identity and the cluster (whose creation makes
    the identity pool)."""
    app, env = scope.app, scope.environment.name
    project = names.project(app, scope.environment, scope.settings)
    namespace = namespace_name(app, env)
    nodes = []
    for service in sorted(scope.of_kind("service"), key=lambda s: s.name):
        account = Workload(app, env, service.name, service.app, "").name
        nodes.append(
            scope.node(
                names.binding_id(service.name),
                WORKLOAD_IDENTITY.type,
                {
                    "service": service.name,
                    "member": member(project, namespace, account),
                    "role": names.WORKLOAD_IDENTITY_USER,
                },
                (identity_id(service.name), *cluster.control_plane(scope)),
            )
        )
    return nodes
