"""Alibaba Cloud rules the provider does not check (sources: the API references and provider source cited)."""

from __future__ import annotations

import re

from cloud_rules import Candidate, known, rule, run_rule


def _unwrap(value):
    from harness import unwrap

    return unwrap(value)


@rule(
    "alicloud:oos/secretParameter:SecretParameter",
    source="CreateSecretParameter API, help.aliyun.com/zh/oos/developer-reference/api-oos-2019-06-01-"
    "createsecretparameter (Value: 1-4096 characters); pulumi_alicloud oos/secret_parameter.py docstring",
)
def secret_parameter_value_fits(candidate: Candidate, run) -> str | None:
    value = _unwrap(candidate.inputs.get("value"))
    if known(value) and isinstance(value, str) and not 1 <= len(value) <= 4096:
        return f"an encrypted parameter's value must be 1-4096 characters; this one is {len(value)}"
    return None


# --- Resolving references in a mock run -------------------------------------------------------------------
# The mocks give every resource the id "<name>-id" (tests/harness.py CloudMocks.new_resource), so an input
# holding another resource's id names it.


def _by_id(run, type_: str) -> dict:
    return {f"{r.name}-id": r for r in run.of_type(type_)}


def _depends_on(run, resource, target_urn: str) -> bool:
    """True when `resource` waits for `target_urn`, directly or through what it waits for (and parents)."""
    by_urn = {r.urn: r for r in run.resources}
    seen, todo = set(), [resource.urn]
    while todo:
        urn = todo.pop()
        if urn in seen:
            continue
        seen.add(urn)
        current = by_urn.get(urn)
        if current is None:
            continue
        if target_urn in current.dependencies:
            return True
        todo.extend(current.dependencies)
    return False


def _statements(document) -> list[dict]:
    import json

    if not isinstance(document, str) or not known(document):
        return []
    try:
        statements = json.loads(document).get("Statement", [])
    except ValueError:
        return []
    return [s for s in statements if isinstance(s, dict)]


def _listed(value) -> list[str]:
    return [value] if isinstance(value, str) else list(value or [])


def _allows(statements: list[dict], action: str, resource_pattern: str) -> bool:
    """Some Allow statement grants `action` on a resource matching `resource_pattern` (a regex)."""
    import fnmatch
    import re

    for s in statements:
        if s.get("Effect") != "Allow":
            continue
        if not any(fnmatch.fnmatchcase(action, a) for a in _listed(s.get("Action"))):
            continue
        if any(re.fullmatch(resource_pattern, r.replace("*", "x")) or r == "*" for r in _listed(s.get("Resource"))):
            return True
    return False


def _role_policies(run, role_name: str) -> list[dict]:
    """The statements of every custom policy attached to the RAM role `role_name` in this run."""
    policies = {_unwrap(p.inputs).get("policyName"): p for p in run.of_type("alicloud:ram/policy:Policy")}
    found = []
    for attachment in run.of_type("alicloud:ram/rolePolicyAttachment:RolePolicyAttachment"):
        inputs = _unwrap(attachment.inputs)
        if inputs.get("roleName") == role_name and inputs.get("policyName") in policies:
            found += _statements(_unwrap(policies[inputs["policyName"]].inputs).get("policyDocument"))
    return found


def _instance_roles(run, instance_id: str) -> list[tuple[str, object]]:
    """(role name, the resource that attaches it) for an instance: RamRoleAttachment or the instance's role_name."""
    found = []
    for attachment in run.of_type("alicloud:ecs/ramRoleAttachment:RamRoleAttachment"):
        inputs = _unwrap(attachment.inputs)
        if inputs.get("instanceId") == instance_id:
            found.append((inputs.get("ramRoleName"), attachment))
    instance = _by_id(run, "alicloud:ecs/instance:Instance").get(instance_id)
    if instance is not None and _unwrap(instance.inputs).get("roleName"):
        found.append((_unwrap(instance.inputs)["roleName"], instance))
    return found


def _invocations_with_secrets(run):
    """(invocation, instance ids, OOS parameter names the command resolves) for every EcsInvocation."""
    import base64
    import re

    commands = _by_id(run, "alicloud:ecs/command:Command")
    for invocation in run.of_type("alicloud:ecs/ecsInvocation:EcsInvocation"):
        inputs = _unwrap(invocation.inputs)
        command = commands.get(inputs.get("commandId"))
        if command is None:
            continue
        content = _unwrap(command.inputs).get("commandContent")
        if not isinstance(content, str) or not known(content):
            continue
        text = base64.b64decode(content).decode(errors="replace")
        # The agent's own pattern (aliyun_assist_client agent/util/resolveparamstore.go).
        names = re.findall(r"\{\{\s*oos-secret\s*:\s*([\w\-.]+)\s*\}\}", text)
        yield invocation, _listed(inputs.get("instanceIds")), names


AGENT_PARAMSTORE = (
    "aliyun/aliyun_assist_client agent/util/paramstore.go at 028f1de (GetSecretParam: the instance's RAM role, "
    "read from 100.100.100.200/latest/meta-data/ram/security-credentials/); help 'Use OOS Parameter Store in "
    "Cloud Assistant commands' (bind a RAM role allowed oos:GetSecretParameter and kms:GetSecretValue)"
)


@run_rule(source=AGENT_PARAMSTORE)
def oos_secrets_need_the_instance_role(run):
    """Cloud Assistant resolves {{oos-secret:NAME}} with the instance's own RAM role: the instance needs one
    allowed that parameter (and its KMS secret), attached before the command runs, or the task fails
    (basetask.go: "ReplaceAllParameterStore error")."""
    for invocation, instances, names in _invocations_with_secrets(run):
        for instance_id in instances:
            roles = _instance_roles(run, instance_id)
            if not names:
                continue
            if not roles:
                yield f"{invocation.name}: instance {instance_id} has no RAM role, but its command reads {names}"
                continue
            for role_name, attached_by in roles:
                if not _depends_on(run, invocation, attached_by.urn):
                    yield f"{invocation.name}: runs without waiting for {attached_by.name} (the role may be missing)"
                statements = _role_policies(run, role_name)
                for name in names:
                    name_re = re.escape(name)
                    if not _allows(
                        statements, "oos:GetSecretParameter", rf"acs:oos:[^:]+:[^:]+:secretparameter/{name_re}"
                    ):
                        yield f"{invocation.name}: role {role_name} may not oos:GetSecretParameter {name}"
                    if not _allows(statements, "kms:GetSecretValue", rf"acs:kms:[^:]+:[^:]+:secret/oos/{name_re}"):
                        yield f"{invocation.name}: role {role_name} may not kms:GetSecretValue secret/oos/{name}"


@run_rule(
    source="aliyun/aliyun_assist_client agent/util/paramstore.go GetRoleName at 028f1de (a plain GET, no "
    "X-aliyun-ecs-metadata-token); help 'Access instance metadata in security hardening mode only' (only some "
    "of the latest public images support it). Conservative: not proven for the agents on current images"
)
def role_credentials_need_metadata_without_token(run):
    """With http_tokens=required the metadata service refuses the tokenless GET the public agent makes, so
    the agent cannot read the role's credentials (unknown for newer closed-source agents: keep optional)."""
    instances = _by_id(run, "alicloud:ecs/instance:Instance")
    for invocation, ids, names in _invocations_with_secrets(run):
        for instance_id in ids:
            instance = instances.get(instance_id)
            if names and instance is not None and _unwrap(instance.inputs).get("httpTokens") == "required":
                yield f"{invocation.name}: {instance.name} enforces IMDSv2, which the agent's role lookup does not use"


@rule(
    "alicloud:ram/policy:Policy",
    source="pulumi_alicloud ram/policy.py docstring (policy_document: at most 6144 bytes); RAM CreatePolicy API",
)
def ram_policy_document_fits(candidate: Candidate, run) -> str | None:
    document = _unwrap(candidate.inputs.get("policyDocument"))
    if known(document) and isinstance(document, str) and len(document.encode()) > 6144:
        return f"a policy document holds at most 6144 bytes; this one has {len(document.encode())}"
    return None


@rule(
    "alicloud:ram/role:Role",
    source="RAM CreateRole API, help.aliyun.com/zh/ram/developer-reference/api-ram-2015-05-01-createrole "
    "(RoleName: 1-64 characters, letters, digits, '.' and '-')",
)
def ram_role_name_is_valid(candidate: Candidate, run) -> str | None:
    name = _unwrap(candidate.inputs.get("roleName"))
    if known(name) and isinstance(name, str) and not re.fullmatch(r"[A-Za-z0-9.-]{1,64}", name):
        return f"a RAM role name is 1-64 letters, digits, '.' and '-'; got {name!r}"
    return None


@rule(
    "alicloud:ecs/eipAddress:EipAddress",
    source="pulumi_alicloud ecs/eip_address.py docstring (bandwidth: PayByBandwidth 1-500 Mbit/s, PayByTraffic "
    "1-200; subscription 1-1000); AllocateEipAddress API",
)
def eip_bandwidth_fits_its_billing(candidate: Candidate, run) -> str | None:
    inputs = _unwrap(candidate.inputs)
    bandwidth, charge = inputs.get("bandwidth"), inputs.get("internetChargeType", "PayByBandwidth")
    if not known(bandwidth) or bandwidth is None:
        return None
    limit = {"PayByTraffic": 200, "PayByBandwidth": 500}.get(charge, 1000)
    if not 1 <= int(bandwidth) <= limit:
        return f"a {charge} EIP carries 1-{limit} Mbit/s, not {bandwidth}"
    return None


@rule(
    "alicloud:vpc/commonBandwithPackage:CommonBandwithPackage",
    "alicloud:vpc/commonBandwithPackageAttachment:CommonBandwithPackageAttachment",
    source="pulumi_alicloud vpc/common_bandwith_package.py (bandwidth 1-1000 Mbit/s) and "
    "common_bandwith_package_attachment.py (an EIP's bandwidth no larger than the package's)",
)
def shared_bandwidth_fits(candidate: Candidate, run) -> str | None:
    inputs = _unwrap(candidate.inputs)
    if candidate.type.endswith(":CommonBandwithPackage"):
        value = inputs.get("bandwidth")
        if known(value) and value is not None and not 1 <= int(value) <= 1000:
            return f"a shared bandwidth package carries 1-1000 Mbit/s, not {value}"
        return None
    packages = _by_id(run, "alicloud:vpc/commonBandwithPackage:CommonBandwithPackage")
    package = packages.get(inputs.get("bandwidthPackageId"))
    value = inputs.get("bandwidthPackageBandwidth")
    if package is not None and known(value) and value not in (None, "Cancelled"):
        if int(value) > int(_unwrap(package.inputs).get("bandwidth", 0)):
            return f"an EIP's {value} Mbit/s exceed its package's {_unwrap(package.inputs).get('bandwidth')}"
    return None


@run_rule(
    source="NAT Gateway 'FAQ about SNAT', alibabacloud.com/help/doc-detail/187954.htm (at most 64 EIPs per SNAT "
    "entry; each EIP of an SNAT IP address pool at most 200 Mbit/s); CreateSnatEntry API (SnatIp: EIPs associated "
    "with the NAT gateway, comma-separated)"
)
def snat_pools_fit(run):
    """Every address an SNAT entry lists is an EIP associated with the NAT gateway, at most 64 of them, and each
    carries at most 200 Mbit/s (its own bandwidth, or its share of a shared bandwidth package)."""
    from harness import mock_eip_address

    eips = {mock_eip_address(r.name): r for r in run.of_type("alicloud:ecs/eipAddress:EipAddress")}
    on_nat = {
        _unwrap(a.inputs).get("allocationId")
        for a in run.of_type("alicloud:ecs/eipAssociation:EipAssociation")
        if _unwrap(a.inputs).get("instanceType") == "Nat"
    }
    shares = {
        _unwrap(a.inputs).get("instanceId"): _unwrap(a.inputs).get("bandwidthPackageBandwidth")
        for a in run.of_type("alicloud:vpc/commonBandwithPackageAttachment:CommonBandwithPackageAttachment")
    }
    associations_known = all(known(a) for a in on_nat)  # a preview: nothing has an id yet
    for entry in run.of_type("alicloud:vpc/snatEntry:SnatEntry"):
        listed = _unwrap(entry.inputs).get("snatIp")
        if not known(listed) or not isinstance(listed, str):
            continue  # a preview: the addresses are not allocated yet
        addresses = listed.split(",")
        if len(addresses) > 64:
            yield f"{entry.name}: an SNAT entry lists at most 64 EIPs, not {len(addresses)}"
        for address in addresses:
            eip = eips.get(address)
            if eip is None or (associations_known and f"{eip.name}-id" not in on_nat):
                yield f"{entry.name}: {address} is not an EIP associated with the NAT gateway"
                continue
            mbps = shares.get(f"{eip.name}-id") or _unwrap(eip.inputs).get("bandwidth")
            if known(mbps) and mbps is not None and int(mbps) > 200:
                yield f"{entry.name}: EIP {eip.name} carries {mbps} Mbit/s; one EIP of an SNAT pool carries at most 200"


def _pod_templates(run):
    """(owner name, pod template metadata, pod spec) of every Deployment, Job and LeaderWorkerSet."""
    for resource in run.resources:
        spec = _unwrap(resource.inputs).get("spec") or {}
        if resource.type in ("kubernetes:apps/v1:Deployment", "kubernetes:batch/v1:Job"):
            template = spec.get("template") or {}
            yield resource.name, template.get("metadata") or {}, template.get("spec") or {}
        elif resource.type == "kubernetes:leaderworkerset.x-k8s.io/v1:LeaderWorkerSet":
            group = spec.get("leaderWorkerTemplate") or {}
            for key in ("leaderTemplate", "workerTemplate"):
                if group.get(key):
                    yield f"{resource.name}/{key}", group[key].get("metadata") or {}, group[key].get("spec") or {}


def _cluster_profiles(run) -> set:
    return {_unwrap(c.inputs).get("profile") for c in run.of_type("alicloud:cs/managedKubernetes:ManagedKubernetes")}


@run_rule(
    source="help.aliyun.com/en/cloud-network-well-architected-design/idc-accesses-cloud-services-through-leased-"
    "lines (cloud services in 100.64.0.0/10 are reached from an IDC only over Express Connect, with routes); "
    "mirrors.cloud.aliyuncs.com and oss-<region>-internal.aliyuncs.com are VPC-internal endpoints"
)
def edge_helper_pods_stay_on_cloud_nodes(run):
    """On ACK Edge an unpinned Job may land on an IDC node, which cannot reach the VPC-only PyPI mirror or the
    internal OSS endpoint: Jobs must select the labels of a cloud node pool of this run."""
    if "Edge" not in _cluster_profiles(run):
        return
    pools = [
        {label["key"]: label["value"] for label in _unwrap(p.inputs).get("labels") or []}
        for p in run.of_type("alicloud:cs/nodePool:NodePool")
    ]
    for resource in run.of_type("kubernetes:batch/v1:Job"):
        pod = ((_unwrap(resource.inputs).get("spec") or {}).get("template") or {}).get("spec") or {}
        selector = pod.get("nodeSelector") or {}
        if not selector or not any(selector.items() <= pool.items() for pool in pools):
            yield f"{resource.name}: a Job on ACK Edge may be scheduled on an IDC node (no cloud node pool selected)"


ACS_FREE_EPHEMERAL_GIB = 30
ENGINE_IMAGE_UNPACKED_GIB = 28.6 / 1.073741824  # vllm-project/vllm#22377 (28.6 GB unpacked); EGS assumed alike
OTHER_IMAGE_UNPACKED_GIB = 2.0  # assumed for small images (Python, nginx)


def _quantity_gib(text) -> float:
    match = re.fullmatch(r"(\d+(?:\.\d+)?)(Gi|Mi|G|M)?", str(text or "0"))
    if not match:
        return 0.0
    value, unit = float(match.group(1)), match.group(2) or ""
    return {"Gi": value, "Mi": value / 1024, "G": value / 1.073741824, "M": value / 1073.741824}.get(
        unit, value / 2**30
    )


@run_rule(
    source="ACS help 'Increase temporary storage' (help/id/cs/user-guide/increase-temporary-storage-size): each "
    "pod has 30 GiB of ephemeral storage, images take at least twice their size there, more is declared with "
    "alibabacloud.com/extra-ephemeral-storage"
)
def acs_pods_fit_their_ephemeral_storage(run):
    if "Acs" not in _cluster_profiles(run):
        return
    for owner, metadata, pod in _pod_templates(run):
        images = [c.get("image", "") for c in [*(pod.get("initContainers") or []), *(pod.get("containers") or [])]]
        # Init containers run before the main ones, but their images stay on the pod's storage.
        need = sum(
            2 * (ENGINE_IMAGE_UNPACKED_GIB if any(e in i for e in ("vllm", "sglang")) else OTHER_IMAGE_UNPACKED_GIB)
            for i in set(images)
        )
        need += sum(
            _quantity_gib((v.get("emptyDir") or {}).get("sizeLimit"))
            for v in pod.get("volumes") or []
            if "emptyDir" in v and (v.get("emptyDir") or {}).get("medium") != "Memory"
        )
        extra = _quantity_gib((metadata.get("annotations") or {}).get("alibabacloud.com/extra-ephemeral-storage"))
        if need > ACS_FREE_EPHEMERAL_GIB + extra:
            yield (
                f"{owner}: needs {need:.0f} GiB of ephemeral storage (images twice, plus emptyDirs); an ACS pod has "
                f"{ACS_FREE_EPHEMERAL_GIB} GiB plus {extra:.0f} declared"
            )


def _mainland(run) -> bool:
    regions = {_unwrap(p.inputs).get("region") for p in run.of_type("pulumi:providers:alicloud")}
    return any(isinstance(r, str) and r.startswith("cn-") and r != "cn-hongkong" for r in regions)


@run_rule(
    source="registry.k8s.io from mainland China works only with luck (not reachable reliably); the Compute "
    "Nest ACS template installs LWS from the ACK catalog with registry-<region>-vpc.ack.aliyuncs.com/acs/lws"
)
def mainland_helm_releases_avoid_registry_k8s_io(run):
    """A Helm release in a mainland China region whose chart or images come from registry.k8s.io rolls back
    after its timeout when the pull fails."""
    if not _mainland(run):
        return
    from harness import all_strings

    for release in run.of_type("kubernetes:helm.sh/v3:Release"):
        inputs = _unwrap(release.inputs)
        texts = [inputs.get("chart") or "", *all_strings(inputs.get("values") or {})]
        if any("registry.k8s.io" in t for t in texts if isinstance(t, str)):
            yield f"{release.name}: pulls from registry.k8s.io, which mainland China regions may not reach"
        if (inputs.get("repositoryOpts") or {}).get("repo", "").startswith("https://fluid-cloudnative.github.io"):
            yield f"{release.name}: upstream Fluid pulls from Docker Hub, which mainland China regions cannot reach"


# Add-on names with a source that installs them through the CS add-on API (cs.KubernetesAddon or the
# cluster's `addons`). A name without one is refused until a source is cited.
KNOWN_ADDONS = {
    "arms-prometheus": 'TF website/docs/r/cs_managed_kubernetes.html.markdown (name = "arms-prometheus")',
    "ack-virtual-node": "pulumi_alicloud cs/kubernetes_addon.py (cleanup_cloud_resources is required for it)",
    "terway-eniip": "TF docs cs_managed_kubernetes (addons: terway-eniip)",
    "csi-plugin": "TF docs cs_managed_kubernetes (addons: csi-plugin)",
    "csi-provisioner": "TF docs cs_managed_kubernetes (addons: csi-provisioner)",
    "flannel": "TF docs cs_edge_kubernetes ('specify the pod_cidr field and addons with flannel')",
    "logtail-ds": "TF docs cs_managed_kubernetes (addons: logtail-ds, SLS)",
}


@rule(
    "alicloud:cs/kubernetesAddon:KubernetesAddon",
    "alicloud:cs/managedKubernetes:ManagedKubernetes",
    source="TF resource_alicloud_cs_kubernetes_addon.go:155 (an unknown add-on fails installAddon or reports "
    "'Unknown Reason'); help doc-detail/186646: ack-alibaba-cloud-metrics-adapter is an App Catalog chart",
)
def addons_are_known_to_the_addon_api(candidate: Candidate, run) -> str | None:
    inputs = _unwrap(candidate.inputs)
    names = (
        [inputs.get("name")]
        if candidate.type.endswith(":KubernetesAddon")
        else [a.get("name") for a in inputs.get("addons") or []]
    )
    unknown = [n for n in names if known(n) and n not in KNOWN_ADDONS]
    if unknown:
        return f"no source installs {unknown} through the add-on API (known: {sorted(KNOWN_ADDONS)})"
    return None


@run_rule(
    source="help .../ack-managed-and-ack-dedicated/user-guide/auto-scaling-of-nodes ('Node pool auto scaling only "
    "takes effect after you enable it at the cluster level'); TF docs cs_autoscaling_config"
)
def autoscaled_node_pools_need_cluster_autoscaling(run):
    configured = {
        _unwrap(c.inputs).get("clusterId") for c in run.of_type("alicloud:cs/autoscalingConfig:AutoscalingConfig")
    }
    for pool in run.of_type("alicloud:cs/nodePool:NodePool"):
        inputs = _unwrap(pool.inputs)
        cluster = inputs.get("clusterId")
        if not known(cluster):  # a preview: the cluster has no id yet, the up decides
            continue
        if (inputs.get("scalingConfig") or {}).get("enable") and cluster not in configured:
            yield f"{pool.name}: scales only once the cluster's autoscaling is on (no cs.AutoscalingConfig)"


@run_rule(
    source="help alibabacloud.com/help/en/oss/user-guide/delete-parts ('Before you delete a bucket, you must delete "
    "all objects and parts'); TF resource_alicloud_oss_bucket.go:1734-1801 (force_destroy deletes object "
    "versions only, never AbortMultipartUpload)"
)
def destroyed_buckets_abort_their_parts_first(run):
    """A bucket that destroy deletes, written through ossfs (multipart), needs something that aborts its
    incomplete uploads and is destroyed before it (depends on it)."""
    for bucket in run.of_type("alicloud:oss/bucket:Bucket"):
        if bucket.retain_on_delete:
            continue
        name = _unwrap(bucket.inputs).get("bucket")
        aborters = [
            r
            for r in run.resources
            if _unwrap(r.inputs).get("abortsMultipartUploadsOf") == name and bucket.urn in r.dependencies
        ]
        if not aborters:
            yield f"{bucket.name}: destroy deletes it, but nothing aborts its incomplete multipart uploads first"


# --- Cloud Assistant commands ---------------------------------------------------------------------------------
COMMAND_TIMEOUT_SECONDS = (10, 86400)
COMMAND_CONTENT_MAX_BYTES = 18 * 1024


@rule(
    "alicloud:ecs/command:Command",
    source="Cloud Assistant RunCommand 'Timeout ... Valid values: 10 to 86400' (ROS CDK @alicloud/ros-cdk-swas "
    "RunCommandProps; not stated on the ECS CreateCommand page read here); ROS ALIYUN::ECS::Command and help "
    "'Create a command' (CommandContent Base64 at most 18 KB)",
)
def command_timeout_and_content_fit(candidate: Candidate, run) -> str | None:
    inputs = _unwrap(candidate.inputs)
    timeout, content = inputs.get("timeout", 60), inputs.get("commandContent")
    low, high = COMMAND_TIMEOUT_SECONDS
    if known(timeout) and timeout is not None and not low <= int(timeout) <= high:
        return f"a Cloud Assistant command's timeout is {low}-{high} s, not {timeout}"
    if known(content) and isinstance(content, str) and len(content.encode()) > COMMAND_CONTENT_MAX_BYTES:
        return (
            f"a command's Base64 content holds at most {COMMAND_CONTENT_MAX_BYTES} bytes; this one has {len(content)}"
        )
    return None


@run_rule(
    source="pulumi_alicloud ecs/ram_role_attachment.py (AttachInstanceRamRole, after the instance exists); the "
    "metadata service serves a role's credentials (ram/security-credentials/) only once it is attached, "
    "help 'Instance RAM roles'; alibaba-facts.md section 1 (the invocation must depend on the attachment)"
)
def commands_wait_for_the_instance_role(run):
    """A command on an instance whose role is attached by a RamRoleAttachment runs with that role's credentials
    only if the invocation waits for the attachment (and the policy's): else the first calls are refused."""
    for invocation in run.of_type("alicloud:ecs/ecsInvocation:EcsInvocation"):
        for instance_id in _listed(_unwrap(invocation.inputs).get("instanceIds")):
            for role_name, attached_by in _instance_roles(run, instance_id):
                if attached_by.type.endswith(":RamRoleAttachment") and not _depends_on(
                    run, invocation, attached_by.urn
                ):
                    yield f"{invocation.name}: runs on {instance_id} without waiting for its role {role_name}"


# --- ECS Image Builder (the ecs prepared image) ------------------------------------------------------------
IMAGE_BUILDER = (
    "pulumi_alicloud ecs/ecs_image_component.py and ecs/ecs_image_pipeline.py docstrings (CreateImageComponent / "
    "CreateImagePipeline: content and build content at most 16 KB and 127 commands; component name starts with an "
    "uppercase letter; template name 2-128 and image name prefix 2-64 characters starting with a letter; system "
    "disk 20-500 GiB; intermediate instance bandwidth 0-100 Mbit/s)"
)


@rule("alicloud:ecs/ecsImageComponent:EcsImageComponent", source=IMAGE_BUILDER)
def image_component_fits(candidate: Candidate, run) -> str | None:
    inputs = _unwrap(candidate.inputs)
    content, name = inputs.get("content"), inputs.get("imageComponentName")
    if known(content) and isinstance(content, str) and len(content.encode()) > 16 * 1024:
        return f"an image component holds at most 16 KB; this one has {len(content.encode())} bytes"
    if known(name) and isinstance(name, str) and not re.fullmatch(r"[A-Z][A-Za-z0-9:_.-]{1,127}", name):
        return f"an image component's name starts with an uppercase letter, 2-128 characters; got {name!r}"
    return None


@rule("alicloud:ecs/ecsImagePipeline:EcsImagePipeline", source=IMAGE_BUILDER)
def image_pipeline_fits(candidate: Candidate, run) -> str | None:
    inputs = _unwrap(candidate.inputs)
    disk, bandwidth = inputs.get("systemDiskSize"), inputs.get("internetMaxBandwidthOut")
    if known(disk) and disk is not None and not 20 <= int(disk) <= 500:
        return f"the intermediate instance's system disk is 20-500 GiB; got {disk}"
    if known(bandwidth) and bandwidth is not None and not 0 <= int(bandwidth) <= 100:
        return f"the intermediate instance's public bandwidth is 0-100 Mbit/s; got {bandwidth}"
    for key, limit in (("name", 128), ("imageName", 64)):
        value = inputs.get(key)
        if (
            known(value)
            and isinstance(value, str)
            and not re.fullmatch(rf"[A-Za-z][A-Za-z0-9:_.-]{{1,{limit - 1}}}", value)
        ):
            return f"{key} starts with a letter, 2-{limit} letters, digits, ':', '_', '.', '-'; got {value!r}"
    content = inputs.get("buildContent")
    if known(content) and isinstance(content, str) and len(content.encode()) > 16 * 1024:
        return f"a template's build content holds at most 16 KB; this one has {len(content.encode())} bytes"
    return None


def _serving_templates(run):
    """(owner name, namespace, pod spec) of every Deployment and LeaderWorkerSet template."""
    for resource in run.resources:
        inputs = _unwrap(resource.inputs)
        namespace = (inputs.get("metadata") or {}).get("namespace")
        spec = inputs.get("spec") or {}
        if resource.type == "kubernetes:apps/v1:Deployment":
            yield resource.name, namespace, (spec.get("template") or {}).get("spec") or {}
        elif resource.type == "kubernetes:leaderworkerset.x-k8s.io/v1:LeaderWorkerSet":
            group = spec.get("leaderWorkerTemplate") or {}
            for key in ("leaderTemplate", "workerTemplate"):
                if group.get(key):
                    yield f"{resource.name}/{key}", namespace, group[key].get("spec") or {}


def _projected_token(container: dict, spec: dict, token_file: str) -> dict | None:
    """The serviceAccountToken source the container reads at `token_file`, or None."""
    for mount in container.get("volumeMounts") or []:
        directory = str(mount.get("mountPath", "")).rstrip("/")
        volume = next((v for v in spec.get("volumes") or [] if v.get("name") == mount.get("name")), {})
        for source in (volume.get("projected") or {}).get("sources") or []:
            token = source.get("serviceAccountToken")
            if token and token_file == f"{directory}/{token.get('path')}":
                return token
    return None


@run_rule(
    source="STS AssumeRoleWithOIDC (alibabacloud.com/help/en/ram/developer-reference/api-sts-2015-04-01-"
    "assumerolewithoidc) grants a role only to a token its trust policy admits: the OIDC provider as Principal "
    "Federated and the conditions oidc:aud, oidc:sub (system:serviceaccount:<namespace>:<account>), oidc:iss (RAM "
    "'Create a RAM role for a trusted IdP'; the ACK/ACS RRSA docs); OSS 'RAM policies': GetObject on the objects, "
    "ListObjects on the bucket"
)
def rrsa_pods_may_assume_their_role_and_read_the_model(run):
    """A serving container with the RRSA variables (ALIBABA_CLOUD_ROLE_ARN, ..._OIDC_PROVIDER_ARN, ..._TOKEN_FILE)
    reads a projected token whose audience, service account and provider the role trusts; streaming s3:// from
    OSS, the role may read the model's objects and list the bucket."""
    roles = {_unwrap(r.inputs).get("roleName"): r for r in run.of_type("alicloud:ram/role:Role")}
    for owner, namespace, spec in _serving_templates(run):
        for container in spec.get("containers") or []:
            env = {e.get("name"): e.get("value") for e in container.get("env") or []}
            arn = env.get("ALIBABA_CLOUD_ROLE_ARN")
            if not arn or not known(arn) or not known(namespace):
                continue
            name = str(arn).rsplit("/", 1)[-1]
            role = roles.get(name)
            if role is None:
                yield f"{owner}: ALIBABA_CLOUD_ROLE_ARN {arn} names no RAM role of the stack"
                continue
            token = _projected_token(container, spec, str(env.get("ALIBABA_CLOUD_OIDC_TOKEN_FILE") or ""))
            if token is None:
                yield f"{owner}: ALIBABA_CLOUD_OIDC_TOKEN_FILE is not a projected service account token it mounts"
                continue
            subject = f"system:serviceaccount:{namespace}:{spec.get('serviceAccountName') or 'default'}"
            provider = env.get("ALIBABA_CLOUD_OIDC_PROVIDER_ARN")
            trusted = False
            for statement in _statements(_unwrap(role.inputs).get("assumeRolePolicyDocument")):
                equals = (statement.get("Condition") or {}).get("StringEquals") or {}
                trusted = trusted or (
                    statement.get("Effect") == "Allow"
                    and provider in _listed((statement.get("Principal") or {}).get("Federated"))
                    and equals.get("oidc:sub") == subject
                    and equals.get("oidc:aud") == token.get("audience")
                )
            if not trusted:
                yield (
                    f"{owner}: role {name} does not trust {subject} with audience {token.get('audience')} "
                    f"from {provider}: STS AssumeRoleWithOIDC would refuse the pod's token"
                )
            uri, endpoint = str(env.get("LLM_MODEL_URI") or ""), str(env.get("AWS_ENDPOINT_URL") or "")
            if uri.startswith("s3://") and endpoint.endswith(".aliyuncs.com"):
                bucket, _, prefix = uri[len("s3://") :].partition("/")
                statements = _role_policies(run, name)
                if not _allows(
                    statements, "oss:GetObject", rf"acs:oss:[^:]*:[^:]*:{re.escape(bucket)}/{re.escape(prefix)}/.*"
                ):
                    yield f"{owner}: role {name} may not oss:GetObject {uri}/"
                if not _allows(statements, "oss:ListObjects", rf"acs:oss:[^:]*:[^:]*:{re.escape(bucket)}"):
                    yield f"{owner}: role {name} may not oss:ListObjects {bucket}"


@run_rule(
    source="OSS 'RAM policies' (alibabacloud.com/help/en/oss/user-guide/ram-policy-overview): a request with the "
    "instance role's STS credentials is refused without oss:GetObject on the object and oss:ListObjects on the "
    "bucket; instance role credentials come only from an attached role (ECS 'Instance RAM roles')"
)
def hosts_reading_weights_from_oss_may_read_them(run):
    """A host whose user-data copies the weights from a bucket (WEIGHTS_SOURCE=oss) needs an attached role that may
    list the bucket and read the model's objects."""
    import base64
    import shlex

    for instance in run.of_type("alicloud:ecs/instance:Instance"):
        encoded = _unwrap(instance.inputs).get("userData")
        if not isinstance(encoded, str) or not known(encoded):
            continue
        text = base64.b64decode(encoded).decode(errors="replace")
        values = dict(
            line.split("=", 1) for line in text.splitlines() if re.fullmatch(r"(WEIGHTS_[A-Z]+|MODEL_ID)=.*", line)
        )
        values = {k: shlex.split(v)[0] if v else "" for k, v in values.items()}
        if values.get("WEIGHTS_SOURCE") != "oss":
            continue
        bucket, prefix = values.get("WEIGHTS_BUCKET", ""), f"{values.get('WEIGHTS_PREFIX')}/{values.get('MODEL_ID')}"
        roles = _instance_roles(run, f"{instance.name}-id")
        if not roles:
            yield f"{instance.name}: copies oss://{bucket}/{prefix}/ without a RAM role"
        for role_name, _attached in roles:
            statements = _role_policies(run, role_name)
            if not _allows(
                statements, "oss:GetObject", rf"acs:oss:[^:]*:[^:]*:{re.escape(bucket)}/{re.escape(prefix)}/.*"
            ):
                yield f"{instance.name}: role {role_name} may not oss:GetObject oss://{bucket}/{prefix}/"
            if not _allows(statements, "oss:ListObjects", rf"acs:oss:[^:]*:[^:]*:{re.escape(bucket)}"):
                yield f"{instance.name}: role {role_name} may not oss:ListObjects {bucket}"


# --- The API server's access control --------------------------------------------------------------------------
API_SERVER_WHITELIST_SOURCE = (
    "ACK 'Configure API server access control', alibabacloud.com/help/en/ack/cluster-access-control: the ACL on "
    "the API server CLB's 6443 listener applies to the public and internal endpoints alike; a whitelist must hold "
    "100.104.0.0/16 (control plane) and the VPC CIDR (nodes); CLB AddAccessControlListEntry refuses duplicates"
)


def _bindings(run):
    return [r for r in run.resources if _unwrap(r.inputs).get("apiServerListenerAcl") is True]


@run_rule(source=API_SERVER_WHITELIST_SOURCE)
def api_server_whitelists_let_the_cluster_in(run):
    """A whitelist bound to an API server listener holds the control plane's range and the cluster's VPC, is
    complete before it is bound, and its entries are distinct."""
    acls = _by_id(run, "alicloud:slb/acl:Acl")
    clusters = {f"{r.name}-id": r for r in run.of_type("alicloud:cs/managedKubernetes:ManagedKubernetes")}
    vpcs = [_unwrap(v.inputs).get("cidrBlock") for v in run.of_type("alicloud:vpc/network:Network")]
    for binding in _bindings(run):
        inputs = _unwrap(binding.inputs)
        if not known(inputs.get("aclId")):  # a preview: the rule runs on the update
            continue
        acl = acls.get(inputs.get("aclId"))
        if acl is None:
            yield f"{binding.name}: binds an ACL that is not in the stack ({inputs.get('aclId')})"
            continue
        entries = [
            r
            for r in run.of_type("alicloud:slb/aclEntryAttachment:AclEntryAttachment")
            if _unwrap(r.inputs).get("aclId") == f"{acl.name}-id"
        ]
        cidrs = [_unwrap(e.inputs).get("entry") for e in entries]
        if len(set(cidrs)) != len(cidrs):
            yield f"{acl.name}: duplicate entries {sorted(c for c in cidrs if cidrs.count(c) > 1)}"
        if "100.104.0.0/16" not in cidrs:
            yield f"{acl.name}: the whitelist shuts out ACK's control plane (100.104.0.0/16)"
        if not any(v in cidrs for v in vpcs):
            yield f"{acl.name}: the whitelist shuts out the cluster's VPC {vpcs} (the nodes)"
        missing = [e.name for e in entries if not _depends_on(run, binding, e.urn)]
        if missing:
            yield f"{binding.name}: bound before its entries {missing} exist"
        if inputs.get("loadBalancerId") is not None and known(inputs.get("loadBalancerId")):
            if not any(_depends_on(run, binding, c.urn) for c in clusters.values()):
                yield f"{binding.name}: does not wait for the cluster whose listener it changes"


@run_rule(source=API_SERVER_WHITELIST_SOURCE + "; docs/security.md (private by default)")
def public_api_servers_have_a_whitelist(run):
    """A managed cluster whose API server has a public endpoint has a whitelist bound to its CLB, unless the
    stack opened it to any address on purpose (cluster.apiCidrs 0.0.0.0/0, which the program warns about)."""
    bindings = _bindings(run)
    for cluster in run.of_type("alicloud:cs/managedKubernetes:ManagedKubernetes"):
        if _unwrap(cluster.inputs).get("slbInternetEnabled") is False:
            continue
        if any(_depends_on(run, b, cluster.urn) for b in bindings):
            continue
        if any("0.0.0.0/0" in message for message, _ in run.warnings):
            continue
        yield f"{cluster.name}: its API server has a public endpoint and no whitelist"


# --- ACR Enterprise Edition: the engine image mirror ------------------------------------------------------------
SERVING_TYPES = ("kubernetes:apps/v1:Deployment", "kubernetes:leaderworkerset.x-k8s.io/v1:LeaderWorkerSet")
ACR_VPC_HOST = re.compile(r"[a-z0-9][a-z0-9-]*-registry-vpc\.(?P<region>[a-z0-9-]+)\.cr\.aliyuncs\.com")


@rule(
    "alicloud:cr/vpcEndpointLinkedVpc:VpcEndpointLinkedVpc",
    source="pulumi_alicloud cr/vpc_endpoint_linked_vpc.py docstring (module_name: Registry or Chart); ACR 'Configure "
    "access over VPCs' (the VPC domain resolves in a VPC through the PrivateZone record the link creates)",
)
def registry_vpc_link_fits(candidate: Candidate, run) -> str | None:
    inputs = _unwrap(candidate.inputs)
    module = inputs.get("moduleName")
    if known(module) and module not in ("Registry", "Chart"):
        return f"a VPC endpoint link's module is Registry or Chart, not {module!r}"
    if inputs.get("enableCreateDnsRecordInPvzt") is not True:
        return "without the PrivateZone record the instance's VPC domain does not resolve in the VPC"
    return None


@rule(
    "alicloud:cs/registryEnterpriseRepo:RegistryEnterpriseRepo",
    source="pulumi_alicloud cs/registry_enterprise_repo.py docstring (repo_type PUBLIC or PRIVATE; summary required); "
    "cs/registry_enterprise_namespace.py (names: lowercase letters, digits, _ - ., not starting or ending with one)",
)
def registry_repository_fits(candidate: Candidate, run) -> str | None:
    inputs = _unwrap(candidate.inputs)
    if inputs.get("repoType") not in ("PUBLIC", "PRIVATE"):
        return f"a repository is PUBLIC or PRIVATE, not {inputs.get('repoType')!r}"
    name = inputs.get("name")
    if known(name) and not re.fullmatch(r"[a-z0-9](?:[a-z0-9_.-]*[a-z0-9])?", str(name)):
        return f"repository name {name!r}: lowercase letters, digits, _ - ., not starting or ending with a separator"
    if not inputs.get("summary"):
        return "a repository needs a summary"
    return None


@run_rule(
    source="ACR 'Configure access over VPCs' (alibabacloud.com/help/en/acr/user-guide/configure-access-over-vpcs: an "
    "Enterprise instance is reached from a VPC only once that VPC is linked to its VPC endpoint); ACR 'RAM "
    "authentication rules' doc-detail/144948 (pushing needs cr:PushRepository on the repository)"
)
def mirrored_images_are_reachable_and_complete(run):
    """Serving pods that pull from an ACR EE repository this stack creates: the stack links its VPC to that
    instance, the pods' workload waits for the copy (an invocation that pushes into the repository), and the
    worker's role may push exactly there."""
    repositories = {
        (_unwrap(r.inputs).get("instanceId"), _unwrap(r.inputs).get("namespace"), _unwrap(r.inputs).get("name")): r
        for r in run.of_type("alicloud:cs/registryEnterpriseRepo:RegistryEnterpriseRepo")
    }
    links = {
        (_unwrap(r.inputs).get("instanceId"), _unwrap(r.inputs).get("vpcId"))
        for r in run.of_type("alicloud:cr/vpcEndpointLinkedVpc:VpcEndpointLinkedVpc")
    }
    vpcs = [f"{r.name}-id" for r in run.of_type("alicloud:vpc/network:Network")]
    for owner, _, spec in _serving_templates(run):
        for container in [*(spec.get("containers") or []), *(spec.get("initContainers") or [])]:
            image = container.get("image") or ""
            host, _, path = image.partition("/")
            if not ACR_VPC_HOST.fullmatch(host):
                continue
            namespace, _, rest = path.partition("/")
            name = rest.split(":", 1)[0].split("@", 1)[0]
            found = [key for key in repositories if key[1:] == (namespace, name)]
            if not found:
                continue  # an image of your own in an instance you manage (engine.image): not this stack's copy
            instance = found[0][0]
            pending = any(i == instance and not known(v) for i, v in links)  # a preview: the VPC has no id yet
            if not pending and not any((instance, vpc) in links for vpc in vpcs):
                yield f"{owner}: pulls {image} over the VPC, but the stack's VPC is not linked to {instance}"
            pushers = [
                i
                for i in run.of_type("alicloud:ecs/ecsInvocation:EcsInvocation")
                if repositories[found[0]].urn in i.dependencies
            ]
            workload = next(
                (r for r in run.resources if r.name == owner.split("/", 1)[0] and r.type in SERVING_TYPES), None
            )
            if workload is not None and not any(_depends_on(run, workload, p.urn) for p in pushers):
                yield f"{owner}: pulls {image} before anything has pushed it"
            pattern = rf"acs:cr:[^:]*:[^:]*:repository/{re.escape(f'{instance}/{namespace}/{name}')}"
            for pusher in pushers:
                for instance_id in _listed(_unwrap(pusher.inputs).get("instanceIds")):
                    documents = [
                        _unwrap(p.inputs).get("policyDocument") for p in run.of_type("alicloud:ram/policy:Policy")
                    ]
                    if not known(instance_id) or not all(known(d) for d in documents):
                        continue  # a preview: the role's policy is built from ids not known yet
                    policies = [s for role, _ in _instance_roles(run, instance_id) for s in _role_policies(run, role)]
                    if not _allows(policies, "cr:PushRepository", pattern):
                        yield f"{pusher.name}: pushes {image} but its role may not push to {pattern}"
