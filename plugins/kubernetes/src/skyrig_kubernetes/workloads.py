"""The Kubernetes objects one skyrig service becomes, as plain dicts: what skyrig-eks and skyrig-gke apply.

A :class:`Workload` says what the provider knows of a service (its image, port, runtime config, sizes,
scaling, cloud identity and routing); :func:`service_objects` turns it into a ServiceAccount, a ConfigMap,
a Deployment, a Service, a HorizontalPodAutoscaler, a PodDisruptionBudget and an Ingress, in the
environment's namespace (:func:`namespace`). :func:`migration_job` makes the Job that runs a database's
migrations before the Deployments roll out. Every function is deterministic: the same workload gives the
same objects, byte for byte, so a re-apply changes nothing.

The pods run the service host exactly as the other compute providers do (``uvicorn --factory
skyrig.runtime.host:create``) as the image's unprivileged user, non-root, with a read-only root
filesystem (``/tmp`` is an ``emptyDir``), no privilege escalation, no capabilities and the runtime's
default seccomp profile. The runtime config (no secret value: secrets are references the data plane
reads with the workload's identity) is a ConfigMap; its checksum is a pod annotation, so a changed config
rolls the pods.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from skyrig.provider import join_name

PREFIX = "skyrig.dev/"
"""The prefix of skyrig's own annotations."""

CONFIG_KEY = "runtime-config.json"
"""The ConfigMap key that holds a service's runtime config."""

IMAGE_USER = 10001
"""The uid of the user the image ``skyrig build docker`` writes runs as (``useradd --uid 10001 app``):
named numerically, because ``runAsNonRoot`` cannot check a user given by name."""

HOST_COMMAND = ("uvicorn", "--factory", "skyrig.runtime.host:create", "--host", "0.0.0.0", "--port")
"""The service host's command, as every compute provider runs it (the port follows)."""

SERVICE_PORT = 80
"""The port of each service's ClusterIP Service (forwarded to the container's ``http`` port)."""

DRAIN_SECONDS = 40
"""The pods' termination grace: the service host lets in-flight handlers finish for up to 30 s."""


@dataclass(frozen=True)
class Ingress:
    """How a service is reached from outside the cluster: an Ingress of ``class_name`` (the AWS Load
    Balancer Controller's ``alb``, GKE's ``gce``) routing ``host`` to it, with the controller's
    ``annotations`` (a certificate ARN, a static IP), and TLS from ``tls_secret`` when given."""

    host: str
    class_name: str | None = None
    annotations: Mapping[str, str] = field(default_factory=dict)
    tls_secret: str | None = None


@dataclass(frozen=True)
class Workload:
    """One skyrig service as the Kubernetes compute providers run it.

    ``service_app`` is the service's ASGI app as ``module:attribute`` (``SKYRIG_SERVICE_APP``);
    ``runtime_config`` is its runtime config (how it reaches its resources; secrets only as references);
    ``environment_variables`` adds the cloud's own (``AWS_REGION``, ``GOOGLE_CLOUD_PROJECT``).
    ``cpu`` and ``memory`` are the requests (``memory_limit`` defaults to ``memory``; no CPU limit unless
    ``cpu_limit``, so a busy pod is not throttled below what the node has spare). Between
    ``min_replicas`` and ``max_replicas`` a HorizontalPodAutoscaler scales on ``target_cpu`` percent;
    when they are equal there is none and the Deployment runs that many.
    ``account_annotations`` binds the ServiceAccount to the cloud identity (IRSA's
    ``eks.amazonaws.com/role-arn``, GKE's ``iam.gke.io/gcp-service-account``); ``service_annotations``
    are what the cloud's load balancer reads on the Service (GKE's ``cloud.google.com/neg`` and
    ``cloud.google.com/backend-config``); ``pod_labels``,
    ``node_selector`` and ``tolerations`` are what a cluster's scheduling asks of the pods.
    """

    app: str
    environment: str
    service: str
    service_app: str
    image: str
    port: int = 8080
    runtime_config: Mapping[str, Any] = field(default_factory=dict)
    environment_variables: Mapping[str, str] = field(default_factory=dict)
    cpu: str = "250m"
    memory: str = "512Mi"
    cpu_limit: str | None = None
    memory_limit: str | None = None
    min_replicas: int = 1
    max_replicas: int = 3
    target_cpu: int = 70
    account_annotations: Mapping[str, str] = field(default_factory=dict)
    service_annotations: Mapping[str, str] = field(default_factory=dict)
    pod_labels: Mapping[str, str] = field(default_factory=dict)
    node_selector: Mapping[str, str] = field(default_factory=dict)
    tolerations: tuple[Mapping[str, Any], ...] = ()
    ingress: Ingress | None = None

    def __post_init__(self) -> None:
        if not 1 <= self.min_replicas <= self.max_replicas:
            raise ValueError(
                f"service {self.service}: replicas must satisfy 1 <= min ({self.min_replicas}) <= max "
                f"({self.max_replicas})"
            )

    @property
    def name(self) -> str:
        """The name of the service's objects: a DNS-1035 label (what a Service's name must be)."""
        return join_name(self.service)

    @property
    def namespace(self) -> str:
        """The environment's namespace."""
        return namespace_name(self.app, self.environment)

    @property
    def autoscaled(self) -> bool:
        """Whether a HorizontalPodAutoscaler owns the replica count (the Deployment then sets none)."""
        return self.max_replicas > self.min_replicas


@dataclass(frozen=True)
class Migration:
    """A database's migrations, as the SQL family runs them: ``command`` in the services' image under the
    owning service's identity, with ``environment`` (no secret: the password is read from the cloud's
    secret store), and the ``migrations`` it applies (their names or digests: a change runs a new Job)."""

    database: str
    command: tuple[str, ...]
    environment: Mapping[str, str] = field(default_factory=dict)
    migrations: tuple[str, ...] = ()


def namespace_name(app: str, environment: str) -> str:
    """The namespace of ``app``'s ``environment``: ``APP-ENV`` as a DNS-1123 label of at most 63
    characters, hash-suffixed when cleaned or shortened, the same on every run."""
    return join_name(app, environment)


def digest(value: Any) -> str:
    """A short, stable digest of JSON-able ``value``."""
    text = json.dumps(value, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:10]


def labels(workload: Workload) -> dict[str, str]:
    """The recommended labels of a service's objects; the first two select its pods."""
    return {
        "app.kubernetes.io/name": workload.name,
        "app.kubernetes.io/instance": workload.namespace,
        "app.kubernetes.io/part-of": join_name(workload.app),
        "app.kubernetes.io/managed-by": "skyrig",
    }


def selector(workload: Workload) -> dict[str, str]:
    """The labels that select the service's pods (immutable in a Deployment: never change them)."""
    found = labels(workload)
    return {key: found[key] for key in ("app.kubernetes.io/name", "app.kubernetes.io/instance")}


def _metadata(workload: Workload, name: str | None = None, **extra: Any) -> dict[str, Any]:
    return {
        "name": name or workload.name,
        "namespace": workload.namespace,
        "labels": labels(workload),
        **extra,
    }


def namespace(app: str, environment: str) -> dict[str, Any]:
    """The environment's Namespace, annotated with the app and environment it is (their names as
    written, which labels could not always hold)."""
    return {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {
            "name": namespace_name(app, environment),
            "labels": {"app.kubernetes.io/part-of": join_name(app), "app.kubernetes.io/managed-by": "skyrig"},
            "annotations": {f"{PREFIX}app": app, f"{PREFIX}environment": environment},
        },
    }


def service_account(workload: Workload) -> dict[str, Any]:
    """The service's ServiceAccount, bound to its cloud identity by ``account_annotations``."""
    metadata = _metadata(workload)
    if workload.account_annotations:
        metadata["annotations"] = dict(sorted(workload.account_annotations.items()))
    return {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": metadata}


def config_map(workload: Workload) -> dict[str, Any]:
    """The service's runtime config (no secret value in it)."""
    text = json.dumps(dict(workload.runtime_config), sort_keys=True, separators=(",", ":"))
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": _metadata(workload, f"{workload.name}-runtime"),
        "data": {CONFIG_KEY: text},
    }


def _environment(workload: Workload, extra: Mapping[str, str]) -> list[dict[str, Any]]:
    values = {
        **workload.environment_variables,
        "SKYRIG_APP": workload.app,
        "SKYRIG_ENVIRONMENT": workload.environment,
        "SKYRIG_SERVICE": workload.service,
        "SKYRIG_SERVICE_APP": workload.service_app,
        **extra,
    }
    return [{"name": key, "value": value} for key, value in sorted(values.items())]


def _resources(workload: Workload) -> dict[str, Any]:
    limits = {"memory": workload.memory_limit or workload.memory}
    if workload.cpu_limit:
        limits["cpu"] = workload.cpu_limit
    return {"requests": {"cpu": workload.cpu, "memory": workload.memory}, "limits": limits}


def _pod_spec(workload: Workload, container: dict[str, Any]) -> dict[str, Any]:
    """A pod of the service's image, locked down: what the Deployment's and the Job's pods share."""
    container["resources"] = _resources(workload)
    container["securityContext"] = {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "runAsNonRoot": True,
        "capabilities": {"drop": ["ALL"]},
    }
    container["volumeMounts"] = [{"name": "tmp", "mountPath": "/tmp"}]
    spec: dict[str, Any] = {
        "serviceAccountName": workload.name,
        # the app never calls the Kubernetes API; the cloud identity comes from its own token (IRSA's
        # projected volume, GKE's metadata server), not from this one
        "automountServiceAccountToken": False,
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": IMAGE_USER,
            "runAsGroup": IMAGE_USER,
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "containers": [container],
        "volumes": [{"name": "tmp", "emptyDir": {}}],
    }
    if workload.node_selector:
        spec["nodeSelector"] = dict(sorted(workload.node_selector.items()))
    if workload.tolerations:
        spec["tolerations"] = [dict(t) for t in workload.tolerations]
    return spec


def deployment(workload: Workload) -> dict[str, Any]:
    """The service's Deployment: the service host on ``port``, ready when it accepts connections.

    It sets no ``spec.replicas`` when a HorizontalPodAutoscaler manages the count, so skyrig never owns
    (and never resets) a count the autoscaler or a person chose. A rolling update adds a new pod before
    taking an old one away, so the previous version serves until the new one is ready.
    """
    container = {
        "name": workload.name,
        "image": workload.image,
        "command": [*HOST_COMMAND, str(workload.port)],
        "ports": [{"name": "http", "containerPort": workload.port, "protocol": "TCP"}],
        "env": [
            *_environment(workload, {}),
            {
                "name": "SKYRIG_RUNTIME_CONFIG",
                "valueFrom": {"configMapKeyRef": {"name": f"{workload.name}-runtime", "key": CONFIG_KEY}},
            },
        ],
        # the service host binds its port once the app has started; its own health endpoint needs the
        # run's token, and an HTTP probe would count the app's own 404 at "/" as not ready
        "readinessProbe": {"tcpSocket": {"port": "http"}, "periodSeconds": 5, "failureThreshold": 3},
    }
    spec: dict[str, Any] = {
        "selector": {"matchLabels": selector(workload)},
        "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}},
        "template": {
            "metadata": {
                "labels": {**dict(sorted(workload.pod_labels.items())), **labels(workload)},
                "annotations": {f"{PREFIX}config-checksum": digest(config_map(workload)["data"])},
            },
            "spec": {**_pod_spec(workload, container), "terminationGracePeriodSeconds": DRAIN_SECONDS},
        },
    }
    if not workload.autoscaled:
        spec = {"replicas": workload.min_replicas, **spec}
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": _metadata(workload), "spec": spec}


def service(workload: Workload) -> dict[str, Any]:
    """The service's ClusterIP Service: port 80 to the pods' ``http`` port."""
    metadata = _metadata(workload)
    if workload.service_annotations:
        metadata["annotations"] = dict(sorted(workload.service_annotations.items()))
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": metadata,
        "spec": {
            "type": "ClusterIP",
            "selector": selector(workload),
            "ports": [{"name": "http", "port": SERVICE_PORT, "targetPort": "http", "protocol": "TCP"}],
        },
    }


def autoscaler(workload: Workload) -> dict[str, Any]:
    """The service's HorizontalPodAutoscaler (autoscaling/v2): CPU utilisation of the requests."""
    return {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": _metadata(workload),
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": workload.name},
            "minReplicas": workload.min_replicas,
            "maxReplicas": workload.max_replicas,
            "metrics": [
                {
                    "type": "Resource",
                    "resource": {
                        "name": "cpu",
                        "target": {"type": "Utilization", "averageUtilization": workload.target_cpu},
                    },
                }
            ],
        },
    }


def disruption_budget(workload: Workload) -> dict[str, Any]:
    """The service's PodDisruptionBudget: one pod stays up through voluntary disruptions (node drains,
    upgrades) when it runs two or more; a single pod may be evicted, so a drain is never blocked."""
    budget = {"minAvailable": 1} if workload.min_replicas >= 2 else {"maxUnavailable": 1}
    return {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": _metadata(workload),
        "spec": {**budget, "selector": {"matchLabels": selector(workload)}},
    }


def ingress(workload: Workload) -> dict[str, Any] | None:
    """The service's Ingress (networking.k8s.io/v1) to its Service, TLS when a secret is given; ``None``
    when the service is not routed from outside."""
    routed = workload.ingress
    if routed is None:
        return None
    metadata = _metadata(workload)
    if routed.annotations:
        metadata["annotations"] = dict(sorted(routed.annotations.items()))
    backend = {"service": {"name": workload.name, "port": {"name": "http"}}}
    spec: dict[str, Any] = {
        "rules": [
            {
                "host": routed.host,
                "http": {"paths": [{"path": "/", "pathType": "Prefix", "backend": backend}]},
            }
        ]
    }
    if routed.class_name:
        spec = {"ingressClassName": routed.class_name, **spec}
    if routed.tls_secret:
        spec["tls"] = [{"hosts": [routed.host], "secretName": routed.tls_secret}]
    return {"apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "metadata": metadata, "spec": spec}


def service_objects(workload: Workload) -> list[dict[str, Any]]:
    """Every object of one service (not the namespace, not its migrations), in the order they apply."""
    objects = [service_account(workload), config_map(workload), service(workload), deployment(workload)]
    if workload.autoscaled:
        objects.append(autoscaler(workload))
    objects.append(disruption_budget(workload))
    routed = ingress(workload)
    if routed is not None:
        objects.append(routed)
    return objects


JOB_TTL_SECONDS = 7 * 24 * 3600
"""How long a finished migrations Job is kept: its pods' logs stay readable for a week. One removed by
then runs again at the next apply, harmlessly: a migration the ledger records is never applied twice."""


def migration_job(workload: Workload, migration: Migration) -> dict[str, Any]:
    """The Job that runs ``migration`` with ``workload``'s image and identity. Its name carries a digest
    of its pod and the migrations, so each change makes a new Job (a Job's pod cannot change) and an
    unchanged one is the same Job, which does not run again."""
    container = {
        "name": "migrate",
        "image": workload.image,
        "command": list(migration.command),
        "env": _environment(workload, migration.environment),
    }
    # not the service's own labels: its Service would select the Job's pod
    pod_labels = {**labels(workload), "app.kubernetes.io/name": f"{workload.name}-migrate"}
    template = {
        "metadata": {"labels": pod_labels},
        "spec": {**_pod_spec(workload, container), "restartPolicy": "Never"},
    }
    suffix = digest({"template": template, "migrations": list(migration.migrations)})
    # a Job's name is copied into its pods' job-name label, which holds at most 63 characters
    name = f"{join_name(workload.service, 'migrate', migration.database, limit=52)}-{suffix}"
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": _metadata(workload, name, annotations={f"{PREFIX}database": migration.database}),
        "spec": {
            "backoffLimit": 1,
            "activeDeadlineSeconds": 1800,
            "ttlSecondsAfterFinished": JOB_TTL_SECONDS,
            "template": template,
        },
    }
