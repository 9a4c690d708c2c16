"""What only the GKE provider has, against the GCP provider's FAKE (Kubernetes Engine, IAM, Compute) and the
FAKE Kubernetes API server (not a real cluster: none can run here): the cluster GKE makes (Autopilot,
Standard with its node pool, or an existing one), each ServiceAccount acting as exactly the Google service
account that holds the model's grants, manifests valid for the two most recent Kubernetes versions, a
failing rollout reported with its reason while the previous version serves, drift adopted or restored, the
runtime config delivered, and the shop example applied and re-planned empty."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

from skyrig.cli.testing import invoke
from skyrig.provider import join_name
from skyrig_gke.compute import ACCOUNT_ANNOTATION, PRE_SHARED_CERT, STATIC_IP
from skyrig_kubernetes.manifests import recent_versions, validate
from skyrig_kubernetes.workloads import CONFIG_KEY, digest, namespace_name

SERVICES = {
    "alpha/__init__.py": """
        from skyrig import Service

        service = Service("alpha", app="alpha.web:app")
    """,
    "alpha/web.py": """
        async def app(scope, receive, send):
            pass
    """,
    "alpha/resources.py": """
        from skyrig import Secret

        api_key = Secret("api-key")
    """,
    "alpha/use.py": """
        from .resources import api_key


        def use() -> None:
            api_key.value
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

SHOP = Path(__file__).resolve().parents[3] / "examples" / "shop"
IMAGE = "us-central1-docker.pkg.dev/skyrig-conformance/app/app"


def deployment(app: Any, service: str) -> dict[str, Any]:
    found = app.kubernetes().get("apps/v1", "Deployment", namespace_name(app.name, "dev"), service)
    assert found is not None, f"no Deployment of {service}"
    return found


def container(found: dict[str, Any]) -> dict[str, Any]:
    return found["spec"]["template"]["spec"]["containers"][0]


def test_the_services_run_on_an_autopilot_cluster_in_the_gcp_network(gke_app: Any) -> None:
    gke_app.write(SERVICES)
    gke_app.apply()
    project = gke_app.gcp["project"]
    cluster = gke_app.container().get_cluster(
        name=f"projects/{project}/locations/us-central1/clusters/{join_name(gke_app.name, 'dev', limit=40)}"
    )
    assert cluster.autopilot.enabled
    assert cluster.private_cluster_config.enable_private_nodes
    assert cluster.ip_allocation_policy.use_ip_aliases, "VPC-native"
    assert cluster.workload_identity_config.workload_pool == f"{project}.svc.id.goog"
    assert cluster.network == cluster.subnetwork == join_name(gke_app.name, "dev")
    for service in ("alpha", "beta"):
        assert container(deployment(gke_app, service))["image"] == f"{IMAGE}:test"
    assert gke_app.plan() == [], "a plan right after the apply changes nothing"


def test_each_service_account_acts_as_exactly_its_google_account_with_the_model_grants(gke_app: Any) -> None:
    gke_app.write(SERVICES)
    gke_app.apply()
    project = gke_app.gcp["project"]
    space = namespace_name(gke_app.name, "dev")
    accounts = gke_app.google("iam").projects().serviceAccounts()
    listed = accounts.list(name=f"projects/{project}").execute()["accounts"]
    emails = {
        service: next(
            a["email"]
            for a in listed
            if a.get("description") == f"skyrig {gke_app.name}/dev iam.account/{service}"
        )
        for service in ("alpha", "beta")
    }
    for service, email in emails.items():
        found = gke_app.kubernetes().get("v1", "ServiceAccount", space, service)
        assert found["metadata"]["annotations"] == {ACCOUNT_ANNOTATION: email}
        policy = accounts.getIamPolicy(resource=f"projects/{project}/serviceAccounts/{email}").execute()
        assert policy["bindings"] == [
            {
                "role": "roles/iam.workloadIdentityUser",
                "members": [f"serviceAccount:{project}.svc.id.goog[{space}/{service}]"],
            }
        ], "only the service's own ServiceAccount may act as its account"
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import secretmanager_v1

    secrets = secretmanager_v1.SecretManagerServiceClient(
        credentials=AnonymousCredentials(),
        transport="rest",
        client_options={"api_endpoint": gke_app.gcp["endpoints"]["secretmanager"]},
    )
    secret = f"projects/{project}/secrets/{join_name(gke_app.name, 'dev', 'api-key', limit=255)}"
    policy = secrets.get_iam_policy(request={"resource": secret})
    assert {b.role: list(b.members) for b in policy.bindings} == {
        "roles/secretmanager.secretAccessor": [f"serviceAccount:{emails['alpha']}"]
    }, "only alpha, which reads the secret, may read it: beta's account may not"


def test_the_manifests_validate_strictly_for_the_two_most_recent_kubernetes_versions(gke_app: Any) -> None:
    import yaml

    gke_app.write(
        SERVICES, domain="shop.example.com", certificate="shop-wildcard", min_replicas=2, max_replicas=4
    )
    gke_app.apply()
    out = gke_app.root / "manifests.yaml"
    gke_app.cli("build", "k8s", "--env", "dev", "--out", str(out))
    objects = list(yaml.safe_load_all(out.read_text()))
    validate(objects, recent_versions())
    assert sorted({o["kind"] for o in objects}) == [
        "ConfigMap",
        "Deployment",
        "HorizontalPodAutoscaler",
        "Ingress",
        "Namespace",
        "PodDisruptionBudget",
        "Service",
        "ServiceAccount",
    ]
    space = namespace_name(gke_app.name, "dev")
    named = {(o["kind"], o["metadata"]["name"]): o for o in objects}
    applied = gke_app.kubernetes().get("v1", "ConfigMap", space, "alpha-runtime")
    assert named["ConfigMap", "alpha-runtime"]["data"] == applied["data"], "build k8s writes what was applied"
    account = gke_app.kubernetes().get("v1", "ServiceAccount", space, "alpha")["metadata"]["annotations"]
    assert named["ServiceAccount", "alpha"]["metadata"]["annotations"] == account
    ingress = named["Ingress", "alpha"]
    assert ingress["spec"]["ingressClassName"] == "gce"
    assert ingress["spec"]["rules"][0]["host"] == "alpha.shop.example.com"
    assert ingress["metadata"]["annotations"][PRE_SHARED_CERT] == "shop-wildcard"
    address = ingress["metadata"]["annotations"][STATIC_IP]
    compute = gke_app.google("compute")
    assert compute.globalAddresses().get(project=gke_app.gcp["project"], address=address).execute()["address"]


def test_a_failing_rollout_is_reported_with_its_reason_and_the_previous_version_keeps_serving(
    gke_app: Any,
) -> None:
    gke_app.write(SERVICES)
    gke_app.apply()
    result = invoke(
        ["apply", "--env", "dev", "--yes", "--image", f"{IMAGE}:pull-error", "-C", str(gke_app.root)]
    )
    assert result.code != 0
    assert "ImagePullBackOff" in result.text and f"{IMAGE}:pull-error" in result.text, result.text
    assert "previous version" in result.text, result.text
    space = namespace_name(gke_app.name, "dev")
    pods = gke_app.kubernetes().list("v1", "Pod", space, {"app.kubernetes.io/name": "alpha"})
    serving = [
        p
        for p in pods
        if p["spec"]["containers"][0]["image"] == f"{IMAGE}:test"
        and any(c["type"] == "Ready" and c["status"] == "True" for c in p["status"].get("conditions", []))
    ]
    assert serving, "no pod of the previous version is ready"


def test_sizes_changed_on_the_cluster_are_adopted_and_security_restored(gke_app: Any) -> None:
    from kubernetes import client as k8s

    gke_app.write(SERVICES, min_replicas=2, max_replicas=2)
    gke_app.apply()
    space = namespace_name(gke_app.name, "dev")
    apps = k8s.AppsV1Api(gke_app.kubernetes().api)
    patch = {
        "spec": {
            "replicas": 5,
            "template": {
                "spec": {
                    "containers": [
                        {
                            "name": "alpha",
                            "resources": {"requests": {"cpu": "500m"}},
                            "securityContext": {"allowPrivilegeEscalation": True},
                        }
                    ]
                }
            },
        }
    }
    apps.patch_namespaced_deployment("alpha", space, patch, field_manager="kubectl-edit")
    [change] = gke_app.plan()
    assert change["node"] == "compute.service/alpha" and change["action"] == "update", change
    gke_app.apply()
    found = deployment(gke_app, "alpha")
    assert found["spec"]["replicas"] == 5, "the replica count set on the cluster stays"
    assert container(found)["resources"]["requests"]["cpu"] == "500m", (
        "the CPU request set on the cluster stays"
    )
    assert container(found)["securityContext"]["allowPrivilegeEscalation"] is False, "security is restored"
    assert gke_app.plan() == []


def test_a_standard_cluster_has_an_autoscaled_node_pool_on_the_gke_metadata_server(gke_app: Any) -> None:
    gke_app.write(SERVICES, autopilot=False, min_nodes=1, max_nodes=4)
    assert "gke.node_pool" in gke_app.graph()
    gke_app.apply()
    cluster = gke_app.container().get_cluster(
        name=f"projects/{gke_app.gcp['project']}/locations/us-central1/clusters/{join_name(gke_app.name, 'dev', limit=40)}"
    )
    assert not cluster.autopilot.enabled
    [pool] = cluster.node_pools
    assert pool.config.workload_metadata_config.mode.name == "GKE_METADATA"
    assert (pool.autoscaling.min_node_count, pool.autoscaling.max_node_count) == (1, 4)
    assert gke_app.plan() == []


def test_an_existing_cluster_is_used_and_no_cluster_is_made(gke_app: Any) -> None:
    gke_app.write(SERVICES, cluster="shared")
    nodes = gke_app.graph()
    assert not [n for n in nodes.values() if n["type"] in ("gke.cluster", "gke.node_pool")]
    gke_app.apply()
    assert gke_app.plan() == []


def test_the_runtime_config_is_delivered_to_the_pods_after_the_apply(gke_app: Any) -> None:
    import json

    gke_app.write(SERVICES)
    gke_app.apply()
    space = namespace_name(gke_app.name, "dev")
    held = gke_app.kubernetes().get("v1", "ConfigMap", space, "alpha-runtime")
    config = json.loads(held["data"][CONFIG_KEY])
    assert "secret/api-key" in json.dumps(config), config
    annotations = deployment(gke_app, "alpha")["spec"]["template"]["metadata"]["annotations"]
    assert annotations["skyrig.dev/config-checksum"] == digest(held["data"])
    assert gke_app.plan() == []


@pytest.fixture
def shop(gke_app: Any) -> Any:
    """The shop example's code in an app folder (its own ``skyrig.toml`` replaced)."""
    for entry in SHOP.iterdir():
        if entry.is_dir() and entry.name not in (".skyrig", "__pycache__"):
            shutil.copytree(entry, gke_app.root / entry.name, ignore=shutil.ignore_patterns("__pycache__"))
    gke_app.write({}, cron="gcp", gcp={"domain": "shop.example.com"})
    return gke_app


def test_the_shop_applies_on_gke_and_replans_empty(shop: Any) -> None:
    nodes = shop.graph()
    assert nodes["cron.job/expire-carts"]["provider"] == "gcp", "every kind but service stays with gcp"
    assert nodes["cron.job/expire-carts"]["properties"]["url"] == "http://orders.shop.example.com"
    assert nodes["compute.service/orders"]["properties"]["host"] == "orders.shop.example.com", (
        "GKE routes the gcp provider's domain"
    )
    migration = nodes["compute.migration/orders"]
    assert migration["provider"] == "gcp" and migration["properties"]["image"] == f"{IMAGE}:test", (
        "gcp keeps the migration job in the image GKE runs"
    )
    assert "compute.migration/orders" in nodes["compute.service/orders"]["depends_on"], "migrated first"
    shop.apply()
    assert shop.plan() == [], "a plan right after the apply changes nothing"
    for service in ("orders", "payments", "notifications"):
        assert deployment(shop, service)
    [job] = shop.kubernetes().list("batch/v1", "Job", namespace_name(shop.name, "dev"))
    assert job["metadata"]["annotations"]["skyrig.dev/database"] == "orders"
    assert job["status"].get("succeeded") == 1, "the migrations ran to completion in the cluster"
    assert job["spec"]["template"]["spec"]["containers"][0]["command"] == [
        "python",
        "-m",
        "skyrig_gcp.runtime.migrate",
    ]
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import run_v2

    jobs = run_v2.JobsClient(
        credentials=AnonymousCredentials(),
        transport="rest",
        client_options={"api_endpoint": shop.gcp["endpoints"]["run"]},
    )
    name = f"projects/{shop.gcp['project']}/locations/us-central1/jobs/{join_name(shop.name, 'dev', 'migrate', 'orders', limit=63)}"
    assert not jobs.get_job(name=name).latest_created_execution.name, "gcp keeps the job and does not run it"


def test_gke_is_refused_where_no_family_is_on_gcp(gke_app: Any) -> None:
    gke_app.write(SERVICES)
    text = (gke_app.root / "skyrig.toml").read_text()
    (gke_app.root / "skyrig.toml").write_text(text.replace('provider = "gcp"', 'provider = "memory"', 1))
    refused = invoke(["check", "-C", str(gke_app.root)])
    assert refused.code != 0
    assert "gke runs the services in the gcp provider's project" in refused.text, refused.text


def test_a_production_service_runs_two_pods_at_least(gke_app: Any) -> None:
    gke_app.write(SERVICES)
    text = (gke_app.root / "skyrig.toml").read_text()
    (gke_app.root / "skyrig.toml").write_text(text.replace('type = "development"', 'type = "production"', 1))
    properties = gke_app.graph()["compute.service/alpha"]["properties"]
    assert (properties["min_replicas"], properties["max_replicas"]) == (2, 3)


def test_a_workload_identity_binding_removed_in_the_console_is_made_again(gke_app: Any) -> None:
    gke_app.write(SERVICES)
    gke_app.apply()
    project = gke_app.gcp["project"]
    accounts = gke_app.google("iam").projects().serviceAccounts()
    listed = accounts.list(name=f"projects/{project}").execute()["accounts"]
    email = next(
        a["email"] for a in listed if a.get("description") == f"skyrig {gke_app.name}/dev iam.account/alpha"
    )
    resource = f"projects/{project}/serviceAccounts/{email}"
    policy = accounts.getIamPolicy(resource=resource).execute()
    accounts.setIamPolicy(resource=resource, body={"policy": {**policy, "bindings": []}}).execute()
    [change] = gke_app.plan()
    assert change["node"] == "gke.workload_identity/alpha", change
    gke_app.apply()
    members = [
        m for b in accounts.getIamPolicy(resource=resource).execute()["bindings"] for m in b["members"]
    ]
    assert members == [f"serviceAccount:{project}.svc.id.goog[{namespace_name(gke_app.name, 'dev')}/alpha]"]
    assert gke_app.plan() == []


def test_failed_migrations_leave_their_service_as_it_was(shop: Any) -> None:
    shop.apply()
    result = invoke(
        ["apply", "--env", "dev", "--yes", "--image", f"{IMAGE}:crash-loop", "-C", str(shop.root)]
    )
    assert result.code != 0
    assert "service orders was not changed" in result.text and "database orders" in result.text, result.text
    assert container(deployment(shop, "orders"))["image"] == f"{IMAGE}:test", "orders still runs what it ran"
