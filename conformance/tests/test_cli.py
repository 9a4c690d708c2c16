"""``skyrig conformance PROVIDER``: the suite against an installed provider, and its capability matrix."""

from __future__ import annotations

import json
import subprocess
import sys


def test_the_template_provider_passes_and_the_matrix_says_what_it_claims(tmp_path):
    matrix, markdown = tmp_path / "matrix.json", tmp_path / "matrix.md"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "skyrig",
            "conformance",
            "template",
            "--json",
            str(matrix),
            "--markdown",
            str(markdown),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    rows = json.loads(matrix.read_text())["template"]
    assert rows["secrets"]["status"] == "passed" and rows["secrets"]["passed"] >= 2
    assert rows["lifecycle"]["status"] == "passed"
    assert rows["robustness"]["status"] == "passed"
    assert rows["pubsub"]["status"] == "not claimed"
    assert rows["sql.branching"]["status"] == "not claimed, refused"
    assert "| `secrets` | ✓ passed |" in markdown.read_text()
    assert "conformance of template" in done.stdout


def test_a_provider_that_is_not_installed_is_named():
    done = subprocess.run(
        [sys.executable, "-m", "skyrig", "conformance", "nope"], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 1
    assert "provider 'nope' is not installed" in done.stderr
    assert "Traceback" not in done.stderr
