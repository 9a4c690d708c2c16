"""The AWS provider: development and production environments on AWS, provisioned with boto3.

A VPC per environment (public and private subnets over two zones, internet gateway, NAT, security groups),
ECS Fargate services behind an Application Load Balancer, RDS for PostgreSQL, SNS and SQS, ElastiCache
for Redis, S3 (with CloudFront for public buckets), Secrets Manager and EventBridge Scheduler; one module per
family (:mod:`skyrig_aws.network`, ...). This module stays light (no boto3): ``skyrig providers`` imports it.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from skyrig.hookspecs import Annotation
from skyrig.provider import KINDS, Manifest, Provider, hookimpl

if TYPE_CHECKING:
    from pathlib import Path

    from skyrig.provider import Context, Environment


class AwsProvider(Provider):
    """Provisions on AWS for the development and production environment types."""

    manifest = Manifest(
        name="aws",
        kinds=frozenset(KINDS),
        environment_types=frozenset({"development", "production"}),
        features=frozenset(
            {
                "pubsub.ordering",
                "pubsub.exactly_once",
                "pubsub.dead_letter",
                "bucket.public",
                "bucket.versioning",
                "cache.eviction_policy",
                "cron.managed",
            }
        ),
        settings="skyrig_aws.settings:AwsSettings",
        # the services run in the private subnets, whose default route is a NAT gateway (one per zone in
        # production, one in development), with the security groups' default egress left open
        # and its ECS tasks run a database's migrations (registered as a task definition) before the
        # service that owns it rolls out
        traits=frozenset({"compute.internet", "compute.aws_vpc"}),
        # where another provider runs the services, a database's migrations are a task definition that
        # provider runs (EKS: as a Kubernetes Job), and a schedule's trigger task calls the service at
        # SERVICE.DOMAIN from the VPC: that provider must run them there (ECS does)
        needs={"sql": frozenset({"compute.aws_vpc"}), "cron": frozenset({"compute.aws_vpc"})},
        description=(
            "AWS: VPC, ECS Fargate, RDS PostgreSQL, SNS/SQS, ElastiCache, S3, Secrets Manager, Scheduler"
        ),
    )

    modules = tuple(
        f"skyrig_aws.{family}"
        for family in ("network", "iam", "sql", "pubsub", "cache", "objects", "secrets", "compute", "cron")
    )
    data_planes = {
        "sql_database": "skyrig_aws.runtime:database",
        "topic": "skyrig_aws.runtime.pubsub:TopicClient",
        "subscription": "skyrig_aws.runtime.pubsub:SubscriptionClient",
        "cache_cluster": "skyrig_aws.runtime:cache",
        "bucket": "skyrig_aws.runtime.objects:BucketClient",
        "secret": "skyrig_aws.runtime.secrets:SecretClient",
        "cron_job": "skyrig_aws.runtime.cron:CronClient",
    }

    def connect(self, app: str, environment: Environment, settings: Any, root: Path) -> Any:
        from skyrig_aws.api import AwsClient

        return AwsClient(app, environment.name, settings)

    @hookimpl
    def skyrig_annotate_plan(self, plan: Any, environment: Environment) -> list[Annotation] | None:
        """How the services are reached: plain HTTP is a warning in production (set ``domain``)."""
        from skyrig_aws.compute import https_notes

        return https_notes(plan, environment)

    def deliver_runtime(self, context: Context, configs: dict[str, dict[str, Any]]) -> None:
        from skyrig_aws.delivery import deliver

        deliver(context, configs)

    # -- secrets --------------------------------------------------------------------------------------

    def set_secret(self, context: Context, name: str, value: str) -> None:
        from skyrig_aws.names import secret_name

        secret = secret_name(context.app, context.environment.name, name)
        try:
            context.client.secretsmanager.put_secret_value(SecretId=secret, SecretString=value)
        except Exception as error:
            from skyrig.provider import NotFound, UserError

            if isinstance(error, NotFound):
                raise UserError(
                    f"secret {name!r} does not exist in AWS Secrets Manager yet ({secret})",
                    f"run skyrig apply --env {context.environment.name} first",
                ) from None
            raise

    def secret_is_set(self, context: Context, name: str) -> bool:
        from skyrig.provider import NotFound
        from skyrig_aws.names import secret_name

        secret = secret_name(context.app, context.environment.name, name)
        try:
            found = context.client.secretsmanager.describe_secret(SecretId=secret)
        except NotFound:
            return False
        return any("AWSCURRENT" in stages for stages in (found.get("VersionIdsToStages") or {}).values())

    # -- what the conformance suite looks at -----------------------------------------------------

    def inventory(self, context: Context) -> list[tuple[str, str]]:
        """Every resource tagged with this app and environment (Resource Groups Tagging API), plus those
        that API does not cover: IAM roles (by path), ECR repositories and Scheduler schedule groups and
        schedules (by name). Several AWS resources of one node (a NAT gateway and its elastic IP, a cache
        cluster and its users) count once, as the node's main resource, while it exists; two main resources
        tagged as one node (a duplicate) are both listed. IAM roles and policies are found by path."""
        from skyrig.provider import NotFound
        from skyrig_aws import names
        from skyrig_aws.api import tag_dict

        client = context.client
        app, env = context.app, context.environment.name
        types = self.node_types()
        found = client.resourcegroupstaggingapi.pages(
            "get_resources",
            "ResourceTagMappingList",
            TagFilters=[{"Key": "skyrig:app", "Values": [app]}, {"Key": "skyrig:env", "Values": [env]}],
        )
        mains: dict[str, set[tuple[str, str]]] = {}
        parts: dict[str, tuple[str, str]] = {}
        for item in found:
            arn = item["ResourceARN"]
            node = tag_dict(item.get("Tags")).get("skyrig:node", arn)
            node_type = types.get(_type_of_node(node))
            if node_type is None:
                parts.setdefault(node, ("aws.other", arn))
            elif _is_main(arn, node_type.arn_types):
                provider_id = node_type.inventory_id(arn)
                if node_type.exists(context, provider_id):
                    mains.setdefault(node, set()).add((node_type.type, provider_id))
            else:
                parts.setdefault(node, (node_type.type, arn))
        resources: dict[str, tuple[str, str]] = {
            node: part for node, part in parts.items() if node not in mains
        }
        for node, held in mains.items():
            for index, entry in enumerate(sorted(held)):
                resources[node if index == 0 else f"{node}#{index}"] = entry
        path = names.role_path(app, env)
        for role in client.iam.pages("list_roles", "Roles", PathPrefix=path):
            resources[f"iam:{role['RoleName']}"] = ("aws.iam.role", role["RoleName"])
        for policy in client.iam.pages("list_policies", "Policies", Scope="Local", PathPrefix=path):
            resources[f"iam:{policy['Arn']}"] = ("aws.iam.policy", policy["Arn"])
        try:
            repositories = client.ecr.describe_repositories(repositoryNames=[names.repository_name(app, env)])
            for repository in repositories["repositories"]:
                resources[f"ecr:{repository['repositoryName']}"] = (
                    "aws.compute.repository",
                    repository["repositoryName"],
                )
        except NotFound:
            pass
        subnets = names.db_subnet_group_name(app, env)  # RDS subnet groups are not always in the tagging API
        try:
            client.rds.describe_db_subnet_groups(DBSubnetGroupName=subnets)
            resources[f"rds:{subnets}"] = ("aws.sql.subnet_group", subnets)
        except NotFound:
            pass
        group = names.schedule_group_name(app, env)
        try:
            arn = client.scheduler.get_schedule_group(Name=group)["Arn"]
            tags = tag_dict(client.scheduler.list_tags_for_resource(ResourceArn=arn).get("Tags"))
            if tags.get("skyrig:env") == env and tags.get("skyrig:app") == app:
                resources[f"scheduler:{group}"] = ("aws.cron.schedule_group", group)
            for schedule in client.scheduler.pages("list_schedules", "Schedules", GroupName=group):
                resources[f"schedule:{schedule['Name']}"] = ("aws.cron.schedule", schedule["Name"])
        except NotFound:
            pass
        return sorted(set(resources.values()))

    def dead_letters(self, context: Context, subscription: str) -> list[dict[str, Any]]:
        """The messages in the subscription's dead-letter queue, oldest first, left in place (each is
        received with a visibility timeout of 0, so it stays visible)."""
        from skyrig.provider import NotFound
        from skyrig_aws.names import queue_name

        sqs = context.client.sqs
        url = None
        for fifo in (False, True):
            name = queue_name(context.app, context.environment.name, subscription, fifo, dead_letter=True)
            try:
                url = sqs.get_queue_url(QueueName=name)["QueueUrl"]
                break
            except NotFound:
                continue
        if url is None:
            return []
        messages: dict[str, dict[str, Any]] = {}
        for _ in range(10):
            received = sqs.receive_message(
                QueueUrl=url,
                MaxNumberOfMessages=10,
                VisibilityTimeout=0,
                WaitTimeSeconds=0,
                MessageAttributeNames=["All"],
                AttributeNames=["All"],
            ).get("Messages", [])
            if not received:
                break
            fresh = [m for m in received if m["MessageId"] not in messages]
            if not fresh:
                break
            for message in fresh:
                messages[message["MessageId"]] = message
        ordered = sorted(messages.values(), key=lambda m: int(m["Attributes"].get("SentTimestamp", 0)))
        letters = []
        for message in ordered:
            attributes = message.get("MessageAttributes", {})
            attempts = attributes.get("skyrig-attempts", {}).get("StringValue")
            error = attributes.get("skyrig-error", {}).get("StringValue")
            letters.append(
                {
                    "data": json.loads(message["Body"]),
                    "attempts": int(attempts) if attempts else None,
                    "error": error,
                }
            )
        return letters

    def run_cron_job(self, context: Context, job: str, url: str) -> None:
        """Exactly what the schedule's trigger task does: the signing key from Secrets Manager, then a
        signed ``POST /__skyrig/cron/JOB`` to ``url``."""
        from skyrig.provider import signed_cron_call
        from skyrig_aws.names import signing_key_name

        name = signing_key_name(context.app, context.environment.name)
        key = context.client.secretsmanager.get_secret_value(SecretId=name)["SecretString"]
        signed_cron_call(url, job, key.encode())


NODE_TYPES = {
    "network.vpc": "aws.network.vpc",
    "network.gateway": "aws.network.internet_gateway",
    "network.subnet/": "aws.network.subnet",
    "network.nat/": "aws.network.nat_gateway",
    "network.routes/": "aws.network.route_table",
    "network.sg/": "aws.network.security_group",
    "iam.role/": "aws.iam.role",
    "sql.subnets": "aws.sql.subnet_group",
    "sql.cluster": "aws.sql.instance",
    "sql.database/": "aws.sql.database",
    "pubsub.topic/": "aws.pubsub.topic",
    "pubsub.subscription/": "aws.pubsub.subscription",
    "pubsub.dead_letter/": "aws.pubsub.dead_letter",
    "cache.subnets": "aws.cache.subnet_group",
    "cache.cluster/": "aws.cache.cluster",
    "objects.bucket/": "aws.objects.bucket",
    "objects.cdn/": "aws.objects.cdn",
    "secrets.secret/": "aws.secrets.secret",
    "compute.cluster": "aws.compute.cluster",
    "compute.repository": "aws.compute.repository",
    "compute.load_balancer": "aws.compute.load_balancer",
    "compute.certificate": "aws.compute.certificate",
    "compute.service/": "aws.compute.service",
    "cron.signing_key": "aws.cron.signing_key",
    "cron.group": "aws.cron.schedule_group",
    "cron.job/": "aws.cron.schedule",
    "cron.trigger/": "aws.cron.trigger",
}
"""Node id (or its prefix) -> node type: how the inventory names a tagged resource's node."""


def _type_of_node(node: str) -> str | None:
    for prefix, node_type in NODE_TYPES.items():
        if node == prefix or (prefix.endswith("/") and node.startswith(prefix)):
            return node_type
    return None


def _is_main(arn: str, arn_types: tuple[str, ...]) -> bool:
    """Whether ``arn`` is of one of ``arn_types`` (``ec2:vpc``, ``sqs``): the node's main resource."""
    parts = arn.split(":", 5)
    if len(parts) < 6:
        return False
    service, resource = parts[2], parts[5]
    kind = resource.split("/", 1)[0].split(":", 1)[0] if ("/" in resource or ":" in resource) else ""
    return f"{service}:{kind}" in arn_types or service in arn_types


provider = AwsProvider()
