"""Cron on AWS: the signing key for the service host, and the trigger EventBridge Scheduler runs.

``python -m skyrig_aws.runtime.cron JOB URL`` is the command of the one-off task a schedule starts: it reads
the environment's signing key from Secrets Manager and sends the signed request
(:func:`skyrig.runtime.signing.trigger`), exactly as :meth:`skyrig_aws.AwsProvider.run_cron_job` does.
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any

from skyrig_aws.names import signing_key_name
from skyrig_aws.runtime.secrets import read


class CronClient:
    """What the service host needs to check the scheduler's signature."""

    def __init__(self, entry: dict[str, Any], config: dict[str, Any] | None = None) -> None:
        self.entry = entry

    def signing_key(self) -> bytes:
        value = read(self.entry, self.entry["signing_key"])
        if value is None:
            raise LookupError("the environment's cron signing key has no value: run skyrig apply")
        return value.encode()


def main() -> None:
    from skyrig.provider import signed_cron_call

    job, url = sys.argv[1], sys.argv[2]
    entry = {"region": os.environ.get("AWS_REGION"), "endpoint_url": os.environ.get("AWS_ENDPOINT_URL")}
    app, env = os.environ["SKYRIG_APP"], os.environ["SKYRIG_ENVIRONMENT"]
    key = read(entry, signing_key_name(app, env))
    if key is None:
        raise SystemExit("the environment's cron signing key has no value")
    print(json.dumps(signed_cron_call(url, job, key.encode())))


if __name__ == "__main__":
    main()
