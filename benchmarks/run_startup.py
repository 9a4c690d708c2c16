"""How long `skyrig run` takes on an example app until every service answers: cold and warm.

Cold: a fresh copy of the app (the PostgreSQL cluster is created, databases made, migrations applied).
Warm: the same copy again, nothing changed (everything is reused). The breakdown is what `skyrig run`
prints (provisioning, services). Targets on examples/shop: cold under 5 s, warm under 1.5 s.

    .venv/bin/python benchmarks/run_startup.py [--app examples/shop] [--runs 3]
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

from skyrig.ports import free_port, free_ports

READY = re.compile(r"ready in ([\d.]+) s \(provisioning ([\d.]+) s, services ([\d.]+) s\)")


def start(app: Path, port: int, objects_port: int) -> tuple[float, dict[str, float]]:
    """Seconds from launch until every service answers, and the breakdown skyrig run printed."""
    environment = {**os.environ, "SKYRIG_ENV__LOCAL__LOCAL__OBJECTS_PORT": str(objects_port)}
    command = [sys.executable, "-m", "skyrig", "run", str(app), "--port", str(port), "--no-reload"]
    started = time.perf_counter()
    runner = subprocess.Popen(command, stderr=subprocess.PIPE, text=True, env=environment)
    lines = []
    assert runner.stderr is not None
    for line in runner.stderr:
        lines.append(line)
        found = READY.search(line)
        if found:
            break
    else:
        raise SystemExit("skyrig run did not start:\n" + "".join(lines))
    services = len(list(app.glob("*/__init__.py")))
    for offset in range(services):
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port + offset}/__skyrig/health", timeout=1)
            except urllib.error.HTTPError:
                break  # 403: it answers
            except OSError:
                time.sleep(0.01)
    elapsed = time.perf_counter() - started
    runner.send_signal(signal.SIGINT)
    runner.communicate(timeout=60)
    breakdown = {"provisioning": float(found.group(2)), "services": float(found.group(3))}
    return elapsed, breakdown


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--app", default="examples/shop")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    source = Path(args.app).resolve()
    secrets = {"shop": ["stripe-api-key"], "links": ["admin-token"]}.get(source.name, [])
    results: dict[str, list[tuple[float, dict[str, float]]]] = {"cold": [], "warm": []}
    for _ in range(args.runs):
        with tempfile.TemporaryDirectory() as folder:
            app = Path(folder) / source.name
            shutil.copytree(source, app, ignore=shutil.ignore_patterns(".skyrig", "__pycache__"))
            for name in secrets:
                subprocess.run(
                    [sys.executable, "-m", "skyrig", "secret", "set", name, "--env", "local", "-C", str(app)],
                    input="benchmark",
                    text=True,
                    check=True,
                    capture_output=True,
                )
            port, objects_port = free_ports(len(list(app.glob("*/__init__.py")))), free_port()
            results["cold"].append(start(app, port, objects_port))
            results["warm"].append(start(app, port, objects_port))
    print(f"skyrig run {source.name}: {args.runs} runs, median (min-max)")
    print(f"{'start':<8}{'all services answer':>22}{'provisioning':>15}{'services':>12}")
    for label, runs in results.items():
        total = [elapsed for elapsed, _ in runs]
        provisioning = statistics.median(b["provisioning"] for _, b in runs)
        services = statistics.median(b["services"] for _, b in runs)
        spread = f"{statistics.median(total):.2f} s ({min(total):.2f}-{max(total):.2f})"
        print(f"{label:<8}{spread:>22}{provisioning:>13.2f} s{services:>10.2f} s")


if __name__ == "__main__":
    main()
