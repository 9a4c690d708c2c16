"""These test the FAKE Kubernetes Engine API (skyrig_gcp.fake's container v1), not Google: GKE's control plane
has no emulator, so skyrig-gke's tests will create clusters against this strict stand-in. Each test drives it
with a REAL client (google-api-python-client from its shipped container v1 discovery document; one test with
google-cloud-container on its REST transport), anonymous credentials and an http:// endpoint, and shows that
it answers as GKE documents: clusters PROVISIONING until their operation is done, then RUNNING with an
endpoint and a real CA; GKE's checks and error envelopes; 409 on duplicates; 400 while a cluster changes;
label fingerprints; node pools on Standard clusters only; operations with their type, links and errors.
"""

from __future__ import annotations

import base64
import ipaddress
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from cryptography import x509
from google.auth.credentials import AnonymousCredentials
from googleapiclient.discovery import build
from googleapiclient.errors import HttpError

from skyrig_gcp.fake import FakeGcp
from skyrig_gcp.fake.apis.container import CHANNELS

PROJECT = "skyrig-gke-demo"
REGION = "us-central1"
LOCATION = f"projects/{PROJECT}/locations/{REGION}"
DELAY = 0.05


@pytest.fixture(scope="module")
def server() -> Iterator[FakeGcp]:
    with FakeGcp(projects=(PROJECT,), lro_delay=DELAY) as fake:
        yield fake


@pytest.fixture
def fake(server: FakeGcp) -> FakeGcp:
    server.reset()
    server.lro_delay = DELAY
    return server


@pytest.fixture(scope="module")
def gke(server: FakeGcp) -> Any:
    """The container v1 service of google-api-python-client, at the fake."""
    return build(
        "container",
        "v1",
        credentials=AnonymousCredentials(),
        static_discovery=True,
        client_options={"api_endpoint": server.discovery_endpoint("container")},
        cache_discovery=False,
    )


@pytest.fixture(scope="module")
def compute(server: FakeGcp) -> Any:
    """The compute v1 service, at the fake (for the networks a cluster joins)."""
    return build(
        "compute",
        "v1",
        credentials=AnonymousCredentials(),
        static_discovery=True,
        client_options={"api_endpoint": server.discovery_endpoint("compute")},
        cache_discovery=False,
    )


@contextmanager
def held(fake: FakeGcp) -> Iterator[None]:
    """Operations started in the block stay running (whatever the machine's load) until it ends; then they
    finish at once."""
    fake.lro_delay = 60
    try:
        yield
    finally:
        fake.lro_delay = DELAY
        fake.settle(everything=True)


def clusters(gke: Any) -> Any:
    return gke.projects().locations().clusters()


def error_of(call: Any) -> tuple[int, str, str]:
    """(HTTP status, canonical status, message) of a call that must fail."""
    with pytest.raises(HttpError) as caught:
        call.execute()
    error = caught.value
    import json

    body = json.loads(error.content)["error"]
    return error.status_code, body["status"], body["message"]


def wait(gke: Any, op: dict[str, Any], location: str = LOCATION) -> dict[str, Any]:
    deadline = time.time() + 5
    while op["status"] != "DONE" and time.time() < deadline:
        time.sleep(0.02)
        op = gke.projects().locations().operations().get(name=f"{location}/operations/{op['name']}").execute()
    assert op["status"] == "DONE", op
    return op


def create(gke: Any, cluster: dict[str, Any], location: str = LOCATION) -> dict[str, Any]:
    """Creates a cluster and waits for it: the RUNNING cluster."""
    op = clusters(gke).create(parent=location, body={"cluster": cluster}).execute()
    assert "error" not in wait(gke, op, location)
    return clusters(gke).get(name=f"{location}/clusters/{cluster['name']}").execute()


def subnetwork(compute: Any, fake: FakeGcp) -> None:
    """A custom-mode network ``vpc`` with subnetwork ``nodes`` (secondary ranges ``pods``, ``services``)."""
    compute.networks().insert(project=PROJECT, body={"name": "vpc", "autoCreateSubnetworks": False}).execute()
    fake.settle(everything=True)
    compute.subnetworks().insert(
        project=PROJECT,
        region=REGION,
        body={
            "name": "nodes",
            "network": f"projects/{PROJECT}/global/networks/vpc",
            "ipCidrRange": "10.0.0.0/20",
            "secondaryIpRanges": [
                {"rangeName": "pods", "ipCidrRange": "10.4.0.0/14"},
                {"rangeName": "services", "ipCidrRange": "10.8.0.0/20"},
            ],
        },
    ).execute()
    fake.settle(everything=True)


STANDARD = {
    "name": "std",
    "network": "vpc",
    "subnetwork": "nodes",
    "ipAllocationPolicy": {
        "useIpAliases": True,
        "clusterSecondaryRangeName": "pods",
        "servicesSecondaryRangeName": "services",
    },
    "privateClusterConfig": {"enablePrivateNodes": True, "masterIpv4CidrBlock": "172.16.0.16/28"},
    "workloadIdentityConfig": {"workloadPool": f"{PROJECT}.svc.id.goog"},
    "releaseChannel": {"channel": "STABLE"},
    "resourceLabels": {"app": "shop", "env": "prod"},
    "nodePools": [
        {
            "name": "apps",
            "initialNodeCount": 1,
            "config": {"machineType": "e2-standard-4", "workloadMetadataConfig": {"mode": "GKE_METADATA"}},
            "autoscaling": {"enabled": True, "minNodeCount": 1, "maxNodeCount": 3},
        }
    ],
}


# -- Autopilot -------------------------------------------------------------------------------------------


def test_an_autopilot_cluster_is_provisioning_until_its_operation_is_done_then_running(fake, gke):
    with held(fake):
        op = clusters(gke).create(
            parent=LOCATION, body={"cluster": {"name": "ap", "autopilot": {"enabled": True}}}
        )
        op = op.execute()
        assert op["operationType"] == "CREATE_CLUSTER" and op["status"] in ("PENDING", "RUNNING")
        assert op["targetLink"].endswith(f"/locations/{REGION}/clusters/ap")
        assert op["selfLink"].endswith(f"/locations/{REGION}/operations/{op['name']}")
        provisioning = clusters(gke).get(name=f"{LOCATION}/clusters/ap").execute()
        assert provisioning["status"] == "PROVISIONING" and "endpoint" not in provisioning
    done = wait(gke, op)
    assert "error" not in done and done["endTime"]
    cluster = clusters(gke).get(name=f"{LOCATION}/clusters/ap").execute()
    assert cluster["status"] == "RUNNING"
    ipaddress.IPv4Address(cluster["endpoint"])
    ca = x509.load_pem_x509_certificate(base64.b64decode(cluster["masterAuth"]["clusterCaCertificate"]))
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    assert cluster["currentMasterVersion"] == CHANNELS["REGULAR"][0]  # the default channel's default
    assert cluster["workloadIdentityConfig"] == {"workloadPool": f"{PROJECT}.svc.id.goog"}
    assert cluster["autopilot"]["enabled"] and cluster["ipAllocationPolicy"]["useIpAliases"]
    assert cluster["locations"] == [f"{REGION}-a", f"{REGION}-b", f"{REGION}-c"]
    assert cluster["selfLink"].endswith(f"{LOCATION}/clusters/ap")
    assert [pool["status"] for pool in cluster["nodePools"]] == ["RUNNING"]
    number = f"projects/{fake.project_number(PROJECT)}/locations/{REGION}"
    assert clusters(gke).get(name=f"{number}/clusters/ap").execute()["id"] == cluster["id"]  # by number too
    listed = clusters(gke).list(parent=f"projects/{PROJECT}/locations/-").execute()
    assert [c["name"] for c in listed["clusters"]] == ["ap"]
    # a test's Kubernetes API server can present a certificate the cluster's CA signed
    cert_pem, _ = fake.handlers["container"].server_identity(f"{LOCATION}/clusters/ap")  # type: ignore[attr-defined]
    x509.load_pem_x509_certificate(cert_pem.encode()).verify_directly_issued_by(ca)
    assert fake.calls.count("container", "clusters.create") == 1
    assert fake.calls.count("container", mutating=True) == 1


def test_autopilot_refuses_node_pools_zones_and_disabling_workload_identity(fake, gke):
    code, status, message = error_of(
        clusters(gke).create(
            parent=f"projects/{PROJECT}/locations/{REGION}-a",
            body={"cluster": {"name": "zonal", "autopilot": {"enabled": True}}},
        )
    )
    assert (code, status) == (400, "INVALID_ARGUMENT") and "regional" in message
    code, status, _ = error_of(
        clusters(gke).create(
            parent=LOCATION,
            body={"cluster": {"name": "ap", "autopilot": {"enabled": True}, "initialNodeCount": 3}},
        )
    )
    assert (code, status) == (400, "INVALID_ARGUMENT")
    create(gke, {"name": "ap", "autopilot": {"enabled": True}})
    pools = clusters(gke).nodePools()
    code, status, message = error_of(
        pools.create(
            parent=f"{LOCATION}/clusters/ap", body={"nodePool": {"name": "extra", "initialNodeCount": 1}}
        )
    )
    assert (code, status) == (400, "INVALID_ARGUMENT") and "Autopilot" in message
    code, _, _ = error_of(
        pools.setSize(name=f"{LOCATION}/clusters/ap/nodePools/default-pool", body={"nodeCount": 2})
    )
    assert code == 400
    code, _, message = error_of(
        clusters(gke).update(
            name=f"{LOCATION}/clusters/ap",
            body={"update": {"desiredWorkloadIdentityConfig": {"workloadPool": ""}}},
        )
    )
    assert code == 400 and "Autopilot" in message
    assert fake.calls.count("container", "nodePools.create") == 1


# -- Standard --------------------------------------------------------------------------------------------


def test_a_standard_cluster_with_private_nodes_in_the_fakes_network_and_its_node_pools(fake, gke, compute):
    subnetwork(compute, fake)
    cluster = create(gke, STANDARD)
    assert cluster["status"] == "RUNNING" and cluster["currentMasterVersion"] == CHANNELS["STABLE"][0]
    assert cluster["privateClusterConfig"]["privateEndpoint"] == "172.16.0.18"
    assert cluster["networkConfig"] == {
        "network": f"projects/{PROJECT}/global/networks/vpc",
        "subnetwork": f"projects/{PROJECT}/regions/{REGION}/subnetworks/nodes",
    }
    assert cluster["clusterIpv4Cidr"] == "10.4.0.0/14" and cluster["servicesIpv4Cidr"] == "10.8.0.0/20"
    (pool,) = cluster["nodePools"]
    assert pool["status"] == "RUNNING" and pool["version"] == cluster["currentMasterVersion"]
    assert pool["config"]["workloadMetadataConfig"] == {"mode": "GKE_METADATA"}
    assert len(pool["instanceGroupUrls"]) == 3 and cluster["currentNodeCount"] == 3  # one per zone

    pools = clusters(gke).nodePools()
    name = f"{LOCATION}/clusters/std"
    with held(fake):
        op = pools.create(
            parent=name,
            body={"nodePool": {"name": "batch", "initialNodeCount": 2, "locations": [f"{REGION}-b"]}},
        ).execute()
        assert op["operationType"] == "CREATE_NODE_POOL" and op["targetLink"].endswith("/nodePools/batch")
        assert clusters(gke).get(name=name).execute()["status"] == "RECONCILING"
        assert pools.get(name=f"{name}/nodePools/batch").execute()["status"] == "PROVISIONING"
        code, status, message = error_of(pools.setSize(name=f"{name}/nodePools/apps", body={"nodeCount": 2}))
        assert (code, status) == (400, "FAILED_PRECONDITION") and "currently being" in message
    cluster = clusters(gke).get(name=name).execute()
    assert cluster["status"] == "RUNNING" and cluster["currentNodeCount"] == 3 + 2
    wait(gke, pools.setSize(name=f"{name}/nodePools/apps", body={"nodeCount": 2}).execute())
    assert clusters(gke).get(name=name).execute()["currentNodeCount"] == 6 + 2
    op = pools.setAutoscaling(
        name=f"{name}/nodePools/apps",
        body={"autoscaling": {"enabled": True, "minNodeCount": 2, "maxNodeCount": 5}},
    ).execute()
    wait(gke, op)
    assert pools.get(name=f"{name}/nodePools/apps").execute()["autoscaling"]["maxNodeCount"] == 5
    code, _, message = error_of(
        pools.setAutoscaling(
            name=f"{name}/nodePools/apps",
            body={"autoscaling": {"enabled": True, "minNodeCount": 4, "maxNodeCount": 2}},
        )
    )
    assert code == 400 and "max_node_count" in message
    code, _, message = error_of(
        pools.update(
            name=f"{name}/nodePools/batch", body={"nodeVersion": "-", "imageType": "-", "machineType": "z9"}
        )
    )
    assert code == 400 and 'Invalid machine type "z9"' in message
    code, _, message = error_of(
        pools.update(name=f"{name}/nodePools/batch", body={"machineType": "n2-standard-8"})
    )
    assert code == 400 and "node_version" in message  # required, as the discovery document says
    op = pools.update(
        name=f"{name}/nodePools/batch",
        body={"nodeVersion": "-", "imageType": "-", "machineType": "n2-standard-8"},
    ).execute()
    assert op["operationType"] == "UPGRADE_NODES"
    wait(gke, op)
    assert pools.get(name=f"{name}/nodePools/batch").execute()["config"]["machineType"] == "n2-standard-8"
    wait(gke, pools.delete(name=f"{name}/nodePools/batch").execute())
    assert [p["name"] for p in pools.list(parent=name).execute()["nodePools"]] == ["apps"]
    code, status, _ = error_of(pools.get(name=f"{name}/nodePools/batch"))
    assert (code, status) == (404, "NOT_FOUND")


def test_a_zonal_cluster_lives_in_its_zone(fake, gke):
    zone = f"projects/{PROJECT}/locations/{REGION}-b"
    cluster = create(gke, {"name": "zonal", "initialNodeCount": 2}, zone)
    assert cluster["location"] == f"{REGION}-b" and cluster["locations"] == [f"{REGION}-b"]
    assert cluster["currentNodeCount"] == 2 and cluster["nodePools"][0]["name"] == "default-pool"
    assert clusters(gke).list(parent=LOCATION).execute() == {}  # not in the region's list
    listed = gke.projects().locations().operations().list(parent=zone).execute()["operations"]
    assert [op["location"] for op in listed] == [f"{REGION}-b"]


def test_gke_metadata_needs_the_clusters_workload_identity(fake, gke):
    create(gke, {"name": "plain", "initialNodeCount": 1})
    code, status, message = error_of(
        clusters(gke)
        .nodePools()
        .create(
            parent=f"{LOCATION}/clusters/plain",
            body={
                "nodePool": {
                    "name": "wi",
                    "initialNodeCount": 1,
                    "config": {"workloadMetadataConfig": {"mode": "GKE_METADATA"}},
                }
            },
        )
    )
    assert (code, status) == (400, "INVALID_ARGUMENT") and "Workload Identity" in message
    op = (
        clusters(gke)
        .update(
            name=f"{LOCATION}/clusters/plain",
            body={"update": {"desiredWorkloadIdentityConfig": {"workloadPool": f"{PROJECT}.svc.id.goog"}}},
        )
        .execute()
    )
    assert op["operationType"] == "UPDATE_CLUSTER"
    wait(gke, op)
    cluster = clusters(gke).get(name=f"{LOCATION}/clusters/plain").execute()
    assert cluster["workloadIdentityConfig"]["workloadPool"] == f"{PROJECT}.svc.id.goog"


# -- what GKE refuses ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "fragment"),
    [
        ({"name": "Bad_Name"}, 'field "cluster.name"'),
        ({"name": "a" * 41}, "no longer than 40 characters"),
        ({"name": "ends-with-"}, "Must be a match of regex"),
        ({"colour": "blue"}, 'Unknown name "colour"'),
        ({"initialNodeCount": "three"}, "cluster.initial_node_count"),
        ({"workloadIdentityConfig": {"workloadPool": "other.svc.id.goog"}}, "Workload Identity pool"),
        (
            {"privateClusterConfig": {"enablePrivateNodes": True, "masterIpv4CidrBlock": "172.16.0.0/24"}},
            "/28",
        ),
        (
            {"privateClusterConfig": {"enablePrivateNodes": True, "masterIpv4CidrBlock": "8.8.8.0/28"}},
            "private",
        ),
        ({"privateClusterConfig": {"enablePrivateNodes": True}}, "master_ipv4_cidr_block is required"),
        (
            {
                "privateClusterConfig": {"enablePrivateNodes": True, "masterIpv4CidrBlock": "172.16.0.0/28"},
                "ipAllocationPolicy": {"useIpAliases": False},
            },
            "Alias IP",
        ),
        ({"network": "nope"}, 'Network "nope" does not exist'),
        ({"subnetwork": "nope"}, 'Subnetwork "nope" does not exist'),
        ({"initialNodeCount": 0}, "initial_node_count must be greater than zero"),
        ({"nodePools": [{"name": "p", "initialNodeCount": 1}]}, "initial_node_count must be unset"),
        ({"nodeConfig": {"machineType": "huge-machine"}}, 'Invalid machine type "huge-machine"'),
        ({"initialClusterVersion": "1.2"}, 'Master version "1.2" is unsupported'),
        ({"resourceLabels": {"Team": "x"}}, 'Invalid label "Team"'),
        ({"releaseChannel": {"channel": "NIGHTLY"}}, "cluster.release_channel.channel"),
        ({"privateClusterConfig": {"enablePrivateEndpoint": True}}, "need private nodes"),
        ({"masterAuthorizedNetworksConfig": {"cidrBlocks": [{"cidrBlock": "10.0.0.300/8"}]}}, "Invalid CIDR"),
        ({"locations": ["us-east1-b"]}, 'Zone "us-east1-b" is not in region us-central1'),
        ({"masterAuth": {"username": "admin", "password": "x"}}, "Basic authentication"),
    ],
)
def test_what_gke_refuses_is_a_400_in_googles_envelope(fake, gke, changes, fragment):
    cluster = {"name": "c", "initialNodeCount": 1, **changes}
    code, status, message = error_of(clusters(gke).create(parent=LOCATION, body={"cluster": cluster}))
    assert (code, status) == (400, "INVALID_ARGUMENT")
    assert fragment in message
    assert fake.resources("container") == [] and fake.operations == {}


def test_a_second_create_of_a_name_is_409_already_exists(fake, gke):
    create(gke, {"name": "twice", "initialNodeCount": 1})
    code, status, message = error_of(
        clusters(gke).create(parent=LOCATION, body={"cluster": {"name": "twice", "initialNodeCount": 1}})
    )
    assert (code, status) == (
        409,
        "ALREADY_EXISTS",
    ) and message == f"Already exists: {LOCATION}/clusters/twice."


def test_a_cluster_that_is_changing_refuses_other_changes(fake, gke):
    name = f"{LOCATION}/clusters/busy"
    with held(fake):
        clusters(gke).create(
            parent=LOCATION, body={"cluster": {"name": "busy", "initialNodeCount": 1}}
        ).execute()
        calls = [
            clusters(gke).update(name=name, body={"update": {"desiredLoggingService": "none"}}),
            clusters(gke).setResourceLabels(
                name=name,
                body={
                    "resourceLabels": {"a": "b"},
                    "labelFingerprint": fake.get_resource("container", name)["labelFingerprint"],
                },
            ),
            clusters(gke).delete(name=name),
            clusters(gke)
            .nodePools()
            .create(parent=name, body={"nodePool": {"name": "p", "initialNodeCount": 1}}),
        ]
        for call in calls:
            code, status, message = error_of(call)
            assert (code, status) == (400, "FAILED_PRECONDITION")
            assert (
                message
                == "Cluster is currently being created, deleted, updated or repaired and cannot be updated."
            )
    assert clusters(gke).get(name=name).execute()["status"] == "RUNNING"


def test_set_resource_labels_checks_the_fingerprint(fake, gke):
    name = f"{LOCATION}/clusters/labelled"
    cluster = create(gke, {"name": "labelled", "initialNodeCount": 1, "resourceLabels": {"team": "a"}})
    stale = cluster["labelFingerprint"]
    op = (
        clusters(gke)
        .setResourceLabels(name=name, body={"resourceLabels": {"team": "b"}, "labelFingerprint": stale})
        .execute()
    )
    assert op["operationType"] == "SET_LABELS"
    wait(gke, op)
    cluster = clusters(gke).get(name=name).execute()
    assert cluster["resourceLabels"] == {"team": "b"} and cluster["labelFingerprint"] != stale
    code, status, message = error_of(
        clusters(gke).setResourceLabels(
            name=name, body={"resourceLabels": {"team": "c"}, "labelFingerprint": stale}
        )
    )
    assert (code, status) == (400, "FAILED_PRECONDITION")
    assert message == (
        "Labels could not be set due to fingerprint mismatch; try again with the proper fingerprint: incorrect "
        f'fingerprint supplied was "{stale}", the expected one is "{cluster["labelFingerprint"]}".'
    )


def test_update_takes_exactly_one_desired_field(fake, gke):
    name = f"{LOCATION}/clusters/upd"
    create(gke, {"name": "upd", "initialNodeCount": 1, "releaseChannel": {"channel": "REGULAR"}})
    code, _, message = error_of(
        clusters(gke).update(
            name=name,
            body={"update": {"desiredLoggingService": "none", "desiredMonitoringService": "none"}},
        )
    )
    assert code == 400 and "Exactly one update" in message
    code, _, message = error_of(
        clusters(gke).update(
            name=name,
            body={
                "update": {
                    "desiredMasterAuthorizedNetworksConfig": {
                        "enabled": True,
                        "cidrBlocks": [{"cidrBlock": "x"}],
                    }
                }
            },
        )
    )
    assert code == 400 and 'Invalid CIDR block "x"' in message
    networks = {"enabled": True, "cidrBlocks": [{"displayName": "office", "cidrBlock": "203.0.113.0/24"}]}
    wait(
        gke,
        clusters(gke)
        .update(name=name, body={"update": {"desiredMasterAuthorizedNetworksConfig": networks}})
        .execute(),
    )
    wait(
        gke,
        clusters(gke)
        .update(name=name, body={"update": {"desiredReleaseChannel": {"channel": "RAPID"}}})
        .execute(),
    )
    op = clusters(gke).update(name=name, body={"update": {"desiredMasterVersion": "latest"}}).execute()
    assert op["operationType"] == "UPGRADE_MASTER"
    wait(gke, op)
    cluster = clusters(gke).get(name=name).execute()
    assert cluster["masterAuthorizedNetworksConfig"] == networks
    assert cluster["releaseChannel"] == {"channel": "RAPID"}
    assert cluster["currentMasterVersion"] == CHANNELS["RAPID"][0]
    code, status, _ = error_of(
        clusters(gke).update(name=name, body={"update": {"desiredDatapathProvider": "ADVANCED_DATAPATH"}})
    )
    assert (code, status) == (501, "UNIMPLEMENTED")


# -- delete, operations ----------------------------------------------------------------------------------


def test_delete_is_stopping_then_gone(fake, gke):
    name = f"{LOCATION}/clusters/gone"
    create(gke, {"name": "gone", "initialNodeCount": 1})
    with held(fake):
        op = clusters(gke).delete(name=name).execute()
        assert op["operationType"] == "DELETE_CLUSTER"
        assert clusters(gke).get(name=name).execute()["status"] == "STOPPING"
    wait(gke, op)
    code, status, message = error_of(clusters(gke).get(name=name))
    assert (code, status, message) == (404, "NOT_FOUND", f"Not found: {name}.")
    assert fake.calls.count("container", "clusters.delete") == 1
    assert fake.calls.count("container", "clusters.get") == 3  # RUNNING, STOPPING, gone


def test_operations_list_and_cancel_with_its_error(fake, gke):
    operations = gke.projects().locations().operations()
    with held(fake):
        op = clusters(gke).create(
            parent=LOCATION, body={"cluster": {"name": "cancelled", "initialNodeCount": 1}}
        )
        op = op.execute()
        operations.cancel(name=f"{LOCATION}/operations/{op['name']}", body={}).execute()
    done = operations.get(name=f"{LOCATION}/operations/{op['name']}").execute()
    assert done["status"] == "DONE" and done["error"]["code"] == 1  # CANCELLED
    cluster = clusters(gke).get(name=f"{LOCATION}/clusters/cancelled").execute()
    assert cluster["status"] == "ERROR"
    code, _, message = error_of(
        clusters(gke).update(
            name=f"{LOCATION}/clusters/cancelled", body={"update": {"desiredLoggingService": "none"}}
        )
    )
    assert code == 400 and "can only be deleted" in message
    code, status, _ = error_of(operations.cancel(name=f"{LOCATION}/operations/{op['name']}", body={}))
    assert (code, status) == (400, "FAILED_PRECONDITION")
    wait(gke, clusters(gke).delete(name=f"{LOCATION}/clusters/cancelled").execute())  # ERROR clusters can go
    listed = operations.list(parent=LOCATION).execute()["operations"]
    assert [o["operationType"] for o in listed] == ["CREATE_CLUSTER", "DELETE_CLUSTER"]
    code, status, _ = error_of(operations.get(name=f"{LOCATION}/operations/operation-1-nope"))
    assert (code, status) == (404, "NOT_FOUND")


def test_server_config_offers_versions_per_release_channel(fake, gke):
    config = gke.projects().locations().getServerConfig(name=LOCATION).execute()
    assert config["defaultClusterVersion"] == CHANNELS["REGULAR"][0]
    channels = {item["channel"]: item for item in config["channels"]}
    assert set(channels) == {"RAPID", "REGULAR", "STABLE", "EXTENDED"}
    assert all(
        v in config["validMasterVersions"] for item in channels.values() for v in item["validVersions"]
    )


def test_injected_errors_disabled_service_and_zonal_methods_the_fake_does_not_serve(fake, gke):
    fake.inject_error("container", "clusters.get", 503)
    code, status, _ = error_of(clusters(gke).get(name=f"{LOCATION}/clusters/any"))
    assert (code, status) == (503, "UNAVAILABLE")
    fake.require_enabled_services = True
    try:
        code, status, message = error_of(clusters(gke).list(parent=LOCATION))
        assert (code, status) == (403, "PERMISSION_DENIED") and "container.googleapis.com" in message
        fake.enable_services(PROJECT, "container.googleapis.com")
        assert clusters(gke).list(parent=LOCATION).execute() == {}
    finally:
        fake.require_enabled_services = False
    code, status, _ = error_of(gke.projects().zones().clusters().list(projectId=PROJECT, zone=f"{REGION}-a"))
    assert (code, status) == (501, "UNIMPLEMENTED")


def test_google_cloud_container_on_its_rest_transport(fake):
    """The client skyrig-gke would use: numeric enums in, GKE's Operation and Cluster messages out."""
    container_v1 = pytest.importorskip("google.cloud.container_v1")
    from google.api_core import exceptions

    client = container_v1.ClusterManagerClient(
        credentials=AnonymousCredentials(),
        transport="rest",
        client_options={"api_endpoint": fake.endpoint("container")},
    )
    cluster = container_v1.Cluster(
        name="rest",
        autopilot=container_v1.Autopilot(enabled=True),
        release_channel=container_v1.ReleaseChannel(channel=container_v1.ReleaseChannel.Channel.STABLE),
    )
    op = client.create_cluster(parent=LOCATION, cluster=cluster)
    assert op.operation_type == container_v1.Operation.Type.CREATE_CLUSTER
    fake.settle(everything=True)
    op = client.get_operation(name=f"{LOCATION}/operations/{op.name}")
    assert op.status == container_v1.Operation.Status.DONE
    running = client.get_cluster(name=f"{LOCATION}/clusters/rest")
    assert running.status == container_v1.Cluster.Status.RUNNING
    assert running.release_channel.channel == container_v1.ReleaseChannel.Channel.STABLE
    assert running.current_master_version == CHANNELS["STABLE"][0] and running.endpoint
    with pytest.raises(exceptions.Conflict):  # the REST transport maps by HTTP status: 409
        client.create_cluster(parent=LOCATION, cluster=cluster)
    with pytest.raises(exceptions.BadRequest):
        client.create_node_pool(
            parent=f"{LOCATION}/clusters/rest",
            node_pool=container_v1.NodePool(name="p", initial_node_count=1),
        )


def test_google_cloud_container_drives_a_standard_cluster_through_its_life(fake):
    """Enums sent as numbers (GKE_METADATA, the release channel) are read as GKE's names; every change is an
    operation the client polls; the cluster is gone after its delete."""
    container_v1 = pytest.importorskip("google.cloud.container_v1")
    from google.api_core import exceptions

    client = container_v1.ClusterManagerClient(
        credentials=AnonymousCredentials(),
        transport="rest",
        client_options={"api_endpoint": fake.endpoint("container")},
    )
    name = f"{LOCATION}/clusters/life"
    metadata = container_v1.WorkloadMetadataConfig(mode=container_v1.WorkloadMetadataConfig.Mode.GKE_METADATA)
    cluster = container_v1.Cluster(
        name="life",
        workload_identity_config=container_v1.WorkloadIdentityConfig(workload_pool=f"{PROJECT}.svc.id.goog"),
        node_pools=[
            container_v1.NodePool(
                name="apps",
                initial_node_count=1,
                config=container_v1.NodeConfig(
                    machine_type="e2-standard-2", workload_metadata_config=metadata
                ),
            )
        ],
    )

    def done(op: Any) -> None:
        fake.settle(everything=True)
        finished = client.get_operation(name=f"{LOCATION}/operations/{op.name}")
        assert finished.status == container_v1.Operation.Status.DONE and not finished.error.message

    done(client.create_cluster(parent=LOCATION, cluster=cluster))
    running = client.get_cluster(name=name)
    assert running.node_pools[0].config.workload_metadata_config.mode == metadata.mode
    assert running.release_channel.channel == container_v1.ReleaseChannel.Channel.REGULAR
    op = client.set_labels(
        request=container_v1.SetLabelsRequest(
            name=name, resource_labels={"team": "shop"}, label_fingerprint=running.label_fingerprint
        )
    )
    assert op.operation_type == container_v1.Operation.Type.SET_LABELS
    done(op)
    channels = container_v1.ReleaseChannel.Channel
    stable = container_v1.ClusterUpdate(
        desired_release_channel=container_v1.ReleaseChannel(channel=channels.STABLE)
    )
    with pytest.raises(exceptions.BadRequest, match="newer than the STABLE channel"):
        client.update_cluster(request=container_v1.UpdateClusterRequest(name=name, update=stable))
    rapid = container_v1.ClusterUpdate(
        desired_release_channel=container_v1.ReleaseChannel(channel=channels.RAPID)
    )
    done(client.update_cluster(request=container_v1.UpdateClusterRequest(name=name, update=rapid)))
    pool = f"{name}/nodePools/apps"
    done(client.set_node_pool_size(request=container_v1.SetNodePoolSizeRequest(name=pool, node_count=2)))
    changed = client.get_cluster(name=name)
    assert changed.resource_labels == {"team": "shop"} and changed.current_node_count == 6
    assert changed.release_channel.channel == channels.RAPID
    with pytest.raises(exceptions.BadRequest):
        client.set_labels(
            request=container_v1.SetLabelsRequest(
                name=name, resource_labels={}, label_fingerprint=running.label_fingerprint
            )
        )
    op = client.delete_cluster(name=name)
    assert op.operation_type == container_v1.Operation.Type.DELETE_CLUSTER
    done(op)
    with pytest.raises(exceptions.NotFound):
        client.get_cluster(name=name)
    assert fake.calls.count("container", "clusters.delete") == 1
