"""Target `ecs`: one GPU ECS instance serving an OpenAI-compatible API (reference 001)."""

from __future__ import annotations

import pulumi
import pulumi_alicloud as alicloud

from components.alibaba.gpu_instance import GpuInstance, GpuInstanceArgs
from components.alibaba.host_scripts import ENGINE_SHUTDOWN_SECONDS, HostConfig, model_dir, render_user_data
from components.alibaba.network import Network, NetworkArgs, Subnet
from components.api_key import ApiKey
from core.config.problems import ConfigError, Problem
from core.config.settings import EcsSettings
from core.engine import build_command
from core.gateway import METRICS_PORT
from stacks.alibaba import cost
from stacks.alibaba.common import alibaba_provider, stack_tags, ubuntu_image
from stacks.client import api_base, client_outputs, warn_plain_http


def build(settings: EcsSettings) -> dict[str, object]:
    provider = alibaba_provider(settings)
    placement = settings.placement
    zone = _zone(settings, provider)
    instance = settings.instance
    image_id = settings.ecs.image_id or ubuntu_image(settings, provider, instance.name, instance.uefi_only)
    tags = stack_tags(settings)
    in_region = pulumi.ResourceOptions(providers=[provider])

    api_key = ApiKey(f"{settings.name}-api-key", settings.api_key)
    network = Network(
        settings.name,
        NetworkArgs(
            vpc_cidr=settings.network.vpc_cidr,
            subnets=[Subnet("hosts", zone, settings.network.vswitch_cidr)],
            api_port=settings.engine.port,  # the gateway's; the engine listens on loopback only
            metrics_port=METRICS_PORT,  # from the VPC only, for a scraper
            public_api_cidrs=settings.access.allowed_cidrs if settings.access.public else (),
            ssh_cidrs=settings.access.ssh_cidrs,
            nat_egress=not settings.access.public,
            nat_bandwidth_mbps=settings.network.nat_bandwidth_mbps,
            nat_billing=settings.network.nat_billing,
            tags=tags,
        ),
        opts=in_region,
    )

    tls = settings.tls  # pem only on ecs: the gateway serves HTTPS on the API port, to the VPC as well
    host_setup = host_config(settings)
    engine = host_setup.engine
    user_data = render_user_data(host_setup)
    host = GpuInstance(
        settings.name,
        GpuInstanceArgs(
            region=settings.region,
            instance_type=settings.instance.name,
            image_id=image_id,
            vswitch_id=network.vswitch_id,
            security_group_id=network.security_group_id,
            user_data=user_data,
            api_key=api_key.value,
            api_key_env=engine.api_key_env,
            api_port=settings.engine.port,
            readiness_timeout_minutes=settings.ecs.readiness_timeout_minutes,
            tls_certificate=tls.certificate.reveal() if tls and tls.certificate else None,
            tls_key=pulumi.Output.secret(tls.key.reveal()) if tls and tls.key else None,
            disk_category=settings.disk.category,
            system_disk_gib=settings.disk.size_gib,
            public_bandwidth_mbps=settings.access.public_bandwidth_mbps if settings.access.public else 0,
            key_pair=settings.access.ssh_key_pair or None,
            deletion_protection=settings.deletion_protection,
            tags=tags,
        ),
        opts=in_region,
    )

    port = settings.engine.port  # the gateway: the only way in
    outputs = client_outputs(
        model_name=settings.engine.served_model_name,
        engine=settings.engine.engine,
        api_key=api_key.value,
        private_base=api_base(host.private_ip, port, https=tls is not None),
        public_base=(
            api_base(host.public_ip, port, https=True, hostname=tls.hostname if tls else None)
            if host.public_ip is not None and tls is not None
            else api_base(host.public_ip, port)
            if host.public_ip is not None
            else None
        ),
    )
    warn_plain_http(settings)
    outputs.update(
        {
            "target": "ecs",
            "region": settings.region,
            "zone": zone,
            "instanceId": host.instance_id,
            "instanceType": settings.instance.name,
            "gpus": f"{placement.gpus_per_pod}x {placement.gpu.name}",
            "engine": settings.engine.engine,
            "engineImage": settings.engine.image,
            "healthCheck": pulumi.Output.concat(
                "curl https://" if tls else "curl http://", host.private_ip, f":{port}/health"
            ),
            "readinessTimeoutMinutes": settings.ecs.readiness_timeout_minutes,
            "costEstimate": cost.ecs_estimate(settings, provider),
        }
    )
    if settings.access.ssh_cidrs:
        address = host.public_ip if host.public_ip is not None else host.private_ip
        outputs["sshCommand"] = pulumi.Output.concat(
            "ssh -i <", settings.access.ssh_key_pair or "", ".pem> root@", address
        )
    return outputs


def host_config(settings: EcsSettings) -> HostConfig:
    """What the GPU host runs: the model, the engine command for this placement, driver and image."""
    placement = settings.placement
    engine = build_command(
        settings.engine,
        settings.model,
        model_dir(settings.model),
        placement.tensor_parallel,
        gpu_has_bf16=placement.gpu.bf16,
        behind_gateway=True,
        shutdown_timeout_seconds=ENGINE_SHUTDOWN_SECONDS,
    )
    return HostConfig(
        model=settings.model,
        model_revision=settings.model_revision,
        engine_image=settings.engine.image,
        engine=engine,
        driver_branch=settings.ecs.gpu_driver_branch,
        fabric_manager=settings.instance.nvswitch,
        api_port=settings.engine.port,
        gateway_image=settings.gateway.image,
        gateway_routes=settings.gateway.routes,
        max_model_len=settings.engine.max_model_len,
        open_kernel_modules=placement.gpu.open_kernel_modules,
        tls=settings.tls is not None,
    )


def _zone(settings: EcsSettings, provider: alicloud.Provider) -> str:
    """A zone that sells the instance type now (GPU stock varies by zone), checked before creating anything."""
    instance_type = settings.instance.name
    found = alicloud.get_zones(
        available_instance_type=instance_type,
        available_resource_creation="VSwitch",
        available_disk_category=settings.disk.category,
        opts=pulumi.InvokeOptions(provider=provider),
    )
    zones = [z.id for z in found.zones]
    wanted = settings.ecs.zone
    if wanted and wanted not in zones:
        raise ConfigError(
            [
                Problem(
                    "placement.zone",
                    wanted,
                    f"does not offer {instance_type} with "
                    f"{settings.disk.category} now; zones that do: {zones or 'none'}",
                    f"pick one of those zones, or unset it to choose automatically: pulumi config rm "
                    f"--path '{settings.namespace}:placement.zone'",
                    settings.namespace,
                )
            ]
        )
    if not zones:
        raise ConfigError(
            [
                Problem(
                    "placement.instanceType",
                    instance_type,
                    f"no zone of {settings.region} offers it now (sold out or not sold in this region)",
                    "try another region (alicloud:region), placement.gpuKind or "
                    "placement.instanceType, or ask Alibaba Cloud for quota",
                    settings.namespace,
                )
            ]
        )
    return wanted or zones[0]
