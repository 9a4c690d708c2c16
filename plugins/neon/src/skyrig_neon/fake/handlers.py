"""The operations the FAKE Neon API (:mod:`skyrig_neon.fake`) serves, one method per ``operationId``.

Each runs under the fake's lock with a request the spec already accepted (:mod:`skyrig_neon.fake.spec`),
applies Neon's own rules on top (names, parents, protection, 423 while the project has a pending
operation) and answers ``(status, body)``. Work on the real servers happens in the operations
(:class:`~skyrig_neon.fake.store.Runner`), or after the lock is released (``Answer.after``).
"""

from __future__ import annotations

import threading
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from psycopg import sql

from skyrig_neon.fake.postgres import BranchServer
from skyrig_neon.fake.spec import NeonError, Request, bad_request, conflict, locked, not_found
from skyrig_neon.fake.store import (
    HOST,
    REGION,
    Branch,
    Database,
    Endpoint,
    Operation,
    Project,
    Role,
    Runner,
    iso,
    new_operation,
    now,
    parse_time,
    password,
    project_id,
    resource_id,
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


class Handlers:
    """The fake's state (``projects``) and its operations' handlers."""

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

    # -- projects ------------------------------------------------------------------------------------------

    def createProject(self, request: Request) -> Answer:
        fields = request.body["project"]
        region = fields.get("region_id", REGION)
        if not (region.startswith("aws-") or region.startswith("azure-")):
            raise bad_request(f"region {region!r} is not a Neon region (aws-... or azure-...)")
        options = fields.get("branch", {})
        role_name = options.get("role_name", "neondb_owner")
        database_name = options.get("database_name", "neondb")
        self._role_name(role_name)
        self._database_name(database_name)
        defaults = dict(fields.get("default_endpoint_settings", {}))
        for key in ("autoscaling_limit_min_cu", "autoscaling_limit_max_cu"):
            if key in fields:
                defaults.setdefault(key, fields[key])
        low, high, suspend = self._compute({}, defaults=defaults)
        moment = now()
        identifier = project_id()
        while identifier in self.projects:
            identifier = project_id()
        project = Project(
            id=identifier,
            name=fields.get("name", identifier),
            region_id=region,
            pg_version=fields.get("pg_version", 18),
            created_at=moment,
            updated_at=moment,
            history_retention_seconds=fields.get("history_retention_seconds", 86400),
            store_passwords=fields.get("store_passwords", True),
            settings=fields.get("settings", {}),
            default_endpoint_settings=defaults,
            org_id=fields.get("org_id"),
        )
        branch_id = resource_id("br")
        server = BranchServer(self.folder / project.id / branch_id, self.user)
        branch = Branch(
            id=branch_id,
            project_id=project.id,
            name=options.get("name", "main"),
            server=server,
            created_at=moment,
            updated_at=moment,
            default=True,
        )
        role = Role(role_name, branch_id, password(), moment, moment)
        database = Database(self._new_database_id(), database_name, role_name, branch_id, moment, moment)
        branch.roles[role.name] = role
        branch.databases[database.name] = database
        endpoint = Endpoint(
            id=resource_id("ep"),
            project_id=project.id,
            branch_id=branch_id,
            type="read_write",
            autoscaling_limit_min_cu=low,
            autoscaling_limit_max_cu=high,
            suspend_timeout_seconds=suspend,
            created_at=moment,
            updated_at=moment,
        )
        project.branches[branch_id] = branch
        project.endpoints[endpoint.id] = endpoint
        self.projects[project.id] = project
        secret = role.password

        def create_timeline() -> None:
            server.copy_of_template(self._template())
            server.start()
            server.execute(sql.SQL("CREATE ROLE neon_superuser NOLOGIN CREATEDB CREATEROLE"))
            self._create_role(server, role_name, secret)
            self._create_database(server, database_name, role_name)
            server.mark_history()

        ops = [
            new_operation(
                project,
                "create_timeline",
                branch_id=branch_id,
                work=create_timeline,
                done=lambda: self._ready(branch),
            ),
            new_operation(
                project,
                "start_compute",
                branch_id=branch_id,
                endpoint_id=endpoint.id,
                done=lambda: self._active(endpoint),
            ),
        ]
        self.runner.submit(ops)
        return Answer(
            201,
            {
                "project": project.to_json(),
                "connection_uris": self._connection_uris(project, branch),
                "roles": [role.to_json(with_password=True)],
                "databases": [database.to_json()],
                "operations": [op.to_json() for op in ops],
                "branch": branch.to_json(),
                "endpoints": [endpoint.to_json()],
            },
        )

    @staticmethod
    def _ready(branch: Branch) -> None:
        branch.current_state = "ready"
        branch.state_changed_at = now()

    @staticmethod
    def _active(endpoint: Endpoint) -> None:
        endpoint.current_state = "active"

    def listProjects(self, request: Request) -> Answer:
        query = request.query
        if query.get("recoverable"):
            return Answer(200, {"projects": [], "applications": {}, "integrations": {}})
        projects = sorted(self.projects.values(), key=lambda p: (p.created_at, p.id))
        search = query.get("search", "").lower()
        if search:
            projects = [p for p in projects if search in p.name.lower() or search in p.id]
        if "org_id" in query:
            projects = [p for p in projects if p.org_id == query["org_id"]]
        cursor = query.get("cursor")
        if cursor:
            ids = [p.id for p in projects]
            if cursor not in ids:
                raise bad_request(f"cursor {cursor!r} is not one this API answered")
            projects = projects[ids.index(cursor) + 1 :]
        page = projects[: query.get("limit", 10)]
        body: dict[str, Any] = {
            "projects": [p.list_item() for p in page],
            "applications": {},
            "integrations": {},
        }
        if page:
            body["pagination"] = {"cursor": page[-1].id}
        return Answer(200, body)

    def getProject(self, request: Request) -> Answer:
        return Answer(200, {"project": self._project(request).to_json()})

    def updateProject(self, request: Request) -> Answer:
        project = self._mutable(request)
        fields = request.body["project"]
        if "default_endpoint_settings" in fields:
            self._compute({}, defaults=fields["default_endpoint_settings"])
        for key in ("name", "history_retention_seconds", "settings", "default_endpoint_settings"):
            if key in fields:
                setattr(project, key, fields[key])
        project.updated_at = now()
        return Answer(200, {"project": project.to_json(), "operations": []})

    def deleteProject(self, request: Request) -> Answer:
        project = self._mutable(request)
        del self.projects[project.id]
        servers = [branch.server for branch in project.branches.values()]
        folder = self.folder / project.id

        def stop() -> None:
            import shutil

            for server in servers:
                server.remove()
            shutil.rmtree(folder, ignore_errors=True)

        return Answer(200, {"project": project.to_json()}, after=stop)

    # -- branches ------------------------------------------------------------------------------------------

    def createProjectBranch(self, request: Request) -> Answer:
        project = self._mutable(request)
        body = request.body or {}
        fields = body.get("branch", {})
        if fields.get("init_source", "parent-data") != "parent-data":
            raise bad_request("the FAKE Neon API makes branches with init_source parent-data only")
        if "parent_lsn" in fields:
            raise bad_request("the FAKE Neon API does not branch at a parent_lsn (parent_timestamp only)")
        parent = (
            self._branch(project, fields["parent_id"])
            if fields.get("parent_id")
            else project.default_branch()
        )
        moment = now()
        parent_timestamp = None
        if "parent_timestamp" in fields:
            parent_timestamp = parse_time(fields["parent_timestamp"])
            if parent_timestamp < int(parent.created_at):
                raise bad_request(
                    f"parent_timestamp {fields['parent_timestamp']} is before the parent branch "
                    f"{parent.id} was created ({iso(parent.created_at)})"
                )
            if parent_timestamp > moment + CLOCK_SKEW:
                raise bad_request(f"parent_timestamp {fields['parent_timestamp']} is in the future")
        branch_id = resource_id("br")
        name = fields.get("name", branch_id)
        if any(b.name == name for b in project.branches.values()):
            raise conflict(f"branch with name {name!r} already exists")
        endpoints_fields = body.get("endpoints", [])
        if sum(1 for e in endpoints_fields if e["type"] == "read_write") > 1:
            raise bad_request("a branch may have one read_write endpoint only")
        computes = [
            (e, self._compute(e, defaults=project.default_endpoint_settings)) for e in endpoints_fields
        ]
        server = BranchServer(self.folder / project.id / branch_id, self.user)
        branch = Branch(
            id=branch_id,
            project_id=project.id,
            name=name,
            server=server,
            created_at=moment,
            updated_at=moment,
            parent_id=parent.id,
            parent_timestamp=parent_timestamp,
            protected=fields.get("protected", False),
            expires_at=fields.get("expires_at"),
        )
        # a child holds its parent's roles (with their passwords) and databases, as on Neon
        for role in parent.roles.values():
            branch.roles[role.name] = Role(
                role.name, branch_id, role.password, moment, moment, role.protected
            )
        for database in parent.databases.values():
            branch.databases[database.name] = Database(
                self._new_database_id(), database.name, database.owner_name, branch_id, moment, moment
            )
        endpoints = []
        for options, (low, high, suspend) in computes:
            endpoint = Endpoint(
                id=resource_id("ep"),
                project_id=project.id,
                branch_id=branch_id,
                type=options["type"],
                autoscaling_limit_min_cu=low,
                autoscaling_limit_max_cu=high,
                suspend_timeout_seconds=suspend,
                created_at=moment,
                updated_at=moment,
                provisioner=options.get("provisioner", "k8s-neonvm"),
                settings=options.get("settings", {"pg_settings": {}}),
            )
            endpoints.append(endpoint)
        project.branches[branch_id] = branch
        for endpoint in endpoints:
            project.endpoints[endpoint.id] = endpoint
        if "annotation_value" in body:
            self.annotations[branch_id] = dict(body["annotation_value"])
        parent_server = parent.server

        def create_branch() -> None:
            branch.parent_lsn = server.copy_at(parent_server, parent_timestamp)

        ops = [
            new_operation(
                project,
                "create_branch",
                branch_id=branch_id,
                work=create_branch,
                done=lambda: self._ready(branch),
            )
        ]
        for endpoint in endpoints:
            ops.append(
                new_operation(
                    project,
                    "start_compute",
                    branch_id=branch_id,
                    endpoint_id=endpoint.id,
                    done=lambda endpoint=endpoint: self._active(endpoint),
                )
            )
        self.runner.submit(ops)
        return Answer(
            201,
            {
                "branch": branch.to_json(),
                "endpoints": [e.to_json() for e in endpoints],
                "operations": [op.to_json() for op in ops],
                "roles": [r.to_json() for r in branch.roles.values()],
                "databases": [d.to_json() for d in branch.databases.values()],
                "connection_uris": self._connection_uris(project, branch),
            },
        )

    def _annotation(self, branch: Branch) -> dict[str, Any]:
        return {
            "object": {"type": "console/branch", "id": branch.id},
            "value": self.annotations.get(branch.id, {}),
            "created_at": iso(branch.created_at),
            "updated_at": iso(branch.updated_at),
        }

    def listProjectBranches(self, request: Request) -> Answer:
        project = self._project(request)
        query = request.query
        branches = list(project.branches.values())
        search = query.get("search", "").lower()
        if search:
            branches = [b for b in branches if search in b.name.lower() or search in b.id]
        sort_by = query.get("sort_by", "updated_at")
        order = query.get("sort_order", "desc")
        branches.sort(key=lambda b: (getattr(b, sort_by), b.id), reverse=order == "desc")
        cursor = query.get("cursor")
        if cursor:
            ids = [b.id for b in branches]
            if cursor not in ids:
                raise bad_request(f"cursor {cursor!r} is not one this API answered")
            branches = branches[ids.index(cursor) + 1 :]
        pagination: dict[str, Any] = {"sort_by": sort_by, "sort_order": order}
        if "limit" in query and len(branches) > query["limit"]:
            branches = branches[: query["limit"]]
            pagination["next"] = branches[-1].id
        return Answer(
            200,
            {
                "branches": [b.to_json() for b in branches],
                "annotations": {b.id: self._annotation(b) for b in branches if b.id in self.annotations},
                "pagination": pagination,
            },
        )

    def countProjectBranches(self, request: Request) -> Answer:
        project = self._project(request)
        search = request.query.get("search", "").lower()
        count = sum(1 for b in project.branches.values() if not search or search in b.name.lower())
        return Answer(200, {"count": count})

    def getProjectBranch(self, request: Request) -> Answer:
        project = self._project(request)
        branch = self._branch(project, request.path["branch_id"])
        return Answer(200, {"branch": branch.to_json(), "annotation": self._annotation(branch)})

    def updateProjectBranch(self, request: Request) -> Answer:
        project = self._mutable(request)
        branch = self._branch(project, request.path["branch_id"])
        fields = request.body["branch"]
        name = fields.get("name")
        if name is not None and name != branch.name:
            if any(b.name == name for b in project.branches.values()):
                raise conflict(f"branch with name {name!r} already exists")
            branch.name = name
        if "protected" in fields:
            branch.protected = fields["protected"]
        if "expires_at" in fields:
            branch.expires_at = fields["expires_at"]
        branch.updated_at = now()
        return Answer(200, {"branch": branch.to_json(), "operations": []})

    def deleteProjectBranch(self, request: Request) -> Answer:
        project = self._mutable(request)
        branch = project.branches.get(request.path["branch_id"])
        if branch is None:
            return Answer(204, None)
        if branch.default:
            raise bad_request(f"branch {branch.id} is the project's default branch and cannot be deleted")
        if branch.protected:
            raise bad_request(f"branch {branch.id} is protected and cannot be deleted")
        children = sorted(b.id for b in project.branches.values() if b.parent_id == branch.id)
        if children:
            raise bad_request(
                f"branch {branch.id} has child branches ({', '.join(children)}) and cannot be deleted"
            )
        endpoints = [e for e in project.endpoints.values() if e.branch_id == branch.id]
        for endpoint in endpoints:
            del project.endpoints[endpoint.id]
        del project.branches[branch.id]
        self.annotations.pop(branch.id, None)
        server = branch.server
        ops = [
            new_operation(project, "suspend_compute", branch_id=branch.id, endpoint_id=endpoint.id)
            for endpoint in endpoints
        ]
        ops.append(new_operation(project, "delete_timeline", branch_id=branch.id, work=server.remove))
        self.runner.submit(ops)
        return Answer(200, {"branch": branch.to_json(), "operations": [op.to_json() for op in ops]})

    # -- endpoints -----------------------------------------------------------------------------------------

    def listProjectBranchEndpoints(self, request: Request) -> Answer:
        project = self._project(request)
        branch = self._branch(project, request.path["branch_id"])
        endpoints = [e.to_json() for e in project.endpoints.values() if e.branch_id == branch.id]
        return Answer(200, {"endpoints": endpoints})

    def listProjectEndpoints(self, request: Request) -> Answer:
        project = self._project(request)
        return Answer(200, {"endpoints": [e.to_json() for e in project.endpoints.values()]})

    def getProjectEndpoint(self, request: Request) -> Answer:
        project = self._project(request)
        return Answer(200, {"endpoint": self._endpoint(project, request.path["endpoint_id"]).to_json()})

    def createProjectEndpoint(self, request: Request) -> Answer:
        project = self._mutable(request)
        fields = request.body["endpoint"]
        branch = self._branch(project, fields["branch_id"])
        if fields.get("region_id", project.region_id) != project.region_id:
            raise bad_request(f"region_id must be the project's ({project.region_id})")
        if fields["type"] == "read_write" and self._read_write(project, branch) is not None:
            raise conflict(f"branch {branch.id} already has a read_write endpoint")
        low, high, suspend = self._compute(fields, defaults=project.default_endpoint_settings)
        moment = now()
        endpoint = Endpoint(
            id=resource_id("ep"),
            project_id=project.id,
            branch_id=branch.id,
            type=fields["type"],
            autoscaling_limit_min_cu=low,
            autoscaling_limit_max_cu=high,
            suspend_timeout_seconds=suspend,
            created_at=moment,
            updated_at=moment,
            disabled=fields.get("disabled", False),
            name=fields.get("name"),
            provisioner=fields.get("provisioner", "k8s-neonvm"),
            settings=fields.get("settings", {"pg_settings": {}}),
        )
        project.endpoints[endpoint.id] = endpoint
        op = new_operation(
            project,
            "start_compute",
            branch_id=branch.id,
            endpoint_id=endpoint.id,
            done=lambda: self._active(endpoint),
        )
        self.runner.submit([op])
        return Answer(201, {"endpoint": endpoint.to_json(), "operations": [op.to_json()]})

    def updateProjectEndpoint(self, request: Request) -> Answer:
        project = self._mutable(request)
        endpoint = self._endpoint(project, request.path["endpoint_id"])
        fields = request.body["endpoint"]
        current = {
            "autoscaling_limit_min_cu": endpoint.autoscaling_limit_min_cu,
            "autoscaling_limit_max_cu": endpoint.autoscaling_limit_max_cu,
            "suspend_timeout_seconds": endpoint.suspend_timeout_seconds,
        }
        low, high, suspend = self._compute(fields, defaults=current)
        if "branch_id" in fields and fields["branch_id"] != endpoint.branch_id:
            target = self._branch(project, fields["branch_id"])
            if endpoint.type == "read_write" and self._read_write(project, target) is not None:
                raise conflict(f"branch {target.id} already has a read_write endpoint")
            endpoint.branch_id = target.id
        endpoint.autoscaling_limit_min_cu = low
        endpoint.autoscaling_limit_max_cu = high
        endpoint.suspend_timeout_seconds = suspend
        for key in ("disabled", "name", "provisioner", "settings"):
            if key in fields:
                setattr(endpoint, key, fields[key])
        endpoint.updated_at = now()
        op = new_operation(project, "apply_config", branch_id=endpoint.branch_id, endpoint_id=endpoint.id)
        self.runner.submit([op])
        return Answer(200, {"endpoint": endpoint.to_json(), "operations": [op.to_json()]})

    def deleteProjectEndpoint(self, request: Request) -> Answer:
        project = self._mutable(request)
        endpoint = project.endpoints.pop(request.path["endpoint_id"], None)
        if endpoint is None:
            return Answer(204, None)
        op = new_operation(project, "suspend_compute", branch_id=endpoint.branch_id, endpoint_id=endpoint.id)
        self.runner.submit([op])
        return Answer(200, {"endpoint": endpoint.to_json(), "operations": [op.to_json()]})

    # -- databases -----------------------------------------------------------------------------------------

    def _config_op(self, project: Project, branch: Branch, work: Callable[[], None]) -> Operation:
        return new_operation(
            project,
            "apply_config",
            branch_id=branch.id,
            endpoint_id=self._endpoint_id(project, branch),
            work=work,
        )

    def listProjectBranchDatabases(self, request: Request) -> Answer:
        project = self._project(request)
        branch = self._branch(project, request.path["branch_id"])
        return Answer(200, {"databases": [d.to_json() for d in branch.databases.values()]})

    def getProjectBranchDatabase(self, request: Request) -> Answer:
        project = self._project(request)
        branch = self._branch(project, request.path["branch_id"])
        database = branch.databases.get(request.path["database_name"])
        if database is None:
            raise not_found(f"database {request.path['database_name']} not found")
        return Answer(200, {"database": database.to_json()})

    def createProjectBranchDatabase(self, request: Request) -> Answer:
        project = self._mutable(request)
        branch = self._branch(project, request.path["branch_id"])
        fields = request.body["database"]
        name, owner = fields["name"], fields["owner_name"]
        self._database_name(name)
        if name in branch.databases:
            raise conflict(f"database {name!r} already exists")
        if owner not in branch.roles:
            raise bad_request(f"role {owner!r} does not exist on branch {branch.id}")
        moment = now()
        database = Database(self._new_database_id(), name, owner, branch.id, moment, moment)
        branch.databases[name] = database
        server = branch.server
        op = self._config_op(project, branch, lambda: self._create_database(server, name, owner))
        self.runner.submit([op])
        return Answer(201, {"database": database.to_json(), "operations": [op.to_json()]})

    def updateProjectBranchDatabase(self, request: Request) -> Answer:
        project = self._mutable(request)
        branch = self._branch(project, request.path["branch_id"])
        database = branch.databases.get(request.path["database_name"])
        if database is None:
            raise not_found(f"database {request.path['database_name']} not found")
        fields = request.body["database"]
        old = database.name
        name = fields.get("name", old)
        owner = fields.get("owner_name", database.owner_name)
        if name != old:
            self._database_name(name)
            if name in branch.databases:
                raise conflict(f"database {name!r} already exists")
        if owner not in branch.roles:
            raise bad_request(f"role {owner!r} does not exist on branch {branch.id}")
        server = branch.server
        statements = []
        if name != old:
            statements.append(
                sql.SQL("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = {}").format(
                    sql.Literal(old)
                )
            )
            statements.append(
                sql.SQL("ALTER DATABASE {} RENAME TO {}").format(sql.Identifier(old), sql.Identifier(name))
            )
        if owner != database.owner_name:
            statements.append(
                sql.SQL("ALTER DATABASE {} OWNER TO {}").format(sql.Identifier(name), sql.Identifier(owner))
            )
        del branch.databases[old]
        database.name, database.owner_name, database.updated_at = name, owner, now()
        branch.databases[name] = database
        op = self._config_op(project, branch, lambda: server.execute(*statements))
        self.runner.submit([op])
        return Answer(200, {"database": database.to_json(), "operations": [op.to_json()]})

    def deleteProjectBranchDatabase(self, request: Request) -> Answer:
        project = self._mutable(request)
        branch = self._branch(project, request.path["branch_id"])
        database = branch.databases.pop(request.path["database_name"], None)
        if database is None:
            return Answer(204, None)
        server = branch.server
        statement = sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(database.name))
        op = self._config_op(project, branch, lambda: server.execute(statement))
        self.runner.submit([op])
        return Answer(200, {"database": database.to_json(), "operations": [op.to_json()]})

    # -- roles ---------------------------------------------------------------------------------------------

    def _role(self, branch: Branch, name: str) -> Role:
        role = branch.roles.get(name)
        if role is None:
            raise not_found(f"role {name} not found")
        return role

    def listProjectBranchRoles(self, request: Request) -> Answer:
        project = self._project(request)
        branch = self._branch(project, request.path["branch_id"])
        return Answer(200, {"roles": [r.to_json() for r in branch.roles.values()]})

    def getProjectBranchRole(self, request: Request) -> Answer:
        project = self._project(request)
        branch = self._branch(project, request.path["branch_id"])
        return Answer(200, {"role": self._role(branch, request.path["role_name"]).to_json()})

    def createProjectBranchRole(self, request: Request) -> Answer:
        project = self._mutable(request)
        branch = self._branch(project, request.path["branch_id"])
        fields = request.body["role"]
        name = fields["name"]
        self._role_name(name)
        if name in branch.roles:
            raise conflict(f"role {name!r} already exists")
        no_login = fields.get("no_login", False)
        moment = now()
        role = Role(name, branch.id, "" if no_login else password(), moment, moment)
        branch.roles[name] = role
        server = branch.server
        secret = None if no_login else role.password
        op = self._config_op(project, branch, lambda: self._create_role(server, name, secret))
        self.runner.submit([op])
        answer = role.to_json(with_password=not no_login)
        if no_login:
            answer["authentication_method"] = "no_login"
        return Answer(201, {"role": answer, "operations": [op.to_json()]})

    def deleteProjectBranchRole(self, request: Request) -> Answer:
        project = self._mutable(request)
        branch = self._branch(project, request.path["branch_id"])
        role = branch.roles.get(request.path["role_name"])
        if role is None:
            return Answer(204, None)
        owned = sorted(d.name for d in branch.databases.values() if d.owner_name == role.name)
        if owned:
            raise bad_request(
                f"role {role.name!r} owns databases ({', '.join(owned)}): delete them or change their "
                "owner first"
            )
        del branch.roles[role.name]
        server = branch.server
        databases = [d.name for d in branch.databases.values()]
        name = role.name

        def drop() -> None:
            # as Neon's compute does: the objects the role owns go to each database's owner, then it goes
            with server.connect() as connection:
                owners = dict(
                    connection.execute(
                        "SELECT datname, pg_get_userbyid(datdba) FROM pg_database WHERE datname = ANY(%s)",
                        (databases,),
                    ).fetchall()
                )
            for database, owner in owners.items():
                if owner != name:
                    server.execute(
                        sql.SQL("REASSIGN OWNED BY {} TO {}").format(
                            sql.Identifier(name), sql.Identifier(owner)
                        ),
                        sql.SQL("DROP OWNED BY {}").format(sql.Identifier(name)),
                        database=database,
                    )
            server.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(name)))

        op = self._config_op(project, branch, drop)
        self.runner.submit([op])
        return Answer(200, {"role": role.to_json(), "operations": [op.to_json()]})

    def getProjectBranchRolePassword(self, request: Request) -> Answer:
        project = self._project(request)
        branch = self._branch(project, request.path["branch_id"])
        role = self._role(branch, request.path["role_name"])
        if not project.store_passwords:
            raise NeonError(412, "PRECONDITION_FAILED", "storing passwords is disabled for this project")
        if not role.password:
            raise not_found(f"role {role.name} has no password (NOLOGIN)")
        return Answer(200, {"password": role.password})

    def resetProjectBranchRolePassword(self, request: Request) -> Answer:
        project = self._mutable(request)
        branch = self._branch(project, request.path["branch_id"])
        role = self._role(branch, request.path["role_name"])
        if not role.password:
            raise bad_request(f"role {role.name} cannot log in (NOLOGIN): it has no password to reset")
        role.password = password()
        role.updated_at = now()
        server = branch.server
        # the old password keeps working until the operation finishes, as Neon documents
        statement = sql.SQL("ALTER ROLE {} WITH PASSWORD {}").format(
            sql.Identifier(role.name), sql.Literal(role.password)
        )
        op = self._config_op(project, branch, lambda: server.execute(statement))
        self.runner.submit([op])
        return Answer(200, {"role": role.to_json(with_password=True), "operations": [op.to_json()]})

    # -- operations and connection URIs ----------------------------------------------------------------------

    def listProjectOperations(self, request: Request) -> Answer:
        project = self._project(request)
        ops = sorted(project.operations, key=lambda o: o.created_at, reverse=True)
        cursor = request.query.get("cursor")
        if cursor:
            ids = [op.id for op in ops]
            if cursor not in ids:
                raise bad_request(f"cursor {cursor!r} is not one this API answered")
            ops = ops[ids.index(cursor) + 1 :]
        if "limit" in request.query:
            ops = ops[: request.query["limit"]]
        body: dict[str, Any] = {"operations": [op.to_json() for op in ops]}
        if ops:
            body["pagination"] = {"cursor": ops[-1].id}
        return Answer(200, body)

    def getProjectOperation(self, request: Request) -> Answer:
        project = self._project(request)
        for op in project.operations:
            if op.id == request.path["operation_id"]:
                return Answer(200, {"operation": op.to_json()})
        raise not_found(f"operation {request.path['operation_id']} not found")

    def getConnectionURI(self, request: Request) -> Answer:
        project = self._project(request)
        query = request.query
        branch = (
            self._branch(project, query["branch_id"]) if "branch_id" in query else project.default_branch()
        )
        if "endpoint_id" in query:
            endpoint = self._endpoint(project, query["endpoint_id"])
            if endpoint.branch_id != branch.id:
                raise bad_request(f"endpoint {endpoint.id} is not an endpoint of branch {branch.id}")
        else:
            found = self._read_write(project, branch)
            if found is None:
                raise not_found(f"branch {branch.id} has no read_write endpoint")
            endpoint = found
        role = self._role(branch, query["role_name"])
        if not role.password:
            raise bad_request(f"role {role.name} cannot log in (NOLOGIN)")
        if query["database_name"] not in branch.databases:
            raise not_found(f"database {query['database_name']} not found")
        # pooled == direct: the fake has no PgBouncer
        return Answer(200, {"uri": self._uri(project, branch, endpoint, role, query["database_name"])})
