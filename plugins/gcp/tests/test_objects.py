"""The objects family, read back with the real clients: Cloud Storage buckets from fake-gcs-server (an
emulator) through google-cloud-storage, and the Cloud CDN backend bucket and the load balancer serving it
(address, URL map, target HTTP proxy, forwarding rule) from the FAKE Compute Engine (:mod:`skyrig_gcp.fake`,
which checks every request against the discovery document but serves no traffic) through
google-api-python-client.

fake-gcs-server keeps no labels, IAM configuration (uniform bucket-level access, public access prevention)
or IAM policies: for those the tests read what the provider asked of it, through the requests the real
client sent; versioning, objects and their versions are read back. The suite's services run on the memory
provider (their families are not this module's).
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from skyrig.plugins.registry import load_provider
from skyrig_conformance import Profile
from skyrig_conformance.deployment import MAIN, Deployment
from skyrig_gcp import api, names
from skyrig_gcp.conformance import PROJECT, settings

OTHERS = {family: "memory" for family in ("compute", "sql", "pubsub", "cache", "cron")}
OURS = dataclasses.replace(
    load_provider("gcp").manifest,
    kinds=frozenset({"bucket", "secret"}),
    features=frozenset({"bucket.public", "bucket.versioning"}),
    together={},
    traits=frozenset(),
)
"""The manifest the suite's app is written for: only this module's families' kinds are declared."""


@pytest.fixture
def app(
    gcp_backends: Any, fake: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Deployment]:
    """The conformance suite's app (buckets files, history versioned, assets public; secret api-key) on
    GCP for objects and secrets, written but not applied; destroyed with its data at the end."""
    endpoints, environ, _fake, _limits = gcp_backends
    for key, value in {**environ, "SKYRIG_RETRY_BASE_MS": "1"}.items():
        monkeypatch.setenv(key, value)
    profile = Profile(provider="gcp", settings=settings(endpoints), families=OTHERS)
    made = Deployment(tmp_path / "app", profile, OURS)
    yield made
    made.cli("destroy", "--env", MAIN, "--yes", "--include-data")


@pytest.fixture
def sent(gcp_backends: Any, monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, str, Any]]:
    """Every request google-cloud-storage sends to fake-gcs-server from now on: (method, path, JSON)."""
    storage = gcp_backends[0]["storage"]
    calls: list[tuple[str, str, Any]] = []
    original = requests.Session.request

    def request(self: requests.Session, method: str, url: str, *args: Any, **kwargs: Any) -> Any:
        if url.startswith(storage):
            body = kwargs.get("data") or kwargs.get("json")
            try:
                body = json.loads(body) if isinstance(body, str | bytes) else body
            except ValueError:
                body = None
            calls.append((method, url[len(storage) :].partition("?")[0], body))
        return original(self, method, url, *args, **kwargs)

    monkeypatch.setattr(requests.Session, "request", request)
    return calls


def storage_client(gcp_backends: Any) -> Any:
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import storage

    endpoint = gcp_backends[0]["storage"]
    return storage.Client(
        PROJECT, credentials=AnonymousCredentials(), client_options={"api_endpoint": endpoint}
    )


def compute(gcp_backends: Any) -> Any:
    from google.auth.credentials import AnonymousCredentials
    from googleapiclient.discovery import build

    return build(
        "compute",
        "v1",
        credentials=AnonymousCredentials(),
        client_options={"api_endpoint": gcp_backends[0]["compute"]},
        static_discovery=True,
        cache_discovery=False,
    )


def bucket(app: Deployment, name: str) -> str:
    return names.bucket_name(PROJECT, app.app, MAIN, name)


LOAD_BALANCER = ("globalAddresses", "urlMaps", "targetHttpProxies", "globalForwardingRules")
"""The Compute Engine collections of the CDN load balancer's parts."""
NO_LOAD_BALANCER: dict[str, list[Any]] = {collection: [] for collection in LOAD_BALANCER}


def ours(gcp_backends: Any, collection: str, app: str, env: str = MAIN) -> list[dict[str, Any]]:
    """The app's environment's resources of a global Compute Engine collection, by their description."""
    resources = getattr(compute(gcp_backends), collection)()
    listed = resources.list(project=PROJECT).execute().get("items", [])
    return [r for r in listed if r.get("description") == f"skyrig {app}/{env}"]


def load_balancer(gcp_backends: Any, app: str, env: str = MAIN) -> dict[str, list[dict[str, Any]]]:
    """Collection -> the environment's load balancer parts in it."""
    return {collection: ours(gcp_backends, collection, app, env) for collection in LOAD_BALANCER}


def name_of(link: str) -> str:
    return link.rpartition("/")[2]


def test_buckets_are_made_as_declared_private_unless_public(
    app: Deployment, gcp_backends: Any, sent: list
) -> None:
    app.apply()
    client = storage_client(gcp_backends)
    for name, versioned in (("files", False), ("history", True), ("assets", False)):
        found = client.get_bucket(bucket(app, name))
        assert found.location == "US-CENTRAL1"
        assert found.versioning_enabled is versioned, f"{name}: versioning only where declared"
    inserts = {
        body["name"]: body for method, path, body in sent if (method, path) == ("POST", "/storage/v1/b")
    }
    assert inserts.keys() == {bucket(app, n) for n in ("files", "history", "assets")}
    for name, body in inserts.items():
        assert body["iamConfiguration"]["uniformBucketLevelAccess"] == {"enabled": True}, name
        assert body["labels"]["skyrig-app"] == app.app and body["labels"]["skyrig-env"] == MAIN
    prevention = {name: body["iamConfiguration"]["publicAccessPrevention"] for name, body in inserts.items()}
    assert prevention == {
        bucket(app, "files"): "enforced",
        bucket(app, "history"): "enforced",
        bucket(app, "assets"): "inherited",
    }, "public access prevention is enforced on every bucket but the public one"
    policies = [(path, body) for method, path, body in sent if method == "PUT" and path.endswith("/iam")]
    assert [path for path, _ in policies] == [f"/storage/v1/b/{bucket(app, 'assets')}/iam"], (
        "only the public bucket's IAM policy is set"
    )
    assert policies[0][1]["bindings"] == [{"role": "roles/storage.objectViewer", "members": ["allUsers"]}]


def test_a_public_bucket_gets_a_cdn_backend_bucket(app: Deployment, gcp_backends: Any) -> None:
    app.apply()
    listed = compute(gcp_backends).backendBuckets().list(project=PROJECT).execute().get("items", [])
    ours = [b for b in listed if b.get("description") == f"skyrig {app.app}/{MAIN}"]
    assert [(b["name"], b["bucketName"], b["enableCdn"]) for b in ours] == [
        (names.backend_bucket_name(app.app, MAIN, "assets"), bucket(app, "assets"), True)
    ], "one Cloud CDN backend bucket, in front of the public bucket only"
    entry = app.bind("alpha").config["resources"]["bucket/assets"]
    app.unbind()
    assert entry["public"] is True and entry["bucket"] == bucket(app, "assets")


def test_a_public_bucket_is_served_by_a_load_balancer_through_cloud_cdn(
    app: Deployment, gcp_backends: Any
) -> None:
    app.apply()
    found = load_balancer(gcp_backends, app.app)
    assert {c: [r["name"] for r in found[c]] for c in LOAD_BALANCER} == {
        "globalAddresses": [names.cdn_name(app.app, MAIN, "ip")],
        "urlMaps": [names.cdn_name(app.app, MAIN, "map")],
        "targetHttpProxies": [names.cdn_name(app.app, MAIN, "proxy")],
        "globalForwardingRules": [names.cdn_name(app.app, MAIN, "rule")],
    }, "one load balancer for the environment"
    address = found["globalAddresses"][0]
    assert address["addressType"] == "EXTERNAL"
    url_map = found["urlMaps"][0]
    backend = names.backend_bucket_name(app.app, MAIN, "assets")
    assert name_of(url_map["defaultService"]) == backend
    assert url_map["hostRules"] == [{"hosts": ["*"], "pathMatcher": "buckets"}]
    (matcher,) = url_map["pathMatchers"]
    assert name_of(matcher["defaultService"]) == backend
    assert [(r["paths"], name_of(r["service"]), r["routeAction"]) for r in matcher["pathRules"]] == [
        (["/assets/*"], backend, {"urlRewrite": {"pathPrefixRewrite": "/"}})
    ], "the public bucket only, under /assets/, the prefix taken off before the backend bucket"
    backends = compute(gcp_backends).backendBuckets().get(project=PROJECT, backendBucket=backend).execute()
    assert backends["bucketName"] == bucket(app, "assets") and backends["enableCdn"] is True
    proxy = found["targetHttpProxies"][0]
    assert name_of(proxy["urlMap"]) == url_map["name"]
    rule = found["globalForwardingRules"][0]
    assert name_of(rule["target"]) == proxy["name"]
    assert name_of(rule["IPAddress"]) == address["name"]
    assert (rule["portRange"], rule["IPProtocol"], rule["loadBalancingScheme"]) == (
        "80",
        "TCP",
        "EXTERNAL_MANAGED",
    )
    config = app.bind("alpha").config["resources"]
    app.unbind()
    assert config["bucket/assets"]["public_url"] == f"http://{address['address']}/assets", (
        "a public bucket's URL is the load balancer's"
    )
    assert config["bucket/files"]["public_url"].startswith(gcp_backends[0]["storage"])


def test_a_second_apply_makes_no_mutating_call_and_a_refresh_lists_once(app: Deployment) -> None:
    app.apply()
    api.CALLS.clear()
    assert "nothing to do" in app.apply().text
    ours = {k: v for k, v in api.CALLS.items() if k[0] in ("storage", "compute", "secretmanager")}
    assert api.mutating_calls(api.CALLS) == {}
    assert ours[("storage", "buckets.list")] == 1, "one list call reads every bucket"
    assert ("storage", "buckets.get") not in ours
    assert ours[("compute", "compute.backendBuckets.list")] == 1
    for collection in LOAD_BALANCER:
        assert ours[("compute", f"compute.{collection}.list")] == 1, f"one list call reads the {collection}"


def test_versioning_turned_off_in_the_console_is_restored(app: Deployment, gcp_backends: Any) -> None:
    app.apply()
    history = storage_client(gcp_backends).get_bucket(bucket(app, "history"))
    history.versioning_enabled = False
    history.patch()
    changes = app.changes(app.plan())
    assert [(c["node"], c["action"]) for c in changes] == [("objects.bucket/history", "update")]
    app.apply()
    assert storage_client(gcp_backends).get_bucket(bucket(app, "history")).versioning_enabled is True
    assert app.changes(app.plan()) == []


def test_destroy_keeps_buckets_unless_include_data(app: Deployment, gcp_backends: Any) -> None:
    app.apply()
    app.bind("alpha").resources.history.upload("kept", b"data")
    app.unbind()
    app.ok("destroy", "--env", MAIN, "--yes")
    client = storage_client(gcp_backends)
    assert client.lookup_bucket(bucket(app, "history")) is not None, "a bucket holds data: kept"
    app.apply()  # adopted again, with its objects
    assert client.bucket(bucket(app, "history")).blob("kept").download_as_bytes() == b"data"
    app.ok("destroy", "--env", MAIN, "--yes", "--include-data")
    for name in ("files", "history", "assets"):
        assert client.lookup_bucket(bucket(app, name)) is None, f"{name} is left after --include-data"
    listed = compute(gcp_backends).backendBuckets().list(project=PROJECT).execute().get("items", [])
    assert not [b for b in listed if b.get("description") == f"skyrig {app.app}/{MAIN}"]
    assert load_balancer(gcp_backends, app.app) == NO_LOAD_BALANCER


def test_signed_urls_are_v4_and_public_urls_only_for_public_buckets(app: Deployment) -> None:
    app.apply()
    resources = app.bind("alpha").resources
    try:
        url = resources.files.signed_url("a.txt", "10m")
        assert "X-Goog-Algorithm=GOOG4-RSA-SHA256" in url and "X-Goog-Expires=600" in url
        with pytest.raises(PermissionError):
            resources.files.public_url("a.txt")
        assert resources.assets.public_url("logo one.svg").endswith("/assets/logo%20one.svg")
    finally:
        app.unbind()


SERVICE = {
    "web/__init__.py": """
        from skyrig import Bucket, Service

        service = Service("web", app="web.app:app")
        {buckets}
    """,
    "web/app.py": """
        async def app(scope, receive, send):
            pass
    """,
}


def web(buckets: str) -> dict[str, str]:
    return {**SERVICE, "web/__init__.py": SERVICE["web/__init__.py"].replace("{buckets}", buckets)}


def test_the_load_balancer_is_there_for_public_buckets_only_and_routes_each(
    gcp_app: Any, gcp_backends: Any
) -> None:
    gcp_app.write(web('files = Bucket("files")'))
    gcp_app.apply()
    assert load_balancer(gcp_backends, gcp_app.name, "dev") == NO_LOAD_BALANCER, (
        "no public bucket: no load balancer"
    )
    gcp_app.write(
        web(
            'files = Bucket("files")\n        pics = Bucket("pics", public=True)\n'
            '        assets = Bucket("assets", public=True)'
        )
    )
    gcp_app.apply()
    (url_map,) = ours(gcp_backends, "urlMaps", gcp_app.name, "dev")
    backend = {b: names.backend_bucket_name(gcp_app.name, "dev", b) for b in ("assets", "pics")}
    assert name_of(url_map["defaultService"]) == backend["assets"]
    (matcher,) = url_map["pathMatchers"]
    assert sorted((r["paths"][0], name_of(r["service"])) for r in matcher["pathRules"]) == [
        ("/assets/*", backend["assets"]),
        ("/pics/*", backend["pics"]),
    ], "each public bucket under its own path"
    assert gcp_app.plan() == []
    api.CALLS.clear()
    assert "nothing to do" in gcp_app.apply().text
    assert api.mutating_calls(api.CALLS) == {}
    gcp_app.write(web('files = Bucket("files")\n        assets = Bucket("assets", public=True)'))
    gcp_app.apply()
    (url_map,) = ours(gcp_backends, "urlMaps", gcp_app.name, "dev")
    assert [(r["paths"], name_of(r["service"])) for r in url_map["pathMatchers"][0]["pathRules"]] == [
        (["/assets/*"], backend["assets"])
    ], "a bucket no longer public leaves the URL map before its backend bucket is deleted"
    gcp_app.cli("destroy", "--env", "dev", "--yes", "--include-data")
    assert load_balancer(gcp_backends, gcp_app.name, "dev") == NO_LOAD_BALANCER


def test_a_url_map_changed_in_the_console_is_restored(app: Deployment, gcp_backends: Any) -> None:
    app.apply()
    urls = compute(gcp_backends).urlMaps()
    name = names.cdn_name(app.app, MAIN, "map")
    found = urls.get(project=PROJECT, urlMap=name).execute()
    found["pathMatchers"][0]["pathRules"] = []
    operation = urls.update(project=PROJECT, urlMap=name, body=found).execute()
    operations = compute(gcp_backends).globalOperations()
    while operations.get(project=PROJECT, operation=operation["name"]).execute()["status"] != "DONE":
        time.sleep(0.05)
    changes = app.changes(app.plan())
    assert [(c["node"], c["action"]) for c in changes] == [("objects.cdn_url_map", "update")]
    app.apply()
    rules = urls.get(project=PROJECT, urlMap=name).execute()["pathMatchers"][0]["pathRules"]
    assert [(r["paths"], name_of(r["service"])) for r in rules] == [
        (["/assets/*"], names.backend_bucket_name(app.app, MAIN, "assets"))
    ]
    assert app.changes(app.plan()) == []
