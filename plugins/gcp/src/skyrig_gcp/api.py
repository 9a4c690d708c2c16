"""Talking to Google Cloud: one client per API per command, errors in skyrig's terms, counted calls, waits.

Two kinds of Google client library, each where Google offers it:

- the dedicated libraries (google-cloud-secret-manager, -run, -redis, -scheduler, -artifact-registry,
  -pubsub, -storage), reached as ``client.library("secretmanager")``: every call through it is
  translated and counted. They speak REST (``transport="rest"``) but Pub/Sub's and Storage's, which
  speak their own protocols (and honour ``PUBSUB_EMULATOR_HOST`` / ``STORAGE_EMULATOR_HOST``).
- google-api-python-client for the APIs without one (Cloud SQL Admin, Compute, IAM, Resource Manager,
  Service Networking, Service Usage), reached as ``client.api("sqladmin")``, built from the discovery
  document it ships (no network), one per thread (its HTTP transport is not thread-safe); a request is
  run with ``client.execute(request)``.

Errors become :class:`~skyrig.provider.NotFound`, :class:`Conflict`, :class:`~skyrig.provider.ThrottledError`,
:class:`~skyrig.provider.TransientError` or :class:`~skyrig.provider.ProviderError`, naming the call;
every call is counted in :data:`CALLS` (the tests and the benchmark read it).
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from skyrig.provider import (
    CloudClient,
    NotFound,
    ProviderError,
    ThrottledError,
    TransientError,
    wait_for,
)
from skyrig_gcp import names

if TYPE_CHECKING:
    from skyrig.provider import Context
    from skyrig_gcp.settings import GcpSettings

CALLS: Counter[tuple[str, str]] = Counter()
"""Every Google API call made by this process: ``(api, method) -> count``."""
_calls_lock = threading.Lock()

VERSIONS = {
    "sqladmin": "v1",
    "compute": "v1",
    "iam": "v1",
    "cloudresourcemanager": "v3",
    "servicenetworking": "v1",
    "serviceusage": "v1",
}
"""The discovery-based APIs and the version of each this provider speaks."""

_READS = ("get", "list", "access", "aggregatedlist", "testiampermissions", "wait", "search", "lookup")


def is_mutating(method: str) -> bool:
    """Whether an API method (``sql.instances.insert``, ``create_secret``) changes anything: all but
    reads (get, list, access, ...), by Google's naming."""
    verb = method.rpartition(".")[2].lower().replace("_", "")
    return not verb.startswith(_READS)


def mutating_calls(calls: Counter[tuple[str, str]] | None = None) -> Counter[tuple[str, str]]:
    """The mutating calls among ``calls`` (by default every call this process made)."""
    calls = CALLS if calls is None else calls
    return Counter({key: count for key, count in calls.items() if is_mutating(key[1])})


def _count(api: str, method: str) -> None:
    with _calls_lock:
        CALLS[api, method] += 1


class Conflict(ProviderError):
    """The resource exists already (409 ALREADY_EXISTS), or an etag or precondition is stale (ABORTED)."""


_PERMISSION_HINT = (
    "give the credentials skyrig runs with the roles listed in docs/providers/gcp.md "
    "(gcloud auth application-default login, or a service account's key)"
)


def translate(error: Exception, api: str, method: str) -> Exception:
    """``error`` from a Google client library as one of skyrig's provider errors, naming the call."""
    where = f"GCP {api} {method}"
    status, reason, message = _status_of(error)
    if status is None:
        from google.auth.exceptions import DefaultCredentialsError, RefreshError, TransportError

        if isinstance(error, DefaultCredentialsError | RefreshError):
            return ProviderError(f"{where}: no usable Google credentials ({error}); {_PERMISSION_HINT}")
        if isinstance(error, TransportError | ConnectionError | TimeoutError | OSError):
            return TransientError(f"{where}: cannot reach the endpoint: {error}")
        return error
    if status == 404:
        return NotFound(f"{where}: {message}")
    if status == 429 or reason in ("RESOURCE_EXHAUSTED", "rateLimitExceeded", "userRateLimitExceeded"):
        return ThrottledError(f"{where}: throttled: {message}")
    if status == 409:
        return Conflict(f"{where}: {message}")
    if status >= 500 or reason in ("UNAVAILABLE", "DEADLINE_EXCEEDED", "INTERNAL"):
        return TransientError(f"{where}: {status} {message}")
    if status in (401, 403):
        return ProviderError(f"{where}: permission denied ({message}); {_PERMISSION_HINT}")
    if status == 412:
        return Conflict(f"{where}: precondition failed: {message}")
    return ProviderError(f"{where}: {status} {message}")


def _status_of(error: Exception) -> tuple[int | None, str, str]:
    """(HTTP status, reason, message) of an error from either kind of client, or ``(None, "", "")``."""
    from google.api_core import exceptions as core
    from googleapiclient.errors import HttpError

    if isinstance(error, HttpError):
        reason, message = "", str(getattr(error, "reason", "") or error)
        try:
            import json

            body = json.loads(error.content or b"{}").get("error", {})
            reason = body.get("status", "") or reason
            message = body.get("message", message)
        except (ValueError, AttributeError):
            pass
        return int(error.resp.status), reason, message
    if isinstance(error, core.GoogleAPICallError):
        code = error.code
        status = int(code) if isinstance(code, int) else getattr(code, "value", 500)
        if isinstance(status, tuple):  # a grpc.StatusCode: (number, name)
            status = _GRPC_TO_HTTP.get(status[1], 500)
        return status, getattr(error, "reason", "") or "", error.message or str(error)
    if isinstance(error, core.RetryError):
        return 503, "DEADLINE_EXCEEDED", str(error)
    return None, "", ""


_GRPC_TO_HTTP = {
    "not found": 404,
    "already exists": 409,
    "aborted": 409,
    "resource exhausted": 429,
    "unavailable": 503,
    "deadline exceeded": 504,
    "internal": 500,
    "permission denied": 403,
    "unauthenticated": 401,
    "invalid argument": 400,
    "failed precondition": 400,
}


class _Library:
    """One dedicated client library's calls, translated and counted."""

    def __init__(self, name: str, client: Any) -> None:
        self._name = name
        self._client = client

    def __getattr__(self, method: str) -> Callable[..., Any]:
        found = getattr(self._client, method)
        if not callable(found) or method.endswith("_path") or method.startswith("_"):
            return found

        def call(*args: Any, **kwargs: Any) -> Any:
            _count(self._name, method)
            try:
                return found(*args, **kwargs)
            except Exception as error:
                translated = translate(error, self._name, method)
                if translated is error:
                    raise
                raise translated from None

        return call


_LIBRARIES: dict[str, tuple[str, str]] = {
    "secretmanager": ("google.cloud.secretmanager_v1", "SecretManagerServiceClient"),
    "run.services": ("google.cloud.run_v2", "ServicesClient"),
    "run.jobs": ("google.cloud.run_v2", "JobsClient"),
    "run.executions": ("google.cloud.run_v2", "ExecutionsClient"),
    "redis": ("google.cloud.redis_v1", "CloudRedisClient"),
    "cloudscheduler": ("google.cloud.scheduler_v1", "CloudSchedulerClient"),
    "artifactregistry": ("google.cloud.artifactregistry_v1", "ArtifactRegistryClient"),
    "pubsub.publisher": ("google.cloud.pubsub_v1", "PublisherClient"),
    "pubsub.subscriber": ("google.cloud.pubsub_v1", "SubscriberClient"),
}
"""Library name -> (module, client class) of the dedicated client libraries."""


class GcpClient(CloudClient):
    """What the GCP node types use: Google's client libraries, each made on first use."""

    cloud, provider = "GCP", "gcp"

    def __init__(self, app: str, environment: str, settings: GcpSettings) -> None:
        super().__init__()
        self.app = app
        self.environment = environment
        self.settings = settings
        self._lock = threading.Lock()
        self._libraries: dict[str, _Library] = {}
        self._local = threading.local()
        self._credentials: Any = None
        self._storage: Any = None

    @property
    def project(self) -> str:
        """The project everything of the environment is in: the configured one, else the one skyrig makes."""
        return self.settings.project or names.project_id(self.app, self.environment)

    @property
    def region(self) -> str:
        return self.settings.region

    def location(self) -> str:
        """``projects/PROJECT/locations/REGION``: the parent of regional resources."""
        return f"projects/{self.project}/locations/{self.region}"

    # -- credentials ------------------------------------------------------------------------------------

    def credentials(self) -> Any:
        """Application Default Credentials, or none at all against emulators and the fake."""
        if self._credentials is None:
            with self._lock:
                if self._credentials is None:
                    if self.settings.emulator == "fake":
                        from google.auth.credentials import AnonymousCredentials

                        self._credentials = AnonymousCredentials()
                    else:
                        import google.auth

                        try:
                            self._credentials, _ = google.auth.default(
                                scopes=["https://www.googleapis.com/auth/cloud-platform"]
                            )
                        except Exception as error:
                            raise translate(error, "auth", "default") from None
        return self._credentials

    # -- the dedicated libraries ---------------------------------------------------------------------

    def library(self, name: str) -> Any:
        """The translated client of dedicated library ``name`` (a key of ``_LIBRARIES``)."""
        found = self._libraries.get(name)
        if found is not None:
            return found
        self.credentials()  # outside the lock below, which making credentials takes
        with self._lock:
            if name not in self._libraries:
                self._libraries[name] = _Library(name, self._make_library(name))
            return self._libraries[name]

    def _make_library(self, name: str) -> Any:
        import importlib

        module, cls = _LIBRARIES[name]
        client_class = getattr(importlib.import_module(module), cls)
        api = name.partition(".")[0]
        endpoint = self.settings.endpoint(api)
        if api == "pubsub":
            # the Pub/Sub library reaches an emulator through PUBSUB_EMULATOR_HOST, over gRPC
            return client_class(credentials=None if endpoint else self._credentials)
        options = {"api_endpoint": endpoint} if endpoint else None
        return client_class(credentials=self._credentials, transport="rest", client_options=options)

    def storage(self) -> Any:
        """The Cloud Storage client (google-cloud-storage), which honours ``STORAGE_EMULATOR_HOST``."""
        if self._storage is None:
            from google.cloud import storage

            credentials = self.credentials()
            endpoint = self.settings.endpoint("storage")
            options = {"api_endpoint": endpoint} if endpoint else None
            self._storage = storage.Client(
                project=self.project, credentials=credentials, client_options=options
            )
        return self._storage

    # -- the discovery-based APIs --------------------------------------------------------------------

    def api(self, name: str) -> Any:
        """This thread's google-api-python-client resource of API ``name`` (``sqladmin``, ``compute``,
        ...), built from the discovery document it ships."""
        built: dict[str, Any] = self._local.__dict__.setdefault("apis", {})
        found = built.get(name)
        if found is None:
            from googleapiclient.discovery import build

            endpoint = self.settings.endpoint(name)
            options = {"api_endpoint": endpoint} if endpoint else None
            found = build(
                name,
                VERSIONS[name],
                credentials=self.credentials(),
                client_options=options,
                static_discovery=True,
                cache_discovery=False,
            )
            built[name] = found
        return found

    def execute(self, request: Any) -> Any:
        """Run a google-api-python-client ``request``, translated and counted (as its API and method)."""
        method = str(getattr(request, "methodId", "") or "request")
        api = method.partition(".")[0]
        _count(api, method)
        try:
            return request.execute(num_retries=self.settings.max_attempts - 1)
        except Exception as error:
            translated = translate(error, api, method)
            if translated is error:
                raise
            raise translated from None

    def pages(self, collection: Any, method: str, key: str, **kwargs: Any) -> list[Any]:
        """Every item under ``key`` across all pages of ``collection.method(**kwargs)``."""
        items: list[Any] = []
        request = getattr(collection, method)(**kwargs)
        while request is not None:
            page = self.execute(request)
            items.extend(page.get(key, []))
            request = getattr(collection, f"{method}_next")(request, page)
        return items


# -- waiting for long-running operations -------------------------------------------------------------


def wait_operation(context: Context, what: str, operation: Any, api: str | None = None) -> Any:
    """Wait for a long-running operation of any kind this provider meets, and return its result (or
    raise its error), showing progress (:func:`~skyrig.provider.wait_for`):

    - a google-api-core ``Operation`` (the dedicated libraries);
    - a Cloud SQL or Compute operation as a dict (``status`` ``DONE`` when finished);
    - a ``google.longrunning`` operation as a dict, of discovery-based API ``api`` (Resource Manager,
      Service Networking, Service Usage).
    """
    client: GcpClient = context.client
    if hasattr(operation, "done") and callable(operation.done):
        wait_for(context, what, lambda: (_done(lambda: operation.done(), what), "in progress"))
        try:
            return operation.result(timeout=0)
        except Exception as error:
            raise translate(error, "operation", what) from None
    state: dict[str, Any] = {"operation": operation}
    poll = _poller(client, operation, api)

    def check() -> tuple[bool, str]:
        current = state["operation"]
        if _finished(current):
            return True, "done"
        state["operation"] = _done(poll, what)
        return _finished(state["operation"]), str(state["operation"].get("status", "in progress")).lower()

    wait_for(context, what, check)
    finished = state["operation"]
    error = finished.get("error")
    if error:
        raise ProviderError(f"{what} failed: {_operation_error(error)}")
    return finished.get("response", finished)


def _done(poll: Callable[[], Any], what: str) -> Any:
    try:
        return poll()
    except (TransientError, ThrottledError):
        raise
    except Exception as error:
        translated = translate(error, "operation", what)
        if translated is error:
            raise
        raise translated from None


def _finished(operation: dict[str, Any]) -> bool:
    return bool(operation.get("done")) or operation.get("status") == "DONE"


def _operation_error(error: dict[str, Any]) -> str:
    errors = error.get("errors")
    if errors:
        return "; ".join(f"{e.get('code', '')}: {e.get('message', '')}" for e in errors)
    return str(error.get("message") or error)


def _poller(client: GcpClient, operation: dict[str, Any], api: str | None) -> Callable[[], dict[str, Any]]:
    """How to read ``operation`` again, by its kind."""
    kind = str(operation.get("kind", ""))
    name = operation["name"]
    if kind == "sql#operation":
        return lambda: client.execute(
            client.api("sqladmin").operations().get(project=client.project, operation=name)
        )
    if kind == "compute#operation":
        compute = client.api("compute")
        if operation.get("region"):
            region = str(operation["region"]).rpartition("/")[2]
            return lambda: client.execute(
                compute.regionOperations().get(project=client.project, region=region, operation=name)
            )
        return lambda: client.execute(compute.globalOperations().get(project=client.project, operation=name))
    if api is None:
        raise ProviderError(f"GCP: waiting for operation {name} needs the API it belongs to")
    return lambda: client.execute(client.api(api).operations().get(name=name))
