"""The ways a write combines with the stored object, for the FAKE Kubernetes API server
(:mod:`skyrig_kubernetes.fake`): JSON merge patch (RFC 7386), JSON patch (RFC 6902), strategic merge patch
and the structural merge of server-side apply, the last two driven by the schema's list types and patch
strategies (containers merge by name, ports by port, env by name ...).
"""

from __future__ import annotations

import copy
from typing import Any

from skyrig_kubernetes.fake import errors
from skyrig_kubernetes.fake.fields import item_element
from skyrig_kubernetes.fake.schema import Schema


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386: maps merge, ``null`` deletes, everything else replaces."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def json_patch(target: Any, operations: list[Any]) -> Any:
    """RFC 6902: add, remove, replace, move, copy and test, with JSON pointers."""
    document = copy.deepcopy(target)
    for operation in operations:
        if not isinstance(operation, dict) or "op" not in operation or "path" not in operation:
            raise errors.bad_request(f"invalid JSON patch operation: {operation!r}")
        op, path = operation["op"], operation["path"]
        if op in ("add", "replace", "test") and "value" not in operation:
            raise errors.bad_request(f'JSON patch operation "{op}" at {path} has no value')
        if op == "test":
            if _pointer_get(document, path) != operation["value"]:
                raise errors.ApiError(422, "Invalid", f"testing value {path} failed")
        elif op in ("remove", "replace"):
            _pointer_remove(document, path)
            if op == "replace":
                document = _pointer_add(document, path, copy.deepcopy(operation["value"]))
        elif op == "add":
            document = _pointer_add(document, path, copy.deepcopy(operation["value"]))
        elif op in ("move", "copy"):
            value = copy.deepcopy(_pointer_get(document, operation.get("from", "")))
            if op == "move":
                _pointer_remove(document, operation["from"])
            document = _pointer_add(document, path, value)
        else:
            raise errors.bad_request(f'unknown JSON patch operation "{op}"')
    return document


def _tokens(pointer: str) -> list[str]:
    if pointer == "":
        return []
    if not pointer.startswith("/"):
        raise errors.bad_request(f'JSON pointer "{pointer}" does not start with /')
    return [token.replace("~1", "/").replace("~0", "~") for token in pointer[1:].split("/")]


def _descend(document: Any, token: str, pointer: str) -> Any:
    try:
        return document[int(token)] if isinstance(document, list) else document[token]
    except (KeyError, IndexError, ValueError, TypeError):
        raise errors.ApiError(422, "Invalid", f"the JSON patch path {pointer} does not exist") from None


def _pointer_get(document: Any, pointer: str) -> Any:
    for token in _tokens(pointer):
        document = _descend(document, token, pointer)
    return document


def _pointer_remove(document: Any, pointer: str) -> None:
    tokens = _tokens(pointer)
    parent = _pointer_get(
        document, "".join("/" + t.replace("~", "~0").replace("/", "~1") for t in tokens[:-1])
    )
    _descend(parent, tokens[-1], pointer)
    if isinstance(parent, list):
        del parent[int(tokens[-1])]
    else:
        del parent[tokens[-1]]


def _pointer_add(document: Any, pointer: str, value: Any) -> Any:
    tokens = _tokens(pointer)
    if not tokens:
        return value
    parent = _pointer_get(
        document, "".join("/" + t.replace("~", "~0").replace("/", "~1") for t in tokens[:-1])
    )
    last = tokens[-1]
    if isinstance(parent, list):
        index = len(parent) if last == "-" else int(last)
        if not 0 <= index <= len(parent):
            raise errors.ApiError(422, "Invalid", f"the JSON patch path {pointer} is out of range")
        parent.insert(index, value)
    elif isinstance(parent, dict):
        parent[last] = value
    else:
        raise errors.ApiError(422, "Invalid", f"the JSON patch path {pointer} does not exist")
    return document


def _strip_directives(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _strip_directives(v) for k, v in value.items() if not k.startswith("$")}
    if isinstance(value, list):
        return [_strip_directives(item) for item in value]
    return value


def strategic_merge_patch(schema: Schema, node: dict[str, Any] | None, target: Any, patch: Any) -> Any:
    """Kubernetes' strategic merge patch: lists the schema marks ``merge`` merge by their merge key
    (``$patch: delete`` removes an item, ``$patch: replace`` replaces a list or map), ``$retainKeys`` and
    ``$deleteFromPrimitiveList/`` are honoured, ``null`` deletes, the rest replaces."""
    if not isinstance(patch, dict) or not isinstance(target, dict):
        return _strip_directives(copy.deepcopy(patch))
    directive = patch.get("$patch")
    if directive == "replace":
        return _strip_directives(copy.deepcopy(patch))
    if directive == "delete":
        return None
    result = dict(target)
    if isinstance(patch.get("$retainKeys"), list):
        retain = set(patch["$retainKeys"])
        result = {key: value for key, value in result.items() if key in retain}
    for key, value in patch.items():
        if key.startswith("$deleteFromPrimitiveList/"):
            field = key.split("/", 1)[1]
            if isinstance(result.get(field), list):
                result[field] = [item for item in result[field] if item not in value]
            continue
        if key.startswith("$"):
            continue
        if value is None:
            result.pop(key, None)
            continue
        child = schema.child(node, key)
        shape = schema.shape(child)
        if shape.kind == "list" and isinstance(value, list):
            result[key] = _merge_list(schema, child, result.get(key), value)
        else:
            merged = strategic_merge_patch(schema, child, result.get(key), value)
            if merged is None:
                result.pop(key, None)
            else:
                result[key] = merged
    return result


def _merge_list(schema: Schema, node: dict[str, Any] | None, target: Any, patch: list[Any]) -> list[Any]:
    shape = schema.shape(node)
    if "merge" not in shape.patch_strategy or not isinstance(target, list):
        return [item for item in _strip_directives(copy.deepcopy(patch)) if item != {"$patch": "replace"}]
    if any(isinstance(item, dict) and item.get("$patch") == "replace" for item in patch):
        return [item for item in _strip_directives(copy.deepcopy(patch)) if item]
    result = list(target)
    item_node = schema.items(node)
    for item in patch:
        if shape.merge_key is None or not isinstance(item, dict):
            if item not in result:
                result.append(copy.deepcopy(item))
            continue
        key = item.get(shape.merge_key)
        index = next(
            (i for i, old in enumerate(result) if isinstance(old, dict) and old.get(shape.merge_key) == key),
            -1,
        )
        if item.get("$patch") == "delete":
            if index >= 0:
                del result[index]
        elif index >= 0:
            result[index] = strategic_merge_patch(schema, item_node, result[index], item)
        else:
            result.append(_strip_directives(copy.deepcopy(item)))
    return result


def apply_merge(schema: Schema, node: dict[str, Any] | None, live: Any, config: Any) -> Any:
    """Server-side apply's merge of an applied configuration into the live object: structs and maps merge
    by key, associative and set lists by item (new items appended), atomic values are replaced."""
    shape = schema.shape(node)
    if shape.kind in ("struct", "map") and isinstance(live, dict) and isinstance(config, dict):
        result = dict(live)
        for key, value in config.items():
            if value is None:
                result.pop(key, None)
            elif key in result:
                result[key] = apply_merge(schema, schema.child(node, key), result[key], value)
            else:
                result[key] = copy.deepcopy(value)
        return result
    if (
        shape.kind == "list"
        and shape.list_type in ("map", "set")
        and isinstance(live, list)
        and isinstance(config, list)
    ):
        result = list(live)
        item_node = schema.items(node)
        positions = {item_element(schema, node, item): index for index, item in enumerate(result)}
        for item in config:
            element = item_element(schema, node, item)
            if element in positions:
                index = positions[element]
                result[index] = apply_merge(schema, item_node, result[index], item)
            else:
                positions[element] = len(result)
                result.append(copy.deepcopy(item))
        return result
    return copy.deepcopy(config)
