"""What the store relies on, checked on the server the other tests use (fake-gcs-server: see
:mod:`skyrig_state_gcs.testing`): a create with ``ifGenerationMatch=0`` fails when the object exists, even
when writers race for it (exactly one wins), and a write with a stale generation fails. An emulator that
ignores preconditions (gcp-storage-emulator does), or checks them apart from the write, would break
locking: were the test server one of them, these tests would say so before the store suite does."""

from __future__ import annotations

import threading
import uuid

import pytest
from google.api_core.exceptions import GoogleAPICallError, NotFound, PreconditionFailed
from google.cloud import storage

from .conftest import BUCKET

ROUNDS, WRITERS = 100, 12


def _create(bucket, name: str, writer: int, start: threading.Barrier, won: list, refused: list) -> None:
    start.wait()
    try:
        bucket.blob(name).upload_from_string(b"%d" % writer, if_generation_match=0, retry=None)
        won.append(writer)
    except GoogleAPICallError as error:
        refused.append(error.code)


def test_of_writers_creating_one_name_at_once_exactly_one_wins(gcs_server):
    clients = [storage.Client(project=None) for _ in range(WRITERS)]  # a connection each
    buckets = [client.bucket(BUCKET) for client in clients]
    prefix = uuid.uuid4().hex
    for round_ in range(ROUNDS):
        name = f"{prefix}/log/{round_:016d}.json"
        start = threading.Barrier(WRITERS)
        won: list[int] = []
        refused: list[int] = []
        threads = [
            threading.Thread(target=_create, args=(buckets[writer], name, writer, start, won, refused))
            for writer in range(WRITERS)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert len(won) == 1, (
            f"round {round_}: {len(won)} writers created {name}: ifGenerationMatch=0 ignored"
        )
        assert set(refused) == {412}, refused
        assert buckets[0].blob(name).download_as_bytes() == b"%d" % won[0], "the object is the winner's"
    for client in clients:
        client.close()


def test_a_write_with_a_stale_generation_is_refused(gcs_server):
    bucket = storage.Client(project=None).bucket(BUCKET)
    name = f"{uuid.uuid4().hex}/lease.json"
    first = bucket.blob(name)
    first.upload_from_string(b"first", if_generation_match=0)
    second = bucket.blob(name)
    second.upload_from_string(b"second", if_generation_match=first.generation)
    assert second.generation != first.generation
    with pytest.raises(PreconditionFailed):
        bucket.blob(name).upload_from_string(b"third", if_generation_match=first.generation, retry=None)
    with pytest.raises(PreconditionFailed):
        bucket.blob(name).upload_from_string(b"third", if_generation_match=0, retry=None)
    assert bucket.blob(name).download_as_bytes() == b"second"
    with pytest.raises((PreconditionFailed, NotFound)):
        bucket.blob(f"{name}.missing").upload_from_string(
            b"x", if_generation_match=first.generation, retry=None
        )
    assert not bucket.blob(f"{name}.missing").exists(), "a generation match on no object creates nothing"
