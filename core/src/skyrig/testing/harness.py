"""The test session of ``skyrig test``: what the pytest process binds the app's declarations to.

``skyrig test`` writes a session file (the Application Model, and the state each provider's test support
prepared) and a runtime config that grants every resource of the app to the tests, then starts pytest
with ``SKYRIG_TEST_SESSION`` and ``SKYRIG_RUNTIME_CONFIG`` pointing at them. In pytest, the harness
installs a client for every resource (:func:`skyrig.runtime.binding.install`): topics on an in-process
bus, secrets from memory, the rest from the providers' test servers.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from skyrig.kinds import KINDS
from skyrig.runtime import load_reference
from skyrig.testing.plugin import SESSION_VARIABLE
from skyrig.testing.pubsub import Bus

if TYPE_CHECKING:
    from skyrig.model import AppModel
    from skyrig.testing.support import SupportSession


def runtime_config(model: AppModel, providers: dict[str, str]) -> dict[str, Any]:
    """A runtime config granting every resource of ``model``, with every operation, to the tests."""
    resources: dict[str, dict[str, Any]] = {}
    for resource in model.resources:
        kind = KINDS[resource.kind]
        resources[f"{resource.kind}/{resource.name}"] = {
            "provider": providers.get(resource.kind, "skyrig-test"),
            "operations": sorted(kind.operations),
            **kind.code(resource, model),
        }
    return {"app": model.app, "environment": "test", "service": "tests", "resources": resources}


class SecretClient:
    """Secret values in tests: whatever the test set, in memory."""

    def __init__(self, values: dict[str, str]) -> None:
        self.values = values

    def value(self, name: str) -> str:
        """The value the tests set for secret ``name``."""
        if name not in self.values:
            raise LookupError(
                f"secret {name!r} has no value in tests: set one with the skyrig_secrets fixture "
                f"(skyrig_secrets[{name!r}] = '...')"
            )
        return self.values[name]


class Unsupported:
    """A resource that no installed provider serves in tests: any use of it says so."""

    def __init__(self, key: str) -> None:
        self.key = key

    def __getattr__(self, attribute: str) -> Any:
        from skyrig.runtime.binding import BindingError

        kind = self.key.partition("/")[0]
        raise BindingError(
            f"{self.key.replace('/', ' ')!r}: no installed provider runs {kind} resources in tests "
            "(install one that does, such as skyrig-local)"
        )


class Harness:
    """Every resource of the app, bound for the tests of one pytest process."""

    def __init__(self, session: dict[str, Any]) -> None:
        from skyrig.model import AppModel
        from skyrig.testing.support import support_of

        self.root = Path(session["root"])
        self.model = AppModel.model_validate_json(session["model"])
        self.providers: dict[str, str] = session["providers"]
        self.bus = Bus(self.model)
        self.secrets: dict[str, str] = {}
        self.supports: dict[str, SupportSession] = {
            provider: support_of(provider).open(state) for provider, state in session["supports"].items()
        }

    def install(self) -> None:
        """Bind every resource of the app to its test client in this process."""
        from skyrig.runtime import binding

        for resource in self.model.resources:
            key = f"{resource.kind}/{resource.name}"
            if resource.kind == "topic":
                binding.install(key, self.bus.client(resource.name))
            elif resource.kind == "secret":
                binding.install(key, SecretClient(self.secrets))
            elif resource.kind in self.providers:
                support = self.supports[self.providers[resource.kind]]
                binding.install(key, support.client(resource.kind, resource.name))
            elif not KINDS[resource.kind].in_process_tests:
                binding.install(key, Unsupported(key))

    def reset(self) -> None:
        """Fresh state: databases cloned anew from their templates, caches and buckets emptied, no
        messages."""
        for support in self.supports.values():
            support.reset()
        self.bus.clear()

    def close(self) -> None:
        """Give back what this process used."""
        for support in self.supports.values():
            support.close()

    def cron_endpoint(self, name: str) -> Any:
        """The endpoint of cron job ``name``."""
        jobs = {r.name: r for r in self.model.of_kind("cron_job")}
        if name not in jobs:
            known = ", ".join(sorted(jobs)) or "none"
            raise LookupError(f"the app declares no cron job {name!r} (cron jobs: {known})")
        return load_reference(jobs[name].endpoint)

    def run_cron(self, name: str) -> Any:
        """Call cron job ``name``'s endpoint now (an async one on a new event loop); returns its result."""
        result = self.cron_endpoint(name)()
        return asyncio.run(_awaited(result)) if inspect.isawaitable(result) else result

    async def run_cron_async(self, name: str) -> Any:
        """:meth:`run_cron` for async code."""
        result = self.cron_endpoint(name)()
        return await result if inspect.isawaitable(result) else result


def load() -> Harness | None:
    """The harness of the session ``skyrig test`` started, or None outside one."""
    path = os.environ.get(SESSION_VARIABLE)
    if not path:
        return None
    return Harness(json.loads(Path(path).read_text(encoding="utf-8")))


async def _awaited(awaitable: Any) -> Any:
    return await awaitable
