"""`benchmark`: one `vllm bench serve` run against the private Service after the workload is ready."""

from __future__ import annotations

from typing import Annotated, Any, Literal, Optional, Union

from pydantic import BeforeValidator

from core.config.problems import Problems
from core.config.schema import Flag, Group, Int, option, rule, within
from core.engine import VLLM, EngineOptions
from core.targets import ON_KUBERNETES


def _rate(value: Any) -> Union[float, str]:
    """A positive number of requests per second, or inf (every prompt at once)."""
    if value == "inf":
        return "inf"
    try:
        if isinstance(value, bool):
            raise ValueError
        rate = float(value)
    except (TypeError, ValueError):
        rate = 0.0
    if not 0 < rate <= 100_000:
        raise rule("rate", "must be a positive number of requests per second (at most 100000), or inf")
    return rate


RequestRate = Annotated[Union[float, str], BeforeValidator(_rate)]


class BenchmarkConfig(Group):
    TARGETS = ON_KUBERNETES
    enabled: Flag = option(False, "Run `vllm bench serve` once against the private Service.")
    dataset: Literal["random", "sharegpt"] = option("random", "random, or sharegpt (fetched from ModelScope).")
    prompts: Annotated[Int, within(1, 100_000, "prompts")] = option(200, "Number of prompts.")
    request_rate: RequestRate = option(1.0, "Requests per second, or inf (all at once).")
    concurrency: Annotated[Int, within(0, 100_000, "requests")] = option(0, "Most concurrent requests; 0: unlimited.")
    input_len: Annotated[Int, within(1, 10_000_000, "tokens")] = option(
        1024, "random dataset: input tokens per prompt."
    )
    output_len: Annotated[Int, within(1, 10_000_000, "tokens")] = option(
        1024, "random dataset: output tokens per prompt."
    )

    @property
    def request_rate_text(self) -> str:
        return "inf" if self.request_rate == "inf" else f"{self.request_rate:g}"


def check_benchmark(config: BenchmarkConfig, engine: Optional[EngineOptions], problems: Problems) -> None:
    if config.enabled and engine is not None and engine.engine != VLLM:
        problems.add(
            "benchmark.enabled",
            True,
            "runs `vllm bench serve`, which needs the vLLM image",
            f"{problems.set_command('benchmark.enabled', False)}, or {problems.set_command('engine.name', 'vllm')}",
        )
    if (
        config.enabled
        and engine is not None
        and config.dataset == "random"
        and config.input_len + config.output_len > engine.max_model_len
    ):
        problems.add(
            "benchmark.inputLen",
            config.input_len,
            f"input + output tokens ({config.input_len + config.output_len}) exceed engine.maxModelLen "
            f"{engine.max_model_len}",
            problems.set_command("benchmark.inputLen", max(1, engine.max_model_len - config.output_len)),
        )
