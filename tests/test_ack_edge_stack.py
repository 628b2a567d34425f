"""The ack-edge target: ACK Edge, IDC pool first, capped ECI/ACS burst, HPA on vLLM's queue."""

import pytest
from harness import run_stack, unwrap, validate_kubernetes

CLUSTER = "alicloud:cs/managedKubernetes:ManagedKubernetes"
ADDON = "alicloud:cs/kubernetesAddon:KubernetesAddon"


@pytest.fixture(scope="module")
def edge():
    return run_stack("ack-edge")


def policy(run):
    return run.kubernetes_object("ResourcePolicy")


def test_cluster_is_ack_edge_with_flannel_and_rrsa(edge):
    spec = unwrap(edge.one(CLUSTER).inputs)
    assert spec["profile"] == "Edge" and spec["enableRrsa"] is True
    assert spec["podCidr"] == "172.20.0.0/16" and "podVswitchIds" not in spec
    assert "flannel" in {a["name"] for a in spec["addons"]}
    assert not any(unwrap(p.inputs).get("taints") for p in edge.of_type("alicloud:cs/nodePool:NodePool"))


def test_virtual_node_addon_cleans_up_its_cloud_resources(edge):
    addon = next(unwrap(r.inputs) for r in edge.of_type(ADDON) if unwrap(r.inputs)["name"] == "ack-virtual-node")
    assert addon["cleanupCloudResources"] is True


def test_resource_policy_prefers_the_idc_pool_then_capped_eci(edge):
    spec = policy(edge)["spec"]
    assert spec["strategy"] == "prefer" and spec["selector"] == {"app": "llm"}
    idc, cloud = spec["units"]
    assert idc == {"resource": "ecs", "nodeSelector": {"alibabacloud.com/nodepool-id": "np1a2b3c4d5e6f7a8b"}}
    assert cloud["resource"] == "eci" and cloud["max"] == 2
    assert cloud["podAnnotations"]["k8s.aliyun.com/eci-use-specs"] == "ecs.gn6e-c12g1.3xlarge"  # 1x V100
    assert len(cloud["podAnnotations"]["k8s.aliyun.com/eci-vswitch"].split(",")) == 2


def test_serving_pods_carry_the_policy_selector_and_no_cloud_specific_marks(edge):
    deployment = edge.kubernetes_object("Deployment")
    pod = deployment["spec"]["template"]
    assert pod["metadata"]["labels"]["app"] == "llm"
    assert "annotations" not in pod["metadata"] and "nodeSelector" not in pod["spec"]
    keys = {t["key"] for t in pod["spec"]["tolerations"]}
    assert {"nvidia.com/gpu", "virtual-kubelet.io/provider"} <= keys
    resource_policy = edge.one("kubernetes:scheduling.alibabacloud.com/v1alpha1:ResourcePolicy")
    assert resource_policy.urn in edge.one("kubernetes:apps/v1:Deployment").dependencies  # policy first


def test_acs_unit_labels_pods_for_acs_gpus_only_there():
    run = run_stack(
        "ack-edge", {"ackEdge.virtualNodeUnit": "acs", "placement.gpuKind": "H20", "ackEdge.cloudMaxPods": 4}
    )
    cloud = policy(run)["spec"]["units"][1]
    assert cloud["resource"] == "acs" and cloud["max"] == 4
    assert cloud["podLabels"] == {
        "alibabacloud.com/acs": "true",
        "alibabacloud.com/compute-class": "gpu",
        "alibabacloud.com/gpu-model-series": "H20",
        "alibabacloud.com/compute-qos": "default",
    }
    labels = run.kubernetes_object("Deployment")["spec"]["template"]["metadata"]["labels"]
    assert "alibabacloud.com/acs" not in labels


def test_hpa_bounds_and_metric(edge):
    spec = edge.kubernetes_object("HorizontalPodAutoscaler")["spec"]
    assert (spec["minReplicas"], spec["maxReplicas"]) == (1, 3)
    assert spec["metrics"][0]["pods"]["metric"]["name"] == "vllm_num_requests_waiting"


def test_objects_validate_and_custom_resources_are_named(edge):
    assert sorted(validate_kubernetes(edge)) == [
        "monitoring.coreos.com/v1/PodMonitor",
        "scheduling.alibabacloud.com/v1alpha1/ResourcePolicy",
    ]


def test_first_run_creates_the_network_cluster_bucket_and_import_but_nothing_in_the_cluster():
    run = run_stack("ack-edge", {"ackEdge.nodePoolId": None, "ackEdge.clusterOnly": True})
    assert run.one("alicloud:cs/managedKubernetes:ManagedKubernetes")
    assert not [r for r in run.resources if r.type.startswith("kubernetes:")]
    assert run.one("alicloud:oss/bucket:Bucket")  # the import runs beside the cluster (tests/test_import_workers.py)
    assert not run.of_type("alicloud:ram/accessKey:AccessKey")  # the volumes' credentials come with the volumes
    assert "ackEdge.nodePoolId" in run.outputs["nextStep"] and "kubeconfig" in run.secret_outputs


def test_oss_volumes_default_to_the_references_access_key_and_can_use_the_public_endpoint():
    from harness import run_stack as run

    default = run("ack-edge")
    volumes = [o for o in default.kubernetes_objects() if o["kind"] == "PersistentVolume"]
    assert all("nodePublishSecretRef" in v["spec"]["csi"] for v in volumes)  # RRSA is unproven on IDC nodes
    assert {v["spec"]["csi"]["volumeAttributes"]["url"] for v in volumes} == {"oss-cn-hangzhou-internal.aliyuncs.com"}
    public = run("ack-edge", {"ackEdge.ossEndpoint": "public", "ackEdge.ossAuth": "rrsa"})
    volumes = [o for o in public.kubernetes_objects() if o["kind"] == "PersistentVolume"]
    assert {v["spec"]["csi"]["volumeAttributes"]["url"] for v in volumes} == {"oss-cn-hangzhou.aliyuncs.com"}
    assert all(v["spec"]["csi"]["volumeAttributes"]["authType"] == "rrsa" for v in volumes)
