"""`skyrig model` on a generated app of 2,000 modules and 10,000 declarations.

Targets: a cold build within 2x of the time `ast.parse` alone takes on the same files; an unchanged
re-run (served from `.skyrig/cache`) at least 20x faster than the cold build.
"""

from __future__ import annotations

import argparse
import ast
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from skyrig.analysis import build_model, model_json

SERVICES = 20

MODULE = '''"""Generated module {index} of service {service}."""

from __future__ import annotations

import json
from pydantic import BaseModel

from skyrig import Bucket, CacheCluster, Secret, Subscription, Topic
from {service} import {first}topic_{upstream}


class Event{index}(BaseModel):
    id: int
    key: str
    payload: dict[str, int] = {{}}


topic_{index} = Topic("topic-{index}", Event{index}, ordering_attribute="key")
bucket_{index} = Bucket("bucket-{index}", versioned={versioned})
secret_{index} = Secret("secret-{index}")
cache_{index} = CacheCluster("cache-{index}", eviction_policy="allkeys-lfu")


def summarize(events: list[Event{index}]) -> dict[str, int]:
    totals: dict[str, int] = {{}}
    for event in events:
        for name, value in event.payload.items():
            totals[name] = totals.get(name, 0) + value
    return {{name: total for name, total in sorted(totals.items()) if total > 0}}


def handle_{index}(event: Event{index}) -> None:
    archived = bucket_{index}.download(f"events/{{event.id}}.json")
    if not archived:
        bucket_{index}.upload(f"events/{{event.id}}.json", json.dumps(event.model_dump()).encode())
    if secret_{index}.value and event.key.startswith("forward-"):
        topic_{upstream}.publish(event)


class Report{index}:
    def __init__(self, title: str) -> None:
        self.title = title
        self.lines: list[str] = []

    def add(self, text: str, *, indent: int = 0) -> None:
        self.lines.append(" " * indent + text)

    def render(self) -> str:
        return "\\n".join([self.title, "=" * len(self.title), *self.lines])


Subscription(topic_{index}, "subscription-{index}", handler=handle_{index}, max_retries=5, ack_deadline="1m")
'''

SERVICE = '''"""Generated service {service}."""

from pydantic import BaseModel

from skyrig import Bucket, CacheCluster, Secret, Service, Topic


class Notice(BaseModel):
    id: int


service = Service("{service}", app="{service}.api:app")
topic_{index} = Topic("topic-{index}", Notice)
bucket_{index} = Bucket("bucket-{index}")
secret_{index} = Secret("secret-{index}")
cache_{index} = CacheCluster("cache-{index}")
'''


def generate(root: Path, modules: int) -> int:
    """Write an app of ``modules`` modules, five declarations each; return the declaration count."""
    per_service = modules // SERVICES
    index = 0
    for s in range(SERVICES):
        service = f"svc{s:02d}"
        folder = root / service
        folder.mkdir(parents=True)
        first = index
        (folder / "__init__.py").write_text(SERVICE.format(service=service, index=index))
        index += 1
        for m in range(per_service - 1):
            name = "api" if m == 0 else f"m{m:03d}"
            source = MODULE.format(
                index=index, service=service, upstream=first, versioned=m % 2 == 0, first=""
            ).replace(f"from {service} import topic_{first}", f"from {service} import topic_{first}")
            if name == "api":
                source += "\n\nasync def app(scope, receive, send):\n    pass\n"
            (folder / f"{name}.py").write_text(source)
            index += 1
    (root / "skyrig.toml").write_text('app = "big"\n')
    return index * 5


def timed(function, repeat: int, setup=None) -> float:
    times = []
    for _ in range(repeat):
        if setup is not None:
            setup()
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--modules", type=int, default=2000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder) / "big"
        declarations = generate(root, args.modules)
        files = sorted(root.rglob("*.py"))
        size = sum(f.stat().st_size for f in files)

        def parse_only() -> None:
            for path in files:
                ast.parse(path.read_bytes(), filename=str(path))

        def forget() -> None:
            shutil.rmtree(root / ".skyrig", ignore_errors=True)

        def cold() -> None:
            build_model(root, "big")

        def warm() -> None:
            build_model(root, "big")

        def warm_json() -> None:
            model_json(root, "big")

        def one_edit() -> None:
            target = root / "svc07" / "m042.py"
            target.write_text(target.read_text() + "\n")
            build_model(root, "big")

        model = build_model(root, "big", cache=False)
        assert len(model.resources) + len(model.services) == declarations, "every declaration is in the model"
        parse = timed(parse_only, args.repeat)
        uncached = timed(lambda: build_model(root, "big", cache=False), args.repeat)
        first = timed(cold, args.repeat, setup=forget)
        again = timed(warm, args.repeat * 4)
        again_json = timed(warm_json, args.repeat * 4)
        edit = timed(one_edit, args.repeat)
        cli_cold = timed(lambda: _cli(root, cache=False), 3)
        cli_warm = timed(lambda: _cli(root, cache=True), 5)

    print(f"app: {len(files)} modules, {declarations} declarations, {size / 1e6:.1f} MB of source")
    print(f"{'step':<48}{'median':>10}   ratio")
    rows = [
        ("read + ast.parse of every file (baseline)", parse, ""),
        ("cold build, no cache", uncached, f"{uncached / parse:.2f}x of parse"),
        ("cold build, writing the cache (first run)", first, f"{first / parse:.2f}x of parse"),
        (
            "unchanged re-run, model as JSON text",
            again_json,
            f"{first / again_json:.0f}x faster than first run",
        ),
        ("unchanged re-run, model as objects", again, f"{first / again:.0f}x faster than first run"),
        ("re-run after editing one file", edit, f"{first / edit:.1f}x faster than first run"),
        ("process: skyrig model --json --no-cache", cli_cold, ""),
        ("process: skyrig model --json, unchanged", cli_warm, f"{cli_cold / cli_warm:.1f}x faster"),
    ]
    for label, seconds, ratio in rows:
        print(f"{label:<48}{seconds * 1000:>8.1f}ms   {ratio}")
    print(
        f"targets: first run <= 2x parse: {'met' if first / parse <= 2 else 'MISSED'}; "
        f"unchanged re-run >= 20x faster: {'met' if first / again_json >= 20 else 'MISSED'}"
    )


def _cli(root: Path, *, cache: bool) -> None:
    command = [str(Path(sys.executable).with_name("skyrig")), "model", str(root), "--json"]
    subprocess.run(command + ([] if cache else ["--no-cache"]), capture_output=True, check=True)


if __name__ == "__main__":
    main()
