"""The Alibaba cluster targets' API server answers only cluster.apiCidrs, the VPC and ACK's control plane."""

from __future__ import annotations

import base64

import cloud_rules
import pytest
from harness import is_secret, run_program, run_provider_isolated, run_stack, settings_for, unwrap

from components.alibaba import api_server_acl as acl_module
from core.config.problems import ConfigError

BINDING = "apiServerListenerAcl"


def bindings(run):
    return [r for r in run.resources if unwrap(r.inputs).get(BINDING) is True]


def entries(run):
    return [unwrap(r.inputs)["entry"] for r in run.of_type("alicloud:slb/aclEntryAttachment:AclEntryAttachment")]


# --------------------------------------------------------------------------------------- what the stacks create


@pytest.mark.parametrize("stack", ["acs", "ack", "ack-edge"])
def test_the_public_api_server_is_whitelisted_to_the_config_the_vpc_and_the_control_plane(stack):
    run = run_stack(stack)
    assert {"203.0.113.0/24", "192.168.0.0/16", "100.104.0.0/16"} <= set(entries(run))
    (binding,) = bindings(run)
    inputs = unwrap(binding.inputs)
    cluster = run.one("alicloud:cs/managedKubernetes:ManagedKubernetes")
    assert inputs["loadBalancerId"] == f"lb-{cluster.name}" and inputs["listenerPort"] == 6443
    assert inputs["aclId"] == f"{run.one('alicloud:slb/acl:Acl').name}-id" and inputs["region"] == "cn-hangzhou"
    # The Kubernetes provider (so every in-cluster object) waits for the whitelist.
    (k8s_provider,) = [r for r in run.of_type("pulumi:providers:kubernetes") if r.name.endswith("-k8s")]
    assert binding.urn in k8s_provider.dependencies
    assert is_secret(binding.inputs["credentials"])


def test_ack_edge_also_lets_in_its_flannel_pods():
    pods = settings_for("ack-edge").edge.pod_cidr
    assert sorted(entries(run_stack("ack-edge"))) == sorted(
        ["203.0.113.0/24", "192.168.0.0/16", "100.104.0.0/16", pods]
    )


def test_the_stack_credentials_reach_the_binding_as_a_secret():
    run = run_stack("acs", {"alicloud:accessKey": "LTAI-STACK-KEY", "alicloud:secretKey": "STACK-SECRET"})
    (binding,) = bindings(run)
    assert is_secret(binding.inputs["credentials"])
    assert unwrap(binding.inputs["credentials"]) == {"accessKey": "LTAI-STACK-KEY", "secretKey": "STACK-SECRET"}


def test_a_private_api_server_needs_no_cidrs_and_gets_no_whitelist():
    run = run_stack("acs", {"cluster.publicEndpoint": False, "cluster.apiCidrs": []})
    assert not bindings(run) and not run.of_type("alicloud:slb/acl:Acl")
    assert unwrap(run.one("alicloud:cs/managedKubernetes:ManagedKubernetes").inputs)["slbInternetEnabled"] is False


def test_a_private_api_server_with_cidrs_is_whitelisted_inside_the_vpc_too():
    run = run_stack("ack", {"cluster.publicEndpoint": False, "cluster.apiCidrs": ["10.8.0.0/16"]})
    assert sorted(entries(run)) == ["10.8.0.0/16", "100.104.0.0/16", "192.168.0.0/16"] and len(bindings(run)) == 1


def test_opening_the_api_server_to_any_address_is_explicit_and_warned():
    run = run_stack("ack", {"cluster.apiCidrs": ["0.0.0.0/0"]})
    assert not bindings(run)
    assert any("0.0.0.0/0" in message and "any address" in message for message, _ in run.warnings)


def test_a_public_api_server_without_cidrs_is_refused_before_any_resource():
    with pytest.raises(ConfigError) as error:
        run_stack("acs", {"cluster.apiCidrs": []})
    (problem,) = [p for p in error.value.problems if p.key.endswith("cluster.apiCidrs")]
    assert "where pulumi, kubectl and CI run" in problem.allowed
    assert "cluster.apiCidrs[0]" in problem.fix and "cluster.publicEndpoint' false" in problem.fix


def test_on_ack_edge_the_error_names_the_edge_nodes_egress():
    with pytest.raises(ConfigError) as error:
        run_stack("ack-edge", {"cluster.apiCidrs": []})
    (problem,) = [p for p in error.value.problems if p.key.endswith("cluster.apiCidrs")]
    assert "edge nodes' egress" in problem.allowed


# ------------------------------------------------------------------------------------------- the cloud's rules


def _program(entries_, bind_after_entries=True, public=True):
    def body():
        import pulumi
        import pulumi_alicloud as alicloud

        alicloud.vpc.Network("vpc", cidr_block="192.168.0.0/16")
        cluster = alicloud.cs.ManagedKubernetes("c", vswitch_ids=["vsw-1"], slb_internet_enabled=public)
        acl = alicloud.slb.Acl("acl", name="api")
        made = [alicloud.slb.AclEntryAttachment(f"e{i}", acl_id=acl.id, entry=c) for i, c in enumerate(entries_)]
        props = {BINDING: True, "region": "cn-hangzhou", "loadBalancerId": cluster.slb_id, "listenerPort": 6443}
        acl_module.ListenerAcl(
            "bind",
            {**props, "aclId": acl.id, "credentials": {}},
            pulumi.ResourceOptions(depends_on=[cluster, *(made if bind_after_entries else [])]),
        )

    return body


def test_the_cloud_rules_accept_a_complete_whitelist_bound_after_its_entries():
    run_program(_program(["203.0.113.0/24", "192.168.0.0/16", "100.104.0.0/16"]))


@pytest.mark.parametrize(
    "entries_,after,message",
    [
        (["203.0.113.0/24", "192.168.0.0/16"], True, "shuts out ACK's control plane"),
        (["203.0.113.0/24", "100.104.0.0/16"], True, "shuts out the cluster's VPC"),
        (["192.168.0.0/16", "100.104.0.0/16", "192.168.0.0/16"], True, "duplicate entries"),
        (["192.168.0.0/16", "100.104.0.0/16"], False, "bound before its entries"),
    ],
)
def test_the_cloud_rules_refuse_a_whitelist_that_would_break_the_cluster(entries_, after, message):
    with pytest.raises(cloud_rules.CloudRefusal, match=message):
        run_program(_program(entries_, after))


def test_the_cloud_rules_refuse_a_public_api_server_without_a_whitelist():
    def body():
        import pulumi_alicloud as alicloud

        alicloud.cs.ManagedKubernetes("c", vswitch_ids=["vsw-1"])

    with pytest.raises(cloud_rules.CloudRefusal, match="public endpoint and no whitelist"):
        run_program(body)


# ------------------------------------------------------------------------------------- the binding's provider


class FakeSlb:
    def __init__(self, listeners=None):
        self.listeners = listeners
        self.calls = []

    def describe(self, balancer):
        self.calls.append(("describe", balancer))
        if self.listeners is None:
            return None
        ports = [{"ListenerPort": p, "ListenerProtocol": proto} for p, proto in self.listeners]
        return {"LoadBalancerId": balancer, "ListenerPortsAndProtocol": {"ListenerPortAndProtocol": ports}}

    def set_acl(self, protocol, balancer, port, acl_id):
        self.calls.append(("set", protocol, balancer, port, acl_id))


PROPS = {BINDING: True, "region": "cn-hangzhou", "loadBalancerId": "lb-1", "listenerPort": 6443, "aclId": "acl-1"}


def test_create_turns_the_whitelist_on_for_the_tcp_listener_and_delete_turns_it_off():
    fake = FakeSlb([(6443, "tcp"), (443, "https")])
    provider = acl_module._provider(lambda props: fake)
    assert provider.create(dict(PROPS)).id == "lb-1:6443"
    provider.delete("lb-1:6443", dict(PROPS))
    assert fake.calls == [
        ("describe", "lb-1"),
        ("set", "tcp", "lb-1", 6443, "acl-1"),
        ("describe", "lb-1"),
        ("set", "tcp", "lb-1", 6443, None),
    ]


def test_create_fails_clearly_when_the_listener_or_the_balancer_is_missing():
    with pytest.raises(RuntimeError, match="no listener on port 6443"):
        acl_module._provider(lambda props: FakeSlb([(443, "tcp")])).create(dict(PROPS))
    with pytest.raises(RuntimeError, match="was not found"):
        acl_module._provider(lambda props: FakeSlb(None)).create(dict(PROPS))
    with pytest.raises(RuntimeError, match="is udp"):
        acl_module._provider(lambda props: FakeSlb([(6443, "udp")])).create(dict(PROPS))


def test_delete_after_the_cluster_is_gone_does_nothing():
    fake = FakeSlb(None)
    acl_module._provider(lambda props: fake).delete("lb-1:6443", dict(PROPS))
    assert fake.calls == [("describe", "lb-1")]


def test_a_new_acl_updates_in_place_and_a_new_balancer_replaces():
    provider = acl_module._provider(lambda props: FakeSlb([(6443, "tcp")]))
    same = provider.diff("id", dict(PROPS), dict(PROPS))
    assert not same.changes
    acl = provider.diff("id", dict(PROPS), {**PROPS, "aclId": "acl-2"})
    assert acl.changes and not acl.replaces
    balancer = provider.diff("id", dict(PROPS), {**PROPS, "loadBalancerId": "lb-2"})
    assert balancer.replaces == ["loadBalancerId"] and balancer.delete_before_replace


def test_the_sdk_requests_carry_the_acl_fields(monkeypatch):
    import alibabacloud_slb20140515.client as slb_client

    sent = []

    class Client:
        def __init__(self, config):
            sent.append(("config", config.region_id))

        def set_load_balancer_tcplistener_attribute(self, request):
            sent.append(request.to_map())

    monkeypatch.setattr(slb_client, "Client", Client)
    monkeypatch.setenv("ALICLOUD_ACCESS_KEY", "AK")
    monkeypatch.setenv("ALICLOUD_SECRET_KEY", "SK")
    api = acl_module._provider().sdk_api({**PROPS, "credentials": {}})
    api.set_acl("tcp", "lb-1", 6443, "acl-1")
    api.set_acl("tcp", "lb-1", 6443, None)
    assert sent[0] == ("config", "cn-hangzhou")
    assert sent[1] == {
        "AclId": "acl-1",
        "AclStatus": "on",
        "AclType": "white",
        "ListenerPort": 6443,
        "LoadBalancerId": "lb-1",
        "RegionId": "cn-hangzhou",
    }
    assert sent[2] == {"AclStatus": "off", "ListenerPort": 6443, "LoadBalancerId": "lb-1", "RegionId": "cn-hangzhou"}


def test_the_provider_is_pickled_by_value_so_its_process_needs_only_the_sdk(tmp_path):
    done, blob = run_provider_isolated(
        acl_module._provider(),
        "print(type(p).__name__, p.listener_protocol({'ListenerPortsAndProtocol': {'ListenerPortAndProtocol': "
        "[{'ListenerPort': 6443, 'ListenerProtocol': 'TCP'}]}}, 6443))\n",
        tmp_path,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["ListenerAclProvider", "tcp"]
    assert base64.b64decode(blob)  # a real blob


def test_adding_a_cidr_leaves_the_other_entries_alone():
    names = lambda run: {
        r.name: unwrap(r.inputs)["entry"] for r in run.of_type("alicloud:slb/aclEntryAttachment:AclEntryAttachment")
    }
    one = names(run_stack("ack", {"cluster.apiCidrs": ["198.51.100.0/24"]}))
    two = names(run_stack("ack", {"cluster.apiCidrs": ["203.0.113.0/24", "198.51.100.0/24"]}))
    assert one.items() <= two.items() and len(two) == len(one) + 1
