""":class:`FakeAzure`: the FAKE Azure Resource Manager and Key Vault secrets data plane, for tests.

Everything is held under one lock (requests are answered one at a time); long-running operations finish
when their delay has passed, checked at each request (:meth:`FakeAzure.settle`).
"""

from __future__ import annotations

import copy
import json
import tempfile
import threading
import time
import traceback
import urllib.parse
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import trustme

from skyrig_azure.fake import resources as _resources  # noqa: F401  (registers the types)
from skyrig_azure.fake.calls import Call, CallLog
from skyrig_azure.fake.errors import ArmError, group_not_found, not_found, parent_not_found
from skyrig_azure.fake.registry import REGISTRY, Context, ResourceType, lookup, namespaces
from skyrig_azure.fake.schema import load, strip_readonly, validate
from skyrig_azure.fake.server import Listener
from skyrig_azure.fake.vaults import VaultData

GROUP_TYPE = "Microsoft.Resources/resourceGroups"
GENERIC_TYPE = "Microsoft.Resources/resources"


@dataclass
class Entry:
    """One stored resource: its JSON (as answered, inline children apart), type, parent and operation."""

    resource: dict[str, Any]
    type: ResourceType
    parent: str
    subscription: str
    group: str | None
    operation: str | None = None


@dataclass
class Operation:
    """A long-running operation: what it does to which resource, and when it is due."""

    id: str
    key: str
    kind: str
    due: float
    type: str
    started: float = field(default_factory=time.time)
    status: str = "InProgress"
    finished: float | None = None
    error: ArmError | None = None


@dataclass
class Route:
    """Where a request goes: a resource, a collection of a type, a POST action or an operation."""

    kind: str
    type_name: str
    path: str
    parent: str
    scope: str
    subscription: str | None
    group: str | None
    names: tuple[str, ...] = ()
    action: str | None = None
    rtype: ResourceType | None = None


@dataclass
class _Injection:
    status: int
    code: str
    message: str
    type: str | None
    method: str | None
    path: str | None
    times: int
    retry_after: float | None


@dataclass
class _OperationFailure:
    type: str | None
    kind: str | None
    error: ArmError
    times: int


class FakeAzure:
    """The FAKE ARM on one HTTPS port of 127.0.0.1 (and one more per Key Vault's data plane).

    ``FakeAzure(subscription=SUB, tenant=TENANT, lro_delay=0.1)``, used as a context manager; see the
    package docstring for how the SDK clients are pointed at it.
    """

    def __init__(
        self,
        *,
        subscription: str = "00000000-0000-0000-0000-00000000a2e1",
        tenant: str = "00000000-0000-0000-0000-0000000071e2",
        lro_delay: float = 0.1,
        page_size: int = 100,
        subscriptions: tuple[str, ...] = (),
    ) -> None:
        self.subscription = subscription
        self.tenant = tenant
        self.subscriptions = {s.lower() for s in (subscription, *subscriptions)}
        self.lro_delay = lro_delay
        self.page_size = page_size
        self.lock = threading.RLock()
        self.calls = CallLog()
        self.store: dict[str, Entry] = {}
        self.operations: dict[str, Operation] = {}
        self.vaults: dict[str, VaultData] = {}
        self._injections: list[_Injection] = []
        self._operation_failures: list[_OperationFailure] = []
        self._ca = trustme.CA()
        self._cert = self._ca.issue_cert("127.0.0.1")
        self._dir = tempfile.TemporaryDirectory(prefix="fake-azure-")
        self.ca_bundle = str(Path(self._dir.name) / "ca.pem")
        self._ca.cert_pem.write_to_path(self.ca_bundle)
        self.ssl_context = self._server_context()
        self._listener: Listener | None = None
        self.servicebus: Any = None

    # -- lifecycle ----------------------------------------------------------------------------------------

    def _server_context(self) -> Any:
        import ssl

        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self._cert.configure_cert(context)
        return context

    def start(self) -> FakeAzure:
        """Starts the ARM listener; answers itself."""
        if self._listener is None:
            self._listener = Listener(self._answer_arm, self.ssl_context, "fake-azure-arm").start()
        return self

    def stop(self) -> None:
        """Stops every listener (ARM and the vaults')."""
        with self.lock:
            vaults = list(self.vaults.values())
            self.vaults.clear()
        for vault in vaults:
            vault.close()
        if self._listener is not None:
            self._listener.stop()
            self._listener = None
        self._dir.cleanup()

    def __enter__(self) -> FakeAzure:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def reset(self) -> None:
        """Forgets every resource, operation, vault secret, call and pending injected error."""
        with self.lock:
            vaults = list(self.vaults.values())
            self.vaults.clear()
            self.store.clear()
            self.operations.clear()
            self._injections.clear()
            self._operation_failures.clear()
            self.calls.clear()
        for vault in vaults:
            vault.close()

    @property
    def endpoint(self) -> str:
        """``https://127.0.0.1:PORT``: the mgmt clients' ``base_url``."""
        if self._listener is None:
            raise RuntimeError("the fake is not started: use `with FakeAzure() as fake:`")
        return self._listener.url

    # -- the state, as a test sees it -----------------------------------------------------------------------

    def settle(self, *, everything: bool = False) -> None:
        """Completes the long-running operations that are due (all of them, with ``everything``)."""
        with self.lock:
            now = time.time()
            for op in sorted(self.operations.values(), key=lambda o: o.due):
                if op.status == "InProgress" and (everything or op.due <= now):
                    self._finish(op, now)

    def resource(self, resource_id: str) -> dict[str, Any] | None:
        """A copy of the stored resource ``resource_id`` as GET answers it, or None."""
        with self.lock:
            self.settle()
            entry = self.store.get(resource_id.lower().rstrip("/"))
            return self._render(entry) if entry is not None else None

    def resources(self, type_name: str | None = None) -> list[str]:
        """The ids of the stored resources (of ``type_name`` only, when given)."""
        with self.lock:
            self.settle()
            return sorted(
                e.resource["id"]
                for e in self.store.values()
                if type_name is None or e.type.type.lower() == type_name.lower()
            )

    def edit(self, resource_id: str, patch: dict[str, Any]) -> dict[str, Any]:
        """Changes a stored resource as someone in the portal would: ``patch`` merged in (objects merged,
        the rest replaced, None removes); its etag moves. Answers a copy; KeyError when it does not exist."""
        with self.lock:
            self.settle()
            entry = self.store.get(resource_id.lower().rstrip("/"))
            if entry is None:
                raise KeyError(f"the fake has no resource {resource_id}")
            merge(entry.resource, copy.deepcopy(patch))
            if entry.type.etag:
                entry.resource["etag"] = new_etag()
            return self._render(entry)

    def render(self, entry: Entry) -> dict[str, Any]:
        """A stored entry as GET answers it (inline children included): for hooks."""
        return self._render(entry)

    def open_vault(self, name: str) -> str:
        """Starts the data plane of vault ``name`` if it has none; answers its ``vaultUri``: for hooks."""
        key = name.lower()
        if key not in self.vaults:
            self.vaults[key] = VaultData(self, name)
        return self.vaults[key].url

    def close_vault(self, name: str) -> None:
        """Stops the data plane of vault ``name`` (its secrets go with it): for hooks."""
        vault = self.vaults.pop(name.lower(), None)
        if vault is not None:
            vault.close()

    def put_resource(self, resource_id: str, resource: dict[str, Any]) -> None:
        """Stores ``resource`` as ``resource_id`` as it is (no validation, no hooks): something made
        outside the provider (or by a hook: a soft-deleted vault)."""
        with self.lock:
            route = self._route("PUT", resource_id)
            if route.kind != "resource" or route.rtype is None:
                raise KeyError(f"{resource_id} is not the id of a resource the fake serves")
            stored = {"id": canonical(resource_id), "name": route.names[-1], "type": route.rtype.type}
            stored.update(copy.deepcopy(resource))
            self.store[resource_id.lower().rstrip("/")] = Entry(
                stored, route.rtype, route.parent, route.subscription or "", route.group
            )

    def connect(
        self,
        *,
        servicebus: Any = None,
        blob_endpoint: str | None = None,
        blob_ca_bundle: str | None = None,
    ) -> None:
        """Wires the data planes ARM configures: the FAKE Service Bus broker (``servicebus``: each topic
        and subscription PUT or DELETE is made on it, ``listKeys`` answers its keys) and a real blob
        service (``blob_endpoint``: Azurite, its CA in ``blob_ca_bundle``; see
        :func:`skyrig_azure.fake.resources.storage.connect_blob`)."""
        if servicebus is not None:
            self.servicebus = servicebus
        if blob_endpoint is not None:
            from skyrig_azure.fake.resources.storage import connect_blob

            connect_blob(self, blob_endpoint, blob_ca_bundle)

    def vault(self, name: str) -> VaultData:
        """The data plane of Key Vault ``name`` (its secrets), for tests."""
        with self.lock:
            return self.vaults[name.lower()]

    # -- errors -------------------------------------------------------------------------------------------

    def inject(
        self,
        status: int = 500,
        *,
        type: str | None = None,
        method: str | None = None,
        path: str | None = None,
        code: str | None = None,
        message: str | None = None,
        times: int = 1,
        retry_after: float | None = None,
    ) -> None:
        """Answers the next ``times`` requests matching ``type`` (a full type or a namespace), HTTP
        ``method`` and ``path`` (a substring) with ``status`` instead of doing them: 429 (throttled, with
        ``Retry-After``, 1 s unless given), 500, 409, ... Polls of operations are never matched."""
        default_code = {
            429: "TooManyRequests",
            409: "Conflict",
            500: "InternalServerError",
            503: "ServerBusy",
        }
        if status == 429 and retry_after is None:
            retry_after = 1
        with self.lock:
            self._injections.append(
                _Injection(
                    status,
                    code or default_code.get(status, "InjectedFailure"),
                    message or f"The fake was told to fail this request with {status}.",
                    type.lower() if type else None,
                    method.upper() if method else None,
                    path,
                    times,
                    retry_after,
                )
            )

    def fail_operations(
        self,
        *,
        type: str | None = None,
        kind: str | None = None,
        code: str = "InternalServerError",
        message: str | None = None,
        times: int = 1,
    ) -> None:
        """Makes the next ``times`` long-running operations on ``type`` (a full type or a namespace) of
        ``kind`` (``put`` for PUT and PATCH, ``delete``) end ``Failed`` with ``code``: the request itself
        is accepted, the poller then raises; the resource is left ``Failed`` (a PUT) or in place (a
        DELETE), and the same PUT again runs once more, as in Azure."""
        error = ArmError(500, code, message or "The fake was told to fail this operation.")
        with self.lock:
            self._operation_failures.append(
                _OperationFailure(type.lower() if type else None, kind, error, times)
            )

    def _operation_failure(self, type_name: str, kind: str) -> ArmError | None:
        for failure in self._operation_failures:
            lowered = type_name.lower()
            if failure.type and not (lowered == failure.type or lowered.split("/", 1)[0] == failure.type):
                continue
            if failure.kind and failure.kind != kind:
                continue
            failure.times -= 1
            if failure.times <= 0:
                self._operation_failures.remove(failure)
            return failure.error
        return None

    def _injected(self, route: Route, method: str, path: str) -> ArmError | None:
        for injection in self._injections:
            type_name = route.type_name.lower()
            if injection.type and not (
                type_name == injection.type or type_name.split("/", 1)[0] == injection.type
            ):
                continue
            if injection.method and injection.method != method:
                continue
            if injection.path and injection.path.lower() not in path.lower():
                continue
            injection.times -= 1
            if injection.times <= 0:
                self._injections.remove(injection)
            headers = (
                {"Retry-After": f"{injection.retry_after:g}"} if injection.retry_after is not None else {}
            )
            return ArmError(injection.status, injection.code, injection.message, headers=headers)
        return None

    # -- requests -----------------------------------------------------------------------------------------

    def _answer_arm(
        self, method: str, raw_path: str, headers: dict[str, str], payload: bytes
    ) -> tuple[int, dict[str, str], Any]:
        parsed = urllib.parse.urlsplit(raw_path)
        path = "/" + urllib.parse.unquote(parsed.path).strip("/")
        query = {k: v[-1] for k, v in urllib.parse.parse_qs(parsed.query, keep_blank_values=True).items()}
        type_name, poll, action = "?", False, None
        mutating = method in {"PUT", "PATCH", "DELETE", "POST"}
        out_headers: dict[str, str] = {"x-ms-request-id": str(uuid.uuid4())}
        try:
            _authenticate(headers)
            with self.lock:
                self.settle()
                route = self._route(method, path)
                type_name, action = route.type_name, route.action
                if route.kind in ("operationStatus", "operationResult"):
                    poll, mutating = True, False
                    status, extra, body = self._poll(route, query)
                else:
                    if route.kind == "collection" and method == "POST":
                        # a provider-level action (checkNameAvailability) is served by a type of its name
                        action = route.type_name.rsplit("/", 1)[-1]
                    if action and action.lower().startswith(("list", "get", "check")):
                        mutating = False
                    injected = self._injected(route, method, path)
                    if injected is not None:
                        raise injected
                    self._check_api_version(route, query)
                    status, extra, body = self._handle(method, route, query, headers, payload)
                out_headers.update(extra)
        except ArmError as error:
            status, body = error.status, error.envelope()
            out_headers.update(error.headers)
            if status == 401:
                out_headers["WWW-Authenticate"] = (
                    'Bearer authorization_uri="https://login.microsoftonline.com/common", '
                    'error="invalid_token", error_description="The authentication failed because of missing '
                    "'Authorization' header.\""
                )
        except Exception as error:
            traceback.print_exc()
            status = 500
            body = ArmError(
                500, "InternalServerError", f"The fake failed: {type(error).__name__}: {error}"
            ).envelope()
        self.calls.add(Call(type_name, method, status, mutating, poll, path, action))
        return status, out_headers, body

    def _route(self, method: str, path: str) -> Route:
        segs = [s for s in path.split("/") if s]
        low = [s.lower() for s in segs]
        if (len(segs) < 2 or low[0] != "subscriptions") and "providers" not in low:
            raise ArmError(404, "NotFound", f"The path '{path}' is not served by the fake ARM.")
        sub = segs[1] if low[:1] == ["subscriptions"] and len(segs) > 1 else None
        group = (
            segs[3] if len(low) >= 4 and low[0] == "subscriptions" and low[2] == "resourcegroups" else None
        )
        if sub is not None and sub.lower() not in self.subscriptions:
            raise ArmError(404, "SubscriptionNotFound", f"The subscription '{sub}' could not be found.")
        rg_type = REGISTRY[GROUP_TYPE.lower()]
        if len(segs) == 3 and low[2] == "resourcegroups":
            return Route(
                "collection",
                GROUP_TYPE,
                path,
                f"/subscriptions/{sub}",
                f"/subscriptions/{sub}",
                sub,
                None,
                rtype=rg_type,
            )
        if (len(segs) == 3 and low[2] == "resources") or (
            len(segs) == 5 and low[2] == "resourcegroups" and low[4] == "resources"
        ):
            generic = REGISTRY[GENERIC_TYPE.lower()]
            where = "/" + "/".join(segs[:-1])
            return Route("collection", generic.type, path, where, where, sub, group, rtype=generic)
        if len(segs) == 4 and low[2] == "resourcegroups":
            return Route(
                "resource",
                GROUP_TYPE,
                path,
                f"/subscriptions/{sub}",
                f"/subscriptions/{sub}",
                sub,
                group,
                (segs[3],),
                rtype=rg_type,
            )
        if "providers" not in low:
            raise ArmError(404, "NotFound", f"The path '{path}' is not served by the fake ARM.")
        index = len(low) - 1 - low[::-1].index("providers")
        scope = "/" + "/".join(segs[:index]) if index else ""
        if index + 1 >= len(segs):
            raise ArmError(404, "NotFound", f"The path '{path}' is not served by the fake ARM.")
        namespace, rest = segs[index + 1], segs[index + 2 :]
        lowrest = [s.lower() for s in rest]
        if (
            len(rest) == 4
            and lowrest[0] == "locations"
            and lowrest[2] in ("operationstatuses", "operationresults")
        ):
            kind = "operationStatus" if lowrest[2] == "operationstatuses" else "operationResult"
            op = self.operations.get(rest[3])
            return Route(
                kind, op.type if op else f"{namespace}/operations", path, scope, scope, sub, group, (rest[3],)
            )
        if namespace.lower() not in namespaces():
            raise ArmError(
                400, "InvalidResourceNamespace", f"The resource namespace '{namespace}' is invalid."
            )
        if not rest:
            raise ArmError(404, "NotFound", f"The path '{path}' is not served by the fake ARM.")
        types, names = rest[0::2], rest[1::2]
        if len(rest) % 2 == 0:
            type_name = f"{namespace}/{'/'.join(types)}"
            parent = scope if len(types) == 1 else "/" + "/".join(segs[:-2])
            return Route(
                "resource",
                type_name,
                path,
                parent,
                scope,
                sub,
                group,
                tuple(names),
                rtype=self._type(type_name, namespace),
            )
        if len(types) > 1 and method == "POST":
            owner = lookup(f"{namespace}/{'/'.join(types[:-1])}")
            if owner is not None and types[-1].lower() in {a.lower() for a in owner.actions}:
                action = next(a for a in owner.actions if a.lower() == types[-1].lower())
                return Route(
                    "action",
                    owner.type,
                    "/" + "/".join(segs[:-1]),
                    "/" + "/".join(segs[:-3]) if len(types) > 2 else scope,
                    scope,
                    sub,
                    group,
                    tuple(names),
                    action,
                    owner,
                )
        type_name = f"{namespace}/{'/'.join(types)}"
        parent = scope if len(types) == 1 else "/" + "/".join(segs[:-1])
        return Route(
            "collection",
            type_name,
            path,
            parent,
            scope,
            sub,
            group,
            tuple(names),
            rtype=self._type(type_name, namespace),
        )

    @staticmethod
    def _type(type_name: str, namespace: str) -> ResourceType:
        found = lookup(type_name)
        if found is None:
            raise ArmError(
                400,
                "InvalidResourceType",
                f"The resource type '{type_name.split('/', 1)[1]}' could "
                f"not be found in the namespace '{namespace}'.",
            )
        return found

    @staticmethod
    def _check_api_version(route: Route, query: dict[str, str]) -> None:
        version = query.get("api-version")
        if not version:
            raise ArmError(
                400,
                "MissingApiVersionParameter",
                "The api-version query parameter (?api-version=) is required for all requests.",
            )
        assert route.rtype is not None
        if version not in route.rtype.api_versions:
            raise ArmError(
                400,
                "NoRegisteredProviderFound",
                f"No registered resource provider found for "
                f"location 'global' and API version '{version}' for type "
                f"'{route.rtype.type.split('/', 1)[1]}'. The supported api-versions are "
                f"'{', '.join(route.rtype.api_versions)}'.",
            )

    def _context(self, route: Route, previous: dict[str, Any] | None = None, query: Any = None) -> Context:
        assert route.rtype is not None
        return Context(
            self,
            route.path,
            route.rtype,
            route.subscription or "",
            route.group,
            route.names,
            route.parent,
            route.scope,
            previous,
            query or {},
        )

    def _check_scope(self, route: Route) -> None:
        """404s for a missing resource group, parent or extension scope."""
        assert route.rtype is not None
        if route.group is not None and route.rtype.type.lower() != GROUP_TYPE.lower():
            entry = self.store.get(
                f"/subscriptions/{route.subscription}/resourcegroups/{route.group}".lower()
            )
            if entry is None:
                raise group_not_found(route.group)
        parent = route.parent.lower()
        if not route.rtype.parent_required:
            return
        if (
            route.kind == "resource"
            and parent
            and parent.count("/") > 4
            and parent not in self.store
            and not self._vault_secret(parent)
        ):
            raise parent_not_found(
                route.parent.rsplit("/", 1)[-1] if "/providers/" in parent else route.parent
            )
        if route.kind == "collection" and route.rtype.depth > 1 and parent not in self.store:
            raise parent_not_found(route.parent.rsplit("/", 1)[-1])

    def _vault_secret(self, scope: str) -> bool:
        """Whether ``scope`` (lower-cased) is a secret its vault's data plane holds: Azure has those as
        Microsoft.KeyVault/vaults/secrets resources, a scope role assignments may name."""
        vault, found, secret = scope.rpartition("/secrets/")
        if not found or "/" in secret or "/providers/microsoft.keyvault/vaults/" not in vault:
            return False
        data = self.vaults.get(vault.rsplit("/", 1)[-1]) if vault in self.store else None
        held = data.secrets.get(secret) if data is not None else None
        return held is not None and held.deleted is None

    def _handle(
        self, method: str, route: Route, query: dict[str, str], headers: dict[str, str], payload: bytes
    ) -> tuple[int, dict[str, str], Any]:
        rtype = route.rtype
        assert rtype is not None
        self._check_scope(route)
        if route.kind == "collection":
            if method == "POST" and "" in rtype.actions:
                status, answer = rtype.actions[""](self._context(route, None, query), {}, _json(payload))
                return status, {}, answer
            if method != "GET":
                raise ArmError(
                    405, "MethodNotAllowed", f"The method '{method}' is not allowed on a collection."
                )
            return self._list(route, query)
        key = route.path.lower()
        entry = self.store.get(key)
        if route.kind == "action":
            if entry is None:
                raise not_found(rtype.type, route.names[-1], route.group)
            status, body = rtype.actions[route.action or ""](
                self._context(route, entry.resource, query), self._render(entry), _json(payload)
            )
            return status, {}, body
        if method in ("GET", "HEAD"):
            if entry is None:
                virtual = (
                    rtype.list_filter and method == "GET" and _virtual_get(self._context(route, None, query))
                )
                if virtual:
                    return 200, {}, virtual
                if rtype.type.lower() == GROUP_TYPE.lower():
                    raise group_not_found(route.names[-1])
                raise not_found(rtype.type, route.names[-1], route.group)
            return (204 if method == "HEAD" else 200), {}, self._render(entry)
        if method == "PUT":
            return self._put(route, entry, _json(payload), headers, query)
        if method == "PATCH":
            return self._patch(route, entry, _json(payload), headers, query)
        if method == "DELETE":
            return self._delete(route, entry, headers, query)
        raise ArmError(405, "MethodNotAllowed", f"The method '{method}' is not allowed here.")

    # -- reads ---------------------------------------------------------------------------------------------

    def _render(self, entry: Entry) -> dict[str, Any]:
        resource = copy.deepcopy(entry.resource)
        for member, child_type in entry.type.inline_children.items():
            prefix = entry.resource["id"].lower() + "/" + child_type.rsplit("/", 1)[-1].lower() + "/"
            children = [
                self._render(child)
                for key, child in sorted(self.store.items())
                if key.startswith(prefix) and "/" not in key[len(prefix) :]
            ]
            resource.setdefault("properties", {})[member] = children
        return resource

    def _list(self, route: Route, query: dict[str, str]) -> tuple[int, dict[str, str], Any]:
        rtype = route.rtype
        assert rtype is not None
        parent = route.parent.lower()
        if rtype.scope == "group" and rtype.depth == 1 and route.group is None:
            found = [
                e
                for e in self.store.values()
                if e.type is rtype and e.subscription.lower() == (route.subscription or "").lower()
            ]
        else:
            found = [e for e in self.store.values() if e.type is rtype and e.parent.lower() == parent]
        items = [self._render(e) for e in sorted(found, key=lambda e: e.resource["id"].lower())]
        if rtype.list_filter is not None:
            items = rtype.list_filter(self._context(route, None, query), items, query.get("$filter"))
        top = int(query["$top"]) if query.get("$top", "").isdigit() else None
        start = int(query.get("$skiptoken") or 0)
        size = min(self.page_size, top) if top else self.page_size
        page = items[start : start + size]
        body: dict[str, Any] = {"value": page}
        if start + size < len(items) and not top:
            params = {k: v for k, v in query.items() if k != "$skiptoken"}
            params["$skiptoken"] = str(start + size)
            body["nextLink"] = f"{self.endpoint}{route.path}?{urllib.parse.urlencode(params)}"
        return 200, {}, body

    # -- writes --------------------------------------------------------------------------------------------

    def _put(
        self, route: Route, entry: Entry | None, body: Any, headers: dict[str, str], query: dict[str, str]
    ) -> tuple[int, dict[str, str], Any]:
        rtype = route.rtype
        assert rtype is not None
        if rtype.put_model is None:
            raise ArmError(405, "MethodNotAllowed", f"The fake does not create '{rtype.type}' resources.")
        if not isinstance(body, dict):
            raise ArmError(
                400, "InvalidRequestContent", "The request content was invalid: a JSON object is expected."
            )
        name = route.names[-1]
        if rtype.name_pattern and not _fullmatch(rtype.name_pattern, name):
            raise ArmError(
                400,
                rtype.name_error,
                f"The resource name '{name}' is invalid for type '{rtype.type}': "
                f"it must match {rtype.name_pattern}.",
            )
        schema = load(rtype.put_model)
        validate(body, schema, top_level_ok=frozenset({"id", "name", "type"}))
        _check_identity(body, route)
        self._check_if_match(entry, headers)
        candidate = {k: v for k, v in copy.deepcopy(body).items() if k not in ("id", "name", "type")}
        if rtype.tracked and isinstance(candidate.get("location"), str):
            candidate["location"] = candidate["location"].replace(" ", "").lower()
        if rtype.tracked and rtype.depth == 1 and not candidate.get("location"):
            raise ArmError(400, "LocationRequired", "The location property is required for this definition.")
        children = self._take_children(rtype, candidate)
        resource = {"id": _canonical_id(route, entry), "name": name, "type": rtype.type, **candidate}
        previous = self._render(entry) if entry is not None else None
        context = self._context(route, previous, query)
        if entry is not None:
            self._check_immutable(rtype, previous or {}, resource)
        if rtype.on_write is not None:
            rtype.on_write(context, resource)
        if entry is not None and previous is not None:
            merged_view = dict(resource)
            for member in rtype.inline_children:
                merged_view.setdefault("properties", {})[member] = children or []
            failed = (previous.get("properties") or {}).get("provisioningState") == "Failed"
            if not failed and _writable(previous, rtype, schema) == _writable(merged_view, rtype, schema):
                return 200, self._op_headers(entry), previous
            if entry.operation is not None:
                raise ArmError(
                    409,
                    "AnotherOperationInProgress",
                    f"Another operation on this or a dependent "
                    f"resource is in progress: '{route.path}'. Retry when it has finished.",
                )
        created = entry is None
        self._finish_write(route, resource, entry, created)
        self._sync_children(route, resource, children, query)
        return self._write_answer(route, created, rtype.async_put)

    def _patch(
        self, route: Route, entry: Entry | None, body: Any, headers: dict[str, str], query: dict[str, str]
    ) -> tuple[int, dict[str, str], Any]:
        rtype = route.rtype
        assert rtype is not None
        if rtype.patch_model is None:
            raise ArmError(405, "MethodNotAllowed", f"'{rtype.type}' has no PATCH.")
        if entry is None:
            if rtype.type.lower() == GROUP_TYPE.lower():
                raise group_not_found(route.names[-1])
            raise not_found(rtype.type, route.names[-1], route.group)
        if not isinstance(body, dict):
            raise ArmError(
                400, "InvalidRequestContent", "The request content was invalid: a JSON object is expected."
            )
        validate(body, load(rtype.patch_model), top_level_ok=frozenset({"id", "name", "type"}))
        self._check_if_match(entry, headers)
        if entry.operation is not None:
            raise ArmError(
                409,
                "AnotherOperationInProgress",
                f"Another operation on '{route.path}' is in progress. Retry when it has finished.",
            )
        previous = self._render(entry)
        resource = copy.deepcopy(entry.resource)
        changes = {k: v for k, v in body.items() if k not in ("id", "name", "type")}
        if "tags" in changes:
            resource["tags"] = changes.pop("tags")
        merge(resource, changes)
        self._check_immutable(rtype, previous, resource)
        if rtype.on_write is not None:
            rtype.on_write(self._context(route, previous, query), resource)
        self._finish_write(route, resource, entry, False)
        return self._write_answer(route, False, rtype.async_patch)

    def _check_if_match(self, entry: Entry | None, headers: dict[str, str]) -> None:
        wanted = headers.get("if-match")
        if wanted is None or (wanted == "*" and entry is not None):
            return
        current = entry.resource.get("etag") if entry is not None else None
        if current is None or wanted.strip() != current:
            raise ArmError(
                412,
                "PreconditionFailed",
                "The condition specified using HTTP conditional header(s) is not met (If-Match).",
            )

    @staticmethod
    def _check_immutable(rtype: ResourceType, previous: dict[str, Any], resource: dict[str, Any]) -> None:
        moved = resource.get("location") != previous.get("location")
        if rtype.tracked and previous.get("location") and moved and "location" not in rtype.immutable:
            raise ArmError(
                400,
                "InvalidResourceLocation",
                f"The resource '{previous['name']}' already exists "
                f"in location '{previous['location']}'. A resource with the same name cannot be "
                f"created in location '{resource.get('location')}'. Please select a new resource "
                "name.",
            )
        for dotted in rtype.immutable:
            before, after = _get(previous, dotted), _get(resource, dotted)
            if before is not None and _normal(before) != _normal(after):
                raise ArmError(
                    409 if dotted == "location" else 400,
                    rtype.immutable_code,
                    f"Changing property '{dotted}' is not allowed (from {before!r} to {after!r}).",
                )

    def _take_children(self, rtype: ResourceType, candidate: dict[str, Any]) -> list[dict[str, Any]] | None:
        if not rtype.inline_children:
            return None
        properties = candidate.setdefault("properties", {})
        children: list[dict[str, Any]] = []
        for member in rtype.inline_children:
            children.extend(properties.pop(member, None) or [])
        return children

    def _sync_children(
        self, route: Route, resource: dict[str, Any], children: list[dict[str, Any]] | None, query: Any
    ) -> None:
        rtype = route.rtype
        assert rtype is not None
        if children is None:
            return
        for member, child_type_name in rtype.inline_children.items():
            child_type = REGISTRY[child_type_name.lower()]
            segment = child_type.type.rsplit("/", 1)[-1]
            prefix = resource["id"].lower() + "/" + segment.lower() + "/"
            wanted = {c.get("name", "").lower(): c for c in children}
            for key in [k for k in self.store if k.startswith(prefix) and "/" not in k[len(prefix) :]]:
                if key[len(prefix) :] not in wanted:
                    self._remove(key)
            for lowered, body in wanted.items():
                if not lowered:
                    raise ArmError(
                        400, "InvalidRequestFormat", f"Each item of 'properties.{member}' needs a name."
                    )
                child_route = Route(
                    "resource",
                    child_type.type,
                    f"{resource['id']}/{segment}/{body['name']}",
                    resource["id"],
                    route.scope,
                    route.subscription,
                    route.group,
                    (*route.names, body["name"]),
                    rtype=child_type,
                )
                existing = self.store.get(child_route.path.lower())
                child = {
                    "id": child_route.path,
                    "name": body["name"],
                    "type": child_type.type,
                    **{k: copy.deepcopy(v) for k, v in body.items() if k in ("properties",)},
                }
                previous = self._render(existing) if existing is not None else None
                if child_type.on_write is not None:
                    child_type.on_write(self._context(child_route, previous, query), child)
                self._finish_write(child_route, child, existing, existing is None, settle_with=resource)

    def _finish_write(
        self,
        route: Route,
        resource: dict[str, Any],
        entry: Entry | None,
        created: bool,
        settle_with: dict[str, Any] | None = None,
    ) -> None:
        rtype = route.rtype
        assert rtype is not None
        if rtype.etag:
            resource["etag"] = new_etag()
        is_async = (
            rtype.async_put if created or settle_with is not None else rtype.async_put or rtype.async_patch
        )
        if settle_with is not None:
            is_async = False
        if rtype.provisioning_state:
            state = (rtype.creating_state if created else rtype.updating_state) if is_async else "Succeeded"
            resource.setdefault("properties", {})["provisioningState"] = state
        key = route.path.lower()
        new = Entry(resource, rtype, route.parent, route.subscription or "", route.group)
        if entry is not None:
            new.operation = entry.operation
        self.store[key] = new

    def _write_answer(self, route: Route, created: bool, is_async: bool) -> tuple[int, dict[str, str], Any]:
        key = route.path.lower()
        entry = self.store[key]
        if is_async:
            self._start_operation(entry, key, "put")
        status = entry.type.created_status if created else entry.type.updated_status
        return status, self._op_headers(entry), self._render(entry)

    def _delete(
        self, route: Route, entry: Entry | None, headers: dict[str, str], query: dict[str, str]
    ) -> tuple[int, dict[str, str], Any]:
        rtype = route.rtype
        assert rtype is not None
        if entry is None:
            return 204, {}, None
        self._check_if_match(entry, headers)
        if entry.operation is not None and self.operations[entry.operation].kind == "delete":
            return 202, self._op_headers(entry), None
        if rtype.async_delete:
            if rtype.provisioning_state:
                entry.resource.setdefault("properties", {})["provisioningState"] = "Deleting"
            self._start_operation(entry, route.path.lower(), "delete")
            return 202, self._op_headers(entry), None
        body = self._render(entry)
        self._remove(route.path.lower())
        return 200, {}, body

    def _remove(self, key: str) -> None:
        for other in sorted((k for k in self.store if k == key or k.startswith(key + "/")), reverse=True):
            entry = self.store.pop(other)
            if entry.type.on_delete is not None:
                route_names = tuple(entry.resource["id"].split("/")[-1:])
                context = Context(
                    self,
                    entry.resource["id"],
                    entry.type,
                    entry.subscription,
                    entry.group,
                    route_names,
                    entry.parent,
                    entry.parent,
                    entry.resource,
                )
                entry.type.on_delete(context, entry.resource)

    # -- operations -----------------------------------------------------------------------------------------

    def _start_operation(self, entry: Entry, key: str, kind: str) -> None:
        op = Operation(str(uuid.uuid4()), key, kind, time.time() + self.lro_delay, entry.type.type)
        op.error = self._operation_failure(entry.type.type, kind)
        self.operations[op.id] = op
        entry.operation = op.id

    def _finish(self, op: Operation, now: float) -> None:
        op.status, op.finished = ("Failed" if op.error else "Succeeded"), now
        entry = self.store.get(op.key)
        if entry is None:
            return
        entry.operation = None
        if op.error is not None:
            if entry.type.provisioning_state:
                state = "Failed" if op.kind == "put" else "Succeeded"
                entry.resource.setdefault("properties", {})["provisioningState"] = state
        elif op.kind == "delete":
            self._remove(op.key)
        elif entry.type.provisioning_state:
            entry.resource.setdefault("properties", {})["provisioningState"] = "Succeeded"

    def _op_urls(self, op: Operation, entry: Entry) -> tuple[str, str]:
        namespace = entry.type.namespace
        base = f"{self.endpoint}/subscriptions/{entry.subscription}/providers/{namespace}/locations/" + (
            entry.resource.get("location") or "global"
        )
        version = entry.type.api_versions[-1]
        return (
            f"{base}/operationStatuses/{op.id}?api-version={version}",
            f"{base}/operationResults/{op.id}?api-version={version}",
        )

    def _op_headers(self, entry: Entry) -> dict[str, str]:
        if entry.operation is None:
            return {}
        op = self.operations[entry.operation]
        status_url, result_url = self._op_urls(op, entry)
        return {"Azure-AsyncOperation": status_url, "Location": result_url, **self._retry_after(op)}

    @staticmethod
    def _retry_after(op: Operation) -> dict[str, str]:
        # The SDKs read Retry-After as whole seconds, and 0 sends their pollers to their 30 s default;
        # azure-core also honours x-ms-retry-after-ms, which lets the fake's short operations poll quickly.
        return {"x-ms-retry-after-ms": str(max(int((op.due - time.time()) * 1000), 20))}

    def _poll(self, route: Route, query: dict[str, str]) -> tuple[int, dict[str, str], Any]:
        op = self.operations.get(route.names[0])
        if op is None:
            raise ArmError(404, "OperationNotFound", f"The operation '{route.names[0]}' was not found.")
        if route.kind == "operationStatus":
            body: dict[str, Any] = {
                "id": route.path,
                "name": op.id,
                "status": op.status,
                "startTime": _iso(op.started),
            }
            if op.finished is not None:
                body["endTime"] = _iso(op.finished)
            if op.error is not None:
                body["error"] = op.error.envelope()["error"]
            headers = self._retry_after(op) if op.status == "InProgress" else {}
            return 200, headers, body
        if op.status == "InProgress":
            return (
                202,
                {
                    "Location": f"{self.endpoint}{route.path}?api-version={query.get('api-version', '')}",
                    **self._retry_after(op),
                },
                None,
            )
        if op.error is not None:
            return op.error.status, {}, op.error.envelope()
        entry = self.store.get(op.key)
        if op.kind == "delete" or entry is None:
            return 204, {}, None
        return 200, {}, self._render(entry)


# -- helpers ---------------------------------------------------------------------------------------------


def _authenticate(headers: dict[str, str]) -> None:
    value = headers.get("authorization", "")
    scheme, _, token = value.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise ArmError(
            401, "AuthenticationFailed", "Authentication failed. The 'Authorization' header is missing."
        )


def _json(payload: bytes) -> Any:
    if not payload.strip():
        return None
    try:
        return json.loads(payload)
    except ValueError as error:
        raise ArmError(
            400,
            "InvalidRequestContent",
            f"The request content was invalid and could not be deserialized: '{error}'.",
        ) from None


def _virtual_get(context: Context) -> dict[str, Any] | None:
    items = context.type.list_filter(context, [], None) if context.type.list_filter else []
    for item in items:
        if item.get("name", "").lower() == context.name.lower():
            return item
    return None


def _check_identity(body: dict[str, Any], route: Route) -> None:
    for member, expected in (("name", route.names[-1]), ("id", route.path), ("type", route.type_name)):
        given = body.get(member)
        if given is not None and str(given).lower() != expected.lower():
            raise ArmError(
                400,
                "InvalidRequestContent",
                f"The '{member}' in the body ('{given}') does not match the request URL ('{expected}').",
            )


def _canonical_id(route: Route, entry: Entry | None) -> str:
    if entry is not None:
        return str(entry.resource["id"])
    return canonical(route.path)


def canonical(path: str) -> str:
    """An id as ARM writes it: ``subscriptions``, ``resourceGroups``, ``providers`` and the registered
    spelling of namespaces and types, whatever the casing of the request."""
    segs = path.strip("/").split("/")
    out: list[str] = []
    index = 0
    while index < len(segs):
        low = segs[index].lower()
        if low in ("subscriptions", "resourcegroups") and index + 1 < len(segs):
            out += ["subscriptions" if low == "subscriptions" else "resourceGroups", segs[index + 1]]
            index += 2
        elif low == "providers" and index + 1 < len(segs):
            rest = segs[index + 1 :]
            stop = rest.index("providers") if "providers" in rest else len(rest)
            part, types = rest[:stop], rest[1:stop:2]
            known = lookup(f"{part[0]}/{'/'.join(types)}") if types else None
            if known is not None:
                spelled = known.type.split("/")
                part = [spelled[0], *[x for pair in zip(spelled[1:], part[2::2], strict=False) for x in pair]]
                part += rest[len(part) : stop]
            out += ["providers", *part]
            index += 1 + stop
        else:
            out.append(segs[index])
            index += 1
    return "/" + "/".join(out)


def _fullmatch(pattern: str, value: str) -> bool:
    import re

    return re.fullmatch(pattern, value) is not None


def _writable(resource: dict[str, Any], rtype: ResourceType, schema: Any) -> Any:
    view = strip_readonly(
        {k: v for k, v in resource.items() if k not in ("id", "name", "type", "etag")}, schema
    )
    if isinstance(view.get("properties"), dict):
        # some models (Key Vault's) mark it writable; the server sets it all the same
        view["properties"].pop("provisioningState", None)
    for member in rtype.inline_children:
        children = (view.get("properties") or {}).get(member)
        if isinstance(children, list):
            view["properties"][member] = sorted(
                ({k: v for k, v in c.items() if k not in ("id", "type", "etag")} for c in children),
                key=lambda c: str(c.get("name", "")).lower(),
            )
    return _normal(view)


def _normal(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _normal(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_normal(v) for v in value]
    return value


def _get(resource: dict[str, Any], dotted: str) -> Any:
    value: Any = resource
    for part in dotted.split("."):
        if not isinstance(value, dict):
            return None
        value = value.get(part)
    return value


def merge(target: dict[str, Any], changes: dict[str, Any]) -> None:
    """JSON merge patch (RFC 7386): objects merged, None removes, the rest replaced."""
    for key, value in changes.items():
        if value is None:
            target.pop(key, None)
        elif isinstance(value, dict) and isinstance(target.get(key), dict):
            merge(target[key], value)
        else:
            target[key] = value


def new_etag() -> str:
    """A weak etag as Azure writes them."""
    return f'W/"{uuid.uuid4()}"'


def _iso(moment: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(moment)) + f".{int(moment % 1 * 1e6):06d}Z"
