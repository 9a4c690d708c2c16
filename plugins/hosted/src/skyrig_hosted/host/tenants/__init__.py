"""What an environment (a :class:`~skyrig_hosted.host.servers.Tenant`) gets on each shared server,
isolated by the server itself: one module per server, each with the same five idempotent functions.

- ``ensure(servers, tenant) -> {"username", "password"}``: the tenant's login on that server, made or
  reset (one valid password at a time: the host calls it once and keeps the answer, encrypted);
- ``put(servers, tenant, login, kind, name, properties) -> outputs``: makes or updates one resource,
  answers where it is (host, port, names; never a secret);
- ``delete(servers, tenant, kind, name)``: that resource, gone (nothing if absent);
- ``remove(servers, tenant)``: everything of the tenant on that server, its login included;
- ``usage(servers, tenant) -> int``: the bytes it stores there (quotas).

Kinds: :mod:`.postgres` ``database``; :mod:`.redis` ``cache``; :mod:`.nats` ``topic``, ``subscription``;
:mod:`.objects` ``bucket``.
"""

from __future__ import annotations

import re
import secrets

from skyrig_hosted.host.servers import Tenant

__all__ = ["check_kind", "login_name", "new_password", "resource_name"]


def login_name(tenant: Tenant) -> str:
    """The tenant's login on every server: ``e_<id>``."""
    if not re.fullmatch(r"[a-z0-9]{8}", tenant.id):
        raise ValueError(f"tenant id {tenant.id!r} is not 8 characters of [a-z0-9]")
    return f"e_{tenant.id}"


def new_password() -> str:
    """A random password (URL-safe, 43 characters)."""
    return secrets.token_urlsafe(32)


def resource_name(name: str, *, separator: str = "_", limit: int = 40) -> str:
    """``name`` in lower case, every run of other characters than ``[a-z0-9]`` one ``separator``."""
    cleaned = re.sub(r"[^a-z0-9]+", separator, name.lower()).strip(separator)
    if not cleaned or len(cleaned) > limit:
        raise ValueError(f"resource name {name!r} must have 1 to {limit} letters or digits")
    return cleaned


def check_kind(module: str, kind: str, kinds: tuple[str, ...]) -> None:
    """Raises ValueError unless ``kind`` is one of ``kinds``."""
    if kind not in kinds:
        raise ValueError(f"{module} serves {', '.join(kinds)}, not {kind!r}")
