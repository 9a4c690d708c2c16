"""The kinds the FAKE Kubernetes API server serves (:mod:`skyrig_kubernetes.fake`), and how.

One :class:`Kind` per resource: its group, version, plural, whether it is namespaced, its verbs (the fake
creates Pods and ReplicaSets itself, so clients only read and delete them), its short names and
subresources as discovery lists them, and the name rule the real server applies to it.
"""

from __future__ import annotations

from dataclasses import dataclass

#: Everything a client may do to a writable kind.
ALL_VERBS = ("create", "delete", "deletecollection", "get", "list", "patch", "update", "watch")
#: What a client may do to the objects the fake's controllers own (Pods, ReplicaSets).
READ_DELETE = ("delete", "get", "list", "watch")


@dataclass(frozen=True)
class Kind:
    """One served resource."""

    group: str
    version: str
    kind: str
    plural: str
    namespaced: bool = True
    verbs: tuple[str, ...] = ALL_VERBS
    short_names: tuple[str, ...] = ()
    #: ``status`` (and ``scale``) subresources: a write to the main resource keeps the stored status.
    subresources: tuple[str, ...] = ()
    #: ``subdomain`` (DNS-1123 subdomain), ``label`` (DNS-1123 label) or ``dns1035`` (Services).
    name_rule: str = "subdomain"
    #: Whether the server keeps ``metadata.generation`` for it (bumped on spec changes).
    generation: bool = False

    @property
    def api_version(self) -> str:
        """``apps/v1``, or ``v1`` for the core group."""
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def singular(self) -> str:
        """The lower-case kind, as discovery lists it."""
        return self.kind.lower()


KINDS: tuple[Kind, ...] = (
    Kind(
        "",
        "v1",
        "Namespace",
        "namespaces",
        namespaced=False,
        short_names=("ns",),
        subresources=("status",),
        name_rule="label",
        verbs=("create", "delete", "get", "list", "patch", "update", "watch"),
    ),
    Kind("", "v1", "ServiceAccount", "serviceaccounts", short_names=("sa",)),
    Kind("", "v1", "ConfigMap", "configmaps", short_names=("cm",)),
    Kind("", "v1", "Secret", "secrets"),
    Kind(
        "",
        "v1",
        "Service",
        "services",
        short_names=("svc",),
        subresources=("status",),
        name_rule="dns1035",
        verbs=("create", "delete", "get", "list", "patch", "update", "watch"),
    ),
    Kind("", "v1", "Event", "events", short_names=("ev",), verbs=READ_DELETE),
    Kind("", "v1", "Pod", "pods", short_names=("po",), subresources=("status",), verbs=READ_DELETE),
    Kind(
        "apps",
        "v1",
        "Deployment",
        "deployments",
        short_names=("deploy",),
        subresources=("scale", "status"),
        generation=True,
    ),
    Kind(
        "apps",
        "v1",
        "ReplicaSet",
        "replicasets",
        short_names=("rs",),
        subresources=("status",),
        verbs=READ_DELETE,
        generation=True,
    ),
    Kind("batch", "v1", "Job", "jobs", subresources=("status",), generation=True),
    Kind(
        "autoscaling",
        "v2",
        "HorizontalPodAutoscaler",
        "horizontalpodautoscalers",
        short_names=("hpa",),
        subresources=("status",),
        generation=True,
    ),
    Kind(
        "policy",
        "v1",
        "PodDisruptionBudget",
        "poddisruptionbudgets",
        short_names=("pdb",),
        subresources=("status",),
        generation=True,
    ),
    Kind(
        "networking.k8s.io",
        "v1",
        "Ingress",
        "ingresses",
        short_names=("ing",),
        subresources=("status",),
        generation=True,
    ),
    Kind("networking.k8s.io", "v1", "IngressClass", "ingressclasses", namespaced=False, generation=True),
)

_BY_PLURAL = {(k.group, k.version, k.plural): k for k in KINDS}
_BY_KIND = {(k.api_version, k.kind): k for k in KINDS}


def by_plural(group: str, version: str, plural: str) -> Kind | None:
    """The kind served at ``/apis/{group}/{version}/{plural}`` (``/api/v1/...`` for group ``""``)."""
    return _BY_PLURAL.get((group, version, plural))


def by_kind(api_version: str, kind: str) -> Kind | None:
    """The kind of ``apiVersion`` + ``kind``."""
    return _BY_KIND.get((api_version, kind))


def group_versions() -> dict[str, list[str]]:
    """The groups served (``""`` for core) and their versions."""
    groups: dict[str, list[str]] = {}
    for kind in KINDS:
        versions = groups.setdefault(kind.group, [])
        if kind.version not in versions:
            versions.append(kind.version)
    return groups
