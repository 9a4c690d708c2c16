"""The host's HTTP API (JSON, ``Authorization: Bearer TOKEN``), mounted at ``/v1``.

Apps, their environments, each environment's resources, the credentials its services resolve and its
secret values. Errors are ``{"error": {"code", "message"}}``: 400 a malformed request (not JSON, a bad
name in the path), 401 no or an unknown token, 403 a token of another app or environment, or of a kind
that may not do this, 404 nothing of that name, 409 a contradiction, 413 a body over 1 MiB, 422 a body
with wrong fields, 429 a quota (its message names it and its limit). Requests on one resource take
turns. Who may do what:

============================================  =========================================
route                                         tokens
============================================  =========================================
``POST /v1/apps``, ``DELETE /v1/apps/{app}``  admin
apps, environments, resources, secret PUT     admin, the app's
sources, deployments                          admin, the app's
credentials, secret GET                       admin, the app's, the environment's runtime
============================================  =========================================

Services (:mod:`skyrig_hosted.host.services`): ``PUT /v1/apps/{app}/sources/{sha256}`` uploads a source
archive (raw gzip'd tar, at most 64 MiB, :mod:`skyrig_hosted.host.sources`); a resource of kind
``service`` ({"app": "module:attribute"}) has the output ``url``; ``PUT .../deployments/{service}``
{"source", "config"} (re)starts its process and answers once it accepts connections.
"""

from __future__ import annotations

import json
import logging
import re
import threading
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import anyio.to_thread
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Mount, Route

from skyrig_hosted.host.quotas import QuotaExceeded, Quotas
from skyrig_hosted.host.store import Conflict, Environment, NotFound, Resource, Store
from skyrig_hosted.host.tenancy import FAMILIES, FAMILY_OF, KINDS, Tenancy
from skyrig_hosted.host.tokens import ADMIN, APP, RUNTIME, Principal

log = logging.getLogger("skyrig_hosted.host.api")

APP_NAME = re.compile(r"[a-z][a-z0-9-]{0,62}")
ENV_NAME = re.compile(r"[a-z0-9][a-z0-9:_-]{0,62}")
RESOURCE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,62}")
SECRET_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}")
ENV_TYPES = ("preview", "development")
STORAGE_KINDS = ("database", "bucket", "topic", "subscription")
"""Kinds whose data counts towards the storage quota."""
COUNTED_KINDS = {"service": "services_per_environment"}
"""Kinds with a quota on their number per environment (``service`` arrives with the supervisor)."""
MAX_BODY = 1024 * 1024
APP_REFERENCE = re.compile(r"[A-Za-z_][A-Za-z0-9_.]*:[A-Za-z_][A-Za-z0-9_.]*")
"""A service's app: ``module:attribute``."""
SERVICE_NAME = re.compile(r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?")
"""A service's name is the first label of its host name."""
SHA256 = re.compile(r"[0-9a-f]{64}")


class ApiError(Exception):
    """An answer other than success: its status, a stable code and a one-line message."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


def error_response(status: int, code: str, message: str) -> JSONResponse:
    """The API's error shape."""
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    return JSONResponse({"error": {"code": code, "message": message}}, status_code=status, headers=headers)


@dataclass
class Call:
    """One request, parsed: who sends it, its path parameters and its JSON body (None when empty)."""

    principal: Principal
    params: dict[str, str]
    body: Any


def _name(value: str, pattern: re.Pattern[str], what: str) -> str:
    if not pattern.fullmatch(value):
        raise ApiError(400, "bad_name", f"{what} {value!r} is not valid: it must match {pattern.pattern}")
    return value


def _object(body: Any) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise ApiError(422, "invalid", "the body must be a JSON object")
    return body


def _field(body: dict[str, Any], name: str, kind: type, *, required: bool = True) -> Any:
    if name not in body:
        if required:
            raise ApiError(422, "invalid", f"the body has no {name!r}")
        return None
    value = body[name]
    if not isinstance(value, kind) or isinstance(value, bool) is not (kind is bool):
        raise ApiError(422, "invalid", f"{name!r} must be a {_TYPE_NAMES.get(kind, kind.__name__)}")
    return value


_TYPE_NAMES = {str: "string", dict: "JSON object", int: "integer"}


def _only(body: dict[str, Any], *names: str) -> None:
    extra = sorted(set(body) - set(names))
    if extra:
        raise ApiError(422, "invalid", f"unknown field {extra[0]!r} (expected: {', '.join(names)})")


class HostApi:
    """The API's handlers over the host's :class:`Store`, its servers (:class:`Tenancy`) and quotas."""

    def __init__(self, store: Store, tenancy: Tenancy, quotas: Quotas | None = None) -> None:
        self.store = store
        self.tenancy = tenancy
        self.quotas = quotas or Quotas()
        self._locks: dict[tuple[str, ...], threading.Lock] = {}
        self._locks_lock = threading.Lock()
        self.webhooks: Any = None
        """The GitHub routes and preview jobs (:class:`skyrig_hosted.host.webhooks.Webhooks`), when served."""
        self.services: Any = None
        """The services' supervisor (:class:`skyrig_hosted.host.services.Services`), when served."""
        self.sources: Any = None
        """The source archives (:class:`skyrig_hosted.host.sources.Sources`), when served."""
        self.cron: Any = None
        """The signing keys and the scheduler (:class:`skyrig_hosted.host.cron.Cron`), when served."""

    @contextmanager
    def _one_at_a_time(self, *key: str) -> Iterator[None]:
        """Requests on one resource take turns (this process is the host's only API): two PUTs of a new
        database must not both create it on the server."""
        with self._locks_lock:
            lock = self._locks.setdefault(key, threading.Lock())
        with lock:
            yield

    # -- who may -----------------------------------------------------------------------------------------

    @staticmethod
    def _admin(call: Call) -> None:
        if call.principal.kind != ADMIN:
            raise ApiError(403, "forbidden", "only the host's admin token may do this")

    @staticmethod
    def _deployer(call: Call, app: str) -> None:
        """The admin, or the app's own token."""
        principal = call.principal
        if principal.kind == ADMIN or (principal.kind == APP and principal.app == app):
            return
        if principal.kind == RUNTIME and principal.app == app:
            raise ApiError(403, "forbidden", "a runtime token may only read credentials and secrets")
        raise ApiError(403, "forbidden", f"this token is not app {app!r}'s")

    @staticmethod
    def _reader(call: Call, app: str, env: str) -> None:
        """The admin, the app's token, or the environment's runtime token."""
        principal = call.principal
        if principal.kind == ADMIN or (principal.kind == APP and principal.app == app):
            return
        if principal.kind == RUNTIME and principal.app == app and principal.env == env:
            return
        raise ApiError(403, "forbidden", f"this token is not app {app!r}'s nor environment {env!r}'s")

    def _environment(self, app: str, env: str) -> Environment:
        _name(app, APP_NAME, "app")
        _name(env, ENV_NAME, "environment")
        found = self.store.environment(app, env)
        if found is None:
            if not self.store.app_exists(app):
                raise ApiError(404, "not_found", f"no app {app!r}")
            raise ApiError(404, "not_found", f"no environment {env!r} in app {app!r}")
        return found

    # -- apps --------------------------------------------------------------------------------------------

    def create_app(self, call: Call) -> tuple[int, Any]:
        self._admin(call)
        body = _object(call.body)
        _only(body, "name")
        name = _field(body, "name", str)
        if not APP_NAME.fullmatch(name):
            message = f"app name {name!r} is not valid: it must match {APP_NAME.pattern}"
            raise ApiError(422, "invalid", message)
        token = self.store.create_app(name)
        return 201, {"app": {"name": name}, "token": token}

    def get_app(self, call: Call) -> tuple[int, Any]:
        app = _name(call.params["app"], APP_NAME, "app")
        self._deployer(call, app)
        if not self.store.app_exists(app):
            raise ApiError(404, "not_found", f"no app {app!r}")
        return 200, {"app": {"name": app, "envs": [e.name for e in self.store.environments(app)]}}

    def delete_app(self, call: Call) -> tuple[int, Any]:
        self._admin(call)
        app = _name(call.params["app"], APP_NAME, "app")
        if not self.store.app_exists(app):
            raise ApiError(404, "not_found", f"no app {app!r}")
        if self.webhooks is not None:  # first: no preview job may make an environment again meanwhile
            self.webhooks.forget(app)
        for environment in self.store.environments(app):
            self._remove(environment)
        self.store.delete_app(app)
        self._collect_sources()  # the app's uploads went with it
        return 204, None

    # -- environments ------------------------------------------------------------------------------------

    @staticmethod
    def _env_view(
        environment: Environment, token: str | None = None, template: str | None = None
    ) -> dict[str, Any]:
        view: dict[str, Any] = {"name": environment.name, "type": environment.type, "id": environment.id}
        if template is not None:
            view["template"] = template
        if token is not None:
            view["runtime_token"] = token
        return view

    def put_env(self, call: Call) -> tuple[int, Any]:
        app, env = call.params["app"], call.params["env"]
        self._deployer(call, app)
        _name(app, APP_NAME, "app")
        _name(env, ENV_NAME, "environment")
        body = _object(call.body)
        _only(body, "type", "template")
        type_ = _field(body, "type", str)
        if type_ not in ENV_TYPES:
            raise ApiError(422, "invalid", f"'type' must be one of {', '.join(ENV_TYPES)}, not {type_!r}")
        template = _field(body, "template", str, required=False)
        if template is not None and (template == env or not ENV_NAME.fullmatch(template)):
            raise ApiError(
                422, "invalid", f"'template' must name another environment of the app, not {template!r}"
            )
        environment, token = self.store.put_environment(
            app, env, type_, self.quotas.environments_per_app, template
        )
        return (201 if token else 200), {"env": self._env_view(environment, token, template)}

    def get_env(self, call: Call) -> tuple[int, Any]:
        app, env = call.params["app"], call.params["env"]
        self._deployer(call, app)
        environment = self._environment(app, env)
        return 200, {"env": self._env_view(environment, template=self.store.template(environment))}

    def list_envs(self, call: Call) -> tuple[int, Any]:
        app = _name(call.params["app"], APP_NAME, "app")
        self._deployer(call, app)
        if not self.store.app_exists(app):
            raise ApiError(404, "not_found", f"no app {app!r}")
        return 200, {"envs": [self._env_view(e) for e in self.store.environments(app)]}

    def delete_env(self, call: Call) -> tuple[int, Any]:
        app, env = call.params["app"], call.params["env"]
        self._deployer(call, app)
        try:
            environment = self._environment(app, env)
        except ApiError as error:
            if error.message.startswith("no environment"):
                return 204, None
            raise
        self._remove(environment)
        return 204, None

    def _remove(self, environment: Environment) -> None:
        """Everything of the environment, on every server, then its rows (a crash between: the next
        DELETE removes what is left, each server's removal being idempotent)."""
        if self.services is not None:
            self.services.stop_environment(environment)
        for family in FAMILIES:
            self.tenancy.remove(environment, family)
        self.store.delete_environment(environment)
        self._collect_sources()

    # -- resources ---------------------------------------------------------------------------------------

    def _kind(self, kind: str) -> str:
        if kind not in KINDS:
            raise ApiError(400, "bad_kind", f"unknown resource kind {kind!r} (kinds: {', '.join(KINDS)})")
        return kind

    @staticmethod
    def _view(environment: Environment, resource: Resource) -> dict[str, Any]:
        return {
            "kind": resource.kind,
            "name": resource.name,
            "properties": resource.properties,
            "outputs": resource.outputs or {},
        }

    @staticmethod
    def reference(environment: Environment, kind: str, name: str) -> str:
        """How outputs point at a credential or a secret value: never the value itself."""
        return f"hosted:{environment.app}/{environment.name}/{kind}/{name}"

    def put_resource(self, call: Call) -> tuple[int, Any]:
        app, env, kind, name = (call.params[k] for k in ("app", "env", "kind", "name"))
        self._deployer(call, app)
        self._kind(kind)
        _name(name, RESOURCE_NAME, f"{kind} name")
        body = _object(call.body)
        _only(body, "properties")
        properties = _field(body, "properties", dict, required=False) or {}
        environment = self._environment(app, env)
        with self._one_at_a_time(environment.id, kind, name):
            existing = self.store.resource(environment, kind, name)
            if existing is None and kind in STORAGE_KINDS:
                used, limit = self.tenancy.usage(environment), self.quotas.storage_per_environment
                if used >= limit:
                    raise QuotaExceeded("storage per environment", limit, "bytes")
            counted = COUNTED_KINDS.get(kind)
            limit = getattr(self.quotas, counted) if counted else None
            made = self.store.begin_resource(environment, kind, name, properties, limit)
            try:
                outputs = self._make(environment, kind, name, properties)
            except Exception:
                if made:
                    self.store.delete_resource(environment, kind, name)
                raise
            resource = self.store.finish_resource(environment, kind, name, outputs)
        return (201 if made else 200), {"resource": self._view(environment, resource)}

    def _make(
        self, environment: Environment, kind: str, name: str, properties: dict[str, Any]
    ) -> dict[str, Any]:
        reference = self.reference(environment, kind, name)
        if kind == "secret":
            return {"reference": reference}
        if kind == "service":
            return self._make_service(environment, name, properties)
        if kind == "cron_job":
            return self._make_cron_job(environment, name, properties)
        family = FAMILY_OF[kind]
        login = self.store.login(environment, family, make=lambda: self.tenancy.ensure(environment, family))
        assert login is not None
        try:
            outputs = self.tenancy.put(environment, login, kind, name, properties)
        except ValueError as error:  # the tenant refuses the properties
            raise ApiError(422, "invalid", f"{kind} {name!r}: {error}") from None
        return {**outputs, "credentials": reference}

    def get_resource(self, call: Call) -> tuple[int, Any]:
        app, env, kind, name = (call.params[k] for k in ("app", "env", "kind", "name"))
        self._deployer(call, app)
        self._kind(kind)
        _name(name, RESOURCE_NAME, f"{kind} name")
        environment = self._environment(app, env)
        resource = self.store.resource(environment, kind, name)
        if resource is None or resource.outputs is None:
            raise ApiError(404, "not_found", f"no {kind} {name!r} in environment {env!r} of app {app!r}")
        return 200, {"resource": self._view(environment, resource)}

    def list_resources(self, call: Call) -> tuple[int, Any]:
        app, env = call.params["app"], call.params["env"]
        self._deployer(call, app)
        environment = self._environment(app, env)
        resources = [r for r in self.store.resources(environment) if r.outputs is not None]
        return 200, {"resources": [self._view(environment, r) for r in resources]}

    def delete_resource(self, call: Call) -> tuple[int, Any]:
        app, env, kind, name = (call.params[k] for k in ("app", "env", "kind", "name"))
        self._deployer(call, app)
        self._kind(kind)
        _name(name, RESOURCE_NAME, f"{kind} name")
        environment = self._environment(app, env)
        with self._one_at_a_time(environment.id, kind, name):
            if kind == "secret":
                self.store.delete_secret(environment, name)
            elif kind == "service":
                if self.services is not None:
                    self.services.remove(environment, name)
            elif kind == "cron_job":
                if self.cron is not None:
                    self.cron.forget(environment, name)
            else:
                self.tenancy.delete(environment, kind, name)
            self.store.delete_resource(environment, kind, name)
        return 204, None

    # -- credentials and secrets -------------------------------------------------------------------------

    def get_credentials(self, call: Call) -> tuple[int, Any]:
        app, env, kind, name = (call.params[k] for k in ("app", "env", "kind", "name"))
        self._reader(call, app, env)
        self._kind(kind)
        _name(name, RESOURCE_NAME, f"{kind} name")
        environment = self._environment(app, env)
        if kind == "secret":
            raise ApiError(404, "not_found", f"a secret has no credentials: read its value at secrets/{name}")
        if kind not in FAMILY_OF:
            raise ApiError(404, "not_found", f"a {kind} has no credentials")
        resource = self.store.resource(environment, kind, name)
        login = self.store.login(environment, FAMILY_OF[kind]) if resource is not None else None
        if login is None:
            raise ApiError(404, "not_found", f"no {kind} {name!r} in environment {env!r} of app {app!r}")
        return 200, {"username": login["username"], "password": login["password"]}

    def put_secret(self, call: Call) -> tuple[int, Any]:
        app, env, name = call.params["app"], call.params["env"], call.params["name"]
        self._deployer(call, app)
        _name(name, SECRET_NAME, "secret name")
        body = _object(call.body)
        _only(body, "value")
        value = _field(body, "value", str)
        environment = self._environment(app, env)
        self.store.put_secret(environment, name, value)
        return 200, {"secret": {"name": name, "reference": self.reference(environment, "secret", name)}}

    def get_secret(self, call: Call) -> tuple[int, Any]:
        app, env, name = call.params["app"], call.params["env"], call.params["name"]
        self._reader(call, app, env)
        _name(name, SECRET_NAME, "secret name")
        environment = self._environment(app, env)
        value = self.store.secret(environment, name)
        if value is None:
            raise ApiError(404, "not_found", f"secret {name!r} of environment {env!r} has no value")
        return 200, {"value": value}

    # -- services and deployments ------------------------------------------------------------------------

    def _running(self) -> Any:
        if self.services is None or self.sources is None:
            raise ApiError(501, "not_served", "this host runs no services")
        return self.services

    def _make_service(
        self, environment: Environment, name: str, properties: dict[str, Any]
    ) -> dict[str, Any]:
        services = self._running()
        _only(properties, "app")
        app = _field(properties, "app", str)
        if not APP_REFERENCE.fullmatch(app):
            raise ApiError(422, "invalid", f"service {name!r}: 'app' must be 'module:attribute', not {app!r}")
        if not SERVICE_NAME.fullmatch(name):
            message = f"service name {name!r} must be one DNS label ({SERVICE_NAME.pattern})"
            raise ApiError(422, "invalid", message)
        return {"url": services.url(environment, name)}

    def _make_cron_job(
        self, environment: Environment, name: str, properties: dict[str, Any]
    ) -> dict[str, Any]:
        """A cron job's properties checked (its service, its timing); the environment's signing key made
        with its first job. No outputs: the host's scheduler fires it."""
        from skyrig_hosted.host.cron import check_timing

        _only(properties, "service", "endpoint", "schedule", "every")
        service = properties.get("service")
        if not isinstance(service, str) or not RESOURCE_NAME.fullmatch(service):
            message = f"cron job {name!r}: 'service' must name a service of the environment"
            raise ApiError(422, "invalid", message)
        try:
            check_timing(properties.get("schedule"), properties.get("every"))
        except ValueError as error:
            raise ApiError(422, "invalid", f"cron job {name!r}: {error}") from None
        if self.cron is not None:
            self.cron.signing_key(environment)
            self.cron.remember(environment, name)
        return {}

    def _collect_sources(self) -> None:
        """Removes the source archives no deployment uses any more."""
        if self.sources is not None and self.services is not None:
            self.sources.collect(self.services.sources_in_use())

    def put_deployment(self, call: Call) -> tuple[int, Any]:
        app, env, service = call.params["app"], call.params["env"], call.params["service"]
        self._deployer(call, app)
        _name(service, RESOURCE_NAME, "service name")
        body = _object(call.body)
        _only(body, "source", "config")
        source = _field(body, "source", str)
        config = _field(body, "config", dict)
        if not SHA256.fullmatch(source):
            raise ApiError(422, "invalid", "'source' must be the archive's SHA-256 (64 lowercase hex digits)")
        environment = self._environment(app, env)
        services = self._running()
        resource = self.store.resource(environment, "service", service)
        if resource is None or resource.outputs is None:
            raise ApiError(404, "not_found", f"no service {service!r} in environment {env!r} of app {app!r}")
        if self.sources.get(app, source) is None:
            message = f"app {app!r} has no source {source}: upload it first (PUT sources/{source})"
            raise ApiError(404, "not_found", message)
        with self._one_at_a_time(environment.id, "deployment", service):
            view = services.deploy(environment, service, resource.properties["app"], source, config)
        self._collect_sources()
        return 200, {"deployment": view}

    def get_deployment(self, call: Call) -> tuple[int, Any]:
        from skyrig_hosted.host.services import NotDeployed

        app, env, service = call.params["app"], call.params["env"], call.params["service"]
        self._deployer(call, app)
        _name(service, RESOURCE_NAME, "service name")
        environment = self._environment(app, env)
        try:
            return 200, {"deployment": self._running().view(environment, service)}
        except NotDeployed:
            message = f"service {service!r} of environment {env!r} is not deployed"
            raise ApiError(404, "not_found", message) from None

    def list_deployments(self, call: Call) -> tuple[int, Any]:
        app, env = call.params["app"], call.params["env"]
        self._deployer(call, app)
        environment = self._environment(app, env)
        return 200, {"deployments": self._running().views(environment)}

    # -- the application ---------------------------------------------------------------------------------

    def _endpoint(
        self, handler: Callable[[Call], tuple[int, Any]]
    ) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            try:
                principal = await anyio.to_thread.run_sync(self._authenticate, request)
                body = await _body(request)
                call = Call(principal, dict(request.path_params), body)
                status, content = await anyio.to_thread.run_sync(handler, call)
            except ApiError as error:
                return error_response(error.status, error.code, error.message)
            except QuotaExceeded as error:
                return error_response(429, "quota_exceeded", str(error))
            except NotFound as error:
                return error_response(404, "not_found", str(error))
            except Conflict as error:
                return error_response(409, "conflict", str(error))
            except Exception as error:  # a server's failure: said without a traceback, logged here
                log.exception("%s %s failed", request.method, request.url.path)
                return error_response(500, "internal", f"the host failed: {type(error).__name__}")
            if status == 204:
                return Response(status_code=204)
            return JSONResponse(content, status_code=status)

        return endpoint

    def _authenticate(self, request: Request) -> Principal:
        header = request.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise ApiError(401, "unauthorized", "no bearer token (Authorization: Bearer TOKEN)")
        principal = self.store.principal(token.strip())
        if principal is None:
            raise ApiError(401, "unauthorized", "unknown token")
        return principal

    def application(self) -> Starlette:
        """The ASGI application: these routes under ``/v1``."""
        e = self._endpoint
        base = "/apps/{app}/envs/{env}"
        routes = [
            Route("/apps", e(self.create_app), methods=["POST"]),
            Route("/apps/{app}", e(self.get_app), methods=["GET"]),
            Route("/apps/{app}", e(self.delete_app), methods=["DELETE"]),
            Route("/apps/{app}/envs", e(self.list_envs), methods=["GET"]),
            Route(base, e(self.put_env), methods=["PUT"]),
            Route(base, e(self.get_env), methods=["GET"]),
            Route(base, e(self.delete_env), methods=["DELETE"]),
            Route(f"{base}/resources", e(self.list_resources), methods=["GET"]),
            Route(f"{base}/resources/{{kind}}/{{name}}", e(self.put_resource), methods=["PUT"]),
            Route(f"{base}/resources/{{kind}}/{{name}}", e(self.get_resource), methods=["GET"]),
            Route(f"{base}/resources/{{kind}}/{{name}}", e(self.delete_resource), methods=["DELETE"]),
            Route(f"{base}/credentials/{{kind}}/{{name}}", e(self.get_credentials), methods=["GET"]),
            Route(f"{base}/secrets/{{name}}", e(self.put_secret), methods=["PUT"]),
            Route(f"{base}/secrets/{{name}}", e(self.get_secret), methods=["GET"]),
        ]
        if self.webhooks is not None:
            routes += self.webhooks.routes(self)
        if self.cron is not None:
            from skyrig_hosted.host.cron import routes as cron_routes

            routes += cron_routes(self)
        if self.sources is not None:
            from skyrig_hosted.host.sources import routes as source_routes

            routes += source_routes(self, self.sources)
        routes += [
            Route(f"{base}/deployments", e(self.list_deployments), methods=["GET"]),
            Route(f"{base}/deployments/{{service}}", e(self.put_deployment), methods=["PUT"]),
            Route(f"{base}/deployments/{{service}}", e(self.get_deployment), methods=["GET"]),
        ]

        async def not_found(request: Request, exc: Exception) -> Response:
            status = getattr(exc, "status_code", 404)
            messages = {404: "no such route", 405: "method not allowed on this route"}
            message = messages.get(status, "bad request")
            return error_response(status, "not_found" if status == 404 else "bad_request", message)

        from skyrig_hosted.host.public import routes as object_routes

        return Starlette(
            # /objects/BUCKET/KEY: public buckets' objects and presigned URLs (skyrig_hosted.host.public)
            routes=[*object_routes(self), Mount("/v1", routes=routes)],
            exception_handlers={404: not_found, 405: not_found},
        )


async def read_limited(request: Request, limit: int, what: str = "the body") -> bytes:
    """The request's body, refused (413) unread when it declares more than ``limit`` bytes, and as soon as
    more arrive when it does not."""
    too_large = ApiError(413, "too_large", f"{what} is too large (over {limit} bytes)")
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise too_large
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise too_large
        chunks.append(chunk)
    return b"".join(chunks)


async def _body(request: Request) -> Any:
    """The request's JSON body (None when empty); over :data:`MAX_BODY` bytes is refused unread."""
    raw = await read_limited(request, MAX_BODY)
    if not raw.strip():
        return None
    try:
        return json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ApiError(400, "bad_json", f"the body is not JSON: {error}") from None


def create_app(store: Store, tenancy: Tenancy, quotas: Quotas | None = None) -> Starlette:
    """The host's API as an ASGI application."""
    return HostApi(store, tenancy, quotas).application()
