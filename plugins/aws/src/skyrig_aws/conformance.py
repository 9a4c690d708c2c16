"""The AWS provider's conformance profile: moto's server on a free loopback port, started for the run.

moto answers every API this provider calls, with three gaps the profile says so about: RDS and ElastiCache
endpoints have no server behind them (the suite's stand-ins, a real PostgreSQL and a real Redis, take their
place in the runtime config), ECS runs no task, and Scheduler never fires (``run_cron_job`` does what a
schedule's task does).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Any

REGION = "us-east-1"
CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": REGION,
}


def moto_server() -> AbstractContextManager[str]:
    """moto's server for this provider, until the block ends; yields its URL. ACM issues a certificate
    requested with DNS validation a second after the request (AWS: once the validation record resolves),
    so an apply sees it pending first."""
    from skyrig_conformance.emulators import moto_server as started

    return started({"MOTO_ACM_VALIDATION_WAIT": "1"})


def settings(endpoint: str) -> dict[str, Any]:
    """Provider settings for moto's server at ``endpoint``: no long waits, no engine version listing."""
    return {
        "region": REGION,
        "endpoint_url": endpoint,
        "emulator": "moto",
        "wait_delay": 0.01,
        "wait_timeout": 30,
        "sql_engine_version": "17.4",
        "max_attempts": 2,
        "image": "skyrig/app:test",
    }


@contextmanager
def profile() -> Iterator[Any]:
    """The profile ``skyrig conformance aws`` and the provider's tests use."""
    from skyrig_conformance import Profile, stand_ins

    with moto_server() as endpoint:
        yield Profile(
            provider="aws",
            environment_type="development",
            settings=settings(endpoint),
            environ={**CREDENTIALS, "SKYRIG_AWS_POLL_SECONDS": "1"},
            stand_ins={"sql_database": stand_ins.postgres(), "cache_cluster": stand_ins.redis()},
            limits={
                "objects.signed_url_tampering": "moto does not verify the signatures of presigned URLs",
                "lifecycle.recreate_after_destroy": (
                    "moto never finishes deleting ElastiCache replication groups and users, so their names "
                    "cannot be taken again within one emulator run"
                ),
            },
        )
