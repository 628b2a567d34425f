"""The whole config schema of a stack: the top-level keys and the group each one holds.

`pulumi config set --path llm:engine.maxModelLen 8192` sets one key of the `engine` group; `llm:target`,
`llm:apiKey`, `llm:hfToken`, `llm:tags` and `llm:deletionProtection` are top-level. Secrets stay top-level
keys of their own (a secret nested in an object would make the whole object secret).
"""

from __future__ import annotations

from typing import Annotated, Literal, Optional

from core.config.access import AccessConfig
from core.config.ack import AckConfig, AckEdgeConfig, GpuNodesConfig
from core.config.acs import AcsConfig
from core.config.benchmark import BenchmarkConfig
from core.config.cost import CostConfig
from core.config.engine import EngineConfig
from core.config.gateway import GatewayConfig
from core.config.gke import GkeConfig
from core.config.host import EcsConfig
from core.config.kubernetes import KubernetesConfig
from core.config.model import ModelConfig
from core.config.network import ClusterConfig, NetworkConfig
from core.config.placement import PlacementConfig, WorkloadConfig
from core.config.scaling import ScalingConfig
from core.config.schema import Flag, Group, matches, option
from core.config.storage import DiskConfig, ModelStoreConfig
from core.targets import ALIBABA, ALL_TARGETS, GKE

# Alibaba Cloud tags: key 1-128 characters not starting with aliyun or acs:, value up to 128 (Tag API).
TagKey = Annotated[
    str,
    matches(r"(?!aliyun|acs:)[^\r\n\x00]{1,128}", "a tag key of 1-128 characters, not starting with aliyun or acs:"),
]
TagValue = Annotated[str, matches(r"[^\r\n\x00]{0,128}", "a tag value of at most 128 characters on one line")]
# The API key reaches the gateway's auth file and client headers: no quotes, spaces or line breaks.
ApiKeyText = Annotated[
    str, matches(r"[A-Za-z0-9._~+/=-]{16,256}", "16-256 characters of letters, digits and . _ ~ + / = -")
]
HfTokenText = Annotated[str, matches(r"hf_[A-Za-z0-9]{20,200}", "a Hugging Face access token (hf_...)")]
# PEM text: checked whole in core.config.access.resolve_tls (a multi-line value).
PemText = Annotated[str, matches(r"[\s\S]{1,65536}", "PEM text of at most 64 KiB")]
SECRET_KEYS = ("apiKey", "hfToken", "tlsCertificate", "tlsKey")


class StackConfig(Group):
    """Every key of the project namespace."""

    target: Literal["ecs", "acs", "ack", "ack-edge", "gke", "kubernetes"] = option(
        "ecs", f"Deployment target: {', '.join(ALL_TARGETS)} (an existing cluster)."
    )
    model: ModelConfig = option(
        ModelConfig(), "The model to serve: an object, or a catalog name alone (`pulumi config set llm:model QwQ-32B`)."
    )
    engine: EngineConfig = option(EngineConfig(), "The inference engine and its knobs.")
    placement: PlacementConfig = option(PlacementConfig(), "Where one copy of the model runs.")
    workload: WorkloadConfig = option(WorkloadConfig(), "What each Kubernetes serving pod gets.")
    scaling: ScalingConfig = option(ScalingConfig(), "Copies of the model and the autoscaler.")
    access: AccessConfig = option(AccessConfig(), "Who may reach the API, its port, SSH.")
    gateway: GatewayConfig = option(GatewayConfig(), "The authenticating gateway in front of the engine.")
    network: NetworkConfig = option(NetworkConfig(), "The VPC address plan (Alibaba targets).")
    cluster: ClusterConfig = option(ClusterConfig(), "The managed cluster.")
    disk: DiskConfig = option(DiskConfig(), "Disks of the GPU host (ecs) or GPU nodes (ack).")
    ecs: EcsConfig = option(EcsConfig(), "The ecs target's GPU host.")
    model_store: ModelStoreConfig = option(ModelStoreConfig(), "Where the weights are kept.")
    benchmark: BenchmarkConfig = option(BenchmarkConfig(), "The serving benchmark.")
    cost: CostConfig = option(CostConfig(), "Prices for the cost estimate.")
    gpu_nodes: GpuNodesConfig = option(GpuNodesConfig(), "The GPU node pool (ack, gke).")
    ack: AckConfig = option(AckConfig(), "What only ack has.")
    ack_edge: AckEdgeConfig = option(AckEdgeConfig(), "What only ack-edge has.")
    acs: AcsConfig = option(AcsConfig(), "ACS GPU pods, Fluid and the jump host.")
    gke: GkeConfig = option(GkeConfig(), "What only gke has.")
    kubernetes: KubernetesConfig = option(KubernetesConfig(), "What only the kubernetes target has.")
    tags: dict[TagKey, TagValue] = option(
        {}, "Extra resource tags, a map, e.g. {team: ml}.", targets=ALIBABA, example={"team": "ml"}
    )
    deletion_protection: Flag = option(
        False, "Protect the instance or cluster from deletion (console, API, Pulumi).", targets=(*ALIBABA, GKE)
    )
    api_key: Optional[ApiKeyText] = option(
        None, "API key (set with --secret); empty: a random key is generated.", example="<key>"
    )
    hf_token: Optional[HfTokenText] = option(
        None, "Hugging Face token (set with --secret); gated models need it.", targets=(GKE,), example="<hf_token>"
    )
    tls_certificate: Optional[PemText] = option(
        None,
        "access.tls.source pem: the server certificate then its intermediates, PEM (set with --secret).",
        example="<fullchain.pem>",
    )
    tls_key: Optional[PemText] = option(
        None, "access.tls.source pem: the certificate's private key, PEM (set with --secret).", example="<privkey.pem>"
    )
