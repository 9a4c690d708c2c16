"""Discovery documents, for the FAKE Kubernetes API server (:mod:`skyrig_kubernetes.fake`): ``/version``,
``/api``, ``/api/v1``, ``/apis``, ``/apis/{group}`` and ``/apis/{group}/{version}``, listing exactly the
kinds the fake serves (verbs, namespaced, kind, short names, subresources), as the official client's
DynamicClient reads them.
"""

from __future__ import annotations

from typing import Any

from skyrig_kubernetes.fake.kinds import KINDS, group_versions

_SUBRESOURCE_VERBS = ["get", "patch", "update"]


def version(minor: str) -> dict[str, Any]:
    """``/version``: the Kubernetes version whose schemas the fake validates with."""
    major, number = minor.split(".")
    return {
        "major": major,
        "minor": number,
        "gitVersion": f"v{minor}.0-fake",
        "gitCommit": "0000000000000000000000000000000000000000",
        "gitTreeState": "clean",
        "buildDate": "2026-01-01T00:00:00Z",
        "goVersion": "go1.25",
        "compiler": "gc",
        "platform": "linux/amd64",
    }


def core_versions(address: str) -> dict[str, Any]:
    """``/api``."""
    return {
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": address}],
    }


def _group(name: str, versions: list[str]) -> dict[str, Any]:
    listed = [{"groupVersion": f"{name}/{version}", "version": version} for version in versions]
    return {"name": name, "versions": listed, "preferredVersion": listed[0]}


def groups() -> dict[str, Any]:
    """``/apis``: every named group served."""
    return {
        "kind": "APIGroupList",
        "apiVersion": "v1",
        "groups": [_group(name, versions) for name, versions in group_versions().items() if name],
    }


def group(name: str) -> dict[str, Any] | None:
    """``/apis/{group}``, None for a group not served."""
    versions = group_versions().get(name)
    if not name or versions is None:
        return None
    return {"kind": "APIGroup", "apiVersion": "v1", **_group(name, versions)}


def resources(group_name: str, version_name: str) -> dict[str, Any] | None:
    """``/api/v1`` or ``/apis/{group}/{version}``, None for a group version not served."""
    listed: list[dict[str, Any]] = []
    for kind in KINDS:
        if (kind.group, kind.version) != (group_name, version_name):
            continue
        entry: dict[str, Any] = {
            "name": kind.plural,
            "singularName": kind.singular,
            "namespaced": kind.namespaced,
            "kind": kind.kind,
            "verbs": sorted(kind.verbs),
        }
        if kind.short_names:
            entry["shortNames"] = list(kind.short_names)
        if kind.kind in (
            "Deployment",
            "ReplicaSet",
            "Pod",
            "Service",
            "Job",
            "ConfigMap",
            "Secret",
            "HorizontalPodAutoscaler",
        ):
            entry["categories"] = ["all"] if kind.kind not in ("ConfigMap", "Secret") else []
            if not entry["categories"]:
                del entry["categories"]
        listed.append(entry)
        for subresource in kind.subresources:
            sub: dict[str, Any] = {
                "name": f"{kind.plural}/{subresource}",
                "singularName": "",
                "namespaced": kind.namespaced,
                "kind": kind.kind,
                "verbs": _SUBRESOURCE_VERBS,
            }
            if subresource == "scale":
                sub.update({"group": "autoscaling", "version": "v1", "kind": "Scale"})
            listed.append(sub)
    if not listed:
        return None
    group_version = f"{group_name}/{version_name}" if group_name else version_name
    return {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": group_version, "resources": listed}
