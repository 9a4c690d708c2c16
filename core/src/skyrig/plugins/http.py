"""A cloud client over a JSON HTTP API: requests counted, retried and their errors in skyrig's terms.

A provider whose cloud is a JSON API over HTTP subclasses :class:`JsonApiClient` and gives it its names
(:attr:`~JsonApiClient.api_name`, :attr:`~JsonApiClient.credential`), its counter
(:attr:`~JsonApiClient.calls`) and its conflict error; it overrides the hooks where its API differs: where
the error's ``{"code", "message"}`` stands in an answer (:meth:`~JsonApiClient.error_body`), answers to wait
out (:meth:`~JsonApiClient.waited`) and the translation of a status (:meth:`~JsonApiClient.error`).

The rules every such client keeps: a read is retried on a transport error and on 5xx, a mutation on ``503``
only (any other failure may have come after the change), and ``429`` too where
:attr:`~JsonApiClient.retry_throttled` says so, with a backoff that honours ``Retry-After``. What is left
becomes 404 :class:`~skyrig.plugins.cloud.NotFound`, 409 the client's conflict error, 429
:class:`~skyrig.errors.ThrottledError`, 5xx and an unreachable API :class:`~skyrig.errors.TransientError`,
401 and 403 an error naming the credential's variable, any other a :class:`~skyrig.errors.ProviderError`;
each names the call, never the credential. httpx is imported on first use (the provider depends on it,
skyrig does not), so that importing the SDK stays cheap.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, ClassVar
from urllib.parse import quote

from skyrig.errors import ProviderError, ThrottledError, TransientError
from skyrig.plugins.cloud import CloudClient, NotFound

if TYPE_CHECKING:
    import httpx

Json = dict[str, Any]

_calls_lock = threading.Lock()


class JsonApiClient(CloudClient):
    """The base of a cloud client over a JSON HTTP API, authenticated by a bearer token: :meth:`request`
    and the hooks a subclass overrides where its API differs."""

    api_name: ClassVar[str] = "API"
    """How messages name the API, before the call: ``"Neon"`` gives ``Neon GET /projects: ...``."""
    credential: ClassVar[str] = "the credential"
    """What a 401 or 403 asks to check, naming the environment variable it comes from."""
    calls: ClassVar[Counter[str]] = Counter()
    """Every request of this process, ``"METHOD /path/template" -> count``: each provider gives its own."""
    conflict: ClassVar[type[ProviderError]] = ProviderError
    """The error of a 409."""
    refused: ClassVar[type[ProviderError]] = ProviderError
    """The error of a 401 or 403."""
    retry_throttled: ClassVar[bool] = True
    """Whether the client asks again after a 429 (else the engine's backoff does)."""

    def __init__(
        self,
        api_url: str,
        key: str,
        *,
        max_attempts: int = 4,
        wait_delay: float = 1.0,
        timeout: float = 60.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        import httpx

        super().__init__()
        self.api_url = api_url
        self.max_attempts = max_attempts
        self.wait_delay = wait_delay
        self._http = httpx.Client(
            base_url=api_url,
            headers={"Authorization": f"Bearer {key}", "Accept": "application/json"},
            timeout=httpx.Timeout(timeout, connect=10.0),
            transport=transport,
        )

    def __repr__(self) -> str:  # never the key
        return f"{type(self).__name__}({self.api_url!r})"

    def close(self) -> None:
        """Close the HTTP connections."""
        self._http.close()

    @classmethod
    def mutating_calls(cls, calls: Counter[str] | None = None) -> Counter[str]:
        """The mutating requests among ``calls`` (by default every request of :attr:`calls`)."""
        calls = cls.calls if calls is None else calls
        return Counter({key: count for key, count in calls.items() if not key.startswith("GET ")})

    def request(
        self,
        method: str,
        template: str,
        *,
        params: Mapping[str, Any] | None = None,
        body: Json | None = None,
        **path: str,
    ) -> Json:
        """``METHOD template`` (its ``{names}`` filled from ``path``, quoted), ``params`` as the query (None
        left out), ``body`` as JSON; the answer as JSON (``{}`` when it has none). Counted in :attr:`calls`
        as ``"METHOD template"``, each attempt."""
        import httpx

        key = f"{method} {template}"
        url = template.format(**{name: quote(str(value), safe="") for name, value in path.items()})
        query = {name: _query(value) for name, value in (params or {}).items() if value is not None}
        started = time.monotonic()
        attempt = 0
        while True:
            attempt += 1
            self._count(key)
            try:
                response = self._http.request(method, url, params=query, json=body)
            except httpx.TransportError as error:
                if method == "GET" and attempt < self.max_attempts:
                    self._sleep(attempt)
                    continue
                raise TransientError(f"{self.api_name} {key}: cannot reach {self.api_url}: {error}") from None
            status = response.status_code
            if status < 300:
                return response.json() if response.content else {}
            if self.waited(status, attempt, time.monotonic() - started):
                continue
            retried = status == 429 and self.retry_throttled
            retried = retried or (status >= 500 and (method == "GET" or status == 503))
            if retried and attempt < self.max_attempts:
                self._sleep(attempt, response.headers.get("retry-after"))
                continue
            message, code = self.message(response)
            raise self.error(status, key, message, code)

    def _count(self, key: str) -> None:
        with _calls_lock:
            self.calls[key] += 1

    def _sleep(self, attempt: int, retry_after: str | None = None) -> None:
        """Back off before attempt ``attempt + 1``: longer each time, at least ``Retry-After`` (capped)."""
        delay = min(self.wait_delay * 1.5 ** (attempt - 1), 10.0)
        if retry_after and retry_after.isdigit():
            delay = max(delay, min(float(retry_after), 30.0))
        time.sleep(delay)

    # -- hooks ----------------------------------------------------------------------------------

    def waited(self, status: int, attempt: int, elapsed: float) -> bool:
        """Whether an answer of ``status`` was waited out and the request is to be made again at once
        (``elapsed`` seconds since its first attempt); by default none is."""
        return False

    def error_body(self, data: Any) -> Any:
        """Where an error answer's JSON holds ``{"code", "message"}``: by default the answer itself."""
        return data

    def message(self, response: httpx.Response) -> tuple[str, Any]:
        """The API's error message (with its code) and code, or the start of the body and None."""
        try:
            data = response.json()
        except ValueError:
            return response.text[:200].strip() or response.reason_phrase, None
        error = self.error_body(data) if isinstance(data, dict) else None
        if isinstance(error, dict) and error.get("message"):
            code = error.get("code")
            return f"{error['message']}" + (f" ({code})" if code else ""), code
        return str(data)[:200], None

    def error(self, status: int, key: str, message: str, code: Any) -> Exception:
        """The error a failed call ``key`` raises, from the answer's ``status``, message and code."""
        where = f"{self.api_name} {key}"
        if status == 404:
            return NotFound(f"{where}: {message}")
        if status == 409:
            return self.conflict(f"{where}: {message}")
        if status == 429:
            return ThrottledError(f"{where}: throttled: {message}")
        if status >= 500:
            return TransientError(f"{where}: {status} {message}")
        if status in (401, 403):
            return self.refused(f"{where}: {status} {message}: check {self.credential}")
        return ProviderError(f"{where}: {status} {message}")


def _query(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
