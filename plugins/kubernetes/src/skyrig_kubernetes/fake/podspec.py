"""The API server's validation of a pod spec (a Pod's, or a Deployment's or Job's template), for the FAKE
Kubernetes API server (:mod:`skyrig_kubernetes.fake`): container names (unique DNS-1123 labels) and
images, ports and their names, environment variable names, resource quantities (requests at most their
limits), probes (exactly one handler), volume mounts that name a volume, security contexts the kubelet
could not honour, and the restart policy the owning kind allows.
"""

from __future__ import annotations

import json
import re
from typing import Any

from skyrig_kubernetes.fake import errors, quantity
from skyrig_kubernetes.fake.errors import Causes
from skyrig_kubernetes.fake.names import name_problem

_ENV_NAME = r"[-._a-zA-Z][-._a-zA-Z0-9]*"
_PORT_NAME = r"[a-z0-9]([a-z0-9-]*[a-z0-9])?"
_HANDLERS = ("exec", "httpGet", "tcpSocket", "grpc")


def _ports(causes: Causes, where: str, ports: list[Any]) -> None:
    names: set[str] = set()
    for index, port in enumerate(ports):
        if not isinstance(port, dict):
            continue
        number = port.get("containerPort")
        if not isinstance(number, int) or not 1 <= number <= 65535:
            causes.invalid(
                f"{where}.ports[{index}].containerPort", number, "must be between 1 and 65535, inclusive"
            )
        name = port.get("name")
        if name is None:
            continue
        if (
            len(name) > 15
            or not re.fullmatch(_PORT_NAME, name)
            or not re.search("[a-z]", name)
            or "--" in name
        ):
            causes.invalid(
                f"{where}.ports[{index}].name",
                name,
                "must be no more than 15 characters, contain only [-a-z0-9] and at least one letter",
            )
        elif name in names:
            causes.duplicate(f"{where}.ports[{index}].name", name)
        names.add(name)


def _resources(causes: Causes, where: str, resources: Any) -> None:
    if not isinstance(resources, dict):
        return
    limits = resources.get("limits") or {}
    for group in ("requests", "limits"):
        for name, value in (resources.get(group) or {}).items():
            parsed = quantity.parse(value)
            if parsed is None:
                causes.invalid(
                    f"{where}.resources.{group}[{name}]",
                    value,
                    "quantities must match the regular expression "
                    "'^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'",
                )
            elif parsed < 0:
                causes.invalid(
                    f"{where}.resources.{group}[{name}]", value, "must be greater than or equal to 0"
                )
    for name, value in (resources.get("requests") or {}).items():
        request, limit = quantity.parse(value), quantity.parse(limits.get(name))
        if request is not None and limit is not None and request > limit:
            causes.invalid(
                f"{where}.resources.requests",
                value,
                f"must be less than or equal to {name} limit of {limits[name]}",
            )


def _probe(causes: Causes, where: str, probe: Any) -> None:
    if not isinstance(probe, dict):
        return
    handlers = [handler for handler in _HANDLERS if probe.get(handler) is not None]
    if not handlers:
        causes.required(where, "must specify a handler type")
    elif len(handlers) > 1:
        causes.forbidden(f"{where}.{handlers[1]}", "may not specify more than 1 handler type")
    for key in ("httpGet", "tcpSocket"):
        port = (probe.get(key) or {}).get("port")
        if isinstance(port, int) and not 1 <= port <= 65535:
            causes.invalid(f"{where}.{key}.port", port, "must be between 1 and 65535, inclusive")


def _security(causes: Causes, where: str, context: Any) -> None:
    if not isinstance(context, dict):
        return
    if context.get("privileged") is True and context.get("allowPrivilegeEscalation") is False:
        causes.invalid(
            f"{where}.securityContext",
            context,
            "cannot set `allowPrivilegeEscalation` to false and `privileged` to true",
        )
    user = context.get("runAsUser")
    if context.get("runAsNonRoot") is True and user == 0:
        causes.invalid(
            f"{where}.securityContext.runAsNonRoot", True, "runAsNonRoot is true but runAsUser is 0 (root)"
        )


def _container(
    causes: Causes, where: str, container: dict[str, Any], volumes: set[str], names: set[str]
) -> None:
    name = container.get("name") or ""
    problem = name_problem("label", name)
    if problem:
        causes.invalid(f"{where}.name", name, problem)
    elif name in names:
        causes.duplicate(f"{where}.name", name)
    names.add(name)
    if not container.get("image"):
        causes.required(f"{where}.image")
    _ports(causes, where, container.get("ports") or [])
    for index, env in enumerate(container.get("env") or []):
        env_name = env.get("name") if isinstance(env, dict) else None
        if env_name is not None and not re.fullmatch(_ENV_NAME, env_name):
            causes.invalid(
                f"{where}.env[{index}].name",
                env_name,
                "a valid environment variable name must "
                "consist of alphabetic characters, digits, "
                "'_', '-', or '.', and must not start with a "
                "digit",
            )
        if isinstance(env, dict) and env.get("value") is not None and env.get("valueFrom") is not None:
            causes.invalid(
                f"{where}.env[{index}].valueFrom", "", "may not be specified when `value` is not empty"
            )
    _resources(causes, where, container.get("resources"))
    for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
        _probe(causes, f"{where}.{probe}", container.get(probe))
    for index, mount in enumerate(container.get("volumeMounts") or []):
        if isinstance(mount, dict) and mount.get("name") not in volumes:
            causes.items.append(
                errors.cause(
                    f"{where}.volumeMounts[{index}].name",
                    f"Not found: {json.dumps(mount.get('name'))}",
                    "FieldValueNotFound",
                )
            )
    _security(causes, where, container.get("securityContext"))


def check_pod_spec(causes: Causes, field: str, spec: Any, restart_policies: tuple[str, ...]) -> None:
    """Collects the problems of a pod spec at ``field`` (``spec.template.spec``)."""
    if not isinstance(spec, dict):
        return
    volumes: set[str] = set()
    for index, volume in enumerate(spec.get("volumes") or []):
        name = volume.get("name") if isinstance(volume, dict) else None
        if name in volumes:
            causes.duplicate(f"{field}.volumes[{index}].name", name)
        volumes.add(name or "")
    if not spec.get("containers"):
        causes.required(f"{field}.containers")
    names: set[str] = set()
    for key in ("initContainers", "containers"):
        for index, container in enumerate(spec.get(key) or []):
            if isinstance(container, dict):
                _container(causes, f"{field}.{key}[{index}]", container, volumes, names)
    policy = spec.get("restartPolicy")
    if policy not in restart_policies:
        causes.unsupported(f"{field}.restartPolicy", policy, list(restart_policies))
