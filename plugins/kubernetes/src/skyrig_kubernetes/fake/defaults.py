"""The defaults the real API server fills in, for the FAKE Kubernetes API server
(:mod:`skyrig_kubernetes.fake`): the ones clients see and rely on (a Deployment's strategy,
revisionHistoryLimit and progressDeadlineSeconds, a Service's clusterIP and type, a container's
imagePullPolicy, a port's protocol, an HPA's behaviour, a Namespace's phase, a Job's selector ...).
"""

from __future__ import annotations

import base64
import zlib
from collections.abc import Callable
from typing import Any


def _set(obj: dict[str, Any], key: str, value: Any) -> None:
    if obj.get(key) is None:
        obj[key] = value


def _probe(probe: Any) -> None:
    if not isinstance(probe, dict):
        return
    for key, value in (
        ("timeoutSeconds", 1),
        ("periodSeconds", 10),
        ("successThreshold", 1),
        ("failureThreshold", 3),
    ):
        _set(probe, key, value)
    if isinstance(probe.get("httpGet"), dict):
        _set(probe["httpGet"], "scheme", "HTTP")
        _set(probe["httpGet"], "path", "/")


def _container(container: Any) -> None:
    if not isinstance(container, dict):
        return
    image = str(container.get("image") or "")
    tag = image.rsplit("/", 1)[-1].partition(":")[2]
    _set(
        container,
        "imagePullPolicy",
        "Always" if "@" not in image and tag in ("", "latest") else "IfNotPresent",
    )
    _set(container, "terminationMessagePath", "/dev/termination-log")
    _set(container, "terminationMessagePolicy", "File")
    _set(container, "resources", {})
    for port in container.get("ports") or []:
        if isinstance(port, dict):
            _set(port, "protocol", "TCP")
    for env in container.get("env") or []:
        field_ref = (env.get("valueFrom") or {}).get("fieldRef") if isinstance(env, dict) else None
        if isinstance(field_ref, dict):
            _set(field_ref, "apiVersion", "v1")
    for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
        _probe(container.get(probe))


def pod_spec(spec: Any) -> None:
    """A PodSpec's defaults (a template's, or a Pod's)."""
    if not isinstance(spec, dict):
        return
    _set(spec, "restartPolicy", "Always")
    _set(spec, "terminationGracePeriodSeconds", 30)
    _set(spec, "dnsPolicy", "ClusterFirst")
    _set(spec, "securityContext", {})
    _set(spec, "schedulerName", "default-scheduler")
    for key in ("containers", "initContainers"):
        for container in spec.get(key) or []:
            _container(container)


def _template(spec: dict[str, Any]) -> None:
    template = spec.get("template")
    if isinstance(template, dict):
        pod_spec(template.get("spec"))


def _deployment(obj: dict[str, Any], _: Callable[[], str]) -> None:
    spec = obj.get("spec")
    if not isinstance(spec, dict):
        return
    _set(spec, "replicas", 1)
    _set(spec, "revisionHistoryLimit", 10)
    _set(spec, "progressDeadlineSeconds", 600)
    strategy = spec.setdefault("strategy", {})
    if isinstance(strategy, dict):
        _set(strategy, "type", "RollingUpdate")
        if strategy["type"] == "RollingUpdate":
            rolling = strategy.setdefault("rollingUpdate", {})
            _set(rolling, "maxSurge", "25%")
            _set(rolling, "maxUnavailable", "25%")
    _template(spec)


def _replicaset(obj: dict[str, Any], _: Callable[[], str]) -> None:
    spec = obj.get("spec")
    if isinstance(spec, dict):
        _set(spec, "replicas", 1)
        _template(spec)


def _job(obj: dict[str, Any], _: Callable[[], str]) -> None:
    spec = obj.get("spec")
    if not isinstance(spec, dict):
        return
    _set(spec, "backoffLimit", 6)
    _set(spec, "completions", 1)
    _set(spec, "parallelism", 1)
    _set(spec, "completionMode", "NonIndexed")
    _set(spec, "suspend", False)
    if not spec.get("podFailurePolicy"):
        _set(spec, "podReplacementPolicy", "TerminatingOrFailed")
    metadata = obj.get("metadata") or {}
    uid, name = metadata.get("uid"), metadata.get("name")
    if uid and name and not spec.get("selector"):
        spec["selector"] = {"matchLabels": {"batch.kubernetes.io/controller-uid": uid}}
        template = spec.setdefault("template", {})
        if isinstance(template, dict):
            labels = template.setdefault("metadata", {}).setdefault("labels", {})
            labels.update(
                {
                    "batch.kubernetes.io/controller-uid": uid,
                    "batch.kubernetes.io/job-name": name,
                    "controller-uid": uid,
                    "job-name": name,
                }
            )
    _template(spec)


def _service(obj: dict[str, Any], allocate_ip: Callable[[], str]) -> None:
    spec = obj.get("spec")
    if not isinstance(spec, dict):
        return
    _set(spec, "type", "ClusterIP")
    _set(spec, "sessionAffinity", "None")
    if spec["type"] != "ExternalName":
        if not spec.get("clusterIP"):
            spec["clusterIP"] = allocate_ip()
        _set(spec, "clusterIPs", [spec["clusterIP"]])
        _set(spec, "ipFamilies", ["IPv4"])
        _set(spec, "ipFamilyPolicy", "SingleStack")
        _set(spec, "internalTrafficPolicy", "Cluster")
    if spec["type"] in ("NodePort", "LoadBalancer"):
        _set(spec, "externalTrafficPolicy", "Cluster")
    if spec["type"] == "LoadBalancer":
        _set(spec, "allocateLoadBalancerNodePorts", True)
    for index, port in enumerate(spec.get("ports") or []):
        if isinstance(port, dict):
            _set(port, "protocol", "TCP")
            _set(port, "targetPort", port.get("port"))
            if spec["type"] in ("NodePort", "LoadBalancer"):
                _set(
                    port,
                    "nodePort",
                    30000 + (zlib.crc32(f"{obj['metadata'].get('name')}/{index}".encode()) % 2767),
                )
    obj.setdefault("status", {"loadBalancer": {}})


def _hpa(obj: dict[str, Any], _: Callable[[], str]) -> None:
    spec = obj.get("spec")
    if not isinstance(spec, dict):
        return
    _set(spec, "minReplicas", 1)
    if not spec.get("metrics"):
        spec["metrics"] = [
            {
                "type": "Resource",
                "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 80}},
            }
        ]
    behavior = spec.setdefault("behavior", {})
    up = behavior.setdefault("scaleUp", {})
    _set(up, "stabilizationWindowSeconds", 0)
    _set(up, "selectPolicy", "Max")
    _set(
        up,
        "policies",
        [
            {"type": "Pods", "value": 4, "periodSeconds": 15},
            {"type": "Percent", "value": 100, "periodSeconds": 15},
        ],
    )
    down = behavior.setdefault("scaleDown", {})
    _set(down, "stabilizationWindowSeconds", 300)
    _set(down, "selectPolicy", "Max")
    _set(down, "policies", [{"type": "Percent", "value": 100, "periodSeconds": 15}])


def _secret(obj: dict[str, Any], _: Callable[[], str]) -> None:
    _set(obj, "type", "Opaque")
    string_data = obj.pop("stringData", None)
    if isinstance(string_data, dict):
        data = obj.setdefault("data", {})
        for key, value in string_data.items():
            data[key] = base64.b64encode(str(value).encode()).decode()


def _namespace(obj: dict[str, Any], _: Callable[[], str]) -> None:
    metadata = obj.setdefault("metadata", {})
    metadata.setdefault("labels", {})["kubernetes.io/metadata.name"] = metadata.get("name")
    spec = obj.setdefault("spec", {})
    _set(spec, "finalizers", ["kubernetes"])
    status = obj.setdefault("status", {})
    _set(status, "phase", "Active")


def _pod(obj: dict[str, Any], _: Callable[[], str]) -> None:
    pod_spec(obj.get("spec"))


_BY_KIND: dict[str, Callable[[dict[str, Any], Callable[[], str]], None]] = {
    "Deployment": _deployment,
    "ReplicaSet": _replicaset,
    "Job": _job,
    "Service": _service,
    "HorizontalPodAutoscaler": _hpa,
    "Secret": _secret,
    "Namespace": _namespace,
    "Pod": _pod,
}


def apply_defaults(kind: str, obj: dict[str, Any], allocate_ip: Callable[[], str]) -> None:
    """Fills ``obj``'s server defaults in place (``allocate_ip`` answers a free cluster IP)."""
    defaults = _BY_KIND.get(kind)
    if defaults is not None:
        defaults(obj, allocate_ip)
