"""Signed cron requests: what a provider's scheduler sends and the service host accepts."""

from __future__ import annotations

import sys

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


def _post(app, path: str, headers: dict[str, str]) -> tuple[int, dict]:
    """One ASGI POST to ``app``; its status and JSON body."""
    import asyncio
    import json

    sent: list[dict] = []

    async def receive() -> dict:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "method": "POST",
        "path": path,
        "headers": [(k.encode(), v.encode()) for k, v in headers.items()],
    }
    asyncio.run(app(scope, receive, send))
    return sent[0]["status"], json.loads(sent[1]["body"])


class KeyedCron:
    """A cron job's data plane that knows the environment's key."""

    def signing_key(self) -> bytes:
        return KEY


def test_the_service_host_runs_a_signed_job_and_refuses_the_rest(monkeypatch):
    import json

    from skyrig.runtime import binding
    from skyrig.runtime.host import ServiceHost
    from skyrig.runtime.signing import HEADER

    ran = []
    module = type(sys)("signed_jobs")
    module.tick = lambda: ran.append("tick")
    monkeypatch.setitem(sys.modules, "signed_jobs", module)
    config = {
        "app": "a",
        "environment": "prod",
        "service": "web",
        "resources": {
            "cron_job/tick": {"provider": "x", "endpoint": "signed_jobs:tick", "operations": []},
            "cron_job/local": {"provider": "x", "endpoint": "signed_jobs:tick", "operations": []},
        },
    }
    monkeypatch.setenv("SKYRIG_RUNTIME_CONFIG", json.dumps(config))
    binding.reset()
    binding.install("cron_job/tick", KeyedCron())
    binding.install("cron_job/local", object())  # a data plane with no signing key: cron not managed
    try:
        host = ServiceHost(lambda *args: None, token=None)
        path = "/__skyrig/cron/tick"
        assert _post(host, path, {HEADER: sign(KEY, "POST", path)})[0] == 200 and ran == ["tick"]
        assert _post(host, path, {HEADER: sign(b"forged", "POST", path)})[0] == 401
        assert _post(host, path, {})[0] == 403, "unsigned and no run token"
        other = "/__skyrig/cron/local"
        status, body = _post(host, other, {HEADER: sign(KEY, "POST", other)})
        assert (status, body["error"]) == (401, "rejected: this environment's cron jobs are not managed")
        missing = "/__skyrig/cron/nope"
        assert _post(host, missing, {HEADER: sign(KEY, "POST", missing)})[0] == 401
        assert ran == ["tick"]
    finally:
        binding.reset()
