"""The provider SDK's secret helpers: what every cloud's ``secret`` data plane and password resolvers
rely on (the values' cache, the one message of a secret without a value)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from skyrig.provider import CachedSecrets, SecretClientBase, secret_resolver


def loader(values: list[str | None]) -> tuple[list[int], Any]:
    """A load function answering ``values`` in turn, and the list counting its calls."""
    calls: list[int] = []

    def load() -> str | None:
        calls.append(1)
        return values[len(calls) - 1]

    return calls, load


def test_a_value_is_read_once_within_the_ttl_and_again_after_forget() -> None:
    cache = CachedSecrets(ttl=60)
    calls, load = loader(["first", "second"])
    assert cache.read("db", load) == "first"
    assert cache.read("db", load) == "first"
    assert len(calls) == 1
    cache.forget()
    assert cache.read("db", load) == "second"


def test_a_stale_value_is_read_again_and_keys_are_apart() -> None:
    cache = CachedSecrets(ttl=0)
    _, load = loader(["first", "second"])
    assert cache.read("db", load) == "first"
    assert cache.read("db", load) == "second", "a value set meanwhile is seen once the TTL has passed"
    fresh = CachedSecrets(ttl=60)
    fresh.read(("vault", "a"), lambda: "a")
    assert fresh.read(("vault", "b"), lambda: "b") == "b"


def test_no_value_is_not_cached() -> None:
    cache = CachedSecrets(ttl=60)
    _, load = loader([None, "set now"])
    assert cache.read("api-key", load) is None
    assert cache.read("api-key", load) == "set now", "a secret set after a miss is seen at once"


def test_a_resolver_picks_the_password_and_names_a_secret_without_value() -> None:
    stored = {"rds": '{"username": "u", "password": "p"}', "bare": "b"}

    def pick(value: str) -> str:
        return json.loads(value)["password"] if value.startswith("{") else value

    resolve = secret_resolver(stored.get, pick)
    assert resolve("rds") == "p"
    assert resolve("bare") == "b"
    with pytest.raises(LookupError, match="the secret missing has no value yet"):
        resolve("missing")
    assert secret_resolver(stored.get)("bare") == "b"


def test_a_secret_client_names_the_command_that_sets_a_missing_value() -> None:
    class Client(SecretClientBase):
        def stored(self, name: str) -> str | None:
            return self.entry.get("value")

    assert Client({"value": "v"}, {"environment": "main"}).value("api-key") == "v"
    with pytest.raises(LookupError) as raised:
        Client({}, {"environment": "main"}).value("api-key")
    assert str(raised.value) == (
        "secret 'api-key' has no value in environment 'main': set it with skyrig secret set api-key --env main"
    )


def test_a_signing_key_is_kept_for_the_process_unless_read_each_time() -> None:
    from skyrig.provider import SigningKeyClient

    class Client(SigningKeyClient):
        reads = 0

        def stored_key(self) -> str | None:
            type(self).reads += 1
            return self.entry.get("key")

    kept = Client({"key": "k"})
    assert kept.signing_key() == kept.signing_key() == b"k"
    assert Client.reads == 1

    class EachTime(Client):
        read_once = False
        reads = 0

    fresh = EachTime({"key": "k"})
    fresh.signing_key()
    fresh.signing_key()
    assert EachTime.reads == 2
    with pytest.raises(LookupError, match="no value: run skyrig apply"):
        Client({}).signing_key()


def test_a_trigger_without_a_signing_key_exits_with_a_message_and_calls_nothing() -> None:
    from skyrig.provider import cron_trigger

    with pytest.raises(SystemExit, match="the environment's cron signing key has no value"):
        cron_trigger(lambda: None, ["trigger", "nightly", "http://127.0.0.1:9"])
