"""The gke target as deployed: APIs, cluster, A4 node pool, bucket and identity, registry, serving, secrets."""

import json
from pathlib import Path

import pytest
from harness import (
    GCP_PROJECT_NUMBER,
    GENERATED_API_KEY,
    PEM_TLS,
    CloudMocks,
    Run,
    all_strings,
    is_secret,
    run_stack,
    settings_for,
    unwrap,
    validate_kubernetes,
)

from core.config.problems import ConfigError
from core.gateway import METRICS_PORT

CLUSTER = "gcp:container/cluster:Cluster"
POOL = "gcp:container/nodePool:NodePool"
BUCKET = "gcp:storage/bucket:Bucket"
HF_TOKEN = "hf_MOCKTOKEN0123456789abcdefghij"
ACCOUNT = "gcp:serviceaccount/account:Account"
RUN_JOB = "gcp:cloudrunv2/job:Job"
SERVICE = "gcp:projects/service:Service"
IMPORT_ACCOUNT = "serviceAccount:llm-gke-import@my-gcp-project.iam.gserviceaccount.com"
GCSFUSE = "gcsfuse.csi.storage.gke.io"
PODMONITORING = "monitoring.googleapis.com/v1/PodMonitoring"
RULES = "monitoring.googleapis.com/v1/Rules"


@pytest.fixture(scope="module")
def gke():
    return run_stack("gke")


@pytest.fixture(scope="module")
def with_token():
    return run_stack("gke", {"hfToken": HF_TOKEN}, secret_keys=["hfToken"])


def a4_pool(run):
    return next(
        unwrap(p.inputs) for p in run.of_type(POOL) if unwrap(p.inputs)["nodeConfig"]["machineType"] == "a4-highgpu-8g"
    )


def serving_pod(run):
    return run.kubernetes_object("Deployment", "llm")["spec"]["template"]


def test_a4_node_pool_has_eight_b200_latest_driver_gvnic_local_ssd_and_the_gpu_taint(gke):
    pool = a4_pool(gke)
    config = pool["nodeConfig"]
    assert config["guestAccelerators"] == [
        {"type": "nvidia-b200", "count": 8, "gpuDriverInstallationConfig": {"gpuDriverVersion": "LATEST"}}
    ]
    assert config["gvnic"] == {"enabled": True} and config["ephemeralStorageLocalSsdConfig"]["localSsdCount"] == 32
    assert config["workloadMetadataConfig"] == {"mode": "GKE_METADATA"}
    assert config["taints"] == [{"key": "nvidia.com/gpu", "value": "present", "effect": "NO_SCHEDULE"}]
    assert pool["nodeCount"] == 1 and pool["nodeLocations"] == ["us-central1-b"]


def test_the_example_gets_its_a4_node_as_spot_capacity(gke):
    pool = a4_pool(gke)
    config = pool["nodeConfig"]
    assert config["spot"] is True and config["reservationAffinity"] == {"consumeReservationType": "NO_RESERVATION"}
    assert "flexStart" not in config and pool["management"]["autoRepair"] is True


def test_a_named_reservation_is_consumed_by_its_full_path():
    run = run_stack(
        "gke",
        {
            "gke.capacity.mode": "reservation",
            "gke.capacity.reservation": "a4-res/reservationBlocks/b1",
            "gpuNodes.min": 2,
        },
    )
    pool = a4_pool(run)
    assert pool["nodeConfig"]["reservationAffinity"] == {
        "consumeReservationType": "SPECIFIC_RESERVATION",
        "key": "compute.googleapis.com/reservation-name",
        "values": ["projects/my-gcp-project/reservations/a4-res/reservationBlocks/b1"],
    }
    assert "spot" not in pool["nodeConfig"] and pool["nodeCount"] == 2 and pool["nodeLocations"] == ["us-central1-b"]
    strategy = run.kubernetes_object("Deployment")["spec"]["strategy"]["rollingUpdate"]
    assert (strategy["maxSurge"], strategy["maxUnavailable"]) == (1, 0)  # a spare node: surge


def test_flex_start_pools_start_empty_autoscale_to_the_node_count_and_end_after_the_run_duration():
    run = run_stack("gke", {"gke.capacity.mode": "flex-start", "gke.capacity.maxRunHours": 24, "gpuNodes.min": 2})
    pool = a4_pool(run)
    config = pool["nodeConfig"]
    assert config["flexStart"] is True and config["maxRunDuration"] == "86400s" and "spot" not in config
    assert config["reservationAffinity"] == {"consumeReservationType": "NO_RESERVATION"}
    assert "nodeCount" not in pool and pool["initialNodeCount"] == 0
    assert pool["autoscaling"] == {"totalMinNodeCount": 0, "totalMaxNodeCount": 2, "locationPolicy": "ANY"}
    assert pool["management"] == {"autoRepair": False, "autoUpgrade": True}


def test_flex_start_needs_a_channel_at_gke_1_32_2_gke_1652000(monkeypatch):
    monkeypatch.setattr(CloudMocks, "gke_channel_versions", {"REGULAR": "1.32.1-gke.1000000"})
    small = {"gke.machineType": "g2-standard-8", "model.name": "DeepSeek-R1-Distill-Qwen-7B", "workload": {}}
    assert run_stack("gke", {**small, "gke.capacity.mode": "on-demand"}).outputs["servedModelName"]
    with pytest.raises(ConfigError, match=r"Flex-start needs 1\.32\.2-gke\.1652000 or newer"):
        run_stack("gke", {**small, "gke.capacity.mode": "flex-start"})


def test_on_demand_nodes_take_a_matching_open_reservation_first():
    small = {"gke.machineType": None, "model.name": "DeepSeek-R1-Distill-Qwen-7B", "workload": {}}
    run = run_stack("gke", {**small, "gke.capacity.mode": "on-demand"})
    config = next(unwrap(p.inputs) for p in run.of_type(POOL) if "gpu" in p.name)["nodeConfig"]
    assert config["reservationAffinity"] == {"consumeReservationType": "ANY_RESERVATION"} and "spot" not in config


def test_one_node_means_updates_stop_the_old_pod_first(gke):
    strategy = gke.kubernetes_object("Deployment")["spec"]["strategy"]["rollingUpdate"]
    assert (strategy["maxSurge"], strategy["maxUnavailable"]) == (0, 1)


def test_cluster_on_a_channel_with_workload_identity_gcs_fuse_dcgm_and_destroyable_in_dev(gke):
    resource = gke.one(CLUSTER)
    cluster = unwrap(resource.inputs)
    assert cluster["releaseChannel"] == {"channel": "REGULAR"}
    assert cluster["workloadIdentityConfig"] == {"workloadPool": "my-gcp-project.svc.id.goog"}
    assert cluster["addonsConfig"]["gcsFuseCsiDriverConfig"] == {"enabled": True}
    assert cluster["monitoringConfig"]["managedPrometheus"] == {"enabled": True}
    assert "DCGM" in cluster["monitoringConfig"]["enableComponents"]
    assert cluster["removeDefaultNodePool"] is True and cluster["deletionProtection"] is False
    assert not resource.protect
    system = [
        unwrap(p.inputs) for p in gke.of_type(POOL) if unwrap(p.inputs)["nodeConfig"]["machineType"] != "a4-highgpu-8g"
    ]
    assert len(system) == 1 and system[0]["nodeCount"] == 1


def test_deletion_protection_protects_the_cluster():
    resource = run_stack("gke", {"deletionProtection": True}).one(CLUSTER)
    assert unwrap(resource.inputs)["deletionProtection"] is True and resource.protect


def test_apis_are_enabled_and_left_enabled_on_destroy(gke):
    services = {unwrap(s.inputs)["service"]: unwrap(s.inputs) for s in gke.of_type("gcp:projects/service:Service")}
    assert {
        "container.googleapis.com",
        "compute.googleapis.com",
        "storage.googleapis.com",
        "artifactregistry.googleapis.com",
        "cloudresourcemanager.googleapis.com",
        "iamcredentials.googleapis.com",
        "sts.googleapis.com",
    } <= set(services)
    assert all(s["disableOnDestroy"] is False for s in services.values())
    cluster = gke.one(CLUSTER)
    assert {s.urn for s in gke.of_type("gcp:projects/service:Service")} <= set(cluster.dependencies)


def test_nodes_are_private_and_leave_through_cloud_nat_before_anything_runs_on_them(gke):
    cluster = unwrap(gke.one(CLUSTER).inputs)
    assert cluster["privateClusterConfig"] == {"enablePrivateNodes": True}  # PSC: no master CIDR
    nat_resource = gke.one("gcp:compute/routerNat:RouterNat")
    nat = unwrap(nat_resource.inputs)
    router = unwrap(gke.one("gcp:compute/router:Router").inputs)
    assert nat["router"] == router["name"] and nat["region"] == router["region"] == "us-central1"
    assert nat["natIpAllocateOption"] == "AUTO_ONLY"
    assert nat["sourceSubnetworkIpRangesToNat"] == "ALL_SUBNETWORKS_ALL_IP_RANGES"
    assert nat["enableDynamicPortAllocation"] is True and nat["maxPortsPerVm"] >= 1024
    system = next(p for p in gke.of_type(POOL) if "system" in p.name)
    assert nat_resource.urn in system.dependencies


def test_the_control_plane_answers_the_listed_networks_only(gke):
    example = unwrap(gke.one(CLUSTER).inputs)["masterAuthorizedNetworksConfig"]
    assert [b["cidrBlock"] for b in example["cidrBlocks"]] == ["203.0.113.0/24"]
    run = run_stack("gke", {"cluster.apiCidrs": ["203.0.113.0/24", "198.51.100.7/32"]})
    config = unwrap(run.one(CLUSTER).inputs)["masterAuthorizedNetworksConfig"]
    assert [b["cidrBlock"] for b in config["cidrBlocks"]] == ["203.0.113.0/24", "198.51.100.7/32"]
    assert config["gcpPublicCidrsAccessEnabled"] is False


def test_vpc_subnet_has_secondary_ranges_the_cluster_uses(gke):
    subnet = unwrap(gke.one("gcp:compute/subnetwork:Subnetwork").inputs)
    ranges = {r["rangeName"] for r in subnet["secondaryIpRanges"]}
    cluster = unwrap(gke.one(CLUSTER).inputs)["ipAllocationPolicy"]
    assert {cluster["clusterSecondaryRangeName"], cluster["servicesSecondaryRangeName"]} == ranges
    assert unwrap(gke.one("gcp:compute/network:Network").inputs)["autoCreateSubnetworks"] is False


def test_bucket_is_private_regional_and_kept_on_destroy_in_the_example(gke):
    bucket = gke.one(BUCKET)
    spec = unwrap(bucket.inputs)
    assert spec["uniformBucketLevelAccess"] is True and spec["publicAccessPrevention"] == "enforced"
    assert spec["location"] == "US-CENTRAL1"
    assert bucket.retain_on_delete and spec["forceDestroy"] is False


def test_a_bucket_not_retained_is_emptied_and_deleted():
    bucket = run_stack("gke", {"modelStore.retain": False}).one(BUCKET)
    assert not bucket.retain_on_delete and unwrap(bucket.inputs)["forceDestroy"] is True


def test_a_kept_bucket_is_adopted_by_name_without_creating_or_deleting_it():
    run = run_stack("gke", {"modelStore.bucket": "llm-gke-models-kept", "modelStore.adopt": True})
    assert run.of_type(BUCKET) == []
    bindings = [unwrap(b.inputs) for b in run.of_type("gcp:storage/bucketIAMMember:BucketIAMMember")]
    assert {b["bucket"] for b in bindings} == {"llm-gke-models-kept"}
    pods = {b["member"].rsplit("/sa/", 1)[1] for b in bindings if b["member"].startswith("principal://")}
    assert pods == {"llm-models", "llm-models-writer"}
    assert IMPORT_ACCOUNT in {b["member"] for b in bindings}  # the import writes into the adopted bucket too
    assert run.outputs["modelBucket"] == "llm-gke-models-kept"
    engine = serving_pod(run)["spec"]["containers"][0]
    env = {e["name"]: e.get("value") for e in engine["env"]}
    assert env["LLM_MODEL_URI"] == "gs://llm-gke-models-kept/models/deepseek-ai/DeepSeek-R1"  # streamed from it
    mounted = serving_pod(
        run_stack(
            "gke", {"modelStore.bucket": "llm-gke-models-kept", "modelStore.adopt": True, "modelStore.load": "mount"}
        )
    )
    model = next(v for v in mounted["spec"]["volumes"] if v["name"] == "model")
    assert model["csi"]["volumeAttributes"]["bucketName"] == "llm-gke-models-kept"


def test_serving_only_reads_the_bucket_and_only_the_import_and_benchmark_write_it(gke):
    principal = (
        f"principal://iam.googleapis.com/projects/{GCP_PROJECT_NUMBER}/locations/global/"
        "workloadIdentityPools/my-gcp-project.svc.id.goog/subject/ns/llm/sa/"
    )
    roles = {
        unwrap(b.inputs)["member"]: unwrap(b.inputs)["role"]
        for b in gke.of_type("gcp:storage/bucketIAMMember:BucketIAMMember")
    }
    assert roles == {
        principal + "llm-models": "roles/storage.objectViewer",
        principal + "llm-models-writer": "roles/storage.objectUser",
        IMPORT_ACCOUNT: "roles/storage.objectUser",  # the Cloud Run import job, on this bucket only
    }
    for name in ("llm-models", "llm-models-writer"):
        account = gke.kubernetes_object("ServiceAccount", name)
        assert account["metadata"]["namespace"] == "llm" and account["automountServiceAccountToken"] is False
    templates = {
        o["metadata"]["name"]: o["spec"]["template"]
        for o in gke.kubernetes_objects()
        if o["kind"] in ("Deployment", "Job")
    }
    accounts = {name: t["spec"]["serviceAccountName"] for name, t in templates.items()}
    assert accounts == {"llm": "llm-models", "llm-gke-benchmark": "llm-models-writer"}
    assert all(t["spec"]["automountServiceAccountToken"] is False for t in templates.values())
    # The pods wait for their identities: serving depends on the accounts.
    account_urns = {a.urn for a in gke.of_type("kubernetes:core/v1:ServiceAccount")}
    assert account_urns <= set(gke.one("kubernetes:apps/v1:Deployment").dependencies)


def test_pods_without_a_bucket_volume_keep_the_default_service_account(rdma):
    installer = rdma.kubernetes_object("DaemonSet", "nccl-rdma-installer")["spec"]["template"]["spec"]
    assert "serviceAccountName" not in installer


def test_with_load_mount_serving_reads_the_bucket_read_only_through_gcs_fuse_with_the_sidecar():
    mounted = run_stack("gke", {"modelStore.load": "mount"})
    pod = serving_pod(mounted)
    volume = next(v for v in pod["spec"]["volumes"] if v["name"] == "model")
    assert volume["csi"]["driver"] == GCSFUSE and volume["csi"]["readOnly"] is True
    attributes = volume["csi"]["volumeAttributes"]
    assert attributes["bucketName"] == mounted.outputs["modelBucket"]
    assert "only-dir=models" in attributes["mountOptions"] and attributes["fileCacheCapacity"] == "-1"
    assert pod["metadata"]["annotations"]["gke-gcsfuse/volumes"] == "true"


def test_every_pod_with_a_gcs_fuse_volume_gets_the_sidecar_annotation(gke):
    for obj in gke.kubernetes_objects():
        template = obj.get("spec", {}).get("template") if isinstance(obj.get("spec"), dict) else None
        if not template:
            continue
        uses_fuse = any(v.get("csi", {}).get("driver") == GCSFUSE for v in template["spec"].get("volumes", []))
        if uses_fuse:
            assert template["metadata"]["annotations"]["gke-gcsfuse/volumes"] == "true", obj["metadata"]["name"]
    assert [o["metadata"]["name"] for o in gke.kubernetes_objects() if o["kind"] == "Job"] == ["llm-gke-benchmark"]


def test_engine_runs_like_the_reference_on_the_a4_node(gke):
    pod = serving_pod(gke)
    container = pod["spec"]["containers"][0]
    argv = container["command"]
    assert argv[argv.index("--tensor-parallel-size") + 1] == "8"
    assert argv[argv.index("--max-num-seqs") + 1] == "1024" and "--max-num-batched-tokens" in argv
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["VLLM_WORKER_MULTIPROC_METHOD"] == "spawn"
    assert container["resources"]["limits"]["nvidia.com/gpu"] == "8"
    shm = next(v for v in pod["spec"]["volumes"] if v["name"] == "dshm")
    assert shm["emptyDir"] == {"medium": "Memory", "sizeLimit": "250Gi"}
    assert {"key": "nvidia.com/gpu", "operator": "Equal", "value": "present", "effect": "NoSchedule"} in pod["spec"][
        "tolerations"
    ]
    assert pod["spec"]["nodeSelector"] == {"llm/pool": "gpu"}
    startup = container["startupProbe"]
    assert startup["periodSeconds"] * startup["failureThreshold"] >= 38 * 60  # the 671B load estimate


def test_image_is_pulled_through_the_artifact_registry_remote_repository(gke):
    repo = unwrap(gke.one("gcp:artifactregistry/repository:Repository").inputs)
    assert repo["mode"] == "REMOTE_REPOSITORY" and repo["format"] == "DOCKER"
    assert repo["remoteRepositoryConfig"]["dockerRepository"] == {"publicRepository": "DOCKER_HUB"}
    image = f"us-central1-docker.pkg.dev/my-gcp-project/{repo['repositoryId']}/vllm/vllm-openai:v0.32.0"
    assert serving_pod(gke)["spec"]["containers"][0]["image"] == image
    reader = unwrap(gke.one("gcp:artifactregistry/repositoryIamMember:RepositoryIamMember").inputs)
    nodes = next(unwrap(a.inputs) for a in gke.of_type(ACCOUNT) if "import" not in a.name)
    assert reader["role"] == "roles/artifactregistry.reader" and nodes["accountId"] in reader["member"]
    assert all(
        unwrap(p.inputs)["nodeConfig"]["serviceAccount"].startswith(nodes["accountId"]) for p in gke.of_type(POOL)
    )


def import_job(run):
    job = run.one(RUN_JOB)
    return job, unwrap(job.inputs)


def import_env(inputs) -> dict:
    return {e["name"]: e for e in inputs["template"]["template"]["containers"][0]["envs"]}


def test_model_is_imported_once_from_hugging_face_into_the_bucket_by_a_cloud_run_job_before_serving(gke):
    job, inputs = import_job(gke)
    assert job.urn in gke.one("kubernetes:apps/v1:Deployment").dependencies  # serving waits for the execution
    env = {name: e.get("value") for name, e in import_env(inputs).items()}
    assert env["MODEL_ID"] == "deepseek-ai/DeepSeek-R1" and env["REVISION"] == "main"
    assert env["BUCKET"] == gke.outputs["modelBucket"] and env["PREFIX"] == "models/deepseek-ai/DeepSeek-R1"
    assert env["MANIFESTS"] == "imports/deepseek-ai/DeepSeek-R1"
    assert env["IMPORT_SCRIPT"] == Path("components/scripts/hf-to-gcs.py").read_text()
    assert "huggingface_hub[hf_xet]==0.34.4" in env["PACKAGES"] and "google-cloud-storage==" in env["PACKAGES"]
    assert "HF_TOKEN" not in env  # DeepSeek-R1 is public: no token configured, none referenced
    # Run at `pulumi up`, waited for (run_execution_token), deleted on destroy, in the cluster's region.
    assert inputs["runExecutionToken"] and inputs["deletionProtection"] is False
    assert inputs["location"] == "us-central1" and inputs["name"] == "llm-gke-import"
    # The slim pinned image through the stack's remote repository, not the 12 GB engine image.
    image = inputs["template"]["template"]["containers"][0]["image"]
    assert image == "us-central1-docker.pkg.dev/my-gcp-project/llm-gke-dockerhub/library/python:3.12-slim-bookworm"
    assert gke.outputs["modelImportJob"] == "llm-gke-import"
    assert gke.outputs["modelImportLogsHint"] == (
        "gcloud beta run jobs logs tail llm-gke-import --region us-central1 --project my-gcp-project"
    )


def test_the_import_splits_a_large_model_over_tasks_of_cloud_runs_largest_size(gke):
    _, inputs = import_job(gke)
    assert inputs["template"]["taskCount"] == inputs["template"]["parallelism"] == 7  # 642 GiB, 100 GiB a task
    task = inputs["template"]["template"]
    assert task["containers"][0]["resources"]["limits"] == {"cpu": "8", "memory": "32Gi"}
    assert task["maxRetries"] == 3 and task["executionEnvironment"] == "EXECUTION_ENVIRONMENT_GEN2"
    _, small = import_job(run_stack("gke-l4"))
    assert small["template"]["taskCount"] == 1  # 15 GB: one task


def test_each_gpu_node_pulls_the_engine_image_without_waiting_for_the_import(gke):
    from cloud_rules.gcp import transitive_dependencies

    prepull = gke.kubernetes_object("DaemonSet", "llm-engine-prepull")
    pod = prepull["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["image"] == serving_pod(gke)["spec"]["containers"][0]["image"]
    assert container["command"] == ["sleep", "infinity"]  # running: the kubelet's image GC keeps the image
    assert pod["nodeSelector"] == {"llm/pool": "gpu"} and pod["tolerations"] == serving_pod(gke)["spec"]["tolerations"]
    assert container["resources"]["requests"] == {"cpu": "10m", "memory": "16Mi"}
    assert (
        container["securityContext"]["capabilities"] == {"drop": ["ALL"]}
        and pod["automountServiceAccountToken"] is False
    )
    assert prepull["metadata"]["annotations"] == {"pulumi.com/skipAwait": "true"}  # up does not wait for nodes
    resource = next(r for r in gke.of_type("kubernetes:apps/v1:DaemonSet") if "prepull" in r.name)
    before = transitive_dependencies(gke, resource.urn)
    job, _ = import_job(gke)
    assert job.urn not in before and not {p.urn for p in gke.of_type(POOL)} & before


def test_the_import_tasks_can_be_set_and_the_deadlines_follow(gke):
    from stacks.gcp.gke import import_deadlines

    run = run_stack("gke", {"gke.importTasks": 3})
    _, inputs = import_job(run)
    assert inputs["template"]["taskCount"] == inputs["template"]["parallelism"] == 3
    _, task_timeout, _ = import_deadlines(settings_for("gke", {"gke.importTasks": 3}))
    _, seven, _ = import_deadlines(settings_for("gke"))
    assert inputs["template"]["template"]["timeout"] == f"{task_timeout * 60}s" and task_timeout > seven
    with pytest.raises(ConfigError, match=r"gke\.importTasks = 11: must be 1-10 tasks"):
        settings_for("gke", {"gke.importTasks": 11})
    with pytest.raises(ConfigError, match=r"only used when gke\.modelSource is bucket"):
        settings_for("gke", {"gke.importTasks": 3, "gke.modelSource": "download"})


def test_the_import_runs_as_its_own_account_that_may_only_write_this_bucket(gke):
    _, inputs = import_job(gke)
    account = next(a for a in gke.of_type(ACCOUNT) if "import" in a.name)
    email = f"{unwrap(account.inputs)['accountId']}@my-gcp-project.iam.gserviceaccount.com"
    assert inputs["template"]["template"]["serviceAccount"] == email
    grants = [
        unwrap(r.inputs)
        for r in gke.resources
        if r.type.startswith("gcp:")
        and "iam" in r.type.lower()
        and unwrap(r.inputs).get("member") == f"serviceAccount:{email}"
    ]
    assert grants == [
        {"bucket": gke.outputs["modelBucket"], "role": "roles/storage.objectUser", "member": f"serviceAccount:{email}"}
    ]
    assert not gke.of_type("gcp:serviceaccount/key:Key")  # no long-lived key


def test_the_import_starts_once_the_bucket_exists_without_waiting_for_the_cluster_or_the_pools(gke):
    from cloud_rules.gcp import transitive_dependencies

    job, _ = import_job(gke)
    before = transitive_dependencies(gke, job.urn)
    assert gke.one(BUCKET).urn in before and gke.one("gcp:artifactregistry/repository:Repository").urn in before
    assert gke.one(CLUSTER).urn not in before and not {p.urn for p in gke.of_type(POOL)} & before
    assert not any(r.type.startswith("kubernetes:") and r.urn in before for r in gke.resources)
    # The bucket itself waits only for the APIs: the cluster is for the pods' workload identity bindings.
    assert gke.one(CLUSTER).urn not in transitive_dependencies(gke, gke.one(BUCKET).urn)


def test_the_import_keeps_no_xet_chunk_cache_and_downloads_in_hf_xets_high_performance_mode(gke):
    _, inputs = import_job(gke)
    env = {name: e.get("value") for name, e in import_env(inputs).items()}
    assert env["HF_XET_CHUNK_CACHE_SIZE_BYTES"] == "0" and env["HF_XET_HIGH_PERFORMANCE"] == "1"
    assert env["MEMORY_BYTES"] == str(32 * 1024**3)  # the script keeps at most half of it in files


def test_the_import_waits_are_the_duration_models_and_within_cloud_runs_task_limit(gke):
    from core import durations
    from stacks.gcp.gke import import_deadlines

    settings = settings_for("gke")
    tasks, task_timeout, wait = import_deadlines(settings)
    modelled = durations.gke_import(settings.model, tasks).minutes
    job, inputs = import_job(gke)
    assert inputs["template"]["template"]["timeout"] == f"{task_timeout * 60}s" and task_timeout >= 3 * modelled
    assert job.custom_timeouts["create"] == job.custom_timeouts["update"] == f"{wait}m"
    assert wait >= 2 * task_timeout and task_timeout <= 168 * 60


def test_hf_token_reaches_the_import_only_through_secret_manager(with_token):
    secret = with_token.one("gcp:secretmanager/secret:Secret")
    version = with_token.one("gcp:secretmanager/secretVersion:SecretVersion")
    assert is_secret(version.inputs["secretData"])
    assert unwrap(secret.inputs)["replication"] == {"userManaged": {"replicas": [{"location": "us-central1"}]}}
    job, inputs = import_job(with_token)
    token = import_env(inputs)["HF_TOKEN"]
    assert "value" not in token
    assert token["valueSource"]["secretKeyRef"] == {"secret": unwrap(secret.inputs)["secretId"], "version": "latest"}
    assert version.urn in job.dependencies  # "latest" exists before the execution reads it
    reader = unwrap(with_token.one("gcp:secretmanager/secretIamMember:SecretIamMember").inputs)
    assert reader["role"] == "roles/secretmanager.secretAccessor" and reader["member"] == IMPORT_ACCOUNT
    assert "secretmanager.googleapis.com" in {unwrap(r.inputs)["service"] for r in with_token.of_type(SERVICE)}
    for resource in with_token.resources:
        if resource.type == "gcp:secretmanager/secretVersion:SecretVersion":
            continue
        for text in all_strings(unwrap(resource.inputs)):
            assert HF_TOKEN not in text, resource.name
    assert not [r for r in with_token.of_type("kubernetes:core/v1:Secret") if "hf-token" in r.name]  # bucket mode


def test_the_gpu_nodes_stream_images_from_the_regional_repository(gke):
    from cloud_rules.gcp import transitive_dependencies

    gpu = next(p for p in gke.of_type(POOL) if "gpu" in p.name)
    config = unwrap(gpu.inputs)["nodeConfig"]
    assert config["gcfsConfig"] == {"enabled": True} and config["imageType"] == "COS_CONTAINERD"
    before = transitive_dependencies(gke, gpu.urn)
    streaming = next(
        s for s in gke.of_type(SERVICE) if unwrap(s.inputs)["service"] == "containerfilesystem.googleapis.com"
    )
    role = next(
        r
        for r in gke.of_type("gcp:projects/iAMMember:IAMMember")
        if unwrap(r.inputs)["role"].endswith("serviceUsageConsumer")
    )
    assert {streaming.urn, role.urn} <= before
    assert unwrap(role.inputs)["member"] == f"serviceAccount:{config['serviceAccount']}"


def test_kubernetes_provider_uses_the_exec_plugin_and_every_object_goes_through_it(gke):
    provider = gke.one("pulumi:providers:kubernetes")
    kubeconfig = unwrap(provider.inputs["kubeconfig"])
    assert "command: gke-gcloud-auth-plugin" in kubeconfig and "token:" not in kubeconfig
    assert gke.one(CLUSTER).urn in provider.dependencies
    objects = [r for r in gke.resources if r.type.startswith("kubernetes:")]
    assert objects and all(r.provider.startswith(provider.urn) for r in objects)


def test_plain_kubernetes_objects_validate(gke, with_token):
    # Custom resources: asserted below and in tests/test_observability.py.
    assert sorted(validate_kubernetes(gke)) == [PODMONITORING, RULES]
    assert sorted(validate_kubernetes(with_token)) == [PODMONITORING, RULES]


def test_benchmark_defaults_to_the_reference_run_and_writes_to_the_bucket(gke):
    job = next(o for o in gke.kubernetes_objects() if o["kind"] == "Job" and "benchmark" in o["metadata"]["name"])
    pod = job["spec"]["template"]["spec"]
    argv = pod["containers"][0]["args"]  # the command runs it, then the report (tests/test_benchmark_report.py)
    assert argv[argv.index("--dataset-name") + 1] == "random" and argv[argv.index("--num-prompts") + 1] == "1100"
    assert (
        argv[argv.index("--random-input-len") + 1] == "1000" and argv[argv.index("--random-output-len") + 1] == "1000"
    )
    results = next(v for v in pod["volumes"] if v["name"] == "results")
    assert "only-dir=benchmarks" in results["csi"]["volumeAttributes"]["mountOptions"]
    assert gke.outputs["benchmarkResults"] == f"gs://{gke.outputs['modelBucket']}/benchmarks/"


def test_outputs_name_the_urls_model_and_keep_the_key_secret(gke):
    assert {"apiKey", "privateApiUrl", "servedModelName", "clusterName", "modelBucket", "kubectlHint"} <= set(
        gke.outputs
    )
    assert gke.outputs["servedModelName"] == "deepseek-ai/DeepSeek-R1"
    assert "apiKey" in gke.secret_outputs
    for name, value in gke.outputs.items():
        if name not in gke.secret_outputs:
            assert GENERATED_API_KEY not in json.dumps(value), name
    services = [s for s in gke.kubernetes_objects() if s["kind"] == "Service"]
    assert sorted(s["spec"].get("type", "ClusterIP") for s in services) == ["ClusterIP", "LoadBalancer"]
    internal = next(s for s in services if s["spec"].get("type") == "LoadBalancer")
    assert internal["metadata"]["annotations"] == {"networking.gke.io/load-balancer-type": "Internal"}
    assert "loadBalancerSourceRanges" not in internal["spec"]
    assert gke.outputs["privateApiUrl"] == "http://192.168.0.100:8000/v1" and "publicApiUrl" not in gke.outputs


def test_public_access_adds_a_load_balancer_limited_to_the_allowed_cidrs():
    run = run_stack("gke", {**PEM_TLS, "access.public": True, "access.allowedCidrs": ["198.51.100.0/24"]})
    balancer = next(
        s for s in run.kubernetes_objects() if s["kind"] == "Service" and s["spec"].get("loadBalancerSourceRanges")
    )
    assert balancer["spec"]["loadBalancerSourceRanges"] == ["198.51.100.0/24"]


def test_a_channel_whose_version_cannot_run_a4_is_refused_before_the_cluster(monkeypatch):
    monkeypatch.setattr(CloudMocks, "gke_channel_versions", {"REGULAR": "1.32.2-gke.1297002"})
    record = Run()
    with pytest.raises(ConfigError, match=r"1\.32\.4-gke\.1236000"):
        run_stack("gke", record=record)
    created = {r.type for r in record.resources}
    assert "gcp:projects/service:Service" in created  # the check ran after the GKE API was enabled
    assert not created & {CLUSTER, POOL} and not any(t.startswith("kubernetes:") for t in created)


def test_the_first_preview_on_a_new_project_skips_the_version_check_until_the_gke_api_is_on():
    # Only Service Usage and Cloud Resource Manager are on (tests/cloud_rules/gcp.py): a GKE call would fail.
    run = run_stack("gke", preview=True)
    tokens = [token for token, _ in run.invokes]
    assert "gcp:container/getEngineVersions:getEngineVersions" not in tokens
    assert tokens == ["gcp:organizations/getProject:getProject"]  # Cloud Resource Manager: a prerequisite


def test_up_on_a_new_project_checks_the_version_once_the_gke_api_is_enabled(gke):
    lookups = [args for token, args in gke.invokes if token == "gcp:container/getEngineVersions:getEngineVersions"]
    assert lookups == [{"location": "us-central1", "project": "my-gcp-project"}]


def test_a_project_without_cloud_resource_manager_is_refused_with_the_command_that_enables_it(monkeypatch):
    monkeypatch.setattr(CloudMocks, "disabled_prerequisites", frozenset({"cloudresourcemanager.googleapis.com"}))
    record = Run()
    with pytest.raises(ConfigError) as error:
        run_stack("gke", preview=True, record=record)
    (problem,) = error.value.problems
    assert problem.key == "gcp:project" and "SERVICE_DISABLED" in problem.allowed
    assert problem.fix.startswith(
        "gcloud services enable cloudresourcemanager.googleapis.com serviceusage.googleapis.com "
        "--project my-gcp-project"
    )
    assert [r.type for r in record.resources] == ["pulumi:providers:gcp"]


def test_a_gcp_region_outside_the_us_is_accepted():
    run = run_stack("gke", {"gcp:region": "europe-west4", "gcp:zone": "europe-west4-b"})
    assert run.outputs["servedModelName"]


def test_the_private_api_is_an_internal_load_balancer_and_the_public_one_is_not_internal():
    run = run_stack("gke", {**PEM_TLS, "access.public": True, "access.allowedCidrs": ["198.51.100.0/24"]})
    balancers = {
        s["metadata"]["name"]: s
        for s in run.kubernetes_objects()
        if s["kind"] == "Service" and s["spec"].get("type") == "LoadBalancer"
    }
    assert set(balancers) == {"llm-private", "llm-public"}
    assert balancers["llm-private"]["metadata"]["annotations"]["networking.gke.io/load-balancer-type"] == "Internal"
    assert "networking.gke.io/load-balancer-type" not in balancers["llm-public"]["metadata"]["annotations"]
    assert run.outputs["privateApiUrl"] != run.outputs["publicApiUrl"]


@pytest.fixture(scope="module")
def downloading():
    return run_stack("gke", {"gke.modelSource": "download", "hfToken": HF_TOKEN}, secret_keys=["hfToken"])


def test_download_mode_serves_from_the_hub_into_local_ssd_without_an_import(downloading):
    jobs = [o["metadata"]["name"] for o in downloading.kubernetes_objects() if o["kind"] == "Job"]
    assert not any("import" in name for name in jobs) and any("benchmark" in name for name in jobs)
    pod = serving_pod(downloading)
    container = pod["spec"]["containers"][0]
    argv = container["command"]
    assert argv[:3] == ["vllm", "serve", "deepseek-ai/DeepSeek-R1"]
    assert argv[argv.index("--download-dir") + 1] == "/models" and argv[argv.index("--revision") + 1] == "main"
    known = set(json.loads((Path(__file__).parent.parent / "core" / "engine_flags.json").read_text())["vllm==0.32.0"])
    assert {a for a in argv if a.startswith("--")} <= known  # flags of the pinned vLLM
    model = next(v for v in pod["spec"]["volumes"] if v["name"] == "model")
    assert set(model) == {"name", "emptyDir"} and "medium" not in model["emptyDir"]  # node disk: local SSD
    assert int(model["emptyDir"]["sizeLimit"].removesuffix("Gi")) >= 700
    mount = next(m for m in container["volumeMounts"] if m["name"] == "model")
    assert mount["readOnly"] is False
    env = {e["name"]: e for e in container["env"]}
    assert "HF_HUB_OFFLINE" not in env and env["HF_HUB_ENABLE_HF_TRANSFER"]["value"] == "1"
    assert env["HF_TOKEN"]["valueFrom"]["secretKeyRef"] == {"name": "hf-token", "key": "HF_TOKEN"}
    # The benchmark reads the tokenizer from the Hub too (no shared copy), with the same token.
    bench = next(
        o for o in downloading.kubernetes_objects() if o["kind"] == "Job" and "benchmark" in o["metadata"]["name"]
    )
    bench_container = bench["spec"]["template"]["spec"]["containers"][0]
    assert bench_container["args"][bench_container["args"].index("--model") + 1] == "deepseek-ai/DeepSeek-R1"
    assert {
        "name": "HF_TOKEN",
        "valueFrom": {"secretKeyRef": {"name": "hf-token", "key": "HF_TOKEN"}},
    } in bench_container["env"]
    for resource in downloading.resources:
        if resource.type != "kubernetes:core/v1:Secret":
            assert not any(HF_TOKEN in text for text in all_strings(unwrap(resource.inputs))), resource.name


def test_download_mode_startup_probe_allows_for_the_download(downloading, gke):
    def startup_seconds(run):
        probe = serving_pod(run)["spec"]["containers"][0]["startupProbe"]
        return probe["periodSeconds"] * probe["failureThreshold"]

    # ~700 GiB at the conservative 3 GiB/min is about 4 hours more than the load from the bucket.
    assert startup_seconds(downloading) - startup_seconds(gke) >= 3.5 * 3600
    assert downloading.outputs["loadMinutesEstimate"] > gke.outputs["loadMinutesEstimate"] + 200
    assert sorted(validate_kubernetes(downloading)) == [PODMONITORING, RULES]


def test_download_mode_without_a_token_references_no_secret():
    pod = serving_pod(run_stack("gke", {"gke.modelSource": "download"}))
    assert "HF_TOKEN" not in {e["name"] for e in pod["spec"]["containers"][0]["env"]}


def test_an_unknown_model_source_is_refused_before_any_resource():
    record = Run()
    with pytest.raises(ConfigError, match=r"gke\.modelSource"):
        run_stack("gke", {"gke.modelSource": "s3"}, record=record)
    assert record.resources == []


@pytest.fixture(scope="module")
def rdma():
    return run_stack("gke", {"gke.rdma": True})


def test_rdma_adds_a_gvnic_vpc_and_a_roce_vpc_with_eight_subnets(rdma):
    networks = {unwrap(n.inputs)["name"]: unwrap(n.inputs) for n in rdma.of_type("gcp:compute/network:Network")}
    roce = next(n for n in networks.values() if n.get("networkProfile"))
    assert roce["networkProfile"] == "projects/my-gcp-project/global/networkProfiles/us-central1-b-vpc-roce"
    assert roce["mtu"] == 8896 and roce["autoCreateSubnetworks"] is False
    assert len(networks) == 3  # the cluster's VPC, the gVNIC VPC, the RDMA VPC
    subnets = [unwrap(s.inputs) for s in rdma.of_type("gcp:compute/subnetwork:Subnetwork")]
    rdma_subnets = [s for s in subnets if s["network"].endswith(roce["name"]) or roce["name"] in s["network"]]
    assert len(rdma_subnets) == 8 and all(s["region"] == "us-central1" for s in rdma_subnets)
    assert len({s["ipCidrRange"] for s in subnets}) == len(subnets)  # no overlapping plan


def test_rdma_cluster_runs_dataplane_v2_with_multi_networking_and_the_pool_attaches_nine_networks(rdma):
    cluster = unwrap(rdma.one(CLUSTER).inputs)
    assert cluster["datapathProvider"] == "ADVANCED_DATAPATH" and cluster["enableMultiNetworking"] is True
    extra = a4_pool(rdma)["networkConfig"]["additionalNodeNetworkConfigs"]
    assert len(extra) == 9 and extra[0]["network"].endswith("-gvnic")
    assert {e["network"] for e in extra[1:]} == {extra[1]["network"]} and extra[1]["network"].endswith("-rdma")
    assert [e["subnetwork"] for e in extra[1:]] == [f"{extra[1]['network']}-sub-{i}" for i in range(8)]


def test_rdma_network_objects_are_gvnic_1_and_rdma_0_to_7_with_their_required_fields(rdma):
    assert set(validate_kubernetes(rdma)) == {
        "networking.gke.io/v1/GKENetworkParamSet",
        "networking.gke.io/v1/Network",
        PODMONITORING,
        RULES,
    }
    params = {o["metadata"]["name"]: o["spec"] for o in rdma.kubernetes_objects() if o["kind"] == "GKENetworkParamSet"}
    assert set(params) == {"gvnic-1", *(f"rdma-{i}" for i in range(8))}
    assert params["gvnic-1"]["deviceMode"] == "NetDevice" and params["gvnic-1"]["vpc"].endswith("-gvnic")
    for i in range(8):
        assert params[f"rdma-{i}"]["deviceMode"] == "RDMA"
        assert params[f"rdma-{i}"]["vpcSubnet"] == f"{params['rdma-0']['vpc']}-sub-{i}"
    networks = {o["metadata"]["name"]: o["spec"] for o in rdma.kubernetes_objects() if o["kind"] == "Network"}
    assert set(networks) == set(params)
    assert all(
        n["type"] == "Device"
        and n["parametersRef"] == {"group": "networking.gke.io", "kind": "GKENetworkParamSet", "name": name}
        for name, n in networks.items()
    )


def test_rdma_installs_the_pinned_gib_nccl_plugin_on_the_b200_nodes(rdma):
    spec = rdma.kubernetes_object("DaemonSet", "nccl-rdma-installer")["spec"]["template"]["spec"]
    init = spec["initContainers"][0]
    assert init["image"] == "us-docker.pkg.dev/gce-ai-infra/gpudirect-gib/nccl-plugin-gib:v1.1.1"
    script = init["args"][0]
    assert "/scripts/container_entry.sh install\n" in script and "--install-nccl" not in script  # NCCL: the image's
    assert {v["hostPath"]["path"] for v in spec["volumes"]} == {
        "/home/kubernetes/bin/gib",
        "/home/kubernetes/bin/nvidia/lib64",
    }
    terms = spec["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"]
    assert terms[0]["matchExpressions"][0]["values"] == ["nvidia-b200"]
    assert all(":" in c["image"] and not c["image"].endswith(":latest") for c in spec["containers"] + [init])


def test_without_rdma_serving_and_the_cluster_are_unchanged(gke, rdma):
    cluster = unwrap(gke.one(CLUSTER).inputs)
    assert "datapathProvider" not in cluster and "enableMultiNetworking" not in cluster
    assert "networkConfig" not in a4_pool(gke)
    rdma_kinds = ("DaemonSet", "Network", "GKENetworkParamSet")
    assert [o["metadata"]["name"] for o in gke.kubernetes_objects() if o["kind"] in rdma_kinds] == [
        "llm-engine-prepull"
    ]
    assert serving_pod(gke) == serving_pod(rdma)


@pytest.fixture(scope="module")
def two_nodes():
    return run_stack("gke", {"gke.rdma": True, "placement.podsPerReplica": 2, "gpuNodes.min": 2})


def test_a_copy_over_two_nodes_is_a_leader_worker_set_whose_pods_attach_the_rdma_nics(two_nodes):
    lws = two_nodes.kubernetes_object("LeaderWorkerSet", "llm")["spec"]
    assert lws["leaderWorkerTemplate"]["size"] == 2
    assert lws["rolloutStrategy"]["rollingUpdateConfiguration"]["maxSurge"] == 0  # no third node to surge into
    leader = lws["leaderWorkerTemplate"]["leaderTemplate"]
    worker = lws["leaderWorkerTemplate"]["workerTemplate"]
    assert "--pipeline-parallel-size" in leader["spec"]["containers"][0]["args"]
    for template in (leader, worker):
        annotations = template["metadata"]["annotations"]
        assert annotations["networking.gke.io/default-interface"] == "eth0"
        interfaces = json.loads(annotations["networking.gke.io/interfaces"])
        assert interfaces[0] == {"interfaceName": "eth0", "network": "default"}
        assert [i["network"] for i in interfaces[1:]] == [f"rdma-{i}" for i in range(8)]
        assert len({i["interfaceName"] for i in interfaces}) == 9
        spec = template["spec"]
        container = spec["containers"][0]
        env = {e["name"]: e.get("value") for e in container["env"]}
        assert env["NCCL_NET"] == "gIB" and env["NCCL_PLUGIN_PATH"] == "/usr/local/gib/lib64"
        assert env["LLM_EXTRA_LIBRARY_PATH"] == "/usr/local/gib/lib64:/usr/local/nvidia/lib64"
        assert env["LLM_SOCKET_IFNAME"] == "eth0" and env["LLM_RUN_LDCONFIG"] == "1"
        assert "LD_LIBRARY_PATH" not in env  # the image's own path stays; the Ray prelude prepends ours
        assert env["LLM_NCCL_ENV_SCRIPT"] == "/usr/local/gib/scripts/set_nccl_env.sh"
        host = {v["hostPath"]["path"]: v["name"] for v in spec["volumes"] if "hostPath" in v}
        assert host == {"/home/kubernetes/bin/gib": "gib", "/home/kubernetes/bin/nvidia": "nvidia-host"}
        mounts = {m["name"]: m for m in container["volumeMounts"]}
        assert mounts["gib"]["mountPath"] == "/usr/local/gib" and mounts["gib"]["readOnly"] is True
        assert mounts["nvidia-host"]["mountPath"] == "/usr/local/nvidia"
        assert container["securityContext"]["privileged"] is False  # the RDMA NICs need no privileges
        assert spec["serviceAccountName"] == "llm-models"  # both read the bucket
        # Both stream from gs:// (docs/loading.md): no GCS FUSE volume or sidecar.
        assert not any("csi" in v for v in spec["volumes"]) and "gke-gcsfuse/volumes" not in annotations
        assert {
            "name": "LLM_MODEL_URI",
            "value": "gs://" + two_nodes.outputs["modelBucket"] + "/models/deepseek-ai/DeepSeek-R1",
        } in container["env"]


def test_a_copy_over_two_nodes_waits_for_the_lws_controller_and_the_network_objects(two_nodes):
    lws = two_nodes.one("kubernetes:leaderworkerset.x-k8s.io/v1:LeaderWorkerSet")
    release = two_nodes.one("kubernetes:helm.sh/v3:Release")
    assert release.urn in lws.dependencies
    networks = two_nodes.of_type("kubernetes:networking.gke.io/v1:Network")
    assert len(networks) == 9 and all(n.urn in lws.dependencies for n in networks)
    assert sorted(t for t in validate_kubernetes(two_nodes) if "networking.gke.io" not in t) == [
        "leaderworkerset.x-k8s.io/v1/LeaderWorkerSet",
        PODMONITORING,
        RULES,
    ]


def test_a_copy_over_two_nodes_surges_when_the_pool_has_two_spare_nodes():
    run = run_stack("gke", {"gke.rdma": True, "placement.podsPerReplica": 2, "gpuNodes.min": 4})
    strategy = run.kubernetes_object("LeaderWorkerSet", "llm")["spec"]["rolloutStrategy"]
    assert strategy["rollingUpdateConfiguration"] == {"maxSurge": 1, "maxUnavailable": 0}


def test_a_small_model_runs_on_one_l4_with_its_local_ssd_and_a_serving_pod_of_one_gpu():
    run = run_stack(
        "gke",
        {
            "gke.machineType": None,
            "model.name": "DeepSeek-R1-Distill-Qwen-7B",
            "workload": {},
            "gke.capacity.mode": "on-demand",
        },
    )
    pool = next(unwrap(p.inputs) for p in run.of_type(POOL) if "gpu" in p.name)
    config = pool["nodeConfig"]
    assert config["machineType"] == "g2-standard-8"
    assert config["guestAccelerators"][0]["type"] == "nvidia-l4" and config["guestAccelerators"][0]["count"] == 1
    assert config["ephemeralStorageLocalSsdConfig"] == {"localSsdCount": 1}
    container = serving_pod(run)["spec"]["containers"][0]
    assert container["resources"]["limits"]["nvidia.com/gpu"] == "1"
    assert "--tensor-parallel-size" not in container["command"] or (
        container["command"][container["command"].index("--tensor-parallel-size") + 1] == "1"
    )


def test_gpu_nodes_are_not_upgraded_on_their_own_and_maintenance_has_a_window(gke):
    policy = unwrap(gke.one(CLUSTER).inputs)["maintenancePolicy"]
    assert policy["dailyMaintenanceWindow"] == {"startTime": "09:00"}
    assert policy["maintenanceExclusions"] == [
        {
            "exclusionName": "no-minor-or-node-upgrades",
            "startTime": "2025-12-01T00:00:00Z",
            "exclusionOptions": {"scope": "NO_MINOR_OR_NODE_UPGRADES", "endTimeBehavior": "UNTIL_END_OF_SUPPORT"},
        }
    ]
    run = run_stack("gke", {"gke.maintenance.holdNodeUpgrades": False, "gke.maintenance.windowStart": "22:30"})
    policy = unwrap(run.one(CLUSTER).inputs)["maintenancePolicy"]
    assert policy == {"dailyMaintenanceWindow": {"startTime": "22:30"}}


def test_a_copy_over_two_nodes_lets_the_control_plane_reach_the_lws_webhook(two_nodes, gke):
    (rule,) = [unwrap(f.inputs) for f in two_nodes.of_type("gcp:compute/firewall:Firewall") if "webhooks" in f.name]
    assert rule["direction"] == "INGRESS" and rule["allows"] == [{"protocol": "tcp", "ports": ["9443"]}]
    assert rule["sourceRanges"] == ["10.0.0.0/20"]  # the node subnet: a PSC cluster's control plane
    tags = {t for p in two_nodes.of_type(POOL) for t in unwrap(p.inputs)["nodeConfig"]["tags"]}
    assert rule["targetTags"] == ["llm-gke-node"] and tags == {"llm-gke-node"}
    assert not [f for f in gke.of_type("gcp:compute/firewall:Firewall") if "webhooks" in f.name]  # no LWS, no rule


def test_a_destroy_that_cannot_reach_the_api_server_still_deletes_the_gpu_pool():
    """Kubernetes objects are skipped on destroy when the cluster goes too (deleted_with), except the
    LoadBalancer Services, whose cloud load balancers GKE removes only when the Service is deleted; and
    nothing deleted through the API depends on the GPU pool, so an unreachable API server cannot keep the
    pool (and its bill) alive."""
    from cloud_rules.gcp import transitive_dependencies

    for run in (
        run_stack("gke"),
        run_stack("gke", {"gke.rdma": True, "placement.podsPerReplica": 2, "gpuNodes.min": 2}),
    ):
        cluster = run.one(CLUSTER)
        gpu_pool = next(p for p in run.of_type(POOL) if "gpu" in p.name)
        through_the_api = []
        for r in run.resources:
            if not r.type.startswith("kubernetes:"):
                continue
            inputs = unwrap(r.inputs)
            balancer = r.type == "kubernetes:core/v1:Service" and inputs["spec"].get("type") == "LoadBalancer"
            assert r.deleted_with == ("" if balancer else cluster.urn), r.name
            if not r.deleted_with:
                through_the_api.append(r)
        assert through_the_api and all(gpu_pool.urn not in transitive_dependencies(run, r.urn) for r in through_the_api)


def test_both_pools_boot_with_secure_boot_and_integrity_monitoring(gke):
    for pool in gke.of_type(POOL):
        shielded = unwrap(pool.inputs)["nodeConfig"]["shieldedInstanceConfig"]
        assert shielded == {"enableSecureBoot": True, "enableIntegrityMonitoring": True}, pool.name


def test_the_public_load_balancer_is_backend_service_based_and_the_bucket_keeps_no_soft_deleted_objects():
    run = run_stack("gke", {**PEM_TLS, "access.public": True, "access.allowedCidrs": ["198.51.100.0/24"]})
    public = run.kubernetes_object("Service", "llm-public")
    assert public["metadata"]["annotations"] == {"cloud.google.com/l4-rbs": "enabled"}
    private = run.kubernetes_object("Service", "llm-private")
    assert "cloud.google.com/l4-rbs" not in private["metadata"]["annotations"]  # internal: no target pools anyway
    assert unwrap(run.one(BUCKET).inputs)["softDeletePolicy"] == {"retentionDurationSeconds": 0}


def test_managed_prometheus_scrapes_the_serving_pods_metrics_port(gke, two_nodes):
    monitoring = gke.kubernetes_object("PodMonitoring", "llm-serving")
    assert monitoring["apiVersion"] == "monitoring.googleapis.com/v1" and monitoring["metadata"]["namespace"] == "llm"
    assert monitoring["spec"] == {
        "selector": {"matchLabels": {"app": "llm"}},
        "endpoints": [{"port": METRICS_PORT, "path": "/metrics", "interval": "30s"}],
    }
    pod_labels = serving_pod(gke)["metadata"]["labels"]
    assert pod_labels["app"] == "llm"
    # A copy over several pods: only the leader serves the API and its metrics.
    leaders = two_nodes.kubernetes_object("PodMonitoring", "llm-serving")["spec"]["selector"]["matchLabels"]
    assert leaders == {"app": "llm", "leaderworkerset.sigs.k8s.io/worker-index": "0"}


def test_the_small_example_serves_the_7b_on_one_l4_machine_on_demand():
    settings = settings_for("gke-l4")
    assert settings.gke.machine.name == "g2-standard-8" and settings.gke.capacity.mode == "on-demand"
    assert (settings.placement.gpus_per_pod, settings.placement.gpu.name) == (1, "L4") and settings.placement.fit.fits
    run = run_stack("gke-l4")
    pool = next(unwrap(p.inputs) for p in run.of_type(POOL) if "gpu" in p.name)
    assert pool["nodeConfig"]["machineType"] == "g2-standard-8" and pool["initialNodeCount"] == 1
    assert pool["autoscaling"] == {"totalMinNodeCount": 1, "totalMaxNodeCount": 2}  # with scaling.maxReplicas 2
    assert run.kubernetes_object("HorizontalPodAutoscaler")["spec"]["maxReplicas"] == 2
    assert pool["nodeConfig"]["reservationAffinity"] == {"consumeReservationType": "ANY_RESERVATION"}
    assert serving_pod(run)["spec"]["containers"][0]["resources"]["limits"]["nvidia.com/gpu"] == "1"
    assert sorted(validate_kubernetes(run)) == [PODMONITORING, RULES]
