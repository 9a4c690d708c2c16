"""Cron: a Container Apps job per cron job, with a Schedule trigger (the job's cron expression, UTC), in
the environment's Container Apps managed environment (the compute family's, shared with the migration
jobs), and a signing key per environment in the Key Vault.

When its schedule fires, a job runs one container of the service's image under the service's identity:
``python -m skyrig_azure.runtime.cron JOB URL`` (:mod:`skyrig_azure.runtime.cron`) reads the signing key
from the Key Vault and sends the signed ``POST /__skyrig/cron/JOB`` to the service's web app, whose host
accepts it only with a valid signature. The key is random, made here, and never leaves the Key Vault (not
in state, plans, logs or app settings); the service host reads it with the service's identity too.
:func:`run_job` does exactly what a fired schedule does.
"""

from __future__ import annotations

import secrets as random
from collections.abc import Mapping
from typing import Any

from skyrig.provider import Context, Node, Observed, Scope
from skyrig_azure import compute, iam, names
from skyrig_azure.api import Conflict, translate
from skyrig_azure.nodes import AzureNodeType
from skyrig_azure.runtime.cron import VAULT_VARIABLE

COMMAND = ("python", "-m", "skyrig_azure.runtime.cron")
CPU, MEMORY = 0.25, "0.5Gi"
"""The trigger's container: the smallest Consumption size (it sends one request)."""
TIMEOUT = 300
"""Seconds a run may take (the service's job included) before Container Apps stops it."""


def schedule(cron: str | None, every: str | None) -> str:
    """The job's cron expression (five fields, UTC) for a cron schedule or an interval (as on GCP: an
    interval that does not divide an hour or a day runs at the nearest step that does)."""
    from skyrig.provider import duration_seconds

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


def _rg(context: Context) -> str:
    return str(context.client.resource_group)


def _vault(context: Context, name: str) -> dict[str, Any]:
    return compute.as_json(context.client.mgmt("keyvault").vaults.get(_rg(context), name))


def _keys(context: Context, vault: str) -> Any:
    """The Key Vault secrets client of vault ``vault`` (the secrets family's, with skyrig's credential)."""
    from skyrig_azure.secrets import data_plane

    return data_plane(context, _vault(context, vault))


def _data_call(where: str, function: Any, *args: Any, **kwargs: Any) -> Any:
    """A Key Vault data-plane call whose errors are skyrig's (no value is ever in them)."""
    from azure.core.exceptions import AzureError

    try:
        return function(*args, **kwargs)
    except AzureError as error:
        raise translate(error, f"Key Vault {where}") from None


# -- the signing key ---------------------------------------------------------------------------------------


class SigningKeyType(AzureNodeType):
    """The environment's cron signing key: a Key Vault secret with a random value made here."""

    type = "azure.cron.signing_key"
    identity = frozenset({"name"})
    replace_on = frozenset({"name", "vault"})
    invariant = frozenset({"has_value"})

    def _read(self, context: Context, node: Node, provider_id: str) -> Observed | None:
        keys = _keys(context, node.properties["vault"])
        versions = _data_call(
            "list_properties_of_secret_versions",
            lambda: list(keys.list_properties_of_secret_versions(provider_id)),
        )
        has_value = any(version.enabled for version in versions)
        return self.observed(node, provider_id, {"name": provider_id, "has_value": has_value})

    def _find(self, context: Context, node: Node) -> Observed | None:
        found = self._read(context, node, node.properties["name"])
        return found if found is not None and found.properties["has_value"] else None

    def _add_value(self, context: Context, node: Node, name: str) -> None:
        keys = _keys(context, node.properties["vault"])
        tags = self.tags(context, node)
        value = random.token_hex(32)
        try:
            _data_call("set_secret", keys.set_secret, name, value, content_type="text/plain", tags=tags)
        except Conflict:  # deleted with soft delete on: recovered, then given a new value
            _data_call("recover_deleted_secret", lambda: keys.begin_recover_deleted_secret(name).result())
            _data_call("set_secret", keys.set_secret, name, value, content_type="text/plain", tags=tags)

    def _create(self, context: Context, node: Node) -> Observed:
        name = node.properties["name"]
        self._add_value(context, node, name)
        return self._read(context, node, name)  # type: ignore[return-value]

    def _update(self, context: Context, node: Node, provider_id: str, changes: Mapping[str, Any]) -> Observed:
        if changes.get("has_value"):
            self._add_value(context, node, provider_id)
        return self._read(context, node, provider_id)  # type: ignore[return-value]

    def _delete(self, context: Context, node: Node, provider_id: str) -> None:
        keys = _keys(context, node.properties["vault"])
        _data_call("delete_secret", lambda: keys.begin_delete_secret(provider_id).result())

    def inventory(self, context: Context) -> list[str]:
        """None of its own: the key lives and dies with the vault, which is listed."""
        return []


# -- the jobs ----------------------------------------------------------------------------------------------


class JobType(compute.ContainerJobType):
    """A cron job's Container Apps job: on schedule, the service's image under the service's identity
    signs and sends the job's request to the service's web app."""

    type = "azure.cron.job"
    invariant = frozenset({"schedule", "identity", "job", "command", "url"})
    keeps_image = True
    node_prefix = "cron.job/"

    def _observe(self, context: Context, node: Node, found: Any) -> Observed:
        job = compute.as_json(found)
        p = job.get("properties") or {}
        trigger = ((p.get("configuration") or {}).get("scheduleTriggerConfig")) or {}
        container = ((p.get("template") or {}).get("containers") or [{}])[0]
        args = container.get("args") or []
        variables = {e.get("name"): e.get("value") for e in container.get("env") or []}
        users = sorted((job.get("identity") or {}).get("userAssignedIdentities") or {})
        properties = {
            "name": job["name"],
            "schedule": trigger.get("cronExpression"),
            "image": container.get("image") if node.properties.get("image") else None,
            "identity": users[0].lower() if len(users) == 1 else None,
            "environment": str(p.get("environmentId") or "").lower(),
            "job": args[0] if args else None,
            "url": bool(args[1:]),
            "command": list(container.get("command") or []),
        }
        outputs = {"vault_uri": variables.get(VAULT_VARIABLE), "target": args[1] if args[1:] else None}
        return self.observed(node, job["name"], properties, outputs)

    def _configuration(self, context: Context, node: Node) -> dict[str, Any]:
        return {
            "triggerType": "Schedule",
            "replicaTimeout": TIMEOUT,
            "replicaRetryLimit": 1,
            "scheduleTriggerConfig": {
                "cronExpression": node.properties["schedule"],
                "parallelism": 1,
                "replicaCompletionCount": 1,
            },
        }

    def _container(self, context: Context, node: Node, image: str, client_id: str) -> dict[str, Any]:
        p = node.properties
        site = compute.as_json(context.client.mgmt("web").web_apps.get(_rg(context), p["site"]))
        url = f"https://{(site.get('properties') or {}).get('defaultHostName')}"
        vault_uri = (_vault(context, p["vault"]).get("properties") or {}).get("vaultUri")
        environment = {
            "SKYRIG_APP": context.app,
            "SKYRIG_ENVIRONMENT": context.environment.name,
            "AZURE_CLIENT_ID": client_id,
            VAULT_VARIABLE: str(vault_uri),
        }
        return {
            "name": "trigger",
            "image": image,
            "command": list(COMMAND),
            "args": [p["job"], url],
            "env": [{"name": k, "value": v} for k, v in sorted(environment.items())],
            "resources": {"cpu": CPU, "memory": MEMORY},
        }

    def runtime_entry(self, node: Node, observed: Observed) -> dict[str, Any] | None:
        return {
            "type": self.type,
            "vault_uri": observed.outputs.get("vault_uri"),
            "signing_key": node.properties["signing_key"],
            "emulator": node.properties["emulator"],
        }


SIGNING_KEY = SigningKeyType()
JOB = JobType()
TYPES = (SIGNING_KEY, JOB)


def run_job(context: Context, job: str, url: str) -> None:
    """Exactly what a job's schedule does when it fires: the signing key from the Key Vault, then a
    signed ``POST /__skyrig/cron/JOB`` to ``url``."""
    from skyrig.provider import signed_cron_call

    vault = names.key_vault_name(context.client.subscription, context.app, context.environment.name)
    keys = _keys(context, vault)
    secret = _data_call("get_secret", keys.get_secret, names.SIGNING_KEY_SECRET)
    signed_cron_call(url, job, str(secret.value).encode())


def expand(scope: Scope) -> list[Node]:
    jobs = scope.of_kind("cron_job")
    if not jobs:
        return []
    app, env, settings = scope.app, scope.environment.name, scope.settings
    vault = names.key_vault_name(settings.subscription_id, app, env)
    environment = names.container_environment_name(app, env)
    nodes = [
        scope.node(
            names.SIGNING_KEY_ID,
            SIGNING_KEY.type,
            {"name": names.SIGNING_KEY_SECRET, "vault": vault},
            (names.KEY_VAULT_ID,),
        ),
    ]
    for job in sorted(jobs, key=lambda j: j.name):
        identity_name = names.identity_name(app, env, job.service)
        properties = {
            "name": names.cron_job_name(app, env, job.name),
            "job": job.name,
            "service": job.service,
            "schedule": schedule(job.schedule, job.every),
            "image": settings.image,
            "identity_name": identity_name,
            "identity": compute.arm_id(
                scope, "Microsoft.ManagedIdentity/userAssignedIdentities", identity_name
            ),
            "environment_name": environment,
            "environment": compute.arm_id(scope, "Microsoft.App/managedEnvironments", environment),
            "site": names.site_name(settings.subscription_id, app, env, job.service),
            "vault": vault,
            "signing_key": names.SIGNING_KEY_SECRET,
            "emulator": settings.emulator,
            "command": list(COMMAND),
            "url": True,
        }
        depends = (
            names.SIGNING_KEY_ID,
            names.JOBS_ENVIRONMENT_ID,
            names.identity_id(job.service),
            iam.assignment_id(job.service, "cron/signing-key", iam.SECRETS_USER),
            f"@service/{job.service}",
        )
        nodes.append(scope.node(names.cron_job_id(job.name), JOB.type, properties, depends, resource=job))
    return nodes
