"""How the engine reads the weights (modelStore.load, docs/loading.md): streamed by vLLM's Run:ai Model Streamer or
read through the mounted store, per target, with its credentials, and the fallback."""

from __future__ import annotations

import json

import pytest
from harness import run_stack, settings_for
from test_config import problem

from core import durations, ready_time
from core.config.problems import ConfigError
from core.engine import (
    GIB,
    MODEL_URI_REF,
    OBJECT_STORE_CONCURRENCY,
    STREAMER_LOG_ENV,
    EngineOptions,
    StreamLoad,
    build_command,
    known_flags,
    stream_load,
    streamer_problem,
)
from core.versions import VLLM_IMAGE, VLLM_IMAGE_CN

R1_URI = "gs://{bucket}/models/deepseek-ai/DeepSeek-R1"


def engine_container(run, kind="Deployment"):
    if kind == "Deployment":
        pod = run.kubernetes_object("Deployment")["spec"]["template"]
    else:
        pod = run.kubernetes_object("LeaderWorkerSet")["spec"]["leaderWorkerTemplate"]["leaderTemplate"]
    return pod, next(c for c in pod["spec"]["containers"] if c["name"] == "engine")


def extra_config(argv) -> dict:
    return json.loads(argv[argv.index("--model-loader-extra-config") + 1])


@pytest.fixture(scope="module")
def gke():
    return run_stack("gke")


# ------------------------------------------------------------------------------------------------- which mode


@pytest.mark.parametrize(
    ("stack", "load"),
    [("gke", "stream"), ("kubernetes", "mount"), ("acs", "mount"), ("acs-r1", "mount"), ("ack", "mount")],
)
def test_stream_is_the_default_only_where_the_image_and_the_store_allow_it(stack, load):
    assert settings_for(stack).model_store.load == load


def test_gke_streams_only_from_a_bucket_and_with_an_image_that_ships_the_gcs_backend():
    assert settings_for("gke", {"gke.modelSource": "download"}).model_store.load == "mount"
    assert settings_for("gke", {"engine.image": "docker.io/vllm/vllm-openai:v0.11.0"}).model_store.load == "mount"
    assert settings_for("gke", {"engine.image": "docker.io/vllm/vllm-openai:v0.11.1"}).model_store.load == "stream"
    assert settings_for("gke", {"modelStore.load": "mount"}).model_store.load == "mount"


def test_asking_to_stream_where_it_cannot_is_refused_with_the_reason_and_the_fix():
    edge = problem("ack-edge", {"modelStore.load": "stream", "engine.image": VLLM_IMAGE.value}, "modelStore.load")
    assert "cannot stream on ack-edge" in edge.allowed and "IDC" in edge.allowed
    assert edge.fix.startswith("pulumi config set --path 'llm:modelStore.load' mount")
    old = problem(
        "gke", {"modelStore.load": "stream", "engine.image": "docker.io/vllm/vllm-openai:v0.11.0"}, "modelStore.load"
    )
    assert "no streamer for gs" in old.allowed
    download = problem("gke", {"modelStore.load": "stream", "gke.modelSource": "download"}, "modelStore.load")
    assert "no bucket" in download.allowed
    sglang = problem("kubernetes", {"modelStore.load": "stream", "engine.name": "sglang"}, "modelStore.load")
    assert "SGLang" in sglang.allowed


def test_the_mainland_egs_image_is_never_assumed_to_stream():
    options = EngineOptions("vllm", VLLM_IMAGE_CN.value, "m", 4096, 0.9, version="0.11.0")
    assert "EGS" in (streamer_problem(options, "file") or "")
    with pytest.raises(ConfigError):
        settings_for("kubernetes", {"modelStore.load": "stream", "kubernetes.mainlandChina": True})
    assert streamer_problem(EngineOptions("vllm", VLLM_IMAGE.value, "m", 4096, 0.9), "gs") is None


def test_the_key_takes_only_stream_or_mount():
    assert problem("gke", {"modelStore.load": "fuse"}, "modelStore.load")


# ------------------------------------------------------------------------------------------- the engine's argv


def test_the_streamer_flags_exist_in_every_recorded_vllm_parser():
    for version in ("0.11.0", "0.32.0"):
        assert {"--load-format", "--model-loader-extra-config"} <= known_flags("vllm", version)


def test_a_tensor_parallel_copy_in_one_pod_streams_distributed_with_a_cpu_buffer_that_fits_the_pod():
    options = EngineOptions("vllm", VLLM_IMAGE.value, "m", 4096, 0.9)
    load = stream_load(options, object_store=True, tensor_parallel=8, multi_node=False, memory_gib=1800)
    assert load == StreamLoad(object_store=True, memory_limit_bytes=1800 * GIB // 2 // 8, distributed=True)
    assert 8 * load.memory_limit_bytes <= 1800 * GIB * 0.5
    assert load.extra_config() == {
        "concurrency": OBJECT_STORE_CONCURRENCY,
        "distributed": True,
        "memory_limit": 1800 * GIB // 16,
    }
    # Across pods (Ray), one GPU, or a version without the key: not distributed.
    assert not stream_load(options, True, 8, multi_node=True, memory_gib=1800).distributed
    assert not stream_load(options, True, 1, multi_node=False, memory_gib=64).distributed
    old = EngineOptions("vllm", "docker.io/vllm/vllm-openai:v0.11.1", "m", 4096, 0.9, version="0.11.1")
    assert "distributed" not in stream_load(old, True, 8, False, 1800).extra_config()
    # From a mounted directory the streamer's own concurrency (16) stays.
    assert "concurrency" not in stream_load(options, False, 1, False, 64).extra_config()


def test_sglang_is_never_given_the_streamer():
    from core.catalog import MODELS

    options = EngineOptions("sglang", "img:1", "m", 4096, 0.9)
    with pytest.raises(ValueError, match="vLLM only"):
        build_command(options, MODELS["DeepSeek-R1-Distill-Qwen-7B"], "/m", 1, stream=StreamLoad(False, GIB))


@pytest.mark.parametrize(
    "stack, overrides, streams",
    [
        ("gke", {}, True),
        ("kubernetes", {"modelStore.load": "stream"}, True),
        ("kubernetes", {}, False),
        ("ack", {"modelStore.load": "stream", "engine.image": VLLM_IMAGE.value}, True),
        ("ack", {}, False),
    ],
)
def test_a_streamed_load_logs_the_streamers_time_and_rate_in_the_engines_log(stack, overrides, streams):
    """The streamer's own log lines (its time and rate per load, what NIC_MB_PER_S stands for) reach the engine's log
    only with RUNAI_STREAMER_LOG_TO_STDERR (core.engine.STREAMER_LOG_ENV; the real-engine suite reads the line)."""
    _, engine = engine_container(run_stack(stack, overrides))
    env = {e["name"]: e.get("value") for e in engine["env"]}
    assert ("--load-format" in engine["command"]) is streams
    assert all(env.get(k) == v for k, v in STREAMER_LOG_ENV.items()) is streams


# ------------------------------------------------------------------------------------- gke: from gs://, no FUSE


def test_gke_streams_from_the_bucket_with_the_streamer_flags(gke):
    _, engine = engine_container(gke)
    argv = engine["command"]
    assert argv[2] == f"$({'LLM_MODEL_URI'})" and MODEL_URI_REF not in argv
    assert argv[argv.index("--load-format") + 1] == "runai_streamer"
    assert extra_config(argv) == {"concurrency": 32, "distributed": True, "memory_limit": 1800 * GIB // 2 // 8}
    env = {e["name"]: e.get("value") for e in engine["env"]}
    assert env["LLM_MODEL_URI"] == R1_URI.format(bucket=gke.outputs["modelBucket"])
    assert env["HF_HUB_OFFLINE"] == "1"  # nothing from the Hub: config and tokenizer come from the bucket too
    assert gke.outputs["modelPath"] == env["LLM_MODEL_URI"]
    assert gke.outputs["modelLoad"].startswith("stream from the object store")


def test_streaming_pods_mount_no_bucket_and_read_it_as_the_reader_identity_without_a_key(gke):
    pod, engine = engine_container(gke)
    spec = pod["spec"]
    assert not any(v["name"] == "model" or "csi" in v for v in spec["volumes"])
    assert not any(m["name"] == "model" for m in engine["volumeMounts"])
    assert "gke-gcsfuse/volumes" not in (pod["metadata"].get("annotations") or {})
    # The account the bucket's objectViewer binding names (workload identity): read only, no API token, no key.
    assert spec["serviceAccountName"] == "llm-models" and spec["automountServiceAccountToken"] is False
    binding = next(b for b in gke.of_type("gcp:storage/bucketIAMMember:BucketIAMMember") if "workload" in b.name)
    assert binding.inputs["role"] == "roles/storage.objectViewer"
    assert binding.inputs["member"].endswith("/sa/llm-models")
    assert not gke.of_type("gcp:serviceaccount/key:Key")
    assert not any("GOOGLE_APPLICATION_CREDENTIALS" == e["name"] for e in engine["env"])
    deployment = gke.one("kubernetes:apps/v1:Deployment")
    assert binding.urn in deployment.dependencies  # the grant exists before the pods start


def test_the_benchmark_still_reads_the_tokenizer_through_its_own_mount(gke):
    job = gke.kubernetes_object("Job", "llm-gke-benchmark")["spec"]["template"]
    model = next(v for v in job["spec"]["volumes"] if v["name"] == "model")
    assert model["csi"]["readOnly"] is True and "gke-gcsfuse/volumes" in job["metadata"]["annotations"]


def test_gke_falls_back_to_gcs_fuse_with_load_mount():
    run = run_stack("gke", {"modelStore.load": "mount"})
    pod, engine = engine_container(run)
    assert "--load-format" not in engine["command"] and engine["command"][2] == "/models/deepseek-ai/DeepSeek-R1"
    model = next(v for v in pod["spec"]["volumes"] if v["name"] == "model")
    assert model["csi"]["driver"] == "gcsfuse.csi.storage.gke.io"
    assert not any(e["name"] == "LLM_MODEL_URI" for e in engine["env"])
    assert run.outputs["modelLoad"].startswith("mount")


def test_a_copy_over_two_nodes_streams_on_every_pod_without_the_distributed_mode():
    run = run_stack("gke", {"gke.rdma": True, "placement.podsPerReplica": 2, "gpuNodes.min": 2})
    lws = run.kubernetes_object("LeaderWorkerSet", "llm")["spec"]["leaderWorkerTemplate"]
    leader, worker = lws["leaderTemplate"], lws["workerTemplate"]
    argv = leader["spec"]["containers"][0]["args"]
    assert "distributed" not in extra_config(argv) and argv[2] == "$(LLM_MODEL_URI)"
    for template in (leader, worker):
        env = {e["name"]: e.get("value") for e in template["spec"]["containers"][0]["env"]}
        assert env["LLM_MODEL_URI"].startswith("gs://")
        assert template["spec"]["serviceAccountName"] == "llm-models"


# ------------------------------------------------------------------------- kubernetes and Alibaba: the volume


def test_kubernetes_streams_from_its_volume_when_asked_and_keeps_the_volume():
    run = run_stack("kubernetes", {"modelStore.load": "stream"})
    pod, engine = engine_container(run)
    argv = engine["command"]
    assert argv[2] == "/models/deepseek-ai/DeepSeek-R1-Distill-Qwen-7B"
    assert argv[argv.index("--load-format") + 1] == "runai_streamer"
    assert "concurrency" not in extra_config(argv)
    assert any(v["name"] == "model" and "persistentVolumeClaim" in v for v in pod["spec"]["volumes"])
    assert run.outputs["modelLoad"].startswith("stream from the mounted volume")


# ------------------------------------------------------------------ acs, ack: from OSS's S3 API, with RRSA

STREAM_OSS = {"modelStore.load": "stream", "engine.image": VLLM_IMAGE.value}
ACK_URI = "s3://{bucket}/models/deepseek-ai/DeepSeek-R1-Distill-Qwen-7B"


@pytest.fixture(scope="module")
def ack_stream():
    return run_stack("ack", STREAM_OSS)


def test_alibaba_streams_only_when_asked_and_only_with_an_image_known_to_ship_the_streamer():
    assert settings_for("ack", STREAM_OSS).model_store.load == "stream"
    assert settings_for("acs", STREAM_OSS).model_store.load == "stream"
    assert settings_for("ack", {"engine.image": VLLM_IMAGE.value}).model_store.load == "mount"  # not the default
    egs = problem("ack", {"modelStore.load": "stream"}, "modelStore.load")  # mainland default: EGS 0.11.0
    assert "EGS" in egs.allowed and "llm:engine.image" in egs.fix and "modelStore.load' mount" in egs.fix
    fluid = problem("acs-r1", STREAM_OSS, "modelStore.load")
    assert "past the cache" in fluid.allowed and fluid.fix.startswith("pulumi config set --path 'llm:acs.fluid' false")
    assert settings_for("acs-r1", {**STREAM_OSS, "acs.fluid": False}).model_store.load == "stream"


def test_ack_streams_from_the_models_prefix_over_the_internal_s3_endpoint(ack_stream):
    pod, engine = engine_container(ack_stream)
    argv = engine["command"]
    assert argv[2] == "$(LLM_MODEL_URI)"
    assert argv[argv.index("--load-format") + 1] == "runai_streamer"
    assert extra_config(argv)["concurrency"] == OBJECT_STORE_CONCURRENCY
    env = {e["name"]: e.get("value") for e in engine["env"]}
    bucket = ack_stream.outputs["modelBucket"]
    # Where the import workers write (components/alibaba/model_import_workers.py: models/<ModelScope id>).
    assert env["LLM_MODEL_URI"] == ACK_URI.format(bucket=bucket) == ack_stream.outputs["modelPath"]
    assert {k: env[k] for k in ("AWS_ENDPOINT_URL", "AWS_REGION", "AWS_DEFAULT_REGION")} == {
        "AWS_ENDPOINT_URL": "https://s3.oss-cn-hangzhou-internal.aliyuncs.com",
        "AWS_REGION": "cn-hangzhou",
        "AWS_DEFAULT_REGION": "cn-hangzhou",
    }
    assert env["RUNAI_STREAMER_S3_USE_VIRTUAL_ADDRESSING"] == "1"  # OSS refuses path style
    assert env["AWS_EC2_METADATA_DISABLED"] == "true"  # no fallback to the node's role
    assert env["AWS_CONFIG_FILE"] == "/etc/llm-oss-stream/aws-config"
    assert env["ALIBABA_CLOUD_STS_ENDPOINT"] == "sts-vpc.cn-hangzhou.aliyuncs.com"
    assert env["ALIBABA_CLOUD_OIDC_TOKEN_FILE"] == "/var/run/secrets/ack.alibabacloud.com/rrsa-tokens/token"
    assert env["ALIBABA_CLOUD_OIDC_PROVIDER_ARN"] == "acs:ram::1234:oidc-provider/ack-rrsa-c1"
    role = next(r for r in ack_stream.of_type("alicloud:ram/role:Role") if "stream" in r.name)
    assert env["ALIBABA_CLOUD_ROLE_ARN"] == f"acs:ram::1234567890123456:role/{role.inputs['roleName']}"
    # No model volume: the weights come from OSS; the benchmark still mounts it for the tokenizer.
    assert not any(v["name"] == "model" for v in pod["spec"]["volumes"])
    assert ack_stream.outputs["modelLoad"].startswith("stream from the object store")


def test_the_credential_process_and_the_token_are_read_only_mounts_of_the_streamers_own_account(ack_stream):
    pod, engine = engine_container(ack_stream)
    spec = pod["spec"]
    volumes = {v["name"]: v for v in spec["volumes"]}
    mounts = {m["name"]: m for m in engine["volumeMounts"]}
    assert mounts["oss-stream-config"] == {
        "name": "oss-stream-config",
        "mountPath": "/etc/llm-oss-stream",
        "readOnly": True,
    }
    assert mounts["rrsa-token"]["mountPath"] == "/var/run/secrets/ack.alibabacloud.com/rrsa-tokens"
    assert mounts["rrsa-token"]["readOnly"] is True
    (source,) = volumes["rrsa-token"]["projected"]["sources"]
    assert source == {
        "serviceAccountToken": {"audience": "sts.aliyuncs.com", "expirationSeconds": 3600, "path": "token"}
    }
    assert spec["serviceAccountName"] == "llm-streamer" and spec["automountServiceAccountToken"] is False
    account = ack_stream.kubernetes_object("ServiceAccount", "llm-streamer")
    assert account["automountServiceAccountToken"] is False
    config = ack_stream.kubernetes_object("ConfigMap", volumes["oss-stream-config"]["configMap"]["name"])
    assert volumes["oss-stream-config"]["configMap"]["defaultMode"] == 0o444
    from pathlib import Path

    script = Path(__file__).resolve().parents[1] / "components/scripts/rrsa-credential-process.py"
    assert config["data"]["rrsa-credential-process.py"] == script.read_text()
    aws = config["data"]["aws-config"]
    assert aws.startswith("[default]\n")
    assert "credential_process = python3 /etc/llm-oss-stream/rrsa-credential-process.py\n" in aws
    assert "region = cn-hangzhou\n" in aws and "    addressing_style = virtual\n" in aws
    # Hardening stays: no privilege escalation, seccomp, every container.
    assert spec["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault"
    assert engine["securityContext"]["allowPrivilegeEscalation"] is False


def test_the_streamers_role_trusts_only_its_service_account_and_reads_only_the_model(ack_stream):
    role = next(r for r in ack_stream.of_type("alicloud:ram/role:Role") if "stream" in r.name)
    (statement,) = json.loads(role.inputs["assumeRolePolicyDocument"])["Statement"]
    assert statement["Principal"] == {"Federated": ["acs:ram::1234:oidc-provider/ack-rrsa-c1"]}
    assert statement["Condition"] == {
        "StringEquals": {
            "oidc:aud": "sts.aliyuncs.com",
            "oidc:sub": "system:serviceaccount:llm:llm-streamer",
            "oidc:iss": "https://oidc-ack",
        }
    }
    policy = next(p for p in ack_stream.of_type("alicloud:ram/policy:Policy") if "stream" in p.name)
    bucket = ack_stream.outputs["modelBucket"]
    statements = json.loads(policy.inputs["policyDocument"])["Statement"]
    assert statements == [
        {
            "Effect": "Allow",
            "Action": ["oss:GetObject"],
            "Resource": [f"acs:oss:*:*:{bucket}/models/deepseek-ai/DeepSeek-R1-Distill-Qwen-7B/*"],
        },
        {"Effect": "Allow", "Action": ["oss:ListObjects"], "Resource": [f"acs:oss:*:*:{bucket}"]},
    ]
    attachment = next(
        a for a in ack_stream.of_type("alicloud:ram/rolePolicyAttachment:RolePolicyAttachment") if "stream" in a.name
    )
    assert attachment.inputs["policyName"] == policy.inputs["policyName"]
    assert attachment.inputs["roleName"] == role.inputs["roleName"]


@pytest.mark.parametrize("stack", ["ack", "acs"])
def test_no_access_key_reaches_a_streaming_pod(stack):
    run = run_stack(stack, STREAM_OSS)
    pod, engine = engine_container(run)
    text = json.dumps(pod) + json.dumps(
        run.kubernetes_object(
            "ConfigMap",
            next(v["configMap"]["name"] for v in pod["spec"]["volumes"] if v["name"] == "oss-stream-config"),
        )
    )
    for marker in (
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "akId",
        "akSecret",
        'secretKeyRef": {"key": "ak',
    ):
        assert marker not in text, marker
    secrets = {e["valueFrom"]["secretKeyRef"]["key"] for e in engine["env"] if "valueFrom" in e}
    assert secrets == {"VLLM_API_KEY"}  # the only Secret the engine reads
    if stack == "ack":  # ack's volumes use RRSA too: no RAM user and no AccessKey anywhere in the stack
        assert not run.of_type("alicloud:ram/accessKey:AccessKey") and not run.of_type("alicloud:ram/user:User")


def test_acs_turns_rrsa_on_for_streaming_only():
    spec = lambda run: run.one("alicloud:cs/managedKubernetes:ManagedKubernetes").inputs
    assert spec(run_stack("acs", STREAM_OSS))["enableRrsa"] is True
    assert "enableRrsa" not in spec(run_stack("acs"))


def test_a_copy_over_two_acs_pods_streams_on_the_leader_and_the_workers():
    run = run_stack("acs-r1", {**STREAM_OSS, "acs.fluid": False})
    lws = run.kubernetes_object("LeaderWorkerSet", "llm")["spec"]["leaderWorkerTemplate"]
    for template in (lws["leaderTemplate"], lws["workerTemplate"]):
        container = template["spec"]["containers"][0]
        env = {e["name"]: e.get("value") for e in container["env"]}
        assert env["LLM_MODEL_URI"].startswith("s3://") and env["AWS_CONFIG_FILE"]
        assert {"oss-stream-config", "rrsa-token"} <= {m["name"] for m in container["volumeMounts"]}
        assert template["spec"]["serviceAccountName"] == "llm-streamer"
    assert "distributed" not in extra_config(lws["leaderTemplate"]["spec"]["containers"][0]["args"])


def test_a_tensor_parallel_acs_pod_streams_distributed():
    run = run_stack("acs", {**STREAM_OSS, "placement.gpuCount": 2})
    _, engine = engine_container(run)
    assert extra_config(engine["command"])["distributed"] is True


@pytest.mark.parametrize("stack", ["kubernetes", "acs", "ack", "ack-edge"])
def test_by_default_the_mounted_store_is_read_with_the_default_loader(stack):
    run = run_stack(stack)
    kind = (
        "LeaderWorkerSet"
        if run.kubernetes_objects() and any(o["kind"] == "LeaderWorkerSet" for o in run.kubernetes_objects())
        else "Deployment"
    )
    pod, engine = engine_container(run, kind)
    argv = engine.get("args") or engine["command"]
    assert "--load-format" not in argv and "--model-loader-extra-config" not in argv
    assert any(v["name"] == "model" for v in pod["spec"]["volumes"])


# ------------------------------------------------------------------------------------------- the load step


def test_the_load_step_streams_at_the_per_rank_rate_times_the_distributed_ranks():
    streamed, mounted = settings_for("gke"), settings_for("gke", {"modelStore.load": "mount"})
    assert ready_time.stream_ranks(streamed) == 8 and ready_time.stream_ranks(mounted) == 0
    load = durations.engine_load(streamed.model, 8)
    gb = durations.weights_gb(streamed.model)
    assert load.minutes == pytest.approx(0.5 + gb / (0.622 * 8) / 60 + 260 / 60)  # R1's DeepGEMM warm-up
    assert "sglang#22749" in load.source and "vllm-project/vllm#22215" in load.source
    fast = ready_time.timeline(streamed)
    slow = ready_time.timeline(mounted)
    step = lambda t: next(task for task in t.tasks if task.name == "engine load")
    assert step(fast).minutes < step(slow).minutes == durations.engine_load(mounted.model).minutes
    assert fast.total < slow.total
    # kubernetes streams from a volume of unknown throughput: the mount figure stays.
    assert ready_time.stream_ranks(settings_for("kubernetes", {"modelStore.load": "stream"})) == 0


def test_streaming_from_oss_is_bounded_by_the_instance_nic_and_shortens_acs_r1_a_lot():
    settings = settings_for("acs-r1", {**STREAM_OSS, "acs.fluid": False})
    mounted = settings_for("acs-r1", {"acs.fluid": False})
    cached = settings_for("acs-r1")  # the example: Fluid's warm cache in front of the mount
    assert ready_time.stream_ranks(settings) == 1  # a copy over two pods: not distributed
    gb = durations.weights_gb(settings.model)
    nic = durations.NIC_MB_PER_S.value / 1000
    assert durations.STREAM_OSS_GB_PER_S_PER_RANK.value > nic  # one rank already fills the NIC
    for ranks in (1, 8):
        load = durations.engine_load(settings.model, ranks, settings.placement.tensor_parallel, "oss")
        assert load.minutes == pytest.approx(0.5 + gb / nic / 60 + 260 / 60)  # R1's DeepGEMM warm-up
        assert "runai_s3" in load.source and "nic_16g" in load.source
    step = lambda t: next(task for task in t.tasks if task.name == "engine load").minutes
    assert step(ready_time.timeline(settings)) < step(ready_time.timeline(mounted)) / 3
    assert ready_time.timeline(settings).total < ready_time.timeline(mounted).total - 20
    assert ready_time.timeline(settings).total < ready_time.timeline(cached).total - 10
