"""The host key: what encrypts the host's secrets at rest (environment logins, secret values).

The key is ``DATA/host.key`` (mode 0600), made at the first start; the store holds only what it
encrypted (Fernet: AES-128-CBC with an HMAC-SHA256, from ``cryptography``). Losing the key loses every
stored password and secret value, so it is never rewritten once made.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken

KEY_FILE = "host.key"


class HostKeyError(RuntimeError):
    """The host key cannot be read, or does not decrypt what the store holds."""


def private_file(path: Path, content: bytes) -> None:
    """Writes ``content`` to a new file only its owner can read (mode 0600 from the start, never wider)."""
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(content)
        handle.flush()
        os.fsync(handle.fileno())


class HostKey:
    """Encrypts and decrypts the host's secrets with the key in ``DATA/host.key``."""

    def __init__(self, key: bytes) -> None:
        self._fernet = Fernet(key)

    def __repr__(self) -> str:
        return "HostKey(<hidden>)"

    @classmethod
    def load(cls, data: Path) -> HostKey:
        """The key of the host whose data is ``data``, made (0600) if there is none yet."""
        path = data / KEY_FILE
        if not path.exists():
            with contextlib.suppress(FileExistsError):  # another process made it meanwhile: read that one
                private_file(path, Fernet.generate_key())
        try:
            return cls(path.read_bytes().strip())
        except (OSError, ValueError) as error:
            raise HostKeyError(f"the host key {path} cannot be read: {type(error).__name__}") from None

    def encrypt(self, text: str) -> str:
        """``text`` encrypted (a URL-safe ASCII token)."""
        return self._fernet.encrypt(text.encode()).decode("ascii")

    def decrypt(self, token: str) -> str:
        """What :meth:`encrypt` was given."""
        try:
            return self._fernet.decrypt(token.encode("ascii")).decode()
        except InvalidToken:
            raise HostKeyError("a stored secret does not decrypt with the host key (DATA/host.key)") from None
