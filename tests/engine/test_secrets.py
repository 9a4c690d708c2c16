"""Secret values never reach state, plans, logs, exceptions or --json output: a canary proves it."""

from __future__ import annotations

from .conftest import cloud, run_process

CANARY = "sk_live_CANARY_7f3a9c1e5b"


def test_a_canary_secret_appears_nowhere(app, skyrig, tmp_path):
    outputs = []
    set_secret = run_process(app, "secret", "set", "stripe-api-key", "--env", "dev", input=CANARY + "\n")
    assert set_secret.returncode == 0, set_secret.stderr
    outputs += [set_secret.stdout, set_secret.stderr]
    assert cloud(app).secret_value("shop", "dev", "stripe-api-key") == CANARY, "the provider's store holds it"

    plan_file = tmp_path / "dev.plan"
    for args in (
        ("plan", "--env", "dev", "--json", "--out", str(plan_file)),
        ("apply", "--env", "dev", str(plan_file)),
        ("status", "--env", "dev", "--json"),
        ("status", "--env", "dev"),
        ("drift", "--env", "dev"),
        ("graph", "--env", "dev", "--format", "json"),
        ("config", "--json"),
        ("plan", "--env", "dev"),
        ("destroy", "--env", "dev", "--yes", "--include-data"),
    ):
        result = skyrig(*args)
        assert result.code == 0, (args, result.err)
        outputs += [result.out, result.err]
    broken = run_process(app, "secret", "set", "no-such-secret", "--env", "dev", input=CANARY)
    assert broken.returncode == 1 and "declares no secret 'no-such-secret'" in broken.stderr
    outputs += [broken.stdout, broken.stderr]

    for text in outputs:
        assert CANARY not in text
    for path in (app / ".skyrig").rglob("*"):
        if path.is_file() and path.name != "memory-cloud.db" and not path.name.startswith("memory-cloud.db-"):
            assert CANARY.encode() not in path.read_bytes(), f"the canary leaked into {path}"
    assert CANARY.encode() not in plan_file.read_bytes()
    runtime = (app / ".skyrig" / "runtime" / "dev" / "payments.json").read_text()
    assert "memory://shop/dev/secrets/stripe-api-key" in runtime, "the app gets a reference, not the value"


def test_secret_values_come_from_stdin_never_an_argument(app):
    result = run_process(app, "secret", "set", "stripe-api-key", "--env", "dev", CANARY, input="")
    assert result.returncode == 2, "the value cannot be given as an argument"
    assert CANARY not in result.stdout
