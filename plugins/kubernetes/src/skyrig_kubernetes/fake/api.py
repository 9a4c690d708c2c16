"""Routing and verbs, for the FAKE Kubernetes API server (:mod:`skyrig_kubernetes.fake`).

:func:`handle` turns one HTTP request into a call on :class:`~skyrig_kubernetes.fake.state.State`, as the
real server's REST handlers do: discovery paths, ``/api/v1/...`` and ``/apis/{group}/{version}/...``
collections (namespaced or cluster-wide), named objects and their ``status`` and ``scale`` subresources.
A path the fake does not serve is 404, a method a resource does not allow 405, in the ``Status`` shape.
"""

from __future__ import annotations

import base64
import copy
import json
from dataclasses import dataclass
from typing import Any

import yaml

from skyrig_kubernetes.fake import discovery, errors
from skyrig_kubernetes.fake.kinds import Kind, by_plural, group_versions
from skyrig_kubernetes.fake.merge import json_patch, merge_patch
from skyrig_kubernetes.fake.selectors import parse_field_selector, parse_label_selector
from skyrig_kubernetes.fake.state import APPLY, JSON_PATCH, PATCH_TYPES, State
from skyrig_kubernetes.fake.watch import DEFAULT_TIMEOUT, WatchStream


@dataclass(frozen=True)
class Request:
    """One HTTP request, as the fake reads it."""

    method: str
    path: str
    query: dict[str, str]
    content_type: str
    body: bytes = b""
    user_agent: str = ""


@dataclass(frozen=True)
class Route:
    """Where a path leads: a discovery document, or a kind's collection, object or subresource."""

    document: dict[str, Any] | None = None
    kind: Kind | None = None
    namespace: str | None = None
    name: str | None = None
    subresource: str = ""


def route(path: str, minor: str, address: str) -> Route:
    """The route of ``path`` (404 NotFound when the fake serves nothing there)."""
    parts = [part for part in path.split("/") if part]
    documents: dict[str, Any] = {
        "version": lambda: discovery.version(minor),
        "api": lambda: discovery.core_versions(address),
        "apis": discovery.groups,
    }
    if len(parts) == 1 and parts[0] in documents:
        return Route(document=documents[parts[0]]())
    if parts[:1] == ["api"] and len(parts) >= 2:
        group, version, rest = "", parts[1], parts[2:]
    elif parts[:1] == ["apis"] and len(parts) >= 2:
        if len(parts) == 2:
            document = discovery.group(parts[1])
            if document is None:
                raise errors.path_not_found()
            return Route(document=document)
        group, version, rest = parts[1], parts[2], parts[3:]
    else:
        raise errors.path_not_found()
    if version not in group_versions().get(group, []):
        raise errors.path_not_found()
    if not rest:
        return Route(document=discovery.resources(group, version))
    namespace = None
    if rest[0] == "namespaces" and len(rest) >= 3 and by_plural(group, version, rest[2]) is not None:
        namespace, rest = rest[1], rest[2:]
    kind = by_plural(group, version, rest[0])
    if kind is None or len(rest) > 3 or (namespace is not None and not kind.namespaced):
        raise errors.path_not_found()
    name = rest[1] if len(rest) >= 2 else None
    subresource = rest[2] if len(rest) == 3 else ""
    if subresource and subresource not in kind.subresources:
        raise errors.path_not_found()
    if name is not None and kind.namespaced and namespace is None:
        raise errors.path_not_found()
    return Route(kind=kind, namespace=namespace, name=name, subresource=subresource)


def verb(method: str, target: Route, query: dict[str, str]) -> str:
    """The Kubernetes verb of a request: get, list, watch, create, update, patch, delete, deletecollection."""
    if target.document is not None:
        return "get"
    named = target.name is not None
    if method == "GET":
        if query.get("watch") in ("true", "1"):
            return "watch"
        return "get" if named else "list"
    return {
        ("POST", False): "create",
        ("PUT", True): "update",
        ("PATCH", True): "patch",
        ("DELETE", True): "delete",
        ("DELETE", False): "deletecollection",
    }.get((method, named), "unsupported")


def _manager(request: Request) -> str:
    manager = request.query.get("fieldManager") or request.user_agent.split("/")[0].strip() or "unknown"
    if len(manager) > 128:
        raise errors.ApiError(422, "Invalid", "fieldManager: Too long: may not be more than 128 bytes")
    return manager


def _dry_run(request: Request, options: dict[str, Any]) -> bool:
    value = request.query.get("dryRun") or options.get("dryRun")
    if isinstance(value, list):
        value = value[0] if value else None
    if value not in (None, "", "All"):
        raise errors.bad_request(f'dryRun: Unsupported value: "{value}": supported values: "All"')
    return value == "All"


def _truthy(value: str | None) -> bool:
    return (value or "").lower() in ("1", "t", "true")


def _key(obj: dict[str, Any]) -> str:
    metadata = obj.get("metadata") or {}
    return f"{metadata.get('namespace', '')}/{metadata.get('name', '')}"


def _continue_from(token: str) -> str:
    try:
        return str(json.loads(base64.urlsafe_b64decode(token.encode()))["start"])
    except (ValueError, KeyError, TypeError):
        raise errors.bad_request("continue key is not valid: the FAKE did not hand it out") from None


def _list(state: State, kind: Kind, namespace: str | None, query: dict[str, str]) -> dict[str, Any]:
    """A list, filtered by the selectors and paged by ``limit`` and ``continue`` (by namespace and name)."""
    labels = parse_label_selector(query.get("labelSelector", ""))
    field_rules = parse_field_selector(query.get("fieldSelector", ""))
    start = _continue_from(query["continue"]) if query.get("continue") else ""
    matching = [
        obj
        for obj in state.items(kind, namespace)
        if _key(obj) >= start
        and all(rule((obj.get("metadata") or {}).get("labels") or {}) for rule in labels)
        and all(rule(obj) for rule in field_rules)
    ]
    metadata: dict[str, Any] = {"resourceVersion": state.revision}
    limit = int(query["limit"]) if query.get("limit", "").isdigit() else 0
    if 0 < limit < len(matching):
        following = {"v": "meta.k8s.io/v1", "rv": int(state.revision), "start": _key(matching[limit])}
        metadata["continue"] = base64.urlsafe_b64encode(json.dumps(following).encode()).decode()
        metadata["remainingItemCount"] = len(matching) - limit
        matching = matching[:limit]
    items = []
    for obj in matching:
        item = copy.deepcopy(obj)
        item.pop("apiVersion", None)
        item.pop("kind", None)
        items.append(item)
    return {"apiVersion": kind.api_version, "kind": f"{kind.kind}List", "metadata": metadata, "items": items}


def _watch(state: State, kind: Kind, target: Route, query: dict[str, str]) -> WatchStream:
    """A watch of a collection (or of one object, by name), from ``resourceVersion`` or from now."""
    labels = parse_label_selector(query.get("labelSelector", ""))
    field_rules = parse_field_selector(query.get("fieldSelector", ""))

    def accepts(obj: dict[str, Any]) -> bool:
        metadata = obj.get("metadata") or {}
        return (
            (target.name is None or metadata.get("name") == target.name)
            and all(rule(metadata.get("labels") or {}) for rule in labels)
            and all(rule(obj) for rule in field_rules)
        )

    version = query.get("resourceVersion", "")
    if version and not version.isdigit():
        raise errors.bad_request(f'invalid resource version "{version}"')
    initial = None
    if version in ("", "0"):
        initial = [copy.deepcopy(obj) for obj in state.items(kind, target.namespace) if accepts(obj)]
        version = state.revision
    try:
        timeout = float(query.get("timeoutSeconds") or DEFAULT_TIMEOUT)
    except ValueError:
        raise errors.bad_request("timeoutSeconds must be a number of seconds") from None
    return WatchStream(state.journal, kind.kind, target.namespace, accepts, initial, int(version), timeout)


def _scale(state: State, kind: Kind, request: Request, target: Route, action: str) -> dict[str, Any]:
    namespace, name = target.namespace or "", target.name or ""
    obj = state.get(kind, namespace, name)
    if obj is None:
        raise errors.not_found(kind.plural, kind.group, name)

    def scale_of(current: dict[str, Any]) -> dict[str, Any]:
        metadata = current["metadata"]
        selector = ((current.get("spec") or {}).get("selector") or {}).get("matchLabels") or {}
        return {
            "kind": "Scale",
            "apiVersion": "autoscaling/v1",
            "metadata": {
                key: metadata[key]
                for key in ("name", "namespace", "uid", "resourceVersion", "creationTimestamp")
                if key in metadata
            },
            "spec": {"replicas": (current.get("spec") or {}).get("replicas", 1)},
            "status": {
                "replicas": (current.get("status") or {}).get("replicas", 0),
                "selector": ",".join(f"{key}={value}" for key, value in selector.items()),
            },
        }

    if action == "get":
        return scale_of(obj)
    media = request.content_type.split(";")[0].strip()
    if action == "update":
        wanted = _body(request)
    elif media == APPLY:
        raise errors.bad_request(
            "the FAKE Kubernetes API server does not serve apply on the scale subresource"
        )
    elif media not in PATCH_TYPES:
        raise errors.ApiError(415, "UnsupportedMediaType", f"the patch type {media!r} is not supported")
    else:
        try:
            patch = json.loads(request.body or b"null")
        except ValueError as error:
            raise errors.bad_request(f"the body of the request could not be decoded: {error}") from None
        patched = json_patch if media == JSON_PATCH else merge_patch
        wanted = patched(scale_of(obj), patch)
    replicas = ((wanted or {}).get("spec") or {}).get("replicas")
    if not isinstance(replicas, int) or replicas < 0:
        raise errors.ApiError(
            422,
            "Invalid",
            f'Scale.autoscaling "{name}" is invalid: spec.replicas: Invalid '
            f"value: {json.dumps(replicas)}: must be greater than or equal to 0",
        )
    updated = copy.deepcopy(obj)
    updated["spec"]["replicas"] = replicas
    stored = state.replace(
        kind,
        namespace,
        name,
        updated,
        manager=_manager(request),
        subresource="scale",
        dry_run=_dry_run(request, {}),
    )
    return scale_of(stored)


#: The bodies the fake reads (the real server reads protobuf too; the fake answers 415 for it).
BODY_TYPES = ("application/json", "application/yaml")


def _body(request: Request) -> Any:
    """The request's JSON (or YAML) body; 415 for a media type the fake does not read."""
    media = request.content_type.split(";")[0].strip() or "application/json"
    if media not in BODY_TYPES:
        raise errors.ApiError(
            415,
            "UnsupportedMediaType",
            f"the body of the request was in an unknown format - accepted media types include: "
            f"{', '.join(BODY_TYPES)}",
        )
    try:
        if media == "application/yaml":
            return yaml.safe_load(request.body or b"null")
        return json.loads(request.body or b"null")
    except (ValueError, yaml.YAMLError) as error:
        raise errors.bad_request(f"the body of the request could not be decoded: {error}") from None


def handle(
    state: State, request: Request, minor: str, address: str
) -> tuple[int, dict[str, Any] | WatchStream]:
    """Answers one request: (HTTP status, JSON body, or the events of a watch)."""
    if request.path.rstrip("/") in ("/healthz", "/livez", "/readyz"):
        return 200, {"status": "ok"}
    target = route(request.path, minor, address)
    if target.document is not None:
        if request.method != "GET":
            raise errors.method_not_allowed(request.method)
        return 200, target.document
    kind = target.kind
    assert kind is not None
    action = verb(request.method, target, request.query)
    allowed = ("get", "patch", "update") if target.subresource else kind.verbs
    if action not in allowed:
        raise errors.method_not_allowed(request.method)
    namespace = target.namespace or ""
    with state.lock:
        if target.subresource == "scale":
            return 200, _scale(state, kind, request, target, action)
        if action == "list":
            return 200, _list(state, kind, target.namespace, request.query)
        if action == "watch":
            return 200, _watch(state, kind, target, request.query)
        if action == "get":
            found = state.get(kind, namespace, target.name or "")
            if found is None:
                raise errors.not_found(kind.plural, kind.group, target.name or "")
            return 200, copy.deepcopy(found)
        if action == "create":
            created = state.create(
                kind,
                namespace,
                _body(request),
                manager=_manager(request),
                dry_run=_dry_run(request, {}),
                field_validation=request.query.get("fieldValidation", "Strict"),
            )
            return 201, created
        if action == "update":
            return 200, state.replace(
                kind,
                namespace,
                target.name or "",
                _body(request),
                manager=_manager(request),
                subresource=target.subresource,
                dry_run=_dry_run(request, {}),
                field_validation=request.query.get("fieldValidation", "Strict"),
            )
        if action == "patch":
            content_type = request.content_type.split(";")[0].strip()
            if content_type not in PATCH_TYPES:
                raise errors.ApiError(
                    415,
                    "UnsupportedMediaType",
                    f"the body of the request was in an unknown format - accepted media types "
                    f"include: {', '.join(PATCH_TYPES)}",
                )
            manager = request.query.get("fieldManager") if content_type == APPLY else _manager(request)
            stored, created = state.patch(
                kind,
                namespace,
                target.name or "",
                content_type,
                request.body,
                manager=manager,
                force=_truthy(request.query.get("force")),
                subresource=target.subresource,
                dry_run=_dry_run(request, {}),
                field_validation=request.query.get("fieldValidation", "Strict"),
            )
            return (201 if created else 200), stored
        options = _body(request) if request.body else {}
        options = options if isinstance(options, dict) else {}
        propagation = request.query.get("propagationPolicy") or options.get("propagationPolicy")
        if options.get("orphanDependents") is True or _truthy(request.query.get("orphanDependents")):
            propagation = "Orphan"
        dry_run = _dry_run(request, options)
        if action == "delete":
            preconditions = options.get("preconditions")
            return 200, state.delete(
                kind,
                namespace,
                target.name or "",
                propagation=propagation,
                dry_run=dry_run,
                preconditions=preconditions if isinstance(preconditions, dict) else None,
            )
        deleted = _list(state, kind, target.namespace, request.query)
        for item in deleted["items"]:
            state.delete(
                kind,
                item["metadata"].get("namespace", ""),
                item["metadata"]["name"],
                propagation=propagation,
                dry_run=dry_run,
            )
        return 200, deleted
