"""`kubernetes`: what only the `kubernetes` target (an existing cluster) has: the model volume's storage class and
which registry its nodes can pull from. Which cluster comes from the Kubernetes provider's standard keys
(kubernetes:kubeconfig, kubernetes:context, ...), read with the rest of the provider config."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from core.config.schema import DnsSubdomain, Flag, Group, option
from core.targets import KUBERNETES


class KubernetesConfig(Group):
    TARGETS = (KUBERNETES,)
    storage_class: Optional[DnsSubdomain] = option(
        None, "Storage class of the model volume; empty: the cluster default.", example="standard"
    )
    mainland_china: Flag = option(
        False,
        "The cluster's nodes are in mainland China: default images come from Alibaba's EGS registry "
        "instead of Docker Hub.",
    )


@dataclass(frozen=True)
class KubernetesSettings:
    storage_class: Optional[str]
    mainland_china: bool
