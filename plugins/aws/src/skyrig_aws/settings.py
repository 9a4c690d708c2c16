"""Settings of the AWS provider: ``[env.NAME.aws]`` in ``skyrig.toml``."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class AwsSettings(BaseModel):
    """Where to provision (account credentials come from the usual AWS chain), sizes, and how long to wait.

    Sizes are only the defaults of a new environment: changed in the AWS console afterwards, they are
    adopted and never reverted (see ``docs/providers/aws.md``).
    """

    model_config = ConfigDict(extra="forbid")

    region: str = "us-east-1"
    """The AWS region of the environment."""
    profile: str | None = None
    """A named profile of the AWS configuration files; by default the usual credential chain."""
    endpoint_url: str | None = None
    """One endpoint for every AWS API: an emulator such as moto's server (``http://127.0.0.1:5000``)."""
    emulator: Literal["moto"] | None = None
    """The endpoint is this emulator: calls it does not implement are skipped (ElastiCache parameter and
    user groups, RDS engine version listing) and their settings recorded as asked. Never set it for AWS."""
    availability_zones: list[str] | None = Field(None, min_length=2)
    """The zones of the subnets (at least two); by default the region's ``a`` and ``b`` zones."""
    vpc_cidr: str = Field("10.0.0.0/16", pattern=r"^\d+\.\d+\.0\.0/16$")
    """The VPC's address range, a /16: public and private subnets are /20s in it."""
    image: str | None = None
    """Pins the container image of the services (``REPO:TAG`` or a digest): every plan deploys it unless
    ``--image`` says otherwise (``SKYRIG_ENV__<ENV>__AWS__IMAGE`` sets it per deploy). Unset (the usual
    way: deploy with ``--image``), the services keep the image they run, and a new environment runs its
    ECR repository's ``latest``."""
    service_cpu: int = Field(512, ge=256, le=16384)
    """CPU units of each service's Fargate task (1024 = one vCPU); user-tunable in the console."""
    service_memory: int = Field(1024, ge=512, le=122880)
    """Memory of each service's task in MiB; user-tunable in the console."""
    service_port: int = Field(8080, ge=1, le=65535)
    """The port the service's container listens on."""
    domain: str | None = Field(None, pattern=r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?\.)+[a-z]{2,}$")
    """The DNS domain of the services: the load balancer routes ``SERVICE.DOMAIN`` to each service, over
    HTTPS with an ACM certificate for ``*.DOMAIN`` that skyrig requests and validates by DNS (in the
    domain's Route 53 zone when this account has it; otherwise the apply prints the record to create)
    unless ``certificate_arn`` names one. Point ``*.DOMAIN`` at the load balancer yourself. Unset, the
    services answer at ``SERVICE.APP-ENV.internal`` over plain HTTP (the plan warns in production)."""
    certificate_arn: str | None = Field(None, pattern=r"^arn:[-a-z]+:acm:[-a-z0-9]+:\d{12}:certificate/.+$")
    """An ACM certificate of your own for the load balancer (covering ``SERVICE.DOMAIN`` of each service):
    HTTPS on port 443, with port 80 redirecting to it. Without it and without ``domain``, the listener is
    plain HTTP on port 80."""
    sql_instance_class: str = "db.m5.large"
    """The RDS instance class: the smallest latest-generation class that supports autoscaling."""
    sql_storage_gb: int = Field(20, ge=20, le=65536)
    """Allocated storage of the RDS instance (storage autoscaling grows it up to ten times)."""
    sql_engine_version: str | None = None
    """The PostgreSQL version of a new RDS instance; by default the latest RDS offers at provisioning."""
    cache_node_type: str = "cache.m6g.large"
    """The ElastiCache node type: the smallest that supports autoscaling."""
    cache_engine_version: str = "7.1"
    """The Redis engine version of new cache clusters."""
    wait_delay: float = Field(15.0, gt=0, le=300)
    """Seconds between two status checks while waiting for a resource (RDS, ElastiCache, CloudFront)."""
    wait_timeout: float = Field(3600.0, gt=0)
    """Seconds to wait for one resource before giving up (the next apply adopts it when it is ready)."""
    max_attempts: int = Field(5, ge=1, le=20)
    """Attempts of each API call by the AWS SDK (throttling and 5xx), before skyrig's own retries."""

    @property
    def https(self) -> bool:
        """Whether the load balancer serves HTTPS: a certificate is given (``certificate_arn``) or
        requested for ``domain``."""
        return bool(self.certificate_arn or self.domain)
