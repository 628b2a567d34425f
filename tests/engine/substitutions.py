"""Every difference between what production runs and what this suite runs on a CPU, in one place.

The engine argv comes from core.engine.build_command for a catalog model, exactly as a target
builds it; cpu_argv() then makes only these substitutions:

- the model path and served name: the tiny model made at test time (tiny_model.py);
- --host 0.0.0.0 -> 127.0.0.1 and --port -> the engine port behind the gateway (the gateway
  layout: the engine listens on loopback only);
- --tensor-parallel-size N -> 1, and no --pipeline-parallel-size or --distributed-executor-backend
  (one CPU process);
- no --gpu-memory-utilization (no GPU; the CPU KV cache size is VLLM_CPU_KVCACHE_SPACE below);
- --max-model-len -> MAX_MODEL_LEN (the tiny model has 4096 positions);
- + --enforce-eager: skips torch.compile on CPU (engine start 3 s instead of 30 s); it changes no
  HTTP behaviour.

The gateway conf is render_nginx_conf() unchanged, with ports and paths of this machine.
In the client snippets (stacks/client.py) the key command `pulumi stack output apiKey
--show-secrets` becomes `echo <test key>`: client_strings() below is the one place.
"""

from __future__ import annotations

import shlex

MODEL = "DeepSeek-R1-Distill-Qwen-7B"  # the catalog model whose argv is run (reasoning parser deepseek_r1)
SERVED_NAME = "deepseek-r1"
MAX_MODEL_LEN = 1024
API_KEY = "test-key-0123456789abcdefghijklmnopqrstuvwxyzABCD"  # 48 characters, as pulumi-random makes
ENV = {
    "VLLM_API_KEY": API_KEY,  # as the Secret gives it to the engine
    "VLLM_CPU_KVCACHE_SPACE": "1",  # GiB of KV cache on the CPU
    "HF_HUB_OFFLINE": "1",
    "DO_NOT_TRACK": "1",
    "VLLM_NO_USAGE_STATS": "1",  # as components/serving.py
}

_VALUE_DROPPED = {"--gpu-memory-utilization", "--pipeline-parallel-size", "--distributed-executor-backend"}
_VALUE_REPLACED = {"--host": "127.0.0.1", "--tensor-parallel-size": "1", "--max-model-len": str(MAX_MODEL_LEN)}


def cpu_argv(argv: tuple[str, ...] | list[str], model_path: str, engine_port: int) -> list[str]:
    """The production vLLM argv with the CPU substitutions above."""
    argv = list(argv)
    if argv[:2] != ["vllm", "serve"]:
        raise ValueError("only vLLM runs on the CPU here")
    out = ["vllm", "serve", model_path]
    i = 3
    while i < len(argv):
        flag = argv[i]
        value = argv[i + 1] if i + 1 < len(argv) and not argv[i + 1].startswith("--") else None
        if flag in _VALUE_DROPPED:
            i += 2
            continue
        if flag in _VALUE_REPLACED:
            out += [flag, _VALUE_REPLACED[flag]]
        elif flag == "--port":
            out += [flag, str(engine_port)]
        elif flag == "--served-model-name":
            out += [flag, SERVED_NAME]
        else:
            out += [flag] + ([value] if value is not None else [])
        i += 2 if value is not None else 1
    return [*out, "--enforce-eager"]


def client_strings(text: str) -> str:
    """A stacks/client.py snippet with the key read from `echo` instead of the Pulumi stack."""
    from stacks.client import KEY_COMMAND

    if KEY_COMMAND not in text and repr(KEY_COMMAND.split()) not in text:
        raise ValueError("the snippet no longer reads the key with KEY_COMMAND")
    echo = f"echo {shlex.quote(API_KEY)}"
    return text.replace(repr(KEY_COMMAND.split()), repr(["echo", API_KEY])).replace(KEY_COMMAND, echo)
