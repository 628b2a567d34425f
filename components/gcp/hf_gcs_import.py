"""The model import on gke: a Cloud Run job copies the model from Hugging Face into the GCS bucket, run by
`pulumi up` as soon as the bucket exists, beside the cluster and the GPU node pool (it needs neither).

Why a Cloud Run job (docs/targets/gke-import.md has the comparison):
- It runs at `pulumi up` and `pulumi up` waits for it: with `run_execution_token` the provider creates an
  execution when the job is created (or the token changes) and "The Job will become ready when the execution is
  successfully completed" (pulumi_gcp cloudrunv2/job.py). A Compute Engine VM would be ready once RUNNING and
  need a separate poller; pulumi_gcp 10.2.0 has no Batch resource at all.
- It bills for CPU and memory while its tasks run (prices not looked up here) and holds nothing afterwards: no
  VM to stop, no disk. `pulumi destroy` deletes the job (deletion_protection off; the provider's default would refuse).
- Its limits fit the model when it is split: 8 vCPU and 32 GiB per task at most ("The maximum amount of memory
  you can configure is 32 gibibyte", run/docs/configuring/jobs/memory-limits; CPU '1','2','4','6','8', pulumi_gcp
  JobTemplateTemplateContainerResources), a task timeout of up to 168 hours ("up to 168 hours (7 days)",
  run/docs/configuring/task-timeout; "There is no explicit timeout on a job execution"). Its file system is in
  memory ("Writing files to the filesystem" counts towards memory), so a task holds a few files at a time and
  never the model: each of `workers` tasks copies its share (components/scripts/hf-to-gcs.py), file by file.

Identity: a service account of its own, with roles/storage.objectUser on this bucket only and, for a gated
model, roles/secretmanager.secretAccessor on the token's secret only; no key is created. The token reaches the
task as a Secret Manager reference, never as a plain value in the job's spec.

The image is the slim Python image (core.versions.IMPORT_IMAGE) through the Artifact Registry remote repository
of the cluster's region. Cloud Run's service agent pulls it without a grant of the stack's: "Default service
accounts for Compute Engine, GKE nodes, Cloud Run, and Cloud Build are granted permissions to interact with
Artifact Registry repositories in the same project, unless automatic role granting is disabled" (Artifact
Registry docs, "Work with container images"); not tried with a remote repository here. The task installs the
pinned huggingface_hub and google-cloud-storage with pip.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import pulumi
import pulumi_gcp as gcp

from core import versions

SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "hf-to-gcs.py"
# One task: the most Cloud Run gives a job task (see above).
TASK_CPU = 8
TASK_MEMORY_GIB = 32
MAX_TASK_TIMEOUT_HOURS = 168
MAX_RETRIES = 3  # Cloud Run's default; a retried task keeps the files it already uploaded
# Files downloaded at once per task: with R1's ~4.3 GB shards about 17 GB of the 32 GiB; the script also keeps
# the files in memory under half the task's memory.
PARALLEL_FILES = 4
RUN_SCRIPT = "import os; exec(compile(os.environ['IMPORT_SCRIPT'], 'hf-to-gcs.py', 'exec'))"
MANIFESTS_DIR = "imports"  # outside the serving pods' only-dir=models view of the bucket
# The task's downloader and storage client (pip, from PyPI): huggingface_hub's model_info(files_metadata=True)
# gives every file's size and sha256; google-cloud-storage's transfer_manager.upload_chunks_concurrently is the
# XML multipart upload in parallel parts (and sends the object's metadata as x-goog-meta-* headers).
GCS_CLIENT = versions.Pin("3.17.1", "pypi.org/project/google-cloud-storage", "2026-12-01")
PACKAGES = f"huggingface_hub[hf_xet]=={versions.HUGGINGFACE_HUB.value} google-cloud-storage=={GCS_CLIENT.value}"
# Hugging Face's Xet downloader: no chunk cache (each file is read once, and the file system is memory), and its
# high-performance mode (concurrent downloads 8 -> 100: xet-core constants.rs; huggingface_hub docs
# environment_variables.md: "analogous to setting HF_HUB_ENABLE_HF_TRANSFER=True").
HF_ENV = {
    "HF_XET_CHUNK_CACHE_SIZE_BYTES": "0",
    "HF_XET_HIGH_PERFORMANCE": "1",
    "HF_HUB_DISABLE_TELEMETRY": "1",
    "HF_HOME": "/tmp/hf",
}


@dataclass(frozen=True)
class HfGcsImportArgs:
    project: str
    region: str  # the bucket's and the cluster's region
    bucket: pulumi.Input[str]
    model_id: str  # Hugging Face repo id
    revision: str
    prefix: str  # the model's directory in the bucket, e.g. models/deepseek-ai/DeepSeek-R1
    image: str  # the slim Python image, through the regional remote repository
    workers: int  # Cloud Run tasks, each copying its share (core.durations.gke_import_tasks)
    task_timeout_minutes: int  # each attempt of a task
    wait_minutes: int  # how long `pulumi up` waits for the execution
    account_id: str  # the import's service account id (6-30 characters)
    token: Optional[pulumi.Input[str]] = None  # the Hugging Face token, a Pulumi secret; None: anonymous
    labels: Mapping[str, str] = field(default_factory=dict)
    depends_on: Sequence[pulumi.Resource] = ()  # the enabled APIs: every child waits for them
    image_ready: Sequence[pulumi.Resource] = ()  # the repository the image comes through


def execution_token(args: HfGcsImportArgs) -> str:
    """A new execution when what it copies or how changes; the same token, no new execution (a re-run of
    `pulumi up` does not start the import again; the job's next execution finds the files and only checks them)."""
    text = "\n".join((args.model_id, args.revision, args.prefix, str(args.workers), PACKAGES, SCRIPT.read_text()))
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def task_env(args: HfGcsImportArgs) -> dict[str, pulumi.Input[str]]:
    return {
        "MODEL_ID": args.model_id,
        "REVISION": args.revision,
        "BUCKET": args.bucket,
        "PREFIX": args.prefix,
        "MANIFESTS": f"{MANIFESTS_DIR}/{args.prefix.split('/', 1)[-1]}",
        "MEMORY_BYTES": str(TASK_MEMORY_GIB * 1024**3),
        "PARALLEL_FILES": str(PARALLEL_FILES),
        "PACKAGES": PACKAGES,
        "IMPORT_SCRIPT": SCRIPT.read_text(),
        **HF_ENV,
    }


class HfGcsImport(pulumi.ComponentResource):
    job: gcp.cloudrunv2.Job  # the serving workload depends on it: ready once the execution has succeeded
    account: gcp.serviceaccount.Account
    writer: gcp.storage.BucketIAMMember

    def __init__(self, name: str, args: HfGcsImportArgs, opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__("llm:gcp:HfGcsImport", name, None, opts)
        apis = list(args.depends_on)
        child = pulumi.ResourceOptions(parent=self, depends_on=apis)
        self.account = gcp.serviceaccount.Account(
            f"{name}-account",
            project=args.project,
            account_id=args.account_id,
            display_name="LLM model import (Cloud Run job)",
            opts=child,
        )
        member = pulumi.Output.concat("serviceAccount:", self.account.email)
        # On this bucket only: objectUser creates, reads, lists and replaces the model's objects.
        self.writer = gcp.storage.BucketIAMMember(
            f"{name}-writer", bucket=args.bucket, role="roles/storage.objectUser", member=member, opts=child
        )
        grants: list[pulumi.Resource] = [self.writer]
        env: list[gcp.cloudrunv2.JobTemplateTemplateContainerEnvArgsDict] = [
            {"name": k, "value": v} for k, v in task_env(args).items()
        ]
        if args.token is not None:
            secret = gcp.secretmanager.Secret(
                f"{name}-hf-token",
                project=args.project,
                secret_id=f"{args.account_id}-hf-token",
                replication={"user_managed": {"replicas": [{"location": args.region}]}},
                labels=dict(args.labels),
                opts=child,
            )
            # The execution reads the version "latest": the job waits for it to exist.
            grants.append(
                gcp.secretmanager.SecretVersion(
                    f"{name}-hf-token-version",
                    secret=secret.id,
                    secret_data=pulumi.Output.secret(args.token),
                    opts=child,
                )
            )
            grants.append(
                gcp.secretmanager.SecretIamMember(
                    f"{name}-hf-token-reader",
                    project=args.project,
                    secret_id=secret.secret_id,
                    role="roles/secretmanager.secretAccessor",
                    member=member,
                    opts=child,
                )
            )
            env.append(
                {
                    "name": "HF_TOKEN",
                    "value_source": {"secret_key_ref": {"secret": secret.secret_id, "version": "latest"}},
                }
            )
        wait, token = f"{args.wait_minutes}m", execution_token(args)
        self.job = gcp.cloudrunv2.Job(
            f"{name}-job",
            project=args.project,
            location=args.region,
            # "The sum of job name and token length must be fewer than 63 characters" (run_execution_token).
            name=name[: 62 - len(token)].rstrip("-"),
            deletion_protection=False,
            labels=dict(args.labels),
            run_execution_token=token,
            template={
                "task_count": args.workers,
                "parallelism": args.workers,
                "labels": dict(args.labels),
                "template": {
                    "service_account": self.account.email,
                    "timeout": f"{args.task_timeout_minutes * 60}s",
                    "max_retries": MAX_RETRIES,
                    "execution_environment": "EXECUTION_ENVIRONMENT_GEN2",
                    "containers": [
                        {
                            "image": args.image,
                            # The script travels in an environment variable (at most 32768 characters, pulumi_gcp
                            # JobTemplateTemplateContainerEnv), where Cloud Run expands no $(VAR) references.
                            "commands": ["python3", "-c", RUN_SCRIPT],
                            "envs": env,
                            "resources": {"limits": {"cpu": str(TASK_CPU), "memory": f"{TASK_MEMORY_GIB}Gi"}},
                        }
                    ],
                },
            },
            opts=pulumi.ResourceOptions(
                parent=self,
                depends_on=[*apis, *grants, *args.image_ready],
                custom_timeouts=pulumi.CustomTimeouts(create=wait, update=wait),
            ),
        )
        self.register_outputs({"job": self.job.name, "serviceAccount": self.account.email})
