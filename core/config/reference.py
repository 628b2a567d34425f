"""The configuration reference, generated from the schema itself so it cannot drift (docs/reference/config.md).

scripts/docs.py writes it; tests/test_docs.py fails when the committed page differs from what this prints.
"""

from __future__ import annotations

import json
import typing
from collections.abc import Iterator
from typing import Any, Optional

from pydantic import BaseModel
from pydantic.fields import FieldInfo

from core.config.root import SECRET_KEYS, StackConfig
from core.config.schema import Group
from core.config.validation import MOVED, field_targets
from core.targets import ALL_TARGETS

INTRO = """# Configuration reference

Generated from the program's config schema (`core/config/`) by `scripts/docs.py`; do not edit by hand.

Every key lives in the project's namespace (`llm` unless you renamed the project in `Pulumi.yaml`). Set a
key inside a group with `--path`, for example:

```sh
pulumi config set --path 'llm:engine.maxModelLen' 16384
pulumi config set --path 'llm:gpuNodes.max' 3
pulumi config set --path 'llm:access.allowedCidrs[0]' 203.0.113.0/24
pulumi config set --secret llm:apiKey "$(openssl rand -hex 24)"
```

An unknown key, or one that does not apply to the stack's target, is refused before anything is created, with
the nearest valid key. Cloud settings use the providers' own keys: `alicloud:region` (and `alicloud:profile`,
`alicloud:assumeRole`, ...) on Alibaba Cloud, `gcp:project`, `gcp:region`, `gcp:zone` on gke,
`kubernetes:kubeconfig` / `kubernetes:context` on an existing cluster; every key set there reaches the
provider.
"""


def _type_name(annotation: Any) -> str:
    origin = typing.get_origin(annotation)
    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    if origin is typing.Annotated:
        return _type_name(args[0])
    if origin is typing.Union:
        return " or ".join(_type_name(a) for a in args)
    if origin is typing.Literal:
        return " \\| ".join(f"`{a}`" for a in typing.get_args(annotation))
    if origin in (tuple, list):
        return f"list of {_type_name(args[0])}"
    if origin is dict:
        return f"map of {_type_name(args[0])} to {_type_name(args[1])}"
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return "object"
    return {int: "integer", float: "number", bool: "boolean", str: "string"}.get(annotation, str(annotation))


def _default(info: FieldInfo) -> str:
    default = info.default
    if repr(default) == "PydanticUndefined":
        return "required"
    if isinstance(default, BaseModel):
        return ""
    if default in (None, "", (), {}):
        return "empty"
    return f"`{json.dumps(default) if not isinstance(default, str) else default}`"


def _group_of(annotation: Any) -> Optional[type[Group]]:
    for candidate in (annotation, *typing.get_args(annotation)):
        if isinstance(candidate, type) and issubclass(candidate, Group):
            return candidate
    return None


def rows(
    model: type[BaseModel] = StackConfig, prefix: str = "", group_targets: tuple[str, ...] = ALL_TARGETS
) -> Iterator[tuple[str, str, str, str, str]]:
    """(key path, type, default, targets, description) of every key, groups before their keys."""
    own_targets = model.TARGETS if issubclass(model, Group) else group_targets
    for name, info in model.model_fields.items():
        path = f"{prefix}{info.alias or name}"
        targets = field_targets(info, own_targets)
        inner = _group_of(info.annotation)
        shown = "all" if set(targets) == set(ALL_TARGETS) else ", ".join(targets)
        description = info.description or ""
        if path in SECRET_KEYS:
            description += " Set it with `--secret`."
        if inner is not None:
            listed = typing.get_origin(info.annotation) in (tuple, list)
            yield path, "list of objects" if listed else "object", "empty" if listed else "", shown, description
            # An item's keys: `gateway.extraRoutes.path` is `gateway.extraRoutes[0].path` in --path syntax.
            yield from rows(inner, f"{path}[]." if listed else f"{path}.", targets)
        else:
            yield path, _type_name(info.annotation), _default(info), shown, description


def render() -> str:
    lines = [
        INTRO,
        "## Keys",
        "",
        "| key | type | default | targets | description |",
        "| --- | --- | --- | --- | --- |",
    ]
    for path, type_name, default, targets, description in rows():
        escaped = description.replace("|", "\\|")
        lines.append(f"| `{path}` | {type_name} | {default} | {targets} | {escaped} |")
    lines += [
        "",
        "## Keys of the earlier flat schema",
        "",
        "A stack file written for the flat keys of earlier versions is refused with the new home of each key:",
        "",
        "| earlier key | now |",
        "| --- | --- |",
    ]
    lines += [f"| `{old}` | `{new}` |" for old, new in MOVED.items()]
    return "\n".join(lines) + "\n"


def render_models() -> str:
    """The model catalog and the GPU instance types the sizing check chooses from."""
    from core.catalog import (
        CAPACITY_MODES,
        ECS_INSTANCE_TYPES,
        GCE_AO,
        GKE_MACHINES,
        GPUS,
        LOCAL_SSD_GIB,
        MODELS,
    )

    lines = [
        "# Models and GPUs",
        "",
        "Generated from `core/catalog.py` by `scripts/docs.py`; do not edit by hand.",
        "",
        "Set `model` to a name below, or describe another model in `model.custom` (see the configuration "
        "reference). The numbers come from each model's own config.json and weight files; they drive the "
        "sizing check and the engine's command line.",
        "",
        "## Models",
        "",
        "| name | ModelScope / Hugging Face id | weights | dtype | context | reasoning | gated |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for model in MODELS.values():
        ids = model.modelscope_id if model.modelscope_id == model.hf_id else f"{model.modelscope_id} / {model.hf_id}"
        lines.append(
            f"| `{model.name}` | {ids} | {model.weights_gib:.1f} GiB | {model.weight_dtype} | "
            f"{model.context_length} | {model.reasoning or '-'} | {'yes' if model.gated else 'no'} |"
        )
    lines += ["", "## GPUs", "", "| kind | memory | bf16 | ACS series |", "| --- | --- | --- | --- |"]
    for gpu in GPUS.values():
        lines.append(
            f"| {gpu.name} | {gpu.memory_gib:.1f} GiB | {'yes' if gpu.bf16 else 'no (fp16)'} | "
            f"{gpu.acs_series or '-'} |"
        )
    lines += [
        "",
        "## ECS GPU instance types (ecs, ack)",
        "",
        "| type | GPUs | vCPU | memory |",
        "| --- | --- | --- | --- |",
    ]
    for t in ECS_INSTANCE_TYPES.values():
        lines.append(f"| `{t.name}` | {t.gpu_count}x {t.gpu} | {t.vcpu} | {t.memory_gib} GiB |")
    lines += [
        "",
        "## GKE GPU machines (gke)",
        "",
        "The sizing check takes the smallest machine that holds the model and the serving pod (fewest GPUs, then "
        "the smaller GPU, then fewest vCPUs), among those the capacity mode can get; `gke.machineType` names one. "
        f"Sources: {GCE_AO}; cluster-toolkit machine_mappings.json and disk_definitions.tf; gpu-recipes (GKE "
        'versions). "-": no value found in the sources read.',
        "",
        "| machine | family | GPUs | accelerator | vCPU | memory | local SSD (ephemeral) | capacity | min GKE | "
        "min driver |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for m in GKE_MACHINES.values():
        ssd = f"{m.local_ssds} x {LOCAL_SSD_GIB} GiB{' (bundled)' if m.local_ssd_bundled else ''}"
        lines.append(
            f"| `{m.name}` | {m.family} | {m.gpu_count}x {m.gpu} | `{m.accelerator}` | {m.vcpu} | {m.memory_gib} GiB | "
            f"{ssd} | {', '.join(c for c in CAPACITY_MODES if c in m.capacity)} | {m.min_gke_version or '-'} | "
            f"{m.min_driver or '-'} |"
        )
    return "\n".join(lines) + "\n"
