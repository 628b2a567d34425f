"""The model import at t=0: short-lived ECS workers that copy the weights from ModelScope into the OSS bucket.

The bucket needs no cluster, so neither does the import: each worker is a small pay-as-you-go ECS instance in
the VPC (egress through the stack's NAT) that starts as soon as the network and the bucket exist, beside the
cluster and its node pools. A Cloud Assistant command (EcsInvocation: `pulumi up` waits for Success, bounded by
its create timeout) runs components/scripts/llm-model-import.py on it; the serving workload depends on the
invocations, not on a Job in the cluster.

- Split: with N workers every worker lists the model's files from the hub and takes its share of a partition
  by size that every worker computes alike (largest first, to the least-loaded share).
- No-op re-run: a file whose object has the hub's size and the SHA-256 recorded at upload is only checked; each
  worker writes a manifest of its share (hub sizes and SHA-256) to <prefix>/.llm-import/worker-I-of-N.json.
- Least privilege: each worker has its own RAM role (components.alibaba.instance_role), trusted by ECS only,
  allowed oss:PutObject (which covers the multipart calls), oss:AbortMultipartUpload, oss:ListParts and
  oss:GetObject (HEAD, for the check) on <bucket>/<prefix>/* only, and ecs:StopInstance on itself only. The SDKs
  read the role's temporary credentials from the metadata service: no AccessKey exists.
- Billing: once its command has reported Success the worker stops itself with StoppedMode=StopCharging
  (economical mode: its vCPUs and memory are no longer billed, its system disk still is; pulumi_alicloud
  ecs/instance.py `stopped_mode`, help "Economical mode"). The instance stays in Pulumi's state, so a later
  `pulumi up` changes nothing and `pulumi destroy` deletes it, its disk and its role like any instance. Deleting
  itself instead would leave state naming a vanished instance (and its role attachment), which the provider's
  delete and refresh paths were not verified to accept; `auto_release_time` must lie at least 30 minutes ahead
  (pulumi_alicloud ecs/instance.py) and would be a moving input on every `pulumi up`.
- Anything that changes what a worker does (model, revision, bucket, share count, the scripts) is in its
  user-data fingerprint, so the worker is replaced and the new, running instance takes the new command: a
  stopped worker is never asked to run a command.
"""

from __future__ import annotations

import hashlib
import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Optional

import pulumi
import pulumi_alicloud as alicloud

from components.alibaba.cloud_assistant_worker import STOP_AFTER_SECONDS, check_timeout, run_on_worker, worker_api_file
from components.alibaba.host_scripts import PIP_INDEX_URL, write_file
from components.shipped_scripts import body, script
from core import versions

WORKER_SCRIPT = "llm-model-import.py"
DISK_GIB = 100  # OS, packages and PARALLEL_FILES shards in flight (ESSD PL1: 170 MB/s at 100 GiB)
# OSS RAM actions of the worker, on its prefix only. oss:PutObject authorizes PutObject and the multipart calls
# (OSS API InitiateMultipartUpload and UploadPart pages, "Permissions": oss:PutObject); oss:ListParts lets a
# resumed upload find its parts (oss2 resumable.py PartIterator); oss:GetObject for HeadObject, the check (not
# confirmed on a page read here: a refusal shows as AccessDenied in the command output).
OSS_WORKER_ACTIONS = ("oss:PutObject", "oss:AbortMultipartUpload", "oss:ListParts", "oss:GetObject")


@dataclass(frozen=True)
class ModelImportWorkersArgs:
    region: str
    bucket: pulumi.Input[str]
    endpoint: str  # the bucket's internal endpoint, e.g. oss-cn-hangzhou-internal.aliyuncs.com
    prefix: str  # object prefix of this model, e.g. models/Qwen/QwQ-32B
    model_id: str  # ModelScope id
    revision: str
    workers: int
    instance_type: str
    image_id: str
    vswitch_id: pulumi.Input[str]
    security_group_id: pulumi.Input[str]
    timeout_minutes: int  # each worker's command (and Pulumi's wait for it)
    depends_on: Sequence[pulumi.Resource] = ()  # the NAT's SNAT entries: the hub is on the internet
    tags: Mapping[str, str] = field(default_factory=dict)


def worker_script() -> str:
    return script(WORKER_SCRIPT)


def render_setup(fingerprint: str) -> str:
    """User-data: pinned packages from the internal PyPI mirror and the worker script; no secret, no bucket."""
    header = "\n".join(
        [
            "#!/bin/bash",
            f"# import: {fingerprint}",  # replaces the worker when its command changes
            f"PIP_INDEX_URL={shlex.quote(PIP_INDEX_URL)}",
            f"MODELSCOPE_HUB_VERSION={shlex.quote(versions.MODELSCOPE_HUB.value)}",
            f"OSS2_VERSION={shlex.quote(versions.OSS2.value)}",
            f"ACS_CORE_VERSION={shlex.quote(versions.ALIYUN_SDK_CORE.value)}",
            "",
        ]
    )
    return (
        header
        + worker_api_file()
        + write_file("/usr/local/bin/llm-model-import", worker_script(), "0755")
        + body("model-import-setup.sh")
    )


def render_command(
    *,
    model_id: str,
    revision: str,
    bucket: str,
    prefix: str,
    endpoint: str,
    region: str,
    worker: int,
    workers: int,
    timeout_seconds: int,
) -> str:
    header = "\n".join(
        [
            "#!/bin/bash",
            f"MODEL_ID={shlex.quote(model_id)}",
            f"REVISION={shlex.quote(revision)}",
            f"BUCKET={shlex.quote(bucket)}",
            f"PREFIX={shlex.quote(prefix)}",
            f"ENDPOINT={shlex.quote(endpoint)}",
            f"REGION={shlex.quote(region)}",
            f"WORKER={int(worker)}",
            f"WORKERS={int(workers)}",
            f"TIMEOUT_SECONDS={int(timeout_seconds)}",
            f"STOP_AFTER_SECONDS={STOP_AFTER_SECONDS}",
            "",
        ]
    )
    return header + body("model-import-worker.sh")


def worker_statements(region: str, account: str, bucket: str, prefix: str, instance_id: str) -> list[dict]:
    """Write (and check) this model's objects only, and stop this instance only."""
    return [
        {
            "Effect": "Allow",
            "Action": list(OSS_WORKER_ACTIONS),
            "Resource": [f"acs:oss:*:{account}:{bucket}/{prefix}/*"],
        },
        {
            "Effect": "Allow",
            "Action": ["ecs:StopInstance"],
            "Resource": [f"acs:ecs:{region}:{account}:instance/{instance_id}"],
        },
    ]


class ModelImportWorkers(pulumi.ComponentResource):
    invocations: list[alicloud.ecs.EcsInvocation]  # what the serving workload waits for
    instance_ids: list[pulumi.Output[str]]
    progress: pulumi.Output[str]  # a shell loop that prints each worker's command output

    def __init__(self, name: str, args: ModelImportWorkersArgs, opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__("llm:alibaba:ModelImportWorkers", name, None, opts)
        _check(args)
        tags = {**args.tags, "component": "model-import"}
        timeout_seconds = args.timeout_minutes * 60
        self.invocations, self.instance_ids = [], []
        for worker in range(args.workers):
            worker_name = f"{name}-{worker}"
            command_text = pulumi.Output.from_input(args.bucket).apply(
                lambda bucket, worker=worker: render_command(
                    model_id=args.model_id,
                    revision=args.revision,
                    bucket=bucket,
                    prefix=args.prefix,
                    endpoint=args.endpoint,
                    region=args.region,
                    worker=worker,
                    workers=args.workers,
                    timeout_seconds=timeout_seconds,
                )
            )
            fingerprint = command_text.apply(lambda text: hashlib.sha256(text.encode()).hexdigest()[:16])
            worker_run = run_on_worker(
                worker_name,
                parent=self,
                instance_type=args.instance_type,
                image_id=args.image_id,
                vswitch_id=args.vswitch_id,
                security_group_id=args.security_group_id,
                disk_gib=DISK_GIB,
                setup=fingerprint.apply(render_setup),
                statements=lambda account, instance_id: pulumi.Output.all(account, args.bucket, instance_id).apply(
                    lambda v: worker_statements(args.region, v[0], v[1], args.prefix, v[2])
                ),
                role_description="Model import worker: write one model's prefix of the bucket, stop itself",
                command=command_text,
                command_description=(
                    f"Import share {worker + 1}/{args.workers} of {args.model_id} into the model bucket"
                ),
                timeout_minutes=args.timeout_minutes,
                tags=tags,
                depends_on=args.depends_on,
            )
            self.invocations.append(worker_run.invocation)
            self.instance_ids.append(worker_run.instance.id)
        self.progress = pulumi.Output.all(*self.instance_ids).apply(lambda ids: progress_hint(args.region, ids))
        self.register_outputs({"instance_ids": self.instance_ids})


def progress_hint(region: str, instance_ids: Sequence[str]) -> str:
    """How to follow the import (docs/model-store.md): each worker's invocation output, decoded."""
    one = f"aliyun ecs DescribeInvocationResults --RegionId {region} --InstanceId {{}} --ContentEncoding PlainText"
    if len(instance_ids) == 1:
        return one.format(instance_ids[0])
    return f"for i in {' '.join(instance_ids)}; do {one.format('$i')}; done"


def _check(args: ModelImportWorkersArgs) -> None:
    if not 1 <= args.workers:
        raise ValueError(f"workers must be at least 1, got {args.workers}")
    check_timeout(args.timeout_minutes)  # before the first worker
    parts = args.prefix.split("/")
    if not args.prefix or args.prefix.startswith("/") or "" in parts or ".." in parts:
        raise ValueError(f"prefix must be a relative object prefix, got {args.prefix!r}")
