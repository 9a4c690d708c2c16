"""Buckets in the memory cloud, through the real SDK: objects, versions, and public and signed URLs
fetched over HTTP from the object endpoint."""

from __future__ import annotations

import http.client
import time
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest

from .conftest import App, deploy, skyrig

SOURCE = """
from skyrig import Bucket, Service

service = Service("web", app="{package}:app")
app = None

avatars = Bucket("avatars", public=True)
docs = Bucket("docs", versioned=True)
notes = Bucket("notes")


def use():
    for bucket in (avatars, docs, notes):
        bucket.upload("k", b""); bucket.download("k"); bucket.list(); bucket.remove("k")
        bucket.versions("k"); bucket.public_url("k"); bucket.signed_url("k")
"""


@pytest.fixture(scope="module")
def deployed(tmp_path_factory):
    return deploy(tmp_path_factory.mktemp("objects"), "files", "filesapp", SOURCE.format(package="filesapp"))


@pytest.fixture
def app(deployed, monkeypatch):
    return App(deployed, "filesapp", monkeypatch)


def _fetch(url: str, method: str = "GET", body: bytes | None = None) -> tuple[int, bytes]:
    parts = urlsplit(url)
    assert parts.hostname == "127.0.0.1", url
    connection = http.client.HTTPConnection("127.0.0.1", parts.port, timeout=10)
    try:
        connection.request(method, parts.path + (f"?{parts.query}" if parts.query else ""), body=body)
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def _with(url: str, **changes: str) -> str:
    """``url`` with some query parameters changed."""
    parts = urlsplit(url)
    query = {name: values[0] for name, values in parse_qs(parts.query).items()} | changes
    return parts._replace(query=urlencode(query)).geturl()


def test_upload_download_list_remove(app):
    notes = app.sdk.notes
    notes.upload("a/1.txt", b"one")
    notes.upload("a/2.txt", b"two")
    notes.upload("b/3.txt", b"\x00\xff")
    assert notes.download("a/1.txt") == b"one"
    assert notes.download("b/3.txt") == b"\x00\xff"
    assert notes.list() == ["a/1.txt", "a/2.txt", "b/3.txt"]
    assert notes.list("a/") == ["a/1.txt", "a/2.txt"]
    assert notes.list("zzz") == []
    notes.remove("a/1.txt")
    notes.remove("a/1.txt")  # no error when absent
    assert notes.list("a/") == ["a/2.txt"]
    with pytest.raises(KeyError, match=r"bucket '.*-notes' has no object 'a/1.txt'"):
        notes.download("a/1.txt")
    assert notes.versions("a/2.txt") == [], "an unversioned bucket keeps no versions"
    with pytest.raises(ValueError, match="invalid object key"):
        notes.upload("../escape", b"")


def test_a_versioned_bucket_keeps_earlier_versions(app):
    docs = app.sdk.docs
    docs.upload("report.txt", b"v1")
    docs.upload("report.txt", b"v2")
    docs.upload("report.txt", b"v3")
    assert docs.download("report.txt") == b"v3"
    assert docs.versions("report.txt") == [b"v1", b"v2"]
    docs.remove("report.txt")
    assert docs.versions("report.txt") == [b"v1", b"v2", b"v3"]
    assert docs.list() == []


def test_a_public_url_is_readable_by_anyone_and_only_for_public_buckets(app):
    app.sdk.avatars.upload("faces/ada.png", b"png bytes")
    url = app.sdk.avatars.public_url("faces/ada.png")
    assert _fetch(url) == (200, b"png bytes")
    assert _fetch(url + "-missing")[0] == 404
    assert _fetch(url, "PUT", b"defaced")[0] == 403, "public means readable, not writable"
    app.sdk.notes.upload("secret.txt", b"private")
    with pytest.raises(PermissionError, match="not public"):
        app.sdk.notes.public_url("secret.txt")
    endpoint = url.split("/")[:3]
    private = "/".join([*endpoint, app.config["resources"]["bucket/notes"]["bucket"], "secret.txt"])
    assert _fetch(private)[0] == 403, "a private object is not served without a signature"
    assert _fetch(_with(private, expires="9999999999"))[0] == 403


def test_signed_urls_grant_get_and_put_until_they_expire(app):
    notes = app.sdk.notes
    notes.upload("signed/a.txt", b"hello")
    get = notes.signed_url("signed/a.txt", "10m")
    assert _fetch(get) == (200, b"hello")
    put = notes.signed_url("signed/b.txt", "10m", "PUT")
    assert _fetch(put, "PUT", b"uploaded by URL") == (200, b"")
    assert notes.download("signed/b.txt") == b"uploaded by URL"
    assert _fetch(put)[0] == 403, "a URL signed for PUT does not read"
    assert _fetch(get, "PUT", b"x")[0] == 403, "a URL signed for GET does not write"


def test_tampered_and_expired_signed_urls_are_refused(app):
    notes = app.sdk.notes
    notes.upload("signed/c.txt", b"c")
    notes.upload("signed/d.txt", b"d")
    url = notes.signed_url("signed/c.txt", "10m")
    later = str(int(parse_qs(urlsplit(url).query)["expires"][0]) + 3600)
    for tampered in (
        _with(url, expires=later),
        _with(url, signature="0" * 64),
        url.replace("signed/c.txt", "signed/d.txt"),
        _with(url, signature=""),
    ):
        status, body = _fetch(tampered)
        assert status == 403, tampered
    short = notes.signed_url("signed/c.txt", "1s")
    assert _fetch(short) == (200, b"c")
    time.sleep(2.05)
    status, body = _fetch(short)
    assert (status, body) == (403, b"the signed URL has expired\n")


def test_a_versioned_bucket_keeps_what_a_signed_put_replaces(app):
    app.sdk.docs.upload("by-url.txt", b"first")
    assert _fetch(app.sdk.docs.signed_url("by-url.txt", "5m", "put"), "PUT", b"second")[0] == 200
    assert app.sdk.docs.download("by-url.txt") == b"second"
    assert app.sdk.docs.versions("by-url.txt") == [b"first"]


def test_destroy_with_data_removes_the_objects(tmp_path, monkeypatch):
    root = deploy(tmp_path, "files", "filesgone", SOURCE.format(package="filesgone"))
    app = App(root, "filesgone", monkeypatch)
    app.sdk.docs.upload("kept.txt", b"1")
    client = app.client("bucket/docs")
    assert skyrig(root, "destroy", "--env", "dev", "--yes") == 0
    assert client.download("kept.txt") == b"1", "buckets hold data: kept unless --include-data"
    assert skyrig(root, "destroy", "--env", "dev", "--yes", "--include-data") == 0
    assert client.list() == [] and client.versions("kept.txt") == []
    with pytest.raises(LookupError, match="does not exist in the memory cloud"):
        app.sdk.docs.upload("again.txt", b"")
