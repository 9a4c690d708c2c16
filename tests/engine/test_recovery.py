"""State lost or emptied: the next apply looks every unrecorded node up and adopts it (no twin), and
``skyrig state recover`` rebuilds state from the cloud; lookups are one ``find_many`` per node type."""

from __future__ import annotations

import json
from collections import Counter

import pytest

from .conftest import cloud

NODES = 20  # the shop's graph on the memory provider


def _lose_state(app) -> None:
    for name in ("state.db", "state.db-wal", "state.db-shm"):
        (app / ".skyrig" / name).unlink(missing_ok=True)


def _empty_state(app) -> None:
    """Every record of dev forgotten, under the lease, as a store emptied by hand would be."""
    from skyrig.config import load_config
    from skyrig.engine.session import Session

    session = Session(load_config(app), "dev")
    try:
        with session.locked() as fence:
            for node in session.store.nodes("dev"):
                session.store.forget("dev", fence, node)
        assert session.store.nodes("dev") == {}
    finally:
        session.store.close()


def _ids(skyrig) -> dict[str, str]:
    state = json.loads(skyrig("status", "--env", "dev", "--json").out)
    return {node["id"]: node["provider_id"] for node in state["nodes"]}


def _converged(app, skyrig, before: dict[str, str]) -> None:
    inventory = cloud(app).inventory("shop", "dev")
    per_node = Counter(node for _, _, node in inventory)
    assert {n: c for n, c in per_node.items() if c > 1} == {}, "a resource was made twice"
    assert len(inventory) == NODES
    assert _ids(skyrig) == before, "every node is recorded as the very resource it was"
    assert skyrig("plan", "--env", "dev", "--detailed-exitcode").code == 0


@pytest.mark.parametrize("lose", [_lose_state, _empty_state], ids=["deleted", "emptied"])
def test_an_apply_after_state_was_lost_adopts_everything_and_makes_no_twin(app, skyrig, lose):
    assert skyrig("apply", "--env", "dev", "--yes").code == 0
    before = _ids(skyrig)
    lose(app)
    plan = skyrig("plan", "--env", "dev")
    assert f"{NODES} to create" in plan.out, "without state, the plan can only say create"
    again = skyrig("apply", "--env", "dev", "--yes")
    assert again.code == 0, again.err
    assert again.err.count(" adopted ") == NODES, again.err
    assert " created " not in again.err
    _converged(app, skyrig, before)


def test_lookups_are_one_list_call_per_node_type(app, skyrig, monkeypatch):
    from skyrig_memory.cloud import MemoryCloud

    listed: Counter[str] = Counter()
    found: Counter[str] = Counter()
    original_list, original_find = MemoryCloud.list, MemoryCloud.find

    def counting_list(self, type_, app_name, env):
        listed[type_] += 1
        return original_list(self, type_, app_name, env)

    def counting_find(self, type_, owner):
        found[type_] += 1
        return original_find(self, type_, owner)

    monkeypatch.setattr(MemoryCloud, "list", counting_list)
    monkeypatch.setattr(MemoryCloud, "find", counting_find)
    assert skyrig("apply", "--env", "dev", "--yes").code == 0
    graph = json.loads(skyrig("graph", "--env", "dev", "--format", "json").out)
    types = Counter(node["type"] for node in graph["nodes"])
    assert dict(listed) == dict.fromkeys(types, 1), "one list call per node type, before the creates"
    assert found == Counter(), "no lookup one node at a time"


def test_the_found_resource_is_brought_up_to_date(app, skyrig):
    assert skyrig("apply", "--env", "dev", "--yes").code == 0
    before = _ids(skyrig)
    memory = cloud(app)
    memory.console_edit(int(before["sql.cluster"]), {"backup_retention_days": 0, "instance_class": "db.x"})
    _lose_state(app)
    assert skyrig("apply", "--env", "dev", "--yes").code == 0
    cluster = memory.get(int(before["sql.cluster"]))
    assert cluster["backup_retention_days"] == 7 and cluster["instance_class"] == "db.m5.large", (
        "without state, the app's values win"
    )
    _converged(app, skyrig, before)


def test_a_found_resource_that_cannot_become_the_node_is_replaced(app, skyrig):
    assert skyrig("apply", "--env", "dev", "--yes").code == 0
    before = _ids(skyrig)
    topic = "pubsub.topic/order-created"
    memory = cloud(app)
    ordered = memory.get(int(before[topic]))["ordered"]
    memory.console_edit(int(before[topic]), {"ordered": not ordered})  # replace_on: not in place
    _lose_state(app)
    again = skyrig("apply", "--env", "dev", "--yes")
    assert again.code == 0, again.err
    assert memory.get(int(before[topic])) is None, "the resource that cannot be adopted is deleted"
    after = _ids(skyrig)
    assert after[topic] != before[topic]
    assert memory.get(int(after[topic]))["ordered"] == ordered
    _converged(app, skyrig, {**before, topic: after[topic]})


def test_a_failed_lookup_fails_only_its_nodes_and_creates_nothing_for_them(app, skyrig, monkeypatch):
    from skyrig.provider import ProviderError
    from skyrig_memory.cloud import MemoryCloud

    original = MemoryCloud.list

    def failing(self, type_, app_name, env):
        if type_ == "memory.objects.bucket":
            raise ProviderError("memory cloud: listing buckets is refused")
        return original(self, type_, app_name, env)

    def failing_find(self, type_, owner):
        raise ProviderError("memory cloud: finding buckets is refused")

    monkeypatch.setattr(MemoryCloud, "list", failing)
    monkeypatch.setattr(MemoryCloud, "find", failing_find)
    result = skyrig("apply", "--env", "dev", "--yes")
    assert result.code == 1
    assert "error: objects.bucket/receipts: looking it up before creating it failed" in result.err
    assert "memory cloud: finding buckets is refused" in result.err
    made = {node for _, _, node in cloud(app).inventory("shop", "dev")}
    assert not {n for n in made if n.startswith("objects.bucket/")}, "nothing made for what was not looked up"
    assert "network" in made, "the other nodes went ahead"


def test_state_recover_rebuilds_lost_state(app, skyrig):
    assert skyrig("apply", "--env", "dev", "--yes").code == 0
    before = _ids(skyrig)
    _lose_state(app)
    recovered = skyrig("state", "recover", "--env", "dev")
    assert recovered.code == 0, recovered.err
    assert recovered.out.count("adopted") >= NODES and f"{NODES} adopted, 0 not found" in recovered.out
    _converged(app, skyrig, before)
    assert skyrig("apply", "--env", "dev", "--yes").code == 0, "the next apply writes the runtime configs"
    assert (app / ".skyrig" / "runtime" / "dev" / "orders.json").exists()


def test_state_recover_refuses_state_that_is_there_unless_forced(app, skyrig):
    assert skyrig("apply", "--env", "dev", "--yes").code == 0
    before = _ids(skyrig)
    refused = skyrig("state", "recover", "--env", "dev")
    assert refused.code == 1
    assert f"state of environment 'dev' is not empty ({NODES} node(s) recorded)" in refused.err
    assert "--force" in refused.err
    forced = skyrig("state", "recover", "--env", "dev", "--force", "--json")
    assert forced.code == 0, forced.err
    data = json.loads(forced.out)
    assert (len(data["kept"]), data["adopted"], data["missing"]) == (NODES, {}, [])
    assert _ids(skyrig) == before


def test_state_recover_says_what_it_did_not_find_and_the_next_apply_makes_it(app, skyrig):
    assert skyrig("apply", "--env", "dev", "--yes").code == 0
    before = _ids(skyrig)
    memory = cloud(app)
    memory.delete(int(before["objects.bucket/receipts"]))
    cluster = int(before["sql.cluster"])
    memory.console_edit(cluster, {"instance_class": "db.x", "backup_retention_days": 1})
    _lose_state(app)
    recovered = skyrig("state", "recover", "--env", "dev", "--json")
    assert recovered.code == 0, recovered.err
    data = json.loads(recovered.out)
    assert data["missing"] == ["objects.bucket/receipts"] and len(data["adopted"]) == NODES - 1
    plan = json.loads(skyrig("plan", "--env", "dev", "--json").out)
    changes = {c["node"]: c for c in plan["changes"] if c["action"] != "noop"}
    assert changes["objects.bucket/receipts"]["action"] == "create"
    assert changes["sql.cluster"]["fields"] == {
        "instance_class": ["db.x", "db.m5.large"],
        "backup_retention_days": [1, 7],
    }, "without state the app wins, tunables included: the plan shows it"
    assert skyrig("apply", "--env", "dev", "--yes").code == 0
    after = _ids(skyrig)
    assert memory.get(cluster)["instance_class"] == "db.m5.large"
    _converged(app, skyrig, {**before, "objects.bucket/receipts": after["objects.bucket/receipts"]})


def test_find_many_finds_one_by_one_by_default():
    from skyrig.engine.contract import NodeType
    from skyrig.engine.graph import Node

    class Named(NodeType):
        type = "test.named"

        def find(self, context, node):
            return None if node.id == "b" else node.id

    answer = Named().find_many(None, [Node("a", "test.named", "p"), Node("b", "test.named", "p")])  # type: ignore[arg-type]
    assert answer == {"a": "a", "b": None}
