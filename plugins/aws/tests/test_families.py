"""Which families AWS serves beside another provider: its manifest's ``needs`` agrees with its expansion.

Each family of the shop example is handed alone to aws, the rest to memory: ``skyrig check`` refuses
exactly the ones whose AWS nodes need a compute provider in AWS's VPC (``compute.aws_vpc``: sql, whose
migrations are an ECS task definition that compute runs; cron, whose trigger tasks call the services at
SERVICE.DOMAIN from the VPC), which memory is not, and ``skyrig graph`` builds every environment check
accepts, with aws's compute and with EKS's. Nothing calls AWS.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

from skyrig.cli.testing import run_cli
from skyrig_aws import provider
from skyrig_aws.conformance import settings

SHOP = Path(__file__).resolve().parents[3] / "examples" / "shop"
FAMILIES = ("compute", "sql", "pubsub", "cache", "cron", "objects", "secrets")
NEEDS_VPC = {"sql", "cron"}


def _app(tmp_path: Path, on_aws: tuple[str, ...]) -> Path:
    root = tmp_path / "shop"
    shutil.copytree(SHOP, root, ignore=shutil.ignore_patterns(".skyrig", "__pycache__"))
    lines = ['app = "shop"', "[env.dev]", 'type = "development"', 'provider = "memory"']
    lines += [f'{family} = "aws"' for family in on_aws]
    lines += ["[env.dev.aws]", *(f"{k} = {json.dumps(v)}" for k, v in settings("http://127.0.0.1:9").items())]
    (root / "skyrig.toml").write_text("\n".join(lines) + "\n")
    return root


def test_the_manifest_says_which_families_need_a_compute_provider_in_its_vpc() -> None:
    assert dict(provider.manifest.together) == {}
    assert dict(provider.manifest.needs) == {family: {"compute.aws_vpc"} for family in NEEDS_VPC}
    assert "compute.aws_vpc" in provider.manifest.traits


@pytest.mark.parametrize("family", FAMILIES)
def test_a_family_alone_on_aws_is_refused_exactly_when_its_nodes_need_its_vpc(
    family: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = _app(tmp_path, (family,))
    checked = run_cli(["check", "-C", str(root)], capsys)
    if family in NEEDS_VPC:
        assert checked.code == 1
        message = " ".join(checked.err.split())
        assert (
            f"env.dev.{family}: provider 'aws' serves {family} only where the services run in the aws"
            in message
        )
        assert "(compute.aws_vpc)" in message and "compute provider 'memory' does not say so" in message
        assert re.search(r"a provider that does \([^)]*\baws\b", message), message
    else:
        assert checked.code == 0, checked.err
        graph = run_cli(["graph", "--env", "dev", "--format", "json", "-C", str(root)], capsys)
        assert graph.code == 0, graph.err
        nodes = json.loads(graph.out)["nodes"]
        assert any(node["provider"] == "aws" for node in nodes)


@pytest.mark.parametrize("compute", ["aws", "eks"])
@pytest.mark.parametrize("family", sorted(NEEDS_VPC))
def test_beside_a_compute_provider_in_the_vpc_they_are_served(
    family: str, compute: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = _app(tmp_path, (family, *(("compute",) if compute == "aws" else ())))
    if compute == "eks":
        text = (root / "skyrig.toml").read_text()
        (root / "skyrig.toml").write_text(
            text.replace('provider = "memory"', 'provider = "memory"\ncompute = "eks"')
        )
    assert run_cli(["check", "-C", str(root)], capsys).code == 0
    graph = run_cli(["graph", "--env", "dev", "--format", "json", "-C", str(root)], capsys)
    assert graph.code == 0, graph.err
