"""What the FAKE Neon API's handlers (:mod:`skyrig_neon.fake.handlers`) share: the fake's state, lookups
that answer 404 and 423, Neon's rules on names and computes, connection URIs, and SQL on the real servers."""

from __future__ import annotations

import threading
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from psycopg import sql

from skyrig_neon.fake.postgres import BranchServer
from skyrig_neon.fake.spec import NeonError, Request, bad_request, locked, not_found
from skyrig_neon.fake.store import (
    HOST,
    Branch,
    Endpoint,
    Operation,
    Project,
    Role,
    Runner,
    new_operation,
    now,
)

RESERVED_ROLES = frozenset(
    {"cloud_admin", "neon_superuser", "neon_service", "zenith_admin", "postgres", "public", "none"}
)
RESERVED_DATABASES = frozenset({"postgres", "template0", "template1"})
CLOCK_SKEW = 5.0
"""Seconds a ``parent_timestamp`` may lie in the future (the client's clock against the fake's)."""


@dataclass
class Answer:
    """A handler's answer: status, JSON body (None: no body) and work to do once the lock is released."""

    status: int
    body: Any
    after: Callable[[], None] | None = None


class Base:
    """The fake's state (``projects``), the lookups and Neon's rules the handlers share."""

    def __init__(self, folder: Path, user: str | None, runner: Runner, lock: threading.RLock) -> None:
        self.folder = folder
        self.user = user
        self.runner = runner
        self.lock = lock
        self.projects: dict[str, Project] = {}
        self._database_ids = 1000
        self.annotations: dict[str, dict[str, str]] = {}
        self._template_guard = threading.Lock()
        self._template_server: BranchServer | None = None

    def _template(self) -> Path:
        """A cluster initdb made once for the fake (never started): each project's default branch is a
        copy of it, which is much faster than an initdb each."""
        with self._template_guard:
            if self._template_server is None:
                template = BranchServer(self.folder / "template", self.user)
                template.initdb()
                self._template_server = template
            return self._template_server.data

    def handle(self, request: Request) -> Answer:
        """Answers an accepted request (501 for an operation of the document the fake does not serve)."""
        handler = getattr(self, request.operation.id, None)
        if handler is None:
            raise NeonError(
                501, "NOT_IMPLEMENTED", f"the FAKE Neon API does not serve {request.operation.id}"
            )
        return handler(request)

    # -- lookups -----------------------------------------------------------------------------------------

    def _project(self, request: Request) -> Project:
        project = self.projects.get(request.path["project_id"])
        if project is None:
            raise not_found(f"project {request.path['project_id']} not found")
        return project

    def _mutable(self, request: Request) -> Project:
        project = self._project(request)
        if project.busy():
            raise locked(project.id)
        return project

    @staticmethod
    def _branch(project: Project, branch_id: str) -> Branch:
        branch = project.branches.get(branch_id)
        if branch is None:
            raise not_found(f"branch {branch_id} not found")
        return branch

    @staticmethod
    def _endpoint(project: Project, endpoint_id: str) -> Endpoint:
        endpoint = project.endpoints.get(endpoint_id)
        if endpoint is None:
            raise not_found(f"endpoint {endpoint_id} not found")
        return endpoint

    @staticmethod
    def _read_write(project: Project, branch: Branch) -> Endpoint | None:
        return next(
            (e for e in project.endpoints.values() if e.branch_id == branch.id and e.type == "read_write"),
            None,
        )

    def _endpoint_id(self, project: Project, branch: Branch) -> str | None:
        endpoint = self._read_write(project, branch)
        return endpoint.id if endpoint else None

    # -- rules -------------------------------------------------------------------------------------------

    @staticmethod
    def _role_name(name: str) -> None:
        if not name or len(name.encode()) > 63:
            raise bad_request(f"role name {name!r} must be 1 to 63 bytes long")
        if name.lower() in RESERVED_ROLES or name.lower().startswith("pg_"):
            raise bad_request(f"role name {name!r} is reserved")

    @staticmethod
    def _database_name(name: str) -> None:
        if not name or len(name.encode()) > 63:
            raise bad_request(f"database name {name!r} must be 1 to 63 bytes long")
        if name in RESERVED_DATABASES:
            raise bad_request(f"database name {name!r} is reserved")

    @staticmethod
    def _compute(fields: dict[str, Any], *, defaults: dict[str, Any]) -> tuple[float, float, int]:
        low = fields.get("autoscaling_limit_min_cu", defaults.get("autoscaling_limit_min_cu", 0.25))
        high = fields.get("autoscaling_limit_max_cu", defaults.get("autoscaling_limit_max_cu", max(low, 2)))
        suspend = fields.get("suspend_timeout_seconds", defaults.get("suspend_timeout_seconds", 0))
        if low > high:
            raise bad_request(
                f"autoscaling_limit_min_cu ({low}) must not exceed autoscaling_limit_max_cu ({high})"
            )
        if 0 < suspend < 60:
            raise bad_request(
                "suspend_timeout_seconds must be -1 (never), 0 (the default) or at least 60 seconds"
            )
        return low, high, suspend

    def _uri(self, project: Project, branch: Branch, endpoint: Endpoint, role: Role, database: str) -> str:
        user = urllib.parse.quote(role.name, safe="")
        secret = urllib.parse.quote(role.password, safe="")
        name = urllib.parse.quote(database, safe="")
        uri = f"postgresql://{user}:{secret}@{HOST}:{branch.server.port}/{name}?sslmode=disable"
        if endpoint.type == "read_only":
            uri += "&options=-c%20default_transaction_read_only%3Don"
        return uri

    def _connection_uris(self, project: Project, branch: Branch) -> list[dict[str, Any]]:
        endpoint = self._read_write(project, branch)
        if endpoint is None:
            return []
        details = []
        for database in branch.databases.values():
            role = branch.roles.get(database.owner_name)
            if role is None:
                continue
            details.append(
                {
                    "connection_uri": self._uri(project, branch, endpoint, role, database.name),
                    "connection_parameters": {
                        "database": database.name,
                        "password": role.password,
                        "role": role.name,
                        "host": HOST,
                        "pooler_host": HOST,
                    },
                }
            )
        return details

    def _new_database_id(self) -> int:
        self._database_ids += 1
        return self._database_ids

    # -- the real servers ----------------------------------------------------------------------------------

    @staticmethod
    def _create_role(server: BranchServer, name: str, secret: str | None) -> None:
        if secret is None:
            server.execute(sql.SQL("CREATE ROLE {} NOLOGIN").format(sql.Identifier(name)))
            return
        server.execute(
            sql.SQL(
                "CREATE ROLE {} WITH LOGIN CREATEDB CREATEROLE PASSWORD {} IN ROLE neon_superuser"
            ).format(sql.Identifier(name), sql.Literal(secret))
        )

    @staticmethod
    def _create_database(server: BranchServer, name: str, owner: str) -> None:
        server.execute(
            sql.SQL("CREATE DATABASE {} OWNER {}").format(sql.Identifier(name), sql.Identifier(owner))
        )

    @staticmethod
    def _ready(branch: Branch) -> None:
        branch.current_state = "ready"
        branch.state_changed_at = now()

    @staticmethod
    def _active(endpoint: Endpoint) -> None:
        endpoint.current_state = "active"

    def _config_op(self, project: Project, branch: Branch, work: Callable[[], None]) -> Operation:
        return new_operation(
            project,
            "apply_config",
            branch_id=branch.id,
            endpoint_id=self._endpoint_id(project, branch),
            work=work,
        )

    def _role(self, branch: Branch, name: str) -> Role:
        role = branch.roles.get(name)
        if role is None:
            raise not_found(f"role {name} not found")
        return role
