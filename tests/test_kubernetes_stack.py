"""The kubernetes target: the shared workload on an existing cluster, private unless asked."""

import pytest
from harness import (
    GENERATED_API_KEY,
    PEM_TLS,
    PUBLIC_LB_IP,
    all_strings,
    is_secret,
    run_stack,
    unwrap,
    validate_kubernetes,
)


@pytest.fixture(scope="module")
def existing():
    return run_stack("kubernetes")


def test_uses_the_ambient_kubeconfig_and_creates_no_cloud_resources(existing):
    provider = existing.one("pulumi:providers:kubernetes")
    assert "kubeconfig" not in provider.inputs
    assert not [r for r in existing.resources if r.type.startswith(("alicloud:", "gcp:"))]


def test_pods_are_sized_to_fit_an_ordinary_gpu_node(existing):
    container = existing.kubernetes_object("Deployment")["spec"]["template"]["spec"]["containers"][0]
    assert container["resources"]["limits"] == {"cpu": "4", "memory": "24Gi", "nvidia.com/gpu": "1"}


def test_a_retained_model_volume_is_adopted_by_the_next_up():
    run = run_stack("kubernetes", {"modelStore.retain": True})
    assert run.one("pulumi:providers:kubernetes").inputs["upsertExistingObjects"] in (True, "true")
    assert run.one("kubernetes:core/v1:Namespace").retain_on_delete
    assert run.one("kubernetes:core/v1:PersistentVolumeClaim").retain_on_delete


def test_a_kubeconfig_from_config_stays_secret():
    run = run_stack(
        "kubernetes", {"kubernetes:kubeconfig": "apiVersion: v1\nkind: Config\n"}, secret_keys=["kubernetes:kubeconfig"]
    )
    assert is_secret(run.one("pulumi:providers:kubernetes").inputs["kubeconfig"])


def test_model_goes_once_into_a_pvc_that_serving_mounts_read_only(existing):
    claim = existing.kubernetes_object("PersistentVolumeClaim")
    assert claim["spec"]["accessModes"] == ["ReadWriteOnce"] and "storageClassName" not in claim["spec"]
    deployment = existing.kubernetes_object("Deployment")
    volumes = deployment["spec"]["template"]["spec"]["volumes"]
    assert any(v.get("persistentVolumeClaim", {}).get("claimName") == claim["metadata"]["name"] for v in volumes)
    job = next(r for r in existing.of_type("kubernetes:batch/v1:Job") if "import" in r.name)
    assert job.urn in existing.one("kubernetes:apps/v1:Deployment").dependencies


def test_storage_class_and_shared_access_when_several_pods_read_the_model():
    run = run_stack("kubernetes", {"kubernetes.storageClass": "nfs-client", "scaling.replicas": 2})
    claim = run.kubernetes_object("PersistentVolumeClaim")
    assert claim["spec"]["storageClassName"] == "nfs-client" and claim["spec"]["accessModes"] == ["ReadWriteMany"]
    assert run.kubernetes_object("PodDisruptionBudget")


def test_private_by_default_clusterip_only(existing):
    services = [o for o in existing.kubernetes_objects() if o["kind"] == "Service"]
    assert [s["spec"].get("type", "ClusterIP") for s in services] == ["ClusterIP"]
    assert existing.outputs["privateApiUrl"].endswith(".svc.cluster.local:8000/v1")
    assert "publicApiUrl" not in existing.outputs


def test_public_access_adds_a_load_balancer_limited_to_the_allowed_cidrs():
    run = run_stack("kubernetes", {**PEM_TLS, "access.public": True, "access.allowedCidrs": ["198.51.100.0/24"]})
    balancer = next(
        s for s in run.kubernetes_objects() if s["kind"] == "Service" and s["spec"]["type"] == "LoadBalancer"
    )
    assert balancer["spec"]["loadBalancerSourceRanges"] == ["198.51.100.0/24"]
    assert run.outputs["publicApiUrl"] == f"https://{PUBLIC_LB_IP}:8000/v1"


def test_updates_replace_the_pod_in_place_because_the_cluster_may_have_no_spare_gpu(existing):
    strategy = existing.kubernetes_object("Deployment")["spec"]["strategy"]["rollingUpdate"]
    assert (strategy["maxSurge"], strategy["maxUnavailable"]) == (0, 1)


def test_gpu_pods_tolerate_the_gpu_taint_and_objects_validate(existing):
    pod = existing.kubernetes_object("Deployment")["spec"]["template"]["spec"]
    assert {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"} in pod["tolerations"]
    assert validate_kubernetes(existing) == []


def test_key_is_secret_and_never_a_literal(existing):
    assert "apiKey" in existing.secret_outputs
    for resource in existing.resources:
        if resource.type == "kubernetes:core/v1:Secret":
            continue
        assert not any(GENERATED_API_KEY in t for t in all_strings(unwrap(resource.inputs))), resource.name


def test_benchmark_job_targets_the_private_service_with_the_key_from_the_secret():
    run = run_stack("kubernetes", {"benchmark.enabled": True, "benchmark.prompts": 50})
    job = next(o for o in run.kubernetes_objects() if o["kind"] == "Job" and "benchmark" in o["metadata"]["name"])
    container = job["spec"]["template"]["spec"]["containers"][0]
    env = {e["name"]: e for e in container["env"]}
    assert "secretKeyRef" in env["OPENAI_API_KEY"]["valueFrom"]
    assert env["BASE_URL"]["value"].endswith(".svc.cluster.local:8000")
    argv = container["command"]
    assert argv[argv.index("--dataset-name") + 1] == "random" and argv[argv.index("--num-prompts") + 1] == "50"
    assert job["metadata"]["annotations"]["pulumi.com/skipAwait"] == "true"  # never holds `pulumi up`
