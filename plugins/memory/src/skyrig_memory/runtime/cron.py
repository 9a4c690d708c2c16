"""Cron: the environment's signing key, which the service host checks scheduler requests against."""

from __future__ import annotations

from typing import Any

from skyrig_memory.cloud import open_cloud


def parse_reference(reference: str) -> tuple[str, str, str]:
    """``(app, environment, name)`` of a secret reference ``memory://APP/ENV/secrets/NAME``."""
    head, _, name = reference.removeprefix("memory://").rpartition("/secrets/")
    app, _, environment = head.partition("/")
    if not (app and environment and name):
        raise ValueError(f"not a memory secret reference: {reference!r}")
    return app, environment, name


class CronClient:
    """What the service host needs to trust the memory cloud's scheduler (``cron.managed``)."""

    def __init__(self, entry: dict[str, Any], config: dict[str, Any] | None = None) -> None:
        self.cloud = open_cloud(entry["cloud"])
        self.reference: str = entry["signing_key"]

    def signing_key(self) -> bytes:
        """The environment's cron signing key, read from the cloud's secret store each time."""
        value = self.cloud.secret_value(*parse_reference(self.reference))
        if value is None:
            raise LookupError(
                f"the cron signing key {self.reference} has no value: apply the environment (skyrig apply)"
            )
        return value.encode()
