"""Compute: each service as the shared Kubernetes objects (:mod:`skyrig_kubernetes.workloads`) in the
environment's namespace, its ServiceAccount bound to its IRSA role, routed by an ``alb`` Ingress (the AWS
Load Balancer Controller: internet-facing, IP targets, one load balancer for the environment's services,
HTTPS with HTTP redirected when a certificate is given), applied with server-side apply and waited for
(:func:`skyrig_kubernetes.deploy.deploy`).

The image is the ``image`` setting, which the core sets for each command (``--image``, the setting, the
image the services run; ``skyrig.engine.images``), else the aws provider's ECR repository's ``latest``
when it has one. The runtime config is the service's ConfigMap, which :func:`deliver` writes after each
apply (rolling the pods whose config changed); a service's node deploys with the config its ConfigMap
holds, so its pods' config checksum stays the delivered one. The migrations of the databases a service owns
on the aws provider run first, as Jobs (the command of the task definition aws registers for them).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from skyrig.provider import (
    Context,
    Node,
    NotFound,
    Observed,
    ProviderError,
    Scope,
    join_name,
    plan_of,
)
from skyrig_eks import cluster, iam
from skyrig_kubernetes.nodes import ServiceNodeType

SERVICE_PREFIX = "eks.service/"

ALB = "alb.ingress.kubernetes.io/"
"""The AWS Load Balancer Controller's annotation prefix."""


def routing(environment: Any, settings: Any) -> tuple[str | None, str | None]:
    """The services' ``domain`` and ``certificate_arn``: the eks settings', else the aws provider's of the
    environment, so that the URLs aws's cron calls are the ones the load balancer routes."""
    cloud = environment.settings.get("aws")
    domain = settings.domain if settings.domain is not None else getattr(cloud, "domain", None)
    certificate = settings.certificate_arn
    if certificate is None:
        certificate = getattr(cloud, "certificate_arn", None)
    return domain, certificate


def service_host(scope: Scope, service: str) -> str:
    """``SERVICE.DOMAIN``: the host the load balancer routes to ``service`` (by default on the domain
    ``APP-ENV.internal``, as on ECS)."""
    domain, _ = routing(scope.environment, scope.settings)
    return f"{service}.{domain or join_name(scope.app, scope.environment.name) + '.internal'}"


def service_url(scope: Scope, service: str) -> str:
    """``service``'s URL behind the load balancer, as the aws provider's own compute gives it."""
    _, certificate = routing(scope.environment, scope.settings)
    return f"{'https' if certificate else 'http'}://{service_host(scope, service)}"


def ingress_annotations(certificate: str | None, namespace: str) -> dict[str, str]:
    """The AWS Load Balancer Controller's annotations of a service's Ingress: an internet-facing load
    balancer shared by the environment's services (group ``namespace``), IP targets (pods, as on
    Fargate), any answer below 500 counted healthy (as the ECS target groups), HTTPS with the
    ``certificate`` and HTTP redirected to it when there is one."""
    found = {
        f"{ALB}scheme": "internet-facing",
        f"{ALB}target-type": "ip",
        f"{ALB}group.name": namespace,
        f"{ALB}success-codes": "200-499",
    }
    if certificate:
        found[f"{ALB}certificate-arn"] = certificate
        found[f"{ALB}listen-ports"] = json.dumps([{"HTTP": 80}, {"HTTPS": 443}], separators=(",", ":"))
        found[f"{ALB}ssl-redirect"] = "443"
    else:
        found[f"{ALB}listen-ports"] = json.dumps([{"HTTP": 80}], separators=(",", ":"))
    return found


def default_image(context: Context) -> str:
    """The aws provider's ECR repository's ``latest``, when it has one (EKS makes none)."""
    client = context.client
    name = join_name(context.app, context.environment.name, limit=256)
    try:
        found = client.ecr.describe_repositories(repositoryNames=[name])["repositories"]
    except (NotFound, ProviderError):
        found = []
    if not found:
        raise ProviderError(
            "no image to run: deploy with --image REPO:TAG (or set image in "
            f"[env.{context.environment.name}.eks]); the aws provider has no ECR repository in this "
            "environment"
        )
    return f"{found[0]['repositoryUri']}:latest"


def workload(context: Context, node: Node, runtime_config: Mapping[str, Any]) -> Any:
    """The service of ``node`` as a :class:`skyrig_kubernetes.workloads.Workload`."""
    from skyrig_kubernetes.workloads import Ingress, Workload, namespace_name

    p = node.properties
    settings = context.settings
    region = context.client.where.region
    namespace = namespace_name(context.app, context.environment.name)
    arn = iam.role_arn(
        context, iam.role_name(context.app, context.environment.name, f"service-{p['service']}")
    )
    return Workload(
        app=context.app,
        environment=context.environment.name,
        service=p["service"],
        service_app=p["app"],
        image=p["image"] or default_image(context),
        port=p["port"],
        runtime_config=runtime_config,
        environment_variables={"AWS_REGION": region, "AWS_DEFAULT_REGION": region},
        cpu=p["cpu"],
        memory=p["memory"],
        min_replicas=p["min_replicas"],
        max_replicas=p["max_replicas"],
        account_annotations={iam.ROLE_ARN_ANNOTATION: arn},
        ingress=Ingress(
            host=p["host"],
            class_name="alb",
            annotations=ingress_annotations(routing(context.environment, settings)[1], namespace),
        ),
    )


def migration(context: Context, wanted: Mapping[str, Any]) -> Any:
    """The migrations of one of the service's databases on the aws provider, as a Job runs them: the
    command and environment of the ECS task definition aws registered for them (``compute.aws_vpc``:
    its family is ``APP-ENV-migrate-DATABASE``), in the service's image and with its identity."""
    from skyrig_kubernetes.workloads import Migration

    task = context.client.ecs.describe_task_definition(taskDefinition=wanted["family"])["taskDefinition"]
    container = task["containerDefinitions"][0]
    environment = {e["name"]: e["value"] for e in container.get("environment", [])}
    return Migration(
        database=wanted["database"],
        command=tuple(container["command"]),
        environment=environment,
        migrations=tuple(wanted["migrations"]),
    )


class ServiceType(ServiceNodeType):
    """A service's objects on the cluster (:class:`skyrig_kubernetes.nodes.ServiceNodeType`), bound to its
    IRSA role, its migrations the ECS task definitions' commands."""

    type = "eks.service"

    def workload(
        self, context: Context, node: Node, config: Mapping[str, Any], live: Mapping[str, Any] | None
    ) -> Any:
        return workload(context, node, config)

    def migration(self, context: Context, wanted: Mapping[str, Any]) -> Any:
        return migration(context, wanted)

    def observe(self, context: Context, node: Node, live: Mapping[str, Any]) -> Observed:
        from skyrig_kubernetes import drift

        found = drift.observe(live)
        properties: dict[str, Any] = {
            "cpu": found["cpu"],
            "memory": found["memory"],
            "security": found["security"],
            "image": found["image"] if node.properties.get("image") else None,
        }
        if "replicas" in node.properties:
            properties["replicas"] = found["replicas"]
        name = live["metadata"]["name"]
        return self.observed(node, name, properties, {"url": node.properties["url"]})


SERVICE = ServiceType()
TYPES = (SERVICE,)


def expand(scope: Scope) -> list[Node]:
    """A node per service, after its IRSA role, the namespace and what it uses."""
    from skyrig_kubernetes import drift
    from skyrig_kubernetes.workloads import Workload, deployment, namespace_name

    services = scope.of_kind("service")
    settings = scope.settings
    production = scope.environment.type == "production"
    least = settings.min_replicas or (2 if production else 1)
    most = max(settings.max_replicas, least)
    app, env = scope.app, scope.environment.name
    nodes = []
    for service in sorted(services, key=lambda s: s.name):
        # the security settings every pod runs with: the same whatever the image and sizes
        shape = Workload(app, env, service.name, service.app, "image", min_replicas=least, max_replicas=most)
        uses = {f"@{u.kind}/{u.resource}" for u in scope.model.uses_by(service.name)}
        # what it owns exists before it runs (its subscriptions' queues), except its cron jobs, which
        # call it
        owned = {f"@{r.kind}/{r.name}" for r in scope.model.resources if r.service == service.name}
        owned -= {f"@cron_job/{r.name}" for r in scope.model.of_kind("cron_job")}
        properties: dict[str, Any] = {
            "service": service.name,
            "app": service.app,
            "namespace": namespace_name(app, env),
            "image": settings.image,
            "port": settings.service_port,
            "cpu": settings.service_cpu,
            "memory": settings.service_memory,
            "min_replicas": least,
            "max_replicas": most,
            "security": drift.security(deployment(shape)),
            "host": service_host(scope, service.name),
            "url": service_url(scope, service.name),
        }
        if least == most:  # no autoscaler: skyrig sets the count, and adopts one changed on the cluster
            properties["replicas"] = least
        if scope.environment.provider_for("sql") == "aws":
            properties["migrations"] = [
                {
                    "database": database.name,
                    "family": join_name(app, env, "migrate", database.name, limit=255),
                    "migrations": plan_of(database)[0],
                }
                for database in sorted(scope.model.of_kind("sql_database"), key=lambda d: d.name)
                if database.service == service.name
            ]
        depends = {
            iam.role_id(f"service-{service.name}"),
            cluster.NAMESPACE_ID,
            *cluster.capacity(scope),
            *uses,
            *owned,
        }
        nodes.append(
            scope.node(
                f"{SERVICE_PREFIX}{service.name}",
                SERVICE.type,
                properties,
                tuple(sorted(depends)),
                resource=service,
            )
        )
    return nodes


def manifests(context: Context, nodes: list[Node], configs: Mapping[str, Mapping[str, Any]]) -> str:
    """The namespace and every object of the service nodes among ``nodes``, as one YAML stream, with
    each service's runtime config from ``configs`` (``{}`` for one not applied yet)."""
    from skyrig_kubernetes.manifests import environment_manifests

    services = sorted((n for n in nodes if n.type == SERVICE.type), key=lambda n: n.id)
    return environment_manifests(
        context.app,
        context.environment.name,
        [workload(context, node, configs.get(node.properties["service"], {})) for node in services],
    )
