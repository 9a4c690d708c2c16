"""Compute: an ECS cluster (Fargate) and an ECR repository per environment; per service a task definition
and an ECS service in the private subnets, behind an Application Load Balancer in the public subnets that
routes ``SERVICE.DOMAIN`` to it (a target group and a host-header listener rule per service).

The balancer serves HTTPS on port 443 (port 80 redirects to it) with the ``certificate_arn`` setting, or
with an ACM certificate for ``*.DOMAIN`` that the ``compute.certificate`` node requests and validates by
DNS when only ``domain`` is set; with neither, it is plain HTTP on port 80.

The image is the ``image`` setting, which the core sets for each command (``skyrig.engine.images``):
``--image``, else the setting when configuration sets one, else the image the services run now (their
records in state), else none, and then the ECR repository's ``latest``. Each service's node carries it as
its ``image`` property, so the image deployed is part of what was applied and a plan without ``--image``
keeps it. Build it from the Dockerfile ``skyrig build docker`` writes.
"""

from __future__ import annotations

import contextlib
import hashlib
import sys
from collections.abc import Mapping
from typing import Any

from skyrig.hookspecs import Annotation
from skyrig.provider import RESOURCE_KINDS, Context, Node, NotFound, Observed, ProviderError, Scope, wait_for
from skyrig_aws import delivery, iam, network
from skyrig_aws.api import tag_dict, tag_list
from skyrig_aws.names import (
    COMPUTE_CLUSTER_ID,
    EXECUTION_ROLE,
    cluster_name,
    internal_domain,
    load_balancer_name,
    repository_name,
    role_id,
    target_group_name,
    task_family,
)
from skyrig_aws.nodes import AwsNodeType

REPOSITORY_ID = "compute.repository"
BALANCER_ID = "compute.load_balancer"
LISTENER_KEY = f"{BALANCER_ID}#listener"
"""Where the balancer's main listener (the services' rules go on it) is remembered in a command."""
CERTIFICATE_ID = "compute.certificate"
REQUESTED = "requested"
"""The balancer's ``certificate`` property when it serves the certificate ``compute.certificate`` requested
(whose ARN ACM makes up), rather than one named by ``certificate_arn``."""
SSL_POLICY = "ELBSecurityPolicy-TLS13-1-2-2021-06"


def image(context: Context) -> str:
    """The services' image: the ``image`` setting (as the core set it for this command), else the
    environment's ECR repository's ``latest``."""
    if context.settings.image:
        return context.settings.image
    client = context.client
    host = f"{client.account()}.dkr.ecr.{client.settings.region}.amazonaws.com"
    return f"{host}/{repository_name(context.app, context.environment.name)}:latest"


def network_configuration(context: Context) -> dict[str, Any]:
    return {
        "awsvpcConfiguration": {
            "subnets": network.ec2_ids(context, "subnet", network.private_subnets()),
            "securityGroups": [network.ec2_id(context, "security-group", network.SG_APP)],
            "assignPublicIp": "DISABLED",
        }
    }


def _ecs_tags(context: Context, node: Node) -> list[dict[str, str]]:
    return tag_list(context.tags(node), "key", "value")


class ClusterType(AwsNodeType):
    """The ECS cluster (Fargate, with Container Insights)."""

    type = "aws.compute.cluster"
    arn_types = ("ecs:cluster",)
    replace_on = frozenset({"name"})
    invariant = frozenset({"insights"})

    def inventory_id(self, arn: str) -> str:
        return arn.rpartition("/")[2]

    def exists(self, context: Context, provider_id: str) -> bool:
        found = context.client.ecs.describe_clusters(clusters=[provider_id])["clusters"]
        return any(c.get("status") == "ACTIVE" for c in found)

    def _observe(self, context: Context, node: Node, cluster: Mapping[str, Any]) -> Observed:
        settings = {s["name"]: s["value"] for s in cluster.get("settings", [])}
        properties = {
            "name": cluster["clusterName"],
            "insights": settings.get("containerInsights") == "enabled",
        }
        return self.observed(node, cluster["clusterName"], properties, {"arn": cluster["clusterArn"]})

    def _read_many(self, context: Context, nodes: list[tuple[Node, str]]) -> dict[str, Observed | None]:
        names = [pid for _, pid in nodes]
        found = {
            c["clusterName"]: c
            for c in context.client.ecs.describe_clusters(clusters=names, include=["SETTINGS"])["clusters"]
            if c.get("status") == "ACTIVE"
        }
        return {n.id: self._observe(context, n, found[pid]) if pid in found else None for n, pid in nodes}

    def _read(self, context: Context, node: Node, provider_id: str) -> Observed | None:
        return self._read_many(context, [(node, provider_id)])[node.id]

    def _find(self, context: Context, node: Node) -> Observed | None:
        return self._read(context, node, node.properties["name"])

    def _find_many(self, context: Context, nodes: list[Node]) -> dict[str, Observed | None]:
        return self._read_many(context, [(node, node.properties["name"]) for node in nodes])

    def _create(self, context: Context, node: Node) -> Observed:
        cluster = context.client.ecs.create_cluster(
            clusterName=node.properties["name"],
            capacityProviders=["FARGATE", "FARGATE_SPOT"],
            settings=[{"name": "containerInsights", "value": "enabled"}],
            tags=_ecs_tags(context, node),
        )["cluster"]
        return self._observe(context, node, cluster)

    def _update(self, context: Context, node: Node, provider_id: str, changes: Mapping[str, Any]) -> Observed:
        context.client.ecs.update_cluster_settings(
            cluster=provider_id, settings=[{"name": "containerInsights", "value": "enabled"}]
        )
        return self.read(context, node, provider_id)  # type: ignore[return-value]

    def _delete(self, context: Context, node: Node, provider_id: str) -> None:
        context.client.ecs.delete_cluster(cluster=provider_id)


class RepositoryType(AwsNodeType):
    """The ECR repository of the environment's images (scanned on push, encrypted)."""

    type = "aws.compute.repository"
    replace_on = frozenset({"name"})
    invariant = frozenset({"scan_on_push"})

    def _observe(self, context: Context, node: Node, repository: Mapping[str, Any]) -> Observed:
        scanning = repository.get("imageScanningConfiguration", {}).get("scanOnPush", False)
        properties = {"name": repository["repositoryName"], "scan_on_push": bool(scanning)}
        outputs = {"arn": repository["repositoryArn"], "uri": repository.get("repositoryUri")}
        return self.observed(node, repository["repositoryName"], properties, outputs)

    def _read_many(self, context: Context, nodes: list[tuple[Node, str]]) -> dict[str, Observed | None]:
        found: dict[str, Any] = {}
        for _, pid in nodes:
            try:
                for repository in context.client.ecr.describe_repositories(repositoryNames=[pid])[
                    "repositories"
                ]:
                    found[repository["repositoryName"]] = repository
            except ProviderError:
                continue
        return {n.id: self._observe(context, n, found[pid]) if pid in found else None for n, pid in nodes}

    def _read(self, context: Context, node: Node, provider_id: str) -> Observed | None:
        return self._read_many(context, [(node, provider_id)])[node.id]

    def _find(self, context: Context, node: Node) -> Observed | None:
        return self._read(context, node, node.properties["name"])

    def _create(self, context: Context, node: Node) -> Observed:
        repository = context.client.ecr.create_repository(
            repositoryName=node.properties["name"],
            imageScanningConfiguration={"scanOnPush": True},
            encryptionConfiguration={"encryptionType": "AES256"},
            tags=tag_list(context.tags(node)),
        )["repository"]
        return self._observe(context, node, repository)

    def _update(self, context: Context, node: Node, provider_id: str, changes: Mapping[str, Any]) -> Observed:
        context.client.ecr.put_image_scanning_configuration(
            repositoryName=provider_id, imageScanningConfiguration={"scanOnPush": True}
        )
        return self.read(context, node, provider_id)  # type: ignore[return-value]

    def _delete(self, context: Context, node: Node, provider_id: str) -> None:
        context.client.ecr.delete_repository(repositoryName=provider_id, force=True)


class CertificateType(AwsNodeType):
    """The ACM certificate of ``*.DOMAIN`` for the balancer, validated by DNS: the validation record goes in
    the domain's Route 53 hosted zone when this account has one; otherwise the apply prints it for the
    user to create and waits (``wait_timeout``) until ACM has issued the certificate."""

    type = "aws.compute.certificate"
    arn_types = ("acm:certificate",)
    replace_on = frozenset({"domain"})
    invariant = frozenset({"issued"})

    def inventory_id(self, arn: str) -> str:
        return arn

    def _describe(self, context: Context, arn: str) -> dict[str, Any]:
        return context.client.acm.describe_certificate(CertificateArn=arn)["Certificate"]

    def _observe(self, context: Context, node: Node, certificate: Mapping[str, Any]) -> Observed:
        properties = {"domain": certificate["DomainName"], "issued": certificate.get("Status") == "ISSUED"}
        outputs = {"arn": certificate["CertificateArn"], "status": certificate.get("Status")}
        record = _validation_record(certificate)
        if record:
            outputs["validation_record"] = record
        return self.observed(node, certificate["CertificateArn"], properties, outputs)

    def _read(self, context: Context, node: Node, provider_id: str) -> Observed | None:
        certificate = self._describe(context, provider_id)
        if certificate.get("Status") in ("INACTIVE", "REVOKED", "EXPIRED", "FAILED", "VALIDATION_TIMED_OUT"):
            return None  # of no use: a new one is requested
        if provider_id == context.recorded.get(CERTIFICATE_ID):  # the balancer asks for it: no describe again
            context.client.known.setdefault(f"{CERTIFICATE_ID}#{certificate['DomainName']}", provider_id)
        return self._observe(context, node, certificate)

    def _find(self, context: Context, node: Node) -> Observed | None:
        arn = requested_certificate(context, node.properties["domain"])
        return self._read(context, node, arn) if arn else None

    def _create(self, context: Context, node: Node) -> Observed:
        domain = node.properties["domain"]
        arn = context.client.acm.request_certificate(
            DomainName=domain,
            ValidationMethod="DNS",
            # ACM answers a token it saw within the hour with that request's certificate: a new domain's
            # request (a replace) needs its own token
            IdempotencyToken=hashlib.sha256(f"{context.token(node)}:{domain}".encode()).hexdigest()[:32],
            Tags=tag_list(context.tags(node)),
        )["CertificateArn"]
        context.client.known[f"{CERTIFICATE_ID}#{node.properties['domain']}"] = arn
        return self._validate(context, node, arn)

    def _update(self, context: Context, node: Node, provider_id: str, changes: Mapping[str, Any]) -> Observed:
        return self._validate(context, node, provider_id)  # not issued yet: its record, and the wait

    def _validate(self, context: Context, node: Node, arn: str) -> Observed:
        seen: dict[str, Any] = {}

        def has_record() -> tuple[bool, str]:  # ACM adds the record to the certificate within seconds
            seen["certificate"] = self._describe(context, arn)
            status = seen["certificate"].get("Status", "PENDING_VALIDATION")
            return status == "ISSUED" or _validation_record(seen["certificate"]) is not None, status

        wait_for(context, f"the DNS validation record of ACM certificate {arn}", has_record, timeout=300)
        record = _validation_record(seen["certificate"])
        if seen["certificate"].get("Status") != "ISSUED" and record is not None:
            where = _put_validation_record(context, node.properties["domain"], record)
            what = f"{record['Type']} {record['Name']} -> {record['Value']}"
            if where is None:
                sys.stderr.write(
                    f"    {node.id}: ACM validates {node.properties['domain']} by DNS; no Route 53 zone of "
                    f"this account holds it: create this record in the domain's DNS: {what}\n"
                )
                sys.stderr.flush()
            else:
                what += f" (in Route 53 zone {where})"

            def issued() -> tuple[bool, str]:
                seen["certificate"] = self._describe(context, arn)
                status = seen["certificate"].get("Status", "PENDING_VALIDATION")
                if status in ("FAILED", "VALIDATION_TIMED_OUT", "REVOKED"):
                    raise ProviderError(f"{node.id}: ACM certificate {arn} is {status}")
                return status == "ISSUED", status

            wait_for(
                context, f"ACM to issue {arn} for {node.properties['domain']}, DNS record {what}", issued
            )
        return self._observe(context, node, seen["certificate"])

    def _delete(self, context: Context, node: Node, provider_id: str) -> None:
        context.client.acm.delete_certificate(CertificateArn=provider_id)


def _validation_record(certificate: Mapping[str, Any]) -> dict[str, str] | None:
    for option in certificate.get("DomainValidationOptions") or []:
        record = option.get("ResourceRecord")
        if record:
            return {"Name": record["Name"], "Type": record["Type"], "Value": record["Value"]}
    return None


def _put_validation_record(context: Context, domain: str, record: Mapping[str, str]) -> str | None:
    """Write ``record`` in the public Route 53 hosted zone of this account that holds ``domain`` (the
    longest such zone); the zone's name, or None when the account has none."""
    name = domain.removeprefix("*.").rstrip(".") + "."
    zones = [
        zone
        for zone in context.client.route53.pages("list_hosted_zones", "HostedZones")
        if not zone.get("Config", {}).get("PrivateZone")
        and (name == zone["Name"] or name.endswith("." + zone["Name"]))
    ]
    if not zones:
        return None
    zone = max(zones, key=lambda z: len(z["Name"]))
    context.client.route53.change_resource_record_sets(
        HostedZoneId=zone["Id"],
        ChangeBatch={
            "Comment": f"ACM validation of {domain} (skyrig)",
            "Changes": [
                {
                    "Action": "UPSERT",
                    "ResourceRecordSet": {
                        "Name": record["Name"],
                        "Type": record["Type"],
                        "TTL": 300,
                        "ResourceRecords": [{"Value": record["Value"]}],
                    },
                }
            ],
        },
    )
    return zone["Name"].rstrip(".")


def requested_certificate(context: Context, domain: str) -> str | None:
    """The ARN of the certificate the environment's ``compute.certificate`` node requested for ``domain``
    (state's record when it is of ``domain``: a changed domain replaces the certificate; else found by
    domain and ownership tags), or None. Asked once per command."""
    key = f"{CERTIFICATE_ID}#{domain}"
    known = context.client.known
    if key not in known:
        acm = context.client.acm
        found = ""
        recorded = context.recorded.get(CERTIFICATE_ID)
        if recorded:
            try:
                if acm.describe_certificate(CertificateArn=recorded)["Certificate"]["DomainName"] == domain:
                    found = recorded
            except NotFound:
                pass
        if not found:
            statuses = ["PENDING_VALIDATION", "ISSUED"]
            for summary in acm.pages(
                "list_certificates", "CertificateSummaryList", CertificateStatuses=statuses
            ):
                if summary.get("DomainName") != domain:
                    continue
                tags = tag_dict(
                    acm.list_tags_for_certificate(CertificateArn=summary["CertificateArn"]).get("Tags")
                )
                if (
                    tags.get("skyrig:app") == context.app
                    and tags.get("skyrig:env") == context.environment.name
                ):
                    found = summary["CertificateArn"]
                    break
        known[key] = found
    return known[key] or None


def certificate_domain(context: Context) -> str:
    """The name the requested certificate is for: ``*.DOMAIN``, which every ``SERVICE.DOMAIN`` matches."""
    return f"*.{context.settings.domain}"


def main_listener(listeners: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The balancer's listener that routes to the services (HTTPS, else HTTP), not port 80's redirect."""
    routing = [listener for listener in listeners if not _redirects(listener)]
    return next((lsn for lsn in routing if lsn.get("Protocol") == "HTTPS"), routing[0] if routing else None)


def _redirects(listener: Mapping[str, Any]) -> bool:
    return any(action.get("Type") == "redirect" for action in listener.get("DefaultActions", []))


class BalancerType(AwsNodeType):
    """The Application Load Balancer of the services, with its listener: HTTPS on 443 with the configured
    or requested certificate and HTTP on 80 redirecting to it, or plain HTTP on 80; requests for no
    service's host get a 404."""

    type = "aws.compute.load_balancer"
    arn_types = ("elasticloadbalancing:loadbalancer",)
    replace_on = frozenset({"name", "scheme"})
    invariant = frozenset({"listener_port", "certificate", "redirect_http"})

    def inventory_id(self, arn: str) -> str:
        return arn

    def _observe(self, context: Context, node: Node, balancer: Mapping[str, Any]) -> Observed:
        listeners = context.client.elbv2.describe_listeners(LoadBalancerArn=balancer["LoadBalancerArn"])[
            "Listeners"
        ]
        main = main_listener(listeners)
        certificate = ((main or {}).get("Certificates") or [{}])[0].get("CertificateArn")
        requested = node.properties.get("certificate") == REQUESTED
        if (
            requested
            and certificate
            and certificate == requested_certificate(context, certificate_domain(context))
        ):
            certificate = REQUESTED
        properties = {
            "name": balancer["LoadBalancerName"],
            "scheme": balancer.get("Scheme"),
            "listener_port": main["Port"] if main else None,
            "certificate": certificate,
            "redirect_http": any(_redirects(lsn) and lsn.get("Port") == 80 for lsn in listeners),
        }
        outputs = {
            "arn": balancer["LoadBalancerArn"],
            "dns": balancer.get("DNSName"),
            "listener": main["ListenerArn"] if main else None,
        }
        if main:  # for the services of this command: their rules go on it
            context.client.remember(LISTENER_KEY, main["ListenerArn"])
        return self.observed(node, balancer["LoadBalancerArn"], properties, outputs)

    def _read(self, context: Context, node: Node, provider_id: str) -> Observed | None:
        found = context.client.elbv2.describe_load_balancers(LoadBalancerArns=[provider_id])["LoadBalancers"]
        return self._observe(context, node, found[0]) if found else None

    def _find(self, context: Context, node: Node) -> Observed | None:
        found = context.client.elbv2.describe_load_balancers(Names=[node.properties["name"]])["LoadBalancers"]
        return self._observe(context, node, found[0]) if found else None

    def _create(self, context: Context, node: Node) -> Observed:
        elb = context.client.elbv2
        balancer = elb.create_load_balancer(
            Name=node.properties["name"],
            Subnets=network.ec2_ids(context, "subnet", network.public_subnets()),
            SecurityGroups=[network.ec2_id(context, "security-group", network.SG_LB)],
            Scheme="internet-facing",
            Type="application",
            Tags=tag_list(context.tags(node)),
        )["LoadBalancers"][0]
        self._listeners(context, node, balancer["LoadBalancerArn"], [])
        return self._observe(context, node, balancer)

    def _certificate_arn(self, context: Context, node: Node) -> str | None:
        certificate = node.properties["certificate"]
        if certificate != REQUESTED:
            return certificate
        arn = requested_certificate(context, certificate_domain(context))
        if arn is None:
            raise ProviderError(f"{node.id}: the certificate {CERTIFICATE_ID} requested is not found")
        return arn

    def _listeners(self, context: Context, node: Node, arn: str, listeners: list[dict[str, Any]]) -> None:
        """Make the listeners as the node says, changing ``listeners`` (those there now) in place, since a
        listener's rules (one per service) go with it: the main one first, then port 80's redirect."""
        elb = context.client.elbv2
        p = node.properties
        redirect = next((lsn for lsn in listeners if _redirects(lsn)), None)
        if redirect is not None and not p["redirect_http"]:
            elb.delete_listener(ListenerArn=redirect["ListenerArn"])  # port 80 is the main one's now
        certificate = self._certificate_arn(context, node)
        arguments: dict[str, Any] = {
            "Port": p["listener_port"],
            "Protocol": "HTTPS" if certificate else "HTTP",
            "DefaultActions": [
                {
                    "Type": "fixed-response",
                    "FixedResponseConfig": {
                        "StatusCode": "404",
                        "ContentType": "text/plain",
                        "MessageBody": "no service",
                    },
                }
            ],
        }
        if certificate:
            arguments["Certificates"] = [{"CertificateArn": certificate}]
            arguments["SslPolicy"] = SSL_POLICY
        main = main_listener(listeners)
        if main is None:
            elb.create_listener(LoadBalancerArn=arn, Tags=tag_list(context.tags(node)), **arguments)
        else:
            elb.modify_listener(ListenerArn=main["ListenerArn"], **arguments)
        if p["redirect_http"] and redirect is None:
            redirect_to = {"Protocol": "HTTPS", "Port": str(p["listener_port"]), "StatusCode": "HTTP_301"}
            elb.create_listener(
                LoadBalancerArn=arn,
                Port=80,
                Protocol="HTTP",
                DefaultActions=[{"Type": "redirect", "RedirectConfig": redirect_to}],
                Tags=tag_list(context.tags(node)),
            )

    def _update(self, context: Context, node: Node, provider_id: str, changes: Mapping[str, Any]) -> Observed:
        listeners = context.client.elbv2.describe_listeners(LoadBalancerArn=provider_id)["Listeners"]
        self._listeners(context, node, provider_id, listeners)
        return self.read(context, node, provider_id)  # type: ignore[return-value]

    def _delete(self, context: Context, node: Node, provider_id: str) -> None:
        context.client.elbv2.delete_load_balancer(LoadBalancerArn=provider_id)


class ServiceType(AwsNodeType):
    """A service: its task definition, its ECS service, and its target group and listener rule."""

    type = "aws.compute.service"
    arn_types = ("ecs:service",)
    tunable = frozenset({"cpu", "memory", "desired_count"})
    replace_on = frozenset({"name"})
    invariant = frozenset({"public_ip"})

    def inventory_id(self, arn: str) -> str:
        return arn.rpartition("/")[2]

    def _cluster(self, context: Context) -> str:
        return cluster_name(context.app, context.environment.name)

    def exists(self, context: Context, provider_id: str) -> bool:
        try:
            found = context.client.ecs.describe_services(
                cluster=self._cluster(context), services=[provider_id]
            )
        except ProviderError:
            return False
        return any(s.get("status") == "ACTIVE" for s in found["services"])

    def _observe(
        self, context: Context, node: Node, service: Mapping[str, Any], task: Mapping[str, Any]
    ) -> Observed:
        configuration = service.get("networkConfiguration", {}).get("awsvpcConfiguration", {})
        container = (task.get("containerDefinitions") or [{}])[0]
        properties = {
            "name": service["serviceName"],
            "desired_count": service.get("desiredCount"),
            "cpu": int(task.get("cpu") or 0),
            "memory": int(task.get("memory") or 0),
            "image": container.get("image") if node.properties.get("image") else None,
            "public_ip": configuration.get("assignPublicIp", "DISABLED") == "ENABLED",
        }
        outputs = {
            "arn": service["serviceArn"],
            "task_definition": service.get("taskDefinition"),
            "url": node.properties["url"],
        }
        return self.observed(node, service["serviceName"], properties, outputs)

    def _task(self, context: Context, arn: str | None) -> dict[str, Any]:
        if not arn:
            return {}
        return context.client.ecs.describe_task_definition(taskDefinition=arn)["taskDefinition"]

    def _read_many(self, context: Context, nodes: list[tuple[Node, str]]) -> dict[str, Observed | None]:
        found: dict[str, Any] = {}
        names = [pid for _, pid in nodes]
        for start in range(0, len(names), 10):
            try:
                services = context.client.ecs.describe_services(
                    cluster=self._cluster(context), services=names[start : start + 10]
                )["services"]
            except ProviderError:
                continue
            found.update({s["serviceName"]: s for s in services if s.get("status") == "ACTIVE"})
        return {
            n.id: self._observe(context, n, found[pid], self._task(context, found[pid].get("taskDefinition")))
            if pid in found
            else None
            for n, pid in nodes
        }

    def _read(self, context: Context, node: Node, provider_id: str) -> Observed | None:
        return self._read_many(context, [(node, provider_id)])[node.id]

    def _find(self, context: Context, node: Node) -> Observed | None:
        # the ECS service is the node's main resource: until it exists the node is not found, and the
        # create adopts the runtime config parameter, target group and listener rule an earlier one made
        return self._read(context, node, node.properties["name"])

    def _find_many(self, context: Context, nodes: list[Node]) -> dict[str, Observed | None]:
        return self._read_many(context, [(node, node.properties["name"]) for node in nodes])

    def _register(self, context: Context, node: Node, cpu: int, memory: int) -> dict[str, Any]:
        """Register the service's task definition: what ECS answered (the revision, as registered)."""
        p = node.properties
        environment = {
            "SKYRIG_APP": context.app,
            "SKYRIG_ENVIRONMENT": context.environment.name,
            "SKYRIG_SERVICE": p["service"],
            "SKYRIG_SERVICE_APP": p["app"],
            "AWS_REGION": context.settings.region,
        }
        task = context.client.ecs.register_task_definition(
            family=p["family"],
            requiresCompatibilities=["FARGATE"],
            networkMode="awsvpc",
            cpu=str(cpu),
            memory=str(memory),
            taskRoleArn=iam.role_arn(context, p["role"]),
            executionRoleArn=iam.role_arn(context, EXECUTION_ROLE),
            containerDefinitions=[
                {
                    "name": p["service"],
                    "image": p["image"] or image(context),
                    "essential": True,
                    "portMappings": [{"containerPort": p["port"], "protocol": "tcp"}],
                    "command": [
                        "uvicorn",
                        "--factory",
                        "skyrig.runtime.host:create",
                        "--host",
                        "0.0.0.0",
                        "--port",
                        str(p["port"]),
                    ],
                    "environment": [{"name": k, "value": v} for k, v in sorted(environment.items())],
                    # ECS sets the service's runtime config from its parameter when a task starts
                    "secrets": [
                        {
                            "name": "SKYRIG_RUNTIME_CONFIG",
                            "valueFrom": delivery.parameter_arn(context, p["service"]),
                        }
                    ],
                }
            ],
            tags=_ecs_tags(context, node),
        )["taskDefinition"]
        return task  # type: ignore[no-any-return]

    def _target_group(self, context: Context, node: Node) -> str:
        """The service's target group and listener rule (``Host: SERVICE.DOMAIN``), made once: a group an
        earlier create made is adopted (AWS refuses its name again, or answers with it), with its rule made
        if that create stopped before it."""
        elb = context.client.elbv2
        p = node.properties
        try:
            group = elb.create_target_group(
                Name=p["target_group"],
                Protocol="HTTP",
                Port=p["port"],
                VpcId=network.ec2_id(context, "vpc", network.VPC_ID),
                TargetType="ip",
                HealthCheckPath="/",
                Matcher={"HttpCode": "200-499"},
                Tags=tag_list(context.tags(node)),
            )["TargetGroups"][0]["TargetGroupArn"]
        except ProviderError as error:
            if "DuplicateTargetGroupName" not in str(error):
                raise
            group = elb.describe_target_groups(Names=[p["target_group"]])["TargetGroups"][0]["TargetGroupArn"]
        listener = self._listener(context, node)
        try:
            self._rule(context, node, listener, group)
        except ProviderError as error:  # an earlier create made it (or another rule has the priority)
            if "PriorityInUse" not in str(error):
                raise
            rules = elb.describe_rules(ListenerArn=listener)["Rules"]
            if not any(a.get("TargetGroupArn") == group for r in rules for a in r.get("Actions", [])):
                raise
        return group

    def _listener(self, context: Context, node: Node) -> str:
        """The balancer's main listener: as its node found or made it in this command, else read."""
        known = context.client.known.get(LISTENER_KEY)
        if known:
            return known
        elb = context.client.elbv2
        balancer = elb.describe_load_balancers(Names=[node.properties["load_balancer"]])["LoadBalancers"][0]
        main = main_listener(elb.describe_listeners(LoadBalancerArn=balancer["LoadBalancerArn"])["Listeners"])
        if main is None:
            raise ProviderError(
                f"{node.id}: load balancer {node.properties['load_balancer']} has no listener"
            )
        context.client.remember(LISTENER_KEY, main["ListenerArn"])
        return main["ListenerArn"]

    def _rehost(self, context: Context, node: Node) -> None:
        elb = context.client.elbv2
        group = elb.describe_target_groups(Names=[node.properties["target_group"]])["TargetGroups"][0]
        for rule in elb.describe_rules(ListenerArn=self._listener(context, node))["Rules"]:
            if any(a.get("TargetGroupArn") == group["TargetGroupArn"] for a in rule.get("Actions", [])):
                condition = {
                    "Field": "host-header",
                    "HostHeaderConfig": {"Values": [node.properties["host"]]},
                }
                elb.modify_rule(RuleArn=rule["RuleArn"], Conditions=[condition])

    def _rule(self, context: Context, node: Node, listener: str, group: str) -> None:
        p = node.properties
        context.client.elbv2.create_rule(
            ListenerArn=listener,
            Priority=p["priority"],
            Conditions=[{"Field": "host-header", "HostHeaderConfig": {"Values": [p["host"]]}}],
            Actions=[{"Type": "forward", "TargetGroupArn": group}],
            Tags=tag_list(context.tags(node)),
        )

    def _create(self, context: Context, node: Node) -> Observed:
        p = node.properties
        delivery.make_parameter(context, p["service"], context.tags(node))
        task = self._register(context, node, p["cpu"], p["memory"])
        group = self._target_group(context, node)
        service = context.client.ecs.create_service(
            cluster=self._cluster(context),
            serviceName=p["name"],
            taskDefinition=task["taskDefinitionArn"],
            desiredCount=p["desired_count"],
            launchType="FARGATE",
            networkConfiguration=network_configuration(context),
            loadBalancers=[
                {"targetGroupArn": group, "containerName": p["service"], "containerPort": p["port"]}
            ],
            deploymentConfiguration={
                "minimumHealthyPercent": 100,
                "maximumPercent": 200,
                "deploymentCircuitBreaker": {"enable": True, "rollback": True},
            },
            propagateTags="SERVICE",
            enableECSManagedTags=True,
            tags=_ecs_tags(context, node),
        )["service"]
        return self._observe(context, node, service, task)  # the revision as registered: no read back

    def _update(self, context: Context, node: Node, provider_id: str, changes: Mapping[str, Any]) -> Observed:
        p = node.properties
        ecs = context.client.ecs
        current = self.read(context, node, provider_id)
        now = current.properties if current else {}
        arguments: dict[str, Any] = {}
        if {"cpu", "memory", "image"} & set(changes):
            cpu = changes.get("cpu", now.get("cpu") or p["cpu"])
            memory = changes.get("memory", now.get("memory") or p["memory"])
            arguments["taskDefinition"] = self._register(context, node, cpu, memory)["taskDefinitionArn"]
        if "desired_count" in changes:
            arguments["desiredCount"] = changes["desired_count"]
        if "public_ip" in changes:
            arguments["networkConfiguration"] = network_configuration(context)
        if "host" in changes:  # a new domain: the service's rule answers its new host name
            self._rehost(context, node)
        if arguments:
            ecs.update_service(cluster=self._cluster(context), service=provider_id, **arguments)
        return self.read(context, node, provider_id)  # type: ignore[return-value]

    def _delete(self, context: Context, node: Node, provider_id: str) -> None:
        ecs = context.client.ecs
        elb = context.client.elbv2
        p = node.properties
        try:
            ecs.update_service(cluster=self._cluster(context), service=provider_id, desiredCount=0)
            ecs.delete_service(cluster=self._cluster(context), service=provider_id, force=True)
        except ProviderError as error:
            if "NotFound" not in type(error).__name__ and "not found" not in str(error).lower():
                raise

        def drained() -> tuple[bool, str]:
            services = ecs.describe_services(cluster=self._cluster(context), services=[provider_id])[
                "services"
            ]
            status = services[0].get("status", "INACTIVE") if services else "INACTIVE"
            return status == "INACTIVE", status

        wait_for(context, f"ECS service {provider_id} to stop", drained)
        try:
            group = elb.describe_target_groups(Names=[p["target_group"]])["TargetGroups"][0]["TargetGroupArn"]
        except ProviderError:
            group = None
        if group is not None:
            for balancer in elb.describe_load_balancers(Names=[p["load_balancer"]]).get("LoadBalancers", []):
                for listener in elb.describe_listeners(LoadBalancerArn=balancer["LoadBalancerArn"])[
                    "Listeners"
                ]:
                    for rule in elb.describe_rules(ListenerArn=listener["ListenerArn"])["Rules"]:
                        if any(a.get("TargetGroupArn") == group for a in rule.get("Actions", [])):
                            elb.delete_rule(RuleArn=rule["RuleArn"])
            elb.delete_target_group(TargetGroupArn=group)
        arns = [
            *ecs.pages(
                "list_task_definitions", "taskDefinitionArns", familyPrefix=p["family"], status="ACTIVE"
            ),
            *ecs.pages(
                "list_task_definitions", "taskDefinitionArns", familyPrefix=p["family"], status="INACTIVE"
            ),
        ]
        arns = [a for a in arns if a.rpartition("/")[2].partition(":")[0] == p["family"]]
        for arn in arns:
            with contextlib.suppress(ProviderError):
                ecs.deregister_task_definition(taskDefinition=arn)
        for start in range(0, len(arns), 10):
            ecs.delete_task_definitions(taskDefinitions=arns[start : start + 10])
        delivery.delete_parameter(context, p["service"])

    def runtime_entry(self, node: Node, observed: Observed) -> dict[str, Any] | None:
        return {"type": self.type, "url": node.properties["url"]}


CLUSTER = ClusterType()
REPOSITORY = RepositoryType()
CERTIFICATE = CertificateType()
BALANCER = BalancerType()
SERVICE = ServiceType()
TYPES = (CLUSTER, REPOSITORY, CERTIFICATE, BALANCER, SERVICE)


def owned_by(tags: list[dict[str, str]], context: Context) -> bool:
    found = tag_dict(tags, "key", "value")
    return found.get("skyrig:app") == context.app and found.get("skyrig:env") == context.environment.name


def service_host(scope: Scope, service: str) -> str:
    """The host name the load balancer routes to ``service``: ``SERVICE.DOMAIN``."""
    return f"{service}.{scope.settings.domain or internal_domain(scope.app, scope.environment.name)}"


def service_url(scope: Scope, service: str) -> str:
    """``service``'s URL behind the load balancer: HTTPS with a certificate, given or, when aws runs the
    services, requested for ``domain`` (another compute provider, such as EKS, requests none)."""
    settings = scope.settings
    https = settings.certificate_arn or (settings.domain and "service" in scope.kinds)
    return f"{'https' if https else 'http'}://{service_host(scope, service)}"


def expand(scope: Scope) -> list[Node]:
    services = scope.of_kind("service")
    if not services:
        return []
    settings = scope.settings
    production = scope.environment.type == "production"
    app, env = scope.app, scope.environment.name
    balancer = load_balancer_name(app, env)
    nodes = [
        scope.node(COMPUTE_CLUSTER_ID, CLUSTER.type, {"name": cluster_name(app, env), "insights": True}),
        scope.node(REPOSITORY_ID, REPOSITORY.type, {"name": repository_name(app, env), "scan_on_push": True}),
    ]
    balancer_depends = [network.SG_LB, *network.public_subnets(), network.GATEWAY_ID]
    certificate = settings.certificate_arn
    if settings.domain and not certificate:  # HTTPS by default: a certificate of the domain's own
        properties = {"domain": f"*.{settings.domain}", "issued": True}
        nodes.append(scope.node(CERTIFICATE_ID, CERTIFICATE.type, properties))
        balancer_depends.append(CERTIFICATE_ID)
        certificate = REQUESTED
    listener = {
        "name": balancer,
        "scheme": "internet-facing",
        "listener_port": 443 if certificate else 80,
        "certificate": certificate,
        "redirect_http": bool(certificate),
    }
    nodes.append(scope.node(BALANCER_ID, BALANCER.type, listener, tuple(balancer_depends)))
    for service in sorted(services, key=lambda s: s.name):
        uses = {f"@{u.kind}/{u.resource}" for u in scope.model.uses_by(service.name) if u.kind in scope.kinds}
        owned = {  # its cron jobs too: their schedules come first, so its first config is whole
            f"@{r.kind}/{r.name}"
            for kind in RESOURCE_KINDS
            for r in scope.of_kind(kind)
            if r.service == service.name
        }
        depends = {
            COMPUTE_CLUSTER_ID,
            BALANCER_ID,
            REPOSITORY_ID,
            role_id(service.name),
            EXECUTION_ROLE,
            network.SG_APP,
            *network.private_subnets(),
            *[f"network.routes/private-{z}" for z in network.ZONES],
            *uses,
            *owned,
        }
        properties = {
            "name": service.name,
            "service": service.name,
            "app": service.app,
            "family": task_family(app, env, service.name),
            "image": settings.image,
            "cpu": settings.service_cpu,
            "memory": settings.service_memory,
            "desired_count": 2 if production else 1,
            "port": settings.service_port,
            "public_ip": False,
            "role": role_id(service.name),
            "target_group": target_group_name(app, env, service.name),
            "load_balancer": balancer,
            "host": service_host(scope, service.name),
            "priority": 1 + int(hashlib.sha256(service.name.encode()).hexdigest(), 16) % 49999,
            "url": service_url(scope, service.name),
        }
        nodes.append(
            scope.node(
                f"compute.service/{service.name}",
                SERVICE.type,
                properties,
                tuple(sorted(depends)),
                resource=service,
            )
        )
    return nodes


def https_notes(plan: Any, environment: Any) -> list[Annotation]:
    """The plan's notes on how the services are reached: over plain HTTP, where (the balancer's DNS name
    with the service's host name) and, in production, a warning; with a requested certificate, how ACM
    validates it."""
    if plan.destroy:
        return []
    changes = {c.id: c for c in plan.changes if c.node.provider == "aws" and c.action != "delete"}
    balancer = changes.get(BALANCER_ID)
    if balancer is None:
        return []
    section = f"[env.{environment.name}.aws]"
    certificate = changes.get(CERTIFICATE_ID)
    if balancer.node.properties.get("certificate"):
        if certificate is None or certificate.action == "noop":
            return []
        domain = certificate.node.properties["domain"]
        return [
            Annotation(
                "certificate",
                f"ACM validates {domain} by DNS: the apply writes the record in the domain's Route 53 zone "
                "when this account has one; otherwise it prints the record to create in the domain's DNS and "
                "waits until ACM has issued the certificate",
                node=None,
            )
        ]
    hosts = sorted(c.node.properties["host"] for c in changes.values() if c.node.type == SERVICE.type)
    example = hosts[0] if hosts else "SERVICE.DOMAIN"
    notes = [
        Annotation(
            "reached at",
            f"plain HTTP, port 80 of the load balancer ({BALANCER_ID}'s output dns in skyrig status), "
            f"by host name: {', '.join(hosts)} (curl -H 'Host: {example}' http://DNS/); point those names "
            f"at it, or set domain in {section} for HTTPS",
        )
    ]
    if environment.type == "production":
        notes.append(
            Annotation(
                "warning",
                f"the load balancer of {environment.name} is plain HTTP: requests, responses and any "
                f"credentials in them cross the internet unencrypted. Set domain in {section} (skyrig "
                "requests and validates an ACM certificate for *.DOMAIN and serves HTTPS) or certificate_arn",
            )
        )
    return notes
