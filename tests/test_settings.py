"""Configuration: defaults, the example stacks, and every bad input refused before any resource."""
import pytest

from core.errors import ConfigError
from core.settings import KEYS, from_mapping
from harness import Run, run_stack


def test_defaults_parse_into_a_serving_placement():
    settings = from_mapping({}, "dev")
    assert settings.target == "ecs"
    assert settings.model.name == "DeepSeek-R1-Distill-Qwen-7B"
    assert settings.placement.instance.gpu == "A10" and settings.placement.tensor_parallel == 1
    assert settings.api_key is None  # generated at deploy time


def test_gpu_count_zero_picks_the_fewest_gpus_that_fit():
    settings = from_mapping({"model": "QwQ-32B", "gpuKind": "A10"}, "x")
    assert settings.placement.instance.name == "ecs.gn7i-4x.8xlarge"


def test_prod_differs_from_dev_where_it_matters():
    from harness import stack_config
    dev, prod = stack_config("dev"), stack_config("prod")
    assert dev["llm:model"] == "DeepSeek-R1-Distill-Qwen-7B" and prod["llm:model"] == "QwQ-32B"
    assert prod["llm:deletionProtection"] == "true" and dev["llm:deletionProtection"] == "false"
    assert prod["llm:publicAccess"] == "false"


def test_secret_api_key_is_validated_without_printing_it():
    with pytest.raises(ConfigError) as error:
        from_mapping({"apiKey": "short'key"}, "dev")
    assert "****" in str(error.value) and "short'key" not in str(error.value)


def test_every_problem_is_reported_at_once():
    with pytest.raises(ConfigError) as error:
        from_mapping({"target": "nope", "engine": "tgi", "maxModelLen": "-1", "gpuMemoryUtilization": "2"}, "dev")
    keys = [p.key for p in error.value.problems]
    assert keys[:4] == ["target", "engine", "maxModelLen", "gpuMemoryUtilization"]


BAD_INPUTS = [
    # (overrides, key named in the error, fragment of the explanation)
    ({"target": "openstack"}, "target", "allowed: ecs, acs, ack, ack-edge, kubernetes, gke"),
    ({"kubeconfig": "apiVersion: v1"}, "kubeconfig", "stored in plaintext"),
    ({"model": "GPT-5"}, "model", "unknown model; the catalog has: Qwen3-235B-A22B"),
    ({"model": "QwQ-32B", "instanceType": "ecs.gn7i-c16g1.4xlarge"}, "model", "needs 71.1 GiB per GPU"),
    ({"model": "DeepSeek-R1", "instanceType": "ecs.gn7i-8x.16xlarge"}, "model", "cannot be served on ecs.gn7i-8x.16xlarge"),
    ({"model": "DeepSeek-R1-Distill-Qwen-7B", "instanceType": "ecs.gn7i-8x.16xlarge"}, "model",
     "tensor-parallel size 8 does not divide the 28 attention heads"),
    ({"publicAccess": True, "allowedCidrs": ["10.0.0.1/8"]}, "allowedCidrs", "has host bits set"),
    ({"publicAccess": True}, "allowedCidrs", "must list the CIDRs"),
    ({"sshCidrs": ["0.0.0.0/0"], "sshKeyPair": "me"}, "sshCidrs", "may not be opened to the whole internet"),
    ({"sshCidrs": ["198.51.100.0/24"]}, "sshKeyPair", "required when sshCidrs opens SSH"),
    ({"maxModelLen": 0}, "maxModelLen", "positive number of tokens"),
    ({"maxModelLen": 200000}, "maxModelLen", "exceeds the 131072-token context"),
    ({"systemDiskGb": -5}, "systemDiskGb", "must be 0 (automatic"),
    ({"systemDiskGb": 40}, "systemDiskGb", "smaller than the 140 GiB the model needs"),
    ({"gpuCount": -1}, "gpuCount", "must be 0"),
    ({"gpuKind": "TPU", "instanceType": ""}, "gpuKind", "no ECS instance type in the catalog carries it"),
    ({"gpuKind": "A10", "gpuCount": 3, "instanceType": ""}, "gpuCount", "available counts: [1, 4, 8]"),
    ({"instanceType": "ecs.g7.large"}, "instanceType", "not in the GPU instance catalog"),
    ({"engine": "tgi"}, "engine", "allowed: vllm, sglang"),
    ({"engineImage": "vllm/vllm-openai"}, "engineImage", "pinned tag"),
    ({"engineImage": "vllm/vllm-openai:latest"}, "engineImage", "pinned tag"),
    ({"gpuMemoryUtilization": "1.5"}, "gpuMemoryUtilization", "between 0 and 1"),
    ({"extraEngineArgs": ["--enable-reasoning"]}, "extraEngineArgs", "removed in vLLM 0.10"),
    ({"apiPort": 70000}, "apiPort", "1-65535"),
    ({"publicBandwidthMbps": 500}, "publicBandwidthMbps", "1-100 Mbps"),
    ({"region": "Hangzhou"}, "region", "region id like cn-hangzhou"),
    ({"vswitchCidr": "10.0.0.0/24"}, "vswitchCidr", "inside llm:vpcCidr"),
    ({"diskCategory": "ssd"}, "diskCategory", "must be one of"),
    ({"tags": ["novalue"]}, "tags", "key=value"),
    ({"model": "custom", "customModel": "{\"name\": \"x\"}"}, "customModel", "missing fields"),
    ({"maxNumSeqs": "many"}, "maxNumSeqs", "must be integer"),
    ({"hourlyPrices": ["gpu=3"]}, "hourlyPrices", "a key among gpu-host"),
    ({"hourlyPrices": ["gpu-host=cheap"]}, "hourlyPrices", "price >= 0"),
    ({"priceCurrency": "yuan"}, "priceCurrency", "ISO currency code"),
]


# Kubernetes targets, checked against the `acs` example stack (QwQ-32B on H20).
BAD_KUBERNETES_INPUTS = [
    ({"gpuKind": "A10"}, "gpuKind", "no ACS GPU series is known for it"),
    ({"acsGpuSeries": "H20 x"}, "acsGpuSeries", "must be a label value"),
    ({"acsComputeClass": "cpu"}, "acsComputeClass", "must be one of gpu, gpu-hpn"),
    ({"acsComputeQos": "premium"}, "acsComputeQos", "one of default, best-effort"),
    ({"replicas": 0}, "replicas", "at least 1"),
    ({"gpuCount": 3}, "gpuCount", "one of (1, 2, 4, 8)"),
    ({"podsPerReplica": 9}, "podsPerReplica", "1-4"),
    ({"podsPerReplica": 2, "engine": "sglang"}, "podsPerReplica", "only supported with vLLM"),
    ({"model": "DeepSeek-R1", "gpuCount": 4, "podsPerReplica": 1}, "model", "cannot be served on 1 pod(s) x 4x H20"),
    ({"publicAccess": True}, "allowedCidrs", "must list the CIDRs"),
    ({"shmGib": 200}, "shmGib", "smaller than the pod's 128 GiB"),
    ({"namespace": "LLM_ns"}, "namespace", "DNS-1123 label"),
    ({"modelBucket": "My_Bucket"}, "modelBucket", "3-63 lowercase"),
    ({"adoptModelBucket": True}, "adoptModelBucket", "needs llm:modelBucket"),
    ({"clusterZones": ["cn-hangzhou-i"]}, "clusterZones", "exactly two different zones"),
    ({"serviceCidr": "192.168.0.0/20"}, "serviceCidr", "overlaps llm:vpcCidr"),
    ({"vpcCidr": "192.168.0.0/24", "vswitchCidr": "192.168.0.0/26"}, "vpcCidr", "/20 or larger"),
    ({"vswitchCidr": "192.168.200.0/24"}, "vswitchCidr", "first half of 192.168.0.0/16"),
    ({"kubernetesVersion": "latest"}, "kubernetesVersion", "1.33.3-aliyun.1"),
    ({"jumpHostInstanceType": "g7.large"}, "jumpHostInstanceType", "ECS instance type"),
    ({"benchmark": True, "benchmarkDataset": "sonnet"}, "benchmarkDataset", "random, sharegpt"),
    ({"benchmark": True, "benchmarkRequestRate": "fast"}, "benchmarkRequestRate", "or inf"),
    ({"benchmark": True, "benchmarkInputLen": 32000}, "benchmarkInputLen", "exceed llm:maxModelLen 32768"),
    ({"benchmark": True, "engine": "sglang"}, "benchmark", "needs the vLLM image"),
]
# ack and ack-edge, checked against their example stacks.
BAD_ACK_INPUTS = [
    ({"ackGpuNodesMin": 3, "ackGpuNodesMax": 2}, "ackGpuNodesMin", "larger than llm:ackGpuNodesMax (2)"),
    ({"ackGpuNodesMax": 2, "maxReplicas": 3}, "ackGpuNodesMax", "fewer serving pods than llm:maxReplicas (3)"),
    ({"replicas": 3, "maxReplicas": 2}, "maxReplicas", "at least llm:replicas (3)"),
    ({"autoscalingMetric": "gpu"}, "autoscalingMetric", "unknown metric; allowed: vllm:num_requests_waiting"),
    ({"engine": "sglang"}, "autoscalingMetric", "SGLang does not export it"),
    ({"autoscalingMetric": "DCGM_CUSTOM_PROCESS_SM_UTIL", "autoscalingTarget": 150}, "autoscalingTarget", "at most 100"),
    ({"scaleDownStabilizationSeconds": 7200}, "scaleDownStabilizationSeconds", "0-3600"),
    ({"ackNodeImageType": "Windows"}, "ackNodeImageType", "must be one of AliyunLinux3"),
    ({"ackSystemNodeInstanceType": "g7.xlarge"}, "ackSystemNodeInstanceType", "ECS instance type"),
    ({"instanceType": "ecs.g7.large"}, "instanceType", "not in the GPU instance catalog"),
]
BAD_ACK_EDGE_INPUTS = [
    ({"edgeNodePoolId": ""}, "edgeNodePoolId", "is required"),
    ({"edgeNodePoolId": "pool-1"}, "edgeNodePoolId", "node pool id like"),
    ({"virtualNodeUnit": "ecs"}, "virtualNodeUnit", "must be one of eci, acs"),
    ({"virtualNodeUnit": "acs"}, "gpuKind", "no ACS GPU series is known"),
    ({"cloudMaxPods": -1}, "cloudMaxPods", "0 (IDC only)"),
    ({"eciInstanceTypes": ["gn6e"]}, "eciInstanceTypes", "at most 5 ECS instance types"),
    ({"edgePodCidr": "192.168.0.0/16"}, "edgePodCidr", "overlaps 192.168.0.0/16"),
    ({"autoscalingMetric": "qps"}, "autoscalingMetric", "unknown metric"),
    ({"replicas": 2, "maxReplicas": 1}, "maxReplicas", "at least llm:replicas (2)"),
]
# gke, checked against the `gke` example stack (DeepSeek-R1 on one a4-highgpu-8g).
BAD_GKE_INPUTS = [
    ({"gcpProject": ""}, "gcpProject", "required for target gke"),
    ({"gpuCount": 4}, "gpuCount", "tensor parallel 8"),
    ({"gpuKind": "H20"}, "gpuKind", "a4-highgpu-8g: 8x B200"),
    ({"gkeReservation": "sometimes"}, "gkeReservation", "unknown reservation mode; allowed: none, any, specific"),
    ({"gkeReservation": "specific"}, "gkeReservationName", "must name the reservation"),
    ({"gkeReleaseChannel": "beta"}, "gkeReleaseChannel", "RAPID, REGULAR, STABLE"),
    ({"gkeNodeCount": 1, "replicas": 2}, "gkeNodeCount", "at least 2"),
    ({"podsPerReplica": 2}, "podsPerReplica", "needs RDMA"),
    ({"podsPerReplica": 2, "gkeRdma": True}, "gkeNodeCount", "at least 2"),
    ({"gkeControlPlaneCidrs": ["203.0.113.7/24"]}, "gkeControlPlaneCidrs", "not a valid CIDR"),
    ({"podsPerReplica": 2, "gkeRdma": True, "gkeNodeCount": 2, "gkeModelSource": "download"}, "gkeModelSource",
     "reads the weights from the bucket"),
    ({"zone": "europe-west4-b"}, "zone", "inside llm:region us-central1"),
    ({"hfToken": "hf_0123456789abcdefghijKLMN"}, "hfToken", "stored in plaintext"),
]
CASES = [("dev", *b) for b in BAD_INPUTS] + [("acs", *b) for b in BAD_KUBERNETES_INPUTS] \
    + [("ack", *b) for b in BAD_ACK_INPUTS] + [("ack-edge", *b) for b in BAD_ACK_EDGE_INPUTS] \
    + [("gke", *b) for b in BAD_GKE_INPUTS]


@pytest.mark.parametrize("stack,overrides,key,fragment", CASES, ids=[f"{c[0]}-{c[2]}-{i}" for i, c in enumerate(CASES)])
def test_bad_input_is_refused_before_any_resource(stack, overrides, key, fragment):
    record = Run()
    with pytest.raises(ConfigError) as error:
        run_stack(stack, overrides, record=record)
    problem = next((p for p in error.value.problems if p.key == key), None)
    assert problem is not None, str(error.value)
    assert fragment in str(problem)
    assert problem.fix, "every problem says how to fix it"
    assert record.resources == [], "no resource may be registered when config is bad"


def test_plaintext_api_key_in_stack_config_is_refused():
    record = Run()
    with pytest.raises(ConfigError, match="stored in plaintext"):
        run_stack("dev", {"apiKey": "a" * 32}, record=record)
    assert record.resources == []


def test_zone_without_stock_is_refused_before_any_cloud_resource():
    record = Run()
    with pytest.raises(ConfigError, match="no zone of cn-hangzhou offers it now"):
        run_stack("dev", zones=[], record=record)
    assert [r.type for r in record.resources] == ["pulumi:providers:alicloud"]


def test_configured_zone_must_offer_the_instance_type():
    with pytest.raises(ConfigError, match="zones that do: \\['cn-hangzhou-i', 'cn-hangzhou-j'\\]"):
        run_stack("dev", {"zone": "cn-hangzhou-b"})


def test_custom_model_is_sized_like_catalog_models():
    custom = ('{"name": "Tiny-1B", "modelscopeId": "org/Tiny-1B", "hfId": "org/Tiny-1B", "paramsBillion": 1.2, '
              '"weightDtype": "bf16", "layers": 16, "attentionHeads": 16, "kvHeads": 8, "headDim": 64, '
              '"contextLength": 8192, "reasoning": "qwen3"}')
    settings = from_mapping({"model": "custom", "customModel": custom, "maxModelLen": "8192"}, "dev")
    assert settings.model.modelscope_id == "org/Tiny-1B"
    assert settings.placement.fit.fits


def test_key_table_has_unique_names_and_typed_defaults():
    names = [k.name for k in KEYS]
    assert len(names) == len(set(names))
    python_type = {"string": str, "integer": int, "boolean": bool, "array": list}
    for key in KEYS:
        assert isinstance(key.default, python_type[key.type]), key.name


def gke_config(**overrides) -> dict:
    from harness import stack_config
    config = {k.removeprefix("llm:"): v for k, v in stack_config("gke").items()}
    return {**config, **overrides}


def test_gke_refuses_a_gated_model_without_a_hugging_face_token(monkeypatch):
    import dataclasses

    from core import settings as core_settings
    gated = dataclasses.replace(core_settings.MODELS["DeepSeek-R1"], gated=True)
    monkeypatch.setitem(core_settings.MODELS, "DeepSeek-R1", gated)
    with pytest.raises(ConfigError) as error:
        from_mapping(gke_config(), "gke")
    problem = next(p for p in error.value.problems if p.key == "hfToken")
    assert "is gated on Hugging Face" in str(problem) and "--secret" in problem.fix
    assert from_mapping(gke_config(hfToken="hf_0123456789abcdefghijKLMN"), "gke").gke.hf_token is not None


def test_gke_hf_token_is_checked_without_printing_it():
    with pytest.raises(ConfigError) as error:
        from_mapping(gke_config(hfToken="not-a-token"), "gke")
    assert "Hugging Face access token" in str(error.value) and "not-a-token" not in str(error.value)


def test_gke_example_is_r1_on_one_a4_node_with_the_reference_benchmark():
    settings = from_mapping(gke_config(), "gke")
    assert settings.placement.gpus_per_pod == 8 and settings.placement.gpu.name == "B200"
    assert settings.workload.shm_gib == 250 and settings.gke.node_count == 1
    assert (settings.benchmark.prompts, settings.benchmark.input_len, settings.benchmark.output_len) == (1100, 1000, 1000)
