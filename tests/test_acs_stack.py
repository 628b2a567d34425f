"""The acs target as deployed: network, cluster, model store, serving, Services, options and secrecy."""

import json

import pytest
from harness import (
    GENERATED_API_KEY,
    KUBECONFIG,
    PEM_TLS,
    PRIVATE_LB_IP,
    PUBLIC_LB_IP,
    all_strings,
    is_secret,
    run_stack,
    unwrap,
    validate_kubernetes,
)

CLUSTER = "alicloud:cs/managedKubernetes:ManagedKubernetes"
SWITCH = "alicloud:vpc/switch:Switch"
BUCKET = "alicloud:oss/bucket:Bucket"
K8S_PROVIDER = "pulumi:providers:kubernetes"
COMPUTE_LABELS = {
    "alibabacloud.com/compute-class": "gpu",
    "alibabacloud.com/gpu-model-series": "H20",
    "alibabacloud.com/compute-qos": "default",
}


@pytest.fixture(scope="module")
def acs():
    return run_stack("acs")


@pytest.fixture(scope="module")
def r1():
    return run_stack("acs-r1")


def serving_pod(run, kind="Deployment"):
    if kind == "Deployment":
        deployment = run.kubernetes_object("Deployment")
        return deployment, deployment["spec"]["template"]
    lws = run.kubernetes_object("LeaderWorkerSet")
    return lws, lws["spec"]["leaderWorkerTemplate"]["leaderTemplate"]


def test_cluster_is_acs_in_two_zones_with_pod_vswitches_and_nat_egress(acs):
    switches = {unwrap(s.inputs)["vswitchName"]: unwrap(s.inputs) for s in acs.of_type(SWITCH)}
    assert {(v["zoneId"], v["cidrBlock"]) for v in switches.values()} == {
        ("cn-hangzhou-i", "192.168.0.0/24"),
        ("cn-hangzhou-j", "192.168.1.0/24"),
        ("cn-hangzhou-i", "192.168.128.0/18"),
        ("cn-hangzhou-j", "192.168.192.0/18"),
    }
    cluster = acs.one(CLUSTER)
    spec = unwrap(cluster.inputs)
    assert spec["profile"] == "Acs" and len(spec["vswitchIds"]) == 2 and len(spec["podVswitchIds"]) == 2
    assert spec["newNatGateway"] is False and spec["slbInternetEnabled"] is True
    assert spec["deletionProtection"] is False and not cluster.protect  # dev-like: destroy works
    assert {o["resourceType"] for o in spec["deleteOptions"]} >= {"SLB", "SLS_Data"}
    assert len(acs.of_type("alicloud:vpc/snatEntry:SnatEntry")) == 4  # every vSwitch reaches ModelScope


def test_kubernetes_provider_uses_the_secret_short_lived_kubeconfig_of_the_cluster(acs):
    provider = acs.one(K8S_PROVIDER)
    assert is_secret(provider.inputs["kubeconfig"]) and unwrap(provider.inputs["kubeconfig"]) == KUBECONFIG
    cluster = acs.one(CLUSTER)
    assert cluster.urn in provider.dependencies
    assert provider.inputs["clusterIdentifier"] == f"{cluster.name}-id"
    _token, args = next(i for i in acs.invokes if i[0] == "alicloud:cs/getClusterCredential:getClusterCredential")
    assert args["temporaryDurationMinutes"] == 4320


def test_every_kubernetes_object_goes_through_the_cluster_provider_so_destroy_deletes_it_first(acs):
    provider = acs.one(K8S_PROVIDER)
    objects = [r for r in acs.resources if r.type.startswith("kubernetes:")]
    assert objects and all(r.provider.startswith(provider.urn) for r in objects), [
        r.name for r in objects if not r.provider.startswith(provider.urn)
    ]


def test_every_plain_kubernetes_object_validates_against_the_schema(acs, r1):
    assert validate_kubernetes(acs) == ["monitoring.coreos.com/v1/PodMonitor"]  # tests/test_observability.py
    assert set(validate_kubernetes(r1)) >= {"leaderworkerset.x-k8s.io/v1/LeaderWorkerSet"}


def test_model_bucket_is_private_encrypted_and_emptied_on_destroy(acs):
    bucket = acs.one(BUCKET)
    spec = unwrap(bucket.inputs)
    assert spec["serverSideEncryptionRule"]["sseAlgorithm"] in ("AES256", "KMS")
    assert spec.get("forceDestroy") is True and not bucket.retain_on_delete
    assert "acl" not in spec
    assert unwrap(acs.one("alicloud:oss/bucketAcl:BucketAcl").inputs)["acl"] == "private"


def test_r1_keeps_its_690_gb_model_bucket_on_destroy(r1):
    bucket = r1.one(BUCKET)
    assert bucket.retain_on_delete and not bucket.protect  # destroy completes and leaves it


def test_serving_reads_the_model_read_only_from_oss_on_the_internal_endpoint(acs):
    volumes = [o for o in acs.kubernetes_objects() if o["kind"] == "PersistentVolume"]
    assert volumes and all(v["spec"]["csi"]["driver"] == "ossplugin.csi.alibabacloud.com" for v in volumes)
    assert all(v["spec"]["csi"]["volumeAttributes"]["url"] == "oss-cn-hangzhou-internal.aliyuncs.com" for v in volumes)
    _, pod = serving_pod(acs)
    mounts = pod["spec"]["containers"][0]["volumeMounts"]
    model_mount = next(m for m in mounts if m["mountPath"] == "/models")
    assert model_mount["readOnly"] is True
    claim = next(v for v in pod["spec"]["volumes"] if v["name"] == model_mount["name"])["persistentVolumeClaim"]
    serving_pv = next(
        v
        for v in volumes
        if v["metadata"]["name"]
        == acs.kubernetes_object("PersistentVolumeClaim", claim["claimName"])["spec"]["volumeName"]
    )
    assert "ReadOnlyMany" in serving_pv["spec"]["accessModes"]


def test_acs_labels_are_on_the_pod_template_only(acs):
    deployment, pod = serving_pod(acs)
    assert COMPUTE_LABELS.items() <= pod["metadata"]["labels"].items()
    assert not set(COMPUTE_LABELS) & set(deployment["spec"]["selector"]["matchLabels"])


def test_qwq_pod_is_sized_like_the_reference(acs):
    _, pod = serving_pod(acs)
    container = pod["spec"]["containers"][0]
    assert container["resources"]["limits"] == {"cpu": "16", "memory": "128Gi", "nvidia.com/gpu": "1"}
    argv = container.get("command", []) + container.get("args", [])
    assert "/models/Qwen/QwQ-32B" in argv and "qwq-32b" in argv
    shm = next(v for v in pod["spec"]["volumes"] if v.get("emptyDir", {}).get("medium") == "Memory")
    assert any(m["mountPath"] == "/dev/shm" and m["name"] == shm["name"] for m in container["volumeMounts"])
    startup = container["startupProbe"]
    assert "127.0.0.1:8001/health" in startup["exec"]["command"][-1]
    assert startup["periodSeconds"] * startup["failureThreshold"] >= 8 * 60  # QwQ loads in ~8 minutes


def test_no_secret_literal_in_any_resource_except_secrets(acs):
    for resource in acs.resources:
        if resource.type in (
            "kubernetes:core/v1:Secret",
            "alicloud:oos/secretParameter:SecretParameter",
            K8S_PROVIDER,
        ):  # each holds its secret as a Pulumi secret (asserted elsewhere)
            continue
        for text in all_strings(unwrap(resource.inputs)):
            assert (
                GENERATED_API_KEY not in text
                and "KUBE-TOKEN-SECRET" not in text
                and "RAM-ACCESS-KEY-SECRET" not in text
            ), resource.name
    for secret in acs.of_type("kubernetes:core/v1:Secret"):
        data = secret.inputs.get("stringData") or secret.inputs.get("data")
        assert is_secret(data) or all(is_secret(v) for v in data.values()), secret.name


def test_engine_reads_the_key_from_the_secret(acs):
    _, pod = serving_pod(acs)
    env = {e["name"]: e for e in pod["spec"]["containers"][0]["env"]}
    assert "secretKeyRef" in env["VLLM_API_KEY"]["valueFrom"]


def test_serving_waits_for_the_model_import(acs):
    invocations = [r for r in acs.of_type("alicloud:ecs/ecsInvocation:EcsInvocation") if "-import-" in r.name]
    deployment = acs.one("kubernetes:apps/v1:Deployment")
    assert invocations and all(i.urn in deployment.dependencies for i in invocations)
    assert all(i.custom_timeouts["create"] for i in invocations)  # `pulumi up` waits for the import, bounded


def test_private_load_balancer_always_public_only_when_asked(acs):
    services = {s["metadata"]["name"]: s for s in acs.kubernetes_objects() if s["kind"] == "Service"}
    balancers = [s for s in services.values() if s["spec"]["type"] == "LoadBalancer"]
    assert len(balancers) == 1
    assert (
        balancers[0]["metadata"]["annotations"]["service.beta.kubernetes.io/alibaba-cloud-loadbalancer-address-type"]
        == "intranet"
    )
    assert acs.outputs["privateApiUrl"] == f"http://{PRIVATE_LB_IP}:8000/v1"
    assert "publicApiUrl" not in acs.outputs


def test_public_load_balancer_only_from_the_allowed_cidrs():
    run = run_stack("acs", {**PEM_TLS, "access.public": True, "access.allowedCidrs": ["203.0.113.0/24"]})
    public = [
        s for s in run.kubernetes_objects() if s["kind"] == "Service" and s["spec"].get("loadBalancerSourceRanges")
    ]
    assert len(public) == 1
    spec = public[0]["spec"]
    assert spec["loadBalancerSourceRanges"] == ["203.0.113.0/24"] and spec["externalTrafficPolicy"] == "Local"
    assert [p["port"] for p in spec["ports"]] == [8000]
    assert run.outputs["publicApiUrl"] == f"https://{PUBLIC_LB_IP}:8000/v1"


def test_outputs_name_the_urls_model_and_keep_secrets_secret(acs):
    assert {
        "apiKey",
        "privateApiUrl",
        "servedModelName",
        "curlCommand",
        "clusterId",
        "modelBucket",
        "kubeconfig",
    } <= set(acs.outputs)
    assert acs.outputs["servedModelName"] == "qwq-32b"
    assert {"apiKey", "kubeconfig"} <= acs.secret_outputs
    assert acs.outputs["apiKey"] == GENERATED_API_KEY
    for name, value in acs.outputs.items():
        if name not in acs.secret_outputs:
            assert GENERATED_API_KEY not in json.dumps(value) and "KUBE-TOKEN" not in json.dumps(value), name


def test_jump_host_fetches_its_own_kubeconfig_with_its_role_and_no_secret_passes_through_pulumi(acs):
    import base64

    host = next(r for r in acs.of_type("alicloud:ecs/instance:Instance") if "jump" in r.name)
    user_data = base64.b64decode(unwrap(host.inputs)["userData"]).decode()
    assert "kubectl" in user_data and "alibabacloud_cs20151215" in user_data and "KUBE-TOKEN" not in user_data
    assert unwrap(host.inputs)["internetMaxBandwidthOut"] == 0  # no SSH asked: no public address
    assert not [r for r in acs.of_type("alicloud:oos/secretParameter:SecretParameter") if "kubeconfig" in r.name]
    command = next(r for r in acs.of_type("alicloud:ecs/command:Command") if "kubeconfig" in r.name)
    script = base64.b64decode(unwrap(command.inputs)["commandContent"]).decode()
    assert "CLUSTER_ID=llm-acs-cluster-id" in script and "KUBE-TOKEN" not in script and "oos-secret" not in script
    # The role may fetch this one cluster's kubeconfig and holds the cluster's admin RBAC role.
    policy = next(r for r in acs.of_type("alicloud:ram/policy:Policy") if "jump" in r.name)
    statement = json.loads(unwrap(policy.inputs)["policyDocument"])["Statement"][0]
    assert "cs:DescribeClusterUserKubeconfig" in statement["Action"]
    assert statement["Resource"] == ["acs:cs:cn-hangzhou:1234567890123456:cluster/llm-acs-cluster-id"]
    permission = unwrap(acs.one("alicloud:cs/kubernetesPermission:KubernetesPermission").inputs)
    assert permission["permissions"] == [
        {"cluster": "llm-acs-cluster-id", "roleType": "cluster", "roleName": "admin", "isRamRole": True}
    ]
    invocation = next(r for r in acs.of_type("alicloud:ecs/ecsInvocation:EcsInvocation") if "kubeconfig" in r.name)
    waits_for = {acs.by_urn(u).type for u in invocation.dependencies}
    assert {
        "alicloud:ecs/ramRoleAttachment:RamRoleAttachment",
        "alicloud:cs/kubernetesPermission:KubernetesPermission",
    } <= waits_for
    assert not invocation.has_replacement_trigger  # no fresh credential, no re-run on every `pulumi up`


def test_jump_host_can_be_left_out():
    run = run_stack("acs", {"acs.jumpHost.enabled": False})
    assert sorted(i.name for i in run.of_type("alicloud:ecs/instance:Instance")) == [
        "llm-acs-import-0-instance",
        "llm-acs-import-1-instance",
        "llm-acs-import-2-instance",
    ]  # only the model import workers


def test_deletion_protection_protects_the_cluster():
    cluster = run_stack("acs", {"deletionProtection": True}).one(CLUSTER)
    assert unwrap(cluster.inputs)["deletionProtection"] is True and cluster.protect


def test_r1_spreads_one_copy_over_two_pods_of_eight_h20(r1):
    lws, leader = serving_pod(r1, "LeaderWorkerSet")
    template = lws["spec"]["leaderWorkerTemplate"]
    assert template["size"] == 2 and "workerTemplate" in template
    assert lws["spec"]["replicas"] == 1
    container = leader["spec"]["containers"][0]
    text = " ".join(container.get("command", []) + container.get("args", []))
    assert "--tensor-parallel-size 8" in text and "--pipeline-parallel-size 2" in text
    assert "--distributed-executor-backend ray" in text
    assert container["resources"]["limits"]["nvidia.com/gpu"] == "8"
    assert COMPUTE_LABELS.items() <= leader["metadata"]["labels"].items()
    release = next(r for r in r1.of_type("kubernetes:helm.sh/v3:Release") if "lws" in r.name)
    spec = unwrap(release.inputs)
    assert spec["chart"].endswith("/charts-incubator/lws-0.1.0.tgz")  # Alibaba's catalog, not registry.k8s.io
    manager = spec["values"]["image"]["manager"]
    assert manager["repository"] == "registry-cn-hangzhou-vpc.ack.aliyuncs.com/acs/lws" and manager["tag"] == "v0.5.0"
    assert release.urn in r1.one("kubernetes:leaderworkerset.x-k8s.io/v1:LeaderWorkerSet").dependencies


def test_r1_caches_the_model_with_fluid_and_benchmarks_with_sharegpt(r1):
    kinds = {o["kind"] for o in r1.kubernetes_objects()}
    assert {"Dataset", "JindoRuntime", "DataLoad"} <= kinds
    bench = next(o for o in r1.kubernetes_objects() if o["kind"] == "Job" and "benchmark" in o["metadata"]["name"])
    argv = bench["spec"]["template"]["spec"]["containers"][0]["args"]  # the command runs it, then the report
    assert argv[:3] == ["vllm", "bench", "serve"]
    assert argv[argv.index("--dataset-name") + 1] == "sharegpt" and argv[argv.index("--num-prompts") + 1] == "200"


def test_rollouts_start_the_new_pod_first_since_acs_provisions_gpus_per_pod(acs):
    strategy = acs.kubernetes_object("Deployment")["spec"]["strategy"]["rollingUpdate"]
    assert (strategy["maxSurge"], strategy["maxUnavailable"]) == (1, 0)


def test_a_kept_bucket_is_adopted_by_name_instead_of_created():
    run = run_stack("acs", {"modelStore.bucket": "llm-acs-models-kept", "modelStore.adopt": True})
    assert not run.of_type(BUCKET) and not run.of_type("alicloud:oss/bucketAcl:BucketAcl")
    assert run.outputs["modelBucket"] == "llm-acs-models-kept"
    volumes = [o for o in run.kubernetes_objects() if o["kind"] == "PersistentVolume"]
    assert {v["spec"]["csi"]["volumeAttributes"]["bucket"] for v in volumes} == {"llm-acs-models-kept"}


def test_a_private_endpoint_points_the_provider_at_the_api_servers_intranet_address():
    run = run_stack("acs", {"cluster.publicEndpoint": False})
    assert unwrap(run.one(CLUSTER).inputs)["slbInternetEnabled"] is False
    kubeconfig = unwrap(run.one(K8S_PROVIDER).inputs["kubeconfig"])
    assert "server: https://192.168.0.200:6443" in kubeconfig and "47.96.0.30" not in kubeconfig
    assert is_secret(run.one(K8S_PROVIDER).inputs["kubeconfig"])


@pytest.mark.parametrize("stack", ["acs", "ack", "ack-edge"])
def test_every_oss_volume_asks_ossfs_for_the_v4_signature_in_the_stacks_region(stack):
    """OSS refuses V1 signatures for buckets created since 2025-09-01 and ossfs 1.0 signs with V1 unless told:
    the CSI driver turns sigVersion v4 into `-o sigv4 -o region=` (kubernetes-sigs/alibaba-cloud-csi-driver)."""
    run = run_stack(stack)
    volumes = [unwrap(v.inputs) for v in run.of_type("kubernetes:core/v1:PersistentVolume")]
    assert volumes
    for volume in volumes:
        attributes = volume["spec"]["csi"]["volumeAttributes"]
        assert (attributes["sigVersion"], attributes["region"]) == ("v4", "cn-hangzhou"), volume["metadata"]["name"]
