"""A fork server for ``skyrig run``: one process imports what the services import once, then forks each one.

Starting a service as a fresh interpreter costs its Python start-up and the import of uvicorn, its ASGI
framework and skyrig's runtime, about 0.15-0.25 s of CPU each; forked from a process that has already
imported them, a service only imports the app's own modules (which a reload must re-read) and serves.

The zygote is a process of its own, started (:meth:`Zygote.launch`) before the local environment is
provisioned, so that its imports run beside the provisioning. It imports uvicorn, skyrig's service host,
the modules the app's code imports that are not the app's own (found by reading the app's files, never
by running them) and any ``extra`` modules, then answers on a Unix socket: each request names the
service's app, port and environment and carries the write end of a pipe for its output; the zygote forks,
and the child starts a session of its own, sets its environment and serves the app under uvicorn. The
zygote reports each child's pid and, when it ends, its exit code. When the socket closes (``skyrig run``
stopped, or was killed) the zygote stops the children still running and exits, so none outlives it.

Forking is only safe from a process with one thread: a zygote whose imports started a thread says so,
and :class:`~skyrig.run.supervisor.Supervisor` starts plain processes instead, as it does where fork is
unavailable (not Linux) or ``SKYRIG_RUN_FORK=0``.
"""

from __future__ import annotations

import ast
import contextlib
import importlib
import json
import os
import selectors
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

FORK_VARIABLE = "SKYRIG_RUN_FORK"
"""``0`` makes ``skyrig run`` start each service as a fresh interpreter instead of forking it."""

PRELOAD = (
    "uvicorn",
    "uvicorn.config",
    "uvicorn.main",
    "uvicorn.server",
    "uvicorn.lifespan.on",
    "uvicorn.loops.auto",
    "uvicorn.loops.asyncio",
    "uvicorn.loops.uvloop",
    "uvicorn.protocols.http.auto",
    "uvicorn.protocols.http.h11_impl",
    "uvicorn.protocols.http.httptools_impl",
    "uvicorn.protocols.websockets.auto",
    "uvicorn.protocols.websockets.websockets_impl",
    "uvicorn.protocols.websockets.wsproto_impl",
    "skyrig.runtime.host",
    "skyrig.runtime.binding",
    "skyrig.declarations.pubsub",
    "skyrig.runtime.jetstream.consumer",
    "nats",
    "nats.js",
)
"""What every service imports: uvicorn (with the parts ``uvicorn.Config.load`` picks), skyrig's host and
its pub/sub runtime (with the NATS client, where it is installed)."""

MESSAGE = 1 << 16


def fork_supported() -> bool:
    """Whether services can be forked here (Linux, not switched off with ``SKYRIG_RUN_FORK=0``)."""
    return (
        sys.platform.startswith("linux")
        and hasattr(os, "fork")
        and hasattr(socket, "send_fds")
        and os.environ.get(FORK_VARIABLE, "1") != "0"
    )


def app_imports(root: Path) -> list[str]:
    """The top-level modules the app's code imports that are not its own, read from its files (never run)."""
    own = {
        entry.stem for entry in root.iterdir() if entry.suffix == ".py" or (entry / "__init__.py").exists()
    }
    found: set[str] = set()
    for path in root.rglob("*.py"):
        if any(
            part.startswith(".") or part in ("__pycache__", "venv", "site-packages") for part in path.parts
        ):
            continue
        try:
            tree = ast.parse(path.read_bytes())
        except (OSError, SyntaxError, ValueError):
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                found.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                found.add(node.module)
    return sorted(name for name in found if name.partition(".")[0] not in own and name != "__future__")


class ForkedProcess:
    """A service forked by the zygote, with the part of :class:`subprocess.Popen`'s interface the
    supervisor uses (its exit code comes from the zygote, which is its parent)."""

    def __init__(self, pid: int, stdout: Any) -> None:
        self.pid = pid
        self.stdout = stdout
        self.returncode: int | None = None
        self._exited = threading.Event()

    def poll(self) -> int | None:
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        if not self._exited.wait(timeout):
            raise subprocess.TimeoutExpired(f"service process {self.pid}", timeout or 0)
        assert self.returncode is not None
        return self.returncode

    def ended(self, code: int) -> None:
        self.returncode = code
        self._exited.set()


class Zygote:
    """The supervisor's handle on the fork server: launch it, fork services from it, close it."""

    def __init__(self, process: subprocess.Popen[bytes], control: socket.socket) -> None:
        self.process = process
        self.control = control
        self.ready: bool | None = None
        """None until the zygote has answered; then whether it can fork."""
        self.why = ""
        self.children: dict[int, ForkedProcess] = {}
        self._replies: list[dict[str, Any]] = []
        self._changed = threading.Condition()
        self._forking = threading.Lock()
        """One fork at a time: the zygote answers in order, each answer goes to its request."""
        self._reader = threading.Thread(target=self._read, name="skyrig-zygote", daemon=True)
        self._reader.start()

    @classmethod
    def launch(cls, root: Path, extra: Sequence[str] = ()) -> Zygote | None:
        """Start a zygote for the app at ``root`` (its imports run in the background); None where
        services cannot be forked."""
        if not fork_supported():
            return None
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        process = subprocess.Popen(
            [sys.executable, "-m", "skyrig.run.zygote", str(theirs.fileno()), str(root), *extra],
            pass_fds=(theirs.fileno(),),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,  # each child's output goes to the pipe it is given
            start_new_session=True,
        )
        theirs.close()
        return cls(process, ours)

    def preload(self, modules: Sequence[str]) -> None:
        """Have the zygote load ``modules`` (as its arguments name them) before the next fork."""
        with contextlib.suppress(OSError):
            self.control.send(json.dumps({"preload": list(modules)}).encode())

    def wait_ready(self, timeout: float = 30) -> bool:
        """Whether the zygote has finished its imports and can fork (waits for it)."""
        with self._changed:
            self._changed.wait_for(lambda: self.ready is not None, timeout)
        return bool(self.ready)

    def fork(
        self, name: str, app: str, port: int, env: dict[str, str], factory: bool, root: Path
    ) -> ForkedProcess:
        """Fork a service serving ``app`` on ``port``; its output goes to the returned process's stdout."""
        read, write = os.pipe()
        request = {"name": name, "app": app, "port": port, "env": env, "factory": factory, "root": str(root)}
        try:
            with self._forking, self._changed:
                socket.send_fds(self.control, [json.dumps(request).encode()], [write])
                ok = self._changed.wait_for(lambda: self._replies or self.ready is False, 30)
                if not ok or not self._replies:
                    raise OSError(f"the fork server did not start service {name!r}")
                reply = self._replies.pop(0)
                if "refused" in reply:
                    raise OSError(f"the fork server did not start service {name!r}: {reply['refused']}")
        except OSError:
            os.close(read)
            raise
        finally:
            os.close(write)
        child = self.children[reply["pid"]]
        child.stdout = os.fdopen(read, "rb")
        return child

    def _read(self) -> None:
        """Take the zygote's messages: ready, each fork's pid, each child's exit."""
        while True:
            try:
                data = self.control.recv(MESSAGE)
            except OSError:
                data = b""
            if not data:
                break
            message = json.loads(data)
            with self._changed:
                if "ready" in message:
                    self.ready, self.why = message["ready"], message.get("why", "")
                elif "refused" in message:  # its preloading started a thread: no more forks
                    self.ready, self.why = False, message["refused"]
                    self._replies.append(message)
                elif "pid" in message:
                    self.children[message["pid"]] = ForkedProcess(message["pid"], None)
                    self._replies.append(message)
                elif "exited" in message:
                    child = self.children.get(message["exited"])
                    if child is not None:
                        child.ended(message["code"])
                self._changed.notify_all()
        with self._changed:  # the zygote is gone: it stopped its children as it went
            if self.ready is None:
                self.ready, self.why = False, "the fork server exited"
            self.ready = False
            for child in self.children.values():
                if child.returncode is None:
                    with contextlib.suppress(OSError):
                        os.killpg(child.pid, signal.SIGKILL)
                    child.ended(-signal.SIGKILL)
            self._changed.notify_all()

    def close(self) -> None:
        """Stop the zygote (and any child still running) and wait for it."""
        with contextlib.suppress(OSError):
            self.control.shutdown(socket.SHUT_RDWR)
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self._reader.join(timeout=5)
        self.control.close()


# -- the zygote process ------------------------------------------------------------------------------


def _threads() -> int:
    try:
        return len(list(Path("/proc/self/task").iterdir()))
    except OSError:
        return threading.active_count()


def _serve_child(request: dict[str, Any]) -> None:
    """In the forked child: become the service and serve it until it is stopped."""
    root = request["root"]
    os.chdir(root)
    os.environ.update(request["env"])
    os.environ["PYTHONPATH"] = os.pathsep.join([root, os.environ.get("PYTHONPATH", "")])
    sys.path.insert(0, root)
    sys.argv = ["uvicorn", request["app"]]
    import uvicorn

    uvicorn.run(
        request["app"],
        host="127.0.0.1",
        port=request["port"],
        factory=request["factory"],
        access_log=False,
    )


def _fork(request: dict[str, Any], output: int, closing: list[int]) -> int:
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid:
        return pid
    code = 1
    try:
        os.setsid()
        signal.set_wakeup_fd(-1)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        for fd in closing:
            with contextlib.suppress(OSError):
                os.close(fd)
        null = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null, 0)
        os.dup2(output, 1)
        os.dup2(output, 2)
        os.close(null)
        os.close(output)
        sys.stdout.reconfigure(line_buffering=True)  # type: ignore[union-attr]
        _serve_child(request)
        code = 0
    except SystemExit as stop:
        code = stop.code if isinstance(stop.code, int) else (0 if stop.code is None else 1)
    except BaseException:
        import traceback

        traceback.print_exc()
    finally:
        with contextlib.suppress(Exception):
            sys.stdout.flush()
            sys.stderr.flush()
        os._exit(code)


def _load(modules: Sequence[str]) -> str:
    """Import ``modules`` (``provider:NAME`` loads a provider); why forking is now unsafe, or ``""``."""
    for module in modules:
        try:
            if module.startswith("provider:"):  # loaded (and cached) as the services' data plane loads it
                from skyrig.plugins.registry import load_provider

                load_provider(module.removeprefix("provider:"))
            else:
                importlib.import_module(module)
        except BaseException:  # what a service cannot load fails in that service, clearly
            continue
    threads = _threads()
    return f"its imports started {threads - 1} thread(s)" if threads > 1 else ""


def main(argv: list[str]) -> None:
    """``python -m skyrig.run.zygote FD ROOT [MODULE | provider:NAME ...]``: import (and load the providers
    named), then fork on request until FD closes; a request ``{"preload": [...]}`` loads more."""
    control = socket.socket(fileno=int(argv[0]))
    unsafe = _load((*PRELOAD, *argv[2:], *app_imports(Path(argv[1]))))
    wake_read, wake_write = os.pipe()
    os.set_blocking(wake_read, False)
    os.set_blocking(wake_write, False)
    signal.set_wakeup_fd(wake_write)
    signal.signal(signal.SIGCHLD, lambda *_: None)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    selector = selectors.DefaultSelector()
    selector.register(control, selectors.EVENT_READ)
    selector.register(wake_read, selectors.EVENT_READ)
    closing = [control.fileno(), wake_read, wake_write, selector.fileno()]
    # an unsafe zygote still reads (and refuses) each request until the socket closes: closing a socket
    # with unread requests would make the supervisor's next read fail before it reads this answer
    control.send(json.dumps({"ready": not unsafe, "why": unsafe}).encode())
    children: set[int] = set()
    try:
        _serve(control, selector, wake_read, closing, children, unsafe)
    finally:
        _stop_children(children)


def _serve(
    control: socket.socket,
    selector: selectors.BaseSelector,
    wake_read: int,
    closing: list[int],
    children: set[int],
    unsafe: str,
) -> None:
    """Fork a child for each request (unless forking has become ``unsafe``: why) and report each child's
    end, until the control socket closes."""
    while True:
        for key, _ in selector.select():
            if key.fileobj is control:
                try:
                    data, fds, _, _ = socket.recv_fds(control, MESSAGE, 1)
                except OSError:
                    data, fds = b"", []
                if not data:
                    return
                request = json.loads(data)
                if "preload" in request:
                    unsafe = unsafe or _load(request["preload"])
                    continue
                if unsafe:
                    reply = {"refused": unsafe}
                else:
                    pid = _fork(request, fds[0], closing)
                    children.add(pid)
                    reply = {"pid": pid}
                os.close(fds[0])
                control.send(json.dumps(reply).encode())
            else:
                with contextlib.suppress(OSError):
                    os.read(wake_read, 512)
        _reap(children, control)


def _reap(children: set[int], control: socket.socket | None) -> None:
    while children:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        children.discard(pid)
        if control is not None:
            with contextlib.suppress(OSError):
                control.send(json.dumps({"exited": pid, "code": os.waitstatus_to_exitcode(status)}).encode())


def _stop_children(children: set[int], grace: float = 10) -> None:
    """The supervisor is gone: SIGTERM to each child's session, SIGKILL after ``grace`` seconds."""
    for pid in children:
        with contextlib.suppress(OSError):
            os.killpg(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while children and time.monotonic() < deadline:
        _reap(children, None)
        time.sleep(0.02)
    for pid in children:
        with contextlib.suppress(OSError):
            os.killpg(pid, signal.SIGKILL)
    while children:
        try:
            pid, _ = os.waitpid(-1, 0)
        except ChildProcessError:
            return
        children.discard(pid)


if __name__ == "__main__":
    with contextlib.suppress(OSError, KeyboardInterrupt):  # skyrig run has gone: so do we
        main(sys.argv[1:])
