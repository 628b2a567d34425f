"""Configuration: the grouped schema, every bad input refused before any resource, each rule at its boundary.

Mocks cannot prove that the Pulumi CLI stores `pulumi config set --path` values exactly as the harness
does (JSON objects under the top-level key); that follows Pulumi's documented config format.
"""

import pytest
from harness import Run, run_stack, settings_for, unwrap

from core.config.problems import ConfigError


def problems_of(stack: str, overrides: dict, **kwargs) -> list:
    with pytest.raises(ConfigError) as error:
        settings_for(stack, overrides, **kwargs)
    return list(error.value.problems)


def problem(stack: str, overrides: dict, key: str):
    found = [p for p in problems_of(stack, overrides) if p.key == key]
    assert found, f"no problem for {key} in {problems_of(stack, overrides)}"
    return found[0]


# ------------------------------------------------------------------------------------------ defaults, groups


def test_dev_parses_into_one_a10_host_with_a_generated_key():
    settings = settings_for("dev")
    assert settings.target == "ecs" and settings.region == "cn-hangzhou"
    assert settings.model.name == "DeepSeek-R1-Distill-Qwen-7B"
    assert settings.placement.instance.name == "ecs.gn7i-c16g1.4xlarge" and settings.placement.tensor_parallel == 1
    assert settings.api_key is None  # generated at deploy time
    assert settings.tags == {"env": "dev"}


def test_gpu_count_zero_picks_the_fewest_gpus_that_fit():
    settings = settings_for("dev", {"model": "QwQ-32B", "placement.instanceType": None, "placement.gpuKind": "A10"})
    assert settings.placement.instance.name == "ecs.gn7i-4x.8xlarge"


def test_model_is_a_catalog_name_or_an_object_with_revision_and_served_name():
    short = settings_for("acs", {"model": "QwQ-32B"})
    full = settings_for("acs", {"model": {"name": "QwQ-32B", "revision": "v1.0", "servedName": "qwq"}})
    assert short.model == full.model and short.engine.served_model_name == "Qwen/QwQ-32B"
    assert (full.model_revision, full.engine.served_model_name) == ("v1.0", "qwq")


def test_a_custom_model_is_an_object_sized_like_catalog_models():
    custom = {
        "name": "Tiny-1B",
        "modelscopeId": "org/Tiny-1B",
        "hfId": "org/Tiny-1B",
        "paramsBillion": 1.2,
        "weightDtype": "bf16",
        "layers": 16,
        "attentionHeads": 16,
        "kvHeads": 8,
        "headDim": 64,
        "contextLength": 8192,
        "reasoning": "qwen3",
    }
    settings = settings_for("dev", {"model": {"custom": custom}, "engine.maxModelLen": 8192})
    assert settings.model.modelscope_id == "org/Tiny-1B" and settings.placement.fit.fits
    missing = problem("dev", {"model": {"custom": {"name": "x"}}}, "model.custom.modelscopeId")
    assert missing.allowed.startswith("is required: ModelScope repository id")


def test_maps_are_maps_tags_and_prices():
    settings = settings_for("dev", {"tags": {"team": "ml", "cost-center": "42"}, "cost.prices": {"gpu-host": 9.5}})
    assert settings.tags == {"team": "ml", "cost-center": "42"} and settings.cost.prices == {"gpu-host": 9.5}
    assert "not an allowed key" in problem("dev", {"cost.prices": {"gpu": 3}}, "cost.prices.gpu").allowed


def test_target_defaults_gpu_and_image():
    assert settings_for("acs", {"placement.gpuKind": None}).placement.gpu.name == "H20"
    kubernetes = settings_for("kubernetes")
    assert kubernetes.engine.image.startswith("docker.io/vllm/vllm-openai:")  # upstream outside mainland China
    mirrored = settings_for("kubernetes", {"kubernetes.mainlandChina": True})
    assert mirrored.engine.image.startswith("egs-registry.cn-hangzhou.cr.aliyuncs.com/")
    assert settings_for("dev").engine.image.startswith("egs-registry.")  # cn-hangzhou
    assert settings_for("dev", {"alicloud:region": "ap-southeast-1"}).engine.image.startswith("docker.io/")


def test_every_problem_is_reported_at_once():
    found = problems_of(
        "dev",
        {
            "engine.name": "tgi",
            "engine.maxModelLen": 0,
            "engine.gpuMemoryUtilization": 2,
            "access.apiPort": 0,
            "tags": {"aliyun:x": "y"},
        },
    )
    assert {p.key for p in found} == {
        "engine.name",
        "engine.maxModelLen",
        "engine.gpuMemoryUtilization",
        "access.apiPort",
        'tags["aliyun:x"]',
    }
    assert all(p.fix for p in found)


def test_bad_config_registers_no_resource():
    record = Run()
    with pytest.raises(ConfigError):
        run_stack("acs", {"engine.maxModelLen": 0}, record=record)
    assert record.resources == []


# ----------------------------------------------------------------------------- unknown and misplaced keys


@pytest.mark.parametrize(
    "overrides,key,hint",
    [
        ({"maxModelLength": 8192}, "maxModelLength", "did you mean llm:engine.maxModelLen?"),
        ({"engine.maxModelLength": 8192}, "engine.maxModelLength", "did you mean llm:engine.maxModelLen?"),
        ({"placement.gpukind": "A10"}, "placement.gpukind", "did you mean llm:placement.gpuKind?"),
        ({"engine.gpuKind": "A10"}, "engine.gpuKind", "did you mean llm:placement.gpuKind?"),
    ],
)
def test_an_unknown_key_is_refused_with_the_nearest_valid_key(overrides, key, hint):
    found = problem("dev", overrides, key)
    assert "is not a known key" in found.allowed and hint in found.allowed
    assert found.fix.startswith(f"pulumi config rm --path 'llm:{key}'")


def test_a_key_of_the_flat_schema_says_where_it_went():
    found = problem("dev", {"maxModelLen": 8192}, "maxModelLen")
    assert "it is now engine.maxModelLen" in found.allowed


@pytest.mark.parametrize(
    "stack,overrides,key,targets",
    [
        ("gke", {"ack.spotInstances": True}, "ack", "ack"),
        ("acs", {"access.publicBandwidthMbps": 50}, "access.publicBandwidthMbps", "ecs"),
        ("dev", {"benchmark.enabled": True}, "benchmark", "acs, ack, ack-edge, gke, kubernetes"),
        ("dev", {"placement.podsPerReplica": 2}, "placement.podsPerReplica", "acs, ack, ack-edge, gke, kubernetes"),
        ("kubernetes", {"cluster.apiCidrs": ["203.0.113.0/24"]}, "cluster", "acs, ack, ack-edge, gke"),
        ("kubernetes", {"tags": {"team": "ml"}}, "tags", "ecs, acs, ack, ack-edge"),
        ("ack", {"hfToken": "hf_0123456789abcdefghijKLMN"}, "hfToken", "gke"),
    ],
)
def test_a_key_that_does_not_apply_to_the_target_names_the_targets_it_applies_to(stack, overrides, key, targets):
    found = problem(stack, overrides, key)
    assert found.allowed.startswith(f"applies to target {targets} only")


# ------------------------------------------------------------------------------------ namespace, providers


def test_a_renamed_project_reads_and_reports_its_own_namespace():
    run = run_stack("acs", project="my-fork")
    assert run.outputs["target"] == "acs"
    with pytest.raises(ConfigError) as error:
        run_stack("acs", {"engine.maxModelLen": 0}, project="my-fork")
    assert "my-fork:engine.maxModelLen" in str(error.value) and "--path 'my-fork:engine.maxModelLen'" in str(
        error.value
    )


def test_alicloud_provider_config_reaches_the_alibaba_provider():
    run = run_stack("dev", {"alicloud:profile": "deploy", "alicloud:assumeRole": {"roleArn": "acs:ram::1:role/ci"}})
    provider = unwrap(run.one("pulumi:providers:alicloud").inputs)
    assert provider["profile"] == "deploy" and provider["region"] == "cn-hangzhou"
    assert "acs:ram::1:role/ci" in str(provider["assumeRole"])


def test_gcp_provider_config_reaches_the_google_provider():
    run = run_stack("gke", {"gcp:project": "my-other-project", "gcp:impersonateServiceAccount": "ci@p.iam.x"})
    provider = unwrap(run.one("pulumi:providers:gcp").inputs)
    assert provider["project"] == "my-other-project" and provider["impersonateServiceAccount"] == "ci@p.iam.x"
    cluster = unwrap(run.one("gcp:container/cluster:Cluster").inputs)
    assert cluster["project"] == "my-other-project"


def test_kubernetes_provider_config_reaches_the_existing_cluster_provider():
    run = run_stack("kubernetes", {"kubernetes:context": "gpu-cluster"})
    assert unwrap(run.one("pulumi:providers:kubernetes").inputs)["context"] == "gpu-cluster"


def test_a_secret_provider_setting_stays_secret():
    from harness import is_secret

    run = run_stack("dev", {"alicloud:secretKey": "SECRET-KEY-VALUE"}, secret_keys=["alicloud:secretKey"])
    assert is_secret(run.one("pulumi:providers:alicloud").inputs["secretKey"])


def test_an_unknown_provider_setting_is_refused():
    with pytest.raises(ConfigError, match=r"alicloud:regoin .*is not a setting of the alicloud provider"):
        run_stack("dev", {"alicloud:regoin": "cn-beijing"})


@pytest.mark.parametrize(
    "stack,key,value,fragment",
    [
        ("dev", "alicloud:region", "us-central1", "is a Google Cloud region"),
        ("dev", "alicloud:region", None, "is required for Alibaba Cloud targets"),
        ("gke", "gcp:region", "us-west-1", "is an Alibaba Cloud region"),
        ("gke", "gcp:project", None, "is required for target gke"),
        ("gke", "gcp:zone", "europe-west4-b", "inside gcp:region us-central1"),
    ],
)
def test_the_region_belongs_to_the_targets_cloud(stack, key, value, fragment):
    assert fragment in problem(stack, {key: value}, key).allowed


# ------------------------------------------------------------------------------------------------- secrets


def test_a_plaintext_api_key_is_refused_without_printing_it():
    found = problems_of("dev", {"apiKey": "a" * 32}, secret_keys=())
    assert [p.allowed for p in found] == ["is stored in plaintext in the stack config"]
    assert "a" * 32 not in str(found)


def test_an_api_key_is_checked_without_printing_it():
    found = problem("dev", {"apiKey": "short'key"}, "apiKey")
    assert found.value == "****" and "short'key" not in str(found)


def test_a_plaintext_kubeconfig_is_refused():
    assert (
        "in plaintext"
        in problem("kubernetes", {"kubernetes:kubeconfig": "apiVersion: v1"}, "kubernetes:kubeconfig").allowed
    )


@pytest.mark.parametrize(
    "arg",
    [
        "--api-key=x",
        "--api_key=x",
        "--api-key x",
        "--api-k",
        "--api",
        "--host 0.0.0.0",
        "--port=9000",
        "--enable-reasoning",
        "--uds=/tmp/vllm.sock",
        "--grpc-port 50051",
        "--ssl-keyfile=/k.pem",
        "--ssl-certfile /c.pem",
        "--shutdown-timeout=600",
    ],
)
def test_extra_args_cannot_set_the_key_host_or_port_in_any_spelling(arg):
    found = problem("dev", {"engine.extraArgs": ["--enable-prefix-caching", arg]}, "engine.extraArgs[1]")
    assert "may not be set here" in found.allowed


def test_extra_args_pass_ordinary_flags():
    settings = settings_for("dev", {"engine.extraArgs": ["--enable-prefix-caching", "--max-num-batched-tokens=8192"]})
    assert settings.engine.extra_args == ("--enable-prefix-caching", "--max-num-batched-tokens=8192")


def test_gke_refuses_a_gated_model_without_a_hugging_face_token():
    gated = {
        "name": "Gated-7B",
        "modelscopeId": "org/Gated-7B",
        "hfId": "org/Gated-7B",
        "paramsBillion": 7.6,
        "weightDtype": "bf16",
        "layers": 28,
        "attentionHeads": 32,
        "kvHeads": 8,
        "headDim": 128,
        "contextLength": 32768,
        "gated": True,
    }
    assert "is gated on Hugging Face" in problem("gke", {"model": {"custom": gated}}, "hfToken").allowed
    settings = settings_for("gke", {"model": {"custom": gated}, "hfToken": "hf_0123456789abcdefghijKLMN"})
    assert settings.gke.hf_token is not None


def test_catalog_models_are_not_gated():
    from core.catalog import MODELS

    assert [m.name for m in MODELS.values() if m.gated] == []


# ----------------------------------------------------------------------------------------------- boundaries

# (stack, key, the limit, one past it, the source of the limit)
LIMITS = [
    ("dev", "access.apiPort", 65535, 65536),  # TCP ports
    ("dev", "access.apiPort", 1, 0),
    ("dev", "access.publicBandwidthMbps", 100, 101),  # ECS internet_max_bandwidth_out [0, 100]
    ("dev", "access.publicBandwidthMbps", 1, 0),
    ("dev", "disk.sizeGib", 2048, 2049),  # ECS ESSD system disk
    ("dev", "ecs.readinessTimeoutMinutes", 1380, 1381),  # Cloud Assistant runs a command at most 24 h
    ("dev", "placement.gpuCount", 8, 9),  # no machine or pod here has more than 8 GPUs
    ("dev", "engine.maxModelLen", 131072, 131073),  # the 7B model's context
    ("dev", "engine.maxModelLen", 1, 0),
    ("dev", "engine.maxNumSeqs", 65536, 65537),
    ("acs", "scaling.replicas", 100, 101),
    ("acs", "scaling.replicas", 1, 0),
    ("acs", "placement.podsPerReplica", 4, 5),
    ("acs", "workload.shmGib", 2048, 2049),
    ("ack", "scaling.scaleDownStabilizationSeconds", 3600, 3601),  # autoscaling/v2 stabilizationWindowSeconds
    ("ack", "gpuNodes.max", 1000, 1001),  # ESS scaling group MaxSize / GKE nodes per pool and zone
    ("ack-edge", "ackEdge.cloudMaxPods", 100, 101),
    ("acs", "benchmark.prompts", 100000, 100001),
]


@pytest.mark.parametrize("stack,key,limit,past", LIMITS, ids=[f"{k}={p}" for _, k, _, p in LIMITS])
def test_each_bound_admits_its_limit_and_refuses_one_past_it(stack, key, limit, past):
    # What else the limit needs to hold (a context that long needs GPUs for its KV cache, and so on).
    extra = {
        ("engine.maxModelLen", 131072): {"placement.instanceType": "ecs.gn7i-4x.8xlarge"},
        ("gpuNodes.max", 1000): {"scaling.maxReplicas": 3},
        ("workload.shmGib", 2048): {"workload.memoryGibPerPod": 3968},
        ("placement.gpuCount", 8): {"model": "QwQ-32B", "placement.instanceType": "ecs.gn7i-8x.16xlarge"},
    }.get((key, limit), {})
    settings_for(stack, {key: limit, **extra})
    found = problem(stack, {key: past, **extra}, key)
    assert found.value == past and found.fix


def test_gpu_memory_utilization_is_strictly_between_zero_and_one():
    settings_for("dev", {"engine.gpuMemoryUtilization": 0.99})
    for bad in (0, 1, 1.5):
        assert (
            "between 0 and 1"
            in problem("dev", {"engine.gpuMemoryUtilization": bad}, "engine.gpuMemoryUtilization").allowed
        )


def test_eci_specs_admit_five_types_and_refuse_six():
    five = ["ecs.gn6e-c12g1.3xlarge"] * 5
    settings_for("ack-edge", {"ackEdge.eciInstanceTypes": five})
    assert (
        "at most 5"
        in problem("ack-edge", {"ackEdge.eciInstanceTypes": five + five[:1]}, "ackEdge.eciInstanceTypes").allowed
    )


@pytest.mark.parametrize(
    "key,limit_ok,past",
    [
        ("workload.namespace", "a" * 63, "a" * 64),  # DNS-1123 label
        ("modelStore.bucket", "a" * 63, "a" * 64),  # OSS bucket names
        ("modelStore.bucket", "abc", "ab"),
        ("apiKey", "k" * 256, "k" * 257),
        ("apiKey", "k" * 16, "k" * 15),
        ("model.servedName", "m" * 128, "m" * 129),
        ("model.revision", "r" * 128, "r" * 129),
    ],
)
def test_each_name_rule_admits_its_longest_or_shortest_and_refuses_one_past(key, limit_ok, past):
    settings_for("acs", {key: limit_ok})
    assert problem("acs", {key: past}, key)


@pytest.mark.parametrize(
    "key,good",
    [
        ("workload.namespace", "llm"),
        ("model.servedName", "qwq-32b"),
        ("model.revision", "master"),
        ("apiKey", "k" * 32),
        ("engine.image", "docker.io/vllm/vllm-openai:v0.11.0"),
        ("modelStore.bucket", "my-models"),
        ("acs.gpuSeries", "H20"),
        ("placement.gpuKind", "H20"),
    ],
)
def test_a_value_with_a_trailing_newline_is_refused(key, good):
    settings_for("acs", {key: good})
    assert problem("acs", {key: good + "\n"}, key)


@pytest.mark.parametrize("image", ["docker.io/vllm/vllm-openai", "docker.io/vllm/vllm-openai:latest"])
def test_an_engine_image_must_carry_a_pinned_tag(image):
    assert "pinned tag" in problem("dev", {"engine.image": image}, "engine.image").allowed


def test_cidrs_are_ipv4_where_the_field_is_ipv4():
    assert (
        "IPv4"
        in problem(
            "dev", {"access.sshCidrs": ["2001:db8::/32"], "access.sshKeyPair": "me"}, "access.sshCidrs[0]"
        ).allowed
    )


# ------------------------------------------------------------------------------- rules that span keys


BAD_INPUTS = [
    # (stack, overrides, key named in the error, fragment of the explanation)
    ("dev", {"model": "GPT-5"}, "model.name", "unknown model; the catalog has: Qwen3-235B-A22B"),
    ("dev", {"model": "QwQ-32B"}, "model.name", "needs 71.1 GiB per GPU"),
    (
        "dev",
        {"model": "DeepSeek-R1", "placement.instanceType": "ecs.gn7i-8x.16xlarge"},
        "model.name",
        "cannot be served on ecs.gn7i-8x.16xlarge",
    ),
    (
        "dev",
        {"placement.instanceType": "ecs.gn7i-8x.16xlarge"},
        "model.name",
        "tensor-parallel size 8 does not divide the 28 attention heads",
    ),
    (
        "dev",
        {"access.public": True, "access.allowedCidrs": ["10.0.0.1/8"]},
        "access.allowedCidrs[0]",
        "has host bits set",
    ),
    ("dev", {"access.public": True}, "access.allowedCidrs", "must list the CIDRs"),
    (
        "dev",
        {"access.sshCidrs": ["0.0.0.0/0"], "access.sshKeyPair": "me"},
        "access.sshCidrs[0]",
        "may not be opened to the whole internet",
    ),
    ("dev", {"access.sshCidrs": ["198.51.100.0/24"]}, "access.sshKeyPair", "required when sshCidrs opens SSH"),
    ("dev", {"access.apiPort": 22}, "access.apiPort", "is SSH's port"),
    ("dev", {"engine.maxModelLen": 200000}, "engine.maxModelLen", "exceeds the 131072-token context"),
    ("dev", {"disk.sizeGib": 40}, "disk.sizeGib", "smaller than the 140 GiB the model needs"),
    (
        "dev",
        {"placement.gpuKind": "TPU", "placement.instanceType": None},
        "placement.gpuKind",
        "no ECS instance type in the catalog carries it",
    ),
    (
        "dev",
        {"placement.gpuCount": 3, "placement.instanceType": None},
        "placement.gpuCount",
        "available counts: [1, 4, 8]",
    ),
    ("dev", {"placement.instanceType": "ecs.g7.large"}, "placement.instanceType", "not in the GPU instance catalog"),
    ("dev", {"engine.name": "tgi"}, "engine.name", "must be one of vllm, sglang"),
    ("dev", {"network.vswitchCidr": "10.0.0.0/24"}, "network.vswitchCidr", "inside network.vpcCidr"),
    ("dev", {"disk.category": "ssd"}, "disk.category", "must be one of"),
    ("dev", {"engine.maxNumSeqs": "many"}, "engine.maxNumSeqs", "must be a whole number"),
    ("dev", {"cost.currency": "yuan"}, "cost.currency", "ISO currency code"),
    ("dev", {"deletionProtection": "yes"}, "deletionProtection", "must be true or false"),
    ("acs", {"placement.gpuKind": "A10"}, "placement.gpuKind", "no ACS GPU series is known for it"),
    ("acs", {"acs.gpuSeries": "H20 x"}, "acs.gpuSeries", "must be a Kubernetes label value"),
    ("acs", {"acs.computeClass": "cpu"}, "acs.computeClass", "must be one of gpu, gpu-hpn"),
    ("acs", {"placement.gpuCount": 3}, "placement.gpuCount", "one of (1, 2, 4, 8)"),
    (
        "acs",
        {"placement.podsPerReplica": 2, "engine.name": "sglang"},
        "placement.podsPerReplica",
        "only supported with vLLM",
    ),
    (
        "acs",
        {"model": "DeepSeek-R1", "placement.gpuCount": 4, "placement.podsPerReplica": 1},
        "model.name",
        "cannot be served on 1 pod(s) x 4x H20",
    ),
    ("acs", {"workload.shmGib": 200}, "workload.shmGib", "smaller than the pod's 128 GiB"),
    ("acs", {"modelStore.adopt": True}, "modelStore.adopt", "needs modelStore.bucket"),
    ("acs", {"network.zones": ["cn-hangzhou-i"]}, "network.zones", "exactly two different zones"),
    ("acs", {"network.serviceCidr": "192.168.0.0/20"}, "network.serviceCidr", "overlaps network.vpcCidr"),
    (
        "acs",
        {"network.vpcCidr": "192.168.0.0/24", "network.vswitchCidr": "192.168.0.0/26"},
        "network.vpcCidr",
        "/20 or larger",
    ),
    ("acs", {"network.vswitchCidr": "192.168.200.0/24"}, "network.vswitchCidr", "first half of 192.168.0.0/16"),
    ("acs", {"cluster.kubernetesVersion": "latest"}, "cluster.kubernetesVersion", "1.33.3-aliyun.1"),
    ("acs", {"acs.jumpHost.instanceType": "g7.large"}, "acs.jumpHost.instanceType", "ECS instance type"),
    ("acs", {"benchmark.enabled": True, "benchmark.dataset": "sonnet"}, "benchmark.dataset", "random, sharegpt"),
    ("acs", {"benchmark.enabled": True, "benchmark.requestRate": "fast"}, "benchmark.requestRate", "or inf"),
    (
        "acs",
        {"benchmark.enabled": True, "benchmark.inputLen": 32000},
        "benchmark.inputLen",
        "exceed engine.maxModelLen 32768",
    ),
    ("acs", {"benchmark.enabled": True, "engine.name": "sglang"}, "benchmark.enabled", "needs the vLLM image"),
    ("ack", {"gpuNodes.min": 3, "gpuNodes.max": 2}, "gpuNodes.min", "larger than gpuNodes.max (2)"),
    (
        "ack",
        {"gpuNodes.max": 2, "scaling.maxReplicas": 3},
        "gpuNodes.max",
        "fewer serving pods than scaling.maxReplicas (3)",
    ),
    ("ack", {"scaling.replicas": 3, "scaling.maxReplicas": 2}, "scaling.maxReplicas", "at least scaling.replicas (3)"),
    ("ack", {"scaling.metric": "gpu"}, "scaling.metric", "must be one of vllm:num_requests_waiting"),
    ("ack", {"engine.name": "sglang"}, "scaling.metric", "SGLang does not export it"),
    ("ack", {"scaling.metric": "DCGM_CUSTOM_PROCESS_SM_UTIL", "scaling.target": 150}, "scaling.target", "at most 100"),
    ("ack", {"cluster.nodeImageType": "Windows"}, "cluster.nodeImageType", "must be one of AliyunLinux3"),
    ("ack", {"cluster.systemNodeInstanceType": "g7.xlarge"}, "cluster.systemNodeInstanceType", "ECS instance type"),
    ("ack-edge", {"ackEdge.nodePoolId": None}, "ackEdge.nodePoolId", "is required"),
    ("ack-edge", {"ackEdge.nodePoolId": "pool-1"}, "ackEdge.nodePoolId", "node pool id like"),
    ("ack-edge", {"ackEdge.virtualNodeUnit": "ecs"}, "ackEdge.virtualNodeUnit", "must be one of eci, acs"),
    ("ack-edge", {"ackEdge.virtualNodeUnit": "acs"}, "placement.gpuKind", "no ACS GPU series is known"),
    ("ack-edge", {"ackEdge.podCidr": "192.168.0.0/16"}, "ackEdge.podCidr", "overlaps 192.168.0.0/16"),
    ("gke", {"placement.gpuCount": 4}, "placement.gpuCount", "a4-highgpu-8g has 8 GPU(s)"),
    ("gke", {"placement.gpuKind": "H20"}, "placement.gpuKind", "gke.machineType a4-highgpu-8g carries B200"),
    (
        "gke",
        {"gke.machineType": None, "placement.gpuKind": "H20"},
        "placement.gpuKind",
        "no GKE machine of the catalog carries it; available: B200, H100, H200, L4",
    ),
    ("gke", {"gke.machineType": None, "placement.gpuCount": 3}, "placement.gpuCount", "available counts: [1, 2, 4, 8]"),
    ("gke", {"gke.machineType": "n1-standard-4"}, "gke.machineType", "must be a GPU machine of the catalog"),
    ("gke", {"gke.machineType": "g2-standard-96"}, "model.name", "cannot be served on g2-standard-96"),
    ("gke", {"gke.machineType": "a3-ultragpu-8g", "gke.rdma": True}, "gke.rdma", "for the A4 machine only"),
    (
        "gke",
        {"gke.machineType": "a3-ultragpu-8g", "gke.rdma": True, "placement.podsPerReplica": 2, "gpuNodes.min": 2},
        "placement.podsPerReplica",
        "built here for a4-highgpu-8g only",
    ),
    ("gke", {"workload.cpuPerPod": 224}, "workload.cpuPerPod", "224 vCPUs do not fit on a4-highgpu-8g"),
    (
        "gke",
        {"gke.capacity.mode": "sometimes"},
        "gke.capacity.mode",
        "must be one of on-demand, reservation, spot, flex-start",
    ),
    ("gke", {"gke.capacity.mode": "reservation"}, "gke.capacity.reservation", "must name the specific reservation"),
    ("gke", {"gke.capacity.mode": "on-demand"}, "gke.capacity.mode", "a4-highgpu-8g cannot be had on-demand"),
    ("gke", {"gke.capacity.reservation": "r1"}, "gke.capacity.reservation", "only used when gke.capacity.mode is"),
    ("gke", {"gke.capacity.maxRunHours": 24}, "gke.capacity.maxRunHours", "only used when gke.capacity.mode is"),
    (
        "gke",
        {
            "gke.capacity.mode": "reservation",
            "gke.capacity.reservation": "r/reservationBlocks/b/reservationSubBlocks/c",
        },
        "gke.capacity.reservation",
        "must be a reservation: <name>, <name>/reservationBlocks/<block>",
    ),
    ("gke", {"gke.reservation.mode": "specific"}, "gke.reservation", "is a key of an earlier version"),
    (
        "gke",
        {
            "gke.machineType": None,
            "placement.gpuKind": "H100",
            "gke.capacity.mode": "on-demand",
            "model.name": "DeepSeek-R1-Distill-Qwen-7B",
            "workload": {},
        },
        "gke.capacity.mode",
        "none of a3-highgpu-1g, a3-highgpu-2g, a3-highgpu-4g, a3-highgpu-8g can be had on-demand",
    ),
    ("gke", {"gke.releaseChannel": "beta"}, "gke.releaseChannel", "RAPID, REGULAR, STABLE"),
    ("gke", {"gpuNodes.min": 1, "scaling.replicas": 2}, "gpuNodes.min", "at least 2"),
    ("gke", {"placement.podsPerReplica": 2}, "placement.podsPerReplica", "needs RDMA"),
    ("gke", {"placement.podsPerReplica": 2, "gke.rdma": True}, "gpuNodes.min", "at least 2"),
    ("gke", {"cluster.apiCidrs": ["203.0.113.7/24"]}, "cluster.apiCidrs[0]", "has host bits set"),
    ("gke", {"cluster.apiCidrs": []}, "cluster.apiCidrs", "gke needs the networks that may reach the cluster's"),
    (
        "gke",
        {"placement.podsPerReplica": 2, "gke.rdma": True, "gpuNodes.min": 2, "gke.modelSource": "download"},
        "gke.modelSource",
        "reads the weights from the bucket",
    ),
    ("gke", {"hfToken": "not-a-token"}, "hfToken", "Hugging Face access token"),
]


@pytest.mark.parametrize(
    "stack,overrides,key,fragment", BAD_INPUTS, ids=[f"{s}-{k}-{i}" for i, (s, _, k, _) in enumerate(BAD_INPUTS)]
)
def test_bad_input_is_refused_before_any_resource(stack, overrides, key, fragment):
    record = Run()
    with pytest.raises(ConfigError) as error:
        run_stack(stack, overrides, record=record)
    found = next((p for p in error.value.problems if p.key == key), None)
    assert found is not None, str(error.value)
    assert fragment in str(found)
    assert found.fix, "every problem says how to fix it"
    assert record.resources == [], "no resource may be registered when config is bad"


def test_zone_without_stock_is_refused_before_any_cloud_resource():
    record = Run()
    with pytest.raises(ConfigError, match="no zone of cn-hangzhou offers it now"):
        run_stack("dev", zones=[], record=record)
    assert [r.type for r in record.resources] == ["pulumi:providers:alicloud"]


def test_configured_zone_must_offer_the_instance_type():
    with pytest.raises(ConfigError, match="zones that do: \\['cn-hangzhou-i', 'cn-hangzhou-j'\\]"):
        run_stack("dev", {"placement.zone": "cn-hangzhou-b"})


def test_gke_example_is_r1_on_one_a4_node_with_the_reference_benchmark():
    settings = settings_for("gke")
    assert settings.placement.gpus_per_pod == 8 and settings.placement.gpu.name == "B200"
    assert settings.workload.shm_gib == 250 and settings.gke.node_count == 1
    benchmark = settings.benchmark
    assert (benchmark.prompts, benchmark.input_len, benchmark.output_len) == (1100, 1000, 1000)


# ------------------------------------------------------------------------------------------------- gateway

ROUTE = {"path": "/v1/embeddings", "method": "POST", "reason": "embeddings for the search index"}


def test_the_gateway_forwards_the_default_routes_and_extra_ones_in_order():
    from core.gateway import DEFAULT_ROUTES, GATEWAY_IMAGE

    assert settings_for("dev").gateway.routes == DEFAULT_ROUTES
    settings = settings_for("dev", {"gateway.extraRoutes": [ROUTE, {**ROUTE, "path": "/tokenize"}]})
    assert settings.gateway.routes == (*DEFAULT_ROUTES, ("/v1/embeddings", "POST"), ("/tokenize", "POST"))
    assert settings_for("dev", {"alicloud:region": "ap-southeast-1"}).gateway.image == GATEWAY_IMAGE


def test_the_gateway_image_follows_the_region_unless_set():
    from core.gateway import GATEWAY_IMAGE_CN

    assert settings_for("dev", {"alicloud:region": "cn-hangzhou"}).gateway.image == GATEWAY_IMAGE_CN
    mirrored = "registry.cn-hangzhou.aliyuncs.com/me/nginx:1.30.6-alpine"
    assert settings_for("dev", {"alicloud:region": "cn-hangzhou", "gateway.image": mirrored}).gateway.image == mirrored


@pytest.mark.parametrize(
    ("route", "key", "fragment"),
    [
        ({"path": "/v1/embeddings"}, "gateway.extraRoutes[0].reason", "is required: Why clients need the path"),
        ({**ROUTE, "reason": "x" * 9}, "gateway.extraRoutes[0].reason", "10-300 characters"),
        ({**ROUTE, "reason": "x" * 301}, "gateway.extraRoutes[0].reason", "10-300 characters"),
        ({**ROUTE, "path": "/health"}, "gateway.extraRoutes[0].path", "answers it itself"),
        ({**ROUTE, "path": "/metrics"}, "gateway.extraRoutes[0].path", "their own port for Prometheus"),
        ({**ROUTE, "path": "/v1/models"}, "gateway.extraRoutes[0].path", "is forwarded already"),
        ({**ROUTE, "path": "/v1//models"}, "gateway.extraRoutes[0].path", "plain path"),
        ({**ROUTE, "path": "/v1/../invocations"}, "gateway.extraRoutes[0].path", "plain path"),
        ({**ROUTE, "path": "v1/embeddings"}, "gateway.extraRoutes[0].path", "an absolute path"),
        ({**ROUTE, "path": "/v1/embeddings?x=1"}, "gateway.extraRoutes[0].path", "an absolute path"),
        ({**ROUTE, "method": "DELETE"}, "gateway.extraRoutes[0].method", "must be one of GET, POST"),
        ({**ROUTE, "reasn": "typo"}, "gateway.extraRoutes[0].reasn", "did you mean llm:gateway.extraRoutes[0].reason"),
    ],
)
def test_an_extra_route_without_a_reason_or_that_reopens_a_closed_path_is_refused(route, key, fragment):
    found = problem("dev", {"gateway.extraRoutes": [route]}, key)
    assert fragment in str(found)
    assert "pulumi config" in found.fix


@pytest.mark.parametrize("length", [10, 300])
def test_a_reason_at_the_length_limits_passes(length):
    settings = settings_for("dev", {"gateway.extraRoutes": [{**ROUTE, "reason": "x" * length}]})
    assert settings.gateway.routes[-1] == ("/v1/embeddings", "POST")


def test_the_same_extra_path_twice_is_refused():
    found = problem("dev", {"gateway.extraRoutes": [ROUTE, ROUTE]}, "gateway.extraRoutes[1].path")
    assert "is forwarded already" in found.allowed
    assert found.fix == "pulumi config rm --path 'llm:gateway.extraRoutes[1]'"


@pytest.mark.parametrize("image", ["docker.io/library/nginx", "docker.io/library/nginx:latest"])
def test_an_unpinned_gateway_image_is_refused(image):
    assert "pinned tag or digest" in problem("dev", {"gateway.image": image}, "gateway.image").allowed


PERSONAL_ACR = "crpi-a1b2c3d4e5-vpc.cn-hangzhou.personal.cr.aliyuncs.com/llm"


@pytest.mark.parametrize(
    ("key", "image"),
    [
        ("engine.image", f"{PERSONAL_ACR}/vllm-openai:v0.11.0"),
        ("engine.image", "crpi-a1b2c3d4e5.cn-hangzhou.personal.cr.aliyuncs.com/llm/vllm-openai:v0.11.0"),  # public
        ("gateway.image", f"{PERSONAL_ACR}/nginx:1.30.6-alpine"),
    ],
)
def test_an_image_on_a_new_personal_acr_endpoint_is_refused_as_nothing_logs_in_to_pull_it(key, image):
    found = problem("dev", {key: image}, key)
    assert "refuses pulls without a login" in found.allowed
    assert "engine.mirror" in found.fix


@pytest.mark.parametrize(
    "image",
    [
        "registry-vpc.cn-hangzhou.aliyuncs.com/me/vllm-openai:v0.11.0",  # an instance from before 2024-09-09
        "myacr-registry-vpc.cn-hangzhou.cr.aliyuncs.com/llm/vllm-openai:v0.11.0",  # Enterprise Edition
        "crpi-a1b2c3d4e5-vpc.cn-hangzhou.personal.cr.aliyuncs.com.example.org/llm/vllm-openai:v0.11.0",
    ],
)
def test_other_acr_endpoints_are_taken(image):
    assert settings_for("dev", {"engine.image": image}).engine.image == image


INVOCATIONS = {"path": "/invocations", "method": "POST", "reason": "a SageMaker-style client"}


@pytest.mark.parametrize(
    ("image", "refused"),
    [
        (None, True),  # the mainland default: EGS vLLM 0.11.0
        ("docker.io/vllm/vllm-openai:v0.14.0", True),
        ("docker.io/vllm/vllm-openai:v0.14.1", False),  # the release that fixed the RCE through /invocations
        ("docker.io/vllm/vllm-openai:v0.32.0", False),
    ],
)
def test_invocations_is_forwarded_only_to_a_vllm_without_its_remote_code_execution(image, refused):
    overrides = {"gateway.extraRoutes": [INVOCATIONS], **({"engine.image": image} if image else {})}
    if refused:
        found = problem("dev", overrides, "gateway.extraRoutes[0].path")
        assert "remote code execution" in found.allowed and "0.14.1" in found.allowed
        assert "llm:engine.image" in found.fix and "pulumi config rm --path 'llm:gateway.extraRoutes[0]'" in found.fix
    else:
        assert settings_for("dev", overrides).gateway.routes[-1] == ("/invocations", "POST")


def test_sglang_may_have_invocations_forwarded():
    overrides = {"engine.name": "sglang", "gateway.extraRoutes": [INVOCATIONS]}
    assert settings_for("dev", overrides).gateway.routes[-1] == ("/invocations", "POST")


def test_there_is_no_switch_to_turn_the_gateway_off():
    found = problem("dev", {"gateway.enabled": False}, "gateway.enabled")
    assert "is not a known key" in found.allowed


# ------------------------------------------------------------------------------------------ gke machines

R1_ANYWHERE = {"gke.machineType": None}


def gke_machine(overrides: dict) -> str:
    return settings_for("gke", overrides).gke.machine.name


def test_gke_takes_the_smallest_machine_that_holds_the_model_and_the_pod():
    # DeepSeek-R1 (689 GB) needs 8 GPUs of at least H200 class: A3 Ultra before A4 (smaller GPU).
    assert gke_machine(R1_ANYWHERE) == "a3-ultragpu-8g"
    seven_b = {**R1_ANYWHERE, "model.name": "DeepSeek-R1-Distill-Qwen-7B", "workload": {}, "engine": {}}
    # One L4 holds the 7B; g2-standard-4 (4 vCPU, 16 GiB) cannot hold the default pod (4 vCPU, 24 GiB).
    assert gke_machine(seven_b) == "g2-standard-8"
    assert gke_machine({**seven_b, "workload.cpuPerPod": 2, "workload.memoryGibPerPod": 10}) == "g2-standard-4"
    assert gke_machine({**seven_b, "placement.gpuKind": "H100"}) == "a3-highgpu-1g"
    settings = settings_for("gke", {**seven_b, "placement.gpuKind": "H100"})
    assert (settings.placement.gpus_per_pod, settings.placement.gpu.name) == (1, "H100")


def test_gke_refuses_a_model_no_machine_of_the_kind_holds_and_names_the_machines_that_would():
    found = problem("gke", {**R1_ANYWHERE, "placement.gpuKind": "L4"}, "model.name")
    assert "cannot be served on any of" in found.allowed and "g2-standard-96" in found.allowed
    assert "a3-ultragpu-8g (8x H200; " in found.fix and "a4-highgpu-8g (8x B200; " in found.fix
    assert "g2-standard" not in found.fix


def test_gke_refuses_a_model_that_fits_no_machine():
    huge = {
        "name": "Huge-4T",
        "modelscopeId": "org/Huge-4T",
        "hfId": "org/Huge-4T",
        "paramsBillion": 2000,
        "weightDtype": "bf16",
        "layers": 64,
        "attentionHeads": 64,
        "kvHeads": 8,
        "headDim": 128,
        "contextLength": 8192,
    }
    found = problem("gke", {**R1_ANYWHERE, "model": {"custom": huge}, "engine.maxModelLen": 8192}, "model.name")
    assert found.fix == "no catalog GKE machine fits this model"


@pytest.mark.parametrize(
    "key, fits, one_past",
    [
        # a4-highgpu-8g: 223.37 allocatable vCPUs (GKE's reservation tiers) less 1.5 for daemons and the sidecar.
        ("workload.cpuPerPod", 221, 222),
        # 3968 GiB less GKE's memory tiers (86.1 GiB) and 100 MiB for evictions, less 3 GiB for daemons.
        ("workload.memoryGibPerPod", 3878, 3879),
    ],
)
def test_gke_pod_must_fit_the_machine_allocatable(key, fits, one_past):
    assert settings_for("gke", {key: fits}).gke.machine.name == "a4-highgpu-8g"
    found = problem("gke", {key: one_past}, key)
    assert f"{one_past} " in found.allowed and "do not fit on a4-highgpu-8g" in found.allowed


def test_gke_a4_on_demand_is_refused_with_the_ways_it_can_be_had_and_what_each_needs():
    found = problem("gke", {"gke.capacity.mode": "on-demand"}, "gke.capacity.mode")
    assert "it can be had with: reservation (a specific reservation of the machine in gcp:zone" in found.allowed
    assert "spot (Spot GPU quota in gcp:region" in found.allowed and "flex-start (no reservation" in found.allowed
    assert found.fix == (
        "pulumi config set --path 'llm:gke.capacity.mode' reservation && "
        "pulumi config set --path 'llm:gke.capacity.reservation' '<reservation>'"
    )


def test_gke_on_demand_picks_among_machines_sold_on_demand():
    qwen = {"gke.machineType": None, "model.name": "Qwen3-32B", "workload": {}, "gke.capacity.mode": "on-demand"}
    # One H100 (a3-highgpu-1g) holds it at the example's 32k context, but only Spot or Flex-start get that
    # machine: on demand it is 4x L4.
    assert gke_machine(qwen) == "g2-standard-48"
    assert gke_machine({**qwen, "gke.capacity.mode": "spot"}) == "a3-highgpu-1g"


@pytest.mark.parametrize("hours, ok", [(1, True), (168, True), (0, False), (169, False)])
def test_gke_flex_start_runs_nodes_for_at_most_seven_days(hours, ok):
    overrides = {"gke.capacity.mode": "flex-start", "gke.capacity.maxRunHours": hours}
    if ok:
        assert settings_for("gke", overrides).gke.capacity.max_run_seconds == hours * 3600
    else:
        assert "must be 1-168 hours" in problem("gke", overrides, "gke.capacity.maxRunHours").allowed


@pytest.mark.parametrize(
    "reservation, sent",
    [
        ("a4-res", "projects/my-gcp-project/reservations/a4-res"),
        ("a4-res/reservationBlocks/block-1", "projects/my-gcp-project/reservations/a4-res/reservationBlocks/block-1"),
        ("projects/shared-host-1/reservations/a4-res", "projects/shared-host-1/reservations/a4-res"),
    ],
)
def test_gke_reservations_are_named_in_every_form_google_documents(reservation, sent):
    overrides = {"gke.capacity.mode": "reservation", "gke.capacity.reservation": reservation}
    assert settings_for("gke", overrides).gke.capacity.reservation == sent


@pytest.mark.parametrize("start, ok", [("00:00", True), ("23:59", True), ("24:00", False), ("9:00", False)])
def test_gke_maintenance_window_starts_at_a_utc_time_of_day(start, ok):
    overrides = {"gke.maintenance.windowStart": start}
    if ok:
        assert settings_for("gke", overrides).gke.maintenance_window_start == start
    else:
        assert "a UTC time of day like 09:00" in problem("gke", overrides, "gke.maintenance.windowStart").allowed


# ------------------------------------------------------------------------------------------ ack pod size


@pytest.mark.parametrize(
    ("key", "fits", "too_big"),
    [("workload.cpuPerPod", 15, 16), ("workload.memoryGibPerPod", 59, 60)],  # ecs.gn7i-c16g1.4xlarge: 16, 60 GiB
)
def test_an_ack_serving_pod_must_fit_its_gpu_node_type_with_the_gateway_beside_it(key, fits, too_big):
    """One serving pod per GPU node: the engine's request plus the gateway's (0.25 vCPU, 128 MiB) must fit the node
    type's own vCPUs and memory."""
    settings_for("ack", {key: fits})
    found = problem("ack", {key: too_big}, key)
    assert "ecs.gn7i-c16g1.4xlarge" in found.allowed and "ACK reserves" in found.allowed
    assert found.fix == f"pulumi config rm --path 'llm:{key}' (sized from the GPUs)"


def test_both_pod_sizes_that_do_not_fit_are_reported_at_once():
    keys = {p.key for p in problems_of("ack", {"workload.cpuPerPod": 64, "workload.memoryGibPerPod": 500})}
    assert {"workload.cpuPerPod", "workload.memoryGibPerPod"} <= keys


# ------------------------------------------------------------------------------------------ ack-edge cloud pods


@pytest.mark.parametrize(
    ("overrides", "key"),
    [
        ({"acs.computeQos": "best-effort"}, "acs.computeQos"),  # ECI's virtual nodes (the default) read no acs.*
        ({"acs.gpuSeries": "GU8TF"}, "acs.gpuSeries"),
        (
            {
                "ackEdge.virtualNodeUnit": "acs",
                "acs.gpuSeries": "GU8TF",
                "ackEdge.eciInstanceTypes": ["ecs.gn6v-c8g1.2xlarge"],
            },
            "ackEdge.eciInstanceTypes",
        ),
    ],
)
def test_an_ack_edge_key_its_virtual_node_unit_does_not_read_is_refused(overrides, key):
    found = problem("ack-edge", overrides, key)
    assert "is set but ackEdge.virtualNodeUnit is" in found.allowed
    assert found.fix.startswith(f"pulumi config rm --path 'llm:{key}', or pulumi config set --path")


def test_the_keys_each_unit_reads_are_taken():
    settings_for("ack-edge", {"ackEdge.eciInstanceTypes": ["ecs.gn6v-c8g1.2xlarge"]})
    edge = settings_for(
        "ack-edge", {"ackEdge.virtualNodeUnit": "acs", "acs.gpuSeries": "GU8TF", "acs.computeQos": "best-effort"}
    )
    assert edge.acs.compute_qos == "best-effort"
