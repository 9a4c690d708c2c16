"""The API server's own validation, which the OpenAPI schema cannot express, for the FAKE Kubernetes API
server (:mod:`skyrig_kubernetes.fake`): name formats, label syntax, a Deployment's selector (non-empty,
matching its template, immutable), a Job's immutable template, a Service's immutable clusterIP and its
ports, restart policies, container names and images, HPA bounds, PDB exclusivity, Ingress paths.
Every problem becomes a cause of one 422 Invalid, with the real server's field paths and messages.
"""

from __future__ import annotations

import json
import re
from typing import Any

from skyrig_kubernetes.fake import errors
from skyrig_kubernetes.fake.kinds import Kind
from skyrig_kubernetes.fake.selectors import matches_selector

_LABEL = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?"
_SUBDOMAIN = rf"{_LABEL}(\.{_LABEL})*"
_DNS1035 = r"[a-z]([-a-z0-9]*[a-z0-9])?"
_QUALIFIED = r"([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]"
_CONFIG_KEY = r"[-._a-zA-Z0-9]+"

NAME_MESSAGES = {
    "subdomain": (
        _SUBDOMAIN,
        253,
        "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and "
        "must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is "
        f"'{_SUBDOMAIN}')",
    ),
    "label": (
        _LABEL,
        63,
        "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must "
        "start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for "
        f"validation is '{_LABEL}')",
    ),
    "dns1035": (
        _DNS1035,
        63,
        "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an "
        "alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', regex "
        f"used for validation is '{_DNS1035}')",
    ),
}


def name_problem(rule: str, name: str) -> str | None:
    """Why ``name`` breaks ``rule`` (``subdomain``, ``label``, ``dns1035``), None when it does not."""
    pattern, limit, message = NAME_MESSAGES[rule]
    if len(name) > limit:
        return f"must be no more than {limit} characters"
    return None if re.fullmatch(pattern, name) else message


def _invalid(value: Any, message: str) -> str:
    return f"Invalid value: {json.dumps(value)}: {message}"


class _Causes:
    def __init__(self) -> None:
        self.items: list[dict[str, str]] = []

    def invalid(self, field: str, value: Any, message: str) -> None:
        self.items.append(errors.cause(field, _invalid(value, message)))

    def required(self, field: str, message: str = "") -> None:
        self.items.append(
            errors.cause(field, "Required value" + (f": {message}" if message else ""), "FieldValueRequired")
        )

    def unsupported(self, field: str, value: Any, allowed: list[str]) -> None:
        supported = ", ".join(f'"{item}"' for item in allowed)
        self.items.append(
            errors.cause(
                field,
                f"Unsupported value: {json.dumps(value)}: supported values: {supported}",
                "FieldValueNotSupported",
            )
        )

    def forbidden(self, field: str, message: str) -> None:
        self.items.append(errors.cause(field, f"Forbidden: {message}", "FieldValueForbidden"))

    def immutable(self, field: str, value: Any) -> None:
        self.invalid(field, value, "field is immutable")


def _labels(causes: _Causes, field: str, labels: Any) -> None:
    if not isinstance(labels, dict):
        return
    for key, value in labels.items():
        prefix, _, name = key.rpartition("/")
        if (
            (prefix and (len(prefix) > 253 or not re.fullmatch(_SUBDOMAIN, prefix)))
            or len(name) > 63
            or not re.fullmatch(_QUALIFIED, name)
        ):
            causes.invalid(
                field,
                key,
                "name part must consist of alphanumeric characters, '-', '_' or '.', and "
                "must start and end with an alphanumeric character",
            )
        if value is not None and (
            len(str(value)) > 63 or (value and not re.fullmatch(_QUALIFIED, str(value)))
        ):
            causes.invalid(
                f"{field}",
                value,
                "a valid label must be an empty string or consist of alphanumeric "
                "characters, '-', '_' or '.', and must start and end with an "
                "alphanumeric character",
            )


def _pod_spec(causes: _Causes, field: str, spec: Any, restart_policies: tuple[str, ...]) -> None:
    if not isinstance(spec, dict):
        return
    names: set[str] = set()
    containers = spec.get("containers") or []
    if not containers:
        causes.required(f"{field}.containers")
    for key in ("initContainers", "containers"):
        for index, container in enumerate(spec.get(key) or []):
            if not isinstance(container, dict):
                continue
            where = f"{field}.{key}[{index}]"
            name = container.get("name") or ""
            problem = name_problem("label", name)
            if problem:
                causes.invalid(f"{where}.name", name, problem)
            elif name in names:
                causes.items.append(
                    errors.cause(
                        f"{where}.name", f"Duplicate value: {json.dumps(name)}", "FieldValueDuplicate"
                    )
                )
            names.add(name)
            if not container.get("image"):
                causes.required(f"{where}.image")
            for port_index, port in enumerate(container.get("ports") or []):
                number = port.get("containerPort") if isinstance(port, dict) else None
                if not isinstance(number, int) or not 1 <= number <= 65535:
                    causes.invalid(
                        f"{where}.ports[{port_index}].containerPort",
                        number,
                        "must be between 1 and 65535, inclusive",
                    )
    policy = spec.get("restartPolicy")
    if policy not in restart_policies:
        causes.unsupported(f"{field}.restartPolicy", policy, list(restart_policies))


def _template(causes: _Causes, spec: dict[str, Any], restart_policies: tuple[str, ...]) -> dict[str, Any]:
    template = spec.get("template") if isinstance(spec.get("template"), dict) else {}
    _labels(causes, "spec.template.labels", (template.get("metadata") or {}).get("labels"))
    _pod_spec(causes, "spec.template.spec", template.get("spec"), restart_policies)
    return template


def _selector_matches(causes: _Causes, spec: dict[str, Any], template: dict[str, Any], kind: str) -> None:
    selector = spec.get("selector")
    if not selector or not (selector.get("matchLabels") or selector.get("matchExpressions")):
        causes.invalid("spec.selector", selector, f"empty selector is invalid for {kind}")
        return
    _labels(causes, "spec.selector.matchLabels", selector.get("matchLabels"))
    labels = (template.get("metadata") or {}).get("labels") or {}
    if not matches_selector(selector, labels):
        causes.invalid("spec.template.metadata.labels", labels, "`selector` does not match template `labels`")


def _workload(causes: _Causes, obj: dict[str, Any], old: dict[str, Any] | None, kind: str) -> None:
    spec = obj.get("spec") or {}
    template = _template(causes, spec, ("Always",))
    _selector_matches(causes, spec, template, kind)
    if isinstance(spec.get("replicas"), int) and spec["replicas"] < 0:
        causes.invalid("spec.replicas", spec["replicas"], "must be greater than or equal to 0")
    if old is not None and (old.get("spec") or {}).get("selector") != spec.get("selector"):
        causes.immutable("spec.selector", spec.get("selector"))


def _job(causes: _Causes, obj: dict[str, Any], old: dict[str, Any] | None) -> None:
    spec = obj.get("spec") or {}
    template = _template(causes, spec, ("OnFailure", "Never"))
    _selector_matches(causes, spec, template, "job")
    if old is not None:
        old_spec = old.get("spec") or {}
        for key in ("template", "selector", "completions"):
            if old_spec.get(key) != spec.get(key):
                causes.immutable(f"spec.{key}", spec.get(key))


def _service(causes: _Causes, obj: dict[str, Any], old: dict[str, Any] | None) -> None:
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
            causes.items.append(
                errors.cause(
                    f"spec.ports[{index}].name",
                    f"Duplicate value: {json.dumps(port.get('name'))}",
                    "FieldValueDuplicate",
                )
            )
        names.add(port.get("name"))
    _labels(causes, "spec.selector", spec.get("selector"))
    if old is not None:
        before = (old.get("spec") or {}).get("clusterIP")
        if before and spec.get("clusterIP") != before:
            causes.immutable("spec.clusterIP", spec.get("clusterIP"))


def _hpa(causes: _Causes, obj: dict[str, Any]) -> None:
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


def _pdb(causes: _Causes, obj: dict[str, Any]) -> None:
    spec = obj.get("spec") or {}
    if spec.get("minAvailable") is not None and spec.get("maxUnavailable") is not None:
        causes.invalid("spec", spec, "minAvailable and maxUnavailable cannot be both set")


def _ingress(causes: _Causes, obj: dict[str, Any]) -> None:
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


def _data_keys(causes: _Causes, obj: dict[str, Any]) -> None:
    for field in ("data", "binaryData", "stringData"):
        for key in obj.get(field) or {}:
            if not re.fullmatch(_CONFIG_KEY, key) or len(key) > 253:
                causes.invalid(
                    f"{field}[{key}]",
                    key,
                    "a valid config key must consist of alphanumeric characters, '-', '_' or '.'",
                )


def check(kind: Kind, obj: dict[str, Any], old: dict[str, Any] | None) -> None:
    """Raises 422 Invalid when ``obj`` (replacing ``old``, None on create) breaks the server's rules."""
    causes = _Causes()
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
    if causes.items:
        raise errors.invalid(kind.kind, kind.group, name, causes.items)
