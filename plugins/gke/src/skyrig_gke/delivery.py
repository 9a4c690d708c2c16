"""Delivering each service's runtime config to its pods: the service's ConfigMap (``NAME-runtime``),
which the pods read as ``SKYRIG_RUNTIME_CONFIG``.

A new service's ConfigMap holds an empty config until the apply that made it ends. After each apply, the
config skyrig computed is written where it differs from the one the ConfigMap holds, and the Deployment's
``skyrig.dev/config-checksum`` pod annotation is changed to match (a patch: a rolling restart that reads
it), then the rollout is waited for. The service's own apply computes the same checksum from the ConfigMap,
so it finds nothing to change. The configs hold endpoints and references, never secret values.
"""

from __future__ import annotations

import json
from typing import Any

from skyrig.provider import Context
from skyrig_kubernetes.rollout import wait_for_rollout
from skyrig_kubernetes.workloads import CONFIG_KEY, PREFIX, Workload, config_map, digest

MANAGER = "skyrig-runtime"
"""The field manager of the checksum patch."""


def deliver(context: Context, configs: dict[str, dict[str, Any]]) -> None:
    """Write each service's config where it changed, and roll its pods to read it."""
    if not configs:
        return
    from kubernetes import client as k8s

    kubernetes = context.client.kubernetes()
    apps = k8s.AppsV1Api(kubernetes.api)
    for service in sorted(configs):
        item = Workload(
            context.app, context.environment.name, service, "", "", runtime_config=configs[service]
        )
        wanted = config_map(item)
        held = kubernetes.get("v1", "ConfigMap", item.namespace, wanted["metadata"]["name"])
        live = kubernetes.get("apps/v1", "Deployment", item.namespace, item.name)
        if held is None or live is None:
            continue  # not a service this environment runs here
        if json.loads((held.get("data") or {}).get(CONFIG_KEY) or "{}") == configs[service]:
            continue
        kubernetes.apply(wanted)
        patch = {
            "spec": {
                "template": {
                    "metadata": {"annotations": {f"{PREFIX}config-checksum": digest(wanted["data"])}}
                }
            }
        }
        apps.patch_namespaced_deployment(
            item.name,
            item.namespace,
            patch,
            field_manager=MANAGER,
            _content_type="application/merge-patch+json",
        )
        wait_for_rollout(
            kubernetes, item.namespace, item.name, service=service, timeout=context.settings.rollout_timeout
        )
