"""Talking to AWS: one boto3 session per command, errors in skyrig's terms, tags, waits.

- Every API call goes through a :class:`AwsClient` service proxy (``client.ec2.describe_vpcs(...)``), which
  turns AWS errors into :class:`NotFound`, :class:`~skyrig.engine.contract.ThrottledError`,
  :class:`~skyrig.engine.contract.TransientError` or :class:`~skyrig.engine.contract.ProviderError`
  with the call named, and counts the call (:data:`CALLS`: the tests and the benchmark read it).
"""

from __future__ import annotations

import re
import threading
from collections import Counter
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any, TypeVar

from skyrig.provider import CloudClient, NotFound, ProviderError, ThrottledError, TransientError

if TYPE_CHECKING:
    from skyrig.provider import Context
    from skyrig_aws.settings import AwsSettings

T = TypeVar("T")

CALLS: Counter[tuple[str, str]] = Counter()
"""Every AWS API call made by this process: ``(service, operation) -> count``."""
_calls_lock = threading.Lock()

READ_PREFIXES = ("Describe", "List", "Get", "Head", "Lookup", "Search", "Simulate", "Check")


def is_mutating(operation: str) -> bool:
    """Whether an API operation (``CreateVpc``) changes anything (by AWS's naming convention)."""
    return not operation.startswith(READ_PREFIXES)


def mutating_calls(calls: Counter[tuple[str, str]] | None = None) -> Counter[tuple[str, str]]:
    """The mutating calls among ``calls`` (by default every call this process made)."""
    calls = CALLS if calls is None else calls
    return Counter({key: count for key, count in calls.items() if is_mutating(key[1])})


_THROTTLED = {
    "Throttling",
    "ThrottlingException",
    "ThrottledException",
    "RequestLimitExceeded",
    "TooManyRequestsException",
    "RequestThrottled",
    "RequestThrottledException",
    "SlowDown",
    "ProvisionedThroughputExceededException",
    "PriorRequestNotComplete",
}
_TRANSIENT = {
    "InternalError",
    "InternalFailure",
    "InternalServerError",
    "ServiceUnavailable",
    "ServiceUnavailableException",
    "RequestTimeout",
    "RequestTimeoutException",
    "OperationAborted",
    "ConcurrentModificationException",
    "ConcurrentModification",
    "InvalidCacheClusterState",
    "InvalidReplicationGroupState",
    "InvalidDBInstanceState",
    "IncorrectState",
    "DependencyViolation",
    "ResourceInUseException",
    "ResourceInUse",
}
_NOT_FOUND = re.compile(r"NotFound|NoSuch|NonExistent|DoesNotExist|NotExist")
_NOT_FOUND_IN_OTHER_WORDS = {
    # ECS answers a task definition family or revision that does not exist with a generic ClientException
    ("ecs", "ClientException"): "Unable to describe task definition",
}
"""(service, error code) -> what its message says when the error means "no such resource"."""


def translate(error: Exception, service: str, operation: str) -> Exception:
    """``error`` from botocore as one of skyrig's provider errors, naming the call."""
    from botocore.exceptions import (
        ClientError,
        ConnectionError,
        EndpointConnectionError,
        ReadTimeoutError,
    )
    from botocore.parsers import ResponseParserError

    where = f"AWS {service}.{operation}"
    if isinstance(error, ClientError):
        code = error.response.get("Error", {}).get("Code", "")
        message = error.response.get("Error", {}).get("Message", "") or code
        status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
        if code in _THROTTLED or status == 429:
            return ThrottledError(f"{where}: throttled ({code}): {message}")
        if _NOT_FOUND.search(code) or code in ("ResourceNotFoundException", "404"):
            return NotFound(f"{where}: {message}")
        said = _NOT_FOUND_IN_OTHER_WORDS.get((service, code))
        if said is not None and said in message:
            return NotFound(f"{where}: {message}")
        if code in _TRANSIENT or status >= 500:
            return TransientError(f"{where}: {code}: {message}")
        if code in ("AccessDenied", "AccessDeniedException", "UnauthorizedOperation", "AuthFailure"):
            return ProviderError(
                f"{where}: permission denied ({message}); give the credentials skyrig runs with the "
                "permissions listed in docs/providers/aws.md"
            )
        return ProviderError(f"{where}: {code}: {message}")
    if isinstance(error, ResponseParserError):
        return ProviderError(
            f"{where}: the endpoint did not answer as AWS does (an emulator that does not implement this "
            "call?); see the emulator setting of the aws provider"
        )
    if isinstance(error, EndpointConnectionError | ConnectionError | ReadTimeoutError):
        return TransientError(f"{where}: cannot reach the endpoint: {error}")
    from botocore.exceptions import NoCredentialsError, NoRegionError, ProfileNotFound

    if isinstance(error, NoCredentialsError | ProfileNotFound | NoRegionError):
        return ProviderError(
            f"{where}: {error}; configure AWS credentials (environment variables, a profile in "
            "[env.NAME.aws] profile = ..., or an instance role)"
        )
    return error


class _Service:
    """One AWS service's calls, translated and counted."""

    def __init__(self, name: str, client: Any) -> None:
        self._name = name
        self._client = client

    def __getattr__(self, operation: str) -> Callable[..., Any]:
        method = getattr(self._client, operation)
        if not callable(method) or operation.startswith("get_paginator") or operation == "meta":
            return method

        def call(**kwargs: Any) -> Any:
            try:
                return method(**kwargs)
            except Exception as error:
                translated = translate(error, self._name, operation)
                if translated is error:
                    raise
                raise translated from None

        return call

    def pages(self, operation: str, key: str, **kwargs: Any) -> list[Any]:
        """Every item under ``key`` across all pages of ``operation``."""
        items: list[Any] = []
        try:
            for page in self._client.get_paginator(operation).paginate(**kwargs):
                items.extend(page.get(key, []))
        except Exception as error:
            translated = translate(error, self._name, operation)
            if translated is error:
                raise
            raise translated from None
        return items


def quiet_sdk_logs() -> None:
    """Keep the AWS SDK's debug logs off: they carry whole request and response bodies, secret values
    among them (``PutSecretValue``, ``GetSecretValue``), and secrets never reach a log."""
    import logging

    for name in ("botocore", "boto3", "s3transfer"):
        logger = logging.getLogger(name)
        if logger.level < logging.INFO:  # NOTSET or DEBUG: the children inherit INFO from here
            logger.setLevel(logging.INFO)


class AwsClient(CloudClient):
    """What the AWS node types use: a boto3 session with a client per service, made on first use."""

    cloud, provider = "AWS", "aws"

    def __init__(self, app: str, environment: str, settings: AwsSettings) -> None:
        super().__init__()
        self.app = app
        self.environment = environment
        self.settings = settings
        self._lock = threading.Lock()
        self._session: Any = None
        self._services: dict[str, _Service] = {}
        self._account: str | None = None
        self._account_lock = threading.Lock()

    def service(self, name: str) -> _Service:
        """The translated client of AWS service ``name`` (``ec2``, ``rds``, ...)."""
        found = self._services.get(name)
        if found is not None:
            return found
        with self._lock:
            if name not in self._services:
                self._services[name] = _Service(name, make_client(self._boto_session(), name, self.settings))
            return self._services[name]

    def __getattr__(self, name: str) -> _Service:
        if name.startswith("_"):
            raise AttributeError(name)
        return self.service(name)

    def _boto_session(self) -> Any:
        if self._session is None:
            import boto3

            quiet_sdk_logs()

            self._session = boto3.session.Session(
                profile_name=self.settings.profile, region_name=self.settings.region
            )
        return self._session

    def lacks(self, feature: str) -> bool:
        """Whether the endpoint is an emulator that does not implement ``feature`` (see settings)."""
        return self.settings.emulator == "moto" and feature in MOTO_GAPS

    def account(self) -> str:
        """The AWS account id (asked once per command, however many threads want it at once)."""
        if self._account is None:
            sts = self.sts  # made outside the lock below, which making a client takes
            with self._account_lock:
                if self._account is None:
                    self._account = sts.get_caller_identity()["Account"]
        return self._account

    def partition(self) -> str:
        region = self.settings.region
        return (
            "aws-cn" if region.startswith("cn-") else "aws-us-gov" if region.startswith("us-gov") else "aws"
        )


MOTO_GAPS = frozenset(
    {
        "elasticache.parameter_group",
        "elasticache.user_group",
        "elasticache.deletion",
        "scheduler.group_deletion",
        "rds.engine_versions",
    }
)
"""What moto's server (5.2) does not implement among the calls this provider makes."""


def make_client(session: Any, service: str, settings: AwsSettings) -> Any:
    """A boto3 client for ``service`` with the settings' endpoint and retries, counting its calls."""
    from botocore.config import Config

    config = Config(
        retries={"max_attempts": settings.max_attempts, "mode": "standard"},
        connect_timeout=10,
        read_timeout=60,
        max_pool_connections=50,
    )
    client = session.client(service, endpoint_url=settings.endpoint_url, config=config)
    client.meta.events.register("before-call.*.*", _count)
    return client


def _count(model: Any, **_: Any) -> None:
    with _calls_lock:
        CALLS[model.service_model.service_name, model.name] += 1


# -- tags -----------------------------------------------------------------------------------------------


def tag_list(tags: dict[str, str], key: str = "Key", value: str = "Value") -> list[dict[str, str]]:
    """Tags as AWS's list form: ``[{"Key": k, "Value": v}]`` (some APIs spell the keys differently)."""
    return [{key: k, value: v} for k, v in sorted(tags.items())]


def tag_dict(tags: Iterable[dict[str, str]] | None, key: str = "Key", value: str = "Value") -> dict[str, str]:
    return {t[key]: t[value] for t in tags or []}


def owned(tags: dict[str, str], context: Context) -> bool:
    """Whether a resource's tags say it belongs to this app and environment."""
    return tags.get("skyrig:app") == context.app and tags.get("skyrig:env") == context.environment.name


def env_filters(context: Context) -> list[dict[str, Any]]:
    """EC2-style filters for the resources of this app and environment."""
    return [
        {"Name": "tag:skyrig:app", "Values": [context.app]},
        {"Name": "tag:skyrig:env", "Values": [context.environment.name]},
    ]
