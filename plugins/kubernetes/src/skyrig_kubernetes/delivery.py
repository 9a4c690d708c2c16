"""Delivering each service's runtime config to its pods: the service's ConfigMap (``NAME-runtime``),
which the pods read as ``SKYRIG_RUNTIME_CONFIG``.

A new service's ConfigMap holds an empty config until the apply that made it ends. After each apply, the
config skyrig computed is written where it differs from the one the ConfigMap holds (or the pods' config
checksum differs from it), and the Deployment's ``skyrig.dev/config-checksum`` pod annotation is changed to
match (a merge patch as field manager ``skyrig-runtime``: a rolling restart that reads it). The service's
own apply computes the same checksum from the ConfigMap, so it finds nothing to change. The configs hold
endpoints and references, never secret values.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from skyrig.provider import Context
from skyrig_kubernetes.nodes import held_config
from skyrig_kubernetes.rollout import wait_for_rollout
from skyrig_kubernetes.workloads import PREFIX, Workload, config_map, digest

MANAGER = "skyrig-runtime"
"""The field manager of the checksum patch."""


def deliver(context: Context, configs: Mapping[str, Mapping[str, Any]], *, wait: bool) -> None:
    """Write each service's config where it changed, and roll its pods to read it; with ``wait``, wait
    for each rollout (``context.settings.rollout_timeout`` seconds at most). A service with no Deployment
    in the environment's namespace does not run here: skipped."""
    if not configs:
        return
    from kubernetes import client as k8s

    kube = context.client.kubernetes()
    apps = k8s.AppsV1Api(kube.api)
    for service in sorted(configs):
        item = Workload(
            context.app, context.environment.name, service, "", "", runtime_config=configs[service]
        )
        live = kube.get("apps/v1", "Deployment", item.namespace, item.name)
        if live is None:
            continue
        wanted = config_map(item)
        checksum = digest(wanted["data"])
        annotations = live["spec"]["template"].get("metadata", {}).get("annotations") or {}
        if (
            held_config(kube, item.namespace, item.name) == dict(configs[service])
            and annotations.get(f"{PREFIX}config-checksum") == checksum
        ):
            continue
        kube.apply(wanted)
        patch = {"spec": {"template": {"metadata": {"annotations": {f"{PREFIX}config-checksum": checksum}}}}}
        apps.patch_namespaced_deployment(
            item.name,
            item.namespace,
            patch,
            field_manager=MANAGER,
            _content_type="application/merge-patch+json",
        )
        if wait:
            wait_for_rollout(
                kube, item.namespace, item.name, service=service, timeout=context.settings.rollout_timeout
            )
