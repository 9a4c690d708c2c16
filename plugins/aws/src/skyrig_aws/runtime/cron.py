"""Cron on AWS: the signing key for the service host, and the trigger EventBridge Scheduler runs.

``python -m skyrig_aws.runtime.cron JOB URL`` is the command of the one-off task a schedule starts: it reads
the environment's signing key from Secrets Manager and sends the signed request
(:func:`skyrig.provider.cron_trigger`), exactly as :meth:`skyrig_aws.AwsProvider.run_cron_job` does.
"""

from __future__ import annotations

import os

from skyrig.provider import SigningKeyClient, cron_trigger
from skyrig_aws.names import signing_key_name
from skyrig_aws.runtime.secrets import read


class CronClient(SigningKeyClient):
    """What the service host needs to check the scheduler's signature."""

    read_once = False  # read each time, through the secrets' cache

    def stored_key(self) -> str | None:
        """The signing key the entry names, from Secrets Manager."""
        return read(self.entry, self.entry["signing_key"])


def main() -> None:
    """The trigger: ``JOB URL`` as arguments, the app and environment in the task's environment."""
    entry = {"region": os.environ.get("AWS_REGION"), "endpoint_url": os.environ.get("AWS_ENDPOINT_URL")}
    app, env = os.environ["SKYRIG_APP"], os.environ["SKYRIG_ENVIRONMENT"]
    cron_trigger(lambda: read(entry, signing_key_name(app, env)))


if __name__ == "__main__":
    main()
