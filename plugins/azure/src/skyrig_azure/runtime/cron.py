"""Cron on Azure: the signing key for the service host, and the trigger a scheduled job runs.

``python -m skyrig_azure.runtime.cron JOB URL`` is the command of a cron job's Container Apps job (run by
its Schedule trigger, under the service's identity, with the job and the service's URL as arguments): it
reads the environment's signing key from the Key Vault and sends the signed request
(:func:`skyrig.provider.signed_cron_call`), exactly as :meth:`skyrig_azure.AzureProvider.run_cron_job`
does. The service host reads the same key (:class:`CronClient`) to check the signature.
"""

from __future__ import annotations

import os
from typing import Any

from skyrig.provider import SigningKeyClient, cron_trigger

VAULT_VARIABLE = "SKYRIG_SIGNING_KEY_VAULT"
"""The trigger's environment variable naming the Key Vault (its URI) that holds the signing key."""


def read_key(entry: dict[str, Any]) -> str | None:
    """The latest enabled value of the signing key the entry names (``vault_uri``, ``signing_key``,
    ``emulator``), or None if it has none."""
    from skyrig_azure.runtime.secrets import read

    return read(entry, entry["signing_key"])


class CronClient(SigningKeyClient):
    """What the service host needs to check a scheduled request's signature (the key read once per
    process)."""

    def stored_key(self) -> str | None:
        """The signing key the entry names, from the Key Vault."""
        return read_key(self.entry)


def main() -> None:
    """The trigger: ``JOB URL`` as arguments, the vault in :data:`VAULT_VARIABLE`."""
    from skyrig_azure.names import SIGNING_KEY_SECRET

    entry = {"vault_uri": os.environ[VAULT_VARIABLE], "signing_key": SIGNING_KEY_SECRET, "emulator": None}
    cron_trigger(lambda: read_key(entry))


if __name__ == "__main__":
    main()
