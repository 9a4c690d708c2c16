"""The cron family against the FAKE Azure Resource Manager (Container Apps, App Service, Key Vault: Azure
Resource Manager has no emulator; see skyrig_azure.fake): a Container Apps job per cron job, with a
Schedule trigger (the job's cron expression, UTC), runs the service's image under the service's identity
with the job and the service's URL; the signing key is made in the Key Vault and never shown; the service
host reads the key the jobs sign with, and run_job (what a fired schedule does) signs as the host
verifies. Read back through Microsoft's own management clients."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from skyrig_azure import names
from skyrig_azure.conformance import SUBSCRIPTION
from skyrig_azure.credentials import EmulatorCredential
from skyrig_azure.cron import schedule
from skyrig_conformance.folder import AppFolder

IMAGE = "skyrigconformance.azurecr.io/app:test"

APP = {
    "web/__init__.py": """
        from skyrig import Service

        service = Service("web", app="web.app:app")
    """,
    "web/app.py": """
        async def app(scope, receive, send):
            pass
    """,
    "web/jobs.py": """
        from skyrig import CronJob


        def tick() -> None:
            pass


        CronJob("tick", title="Tick", every="1h", endpoint=tick)
        CronJob("nightly", title="Nightly", schedule="30 2 * * *", endpoint=tick)
    """,
}


ARM_ONLY = True
"""The FAKE ARM (with Key Vault) alone (tests/conftest.py): cron needs neither Service Bus nor Blob
Storage."""


def mgmt(arm: Any, module: str, cls: str) -> Any:
    """A management client of ``module``, on the FAKE."""
    import importlib

    client_class = getattr(importlib.import_module(module), cls)
    return client_class(
        EmulatorCredential(),
        SUBSCRIPTION,
        base_url=arm.endpoint,
        connection_verify=arm.ca_bundle,
        credential_scopes=["https://management.azure.com/.default"],
        polling_interval=0.01,
    )


def signing_key(arm: Any, app: AppFolder) -> str:
    return arm.vault(names.key_vault_name(SUBSCRIPTION, app.name, "dev")).value(names.SIGNING_KEY_SECRET)


def runtime_entry(app: AppFolder, job: str) -> dict[str, Any]:
    config = json.loads((app.root / ".skyrig" / "runtime" / "dev" / "web.json").read_text())
    return dict(config["resources"][f"cron_job/{job}"])


@pytest.mark.parametrize(
    ("cron", "every", "expected"),
    [
        ("30 2 * * 1", None, "30 2 * * 1"),
        (None, "5m", "*/5 * * * *"),
        (None, "1h", "0 * * * *"),
        (None, "6h", "0 */6 * * *"),
        (None, "1d", "0 0 * * *"),
    ],
)
def test_schedules_are_five_field_cron_expressions_in_utc(cron, every, expected):
    assert schedule(cron, every) == expected


def test_each_cron_job_is_a_scheduled_container_apps_job_of_its_services_image_and_identity(azure_app, arm):
    azure_app.write(APP)
    azure_app.apply()
    rg = names.resource_group_name(azure_app.name, "dev")
    apps = mgmt(arm, "azure.mgmt.appcontainers", "ContainerAppsAPIClient")
    environment = apps.managed_environments.get(rg, names.container_environment_name(azure_app.name, "dev"))
    site = mgmt(arm, "azure.mgmt.web", "WebSiteManagementClient").web_apps.get(
        rg, names.site_name(SUBSCRIPTION, azure_app.name, "dev", "web")
    )
    [service_identity] = site.identity.user_assigned_identities
    client_id = site.identity.user_assigned_identities[service_identity].client_id
    vault = names.key_vault_name(SUBSCRIPTION, azure_app.name, "dev")
    vault_uri = (
        mgmt(arm, "azure.mgmt.keyvault", "KeyVaultManagementClient")
        .vaults.get(rg, vault)
        .properties.vault_uri
    )
    for job, expected in (("tick", "0 * * * *"), ("nightly", "30 2 * * *")):
        found = apps.jobs.get(rg, names.cron_job_name(azure_app.name, "dev", job))
        assert found.environment_id.lower() == environment.id.lower()
        assert found.configuration.trigger_type == "Schedule"
        assert found.configuration.schedule_trigger_config.cron_expression == expected
        assert list(found.identity.user_assigned_identities) == [service_identity], (
            "not the service's identity"
        )
        [container] = found.template.containers
        assert container.image == IMAGE, "the job does not run the service's image"
        assert list(container.command) == ["python", "-m", "skyrig_azure.runtime.cron"]
        assert list(container.args) == [job, f"https://{site.default_host_name}"]
        variables = {variable.name: variable.value for variable in container.env}
        assert variables["SKYRIG_SIGNING_KEY_VAULT"] == vault_uri
        assert variables["AZURE_CLIENT_ID"] == client_id
        assert all(signing_key(arm, azure_app) not in str(value) for value in variables.values())
        [registry] = found.configuration.registries
        assert registry.identity == service_identity, "the image is not pulled with the service's identity"


def test_the_signing_key_is_made_in_the_key_vault_and_never_shown(azure_app, arm):
    azure_app.write(APP)
    output = azure_app.apply().text + azure_app.cli("plan", "--env", "dev", "--json").text
    key = signing_key(arm, azure_app)
    assert len(key) == 64
    state = b"".join(path.read_bytes() for path in (azure_app.root / ".skyrig").rglob("*") if path.is_file())
    assert key not in output and key.encode() not in state, "the signing key leaked"
    arm.calls.clear()
    assert "nothing to do" in azure_app.apply().text
    assert arm.calls.mutating() == [], "a second apply changed something"
    # the refresh lists the jobs once (not one read per job) and reads the environment once
    assert arm.calls.count("Microsoft.App/jobs", "GET") == 1
    assert arm.calls.count("Microsoft.App/managedEnvironments", "GET") == 1


def test_a_schedule_changed_in_the_portal_is_restored(azure_app, arm):
    azure_app.write(APP)
    azure_app.apply()
    rg = names.resource_group_name(azure_app.name, "dev")
    name = names.cron_job_name(azure_app.name, "dev", "tick")
    job_id = f"/subscriptions/{SUBSCRIPTION}/resourceGroups/{rg}/providers/Microsoft.App/jobs/{name}"
    arm.edit(
        job_id, {"properties": {"configuration": {"scheduleTriggerConfig": {"cronExpression": "0 0 1 1 *"}}}}
    )
    [change] = azure_app.plan()
    assert change["node"] == "cron.job/tick" and change["action"] == "update"
    azure_app.apply()
    apps = mgmt(arm, "azure.mgmt.appcontainers", "ContainerAppsAPIClient")
    assert apps.jobs.get(rg, name).configuration.schedule_trigger_config.cron_expression == "0 * * * *"
    assert azure_app.plan() == []


def test_run_job_signs_as_the_service_host_verifies(azure_app, arm):
    from skyrig.config import load_config
    from skyrig.engine.session import Session
    from skyrig.runtime.signing import HEADER, SignatureError, verify
    from skyrig_azure import provider
    from skyrig_azure.runtime.cron import CronClient

    azure_app.write(APP)
    azure_app.apply()
    entry = runtime_entry(azure_app, "tick")
    assert entry["signing_key"] == names.SIGNING_KEY_SECRET, "the runtime config names another key"
    key = CronClient(entry).signing_key()
    assert key == signing_key(arm, azure_app).encode(), "the service host reads another key"
    seen: list[tuple[str, int]] = []

    class Host(BaseHTTPRequestHandler):
        """Checks the signature as the service host does (the key from CronClient)."""

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("content-length") or 0))
            try:
                verify(key, self.headers.get(HEADER), "POST", self.path, body)
                status = 200
            except SignatureError:
                status = 401
            seen.append((self.path, status))
            answer = json.dumps({"job": "tick", "ok": status == 200, "error": None, "seconds": 0}).encode()
            self.send_response(status)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Host)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        session = Session(load_config(azure_app.root), "dev")
        try:
            provider.run_cron_job(session.context("azure"), "tick", f"http://127.0.0.1:{server.server_port}")
        finally:
            session.store.close()
    finally:
        server.shutdown()
        thread.join(10)
    assert seen == [("/__skyrig/cron/tick", 200)], "the request was not signed with the environment's key"


def test_a_job_whose_create_failed_converges_without_a_twin(azure_app, arm):
    from skyrig.cli.testing import invoke

    azure_app.write(APP)
    arm.inject(500, type="Microsoft.App/jobs", method="PUT", times=10_000)
    assert invoke(["apply", "--env", "dev", "--yes", "-C", str(azure_app.root)]).code != 0
    with arm.lock:  # the FAKE has no public call to forget the failures still to come
        arm._injections.clear()
    azure_app.apply()
    jobs = arm.resources("Microsoft.App/jobs")
    assert sorted(r.rsplit("/", 1)[-1] for r in jobs) == sorted(
        names.cron_job_name(azure_app.name, "dev", job) for job in ("tick", "nightly")
    )
    assert azure_app.plan() == []


def test_destroy_leaves_no_job(azure_app, arm):
    azure_app.write(APP)
    azure_app.apply()
    azure_app.cli("destroy", "--env", "dev", "--yes")
    left = [r for r in arm.resources() if "/providers/microsoft.app/" in r.lower()]
    assert left == [], "destroy left Container Apps resources behind"


def test_a_job_runs_the_image_deployed_and_keeps_it_until_another_is_asked_for(azure_app, arm):
    azure_app.write(APP, image=None)
    first, second = (f"skyrigconformance.azurecr.io/app:{tag}" for tag in ("v1", "v2"))
    azure_app.apply("--image", first)
    rg = names.resource_group_name(azure_app.name, "dev")
    apps = mgmt(arm, "azure.mgmt.appcontainers", "ContainerAppsAPIClient")
    name = names.cron_job_name(azure_app.name, "dev", "tick")
    assert apps.jobs.get(rg, name).template.containers[0].image == first
    assert azure_app.plan() == [], "a plan without --image would change the jobs' image"
    changes = {c["node"] for c in azure_app.plan("--image", second)}
    assert changes == {"compute.site/web", "cron.job/tick", "cron.job/nightly"}
    azure_app.apply("--image", second)
    assert apps.jobs.get(rg, name).template.containers[0].image == second
    assert azure_app.plan() == []
