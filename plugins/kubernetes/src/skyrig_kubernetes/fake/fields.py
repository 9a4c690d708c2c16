"""Field paths and field sets, as server-side apply tracks them, for the FAKE Kubernetes API server
(:mod:`skyrig_kubernetes.fake`).

A path is a tuple of elements: ``("f", name)`` for a struct field or a map key, ``("k", '{"name":"app"}')``
for an item of an associative list (by its ``x-kubernetes-list-map-keys``), ``("v", '"x"')`` for an item of
a set list. :func:`walk` lists the paths an object sets, the way structured-merge-diff does (leaves, list
items, free map keys, empty or null values; struct fields that hold values are only their leaves), and
:func:`encode` / :func:`decode` turn a set of paths into ``fieldsV1`` (``{"f:spec": {"f:replicas": {}}}``,
``"."`` marking a node that is itself in the set).
"""

from __future__ import annotations

import json
from typing import Any

from skyrig_kubernetes.fake.schema import Schema

Path = tuple[tuple[str, str], ...]

#: A node in the set that is not a leaf (a list item, a free map key holding a map): compared by presence.
NODE = object()

#: What the server never tracks in managedFields: identity and bookkeeping.
_STRIPPED_TOP = ("apiVersion", "kind")
_STRIPPED_META = (
    "name",
    "namespace",
    "uid",
    "resourceVersion",
    "generation",
    "creationTimestamp",
    "managedFields",
    "selfLink",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
)

#: Defaults of key fields, so an item that omits one names the same item the server stores.
_KEY_DEFAULTS = {"protocol": "TCP"}


def trackable(obj: dict[str, Any], *, status: bool) -> dict[str, Any]:
    """``obj`` without what managedFields never track (and without ``status`` unless ``status``)."""
    out = {key: value for key, value in obj.items() if key not in _STRIPPED_TOP}
    if not status:
        out.pop("status", None)
    metadata = out.get("metadata")
    if isinstance(metadata, dict):
        out["metadata"] = {key: value for key, value in metadata.items() if key not in _STRIPPED_META}
        if not out["metadata"]:
            del out["metadata"]
    return out


def item_element(schema: Schema, node: dict[str, Any] | None, item: Any) -> tuple[str, str] | None:
    """The path element naming ``item`` of a list node, None for atomic lists."""
    shape = schema.shape(node)
    if shape.list_type == "map" and isinstance(item, dict):
        keys = {key: item.get(key, _KEY_DEFAULTS.get(key)) for key in sorted(shape.keys)}
        return (
            "k",
            json.dumps(
                {key: value for key, value in keys.items() if value is not None}, separators=(",", ":")
            ),
        )
    if shape.list_type == "set":
        return ("v", json.dumps(item, separators=(",", ":")))
    return None


def walk(schema: Schema, node: dict[str, Any] | None, value: Any) -> dict[Path, Any]:
    """Every path ``value`` sets, each with its value (leaves) or :data:`NODE`."""
    out: dict[Path, Any] = {}
    _walk(schema, node, value, (), out, [])
    return out


def duplicates(schema: Schema, node: dict[str, Any] | None, value: Any) -> list[Path]:
    """The items of associative or set lists in ``value`` that another item of the same list repeats."""
    found: list[Path] = []
    _walk(schema, node, value, (), {}, found)
    return found


def _walk(
    schema: Schema,
    node: dict[str, Any] | None,
    value: Any,
    path: Path,
    out: dict[Path, Any],
    repeated: list[Path],
) -> None:
    shape = schema.shape(node)
    if shape.kind in ("struct", "map") and isinstance(value, dict):
        for key, child in value.items():
            child_path = (*path, ("f", key))
            child_node = schema.child(node, key)
            _walk(schema, child_node, child, child_path, out, repeated)
            if child is None or child == {} or not schema.is_field(node, key):
                out.setdefault(child_path, NODE)
        return
    if shape.kind == "list" and shape.list_type in ("map", "set") and isinstance(value, list):
        item_node = schema.items(node)
        for item in value:
            element = item_element(schema, node, item)
            if element is None:
                continue
            child_path = (*path, element)
            if child_path in out:
                repeated.append(child_path)
            _walk(schema, item_node, item, child_path, out, repeated)
            out[child_path] = NODE if isinstance(item, dict) else item
        return
    if path:
        out[path] = value


def changed(before: dict[Path, Any], after: dict[Path, Any]) -> set[Path]:
    """Paths ``after`` adds, or whose leaf value differs from ``before``."""
    return {
        path
        for path, value in after.items()
        if path not in before
        or (value is not NODE and before[path] != value)
        or (value is NODE) != (before[path] is NODE)
    }


def encode(paths: set[Path]) -> dict[str, Any]:
    """``fieldsV1`` for a set of paths."""
    root: dict[str, Any] = {}
    for path in sorted(paths):
        node = root
        for element in path:
            node = node.setdefault(f"{element[0]}:{element[1]}", {})
        node["."] = {}
    return _collapse(root)


def _collapse(node: dict[str, Any]) -> dict[str, Any]:
    if set(node) == {"."}:
        return {}
    return {key: value if key == "." else _collapse(value) for key, value in node.items()}


def decode(fields: dict[str, Any]) -> set[Path]:
    """The set of paths a ``fieldsV1`` names."""
    out: set[Path] = set()
    _decode(fields, (), out)
    return out


def _decode(fields: dict[str, Any], path: Path, out: set[Path]) -> None:
    for key, child in fields.items():
        if key == ".":
            out.add(path)
            continue
        prefix, _, rest = key.partition(":")
        child_path = (*path, (prefix, rest))
        if child:
            _decode(child, child_path, out)
        else:
            out.add(child_path)


def describe(path: Path) -> str:
    """A path as the server names it in conflicts: ``.spec.template.spec.containers[name="app"].image``."""
    text = ""
    for prefix, rest in path:
        if prefix == "f":
            text += f".{rest}"
        elif prefix == "k":
            keys = json.loads(rest)
            text += "[" + ",".join(f"{key}={json.dumps(value)}" for key, value in keys.items()) + "]"
        else:
            text += f"[={rest}]"
    return text


def _find(schema: Schema, node: dict[str, Any] | None, items: list[Any], element: tuple[str, str]) -> int:
    for index, item in enumerate(items):
        if item_element(schema, node, item) == element:
            return index
    return -1


def remove(schema: Schema, node: dict[str, Any] | None, obj: dict[str, Any], path: Path) -> None:
    """Removes what ``path`` names from ``obj`` (in place), then containers it left empty."""
    if not path:
        return
    parents: list[tuple[Any, tuple[str, str]]] = []
    current: Any = obj
    for element in path[:-1]:
        parents.append((current, element))
        current, node = _step(schema, node, current, element)
        if current is None:
            return
    _delete(schema, node, current, path[-1])
    for parent, element in reversed(parents[1:]):
        child, _ = _step(schema, None, parent, element) if element[0] == "f" else (None, None)
        if child in ({}, []):
            del parent[element[1]]
        else:
            break


def _step(
    schema: Schema, node: dict[str, Any] | None, value: Any, element: tuple[str, str]
) -> tuple[Any, Any]:
    if element[0] == "f":
        if not isinstance(value, dict):
            return None, None
        return value.get(element[1]), schema.child(node, element[1])
    if not isinstance(value, list):
        return None, None
    index = _find(schema, node, value, element)
    return (value[index] if index >= 0 else None), schema.items(node)


def _delete(schema: Schema, node: dict[str, Any] | None, value: Any, element: tuple[str, str]) -> None:
    if element[0] == "f":
        if isinstance(value, dict):
            value.pop(element[1], None)
    elif isinstance(value, list):
        index = _find(schema, node, value, element)
        if index >= 0:
            del value[index]
