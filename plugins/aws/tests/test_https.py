"""HTTPS by default: with ``domain`` the provider requests an ACM certificate of ``*.DOMAIN``, validates it by
DNS (in the domain's Route 53 zone when the account has one; otherwise the apply prints the record), and
the load balancer serves HTTPS on 443 with port 80 redirecting to it; with ``certificate_arn`` it serves
that one; with neither it is plain HTTP, which the plan says (a warning in production). Read back from
moto's server, which issues a requested certificate a second after the request.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import boto3
import pytest

from skyrig.cli.testing import run_cli
from skyrig_aws.api import CALLS
from skyrig_aws.conformance import settings

SHOP = Path(__file__).resolve().parents[3] / "examples" / "shop"
DOMAIN = "shop.example.com"


@pytest.fixture
def shop(tmp_path: Path, moto: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]):
    """A copy of the shop example; ``configure(kind, **aws)`` writes its environment ``cloud`` (of type
    ``kind``) on moto with those aws settings; the returned function runs the CLI on it."""
    root = tmp_path / "shop"
    shutil.copytree(SHOP, root, ignore=shutil.ignore_patterns(".skyrig", "__pycache__"))
    monkeypatch.setenv("SKYRIG_RETRY_BASE_MS", "1")

    def configure(kind: str = "development", **aws: str) -> None:
        lines = ['app = "shop"', "[env.cloud]", f'type = "{kind}"', 'provider = "aws"', "[env.cloud.aws]"]
        lines += [f"{key} = {json.dumps(value)}" for key, value in {**settings(moto), **aws}.items()]
        (root / "skyrig.toml").write_text("\n".join(lines) + "\n")

    def skyrig(*args: str):
        return run_cli([*args, "--env", "cloud", "-C", str(root)], capsys)

    configure()
    return configure, skyrig


def aws(moto: str, service: str):
    return boto3.client(service, endpoint_url=moto, region_name="us-east-1")


def _listeners(moto: str) -> dict[int, dict]:
    elb = aws(moto, "elbv2")
    balancer = elb.describe_load_balancers(Names=["shop-cloud"])["LoadBalancers"][0]
    return {
        lsn["Port"]: lsn
        for lsn in elb.describe_listeners(LoadBalancerArn=balancer["LoadBalancerArn"])["Listeners"]
    }


def _hosts(moto: str, listener: dict) -> set[str]:
    rules = aws(moto, "elbv2").describe_rules(ListenerArn=listener["ListenerArn"])["Rules"]
    return {
        value
        for rule in rules
        for condition in rule.get("Conditions", [])
        for value in condition.get("HostHeaderConfig", {}).get("Values", [])
    }


def _web_ports(moto: str) -> set[int]:
    groups = aws(moto, "ec2").describe_security_groups(
        Filters=[{"Name": "tag:skyrig:node", "Values": ["network.sg/lb"]}]
    )["SecurityGroups"]
    return {permission["FromPort"] for permission in groups[0]["IpPermissions"]}


def _urls(skyrig) -> dict[str, str]:
    status = skyrig("status", "--json")
    assert status.code == 0, status.err
    nodes = json.loads(status.out)["nodes"]
    return {
        n["id"].partition("/")[2]: n["outputs"]["url"] for n in nodes if n["type"] == "aws.compute.service"
    }


def _certificate(moto: str) -> dict:
    acm = aws(moto, "acm")
    found = acm.list_certificates()["CertificateSummaryList"]
    assert [c["DomainName"] for c in found] == [f"*.{DOMAIN}"]
    return acm.describe_certificate(CertificateArn=found[0]["CertificateArn"])["Certificate"]


def test_a_domain_gets_a_certificate_validated_in_its_route53_zone_and_https(shop, moto: str) -> None:
    configure, skyrig = shop
    zone = aws(moto, "route53").create_hosted_zone(Name=DOMAIN, CallerReference="test")["HostedZone"]["Id"]
    configure(domain=DOMAIN)
    result = skyrig("apply", "--yes")
    assert result.code == 0, result.err

    certificate = _certificate(moto)
    assert certificate["Status"] == "ISSUED"
    record = certificate["DomainValidationOptions"][0]["ResourceRecord"]
    records = aws(moto, "route53").list_resource_record_sets(HostedZoneId=zone)["ResourceRecordSets"]
    assert {
        (r["Name"], r["Type"], r["ResourceRecords"][0]["Value"]) for r in records if r["Type"] == "CNAME"
    } == {(record["Name"], "CNAME", record["Value"])}
    tags = aws(moto, "acm").list_tags_for_certificate(CertificateArn=certificate["CertificateArn"])["Tags"]
    assert {"Key": "skyrig:node", "Value": "compute.certificate"} in tags

    listeners = _listeners(moto)
    assert set(listeners) == {80, 443}
    assert listeners[443]["Protocol"] == "HTTPS"
    assert listeners[443]["Certificates"][0]["CertificateArn"] == certificate["CertificateArn"]
    redirect = listeners[80]["DefaultActions"][0]
    assert listeners[80]["Protocol"] == "HTTP" and redirect["Type"] == "redirect"
    assert redirect["RedirectConfig"]["Protocol"] == "HTTPS" and redirect["RedirectConfig"]["Port"] == "443"
    assert _hosts(moto, listeners[443]) == {f"{s}.{DOMAIN}" for s in ("orders", "payments", "notifications")}
    assert _web_ports(moto) == {80, 443}
    assert _urls(skyrig)["orders"] == f"https://orders.{DOMAIN}"

    CALLS.clear()
    plan = skyrig("plan", "--json")
    assert plan.code == 0, plan.err
    changes = json.loads(plan.out)["changes"]
    assert "compute.certificate" in {c["node"] for c in changes}
    assert [c["node"] for c in changes if c["action"] != "noop"] == []
    assert CALLS["acm", "DescribeCertificate"] == 1, "a refresh reads the certificate once"


def test_without_a_zone_of_the_account_the_apply_prints_the_record_to_create(shop, moto: str) -> None:
    configure, skyrig = shop
    configure(domain=DOMAIN)
    result = skyrig("apply", "--yes")
    assert result.code == 0, result.err
    record = _certificate(moto)["DomainValidationOptions"][0]["ResourceRecord"]
    assert "create this record in the domain's DNS" in result.err
    assert f"CNAME {record['Name']} -> {record['Value']}" in result.err
    assert set(_listeners(moto)) == {80, 443}


def test_a_certificate_given_later_turns_the_listener_to_https_keeping_its_rules(shop, moto: str) -> None:
    configure, skyrig = shop
    assert skyrig("apply", "--yes").code == 0
    listeners = _listeners(moto)
    assert set(listeners) == {80} and listeners[80]["Protocol"] == "HTTP"
    hosts = _hosts(moto, listeners[80])
    assert len(hosts) == 3 and _web_ports(moto) == {80}

    acm = aws(moto, "acm")
    arn = acm.request_certificate(DomainName="*.shop-cloud.internal", ValidationMethod="DNS")[
        "CertificateArn"
    ]
    configure(certificate_arn=arn)
    result = skyrig("apply", "--yes")
    assert result.code == 0, result.err
    listeners = _listeners(moto)
    assert set(listeners) == {80, 443}
    assert listeners[443]["Certificates"][0]["CertificateArn"] == arn
    assert listeners[80]["DefaultActions"][0]["Type"] == "redirect"
    assert _hosts(moto, listeners[443]) == hosts, "the services' rules moved with their listener"
    assert _web_ports(moto) == {80, 443}
    assert not acm.list_certificates()["CertificateSummaryList"][1:], "none requested beside the one given"

    configure()  # and back to plain HTTP
    assert skyrig("apply", "--yes").code == 0
    listeners = _listeners(moto)
    assert set(listeners) == {80} and listeners[80]["Protocol"] == "HTTP"
    assert _hosts(moto, listeners[80]) == hosts


@pytest.mark.parametrize("kind", ["development", "production"])
def test_the_plan_says_how_plain_http_services_are_reached_and_warns_in_production(shop, kind: str) -> None:
    configure, skyrig = shop
    configure(kind)
    plan = skyrig("plan", "--json")
    assert plan.code == 0, plan.err
    notes = {note["label"]: note["value"] for note in json.loads(plan.out)["annotations"]}
    assert "http://DNS/" in notes["reached at"] and "orders.shop-cloud.internal" in notes["reached at"]
    assert ("warning" in notes) == (kind == "production")
    if kind == "production":
        assert "plain HTTP" in notes["warning"] and "[env.cloud.aws]" in notes["warning"]
    shown = skyrig("plan")
    assert "reached at" in shown.out and ("plain HTTP: requests" in shown.out) == (kind == "production")

    configure(kind, domain=DOMAIN)
    plan = skyrig("plan", "--json")
    labels = {note["label"] for note in json.loads(plan.out)["annotations"]}
    assert "warning" not in labels and "reached at" not in labels
    assert "certificate" in labels  # how ACM validates the one it requests


def test_a_new_domain_gets_a_new_certificate_and_destroy_deletes_it(shop, moto: str) -> None:
    configure, skyrig = shop
    configure(domain=DOMAIN)
    assert skyrig("apply", "--yes").code == 0
    old = _certificate(moto)["CertificateArn"]

    configure(domain="shop.example.org")
    plan = skyrig("plan", "--json")
    actions = {c["node"]: c["action"] for c in json.loads(plan.out)["changes"] if c["action"] != "noop"}
    assert actions["compute.certificate"] == "replace" and actions["compute.load_balancer"] == "update"
    result = skyrig("apply", "--yes")
    assert result.code == 0, result.err
    acm = aws(moto, "acm")
    (summary,) = acm.list_certificates()["CertificateSummaryList"]
    assert summary["DomainName"] == "*.shop.example.org" and summary["CertificateArn"] != old
    assert _listeners(moto)[443]["Certificates"][0]["CertificateArn"] == summary["CertificateArn"]
    assert _hosts(moto, _listeners(moto)[443]) == {
        f"{s}.shop.example.org" for s in ("orders", "payments", "notifications")
    }

    assert skyrig("destroy", "--yes").code == 0
    assert acm.list_certificates()["CertificateSummaryList"] == []
