"""An app's own dependencies: a virtual environment per ``requirements.txt``, built once, shared by digest.

When a source archive has a ``requirements.txt`` at its root, its services run with the python of
``DATA/envs/<key>``: a virtual environment made with ``<service python> -m venv --system-site-packages``
(and, when the service interpreter is itself a virtual environment, its site-packages added after the
env's own, so skyrig and uvicorn are found as they are for any service), then
``python -m pip install --no-input --disable-pip-version-check -r requirements.txt`` run in (a copy of)
the source's folder. Requirements the interpreter's packages satisfy already install nothing and need no
network. ``<key>`` is the SHA-256 of the requirements' text, the service interpreter, and the content of
the local paths it names (``./vendor/pkg``, a wheel shipped in the archive); ``-r``/``-c``/``-f`` files of
the archive tie it to the whole source.

A build runs in a temporary folder ``DATA/envs/.build-*`` and is renamed into place only when pip
succeeded (a crash leaves no half-built env in use), at most :data:`BUILD_TIMEOUT` seconds, its output
kept (``DATA/envs/<key>/build.log``; the tail of a failed one goes to the deployment's log). One build per
key at a time: concurrent deployments of the same requirements wait for the same build. pip gets only
``PATH``, ``LANG``, a ``HOME`` and ``TMPDIR`` of its own, and the ``PIP_*`` variables of the host's
environment (``PIP_INDEX_URL``, ``PIP_FIND_LINKS``, ``PIP_NO_INDEX`` ...). With a service user
(``serve --service-user``), the env is built as that user (pip never runs as root: a package's setup may
run code), then sealed: owned by the host's user, folders 0755, files 0644 (0755 when executable).
Each build step's pid is kept in ``DATA/envs/.pid-<build folder>`` (the host's alone): a host killed during
a build has it stopped at its next start, and its folder removed.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import re
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from skyrig_hosted.host.isolation import ServiceUser

log = logging.getLogger("skyrig_hosted.host.venvs")

REQUIREMENTS = "requirements.txt"
BUILD_TIMEOUT = 600.0
GRACE_SECONDS = 600.0
"""An env built this recently is kept even when no deployment names it yet."""
TAIL = 30
"""The last lines of a failed build's output shown in the deployment's log."""
KEY = re.compile(r"[0-9a-f]{64}")
_WHOLE_SOURCE = {"-r", "--requirement", "-c", "--constraint", "-f", "--find-links"}
_EDITABLE = {"-e", "--editable"}


class RequirementsError(ValueError):
    """A ``requirements.txt`` the host cannot install (one line for the user)."""


def _tree_digest(path: Path) -> str:
    """The SHA-256 of a file's bytes, or of a folder's relative paths and files' bytes (sorted)."""
    digest = hashlib.sha256()
    if path.is_file():
        digest.update(path.read_bytes())
        return digest.hexdigest()
    for root, folders, files in os.walk(path):
        folders.sort()
        for name in sorted(files):
            file = Path(root, name)
            digest.update(file.relative_to(path).as_posix().encode() + b"\0")
            if file.is_file() and not file.is_symlink():
                digest.update(hashlib.sha256(file.read_bytes()).digest())
    return digest.hexdigest()


def _local_path(token: str) -> str | None:
    """The path a requirement token names when it is one (``./pkg``, ``../x.whl``, ``/abs``,
    ``file:...``, ``pkg/sub``), else None (a name, a URL)."""
    token = token.split(";", 1)[0].strip()
    if token.startswith("file:"):
        token = token.removeprefix("file:").removeprefix("//")
    elif "://" in token or "@" in token:
        return None
    token = re.sub(r"\[[^\]]*\]$", "", token)  # extras
    if token.startswith((".", "/")) or "/" in token or token.endswith((".whl", ".tar.gz", ".zip")):
        return token
    return None


def requirements_key(folder: Path, source: str, python: str) -> str | None:
    """The env key of the source in ``folder`` (digest ``source``) for interpreter ``python``, or None
    when it has no ``requirements.txt``. :class:`RequirementsError` for an editable (``-e``) line."""
    path = folder / REQUIREMENTS
    if not path.is_file():
        return None
    text = path.read_bytes()
    digest = hashlib.sha256(b"skyrig-hosted env 1\0")
    digest.update(hashlib.sha256(text).hexdigest().encode() + b"\0")
    digest.update(f"{python}\0{os.path.realpath(python)}\0".encode())
    root = folder.resolve()
    for raw in text.decode(errors="replace").splitlines():
        line = re.sub(r"(^|\s)#.*$", "", raw).strip()
        if not line:
            continue
        words = line.split()
        option = words[0].split("=", 1)[0]
        if option in _EDITABLE or (option.startswith("-e") and len(option) > 2):
            raise RequirementsError(
                f"{REQUIREMENTS}: {line!r}: editable installs (-e) are not supported on the host; name the "
                f"folder without -e"
            )
        if option in _WHOLE_SOURCE or option[:2] in ("-r", "-c", "-f"):
            digest.update(f"source {source}\0".encode())
            continue
        if option.startswith("-"):
            continue
        local = _local_path(words[0])
        if local is None:
            continue
        target = (folder / local).resolve()
        if target.is_relative_to(root) and target.exists():
            digest.update(f"{local}\0{_tree_digest(target)}\0".encode())
    return digest.hexdigest()


def _has_local_paths(folder: Path) -> bool:
    text = (folder / REQUIREMENTS).read_text(errors="replace")
    for raw in text.splitlines():
        line = re.sub(r"(^|\s)#.*$", "", raw).strip()
        if line and (line.startswith(("-r", "-c", "-f", "--requirement", "--constraint", "--find-links"))):
            return True
        if line and not line.startswith("-") and _local_path(line.split()[0]) is not None:
            return True
    return False


@dataclass
class Build:
    """One build of an env: ``done`` is set when it ended; then ``python`` (it succeeded) or ``tail``."""

    key: str
    finished_at: float = 0.0
    done: threading.Event = field(default_factory=threading.Event)
    python: str | None = None
    tail: list[str] = field(default_factory=list)
    seconds: float = 0.0


def _seal(folder: Path, uid: int, gid: int) -> None:
    """Every entry of ``folder`` owned by ``uid:gid``, folders 0755, files 0644 (0755 when executable);
    no link followed (a link itself is only re-owned)."""
    for root, folders, files in os.walk(folder):
        for name in [*folders, *files]:
            path = Path(root, name)
            if path.is_symlink():
                with contextlib.suppress(OSError):
                    os.lchown(path, uid, gid)
                continue
            _seal_one(path, uid, gid)
    _seal_one(str(folder), uid, gid)


def _seal_one(path: str | Path, uid: int, gid: int) -> None:
    try:
        descriptor = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:  # a link put there meanwhile, a socket: left as is
        return
    try:
        info = os.fstat(descriptor)
        if os.geteuid() == 0:
            os.fchown(descriptor, uid, gid)
        directory = (info.st_mode & 0o170000) == 0o040000
        os.fchmod(descriptor, 0o755 if directory or info.st_mode & 0o100 else 0o644)
    finally:
        os.close(descriptor)


class Venvs:
    """The apps' virtual environments under ``DATA/envs`` (see the module's docstring)."""

    def __init__(self, data: Path, python: str, user: ServiceUser | None = None) -> None:
        self.folder = Path(data) / "envs"
        self.python = python
        self.user = user
        self.timeout = BUILD_TIMEOUT
        self._lock = threading.Lock()
        self._builds: dict[str, Build] = {}
        self._keys: dict[str, str | None] = {}
        self._processes: set[subprocess.Popen[bytes]] = set()
        self._closing = False

    def prepare(self) -> None:
        """At host start: the folder made (0711: a service user runs the envs' python) and what a dead
        host's builds left stopped (each only when its pid still names its build folder) and removed."""
        self.folder.mkdir(parents=True, exist_ok=True)
        self.folder.chmod(0o711)
        for pid_file in self.folder.glob(".pid-*"):
            try:
                pid = int(pid_file.read_text().strip())
                command = Path(f"/proc/{pid}/cmdline").read_bytes() if pid > 0 else b""
            except (OSError, ValueError):
                command = b""
            if str(self.folder / pid_file.name.removeprefix(".pid-")).encode() in command:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(pid, signal.SIGKILL)  # its session: pip and a package's build
            pid_file.unlink(missing_ok=True)
        for leftover in self.folder.glob(".build-*"):
            shutil.rmtree(leftover, ignore_errors=True)

    def close(self) -> None:
        """At host end: the builds running are stopped (what they leave is removed at the next start)."""
        with self._lock:
            self._closing = True
            processes = list(self._processes)
        for process in processes:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(process.pid, signal.SIGKILL)

    def key(self, source_folder: Path, source: str) -> str | None:
        """The env key of a source (None: no ``requirements.txt``); kept, a source never changes."""
        if source not in self._keys:
            self._keys[source] = requirements_key(source_folder, source, self.python)
        return self._keys[source]

    def path(self, key: str) -> Path:
        return self.folder / key

    def interpreter(self, key: str) -> str | None:
        """The env's python when it is built, else None."""
        python = self.path(key) / "bin" / "python"
        return str(python) if python.exists() else None

    def ensure(self, key: str, source_folder: Path, *, retry: bool = False) -> Build:
        """The build of ``key``: one already done (its env on disk), the one running, the last one when it
        failed (unless ``retry``: a deployment tries again), or a new one started in a thread of its own."""
        with self._lock:
            build = self._builds.get(key)
            if build is not None and not build.done.is_set():
                return build
            if build is not None and build.python is None and not retry:
                return build
            if build is not None and build.python is not None and Path(build.python).exists():
                return build
            build = Build(key)
            python = self.interpreter(key)
            if python is not None:
                build.python = python
                build.done.set()
            else:
                threading.Thread(
                    target=self._run, args=(build, source_folder), name=f"skyrig-env-{key[:12]}", daemon=True
                ).start()
            self._builds[key] = build
            return build

    def collect(self, in_use: set[str]) -> list[str]:
        """Removes the envs no deployment uses (none building); answers their keys."""
        removed = []
        if not self.folder.is_dir():
            return removed
        with self._lock:
            recent = time.monotonic() - GRACE_SECONDS
            building = {  # running, or just built for a deployment not recorded yet
                key
                for key, build in self._builds.items()
                if not build.done.is_set() or build.finished_at > recent
            }
            for folder in self.folder.iterdir():
                if KEY.fullmatch(folder.name) and folder.name not in in_use | building:
                    shutil.rmtree(folder, ignore_errors=True)
                    self._builds.pop(folder.name, None)
                    removed.append(folder.name)
            for failed in self.folder.glob(".failed-*.log"):
                if failed.name[8:-4] not in in_use | building:
                    failed.unlink(missing_ok=True)
        return removed

    def keys_of(self, sources: Path, digests: set[str]) -> set[str]:
        """The env keys of the sources ``digests`` (those on disk)."""
        keys = set()
        for digest in digests:
            folder = sources / digest
            with contextlib.suppress(OSError, RequirementsError):
                if folder.is_dir() and (key := self.key(folder, digest)) is not None:
                    keys.add(key)
        return keys

    # -- the build ---------------------------------------------------------------------------------------

    def _run(self, build: Build, source_folder: Path) -> None:
        started = time.monotonic()
        try:
            build.python = self._build(build.key, source_folder, build.tail)
        except Exception as error:  # said in the deployment's log, the host goes on
            log.warning("the env %s could not be built: %s", build.key[:12], error)
            build.tail.append(f"skyrig-hosted: installing {REQUIREMENTS} failed: {error}")
        finally:
            build.seconds = time.monotonic() - started
            build.finished_at = time.monotonic()
            build.done.set()

    def _environ(self, staging: Path) -> dict[str, str]:
        """pip's whole environment: PATH, LANG, its own HOME and TMPDIR, the host's PIP_* variables."""
        environ = {
            "PATH": os.environ.get("PATH", os.defpath),
            "LANG": os.environ.get("LANG", "C.UTF-8"),
            "HOME": str(staging / "home"),
            "TMPDIR": str(staging / "tmp"),
            "PYTHONDONTWRITEBYTECODE": "1",
        }
        environ.update({name: value for name, value in os.environ.items() if name.startswith("PIP_")})
        return environ

    def _step(self, command: list[str], cwd: Path, staging: Path, output: list[str], deadline: float) -> int:
        """Runs one step of the build (as the service user when there is one), its output appended to
        ``output``; its exit status (the whole session killed on timeout)."""
        process = subprocess.Popen(
            command,
            cwd=cwd,
            env=self._environ(staging),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            **(self.user.popen() if self.user else {}),  # type: ignore[arg-type]
        )
        with self._lock:
            self._processes.add(process)
            if self._closing:
                os.killpg(process.pid, signal.SIGKILL)
        pid_file = self.folder / f".pid-{staging.name}"  # the host's alone (DATA/envs is)
        pid_file.write_text(f"{process.pid}\n")
        try:
            said, _ = process.communicate(timeout=max(1.0, deadline - time.monotonic()))
            status = process.returncode
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            said, _ = process.communicate()
            output.extend(said.decode(errors="replace").splitlines())
            output.append(f"skyrig-hosted: timed out after {self.timeout:.0f} s")
            return -1
        finally:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(process.pid, signal.SIGKILL)  # anything a package's setup left behind
            with self._lock:
                self._processes.discard(process)
            pid_file.unlink(missing_ok=True)
        output.extend(said.decode(errors="replace").splitlines())
        return status

    def _site_packages(self, deadline: float, staging: Path) -> list[str]:
        """The service interpreter's site-packages when it is a virtual environment itself (a venv made
        from it sees only its base's), else none."""
        probe = (
            "import site, sys\n"
            "if sys.prefix != sys.base_prefix:\n"
            "    print('\\n'.join(site.getsitepackages()))\n"
        )
        lines: list[str] = []
        if self._step([self.python, "-c", probe], Path("/"), staging, lines, deadline) != 0:
            raise RuntimeError(f"{self.python} cannot run: {' '.join(lines[-3:])}")
        return [line for line in lines if line.startswith("/")]

    def _build(self, key: str, source_folder: Path, tail: list[str]) -> str:
        """Builds the env ``key`` in a temporary folder, renamed into place when pip succeeded; its python."""
        self.folder.mkdir(parents=True, exist_ok=True)
        deadline = time.monotonic() + self.timeout
        staging = Path(tempfile.mkdtemp(prefix=f".build-{key[:12]}-", dir=self.folder))
        output: list[str] = []
        try:
            for name in ("home", "tmp"):
                (staging / name).mkdir()
            cwd = source_folder
            if _has_local_paths(source_folder):  # a local package's build writes in its folder: a copy
                cwd = staging / "src"
                shutil.copytree(source_folder, cwd, symlinks=True)
            if self.user is not None:
                _seal(staging, self.user.uid, self.user.gid)
                for path in (staging, staging / "home", staging / "tmp"):
                    path.chmod(0o700)
            venv = staging / "env"
            sites = self._site_packages(deadline, staging)
            steps = [[self.python, "-m", "venv", "--without-pip", "--system-site-packages", str(venv)]]
            for command in steps:
                if self._step(command, cwd, staging, output, deadline) != 0:
                    raise RuntimeError("the virtual environment could not be made")
            python = venv / "bin" / "python"
            if sites:
                purelib = subprocess.run(
                    [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                    capture_output=True,
                    text=True,
                    check=True,
                    timeout=60,
                    env=self._environ(staging),
                ).stdout.strip()
                lines = "".join(f"import site; site.addsitedir({site!r})\n" for site in sites)
                pth = Path(purelib) / "_skyrig_service_python.pth"
                pth.write_text(lines)
                if self.user is not None:
                    os.chown(pth, self.user.uid, self.user.gid)
            has_pip = self._step([str(python), "-c", "import pip"], cwd, staging, [], deadline) == 0
            if not has_pip and self._step([str(python), "-m", "ensurepip"], cwd, staging, output, deadline):
                raise RuntimeError("pip is not installed for the service interpreter, nor ensurepip")
            install = [
                str(python), "-m", "pip", "install", "--no-input", "--disable-pip-version-check",
                "-r", REQUIREMENTS,
            ]  # fmt: skip
            if self._step(install, cwd, staging, output, deadline) != 0:
                raise RuntimeError("pip failed")
            final = self.path(key)
            if self.user is not None:
                os.chown(staging, os.geteuid(), os.getegid())
                staging.chmod(0o700)  # the service user's way in closed before the env is sealed
            (venv / "build.log").write_text("\n".join(output) + "\n")
            self._fix_scripts(venv, final)
            _seal(venv, os.geteuid(), os.getegid())
            try:
                venv.rename(final)
            except OSError:
                if not final.is_dir():
                    raise
            return str(final / "bin" / "python")
        except Exception:
            tail.extend(output[-TAIL:])
            failed = self.folder / f".failed-{key}.log"
            failed.write_text("\n".join(output) + "\n")
            raise
        finally:
            shutil.rmtree(staging, ignore_errors=True)

    @staticmethod
    def _fix_scripts(venv: Path, final: Path) -> None:
        """The env's scripts name their python by its path in the staging folder: by its final one."""
        old, new = f"#!{venv}/bin/".encode(), f"#!{final}/bin/".encode()
        for script in (venv / "bin").iterdir():
            if script.is_symlink() or not script.is_file():
                continue
            with contextlib.suppress(OSError):
                data = script.read_bytes()
                if data.startswith(old):
                    script.write_bytes(new + data[len(old) :])
