"""The GCS model bucket, the workload identity that may use it, and GCS FUSE volumes over it.

Pods reach the bucket as one of two dedicated Kubernetes service accounts: an IAM binding on the bucket
names each account's workload identity principal, so no key exists anywhere, and other pods of the
namespace (which run as `default`) get nothing. Pods that only read (serving) run as MODEL_SERVICE_ACCOUNT
with roles/storage.objectViewer; pods that write (the import, the benchmark's results) run as
MODEL_WRITER_ACCOUNT with roles/storage.objectUser, so a serving pod cannot overwrite or delete the weights.
(GCS FUSE CSI driver docs/authentication.md grants either role; objectCreator would not do for the
writers: GCS FUSE and huggingface_hub also read, list and delete the files they write.)

Pods mount the bucket with GKE's GCS FUSE CSI driver, whose sidecar the driver's webhook injects into
pods that carry the `gke-gcsfuse/volumes` annotation; `gcsfuse_pod_transformation` adds it, and the
service account, to every pod template that mounts such a volume, so the shared components need not know
about GKE.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Optional

import pulumi
import pulumi_gcp as gcp

GCSFUSE_DRIVER = "gcsfuse.csi.storage.gke.io"
# Sidecar annotations (GKE "Cloud Storage FUSE CSI driver" docs): inject it, and do not cap its CPU,
# memory or ephemeral storage: it streams ~700 GB and caches files on the node's local SSD.
SIDECAR_ANNOTATIONS = {
    "gke-gcsfuse/volumes": "true",
    "gke-gcsfuse/cpu-limit": "0",
    "gke-gcsfuse/memory-limit": "0",
    "gke-gcsfuse/ephemeral-storage-limit": "0",
}
# The Kubernetes service accounts of the pods that mount the bucket: read-only (serving), and read-write (the
# import and the benchmark's results).
MODEL_SERVICE_ACCOUNT = "llm-models"
MODEL_WRITER_ACCOUNT = "llm-models-writer"
READER_ROLE = "roles/storage.objectViewer"
WRITER_ROLE = "roles/storage.objectUser"
MODELS_DIR = "models"
RESULTS_DIR = "benchmarks"


@dataclass(frozen=True)
class GcsModelStoreArgs:
    project: str
    region: str  # the cluster's region: reads stay in-region
    project_number: pulumi.Input[str]
    workload_pool: str  # <project>.svc.id.goog
    namespace: pulumi.Input[str]
    reader_account: str = MODEL_SERVICE_ACCOUNT  # the KSA of the pods that only read the bucket
    writer_account: str = MODEL_WRITER_ACCOUNT  # the KSA of the pods that write to it
    bucket_name: Optional[str] = None  # None: generated from the resource name
    retain: bool = False  # keep the bucket (and the weights) on `pulumi destroy`
    # Use an existing bucket (kept by an earlier stack) named bucket_name: no Bucket resource, so this stack
    # neither creates nor deletes it; the bindings below still give this stack's pods access.
    adopt: bool = False
    labels: Mapping[str, str] = field(default_factory=dict)
    depends_on: Sequence[pulumi.Resource] = ()  # the enabled APIs (storage): every child waits for them
    # What the workload identity bindings wait for besides (the cluster, which brings the pool <project>.svc.id.goog
    # they name); the bucket does not wait for it, so what needs only the bucket (the import) can start at once.
    principals_ready: Sequence[pulumi.Resource] = ()


def workload_principal(
    project_number: pulumi.Input[str], workload_pool: str, namespace: pulumi.Input[str], service_account: str
) -> pulumi.Output[str]:
    """IAM principal of a Kubernetes service account under GKE workload identity federation."""
    return pulumi.Output.concat(
        "principal://iam.googleapis.com/projects/",
        project_number,
        "/locations/global/workloadIdentityPools/",
        workload_pool,
        "/subject/ns/",
        namespace,
        "/sa/",
        service_account,
    )


class GcsModelStore(pulumi.ComponentResource):
    bucket: pulumi.Output[str]
    reader_binding: gcp.storage.BucketIAMMember
    writer_binding: gcp.storage.BucketIAMMember

    def __init__(self, name: str, args: GcsModelStoreArgs, opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__("llm:gcp:GcsModelStore", name, None, opts)
        if args.adopt and not args.bucket_name:
            raise ValueError("adopt needs bucket_name: the existing bucket to use")
        self.bucket = (
            pulumi.Output.from_input(args.bucket_name)
            if args.adopt and args.bucket_name
            else self._bucket(name, args).name
        )
        # On this bucket only: read for serving, read-write for the import and the benchmark.
        self.reader_binding, self.writer_binding = (
            gcp.storage.BucketIAMMember(
                f"{name}-{suffix}",
                bucket=self.bucket,
                role=role,
                member=workload_principal(args.project_number, args.workload_pool, args.namespace, account),
                opts=pulumi.ResourceOptions(parent=self, depends_on=[*args.depends_on, *args.principals_ready]),
            )
            for suffix, role, account in (
                ("workload", READER_ROLE, args.reader_account),
                ("writer", WRITER_ROLE, args.writer_account),
            )
        )
        self.register_outputs({"bucket": self.bucket})

    def _bucket(self, name: str, args: GcsModelStoreArgs) -> gcp.storage.Bucket:
        return gcp.storage.Bucket(
            f"{name}-bucket",
            project=args.project,
            name=args.bucket_name,
            location=args.region.upper(),
            uniform_bucket_level_access=True,
            public_access_prevention="enforced",
            # A retained bucket keeps its weights; otherwise destroy empties it instead of failing on objects.
            force_destroy=not args.retain,
            # No soft delete: by default deleted and overwritten objects stay, billed, for 7 days (pulumi_gcp:
            # "To disable the soft delete policy on a bucket, This field must be set to 0"), which would bill
            # ~700 GB for a week after a destroy or a re-import. The weights can be downloaded again.
            soft_delete_policy={"retention_duration_seconds": 0},
            labels=dict(args.labels),
            opts=pulumi.ResourceOptions(parent=self, retain_on_delete=args.retain, depends_on=list(args.depends_on)),
        )


def gcsfuse_volume(bucket: pulumi.Input[str], directory: str, read_only: bool, file_cache: bool) -> dict:
    """A CSI ephemeral volume of one bucket directory; the file cache lives on the node's local SSD."""
    options = ["implicit-dirs", f"only-dir={directory}"]
    attributes: dict = {"bucketName": bucket}
    if file_cache:
        # Parallel downloads fill the cache with large files (safetensors shards) at full bandwidth.
        options += ["file-cache:enable-parallel-downloads:true", "file-cache:cache-file-for-range-read:true"]
        attributes["fileCacheCapacity"] = "-1"  # all of the cache volume (local SSD ephemeral storage)
    attributes["mountOptions"] = ",".join(options)
    return {"csi": {"driver": GCSFUSE_DRIVER, "readOnly": read_only, "volumeAttributes": attributes}}


def _pod_templates(props: Mapping[str, Any]) -> list[dict]:
    spec = props.get("spec")
    if not isinstance(spec, dict):
        return []
    found = []
    for holder in (spec, spec.get("leaderWorkerTemplate") or {}):
        for key in ("template", "leaderTemplate", "workerTemplate"):
            if isinstance(holder, dict) and isinstance(holder.get(key), dict):
                found.append(holder[key])
    return found


def _mounts_gcsfuse(template: dict) -> bool:
    volumes = (template.get("spec") or {}).get("volumes") or []
    return any(isinstance(v, dict) and (v.get("csi") or {}).get("driver") == GCSFUSE_DRIVER for v in volumes)


def _writes(template: dict) -> bool:
    volumes = (template.get("spec") or {}).get("volumes") or []
    return any(
        isinstance(v, dict) and (v.get("csi") or {}).get("driver") == GCSFUSE_DRIVER and not v["csi"].get("readOnly")
        for v in volumes
    )


def gcsfuse_pod_transformation(
    args: pulumi.ResourceTransformationArgs,
) -> Optional[pulumi.ResourceTransformationResult]:
    """Every pod template (Job, Deployment, LeaderWorkerSet) with a GCS FUSE volume gets the sidecar
    annotations and runs as one of the identities the bucket trusts: MODEL_WRITER_ACCOUNT when it mounts a
    writable GCS FUSE volume, else MODEL_SERVICE_ACCOUNT (read-only).

    A (legacy, in-process) resource transformation: it runs inside the program, on the children of the
    component it is given to, so the result is what gets registered (and what tests see).
    """
    templates = [t for t in _pod_templates(args.props) if _mounts_gcsfuse(t)]
    if not templates:
        return None
    for template in templates:
        metadata = template.setdefault("metadata", {})
        metadata["annotations"] = {**(metadata.get("annotations") or {}), **SIDECAR_ANNOTATIONS}
        template["spec"]["serviceAccountName"] = MODEL_WRITER_ACCOUNT if _writes(template) else MODEL_SERVICE_ACCOUNT
    return pulumi.ResourceTransformationResult(args.props, args.opts)
