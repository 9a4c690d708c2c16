"""Google's discovery documents, for the FAKE Google APIs (:mod:`skyrig_gcp.fake`): routing and validation.

google-api-python-client ships a discovery document per API and version
(``googleapiclient/discovery_cache/documents/<api>.<version>.json``). :class:`Discovery` loads one and
answers what Google's front end would check before a request reaches the service:

- :meth:`Discovery.route`: the method a request is for, from its HTTP method and path, matched against each
  method's path template (``{+name}`` with the parameter's ``pattern``, ``{project}`` one segment); an
  unknown path is a 404.
- :meth:`Discovery.query`: the query parameters: unknown ones, repeated non-repeated ones, wrong types and
  enum values, and missing required ones are 400s.
- :meth:`Discovery.body`: the JSON body against the method's request schema, recursively (``$ref``,
  objects, arrays, ``additionalProperties`` maps, enums, int64-as-string, booleans, numbers, durations,
  timestamps, bytes): unknown fields, wrong types and missing required fields are 400s; output-only fields
  are dropped, as Google ignores them. Enums sent as numbers (the google-cloud-* REST transports send
  ``$alt=json;enum-encoding=int``) are turned into their names through the client library's protobuf
  descriptors.
"""

from __future__ import annotations

import base64
import binascii
import datetime
import json
import re
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from skyrig_gcp.fake.errors import ApiError, invalid

#: Query parameters every method takes (besides the discovery document's own ``parameters``).
SYSTEM_PARAMETERS = frozenset({"$alt", "alt", "$.xgafv", "$fields", "$prettyPrint"})

_OUTPUT_ONLY = re.compile(r"^\s*(\[Output Only\]|Output only|\[Output-only\]|Output-only)", re.IGNORECASE)
_REQUIRED = re.compile(r"^\s*(Required\b|REQUIRED\b)")
_DURATION = re.compile(r"^-?\d+(\.\d{1,9})?s$")
_FIELD_PATH = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*|\.`[^`]+`|\.\*)*$")
_INT32 = (-(2**31), 2**31 - 1)
_UINT32 = (0, 2**32 - 1)
_INT64 = (-(2**63), 2**63 - 1)
_UINT64 = (0, 2**64 - 1)


def documents_dir() -> Path:
    """Where google-api-python-client keeps its discovery documents."""
    import googleapiclient

    return Path(googleapiclient.__file__).parent / "discovery_cache" / "documents"


def snake(name: str) -> str:
    """``memorySizeGb`` -> ``memory_size_gb``: a JSON name as the proto field name Google's errors show."""
    return re.sub(r"(?<=[a-z0-9])([A-Z])", r"_\1", name).lower()


def camel(name: str) -> str:
    """``memory_size_gb`` -> ``memorySizeGb``: the JSON name of a proto field name."""
    head, *rest = name.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


def output_only(schema: dict[str, Any]) -> bool:
    """Whether a property is output only ("Output only." / "[Output Only]" in its description)."""
    return bool(_OUTPUT_ONLY.match(schema.get("description", "")))


def parse_time(value: str) -> datetime.datetime | None:
    """An RFC 3339 timestamp, or None when ``value`` is not one."""
    text = value.strip()
    if not re.match(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}:\d{2})$", text):
        return None
    text = re.sub(r"(\.\d{6})\d+", r"\1", text).replace("Z", "+00:00")
    try:
        return datetime.datetime.fromisoformat(text)
    except ValueError:
        return None


@dataclass
class Method:
    """One method of a discovery document, with its compiled path template."""

    api: str
    id: str
    http_method: str
    path: str
    regex: re.Pattern[str]
    groups: dict[str, str]
    literal: int
    parameters: dict[str, dict[str, Any]]
    request: str | None
    response: str | None
    description: str = ""

    @property
    def verb(self) -> str:
        """The method's own name: ``create``, ``get``, ``addVersion``, ..."""
        return self.id.rsplit(".", 1)[-1]

    @property
    def resource(self) -> str:
        """The resource path of its id: ``projects.locations.instances``."""
        return self.id.split(".", 1)[1].rsplit(".", 1)[0] if "." in self.id else ""


@dataclass
class Route:
    """A request matched to a method: the path parameters' values."""

    method: Method
    params: dict[str, str] = field(default_factory=dict)


class Discovery:
    """A discovery document: its methods (routed by HTTP method and path) and schemas (for validation)."""

    def __init__(self, api: str, version: str, document: dict[str, Any] | None = None) -> None:
        self.api = api
        self.version = version
        self.doc = document or json.loads((documents_dir() / f"{api}.{version}.json").read_text())
        self.root_url: str = self.doc["rootUrl"]
        self.service_path: str = self.doc.get("servicePath", "")
        self.schemas: dict[str, dict[str, Any]] = self.doc.get("schemas", {})
        self.global_parameters = frozenset(self.doc.get("parameters", {}))
        self.methods: list[Method] = []
        self._collect(self.doc)
        self.by_id = {method.id: method for method in self.methods}

    # -- routing -----------------------------------------------------------------------------------------

    def _collect(self, node: dict[str, Any]) -> None:
        for raw in node.get("methods", {}).values():
            self.methods.append(self._compile(raw))
        for child in node.get("resources", {}).values():
            self._collect(child)

    def _compile(self, raw: dict[str, Any]) -> Method:
        template = self.service_path + raw["path"]
        parameters = raw.get("parameters", {})
        pattern = ""
        groups: dict[str, str] = {}
        literal = 0
        position = 0
        for match in re.finditer(r"\{(\+?)([^}]+)\}", template):
            text = template[position : match.start()]
            pattern += re.escape(text)
            literal += len(text)
            reserved, name = match.group(1), match.group(2)
            group = f"g{len(groups)}"
            groups[group] = name
            if reserved:
                inner = parameters.get(name, {}).get("pattern", "^.+$")
                inner = inner.removeprefix("^").removesuffix("$")
                pattern += f"(?P<{group}>{inner})"
            else:
                pattern += f"(?P<{group}>[^/]+)"
            position = match.end()
        text = template[position:]
        pattern += re.escape(text)
        literal += len(text)
        return Method(
            api=self.api,
            id=raw["id"],
            http_method=raw["httpMethod"],
            path=template,
            regex=re.compile(pattern),
            groups=groups,
            literal=literal,
            parameters=parameters,
            request=raw.get("request", {}).get("$ref"),
            response=raw.get("response", {}).get("$ref"),
            description=raw.get("description", ""),
        )

    def route(self, http_method: str, path: str) -> Route:
        """The method ``path`` (percent-decoded, no leading ``/``) is for; 404 when none matches."""
        candidates: list[tuple[int, Method, re.Match[str]]] = []
        other_verb = False
        for method in self.methods:
            match = method.regex.fullmatch(path)
            if match is None:
                continue
            if method.http_method != http_method:
                other_verb = True
                continue
            candidates.append((method.literal, method, match))
        if not candidates:
            message = (
                f"Method not found: {http_method} /{path}."
                if other_verb
                else f"The requested URL /{path} was not found on this server."
            )
            raise ApiError("NOT_FOUND", message)
        # a template ending in a custom verb (``...:fetchClusterUpgradeInfo``) wins over one whose last
        # ``{id}`` segment would swallow that verb, as Google's transcoding splits the verb off first
        _, method, match = max(candidates, key=lambda item: (_custom_verb(item[1].path), item[0]))
        params = {method.groups[group]: value for group, value in match.groupdict().items()}
        for name, value in params.items():
            spec = method.parameters.get(name, {})
            pattern = spec.get("pattern")
            if pattern and not re.fullmatch(pattern.removeprefix("^").removesuffix("$"), value):
                raise invalid(
                    f"Invalid value for field '{name}': '{value}'. Must be a match of regex '{pattern}'", name
                )
        return Route(method, params)

    # -- query parameters ---------------------------------------------------------------------------------

    def query(
        self, method: Method, raw: dict[str, list[str]], *, numeric_enums: bool = False
    ) -> dict[str, Any]:
        """The query parameters, typed; 400 for unknown, repeated, ill-typed or missing required ones."""
        result: dict[str, Any] = {}
        for name, values in raw.items():
            if name in SYSTEM_PARAMETERS or name in self.global_parameters:
                continue
            spec = method.parameters.get(name)
            if spec is None or spec.get("location") != "query":
                raise invalid(
                    f'Invalid JSON payload received. Unknown name "{name}": Cannot bind query parameter. '
                    f"Field '{name}' could not be found in request message.",
                )
            if len(values) > 1 and not spec.get("repeated"):
                raise invalid(
                    f"Invalid JSON payload received. Query parameter '{name}' is not repeated "
                    f"but was given {len(values)} times.",
                    name,
                )
            typed = [self._scalar(name, value, spec, numeric_enums) for value in values]
            result[name] = typed if spec.get("repeated") else typed[0]
        for name, spec in method.parameters.items():
            if spec.get("location") != "query":
                continue
            missing = name not in result or result[name] in ("", [], None)
            if missing and (spec.get("required") or _REQUIRED.match(spec.get("description", ""))):
                raise invalid(f"Missing required parameter: '{name}'.", name)
        return result

    def _scalar(self, name: str, value: str, spec: dict[str, Any], numeric_enums: bool) -> Any:
        kind = spec.get("type", "string")
        fmt = spec.get("format")
        bad = invalid(f"Invalid value at '{snake(name)}' ({_type_name(kind, fmt)}), \"{value}\"", snake(name))
        if kind == "integer":
            try:
                number = int(value)
            except ValueError:
                raise bad from None
            low, high = _UINT32 if fmt == "uint32" else _INT32
            if not low <= number <= high:
                raise bad
            return number
        if kind == "boolean":
            if value.lower() not in ("true", "false"):
                raise bad
            return value.lower() == "true"
        if kind == "number":
            try:
                return float(value)
            except ValueError:
                raise bad from None
        if "enum" in spec:
            if value in spec["enum"]:
                return value
            if value.lstrip("-").isdigit() and 0 <= int(value) < len(spec["enum"]):
                return spec["enum"][int(value)]
            raise bad
        if fmt in ("int64", "uint64"):
            try:
                int(value)
            except ValueError:
                raise bad from None
            return value
        if fmt == "google-fieldmask":
            _fieldmask(value, name)
            return value
        if fmt == "google-datetime" and parse_time(value) is None:
            raise bad
        if fmt == "google-duration" and not _DURATION.match(value):
            raise bad
        return value

    # -- bodies --------------------------------------------------------------------------------------------

    def body(
        self,
        method: Method,
        body: Any,
        *,
        root: str,
        proto: Any = None,
        require: bool = True,
        exempt: frozenset[str] = frozenset(),
        aliases: bool = True,
    ) -> dict[str, Any]:
        """The body checked against ``method``'s request schema and normalized; 400 listing every problem.

        ``root`` names the body in error paths (``instance`` for a body bound to one field, ``""`` for
        ``body: "*"``); ``proto`` is the request body's protobuf descriptor when the client library that
        sends it is loaded (to read enums sent as numbers); ``require`` checks fields documented as required
        (not for patches); ``exempt`` names top-level fields the server fills from the path (``name``).
        """
        if method.request is None:
            return {}
        checker = _BodyChecker(self, method, proto=proto, require=require, aliases=aliases)
        if not isinstance(body, dict):
            raise invalid("Invalid JSON payload received. Expected an object.", root)
        value = checker.check(body, {"$ref": method.request}, root, proto, exempt=exempt)
        if checker.problems:
            message = "\n".join(description for _, description in checker.problems)
            raise ApiError("INVALID_ARGUMENT", message, reason="invalid", violations=checker.problems)
        return value

    def resolve(self, schema: dict[str, Any]) -> dict[str, Any]:
        """A schema with its ``$ref`` followed."""
        seen = 0
        while "$ref" in schema and seen < 50:
            schema = self.schemas[schema["$ref"]]
            seen += 1
        return schema

    def output_only_fields(self, schema_name: str) -> set[str]:
        """The top-level output-only properties of a schema."""
        props = self.schemas.get(schema_name, {}).get("properties", {})
        return {name for name, prop in props.items() if output_only(prop)}


def _custom_verb(template: str) -> bool:
    """Whether a path template ends in a custom verb after its last placeholder (``{+name}:cancel``)."""
    return ":" in template.rsplit("}", 1)[-1]


def _type_name(kind: str, fmt: str | None) -> str:
    if kind == "integer":
        return "TYPE_UINT32" if fmt == "uint32" else "TYPE_INT32"
    if kind == "boolean":
        return "TYPE_BOOL"
    if kind == "number":
        return "TYPE_FLOAT" if fmt == "float" else "TYPE_DOUBLE"
    if fmt in ("int64", "uint64"):
        return f"TYPE_{fmt.upper()}"
    if fmt == "byte":
        return "TYPE_BYTES"
    return "TYPE_STRING"


def _fieldmask(value: str, name: str) -> list[str]:
    paths = [path.strip() for path in value.split(",") if path.strip()]
    for path in paths:
        if not _FIELD_PATH.match(path):
            raise invalid(f"Invalid field mask path '{path}' in '{name}'.", name)
    return paths


@cache
def _proto_pool() -> Any:
    try:
        from google.protobuf import descriptor_pool
    except ImportError:  # pragma: no cover - protobuf comes with every Google client library
        return None
    return descriptor_pool.Default()


def find_message(full_names: tuple[str, ...]) -> Any:
    """The first protobuf message descriptor of ``full_names`` in the default pool, or None. A message of
    a client library this process has not imported yet (the fake serving a provider in another process)
    is looked for again once that library is imported."""
    pool = _proto_pool()
    if pool is None:
        return None
    for attempt in range(2):
        for full_name in full_names:
            try:
                return pool.FindMessageTypeByName(full_name)
            except KeyError:
                continue
        if attempt == 0 and not _import_libraries(full_names):
            break
    return None


def _import_libraries(full_names: tuple[str, ...]) -> bool:
    """Import the client libraries that define ``full_names`` (``google.cloud.redis.v1.Instance`` ->
    ``google.cloud.redis_v1``); whether any was imported."""
    import importlib

    imported = False
    for full_name in full_names:
        parts = full_name.split(".")
        if len(parts) < 4 or not re.fullmatch(r"v\d+\w*", parts[-2]):
            continue
        module = f"google.cloud.{parts[-3]}_{parts[-2]}"
        try:
            importlib.import_module(module)
        except ImportError:
            continue
        imported = True
    return imported


class _BodyChecker:
    """One body's check: walks the value and its schema (and the protobuf descriptor, where known)."""

    def __init__(self, doc: Discovery, method: Method, *, proto: Any, require: bool, aliases: bool) -> None:
        self.doc = doc
        self.method = method
        self.require = require
        self.aliases = aliases
        self.problems: list[tuple[str, str]] = []

    def problem(self, path: str, message: str) -> None:
        self.problems.append((path, message))

    def check(
        self,
        value: Any,
        schema: dict[str, Any],
        path: str,
        proto: Any,
        *,
        exempt: frozenset[str] = frozenset(),
    ) -> Any:
        schema = self.doc.resolve(schema)
        kind = schema.get("type", "object" if "properties" in schema else "any")
        if kind == "any":
            return value
        if kind == "object":
            return self._object(value, schema, path, proto, exempt)
        if kind == "array":
            if not isinstance(value, list):
                self.problem(path, f"Invalid value at '{path}' (TYPE_MESSAGE), {json.dumps(value)}")
                return value
            items = schema.get("items", {"type": "any"})
            return [self.check(item, items, f"{path}[{index}]", proto) for index, item in enumerate(value)]
        if isinstance(value, (dict, list)):
            if isinstance(value, list):
                self.problem(
                    path,
                    "Invalid JSON payload received. Proto field is not repeating, cannot start list "
                    f"at '{path}'.",
                )
            else:
                self.problem(
                    path, f"Invalid value at '{path}' ({_type_name(kind, schema.get('format'))}), {{}}"
                )
            return value
        if value is None:
            return None
        return self._scalar(value, schema, kind, path, proto)

    def _object(
        self, value: Any, schema: dict[str, Any], path: str, proto: Any, exempt: frozenset[str]
    ) -> Any:
        if not isinstance(value, dict):
            if value is None:
                return None
            full = f"type.googleapis.com/{proto.full_name}" if proto is not None else "TYPE_MESSAGE"
            self.problem(path, f"Invalid value at '{path}' ({full}), {json.dumps(value)}")
            return value
        props: dict[str, Any] = schema.get("properties", {})
        extra = schema.get("additionalProperties")
        result: dict[str, Any] = {}
        if not props and extra is not None:
            value_proto = _map_value(proto)
            for index, (key, item) in enumerate(value.items()):
                if not isinstance(key, str):
                    self.problem(path, f"Invalid map key at '{path}'.")
                    continue
                result[key] = self.check(item, extra, f"{path}[{index}].value", value_proto)
            return result
        for key, item in value.items():
            name = key
            if name not in props and self.aliases and camel(name) in props:
                name = camel(name)
            prop = props.get(name)
            if prop is None:
                if key == "@type" and "@type" not in props and extra is not None:
                    result[key] = item
                    continue
                where = f" at '{path}'" if path else ""
                self.problem(
                    f"{path}" if path else "",
                    f'Invalid JSON payload received. Unknown name "{key}"{where}: Cannot find field.',
                )
                continue
            if output_only(prop):
                continue  # Google ignores output-only fields in requests
            child_path = f"{path}.{snake(name)}" if path else snake(name)
            child_proto = _child(proto, name)
            result[name] = self.check(item, prop, child_path, child_proto)
        if self.require:
            for name, prop in props.items():
                if name in exempt or (name in result and result[name] not in (None, "", [], {})):
                    continue
                annotated = self.method.id in prop.get("annotations", {}).get("required", [])
                if annotated or (_REQUIRED.match(prop.get("description", "")) and not output_only(prop)):
                    child_path = f"{path}.{snake(name)}" if path else snake(name)
                    self.problem(child_path, f"Field '{child_path}' is required.")
        return result

    def _scalar(self, value: Any, schema: dict[str, Any], kind: str, path: str, proto: Any) -> Any:
        fmt = schema.get("format")
        enum = schema.get("enum")

        def bad() -> Any:
            name = (
                f"type.googleapis.com/{proto.enum_type.full_name}"
                if enum and proto is not None and getattr(proto, "enum_type", None) is not None
                else ("TYPE_ENUM" if enum else _type_name(kind, fmt))
            )
            self.problem(path, f"Invalid value at '{path}' ({name}), {json.dumps(value)}")
            return value

        if kind == "boolean":
            return value if isinstance(value, bool) else bad()
        if kind == "integer":
            number = _integer(value)
            if number is None:
                return bad()
            low, high = _UINT32 if fmt == "uint32" else _INT32
            return number if low <= number <= high else bad()
        if kind == "number":
            if isinstance(value, bool):
                return bad()
            if isinstance(value, (int, float)):
                return value
            if isinstance(value, str):
                try:
                    return float(value)
                except ValueError:
                    return bad()
            return bad()
        # strings, with their formats and enums
        if enum:
            if isinstance(value, str):
                return value if value in enum else bad()
            number = _integer(value)
            if number is None or isinstance(value, str):
                return bad()
            name = _enum_name(proto, number)
            if name is None and 0 <= number < len(enum):
                name = enum[number]
            return name if name in enum else bad()
        if fmt in ("int64", "uint64"):
            number = _integer(value)
            if number is None:
                return bad()
            low, high = _UINT64 if fmt == "uint64" else _INT64
            return str(number) if low <= number <= high else bad()
        if not isinstance(value, str):
            return bad()
        if fmt == "byte":
            try:
                padded = value + "=" * (-len(value) % 4)
                if "-" in value or "_" in value:
                    base64.urlsafe_b64decode(padded)
                else:
                    base64.b64decode(padded, validate=True)
            except (binascii.Error, ValueError):
                return bad()
        elif fmt == "google-datetime" or fmt == "date-time":
            if parse_time(value) is None:
                return bad()
        elif fmt == "google-duration":
            if not _DURATION.match(value):
                return bad()
        elif fmt == "google-fieldmask":
            try:
                _fieldmask(value, path)
            except ApiError:
                return bad()
        return value


def _integer(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and re.fullmatch(r"-?\d+", value.strip()):
        return int(value)
    return None


def _child(proto: Any, name: str) -> Any:
    """The descriptor below field ``name`` of message descriptor ``proto``: a message's or an enum field's."""
    if proto is None or not hasattr(proto, "fields_by_camelcase_name"):
        return None
    field_desc = proto.fields_by_camelcase_name.get(name) or proto.fields_by_name.get(snake(name))
    if field_desc is None:
        return None
    if field_desc.message_type is not None:
        return field_desc.message_type
    return field_desc


def _map_value(proto: Any) -> Any:
    """For a map field's entry descriptor, the descriptor of its values."""
    if proto is None or not hasattr(proto, "fields_by_name"):
        return None
    value = proto.fields_by_name.get("value")
    if value is None:
        return None
    return value.message_type if value.message_type is not None else value


def _enum_name(proto: Any, number: int) -> str | None:
    enum_type = getattr(proto, "enum_type", None)
    if enum_type is None:
        return None
    found = enum_type.values_by_number.get(number)
    return found.name if found is not None else None
