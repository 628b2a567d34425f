"""The validated, typed settings a stack is built from: config groups as parsed, plus what is derived from them."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Optional

from core.catalog import InstanceType, ModelSpec
from core.config.access import AccessConfig, Tls
from core.config.ack import AckSettings, EdgeBurst, GpuNodePool
from core.config.acs import AcsPod
from core.config.benchmark import BenchmarkConfig
from core.config.engine import ImageMirror
from core.config.gateway import Gateway
from core.config.gke import GkeSettings
from core.config.host import EcsHost
from core.config.kubernetes import KubernetesSettings
from core.config.network import ClusterNetwork, NetworkConfig
from core.config.placement import Placement, Workload
from core.config.scaling import Autoscaling
from core.config.secret import SecretStr
from core.config.storage import Disk, ModelStore
from core.engine import EngineOptions
from core.targets import ON_KUBERNETES


@dataclass(frozen=True)
class JumpHost:
    enabled: bool
    instance_type: str
    image_id: Optional[str]


@dataclass(frozen=True)
class Cost:
    prices: Mapping[str, float]  # overrides per unit-hour (gcs.gib-month: per GiB-month)
    currency: str


@dataclass(frozen=True)
class ProviderConfig:
    """A cloud provider's standard stack config (alicloud:*, gcp:*, kubernetes:*), passed to its explicit provider."""

    namespace: str
    values: Mapping[str, Any]  # camelCase keys as in the stack file
    secret_keys: frozenset[str] = frozenset()  # keys stored as secrets

    def get(self, key: str) -> Any:
        return self.values.get(key)


@dataclass(frozen=True, kw_only=True)
class Settings:
    """What every target has. Each target's settings class adds what only it has, so a stack reads its own
    settings without checking for None."""

    stack: str
    namespace: str  # the project's config namespace (its name), for messages and fix commands
    target: str
    region: str  # Alibaba Cloud or Google Cloud region; "" on kubernetes
    model: ModelSpec
    model_revision: str
    engine: EngineOptions
    placement: Placement
    access: AccessConfig
    tls: Optional[Tls]  # HTTPS on the public endpoint; None: plain HTTP (private, or access.allowPlainHttp)
    gateway: Gateway  # its image and routes; the port is access.apiPort
    api_key: Optional[SecretStr]
    network: NetworkConfig
    deletion_protection: bool
    tags: Mapping[str, str]
    cost: Cost
    mainland_china: bool  # default images from Alibaba's EGS registry (Docker Hub is not reachable there)
    provider: ProviderConfig  # the target's cloud provider config

    @property
    def on_kubernetes(self) -> bool:
        return self.target in ON_KUBERNETES

    @property
    def name(self) -> str:
        """Prefix for cloud resource names: short, unique per stack."""
        return f"llm-{self.stack}"


@dataclass(frozen=True, kw_only=True)
class EcsSettings(Settings):
    """ecs: one GPU host."""

    instance: InstanceType  # the GPU host's type (placement.instance, known to be set here)
    disk: Disk
    ecs: EcsHost


@dataclass(frozen=True, kw_only=True)
class ClusterSettings(Settings):
    """Every Kubernetes target: the shared serving workload, its model store and the benchmark."""

    workload: Workload
    model_store: ModelStore
    benchmark: BenchmarkConfig
    autoscaling: Autoscaling  # scaling.*: replicas..maxReplicas on scaling.metric (off when they are equal)


@dataclass(frozen=True, kw_only=True)
class AlibabaClusterSettings(ClusterSettings):
    """acs, ack, ack-edge: a managed cluster in a VPC this program creates."""

    cluster: ClusterNetwork
    image_mirror: Optional[ImageMirror] = None  # engine.mirror (acs, ack): engine.image is then the mirrored copy


@dataclass(frozen=True, kw_only=True)
class AcsSettings(AlibabaClusterSettings):
    acs: AcsPod
    jump_host: JumpHost


@dataclass(frozen=True, kw_only=True)
class AckFamilySettings(AlibabaClusterSettings):
    """ack and ack-edge: cloud node pools, the HPA, logs."""

    ack: AckSettings


@dataclass(frozen=True, kw_only=True)
class AckTargetSettings(AckFamilySettings):
    disk: Disk
    gpu_pool: GpuNodePool


@dataclass(frozen=True, kw_only=True)
class AckEdgeSettings(AckFamilySettings):
    edge: EdgeBurst
    acs: Optional[AcsPod] = None  # the labels of ACS virtual-node pods (ackEdge.virtualNodeUnit acs)


@dataclass(frozen=True, kw_only=True)
class GkeTargetSettings(ClusterSettings):
    gke: GkeSettings


@dataclass(frozen=True, kw_only=True)
class ExistingClusterSettings(ClusterSettings):
    """kubernetes: a cluster you already have."""

    kubernetes: KubernetesSettings


def is_mainland_china(region: str) -> bool:
    return region.startswith("cn-") and region != "cn-hongkong"
