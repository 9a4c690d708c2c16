"""Object storage: an S3 bucket per bucket (encrypted, owner-enforced, public access blocked unless the
bucket is declared public, versioned when declared), and a CloudFront distribution in front of each public
bucket.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from skyrig.provider import Context, Node, NotFound, Observed, ProviderError, Scope, wait_for
from skyrig_aws.api import tag_dict, tag_list
from skyrig_aws.names import bucket_name
from skyrig_aws.nodes import AwsNodeType

_BLOCK_ALL = {
    "BlockPublicAcls": True,
    "IgnorePublicAcls": True,
    "BlockPublicPolicy": True,
    "RestrictPublicBuckets": True,
}


def distributions(context: Context) -> list[dict[str, Any]]:
    """The account's CloudFront distributions (summaries): one listing that the buckets and the CDN
    nodes of a command share, until it writes to CloudFront."""
    cloudfront = context.client.cloudfront

    def read() -> list[dict[str, Any]]:
        return cloudfront.list_distributions().get("DistributionList", {}).get("Items", []) or []

    return context.client.shared(("cloudfront", "ListDistributions"), read)


class BucketType(AwsNodeType):
    """An S3 bucket."""

    type = "aws.objects.bucket"
    arn_types = ("s3",)
    stateful = True
    replace_on = frozenset({"name"})
    invariant = frozenset({"encrypted", "public_access_blocked"})

    def _read(self, context: Context, node: Node, provider_id: str) -> Observed | None:
        context.client.s3.head_bucket(Bucket=provider_id)  # gone: NotFound, read as None
        return self._settings(context, node, provider_id)

    def _settings(self, context: Context, node: Node, provider_id: str) -> Observed:
        """The bucket's settings, one read each (S3 has no call that returns them together)."""
        s3 = context.client.s3
        versioning = s3.get_bucket_versioning(Bucket=provider_id).get("Status") == "Enabled"
        try:
            block = s3.get_public_access_block(Bucket=provider_id)["PublicAccessBlockConfiguration"]
        except ProviderError:  # none configured (NoSuchPublicAccessBlockConfiguration is a not-found)
            block = {}
        try:
            rules = s3.get_bucket_encryption(Bucket=provider_id)["ServerSideEncryptionConfiguration"]["Rules"]
        except ProviderError:
            rules = []
        properties = {
            "name": provider_id,
            "versioned": versioning,
            "public_access_blocked": all(block.get(k) for k in _BLOCK_ALL),
            "encrypted": bool(rules),
        }
        return self._observe(context, node, provider_id, properties)

    def _observe(
        self, context: Context, node: Node, name: str, properties: Mapping[str, Any], cdn: bool = True
    ) -> Observed:
        outputs = self._outputs(context, name)
        if not properties["public_access_blocked"]:
            outputs["cdn_url"] = self._cdn_url(context, name) if cdn else None
        return self.observed(node, name, properties, outputs)

    def _cdn_url(self, context: Context, name: str) -> str | None:
        """The URL of the bucket's CloudFront distribution (made after the bucket: seen from the next
        refresh on; until then public URLs are S3's)."""
        found = next((i for i in distributions(context) if i.get("Comment") == f"skyrig {name}"), None)
        return f"https://{found['DomainName']}" if found else None

    def _buckets(self, context: Context) -> set[str]:
        s3 = context.client.s3
        return context.client.shared(
            ("s3", "ListBuckets"), lambda: {b["Name"] for b in s3.list_buckets().get("Buckets", [])}
        )

    def _read_many(self, context: Context, nodes: list[tuple[Node, str]]) -> dict[str, Observed | None]:
        existing = self._buckets(context)  # listed: no HeadBucket each
        return {n.id: self._settings(context, n, pid) if pid in existing else None for n, pid in nodes}

    def _outputs(self, context: Context, name: str) -> dict[str, Any]:
        settings = context.settings
        base = settings.endpoint_url or f"https://s3.{settings.region}.amazonaws.com"
        return {
            "bucket": name,
            "region": settings.region,
            "endpoint_url": settings.endpoint_url,
            "s3_url": f"{base.rstrip('/')}/{name}",
        }

    def _find(self, context: Context, node: Node) -> Observed | None:
        name = node.properties["name"]
        try:
            tags = tag_dict(context.client.s3.get_bucket_tagging(Bucket=name).get("TagSet"))
        except NotFound:
            # no such bucket, or no tags yet: a create cut short before tagging, which creating again
            # adopts (S3 answers BucketAlreadyOwnedByYou)
            return None
        if tags.get("skyrig:app") != context.app or tags.get("skyrig:env") != context.environment.name:
            raise ProviderError(
                f"{node.id}: an S3 bucket named {name!r} exists and is not this environment's (S3 names are "
                "global): rename the app or the bucket"
            )
        found = self._read(context, node, name)
        if (
            found is None
            or node.properties["public_access_blocked"]
            or found.properties["public_access_blocked"]
        ):
            return found
        # a public bucket whose create stopped before its public-read policy: reported as not yet opened,
        # so that adopting it opens it (a refresh does not ask, one call less)
        try:
            context.client.s3.get_bucket_policy(Bucket=name)
        except NotFound:
            return Observed(
                found.provider_id, {**found.properties, "public_access_blocked": None}, found.outputs
            )
        return found

    def _find_many(self, context: Context, nodes: list[Node]) -> dict[str, Observed | None]:
        existing = self._buckets(context)
        return {n.id: self.find(context, n) if n.properties["name"] in existing else None for n in nodes}

    def _create(self, context: Context, node: Node) -> Observed:
        s3 = context.client.s3
        name = node.properties["name"]
        arguments: dict[str, Any] = {"Bucket": name, "ObjectOwnership": "BucketOwnerEnforced"}
        if context.settings.region != "us-east-1":
            arguments["CreateBucketConfiguration"] = {"LocationConstraint": context.settings.region}
        try:
            s3.create_bucket(**arguments)
        except ProviderError as error:
            if "BucketAlreadyOwnedByYou" not in str(error):
                raise
        s3.put_bucket_tagging(Bucket=name, Tagging={"TagSet": tag_list(context.tags(node))})
        # every setting, but versioning suspended on a new bucket (never versioned is the same)
        self._configure(context, node, name, node.properties)
        # set as asked: no read back; its CDN comes after it (the next refresh sees its URL)
        return self._observe(context, node, name, node.properties, cdn=False)

    def _configure(self, context: Context, node: Node, name: str, changes: Mapping[str, Any]) -> None:
        s3 = context.client.s3
        properties = node.properties
        if "encrypted" in changes:
            s3.put_bucket_encryption(
                Bucket=name,
                ServerSideEncryptionConfiguration={
                    "Rules": [
                        {
                            "ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"},
                            "BucketKeyEnabled": True,
                        }
                    ]
                },
            )
        if "public_access_blocked" in changes:
            blocked = properties["public_access_blocked"]
            s3.put_public_access_block(
                Bucket=name,
                PublicAccessBlockConfiguration={k: blocked for k in _BLOCK_ALL},
            )
            if not blocked:  # a public bucket: anyone may read its objects (through the CDN, or S3)
                policy = {
                    "Version": "2012-10-17",
                    "Statement": [
                        {
                            "Sid": "public-read",
                            "Effect": "Allow",
                            "Principal": "*",
                            "Action": "s3:GetObject",
                            "Resource": f"arn:{context.client.partition()}:s3:::{name}/*",
                        }
                    ],
                }
                s3.put_bucket_policy(Bucket=name, Policy=json.dumps(policy))
        if "versioned" in changes and (properties["versioned"] or changes is not properties):
            status = "Enabled" if properties["versioned"] else "Suspended"
            s3.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": status})

    def _update(self, context: Context, node: Node, provider_id: str, changes: Mapping[str, Any]) -> Observed:
        self._configure(context, node, provider_id, dict(changes))
        return self._settings(context, node, provider_id)

    def _delete(self, context: Context, node: Node, provider_id: str) -> None:
        s3 = context.client.s3
        s3.head_bucket(Bucket=provider_id)  # gone already: NotFound, and nothing to do
        # every version and delete marker first: S3 deletes only empty buckets
        for page in s3.get_paginator("list_object_versions").paginate(Bucket=provider_id):
            objects = [
                {"Key": v["Key"], "VersionId": v["VersionId"]}
                for v in [*page.get("Versions", []), *page.get("DeleteMarkers", [])]
            ]
            if objects:
                s3.delete_objects(Bucket=provider_id, Delete={"Objects": objects, "Quiet": True})
        s3.delete_bucket(Bucket=provider_id)

    def runtime_entry(self, node: Node, observed: Observed) -> dict[str, Any] | None:
        return {
            "type": self.type,
            **observed.outputs,
            "public": not node.properties["public_access_blocked"],
            "versioned": node.properties["versioned"],
        }


class DistributionType(AwsNodeType):
    """A CloudFront distribution serving a public bucket over HTTPS, found by its comment."""

    type = "aws.objects.cdn"
    arn_types = ("cloudfront:distribution",)
    invariant = frozenset({"enabled", "https_only"})

    def _summaries(self, context: Context) -> list[dict[str, Any]]:
        return distributions(context)

    def _observe(self, context: Context, node: Node, item: Mapping[str, Any]) -> Observed:
        behaviour = item.get("DefaultCacheBehavior", {})
        properties = {
            "comment": item.get("Comment"),
            "enabled": bool(item.get("Enabled")),
            "https_only": behaviour.get("ViewerProtocolPolicy") in ("redirect-to-https", "https-only"),
        }
        outputs = {"id": item["Id"], "domain": item["DomainName"], "url": f"https://{item['DomainName']}"}
        return self.observed(node, item["Id"], properties, outputs)

    def _read(self, context: Context, node: Node, provider_id: str) -> Observed | None:
        found = context.client.cloudfront.get_distribution(Id=provider_id)["Distribution"]
        config = found["DistributionConfig"]
        return self._observe(context, node, {**config, "Id": found["Id"], "DomainName": found["DomainName"]})

    def _read_many(self, context: Context, nodes: list[tuple[Node, str]]) -> dict[str, Observed | None]:
        items = {item["Id"]: item for item in self._summaries(context)}
        return {n.id: self._observe(context, n, items[pid]) if pid in items else None for n, pid in nodes}

    def _find(self, context: Context, node: Node) -> Observed | None:
        return self._find_many(context, [node])[node.id]

    def _find_many(self, context: Context, nodes: list[Node]) -> dict[str, Observed | None]:
        by_comment: dict[str, dict[str, Any]] = {}
        for item in self._summaries(context):
            by_comment.setdefault(item.get("Comment") or "", item)
        return {
            n.id: self._observe(context, n, by_comment[n.properties["comment"]])
            if n.properties["comment"] in by_comment
            else None
            for n in nodes
        }

    def _config(self, context: Context, node: Node, enabled: bool = True) -> dict[str, Any]:
        bucket = node.properties["bucket"]
        origin = f"{bucket}.s3.{context.settings.region}.amazonaws.com"
        return {
            "CallerReference": node.properties["comment"],
            "Comment": node.properties["comment"],
            "Enabled": enabled,
            "Origins": {
                "Quantity": 1,
                "Items": [
                    {"Id": "bucket", "DomainName": origin, "S3OriginConfig": {"OriginAccessIdentity": ""}}
                ],
            },
            "DefaultCacheBehavior": {
                "TargetOriginId": "bucket",
                "ViewerProtocolPolicy": "redirect-to-https",
                # the managed CachingOptimized policy
                "CachePolicyId": "658327ea-f89d-4fab-a63d-7e88639e58f6",
                "Compress": True,
            },
            "PriceClass": "PriceClass_100",
        }

    def _create(self, context: Context, node: Node) -> Observed:
        cloudfront = context.client.cloudfront
        created = cloudfront.create_distribution_with_tags(
            DistributionConfigWithTags={
                "DistributionConfig": self._config(context, node),
                "Tags": {"Items": tag_list(context.tags(node))},
            }
        )["Distribution"]
        found = self._wait(context, created["Id"])
        config = found["DistributionConfig"]
        return self._observe(context, node, {**config, "Id": found["Id"], "DomainName": found["DomainName"]})

    def _wait(self, context: Context, distribution: str) -> dict[str, Any]:
        """The distribution once deployed (as the last check read it)."""
        seen: dict[str, Any] = {}

        def deployed() -> tuple[bool, str]:
            seen.update(context.client.cloudfront.get_distribution(Id=distribution)["Distribution"])
            return seen["Status"] == "Deployed", seen["Status"]

        wait_for(context, f"CloudFront distribution {distribution}", deployed)
        return seen

    def _update(self, context: Context, node: Node, provider_id: str, changes: Mapping[str, Any]) -> Observed:
        cloudfront = context.client.cloudfront
        current = cloudfront.get_distribution_config(Id=provider_id)
        config = {**current["DistributionConfig"], **self._config(context, node)}
        config["CallerReference"] = current["DistributionConfig"]["CallerReference"]
        cloudfront.update_distribution(Id=provider_id, IfMatch=current["ETag"], DistributionConfig=config)
        self._wait(context, provider_id)
        return self._read(context, node, provider_id)  # type: ignore[return-value]

    def _delete(self, context: Context, node: Node, provider_id: str) -> None:
        cloudfront = context.client.cloudfront
        current = cloudfront.get_distribution_config(Id=provider_id)
        etag = current["ETag"]
        if current["DistributionConfig"].get("Enabled"):
            config = {**current["DistributionConfig"], "Enabled": False}
            etag = cloudfront.update_distribution(Id=provider_id, IfMatch=etag, DistributionConfig=config)[
                "ETag"
            ]
            self._wait(context, provider_id)
            etag = cloudfront.get_distribution_config(Id=provider_id)["ETag"]
        cloudfront.delete_distribution(Id=provider_id, IfMatch=etag)

    def runtime_entry(self, node: Node, observed: Observed) -> dict[str, Any] | None:
        return None


BUCKET = BucketType()
DISTRIBUTION = DistributionType()
TYPES = (BUCKET, DISTRIBUTION)


def expand(scope: Scope) -> list[Node]:
    app, env = scope.app, scope.environment.name
    nodes = []
    for r in scope.of_kind("bucket"):
        name = bucket_name(app, env, r.name)
        properties = {
            "name": name,
            "versioned": r.versioned,
            "encrypted": True,
            "public_access_blocked": not r.public,
        }
        bucket_id = f"objects.bucket/{r.name}"
        nodes.append(scope.node(bucket_id, BUCKET.type, properties, resource=r))
        if r.public:
            cdn = {"bucket": name, "comment": f"skyrig {name}", "enabled": True, "https_only": True}
            nodes.append(scope.node(f"objects.cdn/{r.name}", DISTRIBUTION.type, cdn, (bucket_id,)))
    return nodes
