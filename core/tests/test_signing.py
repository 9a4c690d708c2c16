"""Signed cron requests: what a provider's scheduler sends and the service host accepts."""

from __future__ import annotations

import pytest

from skyrig.runtime.signing import TOLERANCE, SignatureError, sign, verify

KEY = b"environment signing key"


def test_a_fresh_signature_of_the_same_request_is_accepted():
    header = sign(KEY, "post", "/__skyrig/cron/tick", b"{}", now=1_000_000)
    verify(KEY, header, "POST", "/__skyrig/cron/tick", b"{}", now=1_000_000 + TOLERANCE)


@pytest.mark.parametrize(
    ("header", "method", "path", "body", "now", "error"),
    [
        (None, "POST", "/__skyrig/cron/tick", b"", 1_000_000, "missing"),
        ("v1=abc", "POST", "/__skyrig/cron/tick", b"", 1_000_000, "malformed"),
        ("t=x,v1=abc", "POST", "/__skyrig/cron/tick", b"", 1_000_000, "malformed"),
        ("signed", "POST", "/__skyrig/cron/other", b"", 1_000_000, "does not match"),
        ("signed", "GET", "/__skyrig/cron/tick", b"", 1_000_000, "does not match"),
        ("signed", "POST", "/__skyrig/cron/tick", b"x", 1_000_000, "does not match"),
        ("signed", "POST", "/__skyrig/cron/tick", b"", 1_000_000 + TOLERANCE + 1, "s old"),
        ("forged", "POST", "/__skyrig/cron/tick", b"", 1_000_000, "does not match"),
    ],
)
def test_anything_else_is_rejected_with_the_reason(header, method, path, body, now, error):
    if header == "signed":
        header = sign(KEY, "POST", "/__skyrig/cron/tick", b"", now=1_000_000)
    elif header == "forged":
        header = sign(b"another key", "POST", "/__skyrig/cron/tick", b"", now=1_000_000)
    with pytest.raises(SignatureError, match=error):
        verify(KEY, header, method, path, body, now=now)
