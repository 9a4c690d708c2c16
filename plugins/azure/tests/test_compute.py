"""The compute family against the FAKE Azure Resource Manager (App Service, managed identities, Key Vault:
Azure Resource Manager has no emulator; see skyrig_azure.fake): each service runs as a web app for
containers on the environment's Linux App Service Plan, under its own identity, VNet-integrated, HTTPS
only with TLS 1.2 and FTPS off, with its runtime config and its secrets as Key Vault references (never a
value); the image deployed sticks until another is asked for; tunables changed in the portal are adopted
and invariants restored; an interrupted create converges; a second apply changes nothing; destroy leaves
nothing. Read back through Microsoft's own management client, as someone checking the portal would."""

from __future__ import annotations

import json
from typing import Any

from skyrig_azure import names
from skyrig_azure.conformance import SUBSCRIPTION
from skyrig_azure.credentials import EmulatorCredential
from skyrig_conformance.folder import AppFolder

IMAGE = "skyrigconformance.azurecr.io/app:test"
CANARY = "canary-7f3c2e9a41d0b6c5"

APP = {
    "web/__init__.py": """
        from skyrig import Service

        service = Service("web", app="web.app:app")
    """,
    "web/app.py": """
        async def app(scope, receive, send):
            pass
    """,
}
SECRET_APP = {
    **APP,
    "web/app.py": """
        from skyrig import Secret

        stripe = Secret("stripe-api-key")


        async def app(scope, receive, send):
            stripe.get()
    """,
}


ARM_ONLY = True
"""The FAKE ARM (with Key Vault) alone (tests/conftest.py): compute needs neither Service Bus nor Blob
Storage."""


def web(arm: Any) -> Any:
    """The App Service management client, on the FAKE."""
    from azure.mgmt.web import WebSiteManagementClient

    return WebSiteManagementClient(
        EmulatorCredential(),
        SUBSCRIPTION,
        base_url=arm.endpoint,
        connection_verify=arm.ca_bundle,
        credential_scopes=["https://management.azure.com/.default"],
        polling_interval=0.01,
    )


def group(app: AppFolder) -> str:
    return names.resource_group_name(app.name, "dev")


def site_name(app: AppFolder, service: str = "web") -> str:
    return names.site_name(SUBSCRIPTION, app.name, "dev", service)


def site_id(app: AppFolder) -> str:
    return f"/subscriptions/{SUBSCRIPTION}/resourceGroups/{group(app)}/providers/Microsoft.Web/sites/{site_name(app)}"


def plan_id(app: AppFolder) -> str:
    plan = names.plan_name(app.name, "dev")
    return f"/subscriptions/{SUBSCRIPTION}/resourceGroups/{group(app)}/providers/Microsoft.Web/serverfarms/{plan}"


def clear_injections(arm: Any) -> None:
    """Forget the failures still to come (the fake has no public call for it; reset would wipe it all)."""
    with arm.lock:
        arm._injections.clear()


def settings_of(arm: Any, app: AppFolder) -> dict[str, str]:
    return dict(web(arm).web_apps.list_application_settings(group(app), site_name(app)).properties)


def test_a_service_runs_as_a_vnet_integrated_https_only_web_app_under_its_own_identity(azure_app, arm):
    azure_app.write(SECRET_APP)
    azure_app.apply()
    client, rg = web(arm), group(azure_app)
    plan = client.app_service_plans.get(rg, names.plan_name(azure_app.name, "dev"))
    assert plan.reserved is True and plan.kind == "linux", "the plan is not a Linux plan"
    assert (plan.sku.name, plan.sku.capacity) == ("P0v3", 1)
    site = client.web_apps.get(rg, site_name(azure_app))
    assert site.https_only is True, "the web app serves plain HTTP"
    assert site.server_farm_id.lower() == plan.id.lower()
    assert site.virtual_network_subnet_id.lower().endswith(
        f"/virtualnetworks/{names.vnet_name(azure_app.name, 'dev')}/subnets/app"
    ), "the web app is not integrated with the app subnet"
    identity = names.identity_name(azure_app.name, "dev", "web")
    [assigned] = site.identity.user_assigned_identities
    assert assigned.lower().endswith(f"/userassignedidentities/{identity}")
    assert site.identity.type.lower() == "userassigned", "the web app has an identity besides its own"
    assert site.key_vault_reference_identity == assigned, "Key Vault references resolve as another identity"
    config = client.web_apps.get_configuration(rg, site_name(azure_app))
    assert config.linux_fx_version == f"DOCKER|{IMAGE}"
    assert config.min_tls_version == "1.2" and config.ftps_state == "Disabled"
    assert config.vnet_route_all_enabled is True
    assert config.acr_use_managed_identity_creds is True, "the image is not pulled with the identity"
    assert "skyrig.runtime.host:create" in config.app_command_line
    settings = settings_of(arm, azure_app)
    written = json.loads((azure_app.root / ".skyrig" / "runtime" / "dev" / "web.json").read_text())
    assert json.loads(settings["SKYRIG_RUNTIME_CONFIG"]) == written, "the runtime config was not delivered"
    assert settings["WEBSITES_PORT"] == "8080" and settings["SKYRIG_SERVICE"] == "web"
    assert settings["AZURE_CLIENT_ID"] == str(site.identity.user_assigned_identities[assigned].client_id)
    vault = names.key_vault_name(SUBSCRIPTION, azure_app.name, "dev")
    reference = settings[names.secret_setting("stripe-api-key")]
    assert reference.startswith("@Microsoft.KeyVault(SecretUri=")
    assert reference.endswith(f"/secrets/{names.vault_secret_name('stripe-api-key')}/)")
    assert arm.resources("Microsoft.KeyVault/vaults")[0].endswith(f"/vaults/{vault}")


def test_no_secret_value_is_in_app_settings_plans_or_state(azure_app, arm):
    from skyrig.cli.testing import invoke

    azure_app.write(SECRET_APP)
    azure_app.apply()
    result = invoke(
        ["secret", "set", "stripe-api-key", "--env", "dev", "-C", str(azure_app.root)], stdin=CANARY
    )
    assert result.code == 0, result.text
    output = azure_app.apply().text + azure_app.cli("plan", "--env", "dev", "--json").text
    settings = settings_of(arm, azure_app)
    assert all(CANARY not in value for value in settings.values()), "a secret value is in the app settings"
    state = b"".join(p.read_bytes() for p in (azure_app.root / ".skyrig").rglob("*") if p.is_file())
    assert CANARY not in output and CANARY.encode() not in state, "the secret leaked"
    vault = names.key_vault_name(SUBSCRIPTION, azure_app.name, "dev")
    assert arm.vault(vault).value(names.vault_secret_name("stripe-api-key")) == CANARY


def test_a_second_apply_makes_no_mutating_call(azure_app, arm):
    azure_app.write(APP)
    azure_app.apply()
    arm.calls.clear()
    assert "nothing to do" in azure_app.apply().text
    assert arm.calls.mutating() == [], "a second apply changed something"
    web_calls = {key: n for key, n in arm.calls.counter().items() if key[0].startswith("Microsoft.Web/")}
    # the refresh: one list of the web apps, then each one's configuration and app settings; the
    # delivery: each web app's app settings again (nothing written), the plan: one read
    assert web_calls == {
        ("Microsoft.Web/sites", "GET"): 1,
        ("Microsoft.Web/sites/config", "GET"): 1,
        ("Microsoft.Web/sites/config", "POST"): 2,
        ("Microsoft.Web/serverfarms", "GET"): 1,
    }, web_calls


def test_the_image_deployed_sticks_until_another_is_asked_for(azure_app, arm):
    azure_app.write(APP, image=None)
    first, second = (f"skyrigconformance.azurecr.io/app:{tag}" for tag in ("v1", "v2"))
    azure_app.apply("--image", first)
    client = web(arm)
    assert client.web_apps.get_configuration(group(azure_app), site_name(azure_app)).linux_fx_version == (
        f"DOCKER|{first}"
    )
    assert azure_app.plan() == [], "a plan without --image would change the image deployed"
    changes = azure_app.plan("--image", second)
    assert [c["node"] for c in changes] == ["compute.site/web"]
    azure_app.apply("--image", second)
    config = client.web_apps.get_configuration(group(azure_app), site_name(azure_app))
    assert config.linux_fx_version == f"DOCKER|{second}"
    assert json.loads(settings_of(arm, azure_app)["SKYRIG_RUNTIME_CONFIG"]), "the new image lost its config"
    assert azure_app.plan() == []


def test_a_first_apply_without_an_image_says_how_to_give_one(azure_app):
    from skyrig.cli.testing import invoke

    azure_app.write(APP, image=None)
    result = invoke(["apply", "--env", "dev", "--yes", "-C", str(azure_app.root)])
    assert result.code != 0
    assert "--image" in result.text


def test_workers_changed_in_the_portal_are_adopted_and_https_only_is_restored(azure_app, arm):
    azure_app.write(APP)
    azure_app.apply()
    arm.edit(plan_id(azure_app), {"sku": {"capacity": 3}})
    assert azure_app.plan() == [], "workers changed in the portal are not adopted"
    arm.edit(site_id(azure_app), {"properties": {"httpsOnly": False}})
    arm.edit(
        f"{site_id(azure_app)}/config/web",
        {"properties": {"minTlsVersion": "1.0", "ftpsState": "AllAllowed"}},
    )
    [change] = azure_app.plan()
    assert change["node"] == "compute.site/web" and change["action"] == "update"
    azure_app.apply()
    client = web(arm)
    site = client.web_apps.get(group(azure_app), site_name(azure_app))
    config = client.web_apps.get_configuration(group(azure_app), site_name(azure_app))
    assert site.https_only is True, "HTTPS only was not restored"
    assert (config.min_tls_version, config.ftps_state) == ("1.2", "Disabled"), "TLS and FTPS not restored"
    plan = client.app_service_plans.get(group(azure_app), names.plan_name(azure_app.name, "dev"))
    assert plan.sku.capacity == 3, "restoring the invariants reverted the workers"
    assert json.loads(settings_of(arm, azure_app)["SKYRIG_RUNTIME_CONFIG"]), "the restore lost the config"
    assert azure_app.plan() == []


def test_an_interrupted_create_converges(azure_app, arm):
    from skyrig.cli.testing import invoke

    azure_app.write(APP)
    # nothing made: every PUT of the web app fails
    arm.inject(500, type="Microsoft.Web/sites", method="PUT", times=10_000)
    assert invoke(["apply", "--env", "dev", "--yes", "-C", str(azure_app.root)]).code != 0
    assert arm.resources("Microsoft.Web/sites") == []
    clear_injections(arm)
    # made, but the apply stops before recording it: reading its configuration back fails
    arm.inject(500, type="Microsoft.Web/sites/config", method="GET", times=10_000)
    assert invoke(["apply", "--env", "dev", "--yes", "-C", str(azure_app.root)]).code != 0
    assert len(arm.resources("Microsoft.Web/sites")) == 1
    clear_injections(arm)
    azure_app.apply()
    assert arm.resources("Microsoft.Web/sites") == [site_id(azure_app)], "a twin web app was made"
    assert json.loads(settings_of(arm, azure_app)["SKYRIG_RUNTIME_CONFIG"])
    assert azure_app.plan() == []


def inventory(app: AppFolder) -> list[str]:
    """What the compute node types list as the environment's, through the provider's own API."""
    from skyrig.config import load_config
    from skyrig.engine.session import Session
    from skyrig_azure import compute

    session = Session(load_config(app.root), "dev")
    try:
        context = session.context("azure")
        return [name for node_type in compute.TYPES for name in node_type.inventory(context)]
    finally:
        session.store.close()


def test_destroy_leaves_nothing(azure_app, arm):
    azure_app.write(APP)
    azure_app.apply()
    assert sorted(inventory(azure_app)) == sorted(
        [names.plan_name(azure_app.name, "dev"), site_name(azure_app)]
    )
    azure_app.cli("destroy", "--env", "dev", "--yes")
    left = [r for r in arm.resources() if "/providers/microsoft.web/" in r.lower()]
    assert left == [], "destroy left App Service resources behind"
    assert inventory(azure_app) == []
    azure_app.cli("destroy", "--env", "dev", "--yes", "--include-data")
    assert arm.resources("Microsoft.Resources/resourceGroups") == [], "the resource group is still there"
    assert inventory(azure_app) == [], "no resource group, nothing listed"


def test_a_secret_value_pasted_into_the_app_settings_is_replaced_by_its_reference(azure_app, arm):
    azure_app.write(SECRET_APP)
    azure_app.apply()
    setting = names.secret_setting("stripe-api-key")
    reference = settings_of(arm, azure_app)[setting]
    arm.edit(f"{site_id(azure_app)}/config/appsettings", {"properties": {setting: CANARY, "EXTRA": "1"}})
    [change] = azure_app.plan()
    assert change["node"] == "compute.site/web" and change["action"] == "update"
    assert CANARY not in json.dumps(change), "the plan shows the value found in the app settings"
    output = azure_app.apply().text
    state = b"".join(p.read_bytes() for p in (azure_app.root / ".skyrig").rglob("*") if p.is_file())
    assert CANARY not in output and CANARY.encode() not in state, "the value found was kept or shown"
    settings = settings_of(arm, azure_app)
    assert settings[setting] == reference and "EXTRA" not in settings, "the app settings were not restored"
    assert json.loads(settings["SKYRIG_RUNTIME_CONFIG"]), "restoring the app settings lost the runtime config"
    assert azure_app.plan() == []


def test_migrations_run_as_a_container_apps_job_before_the_services_roll_out(azure_app, arm):
    from azure.mgmt.appcontainers import ContainerAppsAPIClient

    files = {
        **APP,
        "web/resources.py": 'from skyrig import SQLDatabase\n\nledger = SQLDatabase("ledger", migrations="./m")\n',
        "web/m/0001_t.up.sql": "CREATE TABLE t (id int);\n",
    }
    azure_app.write(files)
    graph = azure_app.graph()
    assert "compute.migration/ledger" in graph["compute.site/web"]["depends_on"], (
        "the service may roll out before its migrations"
    )
    name = graph["compute.migration/ledger"]["properties"]["name"]
    azure_app.apply()
    rg = group(azure_app)
    apps = ContainerAppsAPIClient(
        EmulatorCredential(),
        SUBSCRIPTION,
        base_url=arm.endpoint,
        connection_verify=arm.ca_bundle,
        credential_scopes=["https://management.azure.com/.default"],
    )
    job = apps.jobs.get(rg, name)
    assert job.configuration.trigger_type == "Manual"
    site = web(arm).web_apps.get(rg, site_name(azure_app))
    assert list(job.identity.user_assigned_identities) == list(site.identity.user_assigned_identities)
    [container] = job.template.containers
    assert container.image == IMAGE
    assert list(container.command) == ["python", "-m", "skyrig_azure.runtime.sql"]
    variables = {v.name: v.value for v in container.env}
    assert variables["SKYRIG_DB_HOST"].endswith(".postgres.database.azure.com")
    assert variables["SKYRIG_DB_PASSWORD"].endswith(f"/secrets/{names.SQL_ADMIN_SECRET}"), "not a reference"
    vault = names.key_vault_name(SUBSCRIPTION, azure_app.name, "dev")
    password = arm.vault(vault).value(names.SQL_ADMIN_SECRET)
    assert all(password not in str(value) for value in variables.values()), "the password is in the job"
    [execution] = list(apps.jobs_executions.list(rg, name))
    assert execution.properties.status == "Succeeded"
    assert arm.calls.count("Microsoft.App/jobs", "POST", action="start") == 1
    (azure_app.root / "web" / "m" / "0002_u.up.sql").write_text("ALTER TABLE t ADD COLUMN u int;\n")
    assert [c["node"] for c in azure_app.plan()] == ["compute.migration/ledger"]
    azure_app.apply()
    assert arm.calls.count("Microsoft.App/jobs", "POST", action="start") == 2, "a new migration did not run"
    arm.calls.clear()
    azure_app.apply()
    assert arm.calls.mutating() == [], "the migrations ran again with nothing new"
    # an execution that failed (here: marked so in the FAKE) is run again by the next apply
    [latest, *_] = sorted(
        apps.jobs_executions.list(rg, name), key=lambda e: e.properties.start_time, reverse=True
    )
    arm.edit(latest.id, {"properties": {"status": "Failed"}})
    assert [c["node"] for c in azure_app.plan()] == ["compute.migration/ledger"]
    azure_app.apply()
    assert arm.calls.count("Microsoft.App/jobs", "POST", action="start") == 1


def test_a_failed_migration_stops_the_services_rolling_out_and_runs_again(azure_app, arm):
    from skyrig.cli.testing import invoke
    from skyrig_azure.fake.registry import lookup
    from skyrig_azure.fake.resources import app as container_apps

    def failing(ctx: Any, job: dict[str, Any], body: Any) -> tuple[int, Any]:
        status, started = container_apps._start(ctx, job, body)
        arm.store[started["id"].lower()].resource["properties"]["status"] = "Failed"
        return status, started

    actions = lookup("Microsoft.App/jobs").actions
    assert isinstance(actions, dict)
    actions["start"] = failing  # every execution of this test's first apply fails
    azure_app.write(
        {
            **APP,
            "web/resources.py": 'from skyrig import SQLDatabase\n\nledger = SQLDatabase("ledger", migrations="./m")\n',
            "web/m/0001_t.up.sql": "CREATE TABLE t (id int);\n",
        }
    )
    try:
        result = invoke(["apply", "--env", "dev", "--yes", "-C", str(azure_app.root)])
    finally:
        actions["start"] = container_apps._start
    assert result.code != 0 and "the migrations of database ledger ended Failed" in result.text
    assert arm.resources("Microsoft.Web/sites") == [], "the service rolled out before its migrations"
    azure_app.apply()
    assert arm.resources("Microsoft.Web/sites") == [site_id(azure_app)]
    assert azure_app.plan() == []
