"""Every difference between what production runs and what this suite runs on a CPU, in one place.

What runs comes from the program itself: export_stacks.py builds every Kubernetes example stack under the
test harness's mocks and writes out its serving pod (engine and gateway containers, the gateway's nginx.conf,
the API key Secret), its benchmark Job and its client outputs. The suite starts those with these changes only:

Engine argv (stack_engine_argv):
- the model path: the tiny model made at test time (tiny_model.py); --served-model-name stays the stack's;
- --port 8001 -> a free port (--host is already 127.0.0.1: the gateway layout);
- --tensor-parallel-size N -> 1, and no --pipeline-parallel-size or --distributed-executor-backend
  (one CPU process; a LeaderWorkerSet leader's argv is taken from its args, without the Ray launcher);
- no --gpu-memory-utilization (no GPU; the CPU KV cache size is VLLM_CPU_KVCACHE_SPACE below);
- --max-model-len -> MAX_MODEL_LEN (the tiny model has 4096 positions), and --max-num-batched-tokens at most it;
- + --enforce-eager: skips torch.compile on CPU (engine start 3 s instead of 30 s); it changes no HTTP behaviour.
- + --dtype float32 where the stack sets no --dtype (CPU_DTYPE below: keeps vLLM off AMX kernels that some
  machines advertise but cannot run); a stack's own --dtype (ack-edge: half) is kept.
- a streamed model (gke: `$(LLM_MODEL_URI)`, gs://) is the tiny model's directory too, read by the same Run:ai
  Model Streamer flags (test_streaming.py also streams it from S3 on loopback); from --model-loader-extra-config
  only "distributed" is dropped: one process (TP 1) has no ranks to share the reads with.
Engine environment (stack_env): the stack's own, with each secretKeyRef read from the stack's own Secret (the
mock's generated key), plus CPU_ENV.
Gateway (stack_conf): the ConfigMap's nginx.conf with its ports, key file and runtime directory moved to this
machine; probes and preStop hooks: the same ports and paths, the preStop sleeps shortened by the 30 s drain
(gateway_prestop, engine_prestop).
Benchmark Job (stack_bench_argv): $(BASE_URL) -> the gateway, the tokenizer path -> the tiny model, 4 prompts
(random: 16 in / 8 out tokens) instead of the stack's, --result-dir -> a temporary directory, and a ShareGPT
--dataset-path -> a small file in ShareGPT's format made at test time (sharegpt_file) instead of the download.
Client outputs (client_strings): the URL -> the gateway's, `pulumi stack output apiKey --show-secrets` -> echo.
"""

from __future__ import annotations

import json
import re
import shlex
from collections.abc import Mapping, Sequence

MODEL = "DeepSeek-R1-Distill-Qwen-7B"  # the catalog model of the locally built argvs (test_engine_cli, shutdown)
SERVED_NAME = "deepseek-r1"
MAX_MODEL_LEN = 1024
API_KEY = "test-key-0123456789abcdefghijklmnopqrstuvwxyzABCD"  # 48 characters, as pulumi-random makes
CPU_ENV = {
    "VLLM_CPU_KVCACHE_SPACE": "1",  # GiB of KV cache on the CPU
    "VLLM_NO_USAGE_STATS": "1",
}
ENV = {"VLLM_API_KEY": API_KEY, "HF_HUB_OFFLINE": "1", "DO_NOT_TRACK": "1", **CPU_ENV}

# The ports and paths of a serving pod (components/kubernetes/serving_workload.py), as they appear in its specs.
POD_API = "0.0.0.0:8000"
POD_METRICS = "0.0.0.0:8002"
POD_ENGINE = "127.0.0.1:8001"
POD_RUN_DIR = "/run/llm-gateway"
POD_CONF = "/etc/llm-gateway/nginx.conf"

# vLLM 0.32.0 runs this float32 model as bfloat16 on x86 CPUs (vllm/config/model.py downcasts a float32
# config to the platform's first supported dtype; vllm/platforms/cpu.py supported_dtypes lists bfloat16
# first), and picks AMX kernels for bfloat16 whenever CPUID says amx_tile: the attention ISA
# (vllm/v1/attention/backends/cpu_attn.py, _get_attn_isa) and the small-weight GEMMs
# (vllm/model_executor/layers/utils.py, check_cpu_sgl_kernel). A VM can advertise amx_tile without its
# kernel enabling the AMX tile-data state (this suite's Firecracker VMs: dmesg lists "AMX Tile config" and
# no "AMX Tile data"); there the first batch large enough for the AMX GEMM kills the engine's worker with
# SIGILL (exit code -4: 8 concurrent streams did, one request did not). float32 has no AMX path in either
# place, so it runs the same on every x86 machine; the suite tests the program's argv, probes and gateway,
# not vLLM's bf16 kernels.
CPU_DTYPE = "float32"

_VALUE_DROPPED = {"--gpu-memory-utilization", "--pipeline-parallel-size", "--distributed-executor-backend"}


def cpu_argv(
    argv: Sequence[str],
    model_path: str,
    engine_port: int,
    served_name: str | None = SERVED_NAME,
    max_model_len: int = MAX_MODEL_LEN,
) -> list[str]:
    """A production vLLM argv with the CPU substitutions above; served_name None keeps the argv's own."""
    argv = list(argv)
    if argv[:2] != ["vllm", "serve"]:
        raise ValueError("only vLLM runs on the CPU here")
    replaced = {"--tensor-parallel-size": "1", "--max-model-len": str(max_model_len), "--port": str(engine_port)}
    if served_name is not None:
        replaced["--served-model-name"] = served_name
    out = ["vllm", "serve", model_path]
    i = 3
    while i < len(argv):
        flag = argv[i]
        value = argv[i + 1] if i + 1 < len(argv) and not argv[i + 1].startswith("--") else None
        if flag in _VALUE_DROPPED:
            i += 2
            continue
        if flag in replaced:
            out += [flag, replaced[flag]]
        elif flag == "--max-num-batched-tokens" and value is not None:
            out += [flag, str(min(int(value), max_model_len))]
        elif flag == "--model-loader-extra-config" and value is not None:
            config = {k: v for k, v in json.loads(value).items() if k != "distributed"}
            out += [flag, json.dumps(config, sort_keys=True, separators=(",", ":"))]
        else:
            out += [flag] + ([value] if value is not None else [])
        i += 2 if value is not None else 1
    if "--dtype" not in out:
        out += ["--dtype", CPU_DTYPE]
    return [*out, "--enforce-eager"]


def stack_engine_argv(container: Mapping, model_path: str, engine_port: int, max_model_len: int = MAX_MODEL_LEN):
    """The engine container's argv (a LeaderWorkerSet leader passes it as args to its Ray launcher)."""
    argv = container.get("args") or container["command"]
    host = argv[argv.index("--host") + 1]
    if host != "127.0.0.1":
        raise AssertionError(f"the stack's engine listens on {host}, not on loopback behind the gateway")
    return cpu_argv(argv, model_path, engine_port, served_name=None, max_model_len=max_model_len)


def stack_env(container: Mapping, secrets: Mapping[str, Mapping[str, str]]) -> dict[str, str]:
    """The container's environment, Secret references read from the stack's own Secrets, plus CPU_ENV."""
    env = {}
    for entry in container.get("env") or []:
        if "value" in entry:
            env[entry["name"]] = entry["value"]
        else:
            ref = entry["valueFrom"]["secretKeyRef"]
            env[entry["name"]] = secrets[ref["name"]][ref["key"]]
    return {**env, **CPU_ENV}


def _replace(text: str, old: str, new: str, count: int | None = 1) -> str:
    found = text.count(old)
    if found == 0 or (count is not None and found != count):
        raise AssertionError(f"expected {old!r} {count or 'some'} time(s) in the stack's text, found {found}")
    return text.replace(old, new)


def stack_conf(
    conf: str, api_port: int, metrics_port: int, engine_port: int, key_file: str, run_dir: str, paths: Mapping
) -> str:
    """The gateway's nginx.conf from the stack (a pod's ConfigMap, the ecs user-data), its ports and its paths
    (`paths`: key_file and run_dir as the stack names them) moved to this machine."""
    conf = _replace(conf, f"listen {POD_API} ", f"listen 127.0.0.1:{api_port} ")
    conf = _replace(conf, f"listen {POD_METRICS};", f"listen 127.0.0.1:{metrics_port};")
    conf = _replace(conf, f"server {POD_ENGINE};", f"server 127.0.0.1:{engine_port};")
    conf = _replace(conf, f" {paths['run_dir']}/", f" {run_dir}/", count=None)
    return _replace(conf, f"include {paths['key_file']};", f"include {key_file};")


def pod_command(argv: Sequence[str], engine_port: int) -> list[str]:
    """A probe's command, pointed at the engine's port here."""
    return [a.replace(POD_ENGINE, f"127.0.0.1:{engine_port}") for a in argv]


def gateway_prestop(script: str, conf_path: str, run_dir: str) -> str:
    """The gateway's preStop script, with this machine's conf and runtime directory and no drain sleep."""
    script = _replace(script, POD_CONF, conf_path)
    script = _replace(script, POD_RUN_DIR, run_dir)
    return re.sub(r"^sleep \d+;", "sleep 0;", script)


def engine_prestop(command: Sequence[str], engine_port: int) -> list[str]:
    """The engine container's preStop (python3 -c <drain script>), at this machine's engine port, its drain
    sleep shortened by the gateway's (30 s), so that it still ends after the gateway has stopped accepting."""
    script = _replace(command[2], POD_ENGINE, f"127.0.0.1:{engine_port}")
    sleep = int(re.search(r"time\.sleep\((\d+)\)", script).group(1))
    script = _replace(script, f"time.sleep({sleep})", f"time.sleep({sleep - 30})")
    return [command[0], command[1], script]


BENCH_SIZES = {"--num-prompts": "4", "--random-input-len": "16", "--random-output-len": "8"}


def stack_bench_argv(
    container: Mapping, base_url: str, model_path: str, result_dir: str, dataset_path: str
) -> list[str]:
    argv = list(container.get("args") or container["command"])
    out = []
    for i, word in enumerate(argv):
        before = argv[i - 1] if i else ""
        if word == "$(BASE_URL)":
            out.append(base_url)
        elif before == "--model":
            out.append(model_path)
        elif before == "--result-dir":
            out.append(result_dir)
        elif before == "--dataset-path":
            out.append(dataset_path)
        elif before in BENCH_SIZES:
            out.append(BENCH_SIZES[before])
        else:
            out.append(word)
    return out


def sharegpt_file(path) -> None:
    """A few conversations in the ShareGPT layout `vllm bench serve --dataset-name sharegpt` reads."""
    import json

    turns = [
        ("Tell me about the sea and the sky, please.", "The sea is wide and the sky is bright over it today."),
        ("Who are you and what can you do?", "I am a small model that answers with a few words only."),
    ]
    conversations = [
        {"id": str(i), "conversations": [{"from": "human", "value": q}, {"from": "gpt", "value": a}]}
        for i, (q, a) in enumerate(turns * 4)
    ]
    path.write_text(json.dumps(conversations))


def client_strings(text: str, key: str = API_KEY, url: tuple[str, str] | None = None) -> str:
    """A stacks/client.py snippet with the key read from `echo` instead of the Pulumi stack, and `url` = (the
    stack's base URL, the gateway's here) swapped."""
    from stacks.client import KEY_COMMAND

    if KEY_COMMAND not in text and repr(KEY_COMMAND.split()) not in text:
        raise ValueError("the snippet no longer reads the key with KEY_COMMAND")
    echo = f"echo {shlex.quote(key)}"
    text = text.replace(repr(KEY_COMMAND.split()), repr(["echo", key])).replace(KEY_COMMAND, echo)
    return _replace(text, url[0], url[1]) if url else text
