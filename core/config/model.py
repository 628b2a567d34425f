"""`model`: which model to serve (a catalog name, or a described custom model), its revision and served name."""

from __future__ import annotations

from typing import Annotated, Any, Literal, Optional

from pydantic import model_validator

from core.catalog import DTYPE_BYTES, MODELS, ModelSpec
from core.config.problems import Problems
from core.config.schema import Flag, Group, Int, Number, between, matches, option, within

DEFAULT_MODEL = "DeepSeek-R1-Distill-Qwen-7B"
CUSTOM = "custom"
# <org>/<name> on ModelScope and Hugging Face; it becomes a path on disk and in buckets.
RepoId = Annotated[
    str, matches(r"[A-Za-z0-9][A-Za-z0-9._-]*/[A-Za-z0-9][A-Za-z0-9._-]*", "a repository id like Qwen/QwQ-32B")
]
# A branch, tag or commit: it reaches shell commands (quoted) and the download marker.
Revision = Annotated[
    str,
    matches(r"[A-Za-z0-9][A-Za-z0-9._/-]{0,127}", "a branch, tag or commit (letters, digits, . _ / -; at most 128)"),
]
# The name clients send: it reaches the engine's argv, the curl command and the Python snippet outputs.
ServedName = Annotated[
    str, matches(r"[A-Za-z0-9][A-Za-z0-9._/:-]{0,127}", "a model name of letters, digits and . _ / : - (at most 128)")
]
ShortName = Annotated[str, matches(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}", "a short model name (letters, digits, . _ -)")]
Dtype = Literal["bf16", "fp16", "fp8", "int8", "int4"]


class CustomModel(Group):
    """A model not in the catalog, with the numbers its config.json and weight index give."""

    name: ShortName = option(..., "Short name of the model, e.g. Tiny-1B.")
    modelscope_id: RepoId = option(..., "ModelScope repository id (Alibaba targets download from ModelScope).")
    hf_id: RepoId = option(..., "Hugging Face repository id (gke downloads from Hugging Face).")
    params_billion: Annotated[Number, between(0.001, 10000)] = option(..., "Parameters, in billions.")
    weight_dtype: Dtype = option(..., "Weight data type of the checkpoint.")
    layers: Annotated[Int, within(1, 1000)] = option(..., "num_hidden_layers of config.json.")
    attention_heads: Annotated[Int, within(1, 4096)] = option(..., "num_attention_heads of config.json.")
    kv_heads: Annotated[Int, within(1, 4096)] = option(..., "num_key_value_heads of config.json.")
    head_dim: Annotated[Int, within(1, 4096)] = option(..., "head_dim (or hidden_size / num_attention_heads).")
    context_length: Annotated[Int, within(1, 10_000_000)] = option(..., "max_position_embeddings of config.json.")
    reasoning: Optional[Literal["deepseek_r1", "qwen3"]] = option(None, "Reasoning output format, if any.")
    weights_gb: Optional[Annotated[Number, between(0.001, 100_000)]] = option(
        None, "Published checkpoint size in GB when it is not parameters x dtype (quantised or mixed)."
    )
    mla_kv_lora_rank: Annotated[Int, within(0, 65536)] = option(0, "DeepSeek MLA: kv_lora_rank; 0: not an MLA model.")
    mla_rope_dim: Annotated[Int, within(0, 65536)] = option(0, "DeepSeek MLA: qk_rope_head_dim.")
    trust_remote_code: Flag = option(False, "The model needs its own code (--trust-remote-code).")
    gated: Flag = option(False, "Hugging Face requires accepting terms and a token to download it.")

    def spec(self) -> ModelSpec:
        return ModelSpec(
            name=self.name,
            modelscope_id=self.modelscope_id,
            hf_id=self.hf_id,
            params_billion=self.params_billion,
            weight_dtype=self.weight_dtype,
            layers=self.layers,
            attention_heads=self.attention_heads,
            kv_heads=self.kv_heads,
            head_dim=self.head_dim,
            context_length=self.context_length,
            reasoning=self.reasoning,
            weights_gb=self.weights_gb,
            mla_kv_lora_rank=self.mla_kv_lora_rank,
            mla_rope_dim=self.mla_rope_dim,
            gated=self.gated,
            trust_remote_code=self.trust_remote_code,
        )


class ModelConfig(Group):
    """Which model to serve. `model: QwQ-32B` is short for `model: {name: QwQ-32B}`."""

    name: str = option(
        DEFAULT_MODEL, "A model of the catalog (docs/reference/models.md), or `custom` with model.custom."
    )
    custom: Optional[CustomModel] = option(None, "A model not in the catalog, described field by field.")
    revision: Revision = option(
        "master",
        "Branch, tag or commit to download (ModelScope's default branch is master; "
        "on Hugging Face it is read as main).",
    )
    served_name: Optional[ServedName] = option(
        None, "The model name clients send; empty: the repository id, e.g. Qwen/QwQ-32B.", example="qwq-32b"
    )

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, value: Any) -> Any:
        return {"name": value} if isinstance(value, str) else value


DTYPES = tuple(DTYPE_BYTES)


def resolve_model(config: ModelConfig, problems: Problems) -> Optional[ModelSpec]:
    """The catalog entry or the custom model; None (with a problem) when neither is usable."""
    named = "name" in config.model_fields_set
    if config.custom is not None:
        if named and config.name != CUSTOM:
            problems.add(
                "model.name",
                config.name,
                "names a catalog model, but model.custom describes another; give one of them",
                problems.rm_command("model.name"),
            )
            return None
        return config.custom.spec()
    if config.name == CUSTOM:
        problems.add(
            "model.custom",
            None,
            "is required when model.name is custom: describe the model",
            problems.set_command(
                "model.custom",
                {
                    "name": "Tiny-1B",
                    "modelscopeId": "org/Tiny-1B",
                    "hfId": "org/Tiny-1B",
                    "paramsBillion": 1.2,
                    "weightDtype": "bf16",
                    "layers": 16,
                    "attentionHeads": 16,
                    "kvHeads": 8,
                    "headDim": 64,
                    "contextLength": 8192,
                },
            ),
        )
        return None
    if config.name not in MODELS:
        problems.add(
            "model.name",
            config.name,
            f"unknown model; the catalog has: {', '.join(MODELS)}",
            f"{problems.set_command('model.name', 'QwQ-32B')} (or describe it in model.custom)",
        )
        return None
    return MODELS[config.name]
