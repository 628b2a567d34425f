"""The ack target as deployed: ACK Pro, system and GPU node pools, RRSA model store, HPA on vLLM's queue."""

import json

import pytest
from harness import KUBECONFIG, all_strings, is_secret, run_stack, unwrap, validate_kubernetes

CLUSTER = "alicloud:cs/managedKubernetes:ManagedKubernetes"
NODE_POOL = "alicloud:cs/nodePool:NodePool"
ADDON = "alicloud:cs/kubernetesAddon:KubernetesAddon"
ARMS_ALERT = "alicloud:arms/prometheusAlertRule:PrometheusAlertRule"
GPU_TAINT = {"key": "nvidia.com/gpu", "value": "present", "effect": "NoSchedule"}


@pytest.fixture(scope="module")
def ack():
    return run_stack("ack")


def pools(run):
    return {unwrap(r.inputs)["nodePoolName"]: r for r in run.of_type(NODE_POOL)}


def addons(run):
    return {unwrap(r.inputs)["name"]: unwrap(r.inputs) for r in run.of_type(ADDON)}


def test_cluster_is_ack_pro_in_two_zones_with_rrsa_and_terway(ack):
    spec = unwrap(ack.one(CLUSTER).inputs)
    assert spec["profile"] == "Default" and spec["clusterSpec"] == "ack.pro.small"
    assert spec["enableRrsa"] is True
    assert len(spec["vswitchIds"]) == 2 and len(spec["podVswitchIds"]) == 2
    assert {"terway-eniip", "csi-plugin", "csi-provisioner"} <= {a["name"] for a in spec["addons"]}
    zones = {unwrap(s.inputs)["zoneId"] for s in ack.of_type("alicloud:vpc/switch:Switch")}
    assert zones == {"cn-hangzhou-i", "cn-hangzhou-j"}


def test_gpu_pool_autoscales_with_the_catalog_type_tainted_and_labelled(ack):
    gpu = pools(ack)["gpu"]
    spec = unwrap(gpu.inputs)
    assert spec["instanceTypes"] == ["ecs.gn7i-c16g1.4xlarge"]
    assert spec["scalingConfig"] == {"enable": True, "minSize": 1, "maxSize": 3, "type": "gpu"}
    assert "desiredSize" not in spec  # the autoscaler owns the size
    assert spec["taints"] == [GPU_TAINT]
    assert {"key": "llm-serving/pool", "value": "gpu"} in spec["labels"]
    assert spec["imageType"] == "AliyunLinux3" and spec["spotStrategy"] == "NoSpot"
    assert spec["dataDisks"][0]["size"] >= 100 + 14  # engine image and the 7B weights
    assert gpu.delete_before_replace  # ACK refuses a second pool of the same name


def test_system_pool_is_small_fixed_and_untainted(ack):
    spec = unwrap(pools(ack)["system"].inputs)
    assert spec["desiredSize"] == "2" and "scalingConfig" not in spec
    assert "taints" not in spec and not spec["instanceTypes"][0].startswith("ecs.gn")


def test_spot_gpu_nodes_when_asked():
    spec = unwrap(pools(run_stack("ack", {"ack.spotInstances": True}))["gpu"].inputs)
    assert spec["spotStrategy"] == "SpotAsPriceGo"


def test_fixed_gpu_pool_has_a_desired_size_and_rolls_without_surge():
    run = run_stack("ack", {"gpuNodes.min": 2, "gpuNodes.max": 2, "scaling.maxReplicas": 2})
    spec = unwrap(pools(run)["gpu"].inputs)
    assert spec["desiredSize"] == "2" and "scalingConfig" not in spec
    strategy = run.kubernetes_object("Deployment")["spec"]["strategy"]["rollingUpdate"]
    assert (strategy["maxSurge"], strategy["maxUnavailable"]) == (0, 1)


def test_serving_pods_tolerate_the_taint_and_select_the_gpu_pool(ack):
    pod = ack.kubernetes_object("Deployment")["spec"]["template"]["spec"]
    assert pod["nodeSelector"] == {"llm-serving/pool": "gpu"}
    assert {"key": "nvidia.com/gpu", "operator": "Equal", "value": "present", "effect": "NoSchedule"} in pod[
        "tolerations"
    ]
    assert pod["containers"][0]["resources"]["limits"]["nvidia.com/gpu"] == "1"
    jobs = [o["spec"]["template"]["spec"] for o in ack.kubernetes_objects() if o["kind"] == "Job"]
    assert all("tolerations" not in job for job in jobs)  # helper Jobs (the benchmark) stay off the GPU nodes


def test_each_gpu_node_pulls_the_engine_image_as_it_joins_without_waiting_for_the_pool_or_the_import(ack):
    from cloud_rules.gcp import transitive_dependencies

    serving = ack.kubernetes_object("Deployment")["spec"]["template"]["spec"]
    prepull = ack.kubernetes_object("DaemonSet", "llm-engine-prepull")
    pod = prepull["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["image"] == serving["containers"][0]["image"] and container["command"] == ["sleep", "infinity"]
    assert pod["nodeSelector"] == serving["nodeSelector"] and pod["tolerations"] == serving["tolerations"]
    assert prepull["metadata"]["annotations"] == {"pulumi.com/skipAwait": "true"}  # up does not wait for the nodes
    resource = next(r for r in ack.of_type("kubernetes:apps/v1:DaemonSet") if "prepull" in r.name)
    before = transitive_dependencies(ack, resource.urn)
    assert not {p.urn for p in ack.of_type(NODE_POOL)} & before  # made beside the pools, not after them
    assert not {r.urn for r in ack.of_type("alicloud:ecs/ecsInvocation:EcsInvocation")} & before  # nor the import
    deployment = next(r for r in ack.of_type("kubernetes:apps/v1:Deployment"))
    assert resource.urn not in transitive_dependencies(ack, deployment.urn)  # serving pulls itself if it must


def test_model_store_uses_rrsa_with_the_clusters_oidc_provider(ack):
    volumes = [o for o in ack.kubernetes_objects() if o["kind"] == "PersistentVolume"]
    assert volumes and all(v["spec"]["csi"]["volumeAttributes"]["authType"] == "rrsa" for v in volumes)
    assert all("nodePublishSecretRef" not in v["spec"]["csi"] for v in volumes)
    assert not ack.of_type("alicloud:ram/accessKey:AccessKey")
    # The import workers' roles are ECS instance roles; this one is the volumes' RRSA role.
    role = next(r for r in ack.of_type("alicloud:ram/role:Role") if r.name == "llm-ack-models-oss-role")
    trust = json.loads(unwrap(role.inputs)["assumeRolePolicyDocument"])
    assert trust["Statement"][0]["Principal"]["Federated"] == ["acs:ram::1234:oidc-provider/ack-rrsa-c1"]


def test_hpa_scales_the_deployment_on_vllm_queue_with_a_slow_scale_down(ack):
    hpa = ack.kubernetes_object("HorizontalPodAutoscaler")
    spec = hpa["spec"]
    assert spec["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": "llm"}
    assert (spec["minReplicas"], spec["maxReplicas"]) == (1, 3)
    metric = spec["metrics"][0]
    assert metric["type"] == "Pods" and metric["pods"]["metric"]["name"] == "vllm_num_requests_waiting"
    assert metric["pods"]["target"] == {"type": "AverageValue", "averageValue": "5"}
    down = spec["behavior"]["scaleDown"]
    assert down["stabilizationWindowSeconds"] == 600 and down["policies"][0]["value"] == 1


def test_replicas_belong_to_the_hpa_after_creation(ack):
    deployment = ack.one("kubernetes:apps/v1:Deployment")
    assert deployment.ignore_changes == ["spec.replicas"]
    fixed = run_stack("ack", {"scaling.maxReplicas": 1}).one("kubernetes:apps/v1:Deployment")
    assert fixed.ignore_changes == []


def test_metrics_pipeline_prometheus_podmonitor_and_adapter(ack):
    installed = addons(ack)
    assert "arms-prometheus" in installed and "ack-alibaba-cloud-metrics-adapter" not in installed
    release = next(r for r in ack.of_type("kubernetes:helm.sh/v3:Release") if "adapter" in r.name)
    spec = unwrap(release.inputs)
    assert spec["chart"].endswith("/charts-incubator/ack-alibaba-cloud-metrics-adapter-1.3.3.tgz")
    assert spec["namespace"] == "kube-system" and spec["name"] == "ack-alibaba-cloud-metrics-adapter"
    config = spec["values"]["AlibabaCloudMetricsAdapter"]
    assert config["image"]["repository"].startswith("registry-cn-hangzhou-vpc.ack.aliyuncs.com/acs/")
    assert config["prometheus"]["url"] == "http://prom-1.arms-internal/api/v1/prometheus"  # this cluster's
    rule = config["prometheus"]["adapter"]["rules"]["custom"][0]
    assert "vllm:num_requests_waiting" in rule["seriesQuery"] and rule["name"]["as"] == "vllm_num_requests_waiting"
    monitor = ack.kubernetes_object("PodMonitor")
    assert monitor["spec"]["selector"] == {"matchLabels": {"app": "llm"}}
    assert monitor["spec"]["podMetricsEndpoints"][0] == {"port": "metrics", "path": "/metrics", "interval": "15s"}
    # The gateway's metrics listener (the API port answers /metrics with 404), which no Service publishes.
    pod = ack.kubernetes_object("Deployment")["spec"]["template"]["spec"]
    gateway = next(c for c in pod["containers"] if c["name"] == "gateway")
    assert {"name": "metrics", "containerPort": 8002, "protocol": "TCP"} in gateway["ports"]
    for service in (o for o in ack.kubernetes_objects() if o["kind"] == "Service"):
        assert all(p["targetPort"] == "http" for p in service["spec"]["ports"])
    prometheus = next(r for r in ack.of_type(ADDON) if unwrap(r.inputs)["name"] == "arms-prometheus")
    assert prometheus.urn in ack.one("kubernetes:monitoring.coreos.com/v1:PodMonitor").dependencies


def test_gpu_utilisation_metric_like_the_reference():
    run = run_stack("ack", {"scaling.metric": "DCGM_CUSTOM_PROCESS_SM_UTIL"})
    metric = run.kubernetes_object("HorizontalPodAutoscaler")["spec"]["metrics"][0]["pods"]
    assert metric["metric"]["name"] == "DCGM_CUSTOM_PROCESS_SM_UTIL" and metric["target"]["averageValue"] == "50"


def test_without_headroom_metrics_and_alerts_stay_but_no_adapter_or_hpa():
    run = run_stack("ack", {"scaling.maxReplicas": 1})
    assert not run.of_type("kubernetes:autoscaling/v2:HorizontalPodAutoscaler")
    assert not [r for r in run.of_type("kubernetes:helm.sh/v3:Release") if "adapter" in r.name]
    # Scraped and alerted on whether or not it autoscales.
    assert [unwrap(r.inputs)["name"] for r in run.of_type(ADDON)] == ["arms-prometheus"]
    assert run.kubernetes_object("PodMonitor")["spec"]["selector"] == {"matchLabels": {"app": "llm"}}
    assert len(run.of_type("alicloud:arms/prometheusAlertRule:PrometheusAlertRule")) == 5
    assert unwrap(run.outputs["autoscaling"]).startswith("off:")


def test_alert_rules_on_the_clusters_prometheus(ack):
    from core.observability import ALERTS

    rules = {unwrap(r.inputs)["prometheusAlertRuleName"]: unwrap(r.inputs) for r in ack.of_type(ARMS_ALERT)}
    assert sorted(rules) == sorted(f"{a.name}-llm" for a in ALERTS)
    queue = rules["LLMQueueGrowing-llm"]
    assert queue["clusterId"] == "llm-ack-cluster-id" and queue["duration"] == "10"
    assert 'vllm:num_requests_waiting{namespace="llm"}' in queue["expression"] and "$" not in queue["expression"]
    assert rules["LLMEngineRestarted-llm"]["duration"] == "1"  # the API's smallest
    assert all(r["notifyType"] == "ALERT_MANAGER" for r in rules.values())
    prometheus = next(r for r in ack.of_type(ADDON) if unwrap(r.inputs)["name"] == "arms-prometheus")
    assert all(prometheus.urn in r.dependencies for r in ack.of_type(ARMS_ALERT))


def test_sls_logging_installs_logtail_and_collects_the_engine_output():
    run = run_stack("ack", {"cluster.slsLogging": True})
    assert "logtail-ds" in {a["name"] for a in unwrap(run.one(CLUSTER).inputs)["addons"]}
    pipeline = run.kubernetes_object("ClusterAliyunPipelineConfig")
    spec = pipeline["spec"]
    assert spec["project"]["name"] == f"k8s-log-{run.one(CLUSTER).name}-id"  # the mock cluster's id
    assert spec["logstores"][0]["name"] == "llm-ack-serving"
    assert spec["config"]["inputs"][0]["ContainerFilters"]["IncludeK8sLabel"] == {"app": "llm"}
    assert spec["config"]["flushers"] == [{"Type": "flusher_sls", "Logstore": "llm-ack-serving"}]
    assert run.outputs["slsLogstore"] == "llm-ack-serving"


def test_objects_validate_and_custom_resources_are_named(ack):
    assert validate_kubernetes(ack) == ["monitoring.coreos.com/v1/PodMonitor"]


def test_kubeconfig_and_api_key_stay_secret(ack):
    assert {"apiKey", "kubeconfig"} <= ack.secret_outputs
    provider = ack.one("pulumi:providers:kubernetes")
    assert is_secret(provider.inputs["kubeconfig"]) and unwrap(provider.inputs["kubeconfig"]) == KUBECONFIG
    for resource in ack.resources:
        if resource.type in ("kubernetes:core/v1:Secret", "pulumi:providers:kubernetes"):
            continue
        assert not any("KUBE-TOKEN-SECRET" in s for s in all_strings(unwrap(resource.inputs))), resource.name
