"""Talking to Azure: one management client per Azure service per command, errors in skyrig's terms,
counted calls, waits.

The management clients are Microsoft's azure-mgmt-* libraries, reached as ``client.mgmt("network")``
(see :data:`MANAGEMENT`): every call through one is translated (its errors become
:class:`~skyrig.provider.NotFound`, :class:`Conflict`, :class:`~skyrig.provider.ThrottledError`,
:class:`~skyrig.provider.TransientError` or :class:`~skyrig.provider.ProviderError`, naming the call), a
listing is read to the end, and a long-running operation (``begin_*``) is waited for with progress and the
settings' timeout (:meth:`AzureClient.wait`). Every HTTP request, the operations' polls among them, is
counted in :data:`CALLS` by a pipeline policy (the tests and the benchmark read it).
"""

from __future__ import annotations

import importlib
import re
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
from skyrig_azure import names

if TYPE_CHECKING:
    from skyrig.provider import Context
    from skyrig_azure.settings import AzureSettings

MANAGEMENT: dict[str, tuple[str, str]] = {
    "resource": ("azure.mgmt.resource.resources", "ResourceManagementClient"),
    "network": ("azure.mgmt.network", "NetworkManagementClient"),
    "privatedns": ("azure.mgmt.privatedns", "PrivateDnsManagementClient"),
    "msi": ("azure.mgmt.msi", "ManagedServiceIdentityClient"),
    "authorization": ("azure.mgmt.authorization", "AuthorizationManagementClient"),
    "web": ("azure.mgmt.web", "WebSiteManagementClient"),
    "appcontainers": ("azure.mgmt.appcontainers", "ContainerAppsAPIClient"),
    "postgresql": ("azure.mgmt.postgresqlflexibleservers", "PostgreSQLManagementClient"),
    "servicebus": ("azure.mgmt.servicebus", "ServiceBusManagementClient"),
    "redis": ("azure.mgmt.redis", "RedisManagementClient"),
    "storage": ("azure.mgmt.storage", "StorageManagementClient"),
    "keyvault": ("azure.mgmt.keyvault", "KeyVaultManagementClient"),
    "cdn": ("azure.mgmt.cdn", "CdnManagementClient"),
}
"""Short name -> (module, class) of each Azure management client this provider uses."""

CALLS: Counter[tuple[str, str]] = Counter()
"""Every HTTP request to Azure made by this process: ``(resource type or action, HTTP method) -> count``
(``("Microsoft.Network/virtualNetworks", "PUT")``; a long-running operation's polls are
``("operations", "GET")``)."""
_calls_lock = threading.Lock()


def call_key(method: str, url: str) -> tuple[str, str]:
    """What :data:`CALLS` counts a request as: ``(Namespace/type[/childType...][/action], METHOD)``, the
    last provider's in a path (an extension resource's, such as a role assignment on a topic)."""
    path = url.split("?", 1)[0].split("://", 1)[-1]
    at = path.lower().rfind("/providers/")
    if at < 0:
        if re.search(r"/resourcegroups(/[^/]+)?/?$", path, re.IGNORECASE):
            return "Microsoft.Resources/resourceGroups", method
        return path.rstrip("/").rsplit("/", 1)[-1] or "subscription", method
    namespace, *rest = path[at + len("/providers/") :].strip("/").split("/")
    if any("operation" in part.lower() for part in rest[::2]):
        return "operations", method
    kinds = rest[::2] if len(rest) % 2 == 0 else [*rest[:-1:2], rest[-1]]
    return "/".join([namespace, *kinds]), method


def is_mutating(key: tuple[str, str]) -> bool:
    """Whether a counted request changes anything (a PUT, PATCH, DELETE or a POST action but a listing of
    keys or a check)."""
    kind, method = key
    if method in ("GET", "HEAD"):
        return False
    if method == "POST":
        action = kind.rsplit("/", 1)[-1].lower()
        return not action.startswith(("list", "check", "get"))
    return True


def mutating_calls(calls: Counter[tuple[str, str]] | None = None) -> Counter[tuple[str, str]]:
    """The mutating calls among ``calls`` (by default every call this process made)."""
    calls = CALLS if calls is None else calls
    return Counter({key: count for key, count in calls.items() if is_mutating(key)})


def _counting_policy() -> Any:
    from azure.core.pipeline.policies import SansIOHTTPPolicy

    class CountingPolicy(SansIOHTTPPolicy):  # type: ignore[type-arg]
        """Counts each request (retries included) in :data:`CALLS`."""

        def on_request(self, request: Any) -> None:
            key = call_key(request.http_request.method, request.http_request.url)
            with _calls_lock:
                CALLS[key] += 1

    return CountingPolicy()


class GroupNotFound(NotFound):
    """The resource group a request named does not exist (ARM's ``ResourceGroupNotFound``): nor does
    anything in it."""

    def __init__(self, message: str, group: str) -> None:
        super().__init__(message)
        self.group = group
        """The group's name as the request named it (empty when it cannot be told)."""


def _group_of(error: Any) -> str:
    url = str(getattr(getattr(getattr(error, "response", None), "request", None), "url", "") or "")
    found = re.search(r"/resourcegroups/([^/?]+)", url, re.IGNORECASE)
    return found.group(1) if found else ""


class Conflict(ProviderError):
    """The resource exists already, or is being changed by another operation (409), or an etag is stale
    (412)."""


_PASSING_CONFLICTS = frozenset(
    {
        "AnotherOperationInProgress",
        "OperationInProgress",
        "RetryableError",
        "ResourceGroupBeingDeleted",
        "InUseSubnetCannotBeDeleted",
    }
)
"""Conflicts that pass by themselves (another operation on the resource still running, a dependent being
deleted): retried, not reported."""

_PERMISSION_HINT = (
    "give the identity skyrig runs as the roles listed in docs/providers/azure.md on the subscription "
    "(az login, or a service principal's AZURE_CLIENT_ID / AZURE_TENANT_ID / AZURE_CLIENT_SECRET)"
)


def translate(error: Exception, where: str) -> Exception:
    """``error`` from an Azure client library as one of skyrig's provider errors, naming the call."""
    from azure.core import exceptions as core

    where = f"Azure {where}"
    if isinstance(error, core.ClientAuthenticationError) and getattr(error, "status_code", None) is None:
        return _no_credentials(where, error)
    if isinstance(error, core.ServiceRequestError | core.ServiceResponseError | OSError):
        return TransientError(f"{where}: cannot reach Azure: {_first_line(error)}")
    if not isinstance(error, core.HttpResponseError):
        try:
            from azure.identity import CredentialUnavailableError
        except ImportError:  # pragma: no cover - azure-identity is a dependency
            return error
        if isinstance(error, CredentialUnavailableError):
            return _no_credentials(where, error)
        return error
    status = error.status_code or 0
    code = getattr(getattr(error, "error", None), "code", None) or ""
    message = _message(error)
    if code == "ResourceGroupNotFound":
        return GroupNotFound(f"{where}: {code}: {message}", _group_of(error))
    if status == 404 or code in ("ResourceNotFound", "ParentResourceNotFound"):
        return NotFound(f"{where}: {code or status}: {message}")
    if status == 429:
        return ThrottledError(f"{where}: throttled: {message}")
    if code in _PASSING_CONFLICTS:
        return TransientError(f"{where}: {code}: {message}")
    if status in (409, 412):
        return Conflict(f"{where}: {code or status}: {message}")
    if status >= 500:
        return TransientError(f"{where}: {status} {code}: {message}")
    if status in (401, 403):
        return ProviderError(f"{where}: permission denied ({code}: {message}); {_PERMISSION_HINT}")
    return ProviderError(f"{where}: {status} {code}: {message}")


def _no_credentials(where: str, error: Exception) -> ProviderError:
    return ProviderError(f"{where}: no usable Azure credentials ({_first_line(error)}); {_PERMISSION_HINT}")


def _message(error: Any) -> str:
    inner = getattr(error, "error", None)
    return str(getattr(inner, "message", None) or getattr(error, "message", None) or _first_line(error))


def _first_line(error: Exception) -> str:
    return (str(error).strip().splitlines() or [type(error).__name__])[0]


class _Translated:
    """A management client, or one of its operation groups, whose calls raise skyrig's errors, whose
    listings come back as lists and whose long-running operations come back as :class:`Operation`."""

    def __init__(self, target: Any, where: str) -> None:
        self._target = target
        self._where = where

    def __getattr__(self, name: str) -> Any:
        value = getattr(self._target, name)
        where = f"{self._where}.{name}"
        if callable(value):
            return lambda *args, **kwargs: _call(value, where, args, kwargs)
        if name.startswith("_") or isinstance(value, str | int | float | bool | type(None)):
            return value
        return _Translated(value, where)


def _call(function: Callable[..., Any], where: str, args: Any, kwargs: Any) -> Any:
    from azure.core.paging import ItemPaged
    from azure.core.polling import LROPoller

    try:
        result = function(*args, **kwargs)
        if isinstance(result, ItemPaged):
            return list(result)
    except Exception as error:  # made one of skyrig's errors, or re-raised as it was
        translated = translate(error, where)
        if translated is error:
            raise
        raise translated from None
    if isinstance(result, LROPoller):
        return Operation(result, where)
    return result


class Operation:
    """A long-running Azure operation (what a ``begin_*`` call started)."""

    def __init__(self, poller: Any, where: str) -> None:
        self.poller = poller
        self.where = where

    def done(self) -> bool:
        """Whether it finished (successfully or not)."""
        return bool(self.poller.done())

    def status(self) -> str:
        """Azure's word for where it is (``InProgress``, ``Succeeded``, ...)."""
        return str(self.poller.status())


class AzureClient(CloudClient):
    """Everything an Azure environment's calls need: the credential, the management clients (one per
    service, made on first use), the subscription and the resource group."""

    cloud = "Azure"
    provider = "azure"

    def __init__(self, app: str, env: str, settings: AzureSettings) -> None:
        super().__init__()
        self.app, self.env, self.settings = app, env, settings
        self.subscription = settings.subscription_id
        self.location = settings.location
        self.resource_group = settings.resource_group or names.resource_group_name(app, env)
        self._clients: dict[str, Any] = {}
        self._lock = threading.Lock()
        self._credential: Any = None
        self._listings: dict[str, list[Any]] = {}

    @property
    def credential(self) -> Any:
        """The azure-core token credential of this command (made on first use)."""
        with self._lock:
            if self._credential is None:
                from skyrig_azure.credentials import credential

                self._credential = credential(self.settings.emulator)
            return self._credential

    def client_options(self) -> dict[str, Any]:
        """The keyword arguments every Azure client of this command is made with: retries, polling, the
        counting policy, and the test CA where one is configured."""
        options: dict[str, Any] = {
            "retry_total": self.settings.max_attempts - 1,
            "retry_backoff_factor": 0.5 if self.settings.emulator is None else 0.01,
            "polling_interval": self.settings.wait_delay,
            "per_call_policies": [_counting_policy()],
        }
        if self.settings.ca_bundle:
            options["connection_verify"] = self.settings.ca_bundle
        return options

    def mgmt(self, service: str) -> Any:
        """The management client of ``service`` (a key of :data:`MANAGEMENT`), translated."""
        with self._lock:
            made = self._clients.get(service)
        if made is None:
            module, name = MANAGEMENT[service]
            cls = getattr(importlib.import_module(module), name)
            options = self.client_options()
            arm = self.settings.endpoint("arm")
            if arm:
                options["base_url"] = arm
                # the token is for Resource Manager wherever it is (the clients derive it from base_url)
                options["credential_scopes"] = ["https://management.azure.com/.default"]
            made = _Translated(cls(self.credential, self.subscription, **options), service)
            with self._lock:
                made = self._clients.setdefault(service, made)
        return made

    def keep_listing(self, key: str, listing: list[Any]) -> None:
        """Keep ``listing`` (``key`` names what it lists) for the next node type of this command that
        lists the same: one call serves both."""
        with self._lock:
            self._listings[key] = listing

    def listing(self, key: str, fetch: Callable[[], list[Any]]) -> list[Any]:
        """The listing kept under ``key``, else ``fetch()``'s. A kept listing serves one read and is then
        dropped, so that a later read sees what changed since."""
        with self._lock:
            kept = self._listings.pop(key, None)
        return fetch() if kept is None else kept

    def wait(self, context: Context, operation: Operation, what: str) -> Any:
        """The result of a long-running ``operation``, waited for with progress every half minute and
        given up after the settings' ``wait_timeout`` (a :class:`TransientError`: the next apply finds
        the resource where the operation left it)."""
        wait_for(context, what, lambda: (operation.done(), operation.status()))
        try:
            return operation.poller.result()
        except Exception as error:  # made one of skyrig's errors, or re-raised as it was
            translated = translate(error, operation.where)
            if translated is error:
                raise
            raise translated from None

    def group_id(self) -> str:
        """The ARM id of the environment's resource group."""
        return f"/subscriptions/{self.subscription}/resourceGroups/{self.resource_group}"

    def resource_id(self, namespace_type: str, *names_: str) -> str:
        """The ARM id of a resource in the environment's resource group: ``resource_id(
        "Microsoft.Network/virtualNetworks/subnets", "vnet", "app")``."""
        namespace, *kinds = namespace_type.split("/")
        path = "/".join(f"{kind}/{name}" for kind, name in zip(kinds, names_, strict=True))
        return f"{self.group_id()}/providers/{namespace}/{path}"

    def close(self) -> None:
        """Close the clients' connections."""
        with self._lock:
            clients, self._clients = list(self._clients.values()), {}
        for made in clients:
            close = getattr(made._target, "close", None)
            if close is not None:
                close()
