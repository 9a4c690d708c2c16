"""A tenant on the shared objects server: IAM user ``e-<id>`` with one access key (its login: username
the key id, password the secret) and one inline policy allowing ``s3:*`` on ``arn:aws:s3:::e-<id>-*``
and the objects in them, nothing else; a bucket ``name`` is ``e-<id>-<name>``. The server checks every
request's signature and the user's policy: another tenant's bucket answers 403 AccessDenied (see
:mod:`skyrig_hosted.host.objectstore` for what moto enforces). Against MinIO (production) the same rules
are a MinIO user and a policy through its admin API (not tested here).
"""

from __future__ import annotations

import contextlib
import json
from typing import Any

from skyrig_hosted.host.servers import Servers, Tenant
from skyrig_hosted.host.tenants import check_kind, login_name, resource_name

KINDS = ("bucket",)
POLICY = "own-buckets"


def user_name(tenant: Tenant) -> str:
    """The tenant's IAM user."""
    return login_name(tenant).replace("_", "-")


def bucket_name(tenant: Tenant, name: str) -> str:
    """The server's name of the tenant's bucket ``name`` (a valid S3 bucket name)."""
    return f"{user_name(tenant)}-{resource_name(name, separator='-', limit=50)}"


def _policy(tenant: Tenant) -> str:
    prefix = f"arn:aws:s3:::{user_name(tenant)}-*"
    statement = {"Effect": "Allow", "Action": "s3:*", "Resource": [prefix, f"{prefix}/*"]}
    return json.dumps({"Version": "2012-10-17", "Statement": [statement]})


def ensure(servers: Servers, tenant: Tenant) -> dict[str, str]:
    """The user and its policy, made if absent, with one access key: a new one (older ones deleted)."""
    iam = servers.objects.admin_client("iam")
    user = user_name(tenant)
    with contextlib.suppress(iam.exceptions.EntityAlreadyExistsException):
        iam.create_user(UserName=user)
    iam.put_user_policy(UserName=user, PolicyName=POLICY, PolicyDocument=_policy(tenant))
    for key in iam.list_access_keys(UserName=user)["AccessKeyMetadata"]:
        iam.delete_access_key(UserName=user, AccessKeyId=key["AccessKeyId"])
    key = iam.create_access_key(UserName=user)["AccessKey"]
    return {"username": key["AccessKeyId"], "password": key["SecretAccessKey"]}


PROPERTIES = ("versioned", "public")
"""A bucket's properties, each a boolean: ``versioned`` is the server's versioning; ``public`` is the
host's own (it serves the bucket's objects to anyone at ``/objects/BUCKET/KEY`` of its one port,
:mod:`skyrig_hosted.host.public`): the server serves no one without a signature."""


def _checked(properties: dict[str, Any]) -> dict[str, bool]:
    extra = sorted(set(properties) - set(PROPERTIES))
    if extra:
        raise ValueError(f"unknown property {extra[0]!r} (a bucket has: {', '.join(PROPERTIES)})")
    for name in PROPERTIES:
        if not isinstance(properties.get(name, False), bool):
            raise ValueError(f"{name!r} must be true or false")
    return {name: bool(properties.get(name, False)) for name in PROPERTIES}


def put(
    servers: Servers, tenant: Tenant, login: dict[str, str], kind: str, name: str, properties: dict[str, Any]
) -> dict[str, Any]:
    """The bucket, made if absent, its versioning enabled when ``versioned`` (suspended when no longer:
    MinIO keeps the earlier versions; moto drops a key's earlier versions at its next write)."""
    check_kind("objects", kind, KINDS)
    wanted = _checked(properties)
    s3 = servers.objects.admin_client("s3")
    bucket = bucket_name(tenant, name)
    with contextlib.suppress(s3.exceptions.BucketAlreadyOwnedByYou, s3.exceptions.BucketAlreadyExists):
        s3.create_bucket(Bucket=bucket)
    status = s3.get_bucket_versioning(Bucket=bucket).get("Status")
    if wanted["versioned"] and status != "Enabled":
        s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    elif not wanted["versioned"] and status == "Enabled":
        s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Suspended"})
    return {"endpoint": servers.objects.endpoint, "bucket": bucket, "region": "us-east-1"}


def _empty(s3: Any, bucket: str) -> None:
    """Every version and delete marker of every object (an unversioned object is its one version)."""
    for page in s3.get_paginator("list_object_versions").paginate(Bucket=bucket):
        found = [*page.get("Versions", []), *page.get("DeleteMarkers", [])]
        keys = [{"Key": item["Key"], "VersionId": item["VersionId"]} for item in found]
        if keys:
            s3.delete_objects(Bucket=bucket, Delete={"Objects": keys, "Quiet": True})


def _delete_bucket(s3: Any, bucket: str) -> None:
    from botocore.exceptions import ClientError

    try:
        _empty(s3, bucket)
        s3.delete_bucket(Bucket=bucket)
    except ClientError as error:
        if error.response["Error"]["Code"] != "NoSuchBucket":
            raise


def delete(servers: Servers, tenant: Tenant, kind: str, name: str) -> None:
    """The bucket and every object in it."""
    check_kind("objects", kind, KINDS)
    _delete_bucket(servers.objects.admin_client("s3"), bucket_name(tenant, name))


def _buckets(s3: Any, tenant: Tenant) -> list[str]:
    prefix = user_name(tenant) + "-"
    return [bucket["Name"] for bucket in s3.list_buckets()["Buckets"] if bucket["Name"].startswith(prefix)]


def remove(servers: Servers, tenant: Tenant) -> None:
    """Every bucket of the tenant, then its keys, policy and user."""
    s3 = servers.objects.admin_client("s3")
    for bucket in _buckets(s3, tenant):
        _delete_bucket(s3, bucket)
    iam = servers.objects.admin_client("iam")
    user = user_name(tenant)
    try:
        for key in iam.list_access_keys(UserName=user)["AccessKeyMetadata"]:
            iam.delete_access_key(UserName=user, AccessKeyId=key["AccessKeyId"])
        iam.delete_user_policy(UserName=user, PolicyName=POLICY)
    except iam.exceptions.NoSuchEntityException:
        pass
    with contextlib.suppress(iam.exceptions.NoSuchEntityException):
        iam.delete_user(UserName=user)


def usage(servers: Servers, tenant: Tenant) -> int:
    """The bytes of the tenant's objects, every version counted."""
    s3 = servers.objects.admin_client("s3")
    total = 0
    for bucket in _buckets(s3, tenant):
        for page in s3.get_paginator("list_object_versions").paginate(Bucket=bucket):
            total += sum(int(item["Size"]) for item in page.get("Versions", []))
    return total
