"""RDMA (RoCE) networking for A4 nodes: the extra VPCs, their in-cluster objects and the NCCL gIB plugin.

An A4 node has one gVNIC for host traffic beyond the primary NIC and 8 RoCE NICs (one per GPU) for
GPU-to-GPU traffic between nodes (GoogleCloudPlatform/cluster-toolkit examples/gke-a4). Without the
networks, their GKENetworkParamSet/Network objects and the gIB NCCL plugin on the node, NCCL over
several nodes fails ("gIB network not found", AI-Hypercomputer/gpu-recipes#5). One node (tensor
parallel 8 over NVLink) needs none of this, which is why it is optional.

`RdmaNetworks` (GCP side) comes before the cluster and node pool, which attach its subnets;
`RdmaClusterObjects` (Kubernetes side) comes after, through the cluster's provider.
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Optional

import pulumi
import pulumi_gcp as gcp
import pulumi_kubernetes as k8s

from components.kubernetes.objects import manifest
from components.kubernetes.serving_workload import HostMount
from core import versions
from core.catalog import GKE_MACHINES

RDMA_MTU = 8896  # the RoCE network profile's MTU (cluster-toolkit examples/gke-a4)
A4 = GKE_MACHINES["a4-highgpu-8g"]  # the machine these networks are built for (core.catalog: rdma)
RDMA_SUBNETS = A4.gpu_count  # one RoCE NIC per GPU
GVNIC_CIDR = "192.168.64.0/18"  # address plan of cluster-toolkit examples/gke-a4
RDMA_CIDR = "192.168.128.0/18"  # split into RDMA_SUBNETS equal subnets
GVNIC_NETWORK_OBJECT = "gvnic-1"
NETWORKING_API = "networking.gke.io/v1"
# The gIB installer as Google's container-engine-accelerators manifest ships it (core.versions). Not pulled or run
# here: unverified beyond that source.
GIB_IMAGE = versions.GIB_INSTALLER_IMAGE.value
PAUSE_IMAGE = versions.PAUSE_IMAGE.value
GIB_HOST_DIR = "/home/kubernetes/bin/gib"
NVIDIA_HOST_DIR = "/home/kubernetes/bin/nvidia"
NVIDIA_LIB_HOST_DIR = f"{NVIDIA_HOST_DIR}/lib64"


# What a serving pod of a copy over several nodes adds to use the RDMA NICs, as Google's A4 serving template does
# (AI-Hypercomputer/gpu-recipes src/helm-charts/a4/inference-templates/deployment/templates/serving-launcher.yaml):
# the node's gIB plugin and driver libraries mounted at /usr/local/gib and /usr/local/nvidia, NCCL_PLUGIN_PATH at
# the plugin, the plugin's directory before the driver's on the library path, the plugin's settings script sourced
# and then `ldconfig` (the Ray scripts do both: components/scripts/ray-network-env.sh). Sockets (Ray's own, Gloo,
# NCCL's bootstrap) on eth0, the pod's default interface, as gpu-recipes' A4 templates set GLOO_SOCKET_IFNAME;
# the pods attach no gVNIC interface (eth1 in Google's templates), so NCCL's socket interface is eth0 alone.
# Unverified here: that the NCCL inside vLLM's image loads the plugin, and that `ldconfig` and the RDMA verbs work
# in the engine container, which runs unprivileged with every capability dropped (Google's template runs it
# privileged; its NCCL test with the default capabilities); a 2-node NCCL_DEBUG=INFO test settles both.
POD_HOST_MOUNTS = (
    HostMount("nvidia-host", NVIDIA_HOST_DIR, "/usr/local/nvidia"),
    HostMount("gib", GIB_HOST_DIR, "/usr/local/gib"),
)
POD_ENV = {
    "LLM_EXTRA_LIBRARY_PATH": "/usr/local/gib/lib64:/usr/local/nvidia/lib64",
    "NCCL_NET": "gIB",
    "NCCL_PLUGIN_PATH": "/usr/local/gib/lib64",
    "LLM_NCCL_ENV_SCRIPT": "/usr/local/gib/scripts/set_nccl_env.sh",
    "LLM_RUN_LDCONFIG": "1",
    "LLM_SOCKET_IFNAME": "eth0",
}


def pod_network_annotations() -> dict[str, str]:
    """The pod keeps its default interface (eth0: Services, Ray) and gets the 8 RDMA NICs as eth2..eth9."""
    interfaces = [{"interfaceName": "eth0", "network": "default"}] + [
        {"interfaceName": f"eth{i + 2}", "network": rdma_network_object(i)} for i in range(RDMA_SUBNETS)
    ]
    return {"networking.gke.io/default-interface": "eth0", "networking.gke.io/interfaces": json.dumps(interfaces)}


def rdma_network_object(index: int) -> str:
    return f"rdma-{index}"


def rdma_subnet_ranges(cidr: str = RDMA_CIDR, count: int = RDMA_SUBNETS) -> list[str]:
    """`cidr` split into `count` equal subnets (count a power of two)."""
    prefix = ipaddress.ip_network(cidr).prefixlen + (count - 1).bit_length()
    return [str(net) for net in ipaddress.ip_network(cidr).subnets(new_prefix=prefix)][:count]


@dataclass(frozen=True)
class RdmaNetworksArgs:
    project: str
    region: str
    zone: str  # the RoCE network profile is zonal: the A4 pool's zone
    depends_on: Sequence[pulumi.Resource] = ()  # the enabled APIs (compute): every child waits for them


class RdmaNetworks(pulumi.ComponentResource):
    """The gVNIC VPC + subnet and the RDMA VPC (RoCE profile, MTU 8896) with one subnet per GPU NIC."""

    gvnic_network: gcp.compute.Network
    gvnic_subnet: gcp.compute.Subnetwork
    rdma_network: gcp.compute.Network
    rdma_subnets: list[gcp.compute.Subnetwork]

    def __init__(self, name: str, args: RdmaNetworksArgs, opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__("llm:gcp:RdmaNetworks", name, None, opts)
        # A component's depends_on does not hold back its children: each child waits for the APIs itself.
        child = pulumi.ResourceOptions(parent=self, depends_on=list(args.depends_on))
        self.gvnic_network = gcp.compute.Network(
            f"{name}-gvnic", project=args.project, name=f"{name}-gvnic", auto_create_subnetworks=False, opts=child
        )
        self.gvnic_subnet = gcp.compute.Subnetwork(
            f"{name}-gvnic-sub",
            project=args.project,
            name=f"{name}-gvnic-sub",
            region=args.region,
            network=self.gvnic_network.id,
            ip_cidr_range=GVNIC_CIDR,
            opts=child,
        )
        gcp.compute.Firewall(
            f"{name}-gvnic-internal",
            project=args.project,
            name=f"{name}-gvnic-internal",
            network=self.gvnic_network.id,
            source_ranges=[GVNIC_CIDR],
            allows=[{"protocol": "tcp"}, {"protocol": "udp"}, {"protocol": "icmp"}],
            opts=child,
        )
        self.rdma_network = gcp.compute.Network(
            f"{name}-rdma",
            project=args.project,
            name=f"{name}-rdma",
            auto_create_subnetworks=False,
            mtu=RDMA_MTU,
            routing_mode="REGIONAL",
            network_profile=f"projects/{args.project}/global/networkProfiles/{args.zone}-vpc-roce",
            opts=child,
        )
        self.rdma_subnets = [
            gcp.compute.Subnetwork(
                f"{name}-rdma-sub-{i}",
                project=args.project,
                name=f"{name}-rdma-sub-{i}",
                region=args.region,
                network=self.rdma_network.id,
                ip_cidr_range=cidr,
                opts=child,
            )
            for i, cidr in enumerate(rdma_subnet_ranges())
        ]
        self.register_outputs({"gvnicNetwork": self.gvnic_network.name, "rdmaNetwork": self.rdma_network.name})

    def node_network_configs(self) -> list[dict]:
        """The node pool's additional_node_network_configs: the gVNIC first, then the 8 RDMA subnets."""
        pairs = [(self.gvnic_network, self.gvnic_subnet)] + [(self.rdma_network, s) for s in self.rdma_subnets]
        return [{"network": network.name, "subnetwork": subnet.name} for network, subnet in pairs]

    def network_objects(self) -> list[tuple[str, pulumi.Output[str], pulumi.Output[str], str]]:
        """(object name, VPC, subnet, deviceMode) of each in-cluster network: gvnic-1, rdma-0..7."""
        return [(GVNIC_NETWORK_OBJECT, self.gvnic_network.name, self.gvnic_subnet.name, "NetDevice")] + [
            (rdma_network_object(i), self.rdma_network.name, s.name, "RDMA") for i, s in enumerate(self.rdma_subnets)
        ]


class RdmaClusterObjects(pulumi.ComponentResource):
    """GKENetworkParamSet + Network per additional node network, and the gIB NCCL installer DaemonSet."""

    def __init__(self, name: str, networks: RdmaNetworks, opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__("llm:gcp:RdmaClusterObjects", name, None, opts)
        for object_name, vpc, subnet, mode in networks.network_objects():
            params = k8s.apiextensions.CustomResource(
                f"{name}-{object_name}-params",
                api_version=NETWORKING_API,
                kind="GKENetworkParamSet",
                metadata={"name": object_name},
                spec={"vpc": vpc, "vpcSubnet": subnet, "deviceMode": mode},
                opts=pulumi.ResourceOptions(parent=self),
            )
            k8s.apiextensions.CustomResource(
                f"{name}-{object_name}-network",
                api_version=NETWORKING_API,
                kind="Network",
                metadata={"name": object_name},
                spec={
                    "type": "Device",
                    "parametersRef": {"group": "networking.gke.io", "kind": "GKENetworkParamSet", "name": object_name},
                },
                opts=pulumi.ResourceOptions(parent=self, depends_on=[params]),
            )
        self.installer = k8s.apps.v1.DaemonSet(
            f"{name}-nccl-gib",
            metadata={
                "name": "nccl-rdma-installer",
                "namespace": "kube-system",
                "labels": {"k8s-app": "nccl-rdma-installer"},
            },
            spec=manifest(gib_installer_spec()),
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.register_outputs({})


def gib_installer_spec() -> dict:
    """Google's gIB installer (container-engine-accelerators gpudirect-rdma/nccl-rdma-installer.yaml): an init
    container installs the plugin and copies it to the node's /home/kubernetes/bin/{gib,nvidia/lib64}; a pause
    container keeps the pod. Without --install-nccl: NCCL is the engine image's own. (cluster-toolkit's extra init
    container that only silences martian-packet logs with an unpinned alpine image is left out.)"""
    labels = {"name": "nccl-rdma-installer", "k8s-app": "nccl-rdma-installer"}
    return {
        "selector": {"matchLabels": {"k8s-app": "nccl-rdma-installer"}},
        "updateStrategy": {"type": "RollingUpdate"},
        "template": {
            "metadata": {"labels": labels},
            "spec": {
                "priorityClassName": "system-node-critical",
                "affinity": {
                    "nodeAffinity": {
                        "requiredDuringSchedulingIgnoredDuringExecution": {
                            "nodeSelectorTerms": [
                                {
                                    "matchExpressions": [
                                        {
                                            "key": "cloud.google.com/gke-accelerator",
                                            "operator": "In",
                                            "values": [A4.accelerator],
                                        }
                                    ]
                                }
                            ]
                        }
                    }
                },
                "tolerations": [{"operator": "Exists"}],
                "hostNetwork": True,
                "hostPID": True,
                "volumes": [
                    {
                        "name": "library-dir-host",
                        "hostPath": {"path": NVIDIA_LIB_HOST_DIR, "type": "DirectoryOrCreate"},
                    },
                    {"name": "gib", "hostPath": {"path": GIB_HOST_DIR}},
                ],
                "initContainers": [
                    {
                        "name": "nccl-rdma-installer",
                        "image": GIB_IMAGE,
                        "resources": {"requests": {"cpu": "150m"}},
                        # It writes the node's host directories: privileged, as upstream's installer.
                        "securityContext": {"privileged": True},
                        "volumeMounts": [
                            {"name": "library-dir-host", "mountPath": f"/usr/local{NVIDIA_LIB_HOST_DIR}"},
                            {"name": "gib", "mountPath": f"/usr/local{GIB_HOST_DIR}"},
                        ],
                        "command": ["/bin/sh", "-c"],
                        "args": [
                            "set -ex\n/scripts/container_entry.sh install\n"
                            f"cp -r /var/lib/gib/lib64/. /usr/local{NVIDIA_LIB_HOST_DIR}\n"
                            f"cp -r /var/lib/gib/. /usr/local{GIB_HOST_DIR}\n"
                        ],
                    }
                ],
                "containers": [{"name": "pause", "image": PAUSE_IMAGE}],
            },
        },
    }
