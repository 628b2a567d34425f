"""`disk` and `modelStore`: the disks of the GPU hosts and nodes, and the bucket (or volume) holding the weights."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Literal, Optional

from core import durations, sizing
from core.catalog import ModelSpec
from core.config.problems import Problems
from core.config.schema import EcsInstanceType, Flag, Group, Int, matches, option, within
from core.engine import EngineOptions, streamer_problem
from core.targets import ACK, ACS, ECS, GKE, KUBERNETES, MANAGED_ALIBABA, ON_KUBERNETES
from core.versions import VLLM_IMAGE

DISK_CATEGORIES = ("cloud_essd", "cloud_auto", "cloud_efficiency")
# OSS and GCS bucket names: 3-63 lowercase letters, digits and '-' (OSS bucket naming rules; GCS also takes
# '_' and '.', which OSS does not: the common subset is used).
BUCKET = r"[a-z0-9][a-z0-9-]{1,61}[a-z0-9]"
# ECS system disks: ESSD 20-2048 GiB per the ECS RunInstances API page (SystemDisk.Size); the provider's
# docstring (pulumi_alicloud ecs/instance.py) still says [20, 500]. Not verified against a live account.
# ACK node pool data disks: 40-32768 GiB (components/alibaba/node_pool.py).
MAX_DISK_GIB = 2048
IMPORT_INSTANCE_TYPE = "ecs.g7.xlarge"  # the import workers' default type (modelStore, ecs.weights)


class DiskConfig(Group):
    """The GPU host's system disk (ecs) or the GPU nodes' data disk (ack)."""

    TARGETS = (ECS, ACK)
    category: Literal["cloud_essd", "cloud_auto", "cloud_efficiency"] = option("cloud_essd", "Disk category.")
    size_gib: Annotated[Int, within(0, MAX_DISK_GIB, "GiB")] = option(
        0, "Disk size; 0: sized from the model (OS + engine image + weights)."
    )


class ModelStoreConfig(Group):
    """The bucket (acs, ack, ack-edge, gke) or volume (kubernetes) that holds the weights."""

    TARGETS = ON_KUBERNETES
    bucket: Optional[
        Annotated[str, matches(BUCKET, "3-63 lowercase letters, digits and '-', not starting or ending with '-'")]
    ] = option(
        None, "Bucket name; empty: a generated unique name.", targets=(*MANAGED_ALIBABA, GKE), example="my-llm-models"
    )
    retain: Flag = option(False, "Keep the bucket (or the volume and namespace on kubernetes) on `pulumi destroy`.")
    adopt: Flag = option(
        False,
        "modelStore.bucket names an existing bucket (e.g. one kept by retain): use it, do not create it.",
        targets=(*MANAGED_ALIBABA, GKE),
    )
    # The import workers (components/alibaba/model_import_workers.py); the bound: core.durations.MAX_IMPORT_WORKERS
    # (OSS's 20 Gbit/s intranet upload per account in cn-hangzhou at the assumed 100 MB/s per worker).
    import_workers: Optional[Annotated[Int, within(1, durations.MAX_IMPORT_WORKERS, "workers")]] = option(
        None,
        "ECS workers the model import is split over (by file size); empty: one per 25 GB of weights.",
        targets=MANAGED_ALIBABA,
        example=4,
    )
    import_instance_type: EcsInstanceType = option(
        IMPORT_INSTANCE_TYPE,
        "Instance type of the import workers (they stop themselves when done).",
        targets=MANAGED_ALIBABA,
    )
    import_image_id: Optional[Annotated[str, matches(r"[A-Za-z0-9][A-Za-z0-9._-]{1,127}", "an ECS image id")]] = option(
        None,
        "OS image of the import workers; empty: the newest public Ubuntu 22.04 image.",
        targets=MANAGED_ALIBABA,
    )
    load: Optional[Literal["stream", "mount"]] = option(
        None,
        "How the engine reads the weights: stream (vLLM's Run:ai Model Streamer: from gs:// on gke, from OSS's S3 "
        "API with RRSA on acs and ack, from the volume on kubernetes) or mount (the default loader through the "
        "mounted store); empty: stream on gke with vLLM's own image, else mount; ack-edge: mount only. "
        "docs/loading.md.",
        example="stream",
    )


STREAM, MOUNT = "stream", "mount"
# Where streaming applies and from what: gke streams from the bucket (gs://, the streamer's GCS backend with
# Application Default Credentials, i.e. the pod's workload identity: run-ai/runai-model-streamer/docs/src/env-vars.md
# RUNAI_STREAMER_GCS_CREDENTIAL_FILE); kubernetes reads the mounted volume with the streamer's concurrent reads; acs
# and ack stream from OSS through its S3-compatible API (s3://), with credentials from an AWS `credential_process`
# that exchanges the pod's RRSA token with Alibaba STS (components/alibaba/oss_stream_access.py, docs/loading.md).
STREAM_SOURCES = {GKE: "gs", KUBERNETES: "file", ACS: "s3", ACK: "s3"}
# Streaming is the default only where it has run end to end on the cloud's own store: gke. On acs and ack the pieces
# are sourced (OSS's S3 API takes STS credentials as x-amz-security-token: alibabacloud.com/help/en/oss/support/
# 0002-00000009) and the credential chain runs here against moto and a fake STS (tests/engine/test_streaming.py),
# but the exchange with the real STS and OSS's answer have not been run: explicit `stream` only.
STREAM_BY_DEFAULT = (GKE,)
# ack-edge: the serving pods run on IDC machines that reach OSS over the public endpoint or Express Connect, and STS
# from there; RRSA on IDC nodes and ECI is not proven (notes/alibaba-facts.md section 10), and the IDC's link would
# bound a stream anyway. The mounted store (ossfs, with the AccessKey the ACK Edge guide uses) stays.
ALIBABA_EDGE_NO_STREAM = (
    "the IDC machines reach OSS over the public endpoint or Express Connect and RRSA is not proven on IDC nodes or "
    "ECI: the weights are read through the ossfs volume"
)
FLUID_NO_STREAM = "acs.fluid caches the mounted volume, and a stream reads OSS directly, past the cache"


def resolve_load(
    config: ModelStoreConfig,
    target: str,
    engine: Optional[EngineOptions],
    gke_model_source: str,
    problems: Problems,
    fluid: bool = False,
) -> str:
    """modelStore.load: the configured mode where it can work, else the target's default (stream where it applies)."""
    source = STREAM_SOURCES.get(target)
    explicit = config.load
    if explicit == MOUNT or (explicit is None and target not in STREAM_BY_DEFAULT) or engine is None:
        return MOUNT
    why_not, fix = None, f"{problems.set_command('modelStore.load', MOUNT)} (or unset it)"
    if source is None:
        why_not = ALIBABA_EDGE_NO_STREAM
    elif target == GKE and gke_model_source == "download":
        why_not = "gke.modelSource download keeps no bucket to stream from"
    elif fluid:
        why_not = FLUID_NO_STREAM
        fix = f"{problems.set_command('acs.fluid', 'false')}, or {fix}"
    else:
        why_not = streamer_problem(engine, source)
        if why_not is not None and source == "s3":
            fix = f"{problems.set_command('engine.image', VLLM_IMAGE.value)} (an image your region can pull), or {fix}"
    if why_not is None:
        return STREAM
    if explicit == STREAM:
        problems.add("modelStore.load", STREAM, f"cannot stream on {target}: {why_not}", fix)
    return MOUNT


@dataclass(frozen=True)
class Disk:
    category: str
    size_gib: int  # resolved: the configured size or the model's need


@dataclass(frozen=True)
class ModelStore:
    bucket_name: Optional[str]
    adopt_bucket: bool
    retain: bool
    fluid: bool  # acs: Fluid in front of the bucket
    storage_class: Optional[str]  # kubernetes: the volume's class; None: the cluster default
    import_workers: Optional[int] = None  # acs, ack, ack-edge: None: from the model's size (core.durations)
    import_instance_type: str = IMPORT_INSTANCE_TYPE
    import_image_id: Optional[str] = None
    load: str = MOUNT  # STREAM: the Run:ai Model Streamer reads the weights (resolve_load)


def resolve_disk(config: DiskConfig, model: Optional[ModelSpec], problems: Problems) -> Disk:
    need = sizing.disk_gib(model) if model else 0
    if config.size_gib and config.size_gib < need:
        problems.add(
            "disk.sizeGib",
            config.size_gib,
            f"is smaller than the {need} GiB the model needs",
            problems.set_command("disk.sizeGib", need),
        )
    if not config.size_gib and need > MAX_DISK_GIB:
        problems.add(
            "model.name",
            model.name if model else None,
            f"needs a {need} GiB disk; ECS system disks hold at most {MAX_DISK_GIB} GiB",
            "serve it on a Kubernetes target (the weights live in a bucket)",
        )
    return Disk(category=config.category, size_gib=config.size_gib or need)


def resolve_model_store(
    config: ModelStoreConfig,
    fluid: bool,
    storage_class: Optional[str],
    problems: Problems,
    load: str = MOUNT,
) -> ModelStore:
    if config.adopt and not config.bucket:
        problems.add(
            "modelStore.adopt",
            True,
            "needs modelStore.bucket: the name of the existing bucket to use",
            f"{problems.set_command('modelStore.bucket', '<bucket name>')} (the modelBucket output of the old stack)",
        )
    return ModelStore(
        bucket_name=config.bucket,
        adopt_bucket=config.adopt,
        retain=config.retain,
        fluid=fluid,
        storage_class=storage_class,
        import_workers=config.import_workers,
        import_instance_type=config.import_instance_type,
        import_image_id=config.import_image_id,
        load=load,
    )
