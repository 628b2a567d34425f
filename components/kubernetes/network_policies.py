"""NetworkPolicies of the serving namespace: deny everything, then allow only the flows the deployment needs.

What is allowed (each a NetworkPolicy; tests/test_network_policies.py evaluates them over the pods' labels and ports):

- default-deny: every pod of the namespace, Ingress and Egress, no rule.
- dns: every pod may send to port 53 (UDP and TCP) anywhere: kube-dns, NodeLocal DNSCache (169.254.20.10) or the
  cloud's resolver, wherever the cluster puts it.
- api: the serving pods' gateway port (plain HTTP, GATEWAY_POD_PORT) from the private sources: pods of the cluster
  (namespaceSelector {}) and the platform's private ranges (the VPC; on Alibaba Cloud also 100.64.0.0/10, where CLB
  health checks and Layer-7 listeners come from); with a public endpoint, the API port the public load balancer
  targets (the gateway's TLS port, or the plain one when TLS ends at the load balancer) also from access.allowedCidrs.
- metrics: the gateway's metrics port from the platform's scraper (namespace and pod labels; see the stacks).
- import, benchmark: these pods may send to TCP 80 and 443 anywhere (the model hub, the PyPI index, the store's
  endpoint), and the benchmark to the serving pods' plain API port; nothing may connect to them.
- serving egress: only what the platform needs (e.g. gke: the GCS FUSE sidecar to Google APIs and the GKE metadata
  server; a download at start: the Hub on 443).
- group-<i> (a LeaderWorkerSet): the pods of group i may reach each other on every port, in both directions (Ray's
  GCS and raylet ports, its object-manager and worker ports, NCCL's bootstrap and socket ports are chosen at run
  time); no pod of another group or outside the set may. One policy per group index up to the most replicas the
  stack can run (an autoscaler's maximum included), since a NetworkPolicy cannot say "the same group as me".

The kubelet's probes need no rule: "traffic to and from the node where a Pod is running is always allowed"
(kubernetes.io/docs/concepts/services-networking/network-policies, "Pod isolation" caveats). The policies only take
effect where the network plugin enforces them; which ones do is in docs/security.md.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Optional

import pulumi
import pulumi_kubernetes as k8s

# LeaderWorkerSet labels on every pod of a group (sigs.k8s.io/lws, api/leaderworkerset/v1 labels: name, group-index).
LWS_NAME_LABEL = "leaderworkerset.sigs.k8s.io/name"
LWS_GROUP_INDEX_LABEL = "leaderworkerset.sigs.k8s.io/group-index"
LWS_WORKER_INDEX_LABEL = "leaderworkerset.sigs.k8s.io/worker-index"  # "0": the leader
COMPONENT_LABEL = "app.kubernetes.io/component"
SERVING_COMPONENT = "inference"
IMPORT_COMPONENT = "model-import"
BENCHMARK_COMPONENT = "benchmark"
# Alibaba Cloud CLB: "CLB uses the 100.64.0.0/10 CIDR block for health checks", reserved by Alibaba Cloud (CLB user
# guide "CLB health checks"; CLB FAQ "How do health checks work?"); Layer-7 (HTTPS) listeners forward from it too.
ALIBABA_LB_RANGE = "100.64.0.0/10"
ANYWHERE = "0.0.0.0/0"


@dataclass(frozen=True)
class Peer:
    """One `from`/`to` entry: an ipBlock, or pods by namespace and pod labels (None: any namespace / any pod)."""

    cidr: Optional[str] = None
    namespace_labels: Optional[Mapping[str, str]] = None  # {} : every namespace; None with pod_labels: this one
    pod_labels: Optional[Mapping[str, str]] = None
    except_cidrs: Sequence[str] = ()

    def manifest(self) -> dict:
        if self.cidr is not None:
            block: dict = {"cidr": self.cidr}
            if self.except_cidrs:
                block["except"] = list(self.except_cidrs)
            return {"ipBlock": block}
        peer: dict = {}
        if self.namespace_labels is not None:
            peer["namespaceSelector"] = {"matchLabels": dict(self.namespace_labels)} if self.namespace_labels else {}
        if self.pod_labels is not None:
            peer["podSelector"] = {"matchLabels": dict(self.pod_labels)} if self.pod_labels else {}
        return peer


@dataclass(frozen=True)
class Egress:
    """Destinations and TCP ports (empty: every port) a set of pods may send to."""

    to: Sequence[Peer]
    tcp_ports: Sequence[int] = ()


@dataclass(frozen=True)
class NetworkPoliciesArgs:
    namespace: pulumi.Input[str]
    app: str  # the serving pods' app label
    api_port: int  # the gateway's plain HTTP port in the pod
    metrics_port: int
    private_sources: Sequence[Peer]  # who may call the plain API port: the cluster's pods and the private ranges
    scrapers: Sequence[Peer]  # who may read the metrics port
    public_cidrs: Sequence[str] = ()  # access.allowedCidrs; empty: no public endpoint
    public_port: Optional[int] = None  # the port the public load balancer targets (the TLS port, or api_port)
    lws_groups: int = 0  # > 0: a LeaderWorkerSet; one policy per group index below this
    pods_per_group: int = 1  # a LeaderWorkerSet's size
    serving_egress: Sequence[Egress] = ()
    helper_egress_ports: Sequence[int] = (80, 443)
    helper_egress: Sequence[Egress] = ()  # more for the helpers (e.g. gke: the metadata server)
    # Pods that are not the program's own (acs.fluid: Fluid's cache master and workers in the namespace): reachable from
    # the namespace's pods, free to send anywhere; the serving pods may then reach every pod of the namespace.
    open_unlabelled_pods: bool = False
    # Whether an import Job runs in the namespace (kubernetes: components/kubernetes/model_import.py; the Alibaba
    # targets import on ECS workers, gke on Cloud Run) and a benchmark Job: no allowance for pods that do not exist.
    import_pods: bool = True
    benchmark_pods: bool = True
    labels: Mapping[str, str] = field(default_factory=dict)


def _port_list(ports: Sequence[int], protocol: str = "TCP") -> list[dict]:
    return [{"protocol": protocol, "port": p} for p in ports]


def _egress_rule(egress: Egress) -> dict:
    return {
        "to": [p.manifest() for p in egress.to],
        **({"ports": _port_list(egress.tcp_ports)} if egress.tcp_ports else {}),
    }


def policy_specs(args: NetworkPoliciesArgs) -> dict[str, dict]:
    """{name suffix: NetworkPolicy spec}: what the component creates, as plain manifests (tested by evaluation)."""
    serving = {"app": args.app, COMPONENT_LABEL: SERVING_COMPONENT}
    # The pods with the gateway: a Deployment's, or a LeaderWorkerSet's leaders (NotIn also matches pods without the
    # label, as a Deployment's are; LWS workers carry worker-index 1..size-1 and listen on no API port).
    gateway_pods: dict = {"matchLabels": serving}
    if args.pods_per_group > 1:
        workers = [str(i) for i in range(1, args.pods_per_group)]
        gateway_pods["matchExpressions"] = [{"key": LWS_WORKER_INDEX_LABEL, "operator": "NotIn", "values": workers}]
    internet = {"to": [{"ipBlock": {"cidr": ANYWHERE}}], "ports": _port_list(args.helper_egress_ports)}
    specs: dict[str, dict] = {
        "default-deny": {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]},
        "dns": {
            "podSelector": {},
            "policyTypes": ["Egress"],
            "egress": [{"ports": _port_list([53], "UDP") + _port_list([53], "TCP")}],
        },
        "api": {
            "podSelector": gateway_pods,
            "policyTypes": ["Ingress"],
            "ingress": [{"from": [p.manifest() for p in args.private_sources], "ports": _port_list([args.api_port])}],
        },
        "metrics": {
            "podSelector": gateway_pods,
            "policyTypes": ["Ingress"],
            "ingress": [{"from": [p.manifest() for p in args.scrapers], "ports": _port_list([args.metrics_port])}],
        },
        "import": {
            "podSelector": {"matchLabels": {COMPONENT_LABEL: IMPORT_COMPONENT}},
            "policyTypes": ["Egress"],
            "egress": [internet, *(_egress_rule(e) for e in args.helper_egress)],
        },
        "benchmark": {
            "podSelector": {"matchLabels": {COMPONENT_LABEL: BENCHMARK_COMPONENT}},
            "policyTypes": ["Egress"],
            "egress": [
                internet,
                {"to": [{"podSelector": gateway_pods}], "ports": _port_list([args.api_port])},
                *(_egress_rule(e) for e in args.helper_egress),
            ],
        },
    }
    if not args.import_pods:
        del specs["import"]
    if not args.benchmark_pods:
        del specs["benchmark"]
    if args.public_cidrs:
        if args.public_port is None:
            raise ValueError("public_cidrs need public_port")
        specs["api"]["ingress"].append(
            {
                "from": [Peer(cidr=c).manifest() for c in args.public_cidrs]
                + [p.manifest() for p in args.private_sources if p.cidr is not None],
                "ports": _port_list([args.public_port]),
            }
        )
    serving_egress = [*args.serving_egress, *([Egress(to=(Peer(pod_labels={}),))] if args.open_unlabelled_pods else [])]
    if serving_egress:
        specs["serving-egress"] = {
            "podSelector": {"matchLabels": serving},
            "policyTypes": ["Egress"],
            "egress": [_egress_rule(e) for e in serving_egress],
        }
    if args.open_unlabelled_pods:
        specs["unlabelled"] = {
            # NotIn also matches pods without the label; Fluid's own pods may carry other component values.
            "podSelector": {
                "matchExpressions": [
                    {
                        "key": COMPONENT_LABEL,
                        "operator": "NotIn",
                        "values": [SERVING_COMPONENT, IMPORT_COMPONENT, BENCHMARK_COMPONENT],
                    }
                ]
            },
            "policyTypes": ["Ingress", "Egress"],
            "ingress": [{"from": [{"podSelector": {}}]}],
            "egress": [{}],
        }
    for index in range(args.lws_groups):
        group = {LWS_NAME_LABEL: args.app, LWS_GROUP_INDEX_LABEL: str(index)}
        specs[f"group-{index}"] = {
            "podSelector": {"matchLabels": group},
            "policyTypes": ["Ingress", "Egress"],
            "ingress": [{"from": [{"podSelector": {"matchLabels": group}}]}],
            "egress": [{"to": [{"podSelector": {"matchLabels": group}}]}],
        }
    return specs


class NetworkPolicies(pulumi.ComponentResource):
    """The serving namespace's NetworkPolicies (module docstring)."""

    names: list[str]

    def __init__(self, name: str, args: NetworkPoliciesArgs, opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__("llm:kubernetes:NetworkPolicies", name, None, opts)
        labels = {"app.kubernetes.io/managed-by": "pulumi", **args.labels}
        self.names = []
        for suffix, spec in policy_specs(args).items():
            policy_name = f"{args.app}-{suffix}"
            k8s.networking.v1.NetworkPolicy(
                f"{name}-{suffix}",
                metadata={"name": policy_name, "namespace": args.namespace, "labels": labels},
                spec=spec,  # type: ignore[arg-type]  # a manifest (camelCase), as the provider accepts it
                opts=pulumi.ResourceOptions(parent=self),
            )
            self.names.append(policy_name)
        self.register_outputs({"names": self.names})
