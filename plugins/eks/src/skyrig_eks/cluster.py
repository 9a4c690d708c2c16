"""The control plane: the EKS cluster in the aws provider's VPC (its private subnets, the app security
group, which the services' databases and caches admit), a managed node group in the private subnets whose
launch template puts its nodes in the app security group too, or a Fargate profile for the environment's
namespace, the cluster's IAM OIDC provider (for IRSA), and the environment's namespace on the cluster.

The network is the aws provider's: these nodes depend on its node ids (``network.subnet/private-a``,
``network.sg/app``, ...) and find the EC2 ids by the ownership tags it puts on them (``skyrig:app``,
``skyrig:env``, ``skyrig:node``), as docs/providers/aws.md promises a compute provider. With the
``cluster`` setting, the services run on an existing cluster and none of this but the namespace exists.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from typing import Any

from skyrig.provider import CloudNodeType, Context, Node, NotFound, Observed, Scope, resolve, wait_for
from skyrig_eks.api import cluster_name
from skyrig_eks.iam import ROLE, role_arn, role_id, role_name
from skyrig_kubernetes.nodes import NamespaceNodeType

CLUSTER_ID = "eks.cluster"
NODES_ID = "eks.nodegroup"
FARGATE_ID = "eks.fargate"
OIDC_ID = "eks.oidc"
NAMESPACE_ID = "eks.namespace"

PRIVATE_SUBNETS = ("network.subnet/private-a", "network.subnet/private-b")
"""The aws provider's private subnets (one per zone), where the nodes and pods run."""
PRIVATE_ROUTES = ("network.routes/private-a", "network.routes/private-b")
"""Their routes through the NAT gateways: nodes reach EKS's and ECR's endpoints through them."""
APP_SECURITY_GROUP = "network.sg/app"
"""The aws provider's security group of the services: its databases and caches admit it."""

CLUSTER_POLICIES = ("AmazonEKSClusterPolicy",)
NODE_POLICIES = ("AmazonEC2ContainerRegistryReadOnly", "AmazonEKSWorkerNodePolicy", "AmazonEKS_CNI_Policy")
POD_POLICIES = ("AmazonEKSFargatePodExecutionRolePolicy",)


def _tags(context: Context, node: Node) -> dict[str, str]:
    return dict(context.tags(node))


def _owned(context: Context, tags: Mapping[str, str] | None, node: Node) -> bool:
    """Whether a resource's tags say it is ``node`` of this app and environment."""
    return dict(tags or {}).items() >= context.tags(node).items()


def network_id(context: Context, kind: str, node_id: str) -> str:
    """The EC2 id of the aws provider's network node ``node_id`` (``subnet`` or ``security-group``)."""
    operation, key, field = {
        "subnet": ("describe_subnets", "Subnets", "SubnetId"),
        "security-group": ("describe_security_groups", "SecurityGroups", "GroupId"),
    }[kind]

    def find() -> str | None:
        filters = [
            {"Name": f"tag:skyrig:{name}", "Values": [value]}
            for name, value in (("app", context.app), ("env", context.environment.name), ("node", node_id))
        ]
        found = getattr(context.client.ec2, operation)(Filters=filters)[key]
        return found[0][field] if found else None

    return resolve(context, node_id, find)


class ClusterType(CloudNodeType):
    """The EKS cluster: private and public API endpoint, in the private subnets, with the app security
    group; waits until it is active."""

    type = "eks.cluster"
    replace_on = frozenset({"name", "subnets", "security_groups", "role"})

    def _observe(self, node: Node, cluster: Mapping[str, Any]) -> Observed:
        properties = {"name": cluster["name"], "version": cluster.get("version")}
        outputs = {
            "arn": cluster.get("arn"),
            "endpoint": cluster.get("endpoint"),
            "issuer": ((cluster.get("identity") or {}).get("oidc") or {}).get("issuer"),
        }
        return self.observed(node, cluster["name"], properties, outputs)

    def _read(self, context: Context, node: Node, provider_id: str) -> Observed | None:
        cluster = context.client.eks.describe_cluster(name=provider_id)["cluster"]
        if cluster.get("status") == "DELETING":
            return None
        return self._observe(node, cluster)

    def _find(self, context: Context, node: Node) -> Observed | None:
        cluster = context.client.eks.describe_cluster(name=node.properties["name"])["cluster"]
        if cluster.get("status") == "DELETING" or not _owned(context, cluster.get("tags"), node):
            return None
        return self._observe(node, cluster)

    def _wait(self, context: Context, name: str) -> dict[str, Any]:
        found: dict[str, Any] = {}

        def active() -> tuple[bool, str]:
            found.update(context.client.eks.describe_cluster(name=name)["cluster"])
            return found.get("status") == "ACTIVE", str(found.get("status"))

        wait_for(context, f"EKS cluster {name}", active)
        return found

    def _create(self, context: Context, node: Node) -> Observed:
        p = node.properties
        context.client.eks.create_cluster(
            name=p["name"],
            version=p["version"],
            roleArn=role_arn(context, role_name(context.app, context.environment.name, "cluster")),
            resourcesVpcConfig={
                "subnetIds": [network_id(context, "subnet", s) for s in p["subnets"]],
                "securityGroupIds": [network_id(context, "security-group", g) for g in p["security_groups"]],
                "endpointPublicAccess": True,
                "endpointPrivateAccess": True,
            },
            tags=_tags(context, node),
        )
        return self._observe(node, self._wait(context, p["name"]))

    def _update(self, context: Context, node: Node, provider_id: str, changes: Mapping[str, Any]) -> Observed:
        if "version" in changes:
            context.client.eks.update_cluster_version(name=provider_id, version=node.properties["version"])
        return self._observe(node, self._wait(context, provider_id))

    def _delete(self, context: Context, node: Node, provider_id: str) -> None:
        eks = context.client.eks
        eks.delete_cluster(name=provider_id)

        def gone() -> tuple[bool, str]:
            try:
                return False, eks.describe_cluster(name=provider_id)["cluster"].get("status", "")
            except NotFound:
                return True, "deleted"

        wait_for(context, f"deleting EKS cluster {provider_id}", gone)


class NodeGroupType(CloudNodeType):
    """The managed node group in the private subnets. Its size is user-tunable: a count a cluster
    autoscaler or the console set is adopted."""

    type = "eks.nodegroup"
    tunable = frozenset({"min", "max", "desired"})
    replace_on = frozenset({"name", "cluster", "instance_types", "subnets", "security_groups", "role"})

    def _observe(self, node: Node, group: Mapping[str, Any]) -> Observed:
        scaling = group.get("scalingConfig") or {}
        properties = {
            "name": group["nodegroupName"],
            "cluster": group["clusterName"],
            "instance_types": list(group.get("instanceTypes") or []),
            "min": scaling.get("minSize"),
            "max": scaling.get("maxSize"),
            "desired": scaling.get("desiredSize"),
        }
        return self.observed(node, group["nodegroupName"], properties, {"arn": group.get("nodegroupArn")})

    def _describe(self, context: Context, node: Node, name: str) -> dict[str, Any]:
        return context.client.eks.describe_nodegroup(
            clusterName=node.properties["cluster"], nodegroupName=name
        )["nodegroup"]

    def _read(self, context: Context, node: Node, provider_id: str) -> Observed | None:
        group = self._describe(context, node, provider_id)
        return None if group.get("status") == "DELETING" else self._observe(node, group)

    def _find(self, context: Context, node: Node) -> Observed | None:
        group = self._describe(context, node, node.properties["name"])
        if group.get("status") == "DELETING" or not _owned(context, group.get("tags"), node):
            return None
        return self._observe(node, group)

    def _wait(self, context: Context, node: Node, name: str) -> dict[str, Any]:
        found: dict[str, Any] = {}

        def active() -> tuple[bool, str]:
            found.update(self._describe(context, node, name))
            return found.get("status") == "ACTIVE", str(found.get("status"))

        wait_for(context, f"EKS node group {name}", active)
        return found

    def _launch_template(self, context: Context, node: Node) -> dict[str, str]:
        """The node group's launch template (made unless an earlier create made it): the nodes, and so the
        pods on them, in the app security group that the databases and caches admit, and in the cluster's
        own security group, which EKS gives nodes only when a launch template names none."""
        p = node.properties
        ec2 = context.client.ec2
        try:
            found = ec2.describe_launch_templates(LaunchTemplateNames=[p["name"]])["LaunchTemplates"][0]
        except NotFound:
            groups = [network_id(context, "security-group", g) for g in p["security_groups"]]
            own = ((context.client.describe_cluster() or {}).get("resourcesVpcConfig") or {}).get(
                "clusterSecurityGroupId"
            )
            tags = [{"Key": k, "Value": v} for k, v in sorted(_tags(context, node).items())]
            found = ec2.create_launch_template(
                LaunchTemplateName=p["name"],
                LaunchTemplateData={"SecurityGroupIds": [*groups, *([own] if own else [])]},
                TagSpecifications=[{"ResourceType": "launch-template", "Tags": tags}],
            )["LaunchTemplate"]
        return {"id": found["LaunchTemplateId"], "version": str(found["LatestVersionNumber"])}

    def _create(self, context: Context, node: Node) -> Observed:
        p = node.properties
        context.client.eks.create_nodegroup(
            clusterName=p["cluster"],
            nodegroupName=p["name"],
            scalingConfig={"minSize": p["min"], "maxSize": p["max"], "desiredSize": p["desired"]},
            subnets=[network_id(context, "subnet", s) for s in p["subnets"]],
            instanceTypes=p["instance_types"],
            nodeRole=role_arn(context, role_name(context.app, context.environment.name, "nodes")),
            launchTemplate=self._launch_template(context, node),
            tags=_tags(context, node),
        )
        return self._observe(node, self._wait(context, node, p["name"]))

    def _update(self, context: Context, node: Node, provider_id: str, changes: Mapping[str, Any]) -> Observed:
        p = node.properties
        context.client.eks.update_nodegroup_config(
            clusterName=p["cluster"],
            nodegroupName=provider_id,
            scalingConfig={"minSize": p["min"], "maxSize": p["max"], "desiredSize": p["desired"]},
        )
        return self._observe(node, self._wait(context, node, provider_id))

    def _delete(self, context: Context, node: Node, provider_id: str) -> None:
        eks = context.client.eks
        eks.delete_nodegroup(clusterName=node.properties["cluster"], nodegroupName=provider_id)

        def gone() -> tuple[bool, str]:
            try:
                return False, self._describe(context, node, provider_id).get("status", "")
            except NotFound:
                return True, "deleted"

        wait_for(context, f"deleting EKS node group {provider_id}", gone)
        with contextlib.suppress(NotFound):
            context.client.ec2.delete_launch_template(LaunchTemplateName=provider_id)


class FargateType(CloudNodeType):
    """A Fargate profile running the environment's namespace's pods in the private subnets. Profiles
    cannot change: any change replaces it."""

    type = "eks.fargate"
    replace_on = frozenset({"name", "cluster", "namespace", "subnets", "role"})

    def _observe(self, node: Node, profile: Mapping[str, Any]) -> Observed:
        selectors = profile.get("selectors") or [{}]
        properties = {
            "name": profile["fargateProfileName"],
            "cluster": profile["clusterName"],
            "namespace": selectors[0].get("namespace"),
        }
        arn = profile.get("fargateProfileArn")
        return self.observed(node, profile["fargateProfileName"], properties, {"arn": arn})

    def _describe(self, context: Context, node: Node, name: str) -> dict[str, Any]:
        return context.client.eks.describe_fargate_profile(
            clusterName=node.properties["cluster"], fargateProfileName=name
        )["fargateProfile"]

    def _read(self, context: Context, node: Node, provider_id: str) -> Observed | None:
        profile = self._describe(context, node, provider_id)
        return None if profile.get("status") == "DELETING" else self._observe(node, profile)

    def _find(self, context: Context, node: Node) -> Observed | None:
        return self._read(context, node, node.properties["name"])

    def _create(self, context: Context, node: Node) -> Observed:
        p = node.properties
        context.client.eks.create_fargate_profile(
            clusterName=p["cluster"],
            fargateProfileName=p["name"],
            podExecutionRoleArn=role_arn(context, role_name(context.app, context.environment.name, "pods")),
            subnets=[network_id(context, "subnet", s) for s in p["subnets"]],
            selectors=[{"namespace": p["namespace"]}],
            tags=_tags(context, node),
        )
        found: dict[str, Any] = {}

        def active() -> tuple[bool, str]:
            found.update(self._describe(context, node, p["name"]))
            return found.get("status") == "ACTIVE", str(found.get("status"))

        wait_for(context, f"EKS Fargate profile {p['name']}", active)
        return self._observe(node, found)

    def _update(self, context: Context, node: Node, provider_id: str, changes: Mapping[str, Any]) -> Observed:
        return self.read(context, node, provider_id)  # type: ignore[return-value]

    def _delete(self, context: Context, node: Node, provider_id: str) -> None:
        eks = context.client.eks
        eks.delete_fargate_profile(clusterName=node.properties["cluster"], fargateProfileName=provider_id)

        def gone() -> tuple[bool, str]:
            try:
                return False, self._describe(context, node, provider_id).get("status", "")
            except NotFound:
                return True, "deleted"

        wait_for(context, f"deleting EKS Fargate profile {provider_id}", gone)


class OidcType(CloudNodeType):
    """The IAM OIDC provider of the cluster's issuer, for IRSA: audience ``sts.amazonaws.com``."""

    type = "eks.oidc"
    invariant = frozenset({"thumbprint"})
    replace_on = frozenset({"cluster"})

    def _read(self, context: Context, node: Node, provider_id: str) -> Observed | None:
        found = context.client.iam.get_open_id_connect_provider(OpenIDConnectProviderArn=provider_id)
        thumbprints = found.get("ThumbprintList") or []
        properties = {"thumbprint": thumbprints[0] if len(thumbprints) == 1 else thumbprints}
        return self.observed(node, provider_id, properties, {"arn": provider_id})

    def _find(self, context: Context, node: Node) -> Observed | None:
        arn = context.client.oidc_provider_arn()
        return None if arn is None else self._read(context, node, arn)

    def _create(self, context: Context, node: Node) -> Observed:
        arn = context.client.iam.create_open_id_connect_provider(
            Url=context.client.issuer(),
            ClientIDList=["sts.amazonaws.com"],
            ThumbprintList=[node.properties["thumbprint"]],
            Tags=[{"Key": k, "Value": v} for k, v in sorted(_tags(context, node).items())],
        )["OpenIDConnectProviderArn"]
        return self._read(context, node, arn)  # type: ignore[return-value]

    def _update(self, context: Context, node: Node, provider_id: str, changes: Mapping[str, Any]) -> Observed:
        context.client.iam.update_open_id_connect_provider_thumbprint(
            OpenIDConnectProviderArn=provider_id, ThumbprintList=[node.properties["thumbprint"]]
        )
        return self.read(context, node, provider_id)  # type: ignore[return-value]

    def _delete(self, context: Context, node: Node, provider_id: str) -> None:
        context.client.iam.delete_open_id_connect_provider(OpenIDConnectProviderArn=provider_id)


class NamespaceType(NamespaceNodeType):
    """The environment's namespace on the cluster (:class:`skyrig_kubernetes.nodes.NamespaceNodeType`)."""

    type = "eks.namespace"


CLUSTER = ClusterType()
NODE_GROUP = NodeGroupType()
FARGATE = FargateType()
OIDC = OidcType()
NAMESPACE = NamespaceType()
TYPES = (CLUSTER, NODE_GROUP, FARGATE, OIDC, NAMESPACE)


def capacity(scope: Scope) -> tuple[str, ...]:
    """The node ids the pods need to run on: the node group or the Fargate profile (none on an existing
    cluster)."""
    if scope.settings.cluster:
        return ()
    return (FARGATE_ID,) if scope.settings.fargate else (NODES_ID,)


def expand(scope: Scope) -> list[Node]:
    """The control plane (unless the services run on an existing cluster) and the namespace."""
    from skyrig_kubernetes.workloads import namespace_name

    if not scope.of_kind("service"):
        return []
    settings = scope.settings
    app, env = scope.app, scope.environment.name
    namespace = namespace_name(app, env)
    nodes = [scope.node(NAMESPACE_ID, NAMESPACE.type, {"name": namespace}, capacity(scope))]
    if settings.cluster:
        return nodes
    name = cluster_name(app, env)
    nodes.append(
        scope.node(
            role_id("cluster"),
            ROLE.type,
            {
                "name": role_name(app, env, "cluster"),
                "trust": {"service": "eks.amazonaws.com"},
                "policies": sorted(CLUSTER_POLICIES),
            },
        )
    )
    nodes.append(
        scope.node(
            CLUSTER_ID,
            CLUSTER.type,
            {
                "name": name,
                "version": settings.kubernetes_version,
                "subnets": list(PRIVATE_SUBNETS),
                "security_groups": [APP_SECURITY_GROUP],
                "role": role_id("cluster"),
            },
            (role_id("cluster"), APP_SECURITY_GROUP, *PRIVATE_SUBNETS, *PRIVATE_ROUTES),
        )
    )
    nodes.append(
        scope.node(
            OIDC_ID, OIDC.type, {"cluster": name, "thumbprint": settings.oidc_thumbprint}, (CLUSTER_ID,)
        )
    )
    if settings.fargate:
        nodes.append(
            scope.node(
                role_id("pods"),
                ROLE.type,
                {
                    "name": role_name(app, env, "pods"),
                    "trust": {"service": "eks-fargate-pods.amazonaws.com"},
                    "policies": sorted(POD_POLICIES),
                },
            )
        )
        properties = {
            "name": role_name(app, env, "pods"),
            "cluster": name,
            "namespace": namespace,
            "subnets": list(PRIVATE_SUBNETS),
            "role": role_id("pods"),
        }
        nodes.append(scope.node(FARGATE_ID, FARGATE.type, properties, (CLUSTER_ID, role_id("pods"))))
        return nodes
    nodes.append(
        scope.node(
            role_id("nodes"),
            ROLE.type,
            {
                "name": role_name(app, env, "nodes"),
                "trust": {"service": "ec2.amazonaws.com"},
                "policies": sorted(NODE_POLICIES),
            },
        )
    )
    properties = {
        "name": role_name(app, env, "nodes"),
        "cluster": name,
        "instance_types": list(settings.instance_types),
        "min": settings.nodes_min,
        "max": max(settings.nodes_max, settings.nodes_min, settings.nodes_desired),
        "desired": settings.nodes_desired,
        "subnets": list(PRIVATE_SUBNETS),
        "security_groups": [APP_SECURITY_GROUP],
        "role": role_id("nodes"),
    }
    depends = (CLUSTER_ID, role_id("nodes"), APP_SECURITY_GROUP)
    nodes.append(scope.node(NODES_ID, NODE_GROUP.type, properties, depends))
    return nodes
