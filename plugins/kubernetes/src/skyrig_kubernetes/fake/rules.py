"""The API server's own validation, which the OpenAPI schema cannot express, for the FAKE Kubernetes API
server (:mod:`skyrig_kubernetes.fake`): name formats, label syntax, a Deployment's selector (non-empty,
matching its template, immutable), a Job's immutable template, a Service's immutable clusterIP and its
ports, restart policies, container names and images, HPA bounds, PDB exclusivity, Ingress paths and
backends, immutable ConfigMaps and Secrets, an IngressClass's controller.
Every problem becomes a cause of one 422 Invalid, with the real server's field paths and messages.
"""

from __future__ import annotations

import re
from typing import Any

from skyrig_kubernetes.fake import errors
from skyrig_kubernetes.fake.errors import Causes
from skyrig_kubernetes.fake.kinds import Kind
from skyrig_kubernetes.fake.names import CONFIG_KEY, QUALIFIED, SUBDOMAIN, name_problem
from skyrig_kubernetes.fake.podspec import check_pod_spec
from skyrig_kubernetes.fake.selectors import matches_selector

#: The most a ConfigMap's or Secret's data may hold (1 MiB).
MAX_DATA = 1024 * 1024


def _labels(causes: Causes, field: str, labels: Any) -> None:
    if not isinstance(labels, dict):
        return
    for key, value in labels.items():
        prefix, _, name = key.rpartition("/")
        if (
            (prefix and (len(prefix) > 253 or not re.fullmatch(SUBDOMAIN, prefix)))
            or len(name) > 63
            or not re.fullmatch(QUALIFIED, name)
        ):
            causes.invalid(
                field,
                key,
                "name part must consist of alphanumeric characters, '-', '_' or '.', and "
                "must start and end with an alphanumeric character",
            )
        if value is not None and (
            len(str(value)) > 63 or (value and not re.fullmatch(QUALIFIED, str(value)))
        ):
            causes.invalid(
                f"{field}",
                value,
                "a valid label must be an empty string or consist of alphanumeric "
                "characters, '-', '_' or '.', and must start and end with an "
                "alphanumeric character",
            )


def _template(causes: Causes, spec: dict[str, Any], restart_policies: tuple[str, ...]) -> dict[str, Any]:
    template = spec.get("template") if isinstance(spec.get("template"), dict) else {}
    _labels(causes, "spec.template.metadata.labels", (template.get("metadata") or {}).get("labels"))
    check_pod_spec(causes, "spec.template.spec", template.get("spec"), restart_policies)
    return template


def _selector_matches(causes: Causes, spec: dict[str, Any], template: dict[str, Any], kind: str) -> None:
    selector = spec.get("selector")
    if not selector or not (selector.get("matchLabels") or selector.get("matchExpressions")):
        causes.invalid("spec.selector", selector, f"empty selector is invalid for {kind}")
        return
    _labels(causes, "spec.selector.matchLabels", selector.get("matchLabels"))
    labels = (template.get("metadata") or {}).get("labels") or {}
    if not matches_selector(selector, labels):
        causes.invalid("spec.template.metadata.labels", labels, "`selector` does not match template `labels`")


def _workload(causes: Causes, obj: dict[str, Any], old: dict[str, Any] | None, kind: str) -> None:
    spec = obj.get("spec") or {}
    template = _template(causes, spec, ("Always",))
    _selector_matches(causes, spec, template, kind)
    if isinstance(spec.get("replicas"), int) and spec["replicas"] < 0:
        causes.invalid("spec.replicas", spec["replicas"], "must be greater than or equal to 0")
    if old is not None and (old.get("spec") or {}).get("selector") != spec.get("selector"):
        causes.immutable("spec.selector", spec.get("selector"))
    _strategy(causes, spec.get("strategy"))


def _strategy(causes: Causes, strategy: Any) -> None:
    if not isinstance(strategy, dict):
        return
    rolling = strategy.get("rollingUpdate")
    if strategy.get("type") == "Recreate" and rolling is not None:
        causes.forbidden(
            "spec.strategy.rollingUpdate", "may not be specified when strategy `type` is 'Recreate'"
        )
    if strategy.get("type") == "RollingUpdate" and isinstance(rolling, dict):
        surge, unavailable = rolling.get("maxSurge"), rolling.get("maxUnavailable")
        if surge in (0, "0%") and unavailable in (0, "0%"):
            causes.invalid(
                "spec.strategy.rollingUpdate.maxUnavailable", unavailable, "may not be 0 when `maxSurge` is 0"
            )
        for key, value in (("maxSurge", surge), ("maxUnavailable", unavailable)):
            if isinstance(value, int) and value < 0:
                causes.invalid(
                    f"spec.strategy.rollingUpdate.{key}", value, "must be greater than or equal to 0"
                )
            if isinstance(value, str) and not re.fullmatch(r"\d+%", value):
                causes.invalid(
                    f"spec.strategy.rollingUpdate.{key}",
                    value,
                    "a valid percent string must be a numeric string followed by an ending '%'",
                )
            elif key == "maxUnavailable" and isinstance(value, str) and int(value[:-1]) > 100:
                causes.invalid(f"spec.strategy.rollingUpdate.{key}", value, "must not be greater than 100%")


def _job(causes: Causes, obj: dict[str, Any], old: dict[str, Any] | None) -> None:
    spec = obj.get("spec") or {}
    template = _template(causes, spec, ("OnFailure", "Never"))
    _selector_matches(causes, spec, template, "job")
    if old is not None:
        old_spec = old.get("spec") or {}
        for key in ("template", "selector", "completions"):
            if old_spec.get(key) != spec.get(key):
                causes.immutable(f"spec.{key}", spec.get(key))
    for key in (
        "backoffLimit",
        "ttlSecondsAfterFinished",
        "activeDeadlineSeconds",
        "completions",
        "parallelism",
    ):
        value = spec.get(key)
        if isinstance(value, int) and value < (1 if key == "activeDeadlineSeconds" else 0):
            bound = "greater than 0" if key == "activeDeadlineSeconds" else "greater than or equal to 0"
            causes.invalid(f"spec.{key}", value, f"must be {bound}")


def _service(causes: Causes, obj: dict[str, Any], old: dict[str, Any] | None) -> None:
    spec = obj.get("spec") or {}
    kind = spec.get("type", "ClusterIP")
    ports = spec.get("ports") or []
    if kind != "ExternalName" and not ports and spec.get("clusterIP") != "None":
        causes.required("spec.ports")
    names = set()
    for index, port in enumerate(ports):
        if not isinstance(port, dict):
            continue
        number = port.get("port")
        if not isinstance(number, int) or not 1 <= number <= 65535:
            causes.invalid(f"spec.ports[{index}].port", number, "must be between 1 and 65535, inclusive")
        if len(ports) > 1 and not port.get("name"):
            causes.required(f"spec.ports[{index}].name")
        elif port.get("name") in names:
            causes.duplicate(f"spec.ports[{index}].name", port.get("name"))
        names.add(port.get("name"))
    _labels(causes, "spec.selector", spec.get("selector"))
    if old is not None:
        before = (old.get("spec") or {}).get("clusterIP")
        if before and spec.get("clusterIP") != before:
            causes.immutable("spec.clusterIP", spec.get("clusterIP"))


def _hpa(causes: Causes, obj: dict[str, Any]) -> None:
    spec = obj.get("spec") or {}
    low, high = spec.get("minReplicas", 1), spec.get("maxReplicas")
    if isinstance(low, int) and low < 1:
        causes.invalid("spec.minReplicas", low, "must be greater than or equal to 1")
    if isinstance(low, int) and isinstance(high, int) and high < low:
        causes.invalid("spec.maxReplicas", high, "must be greater than or equal to `minReplicas`")
    target = spec.get("scaleTargetRef") or {}
    for key in ("kind", "name"):
        if not target.get(key):
            causes.required(f"spec.scaleTargetRef.{key}")


def _pdb(causes: Causes, obj: dict[str, Any]) -> None:
    spec = obj.get("spec") or {}
    if spec.get("minAvailable") is not None and spec.get("maxUnavailable") is not None:
        causes.invalid("spec", spec, "minAvailable and maxUnavailable cannot be both set")


def _ingress(causes: Causes, obj: dict[str, Any]) -> None:
    spec = obj.get("spec") or {}
    for rule_index, rule in enumerate(spec.get("rules") or []):
        paths = ((rule or {}).get("http") or {}).get("paths") or []
        for index, path in enumerate(paths):
            where = f"spec.rules[{rule_index}].http.paths[{index}]"
            kind = path.get("pathType")
            if kind is None:
                causes.required(f"{where}.pathType", "pathType must be specified")
            elif kind not in ("Exact", "Prefix", "ImplementationSpecific"):
                causes.unsupported(f"{where}.pathType", kind, ["Exact", "ImplementationSpecific", "Prefix"])
            if kind in ("Exact", "Prefix") and not str(path.get("path", "")).startswith("/"):
                causes.invalid(f"{where}.path", path.get("path"), "must be an absolute path")
            _backend(causes, f"{where}.backend", path.get("backend"))
    if spec.get("defaultBackend") is not None:
        _backend(causes, "spec.defaultBackend", spec["defaultBackend"])
    for index, tls in enumerate(spec.get("tls") or []):
        for host_index, host in enumerate((tls or {}).get("hosts") or []):
            if name_problem("subdomain", str(host).removeprefix("*.")):
                causes.invalid(
                    f"spec.tls[{index}].hosts[{host_index}]",
                    host,
                    "a wildcard DNS-1123 subdomain must start with '*.', followed by a valid DNS subdomain",
                )


def _backend(causes: Causes, where: str, backend: Any) -> None:
    if not isinstance(backend, dict):
        causes.required(where)
        return
    service, resource = backend.get("service"), backend.get("resource")
    if service is None and resource is None:
        causes.invalid(where, backend, "must specify a backend service or resource")
    if service is not None and resource is not None:
        causes.invalid(where, backend, "cannot set both resource and service backends")
    if isinstance(service, dict):
        port = service.get("port") or {}
        if port.get("name") and port.get("number") is not None:
            causes.invalid(f"{where}.service.port", port, "cannot set both port name & port number")
        elif not port.get("name") and port.get("number") is None:
            causes.required(f"{where}.service.port", "port name or number is required")


def _data_keys(causes: Causes, obj: dict[str, Any]) -> None:
    size = 0
    for field in ("data", "binaryData", "stringData"):
        for key, value in (obj.get(field) or {}).items():
            if not re.fullmatch(CONFIG_KEY, key) or len(key) > 253:
                causes.invalid(
                    f"{field}[{key}]",
                    key,
                    "a valid config key must consist of alphanumeric characters, '-', '_' or '.'",
                )
            size += len(str(value or ""))
    if obj["kind"] == "ConfigMap":
        for key in set(obj.get("data") or {}) & set(obj.get("binaryData") or {}):
            causes.invalid(f"data[{key}]", key, "duplicate of key present in binaryData")
    if size > MAX_DATA:
        causes.items.append(
            errors.cause("data", f"Too long: may not be more than {MAX_DATA} bytes", "FieldValueTooLong")
        )


def _immutable_data(causes: Causes, obj: dict[str, Any], old: dict[str, Any] | None) -> None:
    if old is None:
        return
    if obj["kind"] == "Secret" and old.get("type") != obj.get("type"):
        causes.immutable("type", obj.get("type"))
    if old.get("immutable") is True:
        if obj.get("immutable") is not True:
            causes.forbidden("immutable", "field is immutable when `immutable` is set")
        for field in ("data", "binaryData"):
            if (old.get(field) or {}) != (obj.get(field) or {}):
                causes.forbidden(field, "field is immutable when `immutable` is set")


def _ingress_class(causes: Causes, obj: dict[str, Any], old: dict[str, Any] | None) -> None:
    controller = (obj.get("spec") or {}).get("controller")
    if not controller:
        causes.required("spec.controller")
    elif old is not None and (old.get("spec") or {}).get("controller") != controller:
        causes.immutable("spec.controller", controller)


def check(kind: Kind, obj: dict[str, Any], old: dict[str, Any] | None) -> None:
    """Raises 422 Invalid when ``obj`` (replacing ``old``, None on create) breaks the server's rules."""
    causes = Causes()
    metadata = obj.get("metadata") or {}
    name = metadata.get("name") or ""
    if not name:
        causes.required("metadata.name", "name or generateName is required")
    else:
        problem = name_problem(kind.name_rule, name)
        if problem:
            causes.invalid("metadata.name", name, problem)
    _labels(causes, "metadata.labels", metadata.get("labels"))
    if kind.kind in ("Deployment", "ReplicaSet"):
        _workload(causes, obj, old, kind.kind.lower())
    elif kind.kind == "Job":
        _job(causes, obj, old)
    elif kind.kind == "Service":
        _service(causes, obj, old)
    elif kind.kind == "HorizontalPodAutoscaler":
        _hpa(causes, obj)
    elif kind.kind == "PodDisruptionBudget":
        _pdb(causes, obj)
    elif kind.kind == "Ingress":
        _ingress(causes, obj)
    elif kind.kind in ("ConfigMap", "Secret"):
        _data_keys(causes, obj)
        _immutable_data(causes, obj, old)
    elif kind.kind == "IngressClass":
        _ingress_class(causes, obj, old)
    if causes.items:
        raise errors.invalid(kind.kind, kind.group, name, causes.items)
