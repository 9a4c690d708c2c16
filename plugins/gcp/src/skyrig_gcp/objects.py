"""Object storage: a Cloud Storage bucket per bucket (uniform bucket-level access, public access prevention
enforced unless the bucket is declared public, versioned when declared, labelled), and for each public
bucket a Compute Engine backend bucket with Cloud CDN enabled, which a load balancer's URL map serves.

A public bucket grants ``roles/storage.objectViewer`` to ``allUsers``, and nothing else. fake-gcs-server
(the emulator the tests use) keeps neither labels nor IAM configuration nor IAM policies: what it does not
report back is taken as asked, and under the ``emulator`` setting the 404 of its missing IAM API is too (see
``docs/providers/gcp.md``).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from skyrig.provider import Context, Node, NotFound, Observed, ProviderError, Scope
from skyrig_gcp import names
from skyrig_gcp.api import Conflict, _count, translate, wait_operation
from skyrig_gcp.nodes import GcpNodeType

PUBLIC_ROLE = "roles/storage.objectViewer"
PUBLIC_MEMBER = "allUsers"
GOOGLE_STORAGE = "https://storage.googleapis.com"

T = TypeVar("T")


def storage(method: str, call: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """One Cloud Storage call, counted and translated as the API layer does every other (the storage
    library's calls hang off buckets and blobs, which it does not wrap)."""
    _count("storage", method)
    try:
        return call(*args, **kwargs)
    except Exception as error:
        translated = translate(error, "storage", method)
        if translated is error:
            raise
        raise translated from None


def emulated(context: Context) -> bool:
    """Whether the endpoints are emulators (fake-gcs-server answers every IAM policy call 404)."""
    return context.settings.emulator == "fake"


class BucketType(GcpNodeType):
    """A Cloud Storage bucket in the environment's region."""

    type = "gcp.objects.bucket"
    stateful = True
    identity = frozenset({"name"})
    replace_on = frozenset({"location"})
    invariant = frozenset({"uniform_access", "public_access_prevention", "public"})

    # -- reading -------------------------------------------------------------------------------------

    def _observe(self, context: Context, node: Node, bucket: Any) -> Observed:
        """``bucket`` (a google-cloud-storage Bucket with its properties) in the node's terms."""
        found = bucket._properties
        properties: dict[str, Any] = {
            "name": bucket.name,
            "location": str(found.get("location", "")).lower(),
            "versioned": bool(found.get("versioning", {}).get("enabled")),
        }
        config = found.get("iamConfiguration")
        if config is not None:  # fake-gcs-server keeps none: taken as asked
            properties["uniform_access"] = bool(config.get("uniformBucketLevelAccess", {}).get("enabled"))
            properties["public_access_prevention"] = config.get("publicAccessPrevention", "inherited")
        if properties.get("public_access_prevention") == "enforced":
            properties["public"] = False  # nobody outside the project can be granted anything
        else:
            public = self._public(context, bucket)
            if public is not None:
                properties["public"] = public
        return self.observed(node, bucket.name, properties, self._outputs(context, bucket.name))

    def _public(self, context: Context, bucket: Any) -> bool | None:
        """Whether ``allUsers`` may read the bucket's objects (None: the emulator has no IAM policies)."""
        try:
            policy = storage("buckets.getIamPolicy", bucket.get_iam_policy, requested_policy_version=3)
        except NotFound:
            if emulated(context):
                return None
            raise
        return any(
            binding["role"] == PUBLIC_ROLE and PUBLIC_MEMBER in binding["members"]
            for binding in policy.bindings
        )

    def _outputs(self, context: Context, name: str) -> dict[str, Any]:
        endpoint = context.settings.endpoint("storage")
        return {
            "bucket": name,
            "project": context.client.project,
            "endpoint": endpoint,
            "emulator": context.settings.emulator,
            "public_url": f"{(endpoint or GOOGLE_STORAGE).rstrip('/')}/{name}",
        }

    def _listed(self, context: Context) -> dict[str, Any]:
        """The environment's buckets by name: one list call (by the names' common prefix), each with all
        its properties."""
        client = context.client
        prefix = names.bucket_prefix(client.project, context.app, context.environment.name)
        found = storage("buckets.list", lambda: list(client.storage().list_buckets(prefix=prefix)))
        return {b.name: b for b in found if b.name.startswith(prefix)}  # fake-gcs-server ignores prefix

    def _read(self, context: Context, node: Node, provider_id: str) -> Observed | None:
        bucket = storage("buckets.get", context.client.storage().get_bucket, provider_id)
        return self._observe(context, node, bucket)

    def _read_many(self, context: Context, nodes: list[tuple[Node, str]]) -> dict[str, Observed | None]:
        found = self._listed(context)
        return {
            n.id: self._observe(context, n, found[pid]) if pid in found else self.read(context, n, pid)
            for n, pid in nodes
        }

    def _find(self, context: Context, node: Node) -> Observed | None:
        name = node.properties["name"]
        bucket = storage("buckets.get", context.client.storage().get_bucket, name)
        self._check_ours(context, node, bucket)
        return self._observe(context, node, bucket)

    def _find_many(self, context: Context, nodes: list[Node]) -> dict[str, Observed | None]:
        found = self._listed(context)
        result: dict[str, Observed | None] = {}
        for n in nodes:
            bucket = found.get(n.properties["name"])
            if bucket is not None:
                self._check_ours(context, n, bucket)
            result[n.id] = None if bucket is None else self._observe(context, n, bucket)
        return result

    def _check_ours(self, context: Context, node: Node, bucket: Any) -> None:
        labels = bucket.labels
        if labels and not self.owned(context, labels):
            raise ProviderError(
                f"{node.id}: a Cloud Storage bucket named {bucket.name!r} exists and is not this "
                "environment's (bucket names are global): rename the app or the bucket"
            )

    # -- changing ------------------------------------------------------------------------------------

    def _create(self, context: Context, node: Node) -> Observed:
        client, properties = context.client, node.properties
        name = properties["name"]
        bucket = client.storage().bucket(name)
        bucket.iam_configuration.uniform_bucket_level_access_enabled = properties["uniform_access"]
        bucket.iam_configuration.public_access_prevention = properties["public_access_prevention"]
        bucket.versioning_enabled = properties["versioned"]
        bucket.labels = self.labels(context, node)
        try:
            storage(
                "buckets.insert",
                client.storage().create_bucket,
                bucket,
                project=client.project,
                location=properties["location"],
            )
        except Conflict:
            # taken: by a create of ours cut short (adopted, and finished below), or by someone else
            self._find(context, node)
        if properties["public"]:
            self._set_public(context, node, name, True)
        return self._read(context, node, name)  # type: ignore[return-value]

    def _set_public(self, context: Context, node: Node, name: str, public: bool) -> None:
        """Grants (or takes back) ``allUsers`` read access to the bucket's objects."""
        from google.api_core.iam import Policy

        bucket = context.client.storage().bucket(name)
        try:
            policy = storage("buckets.getIamPolicy", bucket.get_iam_policy, requested_policy_version=3)
        except NotFound:
            if not emulated(context):
                raise
            policy = Policy(version=3)  # fake-gcs-server has none: the binding is still sent, as asked
        bindings = [b for b in policy.bindings if b["role"] != PUBLIC_ROLE]
        viewers = next((b for b in policy.bindings if b["role"] == PUBLIC_ROLE), None)
        members = set(viewers["members"]) if viewers else set()
        members = members | {PUBLIC_MEMBER} if public else members - {PUBLIC_MEMBER}
        if members:
            bindings.append({"role": PUBLIC_ROLE, "members": members})
        policy.bindings = bindings
        try:
            storage("buckets.setIamPolicy", bucket.set_iam_policy, policy)
        except NotFound:
            if not emulated(context):
                raise

    def _update(self, context: Context, node: Node, provider_id: str, changes: Mapping[str, Any]) -> Observed:
        properties = node.properties
        bucket = storage("buckets.get", context.client.storage().get_bucket, provider_id)
        if "public" in changes and not properties["public"]:
            self._set_public(context, node, provider_id, False)  # before prevention refuses the change
        if changes.keys() & {"uniform_access", "public_access_prevention", "versioned"}:
            bucket.iam_configuration.uniform_bucket_level_access_enabled = properties["uniform_access"]
            bucket.iam_configuration.public_access_prevention = properties["public_access_prevention"]
            bucket.versioning_enabled = properties["versioned"]
            storage("buckets.patch", bucket.patch)
        if "public" in changes and properties["public"]:
            self._set_public(context, node, provider_id, True)
        return self._read(context, node, provider_id)  # type: ignore[return-value]

    def _delete(self, context: Context, node: Node, provider_id: str) -> None:
        client = context.client.storage()
        bucket = storage("buckets.get", client.get_bucket, provider_id)  # gone already: nothing to do
        # every version first: Cloud Storage deletes only empty buckets
        for blob in storage("objects.list", lambda: list(client.list_blobs(bucket, versions="true"))):
            with contextlib.suppress(NotFound):
                storage("objects.delete", bucket.delete_blob, blob.name, generation=blob.generation)
        storage("buckets.delete", bucket.delete)

    def inventory(self, context: Context) -> list[str]:
        """The environment's buckets: named with its prefix, and labelled as its own where labels are
        kept."""
        return sorted(
            name for name, b in self._listed(context).items() if not b.labels or self.owned(context, b.labels)
        )

    def runtime_entry(self, node: Node, observed: Observed) -> dict[str, Any] | None:
        return {
            "type": self.type,
            **observed.outputs,
            "public": node.properties["public"],
            "versioned": node.properties["versioned"],
        }


class BackendBucketType(GcpNodeType):
    """A Compute Engine backend bucket with Cloud CDN, in front of a public bucket; found by its name,
    listed by its description."""

    type = "gcp.objects.cdn"
    identity = frozenset({"name"})
    invariant = frozenset({"cdn"})

    def _description(self, context: Context) -> str:
        return f"skyrig {context.app}/{context.environment.name}"

    def _observe(self, node: Node, backend: Mapping[str, Any]) -> Observed:
        return self.observed(
            node,
            backend["name"],
            {
                "name": backend["name"],
                "bucket": backend.get("bucketName"),
                "cdn": bool(backend.get("enableCdn")),
            },
            {"backend_bucket": backend.get("selfLink")},
        )

    def _listed(self, context: Context) -> dict[str, Mapping[str, Any]]:
        client = context.client
        found = client.pages(client.api("compute").backendBuckets(), "list", "items", project=client.project)
        return {b["name"]: b for b in found if b.get("description") == self._description(context)}

    def _read(self, context: Context, node: Node, provider_id: str) -> Observed | None:
        client = context.client
        backend = client.execute(
            client.api("compute").backendBuckets().get(project=client.project, backendBucket=provider_id)
        )
        return self._observe(node, backend)

    def _read_many(self, context: Context, nodes: list[tuple[Node, str]]) -> dict[str, Observed | None]:
        found = self._listed(context)
        return {
            n.id: self._observe(n, found[pid]) if pid in found else self.read(context, n, pid)
            for n, pid in nodes
        }

    def _find(self, context: Context, node: Node) -> Observed | None:
        return self._read(context, node, node.properties["name"])

    def _find_many(self, context: Context, nodes: list[Node]) -> dict[str, Observed | None]:
        found = self._listed(context)
        return {
            n.id: self._observe(n, found[n.properties["name"]]) if n.properties["name"] in found else None
            for n in nodes
        }

    def _body(self, context: Context, node: Node) -> dict[str, Any]:
        return {
            "name": node.properties["name"],
            "bucketName": node.properties["bucket"],
            "description": self._description(context),
            "enableCdn": node.properties["cdn"],
            "cdnPolicy": {"cacheMode": "CACHE_ALL_STATIC"},
        }

    def _create(self, context: Context, node: Node) -> Observed:
        client = context.client
        body = self._body(context, node)
        # no requestId: Compute Engine would answer a create after a destroy with the first one's operation
        request = client.api("compute").backendBuckets().insert(project=client.project, body=body)
        with contextlib.suppress(Conflict):  # made by a create cut short after the call: adopted
            wait_operation(context, f"backend bucket {body['name']}", client.execute(request))
        return self._read(context, node, body["name"])  # type: ignore[return-value]

    def _update(self, context: Context, node: Node, provider_id: str, changes: Mapping[str, Any]) -> Observed:
        client = context.client
        body = self._body(context, node)
        request = (
            client.api("compute")
            .backendBuckets()
            .patch(project=client.project, backendBucket=provider_id, body=body)
        )
        wait_operation(context, f"backend bucket {provider_id}", client.execute(request))
        return self._read(context, node, provider_id)  # type: ignore[return-value]

    def _delete(self, context: Context, node: Node, provider_id: str) -> None:
        client = context.client
        request = (
            client.api("compute").backendBuckets().delete(project=client.project, backendBucket=provider_id)
        )
        wait_operation(context, f"deleting backend bucket {provider_id}", client.execute(request))

    def inventory(self, context: Context) -> list[str]:
        """The environment's backend buckets, by their description."""
        return sorted(self._listed(context))

    def runtime_entry(self, node: Node, observed: Observed) -> dict[str, Any] | None:
        return None


BUCKET = BucketType()
BACKEND_BUCKET = BackendBucketType()
TYPES = (BUCKET, BACKEND_BUCKET)


def expand(scope: Scope) -> list[Node]:
    """A bucket node per declared bucket, and a CDN backend bucket after each public one."""
    app, env, settings = scope.app, scope.environment.name, scope.settings
    project = settings.project or names.project_id(app, env)
    nodes = []
    for r in scope.of_kind("bucket"):
        name = names.bucket_name(project, app, env, r.name)
        properties = {
            "name": name,
            "location": settings.region,
            "versioned": r.versioned,
            "uniform_access": True,
            "public_access_prevention": "inherited" if r.public else "enforced",
            "public": r.public,
        }
        bucket_id = f"objects.bucket/{r.name}"
        nodes.append(scope.node(bucket_id, BUCKET.type, properties, (names.PROJECT_ID,), resource=r))
        if r.public:
            cdn = {"name": names.backend_bucket_name(app, env, r.name), "bucket": name, "cdn": True}
            nodes.append(scope.node(f"objects.cdn/{r.name}", BACKEND_BUCKET.type, cdn, (bucket_id,)))
    return nodes
