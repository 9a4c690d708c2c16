"""Cron jobs: an endpoint called on a schedule."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Annotated, Any, Self

from pydantic import AfterValidator, model_validator

from skyrig.declarations._base import Declaration, Spec, qualified_name
from skyrig.declarations.types import Duration, Name, Reference, duration_seconds

DAY = 24 * 3600


def check_schedule(expression: str) -> str:
    """Return ``expression`` if it is a valid five-field cron expression, else raise ``ValueError``."""
    fields = expression.split()
    if len(fields) != 5:
        raise ValueError(
            f"invalid cron schedule {expression!r}: write five fields, minute hour day-of-month "
            f'month day-of-week, like "0 3 * * *" (found {len(fields)})'
        )
    from croniter import croniter  # imported here: it is slow to import and rarely needed

    if not croniter.is_valid(expression):
        raise ValueError(
            f"invalid cron schedule {expression!r}: a field is out of range or malformed "
            '(minute 0-59, hour 0-23, day 1-31, month 1-12, weekday 0-6; like "*/15 9-17 * * 1-5")'
        )
    return expression


def check_every(every: str) -> str:
    """Return ``every`` if it is whole minutes from 1m to 24h that divide 24h."""
    seconds = duration_seconds(every)
    if seconds % 60 or not 60 <= seconds <= DAY or DAY % seconds:
        raise ValueError(
            f"every={every!r} must be whole minutes from 1m to 24h that divide 24h evenly "
            '(like "5m", "1h", "6h"); use schedule= for other intervals'
        )
    return every


class CronJobSpec(Spec):
    """Settings of a :class:`CronJob`."""

    name: Name
    title: str | None = None
    """A human-readable title, shown in the dashboard."""
    schedule: Annotated[str, AfterValidator(check_schedule)] | None = None
    """A five-field cron expression (UTC), like ``"0 3 * * *"``. Exactly one of schedule and every."""
    every: Annotated[Duration, AfterValidator(check_every)] | None = None
    """An interval in whole minutes from 1m to 24h that divides 24h, like ``"1h"``."""
    endpoint: Reference
    """The function called, as ``"package.module:function"``."""

    @model_validator(mode="after")
    def _one_timing(self) -> Self:
        if (self.schedule is None) == (self.every is None):
            raise ValueError("give exactly one of schedule= and every=")
        return self


class CronJob(Declaration):
    """An endpoint called on a schedule::

    CronJob("nightly-report", title="Nightly report", schedule="0 3 * * *", endpoint=report)
    """

    kind = "cron_job"
    spec_model = CronJobSpec
    references = {"endpoint": "function"}

    def __init__(
        self,
        name: str,
        *,
        title: str | None = None,
        schedule: str | None = None,
        every: str | None = None,
        endpoint: Callable[..., Any],
    ) -> None:
        self.endpoint = endpoint
        self._declare(
            name=name, title=title, schedule=schedule, every=every, endpoint=qualified_name(endpoint)
        )


def next_run(spec: CronJobSpec, after: datetime) -> datetime:
    """When a job with ``spec`` runs next after ``after`` (UTC): its cron schedule, or the next multiple
    of ``every`` since midnight."""
    if spec.schedule is not None:
        from croniter import croniter

        return croniter(spec.schedule, after).get_next(datetime)
    step = duration_seconds(spec.every)  # type: ignore[arg-type]
    midnight = after.replace(hour=0, minute=0, second=0, microsecond=0)
    elapsed = (after - midnight).total_seconds()
    return midnight + timedelta(seconds=(elapsed // step + 1) * step)
