"""The ack-edge target: ACK Edge, IDC pool first, capped ECI/ACS burst, HPA on vLLM's queue."""

import pytest
from harness import run_stack, settings_for, unwrap, validate_kubernetes
from netpol import Cluster, External, Pod, Policy

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


FIRST_RUN = {"ackEdge.nodePoolId": None, "ackEdge.clusterOnly": True}


@pytest.fixture(scope="module")
def first():
    return run_stack("ack-edge", FIRST_RUN)


def test_first_run_creates_the_network_cluster_bucket_import_and_only_the_image_prepull_in_the_cluster(first):
    run = first
    assert run.one("alicloud:cs/managedKubernetes:ManagedKubernetes")
    in_cluster = [(o["kind"], o["metadata"]["name"]) for o in run.kubernetes_objects()]
    assert in_cluster == [("Namespace", "llm"), ("DaemonSet", "llm-engine-prepull")]  # no serving yet
    assert validate_kubernetes(run) == []  # both are plain objects, valid against the schema
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


# --- The engine image pulled onto the IDC nodes between the two runs ------------------------------------------

PREPULL = "kubernetes:apps/v1:DaemonSet"


def prepull(run):
    return run.kubernetes_object("DaemonSet", "llm-engine-prepull")


def test_the_prepull_is_the_same_resource_with_the_same_spec_in_both_runs(first, edge):
    """The second run finds the DaemonSet (and its namespace) it made in the first and changes nothing: no replace,
    no rollout, the image pulled between the runs stays on the nodes."""
    assert first.one(PREPULL).urn == edge.one(PREPULL).urn
    assert prepull(first) == prepull(edge)
    assert first.kubernetes_object("Namespace") == edge.kubernetes_object("Namespace")
    assert first.one("kubernetes:core/v1:Namespace").urn == edge.one("kubernetes:core/v1:Namespace").urn


def matches(selector: dict, labels: dict) -> bool:
    return all(labels.get(k) == v for k, v in selector.items())


def tolerated(tolerations: list, taint: dict) -> bool:
    return any(
        t["key"] == taint["key"]
        and t.get("effect") in (None, taint["effect"])
        and (t.get("operator") == "Exists" or t.get("value") == taint.get("value"))
        for t in tolerations
    )


def test_the_prepull_runs_where_the_serving_pods_run_in_the_idc_and_not_on_cloud_or_virtual_nodes(edge):
    from components.alibaba.node_pool import GPU_TAINT

    pod = prepull(edge)["spec"]["template"]["spec"]
    serving = edge.kubernetes_object("Deployment")["spec"]["template"]["spec"]
    (idc_unit, _) = policy(edge)["spec"]["units"]
    # ACK Edge labels every node of an edge pool is-edge-worker=true and cloud nodes false (its edge node FAQ).
    idc_node = {"alibabacloud.com/nodepool-id": "np1a2b3c4d5e6f7a8b", "alibabacloud.com/is-edge-worker": "true"}
    other_edge_pool = {"alibabacloud.com/nodepool-id": "np0other", "alibabacloud.com/is-edge-worker": "true"}
    system_node = {"alibabacloud.com/nodepool-id": "np0system", "alibabacloud.com/is-edge-worker": "false"}
    virtual_node = {"type": "virtual-kubelet", "kubernetes.io/role": "agent"}
    assert matches(idc_unit["nodeSelector"], idc_node)  # where the ResourcePolicy puts serving first
    assert matches(pod["nodeSelector"], idc_node)  # ... the prepull is there too, without knowing the pool id
    assert matches(pod["nodeSelector"], other_edge_pool)  # the trade-off: any edge node of the cluster
    assert not matches(pod["nodeSelector"], system_node) and not matches(pod["nodeSelector"], virtual_node)
    # It tolerates a GPU node's taint as serving does, and not the virtual nodes' taint, which serving tolerates.
    assert tolerated(pod["tolerations"], GPU_TAINT) and tolerated(serving["tolerations"], GPU_TAINT)
    virtual_taint = {"key": "virtual-kubelet.io/provider", "value": "alibabacloud", "effect": "NoSchedule"}
    assert tolerated(serving["tolerations"], virtual_taint) and not tolerated(pod["tolerations"], virtual_taint)
    assert all(t in serving["tolerations"] for t in pod["tolerations"])


def test_the_prepull_is_hardened_pinned_and_tiny_and_up_does_not_wait_for_it(edge):
    daemon_set = prepull(edge)
    pod = daemon_set["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    serving = edge.kubernetes_object("Deployment")["spec"]["template"]["spec"]
    engine = next(c for c in serving["containers"] if c["name"] == "engine")
    assert container["image"] == engine["image"] and ":" in container["image"]
    assert not container["image"].endswith(":latest")  # pinned, as the engine's
    assert container["command"] == ["sleep", "infinity"]  # running: the kubelet's image GC keeps the image
    assert container["imagePullPolicy"] == engine["imagePullPolicy"] == "IfNotPresent"
    assert container["resources"]["requests"] == {"cpu": "10m", "memory": "16Mi"}
    assert pod["automountServiceAccountToken"] is False and "volumes" not in pod
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    context = container["securityContext"]
    assert context["capabilities"] == {"drop": ["ALL"]} and context["allowPrivilegeEscalation"] is False
    assert context["privileged"] is False and context["seccompProfile"] == {"type": "RuntimeDefault"}
    # Pod Security "restricted" (above the namespace's enforced "baseline"): non-root, nothing else to open.
    assert pod["securityContext"]["runAsNonRoot"] is True and pod["securityContext"]["runAsUser"] != 0
    labels = edge.kubernetes_object("Namespace")["metadata"]["labels"]
    assert labels["pod-security.kubernetes.io/enforce"] == "baseline"
    assert daemon_set["metadata"]["annotations"] == {"pulumi.com/skipAwait": "true"}  # no nodes in the first run


def test_serving_does_not_wait_for_the_prepull_and_pulls_itself_when_it_is_not_done(edge):
    from cloud_rules.gcp import transitive_dependencies

    deployment = edge.one("kubernetes:apps/v1:Deployment")
    assert edge.one(PREPULL).urn not in transitive_dependencies(edge, deployment.urn)
    assert "nodeName" not in edge.kubernetes_object("Deployment")["spec"]["template"]["spec"]


def test_the_prepull_pod_needs_no_network_and_the_namespaces_policies_give_it_none(edge):
    objects = edge.kubernetes_objects()
    namespace = edge.kubernetes_object("Namespace")["metadata"]["name"]
    rules = [Policy(namespace, o["metadata"]["name"], o["spec"]) for o in objects if o["kind"] == "NetworkPolicy"]
    cluster = Cluster({namespace: {}, "kube-system": {}}, rules)
    labels = prepull(edge)["spec"]["template"]["metadata"]["labels"]
    pod = Pod("llm-engine-prepull-x", namespace, labels, ip="10.100.9.9")
    neighbour = Pod("llm-0", namespace, {"app": "llm"}, ip="10.100.0.10")
    internet = External("the internet", "203.0.113.9")
    for port in (80, 443, 8000, 22):
        assert not cluster.allowed(pod, internet, port) and not cluster.allowed(pod, neighbour, port)
        assert not cluster.allowed(neighbour, pod, port) and not cluster.allowed(internet, pod, port)


def test_the_first_run_says_how_long_it_takes_itself_and_that_it_serves_nothing_yet(first):
    from core.ready_time import ack_edge_first_run, timeline

    settings = settings_for("ack-edge", FIRST_RUN)
    assert timeline(settings).summary() == ack_edge_first_run(settings).summary()
    [said] = [text for text, _ in first.logs if "(core/timeline.py)" in text]
    assert "first run (ackEdge.clusterOnly) serves nothing yet" in said
    assert f"about {ack_edge_first_run(settings).total:.0f} min" in said and "to a serving API" not in said
    assert "expectedReadyMinutes" not in first.outputs
