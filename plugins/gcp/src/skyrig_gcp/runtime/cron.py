"""Cron on GCP: the signing key for the service host, and the trigger Cloud Scheduler runs.

``python -m skyrig_gcp.runtime.cron JOB URL`` is the command of a service's trigger job (a Cloud Run job
that Cloud Scheduler runs with the job and the service's URL as arguments): it reads the environment's
signing key from Secret Manager and sends the signed request (:func:`skyrig.provider.cron_trigger`),
exactly as :meth:`skyrig_gcp.GcpProvider.run_cron_job` does.
"""

from __future__ import annotations

import os
from typing import Any

from skyrig.provider import SigningKeyClient, cron_trigger


def read_key(entry: dict[str, Any]) -> str | None:
    """The newest enabled value of the signing key secret the entry names (``signing_key``, a full name;
    ``secretmanager``, an endpoint; ``emulator``), or None if it has none."""
    from skyrig_gcp.runtime.secrets import read

    endpoint = {"endpoint": entry.get("secretmanager"), "emulator": entry.get("emulator")}
    return read(endpoint, entry["signing_key"])


class CronClient(SigningKeyClient):
    """What the service host needs to check the scheduler's signature (the key read once per process)."""

    def stored_key(self) -> str | None:
        """The signing key the entry names, from Secret Manager."""
        return read_key(self.entry)


def main() -> None:
    """The trigger: ``JOB URL`` as arguments, the project in ``GOOGLE_CLOUD_PROJECT``."""
    from skyrig_gcp.names import signing_key_name

    app, env = os.environ["SKYRIG_APP"], os.environ["SKYRIG_ENVIRONMENT"]
    project = os.environ["GOOGLE_CLOUD_PROJECT"]
    entry = {"signing_key": f"projects/{project}/secrets/{signing_key_name(app, env)}"}
    cron_trigger(lambda: read_key(entry))


if __name__ == "__main__":
    main()
