#!/usr/bin/env python3
"""One import task's share of a Hugging Face model, copied into a GCS bucket (components/gcp/hf_gcs_import.py).

Runs as a task of a Cloud Run job: Cloud Run sets CLOUD_RUN_TASK_INDEX and CLOUD_RUN_TASK_COUNT, the job sets
MODEL_ID, REVISION, BUCKET, PREFIX (the model's directory in the bucket), MANIFESTS (where the tasks' manifests
go), MEMORY_BYTES (the task's memory: its file system is in memory), PACKAGES (pinned pip requirements) and,
for gated models, HF_TOKEN (from Secret Manager).

1. The hub's metadata of the revision, resolved to a commit: every file with its size and checksum (the sha256
   of LFS files, the git blob id of the others).
2. This task's share: the files balanced by size over the tasks (largest first onto the lightest task). Every
   task computes the same split from the same list, so the shares cover the model exactly once.
3. A file whose object is in the bucket with the hub's size and checksum (the object's metadata, written at
   upload) is kept: a re-run with the weights present reads metadata only. Any other file is downloaded into the
   task's memory, checked against the hub's checksum, uploaded in parallel parts (the transfer manager's XML
   multipart upload for large files) and deleted from memory. At most MEMORY_BYTES / 2 of files are held at once.
4. The task's manifest (MANIFESTS/task-<i>-of-<n>.json) lists each of its files with its size, checksum and
   object generation, written once all of them are in the bucket.

A failure exits non-zero: Cloud Run retries the task (its files already uploaded are kept) and the job's
execution fails after the retries, which fails `pulumi up` (the serving workload is not created).
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

CHECKSUM_KEY = "hf-checksum"  # object metadata: "sha256:<hex>" or "git-sha1:<hex>", as the hub states it
MULTIPART_FROM = 256 * 1024 * 1024  # larger files go up in parallel parts
PART_BYTES = 64 * 1024 * 1024
UPLOAD_WORKERS = 8
READ_BYTES = 16 * 1024 * 1024


@dataclass(frozen=True)
class HubFile:
    name: str
    size: int
    checksum: str  # "sha256:<hex>" (LFS) or "git-sha1:<hex>" (git blob id)


def hub_files(siblings) -> list[HubFile]:
    """The revision's files from huggingface_hub's RepoSibling list (model_info(files_metadata=True))."""
    files = []
    for s in siblings:
        if s.size is None:
            raise RuntimeError(f"the hub gave no size for {s.rfilename}")
        if s.lfs is not None:
            checksum = f"sha256:{s.lfs.sha256}"
        elif s.blob_id:
            checksum = f"git-sha1:{s.blob_id}"
        else:
            raise RuntimeError(f"the hub gave no checksum for {s.rfilename}")
        files.append(HubFile(s.rfilename, int(s.size), checksum))
    return files


def share(files: list[HubFile], index: int, count: int) -> list[HubFile]:
    """Task `index`'s files: largest first onto the task with the fewest bytes so far (ties: lowest index)."""
    if not 0 <= index < count:
        raise ValueError(f"task index {index} is not in 0..{count - 1}")
    loads = [0] * count
    mine = []
    for f in sorted(files, key=lambda f: (-f.size, f.name)):
        task = min(range(count), key=lambda t: (loads[t], t))
        loads[task] += f.size
        if task == index:
            mine.append(f)
    return mine


def file_checksum(path: str, kind: str, size: int) -> str:
    if kind == "sha256":
        digest = hashlib.sha256()
    elif kind == "git-sha1":
        digest = hashlib.sha1(usedforsecurity=False)
        digest.update(b"blob %d\0" % size)
    else:
        raise ValueError(f"unknown checksum kind {kind}")
    with open(path, "rb") as stream:
        while chunk := stream.read(READ_BYTES):
            digest.update(chunk)
    return f"{kind}:{digest.hexdigest()}"


def present(blob, f: HubFile) -> bool:
    """The object holds the hub's file: its size and the checksum recorded at upload match the hub's."""
    return blob is not None and blob.size == f.size and (blob.metadata or {}).get(CHECKSUM_KEY) == f.checksum


class MemoryBudget:
    """At most `limit` bytes of files in memory at once; a file larger than the limit runs alone."""

    def __init__(self, limit: int):
        self.limit, self.used = limit, 0
        self.cond = threading.Condition()

    def take(self, size: int) -> None:
        with self.cond:
            self.cond.wait_for(lambda: self.used == 0 or self.used + size <= self.limit)
            self.used += size

    def give(self, size: int) -> None:
        with self.cond:
            self.used -= size
            self.cond.notify_all()


class Task:
    def __init__(self, env, bucket, download, upload, log=print):
        self.bucket, self.download, self.upload, self.log = bucket, download, upload, log
        self.prefix = env["PREFIX"].strip("/")
        self.index, self.count = int(env.get("CLOUD_RUN_TASK_INDEX", "0")), int(env.get("CLOUD_RUN_TASK_COUNT", "1"))
        self.manifest_name = f"{env['MANIFESTS'].strip('/')}/task-{self.index}-of-{self.count}.json"
        self.budget = MemoryBudget(int(env["MEMORY_BYTES"]) // 2)
        self.lock = threading.Lock()
        self.entries: dict[str, dict] = {}
        self.kept = self.copied = 0

    def object_name(self, f: HubFile) -> str:
        return f"{self.prefix}/{f.name}"

    def run(self, model_id: str, commit: str, files: list[HubFile], workdir: str, parallel: int) -> None:
        mine = share(files, self.index, self.count)
        total = sum(f.size for f in mine)
        self.log(f"task {self.index}/{self.count}: {len(mine)} of {len(files)} files, {total / 1e9:.1f} GB")
        with ThreadPoolExecutor(max_workers=max(1, parallel)) as pool:
            for future in [pool.submit(self.one, f, commit, workdir) for f in mine]:
                future.result()  # the first failure fails the task
        self.write_manifest(model_id, commit)
        self.log(f"task {self.index}: done, {self.kept} files already present, {self.copied} copied")

    def one(self, f: HubFile, commit: str, workdir: str) -> None:
        blob = self.bucket.get_blob(self.object_name(f))
        if present(blob, f):
            self.record(f, blob.generation, copied=False)
            return
        started = time.monotonic()
        self.budget.take(f.size)
        try:
            path = self.download(f.name, commit, workdir)
            try:
                got = file_checksum(path, f.checksum.split(":", 1)[0], f.size)
                if os.path.getsize(path) != f.size or got != f.checksum:
                    raise RuntimeError(f"{f.name}: downloaded {got}, {os.path.getsize(path)} bytes; hub: {f}")
                blob = self.upload(path, self.object_name(f), f)
            finally:
                os.remove(path)
        finally:
            self.budget.give(f.size)
        if blob.size != f.size or (blob.metadata or {}).get(CHECKSUM_KEY) != f.checksum:
            raise RuntimeError(f"{f.name}: the bucket holds {blob.size} bytes, {blob.metadata}; hub: {f}")
        seconds = max(time.monotonic() - started, 1e-6)
        self.log(f"{f.name}: {f.size / 1e9:.2f} GB in {seconds:.0f} s ({f.size / 1e6 / seconds:.0f} MB/s)")
        self.record(f, blob.generation, copied=True)

    def record(self, f: HubFile, generation, copied: bool) -> None:
        with self.lock:
            self.entries[f.name] = {"size": f.size, "checksum": f.checksum, "generation": str(generation)}
            self.copied += copied
            self.kept += not copied

    def write_manifest(self, model_id: str, commit: str) -> None:
        with self.lock:
            body = {
                "model": model_id,
                "commit": commit,
                "complete": True,
                "files": dict(sorted(self.entries.items())),
            }
        self.bucket.blob(self.manifest_name).upload_from_string(json.dumps(body, indent=1), "application/json")


def install(packages: str) -> None:
    """The downloader and the storage client, pinned, into the task's (in-memory) file system."""
    command = [sys.executable, "-m", "pip", "install", "--quiet", "--no-cache-dir", "--root-user-action=ignore"]
    subprocess.run([*command, *packages.split()], check=True)


def main() -> None:
    env = dict(os.environ)
    install(env["PACKAGES"])
    from google.cloud import storage  # type: ignore[import-not-found]
    from google.cloud.storage import transfer_manager  # type: ignore[import-not-found]
    from huggingface_hub import HfApi, hf_hub_download  # type: ignore[import-not-found]

    token = env.get("HF_TOKEN") or None
    info = HfApi().model_info(env["MODEL_ID"], revision=env["REVISION"], files_metadata=True, token=token)
    files = hub_files(info.siblings or [])
    bucket = storage.Client().bucket(env["BUCKET"])

    def download(name: str, commit: str, workdir: str) -> str:
        return hf_hub_download(env["MODEL_ID"], name, revision=commit, local_dir=workdir, token=token)

    def upload(path: str, object_name: str, f: HubFile):
        blob = bucket.blob(object_name)
        blob.metadata = {CHECKSUM_KEY: f.checksum, "hf-commit": info.sha or ""}
        if f.size >= MULTIPART_FROM:
            transfer_manager.upload_chunks_concurrently(
                path, blob, chunk_size=PART_BYTES, worker_type=transfer_manager.THREAD, max_workers=UPLOAD_WORKERS
            )
        else:
            blob.upload_from_filename(path)
        return bucket.get_blob(object_name)

    task = Task(env, bucket, download, upload, log=lambda message: print(message, flush=True))
    with tempfile.TemporaryDirectory(dir=env.get("WORKDIR", "/tmp")) as workdir:
        task.run(env["MODEL_ID"], info.sha or env["REVISION"], files, workdir, int(env.get("PARALLEL_FILES", "4")))


if __name__ == "__main__":
    main()
