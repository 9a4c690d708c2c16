"""IAM: the roles of the control plane (the cluster's, the nodes' or the Fargate pods') with AWS managed
policies, and the identity binding of each service (IRSA): a role only the service's Kubernetes
ServiceAccount can assume, through the cluster's IAM OIDC provider, with the aws provider's managed
policy of that service (node ``identity/SERVICE``: exactly the grants the model gives it) attached.

The roles live under the path ``/skyrig-eks/APP-ENV/`` (IAM is not in the tagging API: that is how they are
found again). A trust or a policy attachment changed in the console is an invariant drift: restored.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Mapping
from typing import Any

from skyrig.provider import (
    CloudNodeType,
    Context,
    Node,
    NotFound,
    Observed,
    Scope,
    identity_id,
    join_name,
    resolve,
)

AUDIENCE = "sts.amazonaws.com"
"""The audience of the tokens EKS projects into IRSA pods."""

ROLE_ARN_ANNOTATION = "eks.amazonaws.com/role-arn"
"""The ServiceAccount annotation EKS's pod identity webhook reads."""


def role_path(app: str, env: str) -> str:
    """The path of the environment's EKS roles (apart from the aws provider's ``/skyrig/APP-ENV/``)."""
    return f"/skyrig-eks/{join_name(app, env, limit=100)}/"


def role_name(app: str, env: str, role: str) -> str:
    """The name of role ``role`` (``cluster``, ``nodes``, ``pods``, ``service-orders``)."""
    return join_name(app, env, "eks", role, limit=64)


def role_arn(context: Context, name: str) -> str:
    """The ARN of the environment's role ``name`` (deterministic: path and name)."""
    client = context.client
    path = role_path(context.app, context.environment.name)
    return f"arn:{client.partition()}:iam::{client.account()}:role{path}{name}"


def identity_policy_arn(context: Context, node_id: str) -> str:
    """The ARN of the aws provider's managed policy of node ``identity/SERVICE``: recorded, else from its
    deterministic name (``APP-ENV-SERVICE-identity`` under ``/skyrig/APP-ENV/``, as docs/providers/aws.md
    promises a compute provider)."""

    def known() -> str:
        client = context.client
        app, env = context.app, context.environment.name
        name = join_name(app, env, node_id.partition("/")[2], "identity", limit=128)
        path = f"/skyrig/{join_name(app, env, limit=100)}/"
        return f"arn:{client.partition()}:iam::{client.account()}:policy{path}{name}"

    return resolve(context, node_id, known)


def oidc_arn(context: Context) -> str:
    """The ARN of the IAM OIDC provider of the environment's cluster's issuer."""
    return resolve(context, "eks.oidc", context.client.oidc_provider_arn)


def service_account_subject(namespace: str, account: str) -> str:
    """The ``sub`` claim of a ServiceAccount's projected token."""
    return f"system:serviceaccount:{namespace}:{account}"


class RoleType(CloudNodeType):
    """An IAM role of the environment: trusted by an AWS service (``{"service": "eks.amazonaws.com"}``)
    or by one ServiceAccount through the cluster's OIDC provider (``{"service_account": "NS/SA"}``), with
    managed policies attached: AWS's by name, or the aws provider's ``identity/SERVICE`` by node id."""

    type = "eks.iam.role"
    invariant = frozenset({"trust", "policies"})
    replace_on = frozenset({"name"})

    def _trust(self, context: Context, trust: Mapping[str, str]) -> dict[str, Any]:
        if "service" in trust:
            statement: dict[str, Any] = {
                "Effect": "Allow",
                "Principal": {"Service": trust["service"]},
                "Action": "sts:AssumeRole",
            }
        else:
            provider = oidc_arn(context)
            issuer = provider.partition(":oidc-provider/")[2]
            namespace, _, account = trust["service_account"].partition("/")
            statement = {
                "Effect": "Allow",
                "Principal": {"Federated": provider},
                "Action": "sts:AssumeRoleWithWebIdentity",
                "Condition": {
                    "StringEquals": {
                        f"{issuer}:sub": service_account_subject(namespace, account),
                        f"{issuer}:aud": AUDIENCE,
                    }
                },
            }
        return {"Version": "2012-10-17", "Statement": [statement]}

    def _policy_arn(self, context: Context, policy: str) -> str:
        if "/" in policy:  # another provider's node: identity/SERVICE
            return identity_policy_arn(context, policy)
        return f"arn:{context.client.partition()}:iam::aws:policy/{policy}"

    def _observe(self, context: Context, node: Node, role: Mapping[str, Any]) -> Observed:
        document = role.get("AssumeRolePolicyDocument")
        document = json.loads(document) if isinstance(document, str) else document or {}
        statements = document.get("Statement") or [{}]
        principal = statements[0].get("Principal") or {}
        if len(statements) != 1:
            trust: dict[str, str] = {"statements": str(len(statements))}
        elif "Service" in principal:
            trust = {"service": principal["Service"]}
        else:
            conditions = (statements[0].get("Condition") or {}).get("StringEquals") or {}
            subject = next((v for k, v in conditions.items() if k.endswith(":sub")), "")
            audience = next((v for k, v in conditions.items() if k.endswith(":aud")), "")
            account = subject.removeprefix("system:serviceaccount:").replace(":", "/", 1)
            trust = {"service_account": account} if audience == AUDIENCE else {"audience": audience}
        attached = context.client.iam.list_attached_role_policies(RoleName=role["RoleName"])[
            "AttachedPolicies"
        ]
        wanted = {self._policy_arn(context, p): p for p in node.properties.get("policies", [])}
        policies = sorted(wanted.get(a["PolicyArn"], a["PolicyArn"]) for a in attached)
        properties = {"name": role["RoleName"], "trust": trust, "policies": policies}
        return self.observed(node, role["RoleName"], properties, {"arn": role["Arn"]})

    def _read(self, context: Context, node: Node, provider_id: str) -> Observed | None:
        return self._observe(context, node, context.client.iam.get_role(RoleName=provider_id)["Role"])

    def _find(self, context: Context, node: Node) -> Observed | None:
        return self._read(context, node, node.properties["name"])

    def _create(self, context: Context, node: Node) -> Observed:
        p = node.properties
        iam = context.client.iam
        role = iam.create_role(
            Path=role_path(context.app, context.environment.name),
            RoleName=p["name"],
            AssumeRolePolicyDocument=json.dumps(self._trust(context, p["trust"])),
            Description=f"skyrig {context.app}/{context.environment.name} {node.id}",
            Tags=[{"Key": k, "Value": v} for k, v in sorted(context.tags(node).items())],
        )["Role"]
        for policy in p["policies"]:
            iam.attach_role_policy(RoleName=p["name"], PolicyArn=self._policy_arn(context, policy))
        return self._observe(context, node, role)

    def _update(self, context: Context, node: Node, provider_id: str, changes: Mapping[str, Any]) -> Observed:
        iam = context.client.iam
        p = node.properties
        if "trust" in changes:
            iam.update_assume_role_policy(
                RoleName=provider_id, PolicyDocument=json.dumps(self._trust(context, p["trust"]))
            )
        if "policies" in changes:
            wanted = {self._policy_arn(context, policy) for policy in p["policies"]}
            attached = {
                a["PolicyArn"]
                for a in iam.list_attached_role_policies(RoleName=provider_id)["AttachedPolicies"]
            }
            for arn in sorted(attached - wanted):
                iam.detach_role_policy(RoleName=provider_id, PolicyArn=arn)
            for arn in sorted(wanted - attached):
                iam.attach_role_policy(RoleName=provider_id, PolicyArn=arn)
        return self.read(context, node, provider_id)  # type: ignore[return-value]

    def _delete(self, context: Context, node: Node, provider_id: str) -> None:
        iam = context.client.iam
        for attached in iam.list_attached_role_policies(RoleName=provider_id)["AttachedPolicies"]:
            iam.detach_role_policy(RoleName=provider_id, PolicyArn=attached["PolicyArn"])
        for name in iam.list_role_policies(RoleName=provider_id).get("PolicyNames", []):
            iam.delete_role_policy(RoleName=provider_id, PolicyName=name)
        with contextlib.suppress(NotFound):
            iam.delete_role(RoleName=provider_id)


ROLE = RoleType()
TYPES = (ROLE,)


def role_id(role: str) -> str:
    """The node id of the environment's EKS role ``role``."""
    return f"eks.role/{role}"


def expand(scope: Scope) -> list[Node]:
    """Each service's IRSA role: trusted by its ServiceAccount only, with its identity policy attached."""
    from skyrig_kubernetes.workloads import namespace_name

    app, env = scope.app, scope.environment.name
    namespace = namespace_name(app, env)
    depends = () if scope.settings.cluster else ("eks.oidc",)
    nodes = []
    for service in sorted(scope.of_kind("service"), key=lambda s: s.name):
        properties = {
            "name": role_name(app, env, f"service-{service.name}"),
            "trust": {"service_account": f"{namespace}/{join_name(service.name)}"},
            "policies": [identity_id(service.name)],
        }
        nodes.append(
            scope.node(
                role_id(f"service-{service.name}"),
                ROLE.type,
                properties,
                (*depends, identity_id(service.name)),
            )
        )
    return nodes
