"""What a Kubernetes compute provider's node types share, whatever the cloud: the environment's namespace
and each service's objects as nodes. A provider subclasses :class:`NamespaceNodeType` and
:class:`ServiceNodeType`, giving each its ``type`` (``eks.namespace``, ``gke.service``...: the name its
state records) and the service's cloud-specific parts."""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections.abc import Mapping
from typing import Any

from skyrig.provider import CloudNodeType, Context, Node, Observed, join_name
from skyrig_kubernetes.workloads import Migration, Workload


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
    from skyrig_kubernetes.workloads import CONFIG_KEY

    found = kube.get("v1", "ConfigMap", namespace, f"{name}-runtime")
    return json.loads(((found or {}).get("data") or {}).get(CONFIG_KEY) or "{}")


class ServiceNodeType(CloudNodeType, ABC):
    """A service's objects on the cluster, rolled out (:func:`skyrig_kubernetes.deploy.deploy`). The replica
    count (where no autoscaler owns it: ``replicas`` is set) and the pods' requests are tunable: changed on
    the cluster, adopted and kept by the next apply. The image and the security settings are invariant:
    restored by the next apply. A service deploys with the runtime config its ConfigMap holds (what
    :mod:`skyrig_kubernetes.delivery` wrote), so its pods' config checksum stays the delivered one.

    A provider subclasses it with its ``type`` and the cloud's parts: :meth:`workload`, :meth:`migration`
    and :meth:`observe`."""

    tunable = frozenset({"replicas", "cpu", "memory"})
    invariant = frozenset({"image", "security"})
    replace_on = frozenset({"service"})

    def names(self, context: Context, node: Node) -> tuple[str, str]:
        """The namespace of ``node``'s service and the name of its objects."""
        from skyrig_kubernetes.workloads import namespace_name

        return namespace_name(context.app, context.environment.name), join_name(node.properties["service"])

    @abstractmethod
    def workload(
        self, context: Context, node: Node, config: Mapping[str, Any], live: Mapping[str, Any] | None
    ) -> Workload:
        """The service of ``node`` as a :class:`~skyrig_kubernetes.workloads.Workload`, with runtime config
        ``config``, its Deployment running ``live`` now (``None`` before its first apply)."""

    @abstractmethod
    def migration(self, context: Context, wanted: Mapping[str, Any]) -> Migration:
        """One entry of ``node.properties["migrations"]`` as the Job :func:`deploy` runs it."""

    @abstractmethod
    def observe(self, context: Context, node: Node, live: Mapping[str, Any]) -> Observed:
        """What ``node``'s service is, its Deployment being ``live``."""

    def _find(self, context: Context, node: Node) -> Observed | None:
        space, name = self.names(context, node)
        live = context.client.kubernetes().get("apps/v1", "Deployment", space, name)
        return None if live is None else self.observe(context, node, live)

    def _read(self, context: Context, node: Node, provider_id: str) -> Observed | None:
        return self._find(context, node)  # the objects' names follow from the node

    def _deploy(self, context: Context, node: Node, kept: Mapping[str, Any]) -> Observed:
        from skyrig_kubernetes.deploy import deploy

        kube = context.client.kubernetes()
        space, name = self.names(context, node)
        live = kube.get("apps/v1", "Deployment", space, name)
        item = self.workload(context, node, held_config(kube, space, name), live)
        migrations = [self.migration(context, wanted) for wanted in node.properties.get("migrations", [])]
        found = deploy(kube, item, migrations, tunable=kept, timeout=context.settings.rollout_timeout)
        return self.observe(context, node, found)

    def _create(self, context: Context, node: Node) -> Observed:
        return self._deploy(context, node, {})

    def _update(self, context: Context, node: Node, provider_id: str, changes: Mapping[str, Any]) -> Observed:
        from skyrig_kubernetes import drift

        space, name = self.names(context, node)
        live = context.client.kubernetes().get("apps/v1", "Deployment", space, name)
        now = drift.observe(live) if live else {}
        # what changed on the cluster and is not changed in code stays as it is there
        kept = {prop: now[prop] for prop in self.tunable if prop not in changes and now.get(prop) is not None}
        if node.properties.get("replicas") is None:  # an autoscaler owns the count
            kept.pop("replicas", None)
        return self._deploy(context, node, kept)

    def _delete(self, context: Context, node: Node, provider_id: str) -> None:
        delete_service(context.client.kubernetes(), *self.names(context, node))

    def runtime_entry(self, node: Node, observed: Observed) -> dict[str, Any] | None:
        return {"type": self.type, "url": observed.outputs.get("url")}
