#!/usr/bin/python3
"""Imports one share of a ModelScope model into the OSS model bucket, on a short-lived ECS worker.

Run by the worker's Cloud Assistant command (model-import-worker.sh) as
  llm-model-import run MODEL_ID REVISION BUCKET PREFIX ENDPOINT WORKER WORKERS
and, once that succeeded, as `llm-model-import stop-self REGION` (the worker stops itself, StopCharging).

- The file list, sizes and SHA-256 come from the hub (modelscope_hub HubApi.list_repo_files). Every worker
  computes the same partition (largest file first, to the worker with the fewest bytes so far) and takes its
  share, so N workers need no coordination.
- A file is skipped when its object exists with the hub's size and the SHA-256 recorded on it at upload
  (x-oss-meta-sha256): a re-run with the weights present downloads nothing; it only checks them.
- Otherwise the file is downloaded (ModelScope verifies its SHA-256; in the regions ModelScope serves from OSS
  the bytes come over the region's internal network, modelscope_hub _download.py `x-aliyun-region-id`) and
  uploaded with OSS multipart (oss2.resumable_upload, parallel parts) to the internal endpoint, then deleted.
- When its share is complete the worker writes its manifest, PREFIX/.llm-import/worker-I-of-N.json: the model,
  revision and every file of the share with the hub's size and SHA-256.
- Credentials: the instance's RAM role from the metadata service (temporary STS credentials, renewed by the
  SDK); the role may write only PREFIX/* and stop only this instance. No long-lived key exists anywhere.
"""

# pyright: reportMissingImports=false
# (oss2, aliyunsdkcore and modelscope_hub are installed on the worker, not in the test environment)
from __future__ import annotations

import concurrent.futures
import hashlib
import json
import os
import sys
from collections.abc import Callable, Iterable
from typing import Optional

from llm_worker_api import METADATA, metadata, stop_self  # beside this script (components/scripts, /usr/local/bin)

LIB = "/opt/llm-import/lib"
SCRATCH = "/var/lib/llm-import/scratch"
MANIFEST_DIR = ".llm-import"
SHA256_HEADER = "x-oss-meta-sha256"
PARALLEL_FILES = 4  # files in flight at once: ~4 shards of scratch disk
PART_BYTES = 64 * 1024 * 1024  # multipart part size (OSS parts: 100 KB - 5 GB, at most 10,000 parts)
UPLOAD_THREADS = 4  # parts uploaded at once per file

File = dict  # {"path": str, "size": int, "sha256": str}  ("" when the hub gives none)
Head = Callable[[str], Optional[tuple[int, str]]]  # object key -> (size, recorded sha256) or None


def partition(files: Iterable[File], workers: int) -> list[list[File]]:
    """The files split over `workers` shares of about equal bytes; the same on every worker."""
    if workers < 1:
        raise ValueError(f"workers must be at least 1, got {workers}")
    shares: list[list[File]] = [[] for _ in range(workers)]
    loads = [0] * workers
    for f in sorted(files, key=lambda f: (-int(f["size"]), f["path"])):
        i = min(range(workers), key=lambda k: (loads[k], k))
        shares[i].append(f)
        loads[i] += int(f["size"])
    return shares


def object_key(prefix: str, path: str) -> str:
    return f"{prefix.rstrip('/')}/{path}"


def manifest_key(prefix: str, worker: int, workers: int) -> str:
    return object_key(prefix, f"{MANIFEST_DIR}/worker-{worker}-of-{workers}.json")


def present(f: File, head: Head, prefix: str) -> bool:
    """The object is there with the hub's size and (when the hub gives one) the hub's SHA-256."""
    found = head(object_key(prefix, f["path"]))
    if found is None:
        return False
    size, sha256 = found
    return size == int(f["size"]) and (not f["sha256"] or sha256 == f["sha256"])


def missing(share: Iterable[File], head: Head, prefix: str) -> list[File]:
    """The files of a share that still need importing: a re-run with the weights present gets []."""
    return [f for f in share if not present(f, head, prefix)]


def manifest(model_id: str, revision: str, worker: int, workers: int, share: Iterable[File]) -> str:
    files = [{"path": f["path"], "size": int(f["size"]), "sha256": f["sha256"]} for f in share]
    document = {"model": model_id, "revision": revision, "worker": worker, "workers": workers, "files": files}
    return json.dumps(document, indent=1, sort_keys=True) + "\n"


def sha256_of(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(8 * 1024 * 1024), b""):
            digest.update(block)
    return digest.hexdigest()


# --- On the worker: the hub, OSS and the metadata service ---------------------------------------------------


def hub_files(model_id: str, revision: str) -> list[File]:
    from modelscope_hub import HubApi

    listing = HubApi().list_repo_files(model_id, "model", revision=revision, recursive=True)
    return [{"path": f.path, "size": int(f.size), "sha256": f.sha256 or ""} for f in listing if f.type != "tree"]


def _bucket(bucket: str, endpoint: str, region: str):
    """The bucket as the worker's RAM role, signed with OSS's V4 signature: OSS refuses V1 for buckets created
    since 2025-09-01 (OSS "Guidelines for upgrading V1 signatures to V4 signatures"); V4 needs the region."""
    import oss2
    from oss2.credentials import EcsRamRoleCredentialsProvider

    role = metadata("ram/security-credentials/")
    provider = EcsRamRoleCredentialsProvider(f"{METADATA}/ram/security-credentials/{role}")
    return oss2.Bucket(oss2.ProviderAuthV4(provider), f"https://{endpoint}", bucket, region=region)


def _head(bucket) -> Head:
    import oss2

    def head(key: str) -> Optional[tuple[int, str]]:
        try:
            result = bucket.head_object(key)
        except oss2.exceptions.NotFound:
            return None
        return int(result.content_length), result.headers.get(SHA256_HEADER, "")

    return head


def _import_file(bucket, model_id: str, revision: str, prefix: str, f: File) -> None:
    import oss2
    from modelscope_hub import HubApi

    local = HubApi().download_file(
        model_id, "model", f["path"], revision=revision, local_dir=SCRATCH, expected_sha256=f["sha256"] or None
    )
    sha256 = f["sha256"] or sha256_of(str(local))
    key = object_key(prefix, f["path"])
    oss2.resumable_upload(
        bucket,
        key,
        str(local),
        store=oss2.ResumableStore(root=os.path.dirname(SCRATCH)),
        headers={SHA256_HEADER: sha256},
        multipart_threshold=PART_BYTES,
        part_size=PART_BYTES,
        num_threads=UPLOAD_THREADS,
    )
    os.remove(local)
    if _head(bucket)(key) != (int(f["size"]), sha256):
        raise RuntimeError(f"{key}: the uploaded object does not match the hub's size and SHA-256")
    print(f"imported {f['path']} ({int(f['size']) / 1e9:.2f} GB)", flush=True)


def run(
    model_id: str, revision: str, bucket_name: str, prefix: str, endpoint: str, region: str, worker: int, workers: int
) -> int:
    share = partition(hub_files(model_id, revision), workers)[worker]
    bucket = _bucket(bucket_name, endpoint, region)
    todo = missing(share, _head(bucket), prefix)
    total = sum(int(f["size"]) for f in share) / 1e9
    print(f"worker {worker}/{workers}: {len(share)} files ({total:.1f} GB), {len(todo)} to import", flush=True)
    os.makedirs(SCRATCH, exist_ok=True)
    with concurrent.futures.ThreadPoolExecutor(PARALLEL_FILES) as pool:
        for done in concurrent.futures.as_completed(
            [pool.submit(_import_file, bucket, model_id, revision, prefix, f) for f in todo]
        ):
            done.result()  # the first failure fails the command (Cloud Assistant reports it)
    bucket.put_object(manifest_key(prefix, worker, workers), manifest(model_id, revision, worker, workers, share))
    print(f"worker {worker}/{workers}: share complete" + ("" if todo else " (already present: checked only)"))
    return 0


def main(argv: list[str]) -> int:
    sys.path.insert(0, LIB)
    if len(argv) == 10 and argv[1] == "run":
        model_id, revision, bucket, prefix, endpoint, region, worker, workers = argv[2:]
        return run(model_id, revision, bucket, prefix, endpoint, region, int(worker), int(workers))
    if len(argv) == 3 and argv[1] == "stop-self":
        return stop_self(argv[2])
    print("usage: llm-model-import run MODEL_ID REVISION BUCKET PREFIX ENDPOINT REGION WORKER WORKERS", file=sys.stderr)
    print("       llm-model-import stop-self REGION", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
