"""The example apps run end to end under `skyrig run`, on the local provider's real servers."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from skyrig.ports import free_port, free_ports

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


class Running:
    """A `skyrig run` of an example copied to a temporary folder."""

    def __init__(self, root: Path, port: int, process: subprocess.Popen[str]) -> None:
        self.root = root
        self.port = port
        self.process = process

    def url(self, service_index: int, path: str) -> str:
        return f"http://127.0.0.1:{self.port + service_index}{path}"

    def request(
        self, url: str, body: Any = None, headers: dict[str, str] | None = None, method: str | None = None
    ) -> tuple[int, str]:
        """Status and body of an HTTP request (JSON ``body`` makes it a POST)."""
        data = json.dumps(body).encode() if body is not None else None
        method = method or ("POST" if body is not None else "GET")
        request = urllib.request.Request(url, data=data if method == "GET" else data or b"", method=method)
        request.add_header("content-type", "application/json")
        for key, value in (headers or {}).items():
            request.add_header(key, value)
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return response.status, response.read().decode()
        except urllib.error.HTTPError as error:
            return error.code, error.read().decode()


def eventually(check: Callable[[], Any], what: str, timeout: float = 30) -> Any:
    """The first truthy result of ``check``, retried until ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            result = check()
        except OSError:
            result = None
        if result:
            return result
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


@pytest.fixture
def run_example(tmp_path: Path) -> Iterator[Callable[[str, dict[str, str]], Running]]:
    started: list[Running] = []

    def start(name: str, secrets: dict[str, str]) -> Running:
        root = tmp_path / name
        shutil.copytree(EXAMPLES / name, root, ignore=shutil.ignore_patterns(".skyrig", "__pycache__"))
        for secret, value in secrets.items():
            subprocess.run(
                [sys.executable, "-m", "skyrig", "secret", "set", secret, "--env", "local", "-C", str(root)],
                input=value,
                text=True,
                check=True,
                capture_output=True,
            )
        services = len(list(root.glob("*/__init__.py")))
        port = free_ports(services)
        environment = {**os.environ, "SKYRIG_ENV__LOCAL__LOCAL__OBJECTS_PORT": str(free_port())}
        process = subprocess.Popen(
            [sys.executable, "-m", "skyrig", "run", str(root), "--port", str(port), "--dashboard-port", "0"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=environment,
        )
        running = Running(root, port, process)
        started.append(running)
        for index in range(services):
            eventually(
                lambda index=index: (
                    running.request(running.url(index, "/__skyrig/health"))[0] == 403
                    or process.poll() is not None
                ),
                f"service {index} of {name}",
                timeout=90,
            )
            assert process.poll() is None, process.communicate()[1]
        return running

    yield start
    for running in started:
        caches = running.root / ".skyrig" / "local" / "local" / "cache"
        redis = [_pid(json.loads(f.read_text())["pidfile"]) for f in caches.glob("*.rdb.settings")]
        if running.process.poll() is None:
            running.process.send_signal(signal.SIGINT)
        _, err = running.process.communicate(timeout=60)
        assert running.process.returncode == 0, err
        assert "stopped: every service is down" in err
        assert redis, "the services' caches ran on Redis servers"
        assert not any(Path(f"/proc/{pid}").exists() for pid in redis), "a cache's Redis outlived skyrig run"


def _pid(pidfile: str) -> int:
    return int(Path(pidfile).read_text().strip())


def test_shop_order_flows_from_http_to_database_topic_and_bucket(run_example):
    shop = run_example("shop", {"stripe-api-key": "sk_test_0000000000004242"})
    orders, notifications, payments = 1, 0, 2  # services in name order: notifications, orders, payments
    status, body = shop.request(shop.url(orders, "/orders"), {"customer_id": "ada", "total_cents": 1250})
    assert status == 200, body
    order = json.loads(body)
    assert order["customer_id"] == "ada" and order["order_id"] >= 1

    status, body = shop.request(shop.url(payments, "/revenue"))
    assert (status, json.loads(body)) == (200, {"total_cents": 1250}), "written to the orders database"

    def receipt() -> str | None:
        status, body = shop.request(shop.url(notifications, f"/receipts/ada/{order['order_id']}"))
        return body if status == 200 else None

    text = eventually(receipt, "the receipt written by the send-receipt subscription")
    assert f"Order {order['order_id']}: 12.50" in text, "fetched through a signed URL of the receipts bucket"

    status, body = shop.request(shop.url(orders, "/carts/bob"), {"items": {"socks": 2}}, method="PUT")
    assert status == 200, body
    status, body = shop.request(shop.url(orders, "/carts/bob"))
    assert (status, json.loads(body)) == (200, {"items": {"socks": 2}}), "kept in the carts cache"


def test_links_visits_are_counted_exported_and_rolled_up(run_example):
    links = run_example("links", {"admin-token": "s3cret"})
    status, body = links.request(links.url(0, "/links"), {"url": "https://example.org/page"})
    assert status == 201, body
    code = json.loads(body)["code"]

    request = urllib.request.Request(links.url(0, f"/{code}"))

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args: Any) -> None:
            return None

    opener = urllib.request.build_opener(NoRedirect)
    for _ in range(3):
        with pytest.raises(urllib.error.HTTPError) as redirect:
            opener.open(request, timeout=10)
        assert redirect.value.code == 307 and redirect.value.headers["location"] == "https://example.org/page"

    def counted() -> bool:
        status, body = links.request(links.url(1, "/top"))
        return status == 200 and json.loads(body) == {code: 3}

    eventually(counted, "three visits counted exactly once each by the count-visit subscription")

    status, body = links.request(
        links.url(1, "/export"), headers={"authorization": "Bearer wrong"}, method="POST"
    )
    assert status == 403
    status, signed = links.request(
        links.url(1, "/export"), headers={"authorization": "Bearer s3cret"}, method="POST"
    )
    assert status == 200, signed
    with urllib.request.urlopen(signed, timeout=10) as response:
        assert response.read().decode().splitlines() == ["code,count", f"{code},3"]

    ran = subprocess.run(
        [sys.executable, "-m", "skyrig", "cron", "run", "roll-up", "-C", str(links.root)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert ran.returncode == 0, ran.stderr
    assert "ran in the running service" in ran.stdout
