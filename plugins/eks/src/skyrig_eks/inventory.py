"""What the environment holds on AWS and on its cluster, found through their own APIs (names, ownership
tags, labels) whatever skyrig's state says: what the conformance suite compares with state."""

from __future__ import annotations

from typing import Any

from skyrig.provider import Context, NotFound
from skyrig_eks.iam import role_path


def _owned(context: Context, tags: Any) -> bool:
    tags = dict(tags or {})
    return tags.get("skyrig:app") == context.app and tags.get("skyrig:env") == context.environment.name


def inventory(context: Context) -> list[tuple[str, str]]:
    """``(node type, provider id)`` of every resource of the environment."""
    client = context.client
    eks, iam = client.eks, client.iam
    found: set[tuple[str, str]] = set()
    cluster = client.describe_cluster()
    if cluster is not None and cluster.get("status") != "DELETING":
        name = cluster["name"]
        if _owned(context, cluster.get("tags")):
            found.add(("eks.cluster", name))
        for group in eks.list_nodegroups(clusterName=name).get("nodegroups", []):
            try:
                described = eks.describe_nodegroup(clusterName=name, nodegroupName=group)["nodegroup"]
            except NotFound:
                continue
            if _owned(context, described.get("tags")) and described.get("status") != "DELETING":
                found.add(("eks.nodegroup", group))
        for profile in eks.list_fargate_profiles(clusterName=name).get("fargateProfileNames", []):
            try:
                described = eks.describe_fargate_profile(clusterName=name, fargateProfileName=profile)
            except NotFound:
                continue
            if _owned(context, described["fargateProfile"].get("tags")):
                found.add(("eks.fargate", profile))
    path = role_path(context.app, context.environment.name)
    for role in iam.list_roles(PathPrefix=path).get("Roles", []):
        found.add(("eks.iam.role", role["RoleName"]))
    for provider in iam.list_open_id_connect_providers().get("OpenIDConnectProviderList", []):
        tags = iam.list_open_id_connect_provider_tags(OpenIDConnectProviderArn=provider["Arn"]).get("Tags")
        if _owned(context, {t["Key"]: t["Value"] for t in tags or []}):
            found.add(("eks.oidc", provider["Arn"]))
    if cluster is not None or context.settings.kubernetes_endpoint:
        found |= _on_the_cluster(context)
    return sorted(found)


def _on_the_cluster(context: Context) -> set[tuple[str, str]]:
    from skyrig_kubernetes.workloads import PREFIX, namespace_name

    kube = context.client.kubernetes()
    name = namespace_name(context.app, context.environment.name)
    namespace = kube.get("v1", "Namespace", None, name)
    if namespace is None or (namespace.get("status") or {}).get("phase") == "Terminating":
        return set()
    annotations = namespace["metadata"].get("annotations") or {}
    if annotations.get(f"{PREFIX}environment") != context.environment.name:
        return set()
    found = {("eks.namespace", name)}
    managed = {"app.kubernetes.io/managed-by": "skyrig"}
    for deployment in kube.list("apps/v1", "Deployment", name, managed):
        found.add(("eks.service", deployment["metadata"]["name"]))
    return found
