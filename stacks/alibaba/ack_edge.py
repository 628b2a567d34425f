"""Target `ack-edge`: an ACK Edge cluster whose IDC GPU machines serve first, with virtual nodes (ECI or
ACS) taking the overflow up to a maximum, and the HPA that creates it (Alibaba's ACK Edge guide, without arena).

The IDC machines join an edge node pool created outside Pulumi (the provider cannot create one for
on-prem machines; README "ack-edge"); its id comes from ackEdge.nodePoolId.
"""

from __future__ import annotations

import pulumi

from components.alibaba.host_scripts import PIP_INDEX_URL
from components.alibaba.managed_cluster import ManagedCluster, ManagedClusterArgs
from components.alibaba.resource_policy import NODE_POOL_ID_LABEL, ResourcePolicy, ResourcePolicyArgs, Unit
from components.alibaba.virtual_nodes import TOLERATION as VIRTUAL_NODE_TOLERATION
from components.alibaba.virtual_nodes import VirtualNodes, VirtualNodesArgs
from components.api_key import ApiKey
from components.kubernetes.image_prepull import ImagePrepull, ImagePrepullArgs
from core.config.settings import AckEdgeSettings
from stacks import serving
from stacks.alibaba import cost
from stacks.alibaba.common import alibaba_provider, stack_tags
from stacks.alibaba.managed_kubernetes import (
    CLUSTER_SPEC,
    GPU_TOLERATION,
    addons,
    api_server_access,
    bandwidth_deadlines,
    cloud_helpers,
    cluster_network,
    cluster_zones,
    import_workers,
    kubectl_hint,
    load_balancers,
    model_store,
    serve_and_autoscale,
    system_pool,
    worker_image_id,
    workload_namespace,
)

# Flannel: IDC nodes have no VPC ENIs, so no Terway. Unverified offline: the add-on name ACK Edge expects.
EDGE_ADDONS = ({"name": "flannel"}, {"name": "csi-plugin"}, {"name": "csi-provisioner"})
ECI_SPECS = "k8s.aliyun.com/eci-use-specs"
ECI_VSWITCH = "k8s.aliyun.com/eci-vswitch"
# "ACK Edge determines whether a node is an edge node based on the alibabacloud.com/is-edge-worker label of the
# node. If a node is added to a cloud node pool or an edge node pool, the is-edge-worker label is automatically
# added": true on edge nodes, false on cloud nodes (ACK Edge "FAQ about edge nodes",
# alibabacloud.com/help/en/ack/ack-edge/user-guide/edge-node-faq; "Cloud node management": cloud ECS nodes carry
# 'false'). Every node of the IDC pool carries it, so it selects them before the pool's id is known.
EDGE_WORKER_LABEL = "alibabacloud.com/is-edge-worker"
EDGE_NODES = {EDGE_WORKER_LABEL: "true"}


def build(settings: AckEdgeSettings) -> dict[str, object]:
    provider = alibaba_provider(settings)
    ack, plan = settings.ack, settings.cluster
    zones = cluster_zones(settings, provider, None)  # GPUs are in the IDC and on virtual nodes
    tags = stack_tags(settings)
    api_key = ApiKey(f"{settings.name}-api-key", settings.api_key)
    network = cluster_network(settings, zones, tags, provider, pod_vswitches=False)  # Flannel: no pod vSwitches
    vswitches = [network.vswitch_ids["nodes-a"], network.vswitch_ids["nodes-b"]]
    cluster = ManagedCluster(
        settings.name,
        ManagedClusterArgs(
            profile="Edge",
            cluster_spec=CLUSTER_SPEC,
            vswitch_ids=vswitches,
            pod_cidr=settings.edge.pod_cidr,
            service_cidr=plan.service_cidr,
            enable_rrsa=True,
            addons=addons(EDGE_ADDONS, ack.sls_logging),
            kubernetes_version=plan.kubernetes_version,
            public_endpoint=plan.public_endpoint,
            **api_server_access(settings),
            deletion_protection=settings.deletion_protection,
            tags=tags,
        ),
        opts=pulumi.ResourceOptions(providers=[provider], depends_on=network.snat_entries),
    )
    in_region = pulumi.ResourceOptions(providers=[provider])
    # Cloud nodes for the cluster's own components, the model import and the benchmark.
    system = system_pool(settings, cluster, vswitches, tags, in_region)
    virtual = VirtualNodes(
        f"{settings.name}-virtual-nodes", VirtualNodesArgs(cluster_id=cluster.cluster_id), opts=in_region
    )
    # Audit D11: the ACK Edge guide's AccessKey and internal endpoint by default; the public endpoint for an IDC
    # without Express Connect or VPN.
    from components.alibaba.multipart_cleanup import public_endpoint

    edge = settings.edge
    in_cluster = pulumi.ResourceOptions(providers=[provider, cluster.provider])
    # The first run (clusterOnly) already makes the bucket and runs the import beside the cluster: the bucket
    # needs no cluster, so the second run finds the weights imported and its workers unchanged.
    endpoint = public_endpoint(settings.region) if edge.oss_endpoint == "public" else None
    # The namespace and the engine image's pre-pull in both runs, the same resources: the IDC nodes joining between
    # the runs pull the image while nobody waits (engine_prepull).
    ns = workload_namespace(settings, cluster)
    engine_prepull(settings, ns, in_cluster)
    if edge.cluster_only:
        store = model_store(settings, cluster, tags, in_region, edge.oss_auth, endpoint, namespace=None)
        importer = import_workers(settings, provider, network, store, tags, worker_image_id(settings, provider))
        return {
            **_cluster_only_outputs(settings, zones, cluster),
            "modelBucket": store.bucket,
            "modelImportWorkers": importer.instance_ids,
            "modelImportProgress": importer.progress,
        }
    store = model_store(settings, cluster, tags, in_cluster, edge.oss_auth, endpoint, ns)
    # The import workers write over the internal endpoint from the VPC, whichever endpoint the IDC nodes read:
    # no import runs on the IDC (no in-cluster Job is needed on ack-edge).
    importer = import_workers(settings, provider, network, store, tags, worker_image_id(settings, provider))
    platform = serving.Platform(
        # Where the pods go is the ResourcePolicy's choice; they may land on tainted GPU or virtual nodes.
        tolerations=[GPU_TOLERATION, VIRTUAL_NODE_TOLERATION],
        **load_balancers(settings),
        pip_index_url=PIP_INDEX_URL,
        **cloud_helpers(system),
        # The IDC machines exist; they pull over the IDC's own internet, assumed as fast as the NAT.
        **bandwidth_deadlines(settings, gpu_capacity_minutes=0),
    )
    policy = ResourcePolicy(
        f"{settings.name}-placement",
        ResourcePolicyArgs(
            namespace=ns,
            name=serving.APP,
            selector={"app": serving.APP},
            units=[
                Unit("ecs", node_selector={NODE_POOL_ID_LABEL: settings.edge.node_pool_id}),
                cloud_unit(settings, vswitches),
            ],
        ),
        opts=pulumi.ResourceOptions.merge(in_cluster, pulumi.ResourceOptions(depends_on=[virtual])),
    )
    # The policy must exist before the first pod is scheduled, or that pod ignores it.
    outputs = serve_and_autoscale(
        settings, platform, cluster, ns, store, api_key.value, in_cluster, importer=importer, serving_after=[policy]
    )
    outputs.update(
        {
            "region": settings.region,
            "zones": list(zones),
            "clusterId": cluster.cluster_id,
            "edgeNodePoolId": settings.edge.node_pool_id,
            "cloudBurst": f"up to {settings.edge.cloud_max_pods} pod(s) on {settings.edge.unit} virtual nodes",
            "modelBucket": store.bucket,
            "modelImportWorkers": importer.instance_ids,
            "modelImportProgress": importer.progress,
            "costEstimate": cost.ack_estimate(settings, provider),
            "kubeconfig": cluster.kubeconfig,  # secret
            "kubectlHint": kubectl_hint(settings),
        }
    )
    return outputs


def engine_prepull(settings: AckEdgeSettings, namespace: pulumi.Input[str], opts: pulumi.ResourceOptions):
    """The engine image on every edge node as soon as it joins (components/kubernetes/image_prepull.py).

    The first run cannot know the IDC pool's id (the pool is made after it), so the DaemonSet selects the label ACK
    Edge puts on every edge node (EDGE_NODES), not the ResourcePolicy's `alibabacloud.com/nodepool-id`: a superset of
    the serving pods' IDC unit. The trade-off: a node of another edge pool of this cluster pulls the image too (the
    cluster is this stack's own; its cloud system nodes are `false` and virtual nodes are not tolerated). It
    tolerates what the serving pods tolerate on a GPU node, not the virtual nodes' taint (a DaemonSet pod there
    would be an ECI instance of its own). The same spec in both runs: the second run changes nothing."""
    return ImagePrepull(
        f"{settings.name}-prepull",
        ImagePrepullArgs(
            namespace=namespace,
            image=settings.engine.image,
            node_selector=EDGE_NODES,
            tolerations=[GPU_TOLERATION],
        ),
        opts=opts,
    )


def _cluster_only_outputs(settings: AckEdgeSettings, zones, cluster: ManagedCluster) -> dict[str, object]:
    """First run: the cluster exists, serving waits for the edge node pool the IDC machines join."""
    return {
        "target": settings.target,
        "region": settings.region,
        "zones": list(zones),
        "clusterId": cluster.cluster_id,
        "kubeconfig": cluster.kubeconfig,  # secret
        "nextStep": "make sure cluster.apiCidrs lists the IDC machines' addresses as the API server sees them "
        "(their internet egress, or the IDC's CIDR over Express Connect), "
        "create an edge node pool in this cluster (ACK console), join the IDC GPU machines to it "
        f"(docs/targets/ack-edge.md; each pulls the engine image as it joins: kubectl -n {settings.workload.namespace} "
        "get pods -l app=llm-engine-prepull -o wide), then: pulumi config set --path '"
        f"{settings.namespace}:ackEdge."
        f"nodePoolId' <np-id> && pulumi config set --path '{settings.namespace}:ackEdge.clusterOnly' "
        "false && pulumi up",
    }


def cloud_unit(settings: AckEdgeSettings, vswitches: list) -> Unit:
    """The virtual-node unit, with what its capacity needs on the pod: ECI specs, or ACS GPU labels."""
    edge = settings.edge
    if edge.unit == "acs" and settings.acs is not None:  # config requires the ACS labels for this unit
        acs = settings.acs
        return Unit(
            "acs",
            max=edge.cloud_max_pods,
            pod_labels={
                "alibabacloud.com/acs": "true",
                "alibabacloud.com/compute-class": acs.compute_class,
                "alibabacloud.com/gpu-model-series": acs.gpu_series,
                "alibabacloud.com/compute-qos": acs.compute_qos,
            },
        )
    return Unit(
        "eci",
        max=edge.cloud_max_pods,
        pod_annotations={
            ECI_SPECS: ",".join(edge.eci_instance_types),
            ECI_VSWITCH: pulumi.Output.all(*vswitches).apply(",".join),
        },
    )
