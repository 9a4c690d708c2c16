"""A deployment of the suite's app on the provider under test: the skyrig commands, the engine's view of
state and of the backend, and the app's own view through the runtime SDK.

Commands run in this process (as the console script would, output captured) except where a test needs
a process of its own (a crash). The runtime SDK is bound to one service at a time, with the runtime config
that apply wrote, wired to the profile's stand-ins where the backend is emulated without a server.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from skyrig.cli.testing import Result, invoke
from skyrig.provider import LocalServers, Manifest
from skyrig_conformance.app import ENVIRONMENTS, Capabilities, app_name, config, write_app
from skyrig_conformance.profile import Profile

MAIN = ENVIRONMENTS[0]
PACKAGES = ("alpha", "beta")
_on_path: list[str] = []


class Deployment:
    """The suite's app in ``root``, provisioned with ``profile``'s provider."""

    def __init__(self, root: Path, profile: Profile, manifest: Manifest) -> None:
        self.root = root
        self.profile = profile
        self.manifest = manifest
        self.app = app_name()
        self.capabilities: Capabilities = write_app(root, self.app, profile, manifest)
        self.environments: tuple[str, ...] = ENVIRONMENTS
        """The environments ``skyrig.toml`` declares (teardown destroys each)."""
        self.outputs: list[str] = []
        """Everything every command printed, for the secret canary."""
        self._servers: list[subprocess.Popen[bytes]] = []

    def add_environments(self, *names: str) -> None:
        """Declare more environments of the same kind in ``skyrig.toml`` (each with names of its own)."""
        self.environments = (*self.environments, *names)
        (self.root / "skyrig.toml").write_text(config(self.profile, self.app, self.environments))

    # -- commands ---------------------------------------------------------------------------------

    def cli(self, *args: str, stdin: str | None = None) -> Result:
        """``skyrig ARGS -C root`` in this process."""
        result = invoke([*args, "-C", str(self.root)], stdin=stdin or "")
        self.outputs += [result.out, result.err]
        return result

    def ok(self, *args: str, stdin: str | None = None) -> Result:
        """:meth:`cli`, which must succeed."""
        result = self.cli(*args, stdin=stdin)
        assert result.code == 0, f"skyrig {' '.join(args)} exited {result.code}:\n{result.text}"
        return result

    def process(self, *args: str, environ: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        """``skyrig ARGS -C root`` in a process of its own, waited for."""
        running = self.start(*args, environ=environ)
        return self.finished(running, timeout=600)

    def start(self, *args: str, environ: dict[str, str] | None = None) -> subprocess.Popen[str]:
        """``skyrig ARGS -C root`` started in a process of its own (wait for it with :meth:`finished`, or
        kill it)."""
        return subprocess.Popen(
            [sys.executable, "-m", "skyrig", *args, "-C", str(self.root)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, **(environ or {})},
        )

    def finished(
        self, running: subprocess.Popen[str], timeout: float | None = None
    ) -> subprocess.CompletedProcess[str]:
        """What ``running`` printed and how it exited, once it has (its output counts for the canary)."""
        stdout, stderr = running.communicate(timeout=timeout)
        self.outputs += [stdout, stderr]
        return subprocess.CompletedProcess(running.args, running.returncode, stdout, stderr)

    def apply(self, environment: str = MAIN) -> Result:
        return self.ok("apply", "--env", environment, "--yes")

    def destroy(self, environment: str = MAIN) -> Result:
        result = self.ok("destroy", "--env", environment, "--yes", "--include-data")
        for stand_in in self.profile.stand_ins.values():
            drop = getattr(stand_in, "drop", None)
            if drop is not None:
                drop(self.tag(environment))
        return result

    def plan(self, environment: str = MAIN, *, refresh: bool = True) -> dict[str, Any]:
        """The plan as JSON."""
        refreshing = "--refresh" if refresh else "--no-refresh"
        return json.loads(self.ok("plan", "--env", environment, "--json", refreshing).out)

    @staticmethod
    def changes(plan: dict[str, Any]) -> list[dict[str, Any]]:
        """The changes of ``plan`` that do something."""
        return [c for c in plan["changes"] if c["action"] not in ("noop", "retain")]

    # -- the engine's view --------------------------------------------------------------------------

    @contextlib.contextmanager
    def session(self, environment: str = MAIN) -> Iterator[Any]:
        """The engine's session of ``environment`` (state, graph, node types, provider contexts)."""
        from skyrig.config import load_config
        from skyrig.engine.session import Session

        session = Session(load_config(self.root), environment)
        try:
            yield session
        finally:
            session.store.close()

    def context(self, environment: str = MAIN) -> Any:
        """The provider's context (settings, client) for ``environment``."""
        with self.session(environment) as session:
            return session.context(self.profile.provider)

    def provider(self) -> Any:
        from skyrig.plugins.registry import load_provider

        return load_provider(self.profile.provider)

    def inventory(self, environment: str = MAIN) -> list[tuple[str, str]]:
        """What the provider's backend holds for ``environment``, by its own API."""
        return sorted(self.provider().inventory(self.context(environment)))

    def recorded(self, environment: str = MAIN) -> dict[str, Any]:
        """Node id -> its record in state, for the provider under test's nodes."""
        with self.session(environment) as session:
            records = session.store.nodes(environment)
        return {node: r for node, r in records.items() if r.provider == self.profile.provider}

    def read_back(self, resource: str, environment: str = MAIN) -> Any:
        """The main node of model resource ``resource`` (``kind/name``) as the backend says it is now."""
        with self.session(environment) as session:
            [record] = [r for r in session.store.nodes(environment).values() if r.resource == resource]
            node = record.node()
            return session.types[record.type].read(session.context(record.provider), node, record.provider_id)

    def has_state(self, environment: str) -> bool:
        """Whether state records anything of ``environment`` (of any provider)."""
        if not (self.root / ".skyrig").exists():
            return False
        with self.session(environment) as session:
            return bool(session.store.nodes(environment))

    def model(self) -> Any:
        from skyrig.analysis import build_model

        return build_model(self.root, self.app)

    def tag(self, environment: str) -> str:
        """What tells this deployment's environments apart on a shared stand-in server."""
        return f"{self.app}-{environment}"

    # -- the app's view -----------------------------------------------------------------------------

    def bind(self, service: str, environment: str = MAIN) -> SimpleNamespace:
        """Bind the runtime SDK to ``service`` of ``environment`` and import the app's declarations.

        Returns the app's modules (``resources``, ``messages``) as attributes. The runtime config is the
        one apply wrote, with stood-in kinds wired to their stand-ins.
        """
        from skyrig.runtime import binding

        self._start_local_servers(environment)
        config = json.loads((self.root / ".skyrig" / "runtime" / environment / f"{service}.json").read_text())
        if self.profile.stand_ins:
            model = self.model()
            for key, entry in config["resources"].items():
                kind, _, name = key.partition("/")
                stand_in = self.profile.stand_ins.get(kind)
                if stand_in is not None:
                    wired = stand_in.wire(
                        kind, model.resource(kind, name), entry, self.root, self.tag(environment)
                    )
                    config["resources"][key] = wired
        wired_file = self.root / ".skyrig" / "conformance" / f"{environment}-{service}.json"
        wired_file.parent.mkdir(parents=True, exist_ok=True)
        wired_file.write_text(json.dumps(config, indent=2))
        os.environ["SKYRIG_RUNTIME_CONFIG"] = str(wired_file)
        binding.reset()
        self._forget_app_modules()
        sys.path.insert(0, str(self.root))
        _on_path.append(str(self.root))
        import importlib

        modules = {"resources": importlib.import_module("alpha.resources")}
        modules["messages"] = importlib.import_module("alpha.messages")
        modules["beta"] = importlib.import_module("beta.uses")
        return SimpleNamespace(**modules, config=config)

    def unbind(self) -> None:
        """Undo :meth:`bind`."""
        from skyrig.runtime import binding

        os.environ.pop("SKYRIG_RUNTIME_CONFIG", None)
        binding.reset()
        self._forget_app_modules()

    def _start_local_servers(self, environment: str) -> None:
        """Start what the provider runs beside the app (an object server, say), as ``skyrig run`` would."""
        local = self.provider()
        if self._servers or not isinstance(local, LocalServers):
            return
        with self.session(environment) as session:
            wanted = local.local_servers(session.context(self.profile.provider), session.model)
        for server in wanted:
            command = [sys.executable, "-m", "uvicorn", server["app"], "--host", "127.0.0.1"]
            command += ["--port", str(server["port"]), "--log-level", "warning"]
            process = subprocess.Popen(command, env={**os.environ, **server.get("env", {})}, cwd=self.root)
            self._servers.append(process)
            _wait_for(server["port"], process)

    def close(self) -> None:
        """Stop what :meth:`bind` started."""
        self.unbind()
        for process in self._servers:
            process.terminate()
            process.wait(10)
        self._servers.clear()

    @staticmethod
    def _forget_app_modules() -> None:
        """Forget the suite app's modules and folders: another deployment (another provider's, in the
        same process) has modules of the same names."""
        for name in list(sys.modules):
            if name.split(".")[0] in PACKAGES:
                del sys.modules[name]
        while _on_path:
            with contextlib.suppress(ValueError):
                sys.path.remove(_on_path.pop())

    def consume(
        self,
        subscription: str,
        handler: Callable[[dict[str, Any]], Awaitable[None]],
        until: Callable[[], bool],
        *,
        timeout: float = 30,
        before: Callable[[], Awaitable[None]] | None = None,
        settle: float = 0.0,
    ) -> float:
        """Consume ``subscription`` through the provider's data plane in a fresh event loop until
        ``until()`` holds, then ``settle`` seconds more (to catch a delivery too many), then stop.
        ``before`` runs once consuming has started. Returns the seconds it took."""
        from skyrig.runtime.binding import client_for_key

        async def run() -> float:
            stop = asyncio.Event()
            consumer = client_for_key(f"subscription/{subscription}")
            task = asyncio.create_task(consumer.consume(handler, stop))
            started = time.monotonic()
            if before is not None:
                await before()
            while not until():
                if task.done():
                    raise AssertionError(f"the consumer of {subscription!r} stopped: {task.exception()!r}")
                if time.monotonic() - started > timeout:
                    raise AssertionError(
                        f"{subscription}: what the test waits for did not happen in {timeout} s"
                    )
                await asyncio.sleep(0.01)
            took = time.monotonic() - started
            await asyncio.sleep(settle)
            stop.set()
            await asyncio.wait_for(task, 60)
            return took

        return asyncio.run(run())


def _wait_for(port: int, process: subprocess.Popen[bytes], timeout: float = 30) -> None:
    """Until something answers on ``port`` (or ``process`` died)."""
    import socket

    deadline = time.monotonic() + timeout
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"the provider's local server on port {port} did not start") from None
            time.sleep(0.02)


def eventually(check: Callable[[], Any], what: str, timeout: float = 30, interval: float = 0.05) -> Any:
    """The first truthy result of ``check()``, tried until ``timeout`` seconds have passed."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(interval)
