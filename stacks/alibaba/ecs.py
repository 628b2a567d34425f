"""Target `ecs`: one GPU ECS instance serving an OpenAI-compatible API (as Compute Nest's ECS edition)."""

from __future__ import annotations

import dataclasses
import hashlib

import pulumi
import pulumi_alicloud as alicloud

from components.alibaba.deployer_credentials import stack_credentials
from components.alibaba.gpu_instance import GpuInstance, GpuInstanceArgs
from components.alibaba.host_scripts import (
    ENGINE_SHUTDOWN_SECONDS,
    HostConfig,
    model_dir,
    model_uri,
    oss_internal_endpoint,
    render_prepare_image,
    render_user_data,
)
from components.alibaba.instance_role import bucket_read_statements
from components.alibaba.network import Network, NetworkArgs, Subnet
from components.alibaba.prepared_image import MAX_BUILDER_BANDWIDTH_MBPS, PreparedImage, PreparedImageArgs
from components.api_key import ApiKey
from core import durations
from core.config.host import PREPARED_IMAGE_DISK_GIB
from core.config.problems import ConfigError, Problem
from core.config.settings import EcsSettings
from core.engine import build_command, stream_load
from core.gateway import METRICS_PORT
from core.ready_time import ecs_import_plan, timeline
from core.timeline import API
from stacks.alibaba import cost
from stacks.alibaba.common import alibaba_provider, announce_import, stack_tags, ubuntu_image
from stacks.client import api_base, client_outputs, warn_plain_http
from stacks.progress import announce


def build(settings: EcsSettings) -> dict[str, object]:
    provider = alibaba_provider(settings)
    if settings.ecs.weights.imported:
        settings = _with_own_bucket(settings, provider)
    placement = settings.placement
    zone = _zone(settings, provider)
    instance = settings.instance
    prepared = settings.ecs.prepared_image
    # The OS image: the configured one or the newest public Ubuntu; a prepared image is built from it. A taken
    # prepared image replaces it.
    os_image = (
        None
        if prepared.image_id
        else settings.ecs.image_id or ubuntu_image(settings, provider, instance.name, instance.uefi_only)
    )
    image_id = _prepared_image(settings, provider) if prepared.image_id else os_image
    assert image_id is not None
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
    weights = settings.ecs.weights
    store = _import(settings, provider, network, tags, in_region) if weights.imported else None
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
            extra_statements=bucket_read_statements(weights.bucket, f"{weights.prefix}/{settings.model.modelscope_id}")
            if weights.in_region and weights.bucket
            else (),
            # The host's fetch-oss.py lists the stack's bucket from its first boot on; destroy removes it first.
            depends_on=[store.bucket_resource] if store is not None and store.bucket_resource else (),
        ),
        opts=in_region,
    )
    built = _build_prepared_image(settings, host_setup, os_image, network, tags, in_region) if prepared.build else None

    announce(
        host,
        "the host's first boot: driver, Docker, the engine image, the weights, the engine's load, ready.sh",
        timeline(settings).finish(API),
        host.instance_id.apply(
            lambda i: (
                f"aliyun ecs DescribeInvocationResults --RegionId {settings.region} --InstanceId {i} "
                "--ContentEncoding PlainText (or on the host: journalctl -fu llm-bootstrap)"
            )
        ),
        [host.instance_id],
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
            "hostImage": image_id,
            "weightsSource": f"oss://{weights.bucket}/{weights.prefix}/{settings.model.modelscope_id}/"
            if weights.in_region
            else f"modelscope:{settings.model.modelscope_id}@{settings.model_revision}",
        }
    )
    if store is not None:
        outputs["modelBucket"] = store.bucket
    if built is not None:
        outputs["preparedImageId"] = built.image_id  # for ecs.preparedImage.id of the next hosts in the region
        outputs["preparedImageBuild"] = built.execution_id.apply(
            lambda execution: (
                f"aliyun ecs DescribeImagePipelineExecutions --RegionId {settings.region} --ExecutionId {execution}"
            )
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
    weights = settings.ecs.weights
    # ecs.weights.load stream: the engine reads the bucket with the Run:ai Model Streamer (its CPU buffer a share of
    # the instance's memory, the distributed mode across the host's tensor-parallel ranks where the engine has it).
    stream = (
        stream_load(settings.engine, True, placement.tensor_parallel, False, settings.instance.memory_gib)
        if weights.streamed and weights.bucket
        else None
    )
    engine = build_command(
        settings.engine,
        settings.model,
        model_uri(weights.bucket or "", weights.prefix, settings.model) if stream else model_dir(settings.model),
        placement.tensor_parallel,
        gpu_has_bf16=placement.gpu.bf16,
        behind_gateway=True,
        shutdown_timeout_seconds=ENGINE_SHUTDOWN_SECONDS,
        stream=stream,
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
        weights_source="oss" if weights.in_region else "modelscope",  # the host reads a bucket either way
        weights_bucket=settings.ecs.weights.bucket or "",
        weights_prefix=settings.ecs.weights.prefix,
        weights_parallel=settings.ecs.weights.parallel,
        oss_endpoint=oss_internal_endpoint(settings.region) if settings.ecs.weights.in_region else "",
        weights_load=weights.load,
        weights_wait_seconds=settings.ecs.import_wait_minutes * 60,  # 0 without the stack's own import
        region=settings.region,
        tls=settings.tls is not None,
    )


def _with_own_bucket(settings: EcsSettings, provider: alicloud.Provider) -> EcsSettings:
    """ecs.weights.source import: the settings with the bucket's name, the configured one or
    llm-<stack>-models-<8 hex>. OSS bucket names are global, so the hex is of the account, project and stack, as a
    random suffix would be; unlike one it is known before the bucket exists, for the host's user-data and role."""
    weights = settings.ecs.weights
    name = weights.bucket
    if name is None:
        account = alicloud.get_caller_identity(opts=pulumi.InvokeOptions(provider=provider)).account_id
        digest = hashlib.sha256(f"{account}/{pulumi.get_project()}/{settings.stack}".encode()).hexdigest()[:8]
        name = f"{settings.name[: 63 - len('-models-') - 8].rstrip('-')}-models-{digest}"
    ecs = dataclasses.replace(settings.ecs, weights=dataclasses.replace(weights, bucket=name))
    return dataclasses.replace(settings, ecs=ecs)


def _import(
    settings: EcsSettings,
    provider: alicloud.Provider,
    network: Network,
    tags: dict[str, str],
    opts: pulumi.ResourceOptions,
):
    """The stack's own bucket and the import at t=0 (components/alibaba/model_import_workers.py): the workers need the
    network's NAT and the bucket, not the host, so they fill it while the host boots."""
    from components.alibaba.model_import_workers import ModelImportWorkers, ModelImportWorkersArgs
    from components.alibaba.oss_model_store import OssModelStore, OssModelStoreArgs, internal_endpoint

    weights = settings.ecs.weights
    assert weights.bucket is not None  # _with_own_bucket
    store = OssModelStore(
        f"{settings.name}-models",
        OssModelStoreArgs(
            region=settings.region,
            namespace=None,  # the bucket only: the host reads it with its own RAM role
            model_prefix=weights.prefix,
            bucket_name=weights.bucket,
            retain=weights.retain,
            tags=tags,
            credentials=stack_credentials(settings.provider),  # the multipart cleanup's, on destroy
        ),
        opts=opts,
    )
    workers = weights.import_workers
    importer = ModelImportWorkers(
        f"{settings.name}-import",
        ModelImportWorkersArgs(
            region=settings.region,
            bucket=store.bucket,
            endpoint=internal_endpoint(settings.region),
            prefix=f"{weights.prefix}/{settings.model.modelscope_id}",
            model_id=settings.model.modelscope_id,
            revision=settings.model_revision,
            workers=workers,
            instance_type=weights.import_instance_type,
            image_id=ubuntu_image(
                settings, provider, weights.import_instance_type, key="ecs.weights.importInstanceType"
            ),
            vswitch_id=network.vswitch_id,
            security_group_id=network.security_group_id,
            timeout_minutes=settings.ecs.import_wait_minutes,  # core.config.host.resolve_host
            # The hub is on the internet (the NAT); destroy removes the workers before it aborts the bucket's
            # incomplete uploads and deletes the bucket.
            depends_on=[*network.snat_entries, *store.cleanup],
            tags=tags,
        ),
        opts=opts,
    )
    announce_import(importer, settings.region, ecs_import_plan(settings).minutes)
    return store


# How long `pulumi up` waits for the prepared image build: the modelled build x 2, at least an hour.
BUILD_WAIT_MARGIN = 2.0
BUILD_WAIT_FLOOR_MINUTES = 60


def _build_prepared_image(
    settings: EcsSettings,
    host_setup: HostConfig,
    base_image: str | None,
    network: Network,
    tags: dict[str, str],
    opts: pulumi.ResourceOptions,
) -> PreparedImage:
    """ECS Image Builder makes the prepared image from the public Ubuntu image, beside the first host (which does
    not wait for it). Behind the NAT its intermediate instance uses the stack's vSwitch; with a public host there
    is no NAT, so it gets its own bandwidth, at most 100 Mbit/s."""
    assert base_image is not None  # a prepared image is built from the public image, never from a taken one
    bandwidth = min(settings.ecs.egress_mbps, MAX_BUILDER_BANDWIDTH_MBPS) if settings.access.public else 0
    plan = durations.prepared_image_build(bandwidth or settings.ecs.egress_mbps, settings.ecs.start.image_in_region)
    return PreparedImage(
        f"{settings.name}-prepared",
        PreparedImageArgs(
            region=settings.region,
            base_image_id=base_image,
            build_script=render_prepare_image(host_setup),
            vswitch_id=network.vswitch_id,
            internet_bandwidth_mbps=bandwidth,
            disk_gib=PREPARED_IMAGE_DISK_GIB,
            wait_minutes=plan.deadline(BUILD_WAIT_MARGIN, BUILD_WAIT_FLOOR_MINUTES),
            retain=settings.ecs.prepared_image.retain,
            tags=tags,
            credentials=stack_credentials(settings.provider),  # to follow the build and delete the image
        ),
        opts=opts,
    )


def _prepared_image(settings: EcsSettings, provider: alicloud.Provider) -> str:
    """The taken prepared image, checked before anything is created: it exists in the region, is the account's
    (or shared with it), and fits the host's disk."""
    wanted = settings.ecs.prepared_image.image_id
    assert wanted is not None
    found = alicloud.ecs.get_images(image_id=wanted, opts=pulumi.InvokeOptions(provider=provider))
    key = "ecs.preparedImage.id"
    if not found.images:
        raise ConfigError(
            [
                Problem(
                    key,
                    wanted,
                    f"is no image in {settings.region} this account can use (an image lives in one region: copy it "
                    "with ecs.CopyImage, or build one here)",
                    f"pulumi config set --path '{settings.namespace}:ecs.preparedImage.build' true, and pulumi config "
                    f"rm --path '{settings.namespace}:{key}'",
                    settings.namespace,
                )
            ]
        )
    size = found.images[0].size
    if size > settings.disk.size_gib:
        raise ConfigError(
            [
                Problem(
                    "disk.sizeGib",
                    settings.disk.size_gib,
                    f"is smaller than the prepared image {wanted} ({size} GiB); a system disk holds its image",
                    f"pulumi config set --path '{settings.namespace}:disk.sizeGib' {size}",
                    settings.namespace,
                )
            ]
        )
    return wanted


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
