"""Declarations bind lazily, by name, to the runtime config apply wrote, as a running service sees them."""

from __future__ import annotations

import subprocess
import sys

from .conftest import run_process

READ_SECRET = """
import sys
sys.path.insert(0, ".")
from payments.secrets import stripe_api_key
print(stripe_api_key.value)
"""


def _as_service(app, service: str, code: str) -> subprocess.CompletedProcess:
    config = app / ".skyrig" / "runtime" / "dev" / f"{service}.json"
    return subprocess.run(
        [sys.executable, "-c", code],
        cwd=app,
        capture_output=True,
        text=True,
        env={"SKYRIG_RUNTIME_CONFIG": str(config), "PATH": "/usr/bin:/bin"},
    )


def test_a_service_reads_a_secret_it_uses(app, skyrig):
    assert skyrig("apply", "--env", "dev", "--yes").code == 0
    missing = _as_service(app, "payments", READ_SECRET)
    assert "secret 'stripe-api-key' has no value in environment 'dev'" in missing.stderr
    assert "skyrig secret set stripe-api-key --env dev" in missing.stderr

    assert (
        run_process(app, "secret", "set", "stripe-api-key", "--env", "dev", input="sk_test_123").returncode
        == 0
    )
    result = _as_service(app, "payments", READ_SECRET)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "sk_test_123"


def test_a_service_cannot_use_what_it_did_not_declare(app, skyrig):
    assert skyrig("apply", "--env", "dev", "--yes").code == 0
    result = _as_service(app, "notifications", READ_SECRET)
    assert result.returncode == 1
    assert "'secret stripe-api-key' is not available to service 'notifications'" in result.stderr


def test_without_a_runtime_config_the_error_says_what_to_do(app):
    result = subprocess.run(
        [sys.executable, "-c", READ_SECRET],
        cwd=app,
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin"},
    )
    assert "SKYRIG_RUNTIME_CONFIG is not set" in result.stderr
