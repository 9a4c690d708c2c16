"""ElastiCache's parameter group (``maxmemory-policy`` as declared, ``reserved-memory-percent`` 10,
``activedefrag yes``), which the ``emulator = "moto"`` setting skips because moto implements no parameter
group call. Here the provider makes those calls through its real boto3 clients against moto's server:
botocore hooks record every ElastiCache request's parameters (which botocore then validates against AWS's
model) and answer the parameter group operations moto lacks, from what was asked before (a stand-in for
those operations only, labelled as such); every other call goes to moto.
moto answers ``CreateReplicationGroup``, which names the group; it reads no parameter group back.
"""

from __future__ import annotations

import json
import shutil
import threading
from pathlib import Path
from typing import Any

import pytest
from botocore.awsrequest import AWSResponse

from skyrig.cli.testing import run_cli
from skyrig_aws import api
from skyrig_aws.conformance import settings

SHOP = Path(__file__).resolve().parents[3] / "examples" / "shop"
GROUP = "shop-dev-cache-carts"


class ParameterGroups:
    """The stand-in for the parameter group operations moto lacks, and the record of every ElastiCache
    request: ``requests`` holds ``(operation, parameters)`` in order."""

    answered = frozenset(
        {
            "CreateCacheParameterGroup",
            "ModifyCacheParameterGroup",
            "DescribeCacheParameterGroups",
            "DescribeCacheParameters",
            "DeleteCacheParameterGroup",
        }
    )

    def __init__(self) -> None:
        self.requests: list[tuple[str, dict[str, Any]]] = []
        self.groups: dict[str, dict[str, str]] = {}
        self._asked = threading.local()  # the request this thread's call is making
        self._lock = threading.Lock()

    def record(self, model: Any, params: dict[str, Any], **_: Any) -> None:
        """``before-parameter-build``: the call's parameters as the provider passed them."""
        self._asked.params = dict(params)
        with self._lock:
            self.requests.append((model.name, dict(params)))

    def of(self, operation: str) -> list[dict[str, Any]]:
        return [params for name, params in self.requests if name == operation]

    def __call__(self, model: Any, **_: Any) -> tuple[AWSResponse, dict] | None:
        """``before-call``: the answer to an operation moto lacks, or None for moto to answer."""
        params = self._asked.params
        if model.name not in self.answered:
            return None  # moto answers
        name = params.get("CacheParameterGroupName", "")
        if model.name == "CreateCacheParameterGroup":
            self.groups[name] = {}
            return _ok({"CacheParameterGroup": {"CacheParameterGroupName": name, "IsGlobal": False}})
        if name not in self.groups:
            return _not_found(name)
        if model.name == "ModifyCacheParameterGroup":
            for item in params["ParameterNameValues"]:
                self.groups[name][item["ParameterName"]] = item["ParameterValue"]
            return _ok({"CacheParameterGroupName": name})
        if model.name == "DescribeCacheParameterGroups":
            return _ok({"CacheParameterGroups": [{"CacheParameterGroupName": name}]})
        if model.name == "DeleteCacheParameterGroup":
            del self.groups[name]
            return _ok({})
        values = self.groups[name]  # DescribeCacheParameters, Source=user: what was modified
        found = [{"ParameterName": k, "ParameterValue": v, "Source": "user"} for k, v in values.items()]
        return _ok({"Parameters": found})


def _ok(parsed: dict[str, Any]) -> tuple[AWSResponse, dict]:
    return AWSResponse("http://stand-in", 200, {}, None), {
        **parsed,
        "ResponseMetadata": {"HTTPStatusCode": 200},
    }


def _not_found(name: str) -> tuple[AWSResponse, dict]:
    error = {"Code": "CacheParameterGroupNotFound", "Message": f"CacheParameterGroup {name} not found."}
    return AWSResponse("http://stand-in", 404, {}, None), {
        "Error": error,
        "ResponseMetadata": {"HTTPStatusCode": 404},
    }


@pytest.fixture
def recorded(tmp_path: Path, moto: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]):
    """The shop on moto (environment ``dev``) with the parameter group calls made, and their record."""
    root = tmp_path / "shop"
    shutil.copytree(SHOP, root, ignore=shutil.ignore_patterns(".skyrig", "__pycache__"))
    lines = ['app = "shop"', "[env.dev]", 'type = "development"', 'provider = "aws"', "[env.dev.aws]"]
    lines += [f"{key} = {json.dumps(value)}" for key, value in settings(moto).items()]
    (root / "skyrig.toml").write_text("\n".join(lines) + "\n")
    monkeypatch.setenv("SKYRIG_RETRY_BASE_MS", "1")
    monkeypatch.setattr(api, "MOTO_GAPS", api.MOTO_GAPS - {"elasticache.parameter_group"})
    stand_in = ParameterGroups()
    original = api.make_client

    def make_client(session: Any, service: str, aws_settings: Any) -> Any:
        client = original(session, service, aws_settings)
        if service == "elasticache":
            client.meta.events.register("before-parameter-build.elasticache.*", stand_in.record)
            client.meta.events.register_first("before-call.elasticache.*", stand_in)
        return client

    monkeypatch.setattr(api, "make_client", make_client)

    def skyrig(*args: str):
        return run_cli([*args, "--env", "dev", "-C", str(root)], capsys)

    return stand_in, skyrig


def test_the_cache_asks_for_its_parameter_group_and_reads_it_back(recorded) -> None:
    stand_in, skyrig = recorded
    result = skyrig("apply", "--yes")
    assert result.code == 0, result.err

    assert stand_in.of("CreateCacheParameterGroup") == [
        {
            "CacheParameterGroupName": GROUP,
            "CacheParameterGroupFamily": "redis7",
            "Description": "skyrig cache.cluster/carts",
            "Tags": stand_in.of("CreateCacheParameterGroup")[0]["Tags"],
        }
    ]
    tags = {t["Key"]: t["Value"] for t in stand_in.of("CreateCacheParameterGroup")[0]["Tags"]}
    assert tags["skyrig:node"] == "cache.cluster/carts"
    (modify,) = stand_in.of("ModifyCacheParameterGroup")
    assert modify["CacheParameterGroupName"] == GROUP
    values = {item["ParameterName"]: item["ParameterValue"] for item in modify["ParameterNameValues"]}
    # the shop's carts cache declares eviction_policy="allkeys-lru"
    assert values == {
        "maxmemory-policy": "allkeys-lru",
        "reserved-memory-percent": "10",
        "activedefrag": "yes",
    }
    (group,) = stand_in.of("CreateReplicationGroup")  # answered by moto
    assert group["CacheParameterGroupName"] == GROUP
    order = [name for name, _ in stand_in.requests]
    assert order.index("ModifyCacheParameterGroup") < order.index("CreateReplicationGroup")

    plan = skyrig("plan", "--json")  # read back: the group as asked, so nothing to change
    assert plan.code == 0, plan.err
    assert stand_in.of("DescribeCacheParameters")[-1] == {"CacheParameterGroupName": GROUP, "Source": "user"}
    changes = json.loads(plan.out)["changes"]
    assert "cache.cluster/carts" in {c["node"] for c in changes}
    assert [c["node"] for c in changes if c["action"] != "noop"] == []


def test_a_parameter_changed_in_the_console_is_restored(recorded) -> None:
    stand_in, skyrig = recorded
    assert skyrig("apply", "--yes").code == 0
    stand_in.groups[GROUP].update({"reserved-memory-percent": "0", "activedefrag": "no"})  # the console

    plan = skyrig("plan", "--json")
    changes = {c["node"]: c for c in json.loads(plan.out)["changes"] if c["action"] != "noop"}
    assert set(changes) == {"cache.cluster/carts"}
    assert set(changes["cache.cluster/carts"]["fields"]) == {"reserved_memory_percent", "active_defrag"}

    modified = len(stand_in.of("ModifyCacheParameterGroup"))
    assert skyrig("apply", "--yes").code == 0
    assert len(stand_in.of("ModifyCacheParameterGroup")) == modified + 1
    assert stand_in.groups[GROUP] == {
        "maxmemory-policy": "allkeys-lru",
        "reserved-memory-percent": "10",
        "activedefrag": "yes",
    }
