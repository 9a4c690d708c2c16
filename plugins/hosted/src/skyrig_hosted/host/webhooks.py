"""GitHub ``pull_request`` webhooks: a preview environment ``pr:N`` per pull request, on the host.

==========================================  ==================  ==========================================
route                                       tokens              what
==========================================  ==================  ==========================================
``PUT /v1/apps/{app}/github``               admin, the app's    ``{"secret", "repository", "forks"?}``: the
                                                                webhook's secret (16+ characters) and the
                                                                repository the host clones (both kept
                                                                encrypted); ``forks``: preview pull requests
                                                                from forks too (default false)
``GET /v1/apps/{app}/github``               admin, the app's    ``{"github": {"repository", "forks",
                                                                "configured"}}`` (a password hidden)
``DELETE /v1/apps/{app}/github``            admin, the app's    forgets it (webhooks are then refused)
``POST /v1/apps/{app}/github/webhook``      none: GitHub signs  ``X-Hub-Signature-256`` over the raw body
``GET /v1/apps/{app}/jobs``                 admin, the app's    the latest jobs, newest first
``GET /v1/apps/{app}/jobs/{id}``            admin, the app's    one job with the tail of its output
==========================================  ==================  ==========================================

A delivery is checked in this order: the app has a configuration (else 404), its signature (HMAC-SHA256
of the raw body with the secret, compared in constant time: 401 when missing or wrong), the
``X-GitHub-Event`` and ``X-GitHub-Delivery`` headers (400 when missing), its repository (by full name or
clone URL: 422 when it is another), then its delivery id: one seen before is refused (409 ``replayed``;
the ids are kept in the store, so this holds across restarts). ``ping`` answers 200; events other than
``pull_request`` and actions other than opened, reopened, synchronize and closed are answered 200 and
ignored, and so is a pull request from a fork unless ``forks`` is set (anyone's code would be deployed,
its ``skyrig.toml`` and migrations applied, with the app's deploy token). A pull request's delivery
answers 202 with the job it queued (:mod:`skyrig_hosted.host.jobs`).

Each app's jobs deploy with a deploy token: an app token the host makes with the first configuration and
keeps encrypted (never shown, never in a job's log).
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import json
import logging
import re
import sys
import urllib.parse
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio.to_thread
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from skyrig_hosted.host.api import (
    APP_NAME,
    ApiError,
    Call,
    HostApi,
    _field,
    _name,
    _object,
    _only,
    read_limited,
)
from skyrig_hosted.host.isolation import ServiceUser
from skyrig_hosted.host.jobs import CLOSE, OPEN, Checkout, Jobs, preview_command, remove_checkout, shown
from skyrig_hosted.host.store import Store
from skyrig_hosted.host.tokens import APP, digest, new_token

log = logging.getLogger("skyrig_hosted.host.webhooks")

SCHEMA = """
CREATE TABLE IF NOT EXISTS github (
    app text PRIMARY KEY REFERENCES apps (name) ON DELETE CASCADE,
    repository_encrypted text NOT NULL,
    secret_encrypted text NOT NULL,
    deploy_token_encrypted text NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE IF NOT EXISTS deliveries (
    app text NOT NULL REFERENCES apps (name) ON DELETE CASCADE,
    id text NOT NULL,
    received_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (app, id)
);
ALTER TABLE github ADD COLUMN IF NOT EXISTS forks boolean NOT NULL DEFAULT false;
"""

MIN_SECRET = 16
MAX_PAYLOAD = 8 * 1024 * 1024
"""Bytes a delivery may have (GitHub caps payloads at 25 MB; a pull request's is far smaller)."""
ACTIONS = {"opened": OPEN, "reopened": OPEN, "synchronize": OPEN, "closed": CLOSE}
SHA = re.compile(r"[0-9a-f]{40}|[0-9a-f]{64}")
DELIVERY = re.compile(r"[A-Za-z0-9-]{1,100}")


@dataclass(frozen=True)
class GitHub:
    """An app's GitHub configuration, decrypted."""

    repository: str
    secret: str
    deploy_token: str
    forks: bool = False


def signature(secret: str, body: bytes) -> str:
    """What GitHub sends in ``X-Hub-Signature-256`` for ``body``."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def _normal(location: str) -> str:
    """A repository's location compared case-insensitively, without scheme, user, ``.git`` or a final
    slash, ``host:path`` as ``host/path``."""
    text = location.strip().lower()
    text = re.sub(r"^[a-z][a-z0-9+.-]*://", "", text)
    text = re.sub(r"^[^/@]*@", "", text)
    head, slash, rest = text.partition("/")
    text = head.replace(":", "/") + slash + rest
    text = text.rstrip("/")
    return text.removesuffix(".git").rstrip("/")


def same_repository(configured: str, repository: Any) -> bool:
    """Whether the payload's ``repository`` is the ``configured`` one: by one of its URLs, or by its full
    name (``owner/name``) ending the configured location."""
    if not isinstance(repository, dict):
        return False
    mine = _normal(configured)
    for key in ("clone_url", "ssh_url", "git_url", "html_url", "svn_url"):
        value = repository.get(key)
        if isinstance(value, str) and value and _normal(value) == mine:
            return True
    full_name = repository.get("full_name")
    if isinstance(full_name, str) and full_name.count("/") == 1:
        name = _normal(full_name)
        return mine == name or mine.endswith("/" + name)
    return False


class Webhooks:
    """The GitHub routes and the app's preview jobs, over the host's store and ``DATA``."""

    def __init__(
        self,
        store: Store,
        data: Path,
        *,
        command: Any = None,
        timeout: float | None = None,
        user: ServiceUser | None = None,
        python: str | None = None,
        uids: tuple[int, int] | None = None,
    ):
        """``command`` (action, pr) -> argv: what a job runs (default: ``skyrig preview`` with
        ``python``); ``user`` and ``uids``: who runs it (``serve --service-user``, ``--service-uids``)."""
        self.store = store
        self.data = data
        options: dict[str, Any] = {} if timeout is None else {"timeout": timeout}
        if command is None:
            command = functools.partial(preview_command, python=python or sys.executable)
        self.jobs = Jobs(store, data, self.checkout, command=command, user=user, uids=uids, **options)

    # -- lifecycle ---------------------------------------------------------------------------------------

    def start(self) -> None:
        """Makes the tables if missing, then runs the jobs a previous host left."""
        with self.store._transaction() as connection:
            connection.execute("SELECT pg_advisory_xact_lock(17017)")
            connection.execute(SCHEMA)
        self.jobs.start()

    def close(self) -> None:
        """Stops the jobs' workers (a running job runs again at the next start)."""
        self.jobs.close()

    def forget(self, app: str) -> None:
        """The app is being deleted: its jobs stop and its checkout goes (its rows go with the app's)."""
        self.jobs.forget(app)

    def __enter__(self) -> Webhooks:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- the store ---------------------------------------------------------------------------------------

    def github(self, app: str) -> GitHub | None:
        """The app's configuration, or None."""
        with self.store._transaction() as connection:
            row = connection.execute("SELECT * FROM github WHERE app = %s", (app,)).fetchone()
        if row is None:
            return None
        key = self.store.key
        return GitHub(
            key.decrypt(row["repository_encrypted"]),
            key.decrypt(row["secret_encrypted"]),
            key.decrypt(row["deploy_token_encrypted"]),
            row["forks"],
        )

    def checkout(self, app: str) -> Checkout | None:
        """Where the app's jobs fetch from, and their token."""
        found = self.github(app)
        return None if found is None else Checkout(found.repository, found.deploy_token)

    def _configure(self, app: str, repository: str, secret: str, forks: bool) -> bool:
        """Keeps the configuration; the deploy token is made with the first one. Answers whether it is new."""
        key = self.store.key
        with self.store._transaction() as connection:
            if not connection.execute("SELECT 1 FROM apps WHERE name = %s FOR UPDATE", (app,)).fetchone():
                raise ApiError(404, "not_found", f"no app {app!r}")
            updated = connection.execute(
                "UPDATE github SET repository_encrypted = %s, secret_encrypted = %s, forks = %s, "
                "updated_at = now() WHERE app = %s RETURNING app",
                (key.encrypt(repository), key.encrypt(secret), forks, app),
            ).fetchone()
            if updated is not None:
                return False
            token = new_token(APP)
            connection.execute(
                "INSERT INTO tokens (sha256, kind, app) VALUES (%s, %s, %s)", (digest(token), APP, app)
            )
            connection.execute(
                "INSERT INTO github (app, repository_encrypted, secret_encrypted, deploy_token_encrypted, "
                "forks) VALUES (%s, %s, %s, %s, %s)",
                (app, key.encrypt(repository), key.encrypt(secret), key.encrypt(token), forks),
            )
        return True

    # -- configuration routes ----------------------------------------------------------------------------

    def put_github(self, call: Call) -> tuple[int, Any]:
        app = _name(call.params["app"], APP_NAME, "app")
        HostApi._deployer(call, app)
        body = _object(call.body)
        _only(body, "secret", "repository", "forks")
        forks = bool(_field(body, "forks", bool, required=False))
        secret = _field(body, "secret", str)
        repository = _field(body, "repository", str).strip()
        if len(secret) < MIN_SECRET:
            raise ApiError(422, "invalid", f"'secret' must have at least {MIN_SECRET} characters")
        if not repository or repository.startswith("-") or any(c in repository for c in "\n\r\0"):
            message = "'repository' must be a git URL or a path the host can clone (not starting with '-')"
            raise ApiError(422, "invalid", message)
        if repository.lower().startswith("ext::"):
            raise ApiError(422, "invalid", "'repository' may not use git's ext:: transport")
        if self._configure(app, repository, secret, forks):
            remove_checkout(self.data, app)  # a checkout a deleted app of that name left: start afresh
            return 201, {"github": self._view(repository, forks)}
        return 200, {"github": self._view(repository, forks)}

    @staticmethod
    def _view(repository: str, forks: bool) -> dict[str, Any]:
        return {"repository": shown(repository), "forks": forks, "configured": True}

    def get_github(self, call: Call) -> tuple[int, Any]:
        app = _name(call.params["app"], APP_NAME, "app")
        HostApi._deployer(call, app)
        found = self.github(app)
        if found is None:
            raise ApiError(404, "not_found", f"app {app!r} has no GitHub configuration (PUT it first)")
        return 200, {"github": self._view(found.repository, found.forks)}

    def delete_github(self, call: Call) -> tuple[int, Any]:
        app = _name(call.params["app"], APP_NAME, "app")
        HostApi._deployer(call, app)
        found = self.github(app)
        with self.store._transaction() as connection:
            connection.execute("DELETE FROM github WHERE app = %s", (app,))
            if found is not None:  # its deploy token goes with it
                connection.execute("DELETE FROM tokens WHERE sha256 = %s", (digest(found.deploy_token),))
        return 204, None

    def list_jobs(self, call: Call) -> tuple[int, Any]:
        app = _name(call.params["app"], APP_NAME, "app")
        HostApi._deployer(call, app)
        if not self.store.app_exists(app):
            raise ApiError(404, "not_found", f"no app {app!r}")
        return 200, {"jobs": [job.view() for job in self.jobs.table.jobs(app)]}

    def get_job(self, call: Call) -> tuple[int, Any]:
        app = _name(call.params["app"], APP_NAME, "app")
        HostApi._deployer(call, app)
        raw = call.params["id"]
        job = self.jobs.table.job(app, int(raw)) if raw.isdigit() and len(raw) < 18 else None
        if job is None:
            raise ApiError(404, "not_found", f"no job {raw!r} in app {app!r}")
        return 200, {"job": job.view(with_log=True)}

    # -- the webhook -------------------------------------------------------------------------------------

    async def webhook(self, request: Request) -> Response:
        """``POST /v1/apps/{app}/github/webhook``: GitHub's delivery."""
        try:
            app = _name(request.path_params["app"], APP_NAME, "app")
            body = await read_limited(request, MAX_PAYLOAD, "the delivery")
            headers = {k.lower(): v for k, v in request.headers.items()}
            status, content = await anyio.to_thread.run_sync(self.receive, app, headers, body)
        except ApiError as error:
            return JSONResponse({"error": {"code": error.code, "message": error.message}}, error.status)
        except Exception as error:
            log.exception("a webhook of app %s failed", request.path_params.get("app"))
            content = {"error": {"code": "internal", "message": f"the host failed: {type(error).__name__}"}}
            return JSONResponse(content, 500)
        return JSONResponse(content, status)

    def receive(self, app: str, headers: dict[str, str], body: bytes) -> tuple[int, Any]:
        """One delivery, checked (see the module's documentation); answers the status and the body."""
        found = self.github(app)
        if found is None:
            raise ApiError(404, "not_configured", f"app {app!r} has no GitHub webhook configured")
        given = headers.get("x-hub-signature-256", "")
        if not given:
            raise ApiError(401, "bad_signature", "no X-Hub-Signature-256 header (set the webhook's secret)")
        expected = signature(found.secret, body)
        if not hmac.compare_digest(expected.encode(), given.encode("latin-1", "replace")):
            raise ApiError(401, "bad_signature", "X-Hub-Signature-256 does not match the secret")
        event = headers.get("x-github-event", "")
        delivery = headers.get("x-github-delivery", "")
        if not event:
            raise ApiError(400, "bad_request", "no X-GitHub-Event header")
        if not DELIVERY.fullmatch(delivery):
            raise ApiError(400, "bad_request", "no X-GitHub-Delivery header (or not a GUID)")
        payload = _payload(body, headers.get("content-type", ""))
        repository = payload.get("repository")
        if (event != "ping" or repository is not None) and not same_repository(found.repository, repository):
            name = repository.get("full_name") if isinstance(repository, dict) else None
            raise ApiError(
                422,
                "wrong_repository",
                f"the delivery is for repository {name!r}, not {shown(found.repository)!r} "
                f"(PUT /v1/apps/{app}/github names the repository)",
            )
        if event == "ping":
            self._record(app, delivery)
            return 200, {"pong": True}
        action = payload.get("action")
        if event != "pull_request" or action not in ACTIONS:
            self._record(app, delivery)
            what = f"event {event!r}" if event != "pull_request" else f"action {action!r}"
            return 200, {"ignored": f"{what} (only pull_request opened, reopened, synchronize, closed)"}
        pr, sha = _pull_request(payload)
        fork = _fork(payload)
        if fork is not None and not found.forks:
            self._record(app, delivery)
            reason = (
                f'a pull request from the fork {fork!r} (PUT .../github with "forks": true to preview them)'
            )
            return 200, {"ignored": reason}
        with self.store._transaction() as connection:
            self._record(app, delivery, connection)
            job = self.jobs.table.enqueue(connection, app, ACTIONS[action], pr, sha, action, delivery)
        self.jobs.kick(app)
        view = job.view()
        return 202, {"job": {k: view[k] for k in ("id", "action", "pr", "sha", "state")}}

    def _record(self, app: str, delivery: str, connection: Any = None) -> None:
        """Records the delivery id: 409 when it was seen before."""
        if connection is None:
            with self.store._transaction() as connection:
                return self._record(app, delivery, connection)
        inserted = connection.execute(
            "INSERT INTO deliveries (app, id) VALUES (%s, %s) ON CONFLICT DO NOTHING RETURNING id",
            (app, delivery),
        ).fetchone()
        if inserted is None:
            raise ApiError(409, "replayed", f"delivery {delivery} was received before: a replay is refused")
        return None

    # -- the application ---------------------------------------------------------------------------------

    def routes(self, api: HostApi) -> list[Route]:
        """The routes, mounted with the API's under ``/v1``."""
        e = api._endpoint
        return [
            Route("/apps/{app}/github", e(self.put_github), methods=["PUT"]),
            Route("/apps/{app}/github", e(self.get_github), methods=["GET"]),
            Route("/apps/{app}/github", e(self.delete_github), methods=["DELETE"]),
            Route("/apps/{app}/github/webhook", self.webhook, methods=["POST"]),
            Route("/apps/{app}/jobs", e(self.list_jobs), methods=["GET"]),
            Route("/apps/{app}/jobs/{id}", e(self.get_job), methods=["GET"]),
        ]


def _payload(body: bytes, content_type: str) -> dict[str, Any]:
    """The delivery's JSON: the body, or its ``payload`` field when GitHub sends a form."""
    try:
        if content_type.startswith("application/x-www-form-urlencoded"):
            fields = urllib.parse.parse_qs(body.decode(), strict_parsing=True)
            payload = json.loads(fields["payload"][0])
        else:
            payload = json.loads(body)
    except (UnicodeDecodeError, ValueError, KeyError) as error:
        raise ApiError(400, "bad_json", f"the delivery is not JSON: {error}") from None
    if not isinstance(payload, dict):
        raise ApiError(400, "bad_json", "the delivery is not a JSON object")
    return payload


def _fork(payload: dict[str, Any]) -> str | None:
    """The full name of the fork the pull request comes from, or None when it comes from the repository
    itself (or the payload does not say)."""
    pull, repository = payload.get("pull_request"), payload.get("repository")
    head = pull.get("head") if isinstance(pull, dict) else None
    source = head.get("repo") if isinstance(head, dict) else None
    name = source.get("full_name") if isinstance(source, dict) else None
    mine = repository.get("full_name") if isinstance(repository, dict) else None
    if isinstance(name, str) and isinstance(mine, str) and name.lower() != mine.lower():
        return name
    return None


def _pull_request(payload: dict[str, Any]) -> tuple[int, str]:
    """The pull request's number and head commit."""
    pull = payload.get("pull_request")
    number = payload.get("number", pull.get("number") if isinstance(pull, dict) else None)
    head = pull.get("head") if isinstance(pull, dict) else None
    sha = head.get("sha") if isinstance(head, dict) else None
    if not isinstance(number, int) or isinstance(number, bool) or number <= 0:
        raise ApiError(422, "invalid", "the delivery has no pull request number")
    if not isinstance(sha, str) or not SHA.fullmatch(sha):
        raise ApiError(422, "invalid", "the delivery has no pull_request.head.sha")
    return number, sha
