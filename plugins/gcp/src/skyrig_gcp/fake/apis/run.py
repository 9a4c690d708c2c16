"""Cloud Run v2, FAKE (:mod:`skyrig_gcp.fake`): services (with revisions), jobs and their executions.

Creates, updates and deletes are long-running: a service is ``reconciling`` until its operation is done,
then has a ``uri``, a ready revision and a succeeded ``terminalCondition``. ``:run`` on a job starts an
execution whose operation is done when it completes; a test (or the conformance profile) can make it do
something by setting :attr:`FakeGcp.job_runner <skyrig_gcp.fake.FakeGcp>`. Checked as Cloud Run checks:
service and job ids; at least one container, ports on one only, reserved and repeated env names, env values
that are either a value or a secret reference; scaling bounds; a service account that exists; and, when the
revision is made (the operation fails otherwise), every secret it reads exists with an enabled version.
Defaults Google fills in are filled in (ingress, traffic, concurrency, timeout, CPU and memory limits,
port 8080, the default compute service account). A patch without ``updateMask`` replaces the service.
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import random
import re
import string
import threading
import time
from typing import Any

from skyrig_gcp.fake.apis.base import ApiHandler, Kind, Request, new_etag
from skyrig_gcp.fake.errors import ApiError, already_exists, failed_precondition, invalid, not_found
from skyrig_gcp.fake.operations import Operation, google_name, now_rfc3339, render

SERVICE_ENV = frozenset({"PORT", "K_SERVICE", "K_REVISION", "K_CONFIGURATION"})
JOB_ENV = frozenset(
    {
        "CLOUD_RUN_JOB",
        "CLOUD_RUN_EXECUTION",
        "CLOUD_RUN_TASK_INDEX",
        "CLOUD_RUN_TASK_ATTEMPT",
        "CLOUD_RUN_TASK_COUNT",
    }
)
_ID = r"[a-z]([-a-z0-9]{0,47}[a-z0-9])?"
_MEMORY = re.compile(r"^\d+(\.\d+)?(Ki|Mi|Gi|Ti|k|M|G|T)?$")
_CPU = re.compile(r"^(\d+(\.\d+)?|\d+m)$")


def _condition(kind: str, state: str, message: str | None = None) -> dict[str, Any]:
    condition = {"type": kind, "state": state, "lastTransitionTime": now_rfc3339()}
    if message:
        condition["message"] = message
    return condition


class Run(ApiHandler):
    """Cloud Run v2: services, revisions, jobs, executions (long-running operations throughout)."""

    api = "run"
    version = "v2"
    proto_package = "google.cloud.run.v2"
    schema_prefix = "GoogleCloudRunV2"
    delete_returns_resource = True
    kinds = {
        "services": Kind(
            "services",
            "GoogleCloudRunV2Service",
            id_param="serviceId",
            id_pattern=_ID,
            id_message=(
                "Violation in CreateServiceRequest.service_id: only lowercase, digits, and hyphens; must "
                "begin with letter, and cannot end with hyphen; must be less than 50 characters."
            ),
            label="SERVICE",
            creating={"reconciling": True},
            ready={"reconciling": False},
            updating={"reconciling": True},
            deleting={"reconciling": True},
        ),
        "jobs": Kind(
            "jobs",
            "GoogleCloudRunV2Job",
            id_param="jobId",
            id_pattern=r"[a-z]([-a-z0-9]{0,61}[a-z0-9])?",
            id_message=(
                "Violation in CreateJobRequest.job_id: only lowercase, digits, and hyphens; must begin with "
                "letter, and cannot end with hyphen; must be less than 64 characters."
            ),
            label="JOB",
            creating={"reconciling": True},
            ready={"reconciling": False},
            updating={"reconciling": True},
            deleting={"reconciling": True},
        ),
        "revisions": Kind("revisions", "GoogleCloudRunV2Revision", label="REVISION"),
        "executions": Kind("executions", "GoogleCloudRunV2Execution", label="EXECUTION"),
    }

    def missing(self, key: str, kind: Kind | None = None) -> ApiError:
        parts = key.split("/")
        label = kind.label if kind is not None else "RESOURCE"
        if len(parts) >= 6:
            return not_found(
                f"Resource '{parts[-1]}' of kind '{label}' in region '{parts[3]}' in project '{parts[1]}' "
                "does not exist."
            )
        return not_found(f"Resource '{key}' was not found")

    def exists(self, key: str, kind: Kind) -> ApiError:
        return already_exists(f"Resource '{key.rsplit('/', 1)[-1]}' already exists.")

    def metadata(self, verb: str, kind: Kind | None, target: str) -> dict[str, Any] | None:
        resource = self.store.get(target)
        if kind is None or resource is None:
            return None
        return {"@type": self.type_url(kind.schema), **self.present(kind, target, resource)}

    # -- checks ------------------------------------------------------------------------------------------

    def validate(
        self, req: Request, kind: Kind, key: str, resource: dict[str, Any], old: dict[str, Any] | None
    ) -> None:
        if kind.collection == "services":
            template = resource.get("template") or {}
            self._check_template(key, template, SERVICE_ENV, "template")
            timeout = template.get("timeout")
            if timeout and float(timeout.rstrip("s")) > 3600:
                raise invalid("template.timeout must be at most 3600s.", "service.template.timeout")
            concurrency = template.get("maxInstanceRequestConcurrency")
            if concurrency is not None and not 1 <= int(concurrency) <= 1000:
                raise invalid(
                    "template.max_instance_request_concurrency must be between 1 and 1000.",
                    "service.template.max_instance_request_concurrency",
                )
            self._check_scaling(template.get("scaling") or {}, "template.scaling")
            self._check_scaling(resource.get("scaling") or {}, "scaling")
            traffic = resource.get("traffic")
            if traffic and sum(int(t.get("percent", 0)) for t in traffic) != 100:
                raise invalid("The traffic percentages must add up to 100.", "service.traffic")
        elif kind.collection == "jobs":
            template = (resource.get("template") or {}).get("template")
            if not template:
                raise invalid("Field 'job.template.template' is required.", "job.template.template")
            self._check_template(key, template, SERVICE_ENV | JOB_ENV, "template.template")

    def _check_scaling(self, scaling: dict[str, Any], where: str) -> None:
        low = scaling.get("minInstanceCount")
        high = scaling.get("maxInstanceCount")
        if low is not None and high is not None and int(low) > int(high):
            raise invalid(f"{where}.min_instance_count must not exceed max_instance_count.", where)

    def _check_template(
        self, key: str, template: dict[str, Any], reserved: frozenset[str], where: str
    ) -> None:
        containers = template.get("containers") or []
        if not containers:
            raise invalid(f"{where}.containers: at least one container must be given.", f"{where}.containers")
        if len(containers) > 10:
            raise invalid(f"{where}.containers: at most 10 containers.", f"{where}.containers")
        if sum(1 for c in containers if c.get("ports")) > 1:
            raise invalid(f"{where}.containers: only one container may expose ports.", f"{where}.containers")
        names = [c.get("name") for c in containers if c.get("name")]
        if len(names) != len(set(names)):
            raise invalid(f"{where}.containers: container names must be unique.", f"{where}.containers")
        for index, container in enumerate(containers):
            path = f"{where}.containers[{index}]"
            seen: set[str] = set()
            taken = sorted({e.get("name", "") for e in container.get("env", [])} & reserved)
            if taken:
                raise invalid(
                    f"The following reserved env names were provided: {', '.join(taken)}. These values are "
                    "automatically set by the system.",
                    f"{path}.env",
                )
            for env in container.get("env", []):
                name = env.get("name", "")
                if not name:
                    raise invalid(f"{path}.env: every variable needs a name.", f"{path}.env")
                if name in seen:
                    raise invalid(f"{path}.env: the variable {name} is given twice.", f"{path}.env")
                seen.add(name)
                if "value" in env and "valueSource" in env:
                    raise invalid(f"{path}.env[{name}]: set value or value_source, not both.", f"{path}.env")
            limits = (container.get("resources") or {}).get("limits") or {}
            if "memory" in limits and not _MEMORY.match(limits["memory"]):
                raise invalid(f"{path}.resources.limits.memory: invalid quantity '{limits['memory']}'.", path)
            if "cpu" in limits and not _CPU.match(limits["cpu"]):
                raise invalid(f"{path}.resources.limits.cpu: invalid quantity '{limits['cpu']}'.", path)
            for port in container.get("ports", []):
                if not 1 <= int(port.get("containerPort", 8080)) <= 65535:
                    raise invalid(f"{path}.ports: container_port must be between 1 and 65535.", path)
        account = template.get("serviceAccount")
        if account and not self.fake.service_account_exists(account):
            raise ApiError(
                "PERMISSION_DENIED",
                f"Permission 'iam.serviceaccounts.actAs' denied on service account {account} "
                "(or it may not exist).",
            )

    def _missing_secrets(self, key: str, template: dict[str, Any]) -> list[str]:
        project = key.split("/")[1]
        wanted: list[tuple[str, str]] = []
        for container in template.get("containers", []):
            for env in container.get("env", []):
                ref = (env.get("valueSource") or {}).get("secretKeyRef")
                if ref:
                    wanted.append((ref.get("secret", ""), ref.get("version", "latest")))
        for volume in template.get("volumes", []):
            secret = volume.get("secret")
            if secret:
                for item in secret.get("items") or [{"version": "latest"}]:
                    wanted.append((secret.get("secret", ""), item.get("version", "latest")))
        manager = self.fake.handlers["secretmanager"]
        missing = []
        for secret, version in wanted:
            name = secret if secret.startswith("projects/") else f"projects/{project}/secrets/{secret}"
            full = manager.canonical(f"{name}/versions/{version}")
            try:
                resolved = manager.resolve_version(full)  # type: ignore[attr-defined]
                if manager.store.get(resolved, {}).get("state") != "ENABLED":
                    missing.append(full)
            except ApiError:
                missing.append(full)
        return missing

    # -- outputs -----------------------------------------------------------------------------------------

    def prepare(self, req: Request | None, kind: Kind, key: str, resource: dict[str, Any]) -> None:
        super().prepare(req, kind, key, resource)
        if kind.collection not in ("services", "jobs"):
            return
        project = key.split("/")[1]
        number = self.fake.project_number(project)
        resource["generation"] = "1"
        resource["terminalCondition"] = _condition("Ready", "CONDITION_RECONCILING")
        resource["creator"] = resource["lastModifier"] = "fake@skyrig.invalid"
        resource.setdefault("launchStage", "GA")
        if kind.collection == "services":
            resource.setdefault("ingress", "INGRESS_TRAFFIC_ALL")
            resource.setdefault(
                "traffic", [{"type": "TRAFFIC_TARGET_ALLOCATION_TYPE_LATEST", "percent": 100}]
            )
            template = resource.setdefault("template", {})
            template.setdefault("maxInstanceRequestConcurrency", 80)
            template.setdefault("timeout", "300s")
            template.setdefault("scaling", {"maxInstanceCount": 100})
            self._container_defaults(template, with_port=True)
        else:
            execution = resource.setdefault("template", {})
            execution.setdefault("taskCount", 1)
            execution.setdefault("parallelism", 0)
            task = execution.setdefault("template", {})
            task.setdefault("maxRetries", 3)
            task.setdefault("timeout", "600s")
            self._container_defaults(task, with_port=False)
        template = resource["template"] if kind.collection == "services" else resource["template"]["template"]
        template.setdefault("serviceAccount", f"{number}-compute@developer.gserviceaccount.com")

    @staticmethod
    def _container_defaults(template: dict[str, Any], *, with_port: bool) -> None:
        containers = template.get("containers", [])
        for index, container in enumerate(containers):
            resources = container.setdefault("resources", {})
            limits = resources.setdefault("limits", {})
            limits.setdefault("cpu", "1000m")
            limits.setdefault("memory", "512Mi")
            if with_port and index == 0 and not any(c.get("ports") for c in containers):
                container["ports"] = [{"name": "http1", "containerPort": 8080}]

    def touch(self, kind: Kind, resource: dict[str, Any]) -> None:
        super().touch(kind, resource)
        if kind.collection in ("services", "jobs"):
            resource["generation"] = str(int(resource.get("generation", "0")) + 1)
            resource["terminalCondition"] = _condition("Ready", "CONDITION_RECONCILING")
            resource["lastModifier"] = "fake@skyrig.invalid"

    def on_console_change(self, kind: Kind, key: str, resource: dict[str, Any]) -> None:
        with contextlib.suppress(ApiError):  # a failed revision shows in its terminal condition
            self.on_ready(kind, key, resource)

    def on_ready(self, kind: Kind, key: str, resource: dict[str, Any]) -> None:
        if kind.collection not in ("services", "jobs"):
            return
        template = resource["template"] if kind.collection == "services" else resource["template"]["template"]
        missing = self._missing_secrets(key, template)
        if missing:
            message = f"Secret {missing[0]} was not found or has no enabled version."
            resource["terminalCondition"] = _condition("Ready", "CONDITION_FAILED", message)
            resource["observedGeneration"] = resource.get("generation", "1")
            raise failed_precondition(message)
        resource["observedGeneration"] = resource.get("generation", "1")
        resource["terminalCondition"] = _condition("Ready", "CONDITION_SUCCEEDED")
        if kind.collection == "jobs":
            resource["conditions"] = []
            return
        project, region, service = key.split("/")[1], key.split("/")[3], key.rsplit("/", 1)[-1]
        number = self.fake.project_number(project)
        suffix = "".join(random.choices(string.ascii_lowercase, k=3))
        revision = f"{service}-{int(resource['generation']):05d}-{suffix}"
        resource["latestCreatedRevision"] = resource["latestReadyRevision"] = f"{key}/revisions/{revision}"
        resource["conditions"] = [
            _condition("RoutesReady", "CONDITION_SUCCEEDED"),
            _condition("ConfigurationsReady", "CONDITION_SUCCEEDED"),
        ]
        short = hashlib.sha256(key.encode()).hexdigest()[:10]
        resource["uri"] = f"https://{service}-{number}.{region}.run.app"
        resource["urls"] = [resource["uri"], f"https://{service}-{short}-uc.a.run.app"]
        resource["trafficStatuses"] = [
            {
                **target,
                "revision": revision if target.get("type", "").endswith("LATEST") else target.get("revision"),
            }
            for target in resource.get("traffic", [])
        ]
        stamp = now_rfc3339()
        self.store[f"{key}/revisions/{revision}"] = {
            "name": f"{key}/revisions/{revision}",
            "uid": new_etag(),
            "generation": "1",
            "createTime": stamp,
            "updateTime": stamp,
            "service": service,
            "containers": copy.deepcopy(template.get("containers", [])),
            "serviceAccount": template.get("serviceAccount"),
            "scaling": copy.deepcopy(template.get("scaling", {})),
            "maxInstanceRequestConcurrency": template.get("maxInstanceRequestConcurrency"),
            "timeout": template.get("timeout"),
            "conditions": [_condition("Ready", "CONDITION_SUCCEEDED")],
            "observedGeneration": "1",
            "reconciling": False,
            "etag": new_etag(),
        }

    # -- verbs -------------------------------------------------------------------------------------------

    def generic_patch(self, req: Request) -> dict[str, Any]:
        key = self.canonical(self.path_key(req))
        if key not in self.store and req.query.get("allowMissing"):
            return self._create_missing(req, key)
        if req.query.get("updateMask"):
            return super().generic_patch(req)
        kind = self.kind_of(key.rsplit("/", 2)[-2])
        body = self.body(req, exempt=frozenset({"name"}))
        old = self.lookup(key, kind)
        kept = {name: value for name, value in old.items() if name in self.output_fields(kind)}
        new = {**body, **kept}
        if kind.collection == "services":
            # what Google fills in on create, it fills in on a replacement too
            self._refill_defaults(kind, key, new)
        return self.store_update(req, kind, key, old, new, "UPDATE")

    def _refill_defaults(self, kind: Kind, key: str, resource: dict[str, Any]) -> None:
        scratch = copy.deepcopy(resource)
        self.prepare(None, kind, key, scratch)
        for name in ("ingress", "traffic", "launchStage", "template"):
            if name in scratch:
                resource[name] = scratch[name]

    def _create_missing(self, req: Request, key: str) -> dict[str, Any]:
        kind = self.kind_of(key.rsplit("/", 2)[-2])
        body = self.body(req, exempt=frozenset({"name"}))
        self.check_id(kind, key.rsplit("/", 1)[-1])
        self.validate(req, kind, key, body, None)
        self.prepare(req, kind, key, body)
        body.update(kind.creating)
        self.store[key] = body
        return self.start_operation(req, "CREATE", key, kind, self._completion(kind, key, kind.creating))

    def do_run(self, req: Request) -> dict[str, Any]:
        """Starts an execution of a job; its operation is done when the execution completes."""
        body = self.body(req)
        key = self.canonical(self.path_key(req))
        job = self.lookup(key, self.kinds["jobs"])
        if job.get("reconciling"):
            raise failed_precondition(f"Job '{key}' is not ready: an operation on it is still running.")
        if body.get("etag") and body["etag"] != job.get("etag"):
            raise ApiError("ABORTED", f"The etag of job '{key}' does not match.")
        overrides = body.get("overrides") or {}
        task_count = int(overrides.get("taskCount") or job["template"].get("taskCount", 1))
        name = key.rsplit("/", 1)[-1]
        ident = f"{name}-{''.join(random.choices(string.ascii_lowercase + string.digits, k=5))}"
        execution_key = f"{key}/executions/{ident}"
        stamp = now_rfc3339()
        template = copy.deepcopy(job["template"])
        if overrides.get("timeout"):
            template["template"]["timeout"] = overrides["timeout"]
        for override in overrides.get("containerOverrides", []):
            for container in template["template"].get("containers", []):
                if override.get("name") in (None, "", container.get("name")):
                    if override.get("clearArgs"):
                        container["args"] = []
                    if override.get("args"):
                        container["args"] = override["args"]
                    if override.get("env"):
                        merged = {e["name"]: e for e in container.get("env", [])}
                        merged.update({e["name"]: e for e in override["env"]})
                        container["env"] = list(merged.values())
        execution: dict[str, Any] = {
            "name": execution_key,
            "uid": new_etag(),
            "generation": "1",
            "createTime": stamp,
            "startTime": stamp,
            "job": name,
            "taskCount": task_count,
            "parallelism": template.get("parallelism", 0),
            "template": template["template"],
            "runningCount": task_count,
            "reconciling": True,
            "observedGeneration": "1",
            "launchStage": "GA",
            "logUri": f"https://console.cloud.google.com/logs/viewer?project={key.split('/')[1]}",
            "etag": new_etag(),
            "conditions": [_condition("ResourcesAvailable", "CONDITION_SUCCEEDED")],
        }
        self.store[execution_key] = execution
        job["executionCount"] = int(job.get("executionCount", 0)) + 1
        job["latestCreatedExecution"] = {"name": execution_key, "createTime": stamp}
        op = Operation(
            api=self.api,
            style="google",
            key="",
            name="",
            verb="RUN",
            target=execution_key,
            due=time.time() + self.fake.delay_for(self.api),
        )
        op.key = op.name = google_name(self.operation_parent(key))
        op.metadata = {
            "@type": self.type_url("GoogleCloudRunV2Execution"),
            **self.present(None, execution_key, execution),
        }
        op.complete = lambda: self._finish_execution(key, execution_key, op)
        runner = self.fake.job_runner
        if runner is not None:
            op.extra["due"], op.due = op.due, float("inf")
            snapshot = {
                **copy.deepcopy(job),
                "template": {**copy.deepcopy(job["template"]), "template": template["template"]},
            }
            threading.Thread(target=self._run_job, args=(runner, key, snapshot, op), daemon=True).start()
        return self.register(op)

    def _run_job(self, runner: Any, key: str, job: dict[str, Any], op: Operation) -> None:
        try:
            outcome = runner(key, job)
            failure = None if outcome in (None, True) else "the job's runner reported a failure"
        except Exception as error:
            failure = f"{type(error).__name__}: {error}"
        with self.fake.lock:
            op.extra["failure"] = failure
            op.due = max(op.extra["due"], time.time())

    def _finish_execution(self, job_key: str, key: str, op: Operation) -> dict[str, Any] | None:
        execution = self.store.get(key)
        if execution is None:
            raise ApiError("ABORTED", f"Execution '{key}' was deleted.")
        count = int(execution["taskCount"])
        failure = op.extra.get("failure")
        stamp = now_rfc3339()
        execution.update(
            {
                "reconciling": False,
                "runningCount": 0,
                "completionTime": stamp,
                "succeededCount": 0 if failure else count,
                "failedCount": count if failure else 0,
            }
        )
        state = "CONDITION_FAILED" if failure else "CONDITION_SUCCEEDED"
        execution["conditions"] = [
            _condition("ResourcesAvailable", "CONDITION_SUCCEEDED"),
            _condition("Completed", state, failure),
        ]
        job = self.store.get(job_key)
        if job is not None and job.get("latestCreatedExecution", {}).get("name") == key:
            job["latestCreatedExecution"].update(
                {
                    "completionTime": stamp,
                    "completionStatus": "EXECUTION_FAILED" if failure else "EXECUTION_SUCCEEDED",
                }
            )
        if failure:
            raise ApiError(
                "FAILED_PRECONDITION",
                f"Execution {key.rsplit('/', 1)[-1]} has failed to complete, {count}/{count} "
                f"tasks failed: {failure}.",
            )
        return {"@type": self.type_url("GoogleCloudRunV2Execution"), **self.present(None, key, execution)}

    def operation_method(self, req: Request) -> dict[str, Any]:
        if req.method.verb == "wait":
            body = self.body(req)
            op = self.find_operation(self.path_key(req))
            timeout = float(str(body.get("timeout") or "5s").rstrip("s"))
            self.fake.wait_for(op, timeout=min(timeout, 30.0))
            return render(op)
        return super().operation_method(req)
