"""A create cut short at each of its steps, on moto: the next apply finds what the interrupted one made
(whatever subset of a node's AWS resources exists), adopts and finishes it, and makes no duplicate.

Every node type whose create makes more than one call is interrupted before each call after its first
(before the first, nothing exists: the conformance suite's intents with nothing made cover that, for
every node type). The interruption is an error raised in this process right before the call, where a
crash would have killed it: the node fails, its intent stays, state does not record it, exactly as
after a ``kill -9`` at that instant. Then the next apply must converge: it succeeds, state records every
resource the provider's inventory finds (no duplicate, no orphan), nothing is pending, the plan is
empty, and what the step left undone is done.
"""

from __future__ import annotations

import json
import shutil
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import boto3
import pytest

from skyrig.cli.testing import run_cli
from skyrig_aws import api
from skyrig_aws.conformance import settings

SHOP = Path(__file__).resolve().parents[3] / "examples" / "shop"
ENV = "dev"


class Interrupted(Exception):
    """The apply's process would have died right here."""


@pytest.fixture
def shop(tmp_path: Path, moto: str, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "shop"
    shutil.copytree(SHOP, root, ignore=shutil.ignore_patterns(".skyrig", "__pycache__"))
    lines = ['app = "shop"', f"[env.{ENV}]", 'type = "development"', 'provider = "aws"', f"[env.{ENV}.aws]"]
    lines += [f"{key} = {json.dumps(value)}" for key, value in settings(moto).items()]
    (root / "skyrig.toml").write_text("\n".join(lines) + "\n")
    monkeypatch.setenv("SKYRIG_RETRY_BASE_MS", "1")
    return root


@contextmanager
def interrupted_before(operation: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, int]]:
    """Within the block, the first call of AWS API ``operation`` (``CreateRule``) raises instead of being
    sent; yields a count of the interruptions."""
    seen = {"calls": 0, "interrupted": 0}
    lock = threading.Lock()
    original = api.make_client

    def before_call(model: Any, **_: Any) -> None:
        if model.name != operation:
            return
        with lock:
            seen["calls"] += 1
            first = seen["calls"] == 1
            seen["interrupted"] += first
        if first:
            raise Interrupted(f"interrupted right before {operation}")

    def make_client(session: Any, service: str, options: Any) -> Any:
        client = original(session, service, options)
        client.meta.events.register("before-call.*.*", before_call)
        return client

    monkeypatch.setattr(api, "make_client", make_client)
    try:
        yield seen
    finally:
        monkeypatch.setattr(api, "make_client", original)


def aws(moto: str, service: str) -> Any:
    return boto3.client(service, endpoint_url=moto, region_name="us-east-1")


def _converged(shop: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from skyrig.config import load_config
    from skyrig.engine.session import Session
    from skyrig_aws import provider

    session = Session(load_config(shop), ENV)
    try:
        records = session.store.nodes(ENV)
        recorded = {(r.type, r.provider_id) for r in records.values()}
        held = provider.inventory(session.context("aws"))
        pending = session.store.intents(ENV)
        nodes = len(session.graph)
    finally:
        session.store.close()
    orphans = [item for item in held if item not in recorded]
    assert not orphans, f"resources state does not record (made twice): {orphans}"
    assert not pending, f"intents left: {pending}"
    assert len(records) == nodes, "not every node is recorded"
    plan = run_cli(["plan", "--env", ENV, "--detailed-exitcode", "-C", str(shop)], capsys)
    assert plan.code == 0, f"the plan after the re-apply is not empty:\n{plan.text}"


def vpc_has_dns_host_names(moto: str) -> None:
    ec2 = aws(moto, "ec2")
    [vpc] = ec2.describe_vpcs(Filters=[{"Name": "tag:skyrig:env", "Values": [ENV]}])["Vpcs"]
    answer = ec2.describe_vpc_attribute(VpcId=vpc["VpcId"], Attribute="enableDnsHostnames")
    assert answer["EnableDnsHostnames"]["Value"] is True, "the adopted VPC has no DNS host names"


def one_nat_and_one_address(moto: str) -> None:
    ec2 = aws(moto, "ec2")
    nats = [
        n
        for n in ec2.describe_nat_gateways()["NatGateways"]
        if n["State"] not in ("deleted", "deleting", "failed")
    ]
    assert len(nats) == 1, nats
    addresses = ec2.describe_addresses(Filters=[{"Name": "tag:skyrig:node", "Values": ["network.nat/a"]}])
    assert len(addresses["Addresses"]) == 1, "the elastic IP allocated before the interruption was not reused"


def every_target_group_has_its_rule(moto: str) -> None:
    elb = aws(moto, "elbv2")
    groups = {g["TargetGroupArn"] for g in elb.describe_target_groups()["TargetGroups"]}
    [balancer] = elb.describe_load_balancers()["LoadBalancers"]
    [listener] = elb.describe_listeners(LoadBalancerArn=balancer["LoadBalancerArn"])["Listeners"]
    routed = {
        action["TargetGroupArn"]
        for rule in elb.describe_rules(ListenerArn=listener["ListenerArn"])["Rules"]
        for action in rule.get("Actions", [])
        if action.get("TargetGroupArn")
    }
    assert len(groups) == 3 and groups <= routed, "a service's target group has no listener rule"


def three_services(moto: str) -> None:
    ecs = aws(moto, "ecs")
    arns = ecs.list_services(cluster="shop-dev")["serviceArns"]
    assert len(arns) == 3, arns


def migrations_were_run(moto: str) -> None:
    ecs = aws(moto, "ecs")
    answer = ecs.describe_task_definition(taskDefinition="shop-dev-migrate-orders", include=["TAGS"])
    tags = {t["key"]: t["value"] for t in answer.get("tags", [])}
    assert tags.get("skyrig:migrated") == "true", "the migration task definition was adopted, never run"
    started = ecs.list_tasks(cluster="shop-dev", startedBy="skyrig-migrate")["taskArns"]
    assert started, "no migration task was started"


def public_bucket_has_its_policy(moto: str) -> None:
    s3 = aws(moto, "s3")
    public = [b["Name"] for b in s3.list_buckets()["Buckets"] if "email-assets" in b["Name"]]
    [name] = public
    policy = json.loads(s3.get_bucket_policy(Bucket=name)["Policy"])
    assert policy["Statement"][0]["Action"] == "s3:GetObject", "the public bucket was never opened"


def buckets_are_tagged(moto: str) -> None:
    s3 = aws(moto, "s3")
    for bucket in s3.list_buckets()["Buckets"]:
        tags = {t["Key"]: t["Value"] for t in s3.get_bucket_tagging(Bucket=bucket["Name"])["TagSet"]}
        assert tags["skyrig:env"] == ENV, bucket["Name"]


def cache_users_once(moto: str) -> None:
    cache = aws(moto, "elasticache")
    users = [u for u in cache.describe_users()["Users"] if u["UserId"].startswith("shop-dev")]
    assert len(users) == 2, users
    assert len(cache.describe_replication_groups()["ReplicationGroups"]) == 1


def nothing_more(moto: str) -> None:
    """What the step left undone is a property the plan compares: the empty plan shows it done."""


POINTS: list[tuple[str, str, Callable[[str], None]]] = [
    # the network
    ("network.vpc", "ModifyVpcAttribute", vpc_has_dns_host_names),
    ("network.gateway", "AttachInternetGateway", nothing_more),  # attached: an invariant
    ("network.subnet", "ModifySubnetAttribute", nothing_more),  # public: an invariant
    ("network.nat", "CreateNatGateway", one_nat_and_one_address),
    ("network.routes", "CreateRoute", nothing_more),  # default_route: an invariant
    ("network.routes", "AssociateRouteTable", nothing_more),  # subnets: an invariant
    ("network.sg", "AuthorizeSecurityGroupIngress", nothing_more),  # ingress: an invariant
    # roles, the load balancer, services, migrations
    ("iam.role", "PutRolePolicy", nothing_more),  # policy: an invariant
    ("compute.load_balancer", "CreateListener", nothing_more),  # listener_port: an invariant
    ("compute.service", "RegisterTaskDefinition", three_services),
    ("compute.service", "CreateTargetGroup", every_target_group_has_its_rule),
    ("compute.service", "CreateRule", every_target_group_has_its_rule),
    ("compute.service", "CreateService", three_services),
    ("sql.database", "RunTask", migrations_were_run),
    ("sql.database", "TagResource", migrations_were_run),
    # the cache cluster's parts, buckets, subscriptions
    ("cache.cluster", "CreateUser", cache_users_once),
    ("cache.cluster", "CreateReplicationGroup", cache_users_once),
    ("objects.bucket", "PutBucketTagging", buckets_are_tagged),
    ("objects.bucket", "PutBucketEncryption", nothing_more),  # encrypted: an invariant
    ("objects.bucket", "PutBucketPolicy", public_bucket_has_its_policy),
    ("pubsub.subscription", "Subscribe", nothing_more),  # subscribed: an invariant
]


@pytest.mark.parametrize(("node", "operation", "check"), POINTS, ids=[f"{n}-{o}" for n, o, _ in POINTS])
def test_a_create_cut_short_is_found_adopted_and_finished(
    shop: Path,
    moto: str,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    node: str,
    operation: str,
    check: Callable[[str], None],
) -> None:
    with interrupted_before(operation, monkeypatch) as seen:
        first = run_cli(["apply", "--env", ENV, "--yes", "--parallelism", "4", "-C", str(shop)], capsys)
    assert seen["interrupted"] == 1, f"the apply never called {operation}"
    assert first.code == 1 and f"interrupted right before {operation}" in first.err, first.err
    assert f"error: {node}" in first.err, f"{operation} was not {node}'s:\n{first.err}"
    again = run_cli(["apply", "--env", ENV, "--yes", "-C", str(shop)], capsys)
    assert again.code == 0, again.err
    _converged(shop, capsys)
    check(moto)
