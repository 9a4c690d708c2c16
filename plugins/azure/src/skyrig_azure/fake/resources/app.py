"""Microsoft.App: Container Apps managed environments and jobs (PUT, PATCH and DELETE long-running, as
azure-mgmt-appcontainers' ``begin_*`` calls them).

What Container Apps checks and the fake does too: a job names an existing managed environment
(``environmentId``), says its trigger (``Schedule`` needs ``scheduleTriggerConfig.cronExpression``, five
fields, in UTC) and its ``replicaTimeout``; its containers' CPU and memory are one of the Consumption
profile's pairs (0.25 vCPU / 0.5Gi, 0.5 / 1Gi, ... 4 / 8Gi); its user-assigned identities exist (their
``principalId`` / ``clientId`` are filled in) and a registry pulled with an identity names one of them. A
managed environment with jobs on it cannot be replaced under them (its ``environmentId`` is immutable in a
job). ``POST jobs/NAME/start`` records an execution (``jobs/NAME/executions/EXECUTION``, with the template
it ran) that has succeeded at once: no container runs here.
"""

from __future__ import annotations

import copy
import hashlib
import re
import time
import uuid
from typing import Any

from skyrig_azure.fake.errors import ArmError
from skyrig_azure.fake.registry import Context, ResourceType, register
from skyrig_azure.fake.resources.web import assign_identities, stored

_MODELS = "azure.mgmt.appcontainers.models"
_VERSIONS = ("2024-03-01", "2025-01-01", "2025-07-01", "2026-07-01")
_CRON_FIELD = re.compile(r"^(\*|\d+|\d+-\d+)(/\d+)?(,(\*|\d+|\d+-\d+)(/\d+)?)*$|^\*/\d+$")
_CPU_STEPS = tuple(step / 4 for step in range(1, 17))


def _environment_on_write(ctx: Context, environment: dict[str, Any]) -> None:
    properties = environment.setdefault("properties", {})
    digest = hashlib.sha256(ctx.id.lower().encode()).hexdigest()
    location = environment.get("location") or "eastus"
    properties["defaultDomain"] = f"{digest[:8]}-{digest[8:16]}.{location}.azurecontainerapps.io"
    properties["staticIp"] = f"20.{int(digest[:2], 16)}.{int(digest[2:4], 16)}.{int(digest[4:6], 16)}"
    properties.setdefault("zoneRedundant", False)
    properties.setdefault("publicNetworkAccess", "Enabled")
    properties["eventStreamEndpoint"] = f"https://{location}.azurecontainerapps.dev/environments/{ctx.name}"


def _check_cron(expression: str) -> None:
    fields = expression.split()
    if len(fields) != 5 or not all(_CRON_FIELD.match(field) for field in fields):
        raise ArmError(
            400,
            "JobInvalidCronExpression",
            f"The cron expression '{expression}' is not valid: it "
            "needs five fields (minute hour day month weekday).",
        )


def _job_on_write(ctx: Context, job: dict[str, Any]) -> None:
    properties = job.setdefault("properties", {})
    environment = properties.get("environmentId")
    if not environment:
        raise ArmError(400, "InvalidRequestContent", "properties.environmentId is required.")
    if stored(ctx, environment) is None:
        raise ArmError(
            404,
            "ManagedEnvironmentNotFound",
            f"The environment '{environment.rsplit('/', 1)[-1]}' was not found.",
        )
    configuration = properties.get("configuration") or {}
    trigger = str(configuration.get("triggerType") or "")
    if configuration.get("replicaTimeout") is None:
        raise ArmError(
            400, "JobInvalidReplicaTimeout", "properties.configuration.replicaTimeout is required."
        )
    if trigger.lower() == "schedule":
        schedule = configuration.get("scheduleTriggerConfig") or {}
        if not schedule.get("cronExpression"):
            raise ArmError(
                400,
                "JobInvalidScheduleTriggerConfig",
                "A Schedule trigger needs scheduleTriggerConfig.cronExpression.",
            )
        _check_cron(schedule["cronExpression"])
        schedule.setdefault("parallelism", 1)
        schedule.setdefault("replicaCompletionCount", 1)
    elif trigger.lower() == "manual":
        manual = configuration.setdefault("manualTriggerConfig", {})
        manual.setdefault("parallelism", 1)
        manual.setdefault("replicaCompletionCount", 1)
    configuration.setdefault("replicaRetryLimit", 0)
    containers = (properties.get("template") or {}).get("containers") or []
    if not containers:
        raise ArmError(400, "ContainerAppInvalidTemplate", "A job's template needs at least one container.")
    for container in containers:
        resources = container.setdefault("resources", {})
        cpu = float(resources.setdefault("cpu", 0.5))
        memory = str(resources.setdefault("memory", "1Gi"))
        if cpu not in _CPU_STEPS or memory != f"{cpu * 2:g}Gi":
            raise ArmError(
                400,
                "ContainerAppInvalidResourceTotal",
                f"The total requested CPU and memory "
                f"({cpu} / {memory}) of container '{container.get('name')}' is not one of the "
                "supported combinations (0.25 / 0.5Gi, 0.5 / 1Gi, ... 4 / 8Gi).",
            )
        resources["ephemeralStorage"] = f"{int(cpu * 4)}Gi" if cpu >= 1 else "1Gi"
    assign_identities(ctx, job)
    users = {key.lower() for key in ((job.get("identity") or {}).get("userAssignedIdentities") or {})}
    for registry in configuration.get("registries") or []:
        identity = registry.get("identity")
        if identity and identity.lower() != "system" and identity.lower() not in users:
            raise ArmError(
                400,
                "InvalidRegistryIdentity",
                f"Registry '{registry.get('server')}' is pulled with "
                f"identity '{identity}', which is not an identity of the job.",
            )
    properties["runningState"] = "Ready"
    properties["outboundIpAddresses"] = ["20.1.2.3"]
    properties["eventStreamEndpoint"] = f"https://eastus.azurecontainerapps.dev/jobs/{ctx.name}/eventstream"


def _start(ctx: Context, job: dict[str, Any], body: Any) -> tuple[int, Any]:
    """``POST jobs/NAME/start``: an execution of the job's template (or of the template the body gives),
    recorded as ``jobs/NAME/executions/EXECUTION``. Nothing runs here: it succeeds at once."""
    template = (body or {}).get("template") if isinstance(body, dict) else None
    properties = job.get("properties") or {}
    if str((properties.get("configuration") or {}).get("triggerType") or "").lower() == "event":
        raise ArmError(400, "JobTriggerTypeNotSupported", "An event-triggered job cannot be started by hand.")
    name = f"{ctx.name}-{uuid.uuid4().hex[:7]}"
    execution_id = f"{job['id']}/executions/{name}"
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    ctx.fake.put_resource(
        execution_id,
        {
            "properties": {
                "status": "Succeeded",
                "startTime": now,
                "endTime": now,
                "template": copy.deepcopy(template or properties.get("template") or {}),
            }
        },
    )
    return 200, {"id": execution_id, "name": name}


register(
    ResourceType(
        type="Microsoft.App/managedEnvironments",
        api_versions=_VERSIONS,
        put_model=f"{_MODELS}:ManagedEnvironment",
        patch_model=f"{_MODELS}:ManagedEnvironment",
        read_model=f"{_MODELS}:ManagedEnvironment",
        async_put=True,
        async_patch=True,
        async_delete=True,
        creating_state="Waiting",
        updating_state="Waiting",
        name_pattern=r"[a-z][a-z0-9-]{0,58}[a-z0-9]",
        on_write=_environment_on_write,
    ),
    ResourceType(
        type="Microsoft.App/jobs",
        api_versions=_VERSIONS,
        put_model=f"{_MODELS}:Job",
        patch_model=f"{_MODELS}:JobPatchProperties",
        read_model=f"{_MODELS}:Job",
        async_put=True,
        async_patch=True,
        async_delete=True,
        creating_state="InProgress",
        updating_state="InProgress",
        immutable=("properties.environmentId",),
        name_pattern=r"[a-z][a-z0-9-]{0,30}[a-z0-9]",
        on_write=_job_on_write,
        actions={"start": _start},
    ),
    ResourceType(
        type="Microsoft.App/jobs/executions",
        api_versions=_VERSIONS,
        tracked=False,
        provisioning_state=False,
    ),
)
