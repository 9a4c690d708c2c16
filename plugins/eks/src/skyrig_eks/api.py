"""Talking to AWS and to the cluster: one boto3 session per command, errors in skyrig's terms, and the
Kubernetes API of the environment's cluster with the token EKS accepts.

The AWS side is the aws provider's, seen from beside it: the region, profile and endpoint are its
settings' unless the eks settings say otherwise (:func:`effective`). The Kubernetes API is the cluster's
endpoint and CA (``DescribeCluster``) with a ``k8s-aws-v1.`` token: a presigned STS
``GetCallerIdentity`` URL bound to the cluster's name, as aws-iam-authenticator makes it
(:func:`eks_token`), unless ``kubernetes_endpoint`` names another API server (the tests' FAKE).
"""

from __future__ import annotations

import base64
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from skyrig.provider import CloudClient, NotFound, ProviderError, ThrottledError, TransientError, join_name

if TYPE_CHECKING:
    from skyrig.provider import Environment
    from skyrig_eks.settings import EksSettings
    from skyrig_kubernetes.cluster import Cluster

TOKEN_SECONDS = 600.0
"""How long one EKS token is used before a new one is signed."""

_THROTTLED = {"Throttling", "ThrottlingException", "TooManyRequestsException", "RequestLimitExceeded"}
_TRANSIENT = {
    "ServiceUnavailableException",
    "InternalFailure",
    "ServerException",
    "ResourceInUseException",
    "ConcurrentModification",
    "DeleteConflict",
}
_NOT_FOUND = {"ResourceNotFoundException", "NoSuchEntity", "NotFoundException"}


def translate(error: Exception, service: str, operation: str) -> Exception:
    """``error`` from botocore as one of skyrig's provider errors, naming the call."""
    from botocore.exceptions import ClientError, ConnectionError, EndpointConnectionError, NoCredentialsError
    from botocore.parsers import ResponseParserError

    where = f"AWS {service}.{operation}"
    if isinstance(error, ClientError):
        code = error.response.get("Error", {}).get("Code", "")
        message = error.response.get("Error", {}).get("Message", "") or code
        status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
        if code in _THROTTLED or status == 429:
            return ThrottledError(f"{where}: throttled ({code}): {message}")
        if code in _NOT_FOUND or code.endswith(("NotFound", "NotFoundException")):
            return NotFound(f"{where}: {message}")
        if code in _TRANSIENT or status >= 500:
            return TransientError(f"{where}: {code}: {message}")
        return ProviderError(f"{where}: {code}: {message}")
    if isinstance(
        error, ResponseParserError
    ):  # an answer that is not AWS's (a proxy's or emulator's 5xx page)
        return TransientError(f"{where}: the endpoint's answer could not be read; retrying")
    if isinstance(error, EndpointConnectionError | ConnectionError):
        return TransientError(f"{where}: cannot reach the endpoint: {error}")
    if isinstance(error, NoCredentialsError):
        return ProviderError(f"{where}: {error}; configure AWS credentials as for the aws provider")
    return error


class _Service:
    """One AWS service's calls, their errors translated."""

    def __init__(self, name: str, client: Any) -> None:
        self._name = name
        self._client = client

    def __getattr__(self, operation: str) -> Callable[..., Any]:
        method = getattr(self._client, operation)

        def call(**kwargs: Any) -> Any:
            try:
                return method(**kwargs)
            except Exception as error:
                translated = translate(error, self._name, operation)
                if translated is error:
                    raise
                raise translated from None

        return call


@dataclass(frozen=True)
class Where:
    """Where the AWS calls go: the eks settings', else the aws provider's of the environment."""

    region: str
    profile: str | None
    endpoint_url: str | None
    emulator: str | None


def effective(environment: Environment, settings: EksSettings) -> Where:
    """The region, profile, endpoint and emulator of ``settings``, each the aws provider's when unset."""
    cloud = environment.settings.get("aws")

    def pick(name: str, default: Any = None) -> Any:
        own = getattr(settings, name)
        return own if own is not None else getattr(cloud, name, default)

    return Where(pick("region", "us-east-1"), pick("profile"), pick("endpoint_url"), pick("emulator"))


def cluster_name(app: str, env: str) -> str:
    """The name of the cluster skyrig makes for ``app``'s ``env``."""
    return join_name(app, env, limit=100)


def eks_token(session: Any, region: str, cluster: str, endpoint_url: str | None = None) -> str:
    """A bearer token EKS accepts for ``cluster``: ``k8s-aws-v1.`` and the base64url (unpadded) of a
    presigned STS ``GetCallerIdentity`` URL whose signature covers the ``x-k8s-aws-id`` header naming the
    cluster, valid 60 seconds (the API server checks it within 15 minutes of signing)."""
    sts = session.client("sts", region_name=region, endpoint_url=endpoint_url)

    def bind(request: Any, **_: Any) -> None:
        request.headers["x-k8s-aws-id"] = cluster

    sts.meta.events.register("before-sign.sts.GetCallerIdentity", bind)
    url = sts.generate_presigned_url("get_caller_identity", Params={}, ExpiresIn=60, HttpMethod="GET")
    return "k8s-aws-v1." + base64.urlsafe_b64encode(url.encode()).decode().rstrip("=")


class EksClient(CloudClient):
    """What the EKS node types use: boto3 clients made on first use, and the cluster's Kubernetes API."""

    cloud, provider = "AWS", "eks"

    def __init__(self, app: str, environment: Environment, settings: EksSettings) -> None:
        super().__init__()
        self.app = app
        self.environment = environment.name
        self.settings = settings
        self.where = effective(environment, settings)
        self.cluster_name = settings.cluster or cluster_name(app, environment.name)
        self._lock = threading.Lock()
        self._session: Any = None
        self._services: dict[str, _Service] = {}
        self._account: str | None = None
        self._kubernetes: Cluster | None = None
        self._kubernetes_since = 0.0
        self._kube_lock = threading.Lock()

    def session(self) -> Any:
        """The boto3 session (the aws provider's profile and region)."""
        with self._lock:
            if self._session is None:
                import logging

                import boto3

                # the SDK's debug logs carry whole requests: keep them off, as the aws provider does
                logging.getLogger("botocore").setLevel(max(logging.getLogger("botocore").level, logging.INFO))
                self._session = boto3.session.Session(
                    profile_name=self.where.profile, region_name=self.where.region
                )
            return self._session

    def service(self, name: str) -> _Service:
        """The translated client of AWS service ``name`` (``eks``, ``iam``, ``ec2``, ``sts``)."""
        session = self.session()
        with self._lock:
            if name not in self._services:
                from botocore.config import Config

                config = Config(retries={"max_attempts": self.settings.max_attempts, "mode": "standard"})
                client = session.client(name, endpoint_url=self.where.endpoint_url, config=config)
                self._services[name] = _Service(name, client)
            return self._services[name]

    def __getattr__(self, name: str) -> _Service:
        if name.startswith("_"):
            raise AttributeError(name)
        return self.service(name)

    def account(self) -> str:
        """The AWS account id (asked once per command)."""
        if self._account is None:
            self._account = self.sts.get_caller_identity()["Account"]
        return self._account

    def partition(self) -> str:
        """The ARN partition of the region."""
        region = self.where.region
        return (
            "aws-cn" if region.startswith("cn-") else "aws-us-gov" if region.startswith("us-gov") else "aws"
        )

    def describe_cluster(self) -> dict[str, Any] | None:
        """The environment's cluster as EKS describes it, or None when there is none."""
        try:
            return self.eks.describe_cluster(name=self.cluster_name)["cluster"]
        except NotFound:
            return None

    def issuer(self) -> str | None:
        """The cluster's OIDC issuer URL (None before there is one). moto gives every cluster of a server
        run the same issuer, so under ``emulator = "moto"`` the cluster's name is appended to it: two
        environments' OIDC providers must not be one (EKS's issuers are unique per cluster)."""
        found = self.describe_cluster()
        issuer = ((found or {}).get("identity") or {}).get("oidc", {}).get("issuer")
        if issuer and self.where.emulator == "moto":
            return f"{issuer}/{self.cluster_name}"
        return issuer

    def oidc_provider_arn(self) -> str | None:
        """The ARN of the IAM OIDC provider of the cluster's issuer (whether it exists or not)."""
        issuer = self.issuer()
        if not issuer:
            return None
        return f"arn:{self.partition()}:iam::{self.account()}:oidc-provider/{issuer.removeprefix('https://')}"

    def kubernetes(self) -> Cluster:
        """The cluster's Kubernetes API: ``kubernetes_endpoint`` with the token of ``EKS_KUBERNETES_TOKEN``
        when set, else the cluster's endpoint and CA with an EKS token, made again before the token is ten
        minutes old (EKS accepts one for fifteen; an apply that makes a cluster lasts longer)."""
        from skyrig_eks.settings import TOKEN_VARIABLE
        from skyrig_kubernetes.cluster import Cluster

        with self._kube_lock:
            if self._kubernetes is not None and time.monotonic() - self._kubernetes_since < TOKEN_SECONDS:
                return self._kubernetes
            if self.settings.kubernetes_endpoint:
                token = os.environ.get(TOKEN_VARIABLE)
                if not token:
                    raise ProviderError(
                        f"kubernetes_endpoint is set in [env.{self.environment}.eks] but the environment "
                        f"variable {TOKEN_VARIABLE} holding its token is not"
                    )
                made = Cluster.from_token(self.settings.kubernetes_endpoint, token)
            else:
                found = self.describe_cluster()
                if found is None or not found.get("endpoint"):
                    raise TransientError(f"EKS cluster {self.cluster_name} has no API endpoint yet")
                ca = base64.b64decode(found["certificateAuthority"]["data"]).decode()
                token = eks_token(
                    self.session(), self.where.region, self.cluster_name, self.where.endpoint_url
                )
                made = Cluster.from_token(found["endpoint"].rstrip("/"), token, ca)
            self._kubernetes, self._kubernetes_since = made, time.monotonic()
            return made
