"""The reverse proxy on the host's one port: ``<service>.<envlabel>.<app>.<domain>`` goes to that
service's process, anything else (another host name under the domain too) to the API.

A request whose ``Host`` (port stripped) names a deployed service wakes its environment when it is
suspended (:meth:`Services.wake` waits until the process accepts connections), counts as activity, and
is forwarded to the process on 127.0.0.1: bodies streamed both ways, hop-by-hop headers dropped,
``X-Forwarded-For``, ``-Proto`` and ``-Host`` set, the ``Host`` header kept. A host name under the
domain that names no service is answered 404, a service that fails 502 (plain text, the reason only:
the log is the deployer's, in the deployments API). WebSockets are not proxied (closed at once).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import Any

import anyio.to_thread

from skyrig_hosted.host.services import NotDeployed, ServiceFailed, Services

log = logging.getLogger("skyrig_hosted.host.proxy")

HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "proxy-connection",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
    }
)
FORWARDED = frozenset({"x-forwarded-for", "x-forwarded-proto", "x-forwarded-host"})


def _host(scope: dict[str, Any]) -> str:
    for key, value in scope.get("headers", ()):
        if key == b"host":
            text = value.decode("latin-1").strip()
            if text.startswith("["):  # an IPv6 literal: never a service
                return text
            return text.rpartition(":")[0] if ":" in text else text
    return ""


async def _plain(send: Any, status: int, text: str) -> None:
    body = (text + "\n").encode()
    headers = [(b"content-type", b"text/plain; charset=utf-8"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class Proxy:
    """The ASGI application of the host's port: services by ``Host`` header, the API (``api``) else."""

    def __init__(self, api: Any, services: Services) -> None:
        self.api = api
        self.services = services
        self._client: Any = None

    def _http(self) -> Any:
        if self._client is None:
            import httpx

            self._client = httpx.AsyncClient(
                timeout=httpx.Timeout(300.0, connect=10.0),
                follow_redirects=False,
                limits=httpx.Limits(max_connections=1000, max_keepalive_connections=100),
            )
        return self._client

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.api(scope, receive, send)
            return
        name = _host(scope).lower().rstrip(".")
        suffix = "." + self.services.domain.lower()
        if not name.endswith(suffix) or name[: -len(suffix)].count(".") != 2:
            # not <service>.<envlabel>.<app>.<domain>: the API (host.example.com under example.com too)
            await self.api(scope, receive, send)
            return
        routed = self.services.route(name)
        if scope["type"] == "websocket":  # not proxied
            await send({"type": "websocket.close", "code": 1003})
            return
        if routed is None:
            await _plain(send, 404, f"no service at {name}")
            return
        environment, service = routed
        port = self.services.ready_port(environment, service)
        if port is None:  # starting, suspended or failed: wake it (it may take a while)
            try:
                port = await anyio.to_thread.run_sync(self.services.wake, environment, service)
            except NotDeployed:
                await _plain(send, 404, f"no service at {name}")
                return
            except ServiceFailed as error:
                await _plain(send, 502, f"service {service!r} is not answering: {error}")
                return
        await self._forward(scope, receive, send, port)

    async def _forward(self, scope: dict[str, Any], receive: Any, send: Any, port: int) -> None:
        import httpx

        raw = scope["headers"]
        dropped = set(HOP_BY_HOP) | FORWARDED
        for key, value in raw:
            if key == b"connection":
                dropped |= {item.strip().lower() for item in value.decode("latin-1").split(",")}
        headers = [(k, v) for k, v in raw if k.decode("latin-1").lower() not in dropped]
        previous = [v.decode("latin-1") for k, v in raw if k == b"x-forwarded-for"]
        client = scope.get("client") or ("", 0)
        headers += [
            (b"x-forwarded-for", ", ".join([*previous, client[0]]).encode("latin-1")),
            (b"x-forwarded-proto", scope.get("scheme", "http").encode()),
            (b"x-forwarded-host", _raw_host(raw)),
        ]
        path = scope.get("raw_path") or scope["path"].encode()
        query = scope.get("query_string", b"")
        url = f"http://127.0.0.1:{port}{path.decode('latin-1')}" + (
            f"?{query.decode('latin-1')}" if query else ""
        )
        has_body = any(k in (b"content-length", b"transfer-encoding") for k, _ in raw)
        content: Any = _body(receive) if has_body else b""
        if not has_body:
            await _drain(receive)
        client_ = self._http()
        request = client_.build_request(scope["method"], url, headers=headers, content=content)
        try:
            response = await client_.send(request, stream=True)
        except httpx.HTTPError as error:
            await _plain(send, 502, f"the service is not answering: {type(error).__name__}")
            return
        try:
            out = [(k, v) for k, v in response.headers.raw if k.decode("latin-1").lower() not in HOP_BY_HOP]
            await send({"type": "http.response.start", "status": response.status_code, "headers": out})
            async for chunk in response.aiter_raw():
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        except httpx.HTTPError as error:  # the service broke off mid-answer: nothing more to send
            log.warning("a proxied answer broke off: %s", type(error).__name__)
        finally:
            await response.aclose()


def _raw_host(raw: list[tuple[bytes, bytes]]) -> bytes:
    return next((v for k, v in raw if k == b"host"), b"")


async def _body(receive: Any) -> AsyncIterator[bytes]:
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return
        yield message.get("body", b"")
        if not message.get("more_body"):
            return


async def _drain(receive: Any) -> None:
    """Reads the (empty) request body, so that a later ``http.disconnect`` is not mistaken for it."""
    message = await receive()
    while message["type"] == "http.request" and message.get("more_body"):
        message = await receive()
