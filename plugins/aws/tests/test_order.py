"""Dependency order as AWS needs it, read from ``skyrig graph`` of the shop example (nothing is called).

A role's policy names its resources by ARN, and IAM takes an ARN before the resource exists: a role waits
only for the one ARN it cannot know from names, the RDS master password's secret (RDS names it when the
instance is created). On AWS a cache cluster takes minutes; no role, and so no migration or service that
does not use the cache, may wait for it. That the shop still applies and converges with this order is
``test_aws.py``'s (``test_a_second_apply_makes_no_mutating_call``). Also from the graph: the scheme a cron
job calls its service with follows the certificate that serves it.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from skyrig.cli.testing import run_cli

SHOP = Path(__file__).resolve().parents[3] / "examples" / "shop"
CERTIFICATE = "arn:aws:acm:us-east-1:123456789012:certificate/abc"


@pytest.fixture
def graph(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    """The graph (``skyrig graph --format json``) of the shop in an environment of type ``kind`` on aws
    (compute on ``compute``)."""
    root = tmp_path / "shop"
    shutil.copytree(SHOP, root, ignore=shutil.ignore_patterns(".skyrig", "__pycache__"))

    def expand(kind: str, compute: str = "aws", **aws: str) -> dict[str, dict]:
        lines = ['app = "shop"', "[env.cloud]", f'type = "{kind}"', 'provider = "aws"']
        if compute != "aws":
            lines += [f'compute = "{compute}"']
        lines += ["[env.cloud.aws]", 'endpoint_url = "http://127.0.0.1:9"', 'emulator = "moto"']
        lines += [f"{key} = {json.dumps(value)}" for key, value in aws.items()]
        (root / "skyrig.toml").write_text("\n".join(lines) + "\n")
        result = run_cli(["graph", "--env", "cloud", "--format", "json", "-C", str(root)], capsys)
        assert result.code == 0, result.err
        return {node["id"]: node for node in json.loads(result.out)["nodes"]}

    return expand


def _ancestors(nodes: dict[str, dict], node: str) -> set[str]:
    found: set[str] = set()
    todo = list(nodes[node]["depends_on"])
    while todo:
        current = todo.pop()
        if current not in found:
            found.add(current)
            todo.extend(nodes[current]["depends_on"])
    return found


@pytest.mark.parametrize("kind", ["development", "production"])
def test_a_role_waits_only_for_the_arn_it_cannot_know(graph, kind: str) -> None:
    nodes = graph(kind)
    roles = {i: n for i, n in nodes.items() if n["type"] in ("aws.iam.role", "aws.iam.policy")}
    assert {"iam.role/orders", "iam.role/payments", "iam.role/notifications"} <= set(roles)
    for node_id, role in roles.items():
        names_rds_secret = "{sql_secret}" in json.dumps(role["properties"]["policy"])
        assert role["depends_on"] == (["sql.cluster"] if names_rds_secret else []), node_id
    # orders grants its cache's password secret (by name) and reads the database's: it waits for RDS only
    orders = json.dumps(roles["iam.role/orders"]["properties"]["policy"])
    assert "secret:skyrig/shop/cloud/cache/carts-??????" in orders
    assert roles["iam.role/orders"]["depends_on"] == ["sql.cluster"]
    # notifications reads the cron signing key by name: it waits for nothing
    assert roles["iam.role/notifications"]["depends_on"] == []


@pytest.mark.parametrize("kind", ["development", "production"])
def test_no_migration_and_no_service_waits_for_a_cache_it_does_not_use(graph, kind: str) -> None:
    nodes = graph(kind)
    caches = {i for i, n in nodes.items() if n["type"] == "aws.cache.cluster"}
    assert caches == {"cache.cluster/carts"}
    for node_id, node in nodes.items():
        if node["type"] in ("aws.iam.role", "aws.iam.policy", "aws.sql.database"):
            assert not caches & _ancestors(nodes, node_id), node_id
    services = {i for i, n in nodes.items() if n["type"] == "aws.compute.service"}
    waiting = {s for s in services if caches & _ancestors(nodes, s)}
    assert waiting == {"compute.service/orders"}  # the one service that uses the cache


def test_beside_another_compute_provider_each_identity_waits_only_for_the_rds_secret(graph) -> None:
    nodes = graph("development", compute="eks")
    identities = {i: n for i, n in nodes.items() if n["type"] == "aws.iam.policy"}
    assert identities
    for node_id, identity in identities.items():
        names_rds_secret = "{sql_secret}" in json.dumps(identity["properties"]["policy"])
        assert identity["depends_on"] == (["sql.cluster"] if names_rds_secret else []), node_id
        assert not {d for d in _ancestors(nodes, node_id) if d.startswith("cache.")}, node_id


@pytest.mark.parametrize(
    ("compute", "aws", "scheme"),
    [
        ("aws", {}, "http"),
        ("aws", {"domain": "shop.example.com"}, "https"),  # aws requests the certificate
        ("eks", {"domain": "shop.example.com"}, "http"),  # EKS serves the domain with no certificate
        ("eks", {"domain": "shop.example.com", "certificate_arn": CERTIFICATE}, "https"),
    ],
)
def test_a_cron_job_calls_its_service_over_https_exactly_where_a_certificate_serves_it(
    graph, compute: str, aws: dict[str, str], scheme: str
) -> None:
    nodes = graph("development", compute, **aws)
    jobs = {i: n for i, n in nodes.items() if n["type"] == "aws.cron.schedule"}
    assert jobs
    host = aws.get("domain", "shop-cloud.internal")
    for job in jobs.values():
        assert job["properties"]["url"].startswith(f"{scheme}://"), job["properties"]["url"]
        assert job["properties"]["url"].endswith(f".{host}")
    assert ("compute.certificate" in nodes) == (compute == "aws" and "domain" in aws)
