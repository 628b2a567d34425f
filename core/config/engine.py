"""`engine`: which inference engine and image, and the engine knobs (context length, memory, batch)."""

from __future__ import annotations

from typing import Annotated, Literal, Optional

from core import versions
from core.catalog import ModelSpec
from core.config.problems import Problems
from core.config.schema import IMAGE_REFERENCE, Group, Int, Number, between, matches, option, within
from core.engine import RESERVED_FLAGS, SGLANG, VLLM, EngineOptions, engine_version, reserved_flag

Image = Annotated[
    str, matches(IMAGE_REFERENCE, "an image reference like docker.io/vllm/vllm-openai:v0.11.0 (registry/path:tag)")
]
# One argv element: no line breaks or NULs (they would end a shell line or a YAML scalar).
EngineArg = Annotated[str, matches(r"[^\r\n\x00]{1,4096}", "one command-line argument on one line")]

DEFAULT_IMAGES = {
    (VLLM, True): versions.VLLM_IMAGE_CN.value,
    (VLLM, False): versions.VLLM_IMAGE.value,
    (SGLANG, True): versions.SGLANG_IMAGE_CN.value,
    (SGLANG, False): versions.SGLANG_IMAGE.value,
}


class EngineConfig(Group):
    """The engine and its command-line knobs."""

    name: Literal["vllm", "sglang"] = option("vllm", "Inference engine.")
    image: Optional[Image] = option(
        None,
        "Engine image with a pinned tag or digest; empty: the default for the engine and region "
        "(Alibaba's EGS registry in mainland China, the upstream image elsewhere).",
        example=versions.VLLM_IMAGE.value,
    )
    # No engine limit below the model's context (checked against it); 10M tokens bounds typos.
    max_model_len: Annotated[Int, within(1, 10_000_000, "tokens")] = option(
        32768, "Maximum context length (prompt + output tokens) per request; at most the model's context."
    )
    gpu_memory_utilization: Annotated[Number, between(0, 1, exclusive=True)] = option(
        0.90, "Fraction of each GPU's memory the engine may use."
    )
    # vLLM and SGLang set no upper bound; 65536 concurrent sequences is far beyond any GPU here.
    max_num_seqs: Annotated[Int, within(0, 65536, "sequences")] = option(
        0, "Maximum concurrent sequences per engine; 0: the engine's default."
    )
    extra_args: tuple[EngineArg, ...] = option(
        (),
        'Extra engine arguments appended as they are, e.g. ["--enable-prefix-caching"].',
        example=["--enable-prefix-caching"],
    )


def default_image(engine: str, mainland_china: bool) -> str:
    return DEFAULT_IMAGES[(engine, mainland_china)]


def pinned(image: str) -> bool:
    if "@sha256:" in image:
        return True
    last = image.rsplit("/", 1)[-1]
    return ":" in last and not last.endswith(":latest")


def resolve_engine(
    config: EngineConfig,
    model: Optional[ModelSpec],
    served_name: Optional[str],
    mainland_china: bool,
    api_port: int,
    problems: Problems,
) -> Optional[EngineOptions]:
    """The engine options, with the rules that span keys (context vs model, argv the program owns)."""
    ok = True
    if config.image is not None and not pinned(config.image):
        problems.add(
            "engine.image",
            config.image,
            "must carry a pinned tag or digest (not :latest, not untagged)",
            problems.set_command("engine.image", versions.VLLM_IMAGE.value),
        )
        ok = False
    if model is not None and config.max_model_len > model.context_length:
        problems.add(
            "engine.maxModelLen",
            config.max_model_len,
            f"exceeds the {model.context_length}-token context of {model.name}",
            problems.set_command("engine.maxModelLen", min(32768, model.context_length)),
        )
        ok = False
    for index, arg in enumerate(config.extra_args):
        reserved = reserved_flag(arg, config.name)
        if reserved is not None:
            problems.add(
                f"engine.extraArgs[{index}]",
                arg,
                f"spells {reserved}, which may not be set here: {RESERVED_FLAGS[reserved]}",
                f"remove it: pulumi config set --path '{problems.namespace}:engine.extraArgs' '[...]' "
                "without that element",
            )
            ok = False
    if not ok or model is None:
        return None
    image = config.image or default_image(config.name, mainland_china)
    return EngineOptions(
        engine=config.name,
        image=image,
        served_model_name=served_name or model.modelscope_id,
        max_model_len=config.max_model_len,
        gpu_memory_utilization=config.gpu_memory_utilization,
        port=api_port,
        max_num_seqs=config.max_num_seqs,
        extra_args=tuple(config.extra_args),
        version=engine_version(config.name, image),
    )
