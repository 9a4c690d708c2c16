"""Managed cron on the memory cloud: the provider's trigger is a request signed with the environment's
key, which a real service host (uvicorn, in this process) accepts; forged, stale and unsigned ones it
rejects. The key lives in the cloud's secret store only, and goes with the environment's last job."""

from __future__ import annotations

import json
import socket
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator

import pytest

from skyrig.cli.testing import run_cli
from skyrig.runtime import signing
from skyrig_memory import provider
from skyrig_memory.cron import SIGNING_KEY

from .conftest import App, deploy, skyrig

SOURCE = """
from skyrig import CronJob, Service

service = Service("web", app="cronapp:app")
runs = []


async def app(scope, receive, send):
    if scope["type"] == "http":
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})


def nightly():
    runs.append("nightly")


def failing():
    raise RuntimeError("the report broke")


CronJob("nightly", schedule="0 3 * * *", endpoint=nightly)
CronJob("broken", every="1h", endpoint=failing)
"""


@pytest.fixture
def app(tmp_path, monkeypatch):
    return App(deploy(tmp_path, "cron", "cronapp", SOURCE), "cronapp", monkeypatch)


@pytest.fixture
def host(app) -> Iterator[str]:
    """The service host of ``web`` served by uvicorn on a free port of 127.0.0.1; its base URL."""
    import uvicorn

    from skyrig.runtime.host import ServiceHost

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    config = uvicorn.Config(ServiceHost(app.sdk.app), host="127.0.0.1", port=port, log_level="warning")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the service host did not start"
        time.sleep(0.01)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(10)


def _post(url: str, headers: dict[str, str]) -> int:
    request = urllib.request.Request(url, data=b"", method="POST", headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


def test_the_providers_signed_trigger_runs_the_job(app, host):
    with app.context() as context:
        provider.run_cron_job(context, "nightly", host)
        assert app.sdk.runs == ["nightly"]
        provider.run_cron_job(context, "broken", host)  # the job's failure is its outcome, not an error
        with pytest.raises(LookupError, match="has no cron job 'weekly'"):
            provider.run_cron_job(context, "weekly", host)
    assert app.sdk.runs == ["nightly"]


def test_forged_stale_and_unsigned_requests_are_rejected(app, host):
    with pytest.raises(urllib.error.HTTPError) as forged:
        signing.signed_cron_call(host, "nightly", b"not the environment's key")
    assert forged.value.code == 401
    key = app.client("cron_job/nightly").signing_key()
    path = "/__skyrig/cron/nightly"
    stale = signing.sign(key, "POST", path, now=time.time() - 3600)
    assert _post(host + path, {signing.HEADER: stale}) == 401
    assert _post(host + path, {signing.HEADER: "t=1,v1=nonsense"}) == 401
    assert _post(host + path, {}) == 403, "no signature and no control token"
    assert app.sdk.runs == []
    assert signing.signed_cron_call(host, "nightly", key)["ok"] is True, (
        "the key the data plane reads is the one"
    )


def test_the_key_is_a_reference_in_config_and_nowhere_in_state(app, capsys):
    entry = app.config["resources"]["cron_job/nightly"]
    assert entry["signing_key"] == f"memory://cron/dev/secrets/{SIGNING_KEY}"
    with app.context() as context:
        key = context.client.secret_value("cron", "dev", SIGNING_KEY)
    assert key and len(key) == 64
    status = run_cli(["status", "--env", "dev", "--json", "-C", str(app.root)], capsys)
    assert json.loads(status.out)["nodes"]
    files = [p for p in (app.root / ".skyrig").rglob("*") if p.is_file() and "memory-cloud" not in p.name]
    assert files, "state and runtime config are there to search"
    for artefact in [*(path.read_bytes() for path in files), status.out.encode(), status.err.encode()]:
        assert key.encode() not in artefact


def test_the_key_goes_with_the_last_job(app):
    with app.context() as context:
        assert context.client.secret_value("cron", "dev", SIGNING_KEY) is not None
    assert skyrig(app.root, "destroy", "--env", "dev", "--yes") == 0
    with app.context() as context:
        assert context.client.secret_value("cron", "dev", SIGNING_KEY) is None
        with pytest.raises(LookupError, match="has no cron job 'nightly'"):
            provider.run_cron_job(context, "nightly", "http://127.0.0.1:9")
    with pytest.raises(LookupError, match="has no value: apply the environment"):
        app.client("cron_job/nightly").signing_key()
