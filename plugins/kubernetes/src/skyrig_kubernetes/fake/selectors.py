"""Label and field selectors, for the FAKE Kubernetes API server (:mod:`skyrig_kubernetes.fake`): the
``labelSelector`` query string (``a=b``, ``a==b``, ``a!=b``, ``a in (x,y)``, ``a notin (x)``, ``a``,
``!a``), ``fieldSelector`` on the fields the server registers (metadata, an Event's involvedObject, a
Pod's node and phase ...), and a ``LabelSelector`` object
(``matchLabels``, ``matchExpressions``) as Deployments, Jobs and PDBs carry it.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from skyrig_kubernetes.fake import errors

Requirement = Callable[[dict[str, str]], bool]

_SET = re.compile(r"^\s*(!?)\s*([A-Za-z0-9_./-]+)\s*(?:(notin|in)\s*\(([^)]*)\))?\s*$")
_EQUALITY = re.compile(r"^\s*([A-Za-z0-9_./-]+)\s*(==|=|!=)\s*([A-Za-z0-9_.-]*)\s*$")


def _split(text: str) -> list[str]:
    parts, depth, current = [], 0, ""
    for char in text:
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
        if char == "," and depth == 0:
            parts.append(current)
            current = ""
        else:
            current += char
    if current.strip():
        parts.append(current)
    return parts


def parse_label_selector(text: str) -> list[Requirement]:
    """The requirements of a ``labelSelector`` string (400 BadRequest when it does not parse)."""
    requirements: list[Requirement] = []
    for part in _split(text):
        equality = _EQUALITY.match(part)
        if equality:
            key, op, value = equality.groups()
            if op == "!=":
                requirements.append(lambda labels, k=key, v=value: labels.get(k) != v)
            else:
                requirements.append(lambda labels, k=key, v=value: labels.get(k) == v)
            continue
        found = _SET.match(part)
        if not found:
            raise errors.bad_request(f'unable to parse requirement: invalid label selector "{text}"')
        negated, key, op, values = found.groups()
        if op:
            allowed = {value.strip() for value in values.split(",") if value.strip()}
            if op == "in":
                requirements.append(lambda labels, k=key, a=allowed: labels.get(k) in a)
            else:
                requirements.append(lambda labels, k=key, a=allowed: labels.get(k) not in a)
        elif negated:
            requirements.append(lambda labels, k=key: k not in labels)
        else:
            requirements.append(lambda labels, k=key: k in labels)
    return requirements


#: The fields a ``fieldSelector`` may name (every kind: metadata; Events and Pods: theirs), as the server
#: registers them.
FIELDS = (
    "metadata.name",
    "metadata.namespace",
    "involvedObject.kind",
    "involvedObject.namespace",
    "involvedObject.name",
    "involvedObject.uid",
    "involvedObject.apiVersion",
    "involvedObject.resourceVersion",
    "involvedObject.fieldPath",
    "reason",
    "reportingComponent",
    "source",
    "type",
    "spec.nodeName",
    "spec.restartPolicy",
    "spec.schedulerName",
    "spec.serviceAccountName",
    "status.phase",
    "status.podIP",
)
_FIELD = re.compile(r"^\s*([A-Za-z.]+)\s*(==|=|!=)\s*(.*?)\s*$")


def _field_value(obj: dict[str, Any], path: str) -> str:
    value: Any = obj
    for key in path.split("."):
        value = value.get(key) if isinstance(value, dict) else None
    if path == "source" and isinstance(value, dict):
        value = value.get("component")
    return "" if value is None else str(value)


def parse_field_selector(text: str) -> list[Callable[[dict[str, Any]], bool]]:
    """The requirements of a ``fieldSelector`` (``a=b``, ``a==b``, ``a!=b`` on :data:`FIELDS`)."""
    requirements: list[Callable[[dict[str, Any]], bool]] = []
    for part in _split(text):
        equality = _FIELD.match(part)
        if not equality or equality[1] not in FIELDS:
            raise errors.bad_request(f"field label not supported: {part.strip().split('=')[0].rstrip('!')}")
        field, op, value = equality.groups()
        if op == "!=":
            requirements.append(lambda obj, f=field, v=value: _field_value(obj, f) != v)
        else:
            requirements.append(lambda obj, f=field, v=value: _field_value(obj, f) == v)
    return requirements


def matches_selector(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    """Whether ``labels`` satisfy a LabelSelector object."""
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    for expression in selector.get("matchExpressions") or []:
        key, operator = expression.get("key"), expression.get("operator")
        values = expression.get("values") or []
        if operator == "In" and labels.get(key) not in values:
            return False
        if operator == "NotIn" and labels.get(key) in values:
            return False
        if operator == "Exists" and key not in labels:
            return False
        if operator == "DoesNotExist" and key in labels:
            return False
    return True
