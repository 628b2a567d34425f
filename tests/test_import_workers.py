"""The model import at t=0 on the Alibaba cluster targets: ECS workers run by Cloud Assistant, beside the cluster.

What they are (per target), what they wait for (the network and the bucket, never the cluster), what their role
may do (the model's prefix, stopping itself), what waits for them (the serving workload), how a large model is
split, how a re-run is a no-op that checks the weights (the worker script, with a fake hub and bucket), and how
the worker stops billing.
"""

from __future__ import annotations

import base64
import dataclasses
import functools
import json
import re
import sys

import pytest
from harness import ACCOUNT_ID, closure, header, run_stack, settings_for, unwrap
from worker_scripts import fake_api, load

from components.alibaba.cloud_assistant_worker import COMMAND_TIMEOUT_MAX_SECONDS
from components.alibaba.host_scripts import USER_DATA_LIMIT_BYTES
from components.alibaba.model_import_workers import (
    OSS_WORKER_ACTIONS,
    render_command,
    render_setup,
)
from components.shipped_scripts import SCRIPTS
from core import durations
from core.config.problems import ConfigError

ALIBABA_K8S = ("acs", "acs-r1", "ack", "ack-edge")
INSTANCE = "alicloud:ecs/instance:Instance"
INVOCATION = "alicloud:ecs/ecsInvocation:EcsInvocation"
COMMAND = "alicloud:ecs/command:Command"
CLUSTER_TYPES = ("alicloud:cs/managedKubernetes:ManagedKubernetes", "alicloud:cs/nodePool:NodePool")


@functools.cache
def stack(name: str, overrides: tuple = ()):
    return run_stack(name, dict(overrides))


def workers(run):
    """(instance, command text, invocation) of every import worker, in worker order."""
    instances = [r for r in run.of_type(INSTANCE) if "-import-" in r.name]
    commands = {f"{c.name}-id": c for c in run.of_type(COMMAND)}
    found = []
    for invocation in run.of_type(INVOCATION):
        command = commands[unwrap(invocation.inputs)["commandId"]]
        text = base64.b64decode(unwrap(command.inputs)["commandContent"]).decode()
        if "llm-model-import run" not in text:
            continue
        instance = next(i for i in instances if f"{i.name}-id" in unwrap(invocation.inputs)["instanceIds"])
        found.append((instance, text, invocation))
    return sorted(found, key=lambda w: int(re.search(r"^WORKER=(\d+)$", w[1], re.M).group(1)))


# --- Where the workers are and what they wait for -------------------------------------------------------------


@pytest.mark.parametrize("name", ALIBABA_K8S)
def test_every_alibaba_cluster_target_imports_on_workers_and_runs_no_import_job(name):
    run = stack(name)
    found = workers(run)
    expected = durations.import_workers(settings_for(name).model)
    assert len(found) == expected >= 1
    assert not [r for r in run.of_type("kubernetes:batch/v1:Job") if "import" in r.name]
    for instance, text, _ in found:
        inputs = unwrap(instance.inputs)
        assert inputs["instanceChargeType"] == "PostPaid" and inputs["internetMaxBandwidthOut"] == 0  # NAT only
        assert header(text, "ENDPOINT") == "oss-cn-hangzhou-internal.aliyuncs.com"
        assert header(text, "PREFIX") == f"models/{settings_for(name).model.modelscope_id}"


@pytest.mark.parametrize("name", ALIBABA_K8S)
def test_the_workers_wait_for_the_network_and_the_bucket_never_the_cluster(name):
    run = stack(name)
    cluster = {r.urn for r in run.resources if r.type in CLUSTER_TYPES}
    snat = {r.urn for r in run.of_type("alicloud:vpc/snatEntry:SnatEntry")}
    bucket = {r.urn for r in run.of_type("alicloud:oss/bucket:Bucket")}
    assert cluster and snat and bucket
    for instance, _, invocation in workers(run):
        waits = closure(run, invocation)
        assert not waits & cluster, [run.by_urn(u).name for u in waits & cluster]
        assert snat <= closure(run, instance) and bucket <= waits


def test_acs_serving_waits_for_every_invocation_and_fluid_warms_after_them():
    for name in ("acs", "acs-r1"):
        run = stack(name)
        serving = next(
            r
            for r in run.resources
            if r.type in ("kubernetes:apps/v1:Deployment", "kubernetes:leaderworkerset.x-k8s.io/v1:LeaderWorkerSet")
            and unwrap(r.inputs)["metadata"]["name"] == "llm"
        )
        invocations = {w[2].urn for w in workers(run)}
        assert invocations <= set(serving.dependencies), name
    r1 = stack("acs-r1")
    dataload = next(r for r in r1.resources if r.name.endswith("-fluid-preload"))  # the DataLoad
    assert {w[2].urn for w in workers(r1)} <= closure(r1, dataload)


@pytest.mark.parametrize("name", ("ack", "ack-edge"))
def test_ack_serving_waits_for_every_invocation(name):
    run = stack(name)
    deployment = run.of_type("kubernetes:apps/v1:Deployment")
    serving = next(d for d in deployment if unwrap(d.inputs)["metadata"]["name"] == "llm")
    assert {w[2].urn for w in workers(run)} <= set(serving.dependencies)


# --- What a worker may do --------------------------------------------------------------------------------------


def _policies(run, role_name):
    policies = {unwrap(p.inputs)["policyName"]: p for p in run.of_type("alicloud:ram/policy:Policy")}
    for attachment in run.of_type("alicloud:ram/rolePolicyAttachment:RolePolicyAttachment"):
        inputs = unwrap(attachment.inputs)
        if inputs["roleName"] == role_name:
            yield from json.loads(unwrap(policies[inputs["policyName"]].inputs)["policyDocument"])["Statement"]


@pytest.mark.parametrize("name", ("acs", "ack"))
def test_each_workers_role_writes_only_the_models_prefix_and_stops_only_itself(name):
    run = stack(name)
    bucket = unwrap(run.one("alicloud:oss/bucket:Bucket").inputs)["bucket"]
    prefix = f"models/{settings_for(name).model.modelscope_id}"
    attachments = run.of_type("alicloud:ecs/ramRoleAttachment:RamRoleAttachment")
    for instance, _, invocation in workers(run):
        attachment = next(a for a in attachments if unwrap(a.inputs)["instanceId"] == f"{instance.name}-id")
        statements = list(_policies(run, unwrap(attachment.inputs)["ramRoleName"]))
        grants = {(a, r) for s in statements for a in s["Action"] for r in s["Resource"]}
        assert grants == {
            *((a, f"acs:oss:*:{ACCOUNT_ID}:{bucket}/{prefix}/*") for a in OSS_WORKER_ACTIONS),
            ("ecs:StopInstance", f"acs:ecs:cn-hangzhou:{ACCOUNT_ID}:instance/{instance.name}-id"),
        }
        assert all(s["Effect"] == "Allow" for s in statements)
        assert attachment.urn in closure(run, invocation)  # attached and allowed before the command runs
    assert "oss:DeleteObject" not in OSS_WORKER_ACTIONS and "oss:ListObjects" not in OSS_WORKER_ACTIONS
    if name == "ack":
        assert not run.of_type("alicloud:ram/accessKey:AccessKey")  # no long-lived key for anyone


def test_the_worker_gets_credentials_only_from_its_instance_role():
    # What the worker runs: its script and the shared module written beside it (llm_worker_api.py).
    script = (SCRIPTS / "llm-model-import.py").read_text() + (SCRIPTS / "llm_worker_api.py").read_text()
    assert "EcsRamRoleCredentialsProvider" in script and "EcsRamRoleCredential(" in script
    assert not re.search(r"AccessKey(Id|Secret)\s*=|ALIBABA_CLOUD_ACCESS_KEY", script)
    for _, text, _ in workers(stack("acs")):
        assert "oos-secret" not in text and "AccessKey" not in text


# --- Splitting, deadlines, limits ------------------------------------------------------------------------------


def test_r1_is_split_over_workers_each_with_its_share_of_the_same_partition():
    found = workers(stack("acs-r1"))
    count = durations.import_workers(settings_for("acs-r1").model)
    assert count == 20 and len(found) == count  # 689 GB at 25 GB per worker would be 28: held to the bound of 20
    assert [int(header(t, "WORKER")) for _, t, _ in found] == list(range(count))
    assert {header(t, "WORKERS") for _, t, _ in found} == {str(count)}
    assert len({i.name for i, _, _ in found}) == count  # one instance (and role) per worker


def test_the_worker_count_is_configurable_within_its_bound():
    assert len(workers(stack("acs-r1", (("modelStore.importWorkers", 4),)))) == 4
    assert durations.import_workers(settings_for("acs").model) == 3  # 65.5 GB at 25 GB per worker
    assert durations.import_workers(settings_for("ack").model) == 1  # 15.2 GB
    with pytest.raises(ConfigError, match=r"modelStore\.importWorkers.*1-20") as refused:
        settings_for("acs-r1", {"modelStore.importWorkers": 21})
    assert "pulumi config set --path" in str(refused.value)


@pytest.mark.parametrize("name", ALIBABA_K8S)
def test_commands_and_user_data_fit_cloud_assistant_and_ecs_limits(name):
    for instance, text, _ in workers(stack(name)):
        command = next(c for c in stack(name).of_type(COMMAND) if c.name == instance.name.removesuffix("-instance"))
        timeout = unwrap(command.inputs)["timeout"]
        assert 10 <= timeout <= COMMAND_TIMEOUT_MAX_SECONDS and int(header(text, "TIMEOUT_SECONDS")) == timeout
        assert len(unwrap(command.inputs)["commandContent"]) <= 18 * 1024
        assert len(base64.b64decode(unwrap(instance.inputs)["userData"])) <= USER_DATA_LIMIT_BYTES


def test_an_import_longer_than_a_command_may_run_is_refused_at_preview():
    # Outside the regions ModelScope serves on the internal network, the workers share the NAT.
    from stacks.alibaba.managed_kubernetes import import_deadline_minutes

    slow = settings_for("acs-r1", {"network.natBandwidthMbps": 20, "modelStore.importWorkers": 1})
    assert import_deadline_minutes(slow, 1) >= durations.worker_import(slow.model, 20, 1, slow.region).minutes
    elsewhere = dataclasses.replace(slow, region="ap-southeast-1")
    with pytest.raises(ConfigError, match=r"network\.natBandwidthMbps.*longer than a Cloud Assistant command"):
        import_deadline_minutes(elsewhere, 1)


# --- Re-runs, replacement and billing ------------------------------------------------------------------------


def test_a_new_revision_replaces_the_workers_so_a_stopped_one_never_gets_a_command():
    before = [unwrap(i.inputs)["userData"] for i, _, _ in workers(stack("acs"))]
    after = [unwrap(i.inputs)["userData"] for i, _, _ in workers(stack("acs", (("model.revision", "v2"),)))]
    assert before != after
    for instance, _, _ in workers(stack("ack")):
        assert "userData" in instance.replace_on_changes and "status" in instance.ignore_changes


def test_ack_edge_imports_in_its_first_run_and_the_second_run_keeps_the_same_bucket_and_workers():
    first = run_stack("ack-edge", {"ackEdge.nodePoolId": None, "ackEdge.clusterOnly": True})
    # In the cluster only the namespace and the engine image's pre-pull (tests/test_ack_edge_stack.py): no Job.
    assert {o["kind"] for o in first.kubernetes_objects()} == {"Namespace", "DaemonSet"}
    second = stack("ack-edge")
    for type_ in ("alicloud:oss/bucket:Bucket", INSTANCE, INVOCATION, COMMAND):
        assert {r.urn for r in first.of_type(type_)} <= {r.urn for r in second.of_type(type_)}, type_

    def inputs(run):
        return {w[0].urn: (unwrap(w[0].inputs)["userData"], w[1]) for w in workers(run)}

    assert inputs(first) == inputs(second)  # the same user-data and command: not replaced, not run again
    assert first.outputs["modelBucket"]


def test_the_worker_stops_itself_after_the_command_reported_success():
    body = (SCRIPTS / "model-import-worker.sh").read_text()  # stop_later: tests/test_scripts.py runs it
    run_at, stop_at = body.index("llm-model-import run"), body.index("stop_later llm-import-stop")
    assert run_at < stop_at and body.rstrip().splitlines()[-1].startswith("echo")


# --- The worker script itself (a fake hub, a fake bucket) -----------------------------------------------------


@functools.cache
def worker_module():
    return load("llm-model-import.py", "llm_model_import")


HUB = [
    {"path": "config.json", "size": 700, "sha256": "c" * 64},
    {"path": "model-00001-of-00003.safetensors", "size": 4_000, "sha256": "1" * 64},
    {"path": "model-00002-of-00003.safetensors", "size": 4_000, "sha256": "2" * 64},
    {"path": "model-00003-of-00003.safetensors", "size": 2_500, "sha256": "3" * 64},
    {"path": "tokenizer.json", "size": 1_200, "sha256": ""},  # the hub gives no digest for some small files
]


def test_the_partition_balances_bytes_and_is_the_same_on_every_worker():
    m = worker_module()
    shares = m.partition(HUB, 2)
    assert shares == m.partition(list(reversed(HUB)), 2)  # order of the listing does not matter
    assert sorted(f["path"] for s in shares for f in s) == sorted(f["path"] for f in HUB)  # each file once
    loads = [sum(f["size"] for f in s) for s in shares]
    assert max(loads) - min(loads) <= max(f["size"] for f in HUB)
    assert m.partition(HUB, 1) == [sorted(HUB, key=lambda f: (-f["size"], f["path"]))]
    with pytest.raises(ValueError):
        m.partition(HUB, 0)


class FakeBucket:
    def __init__(self, objects):
        self.objects = dict(objects)  # key -> (size, sha256)
        self.puts = {}

    def head(self, key):
        return self.objects.get(key)

    def put_object(self, key, data):
        self.puts[key] = data


def _present(prefix):
    return {f"{prefix}/{f['path']}": (f["size"], f["sha256"] or "computed") for f in HUB}


def first_worker_command() -> str:
    """The Cloud Assistant command of QwQ-32B's first of two workers in cn-hangzhou."""
    return render_command(
        model_id="Qwen/QwQ-32B",
        revision="master",
        bucket="b-1",
        prefix="models/Qwen/QwQ-32B",
        endpoint="oss-cn-hangzhou-internal.aliyuncs.com",
        region="cn-hangzhou",
        worker=0,
        workers=2,
        timeout_seconds=3600,
    )


def test_the_bucket_is_signed_with_oss_v4_and_its_region_as_the_workers_role(monkeypatch):
    """OSS refuses V1 signatures for buckets created since 2025-09-01, and V4 needs the region (oss2 2.18.4+:
    ProviderAuthV4, Bucket(region=)); the import's buckets are new."""
    import types

    m = worker_module()
    made = {}

    class Bucket:
        def __init__(self, auth, endpoint, name, **options):
            made.update(auth=auth, endpoint=endpoint, name=name, options=options)

    class ProviderAuthV4:
        def __init__(self, provider):
            self.provider = provider

    oss2 = types.SimpleNamespace(Bucket=Bucket, ProviderAuthV4=ProviderAuthV4)
    credentials = types.SimpleNamespace(EcsRamRoleCredentialsProvider=lambda url: ("role", url))
    monkeypatch.setitem(sys.modules, "oss2", oss2)
    monkeypatch.setitem(sys.modules, "oss2.credentials", credentials)
    monkeypatch.setattr(m, "metadata", lambda path: "worker-role")
    m._bucket("b-1", "oss-cn-hangzhou-internal.aliyuncs.com", "cn-hangzhou")
    assert isinstance(made["auth"], ProviderAuthV4) and made["options"] == {"region": "cn-hangzhou"}
    assert made["auth"].provider == ("role", f"{m.METADATA}/ram/security-credentials/worker-role")
    assert (made["endpoint"], made["name"]) == ("https://oss-cn-hangzhou-internal.aliyuncs.com", "b-1")
    command = first_worker_command()
    assert '"$ENDPOINT" "$REGION" "$WORKER"' in command and "REGION=cn-hangzhou" in command


def test_a_rerun_with_the_weights_present_imports_nothing_and_records_the_manifest(monkeypatch):
    m = worker_module()
    prefix = "models/org/model"
    bucket = FakeBucket(_present(prefix))
    imported = []
    monkeypatch.setattr(m, "hub_files", lambda model, revision: list(HUB))
    monkeypatch.setattr(m, "_bucket", lambda name, endpoint, region: bucket)
    monkeypatch.setattr(m, "_head", lambda b: b.head)
    monkeypatch.setattr(m, "_import_file", lambda *args: imported.append(args[-1]["path"]))
    monkeypatch.setattr(m.os, "makedirs", lambda *a, **k: None)
    for worker in range(2):
        assert m.run("org/model", "v1", "bucket", prefix, "oss-internal", "cn-hangzhou", worker, 2) == 0
    assert imported == []  # checked only
    shares = m.partition(HUB, 2)
    for worker in range(2):
        document = json.loads(bucket.puts[m.manifest_key(prefix, worker, 2)])
        assert document["model"] == "org/model" and document["revision"] == "v1"
        assert document["files"] == [
            {"path": f["path"], "size": f["size"], "sha256": f["sha256"]} for f in shares[worker]
        ]


def test_a_rerun_imports_exactly_the_files_that_are_missing_or_differ(monkeypatch):
    m = worker_module()
    prefix = "models/org/model"
    objects = _present(prefix)
    del objects[f"{prefix}/model-00002-of-00003.safetensors"]  # missing
    objects[f"{prefix}/model-00003-of-00003.safetensors"] = (2_500, "0" * 64)  # another file's digest
    objects[f"{prefix}/config.json"] = (699, "c" * 64)  # cut short
    todo = m.missing(HUB, objects.get, prefix)
    assert sorted(f["path"] for f in todo) == [
        "config.json",
        "model-00002-of-00003.safetensors",
        "model-00003-of-00003.safetensors",
    ]
    assert m.missing(HUB, _present(prefix).get, prefix) == []


def test_stop_self_asks_for_economical_mode_on_its_own_instance(monkeypatch):
    m = worker_module()
    sent, _ = fake_api(monkeypatch, {"ram/security-credentials/": "worker-role", "instance-id": "i-123"})
    assert m.stop_self("cn-hangzhou") == 0
    assert sent["action"] == "StopInstance" and sent["params"] == {"InstanceId": "i-123", "StoppedMode": "StopCharging"}
    assert sent["role"] == "worker-role" and sent["done"] and sent["domain"] == "ecs.cn-hangzhou.aliyuncs.com"


def test_rendered_worker_scripts_pass_shellcheck(tmp_path):
    from test_scripts import shellcheck

    command = first_worker_command()
    for name, text in (("command.sh", command), ("setup.sh", render_setup("0123456789abcdef"))):
        path = tmp_path / name
        path.write_text(text)
        shellcheck(path)


def test_destroy_removes_the_workers_before_it_aborts_the_buckets_uploads_and_deletes_it():
    run = stack("acs")  # a bucket destroy deletes (acs-r1 keeps its own: modelStore.retain)
    cleanup = next(r for r in run.resources if "abort-uploads" in r.name)
    for instance, _, _ in workers(run):
        assert cleanup.urn in instance.dependencies  # destroyed in reverse order: the worker first


def test_each_invocation_says_on_its_row_what_it_waits_for_and_how_to_follow_it():
    up = stack("acs")
    logged = up.logged("waiting for the model import")
    assert sorted(row for _, row in logged) == ["llm-acs-import-0", "llm-acs-import-1", "llm-acs-import-2"]
    for text, row in logged:
        assert f"--InstanceId {row}-instance-id --ContentEncoding PlainText" in text and "(modelled " in text
    assert run_stack("acs", preview=True).logged("waiting for the model import") == []
