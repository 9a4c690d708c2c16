"""How long a pull request's preview of an example app takes on a warm host: from the GitHub webhook to
every service answering through the host's proxy.

A host (``skyrig-hosted serve``, durable: fsync on) is started in a temporary folder; the app (by default
``examples/shop``) is committed to a git repository there, with a preview template environment on the
hosted provider for every family, and the app's webhook is configured on the host. A first pull request
warms the host (its servers, the Python modules the apply imports, the file cache) and is closed; then,
per run, a new pull request is opened by a signed ``pull_request`` webhook (``opened``) and timed until
every service answers ``GET /openapi.json`` at ``<service>.pr-N.<app>.localhost``; a push is timed the
same way (``synchronize``: a new commit, redeployed), and the close until the environment is gone.
Target (issue 17): the open under 5 s.

    .venv/bin/python benchmarks/hosted_preview.py [--app examples/shop] [--runs 5]
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import json
import shutil
import statistics
import subprocess
import tempfile
import time
import uuid
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx

from skyrig_hosted.conformance import Host

SECRET = "benchmark-webhook-secret-0123456789"
STEPS = (
    "open: webhook to every service answering",
    "open: the job (git fetch, skyrig preview open)",
    "push: webhook to every service answering",
    "push: the job",
    "close: webhook to the environment gone",
)
TIMEOUT = 120.0


def git(repo: Path, *args: str) -> str:
    """Run git in ``repo``; its output."""
    done = subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True, text=True)
    return done.stdout.strip()


def repository(app: Path, folder: Path, url: str) -> tuple[Path, str, list[str]]:
    """The app committed to a new git repository with a preview template on the host at ``url``: its path,
    the app's name, and its services."""
    repo = folder / "repo"
    shutil.copytree(app, repo, ignore=shutil.ignore_patterns(".skyrig", "__pycache__"))
    toml = repo / "skyrig.toml"
    text = toml.read_text()
    name = next(
        line.split("=", 1)[1].strip().strip('"') for line in text.splitlines() if line.startswith("app")
    )
    toml.write_text(
        text
        + f'\n[env.preview]\ntype = "preview"\nprovider = "hosted"\n\n[env.preview.hosted]\nurl = "{url}"\n'
    )
    services = sorted(
        path.parent.name for path in repo.glob("*/__init__.py") if "Service(" in path.read_text()
    )
    git(repo, "init", "-q", "-b", "main")
    git(repo, "-c", "user.name=bench", "-c", "user.email=bench@example.com", "add", "-A")
    git(repo, "-c", "user.name=bench", "-c", "user.email=bench@example.com", "commit", "-q", "-m", "app")
    return repo, name, services


def commit(repo: Path, marker: str) -> str:
    """A new commit (a file changed), its sha."""
    (repo / "BENCHMARK").write_text(marker + "\n")
    git(repo, "add", "BENCHMARK")
    git(repo, "-c", "user.name=bench", "-c", "user.email=bench@example.com", "commit", "-q", "-m", marker)
    return git(repo, "rev-parse", "HEAD")


class Bench:
    """The host, the app on it, and the pull requests sent to it."""

    def __init__(self, host: Host, repo: Path, app: str, services: list[str]) -> None:
        self.host, self.repo, self.app, self.services = host, repo, app, services
        self.show_log = False
        self.base = host.url.removesuffix("/v1")
        self.http = httpx.Client(timeout=30)
        admin = {"Authorization": f"Bearer {host.admin_token}"}
        answer = self.http.post(f"{host.url}/apps", json={"name": app}, headers=admin)
        answer.raise_for_status()
        self.token = answer.json()["token"]
        self.headers = {"Authorization": f"Bearer {self.token}"}
        configured = self.http.put(
            f"{host.url}/apps/{app}/github",
            json={"secret": SECRET, "repository": str(repo)},
            headers=self.headers,
        )
        configured.raise_for_status()

    def webhook(self, action: str, pr: int, sha: str) -> dict[str, Any]:
        """Send a signed ``pull_request`` event; the job the host answers with."""
        payload = {
            "action": action,
            "number": pr,
            "pull_request": {"number": pr, "head": {"sha": sha, "ref": f"pr-{pr}"}},
            "repository": {"full_name": f"bench/{self.app}", "clone_url": str(self.repo)},
        }
        body = json.dumps(payload).encode()
        signature = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
        answer = self.http.post(
            f"{self.host.url}/apps/{self.app}/github/webhook",
            content=body,
            headers={
                "Content-Type": "application/json",
                "X-GitHub-Event": "pull_request",
                "X-GitHub-Delivery": str(uuid.uuid4()),
                "X-Hub-Signature-256": signature,
            },
        )
        answer.raise_for_status()
        return answer.json()["job"]

    def job(self, job: dict[str, Any]) -> dict[str, Any]:
        """Wait until ``job`` has ended; its last view (raises when it failed)."""
        deadline = time.monotonic() + TIMEOUT
        while time.monotonic() < deadline:
            view = self.http.get(f"{self.host.url}/apps/{self.app}/jobs/{job['id']}", headers=self.headers)
            view.raise_for_status()
            current = view.json()["job"]
            if current["state"] in ("succeeded", "failed", "superseded"):
                if current["state"] != "succeeded":
                    raise SystemExit(f"job {job['id']} {current['state']}:\n{current.get('log', '')}")
                return current
            time.sleep(0.02)
        raise SystemExit(f"job {job['id']} did not end in {TIMEOUT:.0f} s")

    def answering(self, pr: int, marker: str | None = None) -> None:
        """Wait until every service of ``pr:N`` answers through the proxy (and serves ``marker``'s commit,
        when given: the job has ended by then, and a deployment replaces the processes before it answers)."""
        deadline = time.monotonic() + TIMEOUT
        for service in self.services:
            host = f"{service}.pr-{pr}.{self.app}.localhost"
            while True:
                try:
                    answer = self.http.get(f"{self.base}/openapi.json", headers={"Host": host}, timeout=5)
                    if answer.status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                if time.monotonic() > deadline:
                    raise SystemExit(f"{host} did not answer in {TIMEOUT:.0f} s")
                time.sleep(0.01)

    def gone(self, pr: int) -> None:
        """Wait until environment ``pr:N`` is gone from the host."""
        deadline = time.monotonic() + TIMEOUT
        while time.monotonic() < deadline:
            answer = self.http.get(f"{self.host.url}/apps/{self.app}/envs/pr:{pr}", headers=self.headers)
            if answer.status_code == 404:
                return
            time.sleep(0.02)
        raise SystemExit(f"pr:{pr} was not removed in {TIMEOUT:.0f} s")

    def deploy(self, action: str, pr: int, sha: str) -> tuple[float, float]:
        """Seconds from the webhook to every service answering, and of those the job's own (from its start
        to its end, as the host recorded them: the git fetch and ``skyrig preview open``)."""
        started = time.perf_counter()
        job = self.job(self.webhook(action, pr, sha))
        self.answering(pr)
        if self.show_log:
            print(job.get("log", ""), flush=True)
        total = time.perf_counter() - started
        ran = datetime.fromisoformat(job["finished_at"]) - datetime.fromisoformat(job["started_at"])
        return total, ran.total_seconds()

    def open(self, pr: int, sha: str) -> tuple[float, float]:
        return self.deploy("opened", pr, sha)

    def push(self, pr: int) -> tuple[float, float]:
        return self.deploy("synchronize", pr, commit(self.repo, f"pr {pr} push {time.time()}"))

    def close(self, pr: int, sha: str) -> float:
        started = time.perf_counter()
        self.job(self.webhook("closed", pr, sha))
        self.gone(pr)
        return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--app", type=Path, default=Path("examples/shop"))
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument(
        "--log", action="store_true", help="print each job's log (what the host ran, and when)"
    )
    options = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="skyrig-bench-hosted-"))
    folder.chmod(0o711)  # as root, the PostgreSQL server's own user must reach the host's data below it
    try:
        with Host(folder / "host", fast=False) as host:
            repo, app, services = repository(options.app.resolve(), folder, host.url)
            bench = Bench(host, repo, app, services)
            bench.show_log = options.log
            head = git(repo, "rev-parse", "HEAD")
            warm, _ = bench.open(1, head)
            bench.close(1, head)
            print(
                f"warm-up: pull request 1 opened in {warm:.2f} s "
                f"({len(services)} services: {', '.join(services)})"
            )
            figures: dict[str, list[float]] = {step: [] for step in STEPS}
            for pr in range(2, 2 + options.runs):
                head = git(repo, "rev-parse", "HEAD")
                opened, opened_job = bench.open(pr, head)
                pushed, pushed_job = bench.push(pr)
                closed = bench.close(pr, git(repo, "rev-parse", "HEAD"))
                for step, value in zip(STEPS, (opened, opened_job, pushed, pushed_job, closed), strict=True):
                    figures[step].append(value)
                print(
                    f"pr:{pr}: open {opened:.2f} s (job {opened_job:.2f} s), push {pushed:.2f} s "
                    f"(job {pushed_job:.2f} s), close {closed:.2f} s",
                    flush=True,
                )
            print("\n| step | median | min | max |\n| --- | --- | --- | --- |")
            for step, values in figures.items():
                print(
                    f"| {step} | {statistics.median(values):.2f} s | {min(values):.2f} s "
                    f"| {max(values):.2f} s |"
                )
    finally:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
