"""What a provider offers ``skyrig test``: fast, throwaway servers for the kinds it can run in tests.

The core fakes what needs no server (topics and subscriptions in-process, secrets in memory, cron jobs by
calling their endpoints); a provider's :class:`TestSupport` serves the rest (SQL databases, caches,
buckets). It lives in two processes: :meth:`TestSupport.prepare` runs in ``skyrig test`` before pytest
starts (start servers, build templates), :meth:`TestSupport.open` in the pytest process.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from skyrig.config import Config
    from skyrig.model import AppModel


class SupportSession(Protocol):
    """A provider's test resources in one pytest process."""

    def client(self, kind: str, name: str) -> Any:
        """The data plane client of resource ``name`` of ``kind``; cheap to make, it connects on first use."""

    def reset(self) -> None:
        """Make every resource fresh again (a database cloned anew from its template, caches emptied)."""

    def close(self) -> None:
        """Give back what this process used (its databases); called when the test session ends."""


class TestSupport(Protocol):
    """A provider's test servers for some kinds (what :class:`skyrig.provider.ThrowawayServers` returns)."""

    __test__ = False  # not a test class, whatever pytest thinks of its name

    kinds: frozenset[str]
    """The kinds it serves in tests (``sql_database``, ``cache_cluster``, ``bucket``)."""

    def prepare(self, root: Path, model: AppModel) -> dict[str, Any]:
        """In the ``skyrig test`` process: start what the tests need and return JSON-able state for
        :meth:`open`. Servers it starts may stop when this process exits. Raise ``UserError`` when the
        app cannot be tested (a migration fails, say)."""

    def open(self, state: dict[str, Any]) -> SupportSession:
        """In the pytest process: the session over what :meth:`prepare` made."""


def choose_supports(config: Config, model: AppModel) -> dict[str, str]:
    """Kind -> provider name, for the kinds of ``model`` that need a provider's test servers.

    A provider that a local environment of the app names for the kind's family comes first, then any
    installed provider, by name. Kinds no installed provider supports are left out (using them in a test
    says so).
    """
    from skyrig.errors import UserError
    from skyrig.kinds import KINDS
    from skyrig.plugins.registry import PROVIDERS, installed

    needed = sorted({r.kind for r in model.resources if not KINDS[r.kind].in_process_tests})
    if not needed:
        return {}
    candidates: list[str] = []
    local = [env for _, env in sorted(config.environments.items()) if env.type == "local"]
    for kind in needed:
        candidates += [env.provider_for(KINDS[kind].family) for env in local]
    candidates += [item.name for item in installed(PROVIDERS)]
    chosen: dict[str, str] = {}
    for name in dict.fromkeys(candidates):
        try:
            support = _support(name)
        except UserError:
            continue
        for kind in needed:
            if support is not None and kind in support.kinds:
                chosen.setdefault(kind, name)
    return chosen


def support_of(provider: str) -> TestSupport:
    """The test support of the installed provider ``provider``."""
    support = _support(provider)
    if support is None:
        raise LookupError(f"provider {provider!r} offers no test support")
    return support


def _support(provider: str) -> TestSupport | None:
    from skyrig.plugins.capabilities import ThrowawayServers, capability
    from skyrig.plugins.registry import load_provider

    servers = capability(load_provider(provider), ThrowawayServers)
    return servers.test_support() if servers is not None else None
