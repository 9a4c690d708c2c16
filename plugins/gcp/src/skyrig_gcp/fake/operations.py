"""Long-running operations of the FAKE Google APIs (:mod:`skyrig_gcp.fake`), answered asynchronously.

A method whose response is an Operation starts one that is not done; it becomes done once its delay has
passed (:attr:`FakeGcp.lro_delay <skyrig_gcp.fake.FakeGcp>`, 0.2 s by default), at the next request to the
fake or the next look at its state: then its completion runs (the resource reaches its final state: READY,
RUNNABLE, gone for a delete) and the operation carries its result. Three shapes, as the APIs answer them:

- ``google``: ``google.longrunning.Operation`` (``name``, ``done``, ``metadata``, ``response`` or ``error``,
  with ``@type`` URLs the client libraries resolve): Cloud Run, Memorystore, Artifact Registry, Resource
  Manager, Service Networking, Service Usage.
- ``sqladmin``: Cloud SQL's ``sql#operation`` (``status`` PENDING, RUNNING, DONE; ``targetId``;
  ``error.errors``).
- ``compute``: Compute Engine's ``compute#operation`` (``status``, ``progress``, ``targetLink``;
  ``error.errors``).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from skyrig_gcp.fake.errors import ApiError


def now_rfc3339(moment: float | None = None) -> str:
    """A timestamp as Google writes it: RFC 3339, UTC, microseconds, ``Z``."""
    stamp = time.time() if moment is None else moment
    seconds = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(stamp))
    return f"{seconds}.{int(stamp % 1 * 1_000_000):06d}Z"


@dataclass
class Operation:
    """One long-running operation: what it targets, when it is due, what completing it does."""

    api: str
    style: str
    key: str
    name: str
    verb: str
    target: str
    due: float
    started: float = field(default_factory=time.time)
    done: bool = False
    finished: float | None = None
    error: ApiError | None = None
    complete: Callable[[], dict[str, Any] | None] | None = None
    result: dict[str, Any] | None = None
    metadata: dict[str, Any] | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def finish(self, moment: float) -> None:
        """Completes the operation: runs its completion, keeps its result or error."""
        if self.done:
            return
        try:
            self.result = self.complete() if self.complete is not None else None
        except ApiError as error:
            self.error = error
        except Exception as error:
            self.error = ApiError("INTERNAL", f"The fake failed completing this operation: {error!r}")
        self.done = True
        self.finished = moment


def google_name(parent: str | None, prefix: str = "operation") -> str:
    """A ``google.longrunning`` operation name under ``parent`` (``projects/p/locations/l``) or at the top."""
    ident = f"{prefix}-{int(time.time() * 1000)}-{uuid.uuid4().hex[:16]}"
    return f"{parent}/operations/{ident}" if parent else f"operations/{ident}"


def render_google(op: Operation) -> dict[str, Any]:
    """A ``google.longrunning.Operation``."""
    body: dict[str, Any] = {"name": op.name, "done": op.done}
    if op.metadata is not None:
        body["metadata"] = op.metadata
    if op.done:
        if op.error is not None:
            body["error"] = op.error.rpc_status()
        else:
            body["response"] = op.result if op.result is not None else {"@type": EMPTY}
    return body


EMPTY = "type.googleapis.com/google.protobuf.Empty"


def render_sqladmin(op: Operation) -> dict[str, Any]:
    """A Cloud SQL ``sql#operation``."""
    project = op.extra["project"]
    status = "DONE" if op.done else ("RUNNING" if time.time() - op.started > 0.02 else "PENDING")
    body: dict[str, Any] = {
        "kind": "sql#operation",
        "targetLink": op.extra["targetLink"],
        "status": status,
        "user": "fake@skyrig.invalid",
        "insertTime": now_rfc3339(op.started),
        "startTime": now_rfc3339(op.started),
        "operationType": op.verb,
        "name": op.name,
        "targetId": op.extra["targetId"],
        "selfLink": op.extra["selfLink"],
        "targetProject": project,
    }
    if op.done:
        body["endTime"] = now_rfc3339(op.finished)
        if op.error is not None:
            body["error"] = {
                "kind": "sql#operationErrors",
                "errors": [
                    {"kind": "sql#operationError", "code": op.error.reason, "message": op.error.message}
                ],
            }
    return body


def render_compute(op: Operation) -> dict[str, Any]:
    """A Compute Engine ``compute#operation``."""
    status = "DONE" if op.done else "RUNNING"
    body: dict[str, Any] = {
        "kind": "compute#operation",
        "id": op.extra["id"],
        "name": op.name,
        "operationType": op.verb,
        "targetLink": op.extra["targetLink"],
        "targetId": op.extra.get("targetId", "0"),
        "status": status,
        "user": "fake@skyrig.invalid",
        "progress": 100 if op.done else 0,
        "insertTime": now_rfc3339(op.started),
        "startTime": now_rfc3339(op.started),
        "selfLink": op.extra["selfLink"],
    }
    for scope in ("region", "zone"):
        if scope in op.extra:
            body[scope] = op.extra[scope]
    if op.done:
        body["endTime"] = now_rfc3339(op.finished)
        if op.error is not None:
            body["error"] = {
                "errors": [{"code": op.error.reason.upper(), "message": op.error.message}],
            }
            body["httpErrorStatusCode"] = op.error.http
            body["httpErrorMessage"] = op.error.status
    return body


RENDER = {"google": render_google, "sqladmin": render_sqladmin, "compute": render_compute}


def render(op: Operation) -> dict[str, Any]:
    """The operation as its API answers it."""
    return RENDER[op.style](op)
