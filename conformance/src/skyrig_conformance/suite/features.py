"""What a provider does not claim is refused, before any API call, or absent: never half-done.

A declaration that relies on an unclaimed feature (or uses an unclaimed kind) stops ``skyrig plan`` with
a message naming the file and line, the feature and where to find a provider that has it. Features with
no declaration of their own (branching, triggering cron jobs) are absent: the provider does not implement
their capability (:mod:`skyrig.provider`), which skyrig checks when it loads the provider.
"""

from __future__ import annotations

import pytest

from skyrig.provider import Branching, ManagedCron
from skyrig_conformance import requirements as needs
from skyrig_conformance.deployment import MAIN
from skyrig_conformance.plugin import Suite

TRIGGERS = {
    "pubsub.ordering": ("topic", 'Topic("ordered-x", Event, ordering_attribute="key")'),
    "pubsub.exactly_once": ("topic", 'Topic("once-x", Event, delivery="exactly-once")'),
    "pubsub.dead_letter": (
        "subscription",
        'Subscription(Topic("dl-x", Event), "dl-x", handler=handle, max_retries=3)',
    ),
    "bucket.public": ("bucket", 'Bucket("public-x", public=True)'),
    "bucket.versioning": ("bucket", 'Bucket("versioned-x", versioned=True)'),
    "cache.eviction_policy": ("cache_cluster", 'CacheCluster("evict-x", eviction_policy="noeviction")'),
    "cron.managed": ("cron_job", 'CronJob("cron-x", title="x", every="1h", endpoint=tick)'),
}
"""Each feature a declaration can ask for: the kind it needs, and a declaration that asks for it."""

KINDS = {
    "sql_database": 'SQLDatabase("kind-x")',
    "topic": 'Topic("kind-x", Event)',
    "cache_cluster": 'CacheCluster("kind-x")',
    "bucket": 'Bucket("kind-x")',
    "secret": 'Secret("kind-x")',
    "cron_job": 'CronJob("kind-x", title="x", every="1h", endpoint=tick)',
}


def _declare(deployment, line: str) -> int:
    """Add ``line`` at the end of ``alpha/resources.py``; return its line number."""
    path = deployment.root / "alpha" / "resources.py"
    text = path.read_text()
    path.write_text(text + line + "\n")
    return len(text.splitlines()) + 1


def _refused(deployment, line: int, *words: str) -> None:
    result = deployment.cli("plan", "--env", MAIN)
    assert result.code == 1, f"skyrig plan accepted what the provider does not offer:\n{result.text}"
    assert f"alpha/resources.py:{line}" in result.err, f"the refusal does not say where:\n{result.err}"
    for word in words:
        assert word in result.err, f"the refusal does not name {word!r}:\n{result.err}"
    assert "Traceback" not in result.text


def _unclaimed_case(feature: str):
    @needs.unclaimed(feature)
    def test(self, fresh) -> None:
        kind, declaration = TRIGGERS[feature]
        if kind not in fresh.manifest.kinds:
            pytest.skip(
                f"{needs.NOT_CLAIMED}: provider {fresh.profile.provider!r} does not provision {kind} at all"
            )
        if feature == "cron.managed" and fresh.profile.environment_type == "local":
            # local environments run cron jobs on demand only: nothing to refuse, but nothing may fire
            assert not isinstance(fresh.provider(), ManagedCron), "it triggers cron jobs without claiming it"
            return
        _refused(fresh, _declare(fresh, declaration), feature)

    test.__name__ = f"test_unclaimed_{feature.replace('.', '_')}_is_refused"
    test.__doc__ = f"A declaration asking for {feature}, which the provider does not claim, is refused."
    return test


class TestWhatIsNotClaimed(Suite):
    """Unclaimed features and kinds are refused or absent."""

    @needs.unclaimed("sql.branching")
    def test_unclaimed_sql_branching_is_absent(self, fresh):
        assert not isinstance(fresh.provider(), Branching), "it branches databases without claiming it"

    @needs.area("lifecycle")
    def test_a_kind_the_provider_does_not_provision_is_refused(self, fresh):
        from skyrig.provider import KIND_FAMILIES

        handed = dict(fresh.profile.families)
        missing = [
            kind for kind in KINDS if kind not in fresh.manifest.kinds and KIND_FAMILIES[kind] not in handed
        ]
        if not missing:
            return
        lines = [_declare(fresh, KINDS[kind]) for kind in missing]
        result = fresh.cli("plan", "--env", MAIN)
        assert result.code == 1, f"skyrig plan accepted kinds the provider does not provision:\n{result.text}"
        for kind, line in zip(missing, lines, strict=True):
            assert f"alpha/resources.py:{line}" in result.err and kind in result.err, result.err


for _feature in TRIGGERS:
    _test = _unclaimed_case(_feature)
    setattr(TestWhatIsNotClaimed, _test.__name__, _test)
