"""Waiting for what an apply set in motion: a Deployment's rollout and a Job's run.

:func:`wait_for_rollout` returns once every pod of a Deployment runs its current template and is
available, and none of an older one is left. When the new pods cannot start, it raises
:class:`RolloutFailed` saying why, from the pods' container states (an image that cannot be pulled, a
container that crashes, with its exit code and restarts) or from the Deployment's ``Progressing=False``
condition; nothing is rolled back, because nothing needs to be: a rolling update never takes an old pod
away before a new one is available, so the previous version keeps serving. :func:`run_job` waits for a
Job to complete, or raises :class:`JobFailed` with its reason.

Both poll with a backoff (a first look after ``interval``, doubling up to ``max_interval``) until
``timeout`` seconds have passed.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

from skyrig.provider import ProviderError
from skyrig_kubernetes.cluster import Cluster, KubernetesError

PULL_FAILURES = frozenset({"ImagePullBackOff", "ErrImagePull", "InvalidImageName", "ErrImageNeverPull"})
"""Waiting reasons of a container whose image cannot be pulled."""

HOPELESS = frozenset(
    {
        "ImagePullBackOff",
        "InvalidImageName",
        "ErrImageNeverPull",
        "CrashLoopBackOff",
        "CreateContainerConfigError",
    }
)
"""Waiting reasons that mean the pod will not start without a change: reported at once, not at the
progress deadline (``ErrImagePull`` alone is a first failure, which the kubelet retries)."""

STARTING = frozenset({"ContainerCreating", "PodInitializing"})
"""Waiting reasons of a container on its way to running: no problem."""


class RolloutFailed(ProviderError):
    """A Deployment's new pods did not become ready: ``reason`` (a container's waiting reason, or the
    Deployment's condition's) and how many pods of the previous version still serve (``serving``)."""

    def __init__(self, message: str, service: str, reason: str, serving: int) -> None:
        super().__init__(message)
        self.service = service
        self.reason = reason
        self.serving = serving


class JobFailed(ProviderError):
    """A Job failed (or did not finish in time): ``reason`` says why."""

    def __init__(self, message: str, job: str, reason: str) -> None:
        super().__init__(message)
        self.job = job
        self.reason = reason


def _poll(check: Callable[[], Any], timeout: float, interval: float, max_interval: float) -> Any:
    """Call ``check`` until it returns something but ``None``, with backoff; ``None`` at the timeout."""
    deadline = time.monotonic() + timeout
    while True:
        found = check()
        if found is not None:
            return found
        left = deadline - time.monotonic()
        if left <= 0:
            return None
        time.sleep(min(interval, left))
        interval = min(interval * 2, max_interval)


def _condition(found: Mapping[str, Any], kind: str) -> Mapping[str, Any]:
    for condition in (found.get("status") or {}).get("conditions") or []:
        if condition.get("type") == kind:
            return condition
    return {}


def rolled_out(deployment: Mapping[str, Any]) -> bool:
    """Whether the Deployment's controller has seen its current spec and every pod runs the current
    template, available, with no pod of an older one left."""
    status = deployment.get("status") or {}
    wanted = (deployment.get("spec") or {}).get("replicas", 1)
    updated = status.get("updatedReplicas", 0)
    return (
        status.get("observedGeneration", 0) >= deployment["metadata"].get("generation", 0)
        and updated == wanted
        and status.get("replicas", 0) == updated
        and status.get("availableReplicas", 0) == updated
    )


def container_problem(pod: Mapping[str, Any]) -> tuple[str, str] | None:
    """Why a pod's container does not run, as (reason, explanation), or ``None``."""
    status = pod.get("status") or {}
    for container in status.get("containerStatuses") or []:
        state = container.get("state") or {}
        waiting = state.get("waiting") or {}
        reason = waiting.get("reason")
        detail = f": {waiting['message']}" if waiting.get("message") else ""
        if reason in PULL_FAILURES:
            return reason, f"the image {container.get('image')} cannot be pulled ({reason}{detail})"
        if reason == "CrashLoopBackOff":
            last = (container.get("lastState") or {}).get("terminated") or {}
            restarts = container.get("restartCount", 0)
            return reason, (
                f"the container crashes when it starts (CrashLoopBackOff: exit code "
                f"{last.get('exitCode', '?')}, restarted {restarts} time{'s' if restarts != 1 else ''})"
            )
        if reason and reason not in STARTING:
            return reason, f"the container cannot start ({reason}{detail})"
        ended = state.get("terminated") or {}
        if ended.get("exitCode"):
            ended_reason = ended.get("reason") or "Error"
            return ended_reason, f"the container exited with code {ended['exitCode']} ({ended_reason})"
    return None


def _template_labels(template: Mapping[str, Any]) -> dict[str, Any]:
    """A pod template without the ``pod-template-hash`` label the controller adds to a ReplicaSet's."""
    metadata = dict(template.get("metadata") or {})
    metadata["labels"] = {k: v for k, v in (metadata.get("labels") or {}).items() if k != "pod-template-hash"}
    return {**template, "metadata": metadata}


def _replica_sets(
    cluster: Cluster, deployment: Mapping[str, Any]
) -> tuple[Mapping[str, Any] | None, list[Mapping[str, Any]]]:
    """The Deployment's new ReplicaSet (the one whose template is the Deployment's, as its controller
    finds it) and its older ones."""
    namespace = deployment["metadata"]["namespace"]
    uid = deployment["metadata"].get("uid")
    matched = deployment["spec"]["selector"].get("matchLabels") or {}
    owned = [
        rs
        for rs in cluster.list("apps/v1", "ReplicaSet", namespace, matched)
        if any(o.get("uid") == uid for o in rs["metadata"].get("ownerReferences") or [])
    ]
    wanted = _template_labels(deployment["spec"]["template"])
    new = next((rs for rs in owned if _template_labels(rs["spec"]["template"]) == wanted), None)
    return new, [rs for rs in owned if rs is not new]


def _diagnose(cluster: Cluster, deployment: Mapping[str, Any]) -> tuple[tuple[str, str] | None, int, str]:
    """Why the new pods do not run (or ``None``), how many old pods serve, and which ReplicaSet."""
    new, old = _replica_sets(cluster, deployment)
    serving = sum((rs.get("status") or {}).get("availableReplicas", 0) for rs in old)
    named = ", ".join(
        rs["metadata"]["name"] for rs in old if (rs.get("status") or {}).get("availableReplicas")
    )
    problem = None
    if new is not None:
        pods = cluster.list(
            "v1", "Pod", deployment["metadata"]["namespace"], new["spec"]["selector"]["matchLabels"]
        )
        problems = [p for p in map(container_problem, pods) if p is not None]
        problem = next((p for p in problems if p[0] in HOPELESS), problems[0] if problems else None)
    return problem, serving, named


def wait_for_rollout(
    cluster: Cluster,
    namespace: str,
    name: str,
    *,
    service: str | None = None,
    timeout: float = 600.0,
    interval: float = 0.2,
    max_interval: float = 5.0,
) -> dict[str, Any]:
    """Wait until Deployment ``name`` has rolled out (:func:`rolled_out`); the Deployment then. Raises
    :class:`RolloutFailed` naming ``service`` (else the Deployment) when its new pods cannot start, its
    progress deadline passed, or ``timeout`` did."""
    label = service or name
    last: dict[str, Any] = {}

    def check() -> dict[str, Any] | None:
        found = cluster.get("apps/v1", "Deployment", namespace, name)
        if found is None:
            raise KubernetesError(f"Deployment {namespace}/{name} of service {label} does not exist")
        last["deployment"] = found
        if rolled_out(found):
            return found
        progressing = _condition(found, "Progressing")
        stalled = progressing.get("status") == "False"
        problem, serving, named = _diagnose(cluster, found)
        if stalled or (problem is not None and problem[0] in HOPELESS):
            why = problem or (
                str(progressing.get("reason")),
                f"it made no progress ({progressing.get('reason')}: {progressing.get('message')})",
            )
            raise _failed(label, why, serving, named)
        return None

    done = _poll(check, timeout, interval, max_interval)
    if done is not None:
        return done
    problem, serving, named = _diagnose(cluster, last["deployment"])
    why = problem or ("Timeout", f"its new pods did not become ready within {timeout:g} s")
    raise _failed(label, why, serving, named)


def _failed(service: str, why: tuple[str, str], serving: int, named: str) -> RolloutFailed:
    reason, explanation = why
    if serving:
        kept = (
            f"the previous version keeps serving ({serving} pod{'s' if serving != 1 else ''} available, "
            f"ReplicaSet {named}); the Deployment is not rolled back, nothing needs to be"
        )
    else:
        kept = "no previous version is available to serve"
    return RolloutFailed(
        f"service {service} did not roll out: {explanation}; {kept}. Fix it and apply again.",
        service,
        reason,
        serving,
    )


def run_job(
    cluster: Cluster,
    namespace: str,
    name: str,
    *,
    label: str | None = None,
    timeout: float = 1800.0,
    interval: float = 0.2,
    max_interval: float = 5.0,
) -> dict[str, Any]:
    """Wait until Job ``name`` completes; the Job then. Raises :class:`JobFailed` with the reason from its
    condition and its pods when it fails, when its pod cannot start, or at ``timeout``; messages call
    it ``label`` (what it does) besides its name."""
    what = f"{label} (Job {name})" if label else f"Job {name}"

    def diagnose(job: Mapping[str, Any]) -> tuple[str, str] | None:
        selector = (job["spec"].get("selector") or {}).get("matchLabels") or {"job-name": name}
        problems = [p for p in map(container_problem, cluster.list("v1", "Pod", namespace, selector)) if p]
        return next((p for p in problems if p[0] in HOPELESS), problems[0] if problems else None)

    def check() -> dict[str, Any] | None:
        job = cluster.get("batch/v1", "Job", namespace, name)
        if job is None:
            raise KubernetesError(f"Job {namespace}/{name} does not exist")
        if _condition(job, "Complete").get("status") == "True":
            return job
        failed = _condition(job, "Failed")
        problem = diagnose(job)
        if failed.get("status") == "True":
            pods = f": {problem[1]}" if problem else ""
            raise JobFailed(
                f"{what} failed ({failed.get('reason')}: {failed.get('message')}){pods}",
                name,
                str(failed.get("reason")),
            )
        if problem is not None and problem[0] in HOPELESS:
            raise JobFailed(f"{what} cannot run: {problem[1]}", name, problem[0])
        return None

    done = _poll(check, timeout, interval, max_interval)
    if done is None:
        raise JobFailed(f"{what} did not finish within {timeout:g} s", name, "Timeout")
    return done
