"""Cron: an EventBridge Scheduler schedule per job, in a schedule group of the environment, and a signing
key per environment in Secrets Manager.

On schedule, Scheduler runs a one-off task of the job's service (its task definition, in the private
subnets) whose command is :mod:`skyrig_aws.runtime.cron`: it reads the signing key from Secrets Manager
and sends the signed ``POST /__skyrig/cron/JOB`` to the service (:func:`skyrig.runtime.signing.trigger`),
which accepts it only with a valid signature. The key is random, made here, and never leaves Secrets
Manager (not in state, plans or logs). Where another provider runs the services (``compute = "eks"``), cron
makes what its schedules need of ECS itself: a cluster, and per service a trigger task definition in the
services' image under a role that reads the key only; the trigger calls the service's URL
(``SERVICE.DOMAIN``) as it does an ECS service's.
"""

from __future__ import annotations

import contextlib
import json
import secrets as random
from collections.abc import Mapping
from typing import Any

from skyrig.provider import Context, Node, NotFound, Observed, ProviderError, Scope, duration_seconds
from skyrig_aws import compute, iam, network
from skyrig_aws.api import tag_list
from skyrig_aws.names import (
    COMPUTE_CLUSTER_ID,
    EXECUTION_ROLE,
    SCHEDULER_ROLE,
    SIGNING_KEY_ID,
    TRIGGER_ROLE,
    cluster_name,
    schedule_group_name,
    schedule_name,
    signing_key_name,
    task_family,
)
from skyrig_aws.nodes import AwsNodeType
from skyrig_aws.secrets import environment_secrets

GROUP_ID = "cron.group"
TRIGGER_PREFIX = "cron.trigger/"


def expression(schedule: str | None, every: str | None) -> str:
    """Scheduler's expression for a five-field cron schedule or an interval (UTC)."""
    if every is not None:
        minutes = duration_seconds(every) // 60
        return f"rate({minutes} minute{'s' if minutes != 1 else ''})"
    minute, hour, day, month, weekday = (schedule or "").split()
    if weekday != "*" and day == "*":
        day = "?"
        # five-field weekdays are 0-6 from Sunday; Scheduler's are 1-7 from Sunday
        weekday = ",".join(_weekday(part) for part in weekday.split(","))
    else:
        weekday = "?"
    return f"cron({minute} {hour} {day} {month} {weekday} *)"


def _weekday(part: str) -> str:
    def shift(value: str) -> str:
        return str(int(value) % 7 + 1) if value.isdigit() else value

    step = ""
    if "/" in part:
        part, step = part.split("/", 1)
        step = "/" + step
    if "-" in part:
        low, high = part.split("-", 1)
        return f"{shift(low)}-{shift(high)}{step}"
    return shift(part) + step


class SigningKeyType(AwsNodeType):
    """The environment's cron signing key: a Secrets Manager secret with a random value made here."""

    type = "aws.cron.signing_key"
    arn_types = ("secretsmanager:secret",)
    replace_on = frozenset({"name"})

    def inventory_id(self, arn: str) -> str:
        return arn

    def _read(self, context: Context, node: Node, provider_id: str) -> Observed | None:
        secret = context.client.secretsmanager.describe_secret(SecretId=provider_id)
        if secret.get("DeletedDate"):
            return None
        return self.observed(node, secret["ARN"], {"name": secret["Name"]}, {"arn": secret["ARN"]})

    def _find(self, context: Context, node: Node) -> Observed | None:
        return self._read(context, node, node.properties["name"])

    def _read_many(self, context: Context, nodes: list[tuple[Node, str]]) -> dict[str, Observed | None]:
        return self._listed(context, nodes, "ARN")

    def _find_many(self, context: Context, nodes: list[Node]) -> dict[str, Observed | None]:
        return self._listed(context, [(node, node.properties["name"]) for node in nodes], "Name")

    def _listed(
        self, context: Context, nodes: list[tuple[Node, str]], key: str
    ) -> dict[str, Observed | None]:
        """From the listing of the environment's secrets the declared secrets share; a key under a name of
        its own (imported) is read by itself."""
        found = {s[key]: s for s in environment_secrets(context)}
        return {
            node.id: self.observed(
                node, found[pid]["ARN"], {"name": found[pid]["Name"]}, {"arn": found[pid]["ARN"]}
            )
            if pid in found
            else (self.read(context, node, pid) if key == "ARN" else None)
            for node, pid in nodes
        }

    def _create(self, context: Context, node: Node) -> Observed:
        secret = context.client.secretsmanager.create_secret(
            Name=node.properties["name"],
            Description=f"cron signing key of {context.app}/{context.environment.name} (made by skyrig)",
            SecretString=random.token_hex(32),
            Tags=tag_list(context.tags(node)),
        )
        return self.observed(node, secret["ARN"], {}, {"arn": secret["ARN"]})

    def _update(self, context: Context, node: Node, provider_id: str, changes: Mapping[str, Any]) -> Observed:
        return self.read(context, node, provider_id)  # type: ignore[return-value]

    def _delete(self, context: Context, node: Node, provider_id: str) -> None:
        context.client.secretsmanager.delete_secret(SecretId=provider_id, ForceDeleteWithoutRecovery=True)


class GroupType(AwsNodeType):
    """The environment's schedule group (deleting it deletes its schedules)."""

    type = "aws.cron.schedule_group"
    replace_on = frozenset({"name"})

    def _read(self, context: Context, node: Node, provider_id: str) -> Observed | None:
        group = context.client.scheduler.get_schedule_group(Name=provider_id)
        if group.get("State") == "DELETING":
            return None
        return self.observed(node, group["Name"], {"name": group["Name"]}, {"arn": group["Arn"]})

    def _find(self, context: Context, node: Node) -> Observed | None:
        return self._read(context, node, node.properties["name"])

    def _create(self, context: Context, node: Node) -> Observed:
        arn = context.client.scheduler.create_schedule_group(
            Name=node.properties["name"], Tags=tag_list(context.tags(node))
        )["ScheduleGroupArn"]
        return self.observed(node, node.properties["name"], {}, {"arn": arn})

    def _update(self, context: Context, node: Node, provider_id: str, changes: Mapping[str, Any]) -> Observed:
        return self.read(context, node, provider_id)  # type: ignore[return-value]

    def _delete(self, context: Context, node: Node, provider_id: str) -> None:
        scheduler = context.client.scheduler
        if context.client.lacks("scheduler.group_deletion"):  # moto fails to delete groups: untag it
            arn = scheduler.get_schedule_group(Name=provider_id)["Arn"]
            scheduler.untag_resource(ResourceArn=arn, TagKeys=list(context.tags(node)))
            return
        scheduler.delete_schedule_group(Name=provider_id)


class ScheduleType(AwsNodeType):
    """A job's schedule: runs the trigger task of its service on schedule."""

    type = "aws.cron.schedule"
    invariant = frozenset({"enabled"})
    replace_on = frozenset({"name", "group"})

    def _observe(self, context: Context, node: Node, schedule: Mapping[str, Any]) -> Observed:
        properties = {
            "name": schedule["Name"],
            "group": schedule.get("GroupName"),
            "expression": schedule.get("ScheduleExpression"),
            "enabled": schedule.get("State") == "ENABLED",
        }
        outputs = {
            "arn": schedule.get("Arn"),
            "signing_key": node.properties["signing_key"],
            "region": context.settings.region,
            "endpoint_url": context.settings.endpoint_url,
        }
        return self.observed(node, schedule["Name"], properties, outputs)

    def _read(self, context: Context, node: Node, provider_id: str) -> Observed | None:
        schedule = context.client.scheduler.get_schedule(Name=provider_id, GroupName=node.properties["group"])
        return self._observe(context, node, schedule)

    def _find(self, context: Context, node: Node) -> Observed | None:
        return self._read(context, node, node.properties["name"])

    def _find_many(self, context: Context, nodes: list[Node]) -> dict[str, Observed | None]:
        # one listing per schedule group (no group yet: none of its schedules exists); then each found
        # schedule is read (a listing leaves its expression out)
        names: set[tuple[str, str]] = set()
        for group in sorted({node.properties["group"] for node in nodes}):
            try:
                listed = context.client.scheduler.pages("list_schedules", "Schedules", GroupName=group)
            except NotFound:
                continue
            names |= {(group, item["Name"]) for item in listed}
        return {
            n.id: self.find(context, n) if (n.properties["group"], n.properties["name"]) in names else None
            for n in nodes
        }

    def _request(self, context: Context, node: Node) -> dict[str, Any]:
        p = node.properties
        client = context.client
        cluster = (
            f"arn:{client.partition()}:ecs:{client.settings.region}:{client.account()}:cluster/{p['cluster']}"
        )
        region, account = client.settings.region, client.account()
        task = f"arn:{client.partition()}:ecs:{region}:{account}:task-definition/{p['family']}"
        overrides = {
            "containerOverrides": [
                {
                    "name": p["service"],
                    "command": ["python", "-m", "skyrig_aws.runtime.cron", p["job"], p["url"]],
                }
            ]
        }
        configuration = compute.network_configuration(context)["awsvpcConfiguration"]
        return {
            "Name": p["name"],
            "GroupName": p["group"],
            "ScheduleExpression": p["expression"],
            "ScheduleExpressionTimezone": "UTC",
            "FlexibleTimeWindow": {"Mode": "OFF"},
            "State": "ENABLED" if p["enabled"] else "DISABLED",
            "Description": f"skyrig cron job {p['job']}",
            "Target": {
                "Arn": cluster,
                "RoleArn": iam.role_arn(context, SCHEDULER_ROLE),
                "Input": json.dumps(overrides),
                "EcsParameters": {
                    "TaskDefinitionArn": task,
                    "LaunchType": "FARGATE",
                    "TaskCount": 1,
                    "NetworkConfiguration": {
                        "awsvpcConfiguration": {
                            "Subnets": configuration["subnets"],
                            "SecurityGroups": configuration["securityGroups"],
                            "AssignPublicIp": "DISABLED",
                        }
                    },
                },
                "RetryPolicy": {"MaximumRetryAttempts": 2},
            },
        }

    def _create(self, context: Context, node: Node) -> Observed:
        request = self._request(context, node)
        arn = context.client.scheduler.create_schedule(**request)["ScheduleArn"]
        # what was asked is what it is: no read back
        return self._observe(context, node, {**request, "Arn": arn})

    def _update(self, context: Context, node: Node, provider_id: str, changes: Mapping[str, Any]) -> Observed:
        context.client.scheduler.update_schedule(**self._request(context, node))
        return self.read(context, node, provider_id)  # type: ignore[return-value]

    def runtime_entry(self, node: Node, observed: Observed) -> dict[str, Any] | None:
        return {"type": self.type, **observed.outputs}

    def _delete(self, context: Context, node: Node, provider_id: str) -> None:
        try:
            context.client.scheduler.delete_schedule(Name=provider_id, GroupName=node.properties["group"])
        except ProviderError as error:
            if "NotFound" not in type(error).__name__ and "not found" not in str(error).lower():
                raise


class TriggerType(AwsNodeType):
    """Where another provider runs the services: the ECS task definition a service's schedules run (its
    container named after the service, in the services' image, under the trigger role), registered anew
    when its image changes; schedules run the family's latest revision."""

    type = "aws.cron.trigger"
    arn_types = ("ecs:task-definition",)
    replace_on = frozenset({"family", "service"})

    def inventory_id(self, arn: str) -> str:
        return arn.rpartition("/")[2].partition(":")[0]

    def _read(self, context: Context, node: Node, provider_id: str) -> Observed | None:
        task = context.client.ecs.describe_task_definition(taskDefinition=provider_id)["taskDefinition"]
        if task.get("status") != "ACTIVE":
            return None
        image = task["containerDefinitions"][0].get("image")
        properties = {"image": image if node.properties.get("image") else None}
        return self.observed(node, provider_id, properties, {"arn": task["taskDefinitionArn"]})

    def _find(self, context: Context, node: Node) -> Observed | None:
        return self._read(context, node, node.properties["family"])

    def _create(self, context: Context, node: Node) -> Observed:
        p = node.properties
        context.client.ecs.register_task_definition(
            family=p["family"],
            requiresCompatibilities=["FARGATE"],
            networkMode="awsvpc",
            cpu="256",
            memory="512",
            taskRoleArn=iam.role_arn(context, TRIGGER_ROLE),
            executionRoleArn=iam.role_arn(context, EXECUTION_ROLE),
            containerDefinitions=[
                {
                    "name": p["service"],
                    "image": p["image"] or compute.image(context),
                    "essential": True,
                    "memory": 512,
                    "command": ["python", "-m", "skyrig_aws.runtime.cron"],
                    "environment": [{"name": "AWS_REGION", "value": context.settings.region}],
                }
            ],
            tags=tag_list(context.tags(node), "key", "value"),
        )
        return self.read(context, node, p["family"])  # type: ignore[return-value]

    def _update(self, context: Context, node: Node, provider_id: str, changes: Mapping[str, Any]) -> Observed:
        return self._create(context, node)

    def _delete(self, context: Context, node: Node, provider_id: str) -> None:
        ecs = context.client.ecs
        arns = [
            arn
            for status in ("ACTIVE", "INACTIVE")
            for arn in ecs.pages(
                "list_task_definitions", "taskDefinitionArns", familyPrefix=provider_id, status=status
            )
            if arn.rpartition("/")[2].partition(":")[0] == provider_id
        ]
        for arn in arns:
            with contextlib.suppress(ProviderError):
                ecs.deregister_task_definition(taskDefinition=arn)
        for start in range(0, len(arns), 10):
            ecs.delete_task_definitions(taskDefinitions=arns[start : start + 10])


SIGNING_KEY = SigningKeyType()
GROUP = GroupType()
SCHEDULE = ScheduleType()
TRIGGER = TriggerType()
TYPES = (SIGNING_KEY, GROUP, SCHEDULE, TRIGGER)


def _services_image(scope: Scope) -> str | None:
    """The image the compute provider runs the services in (its ``image`` setting, which the core sets for
    each command), for the trigger tasks; None for the aws default (the ECR repository's ``latest``)."""
    running = scope.environment.settings.get(scope.environment.provider_for("compute"))
    return getattr(running, "image", None)


def expand(scope: Scope) -> list[Node]:
    jobs = scope.of_kind("cron_job")
    if not jobs:
        return []
    app, env = scope.app, scope.environment.name
    group = schedule_group_name(app, env)
    nodes = [
        scope.node(SIGNING_KEY_ID, SIGNING_KEY.type, {"name": signing_key_name(app, env)}),
        scope.node(GROUP_ID, GROUP.type, {"name": group}),
    ]
    compute_here = "service" in scope.kinds
    if not compute_here:  # another provider runs the services: an ECS cluster and trigger tasks of cron's own
        cluster = {"name": cluster_name(app, env), "insights": True}
        nodes.append(scope.node(COMPUTE_CLUSTER_ID, compute.CLUSTER.type, cluster))
        image = _services_image(scope)
        for service in sorted({job.service for job in jobs}):
            properties = {"family": task_family(app, env, service), "service": service, "image": image}
            depends = (TRIGGER_ROLE, EXECUTION_ROLE)
            nodes.append(scope.node(f"{TRIGGER_PREFIX}{service}", TRIGGER.type, properties, depends))
    for job in jobs:
        # where ECS runs the services, a schedule comes before its service (which depends on it), so the
        # service's first runtime config holds the job's entry: the schedule names the service's task
        # family and cluster only, and a run before the service answers fails as one during its rollout
        depends = [GROUP_ID, SIGNING_KEY_ID, COMPUTE_CLUSTER_ID, SCHEDULER_ROLE]
        depends += [network.SG_APP, *network.private_subnets()]
        if not compute_here:
            depends += [f"@service/{job.service}", f"{TRIGGER_PREFIX}{job.service}"]
        properties = {
            "name": schedule_name(app, env, job.name),
            "group": group,
            "job": job.name,
            "service": job.service,
            "expression": expression(job.schedule, job.every),
            "enabled": True,
            "cluster": cluster_name(app, env),
            "family": task_family(app, env, job.service),
            "url": compute.service_url(scope, job.service),
            "signing_key": signing_key_name(app, env),
        }
        nodes.append(
            scope.node(
                f"cron.job/{job.name}",
                SCHEDULE.type,
                properties,
                tuple(depends),
                resource=job,
            )
        )
    return nodes
