"""The IAM family against the FAKE (IAM, Secret Manager, Cloud Run, Resource Manager: no emulator exists;
Pub/Sub's emulator and fake-gcs-server have no IAM, so bindings on topics, subscriptions and buckets are
checked as the plan asks for them): a service account per service, found again by its description; each
service's bindings exactly as narrow as the model says, per operation; a role added in the console taken
away by the next apply, others' bindings left alone; a policy another writer changed meanwhile written
again from a fresh read. Read back through Google's client libraries."""

from __future__ import annotations

from typing import Any

import pytest

from skyrig_gcp import GcpProvider, names
from skyrig_gcp.conformance import PROJECT
from skyrig_gcp.iam import OBJECT_CREATOR, OBJECT_USER, OBJECT_VIEWER, bucket_roles

SERVICES = {
    "alpha/__init__.py": """
        from skyrig import Service

        service = Service("alpha", app="alpha.web:app")
    """,
    "alpha/web.py": """
        async def app(scope, receive, send):
            pass
    """,
    "alpha/jobs.py": """
        from skyrig import CronJob


        def tick() -> None:
            pass


        CronJob("tick", title="Tick", every="1h", endpoint=tick)
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

RESOURCES = {
    "alpha/resources.py": """
        from skyrig import Bucket, Secret

        files = Bucket("files")
        api_key = Secret("api-key")
    """,
    "alpha/use.py": """
        from .resources import api_key, files


        def use() -> None:
            files.upload("k", b"")
            files.download("k")
            files.remove("k")
            api_key.value
    """,
    "beta/uses.py": """
        from alpha.resources import files


        def fetch(key: str) -> bytes:
            return files.download(key)
    """,
}


def needs(*kinds: str) -> None:
    missing = [kind for kind in kinds if kind not in GcpProvider.manifest.kinds]
    if missing:
        pytest.skip(f"the provider does not claim {', '.join(missing)} yet")


def member(app: str, service: str) -> str:
    return f"serviceAccount:{names.account_email(names.account_name(app, 'dev', service), PROJECT)}"


def secrets(endpoints: dict[str, str]) -> Any:
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import secretmanager_v1

    return secretmanager_v1.SecretManagerServiceClient(
        credentials=AnonymousCredentials(),
        transport="rest",
        client_options={"api_endpoint": endpoints["secretmanager"]},
    )


def holders(policy: Any) -> dict[str, list[str]]:
    return {b.role: sorted(b.members) for b in policy.bindings}


@pytest.mark.parametrize(
    ("operations", "roles"),
    [
        (["download"], [OBJECT_VIEWER]),
        (["list"], [OBJECT_VIEWER]),
        (["upload"], [OBJECT_CREATOR]),
        (["download", "upload"], [OBJECT_CREATOR, OBJECT_VIEWER]),
        (["signed_url"], [OBJECT_CREATOR, OBJECT_VIEWER]),
        (["download", "remove", "upload"], [OBJECT_USER]),
        (["public_url"], []),
    ],
)
def test_object_roles_follow_the_operations(operations, roles):
    assert bucket_roles(operations) == roles


def test_each_service_has_an_account_of_its_own_found_again_by_its_description(gcp_app):
    from googleapiclient.discovery import build

    gcp_app.write(SERVICES)
    gcp_app.apply()
    iam = build(
        "iam",
        "v1",
        static_discovery=True,
        client_options={"api_endpoint": gcp_app.endpoints["iam"]},
        credentials=__import__("google.auth.credentials", fromlist=["x"]).AnonymousCredentials(),
    )
    listed = iam.projects().serviceAccounts().list(name=f"projects/{PROJECT}").execute()["accounts"]
    mine = {a["email"]: a["description"] for a in listed}
    for service in ("alpha", "beta", "scheduler"):
        email = member(gcp_app.name, service).partition(":")[2]
        assert mine[email] == f"skyrig {gcp_app.name}/dev iam.account/{service}"


def test_bindings_are_exactly_as_narrow_as_the_model_says(gcp_app):
    needs("bucket", "secret")
    gcp_app.write({**SERVICES, **RESOURCES})
    nodes = gcp_app.graph()
    roles = {
        node_id: node["properties"]["roles"]
        for node_id, node in nodes.items()
        if node_id.startswith("iam.binding/")
    }
    assert roles == {
        "iam.binding/alpha/bucket/files": [OBJECT_USER],
        "iam.binding/alpha/secret/api-key": ["roles/secretmanager.secretAccessor"],
        "iam.binding/alpha/cron/signing-key": ["roles/secretmanager.secretAccessor"],
        "iam.binding/beta/bucket/files": [OBJECT_VIEWER],  # only downloads: cannot upload
        "iam.binding/scheduler/trigger/alpha": ["roles/run.jobsExecutorWithOverrides"],
    }
    gcp_app.apply()
    secret = f"projects/{PROJECT}/secrets/{names.secret_name(gcp_app.name, 'dev', 'api-key')}"
    assert holders(secrets(gcp_app.endpoints).get_iam_policy(request={"resource": secret})) == {
        "roles/secretmanager.secretAccessor": [member(gcp_app.name, "alpha")]
    }, "beta, which never reads the secret, may read it"


def test_a_role_added_in_the_console_is_taken_away_and_others_left_alone(gcp_app, fake):
    gcp_app.write(SERVICES)
    gcp_app.apply()
    secret = f"projects/{PROJECT}/secrets/{names.signing_key_name(gcp_app.name, 'dev')}"
    alpha, someone = member(gcp_app.name, "alpha"), "user:someone@example.com"
    fake.set_iam_policy(
        "secretmanager",
        secret,
        {
            "bindings": [
                {"role": "roles/secretmanager.secretAccessor", "members": [alpha, someone]},
                {"role": "roles/secretmanager.admin", "members": [alpha]},
            ]
        },
    )
    [change] = gcp_app.plan()
    assert change["node"] == "iam.binding/alpha/cron/signing-key" and change["action"] == "update"
    gcp_app.apply()
    assert holders(secrets(gcp_app.endpoints).get_iam_policy(request={"resource": secret})) == {
        "roles/secretmanager.secretAccessor": sorted([alpha, someone])
    }
    assert gcp_app.plan() == []


def test_a_policy_changed_meanwhile_is_written_again_from_a_fresh_read(gcp_app, fake):
    gcp_app.write(SERVICES)
    fake.inject_error(
        "secretmanager", "secrets.setIamPolicy", 409, times=2, message="concurrent policy changes"
    )
    gcp_app.apply()
    secret = f"projects/{PROJECT}/secrets/{names.signing_key_name(gcp_app.name, 'dev')}"
    assert holders(secrets(gcp_app.endpoints).get_iam_policy(request={"resource": secret})) == {
        "roles/secretmanager.secretAccessor": [member(gcp_app.name, "alpha")]
    }
    assert fake.calls.count("secretmanager", "secrets.setIamPolicy") == 3


def test_destroy_takes_the_bindings_away_with_the_accounts(gcp_app, fake):
    gcp_app.write(SERVICES)
    gcp_app.apply()
    gcp_app.cli("destroy", "--env", "dev", "--yes", "--include-data")
    assert fake.resources("iam") == []
    assert fake.resources("run") == []


def test_a_service_using_a_cache_may_read_auth_strings_and_nothing_more(gcp_app, fake):
    from googleapiclient.discovery import build

    needs("cache_cluster")
    files = {
        **SERVICES,
        "alpha/cache.py": """
            from skyrig import CacheCluster

            sessions = CacheCluster("sessions")
            session = sessions.keyspace("s/{id}", value=str, default_expiry="1h")


            def use() -> None:
                session.get(id="x")
        """,
    }
    gcp_app.write(files)
    gcp_app.apply()
    role = f"projects/{PROJECT}/roles/{names.custom_role_name(gcp_app.name, 'dev', 'cache_auth')}"
    iam = build(
        "iam",
        "v1",
        static_discovery=True,
        client_options={"api_endpoint": gcp_app.endpoints["iam"]},
        credentials=__import__("google.auth.credentials", fromlist=["x"]).AnonymousCredentials(),
    )
    assert iam.projects().roles().get(name=role).execute()["includedPermissions"] == [
        "redis.instances.getAuthString"
    ]
    project = fake.get_iam_policy("cloudresourcemanager", f"projects/{PROJECT}")
    assert {b["role"]: b["members"] for b in project.get("bindings", [])} == {
        role: [member(gcp_app.name, "alpha")]
    }
    iam.projects().roles().delete(name=role).execute()  # deleted in the console: its id stays taken
    [change] = gcp_app.plan()
    assert change["node"] == "iam.role/cache_auth"
    gcp_app.apply()
    assert "deleted" not in iam.projects().roles().get(name=role).execute(), "the role was not brought back"
    gcp_app.cli("destroy", "--env", "dev", "--yes", "--include-data")
    assert iam.projects().roles().get(name=role).execute()["deleted"] is True
    assert fake.get_iam_policy("cloudresourcemanager", f"projects/{PROJECT}").get("bindings") is None
