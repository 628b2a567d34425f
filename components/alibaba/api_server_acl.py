"""The managed cluster's API server answers only the networks the config allows: a whitelist on its CLB listener.

ACK (and ACS, ACK Edge: the same `cs.ManagedKubernetes`) puts the API server behind a private CLB; the public
endpoint is an EIP bound to that CLB, and access control is an ACL on the CLB's port-6443 listener, which applies
to the public and the internal endpoint alike ("Configure API server access control",
alibabacloud.com/help/en/ack/cluster-access-control). A whitelist must therefore also hold 100.104.0.0/16 (ACK's
control-plane components) and the VPC's CIDR (nodes and pods reach the API server over the VPC), and on ACK Edge the
edge nodes' egress (the config's cluster.apiCidrs carries those, with the deployers').

The ACL itself is a provider resource (`slb.Acl` with one `slb.AclEntryAttachment` per CIDR). Binding it to the
listener is not: ACK creates and owns that listener, and `cs.ManagedKubernetes` has no ACL argument, so a dynamic
resource does what the console's "Set access control" does, SetLoadBalancerTCPListenerAttribute (AclStatus on,
AclType white, AclId), through Alibaba's SDK (alibabacloud_slb20140515, with alibabacloud_credentials for the
credential chain). On destroy it turns the ACL off before the ACL goes. Not run against a live account: the
listener's protocol is read from DescribeLoadBalancerAttribute rather than assumed.

The provider class is built inside a function so dill pickles it by value: the dynamic provider's process imports
only the SDK, not this project. Its identity: components.alibaba.deployer_credentials.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Optional

import pulumi
import pulumi.dynamic as dynamic
import pulumi_alicloud as alicloud

from components.alibaba.deployer_credentials import credential_client

API_SERVER_PORT = 6443
# Required entries of a whitelist on the API server's listener (alibabacloud.com/help/en/ack/cluster-access-control,
# "Required CIDR blocks for whitelists"): ACK's managed control-plane components come from this range.
ACK_CONTROL_PLANE_CIDR = "100.104.0.0/16"
BINDING_TYPE = "apiServerListenerAcl"  # the input naming what the dynamic resource is (tests/cloud_rules reads it)


@dataclass(frozen=True)
class ApiServerAclArgs:
    region: str
    load_balancer_id: pulumi.Input[str]  # cs.ManagedKubernetes.slb_id: the API server's CLB
    allowed_cidrs: Sequence[str]  # cluster.apiCidrs
    vpc_cidr: str
    extra_cidrs: Sequence[str] = ()  # e.g. ACK Edge's Flannel pod CIDR
    # The alicloud provider's credentials as the stack configures them (alicloud:profile, alicloud:accessKey...),
    # so the binding acts as the same identity; empty: Alibaba's default credential chain.
    credentials: Mapping[str, pulumi.Input[str]] = field(default_factory=dict)
    tags: Mapping[str, str] = field(default_factory=dict)


def whitelist(args: ApiServerAclArgs) -> list[tuple[str, str]]:
    """(cidr, comment) of every entry: the config's networks, then what the cluster itself needs."""
    entries: list[tuple[str, str]] = [(c, "cluster.apiCidrs") for c in args.allowed_cidrs]
    entries += [(args.vpc_cidr, "cluster-vpc"), (ACK_CONTROL_PLANE_CIDR, "ack-control-plane")]
    entries += [(c, "cluster-pods") for c in args.extra_cidrs]
    seen: set[str] = set()
    unique = []
    for cidr, comment in entries:
        if cidr not in seen:  # the API refuses a duplicate entry
            seen.add(cidr)
            unique.append((cidr, comment))
    return unique


class ApiServerAcl(pulumi.ComponentResource):
    acl_id: pulumi.Output[str]

    def __init__(self, name: str, args: ApiServerAclArgs, opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__("llm:alibaba:ApiServerAcl", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        acl = alicloud.slb.Acl(
            f"{name}-acl", name=f"{name}-api-server", ip_version="ipv4", tags=dict(args.tags), opts=child
        )
        # Named by CIDR, not by position: adding or removing one CIDR touches only its entry (a positional name
        # would replace the entries after it, creating a duplicate of one still there, which the API refuses).
        entries = [
            alicloud.slb.AclEntryAttachment(
                f"{name}-entry-{cidr.replace('.', '-').replace('/', '-')}",
                acl_id=acl.id,
                entry=cidr,
                comment=comment,
                opts=child,
            )
            for cidr, comment in whitelist(args)
        ]
        ListenerAcl(
            f"{name}-listener",
            {
                BINDING_TYPE: True,
                "region": args.region,
                "loadBalancerId": args.load_balancer_id,
                "listenerPort": API_SERVER_PORT,
                "aclId": acl.id,
                "credentials": pulumi.Output.secret(dict(args.credentials)),
            },
            # The entries first: a whitelist bound while empty would shut out the nodes and Pulumi itself.
            pulumi.ResourceOptions(parent=self, depends_on=entries, additional_secret_outputs=["credentials"]),
        )
        self.acl_id = acl.id
        self.register_outputs({"acl_id": acl.id})


class ListenerAcl(dynamic.Resource):
    def __init__(self, name: str, props: dict[str, Any], opts: Optional[pulumi.ResourceOptions]):
        super().__init__(_provider(), name, props, opts)


def _provider(api_factory: Any = None) -> dynamic.ResourceProvider:
    """The binding's provider; `api_factory(props)` returns the SLB calls (tests pass a fake, else the SDK)."""

    class ListenerAclProvider(dynamic.ResourceProvider):
        def _api(self, props: dict[str, Any]) -> Any:
            return api_factory(props) if api_factory is not None else sdk_api(props)

        def create(self, props: dict[str, Any]) -> dynamic.CreateResult:
            bind(self._api(props), props, on=True)
            return dynamic.CreateResult(id_=f"{props['loadBalancerId']}:{props['listenerPort']}", outs=props)

        def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> dynamic.DiffResult:
            replaces = [k for k in ("region", "loadBalancerId", "listenerPort") if olds.get(k) != news.get(k)]
            changes = bool(replaces) or olds.get("aclId") != news.get("aclId")
            return dynamic.DiffResult(changes=changes, replaces=replaces, delete_before_replace=True)

        def update(self, _id: str, _olds: dict[str, Any], news: dict[str, Any]) -> dynamic.UpdateResult:
            bind(self._api(news), news, on=True)
            return dynamic.UpdateResult(outs=news)

        def delete(self, _id: str, props: dict[str, Any]) -> None:
            bind(self._api(props), props, on=False)

    def listener_protocol(attributes: dict[str, Any], port: int) -> Optional[str]:
        listeners = (attributes.get("ListenerPortsAndProtocol") or {}).get("ListenerPortAndProtocol") or []
        for listener in listeners:
            if int(listener.get("ListenerPort", -1)) == port:
                return str(listener.get("ListenerProtocol", "")).lower()
        return None

    def bind(api: Any, props: dict[str, Any], on: bool) -> None:
        balancer, port = props["loadBalancerId"], int(props["listenerPort"])
        attributes = api.describe(balancer)
        if attributes is None:  # the balancer is gone (the cluster was deleted): nothing to turn off
            if on:
                raise RuntimeError(f"the API server's load balancer {balancer} was not found")
            return
        protocol = listener_protocol(attributes, port)
        if protocol is None:
            if on:
                raise RuntimeError(
                    f"the API server's load balancer {balancer} has no listener on port {port}; the access "
                    "control list was not bound (docs/security.md shows the console steps)"
                )
            return
        if protocol not in ("tcp", "https"):
            raise RuntimeError(f"listener {balancer}:{port} is {protocol}, expected tcp (or https)")
        api.set_acl(protocol, balancer, port, props["aclId"] if on else None)

    def sdk_api(props: dict[str, Any]) -> Any:
        """The two SLB calls through Alibaba's SDK, with the stack's credentials or the default chain."""
        from alibabacloud_slb20140515 import models as slb
        from alibabacloud_slb20140515.client import Client
        from alibabacloud_tea_openapi.models import Config

        region = props["region"]
        client = Client(Config(credential=credential_client(props.get("credentials") or {}), region_id=region))

        class Api:
            def describe(self, balancer: str) -> Optional[dict[str, Any]]:
                try:
                    response = client.describe_load_balancer_attribute(
                        slb.DescribeLoadBalancerAttributeRequest(region_id=region, load_balancer_id=balancer)
                    )
                except Exception as error:  # the SDK raises its own error type with a `code`
                    if "NotFound" in str(getattr(error, "code", "")) or "InvalidLoadBalancerId" in str(error):
                        return None
                    raise
                return response.body.to_map()

            def set_acl(self, protocol: str, balancer: str, port: int, acl_id: Optional[str]) -> None:
                status, kind = ("on", "white") if acl_id else ("off", None)
                if protocol == "tcp":
                    client.set_load_balancer_tcplistener_attribute(
                        slb.SetLoadBalancerTCPListenerAttributeRequest(
                            region_id=region,
                            load_balancer_id=balancer,
                            listener_port=port,
                            acl_status=status,
                            acl_type=kind,  # type: ignore[arg-type]  # None: not sent
                            acl_id=acl_id,  # type: ignore[arg-type]
                        )
                    )
                else:
                    client.set_load_balancer_httpslistener_attribute(
                        slb.SetLoadBalancerHTTPSListenerAttributeRequest(
                            region_id=region,
                            load_balancer_id=balancer,
                            listener_port=port,
                            acl_status=status,
                            acl_type=kind,  # type: ignore[arg-type]
                            acl_id=acl_id,  # type: ignore[arg-type]
                        )
                    )

        return Api()

    helpers: tuple[Any, ...] = (credential_client, listener_protocol, sdk_api)
    for helper in helpers:  # reachable from the tests
        setattr(ListenerAclProvider, helper.__name__, staticmethod(helper))
    return ListenerAclProvider()
