"""A Kubernetes cluster as skyrig talks to it: server-side apply, reads and deletes through the official
client's :class:`kubernetes.client.ApiClient`, with the API's errors in skyrig's terms.

Objects are applied with server-side apply as field manager ``skyrig`` and ``force``: on the fields
skyrig sets, skyrig's values win over anyone else's (that is how a security setting someone changed is
restored), and a field skyrig does not set is never touched (a replica count an autoscaler or a person
chose stays). One request per object; the server makes a re-apply of an unchanged object a no-op (its
``resourceVersion`` stays).

Every failed call becomes a :class:`KubernetesError` (a :class:`skyrig.provider.ProviderError`, or its
transient kinds for 429 / 5xx / an unreachable server) that names the object and quotes the API's Status
message: never a traceback, never the token.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import quote

import urllib3
from kubernetes import client as k8s
from kubernetes import config as k8s_config

from skyrig.provider import ProviderError, ThrottledError, TransientError

FIELD_MANAGER = "skyrig"

APPLY_ORDER = (
    "Namespace",
    "ServiceAccount",
    "ConfigMap",
    "Service",
    "Job",
    "Deployment",
    "HorizontalPodAutoscaler",
    "PodDisruptionBudget",
    "Ingress",
)
"""The order objects apply in: what a later one needs exists first (the Job's pod needs its service
account, a Deployment's pods their config)."""

RESOURCES = {
    "Namespace": ("namespaces", False),
    "ServiceAccount": ("serviceaccounts", True),
    "ConfigMap": ("configmaps", True),
    "Service": ("services", True),
    "Pod": ("pods", True),
    "Event": ("events", True),
    "Deployment": ("deployments", True),
    "ReplicaSet": ("replicasets", True),
    "Job": ("jobs", True),
    "HorizontalPodAutoscaler": ("horizontalpodautoscalers", True),
    "PodDisruptionBudget": ("poddisruptionbudgets", True),
    "Ingress": ("ingresses", True),
}
"""Kind -> (resource, namespaced), for the kinds skyrig applies and reads."""


class KubernetesError(ProviderError):
    """A call to the Kubernetes API failed for good: the object, and the API's Status message."""

    def __init__(self, message: str, status: int = 0, reason: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.reason = reason


class KubernetesTransientError(KubernetesError, TransientError):
    """The API is unreachable or answered 5xx: worth retrying."""


class KubernetesThrottledError(KubernetesError, ThrottledError):
    """The API asked to slow down (429)."""


def describe(found: Mapping[str, Any]) -> str:
    """``Kind namespace/name``: how messages name an object."""
    metadata = found.get("metadata") or {}
    where = "/".join(str(p) for p in (metadata.get("namespace"), metadata.get("name")) if p)
    return f"{found.get('kind')} {where}"


def apply_order(objects: Iterable[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """``objects`` in :data:`APPLY_ORDER` (kinds it does not name last), otherwise as given."""
    rank = {kind: i for i, kind in enumerate(APPLY_ORDER)}
    return sorted(objects, key=lambda o: rank.get(str(o.get("kind")), len(rank)))


class Cluster:
    """One cluster's API: apply, get, list and delete objects, each call counted in :attr:`calls` by
    ``"METHOD Kind"``."""

    def __init__(self, api: k8s.ApiClient, *, timeout: float = 30.0) -> None:
        self.api = api
        self.timeout = timeout
        self.calls: Counter[str] = Counter()

    @classmethod
    def from_kubeconfig(cls, kubeconfig: Mapping[str, Any], context: str | None = None) -> Cluster:
        """The cluster of a kubeconfig (a dict, as ``aws eks`` / ``gcloud`` would write it)."""
        return cls(k8s_config.new_client_from_config_dict(dict(kubeconfig), context=context))

    @classmethod
    def from_token(cls, host: str, token: str, ca_data: str | None = None) -> Cluster:
        """The cluster at ``host``, called with bearer ``token`` and trusting ``ca_data`` (PEM) when given."""
        configuration = k8s.Configuration(
            host=host,
            api_key={"BearerToken": token},
            api_key_prefix={"BearerToken": "Bearer"},
            ca_cert_data=ca_data,
        )
        return cls(k8s.ApiClient(configuration))

    @property
    def host(self) -> str:
        """The API server's URL."""
        return str(self.api.configuration.host)

    def close(self) -> None:
        """Release the client's connections."""
        self.api.close()

    # -- the objects ------------------------------------------------------------------------------

    def apply(self, found: Mapping[str, Any], manager: str = FIELD_MANAGER) -> dict[str, Any]:
        """Server-side apply ``found`` as field ``manager`` (``skyrig``), forcing its values on the fields
        it sets; the object as the server now has it."""
        metadata = found["metadata"]
        path = self.path(found["apiVersion"], found["kind"], metadata.get("namespace"), metadata["name"])
        query = {"fieldManager": manager, "force": "true"}
        return self._call(
            "PATCH", path, found, query=query, body=found, content="application/apply-patch+yaml"
        )

    def apply_all(self, objects: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
        """Apply ``objects`` in dependency order (:data:`APPLY_ORDER`); what the server has, in that order."""
        return [self.apply(found) for found in apply_order(objects)]

    def get(self, api_version: str, kind: str, namespace: str | None, name: str) -> dict[str, Any] | None:
        """The object, or ``None`` when there is none."""
        path = self.path(api_version, kind, namespace, name)
        return self._call("GET", path, _named(api_version, kind, namespace, name), missing_ok=True)

    def list(
        self, api_version: str, kind: str, namespace: str, labels: Mapping[str, str] | None = None
    ) -> list[dict[str, Any]]:
        """The objects of ``kind`` in ``namespace`` that carry all of ``labels``."""
        query = {"labelSelector": ",".join(f"{k}={v}" for k, v in sorted(labels.items()))} if labels else {}
        path = self.path(api_version, kind, namespace)
        answer = self._call("GET", path, _named(api_version, kind, namespace, "*"), query=query)
        return list(answer.get("items") or []) if answer else []

    def delete(self, api_version: str, kind: str, namespace: str | None, name: str) -> bool:
        """Delete the object and what it owns (in the background); whether there was one."""
        path = self.path(api_version, kind, namespace, name)
        body = {"apiVersion": "v1", "kind": "DeleteOptions", "propagationPolicy": "Background"}
        answer = self._call(
            "DELETE", path, _named(api_version, kind, namespace, name), body=body, missing_ok=True
        )
        return answer is not None

    def delete_namespace(self, name: str, timeout: float = 300.0, interval: float = 0.2) -> bool:
        """Delete namespace ``name`` and everything in it, and wait until it is gone; whether there was one.
        Raises a transient :class:`KubernetesError` if it is still there after ``timeout`` seconds."""
        existed = self.delete("v1", "Namespace", None, name)
        deadline = time.monotonic() + timeout
        while self.get("v1", "Namespace", None, name) is not None:
            if time.monotonic() >= deadline:
                raise KubernetesTransientError(
                    f"Namespace {name} is still terminating after {timeout:g} s: something in it has a "
                    "finalizer that has not finished "
                    f"(kubectl get all -n {name} shows what is left)"
                )
            time.sleep(interval)
            interval = min(interval * 2, 5.0)
        return existed

    # -- the HTTP calls ---------------------------------------------------------------------------

    def path(self, api_version: str, kind: str, namespace: str | None, name: str | None = None) -> str:
        """The API path of a kind's collection in ``namespace``, or of object ``name`` in it."""
        try:
            resource, namespaced = RESOURCES[kind]
        except KeyError:
            raise KubernetesError(f"skyrig does not manage Kubernetes objects of kind {kind}") from None
        parts = ["/api/v1" if api_version == "v1" else f"/apis/{api_version}"]
        if namespaced:
            parts.append(f"namespaces/{quote(namespace or '', safe='')}")
        parts.append(resource)
        if name is not None:
            parts.append(quote(name, safe=""))
        return "/".join(parts)

    def _call(
        self,
        method: str,
        path: str,
        about: Mapping[str, Any],
        *,
        query: Mapping[str, str] | None = None,
        body: Any = None,
        content: str = "application/json",
        missing_ok: bool = False,
    ) -> dict[str, Any] | None:
        self.calls[f"{method} {about.get('kind')}"] += 1
        headers = {"Accept": "application/json", "Content-Type": content}
        request = self.api.param_serialize(
            method,
            path,
            query_params=list((query or {}).items()),
            header_params=headers,
            body=body,
            auth_settings=["BearerToken"],
        )
        try:
            response = self.api.call_api(*request, _request_timeout=self.timeout)
            data = response.read()
        except urllib3.exceptions.HTTPError as error:
            raise KubernetesTransientError(
                f"{method} {describe(about)}: the Kubernetes API at {self.host} did not answer "
                f"({type(error).__name__})"
            ) from None
        except k8s.ApiException as error:  # the client's own failures (TLS), before any answer
            first = str(error.reason or "").splitlines()[-1:]
            raise KubernetesError(
                f"{method} {describe(about)}: could not call the Kubernetes API at {self.host}: "
                f"{first[0] if first else type(error).__name__}"
            ) from None
        if response.status == 404 and missing_ok:
            return None
        if response.status >= 300:
            raise _error(method, about, response.status, data)
        return json.loads(data) if data else {}


def _named(api_version: str, kind: str, namespace: str | None, name: str) -> dict[str, Any]:
    return {"apiVersion": api_version, "kind": kind, "metadata": {"namespace": namespace, "name": name}}


def _error(method: str, about: Mapping[str, Any], status: int, data: bytes) -> KubernetesError:
    """The error of an answer ``status`` with body ``data`` (a ``Status`` object, when the API server
    answered): its message, reason and causes, naming the object."""
    try:
        answer = json.loads(data)
    except ValueError:
        answer = {"message": data.decode(errors="replace")[:200]}
    if not isinstance(answer, dict):
        answer = {}
    message = str(answer.get("message") or "no message")
    reason = str(answer.get("reason") or "")
    causes = [
        f"{c.get('field')}: {c.get('message')}" if c.get("field") else str(c.get("message"))
        for c in (answer.get("details") or {}).get("causes") or []
    ]
    text = f"{method} {describe(about)}: {message} ({reason or 'HTTP'} {status})"
    if causes and not all(c in message for c in causes):
        text += "; " + "; ".join(causes)
    if status in (401, 403):
        text += "; check the cluster's credentials and what they are allowed to do"
    kind: type[KubernetesError] = KubernetesError
    if status == 429:
        kind = KubernetesThrottledError
    elif status >= 500:
        kind = KubernetesTransientError
    return kind(text, status, reason)
