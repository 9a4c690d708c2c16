"""What the hosted provider's tests share: a host with test clients, an interpreter the user ``nobody``
can run, a data folder the PostgreSQL server's user reaches, the host's API served in this process, and
an app's files written into a folder."""

from __future__ import annotations

import os
import shutil
import socket
import stat
import subprocess
import sys
import sysconfig
import tempfile
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx

from skyrig_hosted.conformance import Host


class ClientHost(Host):
    """The conformance suite's host (``options=[...]`` for more ``serve`` options), with test clients."""

    api_timeout: float = 60
    """How long :meth:`api`'s clients wait for an answer."""

    @property
    def port(self) -> int:
        """The host's one port (API and proxy)."""
        return int(urlsplit(self.url).port or 0)

    def api(self, token: str) -> httpx.Client:
        """A client of the host's API with ``token``."""
        return httpx.Client(
            base_url=self.url, headers={"Authorization": f"Bearer {token}"}, timeout=self.api_timeout
        )

    def get(self, host: str, path: str = "/", **kwargs: Any) -> httpx.Response:
        """A request through the host's one port with ``Host: host``."""
        method = kwargs.pop("method", "GET")
        return httpx.request(
            method, f"http://127.0.0.1:{self.port}{path}", headers={"Host": host}, timeout=60, **kwargs
        )


def no_nobody_python(doing: str, *, git: bool = False) -> str | None:
    """Why an interpreter ``nobody`` can run cannot be made here (``None`` when it can); ``doing`` says
    what the tests run as another user."""
    if os.geteuid() != 0:
        return f"runs {doing} as another user: needs a test process running as root"
    if git and shutil.which("git") is None:
        return "needs git"
    python = Path("/usr/bin/python3")
    if not python.is_file():
        return "needs /usr/bin/python3 (an interpreter outside the closed /root) to make one nobody can run"
    version = subprocess.run(
        [str(python), "-c", "import sys; print(sys.version_info[:2])"], capture_output=True, text=True
    ).stdout.strip()
    if version != str(sys.version_info[:2]):
        return f"/usr/bin/python3 is {version}, not {sys.version_info[:2]} like this venv (ABI)"
    return None


@contextmanager
def nobody_python(prefix: str) -> Iterator[str]:
    """An interpreter ``nobody`` can run that finds this venv's packages: a venv of /usr/bin/python3 in a
    folder every user reads, removed on exit."""
    folder = Path(tempfile.mkdtemp(prefix=prefix))
    folder.chmod(0o755)
    subprocess.run(["/usr/bin/python3", "-m", "venv", "--without-pip", str(folder)], check=True)
    interpreter = str(folder / "bin" / "python")
    purelib = subprocess.run(
        [interpreter, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    ours = sysconfig.get_paths()["purelib"]
    (Path(purelib) / "skyrig-test-venv.pth").write_text(f"import site; site.addsitedir({ours!r})\n")
    for root, folders, files in os.walk(folder):
        for name in [*folders, *files]:
            path = Path(root, name)
            if not path.is_symlink():
                path.chmod(path.stat().st_mode | stat.S_IROTH | (stat.S_IXOTH if path.is_dir() else 0))
    try:
        yield interpreter
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@contextmanager
def data_folder(prefix: str) -> Iterator[Path]:
    """A host's data folder ``data`` in a fresh folder others may pass (0711; pytest's tmp_path is 0700):
    the PostgreSQL server's own user and the services' user reach it. Removed on exit."""
    parent = Path(tempfile.mkdtemp(prefix=prefix))
    parent.chmod(0o711)
    try:
        yield parent / "data"
    finally:
        shutil.rmtree(parent, ignore_errors=True)


def write_files(root: Path, files: Mapping[str, str], replace: Mapping[str, str] | None = None) -> None:
    """Each of ``files`` (path under ``root``: text) written, with each key of ``replace`` in the text
    replaced by its value."""
    for name, text in files.items():
        for old, new in (replace or {}).items():
            text = text.replace(old, new)
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


class InProcessServer:
    """An ASGI application served by uvicorn on 127.0.0.1 in a thread of this process; :attr:`url` is its
    ``/v1`` address."""

    def __init__(self, application: Any) -> None:
        import uvicorn

        self.socket = socket.socket()
        self.socket.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.socket.bind(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.socket.getsockname()[1]}/v1"
        config = uvicorn.Config(application, log_level="warning", lifespan="off")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.socket]}, daemon=True)
        self.thread.start()
        while not self.server.started:
            time.sleep(0.01)

    def client(self, token: str | None = None) -> httpx.Client:
        """A client of the served API, with ``token`` when given."""
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=30)

    def close(self) -> None:
        """Stops serving (the application's own parts are the caller's to close)."""
        self.server.should_exit = True
        self.thread.join(10)
