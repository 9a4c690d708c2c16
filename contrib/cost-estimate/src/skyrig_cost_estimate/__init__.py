"""skyrig-cost-estimate: a monthly cost estimate of an environment's AWS nodes, shown with every plan.

A plugin (entry point group ``skyrig.plugins``): once installed it takes part in every plan, ``skyrig
plan`` and ``skyrig apply`` alike, through the ``skyrig_annotate_plan`` hook. For each node of the
``aws`` provider with a fixed price it notes the node's monthly cost (and how a change moves it), and for
the plan the total after the plan, what it is now, and where the prices come from. It never changes a
plan and calls no AWS API: prices come from the table it carries (:mod:`skyrig_cost_estimate.prices`,
us-east-1 on-demand list prices as published in 2024, not verified against AWS's price list).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from skyrig.hookspecs import Annotation
from skyrig.provider import hookimpl
from skyrig_cost_estimate import prices

__all__ = ["LABEL", "CostEstimate", "Estimate", "estimate", "plugin"]

LABEL = "monthly cost"
PROVIDER = "aws"


@dataclass(frozen=True)
class Estimate:
    """The fixed monthly cost of one node, in US dollars, and what it counts."""

    dollars: float | None
    """None when the table has no price for it (an instance class it does not list)."""
    detail: str


def estimate(node_type: str, properties: Mapping[str, Any]) -> Estimate | None:
    """The monthly cost of a node of ``node_type`` with ``properties`` (as the AWS provider expands them),
    or None for a node type with no fixed price (free, or priced by use only)."""
    p = properties
    month = prices.HOURS_PER_MONTH
    if node_type == "aws.compute.service":
        count, cpu, memory = p.get("desired_count"), p.get("cpu"), p.get("memory")
        if not all(isinstance(v, int | float) for v in (count, cpu, memory)):
            return Estimate(None, "tasks, CPU or memory unknown")
        vcpu, gb = cpu / 1024, memory / 1024
        hourly = count * (vcpu * prices.FARGATE_VCPU_HOUR + gb * prices.FARGATE_GB_HOUR)
        return Estimate(hourly * month, f"{count} Fargate task(s) of {vcpu:g} vCPU, {gb:g} GB")
    if node_type == "aws.compute.load_balancer":
        hourly = prices.ALB_HOUR + 2 * prices.PUBLIC_IPV4_HOUR
        return Estimate(
            hourly * month, "Application Load Balancer and its 2 public IPv4 addresses; LCUs not priced"
        )
    if node_type == "aws.network.nat_gateway":
        hourly = prices.NAT_GATEWAY_HOUR + prices.PUBLIC_IPV4_HOUR
        return Estimate(hourly * month, "NAT gateway and its elastic IP; GBs processed not priced")
    if node_type == "aws.sql.instance":
        return _rds(p)
    if node_type == "aws.cache.cluster":
        return _elasticache(p)
    if node_type in ("aws.secrets.secret", "aws.cron.signing_key"):
        return Estimate(prices.SECRET_MONTH, "a Secrets Manager secret; API calls not priced")
    return None


def _rds(p: Mapping[str, Any]) -> Estimate:
    instance_class, storage = p.get("instance_class"), p.get("storage_gb")
    hourly = prices.RDS_POSTGRES_HOUR.get(str(instance_class))
    if hourly is None or not isinstance(storage, int | float):
        return Estimate(None, f"no price for RDS instance class {instance_class!r}")
    copies = 2 if p.get("multi_az") else 1
    dollars = copies * (hourly * prices.HOURS_PER_MONTH + storage * prices.RDS_GP3_GB_MONTH)
    secret = prices.SECRET_MONTH if p.get("managed_password", True) else 0.0
    zones = "Multi-AZ" if copies == 2 else "Single-AZ"
    return Estimate(
        dollars + secret,
        f"RDS for PostgreSQL {instance_class}, {zones}, {storage:g} GB gp3, master password secret; "
        "backups beyond the free allowance not priced",
    )


def _elasticache(p: Mapping[str, Any]) -> Estimate:
    node_type, replicas = p.get("node_type"), p.get("replicas")
    hourly = prices.ELASTICACHE_REDIS_HOUR.get(str(node_type))
    if hourly is None or not isinstance(replicas, int):
        return Estimate(None, f"no price for ElastiCache node type {node_type!r}")
    nodes = 1 + replicas
    return Estimate(
        nodes * hourly * prices.HOURS_PER_MONTH + prices.SECRET_MONTH,
        f"ElastiCache, {nodes} node(s) of {node_type}, password secret",
    )


def _dollars(amount: float) -> str:
    return f"-${-amount:,.2f}" if amount < 0 else f"${amount:,.2f}"


class CostEstimate:
    """The plugin: ``skyrig_annotate_plan`` for plans with nodes of the AWS provider."""

    @hookimpl
    def skyrig_annotate_plan(self, plan: Any, environment: Any) -> list[Annotation] | None:
        changes = [c for c in getattr(plan, "changes", None) or [] if c.node.provider == PROVIDER]
        if not changes:
            return None
        notes: list[Annotation] = []
        before_total = after_total = 0.0
        priced = 0
        unpriced: list[str] = []
        for change in changes:
            after_properties = {**change.node.properties, **change.adopt}
            before_properties = {**after_properties, **{k: v[0] for k, v in change.fields.items()}}
            before = None if change.action == "create" else estimate(change.type, before_properties)
            after = None if change.action == "delete" else estimate(change.type, after_properties)
            shown = after or before
            if shown is None:
                continue  # no fixed price
            if shown.dollars is None or (before and before.dollars is None):
                unpriced.append(f"{change.id} ({shown.detail})")
                notes.append(Annotation(LABEL, f"not estimated: {shown.detail}", node=change.id))
                continue
            priced += 1
            was = before.dollars if before else 0.0
            will = after.dollars if after and after.dollars is not None else 0.0
            before_total += was
            after_total += will
            if change.action == "create":
                value = f"+{_dollars(will)}"
            elif change.action == "delete":
                value = _dollars(-was)
            elif round(was, 2) != round(will, 2):
                value = f"{_dollars(was)} → {_dollars(will)}"
            else:
                value = _dollars(will)
            notes.append(Annotation(LABEL, f"{value} ({shown.detail})", node=change.id))
        delta = after_total - before_total
        change_text = f"{'+' if delta >= 0 else '-'}${abs(delta):,.2f}"
        notes.append(
            Annotation(
                LABEL,
                f"{_dollars(after_total)} after this plan for {priced} priced AWS node(s) "
                f"(now {_dollars(before_total)}, {change_text}): an estimate",
            )
        )
        region = getattr((getattr(environment, "settings", None) or {}).get(PROVIDER), "region", None)
        where = (
            f"; this environment is in {region}, where prices differ"
            if region and region != prices.REGION
            else ""
        )
        notes.append(
            Annotation(
                f"{LABEL}: prices",
                f"{prices.SOURCE}{where}; use is not priced (requests, data processed or transferred, "
                "storage used, load balancer LCUs, logs and metrics)",
            )
        )
        if unpriced:
            notes.append(Annotation(f"{LABEL}: not estimated", "; ".join(unpriced)))
        return notes


plugin = CostEstimate()
