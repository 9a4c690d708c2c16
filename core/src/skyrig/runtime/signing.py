"""Signed requests: how a provider's scheduler proves to a service that a cron call comes from it.

A managed cron job is triggered by an HTTP request to its service, ``POST /__skyrig/cron/JOB``, with the
header :data:`HEADER`: ``t=<unix seconds>,v1=<hex HMAC-SHA256>``. The HMAC is over
``"<t>.<METHOD>.<path>."`` followed by the body, keyed with the environment's signing key, which the
provider keeps in its secret store and hands to the service's runtime by reference only. The service
host accepts a request only with a valid signature made within :data:`TOLERANCE` seconds.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Callable, Sequence

HEADER = "skyrig-signature"
TOLERANCE = 300
"""Seconds a signature stays valid either side of now (clock skew and delivery delay)."""


class SignatureError(ValueError):
    """A request's signature is missing, malformed, stale or wrong."""


def _digest(key: bytes, timestamp: int, method: str, path: str, body: bytes) -> str:
    message = f"{timestamp}.{method.upper()}.{path}.".encode() + body
    return hmac.new(key, message, hashlib.sha256).hexdigest()


def sign(key: bytes, method: str, path: str, body: bytes = b"", *, now: float | None = None) -> str:
    """The :data:`HEADER` value for a request with ``method``, ``path`` and ``body``."""
    timestamp = int(time.time() if now is None else now)
    return f"t={timestamp},v1={_digest(key, timestamp, method, path, body)}"


def verify(
    key: bytes, header: str | None, method: str, path: str, body: bytes = b"", *, now: float | None = None
) -> None:
    """Raise :class:`SignatureError` unless ``header`` signs this request with ``key``, recently."""
    if not header:
        raise SignatureError(f"the {HEADER} header is missing")
    try:
        fields = dict(part.split("=", 1) for part in header.split(","))
        timestamp = int(fields["t"])
        given = fields["v1"]
    except (KeyError, ValueError):
        raise SignatureError(f"the {HEADER} header is malformed") from None
    current = time.time() if now is None else now
    if abs(current - timestamp) > TOLERANCE:
        raise SignatureError(f"the signature is {int(current - timestamp)} s old (at most {TOLERANCE} s)")
    if not hmac.compare_digest(given, _digest(key, timestamp, method, path, body)):
        raise SignatureError("the signature does not match")


def signed_cron_call(base_url: str, job: str, key: bytes, *, timeout: float = 60) -> dict[str, object]:
    """Run cron job ``job`` of the service at ``base_url`` as a provider's scheduler does: a signed
    ``POST /__skyrig/cron/JOB``. Returns the outcome the service reports (``{"job", "ok", "error",
    "seconds"}``); raises ``urllib.error.HTTPError`` when it refuses (401: the signature)."""
    import json
    import urllib.error
    import urllib.request

    path = f"/__skyrig/cron/{job}"
    request = urllib.request.Request(base_url.rstrip("/") + path, data=b"", method="POST")
    request.add_header(HEADER, sign(key, "POST", path, b""))
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return json.loads(response.read())
    except urllib.error.HTTPError as error:
        if error.code == 500:  # the job ran and failed: its outcome is the answer
            return json.loads(error.read())
        raise


def cron_trigger(read_key: Callable[[], str | None], argv: Sequence[str] | None = None) -> None:
    """The command a provider's scheduler runs, ``python -m PACKAGE JOB URL`` (``argv``, by default the
    process's): the signed call of :func:`signed_cron_call` with the key ``read_key()`` returns, its outcome
    printed as JSON; exits with a message when the key has no value."""
    import json
    import sys

    args = sys.argv if argv is None else argv
    job, url = args[1], args[2]
    key = read_key()
    if key is None:
        raise SystemExit("the environment's cron signing key has no value")
    print(json.dumps(signed_cron_call(url, job, key.encode())))
