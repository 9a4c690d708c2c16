"""Talking to Neon's API (v2): a small typed client over httpx (the SDK's
:class:`~skyrig.provider.JsonApiClient`), errors in skyrig's terms, counted calls, and waits for the
operations a mutation starts.

Neon answers a mutation with the resource and the ``operations`` it started (``running``, then
``finished``): every mutating method here waits for them before it returns, showing progress through the
SDK's :func:`~skyrig.provider.wait_for`. A mutation while another operation of the same project or branch
runs is answered ``423 Locked`` (safe to retry, says Neon): it is retried until ``wait_timeout``.

Errors: 404 becomes :class:`~skyrig.provider.NotFound`, 409 :class:`Conflict`, 429
:class:`~skyrig.provider.ThrottledError`, 5xx and transport failures :class:`~skyrig.provider.TransientError`,
401 and 403 a :class:`~skyrig.provider.ProviderError` naming ``NEON_API_KEY``; each names the call, never the
key or a password. Every request is counted in :data:`CALLS` by ``"METHOD /path/template"``.

Passwords: Neon hands a role's password back from several calls (creating a project, a branch or a role,
a connection URI). The client drops every one at once but :meth:`NeonClient.reveal_password`'s, which it
returns to the caller only (kept in memory for the command, never in a message, a log or a repr).
"""

from __future__ import annotations

import os
import threading
import time
from collections import Counter
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlsplit

from skyrig.provider import (
    Context,
    JsonApiClient,
    ProviderError,
    TransientError,
    UserError,
    wait_for,
)
from skyrig_neon.settings import API_KEY_VARIABLE

if TYPE_CHECKING:
    import httpx

    from skyrig.provider import Environment
    from skyrig_neon.settings import NeonSettings

CALLS: Counter[str] = Counter()
"""Every Neon API request made by this process: ``"METHOD /path/template" -> count``."""

DONE = frozenset({"finished", "skipped", "cancelled"})
"""Operation states after which nothing more happens."""
FAILED = frozenset({"failed", "error"})
"""Operation states of an operation that went wrong."""
DEFAULT_PORT = 5432
DEFAULT_SSLMODE = "require"

Json = dict[str, Any]


def mutating_calls(calls: Counter[str] | None = None) -> Counter[str]:
    """The mutating requests among ``calls`` (by default every request this process made)."""
    return NeonClient.mutating_calls(calls)


class Conflict(ProviderError):
    """Neon refuses the request as conflicting (409): a name taken, a branch with children."""


def api_key() -> str:
    """The Neon API key, from the environment variable ``NEON_API_KEY`` only: a :class:`UserError` naming
    it when it is not set."""
    key = os.environ.get(API_KEY_VARIABLE, "").strip()
    if not key:
        raise UserError(
            f"the Neon provider needs an API key in the environment variable {API_KEY_VARIABLE}, "
            "which is not set",
            f"create one in Neon's console (Account settings, API keys) and export {API_KEY_VARIABLE}=...; "
            "it is never read from skyrig.toml",
        )
    return key


class Connection:
    """Where a database is reached, from Neon's connection URI with its password dropped: host, port,
    sslmode."""

    __slots__ = ("host", "port", "sslmode")

    def __init__(self, host: str, port: int, sslmode: str) -> None:
        self.host, self.port, self.sslmode = host, port, sslmode

    @classmethod
    def parse(cls, uri: str) -> Connection:
        """Host, port (default 5432) and sslmode (default ``require``) of ``uri``; its password is not
        kept."""
        parts = urlsplit(uri)
        query = dict(item.partition("=")[::2] for item in parts.query.split("&") if item)
        host = unquote(parts.hostname or "")
        return cls(host, parts.port or DEFAULT_PORT, query.get("sslmode") or DEFAULT_SSLMODE)

    def __repr__(self) -> str:
        return f"Connection(host={self.host!r}, port={self.port}, sslmode={self.sslmode!r})"


class NeonClient(JsonApiClient):
    """Neon's API, as the node types, the provider and the data plane use it."""

    cloud, provider = "Neon", "neon"
    api_name = "Neon"
    credential = f"the API key in {API_KEY_VARIABLE} (and its access to the project)"
    calls = CALLS
    conflict = Conflict

    def __init__(
        self,
        api_url: str,
        key: str,
        *,
        max_attempts: int = 4,
        wait_delay: float = 1.0,
        wait_timeout: float = 600.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        super().__init__(
            api_url.rstrip("/"), key, max_attempts=max_attempts, wait_delay=wait_delay, transport=transport
        )
        self.wait_timeout = wait_timeout
        self.context: Context | None = None
        """The context waits show progress through (set by :meth:`for_environment`)."""
        self.root: Path = Path.cwd()
        """The app's folder: migration files are read from under it."""
        self._passwords: dict[tuple[str, str, str], str] = {}
        self._mutations: dict[str, threading.Lock] = {}
        self._lock = threading.Lock()

    @classmethod
    def for_environment(cls, app: str, environment: Environment, settings: NeonSettings) -> NeonClient:
        """The client of one command in ``environment`` (the key from ``NEON_API_KEY``)."""
        client = cls(
            settings.api_url,
            api_key(),
            max_attempts=settings.max_attempts,
            wait_delay=settings.wait_delay,
            wait_timeout=settings.wait_timeout,
        )
        client.context = Context(app, environment, settings, client)
        return client

    # -- requests ---------------------------------------------------------------------------------

    def waited(self, status: int, attempt: int, elapsed: float) -> bool:
        """``423 Locked`` (another operation of the project or branch runs) is waited out until
        ``wait_timeout``."""
        if status == 423 and elapsed < self.wait_timeout:
            self._sleep(min(attempt, 6))
            return True
        return False

    def error(self, status: int, key: str, message: str, code: Any) -> Exception:
        if status == 423:
            return TransientError(f"Neon {key}: still locked by another operation: {message}")
        return super().error(status, key, message, code)

    def get(self, template: str, params: Mapping[str, Any] | None = None, **path: str) -> Json:
        return self.request("GET", template, params=params, **path)

    def mutate(self, method: str, template: str, what: str, body: Json | None = None, **path: str) -> Json:
        """A mutating request, returned once the operations it started have finished. This client's
        mutations of one project go one at a time: Neon locks the project (``423``) while an operation
        runs, so the engine's parallel nodes would only take turns through retries."""
        with self._project_lock(path.get("project_id")):
            answer = self.request(method, template, body=body, **path)
            self.finish(answer, what)
        return answer

    def _project_lock(self, project: str | None) -> threading.Lock:
        with self._lock:
            return self._mutations.setdefault(project or "", threading.Lock())

    def finish(self, answer: Json, what: str) -> None:
        """Wait until the operations ``answer`` names have finished: a :class:`ProviderError` naming the
        first that failed."""
        pending = [op for op in answer.get("operations") or [] if op.get("status") not in DONE]
        for operation in pending:
            self._wait_operation(operation, what)

    def _wait_operation(self, operation: Json, what: str) -> None:
        seen = {"operation": operation}

        def check() -> tuple[bool, str]:
            current = seen["operation"]
            status = current.get("status", "running")
            if status in FAILED:
                raise ProviderError(
                    f"{what}: Neon's operation {current.get('action')} {current.get('id')} {status}: "
                    f"{current.get('error') or 'no reason given'}"
                )
            if status in DONE:
                return True, status
            seen["operation"] = self.get(
                "/projects/{project_id}/operations/{operation_id}",
                project_id=current["project_id"],
                operation_id=current["id"],
            )["operation"]
            latest = seen["operation"].get("status", "running")
            if latest in FAILED:
                return check()
            return latest in DONE, f"{current.get('action', 'operation')} {latest}"

        if self.context is not None:
            wait_for(self.context, what, check, timeout=self.wait_timeout)
            return
        deadline = time.monotonic() + self.wait_timeout
        while True:
            done, status = check()
            if done:
                return
            if time.monotonic() > deadline:
                raise ProviderError(f"{what} is still {status} after {int(self.wait_timeout)} s")
            time.sleep(self.wait_delay)

    # -- projects ------------------------------------------------------------------------------------

    def project(self, project_id: str) -> Json:
        return self.get("/projects/{project_id}", project_id=project_id)["project"]

    def projects_named(self, name: str, org_id: str | None = None) -> list[Json]:
        """The projects whose name is exactly ``name`` (Neon's search matches parts of names and ids)."""
        found: list[Json] = []
        cursor: str | None = None
        while True:
            params = {"search": name, "limit": 400, "org_id": org_id, "cursor": cursor}
            page = self.get("/projects", params)
            projects = page.get("projects") or []
            found += [p for p in projects if p.get("name") == name]
            cursor = (page.get("pagination") or {}).get("cursor")
            if len(projects) < 400 or not cursor:
                return found

    def create_project(self, body: Json, what: str) -> Json:
        """Create a project; its ``project`` (the answer's passwords and connection URIs dropped)."""
        return self.mutate("POST", "/projects", what, body)["project"]

    # -- branches ------------------------------------------------------------------------------------

    def branches(self, project_id: str) -> list[Json]:
        """Every branch of the project."""
        found: list[Json] = []
        cursor: str | None = None
        while True:
            params = {"limit": 10000, "cursor": cursor}
            page = self.get("/projects/{project_id}/branches", params, project_id=project_id)
            branches = page.get("branches") or []
            found += branches
            following = (page.get("pagination") or {}).get("next")
            if not branches or not following or following == cursor:
                return found
            cursor = following

    def branch(self, project_id: str, branch_id: str) -> Json:
        return self.get(
            "/projects/{project_id}/branches/{branch_id}", project_id=project_id, branch_id=branch_id
        )["branch"]

    def create_branch(self, project_id: str, body: Json, what: str) -> Json:
        """Create a branch (with the endpoints ``body`` asks for): the answer's ``branch`` and
        ``endpoints``."""
        answer = self.mutate("POST", "/projects/{project_id}/branches", what, body, project_id=project_id)
        return {"branch": answer["branch"], "endpoints": answer.get("endpoints") or []}

    def update_branch(self, project_id: str, branch_id: str, changes: Json, what: str) -> Json:
        return self.mutate(
            "PATCH",
            "/projects/{project_id}/branches/{branch_id}",
            what,
            {"branch": changes},
            project_id=project_id,
            branch_id=branch_id,
        )["branch"]

    def delete_branch(self, project_id: str, branch_id: str, what: str) -> None:
        self.mutate(
            "DELETE",
            "/projects/{project_id}/branches/{branch_id}",
            what,
            project_id=project_id,
            branch_id=branch_id,
        )

    # -- endpoints -----------------------------------------------------------------------------------

    def endpoints(self, project_id: str) -> list[Json]:
        """Every compute endpoint of the project."""
        return self.get("/projects/{project_id}/endpoints", project_id=project_id).get("endpoints") or []

    def branch_endpoints(self, project_id: str, branch_id: str) -> list[Json]:
        return (
            self.get(
                "/projects/{project_id}/branches/{branch_id}/endpoints",
                project_id=project_id,
                branch_id=branch_id,
            ).get("endpoints")
            or []
        )

    def endpoint(self, project_id: str, endpoint_id: str) -> Json:
        return self.get(
            "/projects/{project_id}/endpoints/{endpoint_id}", project_id=project_id, endpoint_id=endpoint_id
        )["endpoint"]

    def create_endpoint(self, project_id: str, endpoint: Json, what: str) -> Json:
        return self.mutate(
            "POST", "/projects/{project_id}/endpoints", what, {"endpoint": endpoint}, project_id=project_id
        )["endpoint"]

    def update_endpoint(self, project_id: str, endpoint_id: str, changes: Json, what: str) -> Json:
        return self.mutate(
            "PATCH",
            "/projects/{project_id}/endpoints/{endpoint_id}",
            what,
            {"endpoint": changes},
            project_id=project_id,
            endpoint_id=endpoint_id,
        )["endpoint"]

    def delete_endpoint(self, project_id: str, endpoint_id: str, what: str) -> None:
        self.mutate(
            "DELETE",
            "/projects/{project_id}/endpoints/{endpoint_id}",
            what,
            project_id=project_id,
            endpoint_id=endpoint_id,
        )

    # -- roles ----------------------------------------------------------------------------------------

    def role(self, project_id: str, branch_id: str, name: str) -> Json:
        role = self.get(
            "/projects/{project_id}/branches/{branch_id}/roles/{role_name}",
            project_id=project_id,
            branch_id=branch_id,
            role_name=name,
        )["role"]
        role.pop("password", None)
        return role

    def create_role(self, project_id: str, branch_id: str, name: str, what: str) -> Json:
        """Create a login role; its record, without the password Neon answers with."""
        role = self.mutate(
            "POST",
            "/projects/{project_id}/branches/{branch_id}/roles",
            what,
            {"role": {"name": name}},
            project_id=project_id,
            branch_id=branch_id,
        )["role"]
        role.pop("password", None)
        return role

    def delete_role(self, project_id: str, branch_id: str, name: str, what: str) -> None:
        self.mutate(
            "DELETE",
            "/projects/{project_id}/branches/{branch_id}/roles/{role_name}",
            what,
            project_id=project_id,
            branch_id=branch_id,
            role_name=name,
        )
        self.forget_password(project_id, branch_id, name)

    def reveal_password(self, project_id: str, branch_id: str, name: str, *, fresh: bool = False) -> str:
        """The role's password, kept for this client's life (``fresh``: read again)."""
        key = (project_id, branch_id, name)
        with self._lock:
            if not fresh and key in self._passwords:
                return self._passwords[key]
        password = self.get(
            "/projects/{project_id}/branches/{branch_id}/roles/{role_name}/reveal_password",
            project_id=project_id,
            branch_id=branch_id,
            role_name=name,
        )["password"]
        with self._lock:
            self._passwords[key] = password
        return password

    def forget_password(self, project_id: str, branch_id: str, name: str) -> None:
        with self._lock:
            self._passwords.pop((project_id, branch_id, name), None)

    # -- databases -----------------------------------------------------------------------------------

    def databases(self, project_id: str, branch_id: str) -> list[Json]:
        return (
            self.get(
                "/projects/{project_id}/branches/{branch_id}/databases",
                project_id=project_id,
                branch_id=branch_id,
            ).get("databases")
            or []
        )

    def database(self, project_id: str, branch_id: str, name: str) -> Json:
        return self.get(
            "/projects/{project_id}/branches/{branch_id}/databases/{database_name}",
            project_id=project_id,
            branch_id=branch_id,
            database_name=name,
        )["database"]

    def create_database(self, project_id: str, branch_id: str, name: str, owner: str, what: str) -> Json:
        return self.mutate(
            "POST",
            "/projects/{project_id}/branches/{branch_id}/databases",
            what,
            {"database": {"name": name, "owner_name": owner}},
            project_id=project_id,
            branch_id=branch_id,
        )["database"]

    def update_database(self, project_id: str, branch_id: str, name: str, changes: Json, what: str) -> Json:
        return self.mutate(
            "PATCH",
            "/projects/{project_id}/branches/{branch_id}/databases/{database_name}",
            what,
            {"database": changes},
            project_id=project_id,
            branch_id=branch_id,
            database_name=name,
        )["database"]

    def delete_database(self, project_id: str, branch_id: str, name: str, what: str) -> None:
        self.mutate(
            "DELETE",
            "/projects/{project_id}/branches/{branch_id}/databases/{database_name}",
            what,
            project_id=project_id,
            branch_id=branch_id,
            database_name=name,
        )

    def connection(
        self, project_id: str, branch_id: str, database: str, role: str, *, pooled: bool
    ) -> Connection:
        """Host, port and sslmode of ``database`` on the branch's read-write endpoint (``pooled``: through
        Neon's connection pooler), from its connection URI, whose password is dropped at once."""
        uri = self.get(
            "/projects/{project_id}/connection_uri",
            {"branch_id": branch_id, "database_name": database, "role_name": role, "pooled": pooled},
            project_id=project_id,
        )["uri"]
        return Connection.parse(uri)
