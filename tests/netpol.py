"""A small evaluator of Kubernetes NetworkPolicy semantics, for tests: may this endpoint open this port on that one?

It follows kubernetes.io/docs/concepts/services-networking/network-policies and the networking/v1 API reference:

- A pod is isolated for ingress (egress) when some policy of its namespace selects it (podSelector) and lists
  Ingress (Egress) in policyTypes; policyTypes defaults to ["Ingress"], plus "Egress" when the policy has egress
  rules. A connection needs the source's egress and the destination's ingress to allow it; a side that is not an
  isolated pod allows everything. Policies add up: any rule of any selecting policy suffices (no deny rules).
- A rule with no (or an empty) from/to matches every peer; with no (or empty) ports, every port. A peer is an
  ipBlock (cidr minus except), or pods: podSelector alone means pods of the policy's own namespace,
  namespaceSelector alone every pod of the namespaces it selects, both together the selected pods of the
  selected namespaces. An empty selector ({}) selects everything.
- Ports: protocol (TCP when unset), a number or a container port name (resolved on the destination pod), and
  endPort for ranges.
- ipBlock here matches endpoints outside the pod network only (nodes, load balancers, the internet): the API says
  ipBlocks are meant for cluster-external addresses and plugins differ on pod addresses (Cilium, which GKE Dataplane
  V2 runs, does not match pods by CIDR), so traffic from pods must be allowed by selectors to pass this evaluator.
- Traffic to or from the pod's own node (the kubelet's probes) is always allowed; it is not modelled here.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Optional, Union


@dataclass(frozen=True)
class Pod:
    name: str
    namespace: str
    labels: Mapping[str, str]
    ports: Mapping[str, int] = field(default_factory=dict)  # container port name -> number
    ip: str = "10.200.0.1"


@dataclass(frozen=True)
class External:
    """An address outside the pod network: a client, a node, a load balancer, a cloud service."""

    name: str
    ip: str


Endpoint = Union[Pod, External]


@dataclass(frozen=True)
class Policy:
    namespace: str
    name: str
    spec: Mapping


def selects(selector: Optional[Mapping], labels: Mapping[str, str]) -> bool:
    """A LabelSelector: matchLabels and matchExpressions (In, NotIn, Exists, DoesNotExist), all ANDed."""
    if selector is None:
        return False
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    for expression in selector.get("matchExpressions") or []:
        key, operator, values = expression["key"], expression["operator"], expression.get("values") or []
        present = key in labels
        if operator == "In" and not (present and labels[key] in values):
            return False
        if operator == "NotIn" and present and labels[key] in values:
            return False
        if operator == "Exists" and not present:
            return False
        if operator == "DoesNotExist" and present:
            return False
        if operator not in ("In", "NotIn", "Exists", "DoesNotExist"):
            raise ValueError(f"unknown selector operator {operator}")
    return True


def policy_types(spec: Mapping) -> list[str]:
    if spec.get("policyTypes"):
        return list(spec["policyTypes"])
    return ["Ingress", *(["Egress"] if spec.get("egress") else [])]


class Cluster:
    def __init__(self, namespaces: Mapping[str, Mapping[str, str]], policies: Sequence[Policy]):
        # Every namespace carries kubernetes.io/metadata.name (Kubernetes >= 1.22 sets it).
        self.namespaces = {n: {"kubernetes.io/metadata.name": n, **labels} for n, labels in namespaces.items()}
        self.policies = list(policies)
        for policy in self.policies:
            if policy.namespace not in self.namespaces:
                raise ValueError(f"policy {policy.name} in unknown namespace {policy.namespace}")

    def _peer_matches(self, peer: Mapping, policy: Policy, other: Endpoint) -> bool:
        if "ipBlock" in peer:
            if isinstance(other, Pod):
                return False
            address = ipaddress.ip_address(other.ip)
            block = peer["ipBlock"]
            if address not in ipaddress.ip_network(block["cidr"]):
                return False
            return not any(address in ipaddress.ip_network(e) for e in block.get("except") or [])
        if not isinstance(other, Pod):
            return False
        namespace_selector = peer.get("namespaceSelector")
        pod_selector = peer.get("podSelector")
        if namespace_selector is None and pod_selector is None:
            raise ValueError(f"empty peer in {policy.name}")
        if namespace_selector is None:
            in_namespace = other.namespace == policy.namespace
        else:
            in_namespace = selects(namespace_selector, self.namespaces[other.namespace])
        return in_namespace and (pod_selector is None or selects(pod_selector, other.labels))

    @staticmethod
    def _port_matches(ports: Optional[Sequence[Mapping]], destination: Endpoint, port: int, protocol: str) -> bool:
        if not ports:
            return True
        for entry in ports:
            if entry.get("protocol", "TCP") != protocol:
                continue
            wanted = entry.get("port")
            if wanted is None:
                return True
            if isinstance(wanted, str):
                if isinstance(destination, Pod) and destination.ports.get(wanted) == port:
                    return True
                continue
            if wanted <= port <= entry.get("endPort", wanted):
                return True
        return False

    def _side_allows(
        self, pod: Pod, direction: str, other: Endpoint, destination: Endpoint, port: int, protocol: str
    ) -> bool:
        selecting = [
            p
            for p in self.policies
            if p.namespace == pod.namespace
            and selects(p.spec.get("podSelector", {}), pod.labels)
            and direction in policy_types(p.spec)
        ]
        if not selecting:
            return True
        key, peers_key = ("ingress", "from") if direction == "Ingress" else ("egress", "to")
        for policy in selecting:
            for rule in policy.spec.get(key) or []:
                peers = rule.get(peers_key) or []
                if peers and not any(self._peer_matches(peer, policy, other) for peer in peers):
                    continue
                if self._port_matches(rule.get("ports"), destination, port, protocol):
                    return True
        return False

    def allowed(self, source: Endpoint, destination: Endpoint, port: int, protocol: str = "TCP") -> bool:
        """May `source` open `port` on `destination`?"""
        if isinstance(source, Pod) and not self._side_allows(
            source, "Egress", destination, destination, port, protocol
        ):
            return False
        if isinstance(destination, Pod):
            return self._side_allows(destination, "Ingress", source, destination, port, protocol)
        return True
