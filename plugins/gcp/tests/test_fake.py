"""These test the FAKE Google APIs (skyrig_gcp.fake), not Google: Cloud SQL Admin, Cloud Run, Secret Manager,
Memorystore, Compute Engine, IAM, Resource Manager, Service Networking, Cloud Scheduler, Artifact Registry and
Service Usage have no emulator, so skyrig-gcp's tests run against this strict stand-in. Each test drives it
with the REAL client libraries (google-api-python-client from its shipped discovery documents; the
google-cloud-* libraries with transport="rest"), anonymous credentials and http:// endpoints, and shows that
it answers as Google documents: round trips per API, unknown fields, wrong types and missing required fields
refused, long-running operations not done at first and done later, 409 on duplicates, IAM etag conflicts.
"""

from __future__ import annotations

import json
import re
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from google.api_core import exceptions as gexc
from google.api_core.future.polling import DEFAULT_POLLING
from google.api_core.retry import Retry, if_exception_type
from google.auth.credentials import AnonymousCredentials
from google.cloud import artifactregistry_v1, redis_v1, run_v2, scheduler_v1, secretmanager_v1
from google.protobuf import field_mask_pb2
from googleapiclient.discovery import build
from googleapiclient.errors import HttpError

from skyrig_gcp.fake import FakeGcp
from skyrig_gcp.fake.apis import HANDLERS
from skyrig_gcp.fake.discovery import Discovery
from skyrig_gcp.fake.errors import ApiError

PROJECT = "skyrig-demo"
REGION = "us-central1"
LOCATION = f"projects/{PROJECT}/locations/{REGION}"
POLL = DEFAULT_POLLING.with_delay(initial=0.02, maximum=0.1, multiplier=1.5)
DELAY = 0.1


@pytest.fixture(scope="module")
def server():
    with FakeGcp(projects=(PROJECT,), lro_delay=DELAY) as fake:
        yield fake


@pytest.fixture
def fake(server):
    server.reset()
    server.lro_delay = DELAY
    server.require_enabled_services = False
    server.job_runner = None
    return server


@pytest.fixture(scope="module")
def api(server):
    """google-api-python-client services, built from the shipped discovery documents."""
    built: dict[str, Any] = {}

    def service(name: str, version: str) -> Any:
        if name not in built:
            built[name] = build(
                name,
                version,
                credentials=AnonymousCredentials(),
                static_discovery=True,
                client_options={"api_endpoint": server.discovery_endpoint(name)},
                cache_discovery=False,
            )
        return built[name]

    return service


@contextmanager
def held(fake: FakeGcp) -> Iterator[None]:
    """Operations started in the block stay running (whatever the machine's load) until it ends; then they
    finish at once. The tests look at the in-between state inside; test_operations_finish_only_after_the_delay
    shows the delay itself."""
    fake.lro_delay = 60
    try:
        yield
    finally:
        fake.lro_delay = DELAY
        fake.settle(everything=True)


def gapic(client_class: type, fake: FakeGcp, api_name: str) -> Any:
    """A google-cloud-* client on its REST transport, at the fake's http:// endpoint."""
    return client_class(
        credentials=AnonymousCredentials(),
        transport="rest",
        client_options={"api_endpoint": fake.endpoint(api_name)},
    )


def raw(fake: FakeGcp, api_name: str, method: str, path: str, body: Any = None) -> tuple[int, dict[str, Any]]:
    """A plain HTTP request (what no typed client would send)."""
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(
        fake.endpoint(api_name) + path, data=data, method=method, headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def http_error(call: Any) -> HttpError:
    with pytest.raises(HttpError) as caught:
        call.execute()
    return caught.value


def sql_wait(api: Any, op: dict[str, Any]) -> dict[str, Any]:
    deadline = time.time() + 5
    while op["status"] != "DONE" and time.time() < deadline:
        time.sleep(0.03)
        op = api("sqladmin", "v1").operations().get(project=PROJECT, operation=op["name"]).execute()
    assert op["status"] == "DONE", op
    return op


def compute_wait(api: Any, op: dict[str, Any]) -> dict[str, Any]:
    compute = api("compute", "v1")
    if "region" in op:
        region = op["region"].rsplit("/", 1)[-1]
        done = compute.regionOperations().wait(project=PROJECT, region=region, operation=op["name"]).execute()
    else:
        done = compute.globalOperations().wait(project=PROJECT, operation=op["name"]).execute()
    assert done["status"] == "DONE", done
    return done


def network(api: Any, name: str = "vpc") -> dict[str, Any]:
    compute = api("compute", "v1")
    compute_wait(
        api,
        compute.networks()
        .insert(project=PROJECT, body={"name": name, "autoCreateSubnetworks": False})
        .execute(),
    )
    return compute.networks().get(project=PROJECT, network=name).execute()


def private_services_access(api: Any, name: str = "vpc") -> None:
    """A network, an allocated range and a Service Networking connection on it, all done."""
    compute = api("compute", "v1")
    net = network(api, name)
    compute_wait(
        api,
        compute.globalAddresses()
        .insert(
            project=PROJECT,
            body={
                "name": f"{name}-psa",
                "purpose": "VPC_PEERING",
                "addressType": "INTERNAL",
                "prefixLength": 16,
                "network": net["selfLink"],
            },
        )
        .execute(),
    )
    op = (
        api("servicenetworking", "v1")
        .services()
        .connections()
        .create(
            parent="services/servicenetworking.googleapis.com",
            body={
                "network": f"projects/{PROJECT}/global/networks/{name}",
                "reservedPeeringRanges": [f"{name}-psa"],
            },
        )
        .execute()
    )
    operation_wait(api, "servicenetworking", op)


def operation_wait(api: Any, name: str, op: dict[str, Any]) -> dict[str, Any]:
    version = "v3" if name == "cloudresourcemanager" else "v1"
    deadline = time.time() + 5
    while not op.get("done") and time.time() < deadline:
        time.sleep(0.03)
        op = api(name, version).operations().get(name=op["name"]).execute()
    assert op.get("done"), op
    return op


# -- routing and validation, from the discovery documents ---------------------------------------------------


def test_every_method_of_every_api_routes_to_itself():
    """Each method's own path (flatPath, placeholders filled) reaches that method and no other: one port per
    API and the parameters' patterns keep, e.g., Cloud SQL's v1/projects/... apart from Secret Manager's."""
    checked = 0
    for handler in HANDLERS.values():
        discovery = Discovery(handler.api, handler.version)

        def walk(node: dict[str, Any]):
            yield from node.get("methods", {}).values()
            for child in node.get("resources", {}).values():
                yield from walk(child)

        for method in walk(discovery.doc):
            template = discovery.service_path + method.get("flatPath", method["path"])
            for filler in ("x1", "123"):
                try:
                    route = discovery.route(method["httpMethod"], re.sub(r"\{[^}]+\}", filler, template))
                    break
                except ApiError:
                    continue
            else:
                if handler.api == "compute" and "licenseCodes" in method["id"]:
                    continue  # its pattern takes an empty code only
                pytest.fail(f"{method['id']} is not routable")
            assert route.method.id == method["id"], (method["id"], route.method.id)
            checked += 1
    assert checked > 1500


def test_an_unknown_path_is_404_in_googles_envelope(fake):
    status, body = raw(fake, "secretmanager", "GET", "/v1/projects/p/nothing/here")
    assert status == 404
    assert (
        body["error"]["status"] == "NOT_FOUND" and body["error"]["code"] == 404 and body["error"]["message"]
    )
    status, body = raw(fake, "sqladmin", "PATCH", "/v1/projects/p/operations/x")
    assert status == 404 and body["error"]["message"].startswith("Method not found")


def test_query_parameters_are_checked(fake):
    status, body = raw(fake, "secretmanager", "GET", f"/v1/projects/{PROJECT}/secrets?colour=blue")
    assert status == 400 and 'Unknown name "colour"' in body["error"]["message"]
    status, body = raw(fake, "secretmanager", "GET", f"/v1/projects/{PROJECT}/secrets?pageSize=many")
    assert status == 400 and "TYPE_INT32" in body["error"]["message"]
    status, body = raw(
        fake, "redis", "POST", f"/v1/{LOCATION}/instances", {"tier": "BASIC", "memorySizeGb": 1}
    )
    assert status == 400 and "instanceId" in body["error"]["message"]  # documented "Required."
    status, body = raw(fake, "sqladmin", "GET", f"/v1/projects/{PROJECT}/instances?maxResults=1&maxResults=2")
    assert status == 400


def test_unknown_fields_and_wrong_types_are_refused_as_google_refuses_them(fake, api):
    sql = api("sqladmin", "v1")
    error = http_error(
        sql.instances().insert(
            project=PROJECT,
            body={
                "name": "db",
                "settings": {"tier": "db-f1-micro", "ipConfig": {}},
                "databaseVersion": "POSTGRES_15",
            },
        )
    )
    assert error.status_code == 400
    assert (
        "Invalid JSON payload received. Unknown name \"ipConfig\" at 'body.settings': Cannot find field."
        in str(error)
    )
    error = http_error(
        sql.instances().insert(
            project=PROJECT, body={"name": "db", "settings": {"tier": 5}, "databaseVersion": "POSTGRES_15"}
        )
    )
    assert error.status_code == 400 and "Invalid value at 'body.settings.tier' (TYPE_STRING), 5" in str(error)
    error = http_error(
        sql.instances().insert(
            project=PROJECT,
            body={"name": "db", "databaseVersion": "POSTGRES_99", "settings": {"tier": "db-f1-micro"}},
        )
    )
    assert error.status_code == 400 and "body.database_version" in str(error)
    error = http_error(
        sql.instances().insert(
            project=PROJECT,
            body={
                "name": "db",
                "databaseVersion": "POSTGRES_15",
                "settings": {"tier": "db-f1-micro", "storageAutoResize": "yes"},
            },
        )
    )
    assert error.status_code == 400 and "TYPE_BOOL" in str(error)
    # proto3 JSON: int64 as a string, or a number; a Secret Manager body bound to one field
    status, body = raw(
        fake,
        "secretmanager",
        "POST",
        f"/v1/projects/{PROJECT}/secrets?secretId=s",
        {"replication": {"automatic": {}}, "labels": {"a": 1}},
    )
    assert (
        status == 400 and body["error"]["details"][0]["@type"] == "type.googleapis.com/google.rpc.BadRequest"
    )
    status, body = raw(
        fake,
        "secretmanager",
        "POST",
        f"/v1/projects/{PROJECT}/secrets?secretId=s",
        {"replication": {"automatic": {}}, "extra": True},
    )
    assert status == 400 and "Unknown name \"extra\" at 'secret'" in body["error"]["message"]
    # output-only fields sent back are ignored, as Google ignores them
    status, body = raw(
        fake,
        "secretmanager",
        "POST",
        f"/v1/projects/{PROJECT}/secrets?secretId=s",
        {"replication": {"automatic": {}}, "createTime": "1999-01-01T00:00:00Z"},
    )
    assert status == 200 and body["createTime"] != "1999-01-01T00:00:00Z"


def test_missing_required_fields_are_refused(fake):
    redis = gapic(redis_v1.CloudRedisClient, fake, "redis")
    with pytest.raises(gexc.BadRequest) as caught:
        redis.create_instance(parent=LOCATION, instance_id="cache", instance={"tier": "BASIC"})
    assert "instance.memory_size_gb" in str(caught.value)
    run = gapic(run_v2.ServicesClient, fake, "run")
    with pytest.raises(gexc.BadRequest) as caught:
        run.create_service(
            parent=LOCATION, service_id="web", service={"template": {"containers": [{"name": "app"}]}}
        )
    assert "service.template.containers[0].image" in str(caught.value)


# -- Secret Manager -----------------------------------------------------------------------------------------


def test_secret_manager_round_trip(fake):
    client = gapic(secretmanager_v1.SecretManagerServiceClient, fake, "secretmanager")
    parent = f"projects/{PROJECT}"
    number = fake.project_number(PROJECT)
    secret = client.create_secret(
        parent=parent, secret_id="db-password", secret={"replication": {"automatic": {}}}
    )
    assert secret.name == f"projects/{number}/secrets/db-password"  # Google answers the project's number
    with pytest.raises(gexc.Conflict):
        client.create_secret(
            parent=parent, secret_id="db-password", secret={"replication": {"automatic": {}}}
        )
    with pytest.raises(gexc.BadRequest):
        client.create_secret(parent=parent, secret_id="no spaces", secret={"replication": {"automatic": {}}})
    with pytest.raises(gexc.BadRequest):
        client.create_secret(parent=parent, secret_id="no-replication", secret={})
    with pytest.raises(gexc.NotFound):
        client.access_secret_version(name=f"{secret.name}/versions/latest")
    client.add_secret_version(parent=secret.name, payload={"data": b"one"})
    client.add_secret_version(parent=secret.name, payload={"data": b"two"})
    assert (
        client.access_secret_version(name=f"{parent}/secrets/db-password/versions/latest").payload.data
        == b"two"
    )
    client.disable_secret_version(name=f"{secret.name}/versions/2")
    assert client.access_secret_version(name=f"{secret.name}/versions/latest").payload.data == b"one"
    with pytest.raises(gexc.BadRequest, match="DISABLED"):  # FAILED_PRECONDITION: 400 over REST
        client.access_secret_version(name=f"{secret.name}/versions/2")
    for index in range(4):
        client.create_secret(
            parent=parent, secret_id=f"more-{index}", secret={"replication": {"automatic": {}}}
        )
    first = client.list_secrets(request={"parent": parent, "page_size": 2})
    assert [s.name.rsplit("/", 1)[-1] for s in first] == [
        "db-password",
        "more-0",
        "more-1",
        "more-2",
        "more-3",
    ]
    assert fake.calls.count("secretmanager", "secrets.list") == 3  # pages of two
    updated = client.update_secret(
        secret={"name": secret.name, "labels": {"env": "dev"}, "annotations": {"x": "y"}},
        update_mask=field_mask_pb2.FieldMask(paths=["labels"]),
    )
    assert dict(updated.labels) == {"env": "dev"} and not dict(updated.annotations)
    assert [v.name.rsplit("/", 1)[-1] for v in client.list_secret_versions(parent=secret.name)] == ["1", "2"]
    client.delete_secret(name=secret.name)
    with pytest.raises(gexc.NotFound):
        client.get_secret(name=secret.name)
    assert fake.resources("secretmanager", f"{parent}/secrets/db-password") == []


def test_iam_policy_etags(fake):
    client = gapic(secretmanager_v1.SecretManagerServiceClient, fake, "secretmanager")
    secret = client.create_secret(
        parent=f"projects/{PROJECT}", secret_id="s", secret={"replication": {"automatic": {}}}
    )
    policy = client.get_iam_policy(request={"resource": secret.name})
    policy.bindings.add(role="roles/secretmanager.secretAccessor", members=["user:a@example.com"])
    written = client.set_iam_policy(request={"resource": secret.name, "policy": policy})
    assert written.etag != policy.etag
    with pytest.raises(gexc.Conflict, match="concurrent policy changes"):
        client.set_iam_policy(request={"resource": secret.name, "policy": policy})  # the stale etag
    written.bindings.add(
        role="roles/viewer", members=["serviceAccount:ghost@skyrig-demo.iam.gserviceaccount.com"]
    )
    with pytest.raises(gexc.BadRequest, match="does not exist"):
        client.set_iam_policy(request={"resource": secret.name, "policy": written})
    agent = f"serviceAccount:service-{fake.project_number(PROJECT)}@gcp-sa-pubsub.iam.gserviceaccount.com"
    written.bindings[-1].members[:] = [agent]  # Google's service agents exist without being made
    assert client.set_iam_policy(request={"resource": secret.name, "policy": written}).bindings[
        -1
    ].members == [agent]


# -- Cloud SQL Admin ------------------------------------------------------------------------------------------


def sql_body(name: str = "db", **settings: Any) -> dict[str, Any]:
    return {
        "name": name,
        "databaseVersion": "POSTGRES_16",
        "region": REGION,
        "settings": {
            "tier": "db-custom-1-3840",
            "edition": "ENTERPRISE",
            "availabilityType": "REGIONAL",
            "backupConfiguration": {
                "enabled": True,
                "pointInTimeRecoveryEnabled": True,
                "transactionLogRetentionDays": 7,
            },
            "ipConfiguration": {
                "ipv4Enabled": False,
                "privateNetwork": f"projects/{PROJECT}/global/networks/vpc",
                "sslMode": "TRUSTED_CLIENT_CERTIFICATE_REQUIRED",
            },
            **settings,
        },
    }


def test_cloud_sql_round_trip_with_operations(fake, api):
    sql = api("sqladmin", "v1")
    private_services_access(api)
    with held(fake):
        op = sql.instances().insert(project=PROJECT, body=sql_body()).execute()
        assert op["kind"] == "sql#operation" and op["status"] in ("PENDING", "RUNNING")
        assert op["operationType"] == "CREATE"
        assert sql.instances().get(project=PROJECT, instance="db").execute()["state"] == "PENDING_CREATE"
        conflict = http_error(sql.databases().insert(project=PROJECT, instance="db", body={"name": "shop"}))
        assert conflict.status_code == 409
        assert conflict.reason.startswith("Operation failed because another operation")
    sql_wait(api, op)
    instance = sql.instances().get(project=PROJECT, instance="db").execute()
    assert instance["state"] == "RUNNABLE"
    assert [a["type"] for a in instance["ipAddresses"]] == ["PRIVATE"]
    assert (
        instance["connectionName"] == f"{PROJECT}:{REGION}:db"
        and instance["settings"]["settingsVersion"] == "1"
    )
    assert instance["serverCaCert"]["cert"].startswith("-----BEGIN CERTIFICATE-----")
    assert http_error(sql.instances().insert(project=PROJECT, body=sql_body())).status_code == 409
    sql_wait(api, sql.databases().insert(project=PROJECT, instance="db", body={"name": "shop"}).execute())
    sql_wait(
        api,
        sql.users()
        .insert(project=PROJECT, instance="db", body={"name": "app", "password": "s3cret"})
        .execute(),
    )
    assert [d["name"] for d in sql.databases().list(project=PROJECT, instance="db").execute()["items"]] == [
        "shop"
    ]
    users = sql.users().list(project=PROJECT, instance="db").execute()["items"]
    assert users[0]["name"] == "app" and "password" not in users[0]
    op = (
        sql.instances()
        .patch(
            project=PROJECT,
            instance="db",
            body={"settings": {"tier": "db-custom-2-7680", "settingsVersion": "1"}},
        )
        .execute()
    )
    sql_wait(api, op)
    patched = sql.instances().get(project=PROJECT, instance="db").execute()["settings"]
    assert patched["tier"] == "db-custom-2-7680" and patched["settingsVersion"] == "2"
    assert patched["backupConfiguration"]["pointInTimeRecoveryEnabled"] is True  # a patch merges
    stale = http_error(
        sql.instances().patch(
            project=PROJECT,
            instance="db",
            body={"settings": {"tier": "db-custom-1-3840", "settingsVersion": "1"}},
        )
    )
    assert stale.status_code == 412
    sql_wait(api, sql.users().delete(project=PROJECT, instance="db", name="app").execute())
    sql_wait(api, sql.databases().delete(project=PROJECT, instance="db", database="shop").execute())
    sql_wait(api, sql.instances().delete(project=PROJECT, instance="db").execute())
    assert http_error(sql.instances().get(project=PROJECT, instance="db")).status_code == 404
    reuse = http_error(sql.instances().insert(project=PROJECT, body=sql_body()))
    assert reuse.status_code == 409 and "one week" in str(reuse)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            sql_body(edition="EDITION_UNSPECIFIED"),
            "Invalid Tier (db-custom-1-3840) for (ENTERPRISE_PLUS) Edition",
        ),
        (sql_body(tier="db-n1-standard-1"), "Only custom or shared-core"),
        (sql_body(tier="db-custom-1-1024"), "Invalid Tier (db-custom-1-1024)"),
        (sql_body(tier="db-custom-3-7680"), "Invalid Tier (db-custom-3-7680)"),
        (
            sql_body(backupConfiguration={"enabled": False, "pointInTimeRecoveryEnabled": True}),
            "requires backups",
        ),
        (
            sql_body(backupConfiguration={"enabled": True, "transactionLogRetentionDays": 14}),
            "between 1 and 7",
        ),
        (sql_body(ipConfiguration={"ipv4Enabled": False}), "At least one of Public IP"),
        (
            sql_body(ipConfiguration={"privateNetwork": f"projects/{PROJECT}/global/networks/vpc"}),
            "NETWORK_NOT_PEERED",
        ),
        (
            sql_body(ipConfiguration={"sslMode": "TRUSTED_CLIENT_CERTIFICATE_REQUIRED", "requireSsl": False}),
            "conflicts",
        ),
    ],
)
def test_cloud_sql_refuses_what_cloud_sql_refuses(fake, api, body, message):
    network(api)
    error = http_error(api("sqladmin", "v1").instances().insert(project=PROJECT, body=body))
    assert error.status_code == 400 and message in str(error)


def test_cloud_sql_connect_settings_and_ephemeral_client_certificates(fake, api):
    """What Google's Cloud SQL connectors call for mutual TLS: the instance's CA and addresses, and a client
    certificate for the caller's own RSA public key (a real X.509 certificate, signed by the fake's CA)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec, rsa

    sql = api("sqladmin", "v1")
    private_services_access(api)

    def pem(key: Any) -> str:
        public = key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        return public.decode()

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    with held(fake):
        op = sql.instances().insert(project=PROJECT, body=sql_body()).execute()
        early = sql.connect().generateEphemeralCert(
            project=PROJECT, instance="db", body={"public_key": pem(key)}
        )
        assert http_error(early).status_code == 400  # not RUNNABLE yet
    sql_wait(api, op)
    settings = sql.connect().get(project=PROJECT, instance="db").execute()
    assert settings["serverCaCert"]["cert"].startswith("-----BEGIN CERTIFICATE-----")
    assert [a["type"] for a in settings["ipAddresses"]] == ["PRIVATE"]
    assert settings["connectionName"] == f"{PROJECT}:{REGION}:db"
    signed = (
        sql.connect()
        .generateEphemeralCert(project=PROJECT, instance="db", body={"public_key": pem(key)})
        .execute()["ephemeralCert"]
    )
    certificate = x509.load_pem_x509_certificate(signed["cert"].encode())
    assert certificate.public_key().public_numbers() == key.public_key().public_numbers()
    lifetime = certificate.not_valid_after_utc - certificate.not_valid_before_utc
    assert 3600 <= lifetime.total_seconds() <= 3660
    for body in (
        {"public_key": "not a key"},
        {"public_key": pem(ec.generate_private_key(ec.SECP256R1()))},
        {"public_key": pem(key), "validDuration": "7200s"},
        {},
    ):
        refused = http_error(sql.connect().generateEphemeralCert(project=PROJECT, instance="db", body=body))
        assert refused.status_code == 400, body
    missing = sql.connect().get(project=PROJECT, instance="nothing")
    assert http_error(missing).status_code == 404


# -- Compute Engine -------------------------------------------------------------------------------------------


def test_compute_networks_subnetworks_and_references(fake, api):
    compute = api("compute", "v1")
    subnet = {
        "name": "app",
        "network": f"projects/{PROJECT}/global/networks/vpc",
        "ipCidrRange": "10.0.0.0/24",
    }
    with held(fake):
        insert = compute.networks().insert(
            project=PROJECT, body={"name": "vpc", "autoCreateSubnetworks": False}
        )
        op = insert.execute()
        assert op["kind"] == "compute#operation" and op["status"] == "RUNNING"
        early = http_error(compute.subnetworks().insert(project=PROJECT, region=REGION, body=subnet))
        assert early.status_code == 400
        assert early.reason == "The resource 'projects/skyrig-demo/global/networks/vpc' is not ready"
    compute_wait(api, op)
    compute_wait(api, compute.subnetworks().insert(project=PROJECT, region=REGION, body=subnet).execute())
    overlap = http_error(
        compute.subnetworks().insert(
            project=PROJECT, region=REGION, body={**subnet, "name": "two", "ipCidrRange": "10.0.0.128/25"}
        )
    )
    assert overlap.status_code == 400 and "conflicts" in str(overlap)
    missing = http_error(
        compute.subnetworks().insert(
            project=PROJECT, region=REGION, body={**subnet, "name": "x", "network": "global/networks/nope"}
        )
    )
    assert missing.status_code == 404
    created = compute.subnetworks().get(project=PROJECT, region=REGION, subnetwork="app").execute()
    assert (
        created["selfLink"].endswith(f"projects/{PROJECT}/regions/{REGION}/subnetworks/app") and created["id"]
    )
    assert created["gatewayAddress"] == "10.0.0.1" and created["kind"] == "compute#subnetwork"
    assert compute.networks().get(project=PROJECT, network="vpc").execute()["subnetworks"] == [
        created["selfLink"]
    ]
    aggregated = compute.subnetworks().aggregatedList(project=PROJECT).execute()["items"]
    assert [n["name"] for n in aggregated[f"regions/{REGION}"]["subnetworks"]] == ["app"]
    stale = http_error(
        compute.subnetworks().patch(
            project=PROJECT, region=REGION, subnetwork="app", body={"privateIpGoogleAccess": True}
        )
    )
    assert stale.status_code == 412  # a subnetwork's patch needs its fingerprint
    compute_wait(
        api,
        compute.subnetworks()
        .patch(
            project=PROJECT,
            region=REGION,
            subnetwork="app",
            body={"privateIpGoogleAccess": True, "fingerprint": created["fingerprint"]},
        )
        .execute(),
    )
    assert (
        compute.subnetworks()
        .get(project=PROJECT, region=REGION, subnetwork="app")
        .execute()["privateIpGoogleAccess"]
        is True
    )
    in_use = http_error(compute.networks().delete(project=PROJECT, network="vpc"))
    assert in_use.status_code == 400 and "already being used by" in str(in_use)
    unknown = http_error(
        compute.networks().insert(
            project=PROJECT, body={"name": "other", "autoCreateSubnetworks": False, "colour": 1}
        )
    )
    assert unknown.status_code == 400 and "Unknown name \"colour\" at 'resource'" in str(unknown)
    bad_name = http_error(
        compute.networks().insert(project=PROJECT, body={"name": "Bad_Name", "autoCreateSubnetworks": False})
    )
    assert bad_name.status_code == 400 and "resource.name" in str(bad_name)
    request_id = "6f1c9a52-4cbb-4d43-9a8e-2f4f0b1f4a11"
    first = compute.networks().insert(
        project=PROJECT, requestId=request_id, body={"name": "again", "autoCreateSubnetworks": False}
    )
    op = first.execute()
    repeated = compute.networks().insert(
        project=PROJECT, requestId=request_id, body={"name": "again", "autoCreateSubnetworks": False}
    )
    assert repeated.execute()["name"] == op["name"]  # a retry with the same requestId is the same request
    compute_wait(api, op)
    duplicate = http_error(
        compute.networks().insert(project=PROJECT, body={"name": "vpc", "autoCreateSubnetworks": False})
    )
    assert duplicate.status_code == 409
    compute_wait(
        api, compute.subnetworks().delete(project=PROJECT, region=REGION, subnetwork="app").execute()
    )
    compute_wait(api, compute.networks().delete(project=PROJECT, network="vpc").execute())
    assert http_error(compute.networks().get(project=PROJECT, network="vpc")).status_code == 404


def test_compute_load_balancing_chain_and_pages(fake, api):
    compute = api("compute", "v1")
    compute_wait(
        api,
        compute.backendBuckets()
        .insert(project=PROJECT, body={"name": "assets", "bucketName": "assets-bucket", "enableCdn": True})
        .execute(),
    )
    compute_wait(
        api,
        compute.urlMaps()
        .insert(
            project=PROJECT,
            body={"name": "web", "defaultService": f"projects/{PROJECT}/global/backendBuckets/assets"},
        )
        .execute(),
    )
    compute_wait(
        api,
        compute.targetHttpProxies()
        .insert(project=PROJECT, body={"name": "web", "urlMap": "global/urlMaps/web"})
        .execute(),
    )
    compute_wait(
        api,
        compute.globalForwardingRules()
        .insert(
            project=PROJECT,
            body={
                "name": "web",
                "target": f"projects/{PROJECT}/global/targetHttpProxies/web",
                "portRange": "80",
            },
        )
        .execute(),
    )
    rule = compute.globalForwardingRules().get(project=PROJECT, forwardingRule="web").execute()
    assert rule["target"].endswith(f"projects/{PROJECT}/global/targetHttpProxies/web") and rule["IPAddress"]
    assert http_error(compute.urlMaps().delete(project=PROJECT, urlMap="web")).status_code == 400
    network(api)
    for index in range(3):
        compute_wait(
            api,
            compute.firewalls()
            .insert(
                project=PROJECT,
                body={
                    "name": f"fw-{index}",
                    "network": "global/networks/vpc",
                    "allowed": [{"IPProtocol": "tcp"}],
                },
            )
            .execute(),
        )
    page = compute.firewalls().list(project=PROJECT, maxResults=2).execute()
    assert len(page["items"]) == 2 and page["nextPageToken"]
    rest = compute.firewalls().list(project=PROJECT, maxResults=2, pageToken=page["nextPageToken"]).execute()
    assert [f["name"] for f in rest["items"]] == ["fw-2"] and "nextPageToken" not in rest
    assert [
        f["name"]
        for f in compute.firewalls().list(project=PROJECT, filter='name = "fw-1"').execute()["items"]
    ] == ["fw-1"]


# -- Service Networking, Memorystore ---------------------------------------------------------------------------


def test_memorystore_instance_with_private_services_access(fake, api):
    client = gapic(redis_v1.CloudRedisClient, fake, "redis")
    name = f"{LOCATION}/instances/cache"
    instance = {
        "tier": redis_v1.Instance.Tier.STANDARD_HA,
        "memory_size_gb": 5,
        "replica_count": 1,
        "read_replicas_mode": redis_v1.Instance.ReadReplicasMode.READ_REPLICAS_ENABLED,
        "auth_enabled": True,
        "transit_encryption_mode": redis_v1.Instance.TransitEncryptionMode.SERVER_AUTHENTICATION,
        "connect_mode": redis_v1.Instance.ConnectMode.PRIVATE_SERVICE_ACCESS,
        "authorized_network": f"projects/{PROJECT}/global/networks/vpc",
        "redis_configs": {"maxmemory-policy": "allkeys-lru", "maxmemory-gb": "4.5", "activedefrag": "yes"},
    }
    network(api)
    with pytest.raises(gexc.BadRequest, match="Service Networking"):
        client.create_instance(parent=LOCATION, instance_id="cache", instance=instance)
    fake.reset()
    private_services_access(api)
    with held(fake):
        operation = client.create_instance(parent=LOCATION, instance_id="cache", instance=instance)
        assert not operation.done()
        assert client.get_instance(name=name).state == redis_v1.Instance.State.CREATING
    ready = operation.result(polling=POLL)
    assert ready.state == redis_v1.Instance.State.READY and ready.tier == redis_v1.Instance.Tier.STANDARD_HA
    assert ready.host and ready.port == 6378 and ready.read_endpoint and ready.auth_enabled
    assert ready.server_ca_certs[0].cert.startswith("-----BEGIN CERTIFICATE-----")
    assert fake.get_resource("redis", name)["tier"] == "STANDARD_HA"  # numeric enums stored by name
    assert client.get_instance_auth_string(name=name).auth_string
    with pytest.raises(gexc.Conflict):
        client.create_instance(parent=LOCATION, instance_id="cache", instance=instance)
    ready.memory_size_gb = 6
    with held(fake):
        update = client.update_instance(
            update_mask=field_mask_pb2.FieldMask(paths=["memory_size_gb"]), instance=ready
        )
        assert client.get_instance(name=name).state == redis_v1.Instance.State.UPDATING
    assert update.result(polling=POLL).memory_size_gb == 6
    with pytest.raises(gexc.BadRequest, match="not supported"):
        client.update_instance(update_mask=field_mask_pb2.FieldMask(paths=["tier"]), instance=ready)
    assert [i.name for i in client.list_instances(parent=LOCATION)] == [name]
    client.delete_instance(name=name).result(polling=POLL)
    with pytest.raises(gexc.NotFound):
        client.get_instance(name=name)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"memory_size_gb": 4}, "at least 5 GiB"),
        ({"tier": redis_v1.Instance.Tier.BASIC}, "only supported for the STANDARD_HA"),
        ({"replica_count": 6}, "between 1 and 5"),
        ({"redis_configs": {"maxmemory-policy": "sometimes"}}, "maxmemory-policy"),
        ({"redis_configs": {"save": "900 1"}}, "Unsupported Redis config"),
        ({"redis_configs": {"maxmemory-gb": "9"}}, "at most the memory size"),
    ],
)
def test_memorystore_refuses_what_memorystore_refuses(fake, api, changes, message):
    network(api, "default")
    client = gapic(redis_v1.CloudRedisClient, fake, "redis")
    instance = {
        "tier": redis_v1.Instance.Tier.STANDARD_HA,
        "memory_size_gb": 5,
        "read_replicas_mode": redis_v1.Instance.ReadReplicasMode.READ_REPLICAS_ENABLED,
        **changes,
    }
    with pytest.raises(gexc.BadRequest, match=message):
        client.create_instance(parent=LOCATION, instance_id="cache", instance=instance)


# -- Cloud Run ------------------------------------------------------------------------------------------------


def test_cloud_run_service_round_trip(fake):
    client = gapic(run_v2.ServicesClient, fake, "run")
    name = f"{LOCATION}/services/web"
    service = {
        "template": {
            "containers": [{"image": "us-docker.pkg.dev/p/r/web:1", "env": [{"name": "MODE", "value": "x"}]}]
        },
        "ingress": run_v2.IngressTraffic.INGRESS_TRAFFIC_INTERNAL_LOAD_BALANCER,
    }
    with held(fake):
        operation = client.create_service(parent=LOCATION, service_id="web", service=service)
        creating = client.get_service(name=name)
        assert not operation.done() and creating.reconciling
        assert creating.terminal_condition.state == run_v2.Condition.State.CONDITION_RECONCILING
    created = operation.result(polling=POLL)
    assert created.uri.startswith("https://web-") and created.latest_ready_revision.startswith(
        f"{name}/revisions/web-00001-"
    )
    assert created.terminal_condition.state == run_v2.Condition.State.CONDITION_SUCCEEDED
    assert created.template.containers[0].ports[0].container_port == 8080  # Google's default
    assert fake.get_resource("run", name)["ingress"] == "INGRESS_TRAFFIC_INTERNAL_LOAD_BALANCER"
    with pytest.raises(gexc.Conflict):
        client.create_service(parent=LOCATION, service_id="web", service=service)
    created.template.containers[0].image = "us-docker.pkg.dev/p/r/web:2"
    updated = client.update_service(service=created).result(polling=POLL)
    assert updated.generation == 2 and updated.template.containers[0].image.endswith(":2")
    assert updated.latest_ready_revision.startswith(f"{name}/revisions/web-00002-")
    assert [s.name for s in client.list_services(parent=LOCATION)] == [name]
    client.delete_service(name=name).result(polling=POLL)
    with pytest.raises(gexc.NotFound):
        client.get_service(name=name)


@pytest.mark.parametrize(
    ("service_id", "container", "exception", "message"),
    [
        ("Web", {"image": "i"}, gexc.BadRequest, "service_id"),
        ("w" * 50, {"image": "i"}, gexc.BadRequest, "less than 50"),
        (
            "web",
            {"image": "i", "env": [{"name": "PORT", "value": "1"}]},
            gexc.BadRequest,
            "reserved env names",
        ),
        (
            "web",
            {"image": "i", "env": [{"name": "A", "value": "1"}, {"name": "A", "value": "2"}]},
            gexc.BadRequest,
            "twice",
        ),
    ],
)
def test_cloud_run_refuses_what_cloud_run_refuses(fake, service_id, container, exception, message):
    client = gapic(run_v2.ServicesClient, fake, "run")
    with pytest.raises(exception, match=message):
        client.create_service(
            parent=LOCATION, service_id=service_id, service={"template": {"containers": [container]}}
        )


def test_cloud_run_revision_fails_on_a_missing_secret_and_a_missing_service_account(fake):
    client = gapic(run_v2.ServicesClient, fake, "run")
    env = [
        {
            "name": "DB_PASSWORD",
            "value_source": {"secret_key_ref": {"secret": "db-password", "version": "latest"}},
        }
    ]
    operation = client.create_service(
        parent=LOCATION, service_id="web", service={"template": {"containers": [{"image": "i", "env": env}]}}
    )
    with pytest.raises(gexc.FailedPrecondition, match="db-password"):
        operation.result(polling=POLL)
    failed = client.get_service(name=f"{LOCATION}/services/web")
    assert failed.terminal_condition.state == run_v2.Condition.State.CONDITION_FAILED
    with pytest.raises(gexc.Forbidden, match="actAs"):
        client.create_service(
            parent=LOCATION,
            service_id="api",
            service={
                "template": {
                    "containers": [{"image": "i"}],
                    "service_account": f"ghost@{PROJECT}.iam.gserviceaccount.com",
                }
            },
        )


def test_cloud_run_job_execution(fake):
    client = gapic(run_v2.JobsClient, fake, "run")
    executions = gapic(run_v2.ExecutionsClient, fake, "run")
    ran: list[str] = []
    fake.job_runner = lambda name, job: (
        ran.append(job["template"]["template"]["containers"][0]["args"][0]) or True
    )
    job = client.create_job(
        parent=LOCATION,
        job_id="migrate",
        job={"template": {"template": {"containers": [{"image": "i", "args": ["up"]}]}}},
    ).result(polling=POLL)
    with held(fake):
        operation = client.run_job(
            request={"name": job.name, "overrides": {"container_overrides": [{"args": ["migrate"]}]}}
        )
        assert not operation.done()
    execution = operation.result(polling=POLL)
    assert ran == ["migrate"] and execution.succeeded_count == 1 and execution.completion_time
    assert [e.name for e in executions.list_executions(parent=job.name)] == [execution.name]
    fake.job_runner = lambda name, job: False
    with pytest.raises(gexc.FailedPrecondition, match="failed to complete"):
        client.run_job(name=job.name).result(polling=POLL)


# -- IAM, Resource Manager, Service Usage -----------------------------------------------------------------------


def test_service_accounts_and_project_policy(fake, api):
    iam = api("iam", "v1")
    accounts = iam.projects().serviceAccounts()
    created = accounts.create(
        name=f"projects/{PROJECT}", body={"accountId": "web-runner", "serviceAccount": {"displayName": "web"}}
    ).execute()
    assert created["email"] == f"web-runner@{PROJECT}.iam.gserviceaccount.com" and created["uniqueId"]
    assert (
        http_error(accounts.create(name=f"projects/{PROJECT}", body={"accountId": "web-runner"})).status_code
        == 409
    )
    assert (
        http_error(accounts.create(name=f"projects/{PROJECT}", body={"accountId": "web"})).status_code == 400
    )
    assert (
        http_error(accounts.create(name=f"projects/{PROJECT}", body={"accountId": "Web_Runner"})).status_code
        == 400
    )
    assert (
        accounts.get(name=f"projects/-/serviceAccounts/{created['email']}").execute()["uniqueId"]
        == created["uniqueId"]
    )
    patched = accounts.patch(
        name=created["name"],
        body={"serviceAccount": {"description": "runs web"}, "updateMask": "description"},
    ).execute()
    assert patched["description"] == "runs web" and patched["displayName"] == "web"
    assert [a["email"] for a in accounts.list(name=f"projects/{PROJECT}").execute()["accounts"]] == [
        created["email"]
    ]
    crm = api("cloudresourcemanager", "v3")
    policy = crm.projects().getIamPolicy(resource=f"projects/{PROJECT}", body={}).execute()
    policy["bindings"] = [
        {"role": "roles/cloudsql.client", "members": [f"serviceAccount:{created['email']}"]}
    ]
    written = crm.projects().setIamPolicy(resource=f"projects/{PROJECT}", body={"policy": policy}).execute()
    stale = http_error(crm.projects().setIamPolicy(resource=f"projects/{PROJECT}", body={"policy": policy}))
    assert stale.status_code == 409 and "concurrent policy changes" in str(stale)
    assert crm.projects().getIamPolicy(resource=f"projects/{PROJECT}", body={}).execute() == written
    accounts.delete(name=created["name"]).execute()
    assert http_error(accounts.get(name=created["name"])).status_code == 404


def test_custom_roles(fake, api):
    roles = api("iam", "v1").projects().roles()
    parent = f"projects/{PROJECT}"
    body = {
        "roleId": "cache_auth",
        "role": {"title": "AUTH", "includedPermissions": ["redis.instances.getAuthString"]},
    }
    created = roles.create(parent=parent, body=body).execute()
    assert created["name"] == f"{parent}/roles/cache_auth" and created["stage"] == "GA" and created["etag"]
    assert http_error(roles.create(parent=parent, body=body)).status_code == 409
    assert http_error(roles.create(parent=parent, body={**body, "roleId": "no-hyphens"})).status_code == 400
    wrong = {"roleId": "other", "role": {"title": "x", "includedPermissions": ["getAuthString"]}}
    assert http_error(roles.create(parent=parent, body=wrong)).status_code == 400
    patched = roles.patch(
        name=created["name"],
        updateMask="includedPermissions",
        body={"includedPermissions": ["redis.instances.get", "redis.instances.getAuthString"]},
    ).execute()
    assert patched["includedPermissions"] == ["redis.instances.get", "redis.instances.getAuthString"]
    assert patched["title"] == "AUTH" and patched["etag"] != created["etag"]
    deleted = roles.delete(name=created["name"]).execute()
    assert deleted["deleted"] is True
    assert roles.get(name=created["name"]).execute()["deleted"] is True, "a deleted role is still read"
    assert roles.list(parent=parent).execute().get("roles") is None
    assert [r["name"] for r in roles.list(parent=parent, showDeleted=True).execute()["roles"]] == [
        created["name"]
    ]
    taken = http_error(roles.create(parent=parent, body=body))
    assert taken.status_code == 409 and "undelete" in str(taken)
    assert http_error(roles.patch(name=created["name"], body={"title": "y"})).status_code == 400
    assert "deleted" not in roles.undelete(name=created["name"], body={}).execute()
    assert http_error(roles.get(name=f"{parent}/roles/missing")).status_code == 404
    policy = {"bindings": [{"role": created["name"], "members": ["user:someone@example.com"]}]}
    crm = api("cloudresourcemanager", "v3")
    crm.projects().setIamPolicy(resource=parent, body={"policy": policy}).execute()


def test_numeric_enums_from_a_library_the_fake_has_not_imported():
    """The fake serving a provider in another process: a REST transport's numeric enum is named through the
    library's descriptors even where they are not the discovery document's order (Memorystore's tier
    STANDARD_HA is 3, the third name)."""
    import subprocess
    import sys
    import textwrap

    script = textwrap.dedent(
        f"""
        import json, sys, urllib.error, urllib.request
        from skyrig_gcp.fake import FakeGcp

        with FakeGcp(projects=({PROJECT!r},)) as fake:
            assert "google.cloud.redis_v1" not in sys.modules
            parent = "projects/{PROJECT}/locations/us-central1"
            body = {{"tier": 3, "memorySizeGb": 5, "authorizedNetwork": "projects/{PROJECT}/global/networks/v"}}
            request = urllib.request.Request(
                fake.endpoint("redis") + "/v1/" + parent + "/instances?instanceId=c&%24alt=json%3Benum-encoding%3Dint",
                data=json.dumps(body).encode(), method="POST", headers={{"Content-Type": "application/json"}},
            )
            try:
                urllib.request.urlopen(request, timeout=10)
            except urllib.error.HTTPError as error:
                print(json.loads(error.read())["error"]["message"])
        """
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "TYPE_ENUM" not in done.stdout, done.stdout
    assert "network" in done.stdout.lower(), "the request should get as far as the network's check"


def test_resource_manager_projects(fake, api):
    projects = api("cloudresourcemanager", "v3").projects()
    seeded = projects.get(name=f"projects/{PROJECT}").execute()
    assert seeded["projectId"] == PROJECT and seeded["name"] == f"projects/{fake.project_number(PROJECT)}"
    assert http_error(projects.get(name="projects/nobody-has-this")).status_code == 403
    op = projects.create(body={"projectId": "new-project-1", "displayName": "New"}).execute()
    assert op["done"] is False
    done = operation_wait(api, "cloudresourcemanager", op)
    assert done["response"]["projectId"] == "new-project-1"
    assert [p["projectId"] for p in projects.search(query="id:new-project-1").execute()["projects"]] == [
        "new-project-1"
    ]
    assert http_error(projects.create(body={"projectId": "x"})).status_code == 400


def test_service_usage_and_disabled_apis(fake, api):
    fake.require_enabled_services = True
    secrets = gapic(secretmanager_v1.SecretManagerServiceClient, fake, "secretmanager")
    with pytest.raises(gexc.Forbidden, match="has not been used in project"):
        secrets.list_secrets(parent=f"projects/{PROJECT}")
    services = api("serviceusage", "v1").services()
    name = f"projects/{PROJECT}/services/secretmanager.googleapis.com"
    with held(fake):
        op = services.enable(name=name, body={}).execute()
        assert op["done"] is False and services.get(name=name).execute()["state"] == "DISABLED"
    operation_wait(api, "serviceusage", op)
    assert services.get(name=name).execute()["state"] == "ENABLED"
    assert [
        s["config"]["name"]
        for s in services.list(parent=f"projects/{PROJECT}", filter="state:ENABLED").execute()["services"]
    ] == ["secretmanager.googleapis.com"]
    assert list(secrets.list_secrets(parent=f"projects/{PROJECT}")) == []
    assert (
        http_error(services.enable(name=f"projects/{PROJECT}/services/not-a-service", body={})).status_code
        == 403
    )


# -- Cloud Scheduler, Artifact Registry -----------------------------------------------------------------------------


def test_cloud_scheduler_jobs(fake):
    client = gapic(scheduler_v1.CloudSchedulerClient, fake, "cloudscheduler")
    name = f"{LOCATION}/jobs/nightly"
    job = {
        "name": name,
        "schedule": "0 3 * * *",
        "time_zone": "Europe/Paris",
        "http_target": {"uri": "https://example.invalid/cron"},
    }
    created = client.create_job(parent=LOCATION, job=job)
    assert (
        created.state == scheduler_v1.Job.State.ENABLED
        and created.http_target.http_method == scheduler_v1.HttpMethod.POST
    )
    with pytest.raises(gexc.Conflict):
        client.create_job(parent=LOCATION, job=job)
    with pytest.raises(gexc.BadRequest, match="Schedule or time zone is invalid"):
        client.create_job(parent=LOCATION, job={**job, "name": f"{LOCATION}/jobs/bad", "schedule": "at noon"})
    with pytest.raises(gexc.BadRequest, match="Job name must be formatted"):
        client.create_job(parent=LOCATION, job={**job, "name": "nightly"})
    updated = client.update_job(
        job={"name": name, "schedule": "0 4 * * *"}, update_mask=field_mask_pb2.FieldMask(paths=["schedule"])
    )
    assert updated.schedule == "0 4 * * *" and updated.time_zone == "Europe/Paris"
    assert client.pause_job(name=name).state == scheduler_v1.Job.State.PAUSED
    assert [j.name for j in client.list_jobs(parent=LOCATION)] == [name]
    client.delete_job(name=name)
    with pytest.raises(gexc.NotFound):
        client.get_job(name=name)


def test_artifact_registry_repositories(fake):
    client = gapic(artifactregistry_v1.ArtifactRegistryClient, fake, "artifactregistry")
    name = f"{LOCATION}/repositories/images"
    with held(fake):
        operation = client.create_repository(
            parent=LOCATION, repository_id="images", repository={"format_": "DOCKER"}
        )
        assert not operation.done()
    repository = operation.result(polling=POLL)
    assert repository.registry_uri == f"{REGION}-docker.pkg.dev/{PROJECT}/images"
    with pytest.raises(gexc.Conflict):
        client.create_repository(parent=LOCATION, repository_id="images", repository={"format_": "DOCKER"})
    with pytest.raises(gexc.BadRequest):
        client.create_repository(parent=LOCATION, repository_id="Images", repository={"format_": "DOCKER"})
    with pytest.raises(gexc.BadRequest, match="format"):
        client.create_repository(parent=LOCATION, repository_id="empty", repository={})
    updated = client.update_repository(
        repository={"name": name, "description": "app images"},
        update_mask=field_mask_pb2.FieldMask(paths=["description"]),
    )
    assert (
        updated.description == "app images"
        and updated.format_ == artifactregistry_v1.Repository.Format.DOCKER
    )
    assert [r.name for r in client.list_repositories(parent=LOCATION)] == [name]
    client.delete_repository(name=name).result(polling=POLL)
    with pytest.raises(gexc.NotFound):
        client.get_repository(name=name)


# -- what tests read and do: calls, injected errors, the console's changes -------------------------------------------


def test_calls_are_counted_and_errors_injected(fake, api):
    client = gapic(secretmanager_v1.SecretManagerServiceClient, fake, "secretmanager")
    secret = client.create_secret(
        parent=f"projects/{PROJECT}", secret_id="s", secret={"replication": {"automatic": {}}}
    )
    client.add_secret_version(parent=secret.name, payload={"data": b"v"})
    fake.calls.clear()
    fake.inject_error("secretmanager", "versions.access", 503)
    quick = Retry(initial=0.01, maximum=0.05, predicate=if_exception_type(gexc.ServiceUnavailable))
    assert (
        client.access_secret_version(name=f"{secret.name}/versions/latest", retry=quick).payload.data == b"v"
    )
    assert [c.status for c in fake.calls.select("secretmanager", "versions.access")] == [503, 200]
    fake.inject_error("secretmanager", "secrets.get", 429, times=2)
    with pytest.raises(gexc.TooManyRequests):
        client.get_secret(name=secret.name)
    sql = api("sqladmin", "v1")
    fake.inject_error("sqladmin", "instances.list", 503)
    request = sql.instances().list(project=PROJECT)
    request._sleep = lambda seconds: None  # google-api-python-client's own backoff, shortened
    assert request.execute(num_retries=2) == {"kind": "sql#instancesList"}
    assert fake.calls.count("sqladmin", "sql.instances.list") == 2
    assert fake.calls.count(mutating=True) == 0
    client.get_iam_policy(request={"resource": secret.name})
    assert fake.calls.count(mutating=True) == 0  # getIamPolicy is a read, whatever its HTTP method
    client.delete_secret(name=secret.name)
    assert [(c.api, c.method) for c in fake.calls.mutating()] == [
        ("secretmanager", "secretmanager.projects.secrets.delete")
    ]


def test_the_console_changes_a_resource(fake, api):
    network(api)
    sql = api("sqladmin", "v1")
    body = sql_body(ipConfiguration={"ipv4Enabled": True})
    sql_wait(api, sql.instances().insert(project=PROJECT, body=body).execute())
    changed = fake.update_resource(
        "sqladmin", f"projects/{PROJECT}/instances/db", {"settings": {"tier": "db-custom-2-7680"}}
    )
    assert changed["settings"]["settingsVersion"] == "2"
    seen = sql.instances().get(project=PROJECT, instance="db").execute()["settings"]
    assert seen["tier"] == "db-custom-2-7680" and seen["settingsVersion"] == "2"
    fake.set_iam_policy(
        "cloudresourcemanager",
        f"projects/{PROJECT}",
        {"bindings": [{"role": "roles/owner", "members": ["user:a@example.com"]}]},
    )
    policy = (
        api("cloudresourcemanager", "v3")
        .projects()
        .getIamPolicy(resource=f"projects/{PROJECT}", body={})
        .execute()
    )
    assert policy["bindings"][0]["role"] == "roles/owner"
    fake.delete_resource("sqladmin", f"projects/{PROJECT}/instances/db")
    assert http_error(sql.instances().get(project=PROJECT, instance="db")).status_code == 404


def test_operations_finish_only_after_the_delay(fake):
    fake.lro_delay = 0.5
    client = gapic(artifactregistry_v1.ArtifactRegistryClient, fake, "artifactregistry")
    started = time.monotonic()
    operation = client.create_repository(
        parent=LOCATION, repository_id="slow", repository={"format_": "DOCKER"}
    )
    operation.result(polling=POLL)
    assert time.monotonic() - started >= 0.5
    assert fake.calls.count("artifactregistry", "operations.get") >= 2


def test_concurrent_creates_make_one_resource(fake):
    client = gapic(secretmanager_v1.SecretManagerServiceClient, fake, "secretmanager")
    outcomes: list[str] = []

    def create() -> None:
        try:
            client.create_secret(
                parent=f"projects/{PROJECT}", secret_id="race", secret={"replication": {"automatic": {}}}
            )
            outcomes.append("created")
        except gexc.Conflict:
            outcomes.append("exists")

    threads = [threading.Thread(target=create) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == ["created"] + ["exists"] * 7


def test_the_provider_runtime_never_imports_the_fake():
    """Only the conformance profile (and the fake itself) may import skyrig_gcp.fake."""
    import ast
    from pathlib import Path

    import skyrig_gcp

    package = Path(skyrig_gcp.__file__).parent
    for path in package.rglob("*.py"):
        relative = path.relative_to(package).as_posix()
        if relative.startswith("fake/") or relative == "conformance.py":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
            if isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            assert not any(name.startswith("skyrig_gcp.fake") for name in names), relative


def test_reset_forgets_everything(fake, api):
    network(api)
    assert fake.resources("compute") and len(fake.calls)
    fake.reset()
    assert fake.resources("compute") == [] and len(fake.calls) == 0
    assert (
        api("cloudresourcemanager", "v3").projects().get(name=f"projects/{PROJECT}").execute()["projectId"]
        == PROJECT
    )
