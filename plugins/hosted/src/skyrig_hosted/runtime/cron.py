"""The data plane of a cron job on the host: the environment's signing key, which the service host checks
the scheduler's requests against, read from the host's ``cron-key`` endpoint with the process's
``SKYRIG_HOSTED_TOKEN`` (the environment's runtime token in the services the host runs) once per process."""

from __future__ import annotations

from skyrig.provider import NotFound, SigningKeyClient
from skyrig_hosted.runtime import host


class CronClient(SigningKeyClient):
    """What the service host needs to trust the host's scheduler (``cron.managed``)."""

    def stored_key(self) -> str | None:
        """The environment's signing key (hex), or None when the host has no such environment."""
        api, app, env = (self.entry[key] for key in ("api", "app", "env"))
        try:
            return host(api).cron_key(app, env)
        except NotFound:
            return None
