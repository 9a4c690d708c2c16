"""Local object storage: buckets as folders, reached through the runtime SDK, and served over HTTP by the
object server (public buckets and signed URLs), started here as ``skyrig run`` starts it."""

from __future__ import annotations

import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from skyrig.cli import main

SERVICE = """
from skyrig import Bucket, Service

service = Service("web", app="web:app")
app = None

avatars = Bucket("avatars", public=True)
docs = Bucket("docs", versioned=True)
notes = Bucket("notes")
scratch = Bucket("scratch")


def use():
    avatars.upload("k", b""); avatars.download("k"); avatars.list(); avatars.remove("k")
    avatars.public_url("k"); avatars.signed_url("k")
    docs.upload("k", b""); docs.download("k"); docs.list(); docs.remove("k"); docs.signed_url("k")
    notes.upload("k", b""); notes.download("k"); notes.remove("k"); notes.public_url("k")
    notes.signed_url("k")
    scratch.upload("k", b""); scratch.download("k"); scratch.list(); scratch.remove("k")
"""


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _skyrig(root: Path, *args: str) -> int:
    try:
        code = main([*args, "-C", str(root)])
    except SystemExit as done:
        code = done.code
    return int(code or 0)


def _write_app(root: Path, port: int) -> Path:
    (root / "web").mkdir(parents=True)
    (root / "skyrig.toml").write_text(
        'app = "files"\n[env.local]\ntype = "local"\nprovider = "memory"\nobjects = "local"\n'
        f"[env.local.local]\nobjects_port = {port}\n"
    )
    (root / "web" / "__init__.py").write_text(SERVICE)
    return root


def _sdk(root: Path, code: str) -> list[str]:
    """Run ``code`` as the service ``web`` would (its own process, so bindings never leak); its output lines."""
    result = subprocess.run(
        [sys.executable, "-c", "import sys; sys.path.insert(0, '.')\n" + textwrap.dedent(code)],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=60,
        env={"SKYRIG_RUNTIME_CONFIG": str(root / ".skyrig/runtime/local/web.json"), "PATH": "/usr/bin:/bin"},
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.splitlines()


def _fetch(port: int, target: str, method: str = "GET") -> tuple[int, bytes]:
    """Send ``target`` exactly as written (no client-side normalisation of ``..`` or ``//``)."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        connection.request(method, target)
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def _get(url: str) -> tuple[int, bytes]:
    parts = urlsplit(url)
    assert parts.hostname == "127.0.0.1", url
    return _fetch(parts.port or 80, parts.path + (f"?{parts.query}" if parts.query else ""))


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An app with four buckets, applied once for the module (tests use keys of their own)."""
    root = _write_app(tmp_path_factory.mktemp("objects") / "files", _free_port())
    assert _skyrig(root, "apply", "--env", "local", "--yes") == 0
    return root


@pytest.fixture(scope="module")
def objects(app: Path) -> Path:
    """The environment's objects folder, where each bucket has its own folder."""
    return app / ".skyrig" / "local" / "local" / "objects"


@pytest.fixture(scope="module")
def server(app: Path) -> Iterator[int]:
    """The object server, started from the provider's ``local_servers`` entry as ``skyrig run`` does; its port."""
    from skyrig.config import load_config
    from skyrig.engine.session import Session
    from skyrig.plugins.registry import load_provider

    session = Session(load_config(app), "local")
    (entry,) = load_provider("local").local_servers(session.context("local"), session.model)
    command = [
        sys.executable,
        "-m",
        "uvicorn",
        entry["app"],
        "--host",
        "127.0.0.1",
        "--port",
        str(entry["port"]),
    ]
    process = subprocess.Popen(
        [*command, "--no-access-log", "--log-level", "warning"],
        cwd=app,
        env={**os.environ, **entry["env"]},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                socket.create_connection(("127.0.0.1", entry["port"]), timeout=0.2).close()
                break
            except OSError:
                assert process.poll() is None, process.stderr.read().decode() if process.stderr else ""
                assert time.monotonic() < deadline, "the object server did not start in time"
                time.sleep(0.05)
        yield entry["port"]
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def test_the_provider_serves_the_objects_folder_of_the_environment(app: Path, objects: Path) -> None:
    from skyrig.config import load_config
    from skyrig.engine.session import Session
    from skyrig.plugins.registry import load_provider

    session = Session(load_config(app), "local")
    (entry,) = load_provider("local").local_servers(session.context("local"), session.model)
    assert entry["app"] == "skyrig_local.object_server:app"
    assert Path(entry["env"]["SKYRIG_LOCAL_OBJECTS"]) == objects
    config = json.loads((app / ".skyrig/runtime/local/web.json").read_text())
    assert config["resources"]["bucket/avatars"]["base_url"] == f"http://127.0.0.1:{entry['port']}"
    assert {p.name for p in objects.iterdir() if p.is_dir()} == {"avatars", "docs", "notes", "scratch"}


def test_upload_download_list_and_remove(app: Path) -> None:
    lines = _sdk(
        app,
        """
        from web import scratch
        scratch.upload("receipts/1.bin", bytes(range(256)))
        scratch.upload("receipts/2.txt", b"two")
        scratch.upload("readme.md", b"")
        print(scratch.download("receipts/1.bin") == bytes(range(256)), scratch.download("readme.md"))
        print(scratch.list())
        print(scratch.list("receipts/"), scratch.list("nothing/"))
        scratch.upload("receipts/2.txt", b"second")  # overwrites
        print(scratch.download("receipts/2.txt"))
        scratch.remove("receipts/1.bin")
        scratch.remove("receipts/1.bin")  # already gone: no error
        print(scratch.list())
        for missing in ("receipts/1.bin", "receipts", "readme.md/x"):
            try:
                scratch.download(missing)
            except KeyError as error:
                print(type(error).__name__, error.args[0])
        """,
    )
    assert lines == [
        "True b''",
        "['readme.md', 'receipts/1.bin', 'receipts/2.txt']",
        "['receipts/1.bin', 'receipts/2.txt'] []",
        "b'second'",
        "['readme.md', 'receipts/2.txt']",
        "ObjectNotFound bucket 'scratch' has no object 'receipts/1.bin'",
        "ObjectNotFound bucket 'scratch' has no object 'receipts'",
        "ObjectNotFound bucket 'scratch' has no object 'readme.md/x'",
    ]


def test_a_versioned_bucket_keeps_earlier_versions_and_another_does_not(app: Path, objects: Path) -> None:
    lines = _sdk(
        app,
        """
        from skyrig.runtime.binding import client
        from web import docs, notes
        for bucket in (docs, notes):
            for text in (b"v1", b"v2", b"v3"):
                bucket.upload("versioning/contract.txt", text)
            history = client(bucket, "upload").versions("versioning/contract.txt")
            print(bucket.name, bucket.download("versioning/contract.txt"), history)
        docs.remove("versioning/contract.txt")  # the removed object is kept as a version too
        print(docs.list("versioning/"), client(docs, "upload").versions("versioning/contract.txt"))
        """,
    )
    assert lines == [
        "docs b'v3' [b'v1', b'v2']",
        "notes b'v3' []",
        "[] [b'v1', b'v2', b'v3']",
    ]
    kept = objects / "docs" / "versions" / "versioning" / "contract.txt"
    assert sorted(p.read_bytes() for p in kept.iterdir()) == [b"v1", b"v2", b"v3"]
    assert not (objects / "notes" / "versions").exists()


def test_a_public_bucket_serves_its_objects_and_a_private_one_does_not(app: Path, server: int) -> None:
    lines = _sdk(
        app,
        """
        from web import avatars, notes
        avatars.upload("public/ada lovelace.png", b"\\x89PNG ada")
        notes.upload("public/diary.txt", b"secret")
        print(avatars.public_url("public/ada lovelace.png"))
        print(avatars.public_url("public/missing.png"))
        try:
            notes.public_url("public/diary.txt")
        except PermissionError as error:
            print(error)
        """,
    )
    url, missing, refused = lines
    assert url == f"http://127.0.0.1:{server}/avatars/public/ada%20lovelace.png"
    assert _get(url) == (200, b"\x89PNG ada")
    assert _get(missing)[0] == 404
    assert "is not public" in refused
    # The same URL shape on the private bucket, without a signature, is refused.
    status, body = _fetch(server, "/notes/public/diary.txt")
    assert status in (403, 404) and b"secret" not in body
    assert _fetch(server, "/nowhere/public/diary.txt")[0] == 404


def test_a_signed_url_grants_one_object_until_it_expires(app: Path, objects: Path, server: int) -> None:
    before = int(time.time())
    lines = _sdk(
        app,
        """
        from web import docs, notes
        notes.upload("signed/report.pdf", b"report")
        notes.upload("signed/other.pdf", b"other")
        docs.upload("signed/report.pdf", b"another bucket")
        print(notes.signed_url("signed/report.pdf", expires_in="10m"))
        print(notes.signed_url("signed/report.pdf", expires_in="1s"))
        print(notes.signed_url("signed/report.pdf", expires_in="10m", method="PUT"))
        """,
    )
    url, short, upload = lines
    assert _get(url) == (200, b"report")
    parts = urlsplit(url)
    query = parse_qs(parts.query)
    assert before + 600 <= int(query["expires"][0]) <= int(time.time()) + 600
    good = query["signature"][0]
    tampered = good[:-1] + ("0" if good[-1] != "0" else "1")
    assert _fetch(server, f"{parts.path}?expires={query['expires'][0]}&signature={tampered}")[0] == 403
    later = int(query["expires"][0]) + 3600  # a later expiry than the one signed
    assert _fetch(server, f"{parts.path}?expires={later}&signature={good}")[0] == 403
    assert _fetch(server, f"/notes/signed/other.pdf?{parts.query}") == (
        403,
        b"the signature does not match\n",
    )
    assert _fetch(server, f"/docs/signed/report.pdf?{parts.query}")[0] == 403
    assert _fetch(server, f"{parts.path}?expires={query['expires'][0]}")[0] == 403
    # A URL signed for an upload does not read the object, and a URL signed for a read does not write.
    upload_target = urlsplit(upload).path + "?" + urlsplit(upload).query
    status, body = _fetch(server, upload_target)
    assert status == 403 and body != b"report"
    assert _fetch(server, f"{parts.path}?{parts.query}", method="PUT")[0] == 403
    assert _fetch(server, upload_target, method="PUT")[0] == 200, "a signed PUT uploads"
    assert _get(url) == (200, b""), "what the signed PUT uploaded (an empty body) is served"
    assert (objects / ".signing-key").stat().st_mode & 0o077 == 0, "the signing key is the user's only"
    time.sleep(max(0.0, int(parse_qs(urlsplit(short).query)["expires"][0]) - time.time()) + 0.05)
    assert _get(short) == (403, b"the signed URL has expired\n")


def test_keys_with_percent_signs_and_spaces_are_served(app: Path, server: int) -> None:
    lines = _sdk(
        app,
        """
        from web import avatars, notes
        for bucket in (avatars, notes):
            bucket.upload("100% sure/a%41 b.txt", bucket.name.encode())
        print(avatars.public_url("100% sure/a%41 b.txt"))
        print(notes.signed_url("100% sure/a%41 b.txt"))
        """,
    )
    public, signed = lines
    assert _get(public) == (200, b"avatars")
    assert _get(signed) == (200, b"notes")


def _files(folder: Path) -> dict[str, bytes]:
    """The files under ``folder`` and their bytes, but for skyrig's own state and caches."""
    return {
        p.relative_to(folder).as_posix(): p.read_bytes()
        for p in folder.rglob("*")
        if p.is_file()
        and "__pycache__" not in p.parts
        and (".skyrig" not in p.parts or "/.skyrig/local/" in p.as_posix())
    }


def test_keys_outside_the_bucket_are_refused(app: Path, objects: Path) -> None:
    absolute = app.parent / "absolute.txt"  # a file of this test's own, never a system one
    absolute.write_bytes(b"untouched")
    keys = ["../x", "../../outside.txt", "a/../../x", str(absolute), "", ".signing-key", "a/.hidden", "a\0b"]
    before = _files(app.parent)
    lines = _sdk(
        app,
        f"""
        from web import avatars, notes
        for key in {keys!r}:
            refused = []
            for name, call in [
                ("upload", lambda: avatars.upload(key, b"escaped")),
                ("download", lambda: avatars.download(key)),
                ("remove", lambda: avatars.remove(key)),
                ("public_url", lambda: avatars.public_url(key)),
                ("signed_url", lambda: notes.signed_url(key)),
            ]:
                try:
                    call()
                except ValueError as error:
                    assert "invalid object key" in str(error), error
                    refused.append(name)
            print(len(refused))
        """,
    )
    assert lines == ["5"] * len(keys)
    assert _files(app.parent) == before, "nothing was written, changed or removed anywhere"


def test_the_server_never_serves_a_file_outside_the_bucket(
    app: Path, objects: Path, server: int, tmp_path: Path
) -> None:
    outside = tmp_path / "outside.txt"
    outside.write_bytes(b"not an object")
    (objects / "loose.txt").write_bytes(b"not an object")
    _sdk(app, 'from web import avatars\navatars.upload("inside.txt", b"fine")')
    assert _fetch(server, "/avatars/inside.txt") == (200, b"fine")
    for target in [
        f"/avatars/{outside}",  # //tmp/...: an absolute key
        f"/avatars/{str(outside).replace('/', '%2F')}",
        "/avatars/../loose.txt",
        "/avatars/..%2Floose.txt",
        "/avatars/%2e%2e/%2e%2e/loose.txt",
        "/avatars/objects/../../loose.txt",
        "/avatars/.bucket.json",
        "/avatars/..%2F.signing-key",
        "/../objects/avatars/.bucket.json",
        "/%2e%2e/loose.txt",
    ]:
        status, body = _fetch(server, target)
        assert status in (400, 404) and b"not an object" not in body, (target, status, body)


def test_a_public_bucket_is_applied_and_destroy_keeps_buckets_unless_asked(tmp_path: Path) -> None:
    root = _write_app(tmp_path / "files", _free_port())
    assert _skyrig(root, "apply", "--env", "local", "--yes") == 0
    assert _skyrig(root, "plan", "--env", "local", "--detailed-exitcode") == 0, (
        "a second plan has nothing to do"
    )
    avatars = root / ".skyrig" / "local" / "local" / "objects" / "avatars"
    assert json.loads((avatars / ".bucket.json").read_text())["public"] is True
    _sdk(root, 'from web import avatars\navatars.upload("keep/me.txt", b"kept")')

    assert _skyrig(root, "destroy", "--env", "local", "--yes") == 0
    assert (avatars / "objects" / "keep" / "me.txt").read_bytes() == b"kept"
    assert _skyrig(root, "apply", "--env", "local", "--yes") == 0
    assert _sdk(root, 'from web import avatars\nprint(avatars.download("keep/me.txt"))') == ["b'kept'"]

    assert _skyrig(root, "destroy", "--env", "local", "--yes", "--include-data") == 0
    assert not avatars.exists()
