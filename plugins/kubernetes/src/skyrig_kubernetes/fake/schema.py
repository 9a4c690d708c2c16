"""The official Kubernetes OpenAPI schemas, for the FAKE Kubernetes API server
(:mod:`skyrig_kubernetes.fake`).

kubernetes-validate ships the schemas of Kubernetes v1.25 to v1.37 as JSON Schema, in a normal and a
``-strict`` flavour (every object ``additionalProperties: false``). The fake reads the strict one of its
version, once per process (:func:`schema_for` caches it at module level), and uses it twice:

- to validate each written object (:meth:`Schema.validate`): an unknown field is a strict decoding error
  (400, as the real server answers with ``fieldValidation=Strict``), a missing required field or a value
  outside an enum is 422 Invalid;
- to walk an object the way server-side apply and strategic merge patch do (:meth:`Schema.child`,
  :meth:`Schema.items`, :meth:`Schema.shape`): the ``x-kubernetes-list-type``/``-list-map-keys``,
  ``x-kubernetes-map-type`` and ``x-kubernetes-patch-*`` extensions say which lists merge by which keys.
"""

from __future__ import annotations

import base64
import binascii
import functools
import json
import re
import threading
from dataclasses import dataclass
from importlib import resources
from typing import Any

import jsonschema
from referencing import Registry, Resource

from skyrig_kubernetes.fake import errors
from skyrig_kubernetes.fake.kinds import Kind

_SCHEMAS = resources.files("kubernetes_validate") / "kubernetes-json-schema"

#: The formats the server decodes (and so refuses when malformed): base64 ``byte`` (a Secret's data).
_FORMATS = jsonschema.FormatChecker(formats=())


@_FORMATS.checks("byte", raises=(binascii.Error, ValueError))
def _base64(value: object) -> bool:
    if isinstance(value, str):
        base64.b64decode(value, validate=True)
    return True


def versions() -> list[str]:
    """The Kubernetes minor versions kubernetes-validate ships schemas for, oldest first (``"1.37"``)."""
    found = set()
    for entry in _SCHEMAS.iterdir():
        match = re.fullmatch(r"v(\d+)\.(\d+)\.\d+-local-strict", entry.name)
        if match:
            found.add((int(match[1]), int(match[2])))
    return [f"{major}.{minor}" for major, minor in sorted(found)]


def latest_version() -> str:
    """The newest version the schemas cover: the fake's default."""
    return versions()[-1]


def minor(version: str) -> str:
    """``"1.37"`` from ``"1.37"``, ``"v1.37"`` or ``"1.37.2"``; ValueError for a version without schemas."""
    match = re.fullmatch(r"v?(\d+)\.(\d+)(?:\.\d+)?", version)
    if not match or f"{match[1]}.{match[2]}" not in versions():
        raise ValueError(
            f"kubernetes-validate ships no schema for Kubernetes {version!r}; known: {versions()}"
        )
    return f"{match[1]}.{match[2]}"


@dataclass(frozen=True)
class Shape:
    """How server-side apply and strategic merge patch treat a node of the schema."""

    #: ``struct`` (named fields), ``map`` (free keys: labels), ``list`` or ``leaf`` (scalars, atomic maps).
    kind: str
    #: For lists: ``atomic``, ``set`` or ``map`` (an associative list).
    list_type: str = "atomic"
    #: For associative lists: the keys that name an item (``("containerPort", "protocol")``).
    keys: tuple[str, ...] = ()
    #: Strategic merge patch's merge key and strategy (``merge``, ``retainKeys``, ``replace``).
    merge_key: str | None = None
    patch_strategy: str = ""


_LEAF = Shape("leaf")


class Schema:
    """One Kubernetes version's strict schema: validation and navigation."""

    def __init__(self, version: str) -> None:
        self.version = version
        self._folder = _SCHEMAS / f"v{version}.0-local-strict"
        document = json.loads((self._folder / "_definitions.json").read_text())
        self.defs: dict[str, dict[str, Any]] = document["$defs"]
        self._registry: Registry = Resource.from_contents(document) @ Registry()
        self._by_gvk: dict[tuple[str, str, str], str] = {}
        for name, definition in self.defs.items():
            for gvk in definition.get("x-kubernetes-group-version-kind", ()):
                self._by_gvk[(gvk["group"], gvk["version"], gvk["kind"])] = name
        self._validators: dict[str, jsonschema.protocols.Validator] = {}
        self._resolved: dict[int, dict[str, Any]] = {}
        self._lock = threading.Lock()

    def root(self, kind: Kind) -> dict[str, Any]:
        """The schema node of a whole object of ``kind``."""
        return self.defs[self._by_gvk[(kind.group, kind.version, kind.kind)]]

    def resolve(self, node: dict[str, Any]) -> dict[str, Any]:
        """``node`` with its ``$ref`` followed (the referring node's own extensions kept)."""
        if "$ref" not in node:
            return node
        cached = self._resolved.get(id(node))
        if cached is None:
            target = self.resolve(self.defs[node["$ref"].rsplit("/", 1)[-1]])
            cached = {**target, **{key: value for key, value in node.items() if key != "$ref"}}
            self._resolved[id(node)] = cached
        return cached

    def child(self, node: dict[str, Any] | None, key: str) -> dict[str, Any] | None:
        """The schema of field (or map entry) ``key`` of an object node, None when it declares none."""
        if node is None:
            return None
        node = self.resolve(node)
        properties = node.get("properties")
        if properties and key in properties:
            return properties[key]
        extra = node.get("additionalProperties")
        return extra if isinstance(extra, dict) else None

    def items(self, node: dict[str, Any] | None) -> dict[str, Any] | None:
        """The schema of a list node's items."""
        if node is None:
            return None
        return self.resolve(node).get("items")

    def is_field(self, node: dict[str, Any] | None, key: str) -> bool:
        """Whether ``key`` is a declared field of a struct node (not a free map key)."""
        return node is not None and key in (self.resolve(node).get("properties") or {})

    def shape(self, node: dict[str, Any] | None) -> Shape:
        """How to merge and track a node (a leaf when the schema says nothing)."""
        if node is None:
            return _LEAF
        node = self.resolve(node)
        types = node.get("type") or []
        types = [types] if isinstance(types, str) else types
        if "array" in types:
            return Shape(
                "list",
                list_type=node.get("x-kubernetes-list-type", "atomic"),
                keys=tuple(node.get("x-kubernetes-list-map-keys", ())),
                merge_key=node.get("x-kubernetes-patch-merge-key"),
                patch_strategy=node.get("x-kubernetes-patch-strategy", ""),
            )
        if "object" in types and node.get("x-kubernetes-map-type") != "atomic":
            if node.get("properties"):
                return Shape("struct", patch_strategy=node.get("x-kubernetes-patch-strategy", ""))
            if isinstance(node.get("additionalProperties"), dict):
                return Shape("map", patch_strategy=node.get("x-kubernetes-patch-strategy", ""))
        return _LEAF

    def _validator(self, kind: Kind) -> jsonschema.protocols.Validator:
        with self._lock:
            validator = self._validators.get(kind.kind)
            if validator is None:
                group = kind.group.split(".")[0]
                suffix = f"{group}-{kind.version}" if group else kind.version
                document = json.loads((self._folder / f"{kind.kind.lower()}-{suffix}.json").read_text())
                registry = Resource.from_contents(document) @ self._registry
                validator = jsonschema.Draft202012Validator(
                    document, registry=registry, format_checker=_FORMATS
                )
                self._validators[kind.kind] = validator
            return validator

    def prune_unknown(self, kind: Kind, obj: dict[str, Any]) -> None:
        """Drops the fields the schema does not declare, in place (``fieldValidation`` Ignore or Warn)."""
        for error in list(self._validator(kind).iter_errors(obj)):
            if error.validator != "additionalProperties" or not isinstance(error.instance, dict):
                continue
            for name in set(error.instance) - set(error.schema.get("properties", {})):
                error.instance.pop(name, None)

    def validate(
        self, kind: Kind, obj: dict[str, Any], *, apply: bool = False, partial: bool = False
    ) -> None:
        """Raises the real server's error for an object the schema refuses: 400 for unknown fields and
        ill-typed values (the server fails to decode them), 422 Invalid for the rest. ``partial`` (an
        apply configuration) checks only fields and types: required fields may be left to others."""
        unknown: list[str] = []
        undecodable: list[str] = []
        causes: list[dict[str, str]] = []
        for error in self._validator(kind).iter_errors(obj):
            where = field_path(error.absolute_path)
            if error.validator == "additionalProperties":
                extra = sorted(set(error.instance) - set(error.schema.get("properties", {})))
                unknown.extend(f"{where}.{name}" if where else name for name in extra)
            elif error.validator in ("type", "oneOf", "anyOf", "format"):
                undecodable.append(f"{where}: {error.message}")
            elif partial:
                continue
            elif error.validator == "required":
                missing = error.message.split("'")[1]
                causes.append(
                    errors.cause(
                        f"{where}.{missing}" if where else missing, "Required value", "FieldValueRequired"
                    )
                )
            elif error.validator == "enum":
                allowed = ", ".join(f'"{value}"' for value in error.validator_value if value is not None)
                causes.append(
                    errors.cause(
                        where,
                        f"Unsupported value: {json.dumps(error.instance)}: supported values: {allowed}",
                        "FieldValueNotSupported",
                    )
                )
            else:
                causes.append(
                    errors.cause(where, f"Invalid value: {json.dumps(error.instance)}: {error.message}")
                )
        if unknown:
            if apply:
                raise errors.bad_request(
                    "failed to create typed patch object: "
                    + ", ".join(f".{name}: field not declared in schema" for name in unknown)
                )
            raise errors.bad_request(
                "strict decoding error: " + ", ".join(f'unknown field "{name}"' for name in unknown)
            )
        if undecodable:
            raise errors.bad_request("the object could not be decoded: " + "; ".join(undecodable))
        if causes:
            metadata = obj.get("metadata") or {}
            raise errors.invalid(kind.kind, kind.group, str(metadata.get("name", "")), causes)


def field_path(parts: Any) -> str:
    """``spec.template.spec.containers[0].image`` from a JSON path's parts."""
    text = ""
    for part in parts:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


@functools.cache
def _load(version: str) -> Schema:
    return Schema(version)


def schema_for(version: str) -> Schema:
    """The strict schema of a Kubernetes minor version, loaded once per process."""
    return _load(minor(version))
