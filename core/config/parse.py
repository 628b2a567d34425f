"""parse(): the stack's config values to Settings, every problem reported at once before any resource exists."""

from __future__ import annotations

import dataclasses
from typing import Any, Optional

from pydantic.alias_generators import to_camel

from core.config.access import check_access, resolve_tls
from core.config.ack import AckSettings, resolve_edge, resolve_gpu_pool
from core.config.acs import resolve_acs_pod
from core.config.benchmark import check_benchmark
from core.config.cost import CostConfig, check_prices
from core.config.engine import resolve_engine, resolve_mirror
from core.config.gateway import check_routes_for_engine, resolve_gateway
from core.config.gke import GkeSettings, resolve_capacity
from core.config.host import resolve_host
from core.config.kubernetes import resolve_kubernetes
from core.config.model import resolve_model
from core.config.network import check_network, resolve_cluster_network
from core.config.placement import (
    Placement,
    gpu_kind,
    resolve_gke_placement,
    resolve_instance_placement,
    resolve_pod_placement,
    resolve_workload,
)
from core.config.problems import Problems
from core.config.providers import alibaba_region, check_kubeconfig, gcp_location, provider_config
from core.config.root import StackConfig
from core.config.scaling import resolve_autoscaling
from core.config.settings import (
    AckEdgeSettings,
    AckTargetSettings,
    AcsSettings,
    Cost,
    EcsSettings,
    ExistingClusterSettings,
    GkeTargetSettings,
    JumpHost,
    SecretStr,
    Settings,
    is_mainland_china,
)
from core.config.source import ConfigValues
from core.config.storage import MOUNT, resolve_disk, resolve_load, resolve_model_store
from core.config.validation import check_secrets, check_targets, validate_groups
from core.durations import intra_cloud, pulled_in_region
from core.targets import ACK, ACK_FAMILY, ACS, ALIBABA, ECS, GKE, KUBERNETES, MANAGED_ALIBABA


def parse(values: ConfigValues, stack: str) -> Settings:
    """Validate all config; raise ConfigError listing every problem."""
    problems = Problems(values.namespace)
    parsed = validate_groups(values.values, problems)
    target = parsed.get("target", StackConfig.model_fields["target"].default)
    if "target" in values.values and "target" not in parsed:
        problems.raise_if_any()  # without a valid target nothing else can be judged
    check_targets(values.values, target, problems)
    check_secrets(values.values, values.secret_keys, problems)
    failed = {key for key in values.values if key in _ALIASES and _ALIASES[key] not in parsed}
    config = StackConfig.model_construct(**{k: v for k, v in _defaults().items() if k not in parsed}, **parsed)
    settings = _resolve(config, failed, values, stack, target, problems)
    problems.raise_if_any()
    assert settings is not None  # every path that returns None has added a problem
    return settings


_ALIASES = {(info.alias or name): name for name, info in StackConfig.model_fields.items()}  # camelCase -> field


def _defaults() -> dict[str, Any]:
    return {name: info.default for name, info in StackConfig.model_fields.items()}


def _resolve(
    c: StackConfig, failed: set[str], values: ConfigValues, stack: str, target: str, problems: Problems
) -> Optional[Settings]:
    """The rules that span groups, and the derived settings; a group that failed validation is skipped."""
    ok = lambda *groups: not failed & set(groups)

    project = zone = ""
    if target in ALIBABA:
        region = alibaba_region(values, problems) or ""
        provider = provider_config(values, "alicloud")
        mainland = is_mainland_china(region)
    elif target == GKE:
        project, region, zone = gcp_location(values, problems)
        provider = provider_config(values, "gcp")
        mainland = False
    else:
        check_kubeconfig(values, problems)
        region = ""
        provider = provider_config(values, "kubernetes")
        mainland = c.kubernetes.mainland_china

    model = resolve_model(c.model, problems) if ok("model") else None
    engine = (
        resolve_engine(c.engine, model, c.model.served_name, mainland, c.access.api_port, problems)
        if ok("engine", "access")
        else None
    )
    placement_config = c.placement
    placement = None
    if target == GKE:  # one serving pod takes a whole GKE GPU node (the GKE A4 recipe: TP 8 over a node's GPUs)
        if ok("placement", "gke", "workload"):
            placement = resolve_gke_placement(
                placement_config, c.workload, c.gke.machine_type, model, engine, problems, c.gke.capacity.mode
            )
    elif ok("placement"):
        if target in (ECS, ACK):  # one ECS instance type carries the GPUs (ack: one serving pod per GPU node)
            placement = resolve_instance_placement(placement_config, target, model, engine, problems)
        else:
            placement = resolve_pod_placement(placement_config, target, model, engine, problems)
    tls = None
    if ok("access"):
        check_access(c.access, problems)
        if ok("tlsCertificate", "tlsKey"):
            tls = resolve_tls(c.access, target, c.tls_certificate, c.tls_key, problems)
    gateway = resolve_gateway(c.gateway, mainland, problems) if ok("gateway") else None
    if ok("cost") and target in CostConfig.TARGETS:  # elsewhere the whole group is refused
        check_prices(c.cost, target, problems)
    if gateway is not None and engine is not None:
        check_routes_for_engine(c.gateway, engine, problems)
    network_ok = ok("network") and target in ALIBABA and check_network(c.network, problems)
    kind = gpu_kind(c.placement, target)

    extra: dict[str, Any] = {}
    settings_class: type[Settings] = Settings
    if target == ECS:
        settings_class = EcsSettings
        extra["instance"] = placement.instance if placement else None
        extra["disk"] = resolve_disk(c.disk, model, problems) if ok("disk") else None
        public = c.access.public
        extra["ecs"] = (
            resolve_host(
                c.ecs,
                c.placement.zone,
                model,
                c.access.public_bandwidth_mbps if public else c.network.nat_bandwidth_mbps,
                "access.publicBandwidthMbps" if public else "network.natBandwidthMbps",
                problems,
                disk_gib=extra["disk"].size_gib if extra["disk"] else 0,
                image_in_region=engine is not None and pulled_in_region(engine.image, region),
                tensor_parallel=placement.tensor_parallel if placement else 1,
                hub_in_region=intra_cloud(region),
                engine=engine,
                region=region,
                nat=not public,
            )
            if ok("ecs", "placement", "access", "network", "disk")
            else None
        )
    else:
        extra["workload"] = (
            resolve_workload(c.workload, c.scaling.replicas, placement, target, problems)
            if ok("workload", "scaling")
            else None
        )
        extra["model_store"] = (
            resolve_model_store(
                c.model_store,
                fluid=c.acs.fluid,
                storage_class=c.kubernetes.storage_class,
                problems=problems,
                load=resolve_load(
                    c.model_store, target, engine, c.gke.model_source, problems, fluid=target == ACS and c.acs.fluid
                )
                if ok("gke", "engine")
                else MOUNT,
            )
            if ok("modelStore", "acs", "kubernetes")
            else None
        )
        extra["benchmark"] = c.benchmark
        if ok("benchmark"):
            check_benchmark(c.benchmark, engine, problems)
    if target in (ACS, ACK) and engine is not None and ok("engine"):
        extra["image_mirror"] = resolve_mirror(c.engine.mirror, engine, region, f"llm-{stack}", problems)
        if extra["image_mirror"] is not None:  # the checks above saw the source; the pods pull the copy
            engine = dataclasses.replace(engine, image=extra["image_mirror"].image)
    if target in MANAGED_ALIBABA:
        extra["cluster"] = (
            resolve_cluster_network(c.network, c.cluster, problems, target) if network_ok and ok("cluster") else None
        )
    if target == ACS:
        settings_class = AcsSettings
        extra["acs"] = resolve_acs_pod(c.acs, kind, problems) if ok("acs") else None
        jump = c.acs.jump_host
        extra["jump_host"] = JumpHost(enabled=jump.enabled, instance_type=jump.instance_type, image_id=jump.image_id)
    autoscaling = (
        resolve_autoscaling(c.scaling, engine.engine if engine else None, problems, target)
        if target != ECS and ok("scaling")
        else None
    )
    if target != ECS:
        extra["autoscaling"] = autoscaling
    if target in ACK_FAMILY and autoscaling is not None and ok("cluster", "gpuNodes", "ack", "ackEdge"):
        extra["ack"] = AckSettings(
            node_image_type=c.cluster.node_image_type,
            system_instance_type=c.cluster.system_node_instance_type,
            sls_logging=c.cluster.sls_logging,
        )
        if target == ACK:
            settings_class = AckTargetSettings
            extra["disk"] = resolve_disk(c.disk, model, problems) if ok("disk") else None
            extra["gpu_pool"] = resolve_gpu_pool(
                c.gpu_nodes, c.ack, placement.instance if placement else None, autoscaling, problems
            )
        else:
            settings_class = AckEdgeSettings
            extra["edge"] = resolve_edge(
                c.ack_edge,
                placement.gpus_per_pod if placement else None,
                kind,
                c.network.service_cidr,
                c.network.vpc_cidr,
                problems,
            )
            if c.ack_edge.virtual_node_unit == "acs" and ok("acs"):
                extra["acs"] = resolve_acs_pod(c.acs, kind, problems)
            _unread_by_the_virtual_node_unit(c, problems)
    if target == GKE and ok("gke", "gpuNodes", "scaling", "placement"):
        settings_class = GkeTargetSettings
        extra["gke"] = _gke(c, project, region, zone, placement, model, problems)
    if target == KUBERNETES:
        settings_class = ExistingClusterSettings
        extra["kubernetes"] = resolve_kubernetes(c.kubernetes, autoscaling, problems) if ok("kubernetes") else None
    if model is None or engine is None or placement is None or gateway is None or problems.items:
        return None
    return settings_class(
        stack=stack,
        namespace=values.namespace,
        target=target,
        region=region,
        model=model,
        model_revision=c.model.revision,
        engine=engine,
        placement=placement,
        access=c.access,
        tls=tls,
        gateway=gateway,
        api_key=SecretStr(c.api_key) if c.api_key else None,
        network=c.network,
        deletion_protection=c.deletion_protection,
        tags=dict(c.tags),
        cost=Cost(prices=dict(c.cost.prices), currency=c.cost.currency_for(target)),
        mainland_china=mainland,
        provider=provider,
        **extra,
    )


def _unread_by_the_virtual_node_unit(c: StackConfig, problems: Problems) -> None:
    """ack-edge: the cloud pods' keys that the chosen virtual node unit does not read (set, they would change
    nothing): acs.* for ECI's virtual nodes, ackEdge.eciInstanceTypes for ACS's."""
    unit = c.ack_edge.virtual_node_unit
    if unit == "acs":
        other = "eci"
        set_here = "eci_instance_types" in c.ack_edge.model_fields_set
        unread = [("ackEdge.eciInstanceTypes", list(c.ack_edge.eci_instance_types))] if set_here else []
    else:
        other = "acs"
        unread = [(f"acs.{to_camel(name)}", getattr(c.acs, name)) for name in sorted(c.acs.model_fields_set)]
    for key, value in unread:
        problems.add(
            key,
            value,
            f"is set but ackEdge.virtualNodeUnit is {unit}, whose cloud pods do not read it",
            f"{problems.rm_command(key)}, or {problems.set_command('ackEdge.virtualNodeUnit', other)}",
        )


def _gke(
    c: StackConfig, project: str, region: str, zone: str, placement: Optional[Placement], model, problems: Problems
) -> Optional[GkeSettings]:
    """gke: GPU nodes of one catalog machine, one serving pod per node (or per group of nodes over RDMA)."""
    machine = placement.machine if placement is not None else None
    if machine is not None and c.gke.rdma and not machine.rdma:
        problems.add(
            "gke.rdma",
            True,
            f"RDMA networks are built here for the A4 machine only, not {machine.name} (a copy on one node needs none)",
            problems.set_command("gke.rdma", False),
        )
    pods = placement.pods if placement is not None else None
    if pods is not None and pods > 1 and not c.gke.rdma:
        # NCCL between nodes without the RoCE NICs and the gIB plugin fails ("gIB network not found").
        problems.add(
            "placement.podsPerReplica",
            pods,
            "a copy over several nodes needs RDMA networking",
            f"{problems.set_command('gke.rdma', True)} (or {problems.set_command('placement.podsPerReplica', 1)})",
        )
    needed = c.scaling.replicas * (pods or 1)
    nodes = c.gpu_nodes.min
    if nodes < needed:
        problems.add(
            "gpuNodes.min",
            nodes,
            f"must be at least {needed}: one GPU node per serving pod",
            problems.set_command("gpuNodes.min", needed),
        )
    # The pool grows with the serving pods only: GKE's cluster autoscaler adds a node when a serving pod the HPA
    # added is Pending (node pool autoscaling, pulumi_gcp NodePool autoscaling), up to one node per pod.
    most_replicas = max(c.scaling.max_replicas or c.scaling.replicas, c.scaling.replicas)
    autoscaled = most_replicas > c.scaling.replicas
    most_needed = most_replicas * (pods or 1)
    high = c.gpu_nodes.max
    if high is not None and high != nodes and not autoscaled:
        problems.add(
            "gpuNodes.max",
            high,
            "gke's GPU pool grows only with the serving pods: without scaling.maxReplicas nothing would use more "
            "nodes than gpuNodes.min",
            f"{problems.rm_command('gpuNodes.max')}, or {problems.set_command('scaling.maxReplicas', high)}",
        )
    elif high is not None and autoscaled and high < most_needed:
        problems.add(
            "gpuNodes.max",
            high,
            f"holds fewer serving pods than scaling.maxReplicas ({most_replicas}); each pod takes "
            f"{pods or 1} GPU node(s)",
            problems.set_command("gpuNodes.max", most_needed),
        )
    if model is not None and model.gated and not c.hf_token:
        problems.add(
            "hfToken",
            None,
            f"{model.name} is gated on Hugging Face: the download needs a token with access",
            f"accept the model's terms on huggingface.co, then "
            f"{problems.set_command('hfToken', '<token>', secret=True)}",
        )
    if c.gke.model_source == "download" and pods is not None and pods > 1:
        problems.add(
            "gke.modelSource",
            "download",
            f"downloads on every node of a copy; a copy over {pods} nodes reads the weights from the bucket",
            problems.set_command("gke.modelSource", "bucket"),
        )
    if c.gke.model_source == "download" and c.gke.import_tasks is not None:
        problems.add(
            "gke.importTasks",
            c.gke.import_tasks,
            "is only used when gke.modelSource is bucket (download mode has no import)",
            problems.rm_command("gke.importTasks"),
        )
    if not c.cluster.api_cidrs:
        # Private by default: the control plane's public endpoint answers only the listed networks (master
        # authorized networks). Pulumi talks to it, so it cannot be private-only from outside the VPC.
        problems.add(
            "cluster.apiCidrs",
            None,
            "gke needs the networks that may reach the cluster's control plane (where pulumi and kubectl run, CI "
            "included); 0.0.0.0/0 opens it to any address, guarded by IAM only",
            problems.set_command("cluster.apiCidrs", ["<your public address>/32"]),
        )
    capacity = resolve_capacity(c.gke.capacity, project, problems)
    if machine is None:
        return None  # placement reported why
    return GkeSettings(
        project=project,
        region=region,
        zone=zone,
        machine=machine,
        node_count=nodes,
        max_node_count=max(high or most_needed, nodes) if autoscaled else nodes,
        capacity=capacity,
        release_channel=c.gke.release_channel,
        maintenance_window_start=c.gke.maintenance.window_start,
        hold_node_upgrades=c.gke.maintenance.hold_node_upgrades,
        hf_token=SecretStr(c.hf_token) if c.hf_token else None,
        model_source=c.gke.model_source,
        import_tasks=c.gke.import_tasks,
        rdma=c.gke.rdma,
        control_plane_cidrs=tuple(c.cluster.api_cidrs),
    )
