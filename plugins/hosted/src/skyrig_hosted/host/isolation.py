"""Services isolated from the host by the OS: another user, and a data folder closed to it.

``skyrig-hosted serve --service-user USER`` runs every service process as ``USER`` and its group (no
other group), umask 077, ``HOME`` a folder of its own (``DATA/homes/<env id>.<service>``, 0700, owned by
``USER``). The data folder is closed to every other user but for the way to the source folders:

- ``DATA`` and ``DATA/sources``, ``DATA/homes`` and ``DATA/envs`` are 0711 (traversable, not listable);
- each ``DATA/sources/<sha256>`` is 0755 with files 0644 (0755 when executable): an app's code, which
  every environment of that app runs anyway;
- everything else the host keeps (``host.key``, ``admin-token``, ``servers.json``, ``host.json``, the
  servers' data, ``services``, ``apps``, logs) is its owner's alone: :func:`harden` strips the group and
  other bits of each entry of ``DATA`` at start, and the host's umask 077 keeps what it makes after.

PostgreSQL's superuser logs in over its Unix socket only, whose folder is the server user's alone (0700);
over TCP every login is scram-sha-256 and the superuser is rejected (see :mod:`.servers`).

With ``--service-uids FIRST-LAST`` as well, each environment's processes run as a uid of its own from
that range (in ``USER``'s group), so that one environment cannot read another's ``HOME`` or processes.
"""

from __future__ import annotations

import os
import pwd
import stat
import subprocess
from dataclasses import dataclass
from pathlib import Path

OPEN = {"sources", "homes", "envs"}
"""The entries of ``DATA`` a service user may traverse (never list)."""
CHECK = "import skyrig.runtime.host"


class IsolationError(RuntimeError):
    """The service user or interpreter cannot be used (one line for the user)."""


@dataclass(frozen=True)
class ServiceUser:
    """The OS user (and its group) service processes run as."""

    name: str
    uid: int
    gid: int

    def popen(self) -> dict[str, object]:
        """``subprocess.Popen`` arguments that run a process as this user, its group alone, umask 077."""
        return {"user": self.uid, "group": self.gid, "extra_groups": [], "umask": 0o077}


def service_user(name: str) -> ServiceUser:
    """The user named ``name`` (or a numeric uid), checked: it exists, it is not root, the host is."""
    try:
        entry = pwd.getpwuid(int(name)) if name.isdigit() else pwd.getpwnam(name)
    except (KeyError, ValueError):
        raise IsolationError(
            f"--service-user {name}: no such user on this machine (create one, e.g. useradd --system "
            f"--no-create-home skyrig-svc, or use nobody)"
        ) from None
    if entry.pw_uid == 0 or entry.pw_gid == 0:
        raise IsolationError(
            f"--service-user {name}: services must not run as root or its group (choose another user, "
            f"e.g. nobody)"
        )
    if os.geteuid() != 0:
        raise IsolationError(
            f"--service-user {name}: only a host running as root can run services as another user"
        )
    return ServiceUser(entry.pw_name, entry.pw_uid, entry.pw_gid)


def service_uids(text: str, user: ServiceUser) -> tuple[int, int]:
    """``FIRST-LAST`` (``--service-uids``): a range of uids no user of this machine has, root's excluded,
    one per environment (their group: ``user``'s)."""
    first, _, last = text.partition("-")
    if not (first.isdigit() and last.isdigit()) or not 0 < int(first) <= int(last) < 2**31 - 1:
        raise IsolationError(
            f"--service-uids {text}: not a range of uids FIRST-LAST (e.g. 200000-299999, root's 0 excluded)"
        )
    span = range(int(first), int(last) + 1)
    for entry in pwd.getpwall():
        if entry.pw_uid in span:
            raise IsolationError(
                f"--service-uids {text}: uid {entry.pw_uid} is the user {entry.pw_name}'s; choose a range "
                f"no user of this machine has"
            )
    return span.start, span.stop - 1


def _closed_folder(path: Path, user: ServiceUser) -> Path | None:
    """The first folder on the way to ``path`` the user cannot traverse (by its mode bits), if any."""
    for parent in reversed(path.parents):
        info = parent.stat()
        if info.st_uid == user.uid:
            allowed = info.st_mode & stat.S_IXUSR
        elif info.st_gid == user.gid:
            allowed = info.st_mode & stat.S_IXGRP
        else:
            allowed = info.st_mode & stat.S_IXOTH
        if not allowed:
            return parent
    return None


def check_interpreter(user: ServiceUser, python: str) -> None:
    """Runs ``python -c "import skyrig.runtime.host"`` as ``user``; :class:`IsolationError` saying what
    to do when it cannot."""
    path = Path(python)
    if not path.is_file():
        raise IsolationError(f"--service-python {python}: no such file")
    try:
        done = subprocess.run(
            [python, "-c", CHECK],
            capture_output=True,
            text=True,
            timeout=60,
            cwd="/",
            env={"PATH": os.environ.get("PATH", os.defpath), "LANG": "C.UTF-8", "HOME": "/"},
            check=False,
            **user.popen(),  # type: ignore[arg-type]
        )
        failed, said = done.returncode != 0, (done.stderr or done.stdout).strip()
    except (OSError, subprocess.SubprocessError) as error:
        failed, said = True, f"{type(error).__name__}: {error}"
    if not failed:
        return
    last = said.splitlines()[-1] if said else "no output"
    closed = next(
        (folder for target in (path, path.resolve()) if (folder := _closed_folder(target, user))), None
    )
    where = f" ({closed} is closed to other users)" if closed else ""
    raise IsolationError(
        f"the service user {user.name} cannot run {python} with skyrig{where}: {last}; pass "
        f"--service-python an interpreter it can run with skyrig installed, or open its folders to it "
        f"(chmod o+rx)"
    )


def harden(data: Path) -> None:
    """Closes ``data`` to other users but for the way to the sources (see the module's docstring)."""
    data.chmod(0o711)
    for entry in data.iterdir():
        if entry.name in OPEN or entry.is_symlink():
            continue
        mode = entry.stat().st_mode
        if mode & 0o077:
            entry.chmod(stat.S_IMODE(mode) & 0o700)
    for name in OPEN:
        folder = data / name
        folder.mkdir(exist_ok=True)
        folder.chmod(0o711)
    for source in (data / "sources").iterdir():
        if source.is_dir() and not source.name.startswith("."):
            open_source(source)


def open_source(folder: Path) -> None:
    """A source folder readable by every user: folders 0755, files 0644 (0755 when executable), no link
    followed."""
    folder.chmod(0o755)
    for root, folders, files in os.walk(folder):
        for name in folders:
            path = Path(root, name)
            if not path.is_symlink():
                path.chmod(0o755)
        for name in files:
            path = Path(root, name)
            if not path.is_symlink():
                path.chmod(0o755 if path.stat().st_mode & stat.S_IXUSR else 0o644)


def service_home(data: Path, name: str, user: ServiceUser) -> Path:
    """``DATA/homes/<name>``, 0700, owned by ``user`` (made if missing)."""
    home = data / "homes" / name
    home.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chown(home, user.uid, user.gid)
    home.chmod(0o700)
    return home
