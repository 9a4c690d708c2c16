"""The host's bearer tokens: 32 random bytes, shown once, stored only as their SHA-256.

Three kinds: the admin token (made at the first start, kept in ``DATA/admin-token``, mode 0600), one per
app (made by the admin with the app) and one per environment (the runtime token its services get).
"""

from __future__ import annotations

import contextlib
import hashlib
import secrets
from dataclasses import dataclass
from pathlib import Path

from skyrig_hosted.host.crypto import private_file

ADMIN_TOKEN_FILE = "admin-token"

ADMIN, APP, RUNTIME = "admin", "app", "runtime"


def new_token(kind: str) -> str:
    """A new token of ``kind``: a readable prefix (so a leaked one is recognised) and 32 random bytes."""
    return f"skh_{kind}_{secrets.token_urlsafe(32)}"


def digest(token: str) -> str:
    """What the store keeps of ``token``: its SHA-256, hex."""
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True)
class Principal:
    """Who a request's token is: the admin, an app's deployer, or one environment's services."""

    kind: str
    app: str | None = None
    env: str | None = None


def admin_token(data: Path) -> str:
    """The admin token of the host in ``data``, made (in ``DATA/admin-token``, mode 0600) if there is none."""
    path = data / ADMIN_TOKEN_FILE
    if not path.exists():
        with contextlib.suppress(FileExistsError):
            private_file(path, (new_token(ADMIN) + "\n").encode())
    return path.read_text().strip()
