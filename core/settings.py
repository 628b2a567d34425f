"""Configuration, parsed once into frozen, typed settings.

KEYS is the single list of config keys: Pulumi.yaml declares exactly these (tests/test_config_sync.py
keeps them in step) and the README documents them. parse() reports every problem at once, before
any resource exists.
"""
from __future__ import annotations

import ipaddress
import json
import re
from dataclasses import dataclass, field
from typing import Callable, Mapping, Optional

from core import sizing
from core.ack_settings import ACK_TARGETS, AckSettings, parse_ack
from core.cost import PRICE_KEYS
from core.catalog import DTYPE_BYTES, ECS_INSTANCE_TYPES, GPUS, MODELS, Gpu, InstanceType, ModelSpec, instance_types_with
from core.engine import ENGINES, SGLANG, VLLM, EngineOptions
from core.errors import ConfigError, Problem
from core.gke_settings import GkeSettings, parse_gke

PROJECT = "llm"

TARGETS_AVAILABLE = ("ecs", "acs", "ack", "ack-edge", "kubernetes", "gke")
TARGETS_PLANNED: tuple[str, ...] = ()
KUBERNETES_TARGETS = ("acs", "ack", "ack-edge", "kubernetes", "gke")

# Default images: Alibaba's EGS registry (reachable from mainland China regions, where Docker Hub
# is not) and the upstream images elsewhere. Tags are pinned; see README "Engine images".
DEFAULT_IMAGES = {
    (VLLM, True): "egs-registry.cn-hangzhou.cr.aliyuncs.com/egs/vllm:0.11.0-pytorch2.8-cu128-20251015",
    (VLLM, False): "docker.io/vllm/vllm-openai:v0.11.0",
    (SGLANG, True): "egs-registry.cn-hangzhou.cr.aliyuncs.com/egs/sglang:0.4.6.post1-pytorch2.6-cu124-20250429",
    (SGLANG, False): "docker.io/lmsysorg/sglang:v0.4.6.post1-cu124",
}

API_KEY_PATTERN = re.compile(r"^[A-Za-z0-9._~+/=-]{16,256}$")
REGION_PATTERN = re.compile(r"^[a-z]{2}-[a-z0-9]+(-[a-z0-9]+)*$")  # Alibaba Cloud: cn-hangzhou, ap-southeast-1
GCP_REGION_PATTERN = re.compile(r"^[a-z]+-[a-z]+[0-9]+$")  # us-central1, europe-west4
CUSTOM_MODEL = "custom"


@dataclass(frozen=True)
class Key:
    name: str
    type: str  # Pulumi.yaml types: string | integer | boolean | array
    default: object
    description: str
    secret: bool = False


KEYS: tuple[Key, ...] = (
    Key("target", "string", "ecs",
        "Deployment target: ecs, acs, ack, ack-edge, gke or kubernetes (an existing cluster)."),
    Key("region", "string", "cn-hangzhou",
        "Alibaba Cloud region, e.g. cn-hangzhou or ap-southeast-1; for gke a GCP region, e.g. us-central1."),
    Key("zone", "string", "",
        "Zone of the GPU instance (ecs) or GPU node pool (gke); empty: the first zone that offers it."),
    Key("model", "string", "DeepSeek-R1-Distill-Qwen-7B",
        "Model from the catalog (see README), or `custom` with llm:customModel."),
    Key("customModel", "string", "",
        "JSON object describing a model not in the catalog (used when llm:model is `custom`)."),
    Key("modelRevision", "string", "master", "ModelScope revision (branch, tag or commit) to download."),
    Key("servedModelName", "string", "", "Model name clients send; empty: the ModelScope id, e.g. Qwen/QwQ-32B."),
    Key("engine", "string", "vllm", "Inference engine: vllm or sglang."),
    Key("engineImage", "string", "", "Engine container image with a pinned tag; empty: the default for engine and region."),
    Key("instanceType", "string", "", "ECS GPU instance type; empty: chosen from llm:gpuKind and llm:gpuCount."),
    Key("gpuKind", "string", "A10", "GPU kind when no instance type is given: A10, V100, H20, ..."),
    Key("gpuCount", "integer", 0, "GPUs per instance (ecs) or per pod (Kubernetes targets); 0: the fewest that fit."),
    Key("podsPerReplica", "integer", 0,
        "Kubernetes targets: pods per model copy (pipeline-parallel stages, a LeaderWorkerSet when > 1); 0: fewest that fit."),
    Key("replicas", "integer", 1, "Kubernetes targets: copies of the model serving behind the Services."),
    Key("cpuPerPod", "integer", 0,
        "Kubernetes targets: vCPUs per serving pod; 0: 16 per GPU up to 64 (acs), 4 per GPU up to 32 (kubernetes)."),
    Key("memoryGibPerPod", "integer", 0,
        "Kubernetes targets: memory (GiB) per serving pod; 0: 128 per GPU up to 512 (acs), 24 per GPU up to 192 (kubernetes)."),
    Key("shmGib", "integer", 0, "Kubernetes targets: /dev/shm size (GiB) per serving pod; 0: 8 per GPU, at most a quarter of the memory."),
    Key("maxModelLen", "integer", 32768, "Maximum context length (prompt + output tokens) per request."),
    Key("gpuMemoryUtilization", "string", "0.90", "Fraction of GPU memory the engine may use, 0 < x < 1."),
    Key("maxNumSeqs", "integer", 0, "Maximum concurrent sequences per engine; 0: engine default."),
    Key("extraEngineArgs", "array", [], "Extra engine flags appended verbatim, e.g. [\"--enable-prefix-caching\"]."),
    Key("apiPort", "integer", 8000, "Port of the OpenAI-compatible API."),
    Key("apiKey", "string", "", "API key (set with --secret); empty: a random key is generated.", secret=True),
    Key("publicAccess", "boolean", False, "Expose the API on a public address (API port only, llm:allowedCidrs only)."),
    Key("allowedCidrs", "array", [], "CIDRs allowed to reach the public API; required when publicAccess is true."),
    Key("publicBandwidthMbps", "integer", 100, "Public bandwidth (Mbps, pay-by-traffic) when publicAccess is true."),
    Key("sshCidrs", "array", [], "CIDRs allowed to SSH to the instance; empty: SSH closed."),
    Key("sshKeyPair", "string", "", "Existing ECS key pair name for SSH; required when sshCidrs is set."),
    Key("vpcCidr", "string", "192.168.0.0/16", "CIDR of the VPC."),
    Key("vswitchCidr", "string", "192.168.0.0/24", "CIDR of the vSwitch, inside llm:vpcCidr."),
    Key("imageId", "string", "", "OS image id; empty: the newest Ubuntu 22.04 public image (UEFI where required)."),
    Key("gpuDriverBranch", "string", "570", "NVIDIA server driver branch installed when the image has none."),
    Key("diskCategory", "string", "cloud_essd", "System disk category: cloud_essd, cloud_auto or cloud_efficiency."),
    Key("systemDiskGb", "integer", 0, "System disk size in GiB; 0: sized from the model (OS + image + weights)."),
    Key("readinessTimeoutMinutes", "integer", 0, "How long `pulumi up` waits for /health; 0: estimated from the model."),
    Key("hourlyPrices", "array", [],
        "Cost estimate overrides as key=price per unit-hour (keys in README), e.g. [\"acs-gpu=30\"]."),
    Key("priceCurrency", "string", "",
        "Currency of llm:hourlyPrices (ISO code); empty: the target's, CNY on Alibaba Cloud, USD on gke."),
    Key("deletionProtection", "boolean", False,
        "Protect the instance or cluster from deletion (console, API and Pulumi)."),
    Key("tags", "array", [], "Extra resource tags as key=value strings."),
    Key("ackGpuNodesMin", "integer", 1, "ack: fewest nodes of the autoscaling GPU node pool (0: none while idle)."),
    Key("ackGpuNodesMax", "integer", 2, "ack: most nodes of the GPU node pool; one serving pod per node."),
    Key("ackSpotInstances", "boolean", False, "ack: GPU nodes as spot (preemptible) instances."),
    Key("ackNodeImageType", "string", "AliyunLinux3", "ack: OS image type of the node pools, e.g. AliyunLinux3."),
    Key("ackSystemNodeInstanceType", "string", "ecs.g7.xlarge",
        "ack: instance type of the two-node system pool (system pods, model import, benchmark)."),
    Key("maxReplicas", "integer", 2,
        "ack, ack-edge: most serving replicas the HPA may run; llm:replicas is the fewest (equal: no HPA)."),
    Key("autoscalingMetric", "string", "vllm:num_requests_waiting",
        "ack, ack-edge: HPA metric per pod: vllm:num_requests_waiting or DCGM_CUSTOM_PROCESS_SM_UTIL."),
    Key("autoscalingTarget", "integer", 0,
        "ack, ack-edge: HPA target per pod; 0: 5 waiting requests, or 50 (% GPU utilisation)."),
    Key("scaleDownStabilizationSeconds", "integer", 600,
        "ack, ack-edge: how long load must stay low before the HPA removes a replica."),
    Key("edgeNodePoolId", "string", "",
        "ack-edge: id of the edge node pool the IDC GPU machines joined (required unless llm:edgeClusterOnly)."),
    Key("edgeClusterOnly", "boolean", False,
        "ack-edge: first run: create only the network and the cluster, so the edge node pool can be made in it."),
    Key("edgePodCidr", "string", "172.20.0.0/16", "ack-edge: pod CIDR (Flannel); apart from the VPC, Service and IDC networks."),
    Key("virtualNodeUnit", "string", "eci", "ack-edge: cloud capacity when the IDC is full: eci or acs (virtual nodes)."),
    Key("cloudMaxPods", "integer", 2, "ack-edge: most serving pods on virtual nodes at once (0: IDC only)."),
    Key("eciInstanceTypes", "array", [],
        "ack-edge (eci): ECS GPU types for cloud pods (up to 5); empty: catalog types with the pod's GPUs."),
    Key("slsLogging", "boolean", False, "ack, ack-edge: collect the serving pods' logs into SLS (logtail-ds)."),
    Key("clusterZones", "array", [], "acs: the two zones for the cluster's vSwitches; empty: the first two zones found."),
    Key("kubernetesVersion", "string", "", "acs: Kubernetes version of the cluster; empty: the newest at creation."),
    Key("clusterPublicEndpoint", "boolean", True,
        "acs: give the API server a public endpoint so `pulumi up` works from outside the VPC."),
    Key("serviceCidr", "string", "172.16.0.0/16", "acs: CIDR of Kubernetes Services; must not overlap llm:vpcCidr."),
    Key("acsGpuSeries", "string", "", "acs: value of alibabacloud.com/gpu-model-series; empty: derived from llm:gpuKind."),
    Key("acsComputeClass", "string", "gpu", "acs: alibabacloud.com/compute-class of serving pods: gpu or gpu-hpn."),
    Key("acsComputeQos", "string", "default", "acs: alibabacloud.com/compute-qos of serving pods: default or best-effort."),
    Key("modelBucket", "string", "", "acs, ack, ack-edge, gke: bucket name for model weights; empty: a generated unique name."),
    Key("retainModelStore", "boolean", False,
        "Keep the model bucket (acs, ack, ack-edge, gke) or volume and namespace (kubernetes) on `pulumi destroy`."),
    Key("adoptModelBucket", "boolean", False,
        "acs, ack, ack-edge, gke: llm:modelBucket names an existing bucket (e.g. one kept by retainModelStore): "
        "use it, do not create it."),
    Key("fluid", "boolean", False, "acs: cache the model in memory with Fluid (JindoRuntime) for faster loads."),
    Key("jumpHost", "boolean", True, "acs: a small ECS in the VPC with kubectl and the kubeconfig."),
    Key("jumpHostInstanceType", "string", "ecs.g7.large", "acs: instance type of the jump host."),
    Key("namespace", "string", "llm", "Kubernetes targets: namespace for the serving workload."),
    Key("kubeconfig", "string", "",
        "kubernetes: kubeconfig of the existing cluster (set with --secret); empty: the ambient kubeconfig.", secret=True),
    Key("storageClass", "string", "", "kubernetes: storage class of the model volume; empty: the cluster default."),
    Key("benchmark", "boolean", False, "Kubernetes targets: run `vllm bench serve` once against the private Service."),
    Key("benchmarkDataset", "string", "random", "Benchmark dataset: random or sharegpt (fetched from ModelScope)."),
    Key("benchmarkPrompts", "integer", 200, "Benchmark: number of prompts."),
    Key("benchmarkRequestRate", "string", "1", "Benchmark: requests per second, or inf."),
    Key("benchmarkConcurrency", "integer", 0, "Benchmark: maximum concurrent requests; 0: unlimited."),
    Key("benchmarkInputLen", "integer", 1024, "Benchmark (random dataset): input tokens per prompt."),
    Key("benchmarkOutputLen", "integer", 1024, "Benchmark (random dataset): output tokens per prompt."),
    Key("gcpProject", "string", "", "gke: Google Cloud project id (required)."),
    Key("gkeNodeCount", "integer", 1, "gke: a4-highgpu-8g nodes (8x B200 each) in the GPU node pool."),
    Key("gkeReservation", "string", "none",
        "gke: reservation affinity of the A4 nodes: none, any, or specific (with llm:gkeReservationName)."),
    Key("gkeReservationName", "string", "", "gke: name of the reservation when llm:gkeReservation is specific."),
    Key("gkeReleaseChannel", "string", "REGULAR", "gke: cluster release channel: RAPID, REGULAR or STABLE."),
    Key("hfToken", "string", "", "Hugging Face token for the model download (set with --secret); gated models need it.",
        secret=True),
    Key("gkeModelSource", "string", "bucket",
        "gke: bucket (imported once into GCS, read through GCS FUSE) or download (vLLM downloads at every start)."),
    Key("gkeRdma", "boolean", False, "gke: RDMA (RoCE) networking on the A4 nodes: extra VPCs, multi-networking, gIB."),
    Key("gkeControlPlaneCidrs", "array", [],
        "gke: CIDRs allowed to reach the cluster's control plane (where pulumi and kubectl run); empty: any, IAM-guarded."),
)

KEYS_BY_NAME = {k.name: k for k in KEYS}
DISK_CATEGORIES = ("cloud_essd", "cloud_auto", "cloud_efficiency")


class SecretStr:
    """A secret value that does not print itself."""

    def __init__(self, value: str):
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "SecretStr('****')"


@dataclass(frozen=True)
class Access:
    public: bool
    allowed_cidrs: tuple[str, ...]
    public_bandwidth_mbps: int
    ssh_cidrs: tuple[str, ...]
    ssh_key_pair: str


@dataclass(frozen=True)
class Placement:
    """Where one copy of the model runs: GPUs per pod (or instance), pods per copy, and the checked budget."""

    gpu: Gpu
    gpus_per_pod: int
    fit: sizing.Fit
    pods: int = 1  # pipeline-parallel stages, one pod each
    instance: Optional[InstanceType] = None  # ecs only

    @property
    def tensor_parallel(self) -> int:
        return self.gpus_per_pod

    @property
    def pipeline_parallel(self) -> int:
        return self.pods


@dataclass(frozen=True)
class Workload:
    """Kubernetes targets: how many copies, and what each serving pod gets."""

    namespace: str
    replicas: int
    cpu: int
    memory_gib: int
    shm_gib: int


@dataclass(frozen=True)
class ClusterNetwork:
    """acs: the cluster's zones, address plan and API endpoint."""

    zones: tuple[str, ...]  # empty: looked up at deploy time
    node_vswitch_cidrs: tuple[str, str]
    pod_vswitch_cidrs: tuple[str, str]
    service_cidr: str
    kubernetes_version: Optional[str]
    public_endpoint: bool


@dataclass(frozen=True)
class AcsPod:
    """acs: the labels that choose the serverless GPU capacity of serving pods."""

    gpu_series: str
    compute_class: str
    compute_qos: str


@dataclass(frozen=True)
class ModelStore:
    bucket_name: Optional[str]
    adopt_bucket: bool
    retain: bool
    fluid: bool
    storage_class: Optional[str]


@dataclass(frozen=True)
class JumpHost:
    enabled: bool
    instance_type: str


@dataclass(frozen=True)
class Benchmark:
    enabled: bool
    dataset: str
    prompts: int
    request_rate: str
    concurrency: int
    input_len: int
    output_len: int


@dataclass(frozen=True)
class Settings:
    stack: str
    target: str
    region: str
    zone: Optional[str]
    model: ModelSpec
    model_revision: str
    engine: EngineOptions
    placement: Placement
    access: Access
    api_key: Optional[SecretStr]
    vpc_cidr: str
    vswitch_cidr: str
    image_id: Optional[str]
    gpu_driver_branch: str
    disk_category: str
    system_disk_gib: int
    readiness_timeout_minutes: int
    deletion_protection: bool
    tags: dict[str, str]
    workload: Optional[Workload] = None  # Kubernetes targets
    cluster: Optional[ClusterNetwork] = None  # acs
    acs: Optional[AcsPod] = None  # acs
    model_store: Optional[ModelStore] = None  # Kubernetes targets
    jump_host: Optional[JumpHost] = None  # acs
    benchmark: Optional[Benchmark] = None  # Kubernetes targets
    kubeconfig: Optional[SecretStr] = None  # kubernetes
    hourly_prices: dict[str, float] = field(default_factory=dict)  # cost estimate overrides, per unit-hour
    price_currency: str = "CNY"
    ack: Optional[AckSettings] = None  # ack, ack-edge
    gke: Optional[GkeSettings] = None  # gke

    @property
    def kubernetes(self) -> bool:
        return self.target in KUBERNETES_TARGETS

    @property
    def name(self) -> str:
        """Prefix for cloud resource names: short, unique per stack."""
        return f"llm-{self.stack}"

    @property
    def mainland_china(self) -> bool:
        return is_mainland_china(self.region)


def is_mainland_china(region: str) -> bool:
    return region.startswith("cn-") and region != "cn-hongkong"


def default_image(engine: str, region: str) -> str:
    return DEFAULT_IMAGES[(engine, is_mainland_china(region))]


class _Reader:
    """Reads raw config strings by declared type, collecting problems instead of raising."""

    def __init__(self, raw: Callable[[str], Optional[str]]):
        self._raw = raw
        self.problems: list[Problem] = []

    def problem(self, key: str, value: object, allowed: str, fix: str) -> None:
        self.problems.append(Problem(key, value, allowed, fix))

    def get(self, name: str):
        key = KEYS_BY_NAME[name]
        text = self._raw(name)
        if text is None:
            return key.default
        parse = {"string": str, "integer": self._integer, "boolean": self._boolean, "array": self._array}[key.type]
        try:
            return parse(text)
        except ValueError as exc:
            self.problem(name, text, f"must be {key.type}: {exc}", f"pulumi config set {PROJECT}:{name} <{key.type}>")
            return key.default

    @staticmethod
    def _integer(text: str) -> int:
        return int(text)

    @staticmethod
    def _boolean(text: str) -> bool:
        if text.lower() in ("true", "false"):
            return text.lower() == "true"
        raise ValueError("expected true or false")

    @staticmethod
    def _array(text: str) -> list[str]:
        value = json.loads(text)
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ValueError("expected a list of strings")
        return value


def parse(raw: Callable[[str], Optional[str]], stack: str) -> Settings:
    """Parse and validate all config; raise ConfigError listing every problem."""
    r = _Reader(raw)
    target = _target(r)
    kubernetes = target in KUBERNETES_TARGETS
    region = r.get("region")
    if target == "gke" and not GCP_REGION_PATTERN.match(region):
        r.problem("region", region, "must be a GCP region id like us-central1", f"pulumi config set {PROJECT}:region us-central1")
    elif target != "gke" and not REGION_PATTERN.match(region):
        r.problem("region", region, "must be an Alibaba Cloud region id like cn-hangzhou",
                  f"pulumi config set {PROJECT}:region cn-hangzhou")
    model = _model(r)
    engine = _engine(r, model, region)
    # ack: one serving pod per GPU node, so the pod is sized by an ECS instance type like ecs's host.
    placement = _pod_placement(r, model, engine) if kubernetes and target != "ack" else _placement(r, model, engine)
    access = _access(r)
    api_key = _api_key(r)
    vpc_cidr, vswitch_cidr = _network(r)
    disk_category = r.get("diskCategory")
    if disk_category not in DISK_CATEGORIES:
        r.problem("diskCategory", disk_category, f"must be one of {', '.join(DISK_CATEGORIES)}",
                  f"pulumi config set {PROJECT}:diskCategory cloud_essd")
    system_disk = _sized(r, "systemDiskGb", sizing.disk_gib(model) if model else 0, "GiB")
    readiness = _sized(r, "readinessTimeoutMinutes", sizing.readiness_timeout_minutes(model) if model else 0,
                       "minutes", minimum_is_need=False)
    tags = _tags(r)
    workload = _workload(r, placement, target) if kubernetes else None
    cluster = _cluster_network(r, vpc_cidr, vswitch_cidr) if target in ("acs", *ACK_TARGETS) else None
    edge_acs = target == "ack-edge" and r.get("virtualNodeUnit") == "acs"
    acs = _acs_pod(r, placement) if target == "acs" or edge_acs else None
    ack = parse_ack(r, target, placement.instance if placement else None,
                    placement.gpus_per_pod if placement else None, r.get("gpuKind"), engine.engine if engine else None,
                    r.get("serviceCidr"), vpc_cidr) if target in ACK_TARGETS else None
    model_store = _model_store(r) if kubernetes else None
    jump_host = _jump_host(r) if target == "acs" else None
    benchmark = _benchmark(r, engine) if kubernetes else None
    kubeconfig = r.get("kubeconfig")
    hourly_prices, price_currency = _prices(r)
    gke = parse_gke(r, model, placement) if target == "gke" else None
    if r.problems:
        raise ConfigError(r.problems)
    return Settings(
        stack=stack, target=target, region=region, zone=r.get("zone") or None, model=model,
        model_revision=r.get("modelRevision"), engine=engine, placement=placement, access=access,
        api_key=api_key, vpc_cidr=vpc_cidr, vswitch_cidr=vswitch_cidr, image_id=r.get("imageId") or None,
        gpu_driver_branch=r.get("gpuDriverBranch"), disk_category=disk_category, system_disk_gib=system_disk,
        readiness_timeout_minutes=readiness, deletion_protection=r.get("deletionProtection"), tags=tags,
        workload=workload, cluster=cluster, acs=acs, model_store=model_store, jump_host=jump_host,
        benchmark=benchmark, kubeconfig=SecretStr(kubeconfig) if kubeconfig and target == "kubernetes" else None,
        hourly_prices=hourly_prices, price_currency=price_currency, ack=ack, gke=gke,
    )


def _target(r: _Reader) -> str:
    target = r.get("target")
    if target in TARGETS_PLANNED:
        r.problem("target", target, f"is not available in this version; available targets: {', '.join(TARGETS_AVAILABLE)}",
                  f"pulumi config set {PROJECT}:target ecs")
    elif target not in TARGETS_AVAILABLE:
        r.problem("target", target,
                  f"unknown target; allowed: {', '.join(TARGETS_AVAILABLE)} (planned: {', '.join(TARGETS_PLANNED)})",
                  f"pulumi config set {PROJECT}:target ecs")
    return target


CUSTOM_MODEL_FIELDS = {
    "name": str, "modelscopeId": str, "hfId": str, "paramsBillion": (int, float), "weightDtype": str,
    "layers": int, "attentionHeads": int, "kvHeads": int, "headDim": int, "contextLength": int,
}
CUSTOM_MODEL_OPTIONAL = {"reasoning": str, "weightsGb": (int, float), "mlaKvLoraRank": int, "mlaRopeDim": int,
                         "trustRemoteCode": bool}


def _model(r: _Reader) -> Optional[ModelSpec]:
    name = r.get("model")
    if name == CUSTOM_MODEL:
        return _custom_model(r)
    if name not in MODELS:
        r.problem("model", name, f"unknown model; the catalog has: {', '.join(MODELS)}",
                  f"pick one, or set {PROJECT}:model custom and describe it in {PROJECT}:customModel")
        return None
    return MODELS[name]


def _custom_model(r: _Reader) -> Optional[ModelSpec]:
    text = r.get("customModel")
    fix = (f"pulumi config set {PROJECT}:customModel '{{\"name\": ..., \"modelscopeId\": ..., \"hfId\": ..., "
           f"\"paramsBillion\": ..., \"weightDtype\": \"bf16\", \"layers\": ..., \"attentionHeads\": ..., "
           f"\"kvHeads\": ..., \"headDim\": ..., \"contextLength\": ...}}'")
    try:
        spec = json.loads(text) if text else None
    except ValueError as exc:
        r.problem("customModel", text, f"must be a JSON object: {exc}", fix)
        return None
    if not isinstance(spec, dict):
        r.problem("customModel", text, "must be a JSON object describing the model (model is `custom`)", fix)
        return None
    missing = [f for f in CUSTOM_MODEL_FIELDS if f not in spec]
    wrong = [f for f, t in {**CUSTOM_MODEL_FIELDS, **CUSTOM_MODEL_OPTIONAL}.items()
             if f in spec and (not isinstance(spec[f], t) or isinstance(spec[f], bool) and t is not bool)]
    unknown = sorted(set(spec) - set(CUSTOM_MODEL_FIELDS) - set(CUSTOM_MODEL_OPTIONAL))
    if missing or wrong or unknown:
        r.problem("customModel", text, f"missing fields {missing}, wrongly typed {wrong}, unknown {unknown}", fix)
        return None
    if spec["weightDtype"] not in DTYPE_BYTES:
        r.problem("customModel", spec["weightDtype"], f"weightDtype must be one of {tuple(DTYPE_BYTES)}", fix)
        return None
    if spec.get("reasoning") not in (None, "deepseek_r1", "qwen3"):
        r.problem("customModel", spec["reasoning"], "reasoning must be deepseek_r1 or qwen3 (or absent)", fix)
        return None
    numbers = ("paramsBillion", "layers", "attentionHeads", "kvHeads", "headDim", "contextLength")
    if any(spec[f] <= 0 for f in numbers):
        r.problem("customModel", text, f"{', '.join(numbers)} must be positive", fix)
        return None
    return ModelSpec(
        name=spec["name"], modelscope_id=spec["modelscopeId"], hf_id=spec["hfId"],
        params_billion=float(spec["paramsBillion"]), weight_dtype=spec["weightDtype"], layers=spec["layers"],
        attention_heads=spec["attentionHeads"], kv_heads=spec["kvHeads"], head_dim=spec["headDim"],
        context_length=spec["contextLength"], reasoning=spec.get("reasoning"), weights_gb=spec.get("weightsGb"),
        mla_kv_lora_rank=spec.get("mlaKvLoraRank", 0), mla_rope_dim=spec.get("mlaRopeDim", 0),
        trust_remote_code=spec.get("trustRemoteCode", False),
    )


def _engine(r: _Reader, model: Optional[ModelSpec], region: str) -> Optional[EngineOptions]:
    engine = r.get("engine")
    if engine not in ENGINES:
        r.problem("engine", engine, f"unknown engine; allowed: {', '.join(ENGINES)}", f"pulumi config set {PROJECT}:engine vllm")
        engine = None
    image = r.get("engineImage")
    if image and not _pinned(image):
        r.problem("engineImage", image, "must carry a pinned tag or digest (not :latest, not untagged)",
                  f"e.g. pulumi config set {PROJECT}:engineImage docker.io/vllm/vllm-openai:v0.11.0")
    max_len = r.get("maxModelLen")
    if max_len <= 0:
        r.problem("maxModelLen", max_len, "must be a positive number of tokens", f"pulumi config set {PROJECT}:maxModelLen 32768")
    elif model and max_len > model.context_length:
        r.problem("maxModelLen", max_len, f"exceeds the {model.context_length}-token context of {model.name}",
                  f"pulumi config set {PROJECT}:maxModelLen {min(32768, model.context_length)}")
    util_text = r.get("gpuMemoryUtilization")
    try:
        util = float(util_text)
        if not 0 < util < 1:
            raise ValueError
    except ValueError:
        r.problem("gpuMemoryUtilization", util_text, "must be a number between 0 and 1 (exclusive)",
                  f"pulumi config set {PROJECT}:gpuMemoryUtilization 0.90")
        util = 0.0
    port = r.get("apiPort")
    if not 1 <= port <= 65535 or port == 22:
        r.problem("apiPort", port, "must be a TCP port 1-65535 other than 22", f"pulumi config set {PROJECT}:apiPort 8000")
    max_num_seqs = r.get("maxNumSeqs")
    if max_num_seqs < 0:
        r.problem("maxNumSeqs", max_num_seqs, "must be 0 (engine default) or positive", f"pulumi config set {PROJECT}:maxNumSeqs 256")
    extra = tuple(r.get("extraEngineArgs"))
    forbidden = [a for a in extra if a.split("=")[0] in ("--api-key", "--enable-reasoning")]
    if forbidden:
        r.problem("extraEngineArgs", list(extra),
                  "must not set --api-key (the key comes from a secret) or --enable-reasoning (removed in vLLM 0.10)",
                  "remove those flags; the reasoning parser is set from the model catalog")
    if engine is None or model is None or util == 0.0:
        return None
    return EngineOptions(
        engine=engine, image=image or default_image(engine, region),
        served_model_name=r.get("servedModelName") or model.modelscope_id, max_model_len=max_len,
        gpu_memory_utilization=util, port=port, max_num_seqs=max(0, max_num_seqs), extra_args=extra,
    )


def _pinned(image: str) -> bool:
    if "@sha256:" in image:
        return True
    last = image.rsplit("/", 1)[-1]
    return ":" in last and not last.endswith(":latest")


def _placement(r: _Reader, model: Optional[ModelSpec], engine: Optional[EngineOptions]) -> Optional[Placement]:
    instance_name, gpu_kind, gpu_count = r.get("instanceType"), r.get("gpuKind"), r.get("gpuCount")
    if gpu_count < 0:
        r.problem("gpuCount", gpu_count, "must be 0 (the fewest that fit) or a positive GPU count",
                  f"pulumi config set {PROJECT}:gpuCount 0")
        return None
    if instance_name:
        instance = ECS_INSTANCE_TYPES.get(instance_name)
        if instance is None:
            r.problem("instanceType", instance_name, f"not in the GPU instance catalog: {', '.join(ECS_INSTANCE_TYPES)}",
                      f"pick one, or leave it empty and set {PROJECT}:gpuKind / {PROJECT}:gpuCount")
            return None
        if gpu_count and gpu_count != instance.gpu_count:
            r.problem("gpuCount", gpu_count, f"{instance.name} has {instance.gpu_count} GPU(s)",
                      f"pulumi config set {PROJECT}:gpuCount 0")
        candidates = [instance]
    else:
        if gpu_kind not in GPUS or not instance_types_with(gpu_kind):
            kinds = sorted({t.gpu for t in ECS_INSTANCE_TYPES.values()})
            r.problem("gpuKind", gpu_kind, f"no ECS instance type in the catalog carries it; available: {', '.join(kinds)}",
                      f"pulumi config set {PROJECT}:gpuKind A10")
            return None
        candidates = [t for t in instance_types_with(gpu_kind) if not gpu_count or t.gpu_count == gpu_count]
        if not candidates:
            counts = sorted({t.gpu_count for t in instance_types_with(gpu_kind)})
            r.problem("gpuCount", gpu_count, f"no {gpu_kind} instance type has that many GPUs; available counts: {counts}",
                      f"pulumi config set {PROJECT}:gpuCount 0")
            return None
    if model is None or engine is None:
        return None
    for instance in candidates:
        placement = _try_place(model, engine, GPUS[instance.gpu], instance.gpu_count, instance=instance)
        if isinstance(placement, Placement):
            return placement
    largest = candidates[-1]
    reason = _try_place(model, engine, GPUS[largest.gpu], largest.gpu_count, instance=largest)
    fitting = [t.name + f" ({t.gpu_count}x {t.gpu})" for t in ECS_INSTANCE_TYPES.values()
               if isinstance(_try_place(model, engine, GPUS[t.gpu], t.gpu_count), Placement)]
    fix = f"use an instance type that fits: {', '.join(fitting)}" if fitting else "no catalog instance type fits this model"
    _does_not_fit(r, model, largest.name, reason, fix)
    return None


def _does_not_fit(r: _Reader, model: ModelSpec, where: str, reason, fix: str) -> None:
    if isinstance(reason, sizing.Fit):
        if reason.weights_gib + reason.overhead_gib <= reason.available_gib:
            fix += ", or lower llm:maxModelLen"
        reason = reason.describe()
    r.problem("model", model.name, f"cannot be served on {where}: {reason}", fix)


def _try_place(model: ModelSpec, engine: EngineOptions, gpu: Gpu, gpus_per_pod: int, pods: int = 1,
               instance: Optional[InstanceType] = None):
    """A Placement when it fits and the engines accept the split; else the Fit that failed or the reason."""
    problem = sizing.parallelism_problem(model, gpus_per_pod)
    if problem:
        return problem
    budget = sizing.fit(model, gpu, gpus_per_pod * pods, engine.max_model_len, engine.gpu_memory_utilization,
                        pipeline_parallel=pods)
    return Placement(gpu, gpus_per_pod, budget, pods=pods, instance=instance) if budget.fits else budget


POD_GPU_COUNTS = (1, 2, 4, 8)
MAX_PODS_PER_REPLICA = 4


def _pod_placement(r: _Reader, model: Optional[ModelSpec], engine: Optional[EngineOptions]) -> Optional[Placement]:
    """Kubernetes targets: GPUs per pod and pods per copy; the fewest GPUs (then pods) that fit."""
    gpu_kind, gpu_count, pods = r.get("gpuKind"), r.get("gpuCount"), r.get("podsPerReplica")
    bad = False
    if gpu_kind not in GPUS:
        r.problem("gpuKind", gpu_kind, f"unknown GPU; known: {', '.join(GPUS)}", f"pulumi config set {PROJECT}:gpuKind H20")
        bad = True
    if gpu_count not in (0,) + POD_GPU_COUNTS:
        r.problem("gpuCount", gpu_count, f"GPUs per pod must be 0 (the fewest that fit) or one of {POD_GPU_COUNTS}",
                  f"pulumi config set {PROJECT}:gpuCount 0")
        bad = True
    if not 0 <= pods <= MAX_PODS_PER_REPLICA:
        r.problem("podsPerReplica", pods, f"must be 0 (the fewest that fit) or 1-{MAX_PODS_PER_REPLICA}",
                  f"pulumi config set {PROJECT}:podsPerReplica 0")
        bad = True
    elif pods > 1 and engine is not None and engine.engine != VLLM:
        r.problem("podsPerReplica", pods, "a model spread over several pods is only supported with vLLM (Ray)",
                  f"pulumi config set {PROJECT}:engine vllm, or pulumi config set {PROJECT}:podsPerReplica 1")
        bad = True
    if bad or model is None or engine is None:
        return None
    gpu = GPUS[gpu_kind]
    shapes = sorted(((c, p) for c in ([gpu_count] if gpu_count else POD_GPU_COUNTS)
                     for p in ([pods] if pods else range(1, 3 if engine.engine == VLLM else 2))),
                    key=lambda shape: (shape[0] * shape[1], shape[1]))
    for count, stages in shapes:
        placement = _try_place(model, engine, gpu, count, stages)
        if isinstance(placement, Placement):
            return placement
    count, stages = shapes[-1]
    reason = _try_place(model, engine, gpu, count, stages)
    _does_not_fit(r, model, f"{stages} pod(s) x {count}x {gpu_kind}", reason,
                  f"use more GPUs per pod ({PROJECT}:gpuCount up to 8), more pods ({PROJECT}:podsPerReplica) "
                  f"or a larger GPU ({PROJECT}:gpuKind)")
    return None


def _workload(r: _Reader, placement: Optional[Placement], target: str) -> Optional[Workload]:
    namespace = r.get("namespace")
    if not DNS_LABEL.match(namespace):
        r.problem("namespace", namespace, "must be a DNS-1123 label: lowercase letters, digits and '-', at most 63",
                  f"pulumi config set {PROJECT}:namespace llm")
    replicas = r.get("replicas")
    if replicas < 1:
        r.problem("replicas", replicas, "must be at least 1", f"pulumi config set {PROJECT}:replicas 1")
    gpus = placement.gpus_per_pod if placement else 1
    # Serverless GPU pods come with generous CPU and memory (the reference's QwQ pod: 16 vCPU, 128 GiB per
    # GPU); on an existing cluster the pod must fit next to the node's own daemons, so ask for less.
    cpu_per_gpu, cpu_cap, memory_per_gpu, memory_cap = (16, 64, 128, 512) if target == "acs" else (4, 32, 24, 192)
    cpu = _sized(r, "cpuPerPod", min(cpu_per_gpu * gpus, cpu_cap), "vCPUs", minimum_is_need=False)
    memory = _sized(r, "memoryGibPerPod", min(memory_per_gpu * gpus, memory_cap), "GiB", minimum_is_need=False)
    shm = _sized(r, "shmGib", min(8 * gpus, memory // 4), "GiB", minimum_is_need=False)
    if shm >= memory:
        r.problem("shmGib", shm, f"must be smaller than the pod's {memory} GiB of memory (/dev/shm counts against it)",
                  f"pulumi config set {PROJECT}:shmGib {max(1, memory // 4)}")
    return Workload(namespace=namespace, replicas=replicas, cpu=cpu, memory_gib=memory, shm_gib=shm)


def _cluster_network(r: _Reader, vpc_text: str, vswitch_text: str) -> Optional[ClusterNetwork]:
    """Node vSwitches: llm:vswitchCidr and the next block of its size; pod vSwitches: the VPC's last two quarters."""
    zones = tuple(r.get("clusterZones"))
    if zones and (len(zones) != 2 or zones[0] == zones[1]):
        r.problem("clusterZones", list(zones), "must name exactly two different zones, or be empty to choose them",
                  f"pulumi config set --path '{PROJECT}:clusterZones[0]' cn-hangzhou-i (and [1])")
    service_text = r.get("serviceCidr")
    try:
        vpc = ipaddress.ip_network(vpc_text, strict=True)
        first = ipaddress.ip_network(vswitch_text, strict=True)
    except ValueError:
        return None  # already reported by _network
    try:
        service = ipaddress.ip_network(service_text, strict=True)
        if service.overlaps(vpc):
            raise ValueError(f"overlaps llm:vpcCidr {vpc}")
    except ValueError as exc:
        r.problem("serviceCidr", service_text, f"must be a CIDR outside the VPC ({exc})",
                  f"pulumi config set {PROJECT}:serviceCidr 172.16.0.0/16")
    if vpc.prefixlen > 20:
        r.problem("vpcCidr", vpc_text, "acs needs a VPC of /20 or larger: its last half holds the pod vSwitches",
                  f"pulumi config set {PROJECT}:vpcCidr 192.168.0.0/16")
        return None
    second = ipaddress.ip_network((int(first.network_address) + first.num_addresses, first.prefixlen))
    quarters = list(vpc.subnets(prefixlen_diff=2))
    if not (first.subnet_of(quarters[0]) or first.subnet_of(quarters[1])) or not second.subnet_of(vpc) \
            or second.overlaps(quarters[2]):
        r.problem("vswitchCidr", vswitch_text, f"acs uses it and the next block ({second}) for nodes; both must lie "
                  f"in the first half of {vpc} (the second half holds the pod vSwitches)",
                  f"pulumi config set {PROJECT}:vswitchCidr {next(vpc.subnets(new_prefix=24))}")
    version = r.get("kubernetesVersion")
    if version and not re.match(r"^1\.\d+\.\d+-aliyun\.\d+$", version):
        r.problem("kubernetesVersion", version, "must be an ACK version string like 1.33.3-aliyun.1",
                  "leave it empty for the newest, or copy one from the ACS console")
    return ClusterNetwork(zones=zones, node_vswitch_cidrs=(str(first), str(second)),
                          pod_vswitch_cidrs=(str(quarters[2]), str(quarters[3])), service_cidr=service_text,
                          kubernetes_version=version or None, public_endpoint=r.get("clusterPublicEndpoint"))


ACS_COMPUTE_CLASSES = ("gpu", "gpu-hpn")
ACS_COMPUTE_QOS = ("default", "best-effort")


def _acs_pod(r: _Reader, placement: Optional[Placement]) -> Optional[AcsPod]:
    series = r.get("acsGpuSeries")
    kind = r.get("gpuKind")
    if not series and kind in GPUS:
        series = GPUS[kind].acs_series or ""
        if not series:
            known = [g.name for g in GPUS.values() if g.acs_series]
            r.problem("gpuKind", kind, f"no ACS GPU series is known for it; ACS series known here: {', '.join(known)}",
                      f"pulumi config set {PROJECT}:gpuKind H20, or set {PROJECT}:acsGpuSeries to the series "
                      "the ACS console lists for your GPU")
    elif series and not re.match(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$", series):
        r.problem("acsGpuSeries", series, "must be a label value (letters, digits, . _ -)", "e.g. H20")
    compute_class, qos = r.get("acsComputeClass"), r.get("acsComputeQos")
    if compute_class not in ACS_COMPUTE_CLASSES:
        r.problem("acsComputeClass", compute_class, f"must be one of {', '.join(ACS_COMPUTE_CLASSES)}",
                  f"pulumi config set {PROJECT}:acsComputeClass gpu")
    if qos not in ACS_COMPUTE_QOS:
        r.problem("acsComputeQos", qos, f"must be one of {', '.join(ACS_COMPUTE_QOS)}",
                  f"pulumi config set {PROJECT}:acsComputeQos default")
    return AcsPod(gpu_series=series, compute_class=compute_class, compute_qos=qos) if series else None


BUCKET_PATTERN = re.compile(r"^[a-z0-9][a-z0-9-]{1,61}[a-z0-9]$")
DNS_LABEL = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")
DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([a-z0-9.-]{0,251}[a-z0-9])?$")


def _model_store(r: _Reader) -> ModelStore:
    bucket, storage_class = r.get("modelBucket"), r.get("storageClass")
    if bucket and not BUCKET_PATTERN.match(bucket):
        r.problem("modelBucket", bucket, "must be 3-63 lowercase letters, digits and '-', not starting or ending with '-'",
                  f"pulumi config set {PROJECT}:modelBucket my-llm-models, or leave it empty to generate one")
    if storage_class and not DNS_SUBDOMAIN.match(storage_class):
        r.problem("storageClass", storage_class, "must be a storage class name (lowercase DNS subdomain)",
                  "kubectl get storageclass lists them; leave it empty for the cluster default")
    adopt = r.get("adoptModelBucket")
    if adopt and not bucket:
        r.problem("adoptModelBucket", True, "needs llm:modelBucket: the name of the existing bucket to use",
                  f"pulumi config set {PROJECT}:modelBucket <bucket name> (the modelBucket output of the old stack)")
    return ModelStore(bucket_name=bucket or None, adopt_bucket=adopt, retain=r.get("retainModelStore"), fluid=r.get("fluid"),
                      storage_class=storage_class or None)


def _jump_host(r: _Reader) -> JumpHost:
    instance_type = r.get("jumpHostInstanceType")
    if not re.match(r"^ecs\.[a-z0-9-]+\.[a-z0-9]+$", instance_type):
        r.problem("jumpHostInstanceType", instance_type, "must be an ECS instance type like ecs.g7.large",
                  f"pulumi config set {PROJECT}:jumpHostInstanceType ecs.g7.large")
    return JumpHost(enabled=r.get("jumpHost"), instance_type=instance_type)


BENCHMARK_DATASETS = ("random", "sharegpt")


def _benchmark(r: _Reader, engine: Optional[EngineOptions]) -> Benchmark:
    enabled, dataset, rate = r.get("benchmark"), r.get("benchmarkDataset"), r.get("benchmarkRequestRate")
    if dataset not in BENCHMARK_DATASETS:
        r.problem("benchmarkDataset", dataset, f"must be one of {', '.join(BENCHMARK_DATASETS)}",
                  f"pulumi config set {PROJECT}:benchmarkDataset random")
    try:
        if rate != "inf" and not float(rate) > 0:
            raise ValueError
    except ValueError:
        r.problem("benchmarkRequestRate", rate, "must be a positive number of requests per second, or inf",
                  f"pulumi config set {PROJECT}:benchmarkRequestRate 1")
    for key in ("benchmarkPrompts", "benchmarkInputLen", "benchmarkOutputLen"):
        if r.get(key) < 1:
            r.problem(key, r.get(key), "must be positive", f"pulumi config set {PROJECT}:{key} {KEYS_BY_NAME[key].default}")
    if r.get("benchmarkConcurrency") < 0:
        r.problem("benchmarkConcurrency", r.get("benchmarkConcurrency"), "must be 0 (unlimited) or positive",
                  f"pulumi config set {PROJECT}:benchmarkConcurrency 0")
    if enabled and engine is not None and engine.engine != VLLM:
        r.problem("benchmark", True, "runs `vllm bench serve`, which needs the vLLM image",
                  f"pulumi config set {PROJECT}:benchmark false, or use llm:engine vllm")
    if enabled and engine is not None and dataset == "random" and \
            r.get("benchmarkInputLen") + r.get("benchmarkOutputLen") > engine.max_model_len:
        r.problem("benchmarkInputLen", r.get("benchmarkInputLen"),
                  f"input + output tokens exceed llm:maxModelLen {engine.max_model_len}", "lower the lengths")
    return Benchmark(enabled=enabled, dataset=dataset, prompts=r.get("benchmarkPrompts"), request_rate=rate,
                     concurrency=r.get("benchmarkConcurrency"), input_len=r.get("benchmarkInputLen"),
                     output_len=r.get("benchmarkOutputLen"))


def _access(r: _Reader) -> Access:
    public = r.get("publicAccess")
    allowed = parse_cidrs(r, "allowedCidrs")
    ssh = parse_cidrs(r, "sshCidrs")
    if public and not allowed:
        r.problem("allowedCidrs", [], "must list the CIDRs allowed to reach the public API when publicAccess is true",
                  f"pulumi config set --path '{PROJECT}:allowedCidrs[0]' 203.0.113.0/24")
    for cidr in ssh:
        if ipaddress.ip_network(cidr).prefixlen == 0:
            r.problem("sshCidrs", cidr, "SSH may not be opened to the whole internet",
                      "list your office or VPN range instead, or use Cloud Assistant / Workbench without SSH")
    key_pair = r.get("sshKeyPair")
    if ssh and not key_pair:
        r.problem("sshKeyPair", "", "is required when sshCidrs opens SSH (password login is disabled)",
                  f"pulumi config set {PROJECT}:sshKeyPair <existing ECS key pair name>")
    bandwidth = r.get("publicBandwidthMbps")
    if not 1 <= bandwidth <= 100:
        r.problem("publicBandwidthMbps", bandwidth, "must be 1-100 Mbps (the ECS limit)", f"pulumi config set {PROJECT}:publicBandwidthMbps 100")
    return Access(public, tuple(allowed), bandwidth, tuple(ssh), key_pair)


def parse_cidrs(r: _Reader, key: str) -> list[str]:
    """The key's CIDRs, normalised; each invalid one is a problem."""
    valid = []
    for cidr in r.get(key):
        try:
            valid.append(str(ipaddress.ip_network(cidr, strict=True)))
        except ValueError as exc:
            r.problem(key, cidr, f"is not a valid CIDR ({exc})", "write it as network/prefix, e.g. 203.0.113.0/24")
    return valid


def _api_key(r: _Reader) -> Optional[SecretStr]:
    value = r.get("apiKey")
    if not value:
        return None
    if not API_KEY_PATTERN.match(value):
        r.problem("apiKey", "****", "must be 16-256 characters of letters, digits and . _ ~ + / = -",
                  f"pulumi config set --secret {PROJECT}:apiKey <key>, or unset it to generate one")
    return SecretStr(value)


def _network(r: _Reader) -> tuple[str, str]:
    vpc_text, vsw_text = r.get("vpcCidr"), r.get("vswitchCidr")
    try:
        vpc = ipaddress.ip_network(vpc_text, strict=True)
    except ValueError as exc:
        r.problem("vpcCidr", vpc_text, f"is not a valid CIDR ({exc})", f"pulumi config set {PROJECT}:vpcCidr 192.168.0.0/16")
        return vpc_text, vsw_text
    try:
        vsw = ipaddress.ip_network(vsw_text, strict=True)
        if not vsw.subnet_of(vpc):
            raise ValueError(f"not inside {vpc}")
    except (ValueError, TypeError) as exc:
        r.problem("vswitchCidr", vsw_text, f"must be a CIDR inside llm:vpcCidr ({exc})",
                  f"pulumi config set {PROJECT}:vswitchCidr 192.168.0.0/24")
    return vpc_text, vsw_text


def _sized(r: _Reader, key: str, need: int, unit: str, minimum_is_need: bool = True) -> int:
    value = r.get(key)
    if value < 0:
        r.problem(key, value, f"must be 0 (automatic: {need} {unit}) or a positive number of {unit}",
                  f"pulumi config set {PROJECT}:{key} 0")
        return need
    if value == 0:
        return need
    if minimum_is_need and value < need:
        r.problem(key, value, f"is smaller than the {need} {unit} the model needs", f"pulumi config set {PROJECT}:{key} {need}")
    return value


def _tags(r: _Reader) -> dict[str, str]:
    tags = {}
    for item in r.get("tags"):
        key, sep, value = item.partition("=")
        if not sep or not key or key.startswith(("aliyun", "acs:")):
            r.problem("tags", item, "must be key=value, key not starting with aliyun or acs:", "e.g. team=ml")
            continue
        tags[key] = value
    return tags


def _prices(r: _Reader) -> tuple[dict[str, float], str]:
    prices = {}
    for item in r.get("hourlyPrices"):
        key, sep, value = item.partition("=")
        try:
            if not sep or key not in PRICE_KEYS or float(value) < 0:
                raise ValueError
            prices[key] = float(value)
        except ValueError:
            r.problem("hourlyPrices", item, f"must be key=price with a price >= 0 and a key among {', '.join(PRICE_KEYS)}",
                      f"pulumi config set --path '{PROJECT}:hourlyPrices[0]' acs-gpu=30")
    # Unset: the currency the target's cloud bills in, so overrides need no second setting.
    currency = r.get("priceCurrency") or ("USD" if r.get("target") == "gke" else "CNY")
    if not re.match(r"^[A-Z]{3}$", currency):
        r.problem("priceCurrency", currency, "must be a three-letter ISO currency code", f"pulumi config set {PROJECT}:priceCurrency CNY")
    return prices, currency


def from_mapping(values: Mapping[str, str], stack: str) -> Settings:
    """parse() over a plain mapping (tests, benchmark)."""
    return parse(values.get, stack)


def load() -> Settings:
    """Settings of the running Pulumi stack. A plaintext secret key (apiKey, kubeconfig) is refused."""
    import pulumi
    from pulumi.runtime.config import get_config, is_config_secret

    def raw(name: str) -> Optional[str]:
        # The runtime's raw lookup: no "secret read with get()" warning, and the CLI has already
        # applied Pulumi.yaml defaults, so None only happens under test harnesses.
        return get_config(f"{PROJECT}:{name}")

    problems = [Problem(key.name, "****", "is stored in plaintext in the stack config",
                        f"pulumi config rm {PROJECT}:{key.name} && pulumi config set --secret {PROJECT}:{key.name} <value>")
                for key in KEYS if key.secret and raw(key.name) and not is_config_secret(f"{PROJECT}:{key.name}")]
    try:
        settings = parse(raw, pulumi.get_stack())
    except ConfigError as error:
        raise ConfigError(problems + list(error.problems)) from None
    if problems:
        raise ConfigError(problems)
    return settings
