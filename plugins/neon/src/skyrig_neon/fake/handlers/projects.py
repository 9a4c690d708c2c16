"""The FAKE Neon API's projects, operations and connection URIs (:mod:`skyrig_neon.fake.handlers`)."""

from __future__ import annotations

from typing import Any

from psycopg import sql

from skyrig_neon.fake.handlers.base import Answer, Base
from skyrig_neon.fake.postgres import BranchServer
from skyrig_neon.fake.spec import Request, bad_request, not_found
from skyrig_neon.fake.store import (
    REGION,
    Branch,
    Database,
    Endpoint,
    Project,
    Role,
    new_operation,
    now,
    password,
    project_id,
    resource_id,
)


class ProjectHandlers(Base):
    """createProject ... deleteProject, listProjectOperations, getProjectOperation, getConnectionURI."""

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
