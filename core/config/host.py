"""`ecs`: what only the ecs target's GPU host has: its OS image, NVIDIA driver and readiness wait."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Annotated, Literal, Optional

from pydantic.alias_generators import to_camel

from core import durations
from core.catalog import ModelSpec
from core.config.problems import Problems
from core.config.schema import EcsInstanceType, Flag, Group, Int, matches, option, within
from core.config.storage import BUCKET, IMPORT_INSTANCE_TYPE
from core.engine import EngineOptions, stream_load, streamer_problem
from core.targets import ECS
from core.versions import VLLM_IMAGE

# Cloud Assistant runs a command for at most 86400 s (ecs.Command `timeout`, ECS CreateCommand API): the
# readiness wait can be at most a day less the command's margin.
MAX_READINESS_MINUTES = 1380
# The readiness wait: the modelled time (core.durations.ecs_readiness) x 1.5, at least 30 minutes.
READINESS_MARGIN = 1.5
READINESS_FLOOR_MINUTES = 30


ECS_IMAGE_ID = r"m-[a-z0-9]{8,64}"  # custom image ids (ECS DescribeImages: m-bp1...; public images are named)
# The prepared image's disk: Ubuntu, driver, toolkit, Docker and the unpacked engine image (28.6 GB,
# vllm-project/vllm#22377) with room for an SGLang image; a host's system disk must be at least an image's size
# (ECS RunInstances: SystemDisk.Size >= the image's size).
PREPARED_IMAGE_DISK_GIB = 80
# ranged GETs in flight from the bucket; OSS allows 100 Gbit/s down per account in cn-hangzhou
# (alibabacloud.com/help/en/oss/user-guide/limits): far above what one host's disk writes.
MAX_PARALLEL = 64


class PreparedImageConfig(Group):
    """An ECS image with the NVIDIA driver, Docker, the container toolkit and the engine image already installed
    (docs/targets/ecs-prepared-image.md)."""

    TARGETS = (ECS,)
    build: Flag = option(
        False,
        "Build one with ECS Image Builder beside this stack's first host (which still starts from Ubuntu); "
        "its id is the `preparedImageId` output.",
    )
    id: Optional[Annotated[str, matches(ECS_IMAGE_ID, "a custom ECS image id like m-bp1abcdefgh12345")]] = option(
        None,
        "A prepared image to start the host from (e.g. another stack's `preparedImageId`).",
        example="m-bp1abcdefgh12345",
    )
    retain: Flag = option(
        False, "Keep the built image on `pulumi destroy` (it bills as snapshot storage until deleted)."
    )


class WeightsConfig(Group):
    """Where the host takes the weights from: ModelScope through the NAT, an OSS bucket in the region, or a bucket
    of the stack's own that its import workers fill while the host boots."""

    TARGETS = (ECS,)
    source: Literal["modelscope", "oss", "import"] = option(
        "modelscope",
        "modelscope: download through the NAT; oss: copy from `bucket` over the region's internal endpoint "
        "with the host's RAM role (no AccessKey); import: the stack makes its own bucket and short-lived import "
        "workers fill it from ModelScope at t=0, beside the host, which waits for them and then copies or streams "
        "it as with oss (docs/targets/ecs-prepared-image.md).",
    )
    bucket: Optional[
        Annotated[str, matches(BUCKET, "3-63 lowercase letters, digits and '-', not starting or ending with '-'")]
    ] = option(
        None,
        "source oss: the OSS bucket in the stack's region that holds the weights; source import: the name of the "
        "bucket the stack creates (empty: llm-<stack>-models-<8 hex of the account, project and stack>).",
        example="my-llm-models",
    )
    # The import workers (components/alibaba/model_import_workers.py), as modelStore.importWorkers on acs and ack.
    import_workers: Optional[Annotated[Int, within(1, durations.MAX_IMPORT_WORKERS, "workers")]] = option(
        None,
        "source import: ECS workers the import is split over (by file size); empty: one per 25 GB of weights.",
        example=4,
    )
    import_instance_type: EcsInstanceType = option(
        IMPORT_INSTANCE_TYPE, "source import: instance type of the import workers (they stop themselves when done)."
    )
    retain: Flag = option(False, "source import: keep the stack's bucket and its weights on `pulumi destroy`.")
    prefix: Annotated[str, matches(r"[A-Za-z0-9._-]+(/[A-Za-z0-9._-]+)*", "an object prefix like models")] = option(
        "models",
        "The weights are under oss://<bucket>/<prefix>/<ModelScope id>/ (as the Kubernetes targets' import "
        "writes them).",
    )
    parallel: Annotated[Int, within(1, MAX_PARALLEL, "ranged GETs in flight")] = option(
        16, "Parallel ranged GETs of the copy from OSS."
    )
    load: Optional[Literal["stream", "copy"]] = option(
        None,
        "source oss: stream (vLLM's Run:ai Model Streamer reads the bucket through OSS's S3 API with the host's RAM "
        "role, no copy on disk; needs an engine image that ships the streamer) or copy (onto the host's disk, then "
        "the engine loads it); empty: copy. docs/targets/ecs-prepared-image.md.",
        example="stream",
    )


class EcsConfig(Group):
    TARGETS = (ECS,)
    image_id: Optional[
        Annotated[str, matches(r"[A-Za-z0-9][A-Za-z0-9._-]{1,127}", "an ECS image id like m-bp1...")]
    ] = option(
        None,
        "OS image id; empty: the newest Ubuntu 22.04 public image (UEFI where the type needs it).",
        example="m-bp1exampleimage",
    )
    # Ubuntu's NVIDIA server packages are named by branch (nvidia-headless-570-server).
    gpu_driver_branch: Annotated[str, matches(r"[0-9]{3}", "a three-digit NVIDIA driver branch like 570")] = option(
        "570", "NVIDIA server driver branch installed when the image has none."
    )
    readiness_timeout_minutes: Annotated[Int, within(0, MAX_READINESS_MINUTES, "minutes")] = option(
        0,
        "How long `pulumi up` waits for the API; 0: the modelled time at the host's bandwidth x 1.5 "
        "(core/durations.py).",
    )
    prepared_image: PreparedImageConfig = option(
        PreparedImageConfig(), "A prepared ECS image: built once, or taken (docs/targets/ecs-prepared-image.md)."
    )
    weights: WeightsConfig = option(WeightsConfig(), "Where the host takes the weights from.")


@dataclass(frozen=True)
class PreparedImage:
    build: bool
    image_id: Optional[str]  # take this one
    retain: bool


STREAM, COPY = "stream", "copy"


@dataclass(frozen=True)
class Weights:
    source: str  # modelscope | oss
    bucket: Optional[str]
    prefix: str
    parallel: int
    load: str = COPY  # source oss or import: STREAM, the engine reads the bucket itself; COPY, onto the disk first
    # source import: the workers the import is split over (resolved), their type, whether the bucket is kept
    import_workers: int = 0
    import_instance_type: str = IMPORT_INSTANCE_TYPE
    retain: bool = False

    @property
    def in_region(self) -> bool:
        return self.source in ("oss", "import")

    @property
    def imported(self) -> bool:
        """The stack's own import workers fill the bucket while the host boots."""
        return self.source == "import"

    @property
    def streamed(self) -> bool:
        return self.in_region and self.load == STREAM


@dataclass(frozen=True)
class EcsHost:
    zone: Optional[str]
    image_id: Optional[str]
    gpu_driver_branch: str
    readiness_timeout_minutes: int
    egress_mbps: int  # the bandwidth the readiness wait was derived from
    prepared_image: PreparedImage = PreparedImage(False, None, False)
    weights: Weights = Weights("modelscope", None, "models", 16)
    start: durations.EcsStart = field(default_factory=durations.EcsStart)  # what the readiness wait was modelled for
    # ecs.weights.source import: each worker's command timeout, and so how long the host waits for their manifests
    import_wait_minutes: int = 0


def resolve_host(
    config: EcsConfig,
    zone: Optional[str],
    model: Optional[ModelSpec],
    egress_mbps: int,
    bandwidth_key: str,
    problems: Problems,
    *,
    disk_gib: int = 100,
    image_in_region: bool = False,
    tensor_parallel: int = 1,
    hub_in_region: bool = False,
    engine: Optional[EngineOptions] = None,
    region: str = "",
    nat: bool = True,
) -> EcsHost:
    """`egress_mbps`: the host's way to ModelScope and the registry (the NAT EIP, or its own public bandwidth,
    named by `bandwidth_key`); the readiness wait is derived from it, from what the host starts from (a prepared
    image, the weights in the region, the engine image from a VPC registry: `image_in_region`), the disk and the
    GPUs the engine spans (`tensor_parallel`: its warm-up class) and whether the engine streams the weights
    (`engine`: its image decides whether it can). With the stack's own import (ecs.weights.source import, which
    needs the NAT: `nat`), the copy or stream waits for its workers, in `region`."""
    timeout = config.readiness_timeout_minutes
    prepared = _prepared_image(config, disk_gib, problems)
    weights = _weights(config.weights, engine, problems, model, nat)
    start = durations.EcsStart(
        prepared_image=prepared.image_id is not None,
        weights_in_region=weights.in_region,
        image_in_region=image_in_region,
        hub_in_region=hub_in_region and not weights.in_region,
        disk_gib=disk_gib,
        parallel=weights.parallel,
        tensor_parallel=tensor_parallel,
        stream_ranks=stream_ranks(engine, tensor_parallel) if weights.streamed and engine else 0,
        import_workers=weights.import_workers,
    )
    import_deadline = 0  # how long the host may wait for its stack's own import: as long as a worker may run
    if weights.imported and model is not None:
        share = durations.ecs_import(model, egress_mbps, weights.import_workers, region, start)
        start = dataclasses.replace(start, import_minutes=durations.import_ready_minutes(share))
        import_deadline = durations.import_deadline_minutes(
            model,
            egress_mbps,
            weights.import_workers,
            share.minutes,
            MAX_READINESS_MINUTES,
            durations.host_nat_pulls(start),
        )
    if model is not None:
        plan = durations.ecs_readiness(model, egress_mbps, start)
        modelled = math.ceil(plan.minutes)
        estimate = plan.deadline(READINESS_MARGIN, READINESS_FLOOR_MINUTES)
        if import_deadline:
            # The host may wait for the workers as long as they may run (e.g. NAT-bound, should ModelScope's
            # internal path not be taken), then copy and load: `up` waits for that too.
            estimate = max(estimate, math.ceil(import_deadline + plan.minutes - start.import_minutes))
        if config.readiness_timeout_minutes and config.readiness_timeout_minutes < modelled:
            problems.add(
                "ecs.readinessTimeoutMinutes",
                config.readiness_timeout_minutes,
                f"is shorter than the {modelled} minutes a first start takes at {egress_mbps} Mbit/s "
                f"({plan.describe()})",
                f"{problems.set_command('ecs.readinessTimeoutMinutes', min(estimate, MAX_READINESS_MINUTES))}"
                f", or {problems.rm_command('ecs.readinessTimeoutMinutes')} to derive it",
            )
        elif not config.readiness_timeout_minutes and estimate > MAX_READINESS_MINUTES:
            problems.add(
                bandwidth_key,
                egress_mbps,
                f"makes the first start of {model.name} take {modelled} minutes; Cloud Assistant waits at most "
                f"{MAX_READINESS_MINUTES}",
                "raise the bandwidth, or serve the model on a Kubernetes target",
            )
        timeout = timeout or min(estimate, MAX_READINESS_MINUTES)
    return EcsHost(
        zone=zone,
        image_id=config.image_id,
        gpu_driver_branch=config.gpu_driver_branch,
        readiness_timeout_minutes=timeout,
        egress_mbps=egress_mbps,
        prepared_image=prepared,
        weights=weights,
        start=start,
        import_wait_minutes=import_deadline,
    )


def _prepared_image(config: EcsConfig, disk_gib: int, problems: Problems) -> PreparedImage:
    image = config.prepared_image
    if image.build and image.id:
        problems.add(
            "ecs.preparedImage.id",
            image.id,
            "is set while ecs.preparedImage.build is true: a stack builds a prepared image or takes one, not both",
            f"{problems.rm_command('ecs.preparedImage.id')}, or "
            f"{problems.set_command('ecs.preparedImage.build', False)}",
        )
    if image.retain and not image.build:
        problems.add(
            "ecs.preparedImage.retain",
            True,
            "keeps a built image on destroy, and ecs.preparedImage.build is false (a taken image is never deleted)",
            problems.rm_command("ecs.preparedImage.retain"),
        )
    if image.id and config.image_id:
        problems.add(
            "ecs.imageId",
            config.image_id,
            "is set beside ecs.preparedImage.id: the host starts from one image",
            problems.rm_command("ecs.imageId"),
        )
    if (image.build or image.id) and disk_gib < PREPARED_IMAGE_DISK_GIB:
        problems.add(
            "disk.sizeGib",
            disk_gib,
            f"is smaller than the prepared image's {PREPARED_IMAGE_DISK_GIB} GiB disk (a host's system disk must be "
            "at least its image's size)",
            problems.set_command("disk.sizeGib", PREPARED_IMAGE_DISK_GIB),
        )
    return PreparedImage(build=image.build, image_id=image.id, retain=image.retain)


def stream_ranks(engine: EngineOptions, tensor_parallel: int) -> int:
    """How many processes stream at once (core.durations.engine_load): every tensor-parallel rank where the
    engine's streamer has the distributed mode (core.engine.stream_load, one host: never multi-node), else one."""
    distributed = stream_load(engine, True, tensor_parallel, multi_node=False, memory_gib=1).distributed
    return tensor_parallel if distributed else 1


def _weights(
    config: WeightsConfig, engine: Optional[EngineOptions], problems: Problems, model: Optional[ModelSpec], nat: bool
) -> Weights:
    imported = config.source == "import"
    for name in ("import_workers", "import_instance_type", "retain"):
        if name in config.model_fields_set and not imported:
            key = f"ecs.weights.{to_camel(name)}"
            problems.add(
                key,
                getattr(config, name),
                f"is set but ecs.weights.source is {config.source}: only the stack's own import reads it",
                f"{problems.set_command('ecs.weights.source', 'import')}, or {problems.rm_command(key)}",
            )
    if imported and not nat:
        problems.add(
            "ecs.weights.source",
            "import",
            "needs the NAT gateway (access.public false): the import workers have no public address and reach "
            "ModelScope through it",
            f"{problems.set_command('access.public', False)}, or "
            f"{problems.set_command('ecs.weights.source', 'modelscope')}",
        )
    if config.source == "oss" and not config.bucket:
        problems.add(
            "ecs.weights.bucket",
            None,
            "is required with ecs.weights.source oss: the bucket in the stack's region that holds the weights",
            problems.set_command("ecs.weights.bucket", "my-llm-models"),
        )
    if config.source == "modelscope" and config.bucket:
        problems.add(
            "ecs.weights.bucket",
            config.bucket,
            "is set but ecs.weights.source is modelscope, so the bucket would not be read",
            f"{problems.set_command('ecs.weights.source', 'oss')}, or {problems.rm_command('ecs.weights.bucket')}",
        )
    if config.source == "modelscope" and config.load:
        problems.add(
            "ecs.weights.load",
            config.load,
            "is set but ecs.weights.source is modelscope: only weights from a bucket stream or are copied",
            f"{problems.set_command('ecs.weights.source', 'oss')}, or {problems.rm_command('ecs.weights.load')}",
        )
    load = COPY
    # Streaming is asked for, as modelStore.load stream on acs and ack is: neither OSS path has met a live account,
    # and the copy reads OSS's own API rather than its S3 compatibility. The same check as there (core/config/
    # storage.py resolve_load): the image must ship the streamer's S3 backend.
    if config.source in ("oss", "import") and config.load == STREAM:
        why_not = streamer_problem(engine, "s3") if engine is not None else "the engine did not resolve"
        if why_not is None:
            load = STREAM
        elif engine is not None:
            problems.add(
                "ecs.weights.load",
                STREAM,
                f"cannot stream: {why_not}",
                f"{problems.set_command('engine.image', VLLM_IMAGE.value)} (an image your region can pull), or "
                f"{problems.set_command('ecs.weights.load', COPY)} (or unset it)",
            )
    return Weights(
        source=config.source,
        bucket=config.bucket,
        prefix=config.prefix,
        parallel=config.parallel,
        load=load,
        import_workers=durations.import_workers(model, config.import_workers) if imported and model else 0,
        import_instance_type=config.import_instance_type,
        retain=config.retain,
    )
