"""Providers by entry point, loaded lazily by name; manifests refuse what a provider cannot do."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest

from skyrig.config import load_config
from skyrig.plugins.support import plugin_manager
from skyrig.provider import Manifest, ManifestError

from .conftest import SHOP

CLOUD_SDKS = ("boto3", "botocore", "google.cloud", "azure", "kubernetes", "psycopg", "redis", "nats")


_LIST_MODULES = """
import sys
from skyrig.cli import main
try:
    main(sys.argv[1:])
except SystemExit:
    pass
sys.stderr.write("\\n".join(sorted(sys.modules)))
"""


def _imported(*args: str) -> set[str]:
    """Modules loaded by ``skyrig ARGS`` in a fresh interpreter."""
    process = subprocess.run(
        [sys.executable, "-c", _LIST_MODULES, *args], capture_output=True, text=True, check=True
    )
    return set(process.stderr.splitlines())


def test_help_imports_no_heavy_module():
    modules = _imported("--help")
    heavy = {"pydantic", "rich", "stevedore", "pluggy", "croniter", *CLOUD_SDKS}
    assert not {m for m in modules if m.split(".")[0] in heavy or m in heavy}, (
        "skyrig --help must stay instant"
    )


def test_providers_imports_no_cloud_sdk():
    modules = _imported("providers")
    assert "skyrig_memory" in modules
    assert not [m for m in modules if m.startswith(CLOUD_SDKS)]
    assert "pydantic" not in modules, "manifests name their settings model; listing imports none"


def test_providers_lists_installed_providers_with_capabilities(run):
    result = run("providers", "--json")
    assert result.code == 0
    (memory,) = [p for p in json.loads(result.out)["providers"] if p["name"] == "memory"]
    assert memory["distribution"] == "skyrig-memory" and memory["version"] == "0.1.0"
    assert memory["kinds"] == sorted(
        ["service", "sql_database", "topic", "subscription", "cache_cluster", "cron_job", "bucket", "secret"]
    )
    assert memory["environment_types"] == ["development", "local", "preview", "production"]
    assert memory["settings"] == "skyrig_memory.settings:MemorySettings"
    table = run("providers").out
    assert "memory" in table and "sql_database" in table


def test_providers_shows_hooks_and_load_failures(run, test_plugins):
    listed = json.loads(run("providers", "--json").out)
    rows = {p["name"]: p for p in listed["providers"]}
    tests = [p for p in listed["plugins"] if p["distribution"] == "skyrig-testproviders"]
    assert tests == [  # beside the workspace's own (contrib/cost-estimate)
        {
            "name": "nopublic",
            "distribution": "skyrig-testproviders",
            "version": "0.1",
            "hooks": ["skyrig_annotate_plan", "skyrig_validate_model"],
        }
    ]
    assert set(rows) >= {"memory", "partial", "sqlonly", "broken"}
    assert rows["partial"]["hooks"] == ["skyrig_resource_defaults"]
    assert rows["partial"]["distribution"] == "skyrig-testproviders"
    assert rows["broken"]["error"].startswith("provider 'broken' failed to load: ModuleNotFoundError")


def test_a_provider_whose_claims_and_implementation_disagree_fails_to_load(write_app, run, test_plugins):
    """Both ways: a claimed feature without its capability, and a capability without its claim."""
    listed = {p["name"]: p for p in json.loads(run("providers", "--json").out)["providers"]}
    error = listed["boastful"]["error"]
    assert error.startswith("provider 'boastful' does not match its manifest: ")
    assert (
        "it claims cron.managed but does not implement run_cron_job() (skyrig.provider.ManagedCron): "
        "implement it, or drop the claim"
    ) in error
    assert (
        "it implements dead_letters() (skyrig.provider.DeadLetters) but does not claim pubsub.dead_letter: "
        "claim it in its manifest, or remove the implementation"
    ) in error
    root = write_app(
        {"svc/__init__.py": 'from skyrig import Service\nservice = Service("svc", app="svc.api:app")\n'},
        config='app = "testapp"\n[env.dev]\ntype = "development"\nprovider = "memory"\ncron = "boastful"\n',
    )
    result = run("check", str(root))
    assert result.code == 1
    assert "provider 'boastful' does not match its manifest" in result.err
    assert "Traceback" not in result.err


def test_a_kind_the_provider_lacks_is_refused_naming_the_resource(write_app, run, test_plugins):
    root = write_app(
        {
            "svc/__init__.py": 'from skyrig import Service\nservice = Service("svc", app="svc.api:app")\n',
            "svc/api.py": 'from skyrig import CacheCluster, SQLDatabase\napp = None\nc = CacheCluster("sessions")\n'
            'db = SQLDatabase("main")\n',
        },
        config='app = "testapp"\n[env.dev]\ntype = "development"\nprovider = "partial"\n',
    )

    result = run("check", str(root))

    assert result.code == 1
    assert "environment 'dev' cannot run this app" in result.err
    assert (
        "svc/api.py:3:5: cache cluster 'sessions': provider 'partial' does not support cache_cluster; "
        "set cache = '"
    ) in result.err
    assert _offered(result.err, "cache", "memory"), "the installed providers that could take it are named"
    assert "main" not in result.err, "the SQL database is supported and not mentioned"


def test_a_family_override_makes_the_model_supported(write_app, run, test_plugins):
    root = write_app(
        {
            "svc/__init__.py": 'from skyrig import Service\nservice = Service("svc", app="svc.api:app")\n',
            "svc/api.py": 'from skyrig import CacheCluster\napp = None\nc = CacheCluster("sessions")\n',
        },
        config='app = "testapp"\n[env.dev]\ntype = "development"\nprovider = "partial"\ncache = "memory"\n',
    )
    result = run("check", str(root))
    assert result.code == 0, result.err
    assert "ok: 1 service and 1 resource check out for dev" in result.out


def test_a_policy_plugin_can_veto_a_model(tmp_path, run, test_plugins):
    import shutil

    root = tmp_path / "shop"
    shutil.copytree(SHOP, root, ignore=shutil.ignore_patterns(".skyrig"))
    with (root / "skyrig.toml").open("a") as config:
        config.write('\n[env.prod]\ntype = "production"\nprovider = "memory"\n')

    assert run("check", str(root), "--env", "staging").code == 0
    result = run("check", str(root), "--env", "prod")

    assert result.code == 1
    assert "vetoed: bucket 'email-assets' is public, which production forbids" in result.err


def test_hooks_reach_providers_and_plugins(write_app, test_plugins):
    root = write_app({}, config='app = "testapp"\n[env.dev]\ntype = "development"\nprovider = "partial"\n')
    environment = load_config(root).environment("dev")
    manager = plugin_manager(environment)
    assert manager.hook.skyrig_resource_defaults(
        kind="sql_database", name="main", environment=environment
    ) == [{"instance_class": "small"}]
    (notes,) = manager.hook.skyrig_annotate_plan(plan=None, environment=environment)
    assert notes[0].label == "policy"


def test_a_manifest_cannot_claim_unknown_capabilities():
    with pytest.raises(ManifestError, match=r"unknown features \['pubsub.telepathy'\]"):
        Manifest(
            "x",
            kinds=frozenset({"topic"}),
            environment_types=frozenset({"local"}),
            features=frozenset({"pubsub.telepathy"}),
        )
    with pytest.raises(ManifestError, match=r"unknown kinds \['queue'\]"):
        Manifest("x", kinds=frozenset({"queue"}), environment_types=frozenset({"local"}))


def test_a_feature_the_provider_does_not_offer_is_refused(write_app, run, test_plugins):
    root = write_app(
        {
            "svc/__init__.py": 'from skyrig import Service\nservice = Service("svc", app="svc.api:app")\n',
            "svc/api.py": "from pydantic import BaseModel\nfrom skyrig import Topic\napp = None\n"
            "class Event(BaseModel):\n    customer: str\n"
            'events = Topic("events", Event, ordering_attribute="customer", delivery="exactly-once")\n',
        },
        config='app = "testapp"\n[env.dev]\ntype = "development"\nprovider = "partial"\n'
        '[env.other]\ntype = "development"\nprovider = "partial"\n',
    )

    result = run("check", str(root))

    assert result.code == 1
    problems = [line.strip() for line in result.err.splitlines()]
    assert problems[0] == "error: environment 'dev' cannot run this app:"
    assert problems[1].startswith(
        "svc/api.py:6:10: topic 'events' asks for exactly-once delivery, which provider 'partial' does not "
        "offer (pubsub.exactly_once); set pubsub = '"
    )
    assert _offered(problems[1], "pubsub", "memory")
    assert problems[2].startswith("svc/api.py:6:10: topic 'events' asks for ordering by customer")
    assert "error: environment 'other' cannot run this app:" in problems, "every environment is reported"


def _offered(text: str, family: str, provider: str) -> bool:
    """Whether ``text`` suggests the installed providers that could take ``family``, ``provider`` among
    them (which others are installed depends on the machine)."""
    found = re.search(rf"set {family} = '([\w-]+)' in \[env\.dev\] \(providers that do: ([^)]*)\)", text)
    return (
        bool(found)
        and found.group(1) in found.group(2).split(", ")
        and provider in found.group(2).split(", ")
    )


def _shop_on_memory(tmp_path):
    import shutil

    root = tmp_path / "shop"
    shutil.copytree(SHOP, root, ignore=shutil.ignore_patterns(".skyrig", "__pycache__"))
    (root / "skyrig.toml").write_text('app = "shop"\n[env.dev]\ntype = "development"\nprovider = "memory"\n')
    return root


def test_every_plan_is_annotated_in_the_table_and_in_json(tmp_path, run, test_plugins):
    """skyrig_annotate_plan is called on every plan, plan and apply alike, through the session's plugin
    manager: the notes come with the plan's JSON and under its table (issue 13)."""
    root = _shop_on_memory(tmp_path)
    policy = {"label": "policy", "value": "no public buckets in production", "node": None}

    made = json.loads(run("plan", "--env", "dev", "--json", "-C", str(root)).out)
    assert {**policy, "source": "plugin:nopublic"} in made["annotations"]
    assert "policy: no public buckets in production" in run("plan", "--env", "dev", "-C", str(root)).out
    applied = run("apply", "--env", "dev", "--yes", "-C", str(root))
    assert applied.code == 0, applied.err
    assert "policy: no public buckets in production" in applied.err, "apply shows its plan's notes too"
    destroyed = run("destroy", "--env", "dev", "--yes", "-C", str(root))
    assert "policy: no public buckets in production" in destroyed.err


def test_a_plugin_that_fails_to_annotate_does_not_stop_the_plan(tmp_path, test_plugins):
    from skyrig.engine.session import Session
    from skyrig.hookspecs import Annotation
    from skyrig.provider import hookimpl

    class Notes:
        @hookimpl
        def skyrig_annotate_plan(self, plan):  # any subset of the parameters
            return [Annotation("first node", plan.app, node="compute.service/orders")]

    class Broken:
        @hookimpl
        def skyrig_annotate_plan(self, plan, environment):
            raise RuntimeError("no price list")

    session = Session(load_config(_shop_on_memory(tmp_path)), "dev")
    session.plugins.register(Notes(), name="plugin:notes")
    session.plugins.register(Broken(), name="plugin:broken")
    made = session.plan()
    assert made.has_changes(), "planned as ever"
    notes = {(n["source"], n["label"]): n for n in made.annotations}
    assert notes[("plugin:broken", "annotation failed")]["value"] == "RuntimeError: no price list"
    assert notes[("plugin:notes", "first node")] == {
        "label": "first node",
        "value": "shop",
        "node": "compute.service/orders",
        "source": "plugin:notes",
    }
    session.store.close()
