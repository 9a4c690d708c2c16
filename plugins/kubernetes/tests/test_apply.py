"""Applying a service's objects with server-side apply, reading them back, adopting and restoring drift,
errors, and deleting an environment: against the FAKE Kubernetes API server (``skyrig_kubernetes.fake``, a
fake, not Kubernetes: it validates every object against the official OpenAPI schemas and implements
server-side apply with managed fields as the API server does)."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from typing import Any

import pytest

from skyrig_kubernetes import drift
from skyrig_kubernetes.cluster import Cluster, KubernetesError, KubernetesTransientError
from skyrig_kubernetes.fake import FakeKubernetes
from skyrig_kubernetes.rollout import wait_for_rollout
from skyrig_kubernetes.workloads import Ingress, Workload, deployment, namespace, service_objects

WORKLOAD = Workload(
    app="shop",
    environment="production",
    service="orders",
    service_app="shop.orders:app",
    image="registry.example.com/shop:1",
    runtime_config={"service": "orders", "resources": {}},
    min_replicas=1,
    max_replicas=4,
    account_annotations={"iam.gke.io/gcp-service-account": "orders@shop.iam.gserviceaccount.com"},
    ingress=Ingress(host="orders.shop.example.com", class_name="gce", tls_secret="orders-tls"),
)


@pytest.fixture
def fake() -> Iterator[FakeKubernetes]:
    with FakeKubernetes(rollout_seconds=0.3) as cluster:
        yield cluster


@pytest.fixture
def kube(fake: FakeKubernetes) -> Iterator[Cluster]:
    cluster = Cluster.from_kubeconfig(fake.kubeconfig())
    yield cluster
    cluster.close()


def objects_of(workload: Workload = WORKLOAD) -> list[dict[str, Any]]:
    return [namespace(workload.app, workload.environment), *service_objects(workload)]


def live(fake: FakeKubernetes, found: dict[str, Any]) -> dict[str, Any] | None:
    metadata = found["metadata"]
    return fake.get(found["apiVersion"], found["kind"], metadata.get("namespace"), metadata["name"])


def owners(found: dict[str, Any]) -> set[str]:
    return {entry["manager"] for entry in found["metadata"].get("managedFields") or []}


def test_apply_creates_every_object_in_order_with_one_call_each(fake: FakeKubernetes, kube: Cluster) -> None:
    objects = objects_of()
    applied = kube.apply_all(reversed(objects))  # given in any order, applied namespace first
    assert [o["kind"] for o in applied] == [o["kind"] for o in objects]
    for found in objects:
        stored = live(fake, found)
        assert stored is not None, found["kind"]
        assert "skyrig" in owners(stored)
    applies = fake.calls.select("apply")
    assert len(applies) == len(fake.calls) == len(objects)  # nothing but one apply per object
    assert all(c.query.get("fieldManager") == "skyrig" and c.query.get("force") == "true" for c in applies)


def test_reapplying_unchanged_objects_changes_nothing(fake: FakeKubernetes, kube: Cluster) -> None:
    objects = objects_of()
    kube.apply_all(objects)
    # the controllers write status (a rollout, the budget's healthy pods) until the pods are ready
    wait_for_rollout(kube, WORKLOAD.namespace, WORKLOAD.name, timeout=20)
    versions = {o["kind"]: live(fake, o)["metadata"]["resourceVersion"] for o in objects}  # type: ignore[index]
    before = len(fake.calls)
    kube.apply_all(objects)
    assert len(fake.calls) - before == len(objects)  # one call per object, no reads
    assert {o["kind"]: live(fake, o)["metadata"]["resourceVersion"] for o in objects} == versions  # type: ignore[index]


def test_a_replica_count_set_by_the_autoscaler_or_a_person_is_adopted(
    fake: FakeKubernetes, kube: Cluster
) -> None:
    kube.apply_all(objects_of())
    ns, name = WORKLOAD.namespace, WORKLOAD.name
    fake.edit("apps/v1", "Deployment", ns, name, {"spec": {"replicas": 3}}, manager="kube-controller-manager")
    kube.apply_all(objects_of())
    assert fake.get("apps/v1", "Deployment", ns, name)["spec"]["replicas"] == 3  # type: ignore[index]

    # without an autoscaler skyrig sets the count, and keeps one a person changed (the drift rules)
    fixed = dataclasses.replace(WORKLOAD, min_replicas=2, max_replicas=2)
    kube.apply_all(objects_of(fixed))
    assert fake.get("apps/v1", "Deployment", ns, name)["spec"]["replicas"] == 2  # type: ignore[index]
    fake.edit("apps/v1", "Deployment", ns, name, {"spec": {"replicas": 5}})
    found = drift.drift(fake.get("apps/v1", "Deployment", ns, name), deployment(fixed))  # type: ignore[arg-type]
    assert found.adopted == {"replicas": 5} and not found.restored
    kube.apply(drift.adopt(deployment(fixed), found.adopted))
    assert fake.get("apps/v1", "Deployment", ns, name)["spec"]["replicas"] == 5  # type: ignore[index]


def test_a_security_setting_someone_disabled_is_restored_by_the_next_apply(
    fake: FakeKubernetes, kube: Cluster
) -> None:
    kube.apply_all(objects_of())
    ns, name = WORKLOAD.namespace, WORKLOAD.name
    stored = fake.get("apps/v1", "Deployment", ns, name)
    container = stored["spec"]["template"]["spec"]["containers"][0]  # type: ignore[index]
    container["securityContext"]["runAsNonRoot"] = False
    container["securityContext"]["readOnlyRootFilesystem"] = False
    fake.edit(
        "apps/v1", "Deployment", ns, name, {"spec": {"template": {"spec": {"containers": [container]}}}}
    )
    edited = fake.get("apps/v1", "Deployment", ns, name)
    assert drift.security(edited)["runAsNonRoot"] is False  # type: ignore[arg-type]
    assert set(drift.drift(edited, deployment(WORKLOAD)).restored) == {"security"}  # type: ignore[arg-type]

    kube.apply_all(objects_of())
    restored = fake.get("apps/v1", "Deployment", ns, name)
    assert drift.security(restored) == drift.security(deployment(WORKLOAD))  # type: ignore[arg-type]
    assert drift.drift(restored, deployment(WORKLOAD)).restored == {}  # type: ignore[arg-type]


def test_reads_return_none_for_what_is_not_there(fake: FakeKubernetes, kube: Cluster) -> None:
    assert kube.get("v1", "Namespace", None, "nothing-here") is None
    kube.apply_all(objects_of())
    found = kube.get("v1", "ConfigMap", WORKLOAD.namespace, f"{WORKLOAD.name}-runtime")
    assert found is not None and found["data"] == service_objects(WORKLOAD)[1]["data"]
    listed = kube.list("v1", "ServiceAccount", WORKLOAD.namespace, {"app.kubernetes.io/managed-by": "skyrig"})
    assert [a["metadata"]["name"] for a in listed] == ["orders"]


def test_api_errors_name_the_object_and_quote_the_status_never_the_token(
    fake: FakeKubernetes, kube: Cluster
) -> None:
    kube.apply(objects_of()[0])
    bad = deployment(WORKLOAD)
    bad["spec"]["template"]["spec"]["containers"][0]["ports"][0]["containerPort"] = 70000
    with pytest.raises(KubernetesError) as raised:
        kube.apply(bad)
    message = str(raised.value)
    assert raised.value.status == 422 and raised.value.reason == "Invalid"
    assert "Deployment shop-production/orders" in message and "containerPort" in message
    assert fake.token not in message

    fake.inject_error("PATCH", "/apis/apps/v1", 503)
    with pytest.raises(KubernetesTransientError, match="Deployment shop-production/orders"):
        kube.apply(deployment(WORKLOAD))

    refused = Cluster.from_token(fake.url, "not-the-token")
    with pytest.raises(KubernetesError, match="credentials") as raised:
        refused.get("v1", "Namespace", None, "default")
    assert raised.value.status == 401 and "not-the-token" not in str(raised.value)
    refused.close()


def test_deleting_the_environment_removes_its_namespace_and_everything_in_it(
    fake: FakeKubernetes, kube: Cluster
) -> None:
    kube.apply_all(objects_of())
    assert kube.delete_namespace(WORKLOAD.namespace, timeout=10) is True
    assert fake.get("v1", "Namespace", None, WORKLOAD.namespace) is None
    assert fake.get("apps/v1", "Deployment", WORKLOAD.namespace, WORKLOAD.name) is None
    assert kube.delete_namespace(WORKLOAD.namespace, timeout=10) is False  # gone already: done
