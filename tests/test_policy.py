"""The policy pack (policy/): every example stack passes it; each rule catches what it is there to catch.

Policies are called as the engine calls them: `validate(args, report_violation)` with camelCase props
wrapped in pulumi_policy's unknown-checking proxy. No policy server is started.
"""

from __future__ import annotations

import base64
import copy
import runpy
import sys
from typing import Any, Optional

import pulumi_policy
import pytest
import yaml
from harness import EXAMPLE_STACKS, PEM_TLS, ROOT, Resource, run_stack, unwrap
from pulumi.output import Unknown
from pulumi_policy import EnforcementLevel, ResourceValidationArgs
from pulumi_policy.proxy import UNKNOWN_STRING_VALUE, UnknownValueError, unknown_checking_proxy

from core.config.problems import ConfigError

POLICY_DIR = ROOT / "policy"
sys.path.insert(0, str(POLICY_DIR))
import llm_checks  # noqa: E402
import llm_policies  # noqa: E402

POLICIES = {p.name: p for p in llm_policies.POLICIES}
MANDATORY = sorted(n for n, p in POLICIES.items() if p.enforcement_level == EnforcementLevel.MANDATORY)
STACKS = sorted(EXAMPLE_STACKS)


# ---------------------------------------------------------------------------------------------- adapter


def engine_value(value: Any) -> Any:
    """A recorded input as the engine sends it to a policy: secrets unwrapped, unknowns as sentinels."""
    if isinstance(value, Unknown):
        return UNKNOWN_STRING_VALUE
    if isinstance(value, dict):
        return {k: engine_value(v) for k, v in value.items()}
    if isinstance(value, list):
        return [engine_value(v) for v in value]
    return value


def args_for(resource_type: str, props: dict, stack: str = "dev", name: str = "r") -> ResourceValidationArgs:
    urn = f"urn:pulumi:{stack}::llm::{resource_type}::{name}"
    return ResourceValidationArgs(
        resource_type, unknown_checking_proxy(engine_value(unwrap(props))), urn, name, None, None
    )


def recorded_args(resource: Resource) -> ResourceValidationArgs:
    return ResourceValidationArgs(
        resource.type,
        unknown_checking_proxy(engine_value(unwrap(resource.inputs))),
        resource.urn,
        resource.name,
        None,
        None,
    )


def violations(policy_name: str, args: ResourceValidationArgs) -> list[str]:
    found: list[str] = []
    POLICIES[policy_name].validate(args, lambda message, urn=None: found.append(message))
    return found


def all_violations(args: ResourceValidationArgs, names=None) -> dict[str, list[str]]:
    return {n: v for n in (names or POLICIES) if (v := violations(n, args))}


# ---------------------------------------------------------------------------------------------- the pack


def test_pack_serves_every_policy_with_the_documented_enforcement_levels(monkeypatch):
    built = {}
    monkeypatch.setattr(pulumi_policy, "PolicyPack", lambda **kw: built.update(kw))
    runpy.run_path(str(POLICY_DIR / "__main__.py"), run_name="__main__")
    assert built["name"] == "llm-guardrails" and built["policies"] is llm_policies.ALL_POLICIES
    assert [p.name for p in llm_policies.STACK_POLICIES] == ["serving-namespace-network-policy"]
    assert all(p.enforcement_level == EnforcementLevel.MANDATORY for p in llm_policies.STACK_POLICIES)
    assert MANDATORY == [
        "engine-behind-gateway",
        "gpu-pod-seccomp",
        "gpu-workload-probes-and-shm",
        "inference-api-key-required",
        "no-plaintext-secrets",
        "no-ssh-from-internet",
        "pinned-images",
        "private-encrypted-buckets",
        "public-endpoint-cidr-limits",
        "public-endpoint-tls",
    ]
    assert POLICIES["prod-deletion-protection"].enforcement_level == EnforcementLevel.ADVISORY


def test_policy_requirements_match_the_versions_the_tests_use():
    from pins import project_pins, requirement_pins

    policy, project = requirement_pins(POLICY_DIR / "requirements.txt"), project_pins()
    for package in ("pulumi-policy", "pulumi", "protobuf"):
        assert policy[package] == project[package], package
    pack = yaml.safe_load((POLICY_DIR / "PulumiPolicy.yaml").read_text())
    assert pack["runtime"] == {"name": "python", "options": {"virtualenv": "venv"}} and pack["version"]


# ---------------------------------------------------------------------------------------------- example stacks


def stack_run(stack: str):
    """Run the committed stack; skip it only while its target is not implemented yet."""
    try:
        return run_stack(stack)
    except ConfigError as error:
        if "not available" in str(error):
            pytest.skip(f"stack {stack}: target not implemented yet ({error})")
        raise


@pytest.mark.parametrize("stack", STACKS)
def test_example_stack_passes_every_mandatory_policy(stack):
    run = stack_run(stack)
    found = {r.name: v for r in run.resources if (v := all_violations(recorded_args(r), MANDATORY))}
    assert found == {}
    assert len(run.resources) > 5


@pytest.mark.parametrize(
    "overrides",
    [
        {"gke.rdma": True},
        {"gke.modelSource": "download"},
        {**PEM_TLS, "access.public": True, "access.allowedCidrs": ["198.51.100.0/24"]},
        {"gke.rdma": True, "placement.podsPerReplica": 2, "gpuNodes.min": 2},
    ],
    ids=["rdma", "download", "public", "two-nodes"],
)
def test_gke_options_pass_every_mandatory_policy(overrides):
    run = run_stack("gke", overrides)
    found = {r.name: v for r in run.resources if (v := all_violations(recorded_args(r), MANDATORY))}
    assert found == {}


def test_an_ecs_host_streaming_its_weights_passes_every_mandatory_policy_and_its_packed_files_are_read():
    from components.alibaba.host_scripts import write_compressed_file

    overrides = {
        "ecs.weights.source": "oss",
        "ecs.weights.bucket": "my-models",
        "ecs.weights.importWorkers": None,
        "ecs.weights.load": "stream",
        "engine.image": "docker.io/vllm/vllm-openai:v0.32.0",
    }
    run = run_stack("prod", overrides)
    found = {r.name: v for r in run.resources if (v := all_violations(recorded_args(r), MANDATORY))}
    assert found == {}
    # What a compressed file holds is checked as if it were plain: a key or a public listener in one is reported.
    packed = write_compressed_file(
        "/tmp/x.sh", "export ACCESS=LTAI5tAbCdEfGhIjKlMnOpQr\nvllm serve m --host 0.0.0.0\n", "0755"
    )
    args = args_for("alicloud:ecs/instance:Instance", {"userData": b64("#!/bin/bash\n" + packed)})
    assert violations("no-plaintext-secrets", args) and violations("engine-behind-gateway", args)


def test_committed_prod_stack_also_satisfies_the_advisory_deletion_protection():
    run = stack_run("prod")
    assert {r.name: v for r in run.resources if (v := violations("prod-deletion-protection", recorded_args(r)))} == {}
    assert any(r.type == llm_policies.ECS_INSTANCE for r in run.resources)


# ---------------------------------------------------------------------------------------------- crafted resources

DEPLOYMENT = "kubernetes:apps/v1:Deployment"
LWS = "kubernetes:leaderworkerset.x-k8s.io/v1:LeaderWorkerSet"
JOB = "kubernetes:batch/v1:Job"
POD = "kubernetes:core/v1:Pod"
SERVICE = llm_policies.SERVICE
IMAGE = "docker.io/vllm/vllm-openai:v0.11.0"


def serving_container() -> dict:
    """A compliant vLLM container: pinned image, key from a Secret, startup probe, memory /dev/shm."""
    return {
        "name": "engine",
        "image": IMAGE,
        "command": [
            "vllm",
            "serve",
            "/models/Qwen/QwQ-32B",
            "--host",
            "127.0.0.1",
            "--port",
            "8001",
            "--tensor-parallel-size",
            "2",
        ],
        "env": [
            {"name": "VLLM_API_KEY", "valueFrom": {"secretKeyRef": {"name": "llm-api-key", "key": "apiKey"}}},
            {"name": "HF_HUB_OFFLINE", "value": "1"},
            {"name": "TOKENIZERS_PARALLELISM", "value": "false"},
        ],
        "resources": {"limits": {"nvidia.com/gpu": "2", "memory": "256Gi"}},
        "startupProbe": {"exec": {"command": ["python3", "-c", "probe"]}, "periodSeconds": 10, "failureThreshold": 180},
        "volumeMounts": [{"name": "shm", "mountPath": "/dev/shm"}, {"name": "model", "mountPath": "/models"}],
    }


GATEWAY = {
    "name": "gateway",
    "image": "docker.io/library/nginx:1.30.6-alpine",
    "command": ["nginx", "-c", "/etc/llm-gateway/nginx.conf"],
    "ports": [{"name": "http", "containerPort": 8000}],
}


def pod_spec(container: Optional[dict] = None, gateway: bool = True) -> dict:
    return {
        "securityContext": {"seccompProfile": {"type": "RuntimeDefault"}},
        "containers": [container or serving_container(), *([GATEWAY] if gateway else [])],
        "volumes": [
            {"name": "shm", "emptyDir": {"medium": "Memory", "sizeLimit": "16Gi"}},
            {"name": "model", "persistentVolumeClaim": {"claimName": "model"}},
        ],
    }


def deployment(pod: Optional[dict] = None) -> dict:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "llm", "namespace": "llm"},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"app": "llm"}},
            "template": {"metadata": {"labels": {"app": "llm"}}, "spec": pod or pod_spec()},
        },
    }


def leader_worker_set() -> dict:
    leader = serving_container()
    worker = {k: v for k, v in serving_container().items() if k != "startupProbe"}
    worker.update(
        name="worker",
        command=["ray", "start", "--block", "--address=$(LWS_LEADER_ADDRESS):6379"],
        readinessProbe={"exec": {"command": ["ray", "health-check"]}},
    )
    return {
        "apiVersion": "leaderworkerset.x-k8s.io/v1",
        "kind": "LeaderWorkerSet",
        "metadata": {"name": "llm"},
        "spec": {
            "replicas": 1,
            "leaderWorkerTemplate": {
                "size": 2,
                "leaderTemplate": {"spec": pod_spec(leader)},
                "workerTemplate": {"spec": pod_spec(worker)},
            },
        },
    }


def sglang_container() -> dict:
    return {
        **serving_container(),
        "command": [
            "python3",
            "-m",
            "sglang.launch_server",
            "--model-path",
            "/models/m",
            "--host",
            "127.0.0.1",
            "--api-key",
            "$(SGLANG_API_KEY)",
        ],
        "env": [{"name": "SGLANG_API_KEY", "valueFrom": {"secretKeyRef": {"name": "k", "key": "apiKey"}}}],
    }


def service(annotations: dict, source_ranges: Optional[list] = None, https: bool = False) -> dict:
    port = {"name": "https", "port": 8000, "targetPort": "https"} if https else {"port": 8000, "targetPort": 8000}
    spec: dict = {"type": "LoadBalancer", "selector": {"app": "llm"}, "ports": [port]}
    if source_ranges is not None:
        spec["loadBalancerSourceRanges"] = source_ranges
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "llm", "annotations": annotations},
        "spec": spec,
    }


ALIBABA_ADDRESS = "service.beta.kubernetes.io/alibaba-cloud-loadbalancer-address-type"
CLB_PORTS = "service.beta.kubernetes.io/alibaba-cloud-loadbalancer-protocol-port"
CLB_CERT = "service.beta.kubernetes.io/alibaba-cloud-loadbalancer-cert-id"


def gateway_user_data(tls: bool, plain_port: Optional[int] = None) -> str:
    """User-data carrying the conf core/gateway.py renders, as the ecs host's does."""
    from core.gateway import GatewayConfig, GatewayTls, render_nginx_conf

    config = GatewayConfig(
        listen_port=8000,
        engine_port=8001,
        metrics_port=8002,
        key_file="/etc/llm-gateway/api-key.map",
        read_timeout_seconds=60,
        max_body_bytes=1 << 20,
        tls=GatewayTls("/etc/llm-gateway/tls/cert.pem", "/etc/llm-gateway/tls/key.pem") if tls else None,
        plain_port=plain_port,
    )
    return "#!/bin/bash\ncat > /etc/nginx.conf <<'EOF'\n" + render_nginx_conf(config) + "EOF\n"


def sg_rule(port_range: str, cidr: str = "", protocol: str = "tcp", **extra) -> dict:
    rule = {
        "type": "ingress",
        "ipProtocol": protocol,
        "portRange": port_range,
        "policy": "accept",
        "securityGroupId": "sg-1",
        "nicType": "intranet",
        **extra,
    }
    if cidr:
        rule["cidrIp"] = cidr
    return rule


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def with_container(change) -> dict:
    container = serving_container()
    change(container)
    return deployment(pod_spec(container))


COMPLIANT = {
    "vllm deployment": (DEPLOYMENT, deployment()),
    "sglang deployment": (DEPLOYMENT, deployment(pod_spec(sglang_container()))),
    "leaderworkerset": (LWS, leader_worker_set()),
    "benchmark job (vllm bench is a client)": (
        JOB,
        {
            "apiVersion": "batch/v1",
            "kind": "Job",
            "spec": {
                "template": {
                    "spec": {
                        "restartPolicy": "Never",
                        "containers": [
                            {
                                "name": "bench",
                                "image": IMAGE,
                                "command": ["vllm", "bench", "serve", "--base-url", "http://llm:8000"],
                                "env": [
                                    {
                                        "name": "OPENAI_API_KEY",
                                        "valueFrom": {"secretKeyRef": {"name": "k", "key": "apiKey"}},
                                    }
                                ],
                            }
                        ],
                    }
                }
            },
        },
    ),
    "intranet LoadBalancer (Alibaba)": (SERVICE, service({ALIBABA_ADDRESS: "intranet"})),
    "internal LoadBalancer (GKE)": (SERVICE, service({"networking.gke.io/load-balancer-type": "Internal"})),
    "internet LoadBalancer limited to client CIDRs, TLS at the gateway": (
        SERVICE,
        service({ALIBABA_ADDRESS: "internet"}, ["203.0.113.0/24"], https=True),
    ),
    "internet LoadBalancer with the CLB's HTTPS listener": (
        SERVICE,
        service({ALIBABA_ADDRESS: "internet", CLB_PORTS: "https:8000", CLB_CERT: "123_abc"}, ["203.0.113.0/24"]),
    ),
    "public host whose gateway serves TLS": (
        llm_policies.ECS_INSTANCE,
        {"internetMaxBandwidthOut": 100, "userData": b64(gateway_user_data(tls=True))},
    ),
    "private host with a plain gateway": (
        llm_policies.ECS_INSTANCE,
        {"internetMaxBandwidthOut": 0, "userData": b64(gateway_user_data(tls=False))},
    ),
    "CPU job without a seccomp profile (the GPU rule only)": (
        JOB,
        {"spec": {"template": {"spec": {"containers": [{"name": "c", "image": IMAGE, "command": ["true"]}]}}}},
    ),
    "API rule from a client CIDR": (llm_policies.SECURITY_GROUP_RULE, sg_rule("8000/8000", "203.0.113.7/32")),
    "SSH from an admin CIDR": (llm_policies.SECURITY_GROUP_RULE, sg_rule("22/22", "198.51.100.0/24")),
    "encrypted OSS bucket": (
        llm_policies.OSS_BUCKET,
        {"bucket": "m", "serverSideEncryptionRule": {"sseAlgorithm": "AES256"}},
    ),
    "private OSS ACL": (llm_policies.OSS_BUCKET_ACL, {"bucket": "m", "acl": "private"}),
    "locked-down GCS bucket": (
        llm_policies.GCS_BUCKET,
        {"name": "m", "location": "US", "uniformBucketLevelAccess": True, "publicAccessPrevention": "enforced"},
    ),
    "Helm release with a chart version": ("kubernetes:helm.sh/v3:Release", {"chart": "lws", "version": "0.7.0"}),
    "Helm release of a local chart": ("kubernetes:helm.sh/v3:Release", {"chart": "./charts/lws"}),
    "user-data referencing an OOS secret": (
        llm_policies.ECS_INSTANCE,
        {
            "userData": b64(
                "#!/bin/bash\nAPI_KEY_ENV=VLLM_API_KEY\nAPI_KEY_VALUE='{{oos-secret:llm-dev-api-key}}'\n"
                'printf \'Authorization: Bearer %s\\n\' "$API_KEY_VALUE"\nexport HF_TOKEN="${HF_TOKEN}"\n'
            )
        },
    ),
}


@pytest.mark.parametrize("case", sorted(COMPLIANT))
def test_compliant_resources_pass_every_policy(case):
    resource_type, props = COMPLIANT[case]
    assert all_violations(args_for(resource_type, props)) == {}


def _drop_key(container: dict) -> None:
    container["env"] = [e for e in container["env"] if e["name"] != "VLLM_API_KEY"]


def lws_with(template: str, change) -> dict:
    """A LeaderWorkerSet whose leaderTemplate or workerTemplate container was changed by `change`."""
    lws = leader_worker_set()
    change(lws["spec"]["leaderWorkerTemplate"][template]["spec"]["containers"][0])
    return lws


def unconfined_gpu_container(container: dict) -> None:
    container["securityContext"] = {"seccompProfile": {"type": "Unconfined"}}


def pod_without_seccomp() -> dict:
    pod = pod_spec()
    del pod["securityContext"]
    return pod


VIOLATIONS = {
    # public-endpoint-tls
    "internet LoadBalancer on plain HTTP": (
        "public-endpoint-tls",
        SERVICE,
        service({ALIBABA_ADDRESS: "internet"}, ["203.0.113.0/24"]),
    ),
    "a port named https that targets the plain port": (
        "public-endpoint-tls",
        SERVICE,
        {
            **service({}, ["203.0.113.0/24"]),
            "spec": {"type": "LoadBalancer", "ports": [{"name": "https", "port": 8000, "targetPort": "http"}]},
        },
    ),
    "CLB HTTPS listener on another port than the Service's": (
        "public-endpoint-tls",
        SERVICE,
        service({CLB_PORTS: "https:443", CLB_CERT: "123_abc"}, ["203.0.113.0/24"]),
    ),
    "CLB HTTPS listener without a certificate": (
        "public-endpoint-tls",
        SERVICE,
        service({CLB_PORTS: "https:8000"}, ["203.0.113.0/24"]),
    ),
    "public host whose gateway serves plain HTTP": (
        "public-endpoint-tls",
        llm_policies.ECS_INSTANCE,
        {"internetMaxBandwidthOut": 100, "userData": b64(gateway_user_data(tls=False))},
    ),
    "public host with a TLS port beside a plain one": (
        "public-endpoint-tls",
        llm_policies.ECS_INSTANCE,
        {"internetMaxBandwidthOut": 1, "userData": b64(gateway_user_data(tls=True, plain_port=8003))},
    ),
    # gpu-pod-seccomp
    "GPU pod without a seccomp profile": ("gpu-pod-seccomp", DEPLOYMENT, deployment(pod_without_seccomp())),
    "GPU container opting out of the pod's profile": (
        "gpu-pod-seccomp",
        DEPLOYMENT,
        with_container(unconfined_gpu_container),
    ),
    "GPU worker of a LeaderWorkerSet without a profile": (
        "gpu-pod-seccomp",
        LWS,
        {
            **leader_worker_set(),
            "spec": {
                "replicas": 1,
                "leaderWorkerTemplate": {
                    "size": 2,
                    "leaderTemplate": {"spec": pod_spec()},
                    "workerTemplate": {"spec": pod_without_seccomp()},
                },
            },
        },
    ),
    # public-endpoint-cidr-limits
    "API rule open to 0.0.0.0/0": (
        "public-endpoint-cidr-limits",
        llm_policies.SECURITY_GROUP_RULE,
        sg_rule("8000/8000", "0.0.0.0/0"),
    ),
    "rule open to ::/0": (
        "public-endpoint-cidr-limits",
        llm_policies.SECURITY_GROUP_RULE,
        sg_rule("8000/8000", ipv6CidrIp="::/0"),
    ),
    "internet LoadBalancer without source ranges (Alibaba)": (
        "public-endpoint-cidr-limits",
        SERVICE,
        service({ALIBABA_ADDRESS: "internet"}),
    ),
    "LoadBalancer without annotations is external on GKE": ("public-endpoint-cidr-limits", SERVICE, service({})),
    "LoadBalancer source range 0.0.0.0/0": (
        "public-endpoint-cidr-limits",
        SERVICE,
        service({ALIBABA_ADDRESS: "internet"}, ["0.0.0.0/0"]),
    ),
    "GCP firewall from anywhere": (
        "public-endpoint-cidr-limits",
        llm_policies.GCP_FIREWALL,
        {"network": "n", "sourceRanges": ["0.0.0.0/0"], "allows": [{"protocol": "tcp", "ports": ["8000"]}]},
    ),
    # engine-behind-gateway
    "vLLM on every address": (
        "engine-behind-gateway",
        DEPLOYMENT,
        with_container(lambda c: c["command"].__setitem__(4, "0.0.0.0")),
    ),
    "vLLM without --host (the engine's default is every address)": (
        "engine-behind-gateway",
        DEPLOYMENT,
        with_container(lambda c: c.update(command=["vllm", "serve", "/m", "--port", "8001"])),
    ),
    "SGLang with --host=0.0.0.0": (
        "engine-behind-gateway",
        DEPLOYMENT,
        deployment(pod_spec({**sglang_container(), "args": ["--host=0.0.0.0"]})),
    ),
    "a serving pod without a gateway": ("engine-behind-gateway", DEPLOYMENT, deployment(pod_spec(gateway=False))),
    "user-data starting vLLM on every address": (
        "engine-behind-gateway",
        llm_policies.ECS_INSTANCE,
        {"userData": b64("#!/bin/bash\ndocker run img vllm serve /m --host 0.0.0.0 --port 8000\n")},
    ),
    # inference-api-key-required
    "vLLM without a key": ("inference-api-key-required", DEPLOYMENT, with_container(_drop_key)),
    "vLLM key from a literal env, not a Secret": (
        "inference-api-key-required",
        DEPLOYMENT,
        with_container(lambda c: c.update(env=[{"name": "VLLM_API_KEY", "value": "$(OTHER)"}])),
    ),
    "SGLang --api-key from a plain env var": (
        "inference-api-key-required",
        DEPLOYMENT,
        deployment(pod_spec({**sglang_container(), "env": [{"name": "SGLANG_API_KEY", "value": "$(X)"}]})),
    ),
    "LeaderWorkerSet leader without a key": ("inference-api-key-required", LWS, lws_with("leaderTemplate", _drop_key)),
    # no-ssh-from-internet
    "SSH from 0.0.0.0/0": ("no-ssh-from-internet", llm_policies.SECURITY_GROUP_RULE, sg_rule("22/22", "0.0.0.0/0")),
    "all TCP ports from 0.0.0.0/0": (
        "no-ssh-from-internet",
        llm_policies.SECURITY_GROUP_RULE,
        sg_rule("1/65535", "0.0.0.0/0"),
    ),
    "all protocols from 0.0.0.0/0": (
        "no-ssh-from-internet",
        llm_policies.SECURITY_GROUP_RULE,
        sg_rule("-1/-1", "0.0.0.0/0", protocol="all"),
    ),
    "GCP firewall SSH from anywhere": (
        "no-ssh-from-internet",
        llm_policies.GCP_FIREWALL,
        {"network": "n", "sourceRanges": ["0.0.0.0/0"], "allows": [{"protocol": "tcp", "ports": ["20-30"]}]},
    ),
    # private-encrypted-buckets
    "OSS bucket without encryption": ("private-encrypted-buckets", llm_policies.OSS_BUCKET, {"bucket": "m"}),
    "OSS bucket with a public-read acl": (
        "private-encrypted-buckets",
        llm_policies.OSS_BUCKET,
        {"bucket": "m", "acl": "public-read", "serverSideEncryptionRule": {"sseAlgorithm": "KMS"}},
    ),
    "OSS BucketAcl public-read": (
        "private-encrypted-buckets",
        llm_policies.OSS_BUCKET_ACL,
        {"bucket": "m", "acl": "public-read"},
    ),
    "GCS bucket with fine-grained ACLs": (
        "private-encrypted-buckets",
        llm_policies.GCS_BUCKET,
        {"name": "m", "location": "US", "publicAccessPrevention": "enforced"},
    ),
    "GCS bucket with inherited public access prevention": (
        "private-encrypted-buckets",
        llm_policies.GCS_BUCKET,
        {"name": "m", "location": "US", "uniformBucketLevelAccess": True, "publicAccessPrevention": "inherited"},
    ),
    # no-plaintext-secrets
    "API key as a literal env value": (
        "no-plaintext-secrets",
        DEPLOYMENT,
        with_container(lambda c: c["env"].append({"name": "OPENAI_API_KEY", "value": "not-a-reference"})),
    ),
    "HF token in env under any name": (
        "no-plaintext-secrets",
        DEPLOYMENT,
        with_container(lambda c: c["env"].append({"name": "DOWNLOAD", "value": "hf_" + "a1B2" * 9})),
    ),
    "--api-key literal in args": (
        "no-plaintext-secrets",
        DEPLOYMENT,
        with_container(lambda c: c.update(args=["--api-key", "sekrit-value-123"])),
    ),
    "token assignment in a shell command": (
        "no-plaintext-secrets",
        JOB,
        {
            "spec": {
                "template": {
                    "spec": {
                        "containers": [
                            {
                                "name": "dl",
                                "image": "python:3.11.9-slim",
                                "command": ["sh", "-c", "export MODELSCOPE_TOKEN=ms-0123456789abcdef && python dl.py"],
                            }
                        ]
                    }
                }
            }
        },
    ),
    "key in ECS user-data": (
        "no-plaintext-secrets",
        llm_policies.ECS_INSTANCE,
        {"userData": b64("#!/bin/bash\necho VLLM_API_KEY=Zq9XhT2mLp4Rw8Ke >/etc/llm-serving/secret.env\n")},
    ),
    "AccessKey id in ECS user-data (plain text)": (
        "no-plaintext-secrets",
        llm_policies.ECS_INSTANCE,
        {"userData": "#!/bin/bash\nossutil config -i LTAI5tAbCdEfGhIjKlMnOp\n"},
    ),
    "bearer token in a Cloud Assistant command": (
        "no-plaintext-secrets",
        llm_policies.ECS_COMMAND,
        {"commandContent": b64("curl -H 'Authorization: Bearer abcdEFGH12345678' http://127.0.0.1:8000/v1/models\n")},
    ),
    "password in cloud-config": (
        "no-plaintext-secrets",
        llm_policies.ECS_INSTANCE,
        {"userData": b64("#cloud-config\nchpasswd:\n  list: |\n    root:x\npassword: CorrectHorse99\n")},
    ),
    # pinned-images
    "image without a tag": ("pinned-images", DEPLOYMENT, with_container(lambda c: c.update(image="vllm/vllm-openai"))),
    "image :latest": ("pinned-images", DEPLOYMENT, with_container(lambda c: c.update(image="vllm/vllm-openai:latest"))),
    "registry with a port, no tag": (
        "pinned-images",
        POD,
        {"spec": pod_spec({**serving_container(), "image": "registry:5000/vllm"})},
    ),
    "init container unpinned": (
        "pinned-images",
        JOB,
        {
            "spec": {
                "template": {
                    "spec": {
                        "initContainers": [{"name": "fetch", "image": "busybox"}],
                        "containers": [{"name": "main", "image": "busybox:1.36.1"}],
                    }
                }
            }
        },
    ),
    "LeaderWorkerSet worker :latest": (
        "pinned-images",
        LWS,
        lws_with("workerTemplate", lambda c: c.update(image="vllm/vllm-openai:latest")),
    ),
    "LeaderWorkerSet worker without probes": (
        "gpu-workload-probes-and-shm",
        LWS,
        lws_with("workerTemplate", lambda c: c.pop("readinessProbe")),
    ),
    "Helm release without a chart version": (
        "pinned-images",
        "kubernetes:helm.sh/v3:Release",
        {"chart": "lws", "repositoryOpts": {"repo": "https://example.com/charts"}, "namespace": "lws-system"},
    ),
    # gpu-workload-probes-and-shm
    "GPU container without probes": (
        "gpu-workload-probes-and-shm",
        DEPLOYMENT,
        with_container(lambda c: c.pop("startupProbe")),
    ),
    "GPU container without /dev/shm": (
        "gpu-workload-probes-and-shm",
        DEPLOYMENT,
        with_container(lambda c: c.update(volumeMounts=[{"name": "model", "mountPath": "/models"}])),
    ),
    "/dev/shm on a disk-backed emptyDir": (
        "gpu-workload-probes-and-shm",
        DEPLOYMENT,
        deployment({**pod_spec(), "volumes": [{"name": "shm", "emptyDir": {}}, {"name": "model", "emptyDir": {}}]}),
    ),
    "GPU requested in requests only, no probe": (
        "gpu-workload-probes-and-shm",
        POD,
        {
            "spec": pod_spec(
                {
                    **{k: v for k, v in serving_container().items() if k != "startupProbe"},
                    "resources": {"requests": {"nvidia.com/gpu": 1}},
                }
            )
        },
    ),
}


@pytest.mark.parametrize("case", sorted(VIOLATIONS))
def test_each_rule_catches_its_violation(case):
    policy, resource_type, props = VIOLATIONS[case]
    found = all_violations(args_for(resource_type, copy.deepcopy(props)))
    assert policy in found, found


@pytest.mark.parametrize(
    "resource_type, props, stack, expected",
    [
        (llm_policies.ECS_INSTANCE, {"placement.instanceType": "ecs.gn7i-c16g1.4xlarge"}, "prod", True),
        (llm_policies.ECS_INSTANCE, {"deletionProtection": False}, "acs-prod", True),
        (llm_policies.ECS_INSTANCE, {"deletionProtection": True}, "prod", False),
        (llm_policies.ECS_INSTANCE, {"deletionProtection": False}, "dev", False),
        (llm_policies.ACK_CLUSTER, {"profile": "Acs"}, "production", True),
        (llm_policies.GKE_CLUSTER, {"deletionProtection": False}, "prod", True),
        (llm_policies.GKE_CLUSTER, {}, "prod", False),  # the provider default protects the cluster
    ],
)
def test_prod_deletion_protection_is_advised(resource_type, props, stack, expected):
    assert bool(violations("prod-deletion-protection", args_for(resource_type, props, stack=stack))) is expected


# ---------------------------------------------------------------------------------------------- heuristics


def test_secret_heuristics_leave_ordinary_names_and_references_alone():
    assert llm_checks.name_looks_secret("HF_TOKEN") and llm_checks.name_looks_secret("apiKey")
    assert llm_checks.name_looks_secret("akSecret") and llm_checks.name_looks_secret("ALICLOUD_ACCESS_KEY")
    assert not llm_checks.name_looks_secret("TOKENIZERS_PARALLELISM")
    assert not llm_checks.name_looks_secret("MAX_NUM_BATCHED_TOKENS")
    assert llm_checks.secrets_in_text('--api-key $(VLLM_API_KEY) --api-key "${KEY}" --api-key {{oos-secret:k}}') == []
    assert llm_checks.secrets_in_text("--max-num-batched-tokens 32768 --env-file /etc/llm-serving/secret.env") == []
    assert llm_checks.secrets_in_text("HF_TOKEN=abc123") == []  # too short to be a credential


def test_an_unknown_image_at_preview_is_reported_not_silently_passed():
    props = deployment()
    props["spec"]["template"]["spec"]["containers"][0]["image"] = Unknown()
    with pytest.raises(UnknownValueError):
        violations("pinned-images", args_for(DEPLOYMENT, props))


# ---------------------------------------------------------------------------------------------- stack policies

NETWORK_POLICY = "kubernetes:networking.k8s.io/v1:NetworkPolicy"
DEFAULT_DENY = {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}


def stack_violations(resources: list[tuple[str, dict]], stack: str = "dev") -> list[str]:
    """The stack policies over `resources` (type, props), as the engine hands them over."""
    found: list[str] = []
    policy_resources = [
        pulumi_policy.PolicyResource(
            resource_type,
            unknown_checking_proxy(engine_value(unwrap(props))),
            f"urn:pulumi:{stack}::llm::{resource_type}::r{i}",
            f"r{i}",
            None,  # type: ignore[arg-type]
            None,
            None,
            [],
            {},
        )
        for i, (resource_type, props) in enumerate(resources)
    ]
    args = pulumi_policy.StackValidationArgs(policy_resources)
    for policy in llm_policies.STACK_POLICIES:
        policy.validate(args, lambda message, urn=None: found.append(message))  # type: ignore[misc]
    return found


def network_policy(namespace: str, spec: dict) -> tuple[str, dict]:
    return (NETWORK_POLICY, {"metadata": {"name": "p", "namespace": namespace}, "spec": spec})


@pytest.mark.parametrize("stack", STACKS)
def test_every_example_stack_isolates_its_serving_namespace(stack):
    run = stack_run(stack)
    assert stack_violations([(r.type, r.inputs) for r in run.resources], stack) == []


def test_removing_the_default_deny_policy_from_a_stack_is_refused():
    run = stack_run("acs")
    kept = [
        (r.type, r.inputs) for r in run.resources if not (r.type == NETWORK_POLICY and r.name.endswith("-default-deny"))
    ]
    assert len(kept) == len(run.resources) - 1
    (message,) = stack_violations(kept)
    assert "namespace 'llm' runs an inference server" in message


@pytest.mark.parametrize(
    "policies,expected",
    [
        ([], 1),
        ([network_policy("llm", DEFAULT_DENY)], 0),
        ([network_policy("llm", {"podSelector": {}})], 0),  # policyTypes defaults to Ingress
        ([network_policy("other", DEFAULT_DENY)], 1),  # another namespace's
        ([network_policy("llm", {"podSelector": {"matchLabels": {"app": "llm"}}, "policyTypes": ["Ingress"]})], 1),
        ([network_policy("llm", {"podSelector": {}, "policyTypes": ["Egress"]})], 1),  # ingress stays open
        ([network_policy("llm", {"podSelector": {}, "ingress": [{}]})], 1),  # allows everything
    ],
    ids=["none", "default-deny", "ingress-by-default", "other-namespace", "some-pods", "egress-only", "allow-all"],
)
def test_a_serving_namespace_needs_a_default_deny_policy(policies, expected):
    assert len(stack_violations([(DEPLOYMENT, deployment()), *policies])) == expected
    lws = {**leader_worker_set(), "metadata": {"name": "llm", "namespace": "llm"}}
    assert len(stack_violations([(LWS, lws), *policies])) == expected


def test_namespaces_without_inference_servers_need_no_policy_and_an_unknown_one_is_not_silently_passed():
    job = COMPLIANT["benchmark job (vllm bench is a client)"][1]
    assert stack_violations([(JOB, {**job, "metadata": {"name": "b", "namespace": "llm"}})]) == []
    unknown = deployment()
    unknown["metadata"]["namespace"] = Unknown()
    with pytest.raises(UnknownValueError):  # the engine reports the policy as not evaluable at preview
        stack_violations([(DEPLOYMENT, unknown), network_policy("llm", DEFAULT_DENY)])
