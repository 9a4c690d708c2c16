"""Generic resource semantics of the FAKE Google APIs (:mod:`skyrig_gcp.fake`), shared by every API.

:class:`ApiHandler` answers a routed, validated request by its method's verb: ``create``/``insert`` stores
the resource (409 when it exists; the id from the method's id query parameter or the body's ``name``),
``get`` (404), ``list`` (pages, a small filter language), ``patch`` (``updateMask`` where the API has it;
immutable fields refused), ``update`` (PUT), ``delete``, ``getIamPolicy``/``setIamPolicy`` (etags; a stale one
is 409 ABORTED) and ``testIamPermissions``, and the operations collection (``get``, ``list``, ``wait``,
``delete``, ``cancel``). A method whose response is an Operation answers one that is not done
(:mod:`skyrig_gcp.fake.operations`); the resource is in its creating state until it is. Each API's module
(``skyrig_gcp.fake.apis.<api>``) declares its collections (:class:`Kind`) and adds its own rules.
"""

from __future__ import annotations

import base64
import copy
import os
import re
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

from skyrig_gcp.fake.discovery import Discovery, Method, Route, camel, find_message, output_only, snake
from skyrig_gcp.fake.errors import ApiError, already_exists, invalid, not_found
from skyrig_gcp.fake.operations import Operation, google_name, now_rfc3339, render

if TYPE_CHECKING:
    from skyrig_gcp.fake.core import FakeGcp

#: Collections that are a resource's scope, never stored resources themselves.
STRUCTURAL = frozenset({"projects", "locations", "regions", "zones", "services", "folders", "organizations"})

_IMMUTABLE = re.compile(r"^\s*(Optional\.\s*|Required\.\s*)?Immutable\b")
_ROLE = re.compile(r"^(roles/[A-Za-z0-9_.]+|(projects|organizations)/[^/]+/roles/[A-Za-z0-9_.]+)$")
_MEMBER = re.compile(
    r"^(allUsers|allAuthenticatedUsers|"
    r"(user|serviceAccount|group|domain|principal|principalSet|deleted:serviceAccount|deleted:user|"
    r"deleted:group|projectOwner|projectEditor|projectViewer):.+)$"
)


@dataclass
class Request:
    """A request the fake answers: routed to its method, query parameters typed, body parsed."""

    api: str
    http_method: str
    path: str
    route: Route
    query: dict[str, Any]
    raw_body: Any
    numeric_enums: bool = False

    @property
    def method(self) -> Method:
        """The discovery method the request is for."""
        return self.route.method


@dataclass
class Kind:
    """A collection the fake stores (``instances``, ``secrets``, ...) and how its resources behave.

    ``creating``/``updating``/``deleting`` are the fields set while an operation on a resource runs,
    ``ready`` those set when it is done (or at once, when the method is not long-running).
    """

    collection: str
    schema: str
    id_param: str | None = None
    id_pattern: str | None = None
    id_message: str = "Invalid resource id '{id}'."
    id_field: str | None = None
    label: str = "Resource"
    creating: dict[str, Any] = field(default_factory=dict)
    ready: dict[str, Any] = field(default_factory=dict)
    updating: dict[str, Any] = field(default_factory=dict)
    deleting: dict[str, Any] = field(default_factory=dict)


def new_etag() -> str:
    """An opaque etag, base64 as Google's are."""
    return base64.b64encode(os.urandom(8)).decode()


def deep_merge(target: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    """Merges ``changes`` into ``target`` recursively (objects merged, everything else replaced)."""
    for key, value in changes.items():
        if isinstance(value, dict) and isinstance(target.get(key), dict):
            deep_merge(target[key], value)
        else:
            target[key] = copy.deepcopy(value)
    return target


_FILTER_TERM = re.compile(
    r"""\s*(?P<field>[A-Za-z_][\w.\-]*)\s*(?P<op>!=|=|:|\beq\b|\bne\b)\s*(?P<value>"[^"]*"|'[^']*'|[^\s()]+)\s*"""
)


class ApiHandler:
    """One API's semantics: generic CRUD over its stored collections, and its long-running operations."""

    api: ClassVar[str] = ""
    version: ClassVar[str] = "v1"
    lro: ClassVar[str] = "google"
    proto_package: ClassVar[str | None] = None
    schema_prefix: ClassVar[str] = ""
    project_names: ClassVar[str] = "id"
    full_names: ClassVar[bool] = True
    merge_patch: ClassVar[bool] = False
    aliases: ClassVar[bool] = True
    kinds: ClassVar[dict[str, Kind]] = {}
    operation_metadata: ClassVar[str | None] = None
    delete_returns_resource: ClassVar[bool] = False
    default_page_size: ClassVar[int] = 100
    etag_checks: ClassVar[bool] = True

    def __init__(self, fake: FakeGcp) -> None:
        self.fake = fake
        self.discovery = Discovery(self.api, self.version)
        self.prefix = self.discovery.service_path or f"{self.version}/"

    def reset(self) -> None:
        """Forgets what the handler keeps beside the fake's stores (the fake's ``reset`` calls it)."""

    # -- state -------------------------------------------------------------------------------------------

    @property
    def store(self) -> dict[str, dict[str, Any]]:
        """This API's resources by canonical name (``projects/p/locations/l/instances/i``)."""
        return self.fake.stores[self.api]

    @property
    def policies(self) -> dict[str, dict[str, Any]]:
        """This API's IAM policies by resource name."""
        return self.fake.policies[self.api]

    def canonical(self, key: str) -> str:
        """A resource name as this API spells it: its project as an id, or as a number."""
        match = re.match(r"^projects/([^/]+)(/.*)?$", key)
        if not match:
            return key
        project, rest = match.group(1), match.group(2) or ""
        if project == "-":
            return key
        if self.project_names == "number":
            return f"projects/{self.fake.project_number(project)}{rest}"
        return f"projects/{self.fake.project_id(project)}{rest}"

    def path_key(self, req: Request) -> str:
        """The request path as a resource name: no version prefix, no ``:verb`` suffix."""
        path = req.path.removeprefix(self.prefix)
        custom = re.search(r":([A-Za-z]+)$", req.method.path)
        if custom and path.endswith(":" + custom.group(1)):
            path = path[: -len(custom.group(1)) - 1]
        return path

    def kind_of(self, collection: str) -> Kind:
        """The stored collection ``collection`` (its last name segment); 501 for one the fake lacks."""
        kind = self.kinds.get(collection)
        if kind is None:
            raise ApiError("UNIMPLEMENTED", f"The fake {self.api} API does not store '{collection}'.")
        return kind

    def lookup(self, key: str, kind: Kind | None = None) -> dict[str, Any]:
        """The stored resource ``key``; 404 when there is none."""
        resource = self.store.get(key)
        if resource is None:
            raise self.missing(key, kind)
        return resource

    def missing(self, key: str, kind: Kind | None = None) -> ApiError:
        """The 404 for a resource that does not exist."""
        return not_found(f"Resource '{key}' was not found")

    def exists(self, key: str, kind: Kind) -> ApiError:
        """The 409 for a create of a resource that exists."""
        return already_exists(f"Resource '{key}' already exists")

    def require_parent(self, key: str) -> None:
        """404 when ``key``'s parent is a stored resource that does not exist."""
        parts = key.split("/")
        parent = parts[:-2]
        if len(parent) >= 2 and len(parent) % 2 == 0 and parent[-2] not in STRUCTURAL:
            parent_key = "/".join(parent)
            if parent_key not in self.store:
                raise self.missing(parent_key, self.kinds.get(parent[-2]))

    def in_collection(self, key: str, collection: str) -> bool:
        """Whether ``key`` is directly in ``collection`` (a ``-`` segment matches any)."""
        parts, wanted = key.split("/"), collection.split("/")
        if len(parts) != len(wanted) + 1:
            return False
        return all(w in ("-", p) for w, p in zip(wanted, parts, strict=False))

    # -- requests ----------------------------------------------------------------------------------------

    def handle(self, req: Request) -> tuple[int, dict[str, Any]]:
        """Answers a request: the operations collection, a custom verb (``do_<verb>``), or generic CRUD."""
        method = req.method
        if method.resource.lower().endswith("operations"):
            return 200, self.operation_method(req)
        custom: Callable[[Request], dict[str, Any]] | None = getattr(self, f"do_{method.verb}", None)
        if custom is not None:
            return 200, custom(req)
        generic: Callable[[Request], dict[str, Any]] | None = getattr(self, f"generic_{method.verb}", None)
        if generic is None:
            raise ApiError("UNIMPLEMENTED", f"The fake does not implement {method.id}.")
        return 200, generic(req)

    def body_root(self, method: Method) -> str:
        """How Google's errors name the body: ``instance`` for one bound to a field, nothing for ``*``."""
        name = method.request or ""
        if name.endswith("Request") or not name:
            return ""
        return snake(name.removeprefix(self.schema_prefix))

    def proto_for(self, schema: str | None) -> Any:
        """The protobuf descriptor of a request schema, when its client library is loaded."""
        if schema is None or self.proto_package is None:
            return None
        name = (
            schema.removeprefix(self.schema_prefix)
            .removeprefix("GoogleIamV1")
            .removeprefix("GoogleLongrunning")
        )
        return find_message(
            (f"{self.proto_package}.{name}", f"google.iam.v1.{name}", f"google.longrunning.{name}")
        )

    def body(
        self, req: Request, *, require: bool = True, exempt: frozenset[str] = frozenset()
    ) -> dict[str, Any]:
        """The request body, checked against its schema and normalized."""
        raw = req.raw_body if req.raw_body is not None else {}
        return self.discovery.body(
            req.method,
            raw,
            root=self.body_root(req.method),
            proto=self.proto_for(req.method.request),
            require=require,
            exempt=exempt,
            aliases=self.aliases,
        )

    def is_lro(self, method: Method) -> bool:
        """Whether the method answers a long-running operation."""
        return method.response in ("Operation", "GoogleLongrunningOperation")

    def type_url(self, schema: str) -> str:
        """The ``@type`` of a resource in an operation's ``response`` or ``metadata``."""
        return f"type.googleapis.com/{self.proto_package}.{schema.removeprefix(self.schema_prefix)}"

    def present(self, kind: Kind | None, key: str, resource: dict[str, Any]) -> dict[str, Any]:
        """A stored resource as the API answers it: a copy, without the fake's own ``_`` fields."""
        return {name: copy.deepcopy(value) for name, value in resource.items() if not name.startswith("_")}

    # -- hooks for each API ------------------------------------------------------------------------------

    def create_id(self, req: Request, kind: Kind, collection: str, body: dict[str, Any]) -> str:
        """The new resource's id: the method's id query parameter, else the body's ``name``."""
        if kind.id_param is not None and kind.id_param in req.method.parameters:
            return str(req.query.get(kind.id_param, ""))
        if kind.id_field is not None:
            return str(body.get(kind.id_field, ""))
        name = str(body.get("name", ""))
        if self.full_names and "/" in name:
            if not name.startswith(collection + "/") and self.canonical(name).rsplit("/", 1)[0] != collection:
                raise invalid(f"The resource name '{name}' is not in '{collection}'.", "name")
            return name.rsplit("/", 1)[-1]
        return name

    def check_id(self, kind: Kind, ident: str) -> None:
        """400 when ``ident`` is not a valid id for ``kind``."""
        if not ident:
            raise invalid(kind.id_message.format(id=ident), kind.id_param or "name")
        if kind.id_pattern is not None and not re.fullmatch(kind.id_pattern, ident):
            raise invalid(kind.id_message.format(id=ident), kind.id_param or "name")

    def validate(
        self, req: Request, kind: Kind, key: str, resource: dict[str, Any], old: dict[str, Any] | None
    ) -> None:
        """The API's own rules for a resource about to be stored (``old`` is None on create)."""

    def prepare(self, req: Request | None, kind: Kind, key: str, resource: dict[str, Any]) -> None:
        """Fills the output fields of a new resource that its schema has: name, times, uid, etag."""
        props = self.discovery.schemas.get(kind.schema, {}).get("properties", {})
        stamp = now_rfc3339()
        if "name" in props:
            resource["name"] = key if self.full_names else key.rsplit("/", 1)[-1]
        for name in ("createTime", "updateTime"):
            if name in props:
                resource[name] = stamp
        if "uid" in props:
            resource["uid"] = str(uuid.uuid4())
        if "etag" in props:
            resource["etag"] = new_etag()

    def touch(self, kind: Kind, resource: dict[str, Any]) -> None:
        """Marks a resource changed: its update time and etag."""
        props = self.discovery.schemas.get(kind.schema, {}).get("properties", {})
        if "updateTime" in props:
            resource["updateTime"] = now_rfc3339()
        if "etag" in props:
            resource["etag"] = new_etag()

    def on_ready(self, kind: Kind, key: str, resource: dict[str, Any]) -> None:
        """Runs when a resource's create or update is done (after ``kind.ready`` is applied)."""

    def on_console_change(self, kind: Kind, key: str, resource: dict[str, Any]) -> None:
        """Runs after a test changed a stored resource as the console would (a settings version moves)."""

    def check_delete(self, req: Request, kind: Kind, key: str, resource: dict[str, Any]) -> None:
        """The API's own rules for a delete (a resource still in use, ...)."""

    def lro_result(self, kind: Kind, key: str, resource: dict[str, Any] | None) -> dict[str, Any] | None:
        """What a done operation carries as its ``response``."""
        if self.lro != "google" or resource is None:
            return None
        return {"@type": self.type_url(kind.schema), **self.present(kind, key, resource)}

    # -- generic verbs -----------------------------------------------------------------------------------

    def generic_create(self, req: Request) -> dict[str, Any]:
        """Creates a resource in the collection the path names."""
        collection = self.canonical(self.path_key(req))
        kind = self.kind_of(collection.rsplit("/", 1)[-1])
        exempt = frozenset({"name"}) if kind.id_param or self.full_names else frozenset()
        body = self.body(req, exempt=exempt)
        ident = self.create_id(req, kind, collection, body)
        self.check_id(kind, ident)
        key = f"{collection}/{ident}"
        self.require_parent(key)
        if key in self.store:
            raise self.exists(key, kind)
        resource = body
        self.validate(req, kind, key, resource, None)
        self.prepare(req, kind, key, resource)
        lro = self.is_lro(req.method)
        if req.query.get("validateOnly"):
            resource.update(kind.ready)
            return (
                self.present(kind, key, resource)
                if not lro
                else self.done_operation(req, kind, key, resource)
            )
        resource.update(kind.creating if lro else kind.ready)
        self.store[key] = resource
        if not lro:
            self.on_ready(kind, key, resource)
            return self.present(kind, key, resource)
        return self.start_operation(req, "CREATE", key, kind, self._completion(kind, key, kind.creating))

    def generic_insert(self, req: Request) -> dict[str, Any]:
        """``insert`` is ``create`` for Cloud SQL and Compute Engine."""
        return self.generic_create(req)

    def _completion(
        self, kind: Kind, key: str, during: dict[str, Any]
    ) -> Callable[[], dict[str, Any] | None]:
        def complete() -> dict[str, Any] | None:
            resource = self.store.get(key)
            if resource is None:
                raise ApiError("ABORTED", f"Resource '{key}' was deleted while an operation ran on it.")
            for name, value in during.items():
                if resource.get(name) == value:
                    resource.pop(name, None)
            resource.update(kind.ready)
            self.on_ready(kind, key, resource)
            return self.lro_result(kind, key, resource)

        return complete

    def generic_get(self, req: Request) -> dict[str, Any]:
        """The resource the path names."""
        key = self.canonical(self.path_key(req))
        kind = self.kinds.get(key.rsplit("/", 2)[-2]) if key.count("/") else None
        return self.present(kind, key, self.lookup(key, kind))

    def generic_list(self, req: Request) -> dict[str, Any]:
        """A page of the collection the path names."""
        collection = self.canonical(self.path_key(req))
        kind = self.kind_of(collection.rsplit("/", 1)[-1])
        items = [(k, v) for k, v in sorted(self.store.items()) if self.in_collection(k, collection)]
        items = self.filter_items(req, items)
        page, token = self.paginate(req, items)
        return self.list_body(req, kind, collection, [self.present(kind, k, v) for k, v in page], token)

    def list_field(self, method: Method, kind: Kind) -> str:
        """The list response's repeated field (``instances``, ``items``, ``accounts``, ...)."""
        props = self.discovery.schemas.get(method.response or "", {}).get("properties", {})
        arrays = [name for name, prop in props.items() if prop.get("type") == "array"]
        for name in arrays:
            if props[name].get("items", {}).get("$ref") == kind.schema:
                return name
        return arrays[0] if arrays else "items"

    def list_body(
        self, req: Request, kind: Kind, collection: str, items: list[dict[str, Any]], token: str | None
    ) -> dict[str, Any]:
        """The list response."""
        body: dict[str, Any] = {}
        if items:
            body[self.list_field(req.method, kind)] = items
        if token:
            body["nextPageToken"] = token
        return body

    def paginate(self, req: Request, items: list[Any]) -> tuple[list[Any], str | None]:
        """One page of ``items`` (``pageSize``/``maxResults``, ``pageToken``) and the next page's token."""
        size = req.query.get("pageSize") or req.query.get("maxResults") or 0
        if size < 0:
            raise invalid("The page size must not be negative.", "page_size")
        size = min(size or self.default_page_size, 1000)
        token = req.query.get("pageToken") or ""
        start = 0
        if token:
            try:
                start = int(base64.urlsafe_b64decode(token.encode()).decode().removeprefix("fake-offset:"))
            except ValueError:
                raise invalid("The page token is not valid.", "page_token") from None
        page = items[start : start + size]
        more = start + size < len(items)
        next_token = (
            base64.urlsafe_b64encode(f"fake-offset:{start + size}".encode()).decode() if more else None
        )
        return page, next_token

    def filter_items(
        self, req: Request, items: list[tuple[str, dict[str, Any]]]
    ) -> list[tuple[str, dict[str, Any]]]:
        """The items a ``filter`` keeps: terms ``field = value``, ``!=``, ``:`` (``:*``: present), ANDed."""
        expression = str(req.query.get("filter") or "").strip()
        if not expression:
            return items
        terms = []
        rest = re.sub(r"\s+AND\s+", " ", expression)
        position = 0
        while position < len(rest):
            match = _FILTER_TERM.match(rest, position)
            if match is None:
                raise invalid(f"The fake cannot evaluate the filter '{expression}'.", "filter")
            value = match.group("value").strip("\"'")
            terms.append((match.group("field"), match.group("op"), value))
            position = match.end()
        return [item for item in items if all(self._term(item[1], *term) for term in terms)]

    @staticmethod
    def _term(resource: dict[str, Any], path: str, op: str, value: str) -> bool:
        current: Any = resource
        for part in path.split("."):
            current = current.get(part) if isinstance(current, dict) else None
        if op == ":" and value == "*":
            return current is not None
        text = (
            str(current).lower() if isinstance(current, bool) else (None if current is None else str(current))
        )
        if op in ("eq", "ne"):
            matched = text is not None and re.fullmatch(value, text) is not None
            return matched if op == "eq" else not matched
        if op == "!=":
            return text != value
        if op == ":" and isinstance(current, list):
            return value in [str(item) for item in current]
        return text == value

    def generic_patch(self, req: Request) -> dict[str, Any]:
        """Changes the fields of a resource: those of ``updateMask``, else every field sent."""
        key = self.canonical(self.path_key(req))
        kind = self.kind_of(key.rsplit("/", 2)[-2])
        body = self.body(req, require=False)
        old = self.lookup(key, kind)
        new = copy.deepcopy(old)
        mask = req.query.get("updateMask")
        if mask:
            self.apply_mask(kind, new, body, [path.strip() for path in str(mask).split(",") if path.strip()])
        elif self.merge_patch:
            deep_merge(new, body)
        else:
            new.update(body)
        return self.store_update(req, kind, key, old, new, "UPDATE")

    def generic_update(self, req: Request) -> dict[str, Any]:
        """Replaces a resource's fields (PUT); output-only fields keep their values."""
        key = self.canonical(self.path_key(req))
        kind = self.kind_of(key.rsplit("/", 2)[-2])
        body = self.body(req, exempt=frozenset({"name"}))
        old = self.lookup(key, kind)
        kept = {name: value for name, value in old.items() if name in self.output_fields(kind)}
        new = {**body, **kept}
        return self.store_update(req, kind, key, old, new, "UPDATE")

    def output_fields(self, kind: Kind) -> set[str]:
        """The top-level fields of ``kind`` the server owns: output-only ones and the name."""
        return self.discovery.output_only_fields(kind.schema) | {"name"}

    def apply_mask(self, kind: Kind, target: dict[str, Any], body: dict[str, Any], paths: list[str]) -> None:
        """Sets each masked field of ``target`` from ``body`` (removes it when ``body`` lacks it)."""
        schema = self.discovery.schemas.get(kind.schema, {})
        for path in paths:
            parts = [camel(part) for part in path.split(".")]
            props = schema.get("properties", {})
            if parts[0] not in props:
                raise invalid(
                    f"Invalid field mask path '{path}': no such field in {kind.schema}.", "update_mask"
                )
            if path == "*":
                target.update(body)
                continue
            source: Any = body
            dest: Any = target
            for part in parts[:-1]:
                source = source.get(part, {}) if isinstance(source, dict) else {}
                dest = dest.setdefault(part, {})
            last = parts[-1]
            if isinstance(source, dict) and last in source:
                dest[last] = copy.deepcopy(source[last])
            else:
                dest.pop(last, None)

    def check_immutable(self, kind: Kind, old: dict[str, Any], new: dict[str, Any]) -> None:
        """400 when a field documented as immutable changes."""
        props = self.discovery.schemas.get(kind.schema, {}).get("properties", {})
        for name, prop in props.items():
            immutable = _IMMUTABLE.match(prop.get("description", "")) and not output_only(prop)
            if immutable and name in old and name in new and old[name] != new[name]:
                raise invalid(f"Field '{snake(name)}' is immutable.", snake(name))

    def store_update(
        self, req: Request, kind: Kind, key: str, old: dict[str, Any], new: dict[str, Any], verb: str
    ) -> dict[str, Any]:
        """Stores a changed resource (after the API's rules) and answers it, or its operation."""
        sent_etag = (req.raw_body or {}).get("etag") if isinstance(req.raw_body, dict) else None
        if self.etag_checks and sent_etag and "etag" in old and sent_etag != old["etag"]:
            raise ApiError("ABORTED", f"The etag of '{key}' does not match: it changed since it was read.")
        self.check_immutable(kind, old, new)
        self.validate(req, kind, key, new, old)
        if req.query.get("validateOnly"):
            return self.present(kind, key, new)
        self.touch(kind, new)
        lro = self.is_lro(req.method)
        if lro:
            new.update(kind.updating)
        self.store[key] = new
        if not lro:
            self.on_ready(kind, key, new)
            return self.present(kind, key, new)
        return self.start_operation(req, verb, key, kind, self._completion(kind, key, kind.updating))

    def generic_delete(self, req: Request) -> dict[str, Any]:
        """Deletes a resource (and what is under it)."""
        key = self.canonical(self.path_key(req))
        kind = self.kind_of(key.rsplit("/", 2)[-2])
        resource = self.lookup(key, kind)
        etag = req.query.get("etag")
        if etag and resource.get("etag") and etag != resource["etag"]:
            raise ApiError("ABORTED", f"The etag of '{key}' does not match: it changed since it was read.")
        self.check_delete(req, kind, key, resource)
        if not self.is_lro(req.method):
            self.remove(key)
            return {}
        resource.update(kind.deleting)
        last = copy.deepcopy(resource)

        def complete() -> dict[str, Any] | None:
            self.remove(key)
            if self.lro == "google" and self.delete_returns_resource:
                return self.lro_result(kind, key, last)
            return None

        return self.start_operation(req, "DELETE", key, kind, complete)

    def remove(self, key: str) -> None:
        """Forgets a resource, what is under it and its IAM policy."""
        for name in [k for k in self.store if k == key or k.startswith(key + "/")]:
            del self.store[name]
        for name in [k for k in self.policies if k == key or k.startswith(key + "/")]:
            del self.policies[name]

    # -- IAM ---------------------------------------------------------------------------------------------

    def iam_resource(self, req: Request) -> str:
        """The resource an IAM method is for; 404 when it does not exist."""
        key = self.canonical(self.path_key(req))
        if key not in self.store:
            raise self.missing(key)
        return key

    def policy(self, key: str) -> dict[str, Any]:
        """The IAM policy of ``key`` (an empty one, etag ``ACAB``, until one is set)."""
        return self.policies.setdefault(key, {"version": 1, "etag": "ACAB"})

    def generic_getIamPolicy(self, req: Request) -> dict[str, Any]:
        """The resource's IAM policy."""
        if req.method.request:
            self.body(req)
        return copy.deepcopy(self.policy(self.iam_resource(req)))

    def generic_setIamPolicy(self, req: Request) -> dict[str, Any]:
        """Replaces the resource's IAM policy; 409 ABORTED when the policy's etag is stale."""
        body = self.body(req)
        key = self.iam_resource(req)
        return self.set_policy(key, body.get("policy") or {})

    def set_policy(self, key: str, policy: dict[str, Any]) -> dict[str, Any]:
        """Checks and stores ``policy`` for ``key``; answers it with its new etag."""
        current = self.policy(key)
        etag = policy.get("etag")
        if etag and etag != current.get("etag"):
            raise ApiError(
                "ABORTED",
                "There were concurrent policy changes. Please retry the whole read-modify-write with "
                f"exponential backoff. The request's ETag '{etag}' did not match the current policy's "
                f"ETag '{current.get('etag')}'.",
            )
        self.check_policy(policy)
        stored = {k: copy.deepcopy(v) for k, v in policy.items() if k != "etag"}
        if stored.get("bindings") == []:
            stored.pop("bindings")
        stored.setdefault("version", 1)
        stored["etag"] = new_etag()
        self.policies[key] = stored
        return copy.deepcopy(stored)

    def check_policy(self, policy: dict[str, Any]) -> None:
        """400 for a malformed binding: a bad role or member, a condition below version 3, a missing SA."""
        version = policy.get("version", 1)
        if version not in (0, 1, 3):
            raise invalid(f"Invalid policy version {version}: it must be 1 or 3.", "policy.version")
        for index, binding in enumerate(policy.get("bindings", [])):
            role = binding.get("role", "")
            if not _ROLE.match(role):
                raise invalid(
                    f"Role {role or '(none)'} is not supported for this resource.",
                    f"policy.bindings[{index}]",
                )
            if binding.get("condition") and version != 3:
                raise invalid(
                    "Policies with conditional role bindings must set version 3.", f"policy.bindings[{index}]"
                )
            members = binding.get("members", [])
            if not members:
                raise invalid(f"Binding for role {role} has no members.", f"policy.bindings[{index}].members")
            for member in members:
                if not _MEMBER.match(member):
                    raise invalid(f"Invalid member: {member}.", f"policy.bindings[{index}].members")
                email = member.split(":", 1)[1] if member.startswith("serviceAccount:") else None
                if email and not self.fake.service_account_exists(email):
                    raise invalid(
                        f"Service account {member.split(':', 1)[1]} does not exist.",
                        f"policy.bindings[{index}].members",
                    )

    def generic_testIamPermissions(self, req: Request) -> dict[str, Any]:
        """Every permission asked for (the fake authorizes everything)."""
        body = self.body(req)
        self.iam_resource(req)
        permissions = body.get("permissions", [])
        return {"permissions": permissions} if permissions else {}

    # -- operations --------------------------------------------------------------------------------------

    def operation_parent(self, target: str) -> str | None:
        """The scope of a ``google.longrunning`` operation on ``target`` (its location, if it has one)."""
        match = re.match(r"^(projects/[^/]+/locations/[^/]+)/", target)
        return match.group(1) if match else None

    def metadata(self, verb: str, kind: Kind | None, target: str) -> dict[str, Any] | None:
        """An operation's ``metadata`` (the API's OperationMetadata, by default)."""
        if self.operation_metadata is None:
            return None
        stamp = now_rfc3339()
        return {
            "@type": self.operation_metadata,
            "createTime": stamp,
            "target": target,
            "verb": verb.lower(),
            "apiVersion": self.version,
        }

    def start_operation(
        self,
        req: Request | None,
        verb: str,
        target: str,
        kind: Kind | None,
        complete: Callable[[], dict[str, Any] | None] | None,
        *,
        delay: float | None = None,
    ) -> dict[str, Any]:
        """Starts a long-running operation on ``target``, due after the fake's delay; answers it not done."""
        name = google_name(self.operation_parent(target))
        op = Operation(
            api=self.api,
            style="google",
            key=name,
            name=name,
            verb=verb,
            target=target,
            due=time.time() + (self.fake.delay_for(self.api) if delay is None else delay),
            complete=complete,
            metadata=self.metadata(verb, kind, target),
        )
        return self.register(op)

    def register(self, op: Operation) -> dict[str, Any]:
        """Keeps an operation for its API's operations methods; answers it."""
        self.fake.operations[(self.api, op.key)] = op
        return render(op)

    def done_operation(self, req: Request, kind: Kind, key: str, resource: dict[str, Any]) -> dict[str, Any]:
        """An operation that is done at once (``validateOnly``), with nothing stored."""
        op = Operation(
            api=self.api,
            style=self.lro,
            key=google_name(self.operation_parent(key)),
            name="",
            verb="CREATE",
            target=key,
            due=time.time(),
            done=True,
            finished=time.time(),
            result=self.lro_result(kind, key, resource),
        )
        op.name = op.key
        return render(op)

    def find_operation(self, key: str) -> Operation:
        """The operation ``key``; 404 when there is none."""
        op = self.fake.operations.get((self.api, key))
        if op is None:
            raise not_found(f"Operation '{key}' was not found.")
        return op

    def operation_method(self, req: Request) -> dict[str, Any]:
        """The operations collection: get, list, wait, delete, cancel."""
        verb = req.method.verb
        key = self.path_key(req)
        if verb == "get":
            return render(self.find_operation(self.operation_key(key)))
        if verb == "wait":
            op = self.find_operation(self.operation_key(key.removesuffix("/wait")))
            self.fake.wait_for(op, timeout=self.wait_timeout())
            return render(op)
        if verb == "list":
            return self.list_operations(req, key)
        if verb == "delete":
            self.fake.operations.pop((self.api, self.find_operation(self.operation_key(key)).key))
            return {}
        if verb == "cancel":
            op = self.find_operation(self.operation_key(key.removesuffix("/cancel")))
            if not op.done:
                op.complete = None
                op.error = ApiError("CANCELLED", "Operation was cancelled.")
                op.finish(time.time())
            return {}
        raise ApiError("UNIMPLEMENTED", f"The fake does not implement {req.method.id}.")

    def operation_key(self, path: str) -> str:
        """The key of the operation a request path names."""
        return path

    def wait_timeout(self) -> float:
        """How long an operations ``wait`` waits at most (Compute Engine's is two minutes)."""
        return 5.0

    def list_operations(self, req: Request, collection: str) -> dict[str, Any]:
        """The operations under ``collection``."""
        ops = [op for (api, key), op in sorted(self.fake.operations.items()) if api == self.api]
        if collection not in ("operations", ""):
            ops = [op for op in ops if op.key.startswith(collection.removesuffix("/operations"))]
        page, token = self.paginate(req, ops)
        body: dict[str, Any] = {}
        if page:
            body["operations"] = [render(op) for op in page]
        if token:
            body["nextPageToken"] = token
        return body


def lock_free_sleep(seconds: float, lock: threading.RLock) -> None:
    """Sleeps with ``lock`` released (held once by this thread), so other requests go on meanwhile."""
    lock.release()
    try:
        time.sleep(seconds)
    finally:
        lock.acquire()
