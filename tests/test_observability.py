"""Autoscaling, metrics, dashboards and alerts on every Kubernetes target (docs/observability.md).

The same queue metric, bounds and behaviour everywhere; scraped whether or not it autoscales; a dashboard and
alert rules that read only metrics the pinned engine serves (core/engine_metrics.json, recorded from the real
engine; tests/engine/test_metrics.py checks the recording against the live engine).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from harness import ROOT, run_stack, settings_for, unwrap, validate_kubernetes

from core import observability
from core.config.problems import ConfigError
from core.config.scaling import QUEUE_METRIC

HPA = "kubernetes:autoscaling/v2:HorizontalPodAutoscaler"
DASHBOARD = ROOT / "dashboards" / "vllm.json"
# Upstream CRD schemas (JSON, <group>_<version>_<kind>.json) are not part of the repository: point LLM_CRD_SCHEMAS at
# a directory of them to run the schema checks; without it they are skipped and say so.
CRD_SCHEMAS = Path(os.environ.get("LLM_CRD_SCHEMAS", "crd-schemas-not-set"))
AUTOSCALED = {
    "acs": {"scaling.maxReplicas": 3},
    "ack": {"scaling.maxReplicas": 3, "gpuNodes.max": 3},
    "ack-edge": {"scaling.maxReplicas": 3},
    "gke": {"scaling.maxReplicas": 3},
    "kubernetes": {"scaling.maxReplicas": 3},
}
# The per-pod custom metric each target's metrics API serves for vllm:num_requests_waiting.
METRIC_NAMES = {
    "acs": "vllm_num_requests_waiting",  # the adapter rule's `as` (custom metric names cannot hold ':')
    "ack": "vllm_num_requests_waiting",
    "ack-edge": "vllm_num_requests_waiting",
    "gke": "prometheus.googleapis.com|vllm:num_requests_waiting|gauge",  # GKE's LLM autoscaling guide
    "kubernetes": "vllm_num_requests_waiting",  # the prometheus-adapter rule of docs/observability.md
}


@pytest.fixture(scope="module", params=sorted(AUTOSCALED))
def autoscaled(request):
    return request.param, run_stack(request.param, AUTOSCALED[request.param])


# --- the dashboard and the alerts ----------------------------------------------------------------------------


def test_the_shipped_dashboard_is_the_generated_one_and_parses():
    shipped = json.loads(DASHBOARD.read_text())
    assert DASHBOARD.read_text() == observability.render_grafana_dashboard()  # scripts/docs.py writes it
    titles = [p["title"] for p in shipped["panels"]]
    for wanted in (
        "Request rate",
        "Time to first token",
        "Inter-token latency",
        "Queue depth",
        "Running requests",
        "KV-cache usage",
        "Tokens per second",
        "Errors",
        "GPU utilisation",
        "GPU memory used",
        "Pod restarts",
    ):
        assert wanted in titles
    assert all(p["targets"] and all(t["expr"] for t in p["targets"]) for p in shipped["panels"])
    assert len({p["id"] for p in shipped["panels"]}) == len(shipped["panels"])
    assert {v["name"] for v in shipped["templating"]["list"]} == {"datasource", "namespace"}
    latency = next(p for p in shipped["panels"] if p["title"] == "Time to first token")
    assert [t["legendFormat"] for t in latency["targets"]] == ["p50", "p90", "p99"]


def test_dashboard_and_alerts_read_only_metrics_every_deployed_vllm_serves():
    names = observability.used_metric_names() | {QUEUE_METRIC}
    assert "vllm:kv_cache_usage_perc" in names and "vllm:inter_token_latency_seconds_bucket" in names
    for version in ("0.32.0", "0.11.0"):  # the default image, and the mainland-China default image
        assert observability.missing_engine_metrics(version, names) == [], version


def test_a_name_the_engine_does_not_serve_is_caught():
    # Renamed in vLLM 0.10/0.11 (hidden since): a dashboard still reading it would show nothing.
    assert observability.missing_engine_metrics("0.32.0", {"vllm:gpu_cache_usage_perc"}) == [
        "vllm:gpu_cache_usage_perc"
    ]
    assert observability.missing_engine_metrics("0.32.0", {"vllm:num_requests_waiting_bucket"}) != []  # a gauge
    assert observability.metric_names(
        'histogram_quantile(0.9, sum by (le) (rate(a_bucket{x="y"}[5m]))) / clamp_min(b, 1e-9)'
    ) == {"a_bucket", "b"}


def test_engine_metric_recording_comes_from_the_pinned_versions():
    from core import versions

    recorded = observability.engine_metrics()
    assert f"vllm=={versions.VLLM_VERSION}" in recorded and "vllm==0.11.0" in recorded
    assert versions.VLLM_IMAGE_CN.value.split(":")[1].startswith("0.11.0")
    assert recorded[f"vllm=={versions.VLLM_VERSION}"][QUEUE_METRIC] == "gauge"


def test_alert_rules_cover_queue_cache_errors_restarts_and_readiness():
    groups = observability.alert_rule_groups("serving")
    rules = {r["alert"]: r for r in groups[0]["rules"]}
    assert set(rules) == {
        "LLMQueueGrowing",
        "LLMKVCacheNearlyFull",
        "LLMServerErrors",
        "LLMEngineRestarted",
        "LLMNoReadyReplica",
    }
    assert (
        rules["LLMQueueGrowing"]["for"] == "10m"
        and "delta(vllm:num_requests_waiting" in rules["LLMQueueGrowing"]["expr"]
    )
    assert "> 0.9" in rules["LLMKVCacheNearlyFull"]["expr"]
    assert 'status="5xx"' in rules["LLMServerErrors"]["expr"]
    assert 'container="engine"' in rules["LLMEngineRestarted"]["expr"] and "for" not in rules["LLMEngineRestarted"]
    assert "or vector(0)" in rules["LLMNoReadyReplica"]["expr"]
    assert all('namespace="serving"' in r["expr"] and "$" not in r["expr"] for r in rules.values())


def test_the_engine_container_the_restart_alert_names_exists():
    run = run_stack("kubernetes")
    containers = run.kubernetes_object("Deployment")["spec"]["template"]["spec"]["containers"]
    assert observability.ENGINE_CONTAINER in [c["name"] for c in containers]


# --- autoscaling: one mechanism, every target ------------------------------------------------------------------


def test_every_target_scales_between_replicas_and_max_on_the_queue_with_the_same_behaviour(autoscaled):
    target, run = autoscaled
    hpa = run.kubernetes_object("HorizontalPodAutoscaler")
    spec = hpa["spec"]
    assert (spec["minReplicas"], spec["maxReplicas"]) == (1, 3)
    assert spec["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": "llm"}
    metric = spec["metrics"][0]
    assert metric["type"] == "Pods" and metric["pods"]["metric"]["name"] == METRIC_NAMES[target]
    assert metric["pods"]["target"] == {"type": "AverageValue", "averageValue": "5"}
    assert spec["behavior"] == {
        "scaleUp": {"stabilizationWindowSeconds": 60, "policies": [{"type": "Pods", "value": 1, "periodSeconds": 60}]},
        "scaleDown": {
            "stabilizationWindowSeconds": 600,
            "policies": [{"type": "Pods", "value": 1, "periodSeconds": 300}],
        },
    }
    # `pulumi up` does not undo the autoscaler's count (the drain: each removed pod gets its grace period).
    workload = next(r for r in run.of_type("kubernetes:apps/v1:Deployment") if r.name == f"llm-{target}")
    assert workload.ignore_changes == ["spec.replicas"]
    assert workload.urn in run.one(HPA).dependencies
    assert unwrap(run.outputs["autoscaling"]).startswith("1-3 replicas on vllm:num_requests_waiting")
    # The HPA, and on gke the adapter's RBAC, Service, Deployment and APIServices, against the Kubernetes schemas.
    custom = validate_kubernetes(run)
    assert not [c for c in custom if "autoscaling" in c or "apiregistration" in c or "rbac" in c]


def test_without_max_replicas_no_target_autoscales_but_every_one_is_scraped():
    for target in ("acs", "gke", "kubernetes"):
        overrides = {"kubernetes.prometheusOperator": True} if target == "kubernetes" else {}
        run = run_stack(target, overrides)
        assert not run.of_type(HPA), target
        deployment = next(r for r in run.of_type("kubernetes:apps/v1:Deployment") if r.name == f"llm-{target}")
        assert deployment.ignore_changes == []
        kinds = {o["kind"] for o in run.kubernetes_objects()}
        assert kinds & {"PodMonitor", "PodMonitoring"}, target
        assert unwrap(run.outputs["autoscaling"]).startswith("off:")


def test_acs_scales_through_alibabas_adapter_and_needs_no_nodes():
    run = run_stack("acs", AUTOSCALED["acs"])
    adapter = next(r for r in run.of_type("kubernetes:helm.sh/v3:Release") if "adapter" in r.name)
    rule = unwrap(adapter.inputs)["values"]["AlibabaCloudMetricsAdapter"]["prometheus"]["adapter"]["rules"]["custom"]
    assert rule[0]["name"]["as"] == "vllm_num_requests_waiting"
    assert adapter.urn in run.one(HPA).dependencies
    assert not run.of_type("alicloud:cs/nodePool:NodePool")


@pytest.mark.parametrize("target", ["acs", "gke", "kubernetes"])
def test_ack_gpu_monitoring_metric_is_refused_elsewhere(target):
    with pytest.raises(ConfigError) as error:
        settings_for(target, {"scaling.maxReplicas": 2, "scaling.metric": "DCGM_CUSTOM_PROCESS_SM_UTIL"})
    found = [p for p in error.value.problems if p.key == "scaling.metric"]
    assert found and "ack and ack-edge only" in found[0].allowed


def test_a_copy_over_several_pods_scales_its_leader_worker_set():
    run = run_stack("kubernetes", {"scaling.maxReplicas": 2, "placement.podsPerReplica": 2})
    ref = run.kubernetes_object("HorizontalPodAutoscaler")["spec"]["scaleTargetRef"]
    assert ref == {"apiVersion": "leaderworkerset.x-k8s.io/v1", "kind": "LeaderWorkerSet", "name": "llm"}


# --- gke: Custom Metrics Stackdriver Adapter, node pool autoscaling, Rules, Cloud Monitoring dashboard ------


@pytest.fixture(scope="module")
def gke_scaled():
    return run_stack("gke", AUTOSCALED["gke"])


def test_gke_installs_the_custom_metrics_adapter_with_monitoring_viewer_for_its_identity(gke_scaled):
    run = gke_scaled
    deployment = run.kubernetes_object("Deployment", "custom-metrics-stackdriver-adapter")
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == "gcr.io/gke-release/custom-metrics-stackdriver-adapter:v0.15.1-gke.0"
    assert "--use-new-resource-model=true" in container["command"]
    services = {o["metadata"]["name"] for o in run.kubernetes_objects() if o["kind"] == "APIService"}
    assert services == {
        "v1beta1.custom.metrics.k8s.io",
        "v1beta2.custom.metrics.k8s.io",
        "v1beta1.external.metrics.k8s.io",
    }
    viewer = next(
        unwrap(r.inputs) for r in run.of_type("gcp:projects/iAMMember:IAMMember") if "monitoring-viewer" in r.name
    )
    assert viewer["role"] == "roles/monitoring.viewer"
    assert viewer["member"].endswith(
        "/workloadIdentityPools/my-gcp-project.svc.id.goog/subject/ns/custom-metrics/sa/custom-metrics-stackdriver-adapter"
    )
    hpa = run.one(HPA)
    adapter_deployment = next(r for r in run.of_type("kubernetes:apps/v1:Deployment") if "custom-metrics" in r.name)
    assert adapter_deployment.urn in hpa.dependencies


def test_gke_without_autoscaling_has_no_adapter(gke_scaled):
    run = run_stack("gke")
    assert not [o for o in run.kubernetes_objects() if o["kind"] == "APIService"]
    pool = unwrap(run.named("llm-gke-gpu-pool").inputs)
    assert pool["nodeCount"] == 1 and "autoscaling" not in pool


@pytest.mark.parametrize(
    ("overrides", "size"),
    [
        ({}, {"initialNodeCount": 1, "autoscaling": {"totalMinNodeCount": 1, "totalMaxNodeCount": 3}}),
        (
            {"gke.capacity.mode": "spot"},
            {"initialNodeCount": 1, "autoscaling": {"totalMinNodeCount": 1, "totalMaxNodeCount": 3}},
        ),
        (
            {"gke.capacity.mode": "reservation", "gke.capacity.reservation": "r1", "gpuNodes.max": 4},
            {"initialNodeCount": 1, "autoscaling": {"totalMinNodeCount": 1, "totalMaxNodeCount": 4}},
        ),
    ],
)
def test_gke_node_pool_grows_with_the_serving_pods_within_the_capacity_mode(overrides, size):
    run = run_stack("gke", {**AUTOSCALED["gke"], **overrides})
    pool = unwrap(run.named("llm-gke-gpu-pool").inputs)
    assert "nodeCount" not in pool  # the provider: node_count "should not be used alongside autoscaling"
    assert {k: pool[k] for k in size} == size


def test_gke_flex_start_pool_autoscales_from_zero_to_the_most_pods():
    settings = settings_for("gke", {"scaling.maxReplicas": 2})
    from components.gcp.gpu_node_pool import GpuNodePoolArgs, pool_size

    flex = settings.gke.capacity.__class__("flex-start", None, 3600)
    args = GpuNodePoolArgs(
        project="p",
        cluster="c",
        region="r",
        zone="z",
        machine=settings.gke.machine,
        node_count=settings.gke.node_count,
        max_node_count=settings.gke.max_node_count,
        capacity=flex,
        service_account="sa",
    )
    assert pool_size(args) == {
        "initial_node_count": 0,
        "autoscaling": {"total_min_node_count": 0, "total_max_node_count": 2, "location_policy": "ANY"},
    }


def test_gke_pool_maximum_must_hold_the_most_pods():
    with pytest.raises(ConfigError) as error:
        settings_for("gke", {"scaling.maxReplicas": 3, "gpuNodes.max": 2})
    found = [p for p in error.value.problems if p.key == "gpuNodes.max"]
    assert found and "fewer serving pods than scaling.maxReplicas (3)" in found[0].allowed
    with pytest.raises(ConfigError) as error:
        settings_for("gke", {"gpuNodes.max": 2})
    assert [p for p in error.value.problems if p.key == "gpuNodes.max"]


def test_gke_alert_rules_and_cloud_monitoring_dashboard(gke_scaled):
    rules = gke_scaled.kubernetes_object("Rules")
    assert rules["apiVersion"] == "monitoring.googleapis.com/v1" and rules["metadata"]["namespace"] == "llm"
    assert rules["spec"]["groups"] == observability.alert_rule_groups("llm")
    board = json.loads(unwrap(gke_scaled.one("gcp:monitoring/dashboard:Dashboard").inputs)["dashboardJson"])
    tiles = board["mosaicLayout"]["tiles"]
    assert [t["widget"]["title"] for t in tiles] == [p.title for p in observability.PANELS]
    queries = [d["timeSeriesQuery"]["prometheusQuery"] for t in tiles for d in t["widget"]["xyChart"]["dataSets"]]
    assert any('vllm:num_requests_waiting{namespace="llm"}' in q for q in queries)
    assert all("$namespace" not in q for q in queries)
    assert gke_scaled.outputs["dashboard"].startswith("https://console.cloud.google.com/monitoring/dashboards/")
    cluster = unwrap(gke_scaled.one("gcp:container/cluster:Cluster").inputs)
    assert {"DCGM", "POD"} <= set(cluster["monitoringConfig"]["enableComponents"])


# --- kubernetes: the user's Prometheus Operator, prometheus-adapter or KEDA -----------------------------------


def test_kubernetes_with_the_prometheus_operator_reads_its_crds_then_monitors_and_alerts():
    run = run_stack("kubernetes", {"kubernetes.prometheusOperator": True})
    read = {(t, i): urn for t, i, urn in run.reads}
    crd = "kubernetes:apiextensions.k8s.io/v1:CustomResourceDefinition"
    monitor = run.one("kubernetes:monitoring.coreos.com/v1:PodMonitor")
    rule = run.one("kubernetes:monitoring.coreos.com/v1:PrometheusRule")
    assert read[(crd, "podmonitors.monitoring.coreos.com")] in monitor.dependencies
    assert read[(crd, "prometheusrules.monitoring.coreos.com")] in rule.dependencies
    spec = run.kubernetes_object("PodMonitor")["spec"]
    assert spec == {
        "selector": {"matchLabels": {"app": "llm"}},
        "podMetricsEndpoints": [{"port": "metrics", "path": "/metrics", "interval": "15s"}],
    }
    assert run.kubernetes_object("PrometheusRule")["spec"]["groups"] == observability.alert_rule_groups("llm")


def test_kubernetes_without_the_operator_reads_nothing_and_says_where_the_metrics_are():
    run = run_stack("kubernetes")
    assert run.reads == [] and not [o for o in run.kubernetes_objects() if o["kind"] == "PodMonitor"]
    assert "8002" in unwrap(run.outputs["metrics"])


def test_kubernetes_hpa_waits_for_the_custom_metrics_api_it_reads():
    run = run_stack("kubernetes", AUTOSCALED["kubernetes"])
    api = next(urn for t, i, urn in run.reads if i == "v1beta1.custom.metrics.k8s.io")
    assert api in run.one(HPA).dependencies


def test_kubernetes_keda_scaled_object_has_the_hpas_bounds_target_and_behaviour():
    url = "http://prometheus-operated.monitoring.svc:9090"
    run = run_stack(
        "kubernetes", {"scaling.maxReplicas": 3, "kubernetes.autoscaler": "keda", "kubernetes.prometheusUrl": url}
    )
    assert not run.of_type(HPA)  # KEDA makes its own
    scaled = run.kubernetes_object("ScaledObject")
    assert scaled["apiVersion"] == "keda.sh/v1alpha1"
    spec = scaled["spec"]
    assert (spec["minReplicaCount"], spec["maxReplicaCount"]) == (1, 3)
    trigger = spec["triggers"][0]
    assert trigger["type"] == "prometheus" and trigger["metricType"] == "AverageValue"
    assert trigger["metadata"] == {
        "serverAddress": url,
        "query": 'sum(vllm:num_requests_waiting{namespace="llm"})',
        "threshold": "5",
    }
    hpa = run_stack("kubernetes", AUTOSCALED["kubernetes"]).kubernetes_object("HorizontalPodAutoscaler")
    assert spec["advanced"]["horizontalPodAutoscalerConfig"]["behavior"] == hpa["spec"]["behavior"]
    crd = next(urn for t, i, urn in run.reads if i == "scaledobjects.keda.sh")
    assert crd in run.one("kubernetes:keda.sh/v1alpha1:ScaledObject").dependencies


def test_keda_needs_the_prometheus_it_queries_and_only_keda_uses_one():
    with pytest.raises(ConfigError) as error:
        settings_for("kubernetes", {"scaling.maxReplicas": 3, "kubernetes.autoscaler": "keda"})
    assert [p for p in error.value.problems if p.key == "kubernetes.prometheusUrl"]
    with pytest.raises(ConfigError) as error:
        settings_for("kubernetes", {"kubernetes.prometheusUrl": "http://p:9090"})
    assert "only used by kubernetes.autoscaler keda" in error.value.problems[0].allowed


# --- custom resources against the upstream CRD schemas ------------------------------------------------------


def _crd_schema(group_version_kind: str) -> dict:
    path = CRD_SCHEMAS / f"{group_version_kind}.json"
    if not path.exists():
        pytest.skip(f"no CRD schema at {path} (set LLM_CRD_SCHEMAS to the directory of upstream CRD schemas)")
    return json.loads(path.read_text())


def _strict(schema):
    """The CRD's structural schema as JSON Schema, strict: the API server prunes unknown fields silently (a typo
    would be dropped, not refused), so an unknown field fails here."""
    if isinstance(schema, list):
        return [_strict(v) for v in schema]
    if not isinstance(schema, dict):
        return schema
    out = {k: _strict(v) for k, v in schema.items() if not k.startswith("x-")}
    if "properties" in schema and "additionalProperties" not in schema:
        if not schema.get("x-kubernetes-preserve-unknown-fields"):
            out["additionalProperties"] = False
    if schema.get("x-kubernetes-int-or-string"):
        out.pop("type", None)
        out["anyOf"] = [{"type": "integer"}, {"type": "string"}]
    return out


@pytest.mark.parametrize("target", ["ack", "acs", "kubernetes"])
def test_pod_monitors_validate_against_the_prometheus_operator_crd(target):
    import jsonschema

    schema = _strict(_crd_schema("monitoring.coreos.com_v1_PodMonitor")["schema"])
    overrides = {"kubernetes.prometheusOperator": True} if target == "kubernetes" else {}
    monitor = run_stack(target, overrides).kubernetes_object("PodMonitor")
    jsonschema.validate(monitor, schema)
    endpoint = monitor["spec"]["podMetricsEndpoints"][0]
    for broken in ({**endpoint, "port": 8002}, {**endpoint, "intervall": "15s"}):  # port is the name; a typo
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate({**monitor, "spec": {**monitor["spec"], "podMetricsEndpoints": [broken]}}, schema)
