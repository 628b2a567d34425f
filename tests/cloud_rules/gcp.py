"""Google Cloud rules the provider does not check (sources cited per rule)."""

from __future__ import annotations

import re
from collections.abc import Iterable

from cloud_rules import Candidate, InvokeCandidate, invoke_rule, known, rule, run_rule

# Google APIs answer "SERVICE_DISABLED: <API> has not been used in project <p> before or it is disabled" until
# the API is enabled in the project (cloud.google.com/service-usage/docs/enable-disable). The API each pulumi_gcp
# module calls: the service named in the provider's resource documentation (terraform-provider-google
# website/docs/r/*), e.g. google_container_cluster -> container.googleapis.com.
API_OF_MODULE = {
    "compute": "compute.googleapis.com",
    "container": "container.googleapis.com",
    "serviceaccount": "iam.googleapis.com",
    "storage": "storage.googleapis.com",
    "artifactregistry": "artifactregistry.googleapis.com",
    "projects": "cloudresourcemanager.googleapis.com",  # IAMMember: projects.getIamPolicy / setIamPolicy
    "cloudrunv2": "run.googleapis.com",  # google_cloud_run_v2_job
    "secretmanager": "secretmanager.googleapis.com",  # google_secret_manager_secret(_version, _iam_member)
}
# Enabled before the stack runs (the documented one-time step): gcp.projects.Service itself calls Service Usage,
# and Cloud Resource Manager's projects.get on every read (terraform-provider-google
# resource_google_project_service.go: "Verify project for services still exists"), so neither can be enabled
# by the stack it is needed for.
PREREQUISITE_APIS = frozenset({"serviceusage.googleapis.com", "cloudresourcemanager.googleapis.com"})
SERVICE = "gcp:projects/service:Service"


def _unwrap(value):
    from harness import unwrap

    return unwrap(value)


def api_of(resource_type: str) -> str | None:
    """The API a gcp resource type calls: `gcp:<module>/<name>:<Name>` -> the module's API."""
    module = resource_type.split(":", 2)[1].split("/", 1)[0]
    return API_OF_MODULE.get(module)


def transitive_dependencies(run, urn: str) -> set[str]:
    """Every resource `urn` waits for: its dependencies (custom resources; the SDK expands components to
    their children) and theirs. A parent component's depends_on is not among them: Pulumi does not pass it on."""
    seen: set[str] = set()
    todo = [urn]
    by_urn = {r.urn: r for r in run.resources}
    while todo:
        current = by_urn.get(todo.pop())
        for dep in current.dependencies if current else ():
            if dep not in seen:
                seen.add(dep)
                todo.append(dep)
    return seen


@run_rule(
    source="cloud.google.com/service-usage/docs/enable-disable (a disabled API refuses every call: SERVICE_DISABLED); "
    "pulumi sdk/python pulumi/runtime/resource.py: a resource waits only for its own depends_on and inputs, not "
    "its parent component's"
)
def every_gcp_resource_waits_for_its_api(run) -> Iterable[str]:
    services = {r.urn: _unwrap(r.inputs).get("service") for r in run.resources if r.type == SERVICE}
    for resource in run.resources:
        if not resource.type.startswith("gcp:") or resource.type == SERVICE:
            continue
        api = api_of(resource.type)
        if api is None:
            yield (
                f"{resource.type} {resource.name}: no API is known for this resource type "
                "(add its module to tests/cloud_rules/gcp.py API_OF_MODULE)"
            )
            continue
        if api in PREREQUISITE_APIS:
            continue
        enabled_first = {services[u] for u in transitive_dependencies(run, resource.urn) if u in services}
        if api not in enabled_first:
            yield (
                f"{resource.type} {resource.name} is created without waiting for the projects.Service of {api}: "
                "on a project where the API is off, the call fails with SERVICE_DISABLED"
            )


# The API each data source calls (terraform-provider-google): google_container_engine_versions is GKE's
# projects.locations.getServerConfig (data_source_google_container_engine_versions.go), google_project is
# Cloud Resource Manager's projects.get (data_source_google_project.go -> readGoogleProject).
API_OF_INVOKE = {
    "gcp:container/getEngineVersions:getEngineVersions": "container.googleapis.com",
    "gcp:organizations/getProject:getProject": "cloudresourcemanager.googleapis.com",
}


@invoke_rule(
    source="cloud.google.com/service-usage/docs/enable-disable (SERVICE_DISABLED until the API is on); a data source "
    "runs when the program runs, at `pulumi preview` too, before any projects.Service exists"
)
def a_gcp_data_source_needs_its_api_on(call: InvokeCandidate, run) -> str | None:
    if not call.token.startswith("gcp:"):
        return None
    api = API_OF_INVOKE.get(call.token)
    if api is None:
        return "no API is known for this data source (add it to tests/cloud_rules/gcp.py API_OF_INVOKE)"
    if api in PREREQUISITE_APIS:
        on = api not in call.disabled_prerequisites
    else:
        # The project is new: only what this run enabled is on, and a preview enables nothing.
        on = not call.preview and any(
            r.type == SERVICE and _unwrap(r.inputs).get("service") == api for r in run.resources
        )
    if on:
        return None
    project = call.args.get("project") or call.args.get("projectId") or "<project>"
    return f"{api} has not been used in project {project} before or it is disabled (SERVICE_DISABLED)"


# --- GPU node pools: capacity ---------------------------------------------------------------------------------
NODE_POOL = "gcp:container/nodePool:NodePool"
GCE_AO = "docs.cloud.google.com/compute/docs/accelerator-optimized-machines (2026-04-13)"
# GCE_AO, A3 Ultra and A4: "you must reserve capacity to create instances or clusters, use Spot VMs, use Flex-start
# VMs, or create a resize request in a MIG"; A3 High 1g/2g/4g: "you must create instances by using Spot VMs or
# Flex-start VMs". (A pool asking for them otherwise is accepted by the API and never gets a node.)
RESERVATION_SPOT_OR_FLEX = frozenset({"a4-highgpu-8g", "a3-ultragpu-8g"})
SPOT_OR_FLEX = frozenset({"a3-highgpu-1g", "a3-highgpu-2g", "a3-highgpu-4g"})
RESERVATION_KEY = "compute.googleapis.com/reservation-name"
FLEX_START_MAX_RUN_SECONDS = 7 * 24 * 3600  # "for up to seven days" (GKE concepts/dws)


def _pool(candidate: Candidate) -> tuple[dict, dict, str | None]:
    inputs = _unwrap(candidate.inputs)
    config = inputs.get("nodeConfig") or {}
    affinity = (config.get("reservationAffinity") or {}).get("consumeReservationType")
    return inputs, config, affinity


@rule(NODE_POOL, source=f"{GCE_AO}: how A3 High 1g-4g, A3 Ultra and A4 can be had")
def gpu_machines_that_are_not_sold_on_demand(candidate: Candidate, run) -> str | None:
    _, config, affinity = _pool(candidate)
    machine = config.get("machineType")
    spot_or_flex = config.get("spot") is True or config.get("flexStart") is True
    if not known(machine) or spot_or_flex:
        return None
    if machine in SPOT_OR_FLEX:
        return f"{machine} can only be had as Spot or Flex-start VMs; this pool is neither"
    if machine in RESERVATION_SPOT_OR_FLEX and affinity != "SPECIFIC_RESERVATION":
        return (
            f"{machine} is not sold on demand (a specific reservation, Spot or Flex-start only); with reservation "
            f"affinity {affinity or 'unset'} and neither Spot nor Flex-start the pool gets no node"
        )
    return None


@rule(
    NODE_POOL,
    source="GoogleCloudPlatform/cluster-toolkit@1047080 modules/compute/gke-node-pool main.tf preconditions "
    "(flex-start: no static node count, auto_repair false, NO_RESERVATION, location_policy ANY, not with spot); GKE "
    "how-to provisioningrequest/flex-start (--num-nodes=0 --enable-autoscaling --no-enable-autorepair); "
    "GKE concepts/dws (up to seven days)",
)
def flex_start_pools_autoscale_from_zero(candidate: Candidate, run) -> str | None:
    inputs, config, affinity = _pool(candidate)
    if config.get("flexStart") is not True:
        return None
    autoscaling = inputs.get("autoscaling") or {}
    minimum = autoscaling.get("totalMinNodeCount", autoscaling.get("minNodeCount"))
    duration = config.get("maxRunDuration")
    wrong = [
        "a node_count (flex-start pools are sized by the autoscaler)" if inputs.get("nodeCount") is not None else "",
        "no autoscaling from a minimum of 0" if not autoscaling or minimum not in (0, None) else "",
        "auto-repair on" if (inputs.get("management") or {}).get("autoRepair") is not False else "",
        f"reservation affinity {affinity} (must be NO_RESERVATION)" if affinity not in (None, "NO_RESERVATION") else "",
        "Spot as well" if config.get("spot") is True else "",
        "a location policy other than ANY" if autoscaling.get("locationPolicy") not in (None, "ANY") else "",
        (
            f"max_run_duration {duration} (at most {FLEX_START_MAX_RUN_SECONDS}s)"
            if known(duration)
            and isinstance(duration, str)
            and not (
                duration.endswith("s") and duration[:-1].isdigit() and int(duration[:-1]) <= FLEX_START_MAX_RUN_SECONDS
            )
            else ""
        ),
    ]
    wrong = [w for w in wrong if w]
    return f"a flex-start node pool has {', '.join(wrong)}" if wrong else None


@rule(
    NODE_POOL,
    source='GoogleCloudPlatform/cluster-toolkit@1047080 modules/compute/gke-node-pool main.tf: "Spot consumption '
    'option only works with reservation_affinity consume_reservation_type NO_RESERVATION"',
)
def spot_pools_consume_no_reservation(candidate: Candidate, run) -> str | None:
    _, config, affinity = _pool(candidate)
    if config.get("spot") is True and affinity not in (None, "NO_RESERVATION"):
        return f"a Spot node pool has reservation affinity {affinity} (must be NO_RESERVATION)"
    return None


@rule(
    NODE_POOL,
    source="pulumi_gcp 10.2.0 container NodePoolNodeConfigReservationAffinity (SPECIFIC_RESERVATION: key "
    "compute.googleapis.com/reservation-name and the reservation as value); cluster-toolkit gke-node-pool: "
    '"var.zones must be explicitly provided when using an extended reservation block"',
)
def a_specific_reservation_is_named(candidate: Candidate, run) -> str | None:
    inputs, config, affinity = _pool(candidate)
    if affinity != "SPECIFIC_RESERVATION":
        return None
    reservation = config.get("reservationAffinity") or {}
    values = reservation.get("values") or []
    if reservation.get("key") != RESERVATION_KEY or not values or not all(values):
        return f"SPECIFIC_RESERVATION needs key {RESERVATION_KEY} and the reservation's name as value"
    if any("/reservationBlocks/" in str(v) for v in values) and not inputs.get("nodeLocations"):
        return "a reservation block needs the pool's zone in node_locations"
    return None


# --- Clusters ---------------------------------------------------------------------------------------------------
CLUSTER = "gcp:container/cluster:Cluster"
EXCLUSION_SCOPES = ("NO_UPGRADES", "NO_MINOR_UPGRADES", "NO_MINOR_OR_NODE_UPGRADES")


@rule(
    CLUSTER,
    source='pulumi_gcp 10.2.0 container ClusterMaintenancePolicyMaintenanceExclusion: "Exactly one of `end_time` '
    'and `exclusion_options.end_time_behavior` should be specified", scope "One of: NO_UPGRADES | '
    'NO_MINOR_UPGRADES | NO_MINOR_OR_NODE_UPGRADES", end_time_behavior "One of: UNTIL_END_OF_SUPPORT"; up to '
    "20 exclusions",
)
def maintenance_exclusions_are_well_formed(candidate: Candidate, run) -> str | None:
    policy = _unwrap(candidate.inputs).get("maintenancePolicy") or {}
    exclusions = policy.get("maintenanceExclusions") or []
    if len(exclusions) > 20:
        return f"{len(exclusions)} maintenance exclusions (at most 20)"
    for exclusion in exclusions:
        options = exclusion.get("exclusionOptions") or {}
        behavior = options.get("endTimeBehavior")
        name = exclusion.get("exclusionName")
        if (exclusion.get("endTime") is None) == (behavior is None):
            return f"maintenance exclusion {name}: exactly one of end_time and end_time_behavior"
        if options and options.get("scope") not in EXCLUSION_SCOPES:
            return f"maintenance exclusion {name}: scope {options.get('scope')} is not one of {EXCLUSION_SCOPES}"
        if behavior is not None and behavior != "UNTIL_END_OF_SUPPORT":
            return f"maintenance exclusion {name}: end_time_behavior {behavior} is not UNTIL_END_OF_SUPPORT"
    return None


# --- Admission webhooks on private clusters ------------------------------------------------------------------
# kubernetes-sigs/lws@v0.9.0 charts/lws/templates/webhook/service.yaml: the webhook Service maps 443 to the
# controller's targetPort 9443. The API server calls it on the pod, and GKE's own "-master" rule opens only
# "TCP: 443 ... and TCP: 10250", "for private clusters only" (GKE docs concepts/firewall-rules): a webhook on
# another port times out ("failed calling webhook ... context deadline exceeded", open-telemetry-operator#100).
# The control plane's source range: the master CIDR when one is set, else, for Private Service Connect clusters,
# the cluster subnet's primary range (terraform-google-modules/terraform-google-kubernetes-engine@bb176b2
# autogen/main/main.tf.tmpl, fix #2354).
LWS_WEBHOOK_PORT = 9443
FIREWALL = "gcp:compute/firewall:Firewall"


def _opens_tcp(firewall: dict, port: int) -> bool:
    for allow in firewall.get("allows") or []:
        if str(allow.get("protocol")).lower() not in ("tcp", "all"):
            continue
        ports = allow.get("ports") or []
        if not ports:
            return True
        for item in ports:
            low, _, high = str(item).partition("-")
            if int(low) <= port <= int(high or low):
                return True
    return False


@run_rule(
    source="GKE docs concepts/firewall-rules (private clusters: the control plane reaches nodes on 443 and 10250 "
    "only); kubernetes-sigs/lws@v0.9.0 charts/lws webhook Service targetPort 9443; terraform-google-kubernetes-"
    "engine autogen main.tf.tmpl (the control plane's range of a PSC cluster: the node subnet)"
)
def a_private_cluster_lets_its_control_plane_reach_the_lws_webhook(run) -> Iterable[str]:
    releases = [r for r in run.resources if r.type == "kubernetes:helm.sh/v3:Release"]
    if not any("lws" in str(_unwrap(r.inputs).get("chart", "")) for r in releases):
        return
    subnets = {r.id: _unwrap(r.inputs) for r in run.resources if r.type == "gcp:compute/subnetwork:Subnetwork"}
    firewalls = [_unwrap(r.inputs) for r in run.resources if r.type == FIREWALL]
    pools = [_unwrap(r.inputs) for r in run.resources if r.type == NODE_POOL]
    for cluster in (r for r in run.resources if r.type == CLUSTER):
        inputs = _unwrap(cluster.inputs)
        private = inputs.get("privateClusterConfig") or {}
        if not private.get("enablePrivateNodes"):
            continue
        source = private.get("masterIpv4CidrBlock")
        if not source:
            source = subnets.get(inputs.get("subnetwork"), {}).get("ipCidrRange")
        tags = {t for p in pools for t in ((p.get("nodeConfig") or {}).get("tags") or [])}
        allowed = [
            f
            for f in firewalls
            if f.get("direction", "INGRESS") == "INGRESS"
            and f.get("network") == inputs.get("network")
            and _opens_tcp(f, LWS_WEBHOOK_PORT)
            and source in (f.get("sourceRanges") or [])
            and (not f.get("targetTags") or set(f["targetTags"]) & tags)
        ]
        if not allowed:
            yield (
                f"private cluster {cluster.name} runs the LeaderWorkerSet webhook on tcp:{LWS_WEBHOOK_PORT}, but no "
                f"firewall rule lets its control plane ({source}) reach the nodes there: creating the "
                "LeaderWorkerSet fails with 'failed calling webhook'"
            )


# --- IAM before use ------------------------------------------------------------------------------------------
NODE_ROLE = "roles/container.defaultNodeServiceAccount"
AR_READER = "roles/artifactregistry.reader"
POD_OWNERS = ("kubernetes:apps/v1:Deployment", "kubernetes:batch/v1:Job", "kubernetes:apps/v1:DaemonSet")


@run_rule(
    source='GKE docs "Configure node service accounts": "At a minimum, these node service accounts must have the '
    'Kubernetes Engine Default Node Service Account (roles/container.defaultNodeServiceAccount) role" (a pool '
    "created before the binding starts nodes that cannot write logs and metrics or register cleanly)"
)
def node_pools_wait_for_their_service_accounts_role(run) -> Iterable[str]:
    bindings = {
        r.urn: _unwrap(r.inputs)
        for r in run.resources
        if r.type == "gcp:projects/iAMMember:IAMMember" and _unwrap(r.inputs).get("role") == NODE_ROLE
    }
    for pool in (r for r in run.resources if r.type == NODE_POOL):
        account = (_unwrap(pool.inputs).get("nodeConfig") or {}).get("serviceAccount")
        if not known(account) or not account:
            continue
        before = transitive_dependencies(run, pool.urn)
        if not any(urn in before and b.get("member") == f"serviceAccount:{account}" for urn, b in bindings.items()):
            yield f"node pool {pool.name} runs as {account} before it holds {NODE_ROLE}"


def _images(obj) -> list[str]:
    """Every container image inside a (manifest-shaped) value."""
    found = []
    if isinstance(obj, dict):
        if isinstance(obj.get("image"), str):
            found.append(obj["image"])
        for value in obj.values():
            found += _images(value)
    elif isinstance(obj, list):
        for value in obj:
            found += _images(value)
    return found


@run_rule(
    source="Artifact Registry access control (cloud.google.com/artifact-registry/docs/access-control): pulling an "
    "image needs roles/artifactregistry.reader; GKE nodes pull with the node service account (a pod "
    "created before the grant retries its pull in ImagePullBackOff for minutes)"
)
def pods_pulling_from_artifact_registry_wait_for_the_reader_grant(run) -> Iterable[str]:
    grants = {
        r.urn: _unwrap(r.inputs)
        for r in run.resources
        if r.type == "gcp:artifactregistry/repositoryIamMember:RepositoryIamMember"
        and _unwrap(r.inputs).get("role") == AR_READER
    }
    # Repositories of this run (others, such as Google's public gce-ai-infra images, are not this project's to grant).
    ours = {
        _unwrap(r.inputs).get("repositoryId")
        for r in run.resources
        if r.type == "gcp:artifactregistry/repository:Repository"
    }
    for owner in (r for r in run.resources if r.type in POD_OWNERS or r.type.startswith("kubernetes:leaderworkerset")):
        for image in _images(_unwrap(owner.inputs)):
            host, _, path = image.partition("/")
            repository = path.split("/")[1] if path.count("/") >= 2 else ""
            if not host.endswith("-docker.pkg.dev") or repository not in ours:
                continue
            before = transitive_dependencies(run, owner.urn)
            if not any(urn in before and g.get("repository") == repository for urn, g in grants.items()):
                yield f"{owner.type} {owner.name} pulls {image} before the nodes may read repository {repository}"


# --- Cloud Run jobs (the gke import) -------------------------------------------------------------------------
CLOUD_RUN_JOB = "gcp:cloudrunv2/job:Job"
# run/docs/configuring/task-timeout: "a longer time up to 168 hours (7 days). For tasks using GPUs, the maximum
# available timeout is 1 hour."
MAX_TASK_TIMEOUT_SECONDS = 168 * 3600
MAX_GPU_TASK_TIMEOUT_SECONDS = 3600
# pulumi_gcp JobTemplateTemplateContainerResources: "The only supported values for CPU are '1', '2', '4', '6', and
# '8'"; run/docs/configuring/jobs/memory-limits: at most 32 GiB, and more than 4/8/16/24 GiB needs at least
# 2/4/6/8 CPUs.
CLOUD_RUN_CPUS = ("1", "2", "4", "6", "8")
MAX_MEMORY_GIB = 32
MIN_CPUS_ABOVE_GIB = ((24, 8), (16, 6), (8, 4), (4, 2))
# pulumi_gcp JobTemplateTemplateContainerEnv: "the maximum allowed length is 32768 characters"; cloudrunv2 Job
# run_execution_token: "The sum of job name and token length must be fewer than 63 characters."
MAX_ENV_VALUE = 32768
MAX_NAME_AND_TOKEN = 62


def _gib(quantity: str) -> float | None:
    """A Kubernetes memory quantity (512Mi, 32Gi, 4G) in GiB; None when it is not one of those forms."""
    match = re.fullmatch(r"(\d+(?:\.\d+)?)(Mi|Gi|M|G)", quantity)
    if not match:
        return None
    value, unit = float(match.group(1)), match.group(2)
    return {"Mi": value / 1024, "Gi": value, "M": value * 1e6 / 1024**3, "G": value * 1e9 / 1024**3}[unit]


def _seconds(duration: str) -> float | None:
    match = re.fullmatch(r"(\d+(?:\.\d+)?)s", duration)
    return float(match.group(1)) if match else None


@rule(
    CLOUD_RUN_JOB,
    source="docs.cloud.google.com/run/docs/configuring/task-timeout; run/docs/configuring/jobs/memory-limits; "
    "pulumi_gcp 10.2.0 cloudrunv2 Job docstrings (CPU values, env value length, name + run_execution_token length)",
)
def cloud_run_job_tasks_fit_cloud_runs_limits(candidate: Candidate, run) -> str | None:
    inputs = _unwrap(candidate.inputs)
    task = (inputs.get("template") or {}).get("template") or {}
    problems = []
    timeout = task.get("timeout")
    containers = task.get("containers") or []
    gpu = any("nvidia.com/gpu" in ((c.get("resources") or {}).get("limits") or {}) for c in containers)
    if known(timeout) and timeout is not None:
        seconds = _seconds(timeout)
        limit = MAX_GPU_TASK_TIMEOUT_SECONDS if gpu else MAX_TASK_TIMEOUT_SECONDS
        if seconds is None or seconds > limit:
            problems.append(f"task timeout {timeout} is over Cloud Run's {limit // 3600} h")
    for container in containers:
        limits = (container.get("resources") or {}).get("limits") or {}
        cpu, memory = limits.get("cpu", "1"), limits.get("memory", "512Mi")
        if known(cpu) and cpu not in CLOUD_RUN_CPUS:
            problems.append(f"cpu {cpu} is not one of {', '.join(CLOUD_RUN_CPUS)}")
        gib = _gib(memory) if known(memory) else 0.0
        if gib is None or gib > MAX_MEMORY_GIB:
            problems.append(f"memory {memory} is over {MAX_MEMORY_GIB} GiB (or not a quantity)")
        elif known(cpu) and cpu in CLOUD_RUN_CPUS:
            need = next((c for above, c in MIN_CPUS_ABOVE_GIB if gib > above), 1)
            if int(cpu) < need:
                problems.append(f"memory {memory} needs at least {need} CPUs, not {cpu}")
        for env in container.get("envs") or []:
            value = env.get("value")
            if isinstance(value, str) and len(value) > MAX_ENV_VALUE:
                problems.append(f"env {env.get('name')} is {len(value)} characters, over {MAX_ENV_VALUE}")
    name, token = inputs.get("name"), inputs.get("runExecutionToken")
    if known(name) and known(token) and name and token and len(name) + len(token) > MAX_NAME_AND_TOKEN:
        problems.append(f"job name and run_execution_token are {len(name) + len(token)} characters, 63 or more")
    return "; ".join(problems) or None


# --- GKE image streaming --------------------------------------------------------------------------------------
STREAMING_API = "containerfilesystem.googleapis.com"
STREAMING_ROLE = "roles/serviceusage.serviceUsageConsumer"


@rule(
    NODE_POOL,
    source='GKE how-to image-streaming, Requirements: "You must use the Container-Optimized OS with containerd '
    'node image"',
)
def image_streaming_needs_cos_containerd(candidate: Candidate, run) -> str | None:
    config = _unwrap(candidate.inputs).get("nodeConfig") or {}
    if not (config.get("gcfsConfig") or {}).get("enabled"):
        return None
    image_type = config.get("imageType")
    if known(image_type) and image_type not in (None, "COS_CONTAINERD"):
        return f"image streaming (gcfs_config) needs the COS_CONTAINERD node image, not {image_type}"
    return None


@run_rule(
    source='GKE how-to image-streaming, Requirements: "You must enable the Container File System API"; "If the GKE '
    "nodes in the cluster don't use the default service account, you must ensure that the custom service account has "
    'the Service Usage Consumer (roles/serviceusage.serviceUsageConsumer) IAM role"'
)
def image_streaming_pools_wait_for_the_api_and_the_nodes_role(run) -> Iterable[str]:
    services = {r.urn for r in run.resources if r.type == SERVICE and _unwrap(r.inputs).get("service") == STREAMING_API}
    roles = {
        r.urn: _unwrap(r.inputs).get("member")
        for r in run.resources
        if r.type == "gcp:projects/iAMMember:IAMMember" and _unwrap(r.inputs).get("role") == STREAMING_ROLE
    }
    for pool in (r for r in run.resources if r.type == NODE_POOL):
        config = _unwrap(pool.inputs).get("nodeConfig") or {}
        if not (config.get("gcfsConfig") or {}).get("enabled"):
            continue
        before = transitive_dependencies(run, pool.urn)
        if not services & before:
            yield f"node pool {pool.name} streams images before {STREAMING_API} is enabled"
        account = config.get("serviceAccount")
        if known(account) and account:
            if not any(urn in before and member == f"serviceAccount:{account}" for urn, member in roles.items()):
                yield f"node pool {pool.name} streams images as {account} before it holds {STREAMING_ROLE}"
