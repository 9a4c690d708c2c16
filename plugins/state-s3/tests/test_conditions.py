"""What the store relies on, checked on the server the other tests use (moto's, its writes one at a time:
see :mod:`skyrig_state_s3.testing`): a create with ``If-None-Match: *`` fails when the object exists, even
when writers race for it (exactly one wins), and a replace with a stale ``If-Match`` fails. Some
S3-compatible stores ignore these headers, or check them apart from the write, and so would break locking:
were the test server one of them, these tests would say so before the store suite does."""

from __future__ import annotations

import threading
import uuid

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from .conftest import BUCKET

ROUNDS, WRITERS = 150, 8


def _code(error: ClientError) -> tuple[str, int]:
    return error.response["Error"]["Code"], error.response["ResponseMetadata"]["HTTPStatusCode"]


def _create(s3, key: str, writer: int, start: threading.Barrier, won: list, refused: list) -> None:
    start.wait()
    try:
        s3.put_object(Bucket=BUCKET, Key=key, Body=b"%d" % writer, IfNoneMatch="*")
        won.append(writer)
    except ClientError as error:
        refused.append(_code(error))


def test_of_writers_creating_one_key_at_once_exactly_one_wins(moto_server):
    clients = [boto3.client("s3", config=Config(retries={"max_attempts": 1})) for _ in range(WRITERS)]
    prefix = uuid.uuid4().hex
    for round_ in range(ROUNDS):
        key = f"{prefix}/log/{round_:016d}.json"
        start = threading.Barrier(WRITERS)
        won: list[int] = []
        refused: list[tuple[str, int]] = []
        threads = [
            threading.Thread(target=_create, args=(clients[writer], key, writer, start, won, refused))
            for writer in range(WRITERS)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert len(won) == 1, (
            f"round {round_}: {len(won)} writers created {key}: If-None-Match is not honoured"
        )
        assert {code for code, _ in refused} <= {"PreconditionFailed", "ConditionalRequestConflict"}, refused
        body = clients[0].get_object(Bucket=BUCKET, Key=key)["Body"].read()
        assert body == b"%d" % won[0], "the object is the winner's"


def test_a_replace_with_a_stale_etag_is_refused(moto_server):
    s3 = boto3.client("s3")
    key = f"{uuid.uuid4().hex}/lease.json"
    first = s3.put_object(Bucket=BUCKET, Key=key, Body=b"first", IfNoneMatch="*")["ETag"]
    second = s3.put_object(Bucket=BUCKET, Key=key, Body=b"second", IfMatch=first)["ETag"]
    assert second != first
    with pytest.raises(ClientError) as stale:
        s3.put_object(Bucket=BUCKET, Key=key, Body=b"third", IfMatch=first)
    assert _code(stale.value) == ("PreconditionFailed", 412)
    with pytest.raises(ClientError) as exists:
        s3.put_object(Bucket=BUCKET, Key=key, Body=b"third", IfNoneMatch="*")
    assert _code(exists.value) == ("PreconditionFailed", 412)
    assert s3.get_object(Bucket=BUCKET, Key=key)["Body"].read() == b"second"
    with pytest.raises(ClientError) as missing:
        s3.put_object(Bucket=BUCKET, Key=f"{key}.missing", Body=b"x", IfMatch=first)
    assert _code(missing.value)[1] in (404, 412), "If-Match on no object replaces nothing"
