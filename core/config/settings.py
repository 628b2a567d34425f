"""The validated, typed settings a stack is built from: config groups as parsed, plus what is derived from them."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping, Optional

from core.catalog import ModelSpec
from core.config.access import AccessConfig
from core.config.ack import AckSettings
from core.config.acs import AcsPod
from core.config.benchmark import BenchmarkConfig
from core.config.gke import GkeSettings
from core.config.host import EcsHost
from core.config.kubernetes import KubernetesSettings
from core.config.network import ClusterNetwork, NetworkConfig
from core.config.placement import Placement, Workload
from core.config.storage import Disk, ModelStore
from core.engine import EngineOptions
from core.targets import ON_KUBERNETES


class SecretStr:
    """A secret value that does not print itself."""

    def __init__(self, value: str):
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "SecretStr('****')"


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


@dataclass(frozen=True)
class Settings:
    stack: str
    namespace: str  # the project's config namespace (its name), for messages and fix commands
    target: str
    region: str  # Alibaba Cloud or Google Cloud region; "" on kubernetes
    model: ModelSpec
    model_revision: str
    engine: EngineOptions
    placement: Placement
    access: AccessConfig
    api_key: Optional[SecretStr]
    network: NetworkConfig
    deletion_protection: bool
    tags: Mapping[str, str]
    cost: Cost
    mainland_china: bool  # default images from Alibaba's EGS registry (Docker Hub is not reachable there)
    provider: ProviderConfig  # the target's cloud provider config
    disk: Optional[Disk] = None  # ecs, ack
    ecs: Optional[EcsHost] = None  # ecs
    workload: Optional[Workload] = None  # Kubernetes targets
    cluster: Optional[ClusterNetwork] = None  # acs, ack, ack-edge
    acs: Optional[AcsPod] = None  # acs, ack-edge with ACS virtual nodes
    model_store: Optional[ModelStore] = None  # Kubernetes targets
    jump_host: Optional[JumpHost] = None  # acs
    benchmark: Optional[BenchmarkConfig] = None  # Kubernetes targets
    ack: Optional[AckSettings] = None  # ack, ack-edge
    gke: Optional[GkeSettings] = None  # gke
    kubernetes: Optional[KubernetesSettings] = None  # kubernetes
    kubernetes_provider: ProviderConfig = field(default_factory=lambda: ProviderConfig("kubernetes", {}))

    @property
    def on_kubernetes(self) -> bool:
        return self.target in ON_KUBERNETES

    @property
    def name(self) -> str:
        """Prefix for cloud resource names: short, unique per stack."""
        return f"llm-{self.stack}"


def is_mainland_china(region: str) -> bool:
    return region.startswith("cn-") and region != "cn-hongkong"
