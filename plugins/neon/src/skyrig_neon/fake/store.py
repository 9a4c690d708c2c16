"""What the FAKE Neon API (:mod:`skyrig_neon.fake`) holds: projects, branches, endpoints, roles, databases and
operations, as Neon's API shows them (``to_json``), and the operations' runner.

Operations run asynchronously, one batch (the operations one request answered) at a time per project: each
waits ``delay`` seconds, then does its work on the branch's real server (initdb, pg_basebackup, CREATE
ROLE, ...), then is ``finished`` (or ``failed``, the rest of its batch ``cancelled``). While a batch runs, the
project is locked: another mutation answers 423.
"""

from __future__ import annotations

import datetime
import logging
import secrets
import string
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from skyrig_neon.fake.postgres import BranchServer

log = logging.getLogger(__name__)

HOST = "127.0.0.1"
REGION = "aws-us-east-2"

# fmt: off
_ADJECTIVES = (
    "aged", "autumn", "billowing", "bitter", "blue", "bold", "calm", "cool", "crimson", "damp", "dark",
    "floral", "frosty", "gentle", "green", "hidden", "icy", "late", "lively", "misty", "morning", "odd",
    "patient", "plain", "proud", "quiet", "raspy", "restless", "round", "shiny", "silent", "small",
    "snowy", "soft", "sparkling", "spring", "steep", "still", "summer", "sweet", "tiny", "wandering",
    "white", "wild", "winter", "wispy", "withered", "young",
)
_NOUNS = (
    "art", "band", "bird", "block", "boat", "bread", "breeze", "brook", "bush", "cake", "cell", "cherry",
    "cloud", "darkness", "dawn", "dew", "dream", "dust", "feather", "field", "fire", "flower", "fog",
    "forest", "frog", "frost", "glade", "grass", "haze", "hill", "lake", "leaf", "meadow", "moon",
    "mountain", "night", "paper", "pine", "pond", "rain", "river", "salad", "sea", "shadow", "sky",
    "smoke", "snow", "sound", "star", "sun", "sunset", "surf", "thunder", "tree", "union", "violet",
    "voice", "water", "wave", "wind", "wood",
)
# fmt: on
_ALNUM = string.ascii_lowercase + string.digits


def now() -> float:
    """The current time (seconds since the epoch)."""
    return time.time()


def iso(moment: float) -> str:
    """``moment`` as Neon writes times: ISO 8601, UTC, whole seconds (``2026-12-06T16:41:18Z``)."""
    return datetime.datetime.fromtimestamp(int(moment), datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(text: str) -> float:
    """An ISO 8601 time (``Z`` or an offset) as seconds since the epoch."""
    value = datetime.datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    if value.tzinfo is None:
        value = value.replace(tzinfo=datetime.UTC)
    return value.timestamp()


def _words() -> str:
    return f"{secrets.choice(_ADJECTIVES)}-{secrets.choice(_NOUNS)}"


def project_id() -> str:
    """A project id as Neon makes them: ``word-word-12345678``."""
    return f"{_words()}-{''.join(secrets.choice(string.digits) for _ in range(8))}"


def resource_id(prefix: str) -> str:
    """A branch or endpoint id as Neon makes them: ``br-word-word-a1b2c3d4``, ``ep-...``."""
    return f"{prefix}-{_words()}-{''.join(secrets.choice(_ALNUM) for _ in range(8))}"


def password() -> str:
    """A new role password, as Neon makes them (``npg_`` and 12 letters and digits)."""
    return "npg_" + "".join(secrets.choice(string.ascii_letters + string.digits) for _ in range(12))


@dataclass(repr=False)
class Role:
    """A Postgres role of a branch; its password is what reveal_password answers."""

    name: str
    branch_id: str
    password: str
    created_at: float
    updated_at: float
    protected: bool = False

    def to_json(self, *, with_password: bool = False) -> dict[str, Any]:
        """As Neon answers it (the password only where Neon shows it: create, reset, project creation)."""
        body: dict[str, Any] = {
            "branch_id": self.branch_id,
            "name": self.name,
            "protected": self.protected,
            "authentication_method": "password",
            "created_at": iso(self.created_at),
            "updated_at": iso(self.updated_at),
        }
        if with_password:
            body["password"] = self.password
        return body

    def __repr__(self) -> str:
        return f"Role({self.name!r}, branch={self.branch_id!r})"


@dataclass
class Database:
    """A database of a branch."""

    id: int
    name: str
    owner_name: str
    branch_id: str
    created_at: float
    updated_at: float

    def to_json(self) -> dict[str, Any]:
        """As Neon answers it."""
        return {
            "id": self.id,
            "branch_id": self.branch_id,
            "name": self.name,
            "owner_name": self.owner_name,
            "created_at": iso(self.created_at),
            "updated_at": iso(self.updated_at),
        }


@dataclass
class Endpoint:
    """A compute endpoint: its host is 127.0.0.1, its port the branch server's (in the connection URIs)."""

    id: str
    project_id: str
    branch_id: str
    type: str
    autoscaling_limit_min_cu: float
    autoscaling_limit_max_cu: float
    suspend_timeout_seconds: int
    created_at: float
    updated_at: float
    current_state: str = "init"
    disabled: bool = False
    name: str | None = None
    provisioner: str = "k8s-neonvm"
    settings: dict[str, Any] = field(default_factory=lambda: {"pg_settings": {}})

    def to_json(self) -> dict[str, Any]:
        """As Neon answers it."""
        body: dict[str, Any] = {
            "host": HOST,
            "id": self.id,
            "project_id": self.project_id,
            "branch_id": self.branch_id,
            "autoscaling_limit_min_cu": self.autoscaling_limit_min_cu,
            "autoscaling_limit_max_cu": self.autoscaling_limit_max_cu,
            "region_id": REGION,
            "type": self.type,
            "current_state": self.current_state,
            "settings": self.settings,
            "pooler_enabled": False,
            "pooler_mode": "transaction",
            "disabled": self.disabled,
            "passwordless_access": False,
            "creation_source": "console",
            "created_at": iso(self.created_at),
            "updated_at": iso(self.updated_at),
            "proxy_host": HOST,
            "suspend_timeout_seconds": self.suspend_timeout_seconds,
            "provisioner": self.provisioner,
        }
        if self.current_state == "init":
            body["pending_state"] = "active"
        if self.name is not None:
            body["name"] = self.name
        return body


@dataclass
class Branch:
    """A branch: its server, roles and databases."""

    id: str
    project_id: str
    name: str
    server: BranchServer
    created_at: float
    updated_at: float
    parent_id: str | None = None
    parent_lsn: str | None = None
    parent_timestamp: float | None = None
    default: bool = False
    protected: bool = False
    current_state: str = "init"
    state_changed_at: float = 0.0
    expires_at: str | None = None
    """Stored and shown as given: the fake deletes no branch when it expires."""
    roles: dict[str, Role] = field(default_factory=dict)
    databases: dict[str, Database] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """As Neon answers it."""
        body: dict[str, Any] = {
            "id": self.id,
            "project_id": self.project_id,
            "name": self.name,
            "current_state": self.current_state,
            "state_changed_at": iso(self.state_changed_at or self.created_at),
            "logical_size": 0,
            "creation_source": "console",
            "primary": self.default,
            "default": self.default,
            "protected": self.protected,
            "cpu_used_sec": 0,
            "compute_time_seconds": 0,
            "active_time_seconds": 0,
            "written_data_bytes": 0,
            "data_transfer_bytes": 0,
            "created_at": iso(self.created_at),
            "updated_at": iso(self.updated_at),
            "init_source": "parent-data",
        }
        if self.current_state == "init":
            body["pending_state"] = "ready"
        if self.parent_id is not None:
            body["parent_id"] = self.parent_id
        if self.parent_lsn is not None:
            body["parent_lsn"] = self.parent_lsn
        if self.parent_timestamp is not None:
            body["parent_timestamp"] = iso(self.parent_timestamp)
        if self.expires_at is not None:
            body["expires_at"] = self.expires_at
        return body


@dataclass
class Operation:
    """One operation: ``scheduling`` -> ``running`` -> ``finished`` (or ``failed`` / ``cancelled``)."""

    id: str
    project_id: str
    action: str
    created_at: float
    branch_id: str | None = None
    endpoint_id: str | None = None
    status: str = "scheduling"
    updated_at: float = 0.0
    duration_ms: int = 0
    error: str | None = None
    work: Callable[[], None] | None = None
    done: Callable[[], None] | None = None

    def to_json(self) -> dict[str, Any]:
        """As Neon answers it."""
        body: dict[str, Any] = {
            "id": self.id,
            "project_id": self.project_id,
            "action": self.action,
            "status": self.status,
            "failures_count": 1 if self.status == "failed" else 0,
            "created_at": iso(self.created_at),
            "updated_at": iso(self.updated_at or self.created_at),
            "total_duration_ms": self.duration_ms,
        }
        if self.branch_id is not None:
            body["branch_id"] = self.branch_id
        if self.endpoint_id is not None:
            body["endpoint_id"] = self.endpoint_id
        if self.error is not None:
            body["error"] = self.error
        return body

    @property
    def pending(self) -> bool:
        """Not done yet (``scheduling`` or ``running``)."""
        return self.status in ("scheduling", "running")


@dataclass
class Project:
    """A project: its branches, endpoints and operations (newest last)."""

    id: str
    name: str
    region_id: str
    pg_version: int
    created_at: float
    updated_at: float
    history_retention_seconds: int = 86400
    store_passwords: bool = True
    settings: dict[str, Any] = field(default_factory=dict)
    default_endpoint_settings: dict[str, Any] = field(default_factory=dict)
    org_id: str | None = None
    branches: dict[str, Branch] = field(default_factory=dict)
    endpoints: dict[str, Endpoint] = field(default_factory=dict)
    operations: list[Operation] = field(default_factory=list)

    def _common(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "id": self.id,
            "platform_id": "aws",
            "region_id": self.region_id,
            "name": self.name,
            "provisioner": "k8s-neonvm",
            "pg_version": self.pg_version,
            "proxy_host": HOST,
            "branch_logical_size_limit": 0,
            "branch_logical_size_limit_bytes": 0,
            "store_passwords": self.store_passwords,
            "cpu_used_sec": 0,
            "creation_source": "console",
            "history_retention_seconds": self.history_retention_seconds,
            "created_at": iso(self.created_at),
            "updated_at": iso(self.updated_at),
            "owner_id": "fake-neon-owner",
            "settings": self.settings,
            "default_endpoint_settings": self.default_endpoint_settings,
        }
        if self.org_id is not None:
            body["org_id"] = self.org_id
        return body

    def to_json(self) -> dict[str, Any]:
        """As getProject answers it (``Project``)."""
        start = datetime.datetime.fromtimestamp(self.created_at, datetime.UTC).replace(
            day=1, hour=0, minute=0, second=0, microsecond=0
        )
        end = (start + datetime.timedelta(days=32)).replace(day=1)
        return {
            **self._common(),
            "active_time_seconds": 0,
            "compute_time_seconds": 0,
            "written_data_bytes": 0,
            "data_transfer_bytes": 0,
            "data_storage_bytes_hour": 0,
            "consumption_period_start": iso(start.timestamp()),
            "consumption_period_end": iso(end.timestamp()),
        }

    def list_item(self) -> dict[str, Any]:
        """As listProjects answers it (``ProjectListItem``)."""
        return {**self._common(), "active_time": 0}

    def default_branch(self) -> Branch:
        """The project's default branch."""
        return next(branch for branch in self.branches.values() if branch.default)

    def busy(self) -> bool:
        """Whether an operation of the project is pending (a mutation now answers 423)."""
        return any(op.pending for op in self.operations)


class Runner:
    """Runs each batch of operations in its own thread, one after another, ``delay`` seconds apart."""

    def __init__(self, lock: threading.RLock, delay: float) -> None:
        self.lock = lock
        self.delay = delay
        self._threads: list[threading.Thread] = []
        self._closing = threading.Event()
        self._guard = threading.Lock()

    def submit(self, batch: list[Operation], then: Callable[[], None] | None = None) -> None:
        """Starts ``batch`` (already stored with its project); ``then`` runs under the lock when every
        operation finished."""
        if not batch:
            if then is not None:
                with self.lock:
                    then()
            return
        with self.lock:
            batch[0].status = "running"
        thread = threading.Thread(
            target=self._run, args=(batch, then), name="fake-neon-operations", daemon=True
        )
        with self._guard:
            self._threads = [t for t in self._threads if t.is_alive()]
            self._threads.append(thread)
        thread.start()

    def _run(self, batch: list[Operation], then: Callable[[], None] | None) -> None:
        for index, op in enumerate(batch):
            started = now()
            with self.lock:
                op.status = "running"
                op.updated_at = started
            if self._closing.wait(self.delay):
                self._cancel(batch[index:], "the fake was closed")
                return
            try:
                if op.work is not None:
                    op.work()
            except Exception as error:  # the operation fails, as Neon's do
                log.warning("fake Neon operation %s (%s) failed: %s", op.id, op.action, error)
                with self.lock:
                    op.status = "failed"
                    op.error = str(error)
                    op.updated_at = now()
                    op.duration_ms = int((op.updated_at - started) * 1000)
                self._cancel(batch[index + 1 :], "an earlier operation failed")
                return
            with self.lock:
                op.status = "finished"
                op.updated_at = now()
                op.duration_ms = int((op.updated_at - started) * 1000)
                op.work = None
                if op.done is not None:
                    op.done()
                    op.done = None
        if then is not None:
            with self.lock:
                then()

    def _cancel(self, ops: list[Operation], why: str) -> None:
        with self.lock:
            for op in ops:
                op.status = "cancelled"
                op.error = why
                op.updated_at = now()
                op.work = None
                op.done = None

    def wait(self, timeout: float = 60) -> bool:
        """Waits until no batch runs; False if some still do after ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while True:
            with self._guard:
                alive = [t for t in self._threads if t.is_alive()]
            if not alive:
                return True
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            alive[0].join(min(remaining, 0.5))

    def close(self, timeout: float = 30) -> None:
        """Stops starting operations; waits for the ones doing work."""
        self._closing.set()
        self.wait(timeout)


def new_operation(
    project: Project,
    action: str,
    *,
    branch_id: str | None = None,
    endpoint_id: str | None = None,
    work: Callable[[], None] | None = None,
    done: Callable[[], None] | None = None,
) -> Operation:
    """A new operation of ``project`` (stored with it, ``scheduling``)."""
    op = Operation(
        id=str(uuid.uuid4()),
        project_id=project.id,
        action=action,
        created_at=now(),
        branch_id=branch_id,
        endpoint_id=endpoint_id,
        work=work,
        done=done,
    )
    project.operations.append(op)
    return op
