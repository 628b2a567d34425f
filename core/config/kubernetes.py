"""`kubernetes`: what only the `kubernetes` target (an existing cluster) has: the model volume's storage class and
which registry its nodes can pull from. Which cluster comes from the Kubernetes provider's standard keys
(kubernetes:kubeconfig, kubernetes:context, ...), read with the rest of the provider config."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Literal, Optional

from core.config.problems import Problems
from core.config.scaling import Autoscaling
from core.config.schema import DnsSubdomain, Flag, Group, matches, option
from core.targets import KUBERNETES

CUSTOM_METRICS = "custom-metrics"
KEDA = "keda"
# An in-cluster or reachable Prometheus HTTP API base, as KEDA's Prometheus scaler takes it (serverAddress).
PROMETHEUS_URL = r"https?://[A-Za-z0-9.-]+(:[0-9]{1,5})?(/[A-Za-z0-9._~/-]*)?"


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
    autoscaler: Literal["custom-metrics", "keda"] = option(
        CUSTOM_METRICS,
        "With scaling.maxReplicas: custom-metrics (an HPA reading vllm_num_requests_waiting from the custom metrics "
        "API your prometheus-adapter serves) or keda (a KEDA ScaledObject querying kubernetes.prometheusUrl).",
    )
    prometheus_url: Optional[Annotated[str, matches(PROMETHEUS_URL, "an http(s) URL of a Prometheus HTTP API")]] = (
        option(
            None,
            "autoscaler keda: the Prometheus server KEDA queries (it must scrape the serving pods).",
            example="http://prometheus-operated.monitoring.svc:9090",
        )
    )
    prometheus_operator: Flag = option(
        False,
        "The cluster runs the Prometheus Operator: a PodMonitor scrapes the serving pods and a PrometheusRule holds "
        "the alerts (their CRDs are read first, so a cluster without them fails at preview).",
    )


@dataclass(frozen=True)
class KubernetesSettings:
    storage_class: Optional[str]
    mainland_china: bool
    autoscaler: str = CUSTOM_METRICS
    prometheus_url: Optional[str] = None
    prometheus_operator: bool = False


def resolve_kubernetes(config: KubernetesConfig, autoscaling: Optional[Autoscaling], problems: Problems):
    """The existing cluster's options; KEDA needs the Prometheus it queries, and only KEDA uses one."""
    scaling = autoscaling is not None and autoscaling.enabled
    if config.autoscaler == KEDA and scaling and not config.prometheus_url:
        problems.add(
            "kubernetes.prometheusUrl",
            None,
            "KEDA's Prometheus scaler needs the server it queries",
            problems.set_command("kubernetes.prometheusUrl", "http://prometheus-operated.monitoring.svc:9090"),
        )
    if config.prometheus_url and config.autoscaler != KEDA:
        problems.add(
            "kubernetes.prometheusUrl",
            config.prometheus_url,
            "is only used by kubernetes.autoscaler keda",
            f"{problems.set_command('kubernetes.autoscaler', KEDA)}, or "
            f"{problems.rm_command('kubernetes.prometheusUrl')}",
        )
    return KubernetesSettings(
        storage_class=config.storage_class,
        mainland_china=config.mainland_china,
        autoscaler=config.autoscaler,
        prometheus_url=config.prometheus_url,
        prometheus_operator=config.prometheus_operator,
    )
