"""What only AWS has, read back from moto's server with real boto3 calls: RDS backups, encryption and
privacy; SQS redrive; ElastiCache TLS, auth and failover; IAM narrowness per service; tags; no mutating
call on a second apply; nothing left after destroy; console changes adopted or restored; crash and re-apply.

moto cannot emulate everything: RDS and ElastiCache endpoints have no server behind them (the data plane
for SQL and cache is tested against the conformance suite's stand-ins), ECS runs no task, Scheduler never
fires, and ElastiCache parameter and user groups are not implemented (the ``emulator = "moto"`` setting
skips those calls; see docs/providers/aws.md).
"""

from __future__ import annotations

import fnmatch
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import boto3
import pytest

from skyrig.cli.testing import run_cli
from skyrig_aws import api
from skyrig_aws.conformance import settings

SHOP = Path(__file__).resolve().parents[3] / "examples" / "shop"


@pytest.fixture
def shop(tmp_path: Path, moto: str, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A copy of the shop example with environments dev (development) and prod (production) on moto."""
    root = tmp_path / "shop"
    shutil.copytree(SHOP, root, ignore=shutil.ignore_patterns(".skyrig", "__pycache__"))
    lines = ['app = "shop"']
    for name, kind in (("dev", "development"), ("prod", "production")):
        lines += [f"[env.{name}]", f'type = "{kind}"', 'provider = "aws"', f"[env.{name}.aws]"]
        lines += [f"{key} = {json.dumps(value)}" for key, value in settings(moto).items()]
    (root / "skyrig.toml").write_text("\n".join(lines) + "\n")
    monkeypatch.setenv("SKYRIG_RETRY_BASE_MS", "1")
    return root


@pytest.fixture
def skyrig(shop: Path, capsys: pytest.CaptureFixture[str]):
    def run(*args: str):
        result = run_cli([*args, "-C", str(shop)], capsys)
        return result

    return run


def aws(moto: str, service: str):
    return boto3.client(service, endpoint_url=moto, region_name="us-east-1")


def applied(skyrig, env: str = "dev") -> None:
    result = skyrig("apply", "--env", env, "--yes")
    assert result.code == 0, result.err


def test_rds_keeps_backups_seven_days_encrypted_and_private(skyrig, moto: str) -> None:
    applied(skyrig)
    db = aws(moto, "rds").describe_db_instances(DBInstanceIdentifier="shop-dev-sql")["DBInstances"][0]
    assert db["BackupRetentionPeriod"] == 7
    assert db["StorageEncrypted"] is True
    assert db["PubliclyAccessible"] is False
    assert db["DBInstanceClass"] == "db.m5.large"
    assert db["MasterUserSecret"]["SecretArn"]  # the password lives in Secrets Manager only
    assert db["DeletionProtection"] is False  # development


def test_subscription_queue_redrives_to_its_dead_letter_queue(skyrig, moto: str) -> None:
    applied(skyrig)
    sqs = aws(moto, "sqs")
    url = sqs.get_queue_url(QueueName="shop-dev-send-receipt.fifo")["QueueUrl"]
    attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    redrive = json.loads(attributes["RedrivePolicy"])
    assert redrive["maxReceiveCount"] == 101  # max_retries 100 (the default) + the first delivery
    assert redrive["deadLetterTargetArn"].endswith(":shop-dev-send-receipt-dlq.fifo")
    assert attributes["VisibilityTimeout"] == "30"  # the ack deadline
    assert attributes["FifoQueue"] == "true"  # order-created is ordered


def test_cache_has_tls_auth_and_failover_in_production(skyrig, moto: str) -> None:
    applied(skyrig, "prod")
    group = aws(moto, "elasticache").describe_replication_groups(ReplicationGroupId="shop-prod-carts")[
        "ReplicationGroups"
    ][0]
    assert group["TransitEncryptionEnabled"] is True
    assert group["AtRestEncryptionEnabled"] is True
    assert group["UserGroupIds"] == ["shop-prod-carts"]
    assert group["AutomaticFailover"] == "enabled"
    assert group["MultiAZ"] == "enabled"
    assert group["CacheNodeType"] == "cache.m6g.large"


def _allowed(policy: dict, action: str, resource: str) -> bool:
    """Whether an identity policy of Allow statements grants ``action`` on ``resource``."""
    for statement in policy["Statement"]:
        if statement["Effect"] != "Allow":
            continue
        actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        resources = (
            statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
        )
        if any(fnmatch.fnmatchcase(action, a) for a in actions) and any(
            fnmatch.fnmatchcase(resource, r.replace("?", "[!/]")) for r in resources
        ):
            return True
    return False


def test_each_service_gets_exactly_what_the_model_says(skyrig, moto: str) -> None:
    applied(skyrig)
    iam = aws(moto, "iam")

    def policy(service: str) -> dict:
        document = iam.get_role_policy(RoleName=f"shop-dev-{service}", PolicyName="skyrig")["PolicyDocument"]
        return document if isinstance(document, dict) else json.loads(document)

    receipts = "arn:aws:s3:::shop-dev-receipts/a/1.txt"
    topic = "arn:aws:sns:us-east-1:123456789012:shop-dev-order-created.fifo"
    # notifications writes receipts; orders and payments do not touch the bucket at all
    assert _allowed(policy("notifications"), "s3:PutObject", receipts)
    assert not _allowed(policy("orders"), "s3:PutObject", receipts)
    assert not _allowed(policy("payments"), "s3:GetObject", receipts)
    # only orders publishes; nobody else may
    assert _allowed(policy("orders"), "sns:Publish", topic)
    assert not _allowed(policy("notifications"), "sns:Publish", topic)
    assert not _allowed(policy("payments"), "sns:Publish", topic)
    # each subscriber receives from its own queue only
    send_receipt = "arn:aws:sqs:us-east-1:123456789012:shop-dev-send-receipt.fifo"
    assert _allowed(policy("notifications"), "sqs:ReceiveMessage", send_receipt)
    assert not _allowed(policy("payments"), "sqs:ReceiveMessage", send_receipt)
    # the stripe key is payments' alone; no wildcard grants anywhere
    secret = "arn:aws:secretsmanager:us-east-1:123456789012:secret:skyrig/shop/dev/stripe-api-key-AbCdEf"
    assert _allowed(policy("payments"), "secretsmanager:GetSecretValue", secret)
    assert not _allowed(policy("orders"), "secretsmanager:GetSecretValue", secret)
    for service in ("notifications", "orders", "payments"):
        for statement in policy(service)["Statement"]:
            assert "*" not in statement["Resource"] and statement["Resource"] != "*"
            assert not any(a.endswith(":*") or a == "*" for a in statement["Action"])


def test_everything_is_tagged_and_destroy_leaves_nothing(skyrig, moto: str) -> None:
    applied(skyrig)
    tagging = aws(moto, "resourcegroupstaggingapi")
    found = tagging.get_resources(TagFilters=[{"Key": "skyrig:env", "Values": ["dev"]}])[
        "ResourceTagMappingList"
    ]
    assert len(found) > 20
    for item in found:
        tags = {t["Key"]: t["Value"] for t in item["Tags"]}
        assert tags["skyrig:app"] == "shop" and tags["skyrig:node"], item["ResourceARN"]
    roles = aws(moto, "iam").list_roles(PathPrefix="/skyrig/shop-dev/")["Roles"]
    for role in roles:
        tags = {
            t["Key"]: t["Value"] for t in aws(moto, "iam").list_role_tags(RoleName=role["RoleName"])["Tags"]
        }
        assert tags["skyrig:env"] == "dev"
    result = skyrig("destroy", "--env", "dev", "--include-data", "--yes")
    assert result.code == 0, result.err
    left = tagging.get_resources(TagFilters=[{"Key": "skyrig:env", "Values": ["dev"]}])[
        "ResourceTagMappingList"
    ]
    assert [i["ResourceARN"] for i in left if _live(moto, i["ResourceARN"])] == []
    assert aws(moto, "iam").list_roles(PathPrefix="/skyrig/shop-dev/")["Roles"] == []


def _live(moto: str, arn: str) -> bool:
    """moto keeps some deleted resources in its tagging answers (NAT gateways, ECS services): check."""
    if ":natgateway/" in arn:
        found = aws(moto, "ec2").describe_nat_gateways(NatGatewayIds=[arn.rpartition("/")[2]])["NatGateways"]
        return bool(found) and found[0]["State"] != "deleted"
    if ":ecs:" in arn and (":service/" in arn or ":cluster/" in arn):
        statuses = [item.get("status") for item in _ecs_status(moto, arn)]  # type: ignore[attr-defined]
        return bool(statuses) and "INACTIVE" not in statuses
    return True


def _ecs_status(moto: str, arn: str) -> list[dict]:
    ecs = aws(moto, "ecs")
    if ":cluster/" in arn:
        return ecs.describe_clusters(clusters=[arn])["clusters"]
    cluster = arn.split("/")[1]
    return ecs.describe_services(cluster=cluster, services=[arn])["services"]


def test_each_service_task_reads_its_runtime_config_from_its_parameter(skyrig, shop: Path, moto: str) -> None:
    """ECS runs no task in moto: what is checked is what a task would start with."""
    canary = "sk_live_CANARY_in_aws_1f2e"
    applied(skyrig)
    secrets = aws(moto, "secretsmanager")
    secrets.put_secret_value(SecretId="skyrig/shop/dev/stripe-api-key", SecretString=canary)
    applied(skyrig)
    ssm, ecs = aws(moto, "ssm"), aws(moto, "ecs")
    for service in ("notifications", "orders", "payments"):
        written = json.loads((shop / ".skyrig" / "runtime" / "dev" / f"{service}.json").read_text())
        parameter = ssm.get_parameter(Name=f"/skyrig/shop/dev/runtime/{service}")["Parameter"]
        assert json.loads(parameter["Value"]) == written, "the task gets the config apply computed"
        assert canary not in parameter["Value"], "a reference to the secret, never its value"
        definition = ecs.describe_task_definition(taskDefinition=f"shop-dev-{service}")["taskDefinition"]
        [container] = definition["containerDefinitions"]
        assert container["secrets"] == [{"name": "SKYRIG_RUNTIME_CONFIG", "valueFrom": parameter["ARN"]}]
    execution = json.dumps(
        aws(moto, "iam").get_role_policy(RoleName="shop-dev-execution", PolicyName="skyrig")
    )
    assert "ssm:GetParameters" in execution and "parameter/skyrig/shop/dev/runtime/*" in execution
    assert skyrig("destroy", "--env", "dev", "--yes", "--include-data").code == 0
    assert ssm.describe_parameters()["Parameters"] == [], "the parameters go with their services"


def test_a_first_apply_rolls_each_new_service_out_once_with_its_real_config(skyrig, shop: Path) -> None:
    api.CALLS.clear()
    applied(skyrig)
    created = api.CALLS["ecs", "CreateService"]
    assert created == 3
    # each service's parameter was made with the config the apply ends with (its cron jobs' entries
    # included), so no second rollout follows: no redeploy, no parameter written twice
    assert api.CALLS["ecs", "UpdateService"] == 0
    assert api.CALLS["ssm", "PutParameter"] == created
    orders = json.loads((shop / ".skyrig" / "runtime" / "dev" / "orders.json").read_text())
    assert "cron_job/expire-carts" in orders["resources"]


def test_a_second_apply_makes_no_mutating_call(skyrig) -> None:
    applied(skyrig)
    api.CALLS.clear()
    applied(skyrig)
    assert api.mutating_calls() == {}
    assert sum(api.CALLS.values()) > 0  # it did read


def test_console_changes_tunables_adopted_invariants_restored(skyrig, moto: str) -> None:
    applied(skyrig)
    rds = aws(moto, "rds")
    rds.modify_db_instance(
        DBInstanceIdentifier="shop-dev-sql",
        DBInstanceClass="db.m6g.xlarge",
        BackupRetentionPeriod=1,
        ApplyImmediately=True,
    )
    result = skyrig("drift", "--env", "dev")
    assert result.code == 0, result.err
    assert "adopted  sql.cluster: instance_class = 'db.m6g.xlarge'" in result.out
    assert "drifted  sql.cluster: backup_retention_days = 1" in result.out
    applied(skyrig)
    db = rds.describe_db_instances(DBInstanceIdentifier="shop-dev-sql")["DBInstances"][0]
    assert db["BackupRetentionPeriod"] == 7  # restored
    assert db["DBInstanceClass"] == "db.m6g.xlarge"  # kept
    plan = skyrig("plan", "--env", "dev", "--json")
    assert plan.code == 0
    assert not [c for c in json.loads(plan.out)["changes"] if c["action"] != "noop"]


def test_a_crash_after_create_is_adopted_not_duplicated(shop: Path, moto: str) -> None:
    environ = {
        **os.environ,
        "SKYRIG_CRASH_AFTER_CREATE": "5",
        "SKYRIG_RETRY_BASE_MS": "1",
        "SKYRIG_LOCK_TTL": "1",
    }
    crashed = subprocess.run(
        [
            sys.executable,
            "-m",
            "skyrig",
            "apply",
            "--env",
            "dev",
            "--yes",
            "--parallelism",
            "1",
            "-C",
            str(shop),
        ],
        env=environ,
        capture_output=True,
        text=True,
    )
    assert crashed.returncode == 137, crashed.stderr
    environ.pop("SKYRIG_CRASH_AFTER_CREATE")
    again = subprocess.run(
        [sys.executable, "-m", "skyrig", "apply", "--env", "dev", "--yes", "--wait", "-C", str(shop)],
        env=environ,
        capture_output=True,
        text=True,
    )
    assert again.returncode == 0, again.stderr
    assert "adopted" in again.stderr
    ec2 = aws(moto, "ec2")
    assert len(ec2.describe_vpcs(Filters=[{"Name": "tag:skyrig:env", "Values": ["dev"]}])["Vpcs"]) == 1
    subnets = ec2.describe_subnets(Filters=[{"Name": "tag:skyrig:env", "Values": ["dev"]}])["Subnets"]
    assert len(subnets) == 4


def test_an_existing_rds_instance_is_imported_and_keeps_its_name(skyrig, moto: str) -> None:
    rds = aws(moto, "rds")
    rds.create_db_instance(
        DBInstanceIdentifier="legacy-db",
        Engine="postgres",
        EngineVersion="17.4",
        DBInstanceClass="db.r6g.xlarge",
        AllocatedStorage=20,
        MasterUsername="skyrig",
        ManageMasterUserPassword=True,
        StorageEncrypted=True,
        BackupRetentionPeriod=1,
        PubliclyAccessible=False,
    )
    imported = skyrig("import", "--env", "dev", "sql.cluster", "legacy-db")
    assert imported.code == 0, imported.err
    plan = json.loads(skyrig("plan", "--env", "dev", "--json").out)
    [cluster] = [c for c in plan["changes"] if c["node"] == "sql.cluster"]
    assert cluster["action"] == "update", "adopted, not replaced: it keeps its name and its data"
    assert "identifier" not in cluster["fields"], "an imported resource keeps its own name"
    assert "instance_class" not in cluster["fields"], "a tunable: db.r6g.xlarge is adopted as it is"
    assert cluster["fields"]["backup_retention_days"] == [1, 7], "an invariant: restored"
    applied(skyrig)
    names = [db["DBInstanceIdentifier"] for db in rds.describe_db_instances()["DBInstances"]]
    assert names == ["legacy-db"], "no second instance was made"
    legacy = rds.describe_db_instances(DBInstanceIdentifier="legacy-db")["DBInstances"][0]
    assert legacy["BackupRetentionPeriod"] == 7 and legacy["DBInstanceClass"] == "db.r6g.xlarge"
    task = aws(moto, "ecs").describe_task_definition(taskDefinition="shop-dev-migrate-orders")[
        "taskDefinition"
    ]
    environment = {e["name"]: e["value"] for e in task["containerDefinitions"][0]["environment"]}
    assert environment["SKYRIG_DB_HOST"] == legacy["Endpoint"]["Address"], "migrations go to the imported one"


SERVICES = ("notifications", "orders", "payments")


def _images(moto: str) -> dict[str, str]:
    """Service -> the image of its task definition (the latest revision), as ECS has it."""
    ecs = aws(moto, "ecs")
    return {
        service: ecs.describe_task_definition(taskDefinition=f"shop-dev-{service}")["taskDefinition"][
            "containerDefinitions"
        ][0]["image"]
        for service in SERVICES
    }


def _updates(plan: dict) -> dict[str, dict]:
    return {c["node"]: c["fields"] for c in plan["changes"] if c["action"] not in ("noop", "retain")}


def test_apply_image_deploys_that_image_and_a_pinned_setting_is_deployed_again(skyrig, moto: str) -> None:
    """The image setting (here skyrig/app:test) pins the image: --image overrides it for one deploy, and
    says that a plan without --image goes back to it."""
    applied = skyrig("apply", "--env", "dev", "--yes", "--image", "shop:v2")
    assert applied.code == 0, applied.err
    assert "a plan without --image goes back to it" in applied.err, applied.err
    assert _images(moto) == dict.fromkeys(SERVICES, "shop:v2")
    plan = json.loads(skyrig("plan", "--env", "dev", "--json").out)
    changed = _updates(plan)
    assert changed["compute.service/orders"] == {"image": ["shop:v2", "skyrig/app:test"]}
    assert {
        "label": "image",
        "value": "skyrig/app:test (the aws setting 'image')",
        "node": None,
        "source": "skyrig",
    } in plan["annotations"]


@pytest.fixture
def unpinned(shop: Path) -> Path:
    """The shop as a new user has it: no image setting (the services run the ECR repository's latest)."""
    config = shop / "skyrig.toml"
    config.write_text(
        "".join(line for line in config.read_text().splitlines(True) if not line.startswith("image"))
    )
    return shop


def test_a_deployed_image_sticks_until_another_is_deployed(unpinned, skyrig, moto: str) -> None:
    """issue 13: apply --image example/app:1, then plan: nothing to change (it used to want every service
    back to the default image); --image on plan or apply changes it; status shows it."""
    first = skyrig("apply", "--env", "dev", "--yes", "--image", "example/app:1")
    assert first.code == 0, first.err
    assert _images(moto) == dict.fromkeys(SERVICES, "example/app:1")

    plan = json.loads(skyrig("plan", "--env", "dev", "--json").out)
    assert _updates(plan) == {}, "the deployed image is part of what was applied"
    assert {
        "label": "image",
        "value": "example/app:1 (as last applied)",
        "node": None,
        "source": "skyrig",
    } in plan["annotations"]
    again = skyrig("apply", "--env", "dev", "--yes")
    assert again.code == 0 and "nothing to do" in again.err, again.err
    assert _images(moto) == dict.fromkeys(SERVICES, "example/app:1")

    status = json.loads(skyrig("status", "--env", "dev", "--json").out)
    assert status["images"] == dict.fromkeys(SERVICES, "example/app:1")
    assert "image: the services run example/app:1" in skyrig("status", "--env", "dev").out

    planned = json.loads(skyrig("plan", "--env", "dev", "--json", "--image", "example/app:2").out)
    assert _updates(planned) == {
        f"compute.service/{service}": {"image": ["example/app:1", "example/app:2"]} for service in SERVICES
    }
    assert _images(moto) == dict.fromkeys(SERVICES, "example/app:1"), "a plan deploys nothing"


def test_a_saved_plan_deploys_the_image_it_was_made_with(unpinned, skyrig, moto: str, tmp_path: Path) -> None:
    assert skyrig("apply", "--env", "dev", "--yes", "--image", "example/app:1").code == 0
    saved = tmp_path / "deploy.plan"
    assert skyrig("plan", "--env", "dev", "--image", "example/app:2", "--out", str(saved)).code == 0

    refused = skyrig("apply", "--env", "dev", str(saved), "--image", "example/app:3")
    assert refused.code == 1 and "deploys image example/app:2, not example/app:3" in refused.err, refused.err
    applied = skyrig("apply", "--env", "dev", str(saved))  # no --image: the plan's
    assert applied.code == 0, applied.err
    assert _images(moto) == dict.fromkeys(SERVICES, "example/app:2")
    assert _updates(json.loads(skyrig("plan", "--env", "dev", "--json").out)) == {}
