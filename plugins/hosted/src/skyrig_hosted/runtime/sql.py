"""The data plane of a database on the host: PostgreSQL as the environment's role.

The runtime config entry names the role's password by reference only (``hosted:APP/ENV/database/NAME``):
it is read from the host's credentials endpoint when a connection is first made, kept in the process, and
read again once after the server refuses it, so that a password the host changed is picked up by the next
connection, a pool's new ones too (pools connect through the data plane).
"""

from __future__ import annotations

from typing import Any

from skyrig.provider import PostgresClient
from skyrig_hosted.runtime import forget, login


def database(entry: dict[str, Any], config: dict[str, Any]) -> Any:
    """The data plane of a database on the host (``sql_database``): the SDK's PostgreSQL client, its
    password read from the host, and read again once when the server refuses it."""
    return PostgresClient(entry, lambda reference: login(entry["api"], reference)[1], refused=forget)
