"""The operations the FAKE Neon API (:mod:`skyrig_neon.fake`) serves, one method per ``operationId``.

Each runs under the fake's lock with a request the spec already accepted (:mod:`skyrig_neon.fake.spec`),
applies Neon's own rules on top (names, parents, protection, 423 while the project has a pending
operation) and answers ``(status, body)``. Work on the real servers happens in the operations
(:class:`~skyrig_neon.fake.store.Runner`), or after the lock is released (``Answer.after``).
"""

from __future__ import annotations

from skyrig_neon.fake.handlers.base import Answer
from skyrig_neon.fake.handlers.branches import BranchHandlers
from skyrig_neon.fake.handlers.data import DataHandlers
from skyrig_neon.fake.handlers.projects import ProjectHandlers

__all__ = ["Answer", "Handlers"]


class Handlers(ProjectHandlers, BranchHandlers, DataHandlers):
    """Every operation the fake serves (an ``operationId`` it lacks answers 501)."""
