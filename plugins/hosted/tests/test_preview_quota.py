"""Quotas under load, as users meet them: 20 ``skyrig preview open`` commands at once, each a process of
its own, against a real host whose quota allows 4 environments per app. Exactly 4 previews open; every
other command fails with the quota's message (no traceback) and leaves nothing on the host; the host
counts 4 environments after the storm, and each open preview is whole."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from support import write_files

from skyrig_hosted.conformance import Host

LIMIT = 4
OPENS = 20

APP = {
    "skyrig.toml": """app = "storm"

[env.preview]
type = "preview"
provider = "hosted"

[env.preview.hosted]
url = "{url}"
deploy = false
""",
    "web/__init__.py": 'from skyrig import Service\n\nservice = Service("web", app="web.app:app")\n',
    "web/app.py": """from skyrig import CacheCluster, Secret

sessions = CacheCluster("sessions")
api_key = Secret("api-key")


async def app(scope, receive, send):
    api_key.value()
    sessions.client()
""",
}


@pytest.fixture(scope="module")
def host() -> Iterator[Host]:
    with Host(options=["--environments-per-app", str(LIMIT)]) as running:
        yield running


def test_twenty_concurrent_preview_opens_hold_the_environments_quota(host: Host, tmp_path: Path) -> None:
    admin = httpx.Client(base_url=host.url, headers={"Authorization": f"Bearer {host.admin_token}"})
    made = admin.post("/apps", json={"name": "storm"})
    assert made.status_code == 201, made.text
    token = made.json()["token"]
    write_files(tmp_path, APP, {"{url}": host.url})
    environ = {**os.environ, "SKYRIG_HOSTED_TOKEN": token}

    def preview(action: str, pr: int) -> subprocess.Popen[str]:
        """``skyrig preview ACTION --pr N --json`` on the app, a process of its own."""
        command = [
            sys.executable,
            "-m",
            "skyrig",
            "preview",
            action,
            "--pr",
            str(pr),
            "--json",
            "-C",
            str(tmp_path),
        ]
        return subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=environ
        )

    commands = [preview("open", pr) for pr in range(1, OPENS + 1)]
    outcomes = {pr: (c.wait(timeout=300), *c.communicate()) for pr, c in enumerate(commands, start=1)}

    opened = sorted(pr for pr, (code, _, _) in outcomes.items() if code == 0)
    refused = {pr: err for pr, (code, _, err) in outcomes.items() if code != 0}
    assert len(opened) == LIMIT, {pr: outcome[2][-400:] for pr, outcome in outcomes.items()}
    for pr, err in refused.items():
        assert "quota" in err and "environments per app" in err, f"pr:{pr}: {err[-600:]}"
        assert "Traceback" not in err, f"pr:{pr} failed with a traceback:\n{err}"
    for pr in opened:
        assert json.loads(outcomes[pr][1])["environment"] == f"pr:{pr}"

    deployer = httpx.Client(base_url=host.url, headers={"Authorization": f"Bearer {token}"})
    listed = deployer.get("/apps/storm/envs").json()["envs"]
    assert sorted(env["name"] for env in listed) == sorted(f"pr:{pr}" for pr in opened), "nothing else"
    for pr in opened:
        resources = deployer.get(f"/apps/storm/envs/pr:{pr}/resources").json()["resources"]
        assert sorted((r["kind"], r["name"]) for r in resources) == [
            ("cache", "sessions"),
            ("secret", "api-key"),
            ("service", "web"),
        ], f"pr:{pr} is whole"

    # a refused preview, once a slot is free, opens like any other
    first, retried = opened[0], next(iter(refused))
    for action, pr in (("close", first), ("open", retried)):
        done = preview(action, pr)
        _, err = done.communicate(timeout=300)
        assert done.returncode == 0, f"preview {action} --pr {pr}: {err}"
