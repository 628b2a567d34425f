"""`disk` and `modelStore`: the disks of the GPU hosts and nodes, and the bucket (or volume) holding the weights."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Literal, Optional

from core import sizing
from core.catalog import ModelSpec
from core.config.problems import Problems
from core.config.schema import Flag, Group, Int, matches, option, within
from core.engine import EngineOptions, streamer_problem
from core.targets import ACK, ECS, GKE, KUBERNETES, MANAGED_ALIBABA, ON_KUBERNETES

DISK_CATEGORIES = ("cloud_essd", "cloud_auto", "cloud_efficiency")
# OSS and GCS bucket names: 3-63 lowercase letters, digits and '-' (OSS bucket naming rules; GCS also takes
# '_' and '.', which OSS does not: the common subset is used).
BUCKET = r"[a-z0-9][a-z0-9-]{1,61}[a-z0-9]"
# ECS system disks: ESSD 20-2048 GiB per the ECS RunInstances API page (SystemDisk.Size); the provider's
# docstring (pulumi_alicloud ecs/instance.py) still says [20, 500]. Not verified against a live account.
# ACK node pool data disks: 40-32768 GiB (components/alibaba/node_pool.py).
MAX_DISK_GIB = 2048


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
    load: Optional[Literal["stream", "mount"]] = option(
        None,
        "How the engine reads the weights: stream (vLLM's Run:ai Model Streamer: from gs:// on gke, from the "
        "volume on kubernetes) or mount (the default loader through the mounted store); empty: stream where it "
        "applies (gke with vLLM's own image), else mount; acs, ack, ack-edge: mount only. docs/loading.md.",
        example="stream",
    )


STREAM, MOUNT = "stream", "mount"
# Where streaming applies and from what: gke streams from the bucket (gs://, the streamer's GCS backend with
# Application Default Credentials, i.e. the pod's workload identity: run-ai/runai-model-streamer/docs/src/env-vars.md
# RUNAI_STREAMER_GCS_CREDENTIAL_FILE); kubernetes reads the mounted volume with the streamer's concurrent reads.
STREAM_SOURCES = {GKE: "gs", KUBERNETES: "file"}
# Why not on Alibaba Cloud (acs, ack, ack-edge), where the weights stay behind ossfs or Fluid: OSS speaks S3 (GetObject
# with Range, HeadObject, ListObjectsV2; virtual-hosted style only; https://s3.oss-<region>-internal.aliyuncs.com:
# alibabacloud.com/help/en/oss/developer-reference/compatibility-with-amazon-s3 and .../use-aws-sdks-to-access-oss),
# but the streamer's S3 credentials come from boto3's chain (runai-model-streamer/docs/src/usage.md "S3
# authentication"), whose web identity provider calls AWS STS AssumeRoleWithWebIdentity, while an RRSA token is
# exchanged with Alibaba STS AssumeRoleWithOIDC: no provider in that chain takes it, and a long-lived AccessKey is
# not an option here.
ALIBABA_NO_STREAM = (
    "the streamer's S3 credentials come from boto3's chain, which cannot exchange an RRSA token (Alibaba STS "
    "AssumeRoleWithOIDC, not AWS AssumeRoleWithWebIdentity), and no long-lived AccessKey is used: the weights are "
    "read through ossfs (or Fluid on acs)"
)


def resolve_load(
    config: ModelStoreConfig, target: str, engine: Optional[EngineOptions], gke_model_source: str, problems: Problems
) -> str:
    """modelStore.load: the configured mode where it can work, else the target's default (stream where it applies)."""
    source = STREAM_SOURCES.get(target)
    explicit = config.load
    if explicit == MOUNT or (explicit is None and target != GKE) or engine is None:
        return MOUNT
    why_not = None
    if source is None:
        why_not = ALIBABA_NO_STREAM
    elif target == GKE and gke_model_source == "download":
        why_not = "gke.modelSource download keeps no bucket to stream from"
    else:
        why_not = streamer_problem(engine, source)
    if why_not is None:
        return STREAM
    if explicit == STREAM:
        problems.add(
            "modelStore.load",
            STREAM,
            f"cannot stream on {target}: {why_not}",
            f"{problems.set_command('modelStore.load', MOUNT)} (or unset it)",
        )
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
        load=load,
    )
