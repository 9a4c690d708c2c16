"""Cron on GCP: the signing key for the service host, and the trigger Cloud Scheduler runs.

``python -m skyrig_gcp.runtime.cron JOB URL`` is the command of a service's trigger job (a Cloud Run job
that Cloud Scheduler runs with the job and the service's URL as arguments): it reads the environment's
signing key from Secret Manager and sends the signed request (:func:`skyrig.runtime.signing.trigger`),
exactly as :meth:`skyrig_gcp.GcpProvider.run_cron_job` does.
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any


def read_key(entry: dict[str, Any]) -> str | None:
    """The newest enabled value of the signing key secret the entry names, or None if it has none."""
    from google.api_core import exceptions
    from google.cloud import secretmanager_v1

    credentials = None
    if entry.get("emulator"):
        from google.auth.credentials import AnonymousCredentials

        credentials = AnonymousCredentials()
    endpoint = entry.get("secretmanager")
    client = secretmanager_v1.SecretManagerServiceClient(
        credentials=credentials,
        transport="rest",
        client_options={"api_endpoint": endpoint} if endpoint else None,
    )
    try:
        response = client.access_secret_version(name=f"{entry['signing_key']}/versions/latest")
    except (exceptions.NotFound, exceptions.FailedPrecondition):
        return None
    return response.payload.data.decode()


class CronClient:
    """What the service host needs to check the scheduler's signature."""

    def __init__(self, entry: dict[str, Any], config: dict[str, Any] | None = None) -> None:
        self.entry = entry
        self._key: bytes | None = None

    def signing_key(self) -> bytes:
        """The environment's cron signing key (read once per process)."""
        if self._key is None:
            value = read_key(self.entry)
            if value is None:
                raise LookupError("the environment's cron signing key has no value: run skyrig apply")
            self._key = value.encode()
        return self._key


def main() -> None:
    from skyrig.provider import signed_cron_call
    from skyrig_gcp.names import signing_key_name

    job, url = sys.argv[1], sys.argv[2]
    app, env = os.environ["SKYRIG_APP"], os.environ["SKYRIG_ENVIRONMENT"]
    project = os.environ["GOOGLE_CLOUD_PROJECT"]
    key = read_key({"signing_key": f"projects/{project}/secrets/{signing_key_name(app, env)}"})
    if key is None:
        raise SystemExit("the environment's cron signing key has no value")
    print(json.dumps(signed_cron_call(url, job, key.encode())))


if __name__ == "__main__":
    main()
