"""Cloud Scheduler v1, FAKE (:mod:`skyrig_gcp.fake`): jobs (not long-running).

A job is created with its full ``name`` in the body (``projects/P/locations/L/jobs/ID``, the id
``[a-zA-Z0-9_-]{1,500}``); it needs a unix-cron ``schedule`` (five fields), a valid ``timeZone`` and
exactly one target; an HTTP target's ``uri`` is an http(s) URL. Jobs are ENABLED, ``pause`` and ``resume``
switch them, ``run`` records an attempt.
"""

from __future__ import annotations

import re
import zoneinfo
from typing import Any

from skyrig_gcp.fake.apis.base import ApiHandler, Kind, Request
from skyrig_gcp.fake.errors import ApiError, already_exists, invalid, not_found
from skyrig_gcp.fake.operations import now_rfc3339

_NAME_MESSAGE = 'Job name must be formatted: "projects/<PROJECT_ID>/locations/<LOCATION_ID>/jobs/<JOB_ID>".'
_FIELD = re.compile(
    r"^(\*|\?|[0-9A-Za-z]+(-[0-9A-Za-z]+)?)(/\d+)?(,(\*|[0-9A-Za-z]+(-[0-9A-Za-z]+)?)(/\d+)?)*$"
)
TARGETS = ("httpTarget", "pubsubTarget", "appEngineHttpTarget")


def valid_schedule(schedule: str) -> bool:
    """Whether ``schedule`` is unix-cron (five fields) or an App Engine ``every N minutes`` schedule."""
    if re.fullmatch(r"every \d+ (minutes|hours|mins|hrs)( from \d\d:\d\d to \d\d:\d\d)?", schedule.strip()):
        return True
    fields = schedule.split()
    return len(fields) == 5 and all(_FIELD.match(field) for field in fields)


class CloudScheduler(ApiHandler):
    """Cloud Scheduler: jobs (create, get, list, patch, delete, pause, resume, run)."""

    api = "cloudscheduler"
    version = "v1"
    proto_package = "google.cloud.scheduler.v1"
    kinds = {
        "jobs": Kind(
            "jobs",
            "Job",
            id_pattern=r"[a-zA-Z0-9_-]{1,500}",
            id_message=_NAME_MESSAGE,
            ready={"state": "ENABLED"},
        )
    }

    def missing(self, key: str, kind: Kind | None = None) -> ApiError:
        return not_found(f"Job not found: {key}.")

    def exists(self, key: str, kind: Kind) -> ApiError:
        return already_exists(f"Job {key} already exists.")

    def create_id(self, req: Request, kind: Kind, collection: str, body: dict[str, Any]) -> str:
        name = str(body.get("name") or "")
        if not name or self.canonical(name).rsplit("/", 1)[0] != collection:
            raise invalid(_NAME_MESSAGE, "job.name")
        return name.rsplit("/", 1)[-1]

    def validate(
        self, req: Request, kind: Kind, key: str, resource: dict[str, Any], old: dict[str, Any] | None
    ) -> None:
        schedule = resource.get("schedule", "")
        zone = resource.get("timeZone") or "Etc/UTC"
        try:
            zoneinfo.ZoneInfo(zone)
            known_zone = True
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            known_zone = False
        if not schedule or not valid_schedule(schedule) or not known_zone:
            raise invalid("Schedule or time zone is invalid.", "job.schedule")
        targets = [name for name in TARGETS if resource.get(name)]
        if len(targets) != 1:
            raise invalid(
                "A job needs exactly one target (http_target, pubsub_target or app_engine_http_target).",
                "job",
            )
        http = resource.get("httpTarget")
        if http is not None and not re.match(r"^https?://[^/\s]+", http.get("uri", "")):
            raise invalid(
                f"Invalid URI '{http.get('uri', '')}': an http or https URL is needed.", "job.http_target.uri"
            )
        if http and http.get("oauthToken") and http.get("oidcToken"):
            raise invalid("Set oauth_token or oidc_token, not both.", "job.http_target")
        deadline = resource.get("attemptDeadline")
        if deadline and not 15 <= float(deadline.rstrip("s")) <= 1800:
            raise invalid(
                "attempt_deadline must be between 15s and 30m for HTTP targets.", "job.attempt_deadline"
            )

    def prepare(self, req: Request | None, kind: Kind, key: str, resource: dict[str, Any]) -> None:
        resource["name"] = key
        resource["userUpdateTime"] = now_rfc3339()
        resource.setdefault("timeZone", "Etc/UTC")
        resource.setdefault("attemptDeadline", "180s")
        resource.setdefault(
            "retryConfig",
            {
                "maxRetryDuration": "0s",
                "minBackoffDuration": "5s",
                "maxBackoffDuration": "3600s",
                "maxDoublings": 5,
            },
        )
        resource["scheduleTime"] = now_rfc3339()
        http = resource.get("httpTarget")
        if http is not None:
            http.setdefault("httpMethod", "POST")

    def touch(self, kind: Kind, resource: dict[str, Any]) -> None:
        resource["userUpdateTime"] = now_rfc3339()

    def _set(self, req: Request, state: str | None) -> dict[str, Any]:
        self.body(req)
        key = self.canonical(self.path_key(req))
        job = self.lookup(key)
        if state is not None:
            job["state"] = state
            job["userUpdateTime"] = now_rfc3339()
        else:
            job["lastAttemptTime"] = now_rfc3339()
        return self.present(None, key, job)

    def do_pause(self, req: Request) -> dict[str, Any]:
        """Pauses a job."""
        return self._set(req, "PAUSED")

    def do_resume(self, req: Request) -> dict[str, Any]:
        """Resumes a job."""
        return self._set(req, "ENABLED")

    def do_run(self, req: Request) -> dict[str, Any]:
        """Runs a job now (records the attempt)."""
        return self._set(req, None)
