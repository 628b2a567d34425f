"""Export what each example stack would run, from the program itself under the test harness's mocks.

Run with the main venv (it has the Pulumi SDKs; the engine venv has not):

    .venv/bin/python tests/engine/export_stacks.py OUT.json

For every Kubernetes example stack: the serving pod's engine container (command, args, environment with
Secret references kept as such, probes, preStop), the gateway container (command, preStop, probes) and its
nginx.conf from the ConfigMap, the benchmark Job's container if the stack has one, and the client outputs
(curlCommand, openaiSnippet). For the ecs stacks: the engine command and the nginx.conf the user-data writes,
and the key as ready.sh writes it. The real-engine suite runs exactly these, with substitutions.py's changes only.
"""

from __future__ import annotations

import base64
import json
import shlex
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(ROOT / "tests"), str(ROOT)]

from harness import EXAMPLE_STACKS, run_stack, settings_for, unwrap, user_data_files  # noqa: E402

from core.engine import API_KEY_ENV  # noqa: E402
from core.targets import ECS  # noqa: E402


def _serving_pod(objects: list[dict]) -> dict:
    for o in objects:
        if o["kind"] == "Deployment" and o["metadata"]["name"] == "llm":
            return o["spec"]["template"]["spec"]
        if o["kind"] == "LeaderWorkerSet":
            return o["spec"]["leaderWorkerTemplate"]["leaderTemplate"]["spec"]
    raise LookupError("no serving Deployment or LeaderWorkerSet named llm")


def _container(pod: dict, name: str) -> dict:
    found = [c for c in pod["containers"] if c["name"] == name]
    if not found:
        raise LookupError(f"the serving pod has no {name!r} container: {[c['name'] for c in pod['containers']]}")
    return found[0]


OUTPUTS = ("curlCommand", "openaiSnippet", "privateApiUrl", "servedModelName")
# Where the pods and the ecs host keep the gateway's files, as the specs name them (substitutions.py moves them).
POD_PATHS = {"key_file": "/etc/llm-gateway-key/gateway-auth.conf", "run_dir": "/run/llm-gateway"}


# Configurations beyond the example stacks that a real-engine test runs (conftest.exported_variants); not served by
# test_stacks.py. ack streaming its model from OSS (docs/loading.md), run against moto and a fake STS.
VARIANTS = {
    "ack-stream-oss": ("ack", {"modelStore.load": "stream", "engine.image": "docker.io/vllm/vllm-openai:v0.32.0"}),
    # ecs.weights.load stream: the host's engine reads the bucket with the instance RAM role (metadata server).
    "ecs-stream-oss": (
        "dev",
        {
            "ecs.weights.source": "oss",
            "ecs.weights.bucket": "my-llm-models",
            "ecs.weights.load": "stream",
            "engine.image": "docker.io/vllm/vllm-openai:v0.32.0",
        },
    ),
}
VARIANTS_KEY = "__variants__"


def export(stack: str) -> dict:
    return export_host(stack) if settings_for(stack).target == ECS else export_pod(stack)


def export_pod(stack: str, overrides: dict | None = None) -> dict:
    run = run_stack(stack, overrides or {})
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
    outputs = {k: run.outputs.get(k) for k in OUTPUTS}
    key_volume = next(v for v in pod["volumes"] if v["name"] == "gateway-key")
    # The stack's own Secrets: under the mocks the API key is the RandomPassword mock's (not a real secret).
    secrets = {o["metadata"]["name"]: o["stringData"] for o in objects if o["kind"] == "Secret" and "stringData" in o}
    (item,) = key_volume["secret"]["items"]
    config_maps = {o["metadata"]["name"]: o.get("data", {}) for o in objects if o["kind"] == "ConfigMap"}
    mounted = {m["name"]: m["mountPath"] for m in engine.get("volumeMounts", [])}
    # Read-only ConfigMap files the engine container mounts (e.g. the streamer's credential process): path -> text.
    files = {
        f"{mounted[v['name']]}/{item}": text
        for v in pod["volumes"]
        if "configMap" in v and v["name"] in mounted
        for item, text in config_maps.get(v["configMap"]["name"], {}).items()
    }
    return {
        "kind": "pod",
        "engine_files": files,
        "engine_version": settings_for(stack, overrides or {}).engine.engine_version,
        "api_key": run.outputs["apiKey"],
        "secrets": secrets,
        "gateway_key_entry": secrets[key_volume["secret"]["secretName"]][item["key"]],
        "paths": POD_PATHS,
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


def _sourced(conf_text: str, names: list[str]) -> dict[str, str]:
    """Variables of a shell conf as `source` reads them (bash), NUL-separated so any value survives."""
    script = conf_text + "\nprintf '%s\\0' " + " ".join(f'"${{{n}}}"' for n in names)
    values = subprocess.run(["bash", "-c", script], capture_output=True, text=True, check=True).stdout.split("\0")
    return dict(zip(names, values, strict=False))


def export_host(stack: str, overrides: dict | None = None) -> dict:
    """The ecs host: user-data writes serving.conf (the engine command) and the gateway's nginx.conf; ready.sh
    writes secret.env (API_KEY_ENV=<key>) and the gateway's map entry (checked equal to auth_map_entry). Streaming
    (WEIGHTS_LOAD=stream), serving-run.sh adds the streamer's env file and mounts its directory read-only: those
    become the engine's env entries and its engine_files (at their paths inside the container)."""
    from core.gateway import auth_map_entry

    run = run_stack(stack, overrides or {})
    settings = settings_for(stack, overrides or {})
    instance = next(r for r in run.resources if r.type == "alicloud:ecs/instance:Instance")
    files = user_data_files(base64.b64decode(unwrap(instance.inputs)["userData"]).decode())
    names = ["ENGINE_CMD", "GATEWAY_KEY_FILE", "WEIGHTS_LOAD", "STREAM_DIR", "STREAM_MOUNT", "STREAM_ENV_FILE"]
    conf = _sourced(files["/etc/llm-serving/serving.conf"], names)
    nginx_conf = next(text for path, text in files.items() if path.endswith("/nginx.conf"))
    key = run.outputs["apiKey"]
    env_name = API_KEY_ENV[settings.engine.engine]
    env: list[dict] = [{"name": env_name, "valueFrom": {"secretKeyRef": {"name": "oos", "key": "apiKey"}}}]
    engine_files = {}
    if conf["WEIGHTS_LOAD"] == "stream":
        lines = files[conf["STREAM_ENV_FILE"]].splitlines()
        env += [{"name": n, "value": v} for n, v in (line.split("=", 1) for line in lines)]
        engine_files = {
            conf["STREAM_MOUNT"] + path[len(conf["STREAM_DIR"]) :]: text
            for path, text in files.items()
            if path.startswith(conf["STREAM_DIR"] + "/")
        }
    return {
        "kind": "host",
        "engine_files": engine_files,
        "engine_version": settings.engine.engine_version,
        "api_key": key,
        "secrets": {"oos": {"apiKey": key}},
        "gateway_key_entry": auth_map_entry(key),
        # nginx runs in a container with a read-only root and a tmpfs /tmp (gateway-run.sh).
        "paths": {"key_file": conf["GATEWAY_KEY_FILE"], "run_dir": "/tmp"},
        "stack": stack,
        "multi_pod": False,
        # The engine runs `sh -c "exec $ENGINE_CMD"` with secret.env as its environment (serving-run.sh).
        "engine": {
            "command": shlex.split(conf["ENGINE_CMD"]),
            "args": None,
            "env": env,
        },
        "gateway": {"lifecycle": None},
        "nginx_conf": nginx_conf,
        "grace_seconds": None,
        "benchmark": None,
        "benchmark_results_mount": None,
        "outputs": {k: run.outputs.get(k) for k in OUTPUTS},
    }


def main(out: str) -> None:
    stacks = list(EXAMPLE_STACKS)
    exported: dict = {s: export(s) for s in stacks}
    exported[VARIANTS_KEY] = {
        name: (export_host if settings_for(stack).target == ECS else export_pod)(stack, overrides)
        for name, (stack, overrides) in VARIANTS.items()
    }
    Path(out).write_text(json.dumps(exported, indent=1, sort_keys=True))
    print(f"exported {len(stacks)} stacks to {out}: {', '.join(stacks)}; variants: {', '.join(VARIANTS)}")


if __name__ == "__main__":
    main(sys.argv[1])
