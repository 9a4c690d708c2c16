"""The objects a skyrig service becomes on Kubernetes, their YAML and their validation against the official
schemas (no API server here: the tests against the FAKE API server are in test_apply.py and
test_rollout.py)."""

from __future__ import annotations

import dataclasses
import re

import kubernetes_validate
import pytest
import yaml
from kubernetes_validate import utils

from skyrig_kubernetes import drift
from skyrig_kubernetes.manifests import InvalidObject, recent_versions, render, validate
from skyrig_kubernetes.workloads import (
    Ingress,
    Migration,
    Workload,
    config_map,
    deployment,
    disruption_budget,
    migration_job,
    namespace,
    namespace_name,
    service_objects,
)

SECRET_VALUE = "sk_live_51HyperSecretValue"
SECRET_REFERENCE = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:shop-prod-stripe"

WORKLOAD = Workload(
    app="shop",
    environment="production",
    service="orders",
    service_app="shop.orders:app",
    image="registry.example.com/shop:1.0",
    runtime_config={
        "service": "orders",
        "resources": {
            "secret/stripe": {"reference": SECRET_REFERENCE},
            "sql_database/orders": {"host": "db.internal", "port": 5432, "password": SECRET_REFERENCE},
        },
    },
    environment_variables={"AWS_REGION": "eu-west-1"},
    min_replicas=2,
    max_replicas=6,
    account_annotations={"eks.amazonaws.com/role-arn": "arn:aws:iam::123456789012:role/shop-prod-orders"},
    service_annotations={"cloud.google.com/neg": '{"ingress": true}'},
    ingress=Ingress(
        host="orders.shop.example.com",
        class_name="alb",
        annotations={"alb.ingress.kubernetes.io/scheme": "internet-facing"},
        tls_secret="orders-tls",
    ),
)
MIGRATION = Migration(
    database="orders",
    command=("python", "-m", "skyrig_aws.runtime.migrate"),
    environment={"SKYRIG_DATABASE": "orders"},
    migrations=("0001_init.sql", "0002_index.sql"),
)


def every_object(workload: Workload = WORKLOAD) -> list[dict]:
    return [
        namespace(workload.app, workload.environment),
        *service_objects(workload),
        migration_job(workload, MIGRATION),
    ]


def test_the_objects_validate_strictly_with_the_two_most_recent_kubernetes_versions() -> None:
    latest = utils.major_minor(utils.latest_version())
    versions = recent_versions()
    assert len(versions) == 2 and versions[-1] == latest and versions[0] < latest
    objects = every_object()
    assert [o["kind"] for o in objects] == [
        "Namespace",
        "ServiceAccount",
        "ConfigMap",
        "Service",
        "Deployment",
        "HorizontalPodAutoscaler",
        "PodDisruptionBudget",
        "Ingress",
        "Job",
    ]
    validate(objects, versions)
    for version in versions:  # the package itself agrees, object by object
        for found in objects:
            kubernetes_validate.validate(found, version, strict=True)


def test_a_bad_object_is_reported_with_its_kind_name_and_field() -> None:
    bad = deployment(WORKLOAD)
    bad["spec"]["template"]["spec"]["containers"][0]["securityContext"]["runAsRoot"] = True
    with pytest.raises(InvalidObject) as raised:
        validate([bad], recent_versions())
    error = raised.value
    assert (error.kind, error.name) == ("Deployment", "shop-production/orders")
    assert error.field == "spec.template.spec.containers.0.securityContext"
    assert "runAsRoot" in error.message and "Deployment shop-production/orders" in error.message
    unknown = {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}}
    with pytest.raises(InvalidObject, match=r"Widget w .* at apiVersion"):
        validate([unknown], recent_versions())


def test_no_secret_value_is_in_any_object_or_in_the_yaml() -> None:
    # the secret's value exists (the cloud's secret store has it) but a workload holds only its reference
    objects = every_object()
    text = render(objects)
    assert SECRET_VALUE not in text and SECRET_VALUE not in repr(objects)
    assert "Secret" not in {o["kind"] for o in objects}
    assert SECRET_REFERENCE in config_map(WORKLOAD)["data"]["runtime-config.json"]
    assert list(yaml.safe_load_all(text)) == objects  # the YAML is the objects, every one of them


def test_the_same_workload_gives_the_same_objects_and_a_config_change_rolls_the_pods() -> None:
    assert render(every_object()) == render(every_object(dataclasses.replace(WORKLOAD)))
    changed = dataclasses.replace(WORKLOAD, runtime_config={**WORKLOAD.runtime_config, "service": "other"})
    annotation = "skyrig.dev/config-checksum"
    before = deployment(WORKLOAD)["spec"]["template"]["metadata"]["annotations"][annotation]
    after = deployment(changed)["spec"]["template"]["metadata"]["annotations"][annotation]
    assert before != after


def test_the_pods_are_locked_down_and_run_the_service_host() -> None:
    pod = deployment(WORKLOAD)["spec"]["template"]["spec"]
    container = pod["containers"][0]
    assert container["command"] == [
        "uvicorn",
        "--factory",
        "skyrig.runtime.host:create",
        "--host",
        "0.0.0.0",
        "--port",
        "8080",
    ]
    assert container["readinessProbe"]["tcpSocket"] == {"port": "http"}
    assert container["securityContext"] == {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "runAsNonRoot": True,
        "capabilities": {"drop": ["ALL"]},
    }
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert pod["securityContext"]["runAsUser"] == 10001  # the image's user, by number
    assert {"name": "tmp", "mountPath": "/tmp"} in container["volumeMounts"]
    assert {"name": "tmp", "emptyDir": {}} in pod["volumes"]
    assert pod["serviceAccountName"] == "orders"
    variables = {e["name"]: e.get("value") for e in container["env"]}
    assert variables["SKYRIG_SERVICE_APP"] == "shop.orders:app" and variables["AWS_REGION"] == "eu-west-1"
    assert drift.security(deployment(WORKLOAD))["runAsNonRoot"] is True


def test_an_autoscaled_deployment_leaves_the_replica_count_to_the_autoscaler() -> None:
    assert "replicas" not in deployment(WORKLOAD)["spec"]
    kinds = [o["kind"] for o in service_objects(WORKLOAD)]
    assert "HorizontalPodAutoscaler" in kinds
    fixed = dataclasses.replace(WORKLOAD, min_replicas=3, max_replicas=3)
    assert deployment(fixed)["spec"]["replicas"] == 3
    assert "HorizontalPodAutoscaler" not in [o["kind"] for o in service_objects(fixed)]
    with pytest.raises(ValueError, match="replicas"):
        dataclasses.replace(WORKLOAD, min_replicas=4, max_replicas=2)


def test_the_disruption_budget_never_blocks_a_drain_of_a_single_pod() -> None:
    assert disruption_budget(WORKLOAD)["spec"]["minAvailable"] == 1
    single = dataclasses.replace(WORKLOAD, min_replicas=1)
    assert disruption_budget(single)["spec"] == {
        "maxUnavailable": 1,
        "selector": {
            "matchLabels": {
                "app.kubernetes.io/name": "orders",
                "app.kubernetes.io/instance": "shop-production",
            }
        },
    }


def test_namespace_names_are_dns_labels_stable_and_distinct() -> None:
    label = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
    long_app = "a-very-long-application-name-that-goes-on-and-on"
    names = [
        namespace_name("shop", "production"),
        namespace_name("Shop", "pr:72"),
        namespace_name(long_app, "development-eu-west"),
        namespace_name(long_app, "development-eu-east"),
    ]
    assert names[0] == "shop-production"
    for name in names:
        assert label.match(name) and len(name) <= 63
    assert len(set(names)) == len(names)
    assert names == [namespace_name("shop", "production"), namespace_name("Shop", "pr:72"), *names[2:]]


def test_a_migration_job_is_new_per_change_of_image_or_migrations() -> None:
    job = migration_job(WORKLOAD, MIGRATION)
    assert job == migration_job(WORKLOAD, MIGRATION)
    newer = migration_job(
        WORKLOAD, dataclasses.replace(MIGRATION, migrations=(*MIGRATION.migrations, "0003"))
    )
    rebuilt = migration_job(dataclasses.replace(WORKLOAD, image="registry.example.com/shop:1.1"), MIGRATION)
    names = {job["metadata"]["name"], newer["metadata"]["name"], rebuilt["metadata"]["name"]}
    assert len(names) == 3 and all(len(n) <= 63 for n in names)
    spec = job["spec"]
    assert spec["template"]["spec"]["restartPolicy"] == "Never"
    assert spec["ttlSecondsAfterFinished"] > 0 and spec["backoffLimit"] >= 0
    # its pod is not one the service's Service would route to
    service_selector = service_objects(WORKLOAD)[2]["spec"]["selector"]
    pod_labels = spec["template"]["metadata"]["labels"]
    assert not service_selector.items() <= pod_labels.items()


def test_drift_adopts_sizes_and_replicas_and_restores_security_and_image() -> None:
    fixed = dataclasses.replace(WORKLOAD, min_replicas=2, max_replicas=2)
    desired = deployment(fixed)
    live = deployment(fixed)
    live["spec"]["replicas"] = 5
    container = live["spec"]["template"]["spec"]["containers"][0]
    container["resources"]["requests"]["cpu"] = "1"
    container["securityContext"]["runAsNonRoot"] = False
    container["image"] = "registry.example.com/shop:hotfix"
    found = drift.drift(live, desired)
    assert found.adopted == {"cpu": "1", "replicas": 5}
    assert set(found.restored) == {"image", "security"}
    kept = drift.adopt(desired, found.adopted)
    assert drift.observe(kept)["replicas"] == 5 and drift.observe(kept)["cpu"] == "1"
    assert drift.observe(kept)["security"] == drift.security(desired)
    # an autoscaled Deployment's count is the autoscaler's: not skyrig's drift
    live_scaled, wanted_scaled = deployment(WORKLOAD), deployment(WORKLOAD)
    live_scaled["spec"]["replicas"] = 4
    assert drift.drift(live_scaled, wanted_scaled).adopted == {}
    assert "replicas" not in drift.adopt(wanted_scaled, {"replicas": 4})["spec"]
