"""The project's engine command lines against vLLM 0.32.0's real parser (no server started)."""

from __future__ import annotations

import json
from pathlib import Path

import dump_flags
import pytest
import vllm_cli
from conftest import ROOT

from core.catalog import MODELS
from core.engine import EngineOptions, build_command, parsed_flag, reserved_flag, stream_load


def all_production_argvs():
    """Every vLLM argv build_command emits for the catalog: each model, one pod and several."""
    for name, model in sorted(MODELS.items()):
        for max_num_seqs in (0, 64):
            options = EngineOptions(
                engine="vllm",
                image="img:1",
                served_model_name=name,
                max_model_len=32768,
                gpu_memory_utilization=0.9,
                max_num_seqs=max_num_seqs,
            )
            yield f"{name}-tp8-seqs{max_num_seqs}", build_command(options, model, f"/models/{name}", 8).argv
            yield f"{name}-v100", build_command(options, model, f"/models/{name}", 1, gpu_has_bf16=False).argv
            yield f"{name}-pp2-ray", build_command(options, model, f"/models/{name}", 8, 2, multi_node=True).argv
            # modelStore.load stream: from an object store (distributed over 8 ranks), from a mounted directory,
            # and across pods (Ray: not distributed).
            for tag, uri, tp, multi in (
                ("gs", f"gs://b/models/{name}", 8, False),
                ("dir", f"/models/{name}", 1, False),
                ("s3-ray", f"s3://b/models/{name}", 8, True),
            ):
                stream = stream_load(options, not uri.startswith("/"), tp, multi, 256)
                argv = build_command(options, model, uri, tp, 2 if multi else 1, multi_node=multi, stream=stream).argv
                yield f"{name}-stream-{tag}", argv


ARGVS = dict(all_production_argvs())


@pytest.mark.parametrize("case", sorted(ARGVS))
def test_every_catalog_argv_parses_and_passes_vllms_validation(case):
    argv = list(ARGVS[case])
    args = vllm_cli.parse_serve(argv)
    assert args.model_tag == argv[2]  # `vllm serve` copies it into args.model when it runs
    assert args.tensor_parallel_size == int(argv[argv.index("--tensor-parallel-size") + 1])
    assert args.max_model_len == 32768 and args.gpu_memory_utilization == 0.9
    assert args.api_key is None  # the key comes from VLLM_API_KEY, never argv


STREAMED = sorted(case for case in ARGVS if "-stream-" in case)


@pytest.mark.parametrize("case", STREAMED)
def test_every_streaming_argv_selects_the_run_ai_loader_and_its_extra_config_passes_the_loaders_own_checks(case):
    """The parser reads --load-format and --model-loader-extra-config; the loader vLLM builds from them (its
    get_model_loader) is the Run:ai one and accepts every key the program sets (it refuses unknown ones)."""
    from vllm.config.load import LoadConfig
    from vllm.model_executor.model_loader import get_model_loader
    from vllm.model_executor.model_loader.runai_streamer_loader import RunaiModelStreamerLoader

    argv = list(ARGVS[case])
    args = vllm_cli.parse_serve(argv)
    assert args.load_format == "runai_streamer"
    extra = json.loads(argv[argv.index("--model-loader-extra-config") + 1])
    assert args.model_loader_extra_config == extra
    assert set(extra) <= {"distributed", "concurrency", "memory_limit"}
    loader = get_model_loader(LoadConfig(load_format=args.load_format, model_loader_extra_config=extra))
    assert isinstance(loader, RunaiModelStreamerLoader)
    assert loader._is_distributed is extra.get("distributed", False)


def test_the_loader_refuses_a_key_it_does_not_know():
    """So the check above would catch a misspelt key: the loader's own validation is live."""
    from vllm.config.load import LoadConfig
    from vllm.model_executor.model_loader import get_model_loader

    with pytest.raises(ValueError, match="Unexpected extra config keys"):
        get_model_loader(LoadConfig(load_format="runai_streamer", model_loader_extra_config={"concurency": 8}))


def test_the_committed_flag_lists_are_the_real_parsers():
    committed = json.loads((ROOT / "core/engine_flags.json").read_text())
    fresh = dump_flags.vllm_entries()
    for key, flags in fresh.items():
        assert committed.get(key) == flags, f"{key} is stale: run tests/engine/dump_flags.py in the engine venv"


CANDIDATES = [
    "--api-key",
    "--api_key",
    "--api-ke",
    "--api_ke",
    "--api-k",
    "--api_k",
    "--api",
    "--api-",
    "--api_",
    "--apikey",
    "--API-KEY",
    "--Api-Key",
    "--api-keys",
    "--api-key-",
    "-api-key",
]


def accepted_as_api_key() -> set[str]:
    """Each spelling that the real parser turns into the API key, as `FLAG value` and `FLAG=value`."""
    accepted = set()
    for flag in CANDIDATES:
        for form in ([flag, "sekret"], [f"{flag}=sekret"]):
            args, _ = vllm_cli.quietly(vllm_cli.parse_serve, ["vllm", "serve", "/m", *form])
            if args is not None and args.api_key and "sekret" in args.api_key:
                accepted.add(" ".join(form).replace("sekret", "x"))
    return accepted


def test_exactly_these_spellings_set_the_api_key_and_the_project_refuses_all_of_them():
    accepted = accepted_as_api_key()
    assert accepted == {
        "--api-key x",
        "--api-key=x",
        "--api_key x",
        "--api_key=x",
        "--api-ke x",
        "--api-ke=x",
        "--api_ke x",
        "--api_ke=x",
        "--api-k x",
        "--api-k=x",
        "--api_k x",
        "--api_k=x",
    }
    for spelling in accepted:  # the project's reading of the parser's rules agrees with the parser
        assert parsed_flag(spelling.split()[0], "vllm")[0] == "--api-key", spelling
        assert reserved_flag(spelling, "vllm") == "--api-key", spelling
    refused_by_parser = set(CANDIDATES) - {s.split()[0].split("=")[0] for s in accepted}
    for flag in refused_by_parser:  # the parser refuses these (ambiguous or unknown): never read as the key
        assert parsed_flag(flag, "vllm")[0] != "--api-key", flag


def test_an_ambiguous_abbreviation_is_an_error():
    _, error = vllm_cli.quietly(vllm_cli.parse_serve, ["vllm", "serve", "/m", "--api", "x"])
    assert "ambiguous option: --api could match" in error


def test_bench_argv_parses_with_vllms_bench_parser():
    import sys

    from components.kubernetes.benchmark_job import BenchmarkArgs, bench_argv
    from core.config.benchmark import BenchmarkConfig

    parser = vllm_cli.bench_serve_parser()
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
        argv = bench_argv(args, "/results", "/data/d.json")
        parsed = parser.parse_args(argv[3:])
        assert parsed.dataset_name == dataset and parsed.result_dir == "/results" and parsed.save_result
    assert sys.modules  # (imports above are the project's, under the suite's Pulumi stand-ins)


def test_the_flag_file_is_where_the_generator_writes():
    assert dump_flags.FLAGS_FILE == Path(ROOT / "core/engine_flags.json")
