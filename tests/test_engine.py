"""The engine command line: pinned per model, only flags of the pinned engine versions, no key literal."""

import json
from pathlib import Path

import pytest

from core.catalog import MODELS
from core.engine import API_KEY_REF, REASONING_PARSERS, EngineOptions, build_command, parsed_flag, reserved_flag

FLAGS = json.loads((Path(__file__).parent.parent / "core" / "engine_flags.json").read_text())
PINNED = {"vllm": "vllm==0.32.0", "sglang": "sglang==0.4.6.post1"}


def options(engine="vllm", **overrides):
    values = dict(
        engine=engine, image="img:1", served_model_name="served", max_model_len=32768, gpu_memory_utilization=0.9
    )
    values.update(overrides)
    return EngineOptions(**values)


def test_vllm_qwq_on_four_gpus():
    command = build_command(
        options(served_model_name="Qwen/QwQ-32B"), MODELS["QwQ-32B"], "/root/llm-model/Qwen/QwQ-32B", 4
    )
    assert command.argv == (
        "vllm",
        "serve",
        "/root/llm-model/Qwen/QwQ-32B",
        "--served-model-name",
        "Qwen/QwQ-32B",
        "--host",
        "0.0.0.0",
        "--port",
        "8000",
        "--tensor-parallel-size",
        "4",
        "--max-model-len",
        "32768",
        "--gpu-memory-utilization",
        "0.9",
        "--reasoning-parser",
        "deepseek_r1",
    )
    assert command.api_key_env == "VLLM_API_KEY" and command.health_path == "/health"


def test_vllm_qwen3_uses_the_qwen3_parser_and_no_parser_for_instruct_models():
    qwen3 = build_command(options(), MODELS["Qwen3-32B"], "/m", 2)
    assert qwen3.argv[-2:] == ("--reasoning-parser", "qwen3")
    instruct = build_command(options(), MODELS["Qwen2.5-32B-Instruct"], "/m", 2)
    assert "--reasoning-parser" not in instruct.argv


def test_vllm_deepseek_r1_across_two_pods_uses_pipeline_parallel():
    command = build_command(options(max_model_len=32768, max_num_seqs=64), MODELS["DeepSeek-R1"], "/m", 8, 2)
    argv = command.argv
    assert argv[argv.index("--tensor-parallel-size") + 1] == "8"
    assert argv[argv.index("--pipeline-parallel-size") + 1] == "2"
    assert argv[argv.index("--max-num-seqs") + 1] == "64"


def test_sglang_command_takes_the_key_from_the_environment():
    command = build_command(options("sglang", served_model_name="ds"), MODELS["DeepSeek-R1-Distill-Qwen-7B"], "/m", 1)
    assert command.argv == (
        "python3",
        "-m",
        "sglang.launch_server",
        "--model-path",
        "/m",
        "--served-model-name",
        "ds",
        "--host",
        "0.0.0.0",
        "--port",
        "8000",
        "--tp-size",
        "1",
        "--context-length",
        "32768",
        "--mem-fraction-static",
        "0.9",
        "--enable-metrics",
        "--api-key",
        API_KEY_REF,
        "--reasoning-parser",
        "deepseek-r1",
    )
    assert command.kubernetes_args()[command.argv.index("--api-key") + 1] == "$(SGLANG_API_KEY)"
    assert '--api-key "${SGLANG_API_KEY}"' in command.shell()


def test_extra_args_are_appended_verbatim():
    command = build_command(options(extra_args=("--enable-prefix-caching",)), MODELS["QwQ-32B"], "/m", 4)
    assert command.argv[-1] == "--enable-prefix-caching"


@pytest.mark.parametrize("engine", ["vllm", "sglang"])
@pytest.mark.parametrize("model", sorted(MODELS))
def test_every_flag_exists_in_the_pinned_engine_version(engine, model):
    command = build_command(options(engine, max_num_seqs=32), MODELS[model], "/m", 8)
    flags = {a for a in command.argv if a.startswith("--")}
    assert flags <= set(FLAGS[PINNED[engine]]), flags - set(FLAGS[PINNED[engine]])
    assert "--enable-reasoning" not in flags and "--max-batch-size" not in flags


def test_shell_rendering_quotes_every_argument():
    command = build_command(options(served_model_name="a b'c"), MODELS["QwQ-32B"], "/m", 4)
    assert "'a b'\"'\"'c'" in command.shell()


@pytest.mark.parametrize("engine", ["vllm", "sglang"])
def test_bf16_models_run_as_fp16_on_gpus_without_bf16(engine):
    v100 = build_command(options(engine), MODELS["DeepSeek-R1-Distill-Qwen-7B"], "/m", 1, gpu_has_bf16=False)
    assert v100.argv[v100.argv.index("--dtype") + 1] == "half"
    assert "--dtype" not in build_command(options(engine), MODELS["DeepSeek-R1-Distill-Qwen-7B"], "/m", 1).argv
    assert "--dtype" not in build_command(options(engine), MODELS["DeepSeek-R1"], "/m", 8, gpu_has_bf16=False).argv


def test_vllm_across_pods_uses_the_ray_executor_a_flag_of_the_pinned_version():
    command = build_command(options(), MODELS["DeepSeek-R1"], "/m", 8, 2, multi_node=True)
    argv = command.argv
    assert argv[argv.index("--distributed-executor-backend") + 1] == "ray"
    assert "--distributed-executor-backend" in FLAGS[PINNED["vllm"]]
    assert "--distributed-executor-backend" not in build_command(options(), MODELS["DeepSeek-R1"], "/m", 8, 2).argv


def test_sglang_across_pods_is_refused_with_a_clear_message():
    with pytest.raises(ValueError, match="SGLang across several pods"):
        build_command(options("sglang"), MODELS["DeepSeek-R1-Distill-Qwen-7B"], "/m", 1, multi_node=True)


def test_kubernetes_args_keep_other_dollar_signs_literal():
    command = build_command(options(engine="sglang", served_model_name="team$(HOME)"), MODELS["QwQ-32B"], "/m", 1)
    args = command.kubernetes_args()
    assert "team$$(HOME)" in args and "$(SGLANG_API_KEY)" in args


def test_benchmark_flags_exist_in_the_pinned_vllm_bench_serve():
    from components.kubernetes.benchmark_job import BenchmarkArgs, bench_argv
    from core.config.benchmark import BenchmarkConfig

    for dataset in ("random", "sharegpt"):
        config = BenchmarkConfig(
            enabled=True, dataset=dataset, prompts=200, request_rate=1, concurrency=8, input_len=1000, output_len=1000
        )
        args = BenchmarkArgs(
            namespace="llm",
            image="img:1",
            base_url="http://x",
            served_model_name="m",
            model_path="/models/m",
            model_volume={},
            model_mount_path="/models",
            api_key_secret="s",
            api_key_secret_key="k",
            config=config,
            pip_index_url="https://p/",
        )
        flags = [a for a in bench_argv(args, "/results", "/data/d.json") if a.startswith("--")]
        unknown = set(flags) - set(FLAGS["vllm==0.32.0 bench serve"])
        assert not unknown, unknown


def test_the_catalogs_reasoning_parsers_exist_in_the_pinned_vllm():
    assert set(REASONING_PARSERS["vllm"].values()) <= set(FLAGS["vllm==0.32.0 reasoning parsers"])


# The spellings vLLM 0.32.0's real parser reads as the API key (tests/engine checks the same list against it):
# the flag, `_` for `-`, `=value`, and every unique prefix down to --api-k (--api and --api- are ambiguous with
# --api-server-count, so the parser refuses them).
@pytest.mark.parametrize(
    "arg",
    [
        "--api-key",
        "--api_key",
        "--api-key=x",
        "--api_key=x",
        "--api-k",
        "--api-ke",
        "--api_k=x",
        "--api-ke=x",
        "--api-key x",
    ],
)
def test_every_spelling_vllm_reads_as_the_api_key_is_reserved(arg):
    assert parsed_flag(arg, "vllm")[0] == "--api-key"
    assert reserved_flag(arg, "vllm") == "--api-key"


def test_an_ambiguous_prefix_of_the_key_flag_is_refused_too():
    assert parsed_flag("--api", "vllm") == (None, ("--api-key", "--api-server-count"))
    assert reserved_flag("--api", "vllm") == "--api-key"  # the parser would fail; another version might not


@pytest.mark.parametrize(
    "arg",
    [
        "--api-server-count=2",
        "--apikey",
        "-api-key",
        "x--api-key",
        "--enable-prefix-caching",
        "--max-num-batched-tokens=8192",
        "32768",
    ],
)
def test_other_arguments_are_not_taken_for_the_api_key(arg):
    assert reserved_flag(arg, "vllm") is None


@pytest.mark.parametrize(
    "arg,flag", [("--host", "--host"), ("--ho=0.0.0.0", "--host"), ("--port=9000", "--port"), ("--por", "--port")]
)
def test_host_and_port_are_reserved_in_any_spelling(arg, flag):
    assert reserved_flag(arg, "vllm") == flag


# --- The engine version inside the image ---------------------------------------------------------------------

CN_IMAGE = "egs-registry.cn-hangzhou.cr.aliyuncs.com/egs/vllm:0.11.0-pytorch2.8-cu128-20251015"


@pytest.mark.parametrize(
    ("image", "version"),
    [
        ("docker.io/vllm/vllm-openai:v0.32.0", "0.32.0"),
        (CN_IMAGE, "0.11.0"),
        ("registry.example.com:5000/me/vllm:v0.17.1", "0.17.1"),
        ("me/vllm-openai:v0.18.0-cu129", "0.18.0"),
        ("me/vllm:nightly", "0.32.0"),  # the tag says nothing: the pinned version is assumed
        ("me/vllm@sha256:" + "a" * 64, "0.32.0"),
    ],
)
def test_the_engine_version_comes_from_the_default_images_or_the_tag(image, version):
    from core.engine import engine_version

    assert engine_version("vllm", image) == version


@pytest.mark.parametrize(("version", "drains"), [("0.17.1", False), ("0.18.0", True), ("0.32.0", True)])
def test_shutdown_timeout_is_emitted_only_for_versions_that_have_it(version, drains):
    command = build_command(
        options(version=version), MODELS["QwQ-32B"], "/m", 1, behind_gateway=True, shutdown_timeout_seconds=90
    )
    assert ("--shutdown-timeout" in command.argv) is drains


def test_the_mainland_default_image_gets_only_flags_its_vllm_0_11_has():
    """No EGS image of 0.32.0 could be cited: mainland China runs 0.11.0, whose parser refuses --shutdown-timeout
    (an unknown option stops vLLM at start)."""
    from core.config.engine import default_image

    assert default_image("vllm", True) == CN_IMAGE
    for model in sorted(MODELS):
        command = build_command(
            options(version="0.11.0", max_num_seqs=32, extra_args=()),
            MODELS[model],
            "/m",
            8,
            gpu_has_bf16=False,
            behind_gateway=True,
            shutdown_timeout_seconds=90,
        )
        flags = {a for a in command.argv if a.startswith("--")}
        assert flags <= set(FLAGS["vllm==0.11.0"]), flags - set(FLAGS["vllm==0.11.0"])
    assert "--shutdown-timeout" not in FLAGS["vllm==0.11.0"]


def test_a_stack_in_mainland_china_runs_0_11_without_the_shutdown_flag_and_elsewhere_0_32_with_it():
    from harness import settings_for

    cn = settings_for("dev", {"alicloud:region": "cn-hangzhou"}).engine
    sg = settings_for("dev", {"alicloud:region": "ap-southeast-1"}).engine
    assert (cn.engine_version, sg.engine_version) == ("0.11.0", "0.32.0")
    mirrored = settings_for("dev", {"alicloud:region": "cn-hangzhou", "engine.image": "me/vllm-openai:v0.32.0"})
    assert mirrored.engine.engine_version == "0.32.0"
