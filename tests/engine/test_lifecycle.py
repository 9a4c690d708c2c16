"""plan -> apply -> an empty re-plan -> drift (tunable adopted, invariant restored) -> destroy leaves nothing."""

from __future__ import annotations

import json

import pytest

from .conftest import cloud


def _node(app, env: str, node_id: str):
    from skyrig.state.sqlite import SQLiteStore

    store = SQLiteStore(app / ".skyrig" / "state.db")
    try:
        return store.nodes(env)[node_id]
    finally:
        store.close()


def test_the_whole_cycle(app, skyrig):
    plan = skyrig("plan", "--env", "dev", "--detailed-exitcode")
    assert plan.code == 2, plan.err
    assert "20 to create" in plan.out

    applied = skyrig("apply", "--env", "dev", "--yes")
    assert applied.code == 0, applied.err
    inventory = cloud(app).inventory("shop", "dev")
    assert len(inventory) == 20 and len({node for _, _, node in inventory}) == 20

    again = skyrig("plan", "--env", "dev", "--detailed-exitcode")
    assert again.code == 0 and "nothing to do" in again.out

    # Console changes: a bigger instance (tunable) and backups turned off (invariant).
    cluster = _node(app, "dev", "sql.cluster")
    cloud(app).console_edit(
        int(cluster.provider_id), {"instance_class": "db.r7g.4xlarge", "backup_retention_days": 0}
    )
    drift = skyrig("drift", "--env", "dev", "--detailed-exitcode")
    assert drift.code == 2
    assert "adopted  sql.cluster: instance_class = 'db.r7g.4xlarge'" in drift.out
    assert "drifted  sql.cluster: backup_retention_days = 0, must be 7" in drift.out
    assert _node(app, "dev", "sql.cluster").drift == ["backup_retention_days"]

    plan = skyrig("plan", "--env", "dev", "--json")
    (change,) = [c for c in json.loads(plan.out)["changes"] if c["action"] != "noop"]
    assert (change["node"], change["action"], change["fields"]) == (
        "sql.cluster",
        "update",
        {"backup_retention_days": [0, 7]},
    )
    assert change["drift"] == ["backup_retention_days"]

    assert skyrig("apply", "--env", "dev", "--yes").code == 0
    restored = cloud(app).get(int(cluster.provider_id))
    assert restored["backup_retention_days"] == 7, "the invariant is restored"
    assert restored["instance_class"] == "db.r7g.4xlarge", "the tunable change is never reverted"
    assert skyrig("plan", "--env", "dev", "--detailed-exitcode").code == 0

    kept = skyrig("destroy", "--env", "dev", "--yes")
    assert kept.code == 0, kept.err
    left = {node for _, _, node in cloud(app).inventory("shop", "dev")}
    assert left == {"sql.database/orders", "objects.bucket/receipts", "objects.bucket/email-assets"}, (
        "databases and buckets are kept unless --include-data"
    )
    assert skyrig("destroy", "--env", "dev", "--yes", "--include-data").code == 0
    assert cloud(app).inventory("shop", "dev") == [], "destroy leaves nothing in the cloud"
    assert skyrig("status", "--env", "dev", "--json").out.count('"id"') == 0


def test_a_tunable_changed_in_code_is_applied(app, skyrig):
    assert skyrig("apply", "--env", "dev", "--yes").code == 0
    service = _node(app, "dev", "compute.service/orders")
    cloud(app).console_edit(int(service.provider_id), {"replicas": 5})
    assert skyrig("plan", "--env", "dev", "--detailed-exitcode").code == 0, (
        "a console change alone is adopted"
    )
    subscription = app / "payments" / "charges.py"
    subscription.write_text(subscription.read_text().replace("max_retries=5", "max_retries=9"))

    plan = json.loads(skyrig("plan", "--env", "dev", "--json").out)

    (change,) = [c for c in plan["changes"] if c["action"] != "noop"]
    assert change["node"] == "pubsub.subscription/charge-order"
    assert change["fields"] == {"max_retries": [5, 9]}


def test_an_invariant_the_app_changes_is_a_change_not_drift(app, skyrig):
    assert skyrig("apply", "--env", "dev", "--yes").code == 0
    config = app / "skyrig.toml"
    config.write_text(
        config.read_text().replace('[env.dev]\ntype = "development"', '[env.dev]\ntype = "production"')
    )

    plan = json.loads(skyrig("plan", "--env", "dev", "--json").out)

    [cluster] = [c for c in plan["changes"] if c["node"] == "sql.cluster"]
    assert cluster["fields"]["deletion_protection"] == [False, True]
    assert "deletion_protection changed in the app" in cluster["reasons"]
    assert cluster["drift"] == [], "nothing changed in the cloud"


def test_environments_never_collide(app, skyrig):
    assert skyrig("apply", "--env", "local", "--yes").code == 0
    assert skyrig("apply", "--env", "dev", "--yes").code == 0
    assert len(cloud(app).inventory("shop", "local")) == 20
    assert len(cloud(app).inventory("shop", "dev")) == 20
    assert skyrig("destroy", "--env", "local", "--yes", "--include-data").code == 0
    assert len(cloud(app).inventory("shop", "dev")) == 20, "destroying one environment leaves the other"


def test_production_is_provisioned_for_reliability(app, skyrig):
    graph = json.loads(skyrig("graph", "--env", "prod", "--format", "json").out)
    nodes = {n["id"]: n["properties"] for n in graph["nodes"]}
    assert nodes["sql.cluster"]["deletion_protection"] is True
    assert nodes["sql.cluster"]["high_availability"] is True
    assert nodes["cache.cluster/carts"]["replicas"] == 1
    local = {
        n["id"]: n["properties"]
        for n in json.loads(skyrig("graph", "--env", "local", "--format", "json").out)["nodes"]
    }
    assert (
        local["sql.cluster"]["backup_retention_days"] == 0
        and local["sql.cluster"]["high_availability"] is False
    )


def test_production_destroy_needs_yes(app, skyrig):
    result = skyrig("destroy", "--env", "prod")
    assert result.code == 1
    assert "is production: destroying it needs --yes" in result.err


def test_import_adopts_an_existing_resource(app, skyrig):
    existing = cloud(app).create(
        "memory.sql.cluster",
        {"skyrig:app": "other", "skyrig:env": "x", "skyrig:node": "db"},
        "t",
        {"engine": "postgres", "instance_class": "db.m5.large"},
    )
    imported = skyrig("import", "--env", "dev", "sql.cluster", str(existing))
    assert imported.code == 0, imported.err
    plan = json.loads(skyrig("plan", "--env", "dev", "--json").out)
    by_node = {c["node"]: c for c in plan["changes"]}
    assert by_node["sql.cluster"]["action"] == "update", "only the real differences remain"
    assert "instance_class" not in by_node["sql.cluster"]["fields"]
    assert skyrig("import", "--env", "dev", "nope", "1").code == 1


def test_apply_writes_a_runtime_config_per_service(app, skyrig, monkeypatch):
    from skyrig.runtime import RuntimeConfigError, load_runtime_config

    assert skyrig("apply", "--env", "dev", "--yes").code == 0
    path = app / ".skyrig" / "runtime" / "dev" / "payments.json"
    monkeypatch.setenv("SKYRIG_RUNTIME_CONFIG", str(path))
    config = load_runtime_config()
    assert (config["service"], config["environment"]) == ("payments", "dev")
    resources = config["resources"]
    assert set(resources) == {
        "secret/stripe-api-key",
        "sql_database/orders",
        "subscription/charge-order",
        "topic/order-created",
    }, "exactly what payments uses or owns"
    assert resources["sql_database/orders"]["operations"] == ["connect"]
    assert resources["sql_database/orders"]["endpoint"] == "shop-dev.sql.memory.internal"
    assert load_runtime_config(path.read_text()) == config, "inline JSON works too"
    for bad, message in (
        ("", "is not set"),
        ("/nowhere.json", "cannot read"),
        ("{oops", "not valid JSON"),
        ('{"app": "x"}', "missing environment, service, resources"),
    ):
        with pytest.raises(RuntimeConfigError, match=message):
            load_runtime_config(bad)
