"""Nothing reaches the engine but through the gateway: on no example stack does a Service, load balancer, security
group rule or firewall publish the engine's port (8001, loopback only), and the metrics port (8002, for Prometheus)
is open to the private network at most, never through a Service or from the internet."""

from __future__ import annotations

import functools

import pytest
from harness import EXAMPLE_STACKS, run_stack, unwrap

from core.gateway import ENGINE_LOOPBACK_PORT, METRICS_PORT

INTERNAL_PORTS = (ENGINE_LOOPBACK_PORT, METRICS_PORT)
SECURITY_GROUP_RULE = "alicloud:ecs/securityGroupRule:SecurityGroupRule"
GCP_FIREWALL = "gcp:compute/firewall:Firewall"


@functools.cache
def stack(name: str):
    return run_stack(name)


def _alicloud_range(port_range: str) -> range:
    low, high = (int(p) for p in port_range.split("/"))
    return range(1, 65536) if low == -1 else range(low, high + 1)


def _gcp_ports(ports) -> list[range]:
    if not ports:
        return [range(1, 65536)]
    out = []
    for text in ports:
        low, _, high = str(text).partition("-")
        out.append(range(int(low), int(high or low) + 1))
    return out


@pytest.mark.parametrize("name", EXAMPLE_STACKS)
def test_no_service_publishes_the_engine_or_metrics_port(name):
    run = stack(name)
    for service in (o for o in run.kubernetes_objects() if o["kind"] == "Service"):
        for port in service["spec"].get("ports", []):
            assert port["port"] not in INTERNAL_PORTS, service["metadata"]["name"]
            assert port.get("targetPort") not in (*INTERNAL_PORTS, "metrics"), service["metadata"]["name"]


@pytest.mark.parametrize("name", EXAMPLE_STACKS)
def test_no_security_group_rule_or_firewall_opens_the_engine_or_metrics_port(name):
    run = stack(name)
    for rule in run.of_type(SECURITY_GROUP_RULE):
        inputs = unwrap(rule.inputs)
        if inputs.get("type") != "ingress" or inputs.get("policy", "accept") == "drop":
            continue
        covered = _alicloud_range(inputs.get("portRange", "-1/-1"))
        assert ENGINE_LOOPBACK_PORT not in covered, (rule.name, inputs)
        if METRICS_PORT in covered:  # the VPC's Prometheus scrapes the ecs host
            assert _inside_only({"sourceRanges": [inputs.get("cidrIp", "0.0.0.0/0")]}), (rule.name, inputs)
    for firewall in run.of_type(GCP_FIREWALL):
        inputs = unwrap(firewall.inputs)
        if inputs.get("direction", "INGRESS") != "INGRESS":
            continue
        for allow in inputs.get("allows", []):
            for covered in _gcp_ports(allow.get("ports")):
                # Google's own health checkers and the cluster's nodes may reach pods; nothing from outside may.
                assert not [p for p in INTERNAL_PORTS if p in covered] or _inside_only(inputs), (firewall.name, inputs)


def _inside_only(inputs) -> bool:
    import ipaddress

    ranges = inputs.get("sourceRanges", [])
    return bool(ranges) and all(ipaddress.ip_network(r).is_private for r in ranges)


@pytest.mark.parametrize("name", [s for s in EXAMPLE_STACKS if s not in ("dev", "prod")])
def test_every_serving_pod_listens_through_its_gateway_only(name):
    run = stack(name)
    serving = [o for o in run.kubernetes_objects() if o["kind"] in ("Deployment", "LeaderWorkerSet")]
    serving = [o for o in serving if o["metadata"]["name"] == "llm"]
    assert serving, "the stack serves the model"
    for workload in serving:
        spec = workload["spec"]
        template = spec.get("template") or spec["leaderWorkerTemplate"]["leaderTemplate"]
        names = [c["name"] for c in template["spec"]["containers"]]
        assert names == ["engine", "gateway"], names
        engine = template["spec"]["containers"][0]
        argv = [*engine.get("command", []), *engine.get("args", [])]
        assert argv[argv.index("--host") + 1] == "127.0.0.1" and argv[argv.index("--port") + 1] == "8001"
