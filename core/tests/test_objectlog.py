"""The store over an object store (skyrig.state.objectlog), on objects kept in memory: the in-process store
suite (every handle of a test on one set of objects, as processes share a bucket), and what the suite does
not see: entries replayed from a snapshot, a retried create that had landed, a log with a gap, the app's
prefix. The S3 and Cloud Storage stores run the whole suite, processes included, on their emulators."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

import pytest

from skyrig.state import Locked, NodeRecord, StateStore, StateUnusable
from skyrig.state.objectlog import ObjectLogStore, ObjectStore, bucket_url
from skyrig.state.suite import (
    StoreFactory,
    TestFencing,  # noqa: F401
    TestFinish,  # noqa: F401
    TestIntents,  # noqa: F401
    TestJournal,  # noqa: F401
    TestLease,  # noqa: F401
    TestProtocol,  # noqa: F401
    TestSnapshots,  # noqa: F401
    TestTransfer,  # noqa: F401
)

URL = "mem://bucket/shop"


@dataclass
class MemoryObjects:
    """An :class:`ObjectStore` in a dict; ``landed`` keys answer False to their next create although it
    creates them (a request retried after the first one landed)."""

    objects: dict[str, bytes] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)
    reads: list[str] = field(default_factory=list)
    landed: set[str] = field(default_factory=set)

    def create(self, key: str, body: bytes) -> bool:
        with self.lock:
            if key in self.objects:
                return False
            self.objects[key] = body
            if key in self.landed:
                self.landed.discard(key)
                return False
            return True

    def read(self, key: str) -> bytes:
        with self.lock:
            self.reads.append(key)
            return self.objects[key]

    def list(self, prefix: str, after: str = "", most: int | None = None) -> list[str]:
        with self.lock:
            keys = sorted(key for key in self.objects if key.startswith(prefix) and key > after)
        return keys if most is None else keys[:most]

    def close(self) -> None:
        pass


def _open(objects: MemoryObjects) -> ObjectLogStore:
    return ObjectLogStore(objects, URL, "shop", package="skyrig-state-mem", versions="the bucket's versions")


@dataclass
class MemoryFactory(StoreFactory):
    """Every handle on one :class:`MemoryObjects`."""

    objects: MemoryObjects = field(default_factory=MemoryObjects)

    def open(self) -> StateStore:
        return _open(self.objects)


@pytest.fixture
def store_factory(tmp_path):
    return MemoryFactory(URL, tmp_path)


def _record(node_id: str) -> NodeRecord:
    return NodeRecord(node_id, "memory.sql.cluster", "memory", node_id, {"size": 1}, {"size": 1})


def _apply(store: ObjectLogStore, nodes: int) -> None:
    fence = store.acquire("dev", "apply", ttl=60)
    for number in range(nodes):
        store.add_intent("dev", fence, f"node-{number}", "create", "token")
        store.record("dev", fence, _record(f"node-{number}"))
    store.finish("dev", fence, {"web": {"resources": {}}})
    store.release("dev", fence)


def test_memory_objects_are_an_object_store():
    assert isinstance(MemoryObjects(), ObjectStore)


def test_a_reader_replays_the_newest_snapshot_not_the_log():
    objects = MemoryObjects()
    _apply(_open(objects), 300)
    assert any("/snapshots/" in key for key in objects.objects), "written at release"
    objects.reads.clear()
    reader = _open(objects)
    assert len(reader.nodes("dev")) == 300 and reader.intents("dev") == {}
    assert not [key for key in objects.reads if "/log/" in key], "the manifest and its chunks only"


def test_the_state_from_a_snapshot_is_the_state_from_the_log():
    objects = MemoryObjects()
    _apply(_open(objects), 40)
    logged = MemoryObjects({key: body for key, body in objects.objects.items() if "/log/" in key})
    assert _open(objects).export("dev") == _open(logged).export("dev")


def test_a_create_that_landed_but_answered_taken_is_recognised_as_the_writers_own():
    objects = MemoryObjects()
    store = _open(objects)
    fence = store.acquire("dev", "apply", ttl=60)
    objects.landed.add(f"shop/dev/log/{2:016d}.json")
    store.record("dev", fence, _record("network"))
    assert list(store.nodes("dev")) == ["network"]
    assert len([key for key in objects.objects if "/log/" in key]) == 2, "written once"


def test_of_handles_taking_the_lease_at_once_exactly_one_wins():
    objects = MemoryObjects()
    start, won, locked = threading.Barrier(8), [], []

    def take() -> None:
        handle = _open(objects)
        start.wait()
        try:
            won.append(handle.acquire("dev", "racer", ttl=60))
        except Locked:
            locked.append(True)

    threads = [threading.Thread(target=take) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(won) == 1 and len(locked) == 7


def test_a_gap_in_the_log_is_named_with_where_to_restore_it():
    objects = MemoryObjects()
    _apply(_open(objects), 3)
    del objects.objects[f"shop/dev/log/{2:016d}.json"]
    with pytest.raises(StateUnusable, match="the log of environment 'dev' has no entry 2") as gap:
        _open(objects).nodes("dev")
    assert "restore them from the bucket's versions" in (gap.value.hint or "")


def test_an_entry_of_a_newer_format_names_the_package_to_upgrade():
    objects = MemoryObjects()
    objects.objects[f"shop/dev/log/{1:016d}.json"] = b'{"v": 2, "id": "x", "ops": []}'
    with pytest.raises(StateUnusable, match="format 2, newer than this skyrig's") as newer:
        _open(objects).serial("dev")
    assert "pip install -U skyrig skyrig-state-mem" in (newer.value.hint or "")


def _parsed(url: str, root) -> tuple[str, str]:
    return bucket_url(
        url, root, scheme="s3", store="an S3", valid=str.islower, rule="lowercase", chain="the AWS chain"
    )


@pytest.mark.parametrize(
    "url",
    ["gs://bucket/shop", "s3://key:secret@bucket/shop", "s3://bucket:9000/shop", "s3://bucket/shop?x=1"],
)
def test_a_url_of_another_scheme_or_with_credentials_port_or_query_is_refused(url, tmp_path):
    with pytest.raises(StateUnusable, match="is not an S3 state URL: s3://BUCKET/PREFIX") as refused:
        _parsed(url, tmp_path)
    assert "secret" not in refused.value.message and refused.value.hint == "the AWS chain"


def test_a_bucket_name_the_store_refuses_is_named_with_its_rule(tmp_path):
    with pytest.raises(StateUnusable, match=r"'Bucket' is not a bucket name \(lowercase\)"):
        _parsed("s3://Bucket/shop", tmp_path)


def test_the_prefix_of_a_url_without_one_is_the_apps_name(tmp_path, monkeypatch):
    monkeypatch.delenv("SKYRIG_APP", raising=False)
    with pytest.raises(StateUnusable, match="has no prefix") as none:
        _parsed("s3://bucket", tmp_path)
    assert "write the URL as s3://BUCKET/PREFIX" in (none.value.hint or "")
    (tmp_path / "skyrig.toml").write_text('app = "shop"\n')
    assert _parsed("s3://bucket/", tmp_path) == ("bucket", "shop")
    assert _parsed("s3://bucket/team/shop/", tmp_path) == ("bucket", "team/shop")
    monkeypatch.setenv("SKYRIG_APP", "links")
    assert _parsed("s3://bucket", tmp_path) == ("bucket", "links")
