"""The data plane of a Neon database: PostgreSQL through Neon's connection pooler, as the app's role.

The runtime config entry names the role's password by reference only (``neon:PROJECT/BRANCH/ROLE``): it is
revealed through Neon's API (``reveal_password``, with the service's ``NEON_API_KEY``) when a connection
is first made, kept in the process, and revealed again once after the server refuses it, so that a
password rotated in Neon (``reset_password``) is picked up by the next connection, a pool's new ones
too (pools connect through the data plane).
"""

from __future__ import annotations

import os
from typing import Any

from skyrig.provider import CachedSecrets, PostgresClient

PASSWORDS = CachedSecrets(ttl=3600.0)
"""Passwords revealed in this process, by reference; read again after an hour, or after a refusal."""


def reveal(entry: dict[str, Any], reference: str) -> str | None:
    """The password ``reference`` names, read from Neon's API (``entry["api_url"]``)."""
    from skyrig_neon.api import NeonClient, api_key
    from skyrig_neon.names import parse_password_reference
    from skyrig_neon.settings import API_KEY_VARIABLE, DEFAULT_API_URL

    project, branch, role = parse_password_reference(reference)
    if not os.environ.get(API_KEY_VARIABLE):
        raise LookupError(
            f"database {entry.get('database')!r}: its password is read from Neon with the API key in "
            f"{API_KEY_VARIABLE}, which is not set in this process"
        )
    client = NeonClient(entry.get("api_url") or DEFAULT_API_URL, api_key(), max_attempts=3, wait_delay=0.5)
    try:
        return client.reveal_password(project, branch, role)
    finally:
        client.close()


def database(entry: dict[str, Any], config: dict[str, Any]) -> Any:
    """The data plane of a Neon database (``sql_database``): the SDK's PostgreSQL client, its password
    revealed through Neon's API, and revealed again once when the server refuses it."""

    def password(reference: str) -> str:
        value = PASSWORDS.read(reference, lambda: reveal(entry, reference))
        if value is None:
            raise LookupError(f"database {entry.get('database')!r}: Neon has no password for its role")
        return value

    return PostgresClient(entry, password, refused=PASSWORDS.forget)
