"""The controllers of the FAKE Kubernetes API server (:mod:`skyrig_kubernetes.fake`): what the
kube-controller-manager and the kubelets would do, in one background thread, never inside a request.

- Deployments: a pod template the Deployment has no ReplicaSet for gets a new one (``pod-template-hash``
  label, ``deployment.kubernetes.io/revision`` annotation). Pods become Ready ``rollout_seconds`` after
  they are made. A RollingUpdate steps as the deployment controller does: the new ReplicaSet grows within
  ``maxSurge`` (rounded up), the old ones shrink while ``maxUnavailable`` (rounded down) allows, unready
  Pods first, until the old ones are at 0; Recreate empties the old ones before the new one grows. An
  image tagged ``pull-error`` never becomes ready (Waiting ErrImagePull, then ImagePullBackOff), nor one
  tagged ``crash-loop`` (Waiting CrashLoopBackOff, ``lastState.terminated`` exit code 1,
  ``restartCount`` growing), so the old ReplicaSet keeps at least ``replicas - maxUnavailable`` Pods
  serving; once the fake's progress deadline passes without a step forward the Deployment's Progressing
  condition turns False with reason ProgressDeadlineExceeded. The fake's deadline is
  ``progressDeadlineSeconds`` scaled down: ``rollout_seconds * 10 * progressDeadlineSeconds / 600`` (so
  ``rollout_seconds * 10`` for the default 600 s).
- ReplicaSets keep their Pod count (:mod:`skyrig_kubernetes.fake.kubelet` makes and moves the Pods);
  old ones beyond ``revisionHistoryLimit`` are removed.
- Jobs run one Pod: after ``rollout_seconds`` it Succeeded and the Job is Complete; with a failing image
  the Pod is as above and after the deadline the Job is Failed with reason BackoffLimitExceeded (or
  DeadlineExceeded once its ``activeDeadlineSeconds`` have passed, in real seconds). A finished Job with
  ``ttlSecondsAfterFinished`` goes, with its Pods, that many (real) seconds later.
- HorizontalPodAutoscalers report their target's replicas (they never scale: there are no metrics);
  PodDisruptionBudgets count the healthy Pods they select; Ingresses get an address from 192.0.2.0/24.
- A deleted Namespace stays Terminating for a short delay, then goes with everything in it.
"""

from __future__ import annotations

import copy
import hashlib
import math
import threading
import time
from typing import Any

from skyrig_kubernetes.fake.events import Recorder
from skyrig_kubernetes.fake.kinds import KINDS, Kind
from skyrig_kubernetes.fake.kubelet import (
    CONTROLLER_MANAGER,
    SAFE,
    Kubelet,
    failing_container,
    owner_reference,
    pod_ready,
)
from skyrig_kubernetes.fake.selectors import matches_selector
from skyrig_kubernetes.fake.state import State, now

_KIND = {kind.kind: kind for kind in KINDS}


def template_hash(template: dict[str, Any]) -> str:
    """A pod template's ``pod-template-hash`` (10 characters of the alphabet Kubernetes uses)."""
    digest = int.from_bytes(hashlib.sha256(repr(sorted(_flatten(template))).encode()).digest()[:8], "big")
    out = ""
    for _ in range(10):
        digest, index = divmod(digest, len(SAFE))
        out += SAFE[index]
    return out


def _flatten(value: Any, prefix: str = "") -> list[tuple[str, str]]:
    if isinstance(value, dict):
        return [pair for key, child in value.items() for pair in _flatten(child, f"{prefix}.{key}")]
    if isinstance(value, list):
        return [pair for index, child in enumerate(value) for pair in _flatten(child, f"{prefix}[{index}]")]
    return [(prefix, repr(value))]


def _owned_by(obj: dict[str, Any], owner: dict[str, Any]) -> bool:
    uid = owner["metadata"]["uid"]
    return any(reference.get("uid") == uid for reference in obj["metadata"].get("ownerReferences") or [])


def _condition(
    current: list[dict[str, Any]],
    kind: str,
    status: str,
    reason: str,
    message: str,
    *,
    update_time: bool = False,
) -> dict[str, Any]:
    """A condition, keeping the earlier one's timestamps when nothing about it changed."""
    for old in current:
        if old.get("type") == kind and old.get("status") == status and old.get("reason") == reason:
            if old.get("message") == message:
                return old
            return {**old, "message": message}
    condition = {
        "type": kind,
        "status": status,
        "reason": reason,
        "message": message,
        "lastTransitionTime": now(),
    }
    if update_time:
        condition["lastUpdateTime"] = condition["lastTransitionTime"]
    return condition


def _revision(replicaset: dict[str, Any]) -> int:
    return int((replicaset["metadata"].get("annotations") or {}).get("deployment.kubernetes.io/revision", 0))


def _rolling_bounds(spec: dict[str, Any], desired: int) -> tuple[int, int]:
    """(maxSurge rounded up, maxUnavailable rounded down), as Pod counts; both 0 means 1 unavailable."""
    rolling = (spec.get("strategy") or {}).get("rollingUpdate") or {}

    def count(value: Any, rounding: Any) -> int:
        if isinstance(value, str) and value.endswith("%"):
            return int(rounding(desired * int(value[:-1]) / 100))
        return int(value)

    surge = count(rolling.get("maxSurge", "25%"), math.ceil)
    unavailable = count(rolling.get("maxUnavailable", "25%"), math.floor)
    return surge, unavailable if surge or unavailable else 1


class Controllers:
    """The background thread that moves the fake cluster along."""

    def __init__(self, state: State, rollout_seconds: float, version: str) -> None:
        self.state = state
        self.rollout_seconds = rollout_seconds
        self.version = version
        self.events = Recorder(state)
        self._children: dict[str, list[dict[str, Any]]] = {}
        self.kubelet = Kubelet(state, rollout_seconds, self.events)
        self._progress: dict[str, tuple[tuple[str, int, int, int], float]] = {}
        #: When (monotonic) each Job finished, for ``ttlSecondsAfterFinished``.
        self._finished: dict[str, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="fake-kubernetes-controllers", daemon=True)
        self.interval = max(0.02, min(0.05, rollout_seconds / 5))

    def start(self) -> None:
        """Starts the thread."""
        self._thread.start()

    def stop(self) -> None:
        """Stops the thread."""
        self._stop.set()
        self._thread.join(timeout=5)

    def forget(self) -> None:
        """Forgets every Pod's age and every rollout's start (after the store is wiped)."""
        self.kubelet.forget()
        self._progress.clear()
        self._finished.clear()

    def deadline(self, progress_deadline_seconds: int = 600) -> float:
        """The fake's progress deadline: ``progressDeadlineSeconds`` scaled down (see the module)."""
        return self.rollout_seconds * 10 * progress_deadline_seconds / 600

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            with self.state.lock:
                self.tick()

    def tick(self) -> None:
        """One pass of every controller."""
        self._namespaces()
        self._index_pods()
        for deployment in self.state.items(_KIND["Deployment"]):
            self._deployment(deployment)
        for replicaset in self.state.items(_KIND["ReplicaSet"]):
            self._replicaset(replicaset)
        for job in self.state.items(_KIND["Job"]):
            self._job(job)
        for pod in self.state.items(_KIND["Pod"]):
            self.kubelet.step(pod)
        for hpa in self.state.items(_KIND["HorizontalPodAutoscaler"]):
            self._hpa(hpa)
        for pdb in self.state.items(_KIND["PodDisruptionBudget"]):
            self._pdb(pdb)
        for service in self.state.items(_KIND["Service"]):
            if (service.get("spec") or {}).get("type") == "LoadBalancer":
                self._set_status(
                    _KIND["Service"], service, {"loadBalancer": {"ingress": [{"ip": "192.0.2.20"}]}}
                )
        for ingress in self.state.items(_KIND["Ingress"]):
            self._set_status(_KIND["Ingress"], ingress, {"loadBalancer": {"ingress": [{"ip": "192.0.2.10"}]}})

    def _set_status(self, kind: Kind, obj: dict[str, Any], status: dict[str, Any]) -> None:
        if obj.get("status") != status:
            before = copy.deepcopy(obj)
            obj["status"] = status
            self.state.write_as(kind, before, obj, CONTROLLER_MANAGER, "status")

    def _change(self, kind: Kind, obj: dict[str, Any], path: tuple[str, ...], value: Any) -> None:
        """Sets ``obj``'s field at ``path`` as the controller manager does (an Update of its own)."""
        before = copy.deepcopy(obj)
        target = obj
        for key in path[:-1]:
            target = target.setdefault(key, {})
        if target.get(path[-1]) != value:
            target[path[-1]] = value
            self.state.write_as(kind, before, obj, CONTROLLER_MANAGER)

    # -- namespaces ------------------------------------------------------------------------------------

    def _namespaces(self) -> None:
        moment = time.monotonic()
        for name, when in list(self.state.terminating.items()):
            if when > moment:
                continue
            for kind, obj in list(self.state.everything()):
                if kind.namespaced and obj["metadata"].get("namespace") == name:
                    self.state.discard(kind, name, obj["metadata"]["name"])
            self.state.discard(_KIND["Namespace"], "", name)
            del self.state.terminating[name]
        for namespace in self.state.items(_KIND["Namespace"]):
            name = namespace["metadata"]["name"]
            if namespace["metadata"].get("deletionTimestamp"):
                continue
            if self.state.get(_KIND["ServiceAccount"], name, "default") is None:
                account = {
                    "apiVersion": "v1",
                    "kind": "ServiceAccount",
                    "metadata": {"name": "default", "namespace": name},
                }
                self.state.new_metadata(_KIND["ServiceAccount"], account)
                self.state.write_as(_KIND["ServiceAccount"], None, account, CONTROLLER_MANAGER)

    # -- replicasets -----------------------------------------------------------------------------------

    def _pods_of(self, owner: dict[str, Any]) -> list[dict[str, Any]]:
        return list(self._children.get(owner["metadata"]["uid"], ()))

    def _index_pods(self) -> None:
        """The Pods of each owner, found once per pass (the pass keeps it current as it makes and
        removes Pods)."""
        self._children = {}
        for pod in self.state.items(_KIND["Pod"]):
            for reference in pod["metadata"].get("ownerReferences") or []:
                self._children.setdefault(reference.get("uid"), []).append(pod)

    def _new_pod(
        self, owner: dict[str, Any], template: dict[str, Any], labels: dict[str, str], by: str
    ) -> None:
        pod = self.kubelet.create(owner, template, labels, by)
        self._children.setdefault(owner["metadata"]["uid"], []).append(pod)

    def _remove_pod(self, pod: dict[str, Any], owner: dict[str, Any], by: str) -> None:
        self.kubelet.remove(pod, owner, by)
        self._children[owner["metadata"]["uid"]].remove(pod)

    def _replicaset(self, replicaset: dict[str, Any]) -> None:
        spec = replicaset.get("spec") or {}
        wanted = spec.get("replicas", 1)
        pods = self._pods_of(replicaset)
        template = spec.get("template") or {}
        for _ in range(wanted - len(pods)):
            self._new_pod(replicaset, template, {}, "replicaset-controller")
        if len(pods) > wanted:
            pods.sort(key=lambda pod: (pod_ready(pod), -self.kubelet.age(pod)))
            for pod in pods[: len(pods) - wanted]:
                self._remove_pod(pod, replicaset, "replicaset-controller")
        pods = self._pods_of(replicaset)
        ready = sum(1 for pod in pods if pod_ready(pod))
        status = {
            "replicas": len(pods),
            "fullyLabeledReplicas": len(pods),
            "readyReplicas": ready,
            "availableReplicas": ready,
            "observedGeneration": replicaset["metadata"].get("generation", 1),
        }
        self._set_status(
            _KIND["ReplicaSet"],
            replicaset,
            {
                key: value
                for key, value in status.items()
                if value or key in ("replicas", "observedGeneration")
            },
        )

    # -- deployments -----------------------------------------------------------------------------------

    def _new_replicaset(self, deployment: dict[str, Any], pod_hash: str, revision: int) -> dict[str, Any]:
        spec = deployment["spec"]
        template = copy.deepcopy(spec.get("template") or {})
        template.setdefault("metadata", {}).setdefault("labels", {})["pod-template-hash"] = pod_hash
        selector = copy.deepcopy(spec.get("selector") or {})
        selector.setdefault("matchLabels", {})["pod-template-hash"] = pod_hash
        metadata = deployment["metadata"]
        replicaset: dict[str, Any] = {
            "apiVersion": "apps/v1",
            "kind": "ReplicaSet",
            "metadata": {
                "name": f"{metadata['name']}-{pod_hash}",
                "namespace": metadata["namespace"],
                "labels": dict(template["metadata"]["labels"]),
                "annotations": {
                    "deployment.kubernetes.io/desired-replicas": str(spec.get("replicas", 1)),
                    "deployment.kubernetes.io/max-replicas": str(spec.get("replicas", 1) + 1),
                    "deployment.kubernetes.io/revision": str(revision),
                },
                "ownerReferences": [owner_reference(deployment)],
            },
            "spec": {"replicas": 0, "selector": selector, "template": template},
        }
        if spec.get("minReadySeconds"):
            replicaset["spec"]["minReadySeconds"] = spec["minReadySeconds"]
        self.state.new_metadata(_KIND["ReplicaSet"], replicaset)
        return self.state.write_as(_KIND["ReplicaSet"], None, replicaset, CONTROLLER_MANAGER)

    def _deployment(self, deployment: dict[str, Any]) -> None:
        metadata, spec = deployment["metadata"], deployment.get("spec") or {}
        if metadata.get("deletionTimestamp") or spec.get("paused"):
            return
        desired = spec.get("replicas", 1)
        pod_hash = template_hash(spec.get("template") or {})
        owned = [
            rs
            for rs in self.state.items(_KIND["ReplicaSet"], metadata["namespace"])
            if _owned_by(rs, deployment)
        ]
        revisions = [_revision(rs) for rs in owned]
        current = next(
            (rs for rs in owned if (rs["metadata"].get("labels") or {}).get("pod-template-hash") == pod_hash),
            None,
        )
        if current is None:
            current = self._new_replicaset(deployment, pod_hash, max(revisions, default=0) + 1)
            owned.append(current)
        elif len(owned) > 1 and _revision(current) < max(revisions):
            # back to an earlier template (a rollback): its ReplicaSet is the newest revision again
            self._change(
                _KIND["ReplicaSet"],
                current,
                ("metadata", "annotations", "deployment.kubernetes.io/revision"),
                str(max(revisions) + 1),
            )
        revision = (current["metadata"].get("annotations") or {}).get("deployment.kubernetes.io/revision")
        if (metadata.get("annotations") or {}).get("deployment.kubernetes.io/revision") != revision:
            self._change(
                _KIND["Deployment"],
                deployment,
                ("metadata", "annotations", "deployment.kubernetes.io/revision"),
                revision,
            )
        old = [rs for rs in owned if rs is not current]
        if (spec.get("strategy") or {}).get("type") == "Recreate":
            self._recreate(deployment, current, old, desired)
        else:
            self._roll(deployment, current, old, desired)
        self._trim_history(spec, [rs for rs in old if not rs["spec"].get("replicas")])
        new_pods = self._pods_of(current)
        new_ready = sum(1 for pod in new_pods if pod_ready(pod))
        old_pods = [pod for rs in old for pod in self._pods_of(rs)]
        old_ready = sum(1 for pod in old_pods if pod_ready(pod))
        available = new_ready + old_ready
        uid = metadata["uid"]
        progress = (pod_hash, desired, current["spec"].get("replicas", 0), new_ready)
        if self._progress.get(uid, (None, 0.0))[0] != progress:
            # any step forward (a new ReplicaSet, a scale-up, a new Pod ready) restarts the deadline
            self._progress[uid] = (progress, time.monotonic())
        name = current["metadata"]["name"]
        conditions = (deployment.get("status") or {}).get("conditions") or []
        if available >= desired - _rolling_bounds(spec, desired)[1]:
            available_condition = _condition(
                conditions,
                "Available",
                "True",
                "MinimumReplicasAvailable",
                "Deployment has minimum availability.",
                update_time=True,
            )
        else:
            available_condition = _condition(
                conditions,
                "Available",
                "False",
                "MinimumReplicasUnavailable",
                "Deployment does not have minimum availability.",
                update_time=True,
            )
        elapsed = time.monotonic() - self._progress[uid][1]
        complete = new_ready >= desired and len(new_pods) == desired and not old_pods
        if complete:
            progressing = _condition(
                conditions,
                "Progressing",
                "True",
                "NewReplicaSetAvailable",
                f'ReplicaSet "{name}" has successfully progressed.',
                update_time=True,
            )
        elif elapsed > self.deadline(spec.get("progressDeadlineSeconds", 600)):
            progressing = _condition(
                conditions,
                "Progressing",
                "False",
                "ProgressDeadlineExceeded",
                f'ReplicaSet "{name}" has timed out progressing.',
                update_time=True,
            )
        else:
            progressing = _condition(
                conditions,
                "Progressing",
                "True",
                "ReplicaSetUpdated",
                f'ReplicaSet "{name}" is progressing.',
                update_time=True,
            )
        status: dict[str, Any] = {
            "observedGeneration": metadata.get("generation", 1),
            "replicas": len(new_pods) + len(old_pods),
            "updatedReplicas": len(new_pods),
            "readyReplicas": available,
            "availableReplicas": available,
            "unavailableReplicas": max(0, desired - available),
            "conditions": [available_condition, progressing],
        }
        status = {
            key: value
            for key, value in status.items()
            if value or key in ("observedGeneration", "replicas", "conditions")
        }
        self._set_status(_KIND["Deployment"], deployment, status)

    def _ready(self, replicaset: dict[str, Any]) -> int:
        return sum(1 for pod in self._pods_of(replicaset) if pod_ready(pod))

    def _scale(self, deployment: dict[str, Any], replicaset: dict[str, Any], replicas: int) -> None:
        """Sets a ReplicaSet's replicas, with the deployment controller's Event."""
        before = replicaset["spec"].get("replicas", 0)
        if before == replicas:
            return
        self._change(_KIND["ReplicaSet"], replicaset, ("spec", "replicas"), replicas)
        self.events.record(
            deployment,
            "ScalingReplicaSet",
            f"Scaled {'up' if replicas > before else 'down'} replica set {replicaset['metadata']['name']} "
            f"from {before} to {replicas}",
            component="deployment-controller",
        )

    def _recreate(
        self, deployment: dict[str, Any], current: dict[str, Any], old: list[dict[str, Any]], desired: int
    ) -> None:
        """Recreate: the old ReplicaSets to 0 first, the new one up once their Pods are gone."""
        for rs in old:
            self._scale(deployment, rs, 0)
        if not any(self._pods_of(rs) for rs in old):
            self._scale(deployment, current, desired)

    def _roll(
        self, deployment: dict[str, Any], current: dict[str, Any], old: list[dict[str, Any]], desired: int
    ) -> None:
        """One step of a rolling update, as the deployment controller takes it: the new ReplicaSet up
        within ``maxSurge``, the old ones down while ``maxUnavailable`` allows (unready Pods first)."""
        surge, unavailable = _rolling_bounds(deployment["spec"], desired)
        total = sum(rs["spec"].get("replicas", 0) for rs in [current, *old])
        wanted = current["spec"].get("replicas", 0)
        if wanted < desired:
            wanted = min(desired, wanted + max(0, desired + surge - total))
        self._scale(deployment, current, min(wanted, desired))
        new_ready = self._ready(current)
        total = sum(rs["spec"].get("replicas", 0) for rs in [current, *old])
        minimum = desired - unavailable
        unhealthy_budget = total - minimum - (current["spec"]["replicas"] - new_ready)
        healthy_budget = new_ready + sum(self._ready(rs) for rs in old) - minimum
        for rs in sorted(old, key=lambda rs: rs["metadata"]["creationTimestamp"]):
            replicas = rs["spec"].get("replicas", 0)
            unready = max(0, replicas - self._ready(rs))
            drop = max(0, min(unready, unhealthy_budget))
            unhealthy_budget -= drop
            healthy = max(0, min(replicas - drop, healthy_budget))
            healthy_budget -= healthy
            self._scale(deployment, rs, replicas - drop - healthy)

    def _trim_history(self, spec: dict[str, Any], idle: list[dict[str, Any]]) -> None:
        limit = spec.get("revisionHistoryLimit", 10)
        idle.sort(key=_revision)
        for rs in idle[: max(0, len(idle) - limit)]:
            self.state.remove_tree(_KIND["ReplicaSet"], rs, "Background")

    # -- jobs ------------------------------------------------------------------------------------------

    def _job(self, job: dict[str, Any]) -> None:
        status = copy.deepcopy(job.get("status") or {})
        spec = job.get("spec") or {}
        uid = job["metadata"]["uid"]
        if any(
            condition.get("type") in ("Complete", "Failed") and condition.get("status") == "True"
            for condition in status.get("conditions") or []
        ):
            ttl = spec.get("ttlSecondsAfterFinished")
            finished_at = self._finished.setdefault(uid, time.monotonic())
            if ttl is not None and time.monotonic() - finished_at >= ttl:
                self.state.remove_tree(_KIND["Job"], job, "Background")
                del self._finished[uid]
            return
        if spec.get("suspend"):
            return
        pods = self._pods_of(job)
        if not pods:
            labels = dict(((spec.get("template") or {}).get("metadata") or {}).get("labels") or {})
            self._new_pod(job, spec.get("template") or {}, labels, "job-controller")
            pods = self._pods_of(job)
        status.setdefault("startTime", job["metadata"]["creationTimestamp"])
        succeeded = [pod for pod in pods if (pod.get("status") or {}).get("phase") == "Succeeded"]
        conditions = status.get("conditions") or []
        finished = now()
        if succeeded:
            status.update(succeeded=1, completionTime=finished, ready=0)
            status.pop("active", None)
            new = []
            if tuple(int(part) for part in self.version.split(".")) >= (1, 31):
                new.append(
                    _condition(
                        conditions,
                        "SuccessCriteriaMet",
                        "True",
                        "CompletionsReached",
                        "Reached expected number of succeeded pods",
                    )
                )
            new.append(
                _condition(
                    conditions,
                    "Complete",
                    "True",
                    "CompletionsReached",
                    "Reached expected number of succeeded pods",
                )
            )
            status["conditions"] = new
            status["uncountedTerminatedPods"] = {}
            self.events.record(job, "Completed", "Job completed", component="job-controller")
        elif failure := self._job_failure(spec, pods[0]):
            reason, message = failure
            status.update(failed=1, ready=0)
            status.pop("active", None)
            status["conditions"] = [
                _condition(conditions, "FailureTarget", "True", reason, message),
                _condition(conditions, "Failed", "True", reason, message),
            ]
            status["uncountedTerminatedPods"] = {}
            self.events.record(job, reason, message, component="job-controller", warning=True)
        else:
            status.update(active=len(pods), ready=sum(1 for pod in pods if pod_ready(pod)))
            status["uncountedTerminatedPods"] = {}
        self._set_status(_KIND["Job"], job, status)

    def _job_failure(self, spec: dict[str, Any], pod: dict[str, Any]) -> tuple[str, str] | None:
        """Why a running Job fails now: its deadline (in real seconds), or its failing image after the
        fake's progress deadline; None while it may still succeed."""
        running = time.monotonic() - self.kubelet.born(pod)
        deadline = spec.get("activeDeadlineSeconds")
        if deadline is not None and running >= deadline:
            return "DeadlineExceeded", "Job was active longer than specified deadline"
        if failing_container((spec.get("template") or {}).get("spec") or {}) and running > self.deadline():
            return "BackoffLimitExceeded", "Job has reached the specified backoff limit"
        return None

    # -- autoscalers, budgets --------------------------------------------------------------------------

    def _hpa(self, hpa: dict[str, Any]) -> None:
        spec = hpa.get("spec") or {}
        target_ref = spec.get("scaleTargetRef") or {}
        target = None
        if target_ref.get("kind") == "Deployment":
            target = self.state.get(
                _KIND["Deployment"], hpa["metadata"]["namespace"], target_ref.get("name", "")
            )
        current = ((target or {}).get("status") or {}).get("replicas", 0)
        desired = max(spec.get("minReplicas", 1), min(current, spec.get("maxReplicas", current)))
        conditions = (hpa.get("status") or {}).get("conditions") or []
        if target is None:
            able = _condition(
                conditions,
                "AbleToScale",
                "False",
                "FailedGetScale",
                f"the HPA controller was unable to get the target's current scale: "
                f'deployments/scale.apps "{target_ref.get("name")}" not found',
            )
        else:
            able = _condition(
                conditions, "AbleToScale", "True", "ReadyForNewScale", "recommended size matches current size"
            )
        status = {"currentReplicas": current, "desiredReplicas": desired, "conditions": [able]}
        self._set_status(_KIND["HorizontalPodAutoscaler"], hpa, status)

    def _pdb(self, pdb: dict[str, Any]) -> None:
        spec = pdb.get("spec") or {}
        selector = spec.get("selector") or {}
        pods = [
            pod
            for pod in self.state.items(_KIND["Pod"], pdb["metadata"]["namespace"])
            if selector and matches_selector(selector, (pod["metadata"].get("labels") or {}))
        ]
        healthy = sum(1 for pod in pods if pod_ready(pod))
        expected = len(pods)

        def count(value: Any) -> int:
            if isinstance(value, str) and value.endswith("%"):
                return math.ceil(expected * int(value[:-1]) / 100)
            return int(value)

        if spec.get("maxUnavailable") is not None:
            desired = max(0, expected - count(spec["maxUnavailable"]))
        else:
            desired = count(spec.get("minAvailable", 1))
        allowed = max(0, healthy - desired)
        conditions = (pdb.get("status") or {}).get("conditions") or []
        if allowed:
            condition = _condition(conditions, "DisruptionAllowed", "True", "SufficientPods", "")
        else:
            condition = _condition(conditions, "DisruptionAllowed", "False", "InsufficientPods", "")
        condition = {**condition, "observedGeneration": pdb["metadata"].get("generation", 1)}
        status = {
            "observedGeneration": pdb["metadata"].get("generation", 1),
            "currentHealthy": healthy,
            "desiredHealthy": desired,
            "disruptionsAllowed": allowed,
            "expectedPods": expected,
            "conditions": [condition],
        }
        self._set_status(_KIND["PodDisruptionBudget"], pdb, status)
