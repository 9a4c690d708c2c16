"""A saved plan is applied only to the app and configuration it was made from (issue 12 §3).

The plan records fingerprints of the model and of the environment's configuration; ``skyrig apply FILE``
refuses it when either changed since, naming what changed, and nothing is applied.
"""

from __future__ import annotations

import json

from pydantic import BaseModel, SecretStr

from skyrig.config import Environment

from .conftest import cloud

EVENTS = "orders/events.py"


def _plan(app, skyrig, tmp_path, name: str = "dev.plan"):
    saved = tmp_path / name
    result = skyrig("plan", "--env", "dev", "--out", str(saved))
    assert result.code == 0, result.err
    return saved


def _refused(app, skyrig, saved, *, says_so: bool = True) -> str:
    result = skyrig("apply", "--env", "dev", str(saved))
    assert result.code == 1, result.text
    assert "Traceback" not in result.err
    assert not says_so or "nothing was applied" in result.err, result.err
    assert cloud(app).inventory("shop", "dev") == [], "nothing was created"
    return result.err


def test_a_plan_made_before_the_code_changed_is_refused_naming_what_changed(app, skyrig, tmp_path):
    saved = _plan(app, skyrig, tmp_path)
    events = app / EVENTS
    events.write_text(events.read_text().replace('Topic("order-created"', 'Topic("order-placed"'))

    err = _refused(app, skyrig, saved)

    assert "the app changed since the plan was made" in err, err
    assert "topic/order-placed added" in err and "topic/order-created removed" in err, err
    assert "subscription/send-receipt changed" in err, "its topic's name changed"
    assert "skyrig plan --env dev --out" in err, "the hint says how to make a new one"

    fresh = _plan(app, skyrig, tmp_path, "fresh.plan")
    applied = skyrig("apply", "--env", "dev", str(fresh))
    assert applied.code == 0, applied.err
    assert "order-placed" in json.dumps(cloud(app).inventory("shop", "dev"))


def test_code_that_moved_without_changing_what_it_declares_keeps_the_plan(app, skyrig, tmp_path):
    saved = _plan(app, skyrig, tmp_path)
    events = app / EVENTS
    events.write_text("# a comment moves every declaration of the file a line down\n\n" + events.read_text())

    applied = skyrig("apply", "--env", "dev", str(saved))

    assert applied.code == 0, applied.err
    assert cloud(app).inventory("shop", "dev")


def test_a_plan_made_before_the_configuration_changed_is_refused_naming_the_fields(
    app, skyrig, tmp_path, monkeypatch
):
    saved = _plan(app, skyrig, tmp_path)
    config = app / "skyrig.toml"
    config.write_text(config.read_text() + "\n[env.dev.memory]\nlatency_ms = 1\n")

    err = _refused(app, skyrig, saved)
    assert "the configuration of environment 'dev' changed since the plan was made: memory.latency_ms" in err

    config.write_text(config.read_text().replace("latency_ms = 1", "latency_ms = 0"))  # the default again
    monkeypatch.setenv("SKYRIG_ENV__DEV__MEMORY__ERROR_RATE", "0.5")
    err = _refused(app, skyrig, saved)
    assert "changed since the plan was made: memory.error_rate" in err, "a SKYRIG_ variable is configuration"
    assert "latency_ms" not in err


def test_a_plan_of_the_previous_version_is_refused_with_a_hint(app, skyrig, tmp_path):
    saved = _plan(app, skyrig, tmp_path)
    old = json.loads(saved.read_text())
    old["version"] = 2
    del old["fingerprints"]
    saved.write_text(json.dumps(old))

    err = _refused(app, skyrig, saved, says_so=False)

    assert "is not a skyrig plan this skyrig can apply: plan version 2, expected 3" in err, err
    assert "make a new one: skyrig plan --env dev --out" in err


def test_the_plan_records_fingerprints_and_no_setting_in_clear(app, skyrig, tmp_path):
    saved = _plan(app, skyrig, tmp_path)
    recorded = json.loads(saved.read_text())["fingerprints"]
    assert {"topic/order-created", "service/orders", "sql_database/orders"} <= set(recorded["model"])
    assert {"type", "providers.sql", "memory.path", "memory.latency_ms"} <= set(recorded["config"])
    assert ".skyrig/memory-cloud.db" not in json.dumps(recorded), "values are hashed"


class _Settings(BaseModel):
    region: str = "here"
    token: SecretStr


def test_secret_settings_are_hashed_never_written_and_still_compared():
    from skyrig.cli.plan import config_fingerprints

    def environment(token: str) -> Environment:
        settings = {"vault": _Settings(token=SecretStr(token))}
        return Environment("dev", "development", {"compute": "vault"}, settings)

    salt = "a" * 32
    first = config_fingerprints(environment("canary-8f3a"), salt)
    assert "canary-8f3a" not in json.dumps(first)
    assert first == config_fingerprints(environment("canary-8f3a"), salt)
    changed = config_fingerprints(environment("canary-other"), salt)
    assert {k for k in first if first[k] != changed[k]} == {"vault.token"}
    assert config_fingerprints(environment("canary-8f3a"), "b" * 32) != first, "salted per plan"
