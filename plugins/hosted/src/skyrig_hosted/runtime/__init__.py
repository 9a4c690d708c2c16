"""The data planes of the hosted provider, and what they share: the host's credentials endpoint, read with
the process's ``SKYRIG_HOSTED_TOKEN`` (the environment's runtime token in the services the host runs, the
app's elsewhere), each login kept in the process and read again once after the server refuses it."""

from __future__ import annotations

import os
import threading
from typing import Any

from skyrig.provider import CachedSecrets

LOGINS = CachedSecrets(ttl=3600.0)
"""Logins read in this process (``"username\\0password"``), by reference; read again after an hour, or
after a refusal."""

_clients: dict[tuple[str, str], Any] = {}
_lock = threading.Lock()


def host(api: str) -> Any:
    """The process's client of the host at ``api`` (a :class:`~skyrig_hosted.api.HostedClient`)."""
    from skyrig_hosted.api import HostedClient, token
    from skyrig_hosted.settings import TOKEN_VARIABLE

    if not os.environ.get(TOKEN_VARIABLE):
        raise LookupError(
            f"the host's credentials and secrets are read with the token in {TOKEN_VARIABLE}, which is not "
            "set in this process"
        )
    key = token()
    with _lock:  # by token too: a process whose token changes (a test, a rotation) uses the new one
        if (api, key) not in _clients:
            _clients[(api, key)] = HostedClient(api, key, max_attempts=3, wait_delay=0.2)
        return _clients[(api, key)]


def _load(api: str, reference: str) -> str | None:
    from skyrig.provider import NotFound
    from skyrig_hosted.names import parse_credentials_reference

    app, env, kind, name = parse_credentials_reference(reference)
    try:
        login = host(api).credentials(app, env, kind, name)
    except NotFound:
        return None
    return f"{login['username']}\0{login['password']}"


def login(api: str, reference: str) -> tuple[str, str]:
    """(username, password) of the resource ``reference`` names, from the host at ``api``."""
    value = LOGINS.read(reference, lambda: _load(api, reference))
    if value is None:
        raise LookupError(f"the host has no credentials for {reference}: run skyrig apply")
    username, _, password = value.partition("\0")
    return username, password


def forget() -> None:
    """Drop every login read (the next connection reads them again): after a refusal, and in tests."""
    LOGINS.forget()
