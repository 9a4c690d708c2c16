"""The FAKE Neon API's databases and roles (:mod:`skyrig_neon.fake.handlers`): real ones, made on the
branch's server."""

from __future__ import annotations

from psycopg import sql

from skyrig_neon.fake.handlers.base import Answer, Base
from skyrig_neon.fake.spec import NeonError, Request, bad_request, conflict, not_found
from skyrig_neon.fake.store import (
    Database,
    Role,
    now,
    password,
)


class DataHandlers(Base):
    """The databases' and roles' operations, passwords included."""

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
