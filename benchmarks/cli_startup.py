"""How long `skyrig --help` and `skyrig providers` take, against a bare `python -c pass`.

Every first-party plugin installed in the environment takes part (they are loaded by `providers`).
Target: both under 0.3 s.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from importlib.metadata import entry_points
from pathlib import Path

SKYRIG = str(Path(sys.executable).with_name("skyrig"))


def measure(command: list[str], runs: int) -> list[float]:
    subprocess.run(command, capture_output=True, check=True)  # warm the OS file cache
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(command, capture_output=True, check=True)
        times.append(time.perf_counter() - start)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()
    providers = sorted(point.name for point in entry_points(group="skyrig.providers"))
    print(f"installed providers: {', '.join(providers)}; {args.runs} runs each")
    baseline = statistics.median(measure([sys.executable, "-c", "pass"], args.runs))
    print(f"{'command':<22}{'median':>10}{'p90':>10}{'vs python -c pass':>20}")
    print(f"{'python -c pass':<22}{baseline * 1000:>8.0f}ms")
    for label, command in (
        ("skyrig --help", [SKYRIG, "--help"]),
        ("skyrig providers", [SKYRIG, "providers"]),
    ):
        times = sorted(measure(command, args.runs))
        median, p90 = statistics.median(times), times[int(len(times) * 0.9) - 1]
        verdict = "ok" if p90 < 0.3 else "OVER 0.3 s"
        print(f"{label:<22}{median * 1000:>8.0f}ms{p90 * 1000:>8.0f}ms{median / baseline:>19.1f}x  {verdict}")


if __name__ == "__main__":
    main()
