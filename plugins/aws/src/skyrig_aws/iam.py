"""IAM: a task role per service granting exactly the operations the model says it performs, on exactly the
resources it uses, and nothing else; the ECS execution role (image pulls, logs); the scheduler's role.
When another provider runs the services (``compute = "eks"``), the same grants as a managed policy per
service instead (``identity/SERVICE``), which that provider attaches to the role its workloads assume, and
for cron the execution role and a role of the trigger tasks that reads the signing key only.

Roles and policies live under the path ``/skyrig/APP-ENV/``, which is how they are found again (IAM is not
in the tagging API). A policy widened in the console is an invariant drift: the next apply narrows it again.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from skyrig.provider import Context, Node, Observed, ProviderError, Scope, TransientError, identity_id
from skyrig_aws.api import tag_list
from skyrig_aws.names import (
    EXECUTION_ROLE,
    SCHEDULER_ROLE,
    SQL_INSTANCE_ID,
    TRIGGER_ROLE,
    bucket_name,
    cache_password_secret,
    instance_name,
    policy_name,
    queue_name,
    repository_name,
    role_id,
    role_name,
    role_path,
    runtime_parameter_name,
    secret_name,
    signing_key_name,
    task_family,
    topic_name,
)
from skyrig_aws.nodes import AwsNodeType

POLICY_NAME = "skyrig"

SECRET_READ = ["secretsmanager:GetSecretValue", "secretsmanager:DescribeSecret"]
QUEUE_CONSUME = [
    "sqs:ReceiveMessage",
    "sqs:DeleteMessage",
    "sqs:ChangeMessageVisibility",
    "sqs:GetQueueAttributes",
    "sqs:GetQueueUrl",
]
BUCKET_OBJECT_ACTIONS = {
    "upload": ["s3:PutObject"],
    "download": ["s3:GetObject", "s3:GetObjectVersion"],
    "remove": ["s3:DeleteObject"],
    "signed_url": ["s3:GetObject", "s3:PutObject"],
}
BUCKET_ACTIONS = {"list": ["s3:ListBucket"], "download": ["s3:ListBucketVersions"]}


def role_arn(context: Context, node_id: str) -> str:
    """The ARN of role node ``node_id`` (deterministic: path and name)."""
    client = context.client
    app, env = context.app, context.environment.name
    name = role_name(app, env, node_id.partition("/")[2])
    return f"arn:{client.partition()}:iam::{client.account()}:role{role_path(app, env)}{name}"


def _arn(service: str, resource: str, region: bool = True) -> str:
    return f"arn:{{partition}}:{service}:{'{region}' if region else ''}:{{account}}:{resource}"


def _secret_arn(name: str) -> str:
    return _arn("secretsmanager", f"secret:{name}-??????")


def grants(scope: Scope, service: str) -> list[dict[str, Any]]:
    """The policy statements of ``service``'s task role: what the model says it does, and no more.

    ARNs carry ``{partition}``, ``{region}``, ``{account}`` (filled in when the role is written) and
    ``{sql_secret}`` (the RDS master password's secret).
    """
    app, env = scope.app, scope.environment.name
    model = scope.model
    topics = {r.name: r for r in model.of_kind("topic")}
    statements: list[dict[str, Any]] = []

    def allow(sid: str, actions: list[str], resources: list[str]) -> None:
        statements.append(
            {
                "Sid": sid,
                "Effect": "Allow",
                "Action": sorted(set(actions)),
                "Resource": sorted(set(resources)),
            }
        )

    for use in model.uses_by(service):
        if use.kind not in scope.kinds:
            continue  # another provider's resource: its access is that provider's business
        sid = "".join(part.capitalize() for part in f"{use.kind}-{use.resource}".replace("_", "-").split("-"))
        if use.kind == "topic" and "publish" in use.operations:
            topic = topics[use.resource]
            fifo = topic.ordering_attribute is not None or topic.delivery == "exactly-once"
            allow(sid, ["sns:Publish"], [_arn("sns", topic_name(app, env, use.resource, fifo))])
        elif use.kind == "bucket":
            name = bucket_name(app, env, use.resource)
            object_actions = [a for op in use.operations for a in BUCKET_OBJECT_ACTIONS.get(op, [])]
            bucket_actions = [a for op in use.operations for a in BUCKET_ACTIONS.get(op, [])]
            if object_actions:
                allow(sid + "Objects", object_actions, [f"arn:{{partition}}:s3:::{name}/*"])
            if bucket_actions:
                allow(sid, bucket_actions, [f"arn:{{partition}}:s3:::{name}"])
        elif use.kind == "secret" and "read" in use.operations:
            allow(sid, SECRET_READ, [_secret_arn(secret_name(app, env, use.resource))])
        elif use.kind == "sql_database" and use.operations:
            allow(sid, SECRET_READ, ["{sql_secret}"])
        elif use.kind == "cache_cluster" and use.operations:
            allow(sid, SECRET_READ, [_secret_arn(cache_password_secret(app, env, use.resource))])
    for subscription in scope.of_kind("subscription"):
        if subscription.service != service:
            continue
        topic = topics[subscription.topic]
        fifo = topic.ordering_attribute is not None or topic.delivery == "exactly-once"
        sid = "Subscription" + "".join(p.capitalize() for p in subscription.name.split("-"))
        allow(sid, QUEUE_CONSUME, [_arn("sqs", queue_name(app, env, subscription.name, fifo))])
        if subscription.max_retries != -1:
            dead_letter = queue_name(app, env, subscription.name, fifo, dead_letter=True)
            allow(sid + "DeadLetter", ["sqs:SendMessage"], [_arn("sqs", dead_letter)])
    if any(job.service == service for job in scope.of_kind("cron_job")):
        allow("CronSigningKey", SECRET_READ, [_secret_arn(signing_key_name(app, env))])
    return sorted(statements, key=lambda s: s["Sid"])


class _Documents(AwsNodeType):
    """A node type holding a policy document of :func:`grants`' statements: its ARNs' placeholders are
    filled in when it is written and put back when it is read, so the node compares in the model's terms."""

    def _values(self, context: Context, text: str) -> dict[str, str]:
        client = context.client
        values = {
            "{partition}": client.partition(),
            "{region}": client.settings.region,
            "{account}": client.account(),
        }
        if "{sql_secret}" in text or ":secret:rds!" in text:
            secret = self._sql_secret(context)
            if secret:
                values["{sql_secret}"] = secret
        return values

    def _sql_secret(self, context: Context) -> str | None:
        from skyrig_aws.sql import instances  # sql names roles: imported here, not at the top

        name = instance_name(context.app, context.environment.name)
        identifier = context.recorded.get(SQL_INSTANCE_ID) or name  # an imported instance: its own
        db = instances(context).get(identifier, {})
        return (db.get("MasterUserSecret") or {}).get("SecretArn") or None

    def _fill(self, context: Context, policy: Mapping[str, Any]) -> str:
        text = json.dumps(policy, sort_keys=True)
        if "{sql_secret}" in text and not self._sql_secret(context):
            raise TransientError("the RDS instance's master password secret is not visible yet")
        for placeholder, value in self._values(context, text).items():
            text = text.replace(placeholder, value)
        return text

    def _unfill(self, context: Context, document: Any) -> dict[str, Any]:
        policy = document if isinstance(document, dict) else json.loads(document)
        text = json.dumps(policy, sort_keys=True)
        values = self._values(context, text)
        secret = values.get("{sql_secret}")

        def generic(arn: str) -> str:
            if secret and arn == secret:
                return "{sql_secret}"
            parts = arn.split(":", 5)
            if len(parts) < 6 or parts[0] != "arn":
                return arn
            for index, placeholder in ((1, "{partition}"), (3, "{region}"), (4, "{account}")):
                if parts[index] == values[placeholder]:
                    parts[index] = placeholder
            return ":".join(parts)

        policy = json.loads(text)
        for statement in policy.get("Statement", []):
            for key in ("Action", "Resource"):
                if isinstance(statement.get(key), str):
                    statement[key] = [statement[key]]
            statement["Resource"] = [generic(arn) for arn in statement.get("Resource", [])]
        return policy


class RoleType(_Documents):
    """An IAM role with one inline policy, under the environment's path."""

    type = "aws.iam.role"
    invariant = frozenset({"policy", "trust"})
    replace_on = frozenset({"name"})

    def _trust(self, principal: str) -> dict[str, Any]:
        return {
            "Version": "2012-10-17",
            "Statement": [
                {"Effect": "Allow", "Principal": {"Service": principal}, "Action": "sts:AssumeRole"}
            ],
        }

    def _observe(self, context: Context, node: Node, role: Mapping[str, Any], policy: Any) -> Observed:
        trust = role.get("AssumeRolePolicyDocument")
        trust = json.loads(trust) if isinstance(trust, str) else trust
        principal = trust["Statement"][0]["Principal"]["Service"] if trust else None
        properties = {
            "name": role["RoleName"],
            "trust": principal,
            "policy": self._unfill(context, policy) if policy is not None else None,
        }
        return self.observed(node, role["RoleName"], properties, {"arn": role["Arn"]})

    def _policy(self, context: Context, name: str) -> Any:
        try:
            return context.client.iam.get_role_policy(RoleName=name, PolicyName=POLICY_NAME)["PolicyDocument"]
        except ProviderError:
            return None

    def _read(self, context: Context, node: Node, provider_id: str) -> Observed | None:
        role = context.client.iam.get_role(RoleName=provider_id)["Role"]
        return self._observe(context, node, role, self._policy(context, provider_id))

    def _roles(self, context: Context) -> dict[str, dict[str, Any]]:
        """The environment's roles (under its path) with their inline policies: one paginated
        ``GetAccountAuthorizationDetails`` where listing the roles would take a ``GetRolePolicy`` each.
        Their ARNs also tell the account id, which the documents' placeholders need."""
        path = role_path(context.app, context.environment.name)
        details = context.client.iam.pages(
            "get_account_authorization_details", "RoleDetailList", Filter=["Role"]
        )
        roles = {r["RoleName"]: r for r in details if r.get("Path", "").startswith(path)}
        for role in roles.values():
            context.client.learn_account(role["Arn"])
            break
        return roles

    def _inline(self, role: Mapping[str, Any]) -> Any:
        return next(
            (p["PolicyDocument"] for p in role.get("RolePolicyList", []) if p["PolicyName"] == POLICY_NAME),
            None,
        )

    def _read_many(self, context: Context, nodes: list[tuple[Node, str]]) -> dict[str, Observed | None]:
        roles = self._roles(context)
        found: dict[str, Observed | None] = {}
        for node, provider_id in nodes:
            role = roles.get(provider_id)
            if role is None:  # imported from elsewhere, or gone: ask for it by name
                found[node.id] = self.read(context, node, provider_id)
            else:
                found[node.id] = self._observe(context, node, role, self._inline(role))
        return found

    def _find(self, context: Context, node: Node) -> Observed | None:
        # a role whose create stopped before its policy reads back with policy None: adopting it puts it
        return self._read(context, node, node.properties["name"])

    def _find_many(self, context: Context, nodes: list[Node]) -> dict[str, Observed | None]:
        roles = self._roles(context)
        found: dict[str, Observed | None] = {}
        for node in nodes:
            role = roles.get(node.properties["name"])
            found[node.id] = None if role is None else self._observe(context, node, role, self._inline(role))
        return found

    def _create(self, context: Context, node: Node) -> Observed:
        p = node.properties
        iam = context.client.iam
        role = iam.create_role(
            Path=role_path(context.app, context.environment.name),
            RoleName=p["name"],
            AssumeRolePolicyDocument=json.dumps(self._trust(p["trust"])),
            Description=f"skyrig {context.app}/{context.environment.name} {node.id}",
            Tags=tag_list(context.tags(node)),
        )["Role"]
        iam.put_role_policy(
            RoleName=p["name"], PolicyName=POLICY_NAME, PolicyDocument=self._fill(context, p["policy"])
        )
        return self._observe(context, node, role, p["policy"])

    def _update(self, context: Context, node: Node, provider_id: str, changes: Mapping[str, Any]) -> Observed:
        iam = context.client.iam
        if "trust" in changes:
            iam.update_assume_role_policy(
                RoleName=provider_id, PolicyDocument=json.dumps(self._trust(node.properties["trust"]))
            )
        if "policy" in changes:
            iam.put_role_policy(
                RoleName=provider_id,
                PolicyName=POLICY_NAME,
                PolicyDocument=self._fill(context, node.properties["policy"]),
            )
        return self.read(context, node, provider_id)  # type: ignore[return-value]

    def _delete(self, context: Context, node: Node, provider_id: str) -> None:
        iam = context.client.iam
        for name in iam.list_role_policies(RoleName=provider_id).get("PolicyNames", []):
            iam.delete_role_policy(RoleName=provider_id, PolicyName=name)
        for attached in iam.list_attached_role_policies(RoleName=provider_id).get("AttachedPolicies", []):
            iam.detach_role_policy(RoleName=provider_id, PolicyArn=attached["PolicyArn"])
        iam.delete_role(RoleName=provider_id)


class PolicyType(_Documents):
    """A service's identity when another provider runs the services: a customer-managed policy under the
    environment's path, with exactly the statements of :func:`grants` (the ECS task role's inline policy
    when AWS runs them). The compute provider attaches it to the role its workloads assume; its ARN is
    known from its name (:func:`policy_arn`)."""

    type = "aws.iam.policy"
    invariant = frozenset({"policy"})
    replace_on = frozenset({"name"})

    def _observe(self, context: Context, node: Node, policy: Mapping[str, Any]) -> Observed:
        version = context.client.iam.get_policy_version(
            PolicyArn=policy["Arn"], VersionId=policy["DefaultVersionId"]
        )["PolicyVersion"]
        properties = {"name": policy["PolicyName"], "policy": self._unfill(context, version["Document"])}
        return self.observed(node, policy["Arn"], properties, {"arn": policy["Arn"]})

    def _read(self, context: Context, node: Node, provider_id: str) -> Observed | None:
        return self._observe(context, node, context.client.iam.get_policy(PolicyArn=provider_id)["Policy"])

    def _find(self, context: Context, node: Node) -> Observed | None:
        return self._read(context, node, policy_arn(context, node.properties["name"]))

    def _create(self, context: Context, node: Node) -> Observed:
        p = node.properties
        policy = context.client.iam.create_policy(
            PolicyName=p["name"],
            Path=role_path(context.app, context.environment.name),
            PolicyDocument=self._fill(context, p["policy"]),
            Description=f"skyrig {context.app}/{context.environment.name} {node.id}",
            Tags=tag_list(context.tags(node)),
        )["Policy"]
        return self._observe(context, node, policy)

    def _versions(self, context: Context, arn: str) -> list[dict[str, Any]]:
        return context.client.iam.list_policy_versions(PolicyArn=arn)["Versions"]

    def _update(self, context: Context, node: Node, provider_id: str, changes: Mapping[str, Any]) -> Observed:
        iam = context.client.iam
        old = sorted((v for v in self._versions(context, provider_id) if not v["IsDefaultVersion"]), key=str)
        for version in old[: max(0, len(old) - 3)]:  # a policy keeps at most five versions
            iam.delete_policy_version(PolicyArn=provider_id, VersionId=version["VersionId"])
        iam.create_policy_version(
            PolicyArn=provider_id,
            PolicyDocument=self._fill(context, node.properties["policy"]),
            SetAsDefault=True,
        )
        return self.read(context, node, provider_id)  # type: ignore[return-value]

    def _delete(self, context: Context, node: Node, provider_id: str) -> None:
        iam = context.client.iam
        # the compute provider detaches it when it deletes its roles; one left attached would block this
        for role in iam.list_entities_for_policy(PolicyArn=provider_id).get("PolicyRoles", []):
            iam.detach_role_policy(RoleName=role["RoleName"], PolicyArn=provider_id)
        for version in self._versions(context, provider_id):
            if not version["IsDefaultVersion"]:
                iam.delete_policy_version(PolicyArn=provider_id, VersionId=version["VersionId"])
        iam.delete_policy(PolicyArn=provider_id)


def policy_arn(context: Context, name: str) -> str:
    """The ARN of the environment's managed policy ``name`` (deterministic: path and name)."""
    client = context.client
    path = role_path(context.app, context.environment.name)
    return f"arn:{client.partition()}:iam::{client.account()}:policy{path}{name}"


ROLE = RoleType()
POLICY = PolicyType()
TYPES = (ROLE, POLICY)


def _document(statements: list[dict[str, Any]]) -> dict[str, Any]:
    if not statements:  # a role may have no grant: an explicit, harmless statement keeps the policy valid
        statements = [{"Sid": "Nothing", "Effect": "Deny", "Action": ["*"], "Resource": ["*"]}]
    return {"Version": "2012-10-17", "Statement": statements}


PLACEHOLDERS = {"{sql_secret}": SQL_INSTANCE_ID}
"""The ARNs a policy names that only another node can tell (placeholder -> that node): the RDS master
password's secret, whose name RDS makes up when the instance is created. Every other ARN of a policy is
known from names alone (a cache's password secret and the cron signing key by name and a ``-??????``
suffix, queues, topics, buckets), so IAM takes the policy before those resources exist."""


def policy_dependencies(policy: Mapping[str, Any]) -> tuple[str, ...]:
    """What a role or policy holding ``policy`` waits for: exactly the nodes whose ARNs it names and
    cannot know beforehand (:data:`PLACEHOLDERS`). A role never waits for a cache cluster, a bucket or a
    queue it grants access to: on AWS that would hold the services' roles, and so their migrations and
    rollouts, for the minutes ElastiCache takes."""
    text = json.dumps(policy)
    return tuple(sorted(node for placeholder, node in PLACEHOLDERS.items() if placeholder in text))


def identities(scope: Scope) -> list[Node]:
    """When another provider runs the services: a managed policy per model service (node
    :func:`~skyrig.provider.identity_id`) with exactly its grants, for that provider to bind its workloads
    to (see "What AWS offers a compute provider" in docs/providers/aws.md)."""
    app, env = scope.app, scope.environment.name
    nodes = []
    for service in sorted(scope.model.services, key=lambda s: s.name):
        policy = _document(grants(scope, service.name))
        properties = {"name": policy_name(app, env, service.name), "policy": policy}
        nodes.append(
            scope.node(identity_id(service.name), POLICY.type, properties, policy_dependencies(policy))
        )
    return nodes


def expand(scope: Scope) -> list[Node]:
    app, env = scope.app, scope.environment.name
    jobs = scope.of_kind("cron_job")
    services = sorted({r.service for r in jobs})
    if "service" not in scope.kinds:
        nodes = identities(scope)
        if not jobs:
            return nodes
        # cron beside another compute provider: the trigger tasks run under a role that reads the key only
        trigger = [
            {
                "Sid": "CronSigningKey",
                "Effect": "Allow",
                "Action": SECRET_READ,
                "Resource": [_secret_arn(signing_key_name(app, env))],
            }
        ]
        properties = {
            "name": role_name(app, env, "cron"),
            "trust": "ecs-tasks.amazonaws.com",
            "policy": _document(trigger),
        }
        nodes.append(
            scope.node(TRIGGER_ROLE, ROLE.type, properties, policy_dependencies(properties["policy"]))
        )
        task_roles = [TRIGGER_ROLE]
    else:
        nodes = []
        for service in scope.of_kind("service"):
            properties = {
                "name": role_name(app, env, service.name),
                "trust": "ecs-tasks.amazonaws.com",
                "policy": _document(grants(scope, service.name)),
            }
            depends = policy_dependencies(properties["policy"])
            nodes.append(scope.node(role_id(service.name), ROLE.type, properties, depends))
        task_roles = [role_id(s) for s in services]
    execution = [
        {
            "Sid": "Images",
            "Effect": "Allow",
            "Action": ["ecr:BatchCheckLayerAvailability", "ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"],
            "Resource": [_arn("ecr", f"repository/{repository_name(app, env)}")],
        },
        {"Sid": "Login", "Effect": "Allow", "Action": ["ecr:GetAuthorizationToken"], "Resource": ["*"]},
        {
            "Sid": "Logs",
            "Effect": "Allow",
            "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
            "Resource": [_arn("logs", f"log-group:/skyrig/{app}/{env}:*")],
        },
        {
            "Sid": "RuntimeConfig",
            "Effect": "Allow",
            "Action": ["ssm:GetParameters"],
            "Resource": [_arn("ssm", "parameter" + runtime_parameter_name(app, env, "*"))],
        },
    ]
    nodes.append(
        scope.node(
            EXECUTION_ROLE,
            ROLE.type,
            {
                "name": role_name(app, env, "execution"),
                "trust": "ecs-tasks.amazonaws.com",
                "policy": _document(execution),
            },
        )
    )
    if jobs:
        roles = [*task_roles, EXECUTION_ROLE]
        scheduler = [
            {
                "Sid": "RunTasks",
                "Effect": "Allow",
                "Action": ["ecs:RunTask"],
                "Resource": sorted(
                    _arn("ecs", f"task-definition/{task_family(app, env, s)}:*") for s in services
                ),
            },
            {
                "Sid": "PassRoles",
                "Effect": "Allow",
                "Action": ["iam:PassRole"],
                "Resource": sorted(
                    "arn:{partition}:iam::{account}:role"
                    + f"{role_path(app, env)}{role_name(app, env, r.partition('/')[2])}"
                    for r in roles
                ),
            },
        ]
        nodes.append(
            scope.node(
                SCHEDULER_ROLE,
                ROLE.type,
                {
                    "name": role_name(app, env, "scheduler"),
                    "trust": "scheduler.amazonaws.com",
                    "policy": _document(scheduler),
                },
            )
        )
    return nodes
