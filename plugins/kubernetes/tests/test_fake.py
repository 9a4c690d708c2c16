"""Tests of the FAKE Kubernetes API server (skyrig_kubernetes.fake), through the official Python client.

The server under test is a fake: no real API server runs here. These tests check that it behaves as the
real one does where skyrig relies on it (discovery, strict validation, server-side apply and its field
ownership, rollouts and their failures, namespace deletion, authentication), so that the tests built on
it mean something.
"""

from __future__ import annotations

import json
import os
import pathlib
import shutil
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import kubernetes_validate
import pytest
import urllib3
from kubernetes import client, config, watch
from kubernetes.client.rest import ApiException
from kubernetes.dynamic import DynamicClient

from skyrig_kubernetes.fake import FakeKubernetes
from skyrig_kubernetes.fake.schema import versions

ROLLOUT = 0.2


@pytest.fixture
def cluster() -> Iterator[FakeKubernetes]:
    """A FAKE cluster of the newest version kubernetes-validate knows, with the namespace ``shop``."""
    with FakeKubernetes(rollout_seconds=ROLLOUT) as fake:
        client.CoreV1Api(fake.api_client()).create_namespace({"metadata": {"name": "shop"}})
        yield fake


@pytest.fixture
def apps(cluster: FakeKubernetes) -> client.AppsV1Api:
    return client.AppsV1Api(cluster.api_client())


@pytest.fixture
def core(cluster: FakeKubernetes) -> client.CoreV1Api:
    return client.CoreV1Api(cluster.api_client())


def dynamic_client(fake: FakeKubernetes, folder: pathlib.Path) -> DynamicClient:
    """A DynamicClient with its own discovery cache: its default file is named after host and port, so a
    later fake on a recycled port would read an earlier one's discovery (and version)."""
    return DynamicClient(fake.api_client(), cache_file=str(folder / "discovery.json"))


@pytest.fixture
def dynamic(cluster: FakeKubernetes, tmp_path: pathlib.Path) -> DynamicClient:
    return dynamic_client(cluster, tmp_path)


def deployment(image: str = "registry.example/web:1", replicas: int = 2, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "shop", "labels": {"app": "web"}},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{"name": "app", "image": image, "ports": [{"containerPort": 8080}]}]},
            },
            **spec,
        },
    }


def apply(
    dynamic: DynamicClient, body: dict[str, Any], *, manager: str = "skyrig", force: bool = False
) -> Any:
    resource = dynamic.resources.get(api_version=body["apiVersion"], kind=body["kind"])
    return resource.server_side_apply(
        body=body, namespace=body["metadata"].get("namespace"), field_manager=manager, force_conflicts=force
    )


def failure(call: Callable[[], Any]) -> tuple[int, dict[str, Any]]:
    """The status and Status body of a call that must fail."""
    with pytest.raises(ApiException) as raised:
        call()
    return raised.value.status, json.loads(raised.value.body)


def wait_for(condition: Callable[[], Any], timeout: float = 5.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.02)
    raise AssertionError("the condition did not come true in time")


def rolled_out(cluster: FakeKubernetes, name: str = "web") -> dict[str, Any]:
    """The Deployment once its rollout is complete."""
    return wait_for(
        lambda: (
            (found := cluster.get("apps/v1", "Deployment", "shop", name))
            and condition(found, "Progressing").get("reason") == "NewReplicaSetAvailable"
            and found["status"].get("observedGeneration") == found["metadata"]["generation"]
            and found
        )
    )


def managers(obj: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    return {
        (entry["manager"], entry["operation"]): entry["fieldsV1"]
        for entry in obj["metadata"]["managedFields"]
    }


def condition(obj: dict[str, Any], kind: str) -> dict[str, Any]:
    return next((c for c in (obj.get("status") or {}).get("conditions") or [] if c["type"] == kind), {})


def pods(cluster: FakeKubernetes, core: client.CoreV1Api, selector: str = "app=web") -> list[dict[str, Any]]:
    listed = core.list_namespaced_pod("shop", label_selector=selector)
    return [cluster.get("v1", "Pod", "shop", pod.metadata.name) for pod in listed.items]


# -- discovery, CRUD, errors --------------------------------------------------------------------------


def test_discovery_lists_exactly_the_kinds_served(cluster: FakeKubernetes, dynamic: DynamicClient) -> None:
    deployments = dynamic.resources.get(api_version="apps/v1", kind="Deployment")
    assert deployments.namespaced and "patch" in deployments.verbs and "deploy" in deployments.short_names
    hpa = dynamic.resources.get(api_version="autoscaling/v2", kind="HorizontalPodAutoscaler")
    assert hpa.name == "horizontalpodautoscalers"
    ingress_class = dynamic.resources.get(api_version="networking.k8s.io/v1", kind="IngressClass")
    assert not ingress_class.namespaced
    pod = dynamic.resources.get(api_version="v1", kind="Pod")
    assert "create" not in pod.verbs
    served = {(r["name"]) for r in dynamic.request("GET", "/apis/batch/v1").to_dict()["resources"]}
    assert served == {"jobs", "jobs/status"}
    version = dynamic.version["kubernetes"]
    assert (version["major"], version["minor"]) == tuple(cluster.version.split("."))


def test_crud_through_the_dynamic_client(dynamic: DynamicClient) -> None:
    services = dynamic.resources.get(api_version="v1", kind="Service")
    body = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "web", "labels": {"app": "web"}},
        "spec": {"selector": {"app": "web"}, "ports": [{"name": "http", "port": 80, "targetPort": 8080}]},
    }
    created = services.create(body=body, namespace="shop")
    assert created.spec.clusterIP and created.spec.type == "ClusterIP"
    assert [s.metadata.name for s in services.get(namespace="shop", label_selector="app=web").items] == [
        "web"
    ]
    patched = services.patch(
        name="web",
        namespace="shop",
        body={"metadata": {"labels": {"tier": "front"}}},
        content_type="application/merge-patch+json",
    )
    assert patched.to_dict()["metadata"]["labels"] == {"app": "web", "tier": "front"}
    assert patched.spec.clusterIP == created.spec.clusterIP
    services.delete(name="web", namespace="shop")
    assert services.get(namespace="shop").items == []


def test_crud_through_the_typed_client(core: client.CoreV1Api) -> None:
    body = {"metadata": {"name": "config", "labels": {"tier": "web"}}, "data": {"A": "1"}}
    created = core.create_namespaced_config_map("shop", body)
    assert created.metadata.uid and created.metadata.resource_version
    core.create_namespaced_config_map("shop", {"metadata": {"name": "other", "labels": {"tier": "db"}}})
    assert [
        c.metadata.name for c in core.list_namespaced_config_map("shop", label_selector="tier=web").items
    ] == ["config"]
    assert len(core.list_namespaced_config_map("shop", label_selector="tier!=web").items) == 1
    status, _ = failure(lambda: core.create_namespaced_config_map("shop", body))
    assert status == 409

    replaced = core.replace_namespaced_config_map(
        "config",
        "shop",
        {
            "metadata": {"name": "config", "resourceVersion": created.metadata.resource_version},
            "data": {"A": "2"},
        },
    )
    assert replaced.data == {"A": "2"}
    stale = {"metadata": {"name": "config", "resourceVersion": created.metadata.resource_version}, "data": {}}
    status, answer = failure(lambda: core.replace_namespaced_config_map("config", "shop", stale))
    assert (status, answer["reason"]) == (409, "Conflict")

    core.delete_namespaced_config_map("config", "shop")
    status, answer = failure(lambda: core.read_namespaced_config_map("config", "shop"))
    assert (status, answer["kind"], answer["reason"], answer["details"]["name"]) == (
        404,
        "Status",
        "NotFound",
        "config",
    )


def test_unknown_paths_and_verbs_and_tokens(cluster: FakeKubernetes) -> None:
    http = urllib3.PoolManager()
    headers = {"Authorization": f"Bearer {cluster.token}", "Content-Type": "application/json"}
    answer = http.request("GET", f"{cluster.url}/apis/apps/v1/namespaces/shop/statefulsets", headers=headers)
    assert answer.status == 404 and json.loads(answer.data)["kind"] == "Status"
    answer = http.request("POST", f"{cluster.url}/api/v1/namespaces/shop/pods", headers=headers, body=b"{}")
    assert answer.status == 405
    answer = http.request("GET", f"{cluster.url}/api/v1/namespaces")
    assert answer.status == 401 and json.loads(answer.data)["reason"] == "Unauthorized"
    answer = http.request(
        "GET", f"{cluster.url}/api/v1/namespaces", headers={"Authorization": "Bearer wrong"}
    )
    assert answer.status == 401


def test_strict_validation(apps: client.AppsV1Api, core: client.CoreV1Api, dynamic: DynamicClient) -> None:
    deployments = dynamic.resources.get(api_version="apps/v1", kind="Deployment")

    def create(body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        return failure(lambda: deployments.create(body=body, namespace=body["metadata"]["namespace"]))

    body = deployment()
    body["spec"]["template"]["spec"]["containers"][0]["imagePolicy"] = "Always"
    status, answer = create(body)
    assert (
        status == 400 and 'unknown field "spec.template.spec.containers[0].imagePolicy"' in answer["message"]
    )

    body = deployment()
    body["metadata"]["name"] = "Web_1"
    status, answer = create(body)
    assert (status, answer["reason"]) == (422, "Invalid")
    assert answer["details"]["causes"][0]["field"] == "metadata.name"

    body = deployment()
    del body["spec"]["selector"]
    status, answer = create(body)
    assert status == 422 and answer["details"]["causes"][0]["field"] == "spec.selector"

    body = deployment()
    body["spec"]["template"]["metadata"]["labels"] = {"app": "other"}
    status, answer = create(body)
    assert status == 422 and "does not match" in answer["message"]

    body = deployment()
    body["metadata"]["namespace"] = "missing"
    status, answer = create(body)
    assert (status, answer["details"]["kind"], answer["details"]["name"]) == (404, "namespaces", "missing")

    apps.create_namespaced_deployment("shop", deployment())
    changed = {
        "spec": {
            "selector": {"matchLabels": {"app": "web", "tier": "front"}},
            "template": {"metadata": {"labels": {"tier": "front"}}},
        }
    }
    status, answer = failure(lambda: apps.patch_namespaced_deployment("web", "shop", changed))
    assert status == 422 and any(
        c["field"] == "spec.selector" and "immutable" in c["message"] for c in answer["details"]["causes"]
    )

    service = {"metadata": {"name": "web"}, "spec": {"selector": {"app": "web"}, "ports": [{"port": 80}]}}
    created = core.create_namespaced_service("shop", service)
    assert created.spec.cluster_ip and created.spec.type == "ClusterIP"
    assert created.spec.ports[0].target_port == 80
    status, _ = failure(
        lambda: core.patch_namespaced_service("web", "shop", {"spec": {"clusterIP": "10.0.0.9"}})
    )
    assert status == 422


def test_defaults_and_generation(apps: client.AppsV1Api, cluster: FakeKubernetes) -> None:
    created = apps.create_namespaced_deployment("shop", deployment())
    assert created.metadata.generation == 1
    assert created.spec.strategy.type == "RollingUpdate" and created.spec.progress_deadline_seconds == 600
    assert created.spec.revision_history_limit == 10
    container = created.spec.template.spec.containers[0]
    assert container.image_pull_policy == "IfNotPresent" and container.ports[0].protocol == "TCP"
    labelled = apps.patch_namespaced_deployment("web", "shop", {"metadata": {"labels": {"team": "a"}}})
    assert labelled.metadata.generation == 1
    scaled = apps.patch_namespaced_deployment("web", "shop", {"spec": {"replicas": 3}})
    assert scaled.metadata.generation == 2
    assert int(scaled.metadata.resource_version) > int(created.metadata.resource_version)


def test_strategic_merge_patch_merges_containers_and_env_by_name(apps: client.AppsV1Api) -> None:
    body = deployment()
    body["spec"]["template"]["spec"]["containers"].append({"name": "sidecar", "image": "proxy:1"})
    body["spec"]["template"]["spec"]["containers"][0]["env"] = [{"name": "A", "value": "1"}]
    apps.create_namespaced_deployment("shop", body)
    patch = {
        "spec": {
            "template": {
                "spec": {
                    "containers": [
                        {
                            "name": "app",
                            "image": "registry.example/web:2",
                            "env": [{"name": "B", "value": "2"}],
                        }
                    ]
                }
            }
        }
    }
    patched = apps.patch_namespaced_deployment("web", "shop", patch)
    containers = {c.name: c for c in patched.spec.template.spec.containers}
    assert set(containers) == {"app", "sidecar"}
    assert containers["app"].image == "registry.example/web:2"
    assert [(e.name, e.value) for e in containers["app"].env] == [("A", "1"), ("B", "2")]


def test_dry_run_validates_without_storing(apps: client.AppsV1Api, cluster: FakeKubernetes) -> None:
    answer = apps.create_namespaced_deployment("shop", deployment(), dry_run="All")
    assert answer.metadata.name == "web"
    assert cluster.get("apps/v1", "Deployment", "shop", "web") is None
    bad = deployment()
    bad["spec"]["replicas"] = -1
    status, _ = failure(lambda: apps.create_namespaced_deployment("shop", bad, dry_run="All"))
    assert status == 422


def test_call_log_and_injected_errors(apps: client.AppsV1Api, cluster: FakeKubernetes) -> None:
    cluster.inject_error("create", "/apis/apps/v1/namespaces/shop/deployments", 503)
    status, answer = failure(lambda: apps.create_namespaced_deployment("shop", deployment()))
    assert (status, answer["reason"]) == (503, "ServiceUnavailable")
    apps.create_namespaced_deployment("shop", deployment())
    assert cluster.calls.count("create", "/apis/apps/v1/namespaces/shop/deployments") == 2
    assert cluster.calls.count("POST", "/apis/apps") == 2
    assert cluster.calls[-1].verb == "create"
    cluster.reset()
    assert cluster.get("apps/v1", "Deployment", "shop", "web") is None and not cluster.calls
    assert cluster.get("v1", "Namespace", None, "default") is not None


# -- server-side apply ---------------------------------------------------------------------------------


def test_apply_creates_and_reapply_changes_nothing(dynamic: DynamicClient, cluster: FakeKubernetes) -> None:
    created = apply(dynamic, deployment()).to_dict()
    assert created["metadata"]["managedFields"][0]["manager"] == "skyrig"
    fields = managers(created)[("skyrig", "Apply")]
    assert 'k:{"name":"app"}' in fields["f:spec"]["f:template"]["f:spec"]["f:containers"]
    ports = fields["f:spec"]["f:template"]["f:spec"]["f:containers"]['k:{"name":"app"}']["f:ports"]
    assert 'k:{"containerPort":8080,"protocol":"TCP"}' in ports
    rolled_out(cluster)  # the controllers write the Deployment's status until then
    before = cluster.get("apps/v1", "Deployment", "shop", "web")
    again = apply(dynamic, deployment()).to_dict()
    assert again["metadata"]["resourceVersion"] == before["metadata"]["resourceVersion"]


def test_apply_requires_a_field_manager(cluster: FakeKubernetes) -> None:
    http = urllib3.PoolManager()
    answer = http.request(
        "PATCH",
        f"{cluster.url}/apis/apps/v1/namespaces/shop/deployments/web",
        body=json.dumps(deployment()),
        headers={"Authorization": f"Bearer {cluster.token}", "Content-Type": "application/apply-patch+yaml"},
    )
    assert answer.status == 400 and "fieldManager" in json.loads(answer.data)["message"]


def test_apply_conflicts_with_another_owner_until_forced(
    dynamic: DynamicClient, cluster: FakeKubernetes
) -> None:
    apply(dynamic, deployment(replicas=2))
    cluster.edit("apps/v1", "Deployment", "shop", "web", {"spec": {"replicas": 5}})
    edited = cluster.get("apps/v1", "Deployment", "shop", "web")
    assert "f:replicas" in managers(edited)[("kubectl-edit", "Update")]["f:spec"]

    with pytest.raises(ApiException) as raised:
        apply(dynamic, deployment(replicas=3))
    answer = json.loads(raised.value.body)
    assert (raised.value.status, answer["reason"]) == (409, "Conflict")
    assert [c["field"] for c in answer["details"]["causes"]] == [".spec.replicas"]
    assert 'conflict with "kubectl-edit"' in answer["message"]

    forced = apply(dynamic, deployment(replicas=3), force=True).to_dict()
    assert forced["spec"]["replicas"] == 3
    assert ("kubectl-edit", "Update") not in managers(forced)
    assert "f:replicas" in managers(forced)[("skyrig", "Apply")]["f:spec"]


def test_apply_removes_what_it_stops_applying_unless_others_own_it(
    dynamic: DynamicClient, cluster: FakeKubernetes
) -> None:
    body = deployment()
    body["metadata"]["annotations"] = {"mine": "1", "shared": "1"}
    apply(dynamic, body)
    cluster.edit("apps/v1", "Deployment", "shop", "web", {"metadata": {"annotations": {"theirs": "1"}}})
    other = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "shop", "annotations": {"shared": "1"}},
    }
    apply(dynamic, other, manager="other-tool")
    shared = cluster.get("apps/v1", "Deployment", "shop", "web")
    assert "f:shared" in managers(shared)[("skyrig", "Apply")]["f:metadata"]["f:annotations"]
    assert "f:shared" in managers(shared)[("other-tool", "Apply")]["f:metadata"]["f:annotations"]

    del body["metadata"]["annotations"]
    after = apply(dynamic, body).to_dict()
    annotations = after["metadata"]["annotations"]
    assert "mine" not in annotations and annotations["shared"] == annotations["theirs"] == "1"


def test_apply_merges_lists_by_key_and_drops_items_it_omits(dynamic: DynamicClient) -> None:
    body = deployment()
    body["spec"]["template"]["spec"]["containers"][0]["env"] = [
        {"name": "A", "value": "1"},
        {"name": "B", "value": "2"},
    ]
    apply(dynamic, body)
    body["spec"]["template"]["spec"]["containers"][0]["env"] = [{"name": "B", "value": "3"}]
    after = apply(dynamic, body).to_dict()
    assert after["spec"]["template"]["spec"]["containers"][0]["env"] == [{"name": "B", "value": "3"}]


def test_apply_rejects_unknown_fields_and_wrong_kinds(dynamic: DynamicClient) -> None:
    body = deployment()
    body["spec"]["replica"] = 2
    with pytest.raises(ApiException) as raised:
        apply(dynamic, body)
    assert raised.value.status == 400 and ".spec.replica" in json.loads(raised.value.body)["message"]


# -- rollouts ------------------------------------------------------------------------------------------


def test_rollout_completes_after_the_delay(
    dynamic: DynamicClient, cluster: FakeKubernetes, core: client.CoreV1Api
) -> None:
    applied_at = time.monotonic()
    apply(dynamic, deployment(replicas=2))
    done = rolled_out(cluster)
    assert time.monotonic() - applied_at >= ROLLOUT  # not before the pods' delay
    assert done["status"]["updatedReplicas"] == done["status"]["availableReplicas"] == 2
    assert done["status"]["observedGeneration"] == done["metadata"]["generation"]
    assert condition(done, "Available")["status"] == "True"
    ready = pods(cluster, core)
    assert len(ready) == 2 and all(p["status"]["phase"] == "Running" for p in ready)

    apply(dynamic, deployment("registry.example/web:2", replicas=2))
    wait_for(
        lambda: (
            (d := cluster.get("apps/v1", "Deployment", "shop", "web"))
            and d["status"].get("observedGeneration") == 2
            and condition(d, "Progressing").get("reason") == "NewReplicaSetAvailable"
            and d["status"].get("replicas") == 2
        )
    )
    replicasets = client.AppsV1Api(cluster.api_client()).list_namespaced_replica_set("shop").items
    assert sorted(rs.spec.replicas for rs in replicasets) == [0, 2]
    images = {p["spec"]["containers"][0]["image"] for p in pods(cluster, core)}
    assert images == {"registry.example/web:2"}


@pytest.mark.parametrize("tag", ["pull-error", "crash-loop"])
def test_a_failing_image_keeps_the_old_version_then_misses_the_deadline(
    tag: str, dynamic: DynamicClient, cluster: FakeKubernetes, core: client.CoreV1Api
) -> None:
    apply(dynamic, deployment(replicas=2))
    wait_for(
        lambda: (
            condition(cluster.get("apps/v1", "Deployment", "shop", "web"), "Progressing").get("reason")
            == "NewReplicaSetAvailable"
        )
    )
    apply(dynamic, deployment(f"registry.example/web:{tag}", replicas=2))
    reason = "ImagePullBackOff" if tag == "pull-error" else "CrashLoopBackOff"
    wait_for(
        lambda: [
            p
            for p in pods(cluster, core)
            if p["spec"]["containers"][0]["image"].endswith(tag)
            and p["status"]["containerStatuses"][0]["state"].get("waiting", {}).get("reason") == reason
        ]
    )
    current = cluster.get("apps/v1", "Deployment", "shop", "web")
    # a rolling update of 2 replicas surges by 1 (25%, rounded up) and may not lose one (rounded down)
    assert current["status"]["availableReplicas"] == 2 and current["status"]["updatedReplicas"] == 1
    broken = [p for p in pods(cluster, core) if p["spec"]["containers"][0]["image"].endswith(tag)]
    serving = [p for p in pods(cluster, core) if p["spec"]["containers"][0]["image"].endswith(":1")]
    assert len(broken) == 1 and len(serving) == 2
    assert all(p["status"]["containerStatuses"][0]["ready"] for p in serving)
    state = broken[0]["status"]["containerStatuses"][0]
    if tag == "pull-error":
        assert state["state"]["waiting"]["reason"] == "ImagePullBackOff"
        assert f"web:{tag}" in state["state"]["waiting"]["message"]
    else:
        assert state["state"]["waiting"]["reason"] == "CrashLoopBackOff"
        assert state["lastState"]["terminated"]["exitCode"] == 1
        restarts = state["restartCount"]
        wait_for(
            lambda: (
                cluster.get("v1", "Pod", "shop", broken[0]["metadata"]["name"])["status"][
                    "containerStatuses"
                ][0]["restartCount"]
                > restarts
            )
        )
    failed = wait_for(
        lambda: (
            (d := cluster.get("apps/v1", "Deployment", "shop", "web"))
            and condition(d, "Progressing").get("reason") == "ProgressDeadlineExceeded"
            and d
        ),
        timeout=ROLLOUT * 10 + 3,
    )
    assert condition(failed, "Progressing")["status"] == "False"
    assert failed["status"]["availableReplicas"] == 2


def test_jobs_complete_or_fail(cluster: FakeKubernetes, dynamic: DynamicClient) -> None:
    def job(name: str, image: str) -> dict[str, Any]:
        return {
            "apiVersion": "batch/v1",
            "kind": "Job",
            "metadata": {"name": name, "namespace": "shop"},
            "spec": {
                "template": {
                    "spec": {"restartPolicy": "Never", "containers": [{"name": "migrate", "image": image}]}
                }
            },
        }

    apply(dynamic, job("migrate", "registry.example/web:1"))
    apply(dynamic, job("broken", "registry.example/web:crash-loop"))
    done = wait_for(lambda: condition(cluster.get("batch/v1", "Job", "shop", "migrate"), "Complete"))
    assert done["status"] == "True"
    assert cluster.get("batch/v1", "Job", "shop", "migrate")["status"]["succeeded"] == 1
    failed = wait_for(
        lambda: condition(cluster.get("batch/v1", "Job", "shop", "broken"), "Failed"),
        timeout=ROLLOUT * 10 + 3,
    )
    assert failed["reason"] == "BackoffLimitExceeded"

    changed = job("migrate", "registry.example/web:2")
    with pytest.raises(ApiException) as raised:
        apply(dynamic, changed)
    assert raised.value.status == 422 and "immutable" in json.loads(raised.value.body)["message"]


def test_namespace_deletion_is_asynchronous_and_takes_its_contents(tmp_path: pathlib.Path) -> None:
    with FakeKubernetes(rollout_seconds=1) as cluster:  # the namespace goes a second after its deletion
        core = client.CoreV1Api(cluster.api_client())
        core.create_namespace({"metadata": {"name": "shop"}})
        core.create_namespaced_config_map("shop", {"metadata": {"name": "config"}})
        namespaces = dynamic_client(cluster, tmp_path).resources.get(api_version="v1", kind="Namespace")
        assert namespaces.delete(name="shop").status.phase == "Terminating"
        assert cluster.get("v1", "ConfigMap", "shop", "config") is not None
        status, answer = failure(
            lambda: core.create_namespaced_config_map("shop", {"metadata": {"name": "late"}})
        )
        assert (status, answer["reason"]) == (403, "Forbidden")
        wait_for(lambda: cluster.get("v1", "Namespace", None, "shop") is None)
        assert cluster.get("v1", "ConfigMap", "shop", "config") is None


def test_deleting_a_deployment_takes_its_replicasets_and_pods(
    apps: client.AppsV1Api, core: client.CoreV1Api, cluster: FakeKubernetes
) -> None:
    apps.create_namespaced_deployment("shop", deployment())
    wait_for(lambda: len(core.list_namespaced_pod("shop").items) == 2)
    apps.delete_namespaced_deployment("web", "shop")
    assert apps.list_namespaced_replica_set("shop").items == []
    assert core.list_namespaced_pod("shop").items == []


def test_hpa_and_pdb_get_a_status(cluster: FakeKubernetes, dynamic: DynamicClient) -> None:
    apply(dynamic, deployment(replicas=2))
    apply(
        dynamic,
        {
            "apiVersion": "autoscaling/v2",
            "kind": "HorizontalPodAutoscaler",
            "metadata": {"name": "web", "namespace": "shop"},
            "spec": {
                "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
                "minReplicas": 2,
                "maxReplicas": 4,
            },
        },
    )
    apply(
        dynamic,
        {
            "apiVersion": "policy/v1",
            "kind": "PodDisruptionBudget",
            "metadata": {"name": "web", "namespace": "shop"},
            "spec": {"minAvailable": 1, "selector": {"matchLabels": {"app": "web"}}},
        },
    )
    hpa = wait_for(
        lambda: (
            (h := cluster.get("autoscaling/v2", "HorizontalPodAutoscaler", "shop", "web"))
            and h.get("status", {}).get("currentReplicas") == 2
            and h
        )
    )
    assert hpa["status"]["desiredReplicas"] == 2
    pdb = wait_for(
        lambda: (
            (p := cluster.get("policy/v1", "PodDisruptionBudget", "shop", "web"))
            and p.get("status", {}).get("currentHealthy") == 2
            and p
        )
    )
    assert pdb["status"]["disruptionsAllowed"] == 1


def test_apply_refuses_duplicate_list_keys(dynamic: DynamicClient) -> None:
    body = deployment()
    body["spec"]["template"]["spec"]["containers"][0]["env"] = [
        {"name": "A", "value": "1"},
        {"name": "A", "value": "2"},
    ]
    with pytest.raises(ApiException) as raised:
        apply(dynamic, body)
    assert raised.value.status == 422 and 'env[name="A"]' in json.loads(raised.value.body)["message"]


def test_json_patch_and_the_scale_subresource(apps: client.AppsV1Api, cluster: FakeKubernetes) -> None:
    apps.create_namespaced_deployment("shop", deployment())
    patched = apps.patch_namespaced_deployment(
        "web", "shop", [{"op": "replace", "path": "/spec/replicas", "value": 4}]
    )
    assert patched.spec.replicas == 4
    scale = apps.read_namespaced_deployment_scale("web", "shop")
    assert scale.spec.replicas == 4 and scale.status.selector == "app=web"
    apps.patch_namespaced_deployment_scale("web", "shop", {"spec": {"replicas": 1}})
    assert cluster.get("apps/v1", "Deployment", "shop", "web")["spec"]["replicas"] == 1
    status, _ = failure(
        lambda: apps.patch_namespaced_deployment(
            "web", "shop", [{"op": "test", "path": "/spec/replicas", "value": 9}]
        )
    )
    assert status == 422


def test_every_namespace_gets_a_default_service_account(core: client.CoreV1Api) -> None:
    account = wait_for(lambda: core.list_namespaced_service_account("shop").items)
    assert [a.metadata.name for a in account] == ["default"]


def _container(**fields: Any) -> dict[str, Any]:
    body = deployment()
    body["spec"]["template"]["spec"]["containers"][0].update(fields)
    return body


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (
            _container(volumeMounts=[{"name": "tmp", "mountPath": "/tmp"}]),
            "spec.template.spec.containers[0].volumeMounts[0].name",
        ),
        (
            _container(resources={"requests": {"cpu": "2"}, "limits": {"cpu": "500m"}}),
            "spec.template.spec.containers[0].resources.requests",
        ),
        (
            _container(resources={"requests": {"memory": "lots"}}),
            "spec.template.spec.containers[0].resources.requests[memory]",
        ),
        (
            _container(readinessProbe={"tcpSocket": {"port": 8080}, "httpGet": {"port": 8080}}),
            "spec.template.spec.containers[0].readinessProbe.tcpSocket",
        ),
        (_container(env=[{"name": "1ST", "value": "x"}]), "spec.template.spec.containers[0].env[0].name"),
        (
            deployment(strategy={"type": "Recreate", "rollingUpdate": {"maxSurge": 1}}),
            "spec.strategy.rollingUpdate",
        ),
        (deployment(replicas=-1), "spec.replicas"),
    ],
)
def test_the_servers_own_rules(body: dict[str, Any], field: str, dynamic: DynamicClient) -> None:
    deployments = dynamic.resources.get(api_version="apps/v1", kind="Deployment")
    status, answer = failure(lambda: deployments.create(body=body, namespace="shop"))
    assert (status, answer["reason"]) == (422, "Invalid")
    assert field in [cause["field"] for cause in answer["details"]["causes"]]


def test_secrets_hold_base64_and_string_data_becomes_data(
    core: client.CoreV1Api, dynamic: DynamicClient
) -> None:
    secrets = dynamic.resources.get(api_version="v1", kind="Secret")
    status, _ = failure(
        lambda: secrets.create(
            body={
                "apiVersion": "v1",
                "kind": "Secret",
                "metadata": {"name": "s"},
                "data": {"key": "not base64!"},
            },
            namespace="shop",
        )
    )
    assert status == 400
    created = core.create_namespaced_secret(
        "shop", {"metadata": {"name": "s"}, "stringData": {"key": "value"}}
    )
    assert created.data == {"key": "dmFsdWU="} and created.type == "Opaque" and not created.string_data


def test_field_validation_ignore_drops_unknown_fields(cluster: FakeKubernetes) -> None:
    body = json.dumps({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "colour": "red"}})
    headers = {"Authorization": f"Bearer {cluster.token}", "Content-Type": "application/json"}
    url = f"{cluster.url}/api/v1/namespaces/shop/configmaps"
    http = urllib3.PoolManager()
    assert http.request("POST", url, body=body, headers=headers).status == 400
    assert http.request("POST", url + "?fieldValidation=Ignore", body=body, headers=headers).status == 201
    assert "colour" not in cluster.get("v1", "ConfigMap", "shop", "c")["metadata"]


def test_deleting_a_pod_answers_the_pod_and_its_replicaset_replaces_it(
    apps: client.AppsV1Api, core: client.CoreV1Api
) -> None:
    apps.create_namespaced_deployment("shop", deployment(replicas=1))
    first = wait_for(lambda: core.list_namespaced_pod("shop").items)[0].metadata.name
    deleted = core.delete_namespaced_pod(first, "shop")
    assert deleted.metadata.name == first and deleted.metadata.deletion_timestamp
    replacement = wait_for(
        lambda: [p for p in core.list_namespaced_pod("shop").items if p.metadata.name != first]
    )
    assert len(replacement) == 1


def test_lists_page_with_limit_and_continue(core: client.CoreV1Api) -> None:
    for name in ("a", "b", "c"):
        core.create_namespaced_config_map("shop", {"metadata": {"name": name}})
    first = core.list_namespaced_config_map("shop", limit=2)
    assert [c.metadata.name for c in first.items] == ["a", "b"] and first.metadata.remaining_item_count == 1
    rest = core.list_namespaced_config_map("shop", limit=2, _continue=first.metadata._continue)
    assert [c.metadata.name for c in rest.items] == ["c"] and not rest.metadata._continue


def test_watch_sends_what_exists_then_each_change(core: client.CoreV1Api, cluster: FakeKubernetes) -> None:
    core.create_namespaced_config_map("shop", {"metadata": {"name": "a", "labels": {"tier": "web"}}})
    core.create_namespaced_config_map("shop", {"metadata": {"name": "other"}})
    seen: list[tuple[str, str]] = []

    def watching() -> None:
        events = watch.Watch().stream(
            core.list_namespaced_config_map, "shop", label_selector="tier=web", timeout_seconds=2
        )
        seen.extend((event["type"], event["object"].metadata.name) for event in events)

    watcher = threading.Thread(target=watching)
    watcher.start()
    wait_for(lambda: cluster.calls.count("watch", "/api/v1/namespaces/shop/configmaps"))  # it is watching
    core.patch_namespaced_config_map("a", "shop", {"data": {"x": "1"}})
    core.patch_namespaced_config_map("other", "shop", {"data": {"x": "1"}})
    core.delete_namespaced_config_map("a", "shop")
    watcher.join()
    assert seen == [("ADDED", "a"), ("MODIFIED", "a"), ("DELETED", "a")]


def test_watch_resumes_from_a_resource_version_and_expires_after_reset(
    core: client.CoreV1Api, cluster: FakeKubernetes
) -> None:
    created = core.create_namespaced_config_map("shop", {"metadata": {"name": "a"}})
    core.patch_namespaced_config_map("a", "shop", {"data": {"x": "1"}})
    resumed = watch.Watch().stream(
        core.list_namespaced_config_map,
        "shop",
        resource_version=created.metadata.resource_version,
        timeout_seconds=1,
    )
    assert [(event["type"], event["object"].data) for event in resumed] == [("MODIFIED", {"x": "1"})]
    cluster.reset()
    with pytest.raises(ApiException) as raised:
        list(
            watch.Watch().stream(
                core.list_namespace, resource_version=created.metadata.resource_version, timeout_seconds=1
            )
        )
    assert raised.value.status == 410


def test_a_rolling_update_keeps_within_max_surge_and_max_unavailable(
    dynamic: DynamicClient, cluster: FakeKubernetes
) -> None:
    strategy = {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 1}}
    apply(dynamic, deployment(replicas=4, strategy=strategy))
    wait_for(
        lambda: (
            condition(cluster.get("apps/v1", "Deployment", "shop", "web"), "Progressing").get("reason")
            == "NewReplicaSetAvailable"
        )
    )
    apply(dynamic, deployment("registry.example/web:2", replicas=4, strategy=strategy))
    apps = client.AppsV1Api(cluster.api_client())
    totals, available = set(), set()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        current = cluster.get("apps/v1", "Deployment", "shop", "web")
        totals.add(sum(rs.spec.replicas for rs in apps.list_namespaced_replica_set("shop").items))
        available.add(current["status"].get("availableReplicas", 0))
        if (
            current["status"].get("observedGeneration") == 2
            and condition(current, "Progressing").get("reason") == "NewReplicaSetAvailable"
        ):
            break
        time.sleep(0.01)
    assert max(totals) <= 5 and min(available) >= 3
    assert len(totals) > 1  # it went in steps


EVERY_KIND = [
    {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "web"}},
    {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "web"}, "data": {"a": "b"}},
    {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "web"}, "stringData": {"a": "b"}},
    {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "web"},
        "spec": {
            "type": "LoadBalancer",
            "selector": {"app": "web"},
            "ports": [{"port": 80, "targetPort": 8080}],
        },
    },
    deployment(),
    {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": "migrate"},
        "spec": {
            "template": {"spec": {"restartPolicy": "Never", "containers": [{"name": "m", "image": "m:1"}]}}
        },
    },
    {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": "web"},
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
            "maxReplicas": 3,
        },
    },
    {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": {"name": "web"},
        "spec": {"maxUnavailable": 1, "selector": {"matchLabels": {"app": "web"}}},
    },
    {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "IngressClass",
        "metadata": {"name": "web"},
        "spec": {"controller": "example.com/ingress"},
    },
    {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "Ingress",
        "metadata": {"name": "web"},
        "spec": {
            "ingressClassName": "web",
            "rules": [
                {
                    "host": "shop.example.com",
                    "http": {
                        "paths": [
                            {
                                "path": "/",
                                "pathType": "Prefix",
                                "backend": {"service": {"name": "web", "port": {"number": 80}}},
                            }
                        ]
                    },
                }
            ],
        },
    },
]


@pytest.mark.parametrize("version", [versions()[0], versions()[-1]])
def test_everything_the_fake_stores_passes_its_versions_strict_schema(
    version: str, tmp_path: pathlib.Path
) -> None:
    with FakeKubernetes(version=version, rollout_seconds=0.05) as fake:
        dynamic = dynamic_client(fake, tmp_path)
        for body in EVERY_KIND:
            namespaced = body["kind"] != "IngressClass"
            body = {
                **body,
                "metadata": {**body["metadata"], **({"namespace": "default"} if namespaced else {})},
            }
            apply(dynamic, body)
        wait_for(
            lambda: (
                (fake.get("batch/v1", "Job", "default", "migrate") or {}).get("status", {}).get("succeeded")
            )
        )
        checked = 0
        for kind in ("Pod", "ReplicaSet", "Event", *(body["kind"] for body in EVERY_KIND)):
            resource = dynamic.resources.get(kind=kind)
            for item in resource.get().to_dict()["items"]:
                item.update(apiVersion=resource.group_version, kind=kind)
                kubernetes_validate.validate(item, version, strict=True)
                checked += 1
        assert checked >= len(EVERY_KIND) + 3


def test_events_say_what_happened(
    dynamic: DynamicClient, cluster: FakeKubernetes, core: client.CoreV1Api
) -> None:
    apply(dynamic, deployment("registry.example/web:pull-error", replicas=1))
    failed = wait_for(lambda: [e for e in core.list_namespaced_event("shop").items if e.reason == "Failed"])
    assert failed[0].type == "Warning" and "registry.example/web:pull-error" in failed[0].message
    assert failed[0].involved_object.kind == "Pod"
    scaling = [e for e in core.list_namespaced_event("shop").items if e.reason == "ScalingReplicaSet"]
    assert scaling[0].involved_object.name == "web" and "to 1" in scaling[0].message


def test_an_immutable_config_map_keeps_its_data(core: client.CoreV1Api) -> None:
    core.create_namespaced_config_map(
        "shop", {"metadata": {"name": "fixed"}, "data": {"a": "1"}, "immutable": True}
    )
    status, answer = failure(lambda: core.patch_namespaced_config_map("fixed", "shop", {"data": {"a": "2"}}))
    assert status == 422 and answer["details"]["causes"][0]["field"] == "data"


def test_a_finished_job_goes_after_its_ttl(dynamic: DynamicClient, cluster: FakeKubernetes) -> None:
    apply(
        dynamic,
        {
            "apiVersion": "batch/v1",
            "kind": "Job",
            "metadata": {"name": "once", "namespace": "shop"},
            "spec": {
                "ttlSecondsAfterFinished": 0,
                "template": {
                    "spec": {"restartPolicy": "Never", "containers": [{"name": "m", "image": "m:1"}]}
                },
            },
        },
    )
    wait_for(lambda: cluster.get("batch/v1", "Job", "shop", "once") is None)
    assert cluster.calls.count("delete") == 0  # the fake's TTL controller removed it


def test_over_tls_the_kubeconfig_carries_the_ca() -> None:
    with FakeKubernetes(rollout_seconds=ROLLOUT, tls=True) as fake:
        assert fake.url.startswith("https://127.0.0.1:")
        api = config.new_client_from_config_dict(fake.kubeconfig())
        assert "default" in [n.metadata.name for n in client.CoreV1Api(api).list_namespace().items]
        trusting = urllib3.PoolManager(ca_cert_data=(fake.ca_certificate or b"").decode())
        anonymous = trusting.request("GET", f"{fake.url}/api/v1/namespaces")
        assert anonymous.status == 401
        with pytest.raises(urllib3.exceptions.MaxRetryError):  # a client that does not trust its CA
            urllib3.PoolManager(retries=0).request("GET", f"{fake.url}/version")


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl is not installed here")
def test_kubectl_applies_and_follows_a_rollout(tmp_path: pathlib.Path) -> None:
    with FakeKubernetes(rollout_seconds=ROLLOUT, tls=True) as fake:
        (tmp_path / "config").write_text(json.dumps(fake.kubeconfig()))
        env = {"KUBECONFIG": str(tmp_path / "config"), "HOME": str(tmp_path), "PATH": os.environ["PATH"]}

        def kubectl(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
            return subprocess.run(
                ["kubectl", *args],
                env=env,
                input=stdin,
                capture_output=True,
                text=True,
                timeout=60,
                check=False,
            )

        body = json.dumps(deployment() | {"metadata": {"name": "web", "namespace": "default"}})
        applied = kubectl("apply", "--server-side", "--validate=false", "-f", "-", stdin=body)
        assert applied.returncode == 0, applied.stderr
        followed = kubectl("rollout", "status", "deployment/web", "--timeout=20s")
        assert followed.returncode == 0 and "successfully rolled out" in followed.stdout, followed.stderr
        events = kubectl("get", "events", "--field-selector", "involvedObject.kind=Deployment", "-o", "json")
        assert "ScalingReplicaSet" in events.stdout, events.stderr


def test_two_appliers_own_their_own_containers(dynamic: DynamicClient, cluster: FakeKubernetes) -> None:
    apply(dynamic, deployment())
    sidecar = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "shop"},
        "spec": {"template": {"spec": {"containers": [{"name": "proxy", "image": "proxy:1"}]}}},
    }
    apply(dynamic, sidecar, manager="mesh")

    def names() -> list[str]:
        stored = cluster.get("apps/v1", "Deployment", "shop", "web")
        return [c["name"] for c in stored["spec"]["template"]["spec"]["containers"]]

    assert names() == ["app", "proxy"]
    apply(dynamic, deployment("registry.example/web:2"))  # skyrig's configuration has no proxy: it stays
    assert names() == ["app", "proxy"]
    sidecar["spec"]["template"]["spec"]["containers"] = []
    apply(dynamic, sidecar, manager="mesh")  # the mesh stops applying its proxy: it goes
    assert names() == ["app"]


def test_concurrent_writers_each_get_their_own_resource_version(
    cluster: FakeKubernetes, tmp_path: pathlib.Path
) -> None:
    def writer(number: int) -> list[str]:
        (tmp_path / str(number)).mkdir()
        dynamic = dynamic_client(cluster, tmp_path / str(number))
        versions = []
        for index in range(10):
            body = {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {"name": f"c{number}-{index}", "namespace": "shop"},
                "data": {"n": str(index)},
            }
            versions.append(apply(dynamic, body).metadata.resourceVersion)
        return versions

    results: list[list[str]] = []
    threads = [threading.Thread(target=lambda n=n: results.append(writer(n))) for n in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    handed_out = [version for versions in results for version in versions]
    assert len(handed_out) == len(set(handed_out)) == 60
    assert len(client.CoreV1Api(cluster.api_client()).list_namespaced_config_map("shop").items) == 60


def test_a_rollback_reuses_the_earlier_replicaset_as_the_newest_revision(
    dynamic: DynamicClient, cluster: FakeKubernetes, apps: client.AppsV1Api
) -> None:
    apply(dynamic, deployment())
    rolled_out(cluster)
    apply(dynamic, deployment("registry.example/web:2"))
    wait_for(
        lambda: rolled_out(cluster)["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "2"
    )
    apply(dynamic, deployment())
    back = wait_for(
        lambda: (
            (d := rolled_out(cluster))["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "3"
            and d
        )
    )
    replicasets = apps.list_namespaced_replica_set("shop").items
    assert len(replicasets) == 2  # the first one came back, no third was made
    serving = [rs for rs in replicasets if rs.spec.replicas]
    assert serving[0].metadata.annotations["deployment.kubernetes.io/revision"] == "3"
    assert back["status"]["updatedReplicas"] == 2
