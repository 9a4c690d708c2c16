"""The dashboard's web app: plain ASGI with a small router, so that the core gains no web framework.

``skyrig run`` serves it with ``uvicorn --factory skyrig.dashboard.app:from_environment``. Every section
of the page is fetched from its own JSON endpoint, and an error in one (say, an unreadable state store)
is answered as JSON that the page shows in that section only: no request ever ends in a traceback page.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from html import escape
from importlib.resources import files
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from skyrig.dashboard import data
from skyrig.errors import UserError

ROOT_VARIABLE = "SKYRIG_DASHBOARD_ROOT"
ENV_VARIABLE = "SKYRIG_DASHBOARD_ENV"
ACTION_HEADER = "x-skyrig-dashboard"
"""Header the page sends with every POST. A cross-site form cannot set it, and a cross-site script that
sets it needs a CORS preflight the dashboard never grants: only the page itself can run a job."""

STATIC = files("skyrig.dashboard") / "static"
CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".svg": "image/svg+xml",
}
SECURITY_HEADERS = [
    (b"cache-control", b"no-store"),
    (b"x-content-type-options", b"nosniff"),
    (b"content-security-policy", b"default-src 'self'; img-src 'self' data:; frame-ancestors 'none'"),
]
JOB_NAME = re.compile(r"^[a-z0-9][a-z0-9-]*$")

log = logging.getLogger("skyrig.dashboard")


@dataclass
class Request:
    """The parts of an HTTP request the routes look at."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]


@dataclass
class Response:
    """What a route answers."""

    status: int
    body: bytes
    content_type: str = "application/json"


def json_response(status: int, value: Any) -> Response:
    """``value`` as a JSON response."""
    return Response(status, json.dumps(value, sort_keys=True).encode())


def error_body(error: BaseException) -> dict[str, Any]:
    """How an error reaches the page: a message and, when there is one, a hint (never a traceback)."""
    if isinstance(error, UserError):
        body: dict[str, Any] = {"error": error.message}
        if error.hint:
            body["hint"] = error.hint
        problems = getattr(error, "problems", None)
        if problems:
            body["problems"] = list(problems)
        return body
    return {
        "error": f"{type(error).__name__}: {error}",
        "hint": "the terminal running the dashboard has details",
    }


class Dashboard:
    """The development dashboard of one app folder and one environment, as an ASGI app."""

    def __init__(self, root: Path, environment: str) -> None:
        self.root = root.resolve()
        self.environment = environment
        self.routes: dict[tuple[str, str], Callable[[Request], Awaitable[Response]]] = {
            ("GET", "/"): self.index,
            ("GET", "/healthz"): self.health,
            ("GET", "/api/model"): lambda r: self.section(data.model_section, self.root),
            ("GET", "/api/graph"): lambda r: self.section(data.graph_section, self.root, environment),
            ("GET", "/api/status"): lambda r: self.section(data.status_section, self.root, environment),
            ("GET", "/api/messages"): self.messages,
            ("GET", "/api/cron"): lambda r: self.section(data.cron_section, self.root, environment),
            ("GET", "/api/secrets"): lambda r: self.section(data.secrets_section, self.root, environment),
            ("GET", "/graph.svg"): self.graph_svg,
        }

    # -- ASGI -----------------------------------------------------------------------------------

    async def __call__(self, scope: dict[str, Any], receive: Callable, send: Callable) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        request = Request(
            scope["method"],
            scope["path"],
            {k: v[-1] for k, v in parse_qs(scope.get("query_string", b"").decode()).items()},
            {k.decode().lower(): v.decode(errors="replace") for k, v in scope.get("headers", [])},
        )
        await _drain(receive)
        try:
            response = await self.dispatch(request)
        except Exception as error:  # a bug in the dashboard: still an answer the page can show
            log.exception("dashboard: %s %s failed", request.method, request.path)
            response = json_response(500, error_body(error))
        await send(
            {
                "type": "http.response.start",
                "status": response.status,
                "headers": [
                    (b"content-type", response.content_type.encode()),
                    (b"content-length", str(len(response.body)).encode()),
                    *SECURITY_HEADERS,
                ],
            }
        )
        await send({"type": "http.response.body", "body": response.body})

    async def _lifespan(self, receive: Callable, send: Callable) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def dispatch(self, request: Request) -> Response:
        """The response of the route ``request`` asks for."""
        route = self.routes.get((request.method, request.path))
        if route is not None:
            return await route(request)
        if request.path.startswith("/api/cron/"):
            if request.method != "POST":
                return json_response(405, {"error": "use POST to run a cron job"})
            return await self.run_cron(request, unquote(request.path.removeprefix("/api/cron/")))
        if request.path.startswith("/static/") and request.method == "GET":
            return self.static(request.path.removeprefix("/static/"))
        if any(path == request.path for _, path in self.routes):
            return json_response(405, {"error": f"{request.method} is not allowed on {request.path}"})
        return json_response(404, {"error": f"nothing at {request.path}"})

    # -- routes ---------------------------------------------------------------------------------

    async def section(self, gather: Callable[..., dict[str, Any]], *args: Any) -> Response:
        """One section's data, gathered in a worker thread; its errors answered as JSON."""
        try:
            return json_response(200, await asyncio.to_thread(gather, *args))
        except UserError as error:
            return json_response(500, error_body(error))
        except Exception as error:
            log.exception("dashboard: %s failed", gather.__name__)
            return json_response(500, error_body(error))

    async def index(self, request: Request) -> Response:
        page = (STATIC / "index.html").read_text(encoding="utf-8")
        page = page.replace("{{environment}}", escape(self.environment)).replace(
            "{{root}}", escape(str(self.root))
        )
        return Response(200, page.encode(), CONTENT_TYPES[".html"])

    async def health(self, request: Request) -> Response:
        return json_response(200, {"ok": True, "environment": self.environment, "root": str(self.root)})

    async def messages(self, request: Request) -> Response:
        try:
            limit = min(max(int(request.query.get("limit", "50")), 1), 500)
        except ValueError:
            return json_response(400, {"error": "limit must be a whole number"})
        return await self.section(data.messages_section, self.root, self.environment, limit)

    async def graph_svg(self, request: Request) -> Response:
        response = await self.section(data.graph_section, self.root, self.environment)
        if response.status != 200:
            return response
        return Response(200, json.loads(response.body)["svg"].encode(), CONTENT_TYPES[".svg"])

    async def run_cron(self, request: Request, job: str) -> Response:
        if request.headers.get(ACTION_HEADER) != "1":
            return json_response(
                403, {"error": f"POST from the dashboard page only (header {ACTION_HEADER})"}
            )
        origin = request.headers.get("origin")
        if origin and urlsplit(origin).netloc != request.headers.get("host"):
            return json_response(403, {"error": f"requests from {origin} may not run jobs"})
        if not JOB_NAME.match(job):
            return json_response(404, {"job": job, "ok": False, "error": f"no cron job is named {job!r}"})
        try:
            status, body = await asyncio.to_thread(data.run_cron, self.root, self.environment, job)
        except Exception as error:
            if not isinstance(error, UserError):
                log.exception("dashboard: running cron job %s failed", job)
            return json_response(500, {"job": job, "ok": False, **error_body(error)})
        return json_response(status, body)

    def static(self, name: str) -> Response:
        path = STATIC / name
        suffix = Path(name).suffix
        # only plain file names: nothing outside the static folder can be named
        if "/" in name or name.startswith(".") or suffix not in CONTENT_TYPES or not path.is_file():
            return json_response(404, {"error": f"no static file {name!r}"})
        return Response(200, path.read_bytes(), CONTENT_TYPES[suffix])


async def _drain(receive: Callable) -> None:
    """Read the request body (no route needs one), so that the server can reuse the connection."""
    while True:
        message = await receive()
        if message["type"] != "http.request" or not message.get("more_body"):
            return


def create_app(root: Path, environment: str) -> Dashboard:
    """The dashboard of the app at ``root`` (the folder of ``skyrig.toml``) for ``environment``."""
    return Dashboard(Path(root), environment)


def from_environment() -> Dashboard:
    """The uvicorn factory: the app folder from ``SKYRIG_DASHBOARD_ROOT`` (default: the current folder),
    the environment from ``SKYRIG_DASHBOARD_ENV`` (default: ``local``)."""
    return create_app(
        Path(os.environ.get(ROOT_VARIABLE) or Path.cwd()), os.environ.get(ENV_VARIABLE) or "local"
    )
