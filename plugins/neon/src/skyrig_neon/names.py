"""How the Neon provider names things: the node ids of an environment's nodes and the Neon names of what
they stand for.

Every name is deterministic (the app, the environment), so that what an interrupted apply made, or what
lost state forgot, is found again by name: the project by the app's name, a branch by the environment's,
the role by the app's. The family module and the provider take their names from here, and this module
imports neither.
"""

from __future__ import annotations

import hashlib
import re

PROJECT_ID = "sql.project"
"""The app's Neon project (found by name, made if missing; never deleted)."""
BRANCH_ID = "sql.branch"
"""The environment's branch: the project's default branch in production, else a branch of its own."""
ENDPOINT_ID = "sql.endpoint"
"""The branch's read-write compute endpoint."""
ROLE_ID = "sql.role"
"""The environment's role on its branch, the owner of its databases."""

BRANCH_SEPARATOR = "--"
"""Between an environment's branch name and a branch :meth:`~skyrig_neon.NeonProvider.branch_database`
made under it: ``staging--feature-x``."""


def database_id(database: str) -> str:
    """The node id of a ``SQLDatabase``'s database (``sql.database/NAME``)."""
    return f"sql.database/{database}"


def project_name(app: str) -> str:
    """The project skyrig finds or makes for the app: the app's name."""
    return app


def branch_name(env: str) -> str:
    """An environment's branch (outside production): the environment's name."""
    return env


def child_branch_name(env_branch: str, branch: str) -> str:
    """A branch ``branch_database`` made under the environment's branch ``env_branch``."""
    return f"{env_branch}{BRANCH_SEPARATOR}{branch}"


_ROLE = re.compile(r"[^a-z0-9_]+")


def role_name(app: str) -> str:
    """The app's role (the owner of its databases): ``<app with - as _>_app``, at most 63 bytes
    (PostgreSQL's limit; a hash keeps a shortened or cleaned name unique). The same on every branch: a
    branch inherits its parent's roles, so a preview's role is its parent's, adopted."""
    wanted = app.lower().replace("-", "_") + "_app"
    cleaned = _ROLE.sub("_", wanted)
    if not cleaned[:1].isalpha():
        cleaned = "r" + cleaned
    if cleaned == wanted and len(cleaned) <= 63:
        return cleaned
    suffix = hashlib.sha256(app.encode()).hexdigest()[:6]
    return cleaned[: 63 - len(suffix) - 5].rstrip("_") + f"_{suffix}_app"


def password_reference(project: str, branch: str, role: str) -> str:
    """The runtime config's reference to a role's password (never its value): ``neon:PROJECT/BRANCH/ROLE``;
    the data plane reveals the password through Neon's API when it connects."""
    return f"neon:{project}/{branch}/{role}"


def parse_password_reference(reference: str) -> tuple[str, str, str]:
    """(project, branch, role) of a :func:`password_reference`."""
    scheme, _, rest = reference.partition(":")
    parts = rest.split("/")
    if scheme != "neon" or len(parts) != 3 or not all(parts):
        raise LookupError(f"{reference!r} is not a Neon password reference (neon:PROJECT/BRANCH/ROLE)")
    return parts[0], parts[1], parts[2]
