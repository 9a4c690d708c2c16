"""Cron: a Cloud Scheduler job per cron job, a trigger (a Cloud Run job) per service that owns cron jobs,
and a signing key per environment in Secret Manager.

Where another provider runs the services (``compute = "gke"``), the trigger runs in the image that provider
runs (its ``image`` setting, as the core sets it) under the service's account, and calls the service at
``SERVICE.DOMAIN`` (the ``domain`` setting, which that provider routes; HTTPS with ``certificate``).

On schedule, Cloud Scheduler runs the service's trigger job (the Cloud Run Admin API's ``jobs.run``, with
an OAuth token of the scheduler's service account, which may run exactly those jobs), passing the job and
the service's URL as arguments; the trigger (:mod:`skyrig_gcp.runtime.cron`) reads the signing key from
Secret Manager and sends the signed ``POST /__skyrig/cron/JOB`` to the service, which accepts it only with
a valid signature. The key is random, made here, and never leaves Secret Manager (not in state, plans or
logs).
"""

from __future__ import annotations

import json
import secrets as random
from collections.abc import Mapping
from typing import Any

from skyrig.provider import Context, Node, Observed, Scope, duration_seconds
from skyrig_gcp import compute, iam, names
from skyrig_gcp.nodes import GcpNodeType, NamedNodeType

RUN_API = "https://run.googleapis.com/v2"
SCOPE = "https://www.googleapis.com/auth/cloud-platform"


def schedule(cron: str | None, every: str | None) -> str:
    """Cloud Scheduler's unix-cron schedule (UTC) for a five-field cron schedule or an interval (an
    interval that does not divide an hour or a day runs at the nearest step that does)."""
    if every is None:
        return cron or ""
    minutes = max(1, duration_seconds(every) // 60)
    if minutes < 60:
        return f"*/{minutes} * * * *"
    hours = minutes // 60
    if hours < 24:
        return "0 * * * *" if hours == 1 else f"0 */{hours} * * *"
    days = hours // 24
    return "0 0 * * *" if days == 1 else f"0 0 */{days} * *"


def _to_dict(message: Any) -> dict[str, Any]:
    return type(message).to_dict(message, use_integers_for_enums=False, preserving_proto_field_name=True)


class SigningKeyType(GcpNodeType):
    """The environment's cron signing key: a Secret Manager secret with a random value made here."""

    type = "gcp.cron.signing_key"
    identity = frozenset({"name"})
    replace_on = frozenset({"name"})
    invariant = frozenset({"has_value"})

    def _name(self, context: Context, secret: str) -> str:
        return f"projects/{context.client.project}/secrets/{secret}"

    def _read(self, context: Context, node: Node, provider_id: str) -> Observed | None:
        manager = context.client.library("secretmanager")
        secret = manager.get_secret(name=self._name(context, provider_id))
        versions = manager.list_secret_versions(
            request={"parent": secret.name, "filter": "state:ENABLED", "page_size": 1}
        )
        has_value = any(True for _ in versions)
        return self.observed(
            node, provider_id, {"name": provider_id, "has_value": has_value}, {"secret": secret.name}
        )

    def _find(self, context: Context, node: Node) -> Observed | None:
        return self._read(context, node, node.properties["name"])

    def _add_value(self, context: Context, provider_id: str) -> None:
        context.client.library("secretmanager").add_secret_version(
            request={
                "parent": self._name(context, provider_id),
                "payload": {"data": random.token_hex(32).encode()},
            }
        )

    def _create(self, context: Context, node: Node) -> Observed:
        name = node.properties["name"]
        context.client.library("secretmanager").create_secret(
            request={
                "parent": f"projects/{context.client.project}",
                "secret_id": name,
                "secret": {"replication": {"automatic": {}}, "labels": self.labels(context, node)},
            }
        )
        self._add_value(context, name)
        return self._read(context, node, name)  # type: ignore[return-value]

    def _update(self, context: Context, node: Node, provider_id: str, changes: Mapping[str, Any]) -> Observed:
        if changes.get("has_value"):
            self._add_value(context, provider_id)
        return self._read(context, node, provider_id)  # type: ignore[return-value]

    def _delete(self, context: Context, node: Node, provider_id: str) -> None:
        context.client.library("secretmanager").delete_secret(name=self._name(context, provider_id))

    def inventory(self, context: Context) -> list[str]:
        client = context.client
        mine = names.labels(context.app, context.environment.name, names.SIGNING_KEY_ID)
        listed = client.library("secretmanager").list_secrets(parent=f"projects/{client.project}")
        return sorted(s.name.rpartition("/")[2] for s in listed if dict(s.labels) == mine)


class TriggerType(compute.CloudRunJobType):
    """A service's cron trigger: a Cloud Run job of the service's image, under its service account, that
    signs and sends one cron job's request (the job and the URL are the arguments of each run)."""

    type = "gcp.cron.trigger"
    invariant = frozenset({"account"})
    label_prefix = "cron_trigger_"
    keeps_image = True

    def _observe(self, node: Node, job: Any) -> Observed:
        found = _to_dict(job)
        task = (found.get("template") or {}).get("template") or {}
        container = (task.get("containers") or [{}])[0]
        name = found["name"].rpartition("/")[2]
        properties = {
            "name": name,
            "image": container.get("image") if node.properties.get("image") else None,
            "account": task.get("service_account"),
        }
        return self.observed(node, name, properties, {"job": found["name"]})

    def _job(self, context: Context, node: Node) -> dict[str, Any]:
        p = node.properties
        environment = {
            "SKYRIG_APP": context.app,
            "SKYRIG_ENVIRONMENT": context.environment.name,
            "GOOGLE_CLOUD_PROJECT": context.client.project,
        }
        return {
            "labels": self.labels(context, node),
            "template": {
                "task_count": 1,
                "template": {
                    "service_account": p["account"],
                    "max_retries": 0,  # Cloud Scheduler retries the run
                    "timeout": "300s",
                    "containers": [
                        {
                            "name": "trigger",
                            "image": p["image"] or compute.image(context),
                            "command": ["python", "-m", "skyrig_gcp.runtime.cron"],
                            "env": [{"name": k, "value": v} for k, v in sorted(environment.items())],
                        }
                    ],
                },
            },
        }


class ScheduleType(NamedNodeType):
    """A cron job's Cloud Scheduler job: runs its service's trigger on schedule."""

    type = "gcp.cron.job"
    identity = frozenset({"name"})
    invariant = frozenset({"enabled", "target"})
    replace_on = frozenset({"name"})

    def _full_name(self, context: Context, provider_id: str) -> str:
        return f"{context.client.location()}/jobs/{provider_id}"

    def _observe(self, context: Context, node: Node, job: Any) -> Observed:
        found = _to_dict(job)
        target = found.get("http_target") or {}
        name = found["name"].rpartition("/")[2]
        properties = {
            "name": name,
            "schedule": found.get("schedule"),
            "enabled": found.get("state") == "ENABLED",
            "target": target.get("uri"),
        }
        return self.observed(node, name, properties, self._outputs(context, node))

    def _outputs(self, context: Context, node: Node) -> dict[str, Any]:
        settings = context.settings
        return {
            "signing_key": f"projects/{context.client.project}/secrets/{node.properties['signing_key']}",
            "secretmanager": settings.endpoint("secretmanager"),
            "emulator": settings.emulator,
        }

    def _read(self, context: Context, node: Node, provider_id: str) -> Observed | None:
        job = context.client.library("cloudscheduler").get_job(name=self._full_name(context, provider_id))
        return self._observe(context, node, job)

    def _read_many(self, context: Context, nodes: list[tuple[Node, str]]) -> dict[str, Observed | None]:
        client = context.client
        listed = {
            j.name.rpartition("/")[2]: j
            for j in client.library("cloudscheduler").list_jobs(parent=client.location())
        }
        return {n.id: self._observe(context, n, listed[pid]) if pid in listed else None for n, pid in nodes}

    def _url(self, context: Context, node: Node) -> str:
        """The URL of the job's service: its Cloud Run service's, once it exists, or ``SERVICE.DOMAIN``
        where another provider runs it."""
        if node.properties.get("url"):
            return str(node.properties["url"])
        client = context.client
        service = names.run_service_name(context.app, context.environment.name, node.properties["service"])
        return str(
            client.library("run.services").get_service(name=f"{client.location()}/services/{service}").uri
        )

    def _job(self, context: Context, node: Node) -> dict[str, Any]:
        p = node.properties
        overrides = {"overrides": {"container_overrides": [{"args": [p["job"], self._url(context, node)]}]}}
        return {
            "name": self._full_name(context, p["name"]),
            "description": f"skyrig {context.app}/{context.environment.name} cron job {p['job']}",
            "schedule": p["schedule"],
            "time_zone": "Etc/UTC",
            "http_target": {
                "uri": p["target"],
                "http_method": "POST",
                "headers": {"Content-Type": "application/json"},
                "body": json.dumps(overrides).encode(),
                "oauth_token": {"service_account_email": p["account"], "scope": SCOPE},
            },
            "retry_config": {"retry_count": 2},
        }

    def _create(self, context: Context, node: Node) -> Observed:
        client = context.client
        job = client.library("cloudscheduler").create_job(
            request={"parent": client.location(), "job": self._job(context, node)}
        )
        return self._observe(context, node, job)

    def _update(self, context: Context, node: Node, provider_id: str, changes: Mapping[str, Any]) -> Observed:
        scheduler = context.client.library("cloudscheduler")
        if {"schedule", "target", "url"} & set(changes) or not changes:
            scheduler.update_job(
                request={
                    "job": self._job(context, node),
                    "update_mask": {"paths": ["schedule", "time_zone", "http_target", "description"]},
                }
            )
        if "enabled" in changes:
            name = self._full_name(context, provider_id)
            if node.properties["enabled"]:
                scheduler.resume_job(name=name)
            else:
                scheduler.pause_job(name=name)
        return self._read(context, node, provider_id)  # type: ignore[return-value]

    def _delete(self, context: Context, node: Node, provider_id: str) -> None:
        context.client.library("cloudscheduler").delete_job(name=self._full_name(context, provider_id))

    def runtime_entry(self, node: Node, observed: Observed) -> dict[str, Any] | None:
        return {"type": self.type, **observed.outputs}

    def inventory(self, context: Context) -> list[str]:
        client = context.client
        prefix = f"skyrig {context.app}/{context.environment.name} cron job "
        listed = client.library("cloudscheduler").list_jobs(parent=client.location())
        return sorted(j.name.rpartition("/")[2] for j in listed if j.description.startswith(prefix))


SIGNING_KEY = SigningKeyType()
TRIGGER = TriggerType()
SCHEDULE = ScheduleType()
TYPES = (SIGNING_KEY, TRIGGER, SCHEDULE)


def expand(scope: Scope) -> list[Node]:
    jobs = scope.of_kind("cron_job")
    if not jobs:
        return []
    app, env, settings = scope.app, scope.environment.name, scope.settings
    project = settings.project or names.project_id(app, env)
    nodes = [
        scope.node(
            names.SIGNING_KEY_ID,
            SIGNING_KEY.type,
            {"name": names.signing_key_name(app, env)},
            (names.PROJECT_ID,),
        )
    ]
    for service in sorted({job.service for job in jobs}):
        nodes.append(
            scope.node(
                names.trigger_job_id(service),
                TRIGGER.type,
                {
                    "name": names.trigger_job_name(app, env, service),
                    "image": compute.services_image(scope),
                    "account": iam.account_email(scope, service),
                },
                (
                    names.PROJECT_ID,
                    names.service_account_id(service),
                    iam.binding_id(service, "cron/signing-key"),
                ),
            )
        )
    for job in sorted(jobs, key=lambda j: j.name):
        trigger = names.trigger_job_name(app, env, job.service)
        properties = {
            "name": names.scheduler_job_name(app, env, job.name),
            "job": job.name,
            "service": job.service,
            "schedule": schedule(job.schedule, job.every),
            "enabled": True,
            "target": f"{RUN_API}/projects/{project}/locations/{settings.region}/jobs/{trigger}:run",
            "account": iam.account_email(scope, iam.SCHEDULER),
            "signing_key": names.signing_key_name(app, env),
        }
        if iam.handed_over(scope):  # another provider runs the service: it answers at SERVICE.DOMAIN
            scheme = "https" if settings.certificate else "http"
            properties["url"] = f"{scheme}://{job.service}.{settings.domain}"
        depends = (
            names.SIGNING_KEY_ID,
            names.trigger_job_id(job.service),
            names.service_account_id(iam.SCHEDULER),
            iam.binding_id(iam.SCHEDULER, f"trigger/{job.service}"),
            f"@service/{job.service}",
        )
        nodes.append(scope.node(f"cron.job/{job.name}", SCHEDULE.type, properties, depends, resource=job))
    return nodes
