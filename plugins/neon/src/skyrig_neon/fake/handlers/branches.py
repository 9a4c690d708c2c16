"""The FAKE Neon API's branches and endpoints (:mod:`skyrig_neon.fake.handlers`)."""

from __future__ import annotations

from typing import Any

from skyrig_neon.fake.handlers.base import CLOCK_SKEW, Answer, Base
from skyrig_neon.fake.postgres import BranchServer
from skyrig_neon.fake.spec import Request, bad_request, conflict
from skyrig_neon.fake.store import (
    Branch,
    Database,
    Endpoint,
    Role,
    iso,
    new_operation,
    now,
    parse_time,
    resource_id,
)


class BranchHandlers(Base):
    """createProjectBranch ... deleteProjectBranch, and the endpoints' operations."""

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
