"""Compute: an Artifact Registry Docker repository per environment, and a Cloud Run service (v2) per
service, running as the service's own service account, with Direct VPC egress to the environment's
subnet where Cloud SQL or Memorystore are (private IPs only).

The image is the ``image`` setting, which the core sets for each command (``skyrig.engine.images``):
``--image``, else the setting when configuration sets one, else the image the services run now (their
records in state), else none, and then the repository's ``app:latest``. Each service's node carries it
as its ``image`` property, so the image deployed is part of what was applied and a plan without
``--image`` keeps it. CPU, memory and the most instances are tunable: changed in the console, they are
adopted. Ingress and the VPC egress are invariants.

A database's migrations run as a Cloud Run job (:func:`names.migrate_job_name`, of the same image, under
the owning service's account, made from :func:`skyrig_gcp.sql.migration_job`) after the database is made
and before the services that use it roll out, and again whenever the migrations change.

When another provider runs the services (``compute = "gke"``), this family still keeps the repository and
each database's migration job (node ``compute.migration/DATABASE``, which that provider's services depend
on), in the image that provider's ``image`` setting names (the core sets it for each command), but does not
run it: that provider runs the job's command and environment itself (GKE: as a Kubernetes Job, in the
environment's VPC, where Cloud SQL's private address is reached), before its service rolls out. Read back,
such a job holds the migrations its environment names.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from skyrig.provider import RESOURCE_KINDS, Context, Node, Observed, Scope
from skyrig_gcp import delivery, iam, names, network
from skyrig_gcp.api import wait_operation
from skyrig_gcp.nodes import GcpNodeType, NamedNodeType

IMAGE = "app"
"""The image's name in the environment's repository, where no image is given."""


def image(context: Context) -> str:
    """The services' image: the ``image`` setting (as the core set it for this command), else the
    environment's repository's ``app:latest``."""
    if context.settings.image:
        return context.settings.image
    client = context.client
    repository = names.repository_name(context.app, context.environment.name)
    return f"{client.region}-docker.pkg.dev/{client.project}/{repository}/{IMAGE}:latest"


def _to_dict(message: Any) -> dict[str, Any]:
    """A proto-plus message of a dedicated library as JSON (snake_case fields, enums by name)."""
    return type(message).to_dict(message, use_integers_for_enums=False, preserving_proto_field_name=True)


class RepositoryType(GcpNodeType):
    """The Artifact Registry repository (Docker) of the environment's images."""

    type = "gcp.compute.repository"
    identity = frozenset({"name"})
    replace_on = frozenset({"name", "format"})

    def _observe(self, node: Node, repository: Any) -> Observed:
        found = _to_dict(repository)
        name = found["name"].rpartition("/")[2]
        return self.observed(
            node,
            name,
            {"name": name, "format": found.get("format_") or found.get("format")},
            {"uri": found.get("registry_uri")},
        )

    def _read(self, context: Context, node: Node, provider_id: str) -> Observed | None:
        client = context.client
        repository = client.library("artifactregistry").get_repository(
            name=f"{client.location()}/repositories/{provider_id}"
        )
        return self._observe(node, repository)

    def _find(self, context: Context, node: Node) -> Observed | None:
        return self._read(context, node, node.properties["name"])

    def _create(self, context: Context, node: Node) -> Observed:
        client = context.client
        operation = client.library("artifactregistry").create_repository(
            request={
                "parent": client.location(),
                "repository_id": node.properties["name"],
                "repository": {
                    "format_": node.properties["format"],
                    "description": f"skyrig {context.app}/{context.environment.name}: the services' images",
                    "labels": self.labels(context, node),
                },
            }
        )
        wait_operation(context, f"Artifact Registry repository {node.properties['name']}", operation)
        return self._read(context, node, node.properties["name"])  # type: ignore[return-value]

    def _update(self, context: Context, node: Node, provider_id: str, changes: Mapping[str, Any]) -> Observed:
        return self._read(context, node, provider_id)  # type: ignore[return-value]

    def _delete(self, context: Context, node: Node, provider_id: str) -> None:
        client = context.client
        operation = client.library("artifactregistry").delete_repository(
            name=f"{client.location()}/repositories/{provider_id}"
        )
        wait_operation(context, f"deleting Artifact Registry repository {provider_id}", operation)

    def inventory(self, context: Context) -> list[str]:
        client = context.client
        listed = client.library("artifactregistry").list_repositories(parent=client.location())
        return sorted(r.name.rpartition("/")[2] for r in listed if self.owned(context, dict(r.labels)))


class ServiceType(NamedNodeType):
    """A service: its Cloud Run service, under its own service account, serving the service host."""

    type = "gcp.compute.service"
    identity = frozenset({"name"})
    tunable = frozenset({"cpu", "memory", "max_instances"})
    replace_on = frozenset({"name"})
    invariant = frozenset({"ingress", "vpc", "account"})

    def _full_name(self, context: Context, provider_id: str) -> str:
        return f"{context.client.location()}/services/{provider_id}"

    def _observe(self, node: Node, service: Any) -> Observed:
        found = _to_dict(service)
        template = found.get("template") or {}
        container = (template.get("containers") or [{}])[0]
        limits = (container.get("resources") or {}).get("limits") or {}
        interfaces = (template.get("vpc_access") or {}).get("network_interfaces") or []
        vpc = (
            {"network": interfaces[0].get("network"), "subnetwork": interfaces[0].get("subnetwork")}
            if interfaces
            else None
        )
        name = found["name"].rpartition("/")[2]
        properties = {
            "name": name,
            "image": container.get("image") if node.properties.get("image") else None,
            "cpu": limits.get("cpu"),
            "memory": limits.get("memory"),
            "max_instances": (template.get("scaling") or {}).get("max_instance_count"),
            "ingress": found.get("ingress"),
            "account": template.get("service_account"),
            "vpc": vpc,
        }
        outputs = {"url": found.get("uri"), "revision": found.get("latest_ready_revision")}
        return self.observed(node, name, properties, outputs)

    def _read(self, context: Context, node: Node, provider_id: str) -> Observed | None:
        service = context.client.library("run.services").get_service(
            name=self._full_name(context, provider_id)
        )
        return self._observe(node, service)

    def _read_many(self, context: Context, nodes: list[tuple[Node, str]]) -> dict[str, Observed | None]:
        client = context.client
        listed = {
            s.name.rpartition("/")[2]: s
            for s in client.library("run.services").list_services(parent=client.location())
        }
        return {n.id: self._observe(n, listed[pid]) if pid in listed else None for n, pid in nodes}

    def _template(self, context: Context, node: Node, cpu: str, memory: str, most: int) -> dict[str, Any]:
        p = node.properties
        environment = {
            "SKYRIG_APP": context.app,
            "SKYRIG_ENVIRONMENT": context.environment.name,
            "SKYRIG_SERVICE": p["service"],
            "SKYRIG_SERVICE_APP": p["app"],
            "GOOGLE_CLOUD_PROJECT": context.client.project,
            # the runtime config, written by delivery after each apply (a placeholder until then)
            delivery.VARIABLE: delivery.PLACEHOLDER,
        }
        template: dict[str, Any] = {
            "service_account": p["account"],
            "scaling": {"max_instance_count": most},
            "containers": [
                {
                    "name": p["service"],
                    "image": p["image"] or image(context),
                    "command": [
                        "uvicorn",
                        "--factory",
                        "skyrig.runtime.host:create",
                        "--host",
                        "0.0.0.0",
                        "--port",
                        str(p["port"]),
                    ],
                    "ports": [{"name": "http1", "container_port": p["port"]}],
                    "env": [{"name": k, "value": v} for k, v in sorted(environment.items())],
                    "resources": {"limits": {"cpu": cpu, "memory": memory}},
                }
            ],
        }
        if p["vpc"]:
            template["vpc_access"] = {"network_interfaces": [p["vpc"]], "egress": "PRIVATE_RANGES_ONLY"}
        return template

    def _create(self, context: Context, node: Node) -> Observed:
        p = node.properties
        client = context.client
        operation = client.library("run.services").create_service(
            request={
                "parent": client.location(),
                "service_id": p["name"],
                "service": {
                    "description": f"skyrig {context.app}/{context.environment.name} service {p['service']}",
                    "labels": self.labels(context, node),
                    "ingress": p["ingress"],
                    "template": self._template(context, node, p["cpu"], p["memory"], p["max_instances"]),
                },
            }
        )
        wait_operation(context, f"Cloud Run service {p['name']}", operation)
        return self._read(context, node, p["name"])  # type: ignore[return-value]

    def _update(self, context: Context, node: Node, provider_id: str, changes: Mapping[str, Any]) -> Observed:
        from google.cloud import run_v2

        p = node.properties
        services = context.client.library("run.services")
        current = services.get_service(name=self._full_name(context, provider_id))
        now = _to_dict(current)
        template = now.get("template") or {}
        container = (template.get("containers") or [{}])[0]
        limits = (container.get("resources") or {}).get("limits") or {}
        # what changed in the console and is not changed in code stays as it is there
        wanted = self._template(
            context,
            node,
            changes.get("cpu", limits.get("cpu") or p["cpu"]),
            changes.get("memory", limits.get("memory") or p["memory"]),
            changes.get("max_instances", (template.get("scaling") or {}).get("max_instance_count"))
            or p["max_instances"],
        )
        kept = {e["name"]: e.get("value") for e in container.get("env", [])}
        for variable in wanted["containers"][0]["env"]:
            if variable["name"] == delivery.VARIABLE and kept.get(delivery.VARIABLE):
                variable["value"] = kept[delivery.VARIABLE]  # the config delivered last stays
        if not p["image"] and container.get("image"):
            wanted["containers"][0]["image"] = container["image"]  # no image asked: keep what runs
        service = run_v2.Service(
            name=current.name,
            description=current.description,
            labels=self.labels(context, node),
            ingress=p["ingress"],
            template=wanted,
            etag=current.etag,
        )
        operation = services.update_service(service=service)
        wait_operation(context, f"Cloud Run service {provider_id}", operation)
        return self._read(context, node, provider_id)  # type: ignore[return-value]

    def _delete(self, context: Context, node: Node, provider_id: str) -> None:
        operation = context.client.library("run.services").delete_service(
            name=self._full_name(context, provider_id)
        )
        wait_operation(context, f"deleting Cloud Run service {provider_id}", operation)

    def runtime_entry(self, node: Node, observed: Observed) -> dict[str, Any] | None:
        return {"type": self.type, "url": observed.outputs.get("url")}

    def inventory(self, context: Context) -> list[str]:
        client = context.client
        listed = client.library("run.services").list_services(parent=client.location())
        return sorted(s.name.rpartition("/")[2] for s in listed if self.owned(context, dict(s.labels)))


class CloudRunJobType(NamedNodeType):
    """A Cloud Run job skyrig makes (a database's migrations, a service's cron trigger): subclasses say what
    the job is (``_job``) and how it reads back (``_observe``), and may run it after each change
    (``_after_change``); the job is found by its name, refreshed with one list call, and listed by its
    ``skyrig-node`` label's ``label_prefix``."""

    identity = frozenset({"name"})
    replace_on = frozenset({"name"})
    label_prefix = ""
    keeps_image = False
    """Whether an update without an image asked keeps the image the job runs (else: the services' image)."""

    def _full_name(self, context: Context, provider_id: str) -> str:
        return f"{context.client.location()}/jobs/{provider_id}"

    def _observe(self, node: Node, job: Any) -> Observed:
        raise NotImplementedError

    def _job(self, context: Context, node: Node) -> dict[str, Any]:
        raise NotImplementedError

    def _after_change(self, context: Context, node: Node) -> None:
        """What follows a create or an update of the job (nothing by default)."""

    def _read(self, context: Context, node: Node, provider_id: str) -> Observed | None:
        job = context.client.library("run.jobs").get_job(name=self._full_name(context, provider_id))
        return self._observe(node, job)

    def _read_many(self, context: Context, nodes: list[tuple[Node, str]]) -> dict[str, Observed | None]:
        client = context.client
        listed = {
            j.name.rpartition("/")[2]: j
            for j in client.library("run.jobs").list_jobs(parent=client.location())
        }
        return {n.id: self._observe(n, listed[pid]) if pid in listed else None for n, pid in nodes}

    def _create(self, context: Context, node: Node) -> Observed:
        client = context.client
        operation = client.library("run.jobs").create_job(
            request={
                "parent": client.location(),
                "job_id": node.properties["name"],
                "job": self._job(context, node),
            }
        )
        wait_operation(context, f"Cloud Run job {node.properties['name']}", operation)
        self._after_change(context, node)
        return self._read(context, node, node.properties["name"])  # type: ignore[return-value]

    def _update(self, context: Context, node: Node, provider_id: str, changes: Mapping[str, Any]) -> Observed:
        from google.cloud import run_v2

        jobs = context.client.library("run.jobs")
        current = jobs.get_job(name=self._full_name(context, provider_id))
        wanted = self._job(context, node)
        if self.keeps_image and not node.properties["image"]:  # no image asked: keep what it runs
            running = current.template.template.containers[0].image
            wanted["template"]["template"]["containers"][0]["image"] = running
        job = run_v2.Job(name=current.name, etag=current.etag, **wanted)
        wait_operation(context, f"Cloud Run job {provider_id}", jobs.update_job(job=job))
        self._after_change(context, node)
        return self._read(context, node, provider_id)  # type: ignore[return-value]

    def _delete(self, context: Context, node: Node, provider_id: str) -> None:
        operation = context.client.library("run.jobs").delete_job(name=self._full_name(context, provider_id))
        wait_operation(context, f"deleting Cloud Run job {provider_id}", operation)

    def inventory(self, context: Context) -> list[str]:
        client = context.client
        found = []
        for job in client.library("run.jobs").list_jobs(parent=client.location()):
            labels = dict(job.labels)
            if self.owned(context, labels) and labels.get("skyrig-node", "").startswith(self.label_prefix):
                found.append(job.name.rpartition("/")[2])
        return sorted(found)


class MigrationType(CloudRunJobType):
    """A database's migrations: a Cloud Run job of the services' image, under the owning service's account,
    run (and waited for) when it is made and whenever the migrations change, before the services roll
    out. Read back as the migrations of its latest run, when that run succeeded after the job's last
    change (none otherwise, so that the next apply runs it again). With ``runs`` false (another provider
    runs its command), it is only made and kept, and read back as the migrations it names."""

    type = "gcp.compute.migration"
    invariant = frozenset({"migrations"})
    label_prefix = "compute_migration_"

    def _observe(self, node: Node, job: Any) -> Observed:
        found = _to_dict(job)
        task = (found.get("template") or {}).get("template") or {}
        container = (task.get("containers") or [{}])[0]
        variables = {e["name"]: e.get("value") for e in container.get("env", [])}
        latest = job.latest_created_execution
        ran = not node.properties.get("runs", True) or (
            latest.completion_status.name == "EXECUTION_SUCCEEDED"
            and job.update_time is not None
            and latest.create_time is not None
            and latest.create_time >= job.update_time
        )
        name = found["name"].rpartition("/")[2]
        properties = {
            "name": name,
            "image": container.get("image") if node.properties.get("image") else None,
            "account": task.get("service_account"),
            "migrations": json.loads(variables.get("SKYRIG_MIGRATIONS") or "[]") if ran else None,
        }
        return self.observed(node, name, properties, {"job": found["name"]})

    def _job(self, context: Context, node: Node) -> dict[str, Any]:
        p = node.properties
        task: dict[str, Any] = {
            "service_account": p["account"],
            "max_retries": 0,
            "timeout": "1800s",
            "containers": [
                {
                    "name": "migrate",
                    "image": p["image"] or image(context),
                    "command": list(p["command"]),
                    "env": [{"name": k, "value": v} for k, v in sorted(p["environment"].items())],
                }
            ],
        }
        if p["vpc"]:
            task["vpc_access"] = {"network_interfaces": [p["vpc"]], "egress": "PRIVATE_RANGES_ONLY"}
        return {"labels": self.labels(context, node), "template": {"task_count": 1, "template": task}}

    def _after_change(self, context: Context, node: Node) -> None:
        """Run the migrations, and wait for them (unless another provider runs them: ``runs`` false)."""
        if not node.properties.get("runs", True):
            return
        jobs = context.client.library("run.jobs")
        name = self._full_name(context, node.properties["name"])
        wait_operation(
            context, f"the migrations of database {node.properties['database']}", jobs.run_job(name=name)
        )


REPOSITORY = RepositoryType()
SERVICE = ServiceType()
MIGRATION = MigrationType()
TYPES = (REPOSITORY, SERVICE, MIGRATION)


def migration_id(database: str) -> str:
    """The node id of ``database``'s migration job."""
    return f"compute.migration/{database}"


def services_image(scope: Scope) -> str | None:
    """The image of this command's services: this provider's ``image`` setting, or, when another provider
    runs the services, that provider's (the core sets the compute provider's ``image`` for each command:
    ``--image``, the setting, else the image applied last)."""
    if scope.settings.image or not iam.handed_over(scope):
        return scope.settings.image
    compute = scope.environment.settings.get(scope.environment.provider_for("compute"))
    return getattr(compute, "image", None)


def migrations(scope: Scope) -> list[Node]:
    """A migration job per database whose service runs here, or whose identity is kept here (the sql
    family says what it runs)."""
    from skyrig_gcp import sql

    services = set(iam.account_services(scope))
    nodes = []
    for database in sorted(scope.of_kind("sql_database"), key=lambda d: d.name):
        if database.service not in services:
            continue
        job = sql.migration_job(scope, database)
        depends = {
            job["after"],
            names.REPOSITORY_ID,
            names.service_account_id(database.service),
            *(iam.binding_id(database.service, g["target"]) for g in iam.grants(scope, database.service)),
        }
        vpc = service_vpc(scope)
        if vpc:
            depends.add(network.SUBNET_ID)
        properties: dict[str, Any] = {
            "name": job["name"],
            "database": database.name,
            "image": services_image(scope),
            "account": iam.account_email(scope, database.service),
            "command": job["command"],
            "environment": job["environment"],
            "migrations": job["migrations"],
            "vpc": vpc,
        }
        if iam.handed_over(scope):  # the compute provider runs the job's command (GKE: a Kubernetes Job)
            properties["runs"] = False
        nodes.append(
            scope.node(migration_id(database.name), MIGRATION.type, properties, tuple(sorted(depends)))
        )
    return nodes


def service_vpc(scope: Scope) -> dict[str, str] | None:
    """Direct VPC egress to the environment's subnet, where Cloud SQL or Memorystore need it."""
    if not (scope.of_kind("sql_database") or scope.of_kind("cache_cluster")):
        return None
    app, env = scope.app, scope.environment.name
    project = scope.settings.project or names.project_id(app, env)
    return {
        "network": f"projects/{project}/global/networks/{names.network_name(app, env)}",
        "subnetwork": (
            f"projects/{project}/regions/{scope.settings.region}/subnetworks/{names.subnet_name(app, env)}"
        ),
    }


def expand(scope: Scope) -> list[Node]:
    """The repository, a Cloud Run service per service and the migration jobs; only the repository and the
    migration jobs when another provider runs the services."""
    services = scope.of_kind("service")
    if not services and not iam.handed_over(scope):
        return []
    settings = scope.settings
    app, env = scope.app, scope.environment.name
    vpc = service_vpc(scope)
    migrated = migrations(scope)
    nodes = [
        scope.node(
            names.REPOSITORY_ID,
            REPOSITORY.type,
            {"name": names.repository_name(app, env), "format": "DOCKER"},
            (names.PROJECT_ID,),
        )
    ]
    databases = {node.properties["database"] for node in migrated}
    for service in sorted(services, key=lambda s: s.name):
        uses = {f"@{u.kind}/{u.resource}" for u in scope.model.uses_by(service.name) if u.kind in scope.kinds}
        wanted = {u.resource for u in scope.model.uses_by(service.name) if u.kind == "sql_database"}
        wanted |= {d.name for d in scope.of_kind("sql_database") if d.service == service.name}
        owned = {
            f"@{r.kind}/{r.name}"
            for kind in RESOURCE_KINDS
            if kind != "cron_job"
            for r in scope.of_kind(kind)
            if r.service == service.name
        }
        bindings = {iam.binding_id(service.name, g["target"]) for g in iam.grants(scope, service.name)}
        depends = {
            names.PROJECT_ID,
            names.REPOSITORY_ID,
            names.service_account_id(service.name),
            *bindings,
            *uses,
            *owned,
        }
        if vpc:
            depends.add(network.SUBNET_ID)
        depends |= {migration_id(database) for database in wanted & databases}  # migrated first
        properties = {
            "name": names.run_service_name(app, env, service.name),
            "service": service.name,
            "app": service.app,
            "image": settings.image,
            "cpu": settings.service_cpu,
            "memory": settings.service_memory,
            "max_instances": settings.service_max_instances,
            "port": settings.service_port,
            "ingress": "INGRESS_TRAFFIC_ALL",
            "account": iam.account_email(scope, service.name),
            "vpc": vpc,
        }
        nodes.append(
            scope.node(
                f"compute.service/{service.name}",
                SERVICE.type,
                properties,
                tuple(sorted(depends)),
                resource=service,
            )
        )
    return nodes + migrated
