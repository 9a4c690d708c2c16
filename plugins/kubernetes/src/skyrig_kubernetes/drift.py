"""Drift of a service's Deployment: what a person (or an autoscaler) changed on the cluster, and what
skyrig does about it, in the node contract's terms (``NodeType.tunable`` / ``invariant``).

The replica count and the containers' resource requests and limits are *tunable*: a change made on the
cluster is adopted, and the next apply re-applies the live values as they are. The image and the security
settings (non-root, read-only root filesystem, no privilege escalation, no capabilities, the runtime's
seccomp profile) are *invariant*: a change is reported, and the next apply restores them (server-side
apply with ``force`` takes those fields back).
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

TUNABLE = frozenset({"replicas", "cpu", "memory", "cpu_limit", "memory_limit"})
"""The properties a person may change on the cluster; adopted."""

INVARIANT = frozenset({"image", "security"})
"""The properties skyrig guarantees; restored."""

_RESOURCES = {
    "cpu": ("requests", "cpu"),
    "memory": ("requests", "memory"),
    "cpu_limit": ("limits", "cpu"),
    "memory_limit": ("limits", "memory"),
}


def _container(deployment: Mapping[str, Any]) -> Mapping[str, Any]:
    return deployment["spec"]["template"]["spec"]["containers"][0]


def security(deployment: Mapping[str, Any]) -> dict[str, Any]:
    """The security settings in force for the Deployment's container (its own, else the pod's)."""
    pod = deployment["spec"]["template"]["spec"].get("securityContext") or {}
    own = _container(deployment).get("securityContext") or {}
    return {
        "runAsNonRoot": own.get("runAsNonRoot", pod.get("runAsNonRoot")),
        "runAsUser": own.get("runAsUser", pod.get("runAsUser")),
        "readOnlyRootFilesystem": own.get("readOnlyRootFilesystem"),
        "allowPrivilegeEscalation": own.get("allowPrivilegeEscalation"),
        "privileged": own.get("privileged"),
        "capabilitiesAdded": sorted((own.get("capabilities") or {}).get("add") or []),
        "capabilitiesDropped": sorted((own.get("capabilities") or {}).get("drop") or []),
        "seccompProfile": (own.get("seccompProfile") or pod.get("seccompProfile") or {}).get("type"),
    }


def observe(deployment: Mapping[str, Any]) -> dict[str, Any]:
    """A Deployment's properties in a node's terms: the tunable ones and the invariant ones."""
    container = _container(deployment)
    resources = container.get("resources") or {}
    found: dict[str, Any] = {"replicas": deployment["spec"].get("replicas")}
    for prop, (section, key) in _RESOURCES.items():
        found[prop] = (resources.get(section) or {}).get(key)
    found["image"] = container.get("image")
    found["security"] = security(deployment)
    return found


@dataclass(frozen=True)
class Drift:
    """How a live Deployment differs from the desired one: ``adopted`` (tunable property -> the live
    value, kept) and ``restored`` (invariant property -> (live, desired), put back by the next apply)."""

    adopted: dict[str, Any]
    restored: dict[str, tuple[Any, Any]]


def drift(live: Mapping[str, Any], desired: Mapping[str, Any]) -> Drift:
    """What differs between the ``live`` Deployment and the ``desired`` one, and what skyrig does with
    it. A replica count the desired object does not set (an autoscaler owns it) is not skyrig's: never
    drift."""
    now, wanted = observe(live), observe(desired)
    adopted = {
        prop: now[prop]
        for prop in sorted(TUNABLE)
        if now[prop] != wanted[prop] and not (prop == "replicas" and wanted[prop] is None)
    }
    restored = {prop: (now[prop], wanted[prop]) for prop in sorted(INVARIANT) if now[prop] != wanted[prop]}
    return Drift(adopted, restored)


def adopt(desired: Mapping[str, Any], values: Mapping[str, Any]) -> dict[str, Any]:
    """The ``desired`` Deployment with tunable ``values`` (a :attr:`Drift.adopted`, or the values recorded
    in state) in place of its own, so that applying it keeps what the cluster runs."""
    adopted = copy.deepcopy(dict(desired))
    if values.get("replicas") is not None and "replicas" in adopted["spec"]:
        adopted["spec"]["replicas"] = values["replicas"]
    resources = adopted["spec"]["template"]["spec"]["containers"][0].setdefault("resources", {})
    for prop, (section, key) in _RESOURCES.items():
        if values.get(prop) is not None:
            resources.setdefault(section, {})[key] = values[prop]
    return adopted
