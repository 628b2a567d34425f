"""The guardrail policies: ResourceValidationPolicy objects, importable without starting a policy server.

`__main__.py` hands POLICIES to PolicyPack; tests call each policy's `validate(args, report_violation)`.
Each validation reads `args.resource_type`, `args.props` (camelCase inputs) and, for the advisory
prod rule, the stack name in `args.urn`.
"""

from __future__ import annotations

import re
from collections.abc import Callable

import llm_checks as c
from pulumi_policy import (
    EnforcementLevel,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
    StackValidationPolicy,
)

SECURITY_GROUP_RULE = "alicloud:ecs/securityGroupRule:SecurityGroupRule"
GCP_FIREWALL = "gcp:compute/firewall:Firewall"
SERVICE = "kubernetes:core/v1:Service"
OSS_BUCKET = "alicloud:oss/bucket:Bucket"
OSS_BUCKET_ACL = "alicloud:oss/bucketAcl:BucketAcl"
GCS_BUCKET = "gcp:storage/bucket:Bucket"
ECS_INSTANCE = "alicloud:ecs/instance:Instance"
ECS_COMMAND = "alicloud:ecs/command:Command"
ACK_CLUSTER = "alicloud:cs/managedKubernetes:ManagedKubernetes"
GKE_CLUSTER = "gcp:container/cluster:Cluster"

# Script text each resource type carries, by input name (ECS wants it base64-encoded).
SCRIPT_INPUTS = {
    ECS_INSTANCE: ("userData",),
    ECS_COMMAND: ("commandContent",),
    "alicloud:ecs/launchTemplate:LaunchTemplate": ("userData",),
    "alicloud:ecs/ecsLaunchTemplate:EcsLaunchTemplate": ("userData",),
    "alicloud:cs/nodePool:NodePool": ("userData", "preUserData"),
    "gcp:compute/instance:Instance": ("metadataStartupScript",),
}
# Kubernetes kinds with no pods inside; everything else under kubernetes: is searched for pod specs.
NOT_WORKLOADS = (
    "kubernetes:core/v1:Secret",
    "kubernetes:core/v1:ConfigMap",
    "kubernetes:core/v1:Service",
    "kubernetes:networking.k8s.io/v1:NetworkPolicy",
)
NETWORK_POLICY = "kubernetes:networking.k8s.io/v1:NetworkPolicy"
GATEWAY_CONF_MARK = "# Rendered by core/gateway.py"

Validate = Callable[[ResourceValidationArgs, ReportViolation], None]


def _policy(name: str, description: str, level: EnforcementLevel, validate: Validate) -> ResourceValidationPolicy:
    return ResourceValidationPolicy(name=name, description=description, enforcement_level=level, validate=validate)


def _workload_pods(args: ResourceValidationArgs) -> list:
    if not args.resource_type.startswith("kubernetes:") or args.resource_type in NOT_WORKLOADS:
        return []
    return c.pod_specs(args.props)


# ---------------------------------------------------------------------------------------------- network


def validate_engine_behind_gateway(args: ResourceValidationArgs, report: ReportViolation) -> None:
    """The engines' key check does not guard every path (vllm-project/vllm#58144): nothing may reach them directly."""
    for key in SCRIPT_INPUTS.get(args.resource_type, ()):
        for host in c.listen_hosts(c.decoded_text(c.get(args.props, key))):
            if host not in c.LOOPBACK_HOSTS:
                report(
                    f"{key} starts an inference server on --host {host}; it must listen on 127.0.0.1 behind the gateway"
                )
    for pod in _workload_pods(args):
        servers = [k for k in c.containers(pod, init=False) if c.is_inference_server(k)]
        for container in servers:
            name = c.get(container, "name")
            for host in c.listen_hosts(c.command_line(container)):
                if host not in c.LOOPBACK_HOSTS:
                    report(
                        f"container {name!r} listens on --host {host}; it must listen on 127.0.0.1 behind the gateway"
                    )
        others = [k for k in c.containers(pod, init=False) if k not in servers]
        if servers and not any(c.published_ports(k) for k in others):
            report("a pod serving inference has no gateway container publishing the API port")


def _open_sources(props, *cidr_keys: str) -> list[str]:
    return [props[k] for k in cidr_keys if c.has_key(props, k) and c.is_open_cidr(props[k])]


def _is_accepting_ingress(props) -> bool:
    return c.get(props, "type") == "ingress" and c.get(props, "policy", default="accept") != "drop"


def _gcp_open_ingress(props) -> list[str]:
    if c.get(props, "direction", default="INGRESS") != "INGRESS":
        return []
    return [r for _, r in c.known_items(c.get(props, "sourceRanges", default=[]) or []) if c.is_open_cidr(r)]


def validate_public_endpoint(args: ResourceValidationArgs, report: ReportViolation) -> None:
    props = args.props
    if args.resource_type == SECURITY_GROUP_RULE and _is_accepting_ingress(props):
        for cidr in _open_sources(props, "cidrIp", "ipv6CidrIp"):
            report(
                f"ingress on ports {c.get(props, 'portRange', default='-1/-1')} is open to {cidr}; "
                "list the client CIDRs (llm:allowedCidrs)"
            )
    elif args.resource_type == GCP_FIREWALL:
        for cidr in _gcp_open_ingress(props):
            report(f"firewall ingress is open to {cidr}; list the client CIDRs")
    elif args.resource_type == SERVICE and c.is_internet_facing_service(props):
        ranges = list(c.get(props, "spec", "loadBalancerSourceRanges", default=[]) or [])
        if not ranges:
            report(
                "internet-facing LoadBalancer without spec.loadBalancerSourceRanges; "
                "set the client CIDRs or make it internal"
            )
        for cidr in ranges:
            if c.is_open_cidr(cidr):
                report(f"loadBalancerSourceRanges includes {cidr}")


def validate_public_tls(args: ResourceValidationArgs, report: ReportViolation) -> None:
    """A public endpoint serves HTTPS only: the bearer key travels in every request (docs/security.md)."""
    props = args.props
    if args.resource_type == SERVICE and c.is_internet_facing_service(props):
        for port in c.plain_service_ports(props):
            report(
                f"internet-facing LoadBalancer port {port} serves plain HTTP; terminate TLS at the gateway (a port "
                "named https to the container port https) or on the load balancer (llm:access.tls)"
            )
    elif args.resource_type == ECS_INSTANCE and (c.get(props, "internetMaxBandwidthOut") or 0) > 0:
        conf = c.decoded_text(c.get(props, "userData"))
        if GATEWAY_CONF_MARK in conf:
            for listen in c.gateway_plain_listeners(conf):
                report(f"a public host's gateway listens on {listen} without TLS; set llm:access.tls")


def validate_gpu_seccomp(args: ResourceValidationArgs, report: ReportViolation) -> None:
    for pod in _workload_pods(args):
        for container in c.containers(pod):
            if c.requests_gpu(container) and not c.seccomp_confined(pod, container):
                report(
                    f"GPU container {c.get(container, 'name')!r} runs without a seccomp profile; set "
                    "securityContext.seccompProfile.type RuntimeDefault (pod or container)"
                )


def _namespace_of(props) -> object:
    return c.get(props, "metadata", "namespace", default="default")


def _default_denies_ingress(spec) -> bool:
    selector = c.get(spec, "podSelector", default=None)
    types = list(c.get(spec, "policyTypes", default=None) or ["Ingress"])
    return (
        selector is not None
        and not c.get(selector, "matchLabels")
        and not c.get(selector, "matchExpressions")
        and "Ingress" in types
        and not c.get(spec, "ingress")
    )


def validate_serving_namespace_isolated(args: StackValidationArgs, report: ReportViolation) -> None:
    """Every namespace that runs an inference server has a default-deny NetworkPolicy (podSelector {}, Ingress,
    no rule): without one, any pod of the cluster reaches every port of the serving pods (Ray's head included)."""
    isolated = set()
    serving: dict[object, str] = {}
    for resource in args.resources:
        props = resource.props
        if resource.resource_type == NETWORK_POLICY and _default_denies_ingress(c.get(props, "spec", default={})):
            isolated.add(_namespace_of(props))
        elif resource.resource_type.startswith("kubernetes:") and resource.resource_type not in NOT_WORKLOADS:
            if any(c.is_inference_server(k) for pod in c.pod_specs(props) for k in c.containers(pod, init=False)):
                serving.setdefault(_namespace_of(props), resource.name)
    for namespace, name in serving.items():
        if namespace not in isolated:
            report(
                f"namespace {namespace!r} runs an inference server ({name}) without a default-deny NetworkPolicy "
                "(podSelector {}, policyTypes [Ingress], no ingress rule)",
                None,
            )


def validate_api_key(args: ResourceValidationArgs, report: ReportViolation) -> None:
    for pod in _workload_pods(args):
        for container in c.containers(pod, init=False):
            if c.is_inference_server(container) and c.api_key_source(container) is None:
                report(
                    f"container {c.get(container, 'name')!r} serves the OpenAI API without an API key from a "
                    "Secret: pass --api-key $(VAR) or VLLM_API_KEY with valueFrom.secretKeyRef"
                )


def validate_no_ssh_from_internet(args: ResourceValidationArgs, report: ReportViolation) -> None:
    props = args.props
    if args.resource_type == SECURITY_GROUP_RULE and _is_accepting_ingress(props):
        if c.get(props, "ipProtocol") in ("tcp", "all") and c.alicloud_port_range_covers(c.get(props, "portRange"), 22):
            for cidr in _open_sources(props, "cidrIp", "ipv6CidrIp"):
                report(f"SSH (22) is open to {cidr}; use llm:sshCidrs with your own address")
    elif args.resource_type == GCP_FIREWALL and _gcp_open_ingress(props):
        for _, allow in c.known_items(c.get(props, "allows", default=[]) or []):
            if str(c.get(allow, "protocol")).lower() in ("tcp", "all") and c.gcp_ports_cover(c.get(allow, "ports"), 22):
                report("firewall allows SSH (22) from the whole internet")


# ---------------------------------------------------------------------------------------------- storage

OSS_ENCRYPTION = ("AES256", "KMS")  # the provider's documented sse_algorithm values


def validate_buckets(args: ResourceValidationArgs, report: ReportViolation) -> None:
    props = args.props
    if args.resource_type == OSS_BUCKET:
        algorithm = c.get(props, "serverSideEncryptionRule", "sseAlgorithm")
        if algorithm not in OSS_ENCRYPTION:
            report(
                f"OSS bucket without server-side encryption; set server_side_encryption_rule "
                f"(sse_algorithm one of {', '.join(OSS_ENCRYPTION)})"
            )
        acl = c.get(props, "acl")
        if acl not in (None, "", "private"):
            report(f"OSS bucket ACL is {acl!r}; it must be private")
    elif args.resource_type == OSS_BUCKET_ACL and c.get(props, "acl") != "private":
        report(f"OSS bucket ACL is {c.get(props, 'acl')!r}; it must be private")
    elif args.resource_type == GCS_BUCKET:
        # GCS always encrypts at rest (Google-managed keys); what must be set is access.
        if c.get(props, "uniformBucketLevelAccess") is not True:
            report("GCS bucket without uniform bucket-level access (object ACLs could make objects public)")
        if c.get(props, "publicAccessPrevention") != "enforced":
            report("GCS bucket without public access prevention enforced")


# ---------------------------------------------------------------------------------------------- secrets


def validate_no_plaintext_secrets(args: ResourceValidationArgs, report: ReportViolation) -> None:
    for key in SCRIPT_INPUTS.get(args.resource_type, ()):
        text = c.decoded_text(c.get(args.props, key))
        for finding in c.secrets_in_text(text):
            report(
                f"{key} contains what looks like a credential ({finding}); pass secrets by reference "
                "(OOS encrypted parameter, Secret) instead"
            )
    for pod in _workload_pods(args):
        for container in c.containers(pod):
            name = c.get(container, "name")
            for finding in c.plaintext_env_secrets(container):
                report(f"container {name!r}: {finding}; use valueFrom.secretKeyRef")
            for finding in c.secrets_in_text(c.command_line(container)):
                report(f"container {name!r}: command/args contain {finding}; reference an env var from a Secret")


# ---------------------------------------------------------------------------------------------- workloads


HELM_CHARTS = ("kubernetes:helm.sh/v3:Release", "kubernetes:helm.sh/v4:Chart")


def validate_pinned_images(args: ResourceValidationArgs, report: ReportViolation) -> None:
    if args.resource_type in HELM_CHARTS:
        chart = str(c.get(args.props, "chart", default=""))
        # A chart tarball URL names its version in the file name (<chart>-<x.y.z>.tgz): pinned as it is.
        versioned_tarball = re.search(r"-\d+\.\d+\.\d+\.tgz$", chart)
        if not chart.startswith((".", "/")) and not versioned_tarball and not c.get(args.props, "version"):
            report(f"Helm chart {chart!r} has no version; pin one (its images follow the chart version)")
    for pod in _workload_pods(args):
        for container in c.containers(pod):
            problem = c.image_pin_problem(c.get(container, "image"))
            if problem:
                report(f"container {c.get(container, 'name')!r}: image {problem}; pin a version tag or digest")


def validate_gpu_workloads(args: ResourceValidationArgs, report: ReportViolation) -> None:
    for pod in _workload_pods(args):
        for container in c.containers(pod, init=False):
            if not c.requests_gpu(container):
                continue
            name = c.get(container, "name")
            if c.get(container, "startupProbe") is None and c.get(container, "readinessProbe") is None:
                report(f"GPU container {name!r} has no startupProbe or readinessProbe (model loads take minutes)")
            if not c.has_memory_shm(pod, container):
                report(f"GPU container {name!r} does not mount a memory emptyDir at {c.SHM_PATH}")


# ---------------------------------------------------------------------------------------------- prod


# The import and image-mirror workers (components/alibaba/model_import_workers.py, image_mirror.py): they stop
# themselves once done and hold nothing a re-run cannot redo, so protecting them would only make destroy fail.
SHORT_LIVED_WORKERS = ("model-import", "image-mirror")


def validate_prod_deletion_protection(args: ResourceValidationArgs, report: ReportViolation) -> None:
    if args.resource_type not in (ECS_INSTANCE, ACK_CLUSTER, GKE_CLUSTER) or not c.is_production(
        c.stack_of(args.urn or "")
    ):
        return
    if c.get(args.props, "tags", "component") in SHORT_LIVED_WORKERS:
        return
    protection = c.get(args.props, "deletionProtection")
    # The GKE provider protects clusters unless deletion_protection is set to false.
    if protection is False or (protection is not True and args.resource_type != GKE_CLUSTER):
        report("production resource without deletion protection (llm:deletionProtection true)")


MANDATORY = EnforcementLevel.MANDATORY
POLICIES: list[ResourceValidationPolicy] = [
    _policy(
        "public-endpoint-tls",
        "Public endpoints serve HTTPS only: internet-facing LoadBalancer ports end TLS at the load balancer or the "
        "gateway, a public host's gateway listens with TLS. Disable it in the pack config to allow plain HTTP.",
        MANDATORY,
        validate_public_tls,
    ),
    _policy(
        "gpu-pod-seccomp",
        "GPU containers run under a seccomp profile (RuntimeDefault or Localhost).",
        MANDATORY,
        validate_gpu_seccomp,
    ),
    _policy(
        "public-endpoint-cidr-limits",
        "Nothing is reachable from the whole internet: security group rules, firewalls and internet-facing "
        "LoadBalancer Services list the allowed client CIDRs.",
        MANDATORY,
        validate_public_endpoint,
    ),
    _policy(
        "engine-behind-gateway",
        "Inference servers listen on 127.0.0.1 only; a gateway beside them (same pod or host) is the only way in.",
        MANDATORY,
        validate_engine_behind_gateway,
    ),
    _policy(
        "inference-api-key-required",
        "Every vLLM/SGLang server requires an API key that comes from a Kubernetes Secret.",
        MANDATORY,
        validate_api_key,
    ),
    _policy(
        "no-ssh-from-internet",
        "SSH (port 22) is never open to 0.0.0.0/0 or ::/0.",
        MANDATORY,
        validate_no_ssh_from_internet,
    ),
    _policy(
        "private-encrypted-buckets",
        "Buckets are private and encrypted: OSS with server-side encryption and a private ACL; GCS with "
        "uniform access and public access prevention enforced.",
        MANDATORY,
        validate_buckets,
    ),
    _policy(
        "no-plaintext-secrets",
        "No credential is written out in pod env, container command/args, ECS user-data or Cloud Assistant "
        "command text.",
        MANDATORY,
        validate_no_plaintext_secrets,
    ),
    _policy(
        "pinned-images",
        "Container images carry a version tag other than latest, or a digest; remote Helm charts a version.",
        MANDATORY,
        validate_pinned_images,
    ),
    _policy(
        "gpu-workload-probes-and-shm",
        "GPU containers have a startup or readiness probe and a memory-backed /dev/shm.",
        MANDATORY,
        validate_gpu_workloads,
    ),
    _policy(
        "prod-deletion-protection",
        "In production stacks, instances (but the short-lived import and mirror workers) and clusters are protected "
        "from deletion.",
        EnforcementLevel.ADVISORY,
        validate_prod_deletion_protection,
    ),
]

STACK_POLICIES: list[StackValidationPolicy] = [
    StackValidationPolicy(
        name="serving-namespace-network-policy",
        description="Every namespace running an inference server has a default-deny NetworkPolicy.",
        enforcement_level=MANDATORY,
        validate=validate_serving_namespace_isolated,
    ),
]
ALL_POLICIES: list = [*POLICIES, *STACK_POLICIES]
