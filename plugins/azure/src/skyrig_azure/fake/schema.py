"""Request-body schemas read from the Azure SDKs' own models, for the FAKE ARM (:mod:`skyrig_azure.fake`).

Two model styles live in the SDKs installed beside the provider, and both are read here into one
:class:`Schema` tree (what the wire JSON may hold):

- TypeSpec models (``azure.mgmt.X._utils.model_base``): each ``rest_field(name=..., visibility=[...])``
  is a property; a field whose visibility is ``["read"]`` (or has neither ``create`` nor ``update``) is
  read-only; a field whose annotation is not ``Optional`` is required; ``Union[str, SomeEnum]`` gives the
  enum's values.
- msrest models (``_attribute_map`` / ``_validation``): dotted keys (``properties.sku``) are flattened into
  nested objects; ``_validation`` gives required, readonly, pattern, lengths and bounds; the enum of a
  ``str`` field comes from the ``Union[str, "_models.SomeEnum"]`` annotation of its ``__init__`` keyword.

:func:`validate` checks a JSON body against a schema as ARM's front door and the resource providers do:
unknown members, missing required properties, read-only properties, wrong JSON types, enum values (compared
case-insensitively, as ARM does) and the constraints a model states; every message names the JSON path.
"""

from __future__ import annotations

import contextlib
import datetime
import enum
import functools
import importlib
import inspect
import re
import sys
import typing
from dataclasses import dataclass, field
from typing import Any

from skyrig_azure.fake.errors import ArmError

#: Schema kinds: JSON shapes a value may take.
SCALARS = frozenset({"string", "integer", "number", "boolean", "datetime", "duration", "any"})


@dataclass
class Schema:
    """The shape of one JSON value: a scalar kind, an object (``fields``), a list or a dict (``item``)."""

    kind: str
    name: str = ""
    fields: dict[str, Field] = field(default_factory=dict)
    item: Schema | None = None
    enum: tuple[str, ...] = ()
    extra: bool = False
    discriminator: str | None = None
    subtypes: dict[str, Any] = field(default_factory=dict)


@dataclass
class Field:
    """One property of an object schema."""

    schema: Schema
    required: bool = False
    readonly: bool = False
    constraints: dict[str, Any] = field(default_factory=dict)


def load(spec: str) -> Schema:
    """The schema of an SDK model named ``"package.module:Class"`` (cached)."""
    return _load(spec)


@functools.cache
def _load(spec: str) -> Schema:
    module_name, _, class_name = spec.partition(":")
    cls = getattr(importlib.import_module(module_name), class_name)
    return model_schema(cls)


def model_schema(cls: type) -> Schema:
    """The schema of SDK model class ``cls``, of either style."""
    return _model_schema(cls, {})


def _model_schema(cls: type, seen: dict[type, Schema]) -> Schema:
    if cls in seen:
        return seen[cls]
    schema = Schema("object", name=cls.__name__)
    seen[cls] = schema
    if hasattr(cls, "_attribute_map"):
        _msrest_fields(cls, schema, seen)
    else:
        _typespec_fields(cls, schema, seen)
    return schema


# -- TypeSpec models ---------------------------------------------------------------------------------------


def _typespec_fields(cls: type, schema: Schema, seen: dict[type, Schema]) -> None:
    models = _models_namespace(cls)
    for klass in reversed(cls.__mro__):
        annotations = inspect.get_annotations(klass)
        for attr, rest in klass.__dict__.items():
            if attr.startswith("_") or not hasattr(rest, "_visibility") or not hasattr(rest, "_type"):
                continue
            wire = getattr(rest, "_rest_name_input", None) or attr
            annotation = annotations.get(attr, Any)
            value_schema, optional = _annotation_schema(annotation, models, klass, seen)
            visibility = rest._visibility
            readonly = visibility is not None and not ({"create", "update"} & set(visibility))
            if getattr(rest, "_is_discriminator", False):
                schema.discriminator = wire
            schema.fields[wire] = Field(
                value_schema, required=not optional and not readonly, readonly=readonly
            )
    mapping = getattr(cls, "__mapping__", None)
    if schema.discriminator and mapping:
        schema.subtypes = {key: sub for key, sub in mapping.items() if sub is not cls}


def _annotation_schema(
    annotation: Any, models: dict[str, Any], owner: type, seen: dict[type, Schema]
) -> tuple[Schema, bool]:
    """The schema of a type annotation, and whether it is Optional."""
    annotation = _resolve(annotation, models, owner)
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin is typing.Union:
        optional = type(None) in args
        rest = [a for a in args if a is not type(None)]
        enums = [a for a in rest if isinstance(a, type) and issubclass(a, enum.Enum)]
        if enums:
            return _enum_schema(enums[0]), optional
        if len(rest) == 1:
            return _annotation_schema(rest[0], models, owner, seen)[0], optional
        return Schema("any"), optional
    if origin is typing.Literal:
        return Schema("string", enum=tuple(str(a) for a in args)), False
    if origin in (list, typing.List, tuple, typing.Sequence):  # noqa: UP006
        item = _annotation_schema(args[0], models, owner, seen)[0] if args else Schema("any")
        return Schema("list", item=item), False
    if origin in (dict, typing.Dict, typing.Mapping):  # noqa: UP006
        item = _annotation_schema(args[1], models, owner, seen)[0] if len(args) == 2 else Schema("any")
        return Schema("dict", item=item), False
    return _plain_schema(annotation, seen), False


def _plain_schema(annotation: Any, seen: dict[type, Schema]) -> Schema:
    if annotation is str or annotation is bytes:
        return Schema("string")
    if annotation is bool:
        return Schema("boolean")
    if annotation is int:
        return Schema("integer")
    if annotation is float:
        return Schema("number")
    if annotation in (datetime.datetime, datetime.date, datetime.time):
        return Schema("datetime")
    if annotation is datetime.timedelta:
        return Schema("duration")
    if isinstance(annotation, type) and issubclass(annotation, enum.Enum):
        return _enum_schema(annotation)
    if isinstance(annotation, type) and (hasattr(annotation, "_attribute_map") or _is_typespec(annotation)):
        return _model_schema(annotation, seen)
    return Schema("any")


def _is_typespec(cls: type) -> bool:
    return bool(getattr(cls, "_is_model", False))


def _enum_schema(cls: type[enum.Enum]) -> Schema:
    return Schema("string", name=cls.__name__, enum=tuple(str(m.value) for m in cls))


def _models_namespace(cls: type) -> dict[str, Any]:
    module = sys.modules[cls.__module__]
    namespace = dict(vars(module))
    package = cls.__module__.rsplit(".", 1)[0]
    with contextlib.suppress(ImportError):
        namespace["_models"] = importlib.import_module(package)
    namespace.setdefault("typing", typing)
    return namespace


def _resolve(annotation: Any, models: dict[str, Any], owner: type) -> Any:
    if isinstance(annotation, typing.ForwardRef):
        annotation = annotation.__forward_arg__
    if isinstance(annotation, str):
        try:
            return eval(annotation, dict(models))  # the SDK's own annotation text
        except Exception:
            return Any
    origin = typing.get_origin(annotation)
    if origin is not None:
        args = tuple(_resolve(a, models, owner) for a in typing.get_args(annotation))
        if origin is typing.Union:
            return typing.Union[args]  # noqa: UP007
        if origin is typing.Literal:
            return annotation
        try:
            return (
                origin[args] if origin not in (list, dict) else (list[args] if origin is list else dict[args])
            )
        except TypeError:
            return annotation
    return annotation


# -- msrest models -----------------------------------------------------------------------------------------

_MSREST_SCALARS = {
    "str": "string",
    "int": "integer",
    "long": "integer",
    "float": "number",
    "bool": "boolean",
    "iso-8601": "datetime",
    "rfc-1123": "datetime",
    "unix-time": "integer",
    "date": "datetime",
    "time": "datetime",
    "duration": "duration",
    "object": "any",
    "bytearray": "string",
    "base64": "string",
}


def _msrest_fields(cls: type, schema: Schema, seen: dict[type, Schema]) -> None:
    module = sys.modules[cls.__module__]
    package = importlib.import_module(cls.__module__.rsplit(".", 1)[0])
    validation: dict[str, dict[str, Any]] = getattr(cls, "_validation", {}) or {}
    enums = _init_enums(cls, package)
    for attr, info in cls._attribute_map.items():  # type: ignore[attr-defined]
        key: str = info["key"]
        if key == "":
            schema.extra = True
            continue
        parts = [p.replace("\\.", ".") for p in re.split(r"(?<!\\)\.", key)]
        rules = dict(validation.get(attr, {}))
        value_schema = _msrest_type(info["type"], module, package, seen)
        if attr in enums and value_schema.kind == "string":
            value_schema = enums[attr]
        required = bool(rules.pop("required", False))
        readonly = bool(rules.pop("readonly", False))
        rules.pop("constant", None)
        target = schema
        for part in parts[:-1]:
            holder = target.fields.get(part)
            if holder is None:
                holder = Field(Schema("object", name=part))
                target.fields[part] = holder
            if required and not readonly:
                holder.required = True
            target = holder.schema
        target.fields[parts[-1]] = Field(
            value_schema, required=required and not readonly, readonly=readonly, constraints=rules
        )
    subtypes = getattr(cls, "_subtype_map", None)
    if subtypes:
        (attr, mapping), *_ = subtypes.items()
        schema.discriminator = cls._attribute_map[attr]["key"]  # type: ignore[attr-defined]
        schema.subtypes = {k: getattr(package, v, None) or getattr(module, v) for k, v in mapping.items()}


def _msrest_type(name: str, module: Any, package: Any, seen: dict[type, Schema]) -> Schema:
    if name.startswith("[") and name.endswith("]"):
        return Schema("list", item=_msrest_type(name[1:-1], module, package, seen))
    if name.startswith("{") and name.endswith("}"):
        return Schema("dict", item=_msrest_type(name[1:-1], module, package, seen))
    if name in _MSREST_SCALARS:
        return Schema(_MSREST_SCALARS[name])
    cls = getattr(module, name, None) or getattr(package, name, None)
    if isinstance(cls, type) and issubclass(cls, enum.Enum):
        return _enum_schema(cls)
    if isinstance(cls, type):
        return _model_schema(cls, seen)
    return Schema("any")


def _init_enums(cls: type, package: Any) -> dict[str, Schema]:
    """Enums of ``str`` fields, from ``Union[str, "_models.SomeEnum"]`` in ``__init__``'s keywords."""
    found: dict[str, Schema] = {}
    try:
        parameters = inspect.signature(cls.__init__).parameters
    except (TypeError, ValueError):
        return found
    for name, parameter in parameters.items():
        text = parameter.annotation if isinstance(parameter.annotation, str) else repr(parameter.annotation)
        match = re.search(r"_models\.(\w+)", text)
        if not match:
            continue
        candidate = getattr(package, match.group(1), None)
        if isinstance(candidate, type) and issubclass(candidate, enum.Enum):
            found[name] = _enum_schema(candidate)
    return found


# -- validation ----------------------------------------------------------------------------------------------


def invalid_content(message: str) -> ArmError:
    """ARM's 400 for a body that cannot be deserialized (Json.NET's wording)."""
    return ArmError(
        400,
        "InvalidRequestContent",
        f"The request content was invalid and could not be deserialized: '{message}'.",
    )


def validate(
    body: Any, schema: Schema, path: str = "", *, top_level_ok: frozenset[str] = frozenset()
) -> None:
    """Checks ``body`` against ``schema``; raises :class:`ArmError` naming the first bad JSON path.

    ``top_level_ok`` are read-only top-level members a client may send back (``id``, ``name``, ``type``
    when they match the URL; the caller checks that).
    """
    _check(body, schema, path, top_level_ok)


def _where(path: str) -> str:
    return path or "(the body)"


def _check(value: Any, schema: Schema, path: str, top_level_ok: frozenset[str] = frozenset()) -> None:
    kind = schema.kind
    if value is None:
        return
    if kind == "object":
        if not isinstance(value, dict):
            raise invalid_content(
                f"Unexpected JSON token when reading {schema.name or 'an object'}: "
                f"expected an object. Path '{_where(path)}'"
            )
        if schema.discriminator and schema.subtypes and value.get(schema.discriminator) in schema.subtypes:
            sub = schema.subtypes[value[schema.discriminator]]
            schema = sub if isinstance(sub, Schema) else model_schema(sub)
        for key, item in value.items():
            where = f"{path}.{key}" if path else key
            member = schema.fields.get(key)
            if member is None:
                if schema.extra:
                    continue
                raise invalid_content(
                    f"Could not find member '{key}' on object of type "
                    f"'{schema.name or 'Object'}'. Path '{where}'"
                )
            if member.readonly and key not in top_level_ok and item is not None:
                raise ArmError(
                    400,
                    "InvalidRequestContent",
                    f"The property '{where}' is read-only and cannot be set in a request.",
                )
            _check(item, member.schema, where)
            _constraints(item, member.constraints, where)
        for key, member in schema.fields.items():
            if member.required and value.get(key) is None:
                raise invalid_content(f"Required property '{key}' not found in JSON. Path '{_where(path)}'")
        return
    if kind == "list":
        if not isinstance(value, list):
            raise invalid_content(f"Unexpected JSON token: expected an array. Path '{_where(path)}'")
        for index, item in enumerate(value):
            _check(item, schema.item or Schema("any"), f"{path}[{index}]")
        return
    if kind == "dict":
        if not isinstance(value, dict):
            raise invalid_content(f"Unexpected JSON token: expected an object. Path '{_where(path)}'")
        for key, item in value.items():
            _check(item, schema.item or Schema("any"), f"{path}.{key}")
        return
    _scalar(value, schema, path)


def _scalar(value: Any, schema: Schema, path: str) -> None:
    kind = schema.kind
    ok = {
        "string": isinstance(value, str),
        "datetime": isinstance(value, str),
        "duration": isinstance(value, str),
        "integer": isinstance(value, int) and not isinstance(value, bool),
        "number": isinstance(value, int | float) and not isinstance(value, bool),
        "boolean": isinstance(value, bool),
        "any": True,
    }.get(kind, True)
    if not ok:
        raise invalid_content(f"Error converting value {value!r} to type '{kind}'. Path '{path}'")
    if kind == "datetime":
        try:
            datetime.datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            raise invalid_content(f"Could not convert string to DateTime: {value}. Path '{path}'") from None
    if kind == "duration" and not re.fullmatch(
        r"P(?!$)(\d+Y)?(\d+M)?(\d+W)?(\d+D)?(T(?=\d)(\d+H)?(\d+M)?"
        r"(\d+(\.\d+)?S)?)?",
        value,
    ):
        raise invalid_content(f"Could not convert '{value}' to an ISO 8601 duration. Path '{path}'")
    if schema.enum and str(value).lower() not in {e.lower() for e in schema.enum}:
        raise invalid_content(
            f"Error converting value \"{value}\" to type '{schema.name or 'enum'}'; allowed "
            f"values: {', '.join(schema.enum)}. Path '{path}'"
        )


def _constraints(value: Any, rules: dict[str, Any], path: str) -> None:
    if value is None or not rules:
        return

    def fail(what: str) -> None:
        raise ArmError(400, "InvalidParameter", f"The value of property '{path}' is invalid: {what}.")

    if "pattern" in rules and isinstance(value, str) and not re.search(rules["pattern"], value):
        fail(f"it must match the pattern {rules['pattern']}")
    if "max_length" in rules and len(value) > rules["max_length"]:
        fail(f"it must be at most {rules['max_length']} characters long")
    if "min_length" in rules and len(value) < rules["min_length"]:
        fail(f"it must be at least {rules['min_length']} characters long")
    if "maximum" in rules and value > rules["maximum"]:
        fail(f"it must be at most {rules['maximum']}")
    if "minimum" in rules and value < rules["minimum"]:
        fail(f"it must be at least {rules['minimum']}")
    if "max_items" in rules and len(value) > rules["max_items"]:
        fail(f"it may hold at most {rules['max_items']} items")
    if "min_items" in rules and len(value) < rules["min_items"]:
        fail(f"it must hold at least {rules['min_items']} items")


def strip_readonly(value: Any, schema: Schema) -> Any:
    """``value`` without the members the schema marks read-only (what a client may write)."""
    if schema.kind == "object" and isinstance(value, dict):
        if schema.discriminator and schema.subtypes and value.get(schema.discriminator) in schema.subtypes:
            sub = schema.subtypes[value[schema.discriminator]]
            schema = sub if isinstance(sub, Schema) else model_schema(sub)
        out = {}
        for key, item in value.items():
            member = schema.fields.get(key)
            if member is None:
                if schema.extra:
                    out[key] = item
                continue
            if member.readonly:
                continue
            out[key] = strip_readonly(item, member.schema)
        return out
    if schema.kind == "list" and isinstance(value, list) and schema.item is not None:
        return [strip_readonly(item, schema.item) for item in value]
    if schema.kind == "dict" and isinstance(value, dict) and schema.item is not None:
        return {key: strip_readonly(item, schema.item) for key, item in value.items()}
    return value
