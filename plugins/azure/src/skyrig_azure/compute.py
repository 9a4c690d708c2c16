"""Compute: an App Service Plan (Linux) per environment and a web app for containers per service, running
the services' image under the service's own user-assigned managed identity, integrated with the
environment's virtual network (the app integration subnet: outbound traffic to the private database,
caches and endpoints), HTTPS only, TLS 1.2 at least, FTP(S) off.

The image is the ``image`` setting, which the core sets for each command (``skyrig.engine.images``):
``--image``, else the setting when configuration sets one, else the image the services run now (their
records in state). Each web app's node carries it as its ``image`` property (``linuxFxVersion`` is
``DOCKER|IMAGE``), so the image deployed is part of what was applied and a plan without ``--image`` keeps
it. Azure has no default image for skyrig to fall back on: a first apply without one is refused.

The plan's tier and workers (``app_service_sku``, ``app_service_workers``) are tunable: changed in the
portal (or by autoscale), they are adopted. A web app's HTTPS-only, TLS, FTPS, VNet integration, identity
and app settings are invariants: changed in the portal, they are restored.

A web app's app settings (its container's environment) hold who it is (``SKYRIG_*``,
``AZURE_CLIENT_ID``: the identity the runtime's credential takes), ``WEBSITES_PORT``, the runtime config
(``SKYRIG_RUNTIME_CONFIG``, written by :mod:`skyrig_azure.delivery` after each apply) and a Key Vault
reference per secret the service uses (:func:`names.secret_setting`), which App Service resolves with the
web app's ``keyVaultReferenceIdentity`` (the service's identity): no secret value is ever in them.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

from skyrig.provider import RESOURCE_KINDS, Context, Node, NotFound, Observed, Scope, UserError
from skyrig_azure import delivery, iam, names
from skyrig_azure.nodes import AzureNodeType, NamedNodeType

MIN_TLS = "1.2"
FTPS = "Disabled"
DOCKER = "DOCKER|"
ACR_SUFFIX = ".azurecr.io"
MANAGED_SETTINGS = frozenset({delivery.SETTING, "AZURE_CLIENT_ID"})
"""App settings a web app's node does not compare: the runtime config (delivery's) and the identity's
client id (known once the identity exists; it follows the identity, which is compared)."""
UNSHOWN = "(set outside skyrig: not shown)"
"""What a web app's node reads for an app setting whose value skyrig did not set (restored, never shown)."""


def as_json(model: Any) -> dict[str, Any]:
    """An azure-mgmt model as its wire JSON (camelCase members, ``properties`` nested)."""
    if model is None:
        return {}
    if hasattr(model, "_attribute_map"):  # an msrest model: as_dict() would give attribute names
        return dict(model.serialize(keep_readonly=True))
    if hasattr(model, "as_dict"):
        return dict(model.as_dict())
    return dict(model)


def image_of(linux_fx: str | None) -> str | None:
    """The image of a ``linuxFxVersion`` (``DOCKER|IMAGE``), or None."""
    if linux_fx and linux_fx.upper().startswith(DOCKER):
        return linux_fx[len(DOCKER) :]
    return None


def _rg(context: Context) -> str:
    return str(context.client.resource_group)


def owned_names(node_type: AzureNodeType, context: Context, listed: Callable[[], list[Any]]) -> list[str]:
    """The names of the resources ``listed`` (a list call in the resource group) that are this
    environment's; none when the resource group is gone."""
    try:
        found = listed()
    except NotFound:
        return []
    return sorted(item.name for item in found if node_type.owned(context, item.tags))


# -- the plan ----------------------------------------------------------------------------------------------


class PlanType(AzureNodeType):
    """The environment's App Service Plan: Linux, ``app_service_sku`` with ``app_service_workers``
    instances (both tunable)."""

    type = "azure.compute.plan"
    identity = frozenset({"name"})
    tunable = frozenset({"sku", "workers"})
    replace_on = frozenset({"name", "linux"})

    def _observe(self, node: Node, plan: Any) -> Observed:
        found = as_json(plan)
        sku = found.get("sku") or {}
        properties = {
            "name": found["name"],
            "sku": sku.get("name"),
            "workers": sku.get("capacity"),
            "linux": bool((found.get("properties") or {}).get("reserved")),
        }
        return self.observed(node, found["name"], properties, {"id": found["id"]})

    def _read(self, context: Context, node: Node, provider_id: str) -> Observed | None:
        plan = context.client.mgmt("web").app_service_plans.get(_rg(context), provider_id)
        return self._observe(node, plan)

    def _find(self, context: Context, node: Node) -> Observed | None:
        return self._read(context, node, node.properties["name"])

    def _put(self, context: Context, node: Node, name: str, sku: str, workers: int) -> Observed:
        body = {
            "location": context.client.location,
            "kind": "linux",
            "tags": self.tags(context, node),
            "sku": {"name": sku, "capacity": workers},
            "properties": {"reserved": True},
        }
        web = context.client.mgmt("web")
        operation = web.app_service_plans.begin_create_or_update(_rg(context), name, body)
        return self._observe(node, context.client.wait(context, operation, f"App Service Plan {name}"))

    def _create(self, context: Context, node: Node) -> Observed:
        p = node.properties
        return self._put(context, node, p["name"], p["sku"], p["workers"])

    def _update(self, context: Context, node: Node, provider_id: str, changes: Mapping[str, Any]) -> Observed:
        current = self._read(context, node, provider_id)
        assert current is not None
        # what changed in the portal and is not changed here stays as it is there
        sku = changes.get("sku", current.properties["sku"] or node.properties["sku"])
        workers = changes.get("workers", current.properties["workers"] or node.properties["workers"])
        return self._put(context, node, provider_id, sku, workers)

    def _delete(self, context: Context, node: Node, provider_id: str) -> None:
        context.client.mgmt("web").app_service_plans.delete(_rg(context), provider_id)

    def inventory(self, context: Context) -> list[str]:
        plans = context.client.mgmt("web").app_service_plans
        return owned_names(self, context, lambda: plans.list_by_resource_group(_rg(context)))


# -- the web apps ------------------------------------------------------------------------------------------


class SiteType(NamedNodeType):
    """A service: its web app for containers, under its own identity, serving the service host."""

    type = "azure.compute.site"
    identity = frozenset({"name"})
    replace_on = frozenset({"name"})
    invariant = frozenset(
        {"https_only", "min_tls", "ftps", "subnet", "identity", "plan", "settings", "secrets"}
    )

    # -- reading ---------------------------------------------------------------------------------------

    def _observe(self, context: Context, node: Node, site: Any) -> Observed:
        found = as_json(site)
        web = context.client.mgmt("web")
        name = found["name"]
        config = as_json(web.web_apps.get_configuration(_rg(context), name)).get("properties") or {}
        return self._observed(node, found, config, delivery.app_settings(context, name))

    def _observed(
        self, node: Node, site: dict[str, Any], config: dict[str, Any], settings: dict[str, str]
    ) -> Observed:
        p = site.get("properties") or {}
        users = sorted((site.get("identity") or {}).get("userAssignedIdentities") or {})
        identity = users[0] if len(users) == 1 else (users or None)
        reference = p.get("keyVaultReferenceIdentity")
        # a value found where skyrig did not put it may be a secret pasted in the portal: it is reported
        # as changed, never read into the plan or state
        wanted_plain, wanted_secrets = node.properties["settings"], node.properties["secrets"]
        secrets, plain = {}, {}
        for key, value in settings.items():
            if key in MANAGED_SETTINGS:
                continue
            secret = _referenced_secret(value)
            if key in wanted_secrets or secret is not None:
                secrets[key] = secret if secret is not None else UNSHOWN
            else:
                plain[key] = value if wanted_plain.get(key) == value else UNSHOWN
        properties = {
            "name": site["name"],
            "image": image_of(config.get("linuxFxVersion")) if node.properties.get("image") else None,
            "https_only": bool(p.get("httpsOnly")),
            "min_tls": config.get("minTlsVersion"),
            "ftps": config.get("ftpsState"),
            "subnet": _lower(p.get("virtualNetworkSubnetId")),
            # the identity counts only when App Service resolves the Key Vault references with it too
            "identity": _lower(identity) if _lower(reference) == _lower(identity) else None,
            "plan": _lower(p.get("serverFarmId")),
            "settings": plain,
            "secrets": secrets,
        }
        host = p.get("defaultHostName")
        outputs = {"url": f"https://{host}" if host else None, "host": host, "id": site.get("id")}
        return self.observed(node, site["name"], properties, outputs)

    def _read(self, context: Context, node: Node, provider_id: str) -> Observed | None:
        site = context.client.mgmt("web").web_apps.get(_rg(context), provider_id)
        return self._observe(context, node, site)

    def _read_many(self, context: Context, nodes: list[tuple[Node, str]]) -> dict[str, Observed | None]:
        listed = {s.name: s for s in context.client.mgmt("web").web_apps.list_by_resource_group(_rg(context))}
        return {n.id: self._observe(context, n, listed[pid]) if pid in listed else None for n, pid in nodes}

    # -- writing ---------------------------------------------------------------------------------------

    def _put(self, context: Context, node: Node, image: str, runtime_config: str) -> Observed:
        """Create or bring up to date the web app, all of it in one PUT (its site config and app settings
        with it)."""
        p = node.properties
        client = context.client
        identity = client.mgmt("msi").user_assigned_identities.get(_rg(context), p["identity_name"])
        client_id = str(identity.client_id)
        settings = {**p["settings"], "AZURE_CLIENT_ID": client_id, delivery.SETTING: runtime_config}
        if p["secrets"]:
            vault = client.mgmt("keyvault").vaults.get(_rg(context), p["vault"])
            uri = str(vault.properties.vault_uri)
            for setting, secret in p["secrets"].items():
                settings[setting] = names.key_vault_reference(uri, secret)
        site_config: dict[str, Any] = {
            "linuxFxVersion": DOCKER + image,
            "appCommandLine": " ".join(host_command(p["port"])),
            "minTlsVersion": p["min_tls"],
            "scmMinTlsVersion": p["min_tls"],
            "ftpsState": p["ftps"],
            "http20Enabled": True,
            "alwaysOn": True,
            "vnetRouteAllEnabled": bool(p["subnet"]),
            "appSettings": [{"name": k, "value": v} for k, v in sorted(settings.items())],
        }
        if image.split("/", 1)[0].endswith(ACR_SUFFIX):  # pulled with the service's identity (AcrPull)
            site_config["acrUseManagedIdentityCreds"] = True
            site_config["acrUserManagedIdentityID"] = client_id
        body: dict[str, Any] = {
            "location": client.location,
            "kind": "app,linux,container",
            "tags": self.tags(context, node),
            "identity": {"type": "UserAssigned", "userAssignedIdentities": {identity.id: {}}},
            "properties": {
                "serverFarmId": p["plan"],
                "httpsOnly": p["https_only"],
                "keyVaultReferenceIdentity": identity.id,
                "virtualNetworkSubnetId": p["subnet"],
                "clientAffinityEnabled": False,
                "siteConfig": site_config,
            },
        }
        operation = client.mgmt("web").web_apps.begin_create_or_update(_rg(context), p["name"], body)
        site = client.wait(context, operation, f"web app {p['name']}")
        return self._observe(context, node, site)

    def _create(self, context: Context, node: Node) -> Observed:
        image = node.properties["image"]
        if not image:
            raise UserError(
                f"{node.id}: no image to run: give one with --image (Azure has no default image for skyrig)",
                "deploy with skyrig apply --image REGISTRY/IMAGE:TAG, or set image in [env.NAME.azure]",
            )
        return self._put(context, node, image, delivery.PLACEHOLDER)

    def _update(self, context: Context, node: Node, provider_id: str, changes: Mapping[str, Any]) -> Observed:
        web = context.client.mgmt("web")
        config = as_json(web.web_apps.get_configuration(_rg(context), provider_id)).get("properties") or {}
        settings = delivery.app_settings(context, provider_id)
        # no image asked: keep what runs; the config delivered last stays until the next delivery
        image = node.properties["image"] or image_of(config.get("linuxFxVersion"))
        if not image:
            return self._create(context, node)
        held = settings.get(delivery.SETTING) or delivery.PLACEHOLDER
        return self._put(context, node, image, held)

    def _delete(self, context: Context, node: Node, provider_id: str) -> None:
        context.client.mgmt("web").web_apps.delete(_rg(context), provider_id)

    def runtime_entry(self, node: Node, observed: Observed) -> dict[str, Any] | None:
        return {"type": self.type, "url": observed.outputs.get("url")}

    def inventory(self, context: Context) -> list[str]:
        sites = context.client.mgmt("web").web_apps
        return owned_names(self, context, lambda: sites.list_by_resource_group(_rg(context)))


def _referenced_secret(value: str | None) -> str | None:
    """The Key Vault secret an app setting's reference names (``@Microsoft.KeyVault(SecretUri=.../secrets/
    NAME/)``), or None for a plain value."""
    text = value or ""
    if not text.startswith("@Microsoft.KeyVault(") or "/secrets/" not in text:
        return None
    return text.split("/secrets/", 1)[1].split("/", 1)[0].rstrip(")")


def _lower(value: Any) -> Any:
    return value.lower() if isinstance(value, str) else value


def host_command(port: int) -> list[str]:
    """The container's command: the service host on ``port``."""
    return ["uvicorn", "--factory", "skyrig.runtime.host:create", "--host", "0.0.0.0", "--port", str(port)]


# -- Container Apps: the jobs' environment and the jobs --------------------------------------------------


class JobsEnvironmentType(AzureNodeType):
    """The environment's Container Apps managed environment (Consumption), where the migration jobs and the
    cron jobs run; integrated with the jobs subnet where the network family makes one."""

    type = "azure.compute.jobs"
    identity = frozenset({"name"})
    replace_on = frozenset({"name", "subnet"})

    def _observe(self, node: Node, found: Any) -> Observed:
        environment = as_json(found)
        vnet = (environment.get("properties") or {}).get("vnetConfiguration") or {}
        properties = {"name": environment["name"], "subnet": _lower(vnet.get("infrastructureSubnetId"))}
        return self.observed(node, environment["name"], properties, {"id": environment["id"]})

    def _read(self, context: Context, node: Node, provider_id: str) -> Observed | None:
        found = context.client.mgmt("appcontainers").managed_environments.get(_rg(context), provider_id)
        return self._observe(node, found)

    def _find(self, context: Context, node: Node) -> Observed | None:
        return self._read(context, node, node.properties["name"])

    def _create(self, context: Context, node: Node) -> Observed:
        name, subnet = node.properties["name"], node.properties["subnet"]
        body: dict[str, Any] = {
            "location": context.client.location,
            "tags": self.tags(context, node),
            "properties": {"zoneRedundant": False},
        }
        if subnet:
            body["properties"]["vnetConfiguration"] = {"infrastructureSubnetId": subnet, "internal": False}
        environments = context.client.mgmt("appcontainers").managed_environments
        operation = environments.begin_create_or_update(_rg(context), name, body)
        return self._observe(
            node, context.client.wait(context, operation, f"Container Apps environment {name}")
        )

    def _update(self, context: Context, node: Node, provider_id: str, changes: Mapping[str, Any]) -> Observed:
        return self._read(context, node, provider_id)  # type: ignore[return-value]

    def _delete(self, context: Context, node: Node, provider_id: str) -> None:
        environments = context.client.mgmt("appcontainers").managed_environments
        operation = environments.begin_delete(_rg(context), provider_id)
        context.client.wait(context, operation, f"deleting Container Apps environment {provider_id}")

    def inventory(self, context: Context) -> list[str]:
        environments = context.client.mgmt("appcontainers").managed_environments
        return owned_names(self, context, lambda: environments.list_by_resource_group(_rg(context)))


JOB_CPU, JOB_MEMORY = 0.5, "1Gi"
"""A job's container (Consumption pairs CPU and memory: 0.5 vCPU / 1 GiB)."""


class ContainerJobType(NamedNodeType):
    """A Container Apps job skyrig makes (a database's migrations, a cron job's trigger) of the services'
    image under a service's identity: subclasses say its trigger (``_configuration``), its container
    (``_container``), how it reads back (``_observe``) and what follows a change (``_after_change``). Found
    by its name, refreshed with one list call, listed by its tags."""

    identity = frozenset({"name"})
    replace_on = frozenset({"name", "environment"})
    keeps_image = False
    """Whether an update without an image asked keeps the image the job runs (else: its service's)."""

    def _observe(self, context: Context, node: Node, job: Any) -> Observed:
        raise NotImplementedError

    def _configuration(self, context: Context, node: Node) -> dict[str, Any]:
        raise NotImplementedError

    def _container(self, context: Context, node: Node, image: str, client_id: str) -> dict[str, Any]:
        raise NotImplementedError

    def _after_change(self, context: Context, node: Node) -> None:
        """What follows a create or an update of the job (nothing by default)."""

    def _read(self, context: Context, node: Node, provider_id: str) -> Observed | None:
        job = context.client.mgmt("appcontainers").jobs.get(_rg(context), provider_id)
        return self._observe(context, node, job)

    def _read_many(self, context: Context, nodes: list[tuple[Node, str]]) -> dict[str, Observed | None]:
        jobs = context.client.mgmt("appcontainers").jobs.list_by_resource_group(_rg(context))
        listed = {job.name: job for job in jobs}
        return {n.id: self._observe(context, n, listed[pid]) if pid in listed else None for n, pid in nodes}

    def _put(self, context: Context, node: Node, image: str) -> Observed:
        p = node.properties
        client = context.client
        identity = client.mgmt("msi").user_assigned_identities.get(_rg(context), p["identity_name"])
        configuration = self._configuration(context, node)
        registry = image.split("/", 1)[0]
        if registry.endswith(ACR_SUFFIX):  # pulled with the service's identity (AcrPull)
            configuration["registries"] = [{"server": registry, "identity": identity.id}]
        container = self._container(context, node, image, str(identity.client_id))
        body = {
            "location": client.location,
            "tags": self.tags(context, node),
            "identity": {"type": "UserAssigned", "userAssignedIdentities": {identity.id: {}}},
            "properties": {
                "environmentId": client.resource_id(
                    "Microsoft.App/managedEnvironments", p["environment_name"]
                ),
                "configuration": configuration,
                "template": {"containers": [container]},
            },
        }
        operation = client.mgmt("appcontainers").jobs.begin_create_or_update(_rg(context), p["name"], body)
        client.wait(context, operation, f"Container Apps job {p['name']}")
        self._after_change(context, node)
        return self._read(context, node, p["name"])  # type: ignore[return-value]

    def _service_image(self, context: Context, node: Node) -> str | None:
        """The image the job's service's web app runs, if it runs."""
        web = context.client.mgmt("web").web_apps
        try:
            config = as_json(web.get_configuration(_rg(context), node.properties["site"]))
        except NotFound:
            return None
        return image_of((config.get("properties") or {}).get("linuxFxVersion"))

    def _create(self, context: Context, node: Node) -> Observed:
        image = node.properties["image"] or self._service_image(context, node)
        if not image:
            raise UserError(
                f"{node.id}: no image to run: give one with --image (Azure has no default image for skyrig)",
                "deploy with skyrig apply --image REGISTRY/IMAGE:TAG, or set image in [env.NAME.azure]",
            )
        return self._put(context, node, image)

    def _update(self, context: Context, node: Node, provider_id: str, changes: Mapping[str, Any]) -> Observed:
        image = node.properties["image"]
        if not image and self.keeps_image:  # no image asked: keep what it runs
            current = as_json(context.client.mgmt("appcontainers").jobs.get(_rg(context), provider_id))
            containers = ((current.get("properties") or {}).get("template") or {}).get("containers") or [{}]
            image = containers[0].get("image")
        if not image:
            return self._create(context, node)
        return self._put(context, node, image)

    def _delete(self, context: Context, node: Node, provider_id: str) -> None:
        operation = context.client.mgmt("appcontainers").jobs.begin_delete(_rg(context), provider_id)
        context.client.wait(context, operation, f"deleting Container Apps job {provider_id}")

    def inventory(self, context: Context) -> list[str]:
        """The environment's jobs of this type (the ``skyrig-node`` tag starts with its node ids')."""
        prefix = self.node_prefix
        try:
            listed = context.client.mgmt("appcontainers").jobs.list_by_resource_group(_rg(context))
        except NotFound:
            return []
        return sorted(
            job.name
            for job in listed
            if self.owned(context, job.tags)
            and str((job.tags or {}).get(names.TAG_NODE, "")).startswith(prefix)
        )

    node_prefix = ""
    """The start of the node ids of this type's jobs (``compute.migration/``)."""


def _variables(container: dict[str, Any]) -> dict[str, Any]:
    return {e.get("name"): e.get("value") for e in container.get("env") or []}


def _first_container(job: dict[str, Any]) -> dict[str, Any]:
    return (((job.get("properties") or {}).get("template") or {}).get("containers") or [{}])[0]


_FINISHED = frozenset({"succeeded", "failed", "stopped", "degraded"})


class MigrationType(ContainerJobType):
    """A database's migrations: a Container Apps job (started by hand) of the services' image, under the
    owning service's identity, run (and waited for) when it is made and whenever the migrations change,
    before the services roll out. Read back as the migrations of its latest execution when that execution
    succeeded and ran the job as it is now (none otherwise, so that the next apply runs it again)."""

    type = "azure.compute.migration"
    invariant = frozenset({"migrations"})
    node_prefix = "compute.migration/"

    def _observe(self, context: Context, node: Node, found: Any) -> Observed:
        job = as_json(found)
        container = _first_container(job)
        wanted = _variables(container).get("SKYRIG_MIGRATIONS")
        executions = context.client.mgmt("appcontainers").jobs_executions.list(_rg(context), job["name"])
        latest = max((as_json(e) for e in executions), key=_started, default=None)
        ran = None
        if latest is not None:
            properties = latest.get("properties") or {}
            ran_with = _variables(((properties.get("template") or {}).get("containers") or [{}])[0])
            if str(properties.get("status", "")).lower() == "succeeded" and ran_with == _variables(container):
                ran = json.loads(wanted or "[]")
        observed = {
            "name": job["name"],
            "image": container.get("image") if node.properties.get("image") else None,
            "migrations": ran,
        }
        return self.observed(node, job["name"], observed, {"job": job["id"]})

    def _configuration(self, context: Context, node: Node) -> dict[str, Any]:
        return {
            "triggerType": "Manual",
            "replicaTimeout": 1800,
            "replicaRetryLimit": 0,
            "manualTriggerConfig": {"parallelism": 1, "replicaCompletionCount": 1},
        }

    def _container(self, context: Context, node: Node, image: str, client_id: str) -> dict[str, Any]:
        from skyrig_azure import sql

        p = node.properties
        server = context.client.mgmt("postgresql").servers.get(_rg(context), p["server"])
        variables = {
            **p["variables"],
            "SKYRIG_APP": context.app,
            "SKYRIG_ENVIRONMENT": context.environment.name,
            "AZURE_CLIENT_ID": client_id,
            "SKYRIG_DB_HOST": str(as_json(server).get("properties", {}).get("fullyQualifiedDomainName")),
            "SKYRIG_DB_PASSWORD": str(sql.connection(context)["password"]),  # the secret's URI, no value
        }
        return {
            "name": "migrate",
            "image": image,
            "command": list(p["command"]),
            "env": [{"name": k, "value": v} for k, v in sorted(variables.items())],
            "resources": {"cpu": JOB_CPU, "memory": JOB_MEMORY},
        }

    def _after_change(self, context: Context, node: Node) -> None:
        """Run the migrations, and wait for them."""
        from skyrig.provider import ProviderError, wait_for

        client, p = context.client, node.properties
        apps = client.mgmt("appcontainers")
        started = client.wait(
            context, apps.jobs.begin_start(_rg(context), p["name"]), f"starting {p['name']}"
        )
        execution = str(as_json(started).get("name"))
        status = {"value": "Running"}

        def check() -> tuple[bool, str]:
            found = as_json(apps.job_execution(_rg(context), p["name"], execution))
            status["value"] = str((found.get("properties") or {}).get("status") or "Running")
            return status["value"].lower() in _FINISHED, status["value"]

        wait_for(context, f"the migrations of database {p['database']}", check)
        if status["value"].lower() != "succeeded":
            raise ProviderError(
                f"{node.id}: the migrations of database {p['database']} ended {status['value']} "
                f"(execution {execution} of Container Apps job {p['name']}, shown in the portal); the next "
                "apply runs them again"
            )


def _started(execution: dict[str, Any]) -> str:
    return str((execution.get("properties") or {}).get("startTime") or "")


PLAN = PlanType()
SITE = SiteType()
JOBS = JobsEnvironmentType()
MIGRATION = MigrationType()
TYPES = (PLAN, SITE, JOBS, MIGRATION)


def group_id(scope: Scope) -> str:
    """The ARM id of the environment's resource group, from the settings."""
    settings = scope.settings
    group = settings.resource_group or names.resource_group_name(scope.app, scope.environment.name)
    return f"/subscriptions/{settings.subscription_id}/resourceGroups/{group}"


def arm_id(scope: Scope, namespace_type: str, *parts: str) -> str:
    """The ARM id of a resource of the environment's resource group (lower case, as compared)."""
    namespace, *kinds = namespace_type.split("/")
    path = "/".join(f"{kind}/{name}" for kind, name in zip(kinds, parts, strict=True))
    return f"{group_id(scope)}/providers/{namespace}/{path}".lower()


def service_settings(scope: Scope, service: Any) -> dict[str, str]:
    """A service's plain app settings (its container's environment, besides the runtime config, the
    identity's client id and the secret references)."""
    return {
        "SKYRIG_APP": scope.app,
        "SKYRIG_ENVIRONMENT": scope.environment.name,
        "SKYRIG_SERVICE": service.name,
        "SKYRIG_SERVICE_APP": service.app,
        "WEBSITES_PORT": str(scope.settings.service_port),
        "WEBSITES_ENABLE_APP_SERVICE_STORAGE": "false",
    }


def jobs_environment(scope: Scope) -> Node:
    """The Container Apps environment's node (integrated with the jobs subnet where there is one)."""
    from skyrig_azure import network

    app, env = scope.app, scope.environment.name
    subnet = None
    depends = [names.RESOURCE_GROUP_ID]
    if "jobs" in network.subnets_needed(scope):
        subnet = arm_id(scope, "Microsoft.Network/virtualNetworks/subnets", names.vnet_name(app, env), "jobs")
        depends.append(names.JOBS_SUBNET_ID)
    properties = {"name": names.container_environment_name(app, env), "subnet": subnet}
    return scope.node(names.JOBS_ENVIRONMENT_ID, JOBS.type, properties, tuple(depends))


def migrations(scope: Scope) -> list[Node]:
    """A migration job per database whose service runs here (the sql family says what it runs)."""
    from skyrig_azure import sql

    services = {s.name for s in scope.of_kind("service")}
    app, env, settings = scope.app, scope.environment.name, scope.settings
    nodes = []
    for database in sorted(scope.of_kind("sql_database"), key=lambda d: d.name):
        if database.service not in services:
            continue
        job = sql.migration_job(scope, database)
        identity_name = names.identity_name(app, env, database.service)
        environment = names.container_environment_name(app, env)
        depends = {
            job["after"],
            names.SQL_SERVER_ID,
            names.JOBS_ENVIRONMENT_ID,
            names.identity_id(database.service),
            *(
                iam.assignment_id(database.service, g["target"], g["role"])
                for g in iam.grants(scope, database.service)
            ),
        }
        properties = {
            "name": job["name"],
            "database": database.name,
            "service": database.service,
            "site": names.site_name(settings.subscription_id, app, env, database.service),
            "server": names.sql_server_name(settings.subscription_id, app, env),
            "image": settings.image,
            "identity_name": identity_name,
            "environment_name": environment,
            "environment": arm_id(scope, "Microsoft.App/managedEnvironments", environment),
            "command": list(job["command"]),
            "variables": dict(job["environment"]),
            "migrations": job["migrations"],
        }
        nodes.append(
            scope.node(names.migration_id(database.name), MIGRATION.type, properties, tuple(sorted(depends)))
        )
    return nodes


def expand(scope: Scope) -> list[Node]:
    services = scope.of_kind("service")
    if not services:
        return []
    migrated = migrations(scope)
    databases = {node.properties["database"] for node in migrated}
    settings = scope.settings
    app, env, subscription = scope.app, scope.environment.name, settings.subscription_id
    plan_name = names.plan_name(app, env)
    nodes = [
        scope.node(
            names.APP_PLAN_ID,
            PLAN.type,
            {
                "name": plan_name,
                "sku": settings.app_service_sku,
                "workers": settings.app_service_workers,
                "linux": True,
            },
            (names.RESOURCE_GROUP_ID,),
        )
    ]
    subnet = arm_id(scope, "Microsoft.Network/virtualNetworks/subnets", names.vnet_name(app, env), "app")
    for service in sorted(services, key=lambda s: s.name):
        uses = [u for u in scope.model.uses_by(service.name) if u.kind in scope.kinds]
        secrets = sorted({u.resource for u in uses if u.kind == "secret"})
        owned = {
            f"@{r.kind}/{r.name}"
            for kind in RESOURCE_KINDS
            if kind != "cron_job"
            for r in scope.of_kind(kind)
            if r.service == service.name
        }
        depends = {
            names.RESOURCE_GROUP_ID,
            names.APP_PLAN_ID,
            names.APP_SUBNET_ID,
            names.identity_id(service.name),
            # its roles first: App Service resolves its Key Vault references when it starts
            *(
                iam.assignment_id(service.name, g["target"], g["role"])
                for g in iam.grants(scope, service.name)
            ),
            *(f"@{u.kind}/{u.resource}" for u in uses),
            *owned,
        }
        if secrets:
            depends.add(names.KEY_VAULT_ID)
        wanted = {u.resource for u in uses if u.kind == "sql_database"}
        wanted |= {d.name for d in scope.of_kind("sql_database") if d.service == service.name}
        depends |= {names.migration_id(database) for database in wanted & databases}  # migrated first
        identity_name = names.identity_name(app, env, service.name)
        properties = {
            "name": names.site_name(subscription, app, env, service.name),
            "service": service.name,
            "image": settings.image,
            "port": settings.service_port,
            "plan": arm_id(scope, "Microsoft.Web/serverfarms", plan_name),
            "https_only": True,
            "min_tls": MIN_TLS,
            "ftps": FTPS,
            "subnet": subnet,
            "identity_name": identity_name,
            "identity": arm_id(scope, "Microsoft.ManagedIdentity/userAssignedIdentities", identity_name),
            "vault": names.key_vault_name(subscription, app, env) if secrets else None,
            "settings": service_settings(scope, service),
            "secrets": {names.secret_setting(s): names.vault_secret_name(s) for s in secrets},
        }
        nodes.append(
            scope.node(
                names.site_id(service.name),
                SITE.type,
                properties,
                tuple(sorted(depends)),
                resource=service,
            )
        )
    if migrated or scope.of_kind("cron_job"):
        nodes.append(jobs_environment(scope))
    return nodes + migrated
