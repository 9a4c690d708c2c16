"""What only EKS has, read back from moto's server (EKS, IAM, EC2) and from the FAKE Kubernetes API server
of skyrig_kubernetes.fake (neither is AWS or Kubernetes; moto's clusters have no API server, so the
``kubernetes_endpoint`` setting points the provider at the FAKE): each ServiceAccount's IRSA role grants
exactly what the model says, the manifests pass the strict schemas of the two most recent Kubernetes
minor versions, a failing rollout is reported with its reason while the previous version keeps serving,
Fargate, an existing cluster, drift, and the shop example with compute = "eks".

Every other kind of the shop is the aws provider's: its database's migrations run as a Job before orders
rolls out, and its cron schedules run trigger tasks in an ECS cluster of the aws provider's own.
"""

from __future__ import annotations

import base64
import json
import shutil
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
import yaml

from skyrig.cli.testing import run_cli
from skyrig_conformance.profile import environment
from skyrig_eks.conformance import CREDENTIALS, aws_settings, moto_server
from skyrig_eks.settings import TOKEN_VARIABLE

SHOP = Path(__file__).resolve().parents[3] / "examples" / "shop"
NAMESPACE = "shop-dev"
SERVICES = ("notifications", "orders", "payments")


@pytest.fixture(scope="session")
def backends() -> Iterator[tuple[str, Any]]:
    """moto's server and the FAKE Kubernetes API server for this test process."""
    from skyrig_kubernetes.fake import FakeKubernetes

    with (
        moto_server() as moto,
        FakeKubernetes(rollout_seconds=0.2) as kubernetes,
        environment({**CREDENTIALS, TOKEN_VARIABLE: kubernetes.token}),
    ):
        yield moto, kubernetes


@pytest.fixture
def moto(backends: tuple[str, Any]) -> str:
    """moto's server, wiped before the test."""
    request = urllib.request.Request(f"{backends[0]}/moto-api/reset", method="POST")
    urllib.request.urlopen(request, timeout=10).read()
    return backends[0]


@pytest.fixture
def kube(backends: tuple[str, Any]) -> Any:
    """The FAKE Kubernetes API server, emptied before the test."""
    backends[1].reset()
    return backends[1]


def aws(moto: str, service: str) -> Any:
    return boto3.client(service, endpoint_url=moto, region_name="us-east-1")


class Shop:
    """The shop example on aws with compute = "eks", in environment ``dev``."""

    def __init__(self, root: Path, moto: str, kube: Any, capsys: pytest.CaptureFixture[str]) -> None:
        self.root = root
        self.moto = moto
        self.kube = kube
        self.capsys = capsys
        shutil.copytree(SHOP, root, ignore=shutil.ignore_patterns(".skyrig", "__pycache__"))
        self.configure()

    def configure(self, **eks: Any) -> None:
        settings = {
            "kubernetes_endpoint": self.kube.url,
            "image": "skyrig/app:1",
            "wait_delay": 0.01,
            "wait_timeout": 30,
            "rollout_timeout": 20,
            **eks,
        }
        lines = ['app = "shop"', "[env.dev]", 'type = "development"', 'provider = "aws"', 'compute = "eks"']
        lines += ["[env.dev.aws]"]
        lines += [f"{key} = {json.dumps(value)}" for key, value in aws_settings(self.moto).items()]
        lines += ["[env.dev.eks]", *(f"{key} = {json.dumps(value)}" for key, value in settings.items())]
        (self.root / "skyrig.toml").write_text("\n".join(lines) + "\n")

    def run(self, *args: str) -> Any:
        return run_cli([*args, "-C", str(self.root)], self.capsys)

    def ok(self, *args: str) -> Any:
        result = self.run(*args)
        assert result.code == 0, result.err
        return result

    def apply(self, *args: str) -> Any:
        return self.ok("apply", "--env", "dev", "--yes", *args)

    def changes(self) -> list[dict[str, Any]]:
        plan = json.loads(self.ok("plan", "--env", "dev", "--json").out)
        return [c for c in plan["changes"] if c["action"] not in ("noop", "retain")]


@pytest.fixture
def shop(tmp_path: Path, moto: str, kube: Any, capsys: pytest.CaptureFixture[str], monkeypatch) -> Shop:
    monkeypatch.setenv("SKYRIG_RETRY_BASE_MS", "1")
    return Shop(tmp_path / "shop", moto, kube, capsys)


def _statements(document: Any) -> dict[str, tuple[list[str], list[str]]]:
    policy = document if isinstance(document, dict) else json.loads(urllib.parse.unquote(document))
    return {s["Sid"]: (s["Action"], s["Resource"]) for s in policy["Statement"] if s["Effect"] == "Allow"}


def test_the_shop_applies_with_compute_eks_and_replans_empty(shop: Shop) -> None:
    shop.apply()
    assert shop.changes() == []
    for service in SERVICES:
        deployment = shop.kube.get("apps/v1", "Deployment", NAMESPACE, service)
        assert deployment["spec"]["template"]["spec"]["containers"][0]["image"] == "skyrig/app:1"
        assert deployment["status"].get("availableReplicas", 0) >= 1
    # each pod reads its runtime config from its ConfigMap, delivered after the apply
    config = shop.kube.get("v1", "ConfigMap", NAMESPACE, "orders-runtime")["data"]["runtime-config.json"]
    assert json.loads(config)["service"] == "orders"
    assert json.loads(config)["resources"]["topic/order-created"]["provider"] == "aws"
    # the orders database's migrations ran before orders rolled out: aws's migration command, as a Job
    [job] = _jobs(shop.kube, "orders-migrate")
    assert job["status"]["succeeded"] == 1
    container = job["spec"]["template"]["spec"]["containers"][0]
    assert container["command"] == ["python", "-m", "skyrig_aws.runtime.migrate"]
    environment = {e["name"]: e.get("value") for e in container["env"]}
    assert environment["SKYRIG_DATABASE"] == "orders"
    assert json.loads(environment["SKYRIG_MIGRATIONS"])[0][1] == "create_orders"
    assert job["spec"]["template"]["spec"]["serviceAccountName"] == "orders"
    # aws's schedules run a trigger task in an ECS cluster of cron's own, in the services' image, calling
    # the service at its URL
    scheduler, ecs = aws(shop.moto, "scheduler"), aws(shop.moto, "ecs")
    schedule = scheduler.get_schedule(Name="shop-dev-expire-carts", GroupName="shop-dev")
    target = schedule["Target"]
    assert target["Arn"].endswith(":cluster/shop-dev")
    command = json.loads(target["Input"])["containerOverrides"][0]["command"]
    assert command == [
        "python",
        "-m",
        "skyrig_aws.runtime.cron",
        "expire-carts",
        "http://orders.shop-dev.internal",
    ]
    family = target["EcsParameters"]["TaskDefinitionArn"].rpartition("/")[2]
    task = ecs.describe_task_definition(taskDefinition=family)["taskDefinition"]
    assert task["containerDefinitions"][0]["image"] == "skyrig/app:1"
    assert task["containerDefinitions"][0]["name"] == "orders"
    assert shop.changes() == []
    shop.ok("destroy", "--env", "dev", "--yes", "--include-data")
    assert aws(shop.moto, "eks").list_clusters()["clusters"] == []
    assert aws(shop.moto, "ec2").describe_launch_templates()["LaunchTemplates"] == []
    assert shop.kube.get("v1", "Namespace", None, NAMESPACE) is None


def test_each_service_account_assumes_a_role_with_exactly_its_grants(shop: Shop) -> None:
    shop.apply()
    iam = aws(shop.moto, "iam")
    [oidc] = iam.list_open_id_connect_providers()["OpenIDConnectProviderList"]
    issuer = oidc["Arn"].partition(":oidc-provider/")[2]
    grants = {}
    for service in SERVICES:
        account = shop.kube.get("v1", "ServiceAccount", NAMESPACE, service)
        arn = account["metadata"]["annotations"]["eks.amazonaws.com/role-arn"]
        role = iam.get_role(RoleName=arn.rpartition("/")[2])["Role"]
        assert role["Arn"] == arn
        [trust] = role["AssumeRolePolicyDocument"]["Statement"]
        # only this service's ServiceAccount, through the cluster's OIDC provider, may assume it
        assert trust["Principal"] == {"Federated": oidc["Arn"]}
        assert trust["Action"] == "sts:AssumeRoleWithWebIdentity"
        assert trust["Condition"]["StringEquals"] == {
            f"{issuer}:sub": f"system:serviceaccount:{NAMESPACE}:{service}",
            f"{issuer}:aud": "sts.amazonaws.com",
        }
        [attached] = iam.list_attached_role_policies(RoleName=role["RoleName"])["AttachedPolicies"]
        assert attached["PolicyName"] == f"shop-dev-{service}-identity"
        policy = iam.get_policy(PolicyArn=attached["PolicyArn"])["Policy"]
        version = iam.get_policy_version(PolicyArn=policy["Arn"], VersionId=policy["DefaultVersionId"])
        grants[service] = _statements(version["PolicyVersion"]["Document"])
    topic = "arn:aws:sns:us-east-1:123456789012:shop-dev-order-created.fifo"
    assert grants["orders"]["TopicOrderCreated"] == (["sns:Publish"], [topic])
    assert not any(topic in r for s in ("notifications", "payments") for _, r in grants[s].values())
    receipts = "arn:aws:s3:::shop-dev-receipts/*"
    assert any(receipts in r for _, r in grants["notifications"].values())
    assert not any(receipts in r for s in ("orders", "payments") for _, r in grants[s].values())
    stripe = "arn:aws:secretsmanager:us-east-1:123456789012:secret:skyrig/shop/dev/stripe-api-key-??????"
    assert any(stripe in r for _, r in grants["payments"].values())
    assert not any(stripe in r for s in ("orders", "notifications") for _, r in grants[s].values())
    for statements in grants.values():
        for actions, resources in statements.values():
            assert "*" not in resources and not any(a == "*" or a.endswith(":*") for a in actions)


def test_the_manifests_pass_the_strict_schemas_of_the_two_latest_kubernetes_versions(
    shop: Shop, tmp_path: Path
) -> None:
    from skyrig_kubernetes.manifests import recent_versions, validate

    shop.configure(certificate_arn="arn:aws:acm:us-east-1:123456789012:certificate/abc")
    shop.apply()
    out = tmp_path / "shop.yaml"
    shop.ok("build", "k8s", "--env", "dev", "--out", str(out))
    objects = list(yaml.safe_load_all(out.read_text()))
    versions = recent_versions(2)
    assert len(versions) == 2
    validate(objects, versions)
    kinds = sorted({o["kind"] for o in objects})
    assert kinds == [
        "ConfigMap",
        "Deployment",
        "HorizontalPodAutoscaler",
        "Ingress",
        "Namespace",
        "PodDisruptionBudget",
        "Service",
        "ServiceAccount",
    ]
    [ingress] = [o for o in objects if o["kind"] == "Ingress" and o["metadata"]["name"] == "orders"]
    assert ingress["spec"]["ingressClassName"] == "alb"
    annotations = ingress["metadata"]["annotations"]
    assert annotations["alb.ingress.kubernetes.io/scheme"] == "internet-facing"
    assert annotations["alb.ingress.kubernetes.io/target-type"] == "ip"
    assert annotations["alb.ingress.kubernetes.io/certificate-arn"].endswith("certificate/abc")
    assert annotations["alb.ingress.kubernetes.io/ssl-redirect"] == "443"
    assert ingress["spec"]["rules"][0]["host"] == "orders.shop-dev.internal"
    # what build k8s writes is what the apply applied
    [config] = [o for o in objects if o["kind"] == "ConfigMap" and o["metadata"]["name"] == "orders-runtime"]
    applied = shop.kube.get("v1", "ConfigMap", NAMESPACE, "orders-runtime")
    assert config["data"] == applied["data"]
    # a file that cannot be written is said plainly, without a traceback
    refused = shop.run("build", "k8s", "--env", "dev", "--out", str(tmp_path / "missing" / "shop.yaml"))
    assert refused.code == 1 and "--out: cannot write" in refused.err and "Traceback" not in refused.err


def test_build_k8s_refuses_an_environment_whose_services_are_not_on_kubernetes(shop: Shop) -> None:
    text = (shop.root / "skyrig.toml").read_text().replace('compute = "eks"\n', "")
    (shop.root / "skyrig.toml").write_text(text.split("[env.dev.eks]")[0])
    refused = shop.run("build", "k8s", "--env", "dev")
    assert refused.code == 1
    assert "does not run them on Kubernetes" in refused.err and 'compute = "eks"' in refused.err


def test_a_failing_rollout_is_reported_with_its_reason_and_the_previous_version_keeps_serving(
    shop: Shop,
) -> None:
    shop.apply()
    failed = shop.run("apply", "--env", "dev", "--yes", "--image", "skyrig/app:pull-error")
    assert failed.code == 1
    message = " ".join(failed.err.split())
    assert "did not roll out" in message and "pull" in message.lower(), message
    assert "the previous version keeps serving" in message
    # orders' database migrations run first, in the new image, which cannot be pulled: orders is not changed
    assert "service orders was not changed" in message
    for service in SERVICES:
        deployment = shop.kube.get("apps/v1", "Deployment", NAMESPACE, service)
        wanted = "skyrig/app:1" if service == "orders" else "skyrig/app:pull-error"
        assert deployment["spec"]["template"]["spec"]["containers"][0]["image"] == wanted
        # the old pods still serve: the rolling update never took one away
        assert deployment["status"].get("availableReplicas", 0) >= 1
        pods = [
            pod
            for pod in _pods(shop.kube, service)
            if pod["spec"]["containers"][0]["image"] == "skyrig/app:1"
        ]
        assert pods and all(_ready(pod) for pod in pods)
    # fixed, the next apply rolls out
    shop.apply("--image", "skyrig/app:2")
    assert shop.kube.get("apps/v1", "Deployment", NAMESPACE, "orders")["status"]["updatedReplicas"] >= 1


def _jobs(kube: Any, prefix: str) -> list[dict[str, Any]]:
    from kubernetes import client

    batch = client.BatchV1Api(kube.api_client())
    found = [
        batch.api_client.sanitize_for_serialization(job) for job in batch.list_namespaced_job(NAMESPACE).items
    ]
    return [job for job in found if job["metadata"]["name"].startswith(prefix)]


def _pods(kube: Any, service: str) -> list[dict[str, Any]]:
    from kubernetes import client

    core = client.CoreV1Api(kube.api_client())
    found = core.list_namespaced_pod(NAMESPACE, label_selector=f"app.kubernetes.io/name={service}")
    return [core.api_client.sanitize_for_serialization(pod) for pod in found.items]


def _ready(pod: dict[str, Any]) -> bool:
    return any(c["type"] == "Ready" and c["status"] == "True" for c in pod["status"].get("conditions") or [])


def test_fargate_runs_the_pods_of_the_namespace_without_a_node_group(shop: Shop) -> None:
    shop.configure(fargate=True)
    shop.apply()
    eks, iam = aws(shop.moto, "eks"), aws(shop.moto, "iam")
    [cluster] = eks.list_clusters()["clusters"]
    assert eks.list_nodegroups(clusterName=cluster)["nodegroups"] == []
    [name] = eks.list_fargate_profiles(clusterName=cluster)["fargateProfileNames"]
    profile = eks.describe_fargate_profile(clusterName=cluster, fargateProfileName=name)["fargateProfile"]
    assert profile["selectors"] == [{"namespace": NAMESPACE}]
    role = profile["podExecutionRoleArn"].rpartition("/")[2]
    attached = iam.list_attached_role_policies(RoleName=role)["AttachedPolicies"]
    assert [p["PolicyName"] for p in attached] == ["AmazonEKSFargatePodExecutionRolePolicy"]
    assert shop.changes() == []


def test_the_cluster_and_nodes_are_in_the_private_subnets_with_the_app_security_group(
    shop: Shop,
) -> None:
    shop.apply()
    eks, ec2, iam = aws(shop.moto, "eks"), aws(shop.moto, "ec2"), aws(shop.moto, "iam")
    [name] = eks.list_clusters()["clusters"]
    cluster = eks.describe_cluster(name=name)["cluster"]

    def tagged(kind: str, node: str) -> str:
        filters = [
            {"Name": "tag:skyrig:node", "Values": [node]},
            {"Name": "tag:skyrig:env", "Values": ["dev"]},
        ]
        if kind == "subnet":
            return ec2.describe_subnets(Filters=filters)["Subnets"][0]["SubnetId"]
        return ec2.describe_security_groups(Filters=filters)["SecurityGroups"][0]["GroupId"]

    private = sorted(tagged("subnet", f"network.subnet/private-{zone}") for zone in "ab")
    assert sorted(cluster["resourcesVpcConfig"]["subnetIds"]) == private
    assert cluster["resourcesVpcConfig"]["securityGroupIds"] == [tagged("sg", "network.sg/app")]
    cluster_role = cluster["roleArn"].rpartition("/")[2]
    assert [
        p["PolicyName"] for p in iam.list_attached_role_policies(RoleName=cluster_role)["AttachedPolicies"]
    ] == ["AmazonEKSClusterPolicy"]
    [group] = eks.list_nodegroups(clusterName=name)["nodegroups"]
    nodes = eks.describe_nodegroup(clusterName=name, nodegroupName=group)["nodegroup"]
    assert sorted(nodes["subnets"]) == private
    # the nodes, and so the pods, are in the security group the databases and caches admit
    [version] = ec2.describe_launch_template_versions(LaunchTemplateId=nodes["launchTemplate"]["id"])[
        "LaunchTemplateVersions"
    ]
    assert version["LaunchTemplateData"]["SecurityGroupIds"] == [tagged("sg", "network.sg/app")]
    node_role = nodes["nodeRole"].rpartition("/")[2]
    assert sorted(
        p["PolicyName"] for p in iam.list_attached_role_policies(RoleName=node_role)["AttachedPolicies"]
    ) == [
        "AmazonEC2ContainerRegistryReadOnly",
        "AmazonEKSWorkerNodePolicy",
        "AmazonEKS_CNI_Policy",
    ]


def test_an_existing_cluster_is_used_and_nothing_of_its_control_plane_is_made_or_deleted(shop: Shop) -> None:
    eks, iam = aws(shop.moto, "eks"), aws(shop.moto, "iam")
    cluster = eks.create_cluster(
        name="platform",
        roleArn="arn:aws:iam::123456789012:role/platform",
        resourcesVpcConfig={"subnetIds": ["subnet-12345678"]},
    )["cluster"]
    issuer = cluster["identity"]["oidc"]["issuer"] + "/platform"  # as the provider sees it under moto
    iam.create_open_id_connect_provider(
        Url=issuer, ClientIDList=["sts.amazonaws.com"], ThumbprintList=["a" * 40]
    )
    shop.configure(cluster="platform")
    shop.apply()
    assert eks.list_clusters()["clusters"] == ["platform"]
    assert eks.list_nodegroups(clusterName="platform")["nodegroups"] == []
    assert len(iam.list_open_id_connect_providers()["OpenIDConnectProviderList"]) == 1
    assert shop.kube.get("apps/v1", "Deployment", NAMESPACE, "orders") is not None
    assert shop.changes() == []
    shop.ok("destroy", "--env", "dev", "--yes", "--include-data")
    assert eks.list_clusters()["clusters"] == ["platform"]
    assert len(iam.list_open_id_connect_providers()["OpenIDConnectProviderList"]) == 1
    assert shop.kube.get("v1", "Namespace", None, NAMESPACE) is None


def _edit_container(kube: Any, service: str, change: Any) -> None:
    """Change the live Deployment's container on the cluster, as ``kubectl edit`` would."""
    live = kube.get("apps/v1", "Deployment", NAMESPACE, service)
    containers = live["spec"]["template"]["spec"]["containers"]
    change(containers[0])
    kube.edit(
        "apps/v1",
        "Deployment",
        NAMESPACE,
        service,
        {"spec": {"template": {"spec": {"containers": containers}}}},
    )


def test_sizes_changed_on_the_cluster_are_adopted_and_security_settings_restored(shop: Shop) -> None:
    shop.apply()
    _edit_container(shop.kube, "orders", lambda c: c["resources"]["requests"].update(cpu="500m"))
    assert shop.changes() == []  # adopted, not reverted
    _edit_container(
        shop.kube,
        "orders",
        lambda c: c["securityContext"].update(allowPrivilegeEscalation=True, readOnlyRootFilesystem=False),
    )
    [change] = shop.changes()
    assert change["node"] == "eks.service/orders" and change["drift"] == ["security"]
    shop.apply()
    live = shop.kube.get("apps/v1", "Deployment", NAMESPACE, "orders")["spec"]["template"]["spec"][
        "containers"
    ][0]
    assert live["securityContext"]["allowPrivilegeEscalation"] is False
    assert live["securityContext"]["readOnlyRootFilesystem"] is True
    assert live["resources"]["requests"]["cpu"] == "500m"  # the adopted size stays
    assert shop.changes() == []


def test_the_kubernetes_token_is_a_presigned_sts_call_bound_to_the_cluster() -> None:
    import boto3.session

    from skyrig_eks.api import eks_token

    with environment(CREDENTIALS):
        token = eks_token(boto3.session.Session(region_name="eu-west-1"), "eu-west-1", "shop-prod")
    assert token.startswith("k8s-aws-v1.")
    encoded = token.removeprefix("k8s-aws-v1.")
    url = base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)).decode()
    parts = urllib.parse.urlsplit(url)
    query = urllib.parse.parse_qs(parts.query)
    assert parts.hostname == "sts.eu-west-1.amazonaws.com"
    assert query["Action"] == ["GetCallerIdentity"]
    assert "x-k8s-aws-id" in query["X-Amz-SignedHeaders"][0].split(";")
    assert query["X-Amz-Expires"] == ["60"]


def test_eks_without_the_aws_provider_beside_it_is_refused(tmp_path: Path, capsys) -> None:
    root = tmp_path / "shop"
    shutil.copytree(SHOP, root, ignore=shutil.ignore_patterns(".skyrig", "__pycache__"))
    config = ['app = "shop"', "[env.dev]", 'type = "development"', 'provider = "memory"', 'compute = "eks"']
    (root / "skyrig.toml").write_text("\n".join(config) + "\n")
    checked = run_cli(["check", "-C", str(root)], capsys)
    assert checked.code == 1
    message = " ".join(checked.err.split())
    assert "env.dev.compute" in message and 'set provider = "aws"' in message


def test_a_changed_runtime_config_is_delivered_and_rolls_the_pods_and_the_next_apply_keeps_it(
    shop: Shop,
) -> None:
    from skyrig.config import load_config
    from skyrig.engine.session import Session
    from skyrig.plugins.registry import load_provider

    shop.apply()
    before = shop.kube.get("apps/v1", "Deployment", NAMESPACE, "orders")["spec"]["template"]["metadata"]
    config = json.loads(
        shop.kube.get("v1", "ConfigMap", NAMESPACE, "orders-runtime")["data"]["runtime-config.json"]
    )
    changed = {**config, "resources": {**config["resources"], "bucket/extra": {"provider": "aws"}}}
    session = Session(load_config(shop.root), "dev")
    try:
        load_provider("eks").deliver_runtime(session.context("eks"), {"orders": changed})
    finally:
        session.store.close()
    delivered = shop.kube.get("v1", "ConfigMap", NAMESPACE, "orders-runtime")["data"]["runtime-config.json"]
    assert json.loads(delivered) == changed
    after = shop.kube.get("apps/v1", "Deployment", NAMESPACE, "orders")["spec"]["template"]["metadata"]
    checksum = "skyrig.dev/config-checksum"
    assert after["annotations"][checksum] != before["annotations"][checksum]  # the pods roll to read it
    # the service's node deploys with the delivered config: nothing to change, nothing rolled back
    assert shop.changes() == []
    current = shop.kube.get("apps/v1", "Deployment", NAMESPACE, "orders")["spec"]["template"]["metadata"]
    assert current["annotations"][checksum] == after["annotations"][checksum]


def test_aws_errors_become_skyrig_errors_an_unreadable_answer_retried() -> None:
    from botocore.exceptions import ClientError
    from botocore.parsers import ResponseParserError

    from skyrig.provider import NotFound, ProviderError, ThrottledError, TransientError
    from skyrig_eks.api import translate

    def client_error(code: str, status: int = 400) -> ClientError:
        answer = {"Error": {"Code": code, "Message": "m"}, "ResponseMetadata": {"HTTPStatusCode": status}}
        return ClientError(answer, "GetRole")  # type: ignore[arg-type]

    assert isinstance(translate(client_error("NoSuchEntity", 404), "iam", "GetRole"), NotFound)
    assert isinstance(
        translate(client_error("ThrottlingException"), "eks", "DescribeCluster"), ThrottledError
    )
    assert isinstance(translate(client_error("InternalFailure", 500), "eks", "CreateCluster"), TransientError)
    refused = translate(client_error("AccessDenied", 403), "iam", "CreateRole")
    assert isinstance(refused, ProviderError) and not isinstance(refused, TransientError)
    # an emulator's or proxy's error page instead of AWS's answer: worth retrying
    assert isinstance(translate(ResponseParserError("not XML"), "iam", "GetRole"), TransientError)
