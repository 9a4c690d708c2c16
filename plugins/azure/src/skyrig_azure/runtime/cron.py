"""Cron on Azure: the signing key for the service host, and the trigger a scheduled job runs.

``python -m skyrig_azure.runtime.cron JOB URL`` is the command of a cron job's Container Apps job (run by
its Schedule trigger, under the service's identity, with the job and the service's URL as arguments): it
reads the environment's signing key from the Key Vault and sends the signed request
(:func:`skyrig.provider.signed_cron_call`), exactly as :meth:`skyrig_azure.AzureProvider.run_cron_job`
does. The service host reads the same key (:class:`CronClient`) to check the signature.
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any

VAULT_VARIABLE = "SKYRIG_SIGNING_KEY_VAULT"
"""The trigger's environment variable naming the Key Vault (its URI) that holds the signing key."""


def read_key(entry: dict[str, Any]) -> str | None:
    """The latest enabled value of the signing key the entry names (``vault_uri``, ``signing_key``,
    ``emulator``), or None if it has none."""
    from skyrig_azure.runtime.secrets import read

    return read(entry, entry["signing_key"])


class CronClient:
    """What the service host needs to check a scheduled request's signature."""

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
    """The trigger: ``JOB URL`` as arguments, the vault in :data:`VAULT_VARIABLE`."""
    from skyrig.provider import signed_cron_call
    from skyrig_azure.names import SIGNING_KEY_SECRET

    job, url = sys.argv[1], sys.argv[2]
    entry = {"vault_uri": os.environ[VAULT_VARIABLE], "signing_key": SIGNING_KEY_SECRET, "emulator": None}
    key = read_key(entry)
    if key is None:
        raise SystemExit("the environment's cron signing key has no value")
    print(json.dumps(signed_cron_call(url, job, key.encode())))


if __name__ == "__main__":
    main()
