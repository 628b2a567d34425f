"""Lookups every Alibaba Cloud target needs, made before anything is created."""
from __future__ import annotations

from typing import Optional

import pulumi
import pulumi_alicloud as alicloud

from components.network import Network, NetworkArgs, Subnet
from core.errors import ConfigError, Problem
from core.settings import Settings

MODEL_PREFIX = "models"  # objects under oss://<bucket>/models/<ModelScope id>/
ADDRESS_TYPE = "service.beta.kubernetes.io/alibaba-cloud-loadbalancer-address-type"


def load_balancers(settings: Settings) -> dict:
    """Platform Service exposures on Alibaba Cloud: an intranet LB always, an internet one only when asked."""
    from components.serving import ServiceExposure
    public = ServiceExposure(annotations={ADDRESS_TYPE: "internet"}, source_ranges=settings.access.allowed_cidrs,
                             external_traffic_policy="Local") if settings.access.public else None
    return {"private_service": ServiceExposure(annotations={ADDRESS_TYPE: "intranet"}), "public_service": public}


def stack_tags(settings: Settings) -> dict[str, str]:
    return {"app": "llm-serving", "stack": settings.stack, **settings.tags}


def cluster_zones(settings: Settings, provider: alicloud.Provider, instance_type: Optional[str]) -> tuple[str, str]:
    """Two zones for a cluster's vSwitches; with `instance_type`, both must sell it now."""
    found = alicloud.get_zones(available_resource_creation="VSwitch", available_instance_type=instance_type,
                               opts=pulumi.InvokeOptions(provider=provider))
    zones = [z.id for z in found.zones]
    wanted = settings.cluster.zones
    what = f"vSwitches{' and ' + instance_type if instance_type else ''}"
    missing = [z for z in wanted if z not in zones]
    if missing:
        raise ConfigError([Problem("clusterZones", list(wanted), f"{missing} cannot host {what} now; zones that can: {zones}",
                                   "pick two of those zones, or leave llm:clusterZones empty")])
    if not wanted and len(zones) < 2:
        raise ConfigError([Problem("region", settings.region, f"needs two zones with {what}; found {zones}",
                                   "choose another region, GPU kind (llm:gpuKind) or instance type")])
    return tuple(wanted) if wanted else (zones[0], zones[1])


def cluster_network(settings: Settings, zones: tuple[str, str], tags: dict, provider: alicloud.Provider,
                    pod_vswitches: bool = True) -> Network:
    """The VPC of a cluster: node vSwitches in two zones, Terway pod vSwitches unless the CNI needs none."""
    plan = settings.cluster
    subnets = [Subnet("nodes-a", zones[0], plan.node_vswitch_cidrs[0]),
               Subnet("nodes-b", zones[1], plan.node_vswitch_cidrs[1])]
    if pod_vswitches:
        subnets += [Subnet("pods-a", zones[0], plan.pod_vswitch_cidrs[0]),
                    Subnet("pods-b", zones[1], plan.pod_vswitch_cidrs[1])]
    return Network(settings.name, NetworkArgs(vpc_cidr=settings.vpc_cidr, subnets=subnets,
                                              ssh_cidrs=settings.access.ssh_cidrs, nat_egress=True, tags=tags),
                   opts=pulumi.ResourceOptions(providers=[provider]))


def namespace_and_store(settings: Settings, cluster, tags: dict, opts: pulumi.ResourceOptions, auth: str):
    """The workload's namespace and the OSS model store (`auth`: "rrsa", or "access-key" where RRSA is not known to work)."""
    import pulumi_kubernetes as k8s

    from components.model_store import OssModelStore, OssModelStoreArgs
    namespace = k8s.core.v1.Namespace(
        f"{settings.name}-namespace", metadata={"name": settings.workload.namespace,
                                               "labels": {"app.kubernetes.io/managed-by": "pulumi"}},
        opts=pulumi.ResourceOptions(provider=cluster.provider))
    ns = namespace.metadata["name"]
    rrsa = auth == "rrsa"
    store = OssModelStore(f"{settings.name}-models", OssModelStoreArgs(
        region=settings.region, namespace=ns, model_prefix=MODEL_PREFIX, bucket_name=settings.model_store.bucket_name,
        retain=settings.model_store.retain, adopt=settings.model_store.adopt_bucket, auth=auth,
        oidc_provider_arn=cluster.oidc_provider_arn if rrsa else None,
        oidc_issuer_url=cluster.oidc_issuer_url if rrsa else None,
        volume_gib=max(100, int(settings.model.weights_gib * 1.2)), tags=tags), opts=opts)
    return ns, store


def ubuntu_image(provider: alicloud.Provider, region: str, instance_type: str, uefi: bool = False) -> str:
    """Newest Ubuntu 22.04 public image the instance type supports (UEFI builds for ebmgn8v)."""
    pattern = r"^ubuntu_22_04_uefi_x64" if uefi else r"^ubuntu_22_04_x64"
    found = alicloud.ecs.get_images(name_regex=pattern, owners="system", most_recent=True, os_type="linux",
                                    instance_type=instance_type, opts=pulumi.InvokeOptions(provider=provider))
    if not found.images:
        raise ConfigError([Problem("imageId", "", f"no public image matching {pattern} supports "
                                   f"{instance_type} in {region}",
                                   "set llm:imageId to an Ubuntu 22.04 image id from the ECS console")])
    return found.images[0].id
