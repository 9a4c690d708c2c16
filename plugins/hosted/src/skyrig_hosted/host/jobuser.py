"""Preview jobs kept from the host: the OS user a job runs as, its folders, and where its state may go.

A pull request controls its checkout: its ``skyrig.toml`` (the ``state`` URL, migration paths) and what
``git`` finds there. With ``skyrig-hosted serve --service-user USER`` every job of an app runs as an
unprivileged user (:func:`job_user`): a uid of the app's own from ``--service-uids`` (kept in the store,
``apps.job_uid``, never one an environment's services have: given from the range's top, theirs from its
bottom), else ``USER``; in ``USER``'s group alone,
umask 077. Its folders (:func:`job_folders`):

- ``DATA/apps`` and ``DATA/apps/APP``: the host's, 0711 (the way to the two below; never listed);
- ``DATA/apps/APP/checkout``: the job user's, 0700, its ``.skyrig/`` state kept between jobs (a checkout
  an earlier host made as root is handed over, without following any link);
- ``DATA/apps/APP/home``: the job user's, 0700, its ``HOME`` and ``TMPDIR``.

Whatever the user, a job whose ``skyrig.toml`` keeps the preview's state in a SQLite file outside the
checkout is refused before ``skyrig`` runs (:func:`state_outside`): the app-level ``state``, and that of
the environment the job uses (``pr:N`` when declared, the preview template). Other stores (``s3://``,
``postgresql://``...) are not files of the host and are allowed.
"""

from __future__ import annotations

import os
import stat
import tomllib
from pathlib import Path
from typing import Any

from skyrig_hosted.host.isolation import ServiceUser

CONFIG_FILE = "skyrig.toml"
MAX_CONFIG = 1024 * 1024
"""Bytes of ``skyrig.toml`` the host reads to check it (a larger one is left to ``skyrig`` itself)."""
UID_LOCK = 17021
"""The advisory lock under which uids of ``--service-uids`` are given (the services' too)."""
SCHEMA = """
ALTER TABLE apps ADD COLUMN IF NOT EXISTS job_uid integer UNIQUE;
ALTER TABLE environments ADD COLUMN IF NOT EXISTS service_uid integer UNIQUE;
"""


class JobUserError(RuntimeError):
    """A job cannot run as its user (one line for the job's log)."""


def job_user(
    store: Any, app: str, user: ServiceUser | None, uids: tuple[int, int] | None
) -> ServiceUser | None:
    """The user the app's jobs run as: None (the host's own) without a service user; with ``uids`` a uid
    of the app's own from the range, in ``user``'s group (the largest free one at first, kept after)."""
    if user is None or uids is None:
        return user
    first, last = uids
    with store._transaction() as connection:
        connection.execute("SELECT pg_advisory_xact_lock(%s)", (UID_LOCK,))
        row = connection.execute("SELECT job_uid FROM apps WHERE name = %s", (app,)).fetchone()
        if row is None:
            raise JobUserError(f"app {app!r} was deleted")
        uid = row["job_uid"]
        if uid is None or not first <= uid <= last:
            free = connection.execute(
                # from the range's top (the services' uids are given from its bottom)
                "SELECT max(u) AS uid FROM generate_series(%s::integer, %s::integer) AS u "
                "WHERE NOT EXISTS (SELECT 1 FROM environments WHERE service_uid = u) "
                "AND NOT EXISTS (SELECT 1 FROM apps WHERE job_uid = u)",
                (first, last),
            ).fetchone()
            if free is None or free["uid"] is None:
                raise JobUserError(
                    f"every uid of --service-uids {first}-{last} is taken (by environments and apps' jobs): "
                    f"serve with a larger range"
                )
            uid = int(free["uid"])
            connection.execute("UPDATE apps SET job_uid = %s WHERE name = %s", (uid, app))
    return ServiceUser(f"uid {uid}", uid, user.gid)


def job_folders(data: Path, app: str, user: ServiceUser) -> tuple[Path, Path]:
    """The app's checkout and its jobs' home, both ``user``'s alone (0700), on a way only traversable
    (``DATA/apps`` and ``DATA/apps/APP``: the host's, 0711). Made if missing; handed over to ``user``
    when another owns them."""
    apps = data / "apps"
    folder = apps / app
    folder.mkdir(mode=0o711, parents=True, exist_ok=True)
    for way in (apps, folder):
        if way.is_symlink() or way.lstat().st_uid != os.geteuid():
            raise JobUserError(f"{way} is not the host's own folder: remove it")
        way.chmod(0o711)
    checkout, home = folder / "checkout", folder / "home"
    for mine in (checkout, home):
        if mine.is_symlink():
            mine.unlink()
        mine.mkdir(mode=0o700, exist_ok=True)
        _hand_over(mine, user)
    return checkout, home


def _hand_over(folder: Path, user: ServiceUser) -> None:
    """``folder`` and all in it owned by ``user`` (its top last, so an interrupted walk is done again),
    without following a link: ``os.fwalk`` works on the folders' descriptors."""
    info = folder.lstat()
    if (info.st_uid, info.st_gid) != (user.uid, user.gid):
        for _, folders, files, descriptor in os.fwalk(folder, follow_symlinks=False):
            for name in (*folders, *files):
                os.chown(name, user.uid, user.gid, dir_fd=descriptor, follow_symlinks=False)
        os.chown(folder, user.uid, user.gid, follow_symlinks=False)
    if stat.S_IMODE(info.st_mode) != 0o700:
        folder.chmod(0o700)


def state_outside(checkout: Path, pr: int) -> str | None:
    """Why the checkout's ``skyrig.toml`` may not run as preview ``pr:N`` on the host (its state in a
    SQLite file outside the checkout, or the file itself a link out of it), or None. A file the host
    cannot read as TOML is left to ``skyrig``, which says what is wrong with it."""
    root = Path(os.path.realpath(checkout))
    config = Path(os.path.realpath(checkout / CONFIG_FILE))
    if not config.is_relative_to(root):
        return (
            f"{CONFIG_FILE} is a link to {config}, outside the checkout: a preview's {CONFIG_FILE} is a "
            f"file of the app's repository"
        )
    data = _toml(config)
    if data is None:
        return None
    for where, url in _states(data, pr):
        path = _sqlite_file(url, root)
        if path is not None and not Path(os.path.realpath(path)).is_relative_to(root):
            return (
                f"{CONFIG_FILE}: {where} = {url!r} keeps state in a SQLite file outside the app's checkout "
                f"({os.path.realpath(path)}): on the host, a preview's state stays in its checkout (the "
                f"default, sqlite:///.skyrig/state.db) or in a store such as s3:// or postgresql://"
            )
    return None


def _toml(path: Path) -> dict[str, Any] | None:
    """The TOML of the regular file ``path`` (no link followed, no FIFO waited on), or None."""
    try:
        descriptor = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        return None
    with os.fdopen(descriptor, "rb") as handle:
        if not stat.S_ISREG(os.fstat(descriptor).st_mode):
            return None
        raw = handle.read(MAX_CONFIG + 1)
    if len(raw) > MAX_CONFIG:
        return None
    try:
        return tomllib.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError):
        return None


def _tables(data: dict[str, Any], name: str) -> list[tuple[str, Any]]:
    """The entries of ``data`` named ``name`` in any case (skyrig reads the file's top-level keys so)."""
    return [(key, value) for key, value in data.items() if isinstance(key, str) and key.lower() == name]


def _states(data: dict[str, Any], pr: int) -> list[tuple[str, str]]:
    """The state URLs a ``skyrig preview`` of ``pr:N`` may use, with where each is set: the app's, and
    those of ``pr:N`` (when declared), of ``[preview] template`` and of every environment of type
    ``preview`` (the template when none is named)."""
    found = [(key, value) for key, value in _tables(data, "state") if isinstance(value, str)]
    environments: dict[str, Any] = {}
    for _, table in _tables(data, "env"):
        if isinstance(table, dict):
            environments.update(table)
    templates = {
        value.get("template")
        for _, value in _tables(data, "preview")
        if isinstance(value, dict) and isinstance(value.get("template"), str)
    }
    for name, env in sorted(environments.items()):
        if not isinstance(env, dict):
            continue
        if name == f"pr:{pr}" or name in templates or env.get("type") == "preview":
            for key, value in _tables(env, "state"):
                if isinstance(value, str):
                    found.append((f"env.{name}.{key}", value))
    return found


def _sqlite_file(url: str, root: Path) -> Path | None:
    """The file of a ``sqlite://`` state URL as skyrig opens it (``sqlite:///relative/to/the/app.db``,
    ``sqlite:////absolute.db``), or None for another store."""
    scheme, separator, rest = url.strip().partition("://")
    if not separator or scheme.lower() != "sqlite":
        return None
    path = Path(rest[1:] if rest.startswith("/") else rest)
    return path if path.is_absolute() else root / path
