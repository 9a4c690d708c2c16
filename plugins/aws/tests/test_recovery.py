"""State lost, on moto: the next apply adopts every resource of the shop (no create, no change, so no
twin and no ``AlreadyExists``), and ``skyrig state recover`` rebuilds state from AWS with reads only, one
lookup call per node type where AWS lists in bulk."""

from __future__ import annotations

import json
import shutil
from collections import Counter
from pathlib import Path

import pytest

from skyrig.cli.testing import run_cli
from skyrig_aws import api
from skyrig_aws.conformance import settings

SHOP = Path(__file__).resolve().parents[3] / "examples" / "shop"
ENV = "dev"


@pytest.fixture
def shop(tmp_path: Path, moto: str, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "shop"
    shutil.copytree(SHOP, root, ignore=shutil.ignore_patterns(".skyrig", "__pycache__"))
    lines = ['app = "shop"', f"[env.{ENV}]", 'type = "development"', 'provider = "aws"', f"[env.{ENV}.aws]"]
    lines += [f"{key} = {json.dumps(value)}" for key, value in settings(moto).items()]
    (root / "skyrig.toml").write_text("\n".join(lines) + "\n")
    monkeypatch.setenv("SKYRIG_RETRY_BASE_MS", "1")
    return root


@pytest.fixture
def skyrig(shop: Path, capsys: pytest.CaptureFixture[str]):
    return lambda *args: run_cli([*args, "-C", str(shop)], capsys)


def _applied(skyrig) -> dict[str, str]:
    result = skyrig("apply", "--env", ENV, "--yes")
    assert result.code == 0, result.err
    return _ids(skyrig)


def _ids(skyrig) -> dict[str, str]:
    status = json.loads(skyrig("status", "--env", ENV, "--json").out)
    return {node["id"]: node["provider_id"] for node in status["nodes"]}


def _lose_state(shop: Path) -> None:
    for name in ("state.db", "state.db-wal", "state.db-shm"):
        (shop / ".skyrig" / name).unlink(missing_ok=True)


def _node_types(skyrig) -> Counter[str]:
    graph = json.loads(skyrig("graph", "--env", ENV, "--format", "json").out)
    return Counter(node["type"] for node in graph["nodes"])


def test_an_apply_after_state_was_lost_adopts_everything_with_no_mutating_call(skyrig, shop: Path) -> None:
    before = _applied(skyrig)
    _lose_state(shop)
    api.CALLS.clear()
    again = skyrig("apply", "--env", ENV, "--yes")
    assert again.code == 0, again.err
    # state was lost, not the resources: nothing is made or changed. The runtime configs are delivered
    # again where they changed: the public bucket's CDN URL, which its create could not know yet (the
    # distribution comes after the bucket), is now in its adopted outputs
    changed = set(api.mutating_calls())
    assert changed <= {("ssm", "PutParameter"), ("ecs", "UpdateService")}, sorted(changed)
    assert again.err.count(" adopted ") == len(before)
    assert _ids(skyrig) == before
    assert skyrig("plan", "--env", ENV, "--detailed-exitcode").code == 0


def test_state_recover_rebuilds_state_from_aws_with_reads_only(skyrig, shop: Path) -> None:
    before = _applied(skyrig)
    types = _node_types(skyrig)
    _lose_state(shop)
    api.CALLS.clear()
    recovered = skyrig("state", "recover", "--env", ENV)
    assert recovered.code == 0, recovered.err
    assert api.mutating_calls() == {}, "recover changes nothing in AWS"
    assert f"{len(before)} adopted, 0 not found" in recovered.out, recovered.out
    assert sum(api.CALLS.values()) < 3 * len(types), f"too many lookups: {sorted(api.CALLS.items())}"
    assert _ids(skyrig) == before
    assert skyrig("plan", "--env", ENV, "--detailed-exitcode").code == 0
    refused = skyrig("state", "recover", "--env", ENV)
    assert refused.code == 1 and "is not empty" in refused.err
