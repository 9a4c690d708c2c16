"""Talking to AWS: one boto3 session per command, errors in skyrig's terms, tags, waits.

- Every API call goes through a :class:`AwsClient` service proxy (``client.ec2.describe_vpcs(...)``), which
  turns AWS errors into :class:`NotFound`, :class:`~skyrig.engine.contract.ThrottledError`,
  :class:`~skyrig.engine.contract.TransientError` or :class:`~skyrig.engine.contract.ProviderError`
  with the call named, and counts the call (:data:`CALLS`: the tests and the benchmark read it).
- Bulk reads that several node types make (the environment's subnets, its RDS instances, the topic's
  subscriptions...) are read once per command through :meth:`AwsClient.shared` and kept until this command
  makes a mutating call to the same AWS service, so a memo never answers with what a write of this command
  changed.
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
    """One AWS service's calls, translated and counted; a mutating call forgets the service's shared
    reads (:meth:`AwsClient.shared`) before and after it is made."""

    def __init__(self, name: str, client: Any, forget: Callable[[str], None] | None = None) -> None:
        self._name = name
        self._client = client
        self._forget = forget

    def __getattr__(self, operation: str) -> Callable[..., Any]:
        method = getattr(self._client, operation)
        if not callable(method) or operation.startswith("get_paginator") or operation == "meta":
            return method

        writes = self._forget is not None and is_mutating(_operation_name(operation))

        def call(**kwargs: Any) -> Any:
            if writes:
                self._forget(self._name)  # type: ignore[misc]
            try:
                return method(**kwargs)
            except Exception as error:
                translated = translate(error, self._name, operation)
                if translated is error:
                    raise
                raise translated from None
            finally:
                if writes:
                    self._forget(self._name)  # type: ignore[misc]

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


def _operation_name(method: str) -> str:
    """The API operation of a boto3 method name: ``describe_vpcs`` -> ``DescribeVpcs``."""
    return "".join(part.capitalize() for part in method.split("_"))


def quiet_sdk_logs() -> None:
    """Keep the AWS SDK's debug logs off: they carry whole request and response bodies, secret values
    among them (``PutSecretValue``, ``GetSecretValue``), and secrets never reach a log."""
    import logging

    for name in ("botocore", "boto3", "s3transfer"):
        logger = logging.getLogger(name)
        if logger.level < logging.INFO:  # NOTSET or DEBUG: the children inherit INFO from here
            logger.setLevel(logging.INFO)


class AwsClient(CloudClient):
    """What the AWS node types use: a boto3 session with a client per service, made on first use (each
    under a lock of its own, so that threads wanting different services do not wait for each other), and
    the command's shared bulk reads (:meth:`shared`)."""

    cloud, provider = "AWS", "aws"

    def __init__(self, app: str, environment: str, settings: AwsSettings) -> None:
        super().__init__()
        self.app = app
        self.environment = environment
        self.settings = settings
        self._lock = threading.Lock()
        self._session: Any = None
        self._first_client = False
        self._services: dict[str, _Service] = {}
        self._service_locks: dict[str, threading.Lock] = {}
        self._account: str | None = None
        self._account_lock = threading.Lock()
        self._memo: dict[tuple[Any, ...], Any] = {}
        self._memo_locks: dict[tuple[Any, ...], threading.Lock] = {}
        self._generation: Counter[str] = Counter()
        self._memo_lock = threading.Lock()

    def service(self, name: str) -> _Service:
        """The translated client of AWS service ``name`` (``ec2``, ``rds``, ...)."""
        found = self._services.get(name)
        if found is not None:
            return found
        with self._lock:
            lock = self._service_locks.setdefault(name, threading.Lock())
            session = self._boto_session()
            if not self._first_client:
                # botocore sets a session's shared parts up (credentials, endpoint data) with its first
                # client, and does not guard that against threads: the first client is made alone
                self._services[name] = _Service(name, make_client(session, name, self.settings), self.forget)
                self._first_client = True
        with lock:
            if name not in self._services:
                self._services[name] = _Service(name, make_client(session, name, self.settings), self.forget)
            return self._services[name]

    def shared(
        self, key: tuple[Any, ...], read: Callable[[], T], keep: Callable[[T], bool] | None = None
    ) -> T:
        """What ``read`` answers (a bulk read of AWS service ``key[0]``; ``key`` names it and its
        arguments), read once for every node type of this command that asks, until this command makes a
        mutating call to that service (then read again). Threads asking at once wait for one read.
        ``keep``: whether an answer may be kept (not one that shows a resource still changing, such as an
        RDS instance being created: AWS changes it without a call of this command)."""
        service = key[0]
        with self._memo_lock:
            if key in self._memo:
                return self._memo[key]  # type: ignore[no-any-return]
            lock = self._memo_locks.setdefault(key, threading.Lock())
        with lock:
            with self._memo_lock:
                if key in self._memo:
                    return self._memo[key]  # type: ignore[no-any-return]
                generation = self._generation[service]
            value = read()
            with self._memo_lock:
                settled = keep is None or keep(value)
                if settled and self._generation[service] == generation:  # no write of it meanwhile
                    self._memo[key] = value
            return value

    def forget(self, service: str) -> None:
        """Drop the shared reads of AWS service ``service`` (it is being written to)."""
        with self._memo_lock:
            self._generation[service] += 1
            for key in [k for k in self._memo if k[0] == service]:
                del self._memo[key]

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

    def learn_account(self, arn: str) -> None:
        """Take the account id from ``arn`` (one of this account's resources), sparing the STS call."""
        parts = arn.split(":", 5)
        if self._account is None and len(parts) == 6 and parts[4].isdigit():
            with self._account_lock:
                self._account = self._account or parts[4]

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
