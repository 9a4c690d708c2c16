"""Talking to the host's API (``/v1``): a small typed client over httpx, errors in skyrig's terms, counted
calls.

Errors: the host answers ``{"error": {"code", "message"}}``. 404 becomes
:class:`~skyrig.provider.NotFound`, 409 :class:`Conflict`, 429 a :class:`~skyrig.provider.ProviderError` for a
quota (its message names the quota and its limit; waiting does not lift it) and
:class:`~skyrig.provider.ThrottledError` otherwise, 5xx and transport failures
:class:`~skyrig.provider.TransientError`, 401 and 403 a :class:`~skyrig.provider.ProviderError` naming
``SKYRIG_HOSTED_TOKEN``, any other a :class:`~skyrig.provider.ProviderError`; each names the call, never the
token or a password. Every request is counted in :data:`CALLS` by ``"METHOD /path/template"``.

Secrets: the host hands a credential back from two calls only (an environment's runtime token when it is
made, and the credentials endpoint). The client drops the first at once and returns the second to its
caller only (kept in memory, never in a message, a log or a repr).
"""

from __future__ import annotations

import os
import threading
import time
from collections import Counter
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from skyrig.provider import (
    CloudClient,
    NotFound,
    ProviderError,
    ThrottledError,
    TransientError,
    UserError,
)
from skyrig_hosted.settings import TOKEN_VARIABLE, api_url

if TYPE_CHECKING:
    import httpx

    from skyrig.provider import Environment
    from skyrig_hosted.settings import HostedSettings

CALLS: Counter[str] = Counter()
"""Every request to a host made by this process: ``"METHOD /path/template" -> count``."""
_calls_lock = threading.Lock()

Json = dict[str, Any]

APP = "/apps/{app}"
ENV = APP + "/envs/{env}"
RESOURCE = ENV + "/resources/{kind}/{name}"
CREDENTIALS = ENV + "/credentials/{kind}/{name}"
SECRET = ENV + "/secrets/{name}"


def mutating_calls(calls: Counter[str] | None = None) -> Counter[str]:
    """The mutating requests among ``calls`` (by default every request this process made)."""
    calls = CALLS if calls is None else calls
    return Counter({key: count for key, count in calls.items() if not key.startswith("GET ")})


def _count(key: str) -> None:
    with _calls_lock:
        CALLS[key] += 1


class Conflict(ProviderError):
    """The host refuses the request as conflicting (409)."""


class Refused(ProviderError):
    """The host refuses the token (401) or what it may do (403)."""


def token() -> str:
    """The token, from the environment variable ``SKYRIG_HOSTED_TOKEN`` only: a :class:`UserError` naming
    it when it is not set."""
    value = os.environ.get(TOKEN_VARIABLE, "").strip()
    if not value:
        raise UserError(
            f"the hosted provider needs the app's token in the environment variable {TOKEN_VARIABLE}, "
            "which is not set",
            f"ask the host's admin for the app's token and export {TOKEN_VARIABLE}=...; it is never read "
            "from skyrig.toml",
        )
    return value


class HostedClient(CloudClient):
    """The host's API, as the node types, the provider and the data planes use it."""

    cloud, provider = "the host", "hosted"

    def __init__(
        self,
        url: str,
        key: str,
        *,
        max_attempts: int = 4,
        wait_delay: float = 0.5,
        timeout: float = 60.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        import httpx

        super().__init__()
        self.api_url = api_url(url)
        self.max_attempts = max_attempts
        self.wait_delay = wait_delay
        self.root: Path = Path.cwd()
        """The app's folder: migration files are read from under it."""
        self._http = httpx.Client(
            base_url=self.api_url,
            headers={"Authorization": f"Bearer {key}", "Accept": "application/json"},
            timeout=httpx.Timeout(timeout, connect=10.0),
            transport=transport,
        )

    @classmethod
    def for_environment(cls, environment: Environment, settings: HostedSettings) -> HostedClient:
        """The client of one command in ``environment`` (the token from ``SKYRIG_HOSTED_TOKEN``)."""
        return cls(
            settings.url,
            token(),
            max_attempts=settings.max_attempts,
            wait_delay=settings.wait_delay,
            timeout=settings.timeout,
        )

    def __repr__(self) -> str:  # never the token
        return f"HostedClient({self.api_url!r})"

    def close(self) -> None:
        self._http.close()

    # -- requests ---------------------------------------------------------------------------------

    def request(self, method: str, template: str, *, body: Json | None = None, **path: str) -> Json:
        """``METHOD template`` (its ``{names}`` filled from ``path``), the answer as JSON (``{}`` when it
        has none); reads are retried on 5xx answers and an unreachable host, mutations on 503 only (any
        other failure may have happened after the change)."""
        import httpx

        key = f"{method} {template}"
        url = template.format(**{name: quote(str(value), safe="") for name, value in path.items()})
        attempt = 0
        while True:
            attempt += 1
            _count(key)
            try:
                response = self._http.request(method, url, json=body)
            except httpx.TransportError as error:
                if method == "GET" and attempt < self.max_attempts:
                    self._sleep(attempt)
                    continue
                raise TransientError(f"hosted {key}: cannot reach {self.api_url}: {error}") from None
            status = response.status_code
            if status < 300:
                return response.json() if response.content else {}
            retryable = method == "GET" or status == 503
            if status >= 500 and retryable and attempt < self.max_attempts:
                self._sleep(attempt, response.headers.get("retry-after"))
                continue
            raise _error(status, key, _message(response))

    def _sleep(self, attempt: int, retry_after: str | None = None) -> None:
        delay = min(self.wait_delay * 1.5 ** (attempt - 1), 10.0)
        if retry_after and retry_after.isdigit():
            delay = max(delay, min(float(retry_after), 30.0))
        time.sleep(delay)

    # -- apps and environments ------------------------------------------------------------------

    def app(self, app: str) -> Json:
        return self.request("GET", APP, app=app)["app"]

    def create_app(self, app: str) -> Json:
        """Make the app (an admin token only); its record, without the app token the host answers with."""
        answer = self.request("POST", "/apps", body={"name": app})
        made = answer.get("app")
        return made if isinstance(made, dict) else {"name": app}

    def environment(self, app: str, env: str) -> Json:
        return _without_token(self.request("GET", ENV, app=app, env=env)["env"])

    def environments(self, app: str) -> list[Json]:
        listed = self.request("GET", APP + "/envs", app=app).get("envs") or []
        return [_without_token(env) for env in listed]

    def put_environment(self, app: str, env: str, type: str) -> Json:
        """Make or update the environment; its record, the runtime token the host answers with dropped."""
        return _without_token(self.request("PUT", ENV, body={"type": type}, app=app, env=env)["env"])

    def delete_environment(self, app: str, env: str) -> None:
        """Delete the environment and everything of it, on every server of the host."""
        self.request("DELETE", ENV, app=app, env=env)

    # -- resources --------------------------------------------------------------------------------

    def resources(self, app: str, env: str) -> list[Json]:
        return self.request("GET", ENV + "/resources", app=app, env=env).get("resources") or []

    def resource(self, app: str, env: str, kind: str, name: str) -> Json:
        return self.request("GET", RESOURCE, app=app, env=env, kind=kind, name=name)["resource"]

    def put_resource(self, app: str, env: str, kind: str, name: str, properties: Mapping[str, Any]) -> Json:
        """Make or update a resource (idempotent); its record: ``{kind, name, properties, outputs}``."""
        body = {"properties": dict(properties)}
        return self.request("PUT", RESOURCE, body=body, app=app, env=env, kind=kind, name=name)["resource"]

    def delete_resource(self, app: str, env: str, kind: str, name: str) -> None:
        self.request("DELETE", RESOURCE, app=app, env=env, kind=kind, name=name)

    # -- what the data planes read --------------------------------------------------------------

    def credentials(self, app: str, env: str, kind: str, name: str) -> dict[str, str]:
        """The login of a resource: ``{"username", "password"}`` (for the caller only)."""
        answer = self.request("GET", CREDENTIALS, app=app, env=env, kind=kind, name=name)
        return {"username": str(answer["username"]), "password": str(answer["password"])}

    def put_secret(self, app: str, env: str, name: str, value: str) -> None:
        """Store the value of declared secret ``name``."""
        self.request("PUT", SECRET, body={"value": value}, app=app, env=env, name=name)

    def secret(self, app: str, env: str, name: str) -> str | None:
        """The value of secret ``name``, or None when it has none."""
        try:
            answer = self.request("GET", SECRET, app=app, env=env, name=name)
        except NotFound:
            return None
        value = answer.get("value")
        return None if value is None else str(value)


def _without_token(env: Json) -> Json:
    """An environment's record without its runtime token (answered once, when it is made)."""
    return {key: value for key, value in env.items() if key != "runtime_token"}


QUOTA = "quota_exceeded"
"""The code of the host's answer when a request would pass a quota."""


def _message(response: Any) -> tuple[str, str | None]:
    """The host's error message (``{"error": {"code", "message"}}``) and code, or the start of the body."""
    try:
        data = response.json()
    except ValueError:
        return response.text[:200].strip() or response.reason_phrase, None
    error = data.get("error") if isinstance(data, dict) else None
    if isinstance(error, dict) and error.get("message"):
        code = error.get("code")
        return f"{error['message']}" + (f" ({code})" if code else ""), code
    return str(data)[:200], None


def _error(status: int, key: str, answer: tuple[str, str | None]) -> Exception:
    message, code = answer
    where = f"hosted {key}"
    if status == 404:
        return NotFound(f"{where}: {message}")
    if status == 409:
        return Conflict(f"{where}: {message}")
    if status == 429 and code == QUOTA:  # waiting does not lift a quota: no retry
        return ProviderError(
            f"{where}: over a quota of the host: {message}: destroy an environment or resource of the app "
            "you no longer need, or ask the host's admin for a higher limit"
        )
    if status == 429:
        return ThrottledError(f"{where}: {message}")
    if status >= 500:
        return TransientError(f"{where}: {status} {message}")
    if status in (401, 403):
        return Refused(
            f"{where}: {status} {message}: check the token in {TOKEN_VARIABLE} (the app's, from the "
            "host's admin)"
        )
    return ProviderError(f"{where}: {status} {message}")
