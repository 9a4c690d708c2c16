"""Object storage: a Cloud Storage bucket per bucket (uniform bucket-level access, public access prevention
enforced unless the bucket is declared public, versioned when declared, labelled), and for each public
bucket a Compute Engine backend bucket with Cloud CDN enabled, served by the environment's one external
Application Load Balancer (as AWS serves a public bucket through CloudFront): a global address, a URL map
routing ``/BUCKET/*`` to each public bucket's backend bucket, a target HTTP proxy and a global forwarding
rule on port 80. A public bucket's public URL is ``http://ADDRESS/BUCKET``.

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
from skyrig_gcp.nodes import GcpNodeType, NamedNodeType

PUBLIC_ROLE = "roles/storage.objectViewer"
PUBLIC_MEMBER = "allUsers"
GOOGLE_STORAGE = "https://storage.googleapis.com"
COMPUTE = "https://www.googleapis.com/compute/v1"
CDN_ADDRESS_ID = "objects.cdn_address"
CDN_URL_MAP_ID = "objects.cdn_url_map"
CDN_PROXY_ID = "objects.cdn_proxy"
CDN_RULE_ID = "objects.cdn_rule"

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

    def _observe(self, context: Context, node: Node, bucket: Any, cdn: str | None = None) -> Observed:
        """``bucket`` (a google-cloud-storage Bucket with its properties) in the node's terms; ``cdn``: the
        load balancer's base URL, if the bucket is public and it has its address."""
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
        outputs = self._outputs(context, bucket.name)
        if cdn is not None and node.properties["public"]:
            outputs["public_url"] = f"{cdn}/{node.id.partition('/')[2]}"
        return self.observed(node, bucket.name, properties, outputs)

    def _cdn(self, context: Context, nodes: list[Node]) -> str | None:
        """``http://ADDRESS`` of the load balancer public buckets are served by (made before them), if any
        of ``nodes`` is public and the address exists: one call."""
        if not any(n.properties["public"] for n in nodes):
            return None
        client = context.client
        name = names.cdn_name(context.app, context.environment.name, "ip")
        try:
            address = client.execute(
                client.api("compute").globalAddresses().get(project=client.project, address=name)
            )
        except NotFound:  # not made yet, or deleted outside skyrig: Cloud Storage's URL meanwhile
            return None
        return f"http://{address['address']}" if address.get("address") else None

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
            "storage_url": f"{(endpoint or GOOGLE_STORAGE).rstrip('/')}/{name}",
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
        return self._observe(context, node, bucket, self._cdn(context, [node]))

    def _read_many(self, context: Context, nodes: list[tuple[Node, str]]) -> dict[str, Observed | None]:
        found = self._listed(context)
        cdn = self._cdn(context, [n for n, pid in nodes if pid in found])
        return {
            n.id: self._observe(context, n, found[pid], cdn) if pid in found else self.read(context, n, pid)
            for n, pid in nodes
        }

    def _find(self, context: Context, node: Node) -> Observed | None:
        name = node.properties["name"]
        bucket = storage("buckets.get", context.client.storage().get_bucket, name)
        self._check_ours(context, node, bucket)
        return self._observe(context, node, bucket, self._cdn(context, [node]))

    def _find_many(self, context: Context, nodes: list[Node]) -> dict[str, Observed | None]:
        found = self._listed(context)
        cdn = self._cdn(context, [n for n in nodes if n.properties["name"] in found])
        result: dict[str, Observed | None] = {}
        for n in nodes:
            bucket = found.get(n.properties["name"])
            if bucket is not None:
                self._check_ours(context, n, bucket)
            result[n.id] = None if bucket is None else self._observe(context, n, bucket, cdn)
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


class _LoadBalancerPart(NamedNodeType):
    """A global Compute Engine resource of the CDN load balancer (its backend buckets too): found by its
    name, listed (one call) by its description, made and deleted through a global operation."""

    collection: str
    """The google-api-python-client collection (``globalAddresses``, ``urlMaps``, ...)."""
    parameter: str
    """The parameter naming one resource of it (``address``, ``urlMap``, ...)."""
    what: str
    """Its name in progress messages."""
    identity = frozenset({"name"})

    def _description(self, context: Context) -> str:
        return f"skyrig {context.app}/{context.environment.name}"

    def _resources(self, context: Context) -> Any:
        return getattr(context.client.api("compute"), self.collection)()

    def _observe(self, node: Node, found: Mapping[str, Any]) -> Observed:
        raise NotImplementedError

    def _body(self, context: Context, node: Node) -> dict[str, Any]:
        raise NotImplementedError

    def _listed(self, context: Context) -> dict[str, Mapping[str, Any]]:
        client = context.client
        found = client.pages(self._resources(context), "list", "items", project=client.project)
        return {r["name"]: r for r in found if r.get("description") == self._description(context)}

    def _get(self, context: Context, name: str) -> Mapping[str, Any]:
        client = context.client
        return client.execute(  # type: ignore[no-any-return]
            self._resources(context).get(project=client.project, **{self.parameter: name})
        )

    def _read(self, context: Context, node: Node, provider_id: str) -> Observed | None:
        return self._observe(node, self._get(context, provider_id))

    def _read_many(self, context: Context, nodes: list[tuple[Node, str]]) -> dict[str, Observed | None]:
        found = self._listed(context)
        return {
            n.id: self._observe(n, found[pid]) if pid in found else self.read(context, n, pid)
            for n, pid in nodes
        }

    def _find_many(self, context: Context, nodes: list[Node]) -> dict[str, Observed | None]:
        # one list call, which finds the environment's own only: a name not listed is not looked up
        found = self._listed(context)
        return {
            n.id: self._observe(n, found[n.properties["name"]]) if n.properties["name"] in found else None
            for n in nodes
        }

    def _full_body(self, context: Context, node: Node) -> dict[str, Any]:
        """The resource as made: its ``_body``, named, and described as the environment's."""
        return {
            **self._body(context, node),
            "name": node.properties["name"],
            "description": self._description(context),
        }

    def _create(self, context: Context, node: Node) -> Observed:
        client = context.client
        body = self._full_body(context, node)
        request = self._resources(context).insert(project=client.project, body=body)
        with contextlib.suppress(Conflict):  # made by a create cut short after the call: adopted
            wait_operation(context, f"{self.what} {body['name']}", client.execute(request))
        return self._read(context, node, body["name"])  # type: ignore[return-value]

    def _update(self, context: Context, node: Node, provider_id: str, changes: Mapping[str, Any]) -> Observed:
        return self._read(context, node, provider_id)  # type: ignore[return-value]

    def _delete(self, context: Context, node: Node, provider_id: str) -> None:
        client = context.client
        request = self._resources(context).delete(project=client.project, **{self.parameter: provider_id})
        wait_operation(context, f"deleting {self.what} {provider_id}", client.execute(request))

    def inventory(self, context: Context) -> list[str]:
        """The environment's resources of this collection, by their description."""
        return sorted(self._listed(context))


class BackendBucketType(_LoadBalancerPart):
    """A Compute Engine backend bucket with Cloud CDN, in front of a public bucket; found by its name,
    listed by its description."""

    type = "gcp.objects.cdn"
    invariant = frozenset({"cdn"})
    collection, parameter, what = "backendBuckets", "backendBucket", "backend bucket"

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

    def _body(self, context: Context, node: Node) -> dict[str, Any]:
        return {
            "bucketName": node.properties["bucket"],
            "enableCdn": node.properties["cdn"],
            "cdnPolicy": {"cacheMode": "CACHE_ALL_STATIC"},
        }

    def _update(self, context: Context, node: Node, provider_id: str, changes: Mapping[str, Any]) -> Observed:
        client = context.client
        request = self._resources(context).patch(
            project=client.project, backendBucket=provider_id, body=self._full_body(context, node)
        )
        wait_operation(context, f"backend bucket {provider_id}", client.execute(request))
        return self._read(context, node, provider_id)  # type: ignore[return-value]

    def runtime_entry(self, node: Node, observed: Observed) -> dict[str, Any] | None:
        return None


def _link(project: str, collection: str, name: str) -> str:
    return f"{COMPUTE}/projects/{project}/global/{collection}/{name}"


def _name_of(link: str | None) -> str | None:
    """The resource name a Compute Engine URL (full or partial) ends with."""
    return link.rpartition("/")[2] if link else None


class CdnAddressType(_LoadBalancerPart):
    """The load balancer's global external IPv4 address (reserved: it outlives a forwarding rule's
    replacement, so public URLs keep working)."""

    type = "gcp.objects.cdn_address"
    replace_on = frozenset({"version"})
    collection, parameter, what = "globalAddresses", "address", "CDN address"

    def _observe(self, node: Node, found: Mapping[str, Any]) -> Observed:
        return self.observed(
            node,
            found["name"],
            {"name": found["name"], "version": found.get("ipVersion", "IPV4")},
            {"address": found.get("address")},
        )

    def _body(self, context: Context, node: Node) -> dict[str, Any]:
        return {"addressType": "EXTERNAL", "ipVersion": node.properties["version"]}


class CdnUrlMapType(_LoadBalancerPart):
    """The URL map: ``/BUCKET/*`` to each public bucket's backend bucket, the path prefix taken off (a
    backend bucket looks the rest of the path up as the object's name); anything else to the first."""

    type = "gcp.objects.cdn_url_map"
    invariant = frozenset({"default", "routes"})
    collection, parameter, what = "urlMaps", "urlMap", "CDN URL map"
    MATCHER = "buckets"

    def _observe(self, node: Node, found: Mapping[str, Any]) -> Observed:
        matchers = found.get("pathMatchers", [])
        rules = matchers[0].get("pathRules", []) if matchers else []
        routes = sorted(
            (
                {"path": path, "backend": _name_of(rule.get("service"))}
                for rule in rules
                if rule.get("routeAction", {}).get("urlRewrite", {}).get("pathPrefixRewrite") == "/"
                for path in rule.get("paths", [])
            ),
            key=lambda route: str(route["path"]),
        )
        return self.observed(
            node,
            found["name"],
            {"name": found["name"], "default": _name_of(found.get("defaultService")), "routes": routes},
            {"url_map": found.get("selfLink")},
        )

    def _body(self, context: Context, node: Node) -> dict[str, Any]:
        project = context.client.project
        default = _link(project, "backendBuckets", node.properties["default"])
        return {
            "defaultService": default,
            "hostRules": [{"hosts": ["*"], "pathMatcher": self.MATCHER}],
            "pathMatchers": [
                {
                    "name": self.MATCHER,
                    "defaultService": default,
                    "pathRules": [
                        {
                            "paths": [route["path"]],
                            "service": _link(project, "backendBuckets", route["backend"]),
                            "routeAction": {"urlRewrite": {"pathPrefixRewrite": "/"}},
                        }
                        for route in node.properties["routes"]
                    ],
                }
            ],
        }

    def _update(self, context: Context, node: Node, provider_id: str, changes: Mapping[str, Any]) -> Observed:
        client = context.client
        # the URL map's fingerprint, which an update must send (a stale one is refused: 412)
        fingerprint = self._get(context, provider_id).get("fingerprint")
        body = {**self._body(context, node), "fingerprint": fingerprint}
        request = self._resources(context).patch(project=client.project, urlMap=provider_id, body=body)
        wait_operation(context, f"{self.what} {provider_id}", client.execute(request))
        return self._read(context, node, provider_id)  # type: ignore[return-value]


class CdnProxyType(_LoadBalancerPart):
    """The target HTTP proxy in front of the URL map (HTTP only: see docs/providers/gcp.md)."""

    type = "gcp.objects.cdn_proxy"
    invariant = frozenset({"url_map"})
    collection, parameter, what = "targetHttpProxies", "targetHttpProxy", "CDN target HTTP proxy"

    def _observe(self, node: Node, found: Mapping[str, Any]) -> Observed:
        return self.observed(
            node,
            found["name"],
            {"name": found["name"], "url_map": _name_of(found.get("urlMap"))},
            {"proxy": found.get("selfLink")},
        )

    def _body(self, context: Context, node: Node) -> dict[str, Any]:
        return {"urlMap": _link(context.client.project, "urlMaps", node.properties["url_map"])}

    def _update(self, context: Context, node: Node, provider_id: str, changes: Mapping[str, Any]) -> Observed:
        client = context.client
        body = {"urlMap": _link(client.project, "urlMaps", node.properties["url_map"])}
        request = self._resources(context).setUrlMap(
            project=client.project, targetHttpProxy=provider_id, body=body
        )
        wait_operation(context, f"{self.what} {provider_id}", client.execute(request))
        return self._read(context, node, provider_id)  # type: ignore[return-value]


class CdnRuleType(_LoadBalancerPart):
    """The global forwarding rule: TCP port 80 of the address to the proxy, on the global external
    Application Load Balancer (``EXTERNAL_MANAGED``)."""

    type = "gcp.objects.cdn_rule"
    replace_on = frozenset({"proxy", "address", "port", "scheme"})
    collection, parameter, what = "globalForwardingRules", "forwardingRule", "CDN forwarding rule"

    def _observe(self, node: Node, found: Mapping[str, Any]) -> Observed:
        properties = {
            "name": found["name"],
            "proxy": _name_of(found.get("target")),
            "port": found.get("portRange", "").partition("-")[0],
            "scheme": found.get("loadBalancingScheme"),
        }
        ip = str(found.get("IPAddress", ""))
        if "/" in ip:  # named by its address resource; Compute Engine itself answers the IP: taken as asked
            properties["address"] = _name_of(ip)
        return self.observed(node, found["name"], properties, {"ip": ip})

    def _body(self, context: Context, node: Node) -> dict[str, Any]:
        project = context.client.project
        return {
            "IPAddress": _link(project, "addresses", node.properties["address"]),
            "IPProtocol": "TCP",
            "portRange": node.properties["port"],
            "target": _link(project, "targetHttpProxies", node.properties["proxy"]),
            "loadBalancingScheme": node.properties["scheme"],
        }


BUCKET = BucketType()
BACKEND_BUCKET = BackendBucketType()
CDN_ADDRESS = CdnAddressType()
CDN_URL_MAP = CdnUrlMapType()
CDN_PROXY = CdnProxyType()
CDN_RULE = CdnRuleType()
TYPES = (BUCKET, BACKEND_BUCKET, CDN_ADDRESS, CDN_URL_MAP, CDN_PROXY, CDN_RULE)


def expand(scope: Scope) -> list[Node]:
    """A bucket node per declared bucket, a CDN backend bucket after each public one, and where any is
    public the load balancer serving them: its address first (public buckets read their URL from it),
    then the URL map after the backend buckets, the proxy, and the forwarding rule."""
    app, env, settings = scope.app, scope.environment.name, scope.settings
    project = settings.project or names.project_id(app, env)
    public = sorted(r.name for r in scope.of_kind("bucket") if r.public)
    nodes = []
    if public:
        address = {"name": names.cdn_name(app, env, "ip"), "version": "IPV4"}
        nodes.append(scope.node(CDN_ADDRESS_ID, CDN_ADDRESS.type, address, (names.PROJECT_ID,)))
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
        after = (names.PROJECT_ID, CDN_ADDRESS_ID) if r.public else (names.PROJECT_ID,)
        nodes.append(scope.node(bucket_id, BUCKET.type, properties, after, resource=r))
        if r.public:
            cdn = {"name": names.backend_bucket_name(app, env, r.name), "bucket": name, "cdn": True}
            nodes.append(scope.node(f"objects.cdn/{r.name}", BACKEND_BUCKET.type, cdn, (bucket_id,)))
    if public:
        url_map = {
            "name": names.cdn_name(app, env, "map"),
            "default": names.backend_bucket_name(app, env, public[0]),
            "routes": [
                {"path": f"/{b}/*", "backend": names.backend_bucket_name(app, env, b)} for b in public
            ],
        }
        proxy = {"name": names.cdn_name(app, env, "proxy"), "url_map": url_map["name"]}
        rule = {
            "name": names.cdn_name(app, env, "rule"),
            "proxy": proxy["name"],
            "address": names.cdn_name(app, env, "ip"),
            "port": "80",
            "scheme": "EXTERNAL_MANAGED",
        }
        backends = tuple(f"objects.cdn/{b}" for b in public)
        nodes += [
            scope.node(CDN_URL_MAP_ID, CDN_URL_MAP.type, url_map, backends),
            scope.node(CDN_PROXY_ID, CDN_PROXY.type, proxy, (CDN_URL_MAP_ID,)),
            scope.node(CDN_RULE_ID, CDN_RULE.type, rule, (CDN_PROXY_ID, CDN_ADDRESS_ID)),
        ]
    return nodes
