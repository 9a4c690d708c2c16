"""The suite catches a provider that claims what it lacks, leaves a resource behind, or leaks a secret,
and says what is wrong. The faulty provider (``fixtures/skyrig_faulty.py``) is the memory provider with
exactly those three faults."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

FIXTURES = Path(__file__).resolve().parent / "fixtures"
CHECKS = "exactly_once_hands or destroy_leaves_nothing or leaks_nowhere or reference_not_a_value"


def test_each_fault_fails_the_suite_with_a_message_that_names_it(tmp_path):
    matrix = tmp_path / "matrix.json"
    done = subprocess.run(
        [sys.executable, "-m", "skyrig", "conformance", "faulty", "--json", str(matrix), "-k", CHECKS],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
        env={
            **os.environ,
            "PYTHONPATH": os.pathsep.join(filter(None, [str(FIXTURES), os.environ.get("PYTHONPATH")])),
        },
    )
    output = done.stdout + done.stderr
    assert done.returncode == 1, output
    rows = json.loads(matrix.read_text())["faulty"]
    assert rows["pubsub.exactly_once"]["failed"] == ["test_exactly_once_hands_each_message_over_once"]
    assert rows["lifecycle"]["failed"] == ["test_destroy_leaves_nothing_in_the_backend"]
    assert sorted(rows["secrets"]["failed"]) == [
        "test_a_value_set_out_of_band_is_read_by_the_app_and_leaks_nowhere",
        "test_the_runtime_config_holds_a_reference_not_a_value",
    ]
    assert "handed over more than once" in output
    assert "destroy --include-data left this in the backend" in output and "memory.objects.bucket" in output
    assert "the secret's value leaked into" in output and "runtime/conformance/alpha.json" in output
    assert "a runtime config entry may not carry a secret's value" in output
