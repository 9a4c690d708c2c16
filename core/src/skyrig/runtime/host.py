"""The service host: the ASGI app that runs one skyrig service.

It wraps the service's own ASGI app (FastAPI, Starlette, anything ASGI) and adds what skyrig runs inside
the service's process, the same in every environment:

- the consumers of the subscriptions the service declares, started after the app's own startup and
  stopped (letting in-flight handlers finish) before its shutdown;
- control endpoints under :data:`skyrig.runtime.control.PREFIX`, answered only with the run's token:
  ``POST /__skyrig/cron/JOB`` runs a cron job's endpoint now, ``GET /__skyrig/health`` says what runs;
- ``POST /__skyrig/cron/JOB`` signed by a provider's scheduler (:mod:`skyrig.runtime.signing`), checked
  against the environment's signing key that the cron job's data plane reads: a managed cron job.

uvicorn runs it with ``--factory skyrig.runtime.host:create``; ``SKYRIG_SERVICE_APP`` names the
service's app as ``module:attribute`` and ``SKYRIG_RUNTIME_CONFIG`` gives its runtime config.
"""

from __future__ import annotations

import asyncio
import gc
import hmac
import inspect
import json
import logging
import os
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from skyrig.runtime import load_reference
from skyrig.runtime.control import HEADER, PREFIX, TOKEN_VARIABLE

APP_VARIABLE = "SKYRIG_SERVICE_APP"

log = logging.getLogger("skyrig.host")

ASGIApp = Callable[
    [dict[str, Any], Callable[[], Awaitable[dict[str, Any]]], Callable[..., Awaitable[None]]], Any
]


def create() -> ServiceHost:
    """uvicorn's factory: the host of the service ``SKYRIG_SERVICE_APP`` names."""
    return ServiceHost(load_reference(os.environ[APP_VARIABLE]), os.environ.get(TOKEN_VARIABLE), freeze=True)


def call_in_thread(
    function: Callable[..., Any], pool: ThreadPoolExecutor | None = None
) -> Callable[..., Any]:
    """``function`` as a coroutine function: async ones as they are, sync ones run in ``pool``."""
    if inspect.iscoroutinefunction(function):
        return function

    async def run(*args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(pool, function, *args)

    return run


class ServiceHost:
    """The ASGI app uvicorn serves for one service: its own app, its consumers, its control endpoints."""

    def __init__(self, app: ASGIApp, token: str | None = None, *, freeze: bool = False) -> None:
        """``freeze``: the host is the process's own (uvicorn's factory), so once started what start-up
        built is left out of the garbage collector's passes (:func:`gc.freeze`)."""
        from skyrig.runtime.binding import runtime_config

        self.app = app
        self.token = token
        self.freeze = freeze
        self.config = runtime_config()
        self._stop = asyncio.Event()
        self._consumers: list[asyncio.Task[None]] = []
        self._pools: list[ThreadPoolExecutor] = []

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
        elif scope["type"] == "http" and scope["path"].startswith(PREFIX):
            await self._control(scope, receive, send)
        else:
            await self.app(scope, receive, send)

    # -- lifespan: the app's own, then the consumers ---------------------------------------------

    async def _lifespan(self, receive: Any, send: Any) -> None:
        inner = _Lifespan(self.app)
        await receive()  # lifespan.startup
        try:
            await inner.startup()
            self._start_consumers()
        except Exception as error:  # the app's startup failed: uvicorn reports it and exits
            await send({"type": "lifespan.startup.failed", "message": str(error)})
            return
        if self.freeze:
            # what start-up built (modules, the app, its clients) lives as long as the process: left
            # out of the collector's full passes, which otherwise scan it all and stop the loop for
            # tens of ms under load (the p99 of message delivery; see docs/performance.md)
            gc.freeze()
        await send({"type": "lifespan.startup.complete"})
        await receive()  # lifespan.shutdown
        await self._stop_consumers()
        await inner.shutdown()
        await send({"type": "lifespan.shutdown.complete"})

    def subscriptions(self) -> dict[str, dict[str, Any]]:
        """This service's subscriptions: name -> runtime config entry (with handler and message type)."""
        return {
            key.partition("/")[2]: entry
            for key, entry in sorted(self.config["resources"].items())
            if key.startswith("subscription/") and "handler" in entry
        }

    def _start_consumers(self) -> None:
        from skyrig.runtime.binding import client_for_key

        for name, entry in self.subscriptions().items():
            consumer = client_for_key(f"subscription/{name}")
            pool = ThreadPoolExecutor(entry.get("max_concurrency", 100), thread_name_prefix=f"skyrig-{name}")
            self._pools.append(pool)
            handler = _deliver(load_reference(entry["handler"]), load_reference(entry["message_type"]), pool)
            task = asyncio.create_task(consumer.consume(handler, self._stop), name=f"subscription {name}")
            task.add_done_callback(_report)
            self._consumers.append(task)

    async def _stop_consumers(self) -> None:
        self._stop.set()
        if self._consumers:
            await asyncio.wait(self._consumers, timeout=30)
        for pool in self._pools:
            pool.shutdown(wait=False, cancel_futures=True)

    # -- control endpoints ---------------------------------------------------------------------

    async def _control(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        from skyrig.runtime import signing

        headers = {key.decode("latin-1"): value.decode("latin-1") for key, value in scope["headers"]}
        path = scope["path"][len(PREFIX) :]
        if signing.HEADER in headers and scope["method"] == "POST" and path.startswith("cron/"):
            # a provider's scheduler: accepted only with a valid signature by the environment's key
            body = await read_body(receive)
            try:
                key = self._signing_key(path.removeprefix("cron/"))
                signing.verify(key, headers[signing.HEADER], "POST", scope["path"], body)
            except (signing.SignatureError, LookupError) as error:
                await _respond(send, 401, {"error": f"rejected: {error}"})
                return
            except (NotImplementedError, AttributeError):  # the provider runs no managed cron here
                await _respond(send, 401, {"error": "rejected: this environment's cron jobs are not managed"})
                return
            await _respond(send, *await self._run_cron(path.removeprefix("cron/")))
            return
        given = headers.get(HEADER, "")
        if not self.token or not hmac.compare_digest(given.encode(), self.token.encode()):
            await _respond(send, 403, {"error": f"the {HEADER} header is missing or wrong"})
            return
        if scope["method"] == "GET" and path == "health":
            service = self.config["service"]
            await _respond(
                send,
                200,
                {"service": service, "subscriptions": sorted(self.subscriptions()), "files": app_files()},
            )
        elif scope["method"] == "POST" and path.startswith("cron/"):
            await _respond(send, *await self._run_cron(path.removeprefix("cron/")))
        else:
            await _respond(send, 404, {"error": f"no control endpoint {scope['method']} {scope['path']}"})

    def _signing_key(self, job: str) -> bytes:
        """The environment's cron signing key, through the data plane of the provider of ``job``."""
        from skyrig.runtime.binding import client_for_key

        key = f"cron_job/{job}"
        if key not in self.config["resources"]:
            raise LookupError(f"service {self.config['service']!r} has no cron job {job!r}")
        return client_for_key(key).signing_key()

    async def _run_cron(self, job: str) -> tuple[int, dict[str, Any]]:
        found = self.config["resources"].get(f"cron_job/{job}")
        if found is None or "endpoint" not in found:
            return 404, {
                "job": job,
                "ok": False,
                "error": f"service {self.config['service']!r} has no cron job {job!r}",
            }
        started = time.perf_counter()
        try:
            await call_in_thread(load_reference(found["endpoint"]))()
        except Exception as error:
            log.exception("cron job %s failed", job)
            outcome = {"ok": False, "error": f"{type(error).__name__}: {error}"}
        else:
            outcome = {"ok": True, "error": None}
        return (200 if outcome["ok"] else 500), {
            "job": job,
            "seconds": round(time.perf_counter() - started, 3),
            **outcome,
        }


def app_files() -> list[str]:
    """The app's source files this process has imported, relative to its folder (the working directory):
    what ``skyrig run`` compares with the files a code change touched, to restart only what runs them."""
    import sys
    from pathlib import Path

    here = str(Path.cwd()) + os.sep
    return sorted(
        {
            os.path.relpath(path, here)
            for module in list(sys.modules.values())
            if isinstance(path := getattr(module, "__file__", None), str)
            and path.startswith(here)
            and "site-packages" not in path
        }
    )


def _deliver(function: Callable[..., Any], message_type: type, pool: ThreadPoolExecutor) -> Any:
    """The handler the provider's consumer calls with each message's data."""
    from skyrig.declarations.pubsub import decode_message

    call = call_in_thread(function, pool)

    async def deliver(data: dict[str, Any]) -> None:
        await call(decode_message(message_type, data))

    return deliver


def _report(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("%s stopped: %s", task.get_name(), task.exception(), exc_info=task.exception())


async def read_body(receive: Any) -> bytes:
    """The whole body of an ASGI HTTP request."""
    chunks = []
    while True:
        message = await receive()
        chunks.append(message.get("body", b""))
        if not message.get("more_body"):
            return b"".join(chunks)


async def _respond(send: Any, status: int, body: dict[str, Any]) -> None:
    payload = json.dumps(body).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": payload})


class _Lifespan:
    """Drives the wrapped app's own lifespan protocol, if it speaks it (as uvicorn's "auto" mode does)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.inbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.outbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.task: asyncio.Task[Any] | None = None
        self.supported = True

    async def startup(self) -> None:
        scope = {"type": "lifespan", "asgi": {"version": "3.0", "spec_version": "2.0"}, "state": {}}
        self.task = asyncio.create_task(self.app(scope, self.inbox.get, self.outbox.put))
        reply = await self._exchange({"type": "lifespan.startup"})
        if reply is None:
            self.supported = False  # the app raised on a lifespan scope: it has no lifespan
        elif reply["type"] == "lifespan.startup.failed":
            raise RuntimeError(reply.get("message") or "the app's startup failed")

    async def shutdown(self) -> None:
        if self.supported and self.task is not None and not self.task.done():
            await self._exchange({"type": "lifespan.shutdown"})

    async def _exchange(self, message: dict[str, Any]) -> dict[str, Any] | None:
        assert self.task is not None
        await self.inbox.put(message)
        reply = asyncio.create_task(self.outbox.get())
        await asyncio.wait({reply, self.task}, return_when=asyncio.FIRST_COMPLETED)
        if reply.done():
            return reply.result()
        reply.cancel()
        if self.task.exception() is not None and message["type"] == "lifespan.startup":
            log.debug("the app has no lifespan: %s", self.task.exception())
        return None


def run_cron_once(job: str) -> dict[str, Any]:
    """Run cron job ``job`` of this process's service now, outside a running server (``skyrig cron run``
    when no ``skyrig run`` is up): the same outcome the control endpoint gives."""
    from skyrig.runtime.binding import runtime_config

    host = ServiceHost.__new__(ServiceHost)
    host.config = runtime_config()
    return asyncio.run(host._run_cron(job))[1]


def main_cron() -> None:
    """``python -c 'from skyrig.runtime.host import main_cron; main_cron()' JOB``: prints the outcome."""
    import sys

    print(json.dumps(run_cron_once(sys.argv[1])))
