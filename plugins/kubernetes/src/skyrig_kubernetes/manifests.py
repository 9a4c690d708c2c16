"""Manifests: a list of Kubernetes objects as one multi-document YAML stream (what ``skyrig build k8s``
writes for people who want to read what would be applied), and their validation against the official
OpenAPI schemas of Kubernetes versions, strictly (an unknown field is an error), with the schemas the
``kubernetes-validate`` package ships (the ``fake`` extra installs it)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import yaml

from skyrig.provider import UserError


class InvalidObject(UserError):
    """An object the Kubernetes API would reject: its kind, name and field, and the schema's reason."""

    def __init__(self, kind: str, name: str, field: str, version: str, reason: str) -> None:
        where = f" at {field}" if field else ""
        super().__init__(
            f"{kind} {name} is not valid for Kubernetes {version}{where}: {reason}",
            "check the service's Kubernetes settings (sizes, names, annotations) that made this field",
        )
        self.kind = kind
        self.name = name
        self.field = field
        self.version = version


def render(objects: Iterable[Mapping[str, Any]]) -> str:
    """``objects`` as one YAML stream, a document each, keys in the order the objects give them."""
    return yaml.safe_dump_all([dict(o) for o in objects], sort_keys=False, default_flow_style=False)


def environment_manifests(app: str, environment: str, workloads: Iterable[Any]) -> str:
    """What ``skyrig build k8s`` writes: the environment's namespace and every object of each of
    ``workloads`` (:class:`skyrig_kubernetes.workloads.Workload`), in apply order, as one YAML stream."""
    from skyrig_kubernetes.cluster import apply_order
    from skyrig_kubernetes.workloads import namespace, service_objects

    objects = [namespace(app, environment)]
    for workload in workloads:
        objects += service_objects(workload)
    return render(apply_order(objects))


def known_versions() -> list[str]:
    """The Kubernetes minor versions (``"1.37"``) whose schemas kubernetes-validate ships, oldest first."""
    from kubernetes_validate import utils

    return list(dict.fromkeys(utils.major_minor(v) for v in utils.all_versions()))


def recent_versions(count: int = 2) -> list[str]:
    """The ``count`` most recent Kubernetes minor versions with schemas, oldest first."""
    return known_versions()[-count:]


def validate(objects: Iterable[Mapping[str, Any]], versions: Sequence[str]) -> None:
    """Check each object against the strict schema of its kind in each of ``versions``; raise
    :class:`InvalidObject` for the first that fails (or whose kind has no schema there)."""
    import kubernetes_validate
    from kubernetes_validate import utils

    for found in objects:
        kind = str(found.get("kind"))
        metadata = found.get("metadata") or {}
        name = "/".join(str(p) for p in (metadata.get("namespace"), metadata.get("name")) if p)
        for version in versions:
            try:
                kubernetes_validate.validate(dict(found), version, strict=True)
            except utils.ValidationError as error:
                field = ".".join(str(part) for part in error.path)
                raise InvalidObject(kind, name, field, version, error.message) from None
            except utils.SchemaNotFoundError as error:
                raise InvalidObject(kind, name, "apiVersion", version, error.message) from None
