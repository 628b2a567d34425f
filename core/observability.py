"""What is watched on a serving namespace: the dashboard's panels, the alert rules, and the metric names they read.

One definition, rendered three ways: dashboards/vllm.json (a Grafana dashboard for ARMS Grafana or any Grafana,
written by scripts/docs.py), a Cloud Monitoring dashboard on gke (the same PromQL, components.gcp.observability),
and the alert rules (a PrometheusRule, GKE's managed-Prometheus Rules, ARMS Prometheus alert rules).

Metric names are the engine's as it serves them on the gateway's metrics port (core/engine_metrics.json: recorded
from the real vLLM 0.32.0 by tests/engine/dump_metrics.py, and read from the 0.11.0 wheel for the mainland image).
Both versions serve every vLLM name used here. The other names come from exporters the clusters run:
- DCGM_FI_DEV_GPU_UTIL, DCGM_FI_DEV_FB_USED: NVIDIA dcgm-exporter's default counters
  (GKE managed DCGM metrics, monitoring_config DCGM; ACK GPU monitoring's exporter). Their pod labels differ per
  exporter, so the GPU panels are per node/GPU, not filtered by namespace.
- kube_pod_container_status_restarts_total: kube-state-metrics (GKE's managed kube state metrics, POD package;
  ARMS's kube-state-metrics; the user's own on `kubernetes`).
- up: every Prometheus-compatible scraper writes it per target (Managed Service for Prometheus on GKE included).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path

METRICS_FILE = Path(__file__).resolve().parent / "engine_metrics.json"
NAMESPACE_VARIABLE = "$namespace"
ENGINE_CONTAINER = "engine"  # components.kubernetes.serving_workload's engine container
RATE_WINDOW = "5m"

# Names that are not the engine's, with the exporter that serves them (checked against this list, not the engine).
EXPORTER_METRICS = {
    "DCGM_FI_DEV_GPU_UTIL": "dcgm-exporter",
    "DCGM_FI_DEV_FB_USED": "dcgm-exporter",
    "kube_pod_container_status_restarts_total": "kube-state-metrics",
    "up": "the scraper",
}
PROMQL_WORDS = {
    "sum",
    "by",
    "rate",
    "increase",
    "histogram_quantile",
    "max",
    "min",
    "avg",
    "clamp_min",
    "delta",
    "or",
    "and",
    "vector",
    "le",
    "without",
    "on",
    "absent",
}


def ns(extra: str = "") -> str:
    """The label matcher of the serving namespace (the `namespace` variable), plus `extra` matchers."""
    return "{" + f'namespace="{NAMESPACE_VARIABLE}"' + (f",{extra}" if extra else "") + "}"


def quantile(q: float, histogram: str) -> str:
    return f"histogram_quantile({q}, sum by (le) (rate({histogram}_bucket{ns()}[{RATE_WINDOW}])))"


@dataclass(frozen=True)
class Query:
    expr: str
    legend: str


@dataclass(frozen=True)
class Panel:
    title: str
    unit: str  # Grafana unit id: reqps, s, short, percentunit, percent, decmbytes
    queries: tuple[Query, ...]
    description: str


# The instrumentator vLLM mounts groups status codes by class (2xx, 4xx, 5xx); finished_reason abort: the client
# went away or the request was cancelled.
SERVER_ERRORS = ns('status="5xx"')
ABORTED = ns('finished_reason="abort"')
ENGINE_RESTARTS = ns(f'container="{ENGINE_CONTAINER}"')


def _percentiles(histogram: str) -> tuple[Query, ...]:
    return tuple(Query(quantile(q, histogram), f"p{round(q * 100)}") for q in (0.5, 0.9, 0.99))


PANELS: tuple[Panel, ...] = (
    Panel(
        "Request rate",
        "reqps",
        (
            Query(
                f"sum by (finished_reason) (rate(vllm:request_success_total{ns()}[{RATE_WINDOW}]))",
                "{{finished_reason}}",
            ),
            Query(f"sum by (status) (rate(http_requests_total{ns()}[{RATE_WINDOW}]))", "HTTP {{status}}"),
        ),
        "Finished requests by reason, and the engine's HTTP answers by status class.",
    ),
    Panel(
        "Time to first token",
        "s",
        _percentiles("vllm:time_to_first_token_seconds"),
        "Queueing plus prefill: what a user waits before the first token.",
    ),
    Panel(
        "Inter-token latency",
        "s",
        _percentiles("vllm:inter_token_latency_seconds"),
        "Time between two tokens of a stream (decode speed per request).",
    ),
    Panel(
        "End-to-end request latency",
        "s",
        _percentiles("vllm:e2e_request_latency_seconds"),
        "From arrival to the last token.",
    ),
    Panel(
        "Queue depth",
        "short",
        (Query(f"sum by (pod) (vllm:num_requests_waiting{ns()})", "{{pod}}"),),
        "Requests waiting for a slot: what the autoscaler scales on (scaling.target per pod).",
    ),
    Panel(
        "Running requests",
        "short",
        (Query(f"sum by (pod) (vllm:num_requests_running{ns()})", "{{pod}}"),),
        "Requests in the running batch.",
    ),
    Panel(
        "KV-cache usage",
        "percentunit",
        (Query(f"max by (pod) (vllm:kv_cache_usage_perc{ns()})", "{{pod}}"),),
        "Fraction of KV-cache blocks in use; near 1 the engine preempts or queues.",
    ),
    Panel(
        "Tokens per second",
        "short",
        (
            Query(f"sum(rate(vllm:generation_tokens_total{ns()}[{RATE_WINDOW}]))", "generated"),
            Query(f"sum(rate(vllm:prompt_tokens_total{ns()}[{RATE_WINDOW}]))", "prompt"),
        ),
        "Output and prompt tokens per second over every replica.",
    ),
    Panel(
        "Errors",
        "reqps",
        (
            Query(f"sum(rate(http_requests_total{SERVER_ERRORS}[{RATE_WINDOW}]))", "5xx"),
            Query(f"sum(rate(vllm:request_success_total{ABORTED}[{RATE_WINDOW}]))", "aborted"),
        ),
        "The engine's 5xx answers and aborted requests. The gateway's own 502/504 (engine down or slow) are not "
        "counted here: nginx exports no metrics; see the no-ready-replica alert.",
    ),
    Panel(
        "GPU utilisation",
        "percent",
        (Query("avg by (Hostname, gpu) (DCGM_FI_DEV_GPU_UTIL)", "{{Hostname}} GPU {{gpu}}"),),
        "dcgm-exporter's GPU utilisation per node and GPU.",
    ),
    Panel(
        "GPU memory used",
        "decmbytes",
        (Query("sum by (Hostname, gpu) (DCGM_FI_DEV_FB_USED)", "{{Hostname}} GPU {{gpu}}"),),
        "Frame buffer in use per GPU (vLLM reserves gpu_memory_utilization of it at start).",
    ),
    Panel(
        "Pod restarts",
        "short",
        (
            Query(
                f"sum by (pod, container) (increase(kube_pod_container_status_restarts_total{ns()}[15m]))",
                "{{pod}} {{container}}",
            ),
        ),
        "Container restarts in the namespace over 15 minutes (kube-state-metrics).",
    ),
)


@dataclass(frozen=True)
class AlertRule:
    name: str
    expr: str
    for_minutes: int
    severity: str  # warning | critical
    summary: str


ALERTS: tuple[AlertRule, ...] = (
    AlertRule(
        "LLMQueueGrowing",
        f"sum(vllm:num_requests_waiting{ns()}) > 0 and sum(delta(vllm:num_requests_waiting{ns()}[10m])) > 0",
        10,
        "warning",
        "Requests have been queueing and the queue growing for 10 minutes: every replica is saturated "
        "(at scaling.maxReplicas, or new capacity is still starting).",
    ),
    AlertRule(
        "LLMKVCacheNearlyFull",
        f"max(vllm:kv_cache_usage_perc{ns()}) > 0.9",
        5,
        "warning",
        "A replica's KV cache has been over 90% full for 5 minutes: requests queue or are preempted.",
    ),
    AlertRule(
        "LLMServerErrors",
        f"sum(rate(http_requests_total{SERVER_ERRORS}[{RATE_WINDOW}])) "
        f"/ clamp_min(sum(rate(http_requests_total{ns()}[{RATE_WINDOW}])), 1e-9) > 0.05",
        5,
        "critical",
        "More than 5% of the engine's answers have been 5xx for 5 minutes.",
    ),
    AlertRule(
        "LLMEngineRestarted",
        f"sum(increase(kube_pod_container_status_restarts_total{ENGINE_RESTARTS}[15m])) > 0",
        0,
        "warning",
        "An engine container restarted in the last 15 minutes (crash, out of memory, or failed probes).",
    ),
    AlertRule(
        "LLMNoReadyReplica",
        f"(sum(up{ns()}) or vector(0)) < 1",
        5,
        "critical",
        "No serving pod's metrics port has answered for 5 minutes: no replica is serving.",
    ),
)

NAME = re.compile(r"[A-Za-z_:][A-Za-z0-9_:]*")


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression reads (not its functions, labels, label values or durations)."""
    text = re.sub(r'"[^"]*"', '""', expr)  # label values
    text = re.sub(r"\{[^}]*\}", "", text)  # matchers
    text = re.sub(r"\[[^\]]*\]", "", text)  # ranges
    text = re.sub(r"by \([^)]*\)", "", text)  # grouping labels
    text = re.sub(r"(?<![A-Za-z_:])\d+(\.\d+)?(e-?\d+)?", "", text)  # numbers (1e-9 included)
    return {n for n in NAME.findall(text) if n not in PROMQL_WORDS}


def used_metric_names() -> set[str]:
    """Every metric name the dashboard and the alert rules read."""
    exprs = [q.expr for p in PANELS for q in p.queries] + [a.expr for a in ALERTS]
    return set().union(*(metric_names(e) for e in exprs))


@cache
def engine_metrics() -> dict[str, dict[str, str]]:
    """core/engine_metrics.json: per `vllm==<version>`, the metric families that version serves."""
    data = json.loads(METRICS_FILE.read_text())
    return {k: v for k, v in data.items() if k != "_source"}


def served(name: str, families: dict[str, str]) -> bool:
    """Whether a series name belongs to a family the engine serves (a histogram's _bucket/_sum/_count too)."""
    if name in families:
        return True
    base, _, suffix = name.rpartition("_")
    return suffix in ("bucket", "sum", "count") and families.get(base) == "histogram"


def missing_engine_metrics(version: str, names: set[str]) -> list[str]:
    """The names (other than EXPORTER_METRICS) that vLLM `version` does not serve."""
    families = engine_metrics()[f"vllm=={version}"]
    return sorted(n for n in names if n not in EXPORTER_METRICS and not served(n, families))


def substitute(expr: str, namespace: str) -> str:
    return expr.replace(NAMESPACE_VARIABLE, namespace)


def alert_rule_groups(namespace: str) -> list[dict]:
    """The alerts as Prometheus rule groups (PrometheusRule and GKE Rules take this `groups` list)."""
    rules = []
    for alert in ALERTS:
        rule: dict = {
            "alert": alert.name,
            "expr": substitute(alert.expr, namespace),
            "labels": {"severity": alert.severity},
            "annotations": {"summary": alert.summary},
        }
        if alert.for_minutes:
            rule["for"] = f"{alert.for_minutes}m"
        rules.append(rule)
    return [{"name": "llm-serving", "interval": "60s", "rules": rules}]


def grafana_dashboard() -> dict:
    """The Grafana dashboard (schema 39): a Prometheus data source variable and the serving namespace variable."""
    panels = []
    for index, panel in enumerate(PANELS):
        panels.append(
            {
                "id": index + 1,
                "type": "timeseries",
                "title": panel.title,
                "description": panel.description,
                "datasource": {"type": "prometheus", "uid": "${datasource}"},
                "gridPos": {"h": 8, "w": 12, "x": 12 * (index % 2), "y": 8 * (index // 2)},
                "fieldConfig": {"defaults": {"unit": panel.unit}, "overrides": []},
                "options": {"legend": {"displayMode": "list", "placement": "bottom"}, "tooltip": {"mode": "multi"}},
                "targets": [
                    {
                        "refId": chr(ord("A") + n),
                        "datasource": {"type": "prometheus", "uid": "${datasource}"},
                        "expr": q.expr,
                        "legendFormat": q.legend,
                    }
                    for n, q in enumerate(panel.queries)
                ],
            }
        )
    return {
        "title": "LLM serving (vLLM)",
        "uid": "llm-serving-vllm",
        "description": "vLLM behind the authenticating gateway: load, latency, cache, GPUs, errors. Generated by "
        "scripts/docs.py from core/observability.py.",
        "tags": ["vllm", "llm"],
        "timezone": "utc",
        "schemaVersion": 39,
        "version": 1,
        "editable": True,
        "refresh": "30s",
        "time": {"from": "now-3h", "to": "now"},
        "templating": {
            "list": [
                {"name": "datasource", "label": "Prometheus", "type": "datasource", "query": "prometheus"},
                {
                    "name": "namespace",
                    "label": "Serving namespace",
                    "type": "textbox",
                    "query": "llm",
                    "current": {"text": "llm", "value": "llm"},
                },
            ]
        },
        "panels": panels,
    }


def render_grafana_dashboard() -> str:
    return json.dumps(grafana_dashboard(), indent=2) + "\n"


def cloud_monitoring_dashboard(namespace: str, title: str) -> dict:
    """The same panels as a Cloud Monitoring dashboard (PromQL over Managed Service for Prometheus data)."""
    tiles = []
    for index, panel in enumerate(PANELS):
        tiles.append(
            {
                "xPos": 24 * (index % 2),
                "yPos": 16 * (index // 2),
                "width": 24,
                "height": 16,
                "widget": {
                    "title": panel.title,
                    "xyChart": {
                        "chartOptions": {"mode": "COLOR"},
                        "dataSets": [
                            {
                                "plotType": "LINE",
                                "targetAxis": "Y1",
                                "legendTemplate": q.legend.replace("{{", "${labels.").replace("}}", "}"),
                                "timeSeriesQuery": {"prometheusQuery": substitute(q.expr, namespace)},
                            }
                            for q in panel.queries
                        ],
                    },
                },
            }
        )
    return {"displayName": title, "mosaicLayout": {"columns": 48, "tiles": tiles}}


@dataclass(frozen=True)
class SeriesRule:
    """How a Prometheus series becomes the per-pod custom metric `name`."""

    series: str
    name: str  # as the HPA asks for it (custom metric names are URL path segments: no ':')
    namespace_label: str
    pod_label: str
    aggregate: str  # sum: a count per pod; avg: a percentage per pod

    def adapter_rule(self) -> dict:
        return {
            "seriesQuery": f'{{__name__="{self.series}",{self.namespace_label}!="",{self.pod_label}!=""}}',
            "resources": {
                "overrides": {self.namespace_label: {"resource": "namespace"}, self.pod_label: {"resource": "pod"}}
            },
            "name": {"matches": f"^{self.series}$", "as": self.name},
            "metricsQuery": f"{self.aggregate}(<<.Series>>{{<<.LabelMatchers>>}}) by (<<.GroupBy>>)",
        }


# prometheus-adapter rules (ack-alibaba-cloud-metrics-adapter takes the same syntax; a prometheus-adapter on
# `kubernetes` needs the first): the engine's queue, scraped by our PodMonitor (prometheus-operator labels:
# namespace, pod), and ACK GPU monitoring's per-process SM utilisation (its exporter's own label names).
ADAPTER_RULES: Mapping[str, SeriesRule] = {
    "vllm:num_requests_waiting": SeriesRule(
        "vllm:num_requests_waiting", "vllm_num_requests_waiting", "namespace", "pod", "sum"
    ),
    "DCGM_CUSTOM_PROCESS_SM_UTIL": SeriesRule(
        "DCGM_CUSTOM_PROCESS_SM_UTIL", "DCGM_CUSTOM_PROCESS_SM_UTIL", "NamespaceName", "PodName", "avg"
    ),
}
