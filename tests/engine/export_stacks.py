"""Export what each example stack would run, from the program itself under the test harness's mocks.

Run with the main venv (it has the Pulumi SDKs; the engine venv has not):

    .venv/bin/python tests/engine/export_stacks.py OUT.json

For every Kubernetes example stack: the serving pod's engine container (command, args, environment with
Secret references kept as such, probes, preStop), the gateway container (command, preStop, probes) and its
nginx.conf from the ConfigMap, the benchmark Job's container if the stack has one, and the client outputs
(curlCommand, openaiSnippet). The real-engine suite runs exactly these, with substitutions.py's changes only.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(ROOT / "tests"), str(ROOT)]

from harness import EXAMPLE_STACKS, run_stack, settings_for  # noqa: E402

from core.targets import ECS  # noqa: E402


def _serving_pod(objects: list[dict]) -> dict:
    for o in objects:
        if o["kind"] == "Deployment" and o["metadata"]["name"] == "llm":
            return o["spec"]["template"]["spec"]
        if o["kind"] == "LeaderWorkerSet":
            return o["spec"]["leaderWorkerTemplate"]["leaderTemplate"]["spec"]
    raise LookupError("no serving Deployment or LeaderWorkerSet named llm")


def _container(pod: dict, name: str) -> dict:
    return next(c for c in pod["containers"] if c["name"] == name)


def export(stack: str) -> dict:
    run = run_stack(stack)
    objects = run.kubernetes_objects()
    pod = _serving_pod(objects)
    engine, gateway = _container(pod, "engine"), _container(pod, "gateway")
    conf_volume = next(v for v in pod["volumes"] if v["name"] == "gateway-conf")
    config_map = next(
        o for o in objects if o["kind"] == "ConfigMap" and o["metadata"]["name"] == conf_volume["configMap"]["name"]
    )
    jobs = [o for o in objects if o["kind"] == "Job" and "benchmark" in o["metadata"]["name"]]
    bench = jobs[0]["spec"]["template"]["spec"]["containers"][0] if jobs else None
    mounts = (bench or {}).get("volumeMounts", [])
    results_mount = next((m["mountPath"] for m in mounts if m["name"] == "results"), None)
    outputs = {k: run.outputs.get(k) for k in ("curlCommand", "openaiSnippet", "privateApiUrl", "servedModelName")}
    key_volume = next(v for v in pod["volumes"] if v["name"] == "gateway-key")
    # The stack's own Secrets: under the mocks the API key is the RandomPassword mock's (not a real secret).
    secrets = {o["metadata"]["name"]: o["stringData"] for o in objects if o["kind"] == "Secret" and "stringData" in o}
    return {
        "api_key": run.outputs["apiKey"],
        "secrets": secrets,
        "gateway_key_volume": key_volume["secret"],
        "stack": stack,
        "multi_pod": any(o["kind"] == "LeaderWorkerSet" for o in objects),
        "engine": {
            k: engine.get(k)
            for k in ("command", "args", "env", "startupProbe", "readinessProbe", "livenessProbe", "lifecycle")
        },
        "gateway": {k: gateway.get(k) for k in ("command", "ports", "readinessProbe", "livenessProbe", "lifecycle")},
        "nginx_conf": config_map["data"]["nginx.conf"],
        "grace_seconds": pod["terminationGracePeriodSeconds"],
        "benchmark": bench and {k: bench.get(k) for k in ("command", "args", "env")},
        "benchmark_results_mount": results_mount,
        "outputs": outputs,
    }


def main(out: str) -> None:
    stacks = [s for s in EXAMPLE_STACKS if settings_for(s).target != ECS]
    Path(out).write_text(json.dumps({s: export(s) for s in stacks}, indent=1, sort_keys=True))
    print(f"exported {len(stacks)} stacks to {out}: {', '.join(stacks)}")


if __name__ == "__main__":
    main(sys.argv[1])
