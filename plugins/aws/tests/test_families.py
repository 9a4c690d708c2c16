"""Which families AWS serves beside another provider: its manifest's ``together`` agrees with its expansion.

Each family of the shop example is handed alone to aws, the rest to memory: ``skyrig check`` refuses
exactly the ones whose AWS nodes need AWS's compute (cron: a schedule runs its service's task definition in
the cluster) or a compute provider that runs AWS's migrations (sql: a database's migrations are an ECS task
definition, which memory does not run), and ``skyrig graph`` builds every environment check accepts.
Nothing calls AWS.
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
NEEDS_COMPUTE = {"cron"}
NEEDS_MIGRATIONS = {"sql"}


def _app(tmp_path: Path, on_aws: tuple[str, ...]) -> Path:
    root = tmp_path / "shop"
    shutil.copytree(SHOP, root, ignore=shutil.ignore_patterns(".skyrig", "__pycache__"))
    lines = ['app = "shop"', "[env.dev]", 'type = "development"', 'provider = "memory"']
    lines += [f'{family} = "aws"' for family in on_aws]
    lines += ["[env.dev.aws]", *(f"{k} = {json.dumps(v)}" for k, v in settings("http://127.0.0.1:9").items())]
    (root / "skyrig.toml").write_text("\n".join(lines) + "\n")
    return root


def test_the_manifest_says_which_families_need_compute() -> None:
    assert dict(provider.manifest.together) == {family: {"compute"} for family in NEEDS_COMPUTE}


@pytest.mark.parametrize("family", FAMILIES)
def test_a_family_alone_on_aws_is_refused_exactly_when_its_nodes_need_compute(
    family: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = _app(tmp_path, (family,))
    checked = run_cli(["check", "-C", str(root)], capsys)
    if family in NEEDS_COMPUTE:
        assert checked.code == 1
        message = " ".join(checked.err.split())
        assert f"env.dev.{family}: provider 'aws' serves {family} only beside its own compute" in message
        assert "hands compute to 'memory'" in message
        assert "set compute = 'aws' in [env.dev]" in message
        assert re.search(r"providers that do: [^)]*\bmemory\b", message), message
    elif family in NEEDS_MIGRATIONS:
        assert checked.code == 1
        message = " ".join(checked.err.split())
        assert (
            f"env.dev.{family}: provider 'aws' serves {family} only where the services run in the aws"
            in message
        )
        assert "(compute.aws_vpc)" in message and "compute provider 'memory' does not say so" in message
    else:
        assert checked.code == 0, checked.err
        graph = run_cli(["graph", "--env", "dev", "--format", "json", "-C", str(root)], capsys)
        assert graph.code == 0, graph.err
        nodes = json.loads(graph.out)["nodes"]
        assert any(node["provider"] == "aws" for node in nodes)


@pytest.mark.parametrize("family", sorted(NEEDS_COMPUTE | NEEDS_MIGRATIONS))
def test_beside_aws_compute_they_are_served(
    family: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = _app(tmp_path, (family, "compute"))
    assert run_cli(["check", "-C", str(root)], capsys).code == 0
    graph = run_cli(["graph", "--env", "dev", "--format", "json", "-C", str(root)], capsys)
    assert graph.code == 0, graph.err
