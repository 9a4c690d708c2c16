"""The host's S3-compatible objects server: moto's S3 and IAM, IAM enforced, its state kept on disk.

Run as ``python -m skyrig_hosted.host.objectstore FOLDER PORT``. No MinIO server installs on these
machines, so a small host (and every test) runs moto's server, with IAM authentication on from the first
request (``INITIAL_NO_AUTH_ACTION_COUNT = 0``). What moto enforces (checked, moto 5.2): every request's
SigV4 signature against the access keys of its IAM users (an unknown key or a wrong secret: 403), and the
user's policies for each S3 action on ``arn:aws:s3:::BUCKET`` / ``BUCKET/KEY`` (another prefix's bucket:
403 AccessDenied, for reads, writes, listings and bucket creation alike).

Three gaps of moto's server are closed here, in the process that serves it:

- moto's ``/moto-api/`` endpoints answer anyone, and one of them (``reset-auth``) turns authentication
  off, another (``reset``) wipes everything: they are refused (403) before moto sees them.
- moto's IAM checks read only the ``Authorization`` header: a presigned URL (query-string SigV4) makes it
  fail with a 500. Here its signature and expiry are checked (403 when tampered with or expired), then the
  request is re-signed in the header with the same key, so that moto checks that key's policy as for any
  request. SigV2 presigned URLs and anonymous requests are refused (403). A presigned URL signed for the
  host's one port (``/objects/BUCKET/KEY``, which the host forwards here unchanged) is checked as signed
  and served as ``/BUCKET/KEY``.
- moto keeps its state in memory: a restart would lose every user, key and object. After each request that
  changes something and succeeded, and before its answer is sent, the state is written to FOLDER: the IAM
  users (their access keys and inline policies) to ``iam.json``, the buckets' versioning to
  ``buckets.json``, each version of each object to a file of its bucket's folder and the key's list of
  versions and delete markers (their ids kept) beside it (written aside, fsynced, then renamed), so what
  was acknowledged survives even a ``kill -9``. On start, the state is loaded back into moto, access keys
  and version ids included (moto would otherwise mint new ones).
  Writes are serialised (one request at a time changes state); a write costs a comparison of every stored
  object's ETag, which suits a development host, not a large store.

The host's own credentials (``admin.json``, mode 0600, made on first start) belong to an IAM user with
every permission, created here directly in moto's backend (no unauthenticated request is ever accepted).
In production the same tenant code runs against MinIO, whose IAM-style policies and access keys are
managed through its admin API instead (not tested here).
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import hmac
import json
import os
import secrets
import sys
import threading
from pathlib import Path
from types import SimpleNamespace
from typing import Any

ACCOUNT = "123456789012"
ADMIN_USER = "skyrig-host"
_MUTATING = {"PUT", "POST", "DELETE"}


def _write(path: Path, data: bytes, mode: int = 0o600) -> None:
    """``data`` to ``path``: written aside, fsynced, renamed into place."""
    aside = path.with_name(path.name + ".part")
    descriptor = os.open(aside, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    aside.replace(path)


def _file_name(key: str) -> str:
    return base64.urlsafe_b64encode(key.encode()).decode().rstrip("=") or "_"


class Store:
    """moto's IAM users and S3 buckets, mirrored to ``folder`` and loaded back from it."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.buckets_folder = folder / "buckets"
        self.buckets_folder.mkdir(parents=True, exist_ok=True)
        self.lock = threading.Lock()
        self._known: dict[str, dict[str, tuple[list[str], tuple[Any, ...]]]] = {}
        """Per bucket and key: the files of its versions on disk and the signature they were written at."""
        self._settings: dict[str, Any] = {}
        """Per bucket, its versioning status, as in ``buckets.json``."""

    # -- moto's backends ----------------------------------------------------------------------------------

    @staticmethod
    def iam() -> Any:
        from moto.iam.models import iam_backends

        return iam_backends[ACCOUNT]["global"]

    @staticmethod
    def s3() -> Any:
        from moto.s3.models import s3_backends

        return s3_backends[ACCOUNT]["aws"]

    def secret_of(self, key_id: str) -> str | None:
        """The secret of the active access key ``key_id``."""
        with self.lock:  # not while a request changes the users
            for user in self.iam().users.values():
                for key in user.access_keys:
                    if key.access_key_id == key_id and key.status == "Active":
                        return str(key.secret_access_key)
        return None

    # -- loading ------------------------------------------------------------------------------------------

    def admin(self) -> dict[str, str]:
        """The host's credentials, made on first start."""
        path = self.folder / "admin.json"
        if not path.exists():
            key = "AKIA" + secrets.token_hex(8).upper()
            _write(path, json.dumps({"access_key": key, "secret_key": secrets.token_urlsafe(30)}).encode())
        return dict(json.loads(path.read_text()))

    def load(self) -> None:
        """Users, keys, policies, buckets (their versioning) and objects (every version and delete marker)
        from disk into moto (the admin user included)."""
        admin = self.admin()
        everything = json.dumps(
            {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}
        )
        users = {
            ADMIN_USER: {
                "keys": [[admin["access_key"], admin["secret_key"]]],
                "policies": {"all": everything},
            }
        }
        iam_file = self.folder / "iam.json"
        if iam_file.exists():
            users.update(json.loads(iam_file.read_text()))
        iam = self.iam()
        for name, user in users.items():
            iam.create_user(region_name="us-east-1", user_name=name, path="/", tags=[])
            for key_id, secret in user["keys"]:
                key = iam.create_access_key(user_name=name, prefix="AKIA")
                # moto minted its own: the stored one replaces it, in the backend's index too
                del iam.access_keys[key.physical_resource_id]
                key.access_key_id, key.secret_access_key = key_id, secret
                iam.access_keys[key.physical_resource_id] = key
            for policy, document in user["policies"].items():
                iam.put_user_policy(name, policy, document)
        settings_file = self.folder / "buckets.json"
        self._settings = json.loads(settings_file.read_text()) if settings_file.exists() else {}
        for bucket_folder in sorted(self.buckets_folder.iterdir()):
            if bucket_folder.is_dir():
                self._load_bucket(bucket_folder)

    def _load_bucket(self, folder: Path) -> None:
        s3 = self.s3()
        name = folder.name
        bucket = s3.create_bucket(name, "us-east-1")
        status = self._settings.get(name, {}).get("versioning")
        known: dict[str, tuple[list[str], tuple[Any, ...]]] = {}
        for meta_file in folder.glob("*.json"):
            meta = json.loads(meta_file.read_text())
            key_name = meta["key"]
            # an older host kept only the current object, in a file named as the key's stem
            versions = meta.get("versions") or [
                {"version_id": "null", "file": meta_file.stem, "metadata": meta.get("metadata")}
            ]
            bucket.versioning_status = "Enabled"  # each version appended, not replacing the previous
            for version in versions:
                if version.get("marker"):
                    from moto.s3.models import FakeDeleteMarker

                    previous = bucket.keys.get(key_name)
                    marker = FakeDeleteMarker(previous or SimpleNamespace(name=key_name))  # type: ignore[arg-type]
                    marker._version_id = version["version_id"]
                    bucket.keys.setlist(key_name, [*bucket.keys.getlist(key_name, []), marker])
                    continue
                value = (folder / version["file"]).read_bytes()
                key = s3.put_object(name, key_name, value, disable_notification=True)
                key.set_metadata(version.get("metadata") or {})
                key._version_id = version["version_id"]
                key._is_versioned = version["version_id"] != "null"
            files = [v["file"] for v in versions if v.get("file")]
            known[key_name] = (files, _signature(bucket.keys.getlist(key_name, [])))
        bucket.versioning_status = status
        self._known[name] = known

    # -- saving -------------------------------------------------------------------------------------------

    def save(self) -> None:
        """The IAM users, the buckets' versioning and every bucket's changed objects to disk."""
        iam = self.iam()
        users: dict[str, Any] = {}
        for name, user in iam.users.items():
            if name == ADMIN_USER:
                continue
            users[name] = {
                "keys": [[key.access_key_id, key.secret_access_key] for key in user.access_keys],
                "policies": {policy: user.policies[policy] for policy in user.policies},
            }
        _write(self.folder / "iam.json", json.dumps(users, sort_keys=True).encode())
        s3 = self.s3()
        settings = {
            name: {"versioning": bucket.versioning_status}
            for name, bucket in s3.buckets.items()
            if bucket.versioning_status
        }
        if settings != self._settings:
            _write(self.folder / "buckets.json", json.dumps(settings, sort_keys=True).encode())
            self._settings = settings
        present = set(s3.buckets)
        for gone in set(self._known) - present:
            self._drop_bucket(gone)
        for name, bucket in s3.buckets.items():
            self._save_bucket(name, bucket)

    def _drop_bucket(self, name: str) -> None:
        import shutil

        shutil.rmtree(self.buckets_folder / name, ignore_errors=True)
        self._known.pop(name, None)

    def _save_bucket(self, name: str, bucket: Any) -> None:
        """Each key whose versions changed: the new versions' bytes, then its list of versions (the key's
        ``.json``, written last: what it names is on disk), then the files it no longer names."""
        folder = self.buckets_folder / name
        folder.mkdir(exist_ok=True)
        known = self._known.setdefault(name, {})
        current = {key_name: list(bucket.keys.getlist(key_name, [])) for key_name in list(bucket.keys)}
        current = {key_name: versions for key_name, versions in current.items() if versions}
        for key_name, versions in current.items():
            signature = _signature(versions)
            before = known.get(key_name)
            if before is not None and before[1] == signature:
                continue
            stem = _file_name(key_name)
            listed, files = [], []
            for version in versions:
                entry: dict[str, Any] = {"version_id": str(version.version_id)}
                if not hasattr(version, "value"):  # a delete marker
                    entry["marker"] = True
                else:
                    mark = f"{version.version_id}/{version.etag}/{version.last_modified}"
                    entry["file"] = f"{stem}.{hashlib.sha256(mark.encode()).hexdigest()[:20]}"
                    entry["metadata"] = dict(version.metadata)
                    if not (folder / entry["file"]).exists():
                        _write(folder / entry["file"], version.value)
                    files.append(entry["file"])
                listed.append(entry)
            _write(folder / f"{stem}.json", json.dumps({"key": key_name, "versions": listed}).encode())
            for stale in set(before[0] if before else []) - set(files):
                (folder / stale).unlink(missing_ok=True)
            known[key_name] = (files, signature)
        for key_name in set(known) - set(current):
            stem = _file_name(key_name)
            for stale in [f"{stem}.json", *known[key_name][0]]:
                (folder / stale).unlink(missing_ok=True)
            del known[key_name]


def _signature(versions: list[Any]) -> tuple[Any, ...]:
    """What identifies a key's versions: each one's id, ETag (none for a delete marker) and time."""
    return tuple((str(v.version_id), getattr(v, "etag", None), str(v.last_modified)) for v in versions)


_PRESIGNED = "X-Amz-Signature="
PREFIX = "/objects"
"""The path under which the host's one port serves objects: a presigned URL signed for
``{host}/objects/BUCKET/KEY`` and forwarded here unchanged is checked as signed, then served as
``/BUCKET/KEY``."""


def _refuse(start_response: Any, code: str, message: str) -> list[bytes]:
    body = f"<?xml version='1.0' encoding='UTF-8'?><Error><Code>{code}</Code><Message>{message}</Message>"
    body += "</Error>"
    start_response("403 Forbidden", [("Content-Type", "application/xml")])
    return [body.encode()]


def _hmac(key: bytes, text: str) -> bytes:
    return hmac.new(key, text.encode(), hashlib.sha256).digest()


def presigned_as_signed(environ: dict[str, Any], store: Store) -> str | None:
    """A presigned (query-string SigV4) request, checked here and re-signed in the Authorization header
    with the same key, for moto to check the key's policy as for any request (moto's IAM checks read
    only the header). Answers the error code when the URL is not valid (None: re-signed)."""
    from urllib.parse import unquote

    from botocore.auth import S3SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    raw = environ.get("RAW_URI") or environ.get("REQUEST_URI") or ""
    path, _, query = raw.partition("?")
    pairs = [pair.partition("=") for pair in query.split("&") if pair]
    fields = {unquote(key): unquote(value) for key, _, value in pairs}
    try:
        key_id, day, region, service, _ = fields["X-Amz-Credential"].split("/")
        moment = datetime.datetime.strptime(fields["X-Amz-Date"], "%Y%m%dT%H%M%SZ").replace(
            tzinfo=datetime.UTC
        )
        expires = int(fields["X-Amz-Expires"])
        signed = fields["X-Amz-SignedHeaders"].split(";")
        signature = fields["X-Amz-Signature"]
    except (KeyError, ValueError):
        return "AuthorizationQueryParametersError"
    if datetime.datetime.now(datetime.UTC) > moment + datetime.timedelta(seconds=expires):
        return "AccessDenied"
    secret = store.secret_of(key_id)
    if secret is None:
        return "InvalidAccessKeyId"
    headers = {
        name[5:].replace("_", "-").lower(): str(value)
        for name, value in environ.items()
        if name.startswith("HTTP_")
    }
    canonical = "\n".join(
        [
            environ["REQUEST_METHOD"],
            path,
            "&".join(f"{key}={value}" for key, _, value in sorted(pairs) if key != "X-Amz-Signature"),
            "".join(f"{name}:{headers.get(name, '').strip()}\n" for name in signed),
            ";".join(signed),
            "UNSIGNED-PAYLOAD",
        ]
    )
    scope = f"{day}/{region}/{service}/aws4_request"
    digest = hashlib.sha256(canonical.encode()).hexdigest()
    to_sign = f"AWS4-HMAC-SHA256\n{fields['X-Amz-Date']}\n{scope}\n{digest}"
    signing_key = _hmac(_hmac(_hmac(_hmac(f"AWS4{secret}".encode(), day), region), service), "aws4_request")
    if not hmac.compare_digest(
        hmac.new(signing_key, to_sign.encode(), hashlib.sha256).hexdigest(), signature
    ):
        return "SignatureDoesNotMatch"
    if path.startswith(PREFIX + "/") and environ.get("PATH_INFO", "").startswith(PREFIX + "/"):
        # signed for the host's one port (``/objects/BUCKET/KEY``), forwarded as is: the same object here
        path = path[len(PREFIX) :]
        environ["PATH_INFO"] = environ["PATH_INFO"][len(PREFIX) :]
    rest = "&".join(
        f"{key}={value}" if value or _ else key for key, _, value in pairs if not key.startswith("X-Amz-")
    )
    host = headers.get("host", "")
    request = AWSRequest(
        method=environ["REQUEST_METHOD"],
        url=f"http://{host}{path}" + (f"?{rest}" if rest else ""),
        headers={"host": host, "X-Amz-Content-SHA256": "UNSIGNED-PAYLOAD"},
    )
    S3SigV4Auth(Credentials(key_id, secret), service, region).add_auth(request)
    environ["QUERY_STRING"] = rest
    for name in ("RAW_URI", "REQUEST_URI"):
        if name in environ:
            environ[name] = path + (f"?{rest}" if rest else "")
    for name in ("Authorization", "X-Amz-Date", "X-Amz-Content-SHA256"):
        environ["HTTP_" + name.upper().replace("-", "_")] = request.headers[name]
    return None


def application(store: Store) -> Any:
    """moto's WSGI application behind the guard and the write-through to ``store``."""
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app

    moto_app = DomainDispatcherApplication(create_backend_app)

    def app(environ: dict[str, Any], start_response: Any) -> Any:
        if environ.get("PATH_INFO", "").startswith("/moto-api"):
            return _refuse(start_response, "AccessDenied", "moto's control endpoints are not served")
        if _PRESIGNED in environ.get("QUERY_STRING", "") and "HTTP_AUTHORIZATION" not in environ:
            refused = presigned_as_signed(environ, store)
            if refused is not None:
                return _refuse(start_response, refused, "the presigned URL is not valid")
        elif "AWSAccessKeyId=" in environ.get("QUERY_STRING", "") and "HTTP_AUTHORIZATION" not in environ:
            return _refuse(start_response, "AccessDenied", "only SigV4 presigned URLs are served")
        elif "HTTP_AUTHORIZATION" not in environ:
            return _refuse(start_response, "AccessDenied", "anonymous requests are not served")
        if environ.get("REQUEST_METHOD") not in _MUTATING:
            return moto_app(environ, start_response)
        answer: dict[str, Any] = {}

        def keep(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            answer["status"], answer["headers"] = status, headers
            return lambda data: None

        with store.lock:
            body = b"".join(moto_app(environ, keep))
            if answer["status"][:1] == "2":
                store.save()
        start_response(answer["status"], answer["headers"])
        return [body]

    return app


def main(argv: list[str] | None = None) -> None:
    """Serve FOLDER's state on 127.0.0.1:PORT until terminated."""
    import signal

    folder, port = argv or sys.argv[1:3]
    os.environ["INITIAL_NO_AUTH_ACTION_COUNT"] = "0"
    os.environ.setdefault("MOTO_PORT", port)
    from moto import settings

    settings.INITIAL_NO_AUTH_ACTION_COUNT = 0
    from werkzeug.serving import run_simple

    store = Store(Path(folder))
    store.load()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    run_simple("127.0.0.1", int(port), application(store), threaded=True, use_reloader=False)


if __name__ == "__main__":
    main()
