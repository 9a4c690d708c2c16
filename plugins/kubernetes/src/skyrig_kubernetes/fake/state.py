"""The stored objects and every write to them, for the FAKE Kubernetes API server
(:mod:`skyrig_kubernetes.fake`).

:class:`State` is the fake's etcd and its write path in one place, independent of HTTP: create, replace,
the three patch types, server-side apply, delete with propagation, and the writes the fake's own
controllers make. Every client write goes through :meth:`State._commit`: identity from the URL, server
metadata kept, status kept off the main resource (and the rest off ``/status``), defaults, the strict
schema, the server's rules, ``generation`` bumped on spec changes, ``managedFields`` recorded, a new
``resourceVersion`` from one global counter, and nothing written when nothing changed. One re-entrant lock
(:attr:`State.lock`) guards it all; callers hold it.
"""

from __future__ import annotations

import copy
import datetime
import json
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import yaml

from skyrig_kubernetes.fake import defaults, errors, managed, rules
from skyrig_kubernetes.fake.kinds import KINDS, Kind, by_kind
from skyrig_kubernetes.fake.merge import json_patch, merge_patch, strategic_merge_patch
from skyrig_kubernetes.fake.schema import Schema
from skyrig_kubernetes.fake.watch import Journal

APPLY = "application/apply-patch+yaml"
MERGE = "application/merge-patch+json"
STRATEGIC = "application/strategic-merge-patch+json"
JSON_PATCH = "application/json-patch+json"
PATCH_TYPES = (APPLY, MERGE, STRATEGIC, JSON_PATCH)
#: ``fieldValidation`` values: the fake's default is Strict (the real server's is Warn); Warn drops unknown
#: fields as Ignore does, without the Warning header.
FIELD_VALIDATION = ("Strict", "Warn", "Ignore")

#: How the server names a delete precondition in its message.
_LABELS = {"uid": "UID", "resourceVersion": "ResourceVersion"}

NAMESPACE = next(kind for kind in KINDS if kind.kind == "Namespace")


def now() -> str:
    """The server's timestamp format: RFC 3339 in UTC, whole seconds."""
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _spec_of(obj: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in obj.items() if key not in ("metadata", "status")}


def _same(old: dict[str, Any], new: dict[str, Any]) -> bool:
    def strip(obj: dict[str, Any]) -> dict[str, Any]:
        out = dict(obj)
        out["metadata"] = {k: v for k, v in (obj.get("metadata") or {}).items() if k != "resourceVersion"}
        return out

    return strip(old) == strip(new)


class State:
    """Every object the fake stores, keyed by (kind, namespace, name), and the writes to them."""

    def __init__(self, schema: Schema, namespace_delay: float) -> None:
        self.schema = schema
        self.namespace_delay = namespace_delay
        self.lock = threading.RLock()
        #: Per kind, the objects by (namespace, name).
        self._objects: dict[str, dict[tuple[str, str], dict[str, Any]]] = {kind.kind: {} for kind in KINDS}
        self._revision = 0
        self._addresses = 0
        #: Every change, for watches.
        self.journal = Journal(self.lock)
        #: When (monotonic) each terminating namespace goes away.
        self.terminating: dict[str, float] = {}

    # -- storage -------------------------------------------------------------------------------------

    @property
    def revision(self) -> str:
        """The latest resourceVersion handed out."""
        return str(self._revision)

    def get(self, kind: Kind, namespace: str, name: str) -> dict[str, Any] | None:
        """The stored object (not a copy: callers copy what they hand out)."""
        return self._objects[kind.kind].get((namespace if kind.namespaced else "", name))

    def items(self, kind: Kind, namespace: str | None = None) -> list[dict[str, Any]]:
        """The stored objects of ``kind`` (in ``namespace``, or all), by namespace and name."""
        stored = self._objects[kind.kind]
        return [stored[key] for key in sorted(stored) if namespace is None or key[0] == namespace]

    def everything(self) -> Iterator[tuple[Kind, dict[str, Any]]]:
        """Every stored object with its kind."""
        for kind in KINDS:
            for obj in list(self._objects[kind.kind].values()):
                yield kind, obj

    def save(self, kind: Kind, obj: dict[str, Any]) -> dict[str, Any]:
        """Stores ``obj`` with a new resourceVersion, and tells the watches."""
        self._revision += 1
        obj["metadata"]["resourceVersion"] = str(self._revision)
        metadata = obj["metadata"]
        stored = self._objects[kind.kind]
        key = (metadata.get("namespace", ""), metadata["name"])
        self.journal.record(self._revision, "MODIFIED" if key in stored else "ADDED", kind.kind, obj)
        stored[key] = obj
        return obj

    def write_as(
        self,
        kind: Kind,
        before: dict[str, Any] | None,
        after: dict[str, Any],
        manager: str,
        subresource: str = "",
    ) -> dict[str, Any]:
        """Stores a change the fake's controllers made, recorded in managedFields as ``manager``'s Update
        (``kube-controller-manager``, ``kubelet``), as the real components' writes are; fields the fake's
        Kubernetes version does not have yet are left out."""
        self.schema.prune_unknown(kind, after)
        managed.record_update(
            self.schema,
            self.schema.root(kind),
            before,
            after,
            manager=manager,
            api_version=kind.api_version,
            now=now(),
            subresource=subresource,
            status_subresource="status" in kind.subresources,
        )
        return self.save(kind, after)

    def discard(self, kind: Kind, namespace: str, name: str) -> dict[str, Any] | None:
        """Removes an object, answering it."""
        self._revision += 1
        removed = self._objects[kind.kind].pop((namespace if kind.namespaced else "", name), None)
        if removed is not None:
            removed["metadata"]["resourceVersion"] = str(self._revision)
            self.journal.record(self._revision, "DELETED", kind.kind, removed)
        return removed

    def clear(self) -> None:
        """Forgets every object."""
        for stored in self._objects.values():
            stored.clear()
        self.terminating.clear()
        self.journal.events.clear()

    def allocate_ip(self) -> str:
        """A cluster IP from 10.96.0.0/12 not handed out before."""
        self._addresses += 1
        return f"10.96.{self._addresses // 250}.{self._addresses % 250 + 1}"

    def new_metadata(self, kind: Kind, obj: dict[str, Any]) -> None:
        """Gives a new object its uid, creationTimestamp and (for kinds that keep one) generation."""
        metadata = obj.setdefault("metadata", {})
        metadata["uid"] = str(uuid.uuid4())
        metadata["creationTimestamp"] = now()
        if kind.generation:
            metadata["generation"] = 1

    # -- checks --------------------------------------------------------------------------------------

    def _namespace_for_create(self, kind: Kind, namespace: str, name: str) -> None:
        if not kind.namespaced:
            return
        found = self.get(NAMESPACE, "", namespace)
        if found is None:
            raise errors.not_found("namespaces", "", namespace)
        if found["metadata"].get("deletionTimestamp"):
            raise errors.ApiError(
                403,
                "Forbidden",
                f'{errors.qualified(kind.plural, kind.group)} "{name}" is forbidden: unable to create new '
                f"content in namespace {namespace} because it is being terminated",
                name=name,
                group=kind.group,
                kind=kind.plural,
                causes=[
                    errors.cause(
                        "metadata.namespace",
                        f"namespace {namespace} is being terminated",
                        "NamespaceTerminating",
                    )
                ],
            )

    @staticmethod
    def _identity(kind: Kind, body: Any, namespace: str, name: str | None) -> dict[str, Any]:
        if not isinstance(body, dict):
            raise errors.bad_request(f"the body of the request is not a {kind.kind} object")
        if body.get("apiVersion") not in (None, kind.api_version) or body.get("kind") not in (
            None,
            kind.kind,
        ):
            raise errors.bad_request(
                f"the API version in the data ({body.get('apiVersion')}) and kind ({body.get('kind')}) do "
                f"not match the expected API version ({kind.api_version}) and kind ({kind.kind})"
            )
        metadata = body.get("metadata") if isinstance(body.get("metadata"), dict) else {}
        given_namespace = metadata.get("namespace")
        if kind.namespaced and given_namespace and given_namespace != namespace:
            raise errors.bad_request(
                "the namespace of the provided object does not match the namespace sent on the request"
            )
        if name is not None and metadata.get("name") not in (None, name):
            raise errors.bad_request(
                f"the name of the object ({metadata.get('name')}) does not match the name on the URL ({name})"
            )
        return copy.deepcopy(body)

    # -- the write path ------------------------------------------------------------------------------

    def _commit(
        self,
        kind: Kind,
        namespace: str,
        name: str,
        old: dict[str, Any] | None,
        new: dict[str, Any],
        *,
        manager: str | None,
        subresource: str = "",
        dry_run: bool = False,
    ) -> dict[str, Any]:
        """Completes, checks and stores ``new`` (replacing ``old``); ``manager`` None: managedFields were
        already set (server-side apply)."""
        new["apiVersion"], new["kind"] = kind.api_version, kind.kind
        metadata = new.setdefault("metadata", {})
        metadata["name"] = name
        if kind.namespaced:
            metadata["namespace"] = namespace
        else:
            metadata.pop("namespace", None)
        has_status = "status" in kind.subresources
        if old is not None:
            for key in ("uid", "creationTimestamp", "generation", "deletionTimestamp", "resourceVersion"):
                if key in old["metadata"]:
                    metadata[key] = old["metadata"][key]
                else:
                    metadata.pop(key, None)
            if subresource == "status":
                keep = copy.deepcopy(old)
                keep["status"] = new.get("status")
                if not keep["status"]:
                    keep.pop("status")
                keep["metadata"]["managedFields"] = metadata.get("managedFields", [])
                new, metadata = keep, keep["metadata"]
            elif has_status:
                if "status" in old:
                    new["status"] = copy.deepcopy(old["status"])
                else:
                    new.pop("status", None)
            if kind.kind == "Service":
                self._keep_cluster_ip(old, new)
        else:
            for key in ("uid", "creationTimestamp", "generation", "deletionTimestamp", "resourceVersion"):
                metadata.pop(key, None)
            if has_status:
                new.pop("status", None)
            self.new_metadata(kind, new)
        # the client's fields first: the defaults below must not hide an unknown one
        self.schema.validate(kind, new, partial=True)
        defaults.apply_defaults(kind.kind, new, self.allocate_ip)
        if kind.kind == "Job" and old is not None:
            spec = new.get("spec") or {}
            old_spec = old.get("spec") or {}
            if isinstance(spec, dict) and "selector" not in spec:
                spec["selector"] = old_spec.get("selector")
        self.schema.prune_unknown(kind, new)  # defaults of fields this version's schema does not have yet
        self.schema.validate(kind, new)
        if subresource != "status":
            rules.check(kind, new, old)
        if old is not None and kind.generation and _spec_of(old) != _spec_of(new):
            metadata["generation"] = int(old["metadata"].get("generation", 1)) + 1
        if manager is not None:
            managed.record_update(
                self.schema,
                self.schema.root(kind),
                old,
                new,
                manager=manager,
                api_version=kind.api_version,
                now=now(),
                subresource=subresource,
                status_subresource=has_status,
            )
        if old is not None and _same(old, new):
            return copy.deepcopy(old)
        if dry_run:
            return new
        return copy.deepcopy(self.save(kind, new))

    @staticmethod
    def _keep_cluster_ip(old: dict[str, Any], new: dict[str, Any]) -> None:
        old_spec, spec = old.get("spec") or {}, new.get("spec")
        if isinstance(spec, dict) and old_spec.get("clusterIP") and not spec.get("clusterIP"):
            spec["clusterIP"] = old_spec["clusterIP"]
            if not spec.get("clusterIPs"):
                spec["clusterIPs"] = old_spec.get("clusterIPs", [old_spec["clusterIP"]])

    def create(
        self,
        kind: Kind,
        namespace: str,
        body: Any,
        *,
        manager: str,
        dry_run: bool = False,
        field_validation: str = "Strict",
    ) -> dict[str, Any]:
        """POST: a new object (409 AlreadyExists when its name is taken)."""
        obj = self._identity(kind, body, namespace, None)
        self._prune(kind, obj, field_validation)
        metadata = obj.setdefault("metadata", {})
        if metadata.get("resourceVersion"):
            raise errors.bad_request("resourceVersion should not be set on objects to be created")
        if not metadata.get("name") and metadata.get("generateName"):
            metadata["name"] = metadata["generateName"] + uuid.uuid4().hex[:5]
        name = metadata.get("name") or ""
        if not name:
            self.schema.validate(kind, obj)
            rules.check(kind, obj, None)
        self._namespace_for_create(kind, namespace, name)
        if self.get(kind, namespace, name) is not None:
            raise errors.already_exists(kind.plural, kind.group, name)
        metadata.pop("managedFields", None)
        return self._commit(kind, namespace, name, None, obj, manager=manager, dry_run=dry_run)

    def _prune(self, kind: Kind, obj: dict[str, Any], field_validation: str) -> None:
        if field_validation not in FIELD_VALIDATION:
            raise errors.bad_request(
                f'fieldValidation: Unsupported value: "{field_validation}": supported values: "Ignore", '
                '"Strict", "Warn"'
            )
        if field_validation != "Strict":
            self.schema.prune_unknown(kind, obj)

    def _existing(self, kind: Kind, namespace: str, name: str) -> dict[str, Any]:
        found = self.get(kind, namespace, name)
        if found is None:
            raise errors.not_found(kind.plural, kind.group, name)
        return found

    @staticmethod
    def _precondition(kind: Kind, old: dict[str, Any], new: dict[str, Any], name: str) -> None:
        wanted = (new.get("metadata") or {}).get("resourceVersion")
        if wanted and wanted != old["metadata"].get("resourceVersion"):
            raise errors.stale(kind.plural, kind.group, name)

    def replace(
        self,
        kind: Kind,
        namespace: str,
        name: str,
        body: Any,
        *,
        manager: str,
        subresource: str = "",
        dry_run: bool = False,
        field_validation: str = "Strict",
    ) -> dict[str, Any]:
        """PUT: the whole object (409 Conflict when its resourceVersion is stale)."""
        obj = self._identity(kind, body, namespace, name)
        self._prune(kind, obj, field_validation)
        old = self._existing(kind, namespace, name)
        self._precondition(kind, old, obj, name)
        obj.setdefault("metadata", {})["managedFields"] = copy.deepcopy(
            old["metadata"].get("managedFields", [])
        )
        return self._commit(
            kind, namespace, name, old, obj, manager=manager, subresource=subresource, dry_run=dry_run
        )

    def patch(
        self,
        kind: Kind,
        namespace: str,
        name: str,
        content_type: str,
        body: bytes,
        *,
        manager: str | None,
        force: bool = False,
        subresource: str = "",
        dry_run: bool = False,
        field_validation: str = "Strict",
    ) -> tuple[dict[str, Any], bool]:
        """PATCH of any of the four types; answers the object and whether it was created (apply only)."""
        if content_type == APPLY:
            return self._apply(
                kind,
                namespace,
                name,
                body,
                manager=manager,
                force=force,
                subresource=subresource,
                dry_run=dry_run,
                field_validation=field_validation,
            )
        if force:
            raise errors.bad_request("force may not be specified for non-apply patch")
        try:
            patch = json.loads(body or b"null")
        except ValueError as error:
            raise errors.bad_request(f"the body of the request was in an unknown format: {error}") from None
        old = self._existing(kind, namespace, name)
        current = copy.deepcopy(old)
        if content_type == JSON_PATCH:
            if not isinstance(patch, list):
                raise errors.bad_request("a JSON patch must be a list of operations")
            result = json_patch(current, patch)
        elif not isinstance(patch, dict):
            raise errors.bad_request("a merge patch must be a JSON object")
        elif content_type == MERGE:
            result = merge_patch(current, patch)
        else:
            result = strategic_merge_patch(self.schema, self.schema.root(kind), current, patch)
        if not isinstance(result, dict):
            raise errors.bad_request("the patched object is not an object")
        self._identity(kind, result, namespace, name)
        self._prune(kind, result, field_validation)
        self._precondition(kind, old, result, name)
        result.setdefault("metadata", {})["managedFields"] = copy.deepcopy(
            old["metadata"].get("managedFields", [])
        )
        return self._commit(
            kind,
            namespace,
            name,
            old,
            result,
            manager=manager or "unknown",
            subresource=subresource,
            dry_run=dry_run,
        ), False

    def _apply(
        self,
        kind: Kind,
        namespace: str,
        name: str,
        body: bytes,
        *,
        manager: str | None,
        force: bool,
        subresource: str,
        dry_run: bool,
        field_validation: str,
    ) -> tuple[dict[str, Any], bool]:
        if not manager:
            raise errors.bad_request("PATCH: fieldManager is required for apply requests")
        try:
            config = yaml.safe_load(body or b"")
        except yaml.YAMLError as error:
            raise errors.bad_request(f"error decoding YAML: {error}") from None
        if not isinstance(config, dict):
            raise errors.bad_request("the apply configuration must be an object")
        if config.get("apiVersion") != kind.api_version or config.get("kind") != kind.kind:
            raise errors.bad_request(
                f"the API version in the data ({config.get('apiVersion')}) and kind "
                f"({config.get('kind')}) do not match the expected API version ({kind.api_version}) and kind "
                f"({kind.kind})"
            )
        self._identity(kind, config, namespace, name)
        metadata = config.get("metadata") if isinstance(config.get("metadata"), dict) else {}
        if metadata.get("managedFields") is not None:
            raise errors.bad_request("metadata.managedFields must be nil")
        self._prune(kind, config, field_validation)
        self.schema.validate(kind, config, apply=True, partial=True)
        old = self.get(kind, namespace, name)
        if old is None:
            if subresource:
                raise errors.not_found(kind.plural, kind.group, name)
            self._namespace_for_create(kind, namespace, name)
            live: dict[str, Any] = {}
        else:
            self._precondition(kind, old, config, name)
            live = copy.deepcopy(old)
        merged = managed.apply(
            self.schema,
            self.schema.root(kind),
            live,
            config,
            manager=manager,
            api_version=kind.api_version,
            now=now(),
            force=force,
            subresource=subresource,
            status_subresource="status" in kind.subresources,
        )
        if old is None:
            merged.get("metadata", {}).pop("resourceVersion", None)
        stored = self._commit(
            kind, namespace, name, old, merged, manager=None, subresource=subresource, dry_run=dry_run
        )
        return stored, old is None

    def delete(
        self,
        kind: Kind,
        namespace: str,
        name: str,
        *,
        propagation: str | None,
        dry_run: bool = False,
        preconditions: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """DELETE: answers the Status (or, for a namespace, the object now Terminating); ``preconditions``
        (uid, resourceVersion) that do not hold are 409 Conflict."""
        obj = self._existing(kind, namespace, name)
        for key, wanted in (preconditions or {}).items():
            if wanted and obj["metadata"].get(key) != wanted:
                raise errors.ApiError(
                    409,
                    "Conflict",
                    f'Operation cannot be fulfilled on {errors.qualified(kind.plural, kind.group)} "{name}": '
                    f"Precondition failed: {_LABELS.get(key, key)} in precondition: {wanted}, "
                    f"{_LABELS.get(key, key)} in object meta: {obj['metadata'].get(key)}",
                    name=name,
                    group=kind.group,
                    kind=kind.plural,
                )
        if kind.kind == "Namespace":
            if dry_run or obj["metadata"].get("deletionTimestamp"):
                return copy.deepcopy(obj)
            obj["metadata"]["deletionTimestamp"] = now()
            obj.setdefault("status", {})["phase"] = "Terminating"
            self.terminating[name] = time.monotonic() + self.namespace_delay
            return copy.deepcopy(self.save(kind, obj))
        if propagation not in (None, "Orphan", "Background", "Foreground"):
            raise errors.bad_request(
                f'propagationPolicy "{propagation}" is not supported: Orphan, Background or Foreground'
            )
        if propagation is None:
            propagation = "Orphan" if kind.kind == "Job" else "Background"
        if not dry_run:
            self.remove_tree(kind, obj, propagation)
        if kind.kind == "Pod":
            # the real server answers a Pod's (graceful) deletion with the Pod; the fake's is immediate
            answer = copy.deepcopy(obj)
            answer["metadata"]["deletionTimestamp"] = now()
            answer["metadata"]["deletionGracePeriodSeconds"] = (obj.get("spec") or {}).get(
                "terminationGracePeriodSeconds", 30
            )
            return answer
        details = {"name": name, "group": kind.group, "kind": kind.plural, "uid": obj["metadata"]["uid"]}
        if not kind.group:
            del details["group"]
        return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "details": details}

    def remove_tree(self, kind: Kind, obj: dict[str, Any], propagation: str) -> None:
        """Removes ``obj``; its dependents (by ownerReferences) go too, or lose the reference (Orphan)."""
        metadata = obj["metadata"]
        self.discard(kind, metadata.get("namespace", ""), metadata["name"])
        for dependent_kind, dependent in list(self.everything()):
            references = dependent["metadata"].get("ownerReferences") or []
            if not any(reference.get("uid") == metadata["uid"] for reference in references):
                continue
            if propagation == "Orphan":
                dependent["metadata"]["ownerReferences"] = [
                    reference for reference in references if reference.get("uid") != metadata["uid"]
                ]
                if not dependent["metadata"]["ownerReferences"]:
                    del dependent["metadata"]["ownerReferences"]
                self.save(dependent_kind, dependent)
            else:
                self.remove_tree(dependent_kind, dependent, "Background")

    def edit(
        self, api_version: str, kind_name: str, namespace: str, name: str, patch: dict[str, Any], manager: str
    ) -> dict[str, Any]:
        """A merge patch by someone else (a console, ``kubectl edit``), recorded as their Update."""
        kind = by_kind(api_version, kind_name)
        if kind is None:
            raise KeyError(f"the FAKE Kubernetes API server does not serve {api_version} {kind_name}")
        stored, _ = self.patch(kind, namespace, name, MERGE, json.dumps(patch).encode(), manager=manager)
        return stored
