"""Talking to the host's API (``/v1``): a small typed client over httpx (the SDK's
:class:`~skyrig.provider.JsonApiClient`), errors in skyrig's terms, counted calls.

Errors: the host answers ``{"error": {"code", "message"}}``. 404 becomes
:class:`~skyrig.provider.NotFound`, 409 :class:`Conflict`, 429 a :class:`~skyrig.provider.ProviderError` for a
quota (its message names the quota and its limit; waiting does not lift it) and
:class:`~skyrig.provider.ThrottledError` otherwise, 5xx and transport failures
:class:`~skyrig.provider.TransientError`, 401 and 403 a :class:`~skyrig.provider.ProviderError` naming
``SKYRIG_HOSTED_TOKEN``, any other a :class:`~skyrig.provider.ProviderError`; each names the call, never the
token or a password. Every request is counted in :data:`CALLS` by ``"METHOD /path/template"``.

Secrets: the host hands a credential back from three calls only (an environment's runtime token when it
is made, the credentials endpoint, and an environment's cron signing key). The client drops the first at
once and returns the others to their caller only (kept in memory, never in a message, a log or a repr).
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from skyrig.provider import JsonApiClient, NotFound, ProviderError, TransientError, UserError
from skyrig_hosted.settings import TOKEN_VARIABLE, api_url

if TYPE_CHECKING:
    import httpx

    from skyrig.provider import Environment
    from skyrig_hosted.settings import HostedSettings

CALLS: Counter[str] = Counter()
"""Every request to a host made by this process: ``"METHOD /path/template" -> count``."""

Json = dict[str, Any]

APP = "/apps/{app}"
ENV = APP + "/envs/{env}"
RESOURCE = ENV + "/resources/{kind}/{name}"
CREDENTIALS = ENV + "/credentials/{kind}/{name}"
SECRET = ENV + "/secrets/{name}"
SOURCE = APP + "/sources/{sha256}"
DEPLOYMENT = ENV + "/deployments/{service}"
CRON_KEY = ENV + "/cron-key"


def mutating_calls(calls: Counter[str] | None = None) -> Counter[str]:
    """The mutating requests among ``calls`` (by default every request this process made)."""
    return HostedClient.mutating_calls(calls)


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


class HostedClient(JsonApiClient):
    """The host's API, as the node types, the provider and the data planes use it."""

    cloud, provider = "the host", "hosted"
    api_name = "hosted"
    credential = f"the token in {TOKEN_VARIABLE} (the app's, from the host's admin)"
    calls = CALLS
    conflict = Conflict
    refused = Refused
    retry_throttled = False  # the engine's backoff retries throttling; a quota is not retried at all

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
        super().__init__(
            api_url(url),
            key,
            max_attempts=max_attempts,
            wait_delay=wait_delay,
            timeout=timeout,
            transport=transport,
        )
        self.root: Path = Path.cwd()
        """The app's folder: migration files are read from under it."""

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

    # -- requests ---------------------------------------------------------------------------------

    def error_body(self, data: Any) -> Any:
        """The host answers ``{"error": {"code", "message"}}``."""
        return data.get("error")

    def error(self, status: int, key: str, message: str, code: Any) -> Exception:
        if status == 429 and code == QUOTA:  # waiting does not lift a quota: no retry
            return ProviderError(
                f"hosted {key}: over a quota of the host: {message}: destroy an environment or resource of "
                "the app you no longer need, or ask the host's admin for a higher limit"
            )
        return super().error(status, key, message, code)

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

    def put_environment(self, app: str, env: str, type: str, template: str | None = None) -> Json:
        """Make or update the environment (``template``: the environment a preview was derived from); its
        record, the runtime token the host answers with dropped."""
        body = {"type": type, **({"template": template} if template else {})}
        return _without_token(self.request("PUT", ENV, body=body, app=app, env=env)["env"])

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

    # -- sources, deployments, cron -----------------------------------------------------------------

    def has_source(self, app: str, sha256: str) -> bool:
        """Whether the host has the app's source archive ``sha256``."""
        try:
            self.request("GET", SOURCE, app=app, sha256=sha256)
        except NotFound:
            return False
        return True

    def upload_source(self, app: str, sha256: str, data: bytes) -> Json:
        """Upload a source archive (gzip'd tar) named by its SHA-256; the host checks the digest. Asked
        again on a transport error or a 503 (an upload is idempotent: content-addressed)."""
        import httpx

        key = f"PUT {SOURCE}"
        url = SOURCE.format(app=quote(app, safe=""), sha256=quote(sha256, safe=""))
        attempt = 0
        while True:
            attempt += 1
            self._count(key)
            try:
                response = self._http.put(url, content=data, headers={"Content-Type": "application/gzip"})
            except httpx.TransportError as error:
                if attempt < self.max_attempts:
                    self._sleep(attempt)
                    continue
                raise TransientError(f"hosted {key}: cannot reach {self.api_url}: {error}") from None
            if response.status_code < 300:
                return (response.json() if response.content else {}).get("source") or {}
            if response.status_code in (502, 503, 504) and attempt < self.max_attempts:
                self._sleep(attempt, response.headers.get("retry-after"))
                continue
            message, code = self.message(response)
            raise self.error(response.status_code, key, message, code)

    def deployments(self, app: str, env: str) -> list[Json]:
        """The environment's deployments: ``{service, source, config_sha256, url, state, ...}`` each."""
        return self.request("GET", ENV + "/deployments", app=app, env=env).get("deployments") or []

    def deployment(self, app: str, env: str, service: str) -> Json:
        return self.request("GET", DEPLOYMENT, app=app, env=env, service=service)["deployment"]

    def deploy(self, app: str, env: str, service: str, source: str, config: Mapping[str, Any]) -> Json:
        """Run ``service`` from source archive ``source`` with its runtime ``config`` (unchanged: nothing
        happens); the deployment once the service accepts connections, or failed."""
        body = {"source": source, "config": dict(config)}
        return self.request("PUT", DEPLOYMENT, body=body, app=app, env=env, service=service)["deployment"]

    def cron_key(self, app: str, env: str) -> str:
        """The environment's cron signing key (hex): for the caller only."""
        return str(self.request("GET", CRON_KEY, app=app, env=env)["key"])

    def cron_jobs(self, app: str, env: str) -> list[Json]:
        """The environment's cron jobs with their last run and next run, as the host's scheduler sees them."""
        return self.request("GET", ENV + "/cron", app=app, env=env).get("jobs") or []


def _without_token(env: Json) -> Json:
    """An environment's record without its runtime token (answered once, when it is made)."""
    return {key: value for key, value in env.items() if key != "runtime_token"}


QUOTA = "quota_exceeded"
"""The code of the host's answer when a request would pass a quota."""
