"""Source archives: an app's folder as a gzip'd tar, named by the SHA-256 of its bytes.

``PUT /v1/apps/{app}/sources/{sha256}`` (the raw archive, at most :data:`MAX_ARCHIVE` bytes) checks the
digest, extracts the archive safely (tarfile's ``data`` filter: no absolute paths, no ``..``, no link out
of the folder, no device) into a temporary folder and renames it to ``DATA/sources/{sha256}``, so a
source is there whole or not at all. ``GET`` the same says whether the app has it. Folders are shared by
digest between apps; each app's uploads are rows of the store (table ``sources``), and
:meth:`Sources.collect` removes those no deployment uses (then the folders no app has).
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import re
import shutil
import tarfile
import tempfile
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio.to_thread
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from skyrig_hosted.host.isolation import open_source
from skyrig_hosted.host.store import Store

if TYPE_CHECKING:
    from skyrig_hosted.host.api import HostApi

log = logging.getLogger("skyrig_hosted.host.sources")

MAX_ARCHIVE = 64 * 1024 * 1024
SHA256 = re.compile(r"[0-9a-f]{64}")
GRACE_SECONDS = 600
"""An upload no deployment uses yet is kept this long (a deploy in flight uploads, then deploys)."""

SCHEMA = """
CREATE TABLE IF NOT EXISTS sources (
    app text NOT NULL REFERENCES apps (name) ON DELETE CASCADE,
    sha256 text NOT NULL CHECK (sha256 ~ '^[0-9a-f]{64}$'),
    size bigint NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (app, sha256)
);
"""


class BadArchive(ValueError):
    """The bytes are not a gzip'd tar, or an entry would land outside its folder."""


class Sources:
    """The source archives on disk (``DATA/sources``) and which app uploaded which (the store)."""

    def __init__(self, store: Store, data: Path) -> None:
        self.store = store
        self.folder = Path(data) / "sources"
        self.folder.mkdir(parents=True, exist_ok=True)
        with store._transaction() as connection:
            connection.execute("SELECT pg_advisory_xact_lock(17019)")
            connection.execute(SCHEMA)

    def path(self, sha256: str) -> Path:
        """The folder a source is extracted in."""
        return self.folder / sha256

    def get(self, app: str, sha256: str) -> dict[str, Any] | None:
        """``{"sha256", "size"}`` when ``app`` uploaded it (and it is on disk), else None."""
        with self.store._transaction() as connection:
            row = connection.execute(
                "SELECT size FROM sources WHERE app = %s AND sha256 = %s", (app, sha256)
            ).fetchone()
        if row is None or not self.path(sha256).is_dir():
            return None
        return {"sha256": sha256, "size": int(row["size"])}

    def keep(self, app: str, sha256: str, archive: Path, size: int) -> bool:
        """Extracts ``archive`` (its digest checked by the caller) unless the folder exists, and records
        it for ``app``; answers whether the app did not have it before."""
        final = self.path(sha256)
        if not final.is_dir():
            staging = Path(tempfile.mkdtemp(prefix=".extract-", dir=self.folder))
            try:
                try:
                    with tarfile.open(archive, "r:gz") as tar:
                        tar.extractall(staging, filter="data")
                except (tarfile.TarError, OSError, EOFError) as error:
                    raise BadArchive(f"{type(error).__name__}: {error}") from None
                open_source(staging)  # an app's code, for its services' user (DATA/sources is 0711)
                try:
                    staging.rename(final)
                except OSError:
                    if not final.is_dir():  # another upload of the same digest won the race otherwise
                        raise
            finally:
                shutil.rmtree(staging, ignore_errors=True)
        with self.store._transaction() as connection:
            made = connection.execute(
                "INSERT INTO sources (app, sha256, size) VALUES (%s, %s, %s) "
                "ON CONFLICT (app, sha256) DO NOTHING RETURNING sha256",
                (app, sha256, size),
            ).fetchone()
        return made is not None

    def collect(self, in_use: set[str], grace: float = GRACE_SECONDS) -> list[str]:
        """Forgets the uploads no deployment uses (older than ``grace`` seconds) and removes the folders
        no app has any more; answers the digests removed from disk."""
        with self.store._transaction() as connection:
            connection.execute(
                "DELETE FROM sources WHERE NOT (sha256 = ANY(%s)) "
                "AND created_at < now() - make_interval(secs => %s)",
                (sorted(in_use), grace),
            )
            kept = {row["sha256"] for row in connection.execute("SELECT DISTINCT sha256 FROM sources")}
        removed = []
        for folder in self.folder.iterdir():
            if SHA256.fullmatch(folder.name) and folder.name not in kept | in_use:
                shutil.rmtree(folder, ignore_errors=True)
                removed.append(folder.name)
        return removed


async def _receive(request: Request, folder: Path) -> tuple[Path, str, int]:
    """The body, written to a temporary file in ``folder``: its path, SHA-256 and size."""
    from skyrig_hosted.host.api import ApiError

    too_large = ApiError(413, "too_large", f"the archive is too large (over {MAX_ARCHIVE} bytes)")
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_ARCHIVE:
        raise too_large
    descriptor, name = tempfile.mkstemp(prefix=".upload-", dir=folder)
    path = Path(name)
    digest, size = hashlib.sha256(), 0
    try:
        with os.fdopen(descriptor, "wb") as handle:
            async for chunk in request.stream():
                size += len(chunk)
                if size > MAX_ARCHIVE:
                    raise too_large
                digest.update(chunk)
                handle.write(chunk)
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    return path, digest.hexdigest(), size


def routes(api: HostApi, sources: Sources) -> list[Route]:
    """``PUT`` and ``GET`` ``/apps/{app}/sources/{sha256}`` (deployer tokens)."""
    from skyrig_hosted.host.api import APP_NAME, ApiError, Call, _name, error_response

    def checked(request: Request) -> tuple[str, str]:
        principal = api._authenticate(request)
        app = _name(request.path_params["app"], APP_NAME, "app")
        api._deployer(Call(principal, dict(request.path_params), None), app)
        sha256 = request.path_params["sha256"]
        if not SHA256.fullmatch(sha256):
            raise ApiError(400, "bad_name", f"{sha256!r} is not a SHA-256 (64 lowercase hex digits)")
        if not api.store.app_exists(app):
            raise ApiError(404, "not_found", f"no app {app!r}")
        return app, sha256

    def endpoint(
        handler: Callable[[Request], Awaitable[Response]],
    ) -> Callable[[Request], Awaitable[Response]]:
        async def run(request: Request) -> Response:
            try:
                return await handler(request)
            except ApiError as error:
                return error_response(error.status, error.code, error.message)
            except Exception as error:  # said without a traceback, logged here
                log.exception("%s %s failed", request.method, request.url.path)
                return error_response(500, "internal", f"the host failed: {type(error).__name__}")

        return run

    async def put(request: Request) -> Response:
        app, sha256 = await anyio.to_thread.run_sync(checked, request)
        archive, digest, size = await _receive(request, sources.folder)
        try:
            if digest != sha256:
                raise ApiError(
                    422,
                    "digest_mismatch",
                    f"the archive's SHA-256 is {digest}, not {sha256} as its path says",
                )
            try:
                made = await anyio.to_thread.run_sync(sources.keep, app, sha256, archive, size)
            except BadArchive as error:
                raise ApiError(422, "bad_archive", f"the archive is not a safe gzip'd tar: {error}") from None
        finally:
            with contextlib.suppress(OSError):
                archive.unlink()
        return JSONResponse({"source": {"sha256": sha256, "size": size}}, status_code=201 if made else 200)

    async def get(request: Request) -> Response:
        app, sha256 = await anyio.to_thread.run_sync(checked, request)
        found = await anyio.to_thread.run_sync(sources.get, app, sha256)
        if found is None:
            raise ApiError(404, "not_found", f"app {app!r} has no source {sha256}")
        return JSONResponse({"source": found})

    path = "/apps/{app}/sources/{sha256}"
    return [
        Route(path, endpoint(put), methods=["PUT"]),
        Route(path, endpoint(get), methods=["GET"]),
    ]
