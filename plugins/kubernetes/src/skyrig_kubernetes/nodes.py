"""What a Kubernetes compute provider's node types share, whatever the cloud: the environment's namespace
as a node, and the removal of a service's objects. A provider subclasses :class:`NamespaceNodeType`,
giving it its ``type`` (``eks.namespace``, ``gke.namespace``: the name its state records)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from skyrig.provider import CloudNodeType, Context, Node, Observed


class NamespaceNodeType(CloudNodeType):
    """The environment's namespace on the cluster: deleting it deletes everything skyrig made there. A
    namespace being deleted (``Terminating``) counts as gone."""

    replace_on = frozenset({"name"})
    timeout_setting = "rollout_timeout"
    """The provider setting that bounds the wait for the namespace's deletion, in seconds."""

    def _read(self, context: Context, node: Node, provider_id: str) -> Observed | None:
        found = context.client.kubernetes().get("v1", "Namespace", None, provider_id)
        if found is None or (found.get("status") or {}).get("phase") == "Terminating":
            return None
        return self.observed(node, provider_id, {"name": found["metadata"]["name"]})

    def _find(self, context: Context, node: Node) -> Observed | None:
        return self._read(context, node, node.properties["name"])

    def _create(self, context: Context, node: Node) -> Observed:
        from skyrig_kubernetes.workloads import namespace

        context.client.kubernetes().apply(namespace(context.app, context.environment.name))
        return self.observed(node, node.properties["name"], {})

    def _update(self, context: Context, node: Node, provider_id: str, changes: Mapping[str, Any]) -> Observed:
        return self._create(context, node)

    def _delete(self, context: Context, node: Node, provider_id: str) -> None:
        timeout = getattr(context.settings, self.timeout_setting)
        context.client.kubernetes().delete_namespace(provider_id, timeout=timeout)


def delete_service(kube: Any, namespace: str, name: str) -> None:
    """Delete the objects of the service whose objects are named ``name`` in ``namespace``, the routing
    first and its identity last; once the namespace is gone, so is everything left in it."""
    for api_version, kind, object_name in (
        ("networking.k8s.io/v1", "Ingress", name),
        ("policy/v1", "PodDisruptionBudget", name),
        ("autoscaling/v2", "HorizontalPodAutoscaler", name),
        ("apps/v1", "Deployment", name),
        ("v1", "Service", name),
        ("v1", "ConfigMap", f"{name}-runtime"),
        ("v1", "ServiceAccount", name),
    ):
        if kube.get("v1", "Namespace", None, namespace) is None:
            return
        kube.delete(api_version, kind, namespace, object_name)


def held_config(kube: Any, namespace: str, name: str) -> dict[str, Any]:
    """The runtime config the ConfigMap of the service named ``name`` holds now (``{}`` before the first
    delivery)."""
    import json

    from skyrig_kubernetes.workloads import CONFIG_KEY

    found = kube.get("v1", "ConfigMap", namespace, f"{name}-runtime")
    return json.loads(((found or {}).get("data") or {}).get(CONFIG_KEY) or "{}")
