"""Cron: with ``cron.managed``, the provider's own mechanism triggers the job's endpoint with a signed
request that the service's runtime verifies; unsigned and forged requests are refused."""

from __future__ import annotations

import socket
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from skyrig_conformance import requirements as needs
from skyrig_conformance.deployment import MAIN
from skyrig_conformance.plugin import Suite


@dataclass
class Served:
    """Service ``alpha`` served by its real service host on 127.0.0.1."""

    url: str
    ticks: Path

    def count(self) -> int:
        return len(self.ticks.read_text().splitlines()) if self.ticks.exists() else 0


def _post(url: str, headers: dict[str, str]) -> int:
    request = urllib.request.Request(url, data=b"", method="POST", headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


class TestCron(Suite):
    """Cron jobs triggered as the provider triggers them."""

    @pytest.fixture
    def served(self, deployment, tmp_path, monkeypatch) -> Iterator[Served]:
        import uvicorn

        from skyrig.runtime.host import ServiceHost

        ticks = tmp_path / "ticks"
        monkeypatch.setenv("SKYRIG_CONFORMANCE_TICKS", str(ticks))
        app = deployment.bind("alpha")
        import alpha.web

        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        # no lifespan: the host's consumers stay off, only its endpoints are served
        server = uvicorn.Server(
            uvicorn.Config(
                ServiceHost(alpha.web.app), host="127.0.0.1", port=port, lifespan="off", log_level="warning"
            )
        )
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        deadline = time.monotonic() + 10
        while not server.started:
            assert time.monotonic() < deadline, "the service host did not start"
            time.sleep(0.01)
        assert app is not None
        try:
            yield Served(f"http://127.0.0.1:{port}", ticks)
        finally:
            server.should_exit = True
            thread.join(10)
            deployment.unbind()

    @needs.feature("cron.managed")
    def test_the_provider_triggers_the_job_with_a_signed_request(self, deployment, served):
        deployment.provider().run_cron_job(deployment.context(MAIN), "tick", served.url)
        assert served.count() == 1, "the job's endpoint did not run"

    @needs.feature("cron.managed")
    def test_an_unsigned_or_forged_request_is_refused(self, served):
        from skyrig.runtime.signing import HEADER, sign

        url = f"{served.url}/__skyrig/cron/tick"
        assert _post(url, {}) in (401, 403), "an unsigned request was honoured"
        forged = sign(b"not the environment's key", "POST", "/__skyrig/cron/tick")
        assert _post(url, {HEADER: forged}) == 401, "a request signed with another key was honoured"
        assert _post(url, {HEADER: "t=1,v1=00"}) == 401, "a stale, malformed signature was honoured"
        assert served.count() == 0, "the endpoint ran for a refused request"
