""":class:`FakeGcp`: the FAKE Google APIs that have no emulator, for tests (:mod:`skyrig_gcp.fake`).

It holds every API's state under one lock (requests are answered one at a time; an operations ``wait``
sleeps without it), counts calls, injects errors, and lets a test change what is stored as someone in the
console would.
"""

from __future__ import annotations

import copy
import hashlib
import json
import threading
import time
import traceback
import urllib.parse
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from skyrig_gcp.fake.apis import HANDLERS
from skyrig_gcp.fake.apis.base import ApiHandler, Request, deep_merge, lock_free_sleep
from skyrig_gcp.fake.errors import STATUS_FOR_HTTP, ApiError
from skyrig_gcp.fake.operations import Operation
from skyrig_gcp.fake.server import ApiListener

#: Other names a test may use for an API.
ALIASES = {
    "resourcemanager": "cloudresourcemanager",
    "scheduler": "cloudscheduler",
    "sql": "sqladmin",
    "secrets": "secretmanager",
    "memorystore": "redis",
}

#: Verbs that change nothing, whatever their HTTP method.
READ_ONLY_VERBS = frozenset(
    {
        "get",
        "list",
        "aggregatedList",
        "getIamPolicy",
        "testIamPermissions",
        "wait",
        "access",
        "search",
        "batchGet",
    }
)

#: APIs a project may call without enabling them first (Service Usage itself, Resource Manager).
ALWAYS_ENABLED = frozenset({"serviceusage", "cloudresourcemanager"})


@dataclass(frozen=True)
class Call:
    """One request the fake answered."""

    api: str
    method: str | None
    mutating: bool
    http_method: str
    path: str
    status: int


class CallLog:
    """The calls the fake answered, for tests: counts per (api, method), mutating or not."""

    def __init__(self) -> None:
        self._calls: list[Call] = []
        self._lock = threading.Lock()

    def add(self, call: Call) -> None:
        """Records a call."""
        with self._lock:
            self._calls.append(call)

    def clear(self) -> None:
        """Forgets every call."""
        with self._lock:
            self._calls.clear()

    def __iter__(self) -> Iterator[Call]:
        with self._lock:
            return iter(list(self._calls))

    def __len__(self) -> int:
        with self._lock:
            return len(self._calls)

    def select(
        self, api: str | None = None, method: str | None = None, mutating: bool | None = None
    ) -> list[Call]:
        """The calls of ``api`` (or any), of ``method`` (an id, or its end: ``secrets.create``),
        mutating or not."""
        api = ALIASES.get(api or "", api)
        found = []
        for call in self:
            if api is not None and call.api != api:
                continue
            if method is not None and not _method_matches(call.method, method):
                continue
            if mutating is not None and call.mutating != mutating:
                continue
            found.append(call)
        return found

    def count(self, api: str | None = None, method: str | None = None, mutating: bool | None = None) -> int:
        """How many calls :meth:`select` finds."""
        return len(self.select(api, method, mutating))

    def mutating(self, api: str | None = None) -> list[Call]:
        """The calls that changed something (POST, PUT, PATCH, DELETE but reads: ``getIamPolicy``, ...)."""
        return self.select(api, mutating=True)

    def counter(self) -> Counter[tuple[str, str | None]]:
        """Calls per (api, method id)."""
        return Counter((call.api, call.method) for call in self)


def _method_matches(method_id: str | None, wanted: str) -> bool:
    if method_id is None:
        return False
    return wanted == "*" or method_id == wanted or method_id.endswith("." + wanted)


@dataclass
class _Injection:
    api: str
    method: str
    error: ApiError
    times: int


class FakeGcp:
    """The FAKE Google APIs: one HTTP listener per API on 127.0.0.1, strict by the discovery documents.

    ``FakeGcp(lro_delay=0.2)``, then :meth:`start` (or ``with FakeGcp() as fake:``); point each client at
    :meth:`endpoint` (google-cloud-* libraries, ``transport="rest"``) or :meth:`discovery_endpoint`
    (google-api-python-client). ``projects`` are known to Resource Manager from the start.
    ``require_enabled_services`` answers 403 SERVICE_DISABLED for an API a project has not enabled through
    Service Usage, as Google does.
    """

    def __init__(
        self,
        *,
        lro_delay: float = 0.2,
        projects: tuple[str, ...] = (),
        require_enabled_services: bool = False,
        lro_delays: Mapping[str, float] | None = None,
    ) -> None:
        self.lro_delay = lro_delay
        self.lro_delays = {ALIASES.get(k, k): v for k, v in (lro_delays or {}).items()}
        self.require_enabled_services = require_enabled_services
        #: Runs a Cloud Run job's execution: ``runner(job_name, job) -> bool | None`` (False or an exception
        #: fails the execution); None: executions succeed after the operation delay.
        self.job_runner: Callable[[str, dict[str, Any]], bool | None] | None = None
        self.lock = threading.RLock()
        self.calls = CallLog()
        self.handlers: dict[str, ApiHandler] = {}
        self.listeners: dict[str, ApiListener] = {}
        self.stores: dict[str, dict[str, dict[str, Any]]] = {}
        self.policies: dict[str, dict[str, dict[str, Any]]] = {}
        self.operations: dict[tuple[str, str], Operation] = {}
        self._injections: list[_Injection] = []
        self._numbers: dict[str, str] = {}
        self._ids: dict[str, str] = {}
        self._seed_projects = tuple(projects)
        for api, handler in HANDLERS.items():
            self.handlers[api] = handler(self)
            self.stores[api] = {}
            self.policies[api] = {}
        self._seed()

    # -- lifecycle ----------------------------------------------------------------------------------------

    def start(self) -> FakeGcp:
        """Starts a listener per API; answers itself."""
        if not self.listeners:
            for api in self.handlers:
                listener = ApiListener(self, api)
                listener.start()
                self.listeners[api] = listener
        return self

    def stop(self) -> None:
        """Stops every listener."""
        for listener in self.listeners.values():
            listener.stop()
        self.listeners.clear()

    def __enter__(self) -> FakeGcp:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def reset(self) -> None:
        """Forgets every resource, policy, operation, call and pending injected error (listeners stay)."""
        with self.lock:
            for api, handler in self.handlers.items():
                self.stores[api].clear()
                self.policies[api].clear()
                handler.reset()
            self.operations.clear()
            self._injections.clear()
            self.calls.clear()
            self._seed()

    def _seed(self) -> None:
        for project in self._seed_projects:
            self.add_project(project)

    # -- endpoints ------------------------------------------------------------------------------------------

    @property
    def apis(self) -> list[str]:
        """The APIs the fake answers."""
        return list(self.handlers)

    def _api(self, api: str) -> str:
        name = ALIASES.get(api, api)
        if name not in self.handlers:
            raise KeyError(f"the fake has no API {api!r}; it has {', '.join(self.handlers)}")
        return name

    def endpoint(self, api: str) -> str:
        """``http://127.0.0.1:PORT``: the ``api_endpoint`` of a google-cloud-* client (REST transport)."""
        name = self._api(api)
        if name not in self.listeners:
            raise RuntimeError("the fake is not started: call FakeGcp.start() first")
        return f"http://127.0.0.1:{self.listeners[name].port}"

    def discovery_endpoint(self, api: str) -> str:
        """The ``api_endpoint`` for google-api-python-client's ``build``: the root and the service path.

        ``build`` uses ``api_endpoint`` in place of the document's ``rootUrl`` + ``servicePath``, so for
        Compute Engine this is ``http://127.0.0.1:PORT/compute/v1/``.
        """
        name = self._api(api)
        return f"{self.endpoint(name)}/{self.handlers[name].discovery.service_path}"

    # -- projects -----------------------------------------------------------------------------------------

    def add_project(self, project_id: str, number: str | None = None) -> str:
        """Makes ``project_id`` an existing project (Resource Manager finds it); answers its number."""
        with self.lock:
            number = self.project_number(project_id) if number is None else number
            self._numbers[project_id] = number
            self._ids[number] = project_id
            handler = self.handlers["cloudresourcemanager"]
            key = f"projects/{number}"
            if key not in self.stores["cloudresourcemanager"]:
                self.stores["cloudresourcemanager"][key] = handler.seed_project(project_id, number)  # type: ignore[attr-defined]
            return number

    def project_number(self, project: str) -> str:
        """The number of a project id (made up, stable, 12 digits); a number stays itself."""
        if project.isdigit():
            return project
        number = self._numbers.get(project)
        if number is None:
            digest = int(hashlib.sha256(project.encode()).hexdigest(), 16)
            number = str(100_000_000_000 + digest % 900_000_000_000)
            self._numbers[project] = number
            self._ids[number] = project
        return number

    def project_id(self, project: str) -> str:
        """The id of a project number the fake has seen; an id stays itself."""
        return self._ids.get(project, project) if project.isdigit() else project

    def service_account_exists(self, email: str) -> bool:
        """Whether service account ``email`` exists: one a project makes (``NAME@PROJECT.iam.gserviceaccount
        .com``) when the IAM API holds it; Google's own (service agents, ``gcp-sa-*``, the default compute
        and App Engine accounts) always."""
        local, _, domain = email.partition("@")
        project = domain.removesuffix(".iam.gserviceaccount.com")
        if project == domain or project.startswith("gcp-sa-") or not local:
            return True
        return f"projects/{self.project_id(project)}/serviceAccounts/{email}" in self.stores["iam"]

    def enable_services(self, project: str, *services: str) -> None:
        """Enables APIs (``run.googleapis.com``) for ``project``, as Service Usage's ``enable`` would."""
        with self.lock:
            handler = self.handlers["serviceusage"]
            for service in services:
                handler.enable(project, service)  # type: ignore[attr-defined]

    # -- operations ---------------------------------------------------------------------------------------

    def delay_for(self, api: str) -> float:
        """How long a long-running operation of ``api`` takes."""
        return self.lro_delays.get(api, self.lro_delay)

    def settle(self, *, everything: bool = False) -> None:
        """Completes the operations that are due (all of them, with ``everything``)."""
        with self.lock:
            now = time.time()
            due = [op for op in self.operations.values() if not op.done and (everything or op.due <= now)]
            for op in sorted(due, key=lambda op: op.due):
                op.finish(now)

    def wait_for(self, op: Operation, timeout: float) -> None:
        """Waits (the lock released) until ``op`` is due or ``timeout`` passes, then settles."""
        deadline = time.time() + timeout
        while not op.done and time.time() < deadline:
            remaining = min(op.due, deadline) - time.time()
            if remaining > 0:
                lock_free_sleep(min(remaining, 0.05), self.lock)
            self.settle()

    # -- errors -------------------------------------------------------------------------------------------

    def inject_error(
        self, api: str, method: str = "*", status: int = 503, *, times: int = 1, message: str | None = None
    ) -> None:
        """Answers the next ``times`` calls of ``method`` (an id, or its end: ``secrets.get``; ``*`` for any)
        of ``api`` with ``status`` (503 UNAVAILABLE, 429 RESOURCE_EXHAUSTED, ...) instead of doing them."""
        code = STATUS_FOR_HTTP.get(status, "UNKNOWN")
        error = ApiError(code, message or f"The fake was told to fail this call with {status}.", http=status)
        with self.lock:
            self._injections.append(_Injection(self._api(api), method, error, times))

    def _injected(self, api: str, method_id: str) -> ApiError | None:
        for injection in self._injections:
            if injection.api == api and _method_matches(method_id, injection.method):
                injection.times -= 1
                if injection.times <= 0:
                    self._injections.remove(injection)
                return injection.error
        return None

    # -- the state, as a test sees it -----------------------------------------------------------------------

    def _key(self, api: str, name: str) -> tuple[str, str]:
        api = self._api(api)
        return api, self.handlers[api].canonical(name.removeprefix("/"))

    def get_resource(self, api: str, name: str) -> dict[str, Any] | None:
        """A copy of the stored resource ``name`` (``projects/p/instances/db``), or None."""
        with self.lock:
            self.settle()
            api, key = self._key(api, name)
            found = self.stores[api].get(key)
            return copy.deepcopy(found) if found is not None else None

    def resources(self, api: str, prefix: str = "") -> list[str]:
        """The names of the stored resources of ``api`` that start with ``prefix``."""
        with self.lock:
            self.settle()
            api, key = self._key(api, prefix) if prefix else (self._api(api), "")
            return sorted(name for name in self.stores[api] if name.startswith(key))

    def update_resource(
        self, api: str, name: str, changes: Mapping[str, Any] | Callable[[dict[str, Any]], None]
    ) -> dict[str, Any]:
        """Changes a stored resource as the console would ("drift"): ``changes`` merged in (objects merged,
        the rest replaced), or a function that edits it in place; its etag and update time move. Answers a
        copy of the result; KeyError when it does not exist."""
        with self.lock:
            self.settle()
            api, key = self._key(api, name)
            resource = self.stores[api].get(key)
            if resource is None:
                raise KeyError(f"{api} has no resource {key}")
            if callable(changes):
                changes(resource)
            else:
                deep_merge(resource, dict(changes))
            handler = self.handlers[api]
            kind = handler.kinds.get(key.rsplit("/", 2)[-2]) if key.count("/") else None
            if kind is not None:
                handler.touch(kind, resource)
                handler.on_console_change(kind, key, resource)  # type: ignore[attr-defined]
            return copy.deepcopy(resource)

    def put_resource(self, api: str, name: str, resource: dict[str, Any]) -> None:
        """Stores ``resource`` as ``name`` as it is (no validation): a resource someone else made."""
        with self.lock:
            api, key = self._key(api, name)
            self.stores[api][key] = copy.deepcopy(resource)

    def delete_resource(self, api: str, name: str) -> None:
        """Removes a stored resource (and what is under it), as someone in the console would."""
        with self.lock:
            api, key = self._key(api, name)
            self.handlers[api].remove(key)

    def get_iam_policy(self, api: str, name: str) -> dict[str, Any]:
        """A copy of the IAM policy of resource ``name``."""
        with self.lock:
            api, key = self._key(api, name)
            return copy.deepcopy(self.handlers[api].policy(key))

    def set_iam_policy(self, api: str, name: str, policy: dict[str, Any]) -> dict[str, Any]:
        """Replaces the IAM policy of resource ``name`` (its etag moves), as the console would."""
        with self.lock:
            api, key = self._key(api, name)
            return self.handlers[api].set_policy(key, {k: v for k, v in policy.items() if k != "etag"})

    # -- requests -----------------------------------------------------------------------------------------

    def dispatch(
        self, api: str, http_method: str, raw_path: str, payload: bytes
    ) -> tuple[int, dict[str, Any]]:
        """Answers one HTTP request to ``api``'s listener: status and JSON body."""
        parsed = urllib.parse.urlsplit(raw_path)
        path = urllib.parse.unquote(parsed.path).lstrip("/")
        query = urllib.parse.parse_qs(parsed.query, keep_blank_values=True)
        handler = self.handlers[api]
        method_id: str | None = None
        mutating = http_method != "GET"
        try:
            with self.lock:
                self.settle()
                route = handler.discovery.route(http_method, path)
                method_id = route.method.id
                mutating = http_method != "GET" and route.method.verb not in READ_ONLY_VERBS
                injected = self._injected(api, method_id)
                if injected is not None:
                    raise injected
                numeric = any("enum-encoding=int" in value for value in query.get("$alt", []))
                typed = handler.discovery.query(route.method, query, numeric_enums=numeric)
                body = self._json(payload)
                request = Request(api, http_method, path, route, typed, body, numeric)
                self._check_enabled(api, handler, request)
                status, answer = handler.handle(request)
        except ApiError as error:
            status, answer = error.http, error.envelope()
        except Exception as error:
            traceback.print_exc()
            fault = ApiError("INTERNAL", f"The fake failed on this request: {type(error).__name__}: {error}")
            status, answer = fault.http, fault.envelope()
        self.calls.add(Call(api, method_id, mutating, http_method, "/" + path, status))
        return status, answer

    @staticmethod
    def _json(payload: bytes) -> Any:
        if not payload.strip():
            return None
        try:
            return json.loads(payload)
        except ValueError as error:
            raise ApiError("INVALID_ARGUMENT", f"Invalid JSON payload received. {error}.") from None

    def _check_enabled(self, api: str, handler: ApiHandler, request: Request) -> None:
        if not self.require_enabled_services or api in ALWAYS_ENABLED:
            return
        key = handler.path_key(request)
        if not key.startswith("projects/"):
            return
        project = key.split("/")[1]
        service = f"{api}.googleapis.com"
        usage = self.handlers["serviceusage"]
        if not usage.enabled(project, service):  # type: ignore[attr-defined]
            number = self.project_number(project)
            raise ApiError(
                "PERMISSION_DENIED",
                f"{service} API has not been used in project {number} before or it is disabled. Enable it by "
                f"calling Service Usage's services.enable for projects/{number}/services/{service}, "
                "then retry.",
                reason="SERVICE_DISABLED",
            )
