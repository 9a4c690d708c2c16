"""Deploying one service: its objects applied in order, its migrations run to completion before its
Deployment changes, and its rollout waited for. What a Kubernetes compute provider's service node does
when it is created or updated."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from skyrig_kubernetes import drift
from skyrig_kubernetes.cluster import FIELD_MANAGER, Cluster, apply_order
from skyrig_kubernetes.rollout import JobFailed, run_job, wait_for_rollout
from skyrig_kubernetes.workloads import Migration, Workload, migration_job, namespace, service_objects

BEFORE_MIGRATIONS = frozenset({"Namespace", "ServiceAccount"})
"""What a migrations Job needs in place (its namespace and identity); the rest waits for it, the runtime
config too (a pod of the previous version that restarts meanwhile still reads the config it ran with)."""

HANDOVER_MANAGER = "skyrig-handover"
"""The field manager that keeps a replica count skyrig stops setting until the autoscaler sets one."""


def owns_replicas(deployment: Mapping[str, Any], manager: str = FIELD_MANAGER) -> bool:
    """Whether ``manager``'s applies own the Deployment's ``spec.replicas``."""
    return any(
        entry.get("manager") == manager
        and entry.get("operation") == "Apply"
        and "f:replicas" in ((entry.get("fieldsV1") or {}).get("f:spec") or {})
        for entry in deployment["metadata"].get("managedFields") or []
    )


def hand_over_replicas(cluster: Cluster, desired: Mapping[str, Any]) -> None:
    """Before applying a Deployment that sets no replica count (an autoscaler now owns it) where skyrig
    set one: give the live count to another field manager, as Kubernetes documents for handing a field
    over. Otherwise the apply, which drops skyrig's ownership, would remove the count and the Deployment
    would shrink to one pod until the autoscaler's next look."""
    if "replicas" in desired["spec"]:
        return
    metadata = desired["metadata"]
    live = cluster.get(desired["apiVersion"], desired["kind"], metadata["namespace"], metadata["name"])
    if live is None or not owns_replicas(live):
        return
    keep = {
        "apiVersion": desired["apiVersion"],
        "kind": desired["kind"],
        "metadata": {"name": metadata["name"], "namespace": metadata["namespace"]},
        "spec": {"replicas": live["spec"]["replicas"]},
    }
    cluster.apply(keep, manager=HANDOVER_MANAGER)


def deploy(
    cluster: Cluster,
    workload: Workload,
    migrations: Iterable[Migration] = (),
    *,
    tunable: Mapping[str, Any] | None = None,
    timeout: float = 600.0,
    progress: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Apply ``workload``'s namespace and objects, run ``migrations`` (each a Job, waited for) before the
    Deployment changes, then wait for its rollout; the Deployment as it then runs. ``tunable`` (replicas,
    cpu, memory...: the values a provider adopted, see :mod:`skyrig_kubernetes.drift`) replaces the
    workload's own in the Deployment. Raises :class:`~skyrig_kubernetes.rollout.JobFailed` (nothing after
    the Job is applied: the previous version keeps running as it was) or
    :class:`~skyrig_kubernetes.rollout.RolloutFailed`."""
    say = progress or (lambda _: None)
    objects = apply_order([namespace(workload.app, workload.environment), *service_objects(workload)])
    if tunable:
        objects = [drift.adopt(o, tunable) if o["kind"] == "Deployment" else o for o in objects]
    for found in objects:
        if found["kind"] in BEFORE_MIGRATIONS:
            cluster.apply(found)
    for migration in migrations:
        job = migration_job(workload, migration)
        cluster.apply(job)
        say(f"service {workload.service}: running the migrations of database {migration.database}")
        label = f"the migrations of database {migration.database}"
        try:
            run_job(cluster, workload.namespace, job["metadata"]["name"], label=label, timeout=timeout)
        except JobFailed as failed:
            raise JobFailed(
                f"service {workload.service} was not changed: {failed}",
                failed.job,
                failed.reason,
            ) from None
    for found in objects:
        if found["kind"] == "Deployment":
            hand_over_replicas(cluster, found)
        if found["kind"] not in BEFORE_MIGRATIONS:
            cluster.apply(found)
    say(f"service {workload.service}: waiting for its new pods")
    return wait_for_rollout(
        cluster, workload.namespace, workload.name, service=workload.service, timeout=timeout
    )
