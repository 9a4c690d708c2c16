"""Compute Engine v1, FAKE (:mod:`skyrig_gcp.fake`): networks and load-balancing resources, generically.

Networks, subnetworks, global addresses, firewalls, backend buckets and services, URL maps, target HTTP(S)
proxies, forwarding rules, routers, SSL certificates: each insert, patch, update and delete is a
``compute#operation`` (global, regional or zonal, with ``wait``); resources get ``id``, ``selfLink``,
``kind``, ``creationTimestamp`` and a ``fingerprint`` where they have one. Checked as Compute Engine checks:
names (RFC 1035, 63 characters); every reference to another resource (``network``, ``urlMap``, ``target``,
``defaultService``, ...) names one that exists (404) and is not still being created (400 resourceNotReady);
a VPC network says whether its subnetworks are automatic (no legacy networks); subnetwork ranges are valid
and do not overlap in their network; addresses for VPC peering are INTERNAL with a prefix length and a
network; a stale or missing fingerprint on update is 412; a resource another one uses (or a Service
Networking connection uses) cannot be deleted (400 resourceInUseByAnotherResource).
"""

from __future__ import annotations

import ipaddress
import random
import re
import time
import uuid
from typing import Any

from skyrig_gcp.fake.apis.base import ApiHandler, Kind, Request
from skyrig_gcp.fake.errors import ApiError
from skyrig_gcp.fake.operations import Operation, now_rfc3339, render

SELF_LINK = "https://www.googleapis.com/compute/v1/"
_NAME = r"[a-z]([-a-z0-9]{0,61}[a-z0-9])?"
_NAME_MESSAGE = (
    "Invalid value for field 'resource.name': '{id}'. Must be a match of regex "
    "'(?:[a-z](?:[-a-z0-9]{{0,61}}[a-z0-9])?)'"
)
COLLECTIONS = {
    "networks": "Network",
    "subnetworks": "Subnetwork",
    "addresses": "Address",
    "firewalls": "Firewall",
    "backendBuckets": "BackendBucket",
    "backendServices": "BackendService",
    "urlMaps": "UrlMap",
    "targetHttpProxies": "TargetHttpProxy",
    "targetHttpsProxies": "TargetHttpsProxy",
    "forwardingRules": "ForwardingRule",
    "sslCertificates": "SslCertificate",
    "routers": "Router",
    "routes": "Route",
}
_REFERENCE = re.compile(
    r"^(?:https?://[^/]+/compute/(?:v1|beta|alpha)/)?"
    r"(?P<key>projects/[^/]+/(?:global|regions/[^/]+|zones/[^/]+)/(?P<collection>[A-Za-z]+)/[^/]+)$"
)
_RELATIVE = re.compile(r"^(?P<scope>global|regions/[^/]+|zones/[^/]+)/(?P<collection>[A-Za-z]+)/[^/]+$")


def compute_error(status: str, message: str, reason: str, http: int | None = None) -> ApiError:
    """Compute Engine's errors: a message and a camelCase reason."""
    return ApiError(status, message, reason=reason, http=http)


class Compute(ApiHandler):
    """Compute Engine: generic resources with Compute Engine's operations and references."""

    api = "compute"
    version = "v1"
    lro = "compute"
    full_names = False
    merge_patch = True
    aliases = False
    etag_checks = False
    default_page_size = 500
    kinds = {
        collection: Kind(collection, schema, id_pattern=_NAME, id_message=_NAME_MESSAGE)
        for collection, schema in COLLECTIONS.items()
    }

    def __init__(self, fake: Any) -> None:
        super().__init__(fake)
        self.request_ids: dict[str, tuple[str, str]] = {}

    def reset(self) -> None:
        self.request_ids.clear()

    def handle(self, req: Request) -> tuple[int, dict[str, Any]]:
        """As Compute Engine does, a request repeated with the same ``requestId`` answers the first one's
        operation instead of doing it again (the id is a UUID; a different request with it is a 400)."""
        request_id = req.query.get("requestId")
        if not request_id:
            return super().handle(req)
        try:
            uuid.UUID(str(request_id))
        except ValueError:
            raise compute_error(
                "INVALID_ARGUMENT",
                f"Invalid value for field 'requestId': '{request_id}'. Must be a UUID.",
                "invalid",
            ) from None
        seen = self.request_ids.get(request_id)
        if seen is not None:
            op_key, method_id = seen
            op = self.fake.operations.get((self.api, op_key))
            if method_id != req.method.id or op is None:
                raise compute_error(
                    "INVALID_ARGUMENT",
                    f"The requestId '{request_id}' was used for another request.",
                    "invalid",
                )
            return 200, render(op)
        status, answer = super().handle(req)
        if answer.get("kind") == "compute#operation":
            self.request_ids[request_id] = (self._op_key(answer), req.method.id)
        return status, answer

    @staticmethod
    def _op_key(op: dict[str, Any]) -> str:
        return op["selfLink"].removeprefix(SELF_LINK)

    def body_root(self, method: Any) -> str:
        return "resource"

    def missing(self, key: str, kind: Kind | None = None) -> ApiError:
        return compute_error("NOT_FOUND", f"The resource '{key}' was not found", "notFound")

    def exists(self, key: str, kind: Kind) -> ApiError:
        return compute_error("ALREADY_EXISTS", f"The resource '{key}' already exists", "alreadyExists")

    def check_id(self, kind: Kind, ident: str) -> None:
        if not ident:
            raise compute_error(
                "INVALID_ARGUMENT", "Required field 'resource.name' not specified", "required"
            )
        if not re.fullmatch(_NAME, ident):
            raise compute_error("INVALID_ARGUMENT", _NAME_MESSAGE.format(id=ident), "invalid")

    # -- references --------------------------------------------------------------------------------------

    def reference(self, value: str, project: str) -> str | None:
        """The stored-resource key a string names, if it names a resource of a stored collection."""
        match = _REFERENCE.match(value)
        if match and match.group("collection") in COLLECTIONS:
            return self.canonical(match.group("key"))
        match = _RELATIVE.match(value)
        if match and match.group("collection") in COLLECTIONS:
            return self.canonical(f"projects/{project}/{value}")
        return None

    def references(self, resource: Any, project: str) -> list[str]:
        """Every stored-resource key a resource's fields name."""
        found: list[str] = []
        if isinstance(resource, dict):
            for name, value in resource.items():
                if name in ("selfLink", "name", "subnetworks", "peerings", "users", "region", "zone"):
                    continue
                found.extend(self.references(value, project))
        elif isinstance(resource, list):
            for value in resource:
                found.extend(self.references(value, project))
        elif isinstance(resource, str):
            key = self.reference(resource, project)
            if key is not None:
                found.append(key)
        return found

    def _pending(self, key: str) -> bool:
        return any(
            api == self.api and not op.done and op.target == key and op.verb == "insert"
            for (api, _), op in self.fake.operations.items()
        )

    # -- rules -------------------------------------------------------------------------------------------

    def validate(
        self, req: Request, kind: Kind, key: str, resource: dict[str, Any], old: dict[str, Any] | None
    ) -> None:
        project = key.split("/")[1]
        for ref in self.references(resource, project):
            if ref not in self.store:
                raise self.missing(ref)
            if self._pending(ref):
                raise compute_error(
                    "INVALID_ARGUMENT", f"The resource '{ref}' is not ready", "resourceNotReady"
                )
        if old is not None:
            self._check_fingerprint(req, kind, key, old)
        collection = kind.collection
        if collection == "networks" and old is None and "autoCreateSubnetworks" not in resource:
            raise compute_error(
                "INVALID_ARGUMENT",
                "Invalid value for field 'resource.autoCreateSubnetworks': ''. Legacy networks can no "
                "longer be created: set autoCreateSubnetworks.",
                "invalid",
            )
        if collection == "subnetworks":
            self._check_subnetwork(key, resource, old)
        if collection == "addresses" and resource.get("purpose") == "VPC_PEERING":
            if resource.get("addressType") != "INTERNAL":
                raise compute_error(
                    "INVALID_ARGUMENT", "An address with purpose VPC_PEERING must be INTERNAL.", "invalid"
                )
            if not resource.get("network") or not resource.get("prefixLength"):
                raise compute_error(
                    "INVALID_ARGUMENT",
                    "An address with purpose VPC_PEERING needs a network and a prefix length.",
                    "invalid",
                )
            if not 8 <= int(resource["prefixLength"]) <= 29:
                raise compute_error(
                    "INVALID_ARGUMENT",
                    "Invalid value for field 'resource.prefixLength': must be 8 to 29.",
                    "invalid",
                )
        if collection == "firewalls" and not (resource.get("allowed") or resource.get("denied")):
            raise compute_error(
                "INVALID_ARGUMENT", "A firewall rule needs allowed or denied protocols.", "invalid"
            )

    def _check_fingerprint(self, req: Request, kind: Kind, key: str, old: dict[str, Any]) -> None:
        prop = self.discovery.schemas.get(kind.schema, {}).get("properties", {}).get("fingerprint")
        if prop is None:
            return
        sent = (req.raw_body or {}).get("fingerprint") if isinstance(req.raw_body, dict) else None
        required = "must be provided in order to update" in " ".join(prop.get("description", "").split())
        if (sent is None and required) or (sent is not None and sent != old.get("fingerprint")):
            raise compute_error(
                "FAILED_PRECONDITION",
                f"Invalid fingerprint: the fingerprint of '{key}' is stale or missing; get the "
                "resource and retry.",
                "conditionNotMet",
                http=412,
            )

    def _check_subnetwork(self, key: str, resource: dict[str, Any], old: dict[str, Any] | None) -> None:
        cidr = resource.get("ipCidrRange")
        if not cidr:
            raise compute_error(
                "INVALID_ARGUMENT", "Required field 'resource.ipCidrRange' not specified", "required"
            )
        if not resource.get("network"):
            raise compute_error(
                "INVALID_ARGUMENT", "Required field 'resource.network' not specified", "required"
            )
        try:
            mine = ipaddress.ip_network(cidr)
        except ValueError:
            raise compute_error(
                "INVALID_ARGUMENT",
                f"Invalid value for field 'resource.ipCidrRange': '{cidr}'. Invalid IPCidrRange.",
                "invalid",
            ) from None
        if old is not None and old.get("ipCidrRange") != cidr:
            raise compute_error(
                "INVALID_ARGUMENT",
                "The ipCidrRange of a subnetwork is changed with expandIpCidrRange only.",
                "invalid",
            )
        network = self.reference(resource["network"], key.split("/")[1])
        for other_key, other in self.store.items():
            if other_key == key or "/subnetworks/" not in other_key:
                continue
            if self.reference(other.get("network", ""), other_key.split("/")[1]) != network:
                continue
            if mine.overlaps(ipaddress.ip_network(other["ipCidrRange"])):
                raise compute_error(
                    "INVALID_ARGUMENT",
                    f"Invalid IPCidrRange: {cidr} conflicts with existing subnetwork '{other['name']}' in "
                    f"region '{other_key.split('/')[3]}'.",
                    "invalid",
                )

    def check_delete(self, req: Request, kind: Kind, key: str, resource: dict[str, Any]) -> None:
        for other_key, other in self.store.items():
            if other_key == key:
                continue
            if kind.collection == "networks" and other_key.startswith(key + "/"):
                continue
            if key in self.references(other, other_key.split("/")[1]):
                raise compute_error(
                    "INVALID_ARGUMENT",
                    f"The {_label(kind)} resource '{key}' is already being used by '{other_key}'",
                    "resourceInUseByAnotherResource",
                )
        user = self.fake.handlers["servicenetworking"].user_of(key, resource)  # type: ignore[attr-defined]
        if user is not None:
            raise compute_error(
                "INVALID_ARGUMENT",
                f"The {_label(kind)} resource '{key}' is already being used by '{user}'",
                "resourceInUseByAnotherResource",
            )

    # -- outputs -----------------------------------------------------------------------------------------

    def prepare(self, req: Request | None, kind: Kind, key: str, resource: dict[str, Any]) -> None:
        props = self.discovery.schemas.get(kind.schema, {}).get("properties", {})
        resource["name"] = key.rsplit("/", 1)[-1]
        resource["id"] = str(random.randrange(10**18, 10**19))
        resource["selfLink"] = f"{SELF_LINK}{key}"
        resource["creationTimestamp"] = now_rfc3339()
        if "kind" in props:
            resource["kind"] = props["kind"].get(
                "default", f"compute#{kind.schema[0].lower()}{kind.schema[1:]}"
            )
        if "fingerprint" in props:
            resource["fingerprint"] = _fingerprint()
        parts = key.split("/")
        if parts[2] == "regions" and "region" in props:
            resource["region"] = f"{SELF_LINK}projects/{parts[1]}/regions/{parts[3]}"
        for name, value in list(resource.items()):
            if isinstance(value, str):
                ref = self.reference(value, parts[1])
                if ref is not None and name not in ("name", "selfLink"):
                    resource[name] = f"{SELF_LINK}{ref}"
        if kind.collection == "networks":
            resource.setdefault("routingConfig", {"routingMode": "REGIONAL"})
            resource.setdefault("mtu", 1460)
            resource.setdefault("networkFirewallPolicyEnforcementOrder", "AFTER_CLASSIC_FIREWALL")
        if kind.collection == "subnetworks":
            network = ipaddress.ip_network(resource["ipCidrRange"])
            resource["gatewayAddress"] = str(network.network_address + 1)
            resource.setdefault("privateIpGoogleAccess", False)
            resource.setdefault("stackType", "IPV4_ONLY")
        if kind.collection == "addresses":
            resource.setdefault("addressType", "EXTERNAL")
            resource.setdefault("status", "RESERVED")
            if "address" not in resource:
                octet = random.randrange(16, 250)
                resource["address"] = (
                    f"10.{octet}.0.0" if resource.get("purpose") == "VPC_PEERING" else f"34.{octet}.1.2"
                )
        if kind.collection == "firewalls":
            resource.setdefault("direction", "INGRESS")
            resource.setdefault("priority", 1000)
            resource.setdefault("disabled", False)
            resource.setdefault("network", f"{SELF_LINK}projects/{parts[1]}/global/networks/default")
        if kind.collection == "forwardingRules":
            resource.setdefault("loadBalancingScheme", "EXTERNAL")
            resource.setdefault("IPProtocol", "TCP")
            if "IPAddress" not in resource:
                resource["IPAddress"] = f"34.{random.randrange(16, 250)}.2.3"

    def touch(self, kind: Kind, resource: dict[str, Any]) -> None:
        if "fingerprint" in resource:
            resource["fingerprint"] = _fingerprint()

    def on_ready(self, kind: Kind, key: str, resource: dict[str, Any]) -> None:
        if kind.collection == "subnetworks":
            network = self.reference(resource["network"], key.split("/")[1])
            owner = self.store.get(network or "")
            if owner is not None:
                link = f"{SELF_LINK}{key}"
                if link not in owner.setdefault("subnetworks", []):
                    owner["subnetworks"].append(link)

    def remove(self, key: str) -> None:
        if "/subnetworks/" in key:
            link = f"{SELF_LINK}{key}"
            for resource in self.store.values():
                if link in resource.get("subnetworks", []):
                    resource["subnetworks"].remove(link)
        super().remove(key)

    def list_body(
        self, req: Request, kind: Kind, collection: str, items: list[dict[str, Any]], token: str | None
    ) -> dict[str, Any]:
        body: dict[str, Any] = {
            "kind": f"compute#{kind.schema[0].lower()}{kind.schema[1:]}List",
            "id": collection,
            "selfLink": f"{SELF_LINK}{collection}",
        }
        if items:
            body["items"] = items
        if token:
            body["nextPageToken"] = token
        return body

    def generic_aggregatedList(self, req: Request) -> dict[str, Any]:
        """Every scope's resources of a collection (``projects/p/aggregated/subnetworks``)."""
        parts = self.path_key(req).split("/")
        project, collection = parts[1], parts[3]
        if parts[2] != "aggregated" or collection not in self.kinds:
            raise ApiError("UNIMPLEMENTED", f"The fake does not implement {req.method.id}.")
        kind = self.kinds[collection]
        prefix = self.canonical(f"projects/{project}") + "/"
        items = [
            (key, resource)
            for key, resource in sorted(self.store.items())
            if key.startswith(prefix) and key.split("/")[-2] == collection
        ]
        items = self.filter_items(req, items)
        page, token = self.paginate(req, items)
        scopes: dict[str, dict[str, Any]] = {}
        for key, resource in page:
            bits = key.split("/")
            scope = "global" if bits[2] == "global" else f"{bits[2]}/{bits[3]}"
            scopes.setdefault(scope, {}).setdefault(collection, []).append(self.present(kind, key, resource))
        body: dict[str, Any] = {
            "kind": f"compute#{_label(kind)}AggregatedList",
            "id": f"projects/{project}/aggregated/{collection}",
            "items": scopes,
            "selfLink": f"{SELF_LINK}projects/{project}/aggregated/{collection}",
        }
        if token:
            body["nextPageToken"] = token
        return body

    # -- custom verbs ------------------------------------------------------------------------------------

    def do_setUrlMap(self, req: Request) -> dict[str, Any]:
        """Points a target HTTP(S) proxy at another URL map."""
        body = self.body(req)
        path = self.path_key(req).removesuffix("/setUrlMap")
        parts = path.split("/")
        key = f"projects/{parts[1]}/global/{parts[2]}/{parts[3]}" if parts[2] != "global" else path
        proxy = self.lookup(key)
        ref = self.reference(body.get("urlMap", ""), parts[1])
        if ref is None or ref not in self.store:
            raise self.missing(ref or body.get("urlMap", ""))
        proxy["urlMap"] = f"{SELF_LINK}{ref}"
        proxy["fingerprint"] = _fingerprint()
        return self.start_operation(req, "setUrlMap", key, self.kinds[parts[-2]], lambda: None)

    # -- operations --------------------------------------------------------------------------------------

    def start_operation(
        self,
        req: Request | None,
        verb: str,
        target: str,
        kind: Kind | None,
        complete: Any,
        *,
        delay: float | None = None,
    ) -> dict[str, Any]:
        parts = target.split("/")
        scope = "/".join(parts[:3]) if parts[2] == "global" else "/".join(parts[:4])
        name = (
            f"operation-{int(time.time() * 1000)}-{random.getrandbits(48):012x}-{random.getrandbits(32):08x}"
        )
        key = f"{scope}/operations/{name}"
        extra: dict[str, Any] = {
            "id": str(random.randrange(10**18, 10**19)),
            "targetLink": f"{SELF_LINK}{target}",
            "targetId": (self.store.get(target) or {}).get("id", "0"),
            "selfLink": f"{SELF_LINK}{key}",
        }
        if parts[2] in ("regions", "zones"):
            extra[parts[2][:-1]] = f"{SELF_LINK}{'/'.join(parts[:4])}"
        op = Operation(
            api=self.api,
            style="compute",
            key=key,
            name=name,
            verb={
                "CREATE": "insert",
                "UPDATE": "patch" if req and req.http_method == "PATCH" else "update",
                "DELETE": "delete",
            }.get(verb, verb),
            target=target,
            due=time.time() + (self.fake.delay_for(self.api) if delay is None else delay),
            complete=complete,
            extra=extra,
        )
        return self.register(op)

    def wait_timeout(self) -> float:
        return 10.0

    def list_operations(self, req: Request, collection: str) -> dict[str, Any]:

        prefix = collection + "/"
        ops = [
            op
            for (api, key), op in sorted(self.fake.operations.items())
            if api == self.api and key.startswith(prefix)
        ]
        page, token = self.paginate(req, ops)
        body: dict[str, Any] = {"kind": "compute#operationList", "id": collection}
        if page:
            body["items"] = [render(op) for op in page]
        if token:
            body["nextPageToken"] = token
        return body


def _label(kind: Kind) -> str:
    return kind.schema[0].lower() + kind.schema[1:]


def _fingerprint() -> str:
    import base64
    import os

    return base64.b64encode(os.urandom(8)).decode()
