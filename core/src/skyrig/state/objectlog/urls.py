"""A bucket's state URL, ``SCHEME://BUCKET/PREFIX``: where an app's state lives in a bucket, and never how to
log in."""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Callable
from pathlib import Path

from skyrig.state import StateUnusable, masked


def bucket_url(
    url: str, root: Path, *, scheme: str, store: str, valid: Callable[[str], bool], rule: str, chain: str
) -> tuple[str, str]:
    """``SCHEME://BUCKET/PREFIX`` -> (bucket, prefix). Refused: another scheme, credentials, a port or a
    query in the URL (``store`` names the store in the message, ``an S3``; ``chain``, the hint, says where
    credentials and endpoint come from instead), a bucket name that ``valid`` refuses (``rule`` says what
    one is). No prefix: the app's name (``SKYRIG_APP``, else ``skyrig.toml``'s ``app`` in ``root``), so
    that every app has one of its own."""
    form = f"{scheme}://BUCKET/PREFIX"
    found = re.fullmatch(rf"{re.escape(scheme)}://([^/?#]*)(/[^?#]*)?", url)
    if found is None or "@" in found[1] or ":" in found[1]:
        raise StateUnusable(
            f"state: {masked(url)} is not {store} state URL: {form}, with no credentials, port or query "
            "in it",
            chain,
        )
    bucket, prefix = found[1], (found[2] or "").strip("/")
    if not valid(bucket):
        raise StateUnusable(
            f"state: {masked(url)}: {bucket!r} is not a bucket name ({rule})", f"write the URL as {form}"
        )
    prefix = prefix or _app(root)
    if not prefix:
        raise StateUnusable(
            f"state: {masked(url)} has no prefix, and no app name says one",
            f"write the URL as {form}: one prefix per app",
        )
    return bucket, prefix


def _app(root: Path) -> str | None:
    app = next((value for key, value in os.environ.items() if key.upper() == "SKYRIG_APP"), None)
    if app:
        return app
    try:
        return tomllib.loads((root / "skyrig.toml").read_text(encoding="utf-8")).get("app")
    except (OSError, tomllib.TOMLDecodeError):
        return None
