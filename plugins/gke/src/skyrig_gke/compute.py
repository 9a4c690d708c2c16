"""Compute: each service on the cluster, as the objects :mod:`skyrig_kubernetes.workloads` makes (in the
environment's namespace: a ServiceAccount bound to the service's Google service account, the runtime config
as a ConfigMap, a locked-down Deployment, a Service, a HorizontalPodAutoscaler, a PodDisruptionBudget, and
with a ``domain`` an Ingress of class ``gce`` on a global static IP of its own), applied with server-side
apply and waited for (:func:`skyrig_kubernetes.deploy.deploy`).

The image is the ``image`` setting, which the core sets for each command (``skyrig.engine.images``):
``--image``, else the setting, else the image the services run now, else ``app:latest`` of the Artifact
Registry repository the GCP provider keeps. A plan without ``--image`` keeps it.
CPU and memory requests and a fixed replica count are tunable: changed on the cluster, they are adopted and
kept by the next apply; the image and the security settings are invariants, restored by the next apply
(which also puts back the identity annotation). The runtime config is delivered after each apply
(:mod:`skyrig_kubernetes.delivery`, waiting for each rollout); a service's apply keeps the config its
ConfigMap holds.

Where the GCP provider provisions the SQL databases, the migrations of those a service owns run as a
Kubernetes Job each (the command and environment of the Cloud Run job the GCP provider keeps for them, node
``compute.migration/DATABASE``, in the service's image and as its Google service account), to completion,
before the service's Deployment changes; a changed migration runs a new Job.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from skyrig.provider import RESOURCE_KINDS, Context, Node, Observed, Scope, join_name, plan_of
from skyrig_gke import cluster, iam, names
from skyrig_gke.nodes import GkeNodeType
from skyrig_kubernetes import drift
from skyrig_kubernetes.nodes import NamespaceNodeType, ServiceNodeType
from skyrig_kubernetes.workloads import (
    Ingress,
    Migration,
    Workload,
    deployment,
    namespace_name,
)

ACCOUNT_ANNOTATION = "iam.gke.io/gcp-service-account"
INGRESS_CLASS = "gce"
STATIC_IP = "kubernetes.io/ingress.global-static-ip-name"
PRE_SHARED_CERT = "ingress.gcp.kubernetes.io/pre-shared-cert"
ALLOW_HTTP = "kubernetes.io/ingress.allow-http"


class NamespaceType(NamespaceNodeType, GkeNodeType):
    """The environment's namespace (:class:`skyrig_kubernetes.nodes.NamespaceNodeType`), its deletion
    waited for as long as the provider's other deletions."""

    type = "gke.namespace"
    identity = frozenset({"name"})
    timeout_setting = "wait_timeout"

    def inventory(self, context: Context) -> list[str]:
        name = namespace_name(context.app, context.environment.name)
        return [name] if self._read(context, Node(names.NAMESPACE_ID, self.type, "gke"), name) else []


class AddressType(GkeNodeType):
    """A service's global static IP address, which its Ingress's load balancer takes."""

    type = "gke.address"
    identity = frozenset({"name"})
    replace_on = frozenset({"name"})

    def _read(self, context: Context, node: Node, provider_id: str) -> Observed | None:
        client = context.client
        found = client.execute(
            client.api("compute").globalAddresses().get(project=client.project, address=provider_id)
        )
        return self.observed(node, provider_id, {"name": provider_id}, {"address": found.get("address")})

    def _find(self, context: Context, node: Node) -> Observed | None:
        return self._read(context, node, node.properties["name"])

    def _create(self, context: Context, node: Node) -> Observed:
        from skyrig.provider import wait_for

        client = context.client
        name = node.properties["name"]
        body = {
            "name": name,
            "description": f"skyrig {context.app}/{context.environment.name} {node.id}",
            "labels": self.labels(context, node),
        }
        client.execute(client.api("compute").globalAddresses().insert(project=client.project, body=body))

        def ready() -> tuple[bool, str]:
            found = self._find(context, node)
            return bool(found and found.outputs.get("address")), "reserving"

        wait_for(context, f"static address {name}", ready)
        return self._read(context, node, name)  # type: ignore[return-value]

    def _update(self, context: Context, node: Node, provider_id: str, changes: Mapping[str, Any]) -> Observed:
        return self._read(context, node, provider_id)  # type: ignore[return-value]

    def _delete(self, context: Context, node: Node, provider_id: str) -> None:
        client = context.client
        client.execute(
            client.api("compute").globalAddresses().delete(project=client.project, address=provider_id)
        )

    def inventory(self, context: Context) -> list[str]:
        client = context.client
        listed = client.execute(client.api("compute").globalAddresses().list(project=client.project))
        return sorted(a["name"] for a in listed.get("items", []) if self.owned(context, a.get("labels")))


IMAGE = "app"
"""The image's name in the GCP provider's repository, where no image is given."""


def default_image(context: Context) -> str:
    """The image of a service deployed without one: ``app:latest`` of the environment's Artifact Registry
    repository, which the GCP provider keeps (named ``APP-ENV``, as its own Cloud Run services use it)."""
    client = context.client
    repository = join_name(context.app, context.environment.name, limit=63)
    return f"{client.region}-docker.pkg.dev/{client.project}/{repository}/{IMAGE}:latest"


def migration(context: Context, wanted: Mapping[str, Any]) -> Migration:
    """The migrations of one of the service's databases on the GCP provider, as a Kubernetes Job runs them:
    the command and environment of the Cloud Run job it keeps for them (``APP-ENV-migrate-DATABASE``), in
    the service's image and as its Google service account."""
    job = context.client.migration_job(wanted["job"])
    container = job.template.template.containers[0]
    return Migration(
        database=wanted["database"],
        command=tuple(container.command),
        environment={variable.name: variable.value for variable in container.env},
        migrations=tuple(json.dumps(m, sort_keys=True) for m in wanted["migrations"]),
    )


def workload(
    context: Context, node: Node, image: str, config: Mapping[str, Any], account: str | None
) -> Workload:
    """The service of ``node`` as :mod:`skyrig_kubernetes.workloads` takes it."""
    p = node.properties
    routed = None
    if p["host"]:
        annotations = {STATIC_IP: p["address"]}
        if p["certificate"]:
            annotations |= {PRE_SHARED_CERT: p["certificate"], ALLOW_HTTP: "false"}
        routed = Ingress(p["host"], INGRESS_CLASS, annotations)
    return Workload(
        app=context.app,
        environment=context.environment.name,
        service=p["service"],
        service_app=p["app"],
        image=image,
        port=p["port"],
        runtime_config=config,
        environment_variables={"GOOGLE_CLOUD_PROJECT": context.client.project},
        cpu=p["cpu"],
        memory=p["memory"],
        min_replicas=p["min_replicas"],
        max_replicas=p["max_replicas"],
        account_annotations={ACCOUNT_ANNOTATION: account} if account else {},
        ingress=routed,
    )


class ServiceType(ServiceNodeType, GkeNodeType):
    """A service's objects on the cluster (:class:`skyrig_kubernetes.nodes.ServiceNodeType`), bound to its
    Google service account, its migrations the Cloud Run jobs' commands."""

    type = "gke.service"
    identity = frozenset({"service"})

    def _url(self, context: Context, node: Node) -> str:
        p = node.properties
        if p["host"]:
            return f"{'https' if p['certificate'] else 'http'}://{p['host']}"
        space, name = self.names(context, node)
        return f"http://{name}.{space}.svc.cluster.local"

    def workload(
        self, context: Context, node: Node, config: Mapping[str, Any], live: Mapping[str, Any] | None
    ) -> Workload:
        p = node.properties
        image = p["image"] or (drift.observe(live)["image"] if live else default_image(context))
        return workload(context, node, image, config, iam.account_of(context, p["service"]))

    def migration(self, context: Context, wanted: Mapping[str, Any]) -> Migration:
        return migration(context, wanted)

    def observe(self, context: Context, node: Node, live: Mapping[str, Any]) -> Observed:
        space, name = self.names(context, node)
        account = context.client.kubernetes().get("v1", "ServiceAccount", space, name) or {}
        found = drift.observe(live)
        p = node.properties
        properties = {
            "service": p["service"],
            "image": found["image"] if p["image"] else None,
            "cpu": found["cpu"],
            "memory": found["memory"],
            "replicas": found["replicas"] if p["replicas"] is not None else None,
            "security": found["security"],
            "account": ((account.get("metadata") or {}).get("annotations") or {}).get(ACCOUNT_ANNOTATION),
        }
        outputs = {"url": self._url(context, node), "namespace": space, "name": name}
        return self.observed(node, f"{space}/{name}", properties, outputs)


def manifests(context: Context, nodes: list[Node], configs: Mapping[str, Mapping[str, Any]]) -> str:
    """The namespace and every object of the service nodes among ``nodes``, as one YAML stream, each
    service with its runtime config from ``configs`` (``{}`` for one not applied yet) and bound to its
    Google service account where it exists already."""
    from skyrig_kubernetes.manifests import environment_manifests

    workloads = []
    for node in sorted((n for n in nodes if n.type == SERVICE.type), key=lambda n: n.id):
        p = node.properties
        account = iam.known_account(context, p["service"])
        image = p["image"] or default_image(context)
        workloads.append(workload(context, node, image, configs.get(p["service"], {}), account))
    return environment_manifests(context.app, context.environment.name, workloads)


NAMESPACE = NamespaceType()
ADDRESS = AddressType()
SERVICE = ServiceType()
TYPES = (NAMESPACE, ADDRESS, SERVICE)


def security() -> dict[str, Any]:
    """The security settings every service's container runs with (what :func:`drift.security` reads)."""
    return drift.security(deployment(Workload("a", "e", "s", "m:a", "i")))


def expand(scope: Scope) -> list[Node]:
    """The namespace, and per service its (static address and) objects, after its Workload Identity
    binding, the resources it uses and, where GCP migrates them, its databases' migrations."""
    services = scope.of_kind("service")
    if not services:
        return []
    settings = scope.settings
    app, env = scope.app, scope.environment.name
    plane = cluster.control_plane(scope)
    nodes = [scope.node(names.NAMESPACE_ID, NAMESPACE.type, {"name": namespace_name(app, env)}, tuple(plane))]
    migrated = scope.environment.provider_for("sql") == "gcp"
    domain, certificate = names.domain(scope.environment, settings)
    for record in sorted(services, key=lambda s: s.name):
        name = record.name
        uses = {f"@{u.kind}/{u.resource}" for u in scope.model.uses_by(name) if u.kind != "service"}
        owned = {
            f"@{r.kind}/{r.name}"
            for kind in RESOURCE_KINDS
            if kind != "cron_job"
            for r in scope.model.of_kind(kind)
            if r.service == name
        }
        databases = {u.resource for u in scope.model.uses_by(name) if u.kind == "sql_database"}
        owned_databases = sorted(
            (d for d in scope.model.of_kind("sql_database") if d.service == name), key=lambda d: d.name
        )
        databases |= {d.name for d in owned_databases}
        depends = {names.NAMESPACE_ID, names.binding_id(name), *plane, *uses, *owned}
        if migrated:
            depends |= {names.migration_node(d) for d in databases}
        host = f"{name}.{domain}" if domain else None
        if host:
            nodes.append(
                scope.node(
                    names.address_id(name),
                    ADDRESS.type,
                    {"name": names.address(app, env, name)},
                    (names.PROJECT_NODE,),
                )
            )
            depends.add(names.address_id(name))
        fewest = settings.fewest_replicas(scope.environment.type)
        replicas = fewest if fewest == settings.max_replicas else None
        properties = {
            "service": name,
            "app": record.app,
            "image": settings.image,
            "port": settings.service_port,
            "cpu": settings.service_cpu,
            "memory": settings.service_memory,
            "min_replicas": fewest,
            "max_replicas": settings.max_replicas,
            "replicas": replicas,
            "security": security(),
            "host": host,
            "address": names.address(app, env, name) if host else None,
            "certificate": certificate if host else None,
        }
        if migrated:  # the owned databases' migrations, a Kubernetes Job each, before the Deployment
            properties["migrations"] = [
                {
                    "database": database.name,
                    "job": join_name(app, env, "migrate", database.name, limit=63),
                    "migrations": plan_of(database)[0],
                }
                for database in owned_databases
            ]
        nodes.append(
            scope.node(
                names.service_id(name), SERVICE.type, properties, tuple(sorted(depends)), resource=record
            )
        )
    return nodes
