"""What GCP keeps when another provider runs the services (``compute = "gke"``; here the memory provider
stands in for it), against the FAKE: each service's account with exactly the bindings the model gives it,
and an ``identity/SERVICE`` node after them that names the account; each database's migration job kept
(not run) for the compute provider to run; cron jobs calling the services at the domain; no Cloud Run
service."""

from __future__ import annotations

from typing import Any

from skyrig_conformance.folder import AppFolder
from skyrig_gcp import names
from skyrig_gcp.conformance import PROJECT

FILES = {
    "alpha/__init__.py": """
        from skyrig import Service

        service = Service("alpha", app="alpha.web:app")
    """,
    "alpha/web.py": """
        async def app(scope, receive, send):
            pass
    """,
    "alpha/resources.py": """
        from skyrig import Secret, SQLDatabase

        api_key = Secret("api-key")
        ledger = SQLDatabase("ledger", migrations="./m")
    """,
    "alpha/m/0001_t.up.sql": "CREATE TABLE t (id int);\n",
    "alpha/use.py": """
        from .resources import api_key, ledger


        def use() -> None:
            api_key.value
            ledger.connect()
    """,
    "beta/__init__.py": """
        from skyrig import Service

        service = Service("beta", app="beta.web:app")
    """,
    "beta/web.py": """
        async def app(scope, receive, send):
            pass
    """,
}


def handed_over(app: AppFolder, files: dict[str, str]) -> None:
    """Write ``files`` with the services on the memory provider and every other family on GCP but cron
    (which beside another compute needs a domain: the tests below)."""
    app.write(files)
    config = (app.root / "skyrig.toml").read_text()
    (app.root / "skyrig.toml").write_text(
        config.replace('provider = "gcp"', 'provider = "gcp"\ncompute = "memory"\ncron = "memory"', 1)
    )


def account(app: AppFolder, service: str) -> str:
    return names.account_email(names.account_name(app.name, "dev", service), PROJECT)


def test_each_service_identity_is_its_account_after_exactly_its_grants(gcp_app: Any) -> None:
    handed_over(gcp_app, FILES)
    nodes = gcp_app.graph()
    assert not [n for n in nodes.values() if n["type"] == "gcp.compute.service"], "GCP runs no service"
    alpha = nodes["identity/alpha"]
    assert alpha["properties"] == {"account": account(gcp_app, "alpha")}
    assert set(alpha["depends_on"]) == {
        "iam.account/alpha",
        "iam.binding/alpha/project",
        "iam.binding/alpha/secret/api-key",
        "iam.binding/alpha/sql/password",
    }
    assert set(nodes["identity/beta"]["depends_on"]) == {"iam.account/beta"}, "beta uses nothing"


def test_the_identities_are_applied_and_read_back_from_the_fake(gcp_app: Any, fake: Any) -> None:
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import secretmanager_v1

    handed_over(gcp_app, FILES)
    gcp_app.apply()
    secret = f"projects/{PROJECT}/secrets/{names.secret_name(gcp_app.name, 'dev', 'api-key')}"
    secrets = secretmanager_v1.SecretManagerServiceClient(
        credentials=AnonymousCredentials(),
        transport="rest",
        client_options={"api_endpoint": gcp_app.endpoints["secretmanager"]},
    )
    policy = secrets.get_iam_policy(request={"resource": secret})
    assert {b.role: sorted(b.members) for b in policy.bindings} == {
        "roles/secretmanager.secretAccessor": [f"serviceAccount:{account(gcp_app, 'alpha')}"]
    }, "only alpha, which reads the secret, may read it"
    accounts = fake.resources("iam")
    assert any(name.endswith(account(gcp_app, "beta")) for name in accounts), accounts
    assert gcp_app.plan() == [], "a plan right after the apply changes nothing"


def test_the_migration_job_is_kept_for_the_compute_provider_to_run(gcp_app: Any, fake: Any) -> None:
    handed_over(gcp_app, FILES)
    migration = gcp_app.graph()["compute.migration/ledger"]
    assert migration["properties"]["account"] == account(gcp_app, "alpha")
    assert migration["properties"]["vpc"]["subnetwork"].endswith(names.subnet_name(gcp_app.name, "dev"))
    assert migration["properties"]["runs"] is False
    assert "sql.database/ledger" in migration["depends_on"]
    gcp_app.apply()
    assert fake.calls.count("run", "jobs.run") == 0, "the compute provider runs it, not gcp"
    assert gcp_app.plan() == [], "a job never run reads back as the migrations it names"


CRON = {
    "alpha/jobs.py": """
        from skyrig import CronJob


        def tick() -> None:
            pass


        CronJob("tick", title="Tick", every="1h", endpoint=tick)
    """,
}


def with_cron(app: AppFolder, files: dict[str, str], **settings: Any) -> None:
    """Write ``files`` with the services on the memory provider, cron and every other family on GCP."""
    app.write(files, **settings)
    config = (app.root / "skyrig.toml").read_text()
    (app.root / "skyrig.toml").write_text(
        config.replace('provider = "gcp"', 'provider = "gcp"\ncompute = "memory"', 1)
    )


def test_cron_beside_another_compute_needs_the_domain_its_services_answer_at(gcp_app: Any) -> None:
    from skyrig.cli.testing import invoke

    with_cron(gcp_app, {**FILES, **CRON})
    refused = invoke(["check", "-C", str(gcp_app.root)])
    assert refused.code != 0
    assert "set domain in [env.dev.gcp]" in refused.text, refused.text


def test_cron_beside_another_compute_calls_the_service_at_its_domain(gcp_app: Any, fake: Any) -> None:
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import scheduler_v1

    with_cron(gcp_app, {**FILES, **CRON}, domain="shop.example.com", certificate="shop-wildcard")
    nodes = gcp_app.graph()
    assert nodes["cron.trigger/alpha"]["properties"]["account"] == account(gcp_app, "alpha")
    assert "compute.service/alpha" in nodes["cron.job/tick"]["depends_on"], "after the service"
    gcp_app.apply()
    scheduler = scheduler_v1.CloudSchedulerClient(
        credentials=AnonymousCredentials(),
        transport="rest",
        client_options={"api_endpoint": gcp_app.endpoints["cloudscheduler"]},
    )
    name = f"projects/{PROJECT}/locations/us-central1/jobs/{names.scheduler_job_name(gcp_app.name, 'dev', 'tick')}"
    body = scheduler.get_job(name=name).http_target.body.decode()
    assert '"args": ["tick", "https://alpha.shop.example.com"]' in body, body
    assert gcp_app.plan() == []
