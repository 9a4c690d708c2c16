""":class:`FakeKubernetes`: the FAKE Kubernetes API server's front (:mod:`skyrig_kubernetes.fake`).

It starts the listener and the controllers, checks the bearer token, logs every call, injects errors,
and lets a test read what is stored and change it as someone else would (``kubectl edit``, a console).
"""

from __future__ import annotations

import base64
import copy
import pathlib
import secrets
import ssl
import tempfile
import threading
import traceback
import urllib.parse
from dataclasses import dataclass, field
from typing import Any

from skyrig_kubernetes.fake import api, errors
from skyrig_kubernetes.fake.controllers import Controllers
from skyrig_kubernetes.fake.kinds import by_kind
from skyrig_kubernetes.fake.schema import latest_version, minor, schema_for
from skyrig_kubernetes.fake.server import Listener
from skyrig_kubernetes.fake.state import APPLY, NAMESPACE, State
from skyrig_kubernetes.fake.watch import WatchStream

#: The namespaces every cluster starts with.
INITIAL_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease")

#: The reason the real server gives each status code, for injected errors.
_REASONS = {
    400: "BadRequest",
    401: "Unauthorized",
    403: "Forbidden",
    404: "NotFound",
    405: "MethodNotAllowed",
    409: "Conflict",
    410: "Expired",
    422: "Invalid",
    429: "TooManyRequests",
    500: "InternalError",
    503: "ServiceUnavailable",
    504: "Timeout",
}


@dataclass(frozen=True)
class Call:
    """One request the fake answered: its Kubernetes verb (``get``, ``list``, ``create``, ``update``,
    ``patch``, ``delete``, ``deletecollection``, ``watch``), path, query, Content-Type, HTTP method and
    the status it got."""

    verb: str
    path: str
    query: dict[str, str] = field(default_factory=dict)
    content_type: str = ""
    method: str = ""
    status: int = 0

    def matches(self, verb: str | None, path_prefix: str = "") -> bool:
        """Whether the call is of ``verb`` (a Kubernetes verb, an HTTP method, ``apply`` for server-side
        apply patches, None or ``*`` for any) on a path starting with ``path_prefix``."""
        if not self.path.startswith(path_prefix):
            return False
        if verb in (None, "*"):
            return True
        wanted = verb.lower()
        is_apply = self.content_type.split(";")[0].strip() == APPLY
        return wanted in (self.verb, self.method.lower()) or (wanted == "apply" and is_apply)


class CallLog(list[Call]):
    """The calls the fake answered, in order."""

    def count(self, verb: str | None = None, path_prefix: str = "") -> int:  # type: ignore[override]
        """How many calls of ``verb`` (see :meth:`Call.matches`) on paths starting with ``path_prefix``."""
        return sum(1 for call in list(self) if call.matches(verb, path_prefix))

    def select(self, verb: str | None = None, path_prefix: str = "") -> list[Call]:
        """The calls :meth:`count` counts."""
        return [call for call in list(self) if call.matches(verb, path_prefix)]


@dataclass
class _Injection:
    verb: str
    path_prefix: str
    status: int
    times: int


class FakeKubernetes:
    """A FAKE Kubernetes API server on 127.0.0.1: strict by the official schemas of ``version``, with
    server-side apply and rollouts that finish ``rollout_seconds`` after a change.

    ``with FakeKubernetes(version="1.37", rollout_seconds=0.3) as cluster:`` then point a client at
    :meth:`api_client` (or :meth:`kubeconfig`); :attr:`calls`, :meth:`inject_error`, :meth:`get`,
    :meth:`edit` and :meth:`reset` are for the test. ``tls=True`` serves HTTPS with a self-signed
    certificate (:attr:`ca_certificate`, in the kubeconfig too): kubectl and client-go send a bearer token
    only over TLS.
    """

    def __init__(
        self, version: str | None = None, rollout_seconds: float = 0.3, *, tls: bool = False
    ) -> None:
        self.version = minor(version) if version else latest_version()
        self.rollout_seconds = rollout_seconds
        #: The PEM certificate the fake serves HTTPS with (its own CA), None when it serves plain HTTP.
        self.ca_certificate: bytes | None = None
        self._tls: ssl.SSLContext | None = None
        self._files = tempfile.TemporaryDirectory(prefix="fake-kubernetes-") if tls else None
        if self._files is not None:
            from skyrig_kubernetes.fake.tls import self_signed  # cryptography, only for a fake that needs it

            certificate, key = self_signed()
            self.ca_certificate = certificate
            folder = pathlib.Path(self._files.name)
            (folder / "ca.crt").write_bytes(certificate)
            (folder / "tls.key").write_bytes(key)
            self._tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            self._tls.load_cert_chain(folder / "ca.crt", folder / "tls.key")
        self.token = secrets.token_urlsafe(24)
        self.calls = CallLog()
        self._injections: list[_Injection] = []
        self._injection_lock = threading.Lock()
        self._state = State(schema_for(self.version), namespace_delay=rollout_seconds)
        self._controllers = Controllers(self._state, rollout_seconds, self.version)
        self._listener: Listener | None = None
        self._seed()

    # -- lifecycle -------------------------------------------------------------------------------------

    def start(self) -> FakeKubernetes:
        """Starts listening and the controllers."""
        if self._listener is None:
            self._listener = Listener(self, self._tls)
            self._listener.start()
            self._controllers.start()
        return self

    def stop(self) -> None:
        """Stops the controllers and the listener."""
        if self._listener is not None:
            self._controllers.stop()
            self._state.journal.close()
            self._listener.stop()
            self._listener = None

    def __enter__(self) -> FakeKubernetes:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT`` (``https://`` with ``tls=True``)."""
        if self._listener is None:
            raise RuntimeError("the FAKE Kubernetes API server is not started")
        return f"{'https' if self._tls else 'http'}://127.0.0.1:{self._listener.port}"

    def kubeconfig(self) -> dict[str, Any]:
        """A kubeconfig for the fake: cluster ``fake`` (with its CA certificate when it serves HTTPS), a user
        with the token, context ``fake``."""
        cluster: dict[str, Any] = {"server": self.url}
        if self.ca_certificate is not None:
            cluster["certificate-authority-data"] = base64.b64encode(self.ca_certificate).decode()
        return {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": "fake", "cluster": cluster}],
            "users": [{"name": "fake", "user": {"token": self.token}}],
            "contexts": [{"name": "fake", "context": {"cluster": "fake", "user": "fake"}}],
            "current-context": "fake",
            "preferences": {},
        }

    def api_client(self) -> Any:
        """A ``kubernetes.client.ApiClient`` configured for the fake."""
        from kubernetes import client

        configuration = client.Configuration()
        configuration.host = self.url
        if self._files is not None:
            configuration.ssl_ca_cert = str(pathlib.Path(self._files.name) / "ca.crt")
        configuration.api_key = {"authorization": self.token}
        configuration.api_key_prefix = {"authorization": "Bearer"}
        return client.ApiClient(configuration)

    # -- for tests -------------------------------------------------------------------------------------

    def get(self, api_version: str, kind: str, namespace: str | None, name: str) -> dict[str, Any] | None:
        """The stored object (a deep copy), None when there is none."""
        served = by_kind(api_version, kind)
        if served is None:
            raise KeyError(f"the FAKE Kubernetes API server does not serve {api_version} {kind}")
        with self._state.lock:
            found = self._state.get(served, namespace or "", name)
            return copy.deepcopy(found) if found is not None else None

    def edit(
        self,
        api_version: str,
        kind: str,
        namespace: str | None,
        name: str,
        patch: dict[str, Any],
        manager: str = "kubectl-edit",
    ) -> dict[str, Any]:
        """A change by someone else: a merge patch recorded as ``manager``'s Update (ApiError when the
        server would refuse it)."""
        with self._state.lock:
            return self._state.edit(api_version, kind, namespace or "", name, patch, manager)

    def inject_error(self, verb: str, path_prefix: str, status: int, times: int = 1) -> None:
        """The next ``times`` calls of ``verb`` (as :meth:`Call.matches` reads it) on paths starting with
        ``path_prefix`` fail with ``status``, in the Status shape."""
        with self._injection_lock:
            self._injections.append(_Injection(verb, path_prefix, status, times))

    def reset(self) -> None:
        """Forgets every object, call and injected error; the initial namespaces are back."""
        with self._state.lock:
            self._state.clear()
            self._controllers.forget()
            self._seed()
        with self._injection_lock:
            self._injections.clear()
        self.calls.clear()

    def _seed(self) -> None:
        with self._state.lock:
            for name in INITIAL_NAMESPACES:
                self._state.create(NAMESPACE, "", {"metadata": {"name": name}}, manager="kube-apiserver")

    # -- serving ---------------------------------------------------------------------------------------

    def _injected(self, call: Call) -> int | None:
        with self._injection_lock:
            for injection in self._injections:
                if call.matches(injection.verb, injection.path_prefix):
                    injection.times -= 1
                    if injection.times <= 0:
                        self._injections.remove(injection)
                    return injection.status
        return None

    def dispatch(
        self, method: str, raw_path: str, headers: dict[str, str], body: bytes
    ) -> tuple[int, dict[str, Any] | WatchStream]:
        """Answers one HTTP request: (status, JSON body, or the events of a watch)."""
        headers = {key.lower(): value for key, value in headers.items()}
        parsed = urllib.parse.urlsplit(raw_path)
        query = {
            key: values[-1]
            for key, values in urllib.parse.parse_qs(parsed.query, keep_blank_values=True).items()
        }
        request = api.Request(
            method=method,
            path=parsed.path,
            query=query,
            content_type=headers.get("content-type", ""),
            body=body,
            user_agent=headers.get("user-agent", ""),
        )
        try:
            target = api.route(request.path, self.version, f"127.0.0.1:{self._port()}")
            verb = api.verb(method, target, query)
        except errors.ApiError:
            verb = {
                "GET": "get",
                "POST": "create",
                "PUT": "update",
                "PATCH": "patch",
                "DELETE": "delete",
            }.get(method, method.lower())
        status, answer = self._answer(request, headers, verb)
        self.calls.append(Call(verb, request.path, query, request.content_type, method, status))
        return status, answer

    def _port(self) -> int:
        return self._listener.port if self._listener is not None else 0

    def _answer(
        self, request: api.Request, headers: dict[str, str], verb: str
    ) -> tuple[int, dict[str, Any] | WatchStream]:
        if not secrets.compare_digest(
            headers.get("authorization", "").encode(), f"Bearer {self.token}".encode()
        ):
            return 401, errors.unauthorized().status()
        injected = self._injected(
            Call(verb, request.path, request.query, request.content_type, request.method)
        )
        if injected is not None:
            reason = _REASONS.get(injected, "InternalError")
            return injected, errors.ApiError(injected, reason, f"injected by the test: {reason}").status()
        try:
            return api.handle(self._state, request, self.version, f"127.0.0.1:{self._port()}")
        except errors.ApiError as error:
            return error.code, error.status()
        except Exception:
            return 500, errors.ApiError(
                500, "InternalError", "the FAKE Kubernetes API server failed: " + traceback.format_exc()
            ).status()
