"""SQL on Neon: the app's project, the environment's branch with its read-write compute endpoint, the app's
role on the branch, and a database per ``SQLDatabase`` owned by that role, migrated from the applying
machine.

- The project (:class:`ProjectType`) is the app's, shared by all its environments: found by its name (the
  app's) or the configured ``project_id``, made if missing, and never deleted (a destroy forgets it).
- The branch (:class:`BranchType`): in production, the project's default branch, protected from deletion;
  elsewhere a branch named after the environment, made from the branch of the environment ``branch_from``
  names (else from the default branch) as it is now, or as it was at ``branch_at``. A branch holds its
  parent's data as of then, and its roles and databases: they are adopted, and only the migrations the
  parent lacks are applied to them. Outside production the endpoint, the role and the databases name the
  branch's parent too: a change of ``branch_from`` replaces them with the branch, in the same apply.
- The endpoint (:class:`EndpointType`): the branch's read-write compute; its autoscaling limits and suspend
  timeout are user-tunable (changed in Neon's console, adopted, never reverted).
- The role (:class:`RoleType`) owns the databases (:class:`DatabaseType`). Its password stays in Neon: the
  runtime config names it by reference (``neon:PROJECT/BRANCH/ROLE``), the data plane reveals it when it
  connects, and a migration reveals it for the applying machine's connection, in memory only.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from typing import Any

from skyrig.provider import (
    CloudNodeType,
    Context,
    Node,
    NotFound,
    Observed,
    ProviderError,
    Scope,
    TransientError,
    UserError,
    migrate,
    plan_of,
    resolve,
)
from skyrig_neon import names
from skyrig_neon.api import Conflict, Json, NeonClient

# -- where the project and the branch are -----------------------------------------------------------------


def _client(context: Context) -> NeonClient:
    return context.client


def find_project(context: Context) -> Json | None:
    """The app's project: the configured one, else the one named after the app; None if there is none."""
    client, settings = _client(context), context.settings
    if settings.project_id:
        try:
            return client.project(settings.project_id)
        except NotFound:
            return None
    found = client.projects_named(names.project_name(context.app), settings.org_id)
    if len(found) > 1:
        ids = ", ".join(sorted(p["id"] for p in found))
        raise ProviderError(
            f"Neon has several projects named {context.app!r} ({ids}): set project_id in the neon "
            f"settings of environment {context.environment.name!r} to the one to use"
        )
    return found[0] if found else None


def project_id(context: Context) -> str | None:
    """The project's id: remembered in this command, recorded in state, or found; None if none exists."""
    client = _client(context)
    known = client.known.get(names.PROJECT_ID) or context.recorded.get(names.PROJECT_ID)
    if known:
        return known
    found = find_project(context)
    if found is None:
        return None
    client.remember(names.PROJECT_ID, found["id"])
    return found["id"]


def required_project(context: Context) -> str:
    """The project's id, or a :class:`TransientError` (it is being made, or was deleted outside skyrig)."""
    return resolve(context, names.PROJECT_ID, lambda: project_id(context))


def production(context: Context) -> bool:
    return context.environment.type == "production"


def environment_branch(context: Context, branches: list[Json]) -> Json | None:
    """The environment's branch among ``branches``: the default one in production, else the one named
    after the environment (never the default)."""
    if production(context):
        return next((b for b in branches if b.get("default")), None)
    name = names.branch_name(context.environment.name)
    return next((b for b in branches if b.get("name") == name and not b.get("default")), None)


def branch_id(context: Context, project: str) -> str | None:
    """The environment's branch id: remembered, recorded, or found; None if it does not exist."""
    client = _client(context)
    known = client.known.get(names.BRANCH_ID) or context.recorded.get(names.BRANCH_ID)
    if known:
        return known
    found = environment_branch(context, client.branches(project))
    if found is None:
        return None
    client.remember(names.BRANCH_ID, found["id"])
    return found["id"]


def required_branch(context: Context, project: str) -> str:
    return resolve(context, names.BRANCH_ID, lambda: branch_id(context, project))


def project_and_branch(context: Context) -> tuple[str, str] | None:
    """The ids of the project and of the environment's branch (:func:`project_id`, :func:`branch_id`);
    None while either does not exist: what is on the branch is not found then."""
    project = project_id(context)
    branch = branch_id(context, project) if project else None
    return None if project is None or branch is None else (project, branch)


def _split(provider_id: str) -> tuple[str, str]:
    """(branch id, name) of a role's or database's provider id, ``BRANCH/NAME``."""
    branch, _, name = provider_id.partition("/")
    return branch, name


def parent_name(branch: Json, branches: list[Json]) -> str | None:
    """The name of ``branch``'s parent among ``branches``: None for a branch of the project's default
    branch (or the default branch itself), as the node's ``parent`` says it."""
    parent = next((b for b in branches if b["id"] == branch.get("parent_id")), None)
    return None if parent is None or parent.get("default") else parent["name"]


def parents(context: Context, project: str) -> dict[str, str | None]:
    """Branch id -> :func:`parent_name`, for every branch of the project (one list call)."""
    branches = _client(context).branches(project)
    return {b["id"]: parent_name(b, branches) for b in branches}


def parent_of(context: Context, node: Node, project: str, branch: str) -> str | None:
    """The :func:`parent_name` of ``branch``, where the node asks for its parent (outside production: see
    :func:`_with_parent`); else None, and no call."""
    return parents(context, project).get(branch) if "parent" in node.properties else None


def _with_parent(node: Node, properties: dict[str, Any], parent: str | None) -> dict[str, Any]:
    """``properties`` with the parent of the branch the resource is on, where the node asks for one (outside
    production): a resource on a branch made from another parent is replaced with the branch."""
    if "parent" in node.properties:
        properties["parent"] = parent
    return properties


# -- the project ----------------------------------------------------------------------------------------


class ProjectType(CloudNodeType):
    """The app's Neon project. Its region and PostgreSQL version are chosen when it is made (Neon cannot
    change them), so they are never compared afterwards. A destroy forgets it and never deletes it: the
    app's other environments have their branches in it."""

    type = "neon.project"
    identity = frozenset({"name", "project_id", "region", "pg_version"})

    def _observe(self, node: Node, project: Json) -> Observed:
        properties: dict[str, Any] = {
            "region": project.get("region_id"),
            "pg_version": project.get("pg_version"),
        }
        if node.properties.get("name") is not None:
            properties["name"] = project.get("name")
        outputs = {"id": project["id"], "name": project.get("name"), "region": project.get("region_id")}
        return self.observed(node, project["id"], properties, outputs)

    def _read(self, context: Context, node: Node, provider_id: str) -> Observed | None:
        return self._observe(node, _client(context).project(provider_id))

    def _find(self, context: Context, node: Node) -> Observed | None:
        found = find_project(context)
        return None if found is None else self._observe(node, found)

    def _create(self, context: Context, node: Node) -> Observed:
        p, settings = node.properties, context.settings
        if p.get("project_id"):
            # a ProviderError: the engine shows its message as it is
            raise ProviderError(
                f"Neon has no project {p['project_id']!r} (project_id in the neon settings of "
                f"environment {context.environment.name!r}), or the API key cannot see it: create it in "
                "Neon's console, or remove project_id to let skyrig make one named after the app"
            )
        body: Json = {"name": p["name"], "region_id": p["region"], "pg_version": p["pg_version"]}
        if settings.org_id:
            body["org_id"] = settings.org_id
        project = _client(context).create_project({"project": body}, f"Neon project {p['name']}")
        return self._observe(node, project)

    def _update(self, context: Context, node: Node, provider_id: str, changes: Mapping[str, Any]) -> Observed:
        return self._read(context, node, provider_id)  # type: ignore[return-value]

    def _delete(self, context: Context, node: Node, provider_id: str) -> None:
        """Nothing: the project holds every environment's branch (delete it in Neon's console, if ever)."""


# -- the branch -------------------------------------------------------------------------------------------


class BranchType(CloudNodeType):
    """The environment's branch. Outside production it is made from its parent's (``parent``: the
    environment ``branch_from`` names, or None for the project's default branch), which cannot change in
    place; a person may protect it in the console (a destroy with ``--include-data`` lifts that first). In
    production it is the project's default branch, protected (an invariant: restored if lifted); Neon never
    deletes it, so a destroy forgets it (``--include-data`` deletes the databases on it)."""

    type = "neon.branch"
    stateful = True
    replace_on = frozenset({"parent"})
    invariant = frozenset({"protected"})
    identity = frozenset({"name", "default"})

    def _observe(self, node: Node, branch: Json, branches: list[Json]) -> Observed:
        properties: dict[str, Any] = {}
        if "protected" in node.properties:  # production's: guaranteed (elsewhere a person's choice)
            properties["protected"] = bool(branch.get("protected"))
        if node.properties.get("default"):
            properties["default"] = bool(branch.get("default"))
        else:
            properties["name"] = branch["name"]
            properties["parent"] = parent_name(branch, branches)
        outputs = {"id": branch["id"], "name": branch["name"], "project_id": branch.get("project_id")}
        return self.observed(node, branch["id"], properties, outputs)

    def _read_many(self, context: Context, nodes: list[tuple[Node, str]]) -> dict[str, Observed | None]:
        project = required_project(context)
        branches = _client(context).branches(project)
        by_id = {b["id"]: b for b in branches}
        return {
            node.id: self._observe(node, by_id[pid], branches) if pid in by_id else None
            for node, pid in nodes
        }

    def _read(self, context: Context, node: Node, provider_id: str) -> Observed | None:
        return self._read_many(context, [(node, provider_id)])[node.id]

    def _find(self, context: Context, node: Node) -> Observed | None:
        project = project_id(context)
        if project is None:
            return None
        branches = _client(context).branches(project)
        found = environment_branch(context, branches)
        return None if found is None else self._observe(node, found, branches)

    def _create(self, context: Context, node: Node) -> Observed:
        p = node.properties
        client = _client(context)
        project = required_project(context)
        branches = client.branches(project)
        if p.get("default"):  # the project's default branch, made with the project: protected now
            default = environment_branch(context, branches)
            if default is None:
                raise TransientError(f"the default branch of Neon project {project} is not visible yet")
            found = self._observe(node, default, branches)
            stale = {k: v for k, v in p.items() if found.properties.get(k) != v and k in self.invariant}
            return self._update(context, node, default["id"], stale) if stale else found
        branch: Json = {"name": p["name"]}
        if p.get("parent"):
            parent = next((b for b in branches if b.get("name") == p["parent"]), None)
            if parent is None:
                raise ProviderError(
                    f"branch_from names environment {p['parent']!r}, whose branch does not exist in Neon "
                    f"project {project}: apply that environment first (skyrig apply --env {p['parent']})"
                )
            branch["parent_id"] = parent["id"]
        if p.get("at"):
            branch["parent_timestamp"] = p["at"]
        try:
            made = client.create_branch(project, {"branch": branch}, f"Neon branch {p['name']}")["branch"]
        except Conflict:  # made by an earlier create whose answer was lost
            found = self._find(context, node)
            if found is None:
                raise ProviderError(
                    f"Neon refuses a branch named {p['name']!r} in project {project}, and no branch of "
                    "that name can be adopted (is it the project's default branch?): rename the environment"
                ) from None
            stale = {k: v for k, v in p.items() if found.properties.get(k) != v and k in self.invariant}
            return self._update(context, node, found.provider_id, stale) if stale else found
        return self._observe(node, made, [*branches, made])

    def _update(self, context: Context, node: Node, provider_id: str, changes: Mapping[str, Any]) -> Observed:
        project = required_project(context)
        if "protected" in changes:
            _client(context).update_branch(
                project, provider_id, {"protected": bool(changes["protected"])}, f"Neon branch {provider_id}"
            )
        return self._read(context, node, provider_id)  # type: ignore[return-value]

    def _delete(self, context: Context, node: Node, provider_id: str) -> None:
        client = _client(context)
        project = project_id(context)
        if project is None or node.properties.get("default"):
            return  # the default branch is the project's: Neon never deletes it
        branches = client.branches(project)
        mine = next((b for b in branches if b["id"] == provider_id), None)
        if mine is None or mine.get("default"):
            return
        made_here = names.child_branch_name(mine["name"], "")
        children = [b for b in branches if b.get("parent_id") == provider_id]
        others = sorted(b["name"] for b in children if not b["name"].startswith(made_here))
        if others:
            raise ProviderError(
                f"Neon branch {mine['name']} ({provider_id}) has branches of other environments: "
                f"{', '.join(others)}; destroy those environments first (Neon deletes no branch with "
                "children)"
            )
        for child in children:  # branch_database's, under this environment's branch
            with contextlib.suppress(NotFound):
                client.delete_branch(project, child["id"], f"deleting Neon branch {child['name']}")
        if mine.get("protected"):  # destroy --include-data was asked for: the protection goes first
            client.update_branch(project, provider_id, {"protected": False}, f"Neon branch {mine['name']}")
        client.delete_branch(project, provider_id, f"deleting Neon branch {mine['name']}")


# -- the endpoint ----------------------------------------------------------------------------------------

COMPUTE = ("autoscaling_limit_min_cu", "autoscaling_limit_max_cu", "suspend_timeout_seconds")


class EndpointType(CloudNodeType):
    """The branch's read-write compute endpoint, scaling between its autoscaling limits and to zero after
    its suspend timeout (each user-tunable)."""

    type = "neon.endpoint"
    tunable = frozenset(COMPUTE)
    invariant = frozenset({"type"})
    replace_on = frozenset({"parent"})

    def _observe(self, node: Node, endpoint: Json, parent: str | None) -> Observed:
        properties = {
            "type": endpoint.get("type"),
            "autoscaling_limit_min_cu": float(endpoint.get("autoscaling_limit_min_cu") or 0),
            "autoscaling_limit_max_cu": float(endpoint.get("autoscaling_limit_max_cu") or 0),
            "suspend_timeout_seconds": int(endpoint.get("suspend_timeout_seconds") or 0),
        }
        outputs = {"id": endpoint["id"], "host": endpoint.get("host"), "branch_id": endpoint.get("branch_id")}
        return self.observed(node, endpoint["id"], _with_parent(node, properties, parent), outputs)

    def _read_many(self, context: Context, nodes: list[tuple[Node, str]]) -> dict[str, Observed | None]:
        project = required_project(context)
        found = {e["id"]: e for e in _client(context).endpoints(project)}
        of = parents(context, project) if any("parent" in node.properties for node, _ in nodes) else {}
        return {
            node.id: self._observe(node, found[pid], of.get(found[pid].get("branch_id")))
            if pid in found
            else None
            for node, pid in nodes
        }

    def _read(self, context: Context, node: Node, provider_id: str) -> Observed | None:
        return self._read_many(context, [(node, provider_id)])[node.id]

    def _find(self, context: Context, node: Node) -> Observed | None:
        where = project_and_branch(context)
        if where is None:
            return None
        endpoints = _client(context).branch_endpoints(*where)
        found = next((e for e in endpoints if e.get("type") == "read_write"), None)
        if found is None:
            return None
        return self._observe(node, found, parent_of(context, node, *where))

    def _create(self, context: Context, node: Node) -> Observed:
        project = required_project(context)
        branch = required_branch(context, project)
        endpoint = {"branch_id": branch, "type": "read_write", **{k: node.properties[k] for k in COMPUTE}}
        found = self._find(context, node)  # the default branch's, made with the project
        if found is None:
            try:
                what = f"Neon endpoint of branch {branch}"
                made = _client(context).create_endpoint(project, endpoint, what)
            except Conflict:  # the branch has its read-write endpoint already: an earlier create's
                found = self._find(context, node)
                if found is None:
                    raise
            else:
                return self._observe(node, made, node.properties.get("parent"))
        stale = {k: v for k, v in node.properties.items() if found.properties.get(k) != v}
        return self._update(context, node, found.provider_id, stale) if stale else found

    def _update(self, context: Context, node: Node, provider_id: str, changes: Mapping[str, Any]) -> Observed:
        project = required_project(context)
        wanted = {key: node.properties[key] for key in COMPUTE if key in changes}
        if wanted:
            _client(context).update_endpoint(project, provider_id, wanted, f"Neon endpoint {provider_id}")
        return self._read(context, node, provider_id)  # type: ignore[return-value]

    def _delete(self, context: Context, node: Node, provider_id: str) -> None:
        project = project_id(context)
        if project is not None:
            _client(context).delete_endpoint(project, provider_id, f"deleting Neon endpoint {provider_id}")


# -- the role ---------------------------------------------------------------------------------------------


class RoleType(CloudNodeType):
    """The app's role on the environment's branch, owner of its databases. Stateful: deleting it would
    leave the databases a destroy keeps without their owner."""

    type = "neon.role"
    stateful = True
    identity = frozenset({"name"})
    replace_on = frozenset({"parent"})

    def _observe(self, node: Node, branch: str, role: Json, parent: str | None) -> Observed:
        outputs = {"name": role["name"], "branch_id": branch}
        properties = _with_parent(node, {"name": role["name"]}, parent)
        return self.observed(node, f"{branch}/{role['name']}", properties, outputs)

    def _read(self, context: Context, node: Node, provider_id: str) -> Observed | None:
        branch, name = _split(provider_id)
        project = required_project(context)
        role = _client(context).role(project, branch, name)
        return self._observe(node, branch, role, parent_of(context, node, project, branch))

    def _find(self, context: Context, node: Node) -> Observed | None:
        where = project_and_branch(context)
        if where is None:
            return None
        project, branch = where
        role = _client(context).role(project, branch, node.properties["name"])
        return self._observe(node, branch, role, parent_of(context, node, project, branch))

    def _create(self, context: Context, node: Node) -> Observed:
        project = required_project(context)
        branch = required_branch(context, project)
        name = node.properties["name"]
        with contextlib.suppress(Conflict):  # an earlier create's, or the parent branch's: adopted
            _client(context).create_role(project, branch, name, f"Neon role {name}")
        role = _client(context).role(project, branch, name)
        return self._observe(node, branch, role, node.properties.get("parent"))

    def _update(self, context: Context, node: Node, provider_id: str, changes: Mapping[str, Any]) -> Observed:
        return self._read(context, node, provider_id)  # type: ignore[return-value]

    def _delete(self, context: Context, node: Node, provider_id: str) -> None:
        branch, name = _split(provider_id)
        project = project_id(context)
        if project is not None:
            _client(context).delete_role(project, branch, name, f"deleting Neon role {name}")


# -- the databases ---------------------------------------------------------------------------------------


def _connect(context: Context, project: str, branch: str, database: str, role: str) -> Any:
    """A psycopg connection (autocommit) to ``database`` on the branch's read-write endpoint, directly (not
    through the pooler: migrations take locks and use session state), as the role; its password revealed
    for this command only. A password that no longer works (rotated meanwhile) is revealed again once."""
    import psycopg

    client = _client(context)
    where = client.connection(project, branch, database, role, pooled=False)
    for attempt in (1, 2):
        password = client.reveal_password(project, branch, role, fresh=attempt == 2)
        try:
            return psycopg.connect(
                host=where.host,
                port=where.port,
                dbname=database,
                user=role,
                password=password,
                sslmode=where.sslmode,
                autocommit=True,
                connect_timeout=15,
            )
        except psycopg.OperationalError as error:
            if attempt == 1 and _authentication_failed(error):
                continue
            raise TransientError(
                f"cannot connect to database {database} on Neon branch {branch}: {_first_line(error)}"
            ) from None
    raise AssertionError("unreachable")


def _authentication_failed(error: Exception) -> bool:
    state = getattr(error, "sqlstate", None)
    return state in ("28P01", "28000") or "password authentication failed" in str(error)


def _first_line(error: Exception) -> str:
    return (str(error).strip().splitlines() or [type(error).__name__])[0]


def _ledger(context: Context, project: str, branch: str, database: str, role: str) -> list[list[Any]] | None:
    """The migrations applied to ``database`` (``[number, name, sha256]``), or None when it cannot be read
    (the branch has no endpoint now): the next apply migrates it then."""
    try:
        connection = _connect(context, project, branch, database, role)
    except TransientError:
        raise
    except ProviderError:  # NotFound among them: no endpoint, or no such role on the branch now
        return None
    with connection:
        exists = connection.execute("SELECT to_regclass('skyrig_migrations') IS NOT NULL").fetchone()
        if not exists or not exists[0]:
            return []
        rows = connection.execute("SELECT number, name, sha256 FROM skyrig_migrations ORDER BY number")
        return [list(row) for row in rows]


class DatabaseType(CloudNodeType):
    """A database on the environment's branch, owned by the role, with its migrations applied from the
    applying machine (in create and update, as the local provider does)."""

    type = "neon.database"
    stateful = True
    identity = frozenset({"name"})
    replace_on = frozenset({"parent"})

    def _observe(
        self, context: Context, node: Node, project: str, branch: str, database: Json, parent: str | None
    ) -> Observed:
        name = database["name"]
        role = node.properties["owner"]
        properties = {
            "name": name,
            "owner": database.get("owner_name"),
            "migrations": _ledger(context, project, branch, name, role),
            "files": node.properties.get("files", {}),  # where each migration is read from: the app's
        }
        outputs = entry(context, project, branch, name, role)
        return self.observed(node, f"{branch}/{name}", _with_parent(node, properties, parent), outputs)

    def _read(self, context: Context, node: Node, provider_id: str) -> Observed | None:
        return self._read_many(context, [(node, provider_id)])[node.id]

    def _read_many(self, context: Context, nodes: list[tuple[Node, str]]) -> dict[str, Observed | None]:
        project = required_project(context)
        of = parents(context, project) if any("parent" in node.properties for node, _ in nodes) else {}
        found: dict[str, Observed | None] = {}
        for branch in sorted({_split(pid)[0] for _, pid in nodes}):
            try:
                listed = {d["name"]: d for d in _client(context).databases(project, branch)}
            except NotFound:
                listed = {}
            for node, provider_id in nodes:
                there, name = _split(provider_id)
                if there == branch:
                    database = listed.get(name)
                    found[node.id] = (
                        None
                        if database is None
                        else self._observe(context, node, project, branch, database, of.get(branch))
                    )
        return found

    def _find(self, context: Context, node: Node) -> Observed | None:
        where = project_and_branch(context)
        if where is None:
            return None
        project, branch = where
        database = _client(context).database(project, branch, node.properties["name"])
        return self._observe(context, node, project, branch, database, parent_of(context, node, *where))

    def _create(self, context: Context, node: Node) -> Observed:
        project = required_project(context)
        branch = required_branch(context, project)
        p = node.properties
        changes: dict[str, Any] = {"migrations": p["migrations"]}
        try:
            _client(context).create_database(
                project, branch, p["name"], p["owner"], f"Neon database {p['name']}"
            )
        except Conflict:  # an earlier create's, or the parent branch's: adopted, with its owner set
            changes["owner"] = p["owner"]
        return self._update(context, node, f"{branch}/{p['name']}", changes)

    def _update(self, context: Context, node: Node, provider_id: str, changes: Mapping[str, Any]) -> Observed:
        branch, name = _split(provider_id)
        project = required_project(context)
        client = _client(context)
        p = node.properties
        if "owner" in changes and client.database(project, branch, name).get("owner_name") != p["owner"]:
            client.update_database(project, branch, name, {"owner_name": p["owner"]}, f"Neon database {name}")
        with _connect(context, project, branch, name, p["owner"]) as connection:
            migrate(connection, name, p["migrations"], p.get("files", {}), client.root)
        return self._read(context, node, provider_id)  # type: ignore[return-value]

    def _delete(self, context: Context, node: Node, provider_id: str) -> None:
        branch, name = _split(provider_id)
        project = project_id(context)
        if project is not None:
            _client(context).delete_database(project, branch, name, f"deleting Neon database {name}")

    def runtime_entry(self, node: Node, observed: Observed) -> dict[str, Any] | None:
        return {"type": self.type, **observed.outputs}


def entry(context: Context, project: str, branch: str, database: str, role: str) -> dict[str, Any]:
    """How a service reaches ``database`` on ``branch`` (the runtime config entry, of
    :mod:`skyrig.runtime.servers`' shape): through Neon's connection pooler, as ``role``, the password by
    reference only."""
    try:
        where = _client(context).connection(project, branch, database, role, pooled=True)
        host, port, sslmode = where.host, where.port, where.sslmode
    except TransientError:
        raise
    except ProviderError:  # no endpoint on the branch now (NotFound among them): the next apply makes it
        host, port, sslmode = None, 5432, "require"
    return {
        "host": host,
        "port": port,
        "database": database,
        "user": role,
        "sslmode": sslmode,
        "password": names.password_reference(project, branch, role),
        "api_url": _client(context).api_url,
    }


PROJECT = ProjectType()
BRANCH = BranchType()
ENDPOINT = EndpointType()
ROLE = RoleType()
DATABASE = DatabaseType()
TYPES = (PROJECT, BRANCH, ENDPOINT, ROLE, DATABASE)


def expand(scope: Scope) -> list[Node]:
    """The project, the branch, its endpoint, the role and a database per ``sql_database``."""
    databases = scope.of_kind("sql_database")
    if not databases:
        return []
    settings = scope.settings
    environment = scope.environment
    in_production = environment.type == "production"
    if in_production and (settings.branch_from or settings.branch_at):
        raise UserError(
            f"environment {environment.name!r} is a production environment: its branch is the Neon "
            "project's default branch, made from no other",
            f"remove branch_from and branch_at from [env.{environment.name}.neon]",
        )
    if settings.branch_from == environment.name:
        raise UserError(
            f"[env.{environment.name}.neon] branch_from names the environment itself",
            "name another environment of the app (its branch is the parent), or remove it",
        )
    project: dict[str, Any] = {
        "name": None if settings.project_id else names.project_name(scope.app),
        "project_id": settings.project_id,
        "region": settings.region,
        "pg_version": settings.pg_version,
    }
    if in_production:
        branch: dict[str, Any] = {"default": True, "protected": True}
    else:
        branch = {
            "name": names.branch_name(environment.name),
            "parent": settings.branch_from,
            "at": settings.branch_at,
        }
    # outside production, what is on the branch names its parent: made from another, it is replaced with it
    on_branch = {} if in_production else {"parent": settings.branch_from}
    endpoint = {"type": "read_write", **settings.compute(environment.type), **on_branch}
    role = names.role_name(scope.app)
    nodes = [
        scope.node(names.PROJECT_ID, PROJECT.type, project),
        scope.node(names.BRANCH_ID, BRANCH.type, branch, (names.PROJECT_ID,)),
        scope.node(names.ENDPOINT_ID, ENDPOINT.type, endpoint, (names.BRANCH_ID,)),
        scope.node(names.ROLE_ID, ROLE.type, {"name": role, **on_branch}, (names.BRANCH_ID,)),
    ]
    for database in databases:
        migrations, files = plan_of(database)
        properties = {
            "name": database.name,
            "owner": role,
            "migrations": migrations,
            "files": files,
            **on_branch,
        }
        nodes.append(
            scope.node(
                names.database_id(database.name),
                DATABASE.type,
                properties,
                (names.ENDPOINT_ID, names.ROLE_ID),
                resource=database,
            )
        )
    return nodes


# -- what the provider adds: branching, inventory --------------------------------------------------------


def branch_database(context: Context, database: str, branch: str) -> dict[str, Any]:
    """A Neon branch ``<environment's branch>--<branch>`` of the environment's branch as it is now, with a
    read-write endpoint of the environment's compute settings; the runtime config entry of ``database``
    on it (the branch holds the parent's databases and roles)."""
    client = _client(context)
    project = required_project(context)
    parent_id = required_branch(context, project)
    branches = client.branches(project)
    parent = next((b for b in branches if b["id"] == parent_id), None)
    if parent is None:
        raise ProviderError(f"the environment's Neon branch {parent_id} does not exist: apply it first")
    name = names.child_branch_name(parent["name"], branch)
    if any(b.get("name") == name for b in branches):
        raise UserError(
            f"a Neon branch named {name!r} exists already in project {project}",
            "choose another branch name, or delete that branch first",
        )
    compute = context.settings.compute(context.environment.type)
    body = {
        "branch": {"name": name, "parent_id": parent_id},
        "endpoints": [{"type": "read_write", **compute}],
    }
    made = client.create_branch(project, body, f"Neon branch {name}")["branch"]
    role = names.role_name(context.app)
    return {"type": DATABASE.type, **entry(context, project, made["id"], database, role)}


def inventory(context: Context) -> list[tuple[str, str]]:
    """What Neon holds of the environment: its branch and the branches made under it (outside production);
    in production, the role and the databases skyrig made on the default branch (owned by the role). The
    project is the app's and never listed: no destroy deletes it."""
    client = _client(context)
    project = find_project(context)
    if project is None:
        return []
    branches = client.branches(project["id"])
    mine = environment_branch(context, branches)
    if mine is None:
        return []
    if production(context):
        role = names.role_name(context.app)
        found = [
            (DATABASE.type, f"{mine['id']}/{d['name']}")
            for d in client.databases(project["id"], mine["id"])
            if d.get("owner_name") == role
        ]
        with contextlib.suppress(NotFound):
            client.role(project["id"], mine["id"], role)
            found.append((ROLE.type, f"{mine['id']}/{role}"))
        return sorted(found)
    prefix = names.child_branch_name(mine["name"], "")
    made = [b for b in branches if b.get("parent_id") == mine["id"] and b["name"].startswith(prefix)]
    return sorted((BRANCH.type, b["id"]) for b in [mine, *made])
