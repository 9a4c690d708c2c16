"""Events, for the FAKE Kubernetes API server (:mod:`skyrig_kubernetes.fake`): the v1 Events the
controllers and kubelets of a real cluster record, for what a reader of ``kubectl describe`` looks at
(ScalingReplicaSet, SuccessfulCreate, Pulled/Started, Failed and BackOff for images that do not pull or
containers that crash, Completed and BackoffLimitExceeded for Jobs). An event repeated for the same object
and reason counts up, as the real recorder aggregates it.
"""

from __future__ import annotations

import secrets
from typing import Any

from skyrig_kubernetes.fake.kinds import KINDS
from skyrig_kubernetes.fake.state import State, now

EVENT = next(kind for kind in KINDS if kind.kind == "Event")


class Recorder:
    """Records Events about the objects of one fake cluster."""

    def __init__(self, state: State) -> None:
        self.state = state

    def record(
        self, about: dict[str, Any], reason: str, message: str, *, component: str, warning: bool = False
    ) -> None:
        """An Event about ``about`` (or one more of the same reason and message)."""
        metadata = about["metadata"]
        namespace = metadata.get("namespace") or "default"
        for event in self.state.items(EVENT, namespace):
            involved = event["involvedObject"]
            if involved.get("uid") == metadata["uid"] and (event.get("reason"), event.get("message")) == (
                reason,
                message,
            ):
                event["count"] = event.get("count", 1) + 1
                event["lastTimestamp"] = now()
                self.state.save(EVENT, event)
                return
        stamp = now()
        event = {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"name": f"{metadata['name']}.{secrets.token_hex(8)}", "namespace": namespace},
            "involvedObject": {
                "apiVersion": about["apiVersion"],
                "kind": about["kind"],
                "name": metadata["name"],
                "namespace": namespace,
                "uid": metadata["uid"],
                "resourceVersion": metadata.get("resourceVersion", ""),
            },
            "reason": reason,
            "message": message,
            "source": {"component": component},
            "firstTimestamp": stamp,
            "lastTimestamp": stamp,
            "count": 1,
            "type": "Warning" if warning else "Normal",
            "reportingComponent": component,
            "reportingInstance": "",
        }
        self.state.new_metadata(EVENT, event)
        self.state.save(EVENT, event)
