"""The price table: AWS on-demand list prices, in US dollars, for the region ``us-east-1``.

Where they come from: AWS's public pricing pages for Fargate, Elastic Load Balancing, VPC (NAT gateways,
public IPv4 addresses), RDS for PostgreSQL, ElastiCache (Redis OSS) and Secrets Manager, **as published
in 2024, written here from memory when this plugin was made, with no access to AWS's price list: not
verified**. Prices change (rarely down, sometimes by region and generation), so treat every figure as an
estimate and check it against https://aws.amazon.com/pricing/ (or the AWS Price List API) before relying
on it. To correct a price, or to add an instance class, edit this file: nothing else holds a price.

Only the fixed, hourly part of each resource is priced. What depends on use is not: requests (SNS,
SQS, S3, Secrets Manager API calls, EventBridge Scheduler invocations), data processed or transferred
(NAT gateway GBs, load balancer LCUs, CloudFront), storage used (S3 objects, ECR images, backups beyond
the free allowance), CloudWatch metrics and logs.
"""

from __future__ import annotations

SOURCE = (
    "us-east-1 on-demand list prices as published in 2024, written from memory, not verified here "
    "(skyrig_cost_estimate/prices.py)"
)
"""Where the prices come from, as every estimate says."""
AS_OF = "2024"
REGION = "us-east-1"
HOURS_PER_MONTH = 730
"""AWS's own convention for a month of hourly prices (8,760 hours a year / 12)."""

FARGATE_VCPU_HOUR = 0.04048
"""Fargate, Linux on x86: per vCPU per hour."""
FARGATE_GB_HOUR = 0.004445
"""Fargate, Linux on x86: per GB of memory per hour."""

ALB_HOUR = 0.0225
"""An Application Load Balancer per hour (LCUs, which depend on traffic, are not priced)."""
PUBLIC_IPV4_HOUR = 0.005
"""A public IPv4 address per hour (charged since February 2024): each NAT gateway's elastic IP, and
one per zone of an internet-facing load balancer."""
NAT_GATEWAY_HOUR = 0.045
"""A NAT gateway per hour (the GBs it processes, also $0.045 each, are not priced)."""

SECRET_MONTH = 0.40
"""A Secrets Manager secret per month (API calls are not priced)."""

RDS_POSTGRES_HOUR = {
    "db.t3.micro": 0.018,
    "db.t3.small": 0.036,
    "db.t3.medium": 0.072,
    "db.t3.large": 0.145,
    "db.t4g.micro": 0.016,
    "db.t4g.small": 0.032,
    "db.t4g.medium": 0.065,
    "db.t4g.large": 0.129,
    "db.m5.large": 0.178,
    "db.m5.xlarge": 0.356,
    "db.m5.2xlarge": 0.712,
    "db.m6g.large": 0.159,
    "db.m6g.xlarge": 0.318,
    "db.m6i.large": 0.178,
    "db.m6i.xlarge": 0.356,
    "db.m7g.large": 0.168,
    "db.m7g.xlarge": 0.337,
    "db.r5.large": 0.25,
    "db.r5.xlarge": 0.50,
    "db.r6g.large": 0.225,
    "db.r6g.xlarge": 0.45,
    "db.r6i.large": 0.25,
    "db.r6i.xlarge": 0.50,
}
"""RDS for PostgreSQL, Single-AZ, per instance-hour. Multi-AZ (one standby) costs twice as much."""
RDS_GP3_GB_MONTH = 0.115
"""RDS gp3 storage per GB-month, Single-AZ (twice as much in Multi-AZ)."""

ELASTICACHE_REDIS_HOUR = {
    "cache.t3.micro": 0.017,
    "cache.t3.small": 0.034,
    "cache.t3.medium": 0.068,
    "cache.t4g.micro": 0.016,
    "cache.t4g.small": 0.032,
    "cache.t4g.medium": 0.065,
    "cache.m5.large": 0.156,
    "cache.m5.xlarge": 0.311,
    "cache.m6g.large": 0.149,
    "cache.m6g.xlarge": 0.298,
    "cache.m7g.large": 0.158,
    "cache.r6g.large": 0.206,
    "cache.r6g.xlarge": 0.411,
    "cache.r7g.large": 0.219,
}
"""ElastiCache for Redis OSS, on-demand, per node-hour (every node of a replication group: the primary and
each replica)."""

USAGE_PRICED = {
    "aws.pubsub.topic": "SNS: per request",
    "aws.pubsub.subscription": "SQS: per request",
    "aws.pubsub.dead_letter": "SQS: per request",
    "aws.objects.bucket": "S3: per GB stored and per request",
    "aws.objects.cdn": "CloudFront: per GB served and per request",
    "aws.compute.repository": "ECR: per GB of images stored",
    "aws.compute.cluster": "ECS: no charge of its own (Container Insights: CloudWatch, per metric)",
    "aws.cron.schedule": "EventBridge Scheduler: per invocation, 14 million a month free",
    "aws.cron.schedule_group": "EventBridge Scheduler: no charge of its own",
    "aws.sql.database": "a migration task: Fargate, for the minutes it runs",
}
"""Node types with no fixed price: what they are charged for instead."""
