"""A GKE Standard cluster for GPU serving, its VPC, a small system node pool and a Kubernetes provider.

The cluster is regional (a replicated control plane) on a release channel, with workload identity,
the GCS FUSE CSI add-on and managed Prometheus collecting DCGM GPU metrics. The default node pool is
removed; a small system pool in the A4 zone runs system pods, the benchmark and other CPU pods. Every
Kubernetes object goes through `provider`, which depends on the cluster, so `pulumi destroy` deletes
the objects (and the load balancers of their Services) before the cluster.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Optional

import pulumi
import pulumi_gcp as gcp
import pulumi_kubernetes as k8s

SYSTEM_MACHINE_TYPE = "e2-standard-8"  # the benchmark Job asks for 4 vCPU and 16 GiB
SYSTEM_NODES = 1
SYSTEM_POOL_LABEL = {"llm/pool": "system"}
# The system node's boot disk is its ephemeral storage: the engine image the benchmark Job runs (~12 GB to pull,
# 28.6 GB unpacked: vllm-project/vllm#27154, #22377), system images and logs. (The model import, which staged files
# here, now runs on Cloud Run: components/gcp/hf_gcs_import.py; the size is kept, not re-derived.) GKE's default
# is 100 GB.
SYSTEM_DISK_GB = 200
# Minimal node roles (GKE hardening guide); image pulls are granted on the registry (components.gcp.docker_hub_mirror).
NODE_ROLE = "roles/container.defaultNodeServiceAccount"


@dataclass(frozen=True)
class GkeClusterArgs:
    project: str
    region: str
    zone: str  # where the node pools run
    node_cidr: str
    pod_cidr: str
    service_cidr: str
    release_channel: pulumi.Input[str]  # RAPID | REGULAR | STABLE
    workload_pool: str
    deletion_protection: bool = False
    labels: Mapping[str, str] = field(default_factory=dict)
    depends_on: Sequence[pulumi.Resource] = ()  # the enabled APIs
    # Dataplane V2 with multi-networking: node pools can attach additional (RDMA) networks. Changing it
    # recreates the cluster, so it is only set when asked.
    multi_networking: bool = False
    # Who may reach the control plane's public endpoint (master authorized networks); empty: anyone, with IAM
    # (core.config requires some on gke).
    control_plane_cidrs: Sequence[str] = ()
    # Admission webhook ports the control plane must reach on the nodes (e.g. LeaderWorkerSet's 9443); GKE's
    # firewall opens only 443 and 10250 to it on private clusters.
    webhook_ports: Sequence[int] = ()
    maintenance_window_start: str = "09:00"  # HH:MM UTC, GKE's daily 4-hour window
    hold_node_upgrades: bool = True  # NO_MINOR_OR_NODE_UPGRADES until end of support


# cluster-toolkit@1047080 examples/gke-a4/gke-a4.yaml: an exclusion of scope NO_MINOR_OR_NODE_UPGRADES with
# end_time_behavior UNTIL_END_OF_SUPPORT, beside a daily window (its gke-cluster module, default 09:00). GKE's
# scope: "excludes all minor upgrades for the cluster, and also exclude all node pool upgrades. Only control plane
# patches are allowed." A fixed start (the blueprint's date) so that runs do not differ; the exclusion holds
# neither auto-repair nor host maintenance (A4 and A3 Ultra: terminate with Local SSD data kept, 90 days' notice).
EXCLUSION_NAME = "no-minor-or-node-upgrades"
EXCLUSION_START = "2025-12-01T00:00:00Z"


def maintenance_policy(args: GkeClusterArgs) -> gcp.container.ClusterMaintenancePolicyArgsDict:
    policy: gcp.container.ClusterMaintenancePolicyArgsDict = {
        "daily_maintenance_window": {"start_time": args.maintenance_window_start}
    }
    if args.hold_node_upgrades:
        policy["maintenance_exclusions"] = [
            {
                "exclusion_name": EXCLUSION_NAME,
                "start_time": EXCLUSION_START,
                "exclusion_options": {
                    "scope": "NO_MINOR_OR_NODE_UPGRADES",
                    "end_time_behavior": "UNTIL_END_OF_SUPPORT",
                },
            }
        ]
    return policy


def kubeconfig(name: str, endpoint: pulumi.Input[str], ca_certificate: pulumi.Input[str]) -> pulumi.Output[str]:
    """A kubeconfig whose credential comes from gke-gcloud-auth-plugin at each use: no token in the state."""
    return pulumi.Output.all(endpoint, ca_certificate).apply(
        lambda v: (
            f"""apiVersion: v1
kind: Config
clusters:
- name: {name}
  cluster:
    server: https://{v[0]}
    certificate-authority-data: {v[1]}
contexts:
- name: {name}
  context:
    cluster: {name}
    user: {name}
current-context: {name}
users:
- name: {name}
  user:
    exec:
      apiVersion: client.authentication.k8s.io/v1beta1
      command: gke-gcloud-auth-plugin
      installHint: Install gke-gcloud-auth-plugin (gcloud components install gke-gcloud-auth-plugin).
      provideClusterInfo: true
"""
        )
    )


class GkeCluster(pulumi.ComponentResource):
    """`node_tag` is the network tag of the system pool; give it to every other pool so firewall rules reach it."""

    cluster: gcp.container.Cluster
    network: gcp.compute.Network
    subnet: gcp.compute.Subnetwork
    nat: gcp.compute.RouterNat
    node_service_account: pulumi.Output[str]  # email
    node_role: gcp.projects.IAMMember  # the account's node role: every node pool waits for it
    provider: k8s.Provider
    kubeconfig: pulumi.Output[str]
    node_tag: str

    def __init__(self, name: str, args: GkeClusterArgs, opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__("llm:gcp:GkeCluster", name, None, opts)
        self.node_tag = f"{name}-node"
        # A component's depends_on does not hold back its children: each child waits for the APIs itself.
        after_apis = pulumi.ResourceOptions(parent=self, depends_on=list(args.depends_on))
        self.network = gcp.compute.Network(
            f"{name}-vpc", project=args.project, name=name, auto_create_subnetworks=False, opts=after_apis
        )
        self.subnet = gcp.compute.Subnetwork(
            f"{name}-nodes",
            project=args.project,
            name=f"{name}-nodes",
            region=args.region,
            network=self.network.id,
            ip_cidr_range=args.node_cidr,
            private_ip_google_access=True,
            secondary_ip_ranges=[
                {"range_name": "pods", "ip_cidr_range": args.pod_cidr},
                {"range_name": "services", "ip_cidr_range": args.service_cidr},
            ],
            opts=after_apis,
        )
        # Nodes have no public address (private nodes below): Cloud NAT is their way out (Hugging Face, PyPI,
        # registry.k8s.io); Google APIs (GCS, Artifact Registry) go through Private Google Access on the subnet.
        router = gcp.compute.Router(
            f"{name}-router",
            project=args.project,
            name=f"{name}-router",
            region=args.region,
            network=self.network.id,
            opts=after_apis,
        )
        self.nat = gcp.compute.RouterNat(
            f"{name}-nat",
            project=args.project,
            name=f"{name}-nat",
            router=router.name,
            region=args.region,
            nat_ip_allocate_option="AUTO_ONLY",
            source_subnetwork_ip_ranges_to_nat="ALL_SUBNETWORKS_ALL_IP_RANGES",
            # A 700 GB download opens many parallel connections: ports grow with demand.
            enable_dynamic_port_allocation=True,
            min_ports_per_vm=64,
            max_ports_per_vm=4096,
            opts=after_apis,
        )
        account = gcp.serviceaccount.Account(
            f"{name}-nodes",
            project=args.project,
            account_id=f"{name}-nodes"[:30].rstrip("-"),
            display_name=f"{name} GKE nodes",
            opts=after_apis,
        )
        self.node_service_account = account.email
        node_role = self.node_role = gcp.projects.IAMMember(
            f"{name}-node-role",
            project=args.project,
            role=NODE_ROLE,
            member=account.email.apply(lambda email: f"serviceAccount:{email}"),
            opts=after_apis,
        )
        self.cluster = gcp.container.Cluster(
            f"{name}-cluster",
            project=args.project,
            name=name,
            location=args.region,
            node_locations=[args.zone],
            network=self.network.id,
            subnetwork=self.subnet.id,
            ip_allocation_policy={"cluster_secondary_range_name": "pods", "services_secondary_range_name": "services"},
            release_channel={"channel": args.release_channel},
            # Upgrades happen in the window, and never recreate the GPU nodes on their own (with the exclusion).
            maintenance_policy=maintenance_policy(args),
            workload_identity_config={"workload_pool": args.workload_pool},
            # Nodes get internal addresses only. GKE >= 1.29 reaches them over Private Service Connect, so no
            # master CIDR is needed; the control plane keeps its public endpoint (Pulumi talks to it, IAM guards it).
            private_cluster_config={"enable_private_nodes": True},
            **(
                {
                    "master_authorized_networks_config": {
                        "cidr_blocks": [
                            {"cidr_block": c, "display_name": f"cluster.apiCidrs[{i}]"}
                            for i, c in enumerate(args.control_plane_cidrs)
                        ],
                        # Only the listed networks, not every Google Cloud VM's address.
                        "gcp_public_cidrs_access_enabled": False,
                    }
                }
                if args.control_plane_cidrs
                else {}
            ),
            addons_config={"gcs_fuse_csi_driver_config": {"enabled": True}},
            monitoring_config={
                "enable_components": ["SYSTEM_COMPONENTS", "DCGM"],
                "managed_prometheus": {"enabled": True},
            },
            **(
                {"datapath_provider": "ADVANCED_DATAPATH", "enable_multi_networking": True}
                if args.multi_networking
                else {}
            ),
            remove_default_node_pool=True,
            initial_node_count=1,
            deletion_protection=args.deletion_protection,
            resource_labels=dict(args.labels),
            opts=pulumi.ResourceOptions(
                parent=self,
                depends_on=list(args.depends_on),
                protect=args.deletion_protection,
                custom_timeouts=pulumi.CustomTimeouts(create="45m", update="60m", delete="45m"),
            ),
        )
        self.system_pool = gcp.container.NodePool(
            f"{name}-system",
            project=args.project,
            cluster=self.cluster.id,
            location=args.region,
            node_locations=[args.zone],
            node_count=SYSTEM_NODES,
            node_config={
                "machine_type": SYSTEM_MACHINE_TYPE,
                "service_account": account.email,
                "oauth_scopes": ["https://www.googleapis.com/auth/cloud-platform"],
                "workload_metadata_config": {"mode": "GKE_METADATA"},
                "shielded_instance_config": {"enable_secure_boot": True, "enable_integrity_monitoring": True},
                "labels": dict(SYSTEM_POOL_LABEL),
                "disk_size_gb": SYSTEM_DISK_GB,
                "disk_type": "pd-balanced",
                "tags": [self.node_tag],
                "resource_labels": dict(args.labels),
            },
            management={"auto_repair": True, "auto_upgrade": True},
            # Nodes need their egress before anything is scheduled (the provider below waits for this pool).
            opts=pulumi.ResourceOptions(parent=self, depends_on=[*args.depends_on, node_role, self.nat]),
        )
        if args.webhook_ports:
            # The control plane of a Private Service Connect cluster without a master CIDR reaches the nodes
            # from the cluster subnet's range (terraform-google-kubernetes-engine's choice for this case; GKE's
            # page for it was not found): webhooks on other ports than 443 need their own rule.
            gcp.compute.Firewall(
                f"{name}-webhooks",
                project=args.project,
                name=f"{name}-webhooks",
                network=self.network.id,
                direction="INGRESS",
                source_ranges=[args.node_cidr],
                target_tags=[self.node_tag],
                allows=[{"protocol": "tcp", "ports": [str(p) for p in args.webhook_ports]}],
                description="GKE control plane to admission webhooks on the nodes",
                opts=after_apis,
            )
        self.kubeconfig = kubeconfig(
            name, self.cluster.endpoint, self.cluster.master_auth.apply(lambda auth: auth.cluster_ca_certificate or "")
        )
        self.provider = k8s.Provider(
            f"{name}-k8s",
            kubeconfig=self.kubeconfig,
            cluster_identifier=self.cluster.id,
            opts=pulumi.ResourceOptions(parent=self, depends_on=[self.cluster, self.system_pool]),
        )
        self.register_outputs({"cluster": self.cluster.name, "endpoint": self.cluster.endpoint})
