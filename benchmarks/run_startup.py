"""How long `skyrig run` takes on an example app until every service answers (cold and warm), and how long
a reload takes until the changed service answers with the new code; services forked from the zygote
against fresh interpreters (`SKYRIG_RUN_FORK=0`), alternately in each run.

Cold: a fresh copy of the app (the PostgreSQL cluster is created, databases made, migrations applied).
Warm: the same copy again, nothing changed (everything is reused). Reload: in a warm run, a route is added
to one service's FastAPI app; timed from writing the file until that route answers. The breakdown is what
`skyrig run` prints (provisioning, services). Targets on examples/shop: warm under 0.8 s, cold under 2 s,
reload under 0.5 s.

    .venv/bin/python benchmarks/run_startup.py [--app examples/shop] [--runs 3]
"""

from __future__ import annotations

import argparse
import json
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
SERVICE = re.compile(r"""Service\(\s*["']([\w-]+)["']\s*,\s*app\s*=\s*["']([\w.]+):""")
MODES = {"fork": "1", "plain": "0"}


class Run:
    """One `skyrig run` of ``app``, started by :meth:`start` and stopped by :meth:`stop`."""

    def __init__(self, app: Path, port: int, objects_port: int, mode: str) -> None:
        self.app = app
        environment = {
            **os.environ,
            "SKYRIG_ENV__LOCAL__LOCAL__OBJECTS_PORT": str(objects_port),
            "SKYRIG_RUN_FORK": MODES[mode],
        }
        command = [sys.executable, "-m", "skyrig", "run", str(app), "--port", str(port)]
        self.started = time.perf_counter()
        self.process = subprocess.Popen(
            command,
            stderr=subprocess.PIPE,
            text=True,
            env=environment,
        )
        lines = []
        assert self.process.stderr is not None
        for line in self.process.stderr:
            lines.append(line)
            found = READY.search(line)
            if found:
                break
        else:
            raise SystemExit("skyrig run did not start:\n" + "".join(lines))
        self.breakdown = {"provisioning": float(found.group(2)), "services": float(found.group(3))}
        self.services = json.loads((app / ".skyrig" / "run" / "local.json").read_text())["services"]
        for url in self.services.values():
            wait_for(f"{url}/__skyrig/health", lambda status, _: status in (200, 403))
        self.elapsed = time.perf_counter() - self.started

    def reload(self, number: int) -> float:
        """Seconds from adding route ``/bench-N`` to a service's app until it answers."""
        service, module = reload_target(self.app)
        path = self.app / (module.replace(".", "/") + ".py")
        route = f"/bench-{number}"
        code = f'\n\n@app.get("{route}")\ndef bench_{number}() -> str:\n    return "{number}"\n'
        started = time.perf_counter()
        with path.open("a") as source:
            source.write(code)
        wait_for(
            f"{self.services[service]}{route}", lambda status, body: status == 200 and str(number) in body
        )
        return time.perf_counter() - started

    def stop(self) -> None:
        self.process.send_signal(signal.SIGINT)
        self.process.communicate(timeout=60)


def wait_for(url: str, done: object, timeout: float = 60) -> None:
    """Poll ``url`` until ``done(status, body)``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=1) as response:
                status, body = response.status, response.read().decode()
        except urllib.error.HTTPError as error:
            status, body = error.code, ""
        except OSError:
            time.sleep(0.005)
            continue
        if done(status, body):  # type: ignore[operator]
            return
        time.sleep(0.005)
    raise SystemExit(f"{url} did not answer in time")


def reload_target(app: Path) -> tuple[str, str]:
    """The first service (by name) whose app is a FastAPI app: (its name, its app's module)."""
    found = []
    for init in sorted(app.glob("*/__init__.py")):
        match = SERVICE.search(init.read_text())
        if match:
            module = app / (match.group(2).replace(".", "/") + ".py")
            if module.exists() and "FastAPI(" in module.read_text():
                found.append((match.group(1), match.group(2)))
    if not found:
        raise SystemExit(f"{app} has no service with a FastAPI app to reload")
    return sorted(found)[0]


def copy(source: Path, folder: Path, name: str) -> Path:
    app = folder / name / source.name
    shutil.copytree(source, app, ignore=shutil.ignore_patterns(".skyrig", "__pycache__"))
    secrets = {"shop": ["stripe-api-key"], "links": ["admin-token"]}.get(source.name, [])
    for secret in secrets:
        subprocess.run(
            [sys.executable, "-m", "skyrig", "secret", "set", secret, "--env", "local", "-C", str(app)],
            input="benchmark",
            text=True,
            check=True,
            capture_output=True,
        )
    return app


def spread(values: list[float]) -> str:
    return f"{statistics.median(values):.2f} s ({min(values):.2f}-{max(values):.2f})"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--app", default="examples/shop")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    source = Path(args.app).resolve()
    count = len(list(source.glob("*/__init__.py")))
    starts: dict[tuple[str, str], list[Run]] = {}
    reloads: dict[str, list[float]] = {mode: [] for mode in MODES}
    for run in range(args.runs):
        modes = list(MODES) if run % 2 == 0 else list(reversed(MODES))
        with tempfile.TemporaryDirectory() as folder:
            apps = {mode: copy(source, Path(folder), mode) for mode in modes}
            ports = {mode: (free_ports(count), free_port()) for mode in modes}
            for mode in modes:
                cold = Run(apps[mode], *ports[mode], mode)
                cold.stop()
                starts.setdefault(("cold", mode), []).append(cold)
            for mode in modes + modes:
                warm = Run(apps[mode], *ports[mode], mode)
                try:
                    if len(starts.get(("warm", mode), [])) % 2 == 1:
                        reloads[mode].append(warm.reload(run))
                finally:
                    warm.stop()
                starts.setdefault(("warm", mode), []).append(warm)
    print(f"skyrig run {source.name}: {args.runs} runs, median (min-max)")
    print(f"{'start':<8}{'services':<10}{'all services answer':>24}{'provisioning':>15}{'services':>12}")
    for (label, mode), runs in starts.items():
        provisioning = statistics.median(run.breakdown["provisioning"] for run in runs)
        services = statistics.median(run.breakdown["services"] for run in runs)
        total = spread([r.elapsed for r in runs])
        print(f"{label:<8}{mode:<10}{total:>24}{provisioning:>13.2f} s{services:>10.2f} s")
    for mode, seconds in reloads.items():
        print(f"{'reload':<8}{mode:<10}{spread(seconds):>24}   (until the changed service answers anew)")
    for label in ("cold", "warm"):
        fork, plain = (statistics.median(r.elapsed for r in starts[(label, mode)]) for mode in MODES)
        print(f"{label}: forked / fresh interpreters = {fork / plain:.2f}")


if __name__ == "__main__":
    main()
