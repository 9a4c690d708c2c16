"""Helpers for the memory provider's tests: write an app, apply it with the real CLI, use it through the
real SDK with the runtime config that apply wrote, and look at the environment through the provider."""

from __future__ import annotations

import asyncio
import json
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from skyrig.cli import main
from skyrig.runtime import binding
from skyrig_conformance import provider_profile

skyrig_profile = provider_profile("memory")
"""The conformance suite (test_conformance.py) runs against the memory provider's profile."""

CONFIG = 'app = "{app}"\n[env.dev]\ntype = "development"\nprovider = "memory"\n'


def skyrig(root: Path, *args: str) -> int:
    """Run ``skyrig ARGS -C root`` in this process; its exit code."""
    try:
        main([*args, "-C", str(root)])
    except SystemExit as done:
        return done.code if isinstance(done.code, int) else 1
    return 0


def deploy(root: Path, app: str, package: str, source: str) -> Path:
    """Write app ``app`` (one service, its code in ``package/__init__.py``) and apply environment dev."""
    (root / package).mkdir(parents=True)
    (root / "skyrig.toml").write_text(CONFIG.format(app=app))
    (root / package / "__init__.py").write_text(source)
    assert skyrig(root, "apply", "--env", "dev", "--yes") == 0
    return root


class App:
    """An applied app, bound as its service ``web`` runs: its declarations (the SDK) and runtime config."""

    def __init__(self, root: Path, package: str, monkeypatch: pytest.MonkeyPatch) -> None:
        self.root = root
        self.config_path = root / ".skyrig" / "runtime" / "dev" / "web.json"
        monkeypatch.setenv("SKYRIG_RUNTIME_CONFIG", str(self.config_path))
        monkeypatch.syspath_prepend(str(root))
        binding.reset()
        sys.modules.pop(package, None)  # an earlier test's copy of the app, from another folder
        __import__(package)
        self.sdk: ModuleType = sys.modules[package]
        self.config: dict[str, Any] = json.loads(self.config_path.read_text())

    def client(self, key: str) -> Any:
        """The data plane client of resource ``kind/name``, as the service host gets it."""
        return binding.client_for_key(key)

    @contextmanager
    def context(self) -> Iterator[Any]:
        """The memory provider's context for environment dev (a cloud client, as commands have)."""
        from skyrig.cli.session import open_session

        session = open_session(str(self.root), "dev")
        try:
            yield session.context("memory")
        finally:
            session.store.close()

    def consume(
        self,
        subscription: str,
        handler: Callable[[dict[str, Any]], Any],
        until: Callable[[], bool],
        *,
        timeout: float = 15,
        drain_timeout: float | None = None,
    ) -> float:
        """Consume ``subscription`` with ``handler`` in a fresh loop until ``until()`` is true, then stop
        and let the consumer drain; the seconds it took."""

        async def run() -> float:
            stop = asyncio.Event()
            client = self.client(f"subscription/{subscription}")
            options = {} if drain_timeout is None else {"drain_timeout": drain_timeout}
            task = asyncio.create_task(client.consume(handler, stop, **options))
            started = time.monotonic()
            while not until():
                assert not task.done(), task.exception()
                assert time.monotonic() - started < timeout, f"{subscription}: timed out"
                await asyncio.sleep(0.01)
            stop.set()
            await asyncio.wait_for(task, timeout)
            return time.monotonic() - started

        return asyncio.run(run())


@pytest.fixture(autouse=True)
def _fresh_bindings() -> Iterator[None]:
    yield
    binding.reset()
