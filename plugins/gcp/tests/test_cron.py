"""The cron family against the FAKE (Cloud Scheduler, Cloud Run jobs, Secret Manager: no emulator
exists): a Cloud Scheduler job per cron job runs its service's trigger with the job and the service's URL,
as the scheduler's account, which may run that trigger and nothing else; the signing key is made in Secret
Manager, readable by the service's account, and never shown; the trigger signs as the service host
verifies. Read back through Google's client libraries."""

from __future__ import annotations

import json
from typing import Any

import pytest

from skyrig_gcp import names
from skyrig_gcp.conformance import PROJECT, REGION
from skyrig_gcp.cron import schedule

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


def library(module: str, cls: str, endpoint: str) -> Any:
    import importlib

    from google.auth.credentials import AnonymousCredentials

    client_class = getattr(importlib.import_module(module), cls)
    return client_class(
        credentials=AnonymousCredentials(), transport="rest", client_options={"api_endpoint": endpoint}
    )


def account(app: str, name: str) -> str:
    return names.account_email(names.account_name(app, "dev", name), PROJECT)


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
def test_schedules_are_unix_cron_in_utc(cron, every, expected):
    assert schedule(cron, every) == expected


def test_the_scheduler_runs_the_services_trigger_with_the_job_and_its_url(gcp_app):
    gcp_app.write(APP)
    gcp_app.apply()
    app = gcp_app.name
    location = f"projects/{PROJECT}/locations/{REGION}"
    scheduler = library(
        "google.cloud.scheduler_v1", "CloudSchedulerClient", gcp_app.endpoints["cloudscheduler"]
    )
    services = library("google.cloud.run_v2", "ServicesClient", gcp_app.endpoints["run"])
    url = services.get_service(name=f"{location}/services/{names.run_service_name(app, 'dev', 'web')}").uri
    trigger = f"{location}/jobs/{names.trigger_job_name(app, 'dev', 'web')}"
    for job, expected in (("tick", "0 * * * *"), ("nightly", "30 2 * * *")):
        found = scheduler.get_job(name=f"{location}/jobs/{names.scheduler_job_name(app, 'dev', job)}")
        assert found.schedule == expected and found.time_zone == "Etc/UTC"
        assert found.state.name == "ENABLED"
        target = found.http_target
        assert target.uri == f"https://run.googleapis.com/v2/{trigger}:run"
        assert target.oauth_token.service_account_email == account(app, "scheduler")
        body = json.loads(target.body)
        assert body["overrides"]["container_overrides"][0]["args"] == [job, url]
    jobs = library("google.cloud.run_v2", "JobsClient", gcp_app.endpoints["run"])
    task = jobs.get_job(name=trigger).template.template
    assert task.service_account == account(app, "web"), "the trigger does not run as its service"
    assert list(task.containers[0].command) == ["python", "-m", "skyrig_gcp.runtime.cron"]
    policy = jobs.get_iam_policy(request={"resource": trigger})
    assert [(b.role, list(b.members)) for b in policy.bindings] == [
        ("roles/run.jobsExecutorWithOverrides", [f"serviceAccount:{account(app, 'scheduler')}"])
    ], "the scheduler may do more than run the trigger"


def test_the_signing_key_is_readable_by_the_service_and_never_shown(gcp_app, fake):
    gcp_app.write(APP)
    output = gcp_app.apply().text + gcp_app.cli("plan", "--env", "dev", "--json").text
    secret = f"projects/{PROJECT}/secrets/{names.signing_key_name(gcp_app.name, 'dev')}"
    manager = library(
        "google.cloud.secretmanager_v1", "SecretManagerServiceClient", gcp_app.endpoints["secretmanager"]
    )
    key = manager.access_secret_version(name=f"{secret}/versions/latest").payload.data.decode()
    assert len(key) == 64
    state = b"".join(path.read_bytes() for path in (gcp_app.root / ".skyrig").rglob("*") if path.is_file())
    assert key not in output and key.encode() not in state, "the signing key leaked"
    policy = manager.get_iam_policy(request={"resource": secret})
    assert [(b.role, list(b.members)) for b in policy.bindings] == [
        ("roles/secretmanager.secretAccessor", [f"serviceAccount:{account(gcp_app.name, 'web')}"])
    ]


def test_the_service_host_reads_the_key_the_trigger_signs_with(gcp_app):
    from skyrig_gcp.runtime.cron import CronClient

    gcp_app.write(APP)
    gcp_app.apply()
    config = json.loads((gcp_app.root / ".skyrig" / "runtime" / "dev" / "web.json").read_text())
    entry = config["resources"]["cron_job/tick"]
    secret = f"projects/{PROJECT}/secrets/{names.signing_key_name(gcp_app.name, 'dev')}"
    assert entry["signing_key"] == secret, "the runtime config names another key"
    manager = library(
        "google.cloud.secretmanager_v1", "SecretManagerServiceClient", gcp_app.endpoints["secretmanager"]
    )
    key = manager.access_secret_version(name=f"{secret}/versions/latest").payload.data
    assert CronClient(entry).signing_key() == key


def test_a_job_paused_in_the_console_is_resumed(gcp_app, fake):
    gcp_app.write(APP)
    gcp_app.apply()
    location = f"projects/{PROJECT}/locations/{REGION}"
    name = f"{location}/jobs/{names.scheduler_job_name(gcp_app.name, 'dev', 'tick')}"
    fake.update_resource("cloudscheduler", name, {"state": "PAUSED"})
    [change] = gcp_app.plan()
    assert change["node"] == "cron.job/tick" and change["action"] == "update"
    fake.calls.clear()
    gcp_app.apply()
    assert [call.method for call in fake.calls.mutating()] == [
        "cloudscheduler.projects.locations.jobs.resume"
    ]
    scheduler = library(
        "google.cloud.scheduler_v1", "CloudSchedulerClient", gcp_app.endpoints["cloudscheduler"]
    )
    assert scheduler.get_job(name=name).state.name == "ENABLED"
    assert gcp_app.plan() == []
