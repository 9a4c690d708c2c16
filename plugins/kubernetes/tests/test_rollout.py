"""Rollouts and migrations Jobs, waited for and reported with their reasons: against the FAKE Kubernetes API
server (``skyrig_kubernetes.fake``, a fake, not Kubernetes: its Deployments roll out after
``rollout_seconds``; an image tagged ``pull-error`` or ``crash-loop`` never becomes ready while the old
ReplicaSet keeps serving, and a Job whose image is one of those fails)."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator

import pytest

from skyrig_kubernetes.cluster import Cluster
from skyrig_kubernetes.deploy import deploy, owns_replicas
from skyrig_kubernetes.fake import FakeKubernetes
from skyrig_kubernetes.rollout import JobFailed, RolloutFailed, wait_for_rollout
from skyrig_kubernetes.workloads import Migration, Workload, namespace, service_objects

WORKLOAD = Workload(
    app="shop",
    environment="production",
    service="orders",
    service_app="shop.orders:app",
    image="registry.example.com/shop:1",
    min_replicas=2,
    max_replicas=2,
)
MIGRATION = Migration(
    database="orders",
    command=("python", "-m", "skyrig_aws.runtime.migrate"),
    environment={"SKYRIG_DATABASE": "orders"},
    migrations=("0001_init.sql",),
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


def with_image(tag: str) -> Workload:
    return dataclasses.replace(WORKLOAD, image=f"registry.example.com/shop:{tag}")


def image_of(fake: FakeKubernetes) -> str:
    found = fake.get("apps/v1", "Deployment", WORKLOAD.namespace, WORKLOAD.name)
    return found["spec"]["template"]["spec"]["containers"][0]["image"]  # type: ignore[index]


def old_version_serving(fake: FakeKubernetes, kube: Cluster) -> int:
    """The available pods of the Deployment's ReplicaSets that run the first image."""
    sets = kube.list("apps/v1", "ReplicaSet", WORKLOAD.namespace, {"app.kubernetes.io/name": WORKLOAD.name})
    return sum(
        (rs.get("status") or {}).get("availableReplicas", 0)
        for rs in sets
        if rs["spec"]["template"]["spec"]["containers"][0]["image"] == WORKLOAD.image
    )


def test_an_image_change_rolls_out_and_the_wait_returns_when_the_new_pods_are_ready(
    fake: FakeKubernetes, kube: Cluster
) -> None:
    first = deploy(kube, WORKLOAD, timeout=20)
    assert first["status"]["availableReplicas"] == 2 and first["status"]["updatedReplicas"] == 2
    second = deploy(kube, with_image("2"), timeout=20)
    assert second["metadata"]["generation"] == first["metadata"]["generation"] + 1
    assert second["status"]["updatedReplicas"] == second["status"]["availableReplicas"] == 2
    assert second["status"]["replicas"] == 2  # no pod of the old version left
    assert image_of(fake) == "registry.example.com/shop:2" and old_version_serving(fake, kube) == 0


@pytest.mark.parametrize(
    ("tag", "reason", "said"),
    [
        (
            "pull-error",
            "ImagePullBackOff",
            "the image registry.example.com/shop:pull-error cannot be pulled (ImagePullBackOff",
        ),
        (
            "crash-loop",
            "CrashLoopBackOff",
            "the container crashes when it starts (CrashLoopBackOff: exit code 1",
        ),
    ],
)
def test_a_failing_rollout_says_why_and_the_previous_version_keeps_serving(
    fake: FakeKubernetes, kube: Cluster, tag: str, reason: str, said: str
) -> None:
    deploy(kube, WORKLOAD, timeout=20)
    with pytest.raises(RolloutFailed) as raised:
        deploy(kube, with_image(tag), timeout=20)
    failure = raised.value
    assert failure.service == "orders" and failure.reason == reason
    assert said in str(failure) and "service orders did not roll out" in str(failure)
    assert failure.serving == 2 and "the previous version keeps serving (2 pods available" in str(failure)
    assert old_version_serving(fake, kube) == 2  # the first version still serves, as the error says


def test_the_migrations_job_runs_before_the_deployment_changes(fake: FakeKubernetes, kube: Cluster) -> None:
    deploy(kube, WORKLOAD, [MIGRATION], timeout=20)
    jobs = kube.list("batch/v1", "Job", WORKLOAD.namespace)
    assert len(jobs) == 1 and jobs[0]["status"].get("succeeded") == 1
    order = [c.path for c in fake.calls.select("apply")]
    job_at = next(i for i, path in enumerate(order) if "/jobs/" in path)
    deployment_at = next(i for i, path in enumerate(order) if "/deployments/" in path)
    assert job_at < deployment_at

    # a new image runs the migrations again (a new Job), an unchanged deploy does not
    deploy(kube, with_image("2"), [MIGRATION], timeout=20)
    deploy(kube, with_image("2"), [MIGRATION], timeout=20)
    assert len(kube.list("batch/v1", "Job", WORKLOAD.namespace)) == 2


def test_a_failing_migrations_job_stops_the_rollout_with_its_reason(
    fake: FakeKubernetes, kube: Cluster
) -> None:
    deploy(kube, WORKLOAD, timeout=20)
    with pytest.raises(JobFailed) as raised:
        deploy(kube, with_image("pull-error"), [MIGRATION], timeout=20)
    message = str(raised.value)
    assert message.startswith("service orders was not changed: the migrations of database orders (Job ")
    assert "the image registry.example.com/shop:pull-error cannot be pulled" in message
    assert raised.value.reason == "ImagePullBackOff"
    assert image_of(fake) == WORKLOAD.image  # the Deployment was never changed


def test_a_service_that_becomes_autoscaled_keeps_its_replica_count(
    fake: FakeKubernetes, kube: Cluster
) -> None:
    deploy(kube, dataclasses.replace(WORKLOAD, min_replicas=3, max_replicas=3), timeout=20)
    counts = []
    original = kube.apply

    def apply_and_look(found: dict, manager: str = "skyrig") -> dict:
        applied = original(found, manager)
        if found["kind"] == "Deployment":
            counts.append(applied["spec"]["replicas"])
        return applied

    kube.apply = apply_and_look  # type: ignore[method-assign]
    deploy(kube, dataclasses.replace(WORKLOAD, min_replicas=2, max_replicas=6), timeout=20)
    assert counts == [3, 3]  # never reset to the default of 1 on the way to the autoscaler
    stored = fake.get("apps/v1", "Deployment", WORKLOAD.namespace, WORKLOAD.name)
    assert not owns_replicas(stored)  # type: ignore[arg-type]
    assert (
        fake.get("autoscaling/v2", "HorizontalPodAutoscaler", WORKLOAD.namespace, WORKLOAD.name) is not None
    )


def test_a_rollout_not_ready_in_time_is_reported_as_such(fake: FakeKubernetes, kube: Cluster) -> None:
    kube.apply_all([namespace(WORKLOAD.app, WORKLOAD.environment), *service_objects(WORKLOAD)])
    with pytest.raises(RolloutFailed) as raised:
        wait_for_rollout(kube, WORKLOAD.namespace, WORKLOAD.name, service="orders", timeout=0.05)
    assert raised.value.reason == "Timeout" and raised.value.serving == 0
    assert str(raised.value).startswith("service orders did not roll out: its new pods did not become ready")
    assert (
        wait_for_rollout(kube, WORKLOAD.namespace, WORKLOAD.name, timeout=20)["status"]["readyReplicas"] == 2
    )
