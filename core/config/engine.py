"""`engine`: which inference engine and image, and the engine knobs (context length, memory, batch)."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import Annotated, Literal, Optional

from core import versions
from core.catalog import ModelSpec
from core.config.problems import Problems
from core.config.schema import IMAGE_REFERENCE, Group, Int, Number, between, matches, option, within
from core.engine import RESERVED_FLAGS, SGLANG, VLLM, EngineOptions, engine_version, reserved_flag
from core.targets import ACK, ACS

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


# ACR Enterprise Edition: instance ids `cri-...` (cs.RegistryEnterpriseNamespace docstring examples); namespace
# names 2-120 characters of lowercase letters, digits, '_', '-', '.', not starting or ending with one of those
# (pulumi_alicloud cs/registry_enterprise_namespace.py `name`); the instance's VPC domain
# `<instance name>-registry-vpc.<region>.cr.aliyuncs.com` (ACR "Configure access over VPCs").
ACR_INSTANCE_ID = r"cri-[a-z0-9]{1,64}"
ACR_NAMESPACE = r"[a-z0-9][a-z0-9_.-]{0,118}[a-z0-9]"
ACR_VPC_REGISTRY = r"(?P<name>[a-z0-9][a-z0-9-]*)-registry-vpc\.(?P<region>[a-z0-9-]+)\.cr\.aliyuncs\.com"


class ImageMirrorConfig(Group):
    """Copy the engine image into your ACR Enterprise Edition instance in the stack's region, beside the cluster's
    creation, so the GPU pods pull it over the VPC instead of through the NAT (docs/loading.md, "The engine image
    near the GPUs")."""

    TARGETS = (ACS, ACK)
    instance_id: Optional[Annotated[str, matches(ACR_INSTANCE_ID, "an ACR EE instance id like cri-abc123")]] = option(
        None, "Your ACR Enterprise Edition instance in the stack's region; empty: no mirror.", example="cri-abc123"
    )
    registry: Optional[
        Annotated[
            str, matches(ACR_VPC_REGISTRY, "the instance's VPC domain, <name>-registry-vpc.<region>.cr.aliyuncs.com")
        ]
    ] = option(
        None,
        "The instance's VPC domain (console: Instance, Access Control, VPC), in the stack's region.",
        example="myacr-registry-vpc.cn-hangzhou.cr.aliyuncs.com",
    )
    namespace: Optional[
        Annotated[str, matches(ACR_NAMESPACE, "an ACR namespace: 2-120 lowercase letters, digits, _ - .")]
    ] = option(
        None, "An existing namespace of the instance; the stack creates its own repository in it.", example="llm"
    )


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
    mirror: ImageMirrorConfig = option(
        ImageMirrorConfig(), "Mirror the engine image into your ACR Enterprise Edition instance (acs, ack)."
    )


@dataclass(frozen=True)
class ImageMirror:
    """The engine image copied into an ACR Enterprise Edition repository of this stack, pulled over the VPC."""

    instance_id: str
    registry: str  # the instance's VPC domain
    namespace: str
    repository: str  # created by the stack, named after it and the source's repository
    tag: str  # the source's tag (or its digest's first hex digits), immutable in the repository
    source: str  # the image as configured (or the default), copied from

    @property
    def image(self) -> str:
        """What the serving pods pull."""
        return f"{self.registry}/{self.namespace}/{self.repository}:{self.tag}"


MIRROR_EXAMPLES = {
    "instanceId": "cri-abc123",
    "registry": "myacr-registry-vpc.cn-hangzhou.cr.aliyuncs.com",
    "namespace": "llm",
}
# ACR EE repository names: the same characters as a namespace; their length limit is not stated in the provider
# docstring (cs/registry_enterprise_repo.py) and was not verified: 64 is kept as a conservative bound.
ACR_REPOSITORY_MAX = 64


def mirror_repository(stack_name: str, source: str) -> str:
    """The stack's repository: its name and the source's last path element, cut to the bound."""
    last = source.split("@", 1)[0].rsplit("/", 1)[-1].split(":", 1)[0]
    name = f"{stack_name}-{last}"
    if len(name) <= ACR_REPOSITORY_MAX:
        return name
    digest = hashlib.sha256(name.encode()).hexdigest()[:8]
    return f"{name[: ACR_REPOSITORY_MAX - 9].rstrip('_.-')}-{digest}"


def mirror_tag(source: str) -> str:
    base, _, digest = source.partition("@sha256:")
    last = base.rsplit("/", 1)[-1]
    if ":" in last:
        return last.split(":", 1)[1]
    return f"sha256-{digest[:16]}"


def resolve_mirror(
    config: ImageMirrorConfig, engine: Optional[EngineOptions], region: str, stack_name: str, problems: Problems
) -> Optional[ImageMirror]:
    """engine.mirror: all three keys or none, the registry in the stack's region."""
    given = {"instanceId": config.instance_id, "registry": config.registry, "namespace": config.namespace}
    if not any(given.values()):
        return None
    ok = True
    for key, value in given.items():
        if not value:
            problems.add(
                f"engine.mirror.{key}",
                None,
                "the mirror needs all of engine.mirror.instanceId, registry and namespace",
                problems.set_command(f"engine.mirror.{key}", MIRROR_EXAMPLES[key]),
            )
            ok = False
    match = re.fullmatch(ACR_VPC_REGISTRY, config.registry or "")
    if match and match["region"] != region:
        problems.add(
            "engine.mirror.registry",
            config.registry,
            f"is in {match['region']}, not the stack's region {region}: the pods pull over this region's VPC",
            problems.set_command("engine.mirror.registry", f"{match['name']}-registry-vpc.{region}.cr.aliyuncs.com")
            + " (an instance in this region)",
        )
        ok = False
    if not ok or engine is None:
        return None
    assert config.instance_id and config.registry and config.namespace
    return ImageMirror(
        instance_id=config.instance_id,
        registry=config.registry,
        namespace=config.namespace,
        repository=mirror_repository(stack_name, engine.image),
        tag=mirror_tag(engine.image),
        source=engine.image,
    )


def default_image(engine: str, mainland_china: bool) -> str:
    return DEFAULT_IMAGES[(engine, mainland_china)]


# ACR Personal Edition instances created since 2024-09-09 have their own endpoints,
# crpi-<id>[-vpc].<region>.personal.cr.aliyuncs.com, which refuse anonymous pulls (a secret is required) and any pull
# over the public one (ACR "Exclusive endpoints of Personal Edition instances",
# alibabacloud.com/help/en/acr/user-guide/individual-edition-instance-independent-domain-name-capacity-limit).
# Nothing this program runs logs into a registry (hosts, pods, the mirror worker), so such an image cannot be pulled.
PERSONAL_ACR_ENDPOINT = r"crpi-[a-z0-9]+(-vpc)?\.[a-z0-9-]+\.personal\.cr\.aliyuncs\.com"
ANONYMOUS_PULL_FIX = (
    "copy the image into an ACR Enterprise Edition repository that admits anonymous pulls (engine.mirror does "
    "this on acs and ack; docs/image-mirror.md), or use a registry that needs no login"
)


def anonymous_pull_problem(image: str) -> Optional[str]:
    """Why nothing the program runs could pull `image` without a login, or None."""
    host = image.split("/", 1)[0] if "/" in image else ""
    if re.fullmatch(PERSONAL_ACR_ENDPOINT, host):
        return (
            "is on an ACR Personal Edition endpoint (crpi-...personal.cr.aliyuncs.com), which refuses pulls without "
            "a login, and this program logs no host or pod into a registry"
        )
    return None


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
    if config.image is not None and (why := anonymous_pull_problem(config.image)):
        problems.add("engine.image", config.image, why, ANONYMOUS_PULL_FIX)
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
