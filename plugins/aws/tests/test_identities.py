"""What AWS gives a compute provider beside it (``compute = "eks"``): each service's identity as a managed
policy (``identity/SERVICE``) with exactly the grants the model gives it, and the network.

Read back from moto's server. The services here run on the memory provider, which stands in for any
compute provider that is not AWS: what AWS expands does not depend on which one it is.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import boto3
import pytest

from skyrig.cli.testing import run_cli
from skyrig_aws.conformance import settings

SHOP = Path(__file__).resolve().parents[3] / "examples" / "shop"
PATH = "/skyrig/shop-split/"


@pytest.fixture
def split(tmp_path: Path, moto: str, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The shop example with its services on another provider and pubsub, objects, secrets on AWS."""
    root = tmp_path / "shop"
    shutil.copytree(SHOP, root, ignore=shutil.ignore_patterns(".skyrig", "__pycache__"))
    lines = ['app = "shop"', "[env.split]", 'type = "development"', 'provider = "memory"']
    lines += ['pubsub = "aws"', 'objects = "aws"', 'secrets = "aws"', "[env.split.aws]"]
    lines += [f"{key} = {json.dumps(value)}" for key, value in settings(moto).items()]
    (root / "skyrig.toml").write_text("\n".join(lines) + "\n")
    monkeypatch.setenv("SKYRIG_RETRY_BASE_MS", "1")
    return root


def _policies(moto: str) -> dict[str, dict]:
    iam = boto3.client("iam", endpoint_url=moto, region_name="us-east-1")
    found = {}
    for policy in iam.list_policies(Scope="Local", PathPrefix=PATH)["Policies"]:
        version = iam.get_policy_version(PolicyArn=policy["Arn"], VersionId=policy["DefaultVersionId"])
        document = version["PolicyVersion"]["Document"]
        found[policy["PolicyName"]] = document if isinstance(document, dict) else json.loads(document)
    return found


def _statements(policy: dict) -> dict[str, tuple[list[str], list[str]]]:
    return {s["Sid"]: (s["Action"], s["Resource"]) for s in policy["Statement"] if s["Effect"] == "Allow"}


def test_each_service_identity_is_a_policy_with_exactly_its_grants(
    split: Path, moto: str, capsys: pytest.CaptureFixture[str]
) -> None:
    def skyrig(*args: str):
        return run_cli([*args, "-C", str(split)], capsys)

    applied = skyrig("apply", "--env", "split", "--yes")
    assert applied.code == 0, applied.err
    policies = _policies(moto)
    assert sorted(policies) == [
        "shop-split-notifications-identity",
        "shop-split-orders-identity",
        "shop-split-payments-identity",
    ]
    orders = _statements(policies["shop-split-orders-identity"])
    notifications = _statements(policies["shop-split-notifications-identity"])
    payments = _statements(policies["shop-split-payments-identity"])
    region = "arn:aws:sns:us-east-1:123456789012"
    # orders publishes order-created and nothing else; nobody else publishes
    assert orders["TopicOrderCreated"] == (["sns:Publish"], [f"{region}:shop-split-order-created.fifo"])
    assert not any("sns:Publish" in actions for actions, _ in notifications.values())
    assert not any("sns:Publish" in actions for actions, _ in payments.values())
    # notifications consumes its own queue and writes receipts; payments reads only the stripe key
    queue = "arn:aws:sqs:us-east-1:123456789012:shop-split-send-receipt.fifo"
    assert queue in notifications["SubscriptionSendReceipt"][1]
    assert "arn:aws:s3:::shop-split-receipts/*" in notifications["BucketReceiptsObjects"][1]
    assert not any(r.startswith("arn:aws:s3") for _, resources in payments.items() for r in resources[1])
    [stripe] = [s for s in payments if s.startswith("Secret")]
    assert payments[stripe][1] == [
        "arn:aws:secretsmanager:us-east-1:123456789012:secret:skyrig/shop/split/stripe-api-key-??????"
    ]
    # what another provider keeps (sql, cache, cron) is its own business: no grant of it here
    for statements in (orders, notifications, payments):
        assert not any(sid.startswith(("SqlDatabase", "CacheCluster", "Cron")) for sid in statements)
        for actions, resources in statements.values():
            assert "*" not in resources and not any(a == "*" or a.endswith(":*") for a in actions)

    again = skyrig("plan", "--env", "split", "--json")
    assert again.code == 0, again.err
    changes = [c for c in json.loads(again.out)["changes"] if c["action"] not in ("noop", "retain")]
    assert changes == []

    destroyed = skyrig("destroy", "--env", "split", "--yes", "--include-data")
    assert destroyed.code == 0, destroyed.err
    assert _policies(moto) == {}
