"""gke's import worker (components/scripts/hf-to-gcs.py): each Cloud Run task's share, the checks against the hub's
metadata, and a re-run with the weights present that downloads nothing. The hub and the bucket are fakes here."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import sys
import threading
from pathlib import Path
from types import SimpleNamespace

import pytest

SCRIPT = Path(__file__).resolve().parent.parent / "components" / "scripts" / "hf-to-gcs.py"
spec = importlib.util.spec_from_file_location("hf_to_gcs", SCRIPT)
assert spec and spec.loader
hf_to_gcs = importlib.util.module_from_spec(spec)
sys.modules[spec.name] = hf_to_gcs  # dataclasses look their module up
spec.loader.exec_module(hf_to_gcs)
HubFile = hf_to_gcs.HubFile


class FakeBlob:
    def __init__(self, bucket, name):
        self.bucket, self.name = bucket, name
        self.size, self.metadata, self.generation = None, None, None

    def upload_from_string(self, data, content_type=None):
        self.bucket.objects[self.name] = (data.encode(), {}, next(self.bucket.generations))


class FakeBucket:
    def __init__(self):
        self.objects: dict[str, tuple[bytes, dict, int]] = {}
        self.generations = iter(range(1, 10_000))
        self.lock = threading.Lock()

    def blob(self, name):
        return FakeBlob(self, name)

    def get_blob(self, name):
        if name not in self.objects:
            return None
        data, metadata, generation = self.objects[name]
        blob = FakeBlob(self, name)
        blob.size, blob.metadata, blob.generation = len(data), dict(metadata), generation
        return blob


CONTENT = {
    "config.json": b'{"architectures": ["DeepseekV3ForCausalLM"]}',
    "model-00001-of-00003.safetensors": b"a" * 5000,
    "model-00002-of-00003.safetensors": b"b" * 4000,
    "model-00003-of-00003.safetensors": b"c" * 3000,
    "tokenizer.json": b"t" * 700,
}


def git_blob_id(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def siblings(content=CONTENT):
    """What huggingface_hub's model_info(files_metadata=True) gives: LFS files with sha256, others a git blob id."""
    result = []
    for name, data in content.items():
        lfs = SimpleNamespace(sha256=hashlib.sha256(data).hexdigest()) if name.endswith(".safetensors") else None
        result.append(SimpleNamespace(rfilename=name, size=len(data), blob_id=git_blob_id(data), lfs=lfs))
    return result


class Hub:
    """Downloads from CONTENT (or a corrupted copy) and counts them."""

    def __init__(self, content=CONTENT, corrupt=()):
        self.content, self.corrupt, self.downloads = content, set(corrupt), []

    def download(self, name, commit, workdir):
        self.downloads.append(name)
        path = os.path.join(workdir, name.replace("/", "_"))
        data = self.content[name]
        with open(path, "wb") as stream:
            stream.write(data[:-1] + b"X" if name in self.corrupt else data)
        return path


def uploader(bucket: FakeBucket):
    def upload(path, object_name, f):
        with open(path, "rb") as stream:
            data = stream.read()
        with bucket.lock:
            bucket.objects[object_name] = (data, {hf_to_gcs.CHECKSUM_KEY: f.checksum}, next(bucket.generations))
        return bucket.get_blob(object_name)

    return upload


def env(index=0, count=1):
    return {
        "PREFIX": "models/deepseek-ai/DeepSeek-R1",
        "MANIFESTS": "imports/deepseek-ai/DeepSeek-R1",
        "MEMORY_BYTES": str(32 * 1024**3),
        "CLOUD_RUN_TASK_INDEX": str(index),
        "CLOUD_RUN_TASK_COUNT": str(count),
    }


def run_tasks(bucket, hub, count, tmp_path):
    files = hf_to_gcs.hub_files(siblings())
    for index in range(count):
        task = hf_to_gcs.Task(env(index, count), bucket, hub.download, uploader(bucket), log=lambda m: None)
        task.run("deepseek-ai/DeepSeek-R1", "c0ffee", files, str(tmp_path), parallel=2)


def test_the_tasks_shares_cover_every_file_exactly_once_and_are_balanced_by_size():
    files = [HubFile(f"f{i}", size, "sha256:x") for i, size in enumerate([50, 40, 30, 20, 10, 10, 5, 5, 1])]
    shares = [hf_to_gcs.share(files, i, 3) for i in range(3)]
    names = sorted(f.name for share in shares for f in share)
    assert names == sorted(f.name for f in files)
    loads = [sum(f.size for f in share) for share in shares]
    assert max(loads) - min(loads) <= 10 and sum(loads) == 171
    assert hf_to_gcs.share(files, 0, 1) == sorted(files, key=lambda f: -f.size)
    with pytest.raises(ValueError):
        hf_to_gcs.share(files, 3, 3)


def test_the_hubs_metadata_gives_each_file_its_size_and_checksum():
    files = {f.name: f for f in hf_to_gcs.hub_files(siblings())}
    assert files["config.json"].checksum == "git-sha1:" + git_blob_id(CONTENT["config.json"])
    shard = "model-00001-of-00003.safetensors"
    assert files[shard] == HubFile(shard, 5000, "sha256:" + hashlib.sha256(CONTENT[shard]).hexdigest())
    with pytest.raises(RuntimeError, match="no size"):
        hf_to_gcs.hub_files([SimpleNamespace(rfilename="x", size=None, blob_id="b", lfs=None)])


def test_the_import_over_several_tasks_copies_every_file_checked_and_writes_each_tasks_manifest(tmp_path):
    bucket, hub = FakeBucket(), Hub()
    run_tasks(bucket, hub, 3, tmp_path)
    assert sorted(hub.downloads) == sorted(CONTENT)  # every file once, over the three tasks
    for name, data in CONTENT.items():
        stored, metadata, _ = bucket.objects[f"models/deepseek-ai/DeepSeek-R1/{name}"]
        assert stored == data and metadata[hf_to_gcs.CHECKSUM_KEY].split(":")[0] in ("sha256", "git-sha1")
    manifests = [json.loads(bucket.objects[f"imports/deepseek-ai/DeepSeek-R1/task-{i}-of-3.json"][0]) for i in range(3)]
    assert all(m["complete"] and m["commit"] == "c0ffee" for m in manifests)
    assert sorted(n for m in manifests for n in m["files"]) == sorted(CONTENT)
    assert os.listdir(tmp_path) == []  # nothing left in the task's memory


def test_a_rerun_with_the_weights_present_downloads_nothing_and_only_checks_them(tmp_path):
    bucket = FakeBucket()
    run_tasks(bucket, Hub(), 2, tmp_path)
    again = Hub()
    run_tasks(bucket, again, 2, tmp_path)
    assert again.downloads == []
    # An object that no longer matches the hub (another size or checksum) is copied again, and only that one.
    name = "models/deepseek-ai/DeepSeek-R1/model-00002-of-00003.safetensors"
    data, metadata, generation = bucket.objects[name]
    bucket.objects[name] = (data[:-1], metadata, generation)
    bucket.objects["models/deepseek-ai/DeepSeek-R1/tokenizer.json"] = (b"t" * 700, {"hf-checksum": "sha256:old"}, 1)
    third = Hub()
    run_tasks(bucket, third, 2, tmp_path)
    assert sorted(third.downloads) == ["model-00002-of-00003.safetensors", "tokenizer.json"]
    assert bucket.objects[name][0] == CONTENT["model-00002-of-00003.safetensors"]


def test_a_download_that_does_not_match_the_hubs_checksum_fails_the_task_and_is_not_uploaded(tmp_path):
    bucket = FakeBucket()
    with pytest.raises(RuntimeError, match=r"model-00003-of-00003\.safetensors: downloaded sha256:"):
        run_tasks(bucket, Hub(corrupt={"model-00003-of-00003.safetensors"}), 1, tmp_path)
    assert "models/deepseek-ai/DeepSeek-R1/model-00003-of-00003.safetensors" not in bucket.objects
    assert not any(name.startswith("imports/") for name in bucket.objects)  # no manifest: not complete


def test_the_memory_budget_holds_files_under_the_limit_and_a_larger_one_alone():
    budget = hf_to_gcs.MemoryBudget(10)
    budget.take(6)
    taken = threading.Event()
    waiter = threading.Thread(target=lambda: (budget.take(6), taken.set()))
    waiter.start()
    assert not taken.wait(0.2)  # 6 + 6 > 10: waits
    budget.give(6)
    assert taken.wait(2)
    budget.give(6)
    budget.take(25)  # alone, over the limit: runs
    budget.give(25)
    waiter.join()


def test_the_script_runs_as_cloud_run_runs_it_from_its_environment_variable():
    """The job runs `python3 -c "exec(os.environ['IMPORT_SCRIPT'])"`: the script compiles as such, defines its entry
    point only under __main__, and has no $(VAR) reference Cloud Run would expand."""
    text = SCRIPT.read_text()
    compile(text, "hf-to-gcs.py", "exec")
    assert "$(" not in text and 'if __name__ == "__main__":' in text


def test_a_long_stack_name_still_gives_a_job_name_cloud_run_accepts_with_its_execution_token():
    from harness import run_program, unwrap

    def program():
        import pulumi_gcp as gcp

        from components.gcp.hf_gcs_import import HfGcsImport, HfGcsImportArgs

        apis = [gcp.projects.Service(a, service=f"{a}.googleapis.com") for a in ("iam", "storage", "run")]
        HfGcsImport(
            "llm-" + "a-very-long-stack-name-" * 3 + "import",
            HfGcsImportArgs(
                project="my-gcp-project",
                region="us-central1",
                bucket="b",
                model_id="org/model",
                revision="main",
                prefix="models/org/model",
                image="python:3.12-slim-bookworm",
                workers=1,
                task_timeout_minutes=30,
                wait_minutes=61,
                account_id="llm-import",
                depends_on=apis,
            ),
        )

    run = run_program(program)  # the cloud rules refuse a name and token of 63 characters or more
    job = unwrap(run.one("gcp:cloudrunv2/job:Job").inputs)
    assert len(job["name"]) + len(job["runExecutionToken"]) <= 62 and not job["name"].endswith("-")
