"""The cost estimate: figures worked out by hand from the price table, and the notes a plan of the shop
example on AWS carries (a plan with nothing recorded calls no AWS API: no emulator is needed)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from skyrig.cli.testing import run_cli
from skyrig.engine.graph import Node
from skyrig.engine.plan import Change, Plan
from skyrig_cost_estimate import estimate, plugin, prices

SHOP = Path(__file__).resolve().parents[3] / "examples" / "shop"
SOURCE = "plugin:cost-estimate"


def test_each_priced_node_type_by_hand():
    month = 730
    service = estimate("aws.compute.service", {"cpu": 512, "memory": 1024, "desired_count": 2})
    assert service.dollars == pytest.approx(2 * (0.5 * 0.04048 + 1 * 0.004445) * month)  # $36.04
    assert service.detail == "2 Fargate task(s) of 0.5 vCPU, 1 GB"
    rds = estimate("aws.sql.instance", {"instance_class": "db.m5.large", "storage_gb": 20, "multi_az": False})
    assert rds.dollars == pytest.approx(0.178 * month + 20 * 0.115 + 0.40)  # $132.64
    multi = estimate(
        "aws.sql.instance", {"instance_class": "db.m5.large", "storage_gb": 20, "multi_az": True}
    )
    assert multi.dollars == pytest.approx(2 * (0.178 * month + 20 * 0.115) + 0.40)
    cache = estimate("aws.cache.cluster", {"node_type": "cache.m6g.large", "replicas": 1})
    assert cache.dollars == pytest.approx(2 * 0.149 * month + 0.40)  # $217.94
    assert estimate("aws.network.nat_gateway", {}).dollars == pytest.approx((0.045 + 0.005) * month)
    assert estimate("aws.compute.load_balancer", {}).dollars == pytest.approx((0.0225 + 2 * 0.005) * month)
    assert estimate("aws.secrets.secret", {}).dollars == 0.40
    for free_or_by_use in ("aws.network.vpc", "aws.iam.role", "aws.pubsub.topic", "aws.objects.bucket"):
        assert estimate(free_or_by_use, {}) is None
    unknown = estimate("aws.sql.instance", {"instance_class": "db.x9.huge", "storage_gb": 20})
    assert unknown.dollars is None and "db.x9.huge" in unknown.detail


def test_the_table_says_where_its_prices_come_from_and_when():
    assert prices.REGION == "us-east-1" and prices.AS_OF == "2024"
    assert "us-east-1 on-demand list prices as published in 2024" in prices.SOURCE
    assert "not verified" in prices.SOURCE


def _service(action: str, count: int, fields=None, node_id: str = "compute.service/orders") -> Change:
    node = Node(node_id, "aws.compute.service", "aws", {"cpu": 512, "memory": 1024, "desired_count": count})
    return Change(node, action, fields or {})


def _notes(changes, environment=None):
    notes = plugin.skyrig_annotate_plan(Plan("shop", "prod", 3, changes), environment)
    return {(n.node, n.label): n.value for n in notes}


def test_a_change_shows_how_it_moves_the_cost_and_the_total_before_and_after():
    task = 0.024685 * 730  # one task of 0.5 vCPU and 1 GB a month: $18.02
    notes = _notes(
        [
            _service("update", 2, {"desired_count": [1, 2]}),  # a second task
            _service("create", 1, node_id="compute.service/payments"),
            _service("delete", 1, node_id="compute.service/legacy"),
            _service("noop", 1, node_id="compute.service/notifications"),
            Change(Node("network.vpc", "aws.network.vpc", "aws", {}), "create"),  # free: no note
        ]
    )
    assert notes[("compute.service/orders", "monthly cost")].startswith("$18.02 → $36.04 (2 Fargate task(s)")
    assert notes[("compute.service/payments", "monthly cost")].startswith("+$18.02 (")
    assert notes[("compute.service/legacy", "monthly cost")].startswith("-$18.02 (")
    assert notes[("compute.service/notifications", "monthly cost")].startswith("$18.02 (")
    assert ("network.vpc", "monthly cost") not in notes
    total = notes[(None, "monthly cost")]
    assert total.startswith(
        f"${4 * task:,.2f} after this plan for 4 priced AWS node(s) (now ${3 * task:,.2f}, +$18.02)"
    )
    assert "not verified" in notes[(None, "monthly cost: prices")]


def test_a_destroy_ends_at_nothing_and_an_unknown_class_is_said_and_left_out():
    rds = Node("sql.cluster", "aws.sql.instance", "aws", {"instance_class": "db.x9.huge", "storage_gb": 20})
    notes = _notes([_service("delete", 2), Change(rds, "delete")])
    assert notes[(None, "monthly cost")].startswith(
        "$0.00 after this plan for 1 priced AWS node(s) (now $36.04, -$36.04)"
    )
    assert (
        notes[("sql.cluster", "monthly cost")]
        == "not estimated: no price for RDS instance class 'db.x9.huge'"
    )
    assert "sql.cluster" in notes[(None, "monthly cost: not estimated")]


def test_nothing_to_say_of_a_plan_without_aws_nodes():
    memory = Change(Node("compute.service/orders", "memory.compute.service", "memory", {}), "create")
    assert plugin.skyrig_annotate_plan(Plan("shop", "dev", 0, [memory]), None) is None
    assert plugin.skyrig_annotate_plan(None, None) is None


@pytest.fixture
def shop(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The shop example with a production environment on AWS (an endpoint nobody listens on: a plan with
    nothing recorded calls no AWS API) and one on the memory provider."""
    root = tmp_path / "shop"
    shutil.copytree(SHOP, root, ignore=shutil.ignore_patterns(".skyrig", "__pycache__"))
    (root / "skyrig.toml").write_text(
        'app = "shop"\n[env.prod]\ntype = "production"\nprovider = "aws"\n[env.prod.aws]\n'
        'region = "eu-west-1"\nendpoint_url = "http://127.0.0.1:9"\nemulator = "moto"\n'
        '[env.dev]\ntype = "development"\nprovider = "memory"\n'
    )
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.setenv(name, "testing")
    return root


def test_a_plan_of_the_shop_on_aws_shows_each_cost_and_the_total(shop, capsys):
    result = run_cli(["plan", "--env", "prod", "--json", "-C", str(shop)], capsys)
    assert result.code == 0, result.err
    notes = [n for n in json.loads(result.out)["annotations"] if n["source"] == SOURCE]
    by_node = {n["node"]: n["value"] for n in notes if n["node"]}
    assert (
        by_node["compute.service/orders"] == "+$36.04 (2 Fargate task(s) of 0.5 vCPU, 1 GB)"
    )  # production: 2
    assert by_node["sql.cluster"].startswith("+$264.88 (RDS for PostgreSQL db.m5.large, Multi-AZ, 20 GB gp3")
    assert (
        by_node["cache.cluster/carts"]
        == "+$217.94 (ElastiCache, 2 node(s) of cache.m6g.large, password secret)"
    )
    assert "network.vpc" not in by_node
    [total] = [n["value"] for n in notes if n["node"] is None and n["label"] == "monthly cost"]
    assert total.startswith("$688.47 after this plan for 10 priced AWS node(s) (now $0.00, +$688.47)")
    [source] = [n["value"] for n in notes if n["label"] == "monthly cost: prices"]
    assert "as published in 2024" in source and "eu-west-1, where prices differ" in source

    table = run_cli(["plan", "--env", "prod", "-C", str(shop)], capsys).out
    assert "monthly cost: +$36.04 (2 Fargate task(s) of 0.5 vCPU, 1 GB)" in table
    assert "monthly cost: $688.47 after this plan" in table

    memory = json.loads(run_cli(["plan", "--env", "dev", "--json", "-C", str(shop)], capsys).out)
    assert not [n for n in memory["annotations"] if n["source"] == SOURCE], "no AWS node, nothing to say"
