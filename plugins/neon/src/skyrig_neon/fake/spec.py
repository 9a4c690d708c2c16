"""Neon's OpenAPI description, for the FAKE Neon API (:mod:`skyrig_neon.fake`): routing and validation.

The document is Neon's own ``public-v2-for-users.gen.yaml`` from the npm package
``@neondatabase/api-client`` (its licence is proprietary: it is installed by ``.ci/run`` into
``.cache/neon-api-client`` of the repository, never committed), or the file ``SKYRIG_NEON_OPENAPI`` names.

:class:`Spec` finds the operation of a request (method and path template -> ``operationId``) and checks its
path and query parameters and its JSON body with ``openapi_schema_validator.OAS30Validator`` (``$ref``
resolved in the document, ``format`` checked for ``date-time`` and ``uuid`` too), plus what the schemas
leave open but Neon refuses: body members the schema does not declare, query parameters the operation does
not take. Every violation is a :class:`NeonError` 400 naming the JSON path. Responses are checked against
the operation's response schema the same way (:meth:`Spec.check_response`).
"""

from __future__ import annotations

import functools
import json
import os
import re
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

PACKAGE = "@neondatabase/api-client"
VERSION = "2.7.3"
RELATIVE = Path(".cache/neon-api-client/node_modules/@neondatabase/api-client/public-v2-for-users.gen.yaml")
INSTALL = (
    f"npm install --prefix .cache/neon-api-client --no-audit --no-fund {PACKAGE}@{VERSION}"
    " (at the repository's root, as .ci/run does)"
)
_URI = "https://fake-neon.invalid/openapi.yaml"
_METHODS = ("get", "post", "put", "patch", "delete")


class NeonError(Exception):
    """An error the fake answers: HTTP ``status`` and Neon's body ``{"code", "message", "request_id"}``."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message

    def body(self, request_id: str) -> dict[str, Any]:
        """The response body (Neon's ``GeneralError``)."""
        return {"code": self.code, "message": self.message, "request_id": request_id}


def bad_request(message: str) -> NeonError:
    """400, as Neon answers a request its schemas or rules refuse."""
    return NeonError(400, "BAD_REQUEST", message)


def not_found(message: str) -> NeonError:
    """404, an unknown path or id."""
    return NeonError(404, "NOT_FOUND", message)


def conflict(message: str) -> NeonError:
    """409, a duplicate name or a state that forbids the change."""
    return NeonError(409, "CONFLICT", message)


def locked(project_id: str) -> NeonError:
    """423, a mutation while an operation of the project runs (Neon: safe to retry)."""
    return NeonError(
        423,
        "LOCKED",
        f"project {project_id} already has running conflicting operations, scheduling of new ones is "
        "prohibited",
    )


def find_document() -> Path | None:
    """Where Neon's OpenAPI YAML is: ``SKYRIG_NEON_OPENAPI``, else ``.cache/neon-api-client`` of the
    repository this file is in (searched upwards), else None."""
    named = os.environ.get("SKYRIG_NEON_OPENAPI")
    if named:
        return Path(named) if Path(named).is_file() else None
    for folder in Path(__file__).resolve().parents:
        candidate = folder / RELATIVE
        if candidate.is_file():
            return candidate
    return None


def unavailable() -> str | None:
    """Why the fake cannot start (Neon's OpenAPI description is missing), or None when it can."""
    if find_document() is not None:
        return None
    named = os.environ.get("SKYRIG_NEON_OPENAPI")
    if named:
        return f"SKYRIG_NEON_OPENAPI names {named}, which is not a file"
    return f"Neon's OpenAPI description is not installed: run {INSTALL}"


@dataclass
class Operation:
    """One operation of the document: ``method``, path ``template`` and what validates a request to it."""

    id: str
    method: str
    template: str
    regex: re.Pattern[str]
    literals: int
    parameters: dict[tuple[str, str], dict[str, Any]]
    body: dict[str, Any] | None
    body_required: bool
    responses: dict[str, dict[str, Any] | None] = field(default_factory=dict)


@dataclass
class Request:
    """A request the document accepts: its operation, path parameters, typed query parameters and body."""

    operation: Operation
    path: dict[str, str]
    query: dict[str, Any]
    body: Any


class Spec:
    """Neon's OpenAPI document, loaded once per process (:func:`load`)."""

    def __init__(self, document: dict[str, Any]) -> None:
        from jsonschema import FormatChecker
        from openapi_schema_validator import OAS30Validator
        from openapi_schema_validator._format import oas30_format_checker
        from referencing import Registry, Resource
        from referencing.jsonschema import DRAFT4

        self.document = document
        self._registry = Registry().with_resource(_URI, Resource.from_contents(document, DRAFT4))
        checker = FormatChecker()
        for name in ("date-time", "uuid"):
            checker.checkers[name] = FormatChecker.checkers[name]
        for name, entry in oas30_format_checker.checkers.items():
            checker.checkers[name] = entry
        self._checker = checker
        self._validator_class = OAS30Validator
        self._validators: dict[int, Any] = {}
        self._guard = threading.Lock()
        self.operations: list[Operation] = []
        self.by_id: dict[str, Operation] = {}
        for template, item in document["paths"].items():
            shared = item.get("parameters", [])
            for method in _METHODS:
                if method in item:
                    operation = self._operation(template, method, shared, item[method])
                    self.operations.append(operation)
                    self.by_id[operation.id] = operation
        # a literal segment wins over a parameter (``/projects/shared`` over ``/projects/{project_id}``)
        self.operations.sort(key=lambda o: -o.literals)

    # -- the document ------------------------------------------------------------------------------------

    def resolve(self, schema: Any) -> Any:
        """``schema`` with a top-level ``$ref`` followed (repeatedly)."""
        while isinstance(schema, dict) and "$ref" in schema:
            schema = self._pointer(schema["$ref"])
        return schema

    def _pointer(self, ref: str) -> Any:
        if not ref.startswith("#/"):
            raise ValueError(f"only local references are supported, not {ref}")
        node: Any = self.document
        for part in ref[2:].split("/"):
            node = node[part.replace("~1", "/").replace("~0", "~")]
        return node

    def _operation(
        self, template: str, method: str, shared: list[dict[str, Any]], spec: dict[str, Any]
    ) -> Operation:
        parameters: dict[tuple[str, str], dict[str, Any]] = {}
        for parameter in [*shared, *spec.get("parameters", [])]:
            parameter = self.resolve(parameter)
            parameters[(parameter["in"], parameter["name"])] = parameter
        body = None
        body_required = False
        if "requestBody" in spec:
            request_body = self.resolve(spec["requestBody"])
            body = request_body.get("content", {}).get("application/json", {}).get("schema")
            body_required = bool(request_body.get("required", False))
        responses: dict[str, dict[str, Any] | None] = {}
        for status, response in spec.get("responses", {}).items():
            response = self.resolve(response)
            responses[str(status)] = response.get("content", {}).get("application/json", {}).get("schema")
        pattern = ""
        literals = 0
        for segment in template.strip("/").split("/"):
            if segment.startswith("{") and segment.endswith("}"):
                pattern += f"/(?P<{segment[1:-1]}>[^/]+)"
            else:
                pattern += "/" + re.escape(segment)
                literals += 1
        return Operation(
            id=spec["operationId"],
            method=method.upper(),
            template=template,
            regex=re.compile(pattern + "$"),
            literals=literals,
            parameters=parameters,
            body=body,
            body_required=body_required,
            responses=responses,
        )

    # -- requests ----------------------------------------------------------------------------------------

    def route(self, method: str, path: str) -> tuple[Operation, dict[str, str]]:
        """The operation for ``method`` and ``path`` (under the API's root), with its path parameters;
        404 when the document has no such path or method."""
        from urllib.parse import unquote

        found_path = False
        for operation in self.operations:
            match = operation.regex.match(path)
            if match is None:
                continue
            found_path = True
            if operation.method == method:
                return operation, {key: unquote(value) for key, value in match.groupdict().items()}
        if found_path:
            raise not_found(f"{method} is not an operation of {path}")
        raise not_found(f"no such path: {path}")

    def request(
        self, operation: Operation, path: dict[str, str], query: dict[str, list[str]], payload: bytes
    ) -> Request:
        """Checks a request's parameters and body against ``operation``; 400 on the first violation."""
        for name, value in path.items():
            parameter = operation.parameters.get(("path", name))
            if parameter is not None:
                self._check(value, parameter.get("schema", {}), f"path parameter {name}")
        typed: dict[str, Any] = {}
        for name, values in query.items():
            parameter = operation.parameters.get(("query", name))
            if parameter is None:
                raise bad_request(f"unknown query parameter {name!r} for {operation.id}")
            if len(values) != 1:
                raise bad_request(f"query parameter {name!r} given {len(values)} times")
            schema = parameter.get("schema", {})
            value = _typed(values[0], self.resolve(schema), name)
            self._check(value, schema, f"query parameter {name}")
            typed[name] = value
        for (where, name), parameter in operation.parameters.items():
            if where == "query" and parameter.get("required") and name not in typed:
                raise bad_request(f"missing required query parameter {name!r}")
        body: Any = None
        if payload.strip():
            try:
                body = json.loads(payload)
            except ValueError:
                raise bad_request("the request body is not valid JSON") from None
        if operation.body is None:
            if body not in (None, {}):
                raise bad_request(f"{operation.id} takes no request body")
            body = None
        elif body is None:
            if operation.body_required:
                raise bad_request(f"{operation.id} needs a JSON request body")
        else:
            self._check(body, operation.body, "request body")
            unknown = self.unknown_members(body, operation.body)
            if unknown:
                raise bad_request(f"request body: unknown field {unknown[0]!r}")
        return Request(operation, path, typed, body)

    def check_response(self, operation: Operation, status: int, body: Any) -> None:
        """Checks a response body against the operation's schema for ``status`` (or ``default``);
        raises ``ValueError`` naming the violation."""
        key = str(status) if str(status) in operation.responses else "default"
        if key not in operation.responses:
            raise ValueError(f"{operation.id} documents no response {status}")
        schema = operation.responses[key]
        if schema is None:
            if body is not None:
                raise ValueError(f"{operation.id} documents no body for {status}")
            return
        try:
            self._check(body, schema, "response body")
        except NeonError as error:
            raise ValueError(f"{operation.id} {status}: {error.message}") from None

    # -- validation --------------------------------------------------------------------------------------

    def _validator(self, schema: dict[str, Any]) -> Any:
        key = id(schema)  # every schema checked is a node of the document, which lives as long as the spec
        with self._guard:
            validator = self._validators.get(key)
            if validator is None:
                wrapped = _rebase(schema)
                validator = self._validator_class(
                    wrapped, registry=self._registry, format_checker=self._checker
                )
                self._validators[key] = validator
        return validator

    def _check(self, value: Any, schema: dict[str, Any], what: str) -> None:
        from jsonschema.exceptions import best_match

        error = best_match(self._validator(schema).iter_errors(value))
        if error is not None:
            where = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in error.absolute_path)
            raise bad_request(f"{what}{where}: {error.message}")

    def unknown_members(self, value: Any, schema: Any, path: str = "") -> list[str]:
        """JSON paths of object members ``schema`` does not declare (the schemas leave
        ``additionalProperties`` open, Neon's server refuses them)."""
        if isinstance(value, list):
            items = self._items(schema)
            found: list[str] = []
            if items is not None:
                for index, item in enumerate(value):
                    found += self.unknown_members(item, items, f"{path}[{index}]")
            return found
        if not isinstance(value, dict):
            return []
        properties, open_ended = self._properties(schema)
        if open_ended or not properties:
            return []
        found = []
        for key, item in value.items():
            where = f"{path}.{key}" if path else key
            if key not in properties:
                found.append(where)
            else:
                found += self.unknown_members(item, properties[key], where)
        return found

    def _properties(self, schema: Any) -> tuple[dict[str, Any], bool]:
        schema = self.resolve(schema)
        if not isinstance(schema, dict):
            return {}, True
        properties = dict(schema.get("properties", {}))
        open_ended = schema.get("additionalProperties", False) not in (False, None)
        for key in ("allOf", "oneOf", "anyOf"):
            for part in schema.get(key, []):
                more, more_open = self._properties(part)
                for name, sub in more.items():
                    properties.setdefault(name, sub)
                open_ended = open_ended or more_open
        return properties, open_ended

    def _items(self, schema: Any) -> Any:
        schema = self.resolve(schema)
        if not isinstance(schema, dict):
            return None
        if "items" in schema:
            return schema["items"]
        for key in ("allOf", "oneOf", "anyOf"):
            for part in schema.get(key, []):
                items = self._items(part)
                if items is not None:
                    return items
        return None


def _rebase(schema: Any) -> Any:
    """``schema`` with its local ``$ref``s pointing into the registered document."""
    if isinstance(schema, dict):
        return {
            key: (_URI + value if key == "$ref" and value.startswith("#") else _rebase(value))
            for key, value in schema.items()
        }
    if isinstance(schema, list):
        return [_rebase(item) for item in schema]
    return schema


def _typed(text: str, schema: Any, name: str) -> Any:
    """A query parameter's text as the JSON type its schema names."""
    kind = schema.get("type") if isinstance(schema, dict) else None
    try:
        if kind == "integer":
            return int(text)
        if kind == "number":
            return float(text)
    except ValueError:
        raise bad_request(f"query parameter {name!r}: {text!r} is not a {kind}") from None
    if kind == "boolean":
        if text not in ("true", "false"):
            raise bad_request(f"query parameter {name!r}: {text!r} is not a boolean")
        return text == "true"
    return text


@functools.cache
def load() -> Spec:
    """Neon's OpenAPI document (read once); RuntimeError naming the install command when it is missing."""
    import yaml

    reason = unavailable()
    if reason is not None:
        raise RuntimeError(f"the FAKE Neon API cannot start: {reason}")
    path = find_document()
    assert path is not None
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    with path.open(encoding="utf-8") as stream:
        document = yaml.load(stream, Loader=loader)
    return Spec(document)
