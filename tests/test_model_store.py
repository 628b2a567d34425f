"""Model store, import Job and Fluid cache: what they create, what they protect, and the download script."""

import json
import os
import re
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from harness import all_strings, is_secret, run_program, unwrap, validate_kubernetes

SCRIPTS = Path(__file__).resolve().parent.parent / "components" / "scripts"
FETCH = SCRIPTS / "fetch-model.sh"
SHELLCHECK = str(Path(sys.executable).parent / "shellcheck")
BUCKET = "alicloud:oss/bucket:Bucket"
ACCESS_KEY_SECRET = "RAM-ACCESS-KEY-SECRET"  # what the mocks return as the AccessKey's secret
ENDPOINT = "oss-cn-hangzhou-internal.aliyuncs.com"
OIDC_ARN = "acs:ram::1234:oidc-provider/ack-rrsa-c1"
NS = "llm"


# ---------------------------------------------------------------- builders (components imported after mocks)


def oss_store(**overrides):
    def program():
        from components.alibaba.oss_model_store import OssModelStore, OssModelStoreArgs

        args = {"region": "cn-hangzhou", "namespace": NS, "model_prefix": "models", **overrides}
        store = OssModelStore("llm-dev-models", OssModelStoreArgs(**args))
        return {
            "bucket": store.bucket,
            "serving": store.serving_claim,
            "results": store.results_claim,
            "credentials": store.credentials_secret,
            "role": store.role_name,
        }

    return run_program(program)


def importer(**overrides):
    def program():
        from components.kubernetes.model_import import ModelImport, ModelImportArgs

        args = {
            "namespace": NS,
            "claim": "llm-dev-models-import",
            "model_id": "Qwen/QwQ-32B",
            "revision": "v1",
            "sub_path": "Qwen/QwQ-32B",
            "image": "registry.example/vllm:0.11.0",
            "timeout_minutes": 60,
            **overrides,
        }
        ModelImport("llm-dev-import", ModelImportArgs(**args))

    return run_program(program)


def fluid(with_import=False, **overrides):
    def program():
        from components.alibaba.fluid_cache import FluidCache, FluidCacheArgs
        from components.kubernetes.model_import import ModelImport, ModelImportArgs

        needs = []
        if with_import:
            needs = [
                ModelImport(
                    "llm-dev-import",
                    ModelImportArgs(
                        namespace=NS,
                        claim="c",
                        model_id="Qwen/QwQ-32B",
                        revision="v1",
                        sub_path="Qwen/QwQ-32B",
                        image="img:1",
                        timeout_minutes=60,
                    ),
                ).job
            ]
        args = {
            "namespace": NS,
            "bucket": "llm-models-a1b2c3d4",
            "prefix": "models",
            "region": "cn-hangzhou",
            "credentials_secret": "llm-dev-models-oss-credentials",
            "cache_gib": 80,
            "pod_labels": {"alibabacloud.com/compute-class": "performance"},
            "depends_on": needs,
            **overrides,
        }
        cache = FluidCache("llm-dev-fluid", FluidCacheArgs(**args))
        return {"claim": cache.claim}

    return run_program(program)


def pvc_store(**overrides):
    def program():
        from components.kubernetes.pvc_model_store import PvcModelStore, PvcModelStoreArgs

        store = PvcModelStore("llm-dev-models", PvcModelStoreArgs(**{"namespace": NS, "size_gib": 120, **overrides}))
        return {"serving": store.serving_claim, "import": store.import_claim}

    return run_program(program)


def objects(run, kind):
    return {o["metadata"]["name"]: o for o in run.kubernetes_objects() if o["kind"] == kind}


@pytest.fixture(scope="module")
def store():
    return oss_store()


@pytest.fixture(scope="module")
def rrsa():
    return oss_store(auth="rrsa", oidc_provider_arn=OIDC_ARN, oidc_issuer_url="https://oidc-ack")


@pytest.fixture(scope="module")
def job_run():
    return importer(pod_labels={"alibabacloud.com/compute-class": "general-purpose"})


# ---------------------------------------------------------------- bucket


def test_bucket_is_private_encrypted_standard_and_blocks_public_access(store):
    bucket = store.one(BUCKET)
    spec = unwrap(bucket.inputs)
    assert "acl" not in spec and "acl" in bucket.ignore_changes  # the ACL is BucketAcl's, not the deprecated arg
    assert spec["serverSideEncryptionRule"] == {"sseAlgorithm": "AES256"}
    assert spec["storageClass"] == "Standard" and spec["redundancyType"] == "LRS"
    name = store.outputs["bucket"]
    assert unwrap(store.one("alicloud:oss/bucketAcl:BucketAcl").inputs) == {"bucket": name, "acl": "private"}
    block = unwrap(store.one("alicloud:oss/bucketPublicAccessBlock:BucketPublicAccessBlock").inputs)
    assert block == {"bucket": name, "blockPublicAccess": True}
    rule = spec["lifecycleRules"][0]
    assert rule["enabled"] and rule["abortMultipartUploads"][0]["days"] > 0  # interrupted uploads are cleaned


def test_bucket_is_emptied_on_destroy_unless_retained(store):
    bucket = store.one(BUCKET)
    assert unwrap(bucket.inputs)["forceDestroy"] is True and not bucket.protect and not bucket.retain_on_delete
    kept = oss_store(retain=True)
    bucket = kept.one(BUCKET)
    # retained, not protected: `pulumi destroy` completes and leaves the bucket (and its weights) behind
    assert not bucket.protect and bucket.retain_on_delete and "forceDestroy" not in unwrap(bucket.inputs)
    for guard in ("alicloud:oss/bucketAcl:BucketAcl", "alicloud:oss/bucketPublicAccessBlock:BucketPublicAccessBlock"):
        assert kept.one(guard).retain_on_delete  # a kept bucket stays private


def test_generated_bucket_name_is_valid_and_unique_per_stack(store):
    assert store.outputs["bucket"] == "llm-dev-models-a1b2c3d4"  # name + the RandomId the mocks return

    def long_named():
        from components.alibaba.oss_model_store import OssModelStore, OssModelStoreArgs

        return {
            "b": OssModelStore(
                "Very_Long-" + "x" * 80, OssModelStoreArgs(region="cn-hangzhou", namespace=NS, model_prefix="models")
            ).bucket
        }

    run = run_program(long_named)
    name = run.outputs["b"]
    assert re.fullmatch(r"[a-z0-9][a-z0-9-]{1,61}[a-z0-9]", name) and name.endswith("-a1b2c3d4"), name
    pvs = objects(run, "PersistentVolume")  # cluster-wide names, also label values: distinct, <= 63 characters
    assert len(pvs) == 2 and all(
        len(n) <= 63 and pv["metadata"]["labels"]["alicloud-pvname"] == n for n, pv in pvs.items()
    )


def test_given_bucket_name_is_used_and_checked():
    assert oss_store(bucket_name="my-llm-models").outputs["bucket"] == "my-llm-models"
    with pytest.raises(ValueError, match="bucket_name"):
        oss_store(bucket_name="My_Bucket")


# ---------------------------------------------------------------- RAM: one bucket, nothing else


def test_ram_policy_reads_this_bucket_and_writes_only_its_benchmark_results(store):
    policy = unwrap(store.one("alicloud:ram/policy:Policy").inputs)
    document = json.loads(policy["policyDocument"])
    bucket = store.outputs["bucket"]
    read, write = document["Statement"]
    assert read["Effect"] == write["Effect"] == "Allow"
    assert sorted(read["Resource"]) == [f"acs:oss:*:*:{bucket}", f"acs:oss:*:*:{bucket}/*"]
    assert set(read["Action"]) == {"oss:GetObject", "oss:ListObjects", "oss:GetBucketInfo", "oss:ListMultipartUploads"}
    # The weights are written by the import workers' own roles, never through a volume.
    assert write["Resource"] == [f"acs:oss:*:*:{bucket}/benchmarks/*"]
    assert {"oss:PutObject", "oss:DeleteObject", "oss:AbortMultipartUpload"} <= set(write["Action"])
    actions = [*read["Action"], *write["Action"]]
    assert all(a.startswith("oss:") and "*" not in a for a in actions)
    assert not {a for a in actions if re.search(r"Acl|Policy|DeleteBucket|PutBucket", a)}
    attachment = unwrap(store.one("alicloud:ram/userPolicyAttachment:UserPolicyAttachment").inputs)
    user = unwrap(store.one("alicloud:ram/user:User").inputs)
    assert attachment == {"policyName": policy["policyName"], "policyType": "Custom", "userName": user["name"]}


def test_access_key_secret_lives_only_in_the_kubernetes_secret_as_a_pulumi_secret(store):
    [secret] = store.of_type("kubernetes:core/v1:Secret")
    assert is_secret(secret.inputs["stringData"])
    data = unwrap(secret.inputs["stringData"])
    assert data == {"akId": "llm-dev-models-oss-key-id", "akSecret": ACCESS_KEY_SECRET}
    assert unwrap(secret.inputs["metadata"])["namespace"] == NS  # ACS: the PVCs' namespace
    for resource in store.resources:
        if resource is not secret:
            assert not any(ACCESS_KEY_SECRET in s for s in all_strings(unwrap(resource.inputs))), resource.name
    assert ACCESS_KEY_SECRET not in json.dumps(store.outputs)
    assert store.outputs["credentials"] == unwrap(secret.inputs["metadata"])["name"]


def test_rrsa_uses_a_role_for_the_ossfs_service_account_and_no_long_lived_key(rrsa):
    assert not rrsa.of_type("alicloud:ram/accessKey:AccessKey") and not rrsa.of_type("alicloud:ram/user:User")
    assert not rrsa.of_type("kubernetes:core/v1:Secret") and "credentials" not in rrsa.outputs
    role = unwrap(rrsa.one("alicloud:ram/role:Role").inputs)
    [statement] = json.loads(role["assumeRolePolicyDocument"])["Statement"]
    assert statement["Action"] == "sts:AssumeRole" and statement["Principal"] == {"Federated": [OIDC_ARN]}
    assert statement["Condition"]["StringEquals"] == {
        "oidc:aud": "sts.aliyuncs.com",
        "oidc:iss": "https://oidc-ack",
        "oidc:sub": "system:serviceaccount:ack-csi-fuse:csi-fuse-ossfs",
    }
    attachment = unwrap(rrsa.one("alicloud:ram/rolePolicyAttachment:RolePolicyAttachment").inputs)
    assert attachment["roleName"] == role["roleName"] and attachment["policyType"] == "Custom"
    for pv in objects(rrsa, "PersistentVolume").values():
        attributes = pv["spec"]["csi"]["volumeAttributes"]
        assert attributes["authType"] == "rrsa" and attributes["roleName"] == role["roleName"]
        assert "nodePublishSecretRef" not in pv["spec"]["csi"]


def test_store_arguments_are_checked():
    with pytest.raises(ValueError, match="oidc_provider_arn"):
        oss_store(auth="rrsa")
    with pytest.raises(ValueError, match="auth"):
        oss_store(auth="password")
    with pytest.raises(ValueError, match="model_prefix"):
        oss_store(model_prefix="/models/")


# ---------------------------------------------------------------- static OSS volumes


def test_volumes_are_static_oss_pvs_on_the_internal_endpoint(store):
    pvs = objects(store, "PersistentVolume")
    secret = unwrap(store.one("kubernetes:core/v1:Secret").inputs)["metadata"]
    assert len(pvs) == 2  # serving (read-only) and results
    for name, pv in pvs.items():
        csi = pv["spec"]["csi"]
        assert csi["driver"] == "ossplugin.csi.alibabacloud.com" and csi["volumeHandle"] == name
        assert csi["volumeAttributes"]["url"] == ENDPOINT
        assert csi["volumeAttributes"]["bucket"] == store.outputs["bucket"]
        assert "-o allow_other" in csi["volumeAttributes"]["otherOpts"]
        assert csi["nodePublishSecretRef"] == {"name": secret["name"], "namespace": NS}
        assert pv["spec"]["persistentVolumeReclaimPolicy"] == "Retain" and pv["spec"]["storageClassName"] == ""
    secret_urn = store.one("kubernetes:core/v1:Secret").urn
    assert all(secret_urn in r.dependencies for r in store.of_type("kubernetes:core/v1:PersistentVolume"))


def test_serving_volume_is_read_only_results_are_writable_and_no_volume_writes_the_weights(store):
    pvs, claims = objects(store, "PersistentVolume"), objects(store, "PersistentVolumeClaim")
    serving = pvs[claims[store.outputs["serving"]]["spec"]["volumeName"]]
    results = pvs[claims[store.outputs["results"]]["spec"]["volumeName"]]
    assert serving["spec"]["accessModes"] == ["ReadOnlyMany"] and serving["spec"]["csi"]["readOnly"] is True
    assert "-o ro" in serving["spec"]["csi"]["volumeAttributes"]["otherOpts"]  # ossfs itself mounts read-only
    assert results["spec"]["accessModes"] == ["ReadWriteMany"]
    assert "-o ro" not in results["spec"]["csi"]["volumeAttributes"]["otherOpts"]
    # Serving reads the prefix the import workers write; results stay apart from the weights.
    assert serving["spec"]["csi"]["volumeAttributes"]["path"] == "/models"
    assert results["spec"]["csi"]["volumeAttributes"]["path"] == "/benchmarks"
    writable = [pv for pv in pvs.values() if not pv["spec"]["csi"].get("readOnly")]
    assert [pv["spec"]["csi"]["volumeAttributes"]["path"] for pv in writable] == ["/benchmarks"]


def test_each_claim_binds_exactly_its_volume(store):
    pvs = objects(store, "PersistentVolume")
    for claim in objects(store, "PersistentVolumeClaim").values():
        pv = pvs[claim["spec"]["volumeName"]]
        assert claim["metadata"]["namespace"] == NS
        assert claim["spec"]["storageClassName"] == ""  # no default class, no dynamic provisioning
        assert claim["spec"]["accessModes"] == pv["spec"]["accessModes"]
        assert claim["spec"]["selector"]["matchLabels"].items() <= pv["metadata"]["labels"].items()
        assert claim["spec"]["resources"]["requests"]["storage"] == pv["spec"]["capacity"]["storage"]


def test_every_store_object_validates_against_the_kubernetes_schema(store, rrsa, job_run):
    assert validate_kubernetes(store) == []
    assert validate_kubernetes(rrsa) == []
    assert validate_kubernetes(job_run) == []
    assert validate_kubernetes(pvc_store()) == []


# ---------------------------------------------------------------- PVC store (existing cluster)


def test_pvc_store_is_one_claim_for_import_and_serving():
    run = pvc_store(storage_class="alicloud-disk-essd", access_mode="ReadWriteMany")
    [claim] = objects(run, "PersistentVolumeClaim").values()
    assert run.outputs["serving"] == run.outputs["import"] == claim["metadata"]["name"]
    assert claim["spec"] == {
        "accessModes": ["ReadWriteMany"],
        "resources": {"requests": {"storage": "120Gi"}},
        "storageClassName": "alicloud-disk-essd",
    }
    # WaitForFirstConsumer classes bind only when the import pod exists: Pulumi must not wait for Bound.
    assert claim["metadata"]["annotations"]["pulumi.com/skipAwait"] == "true"
    resource = run.one("kubernetes:core/v1:PersistentVolumeClaim")
    assert not resource.protect and not resource.retain_on_delete


def test_pvc_store_uses_the_default_class_and_can_be_retained():
    run = pvc_store(retain=True)
    [claim] = objects(run, "PersistentVolumeClaim").values()
    assert "storageClassName" not in claim["spec"] and claim["spec"]["accessModes"] == ["ReadWriteOnce"]
    resource = run.one("kubernetes:core/v1:PersistentVolumeClaim")
    assert not resource.protect and resource.retain_on_delete
    with pytest.raises(ValueError, match="access_mode"):
        pvc_store(access_mode="ReadOnlyMany")


# ---------------------------------------------------------------- import Job


def the_job(run):
    return next(iter(objects(run, "Job").values()))


def test_import_job_runs_the_shared_script_into_the_claim(job_run):
    job = the_job(job_run)
    pod = job["spec"]["template"]["spec"]
    [container] = pod["containers"]
    script_dir = next(m["mountPath"] for m in container["volumeMounts"] if m["name"] == "script")
    assert container["command"] == [
        "bash",
        f"{script_dir}/fetch-model.sh",
        "Qwen/QwQ-32B",
        "v1",
        "/models/Qwen/QwQ-32B",
    ]
    [config_map] = objects(job_run, "ConfigMap").values()
    assert config_map["data"] == {"fetch-model.sh": FETCH.read_text()}  # the very file the ECS host runs
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert volumes["model"]["persistentVolumeClaim"] == {"claimName": "llm-dev-models-import"}
    assert volumes["script"]["configMap"]["name"] == config_map["metadata"]["name"]
    assert any(m["name"] == "model" and m["mountPath"] == "/models" for m in container["volumeMounts"])
    env = {e["name"]: e["value"] for e in container["env"]}
    assert env["PIP_INDEX_URL"] == "https://mirrors.cloud.aliyuncs.com/pypi/simple/"  # no PyPI from mainland
    assert env["MODELSCOPE_VERSION"] and env["MODELSCOPE_HUB_VERSION"]
    assert container["image"] == "registry.example/vllm:0.11.0"


def test_import_job_is_resumable_bounded_and_never_deleted_behind_pulumis_back(job_run):
    job = the_job(job_run)
    spec = job["spec"]
    assert "ttlSecondsAfterFinished" not in spec
    assert spec["backoffLimit"] > 1 and spec["template"]["spec"]["restartPolicy"] == "OnFailure"
    assert spec["activeDeadlineSeconds"] == 60 * 60
    resource = job_run.one("kubernetes:batch/v1:Job")
    wait = int(resource.custom_timeouts["create"].rstrip("m"))
    assert 60 <= wait <= 70 and resource.custom_timeouts["update"] == resource.custom_timeouts["create"]
    assert job["metadata"]["annotations"]["pulumi.com/replaceUnready"] == "true"  # a failed Job reruns next time
    assert "spec" in resource.replace_on_changes and resource.delete_before_replace


def test_import_pod_is_a_modest_cpu_pod_without_api_access(job_run):
    pod = the_job(job_run)["spec"]["template"]
    assert pod["metadata"]["labels"]["alibabacloud.com/compute-class"] == "general-purpose"
    spec = pod["spec"]
    assert spec["automountServiceAccountToken"] is False
    [container] = spec["containers"]
    resources = container["resources"]
    assert resources["requests"] == resources["limits"] and "nvidia.com/gpu" not in resources["limits"]
    assert int(resources["limits"]["cpu"]) <= 8 and container["securityContext"]["allowPrivilegeEscalation"] is False


def test_a_new_revision_changes_the_job_spec_so_pulumi_replaces_it(job_run):
    same = importer(pod_labels={"alibabacloud.com/compute-class": "general-purpose"})
    assert the_job(same)["spec"] == the_job(job_run)["spec"]
    newer = importer(revision="v2", pod_labels={"alibabacloud.com/compute-class": "general-purpose"})
    assert the_job(newer)["spec"] != the_job(job_run)["spec"]


def test_import_waits_for_what_it_is_given():
    def program():
        import pulumi_kubernetes as k8s

        from components.kubernetes.model_import import ModelImport, ModelImportArgs

        ns = k8s.core.v1.Namespace("ns", metadata={"name": NS})
        ModelImport(
            "imp",
            ModelImportArgs(
                namespace=NS,
                claim="c",
                model_id="a/b",
                revision="master",
                sub_path="a/b",
                image="i:1",
                timeout_minutes=30,
                depends_on=[ns],
            ),
        )

    run = run_program(program)
    assert run.named("ns").urn in run.one("kubernetes:batch/v1:Job").dependencies


@pytest.mark.parametrize(
    "bad",
    [{"sub_path": "/abs"}, {"sub_path": "../up"}, {"sub_path": ""}, {"timeout_minutes": 0}, {"model_id": "no-org"}],
)
def test_import_arguments_are_checked(bad):
    with pytest.raises(ValueError):
        importer(**bad)


# ---------------------------------------------------------------- fetch-model.sh, run for real

FAKE_PYTHON = """#!/bin/bash
# Stands in for python3: records its arguments; "pip install" succeeds, "-" (the download) writes a file.
printf '%s\\n' "$*" >> "$CALLS"
if [ "$1" = "-m" ]; then exit 0; fi
cat > /dev/null
mkdir -p "$4" && echo weights > "$4/model.safetensors"
[ -z "${FAIL_DOWNLOAD:-}" ]
"""


@pytest.fixture
def fetch(tmp_path):
    python = tmp_path / "python"
    python.write_text(FAKE_PYTHON)
    python.chmod(python.stat().st_mode | stat.S_IXUSR)
    calls = tmp_path / "calls"
    target = tmp_path / "volume" / "Qwen" / "QwQ-32B"

    def run(revision="v1", fail=False, args=None):
        env = {
            **os.environ,
            "PYTHON": str(python),
            "CALLS": str(calls),
            "MODELSCOPE_LIB": str(tmp_path / "lib"),
            "PIP_INDEX_URL": "https://mirror.example/simple/",
            "MODELSCOPE_VERSION": "1.40.2",
            "MODELSCOPE_HUB_VERSION": "0.5.1",
        }
        if fail:
            env["FAIL_DOWNLOAD"] = "1"
        calls.write_text("")
        argv = args if args is not None else ["Qwen/QwQ-32B", revision, str(target)]
        done = subprocess.run(["bash", str(FETCH), *argv], env=env, capture_output=True, text=True)
        return done, calls.read_text().splitlines()

    run.marker = target / ".download-complete"
    return run


def test_fetch_downloads_once_and_marks_model_and_revision(fetch):
    done, calls = fetch()
    assert done.returncode == 0, done.stderr
    assert calls[0].startswith("-m pip install") and "--index-url https://mirror.example/simple/" in calls[0]
    assert "modelscope==1.40.2" in calls[0] and calls[1].endswith("Qwen/QwQ-32B v1 " + str(fetch.marker.parent))
    assert fetch.marker.read_text() == "Qwen/QwQ-32B@v1\n"
    again, calls = fetch()
    assert again.returncode == 0 and calls == [] and "already complete" in again.stdout  # no pip, no download


def test_fetch_downloads_again_for_another_revision(fetch):
    fetch()
    done, calls = fetch(revision="v2")
    assert done.returncode == 0 and len(calls) == 2
    assert fetch.marker.read_text() == "Qwen/QwQ-32B@v2\n"


def test_failed_fetch_leaves_no_marker_and_the_rerun_resumes(fetch):
    fetch(revision="v1")
    failed, _ = fetch(revision="v2", fail=True)
    assert failed.returncode != 0 and not fetch.marker.exists()  # v1's marker must not vouch for half of v2
    done, calls = fetch(revision="v2")
    assert done.returncode == 0 and len(calls) == 2 and fetch.marker.read_text() == "Qwen/QwQ-32B@v2\n"


def test_fetch_refuses_bad_usage(fetch):
    done, calls = fetch(args=["only-one"])
    assert done.returncode == 2 and "usage" in done.stderr and calls == []


def test_fetch_script_passes_shellcheck():
    result = subprocess.run(
        [SHELLCHECK, "--shell=bash", "--severity=style", str(FETCH)], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_download_logic_exists_once():
    """The ECS host and the import Job run the same file; nothing else calls snapshot_download."""
    sources = [p for p in (SCRIPTS.parent).rglob("*") if p.is_file() and p.suffix in (".sh", ".py")]
    holders = [p.name for p in sources if "snapshot_download" in p.read_text()]
    assert holders == ["fetch-model.sh"]
    assert "fetch-model.sh" in (SCRIPTS / "bootstrap.sh").read_text()


def test_ecs_user_data_installs_the_same_fetch_script():
    from harness import settings_for

    from components.alibaba.host_scripts import render_user_data
    from stacks.alibaba.ecs import host_config

    user_data = render_user_data(host_config(settings_for("dev")))
    assert f"cat > /usr/local/lib/llm-serving/fetch-model.sh <<'LLM_SERVING_EOF'\n{FETCH.read_text()}" in user_data


# ---------------------------------------------------------------- Fluid


def test_fluid_installs_ack_fluid_pinned_for_acs_by_default():
    run = fluid()
    release = unwrap(run.one("kubernetes:helm.sh/v3:Release").inputs)
    # The catalog's tarball and the Compute Nest ACS template's values (audit D10).
    assert (
        release["chart"]
        == "https://aliacs-app-catalog.oss-cn-hangzhou.aliyuncs.com/charts-incubator/ack-fluid-1.0.13.tgz"
    )
    assert "repositoryOpts" not in release and "version" not in release
    values = release["values"]
    assert values["region"] == "cn-hangzhou" and values["clusterProfileforApp"] == "Acs"
    assert (values["cluster_profile"], values["imagePrefix"], values["version"]) == (
        "ManagedKubernetes",
        "acs",
        "v1.0.13-fc3296a6",
    )
    assert values["helmDriver"] == "configmap" and values["crdUpgrade"]["imageTag"] == "v1.0.13-fc3296a6"
    assert release["namespace"] == "fluid-system" and release["createNamespace"] is True
    release_urn = run.one("kubernetes:helm.sh/v3:Release").urn
    for kind in ("Dataset", "JindoRuntime", "DataLoad"):
        resource = run.one(f"kubernetes:data.fluid.io/v1alpha1:{kind}")
        assert release_urn in resource.dependencies, kind  # the CRDs come with the chart


def test_fluid_can_use_the_upstream_chart_or_an_existing_install():
    def upstream():
        from components.alibaba.fluid_cache import UPSTREAM_FLUID, FluidCache, FluidCacheArgs

        FluidCache(
            "f",
            FluidCacheArgs(
                namespace=NS,
                bucket="b-1",
                prefix="models",
                region="cn-hangzhou",
                credentials_secret="s",
                cache_gib=10,
                chart=UPSTREAM_FLUID,
            ),
        )

    release = unwrap(run_program(upstream).one("kubernetes:helm.sh/v3:Release").inputs)
    assert release["repositoryOpts"]["repo"] == "https://fluid-cloudnative.github.io/charts"
    assert release["chart"] == "fluid" and re.fullmatch(r"\d+\.\d+\.\d+", release["version"])
    assert not fluid(install=False).of_type("kubernetes:helm.sh/v3:Release")


def test_fluid_dataset_mounts_the_prefix_on_the_internal_endpoint_with_the_secret():
    run = fluid()
    assert set(validate_kubernetes(run)) == {
        f"data.fluid.io/v1alpha1/{k}" for k in ("Dataset", "JindoRuntime", "DataLoad")
    }
    dataset = run.kubernetes_object("Dataset")
    [mount] = dataset["spec"]["mounts"]  # CRD: mounts minItems 1, mountPoint required (minLength 5)
    assert mount["mountPoint"] == "oss://llm-models-a1b2c3d4/models/" and mount["path"] == "/"
    assert mount["options"] == {"fs.oss.endpoint": ENDPOINT}
    refs = {o["name"]: o["valueFrom"]["secretKeyRef"] for o in mount["encryptOptions"]}
    assert refs == {
        "fs.oss.accessKeyId": {"name": "llm-dev-models-oss-credentials", "key": "akId"},
        "fs.oss.accessKeySecret": {"name": "llm-dev-models-oss-credentials", "key": "akSecret"},
    }
    assert dataset["spec"]["accessModes"] == ["ReadOnlyMany"]
    assert run.outputs["claim"] == dataset["metadata"]["name"]  # Fluid's PVC is named after the Dataset


def test_jindo_runtime_caches_the_model_in_memory_sized_from_it():
    run = fluid()
    dataset, runtime = run.kubernetes_object("Dataset"), run.kubernetes_object("JindoRuntime")
    assert runtime["metadata"] == dataset["metadata"]  # a runtime serves the Dataset of its name
    spec = runtime["spec"]
    [level] = spec["tieredstore"]["levels"]  # CRD: mediumtype required, MEM|SSD|HDD; volumeType hostPath|emptyDir
    assert (level["mediumtype"], level["path"], level["volumeType"]) == ("MEM", "/dev/shm", "emptyDir")
    assert spec["replicas"] == 1 and level["quota"] == "80Gi"
    assert spec["networkmode"] == "ContainerNetwork"
    for part in ("master", "worker"):
        assert spec[part]["podMetadata"]["labels"] == {"alibabacloud.com/compute-class": "performance"}
    limits = spec["worker"]["resources"]["limits"]
    assert int(limits["memory"].rstrip("Gi")) > 80 and spec["worker"]["resources"]["requests"] == limits


def test_a_bigger_model_gets_more_workers_within_the_acs_cpu_memory_ratio():
    from components.alibaba.fluid_cache import plan_workers

    plan = plan_workers(760, 120)  # DeepSeek-R1: ~690 GB of weights plus margin
    assert plan.replicas == 7 and plan.replicas * plan.quota_gib >= 760
    assert plan.memory_gib <= plan.cpu * 8
    assert plan_workers(80, 120).replicas == 1


def test_dataload_warms_the_cache_after_the_import():
    run = fluid(with_import=True, preload_path="Qwen/QwQ-32B")
    load = run.kubernetes_object("DataLoad")
    assert load["spec"] == {
        "dataset": {"name": run.outputs["claim"], "namespace": NS},
        "loadMetadata": True,
        "target": [{"path": "/Qwen/QwQ-32B", "replicas": 1}],
    }
    assert run.one("kubernetes:batch/v1:Job").urn in run.one("kubernetes:data.fluid.io/v1alpha1:DataLoad").dependencies


def test_fluid_needs_the_access_key_secret():
    with pytest.raises(ValueError, match="access-key"):
        fluid(credentials_secret=None)
