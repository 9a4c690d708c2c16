"""The Pods of the FAKE Kubernetes API server (:mod:`skyrig_kubernetes.fake`): what the scheduler and
the kubelets of a real cluster would make of them, without running anything.

A Pod is made by its owner's controller (:meth:`Kubelet.create`), bound to ``fake-node`` and given an
address; each of its containers starts ``rollout_seconds`` after the Pod was made: then it runs and is
ready (or, in a Pod that runs once, a Job's, it has Completed). An image tagged ``pull-error`` never
pulls (Waiting ErrImagePull, then ImagePullBackOff after ``rollout_seconds``, a message naming the image);
one tagged ``crash-loop`` crashes (Waiting CrashLoopBackOff, ``lastState.terminated`` exit code 1, the
restart count growing every ``rollout_seconds / 2``). The Events a real kubelet and scheduler record go
with each step (Scheduled, Started, Failed, BackOff).
"""

from __future__ import annotations

import copy
import secrets
import time
from typing import Any

from skyrig_kubernetes.fake.events import Recorder
from skyrig_kubernetes.fake.kinds import KINDS
from skyrig_kubernetes.fake.state import State

POD = next(kind for kind in KINDS if kind.kind == "Pod")
#: The image tags that never start.
FAILING_TAGS = ("pull-error", "crash-loop")
#: The alphabet of generated name suffixes, as Kubernetes uses it.
SAFE = "bcdfghjklmnpqrstvwxz2456789"
#: Who a real cluster's controllers write as.
CONTROLLER_MANAGER = "kube-controller-manager"


def image_tag(image: str) -> str:
    """The tag of an image reference (``""`` when it has none)."""
    return image.rsplit("/", 1)[-1].partition("@")[0].partition(":")[2]


def failing_container(spec: dict[str, Any]) -> str | None:
    """The name of the first container of a pod spec whose image never starts, None when all start."""
    for container in spec.get("containers") or []:
        if image_tag(str(container.get("image") or "")) in FAILING_TAGS:
            return str(container.get("name", ""))
    return None


def pod_ready(pod: dict[str, Any]) -> bool:
    """Whether a Pod is Ready."""
    return any(
        condition.get("type") == "Ready" and condition.get("status") == "True"
        for condition in (pod.get("status") or {}).get("conditions") or []
    )


def owner_reference(owner: dict[str, Any]) -> dict[str, Any]:
    """A controller's ownerReference to ``owner``."""
    return {
        "apiVersion": owner["apiVersion"],
        "kind": owner["kind"],
        "name": owner["metadata"]["name"],
        "uid": owner["metadata"]["uid"],
        "controller": True,
        "blockOwnerDeletion": True,
    }


class Kubelet:
    """Makes, advances and removes the Pods of one fake cluster."""

    def __init__(self, state: State, rollout_seconds: float, events: Recorder) -> None:
        self.state = state
        self.rollout_seconds = rollout_seconds
        self.events = events
        self._born: dict[str, float] = {}

    def forget(self) -> None:
        """Forgets every Pod's age (after the store is wiped)."""
        self._born.clear()

    def age(self, pod: dict[str, Any]) -> float:
        """Seconds since the Pod was made."""
        return time.monotonic() - self._born.setdefault(pod["metadata"]["uid"], time.monotonic())

    def born(self, pod: dict[str, Any]) -> float:
        """When (monotonic) the Pod was made."""
        return self._born.setdefault(pod["metadata"]["uid"], time.monotonic())

    def create(
        self, owner: dict[str, Any], template: dict[str, Any], extra_labels: dict[str, str], component: str
    ) -> dict[str, Any]:
        """A new Pod of ``owner`` from its pod ``template``; ``component`` (``replicaset-controller``,
        ``job-controller``) records that it made it."""
        metadata = owner["metadata"]
        name = f"{metadata['name']}-{''.join(secrets.choice(SAFE) for _ in range(5))}"
        template_metadata = template.get("metadata") or {}
        pod: dict[str, Any] = {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {
                "name": name,
                "generateName": f"{metadata['name']}-",
                "namespace": metadata["namespace"],
                "labels": {**(template_metadata.get("labels") or {}), **extra_labels},
                "ownerReferences": [owner_reference(owner)],
            },
            "spec": copy.deepcopy(template.get("spec") or {}),
        }
        if template_metadata.get("annotations"):
            pod["metadata"]["annotations"] = copy.deepcopy(template_metadata["annotations"])
        spec = pod["spec"]
        spec.setdefault("serviceAccountName", "default")
        spec.setdefault("serviceAccount", spec["serviceAccountName"])
        spec["nodeName"] = "fake-node"
        self.state.new_metadata(POD, pod)
        pod["metadata"].pop("generation", None)
        pod["status"] = {"phase": "Pending", "qosClass": "BestEffort"}
        self._born[pod["metadata"]["uid"]] = time.monotonic()
        self.state.write_as(POD, None, pod, CONTROLLER_MANAGER)
        self.events.record(owner, "SuccessfulCreate", f"Created pod: {name}", component=component)
        self.events.record(
            pod,
            "Scheduled",
            f"Successfully assigned {metadata['namespace']}/{name} to fake-node",
            component="default-scheduler",
        )
        return pod

    def remove(self, pod: dict[str, Any], owner: dict[str, Any], component: str) -> None:
        """Deletes a Pod its owner no longer wants."""
        self.state.discard(POD, pod["metadata"]["namespace"], pod["metadata"]["name"])
        self._born.pop(pod["metadata"]["uid"], None)
        self.events.record(
            owner, "SuccessfulDelete", f"Deleted pod: {pod['metadata']['name']}", component=component
        )

    def _container(self, pod: dict[str, Any], container: dict[str, Any], age: float) -> dict[str, Any]:
        image = str(container.get("image", ""))
        started = pod["metadata"]["creationTimestamp"]
        tag = image_tag(image)
        status: dict[str, Any] = {
            "name": container.get("name"),
            "image": image,
            "imageID": "",
            "ready": False,
            "restartCount": 0,
            "started": False,
        }
        if tag == "pull-error":
            if age < self.rollout_seconds:
                waiting = {
                    "reason": "ErrImagePull",
                    "message": f'failed to pull and unpack image "{image}": not found',
                }
            else:
                waiting = {"reason": "ImagePullBackOff", "message": f'Back-off pulling image "{image}"'}
            status["state"] = {"waiting": waiting}
        elif tag == "crash-loop" and age >= self.rollout_seconds / 3:
            restarts = max(1, int(age / (self.rollout_seconds / 2)))
            status.update(restartCount=restarts, imageID=f"fake://{image}")
            metadata = pod["metadata"]
            status["state"] = {
                "waiting": {
                    "reason": "CrashLoopBackOff",
                    "message": f"back-off {min(300, 10 * 2 ** (restarts - 1))}s restarting failed "
                    f"container={container.get('name')} pod={metadata['name']}_{metadata['namespace']}"
                    f"({metadata['uid']})",
                }
            }
            status["lastState"] = {
                "terminated": {"exitCode": 1, "reason": "Error", "startedAt": started, "finishedAt": started}
            }
        elif tag not in FAILING_TAGS and age >= self.rollout_seconds:
            status["imageID"] = f"fake://{image}"
            if (pod.get("spec") or {}).get("restartPolicy") in ("Never", "OnFailure"):
                status["state"] = {
                    "terminated": {
                        "exitCode": 0,
                        "reason": "Completed",
                        "startedAt": started,
                        "finishedAt": started,
                    }
                }
            else:
                status.update(ready=True, started=True)
                status["state"] = {"running": {"startedAt": started}}
        else:
            status["state"] = {"waiting": {"reason": "ContainerCreating"}}
        return status

    def step(self, pod: dict[str, Any]) -> None:
        """Brings the Pod's status to where its age puts it, with the Events of each change."""
        age = self.age(pod)
        started = pod["metadata"]["creationTimestamp"]
        statuses = [
            self._container(pod, container, age)
            for container in (pod.get("spec") or {}).get("containers") or []
        ]
        states = [next(iter(status["state"])) for status in statuses]
        reasons = [status["state"].get("terminated", {}).get("reason") for status in statuses]
        ready = bool(statuses) and all(status["ready"] for status in statuses)
        if statuses and all(reason == "Completed" for reason in reasons):
            phase = "Succeeded"
        elif ready or any(
            status["restartCount"] or state == "running"
            for status, state in zip(statuses, states, strict=True)
        ):
            phase = "Running"
        else:
            phase = "Pending"
        flag = "True" if ready else "False"
        conditions = [
            {"type": "PodScheduled", "status": "True", "lastTransitionTime": started},
            {"type": "Initialized", "status": "True", "lastTransitionTime": started},
            {"type": "ContainersReady", "status": flag, "lastTransitionTime": started},
            {"type": "Ready", "status": flag, "lastTransitionTime": started},
        ]
        if not ready:
            for condition in conditions[2:]:
                condition["reason"] = "PodCompleted" if phase == "Succeeded" else "ContainersNotReady"
        number = int(pod["metadata"]["uid"].replace("-", "")[:8], 16)
        address = f"10.244.{number % 250}.{number // 250 % 250 + 1}"
        status_body = {
            "phase": phase,
            "conditions": conditions,
            "hostIP": "10.0.0.10",
            "hostIPs": [{"ip": "10.0.0.10"}],
            "podIP": address,
            "podIPs": [{"ip": address}],
            "startTime": started,
            "containerStatuses": statuses,
            "qosClass": "BestEffort",
        }
        previous = {
            status.get("name"): status for status in (pod.get("status") or {}).get("containerStatuses") or []
        }
        if pod.get("status") != status_body:
            before = copy.deepcopy(pod)
            pod["status"] = status_body
            self.state.write_as(POD, before, pod, "kubelet", "status")
            for status in statuses:
                self._events(pod, previous.get(status["name"]) or {}, status)

    def _events(self, pod: dict[str, Any], before: dict[str, Any], after: dict[str, Any]) -> None:
        def reason(status: dict[str, Any]) -> str | None:
            state = status.get("state") or {}
            return (state.get("waiting") or {}).get("reason") or next(iter(state), None)

        was, now = reason(before), reason(after)
        name, image = after["name"], after["image"]
        if now == "ErrImagePull" and was != now:
            self.events.record(
                pod, "Failed", f'Failed to pull image "{image}": not found', component="kubelet", warning=True
            )
        elif now == "ImagePullBackOff" and was != now:
            self.events.record(pod, "BackOff", f'Back-off pulling image "{image}"', component="kubelet")
        elif now == "CrashLoopBackOff" and after.get("restartCount", 0) > before.get("restartCount", 0):
            metadata = pod["metadata"]
            self.events.record(
                pod,
                "BackOff",
                f"Back-off restarting failed container {name} in pod "
                f"{metadata['name']}_{metadata['namespace']}({metadata['uid']})",
                component="kubelet",
                warning=True,
            )
        elif now in ("running", "terminated") and was not in ("running", "terminated"):
            self.events.record(pod, "Started", f"Started container {name}", component="kubelet")
