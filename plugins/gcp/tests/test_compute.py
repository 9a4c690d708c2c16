"""The compute family against the FAKE (Cloud Run, Artifact Registry, IAM: no emulator exists): each
service runs on Cloud Run under its own service account with its runtime config, the image deployed sticks
until another is asked for, tunables changed in the console are adopted, invariants are restored, and a
second apply changes nothing. Read back through Google's client libraries."""

from __future__ import annotations

import json
from typing import Any

import pytest

from skyrig_gcp import names
from skyrig_gcp.conformance import PROJECT, REGION

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


def run_services(endpoints: dict[str, str]) -> Any:
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import run_v2

    return run_v2.ServicesClient(
        credentials=AnonymousCredentials(),
        transport="rest",
        client_options={"api_endpoint": endpoints["run"]},
    )


def service_name(app: str) -> str:
    return f"projects/{PROJECT}/locations/{REGION}/services/{names.run_service_name(app, 'dev', 'web')}"


def environment(service: Any) -> dict[str, str]:
    return {variable.name: variable.value for variable in service.template.containers[0].env}


def test_a_service_runs_on_cloud_run_under_its_own_account_with_its_runtime_config(gcp_app):
    gcp_app.write(APP)
    gcp_app.apply()
    service = run_services(gcp_app.endpoints).get_service(name=service_name(gcp_app.name))
    account = names.account_email(names.account_name(gcp_app.name, "dev", "web"), PROJECT)
    assert service.template.service_account == account, "the service does not run as its own account"
    container = service.template.containers[0]
    assert container.image == "us-central1-docker.pkg.dev/skyrig-conformance/app/app:test"
    assert container.ports[0].container_port == 8080
    assert container.resources.limits == {"cpu": "1", "memory": "512Mi"}
    assert service.template.scaling.max_instance_count == 10
    written = json.loads((gcp_app.root / ".skyrig" / "runtime" / "dev" / "web.json").read_text())
    delivered = json.loads(environment(service)["SKYRIG_RUNTIME_CONFIG"])
    assert delivered == written, "the service does not run with the runtime config apply wrote"
    assert not service.template.vpc_access.network_interfaces, "no VPC egress without SQL or caches"


def test_a_second_apply_makes_no_mutating_call(gcp_app, fake):
    from skyrig_gcp.api import CALLS, mutating_calls

    gcp_app.write(APP)
    gcp_app.apply()
    fake.calls.clear()
    before = mutating_calls().copy()
    assert "nothing to do" in gcp_app.apply().text
    assert fake.calls.mutating() == [], "a second apply changed something"
    assert mutating_calls() == before
    assert CALLS  # the calls were counted


def test_the_image_deployed_sticks_until_another_is_asked_for(gcp_app):
    gcp_app.write(APP, image=None)
    first, second = (f"us-central1-docker.pkg.dev/{PROJECT}/app/app:{tag}" for tag in ("v1", "v2"))
    gcp_app.apply("--image", first)
    services = run_services(gcp_app.endpoints)
    assert services.get_service(name=service_name(gcp_app.name)).template.containers[0].image == first
    assert gcp_app.plan() == [], "a plan without --image would change the image deployed"
    changes = gcp_app.plan("--image", second)
    assert [c["node"] for c in changes] == ["compute.service/web"]
    gcp_app.apply("--image", second)
    service = services.get_service(name=service_name(gcp_app.name))
    assert service.template.containers[0].image == second
    assert json.loads(environment(service)["SKYRIG_RUNTIME_CONFIG"]), (
        "the new revision lost its runtime config"
    )
    assert gcp_app.plan() == []


def test_tunables_changed_in_the_console_are_adopted_and_invariants_restored(gcp_app, fake):
    gcp_app.write(APP)
    gcp_app.apply()
    name = service_name(gcp_app.name)
    fake.update_resource("run", name, {"template": {"scaling": {"maxInstanceCount": 3}}})
    fake.settle(everything=True)
    assert gcp_app.plan() == [], "a tunable changed in the console is not adopted"
    fake.update_resource("run", name, {"ingress": "INGRESS_TRAFFIC_INTERNAL_ONLY"})
    fake.settle(everything=True)
    [change] = gcp_app.plan()
    assert change["node"] == "compute.service/web" and change["action"] == "update"
    gcp_app.apply()
    service = run_services(gcp_app.endpoints).get_service(name=service_name(gcp_app.name))
    assert service.ingress.name == "INGRESS_TRAFFIC_ALL", "the ingress invariant was not restored"
    assert service.template.scaling.max_instance_count == 3, "restoring the invariant reverted a tunable"
    assert gcp_app.plan() == []


def test_migrations_run_as_a_cloud_run_job_before_the_services_roll_out(gcp_app, fake):
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import run_v2

    from skyrig_gcp import GcpProvider

    if "sql_database" not in GcpProvider.manifest.kinds:
        pytest.skip("the sql family is not claimed yet")
    files = {
        **APP,
        "web/resources.py": 'from skyrig import SQLDatabase\n\nledger = SQLDatabase("ledger", migrations="./m")\n',
        "web/m/0001_t.up.sql": "CREATE TABLE t (id int);\n",
    }
    gcp_app.write(files)
    node = gcp_app.graph()["compute.service/web"]
    assert node["properties"]["vpc"]["subnetwork"].endswith(names.subnet_name(gcp_app.name, "dev"))
    assert "compute.migration/ledger" in node["depends_on"], "the service may roll out before its migrations"
    gcp_app.apply()
    jobs = run_v2.JobsClient(
        credentials=AnonymousCredentials(),
        transport="rest",
        client_options={"api_endpoint": gcp_app.endpoints["run"]},
    )
    name = (
        f"projects/{PROJECT}/locations/{REGION}/jobs/{names.migrate_job_name(gcp_app.name, 'dev', 'ledger')}"
    )
    job = jobs.get_job(name=name)
    task = job.template.template
    assert task.service_account == names.account_email(
        names.account_name(gcp_app.name, "dev", "web"), PROJECT
    )
    assert list(task.containers[0].command) == ["python", "-m", "skyrig_gcp.runtime.migrate"]
    assert task.vpc_access.network_interfaces, "the migrations cannot reach the private IP"
    assert job.latest_created_execution.completion_status.name == "EXECUTION_SUCCEEDED"
    assert fake.calls.count("run", "jobs.run") == 1
    (gcp_app.root / "web" / "m" / "0002_u.up.sql").write_text("ALTER TABLE t ADD COLUMN u int;\n")
    assert [c["node"] for c in gcp_app.plan()] == ["compute.migration/ledger"]
    gcp_app.apply()
    assert fake.calls.count("run", "jobs.run") == 2, "a new migration did not run"
    fake.calls.clear()
    gcp_app.apply()
    assert fake.calls.mutating() == []
