"""The `costEstimate` output of the Alibaba Cloud targets: live prices where the provider has them, else unknown.

Prices are looked up with plain invokes while the program runs, so they are known at `pulumi preview`. A
failed lookup (product not supported, no permission, no price) becomes an unknown item with the reason and
a warning: pricing never fails a deployment.
"""

from __future__ import annotations

import json
from dataclasses import replace

import pulumi
import pulumi_alicloud as alicloud

from core import durations
from core.config.ack import SYSTEM_DISK_CATEGORY, SYSTEM_NODES
from core.config.settings import (
    AckEdgeSettings,
    AckFamilySettings,
    AckTargetSettings,
    AcsSettings,
    ClusterSettings,
    EcsSettings,
)
from core.cost import Item, Price, estimate

LIVE = "live: cloudcontrol GetPrice"
# Only the product/resource codes shown in the provider's get_prices docstring are used ("ECS"/"Instance",
# "SLB"/"LoadBalancer"). Other resources are reported unknown rather than looked up under guessed codes.
NO_CODE = "not looked up: no verified Cloud Control resource code for it"


def live_price(provider: alicloud.Provider, product: str, resource_code: str, attributes: dict) -> Price:
    """The PayAsYouGo price Cloud Control quotes for one resource, or unknown with why.

    Assumed, not verified here: a PayAsYouGo quote is per hour, and `trade_price` (after discounts) is what the
    account pays; the currency is the account's (CNY on the China site, USD on the international site).
    """
    try:
        found = alicloud.cloudcontrol.get_prices(
            product=product,
            resource_code=resource_code,
            desire_attributes_json=json.dumps(attributes),
            opts=pulumi.InvokeOptions(provider=provider),
        )
    except Exception as error:  # any provider or API error: report, do not fail the deployment
        reason = f"{product}/{resource_code} price lookup failed: {_first_line(error)}"
        pulumi.log.warn(f"costEstimate: {reason}")
        return Price.unknown(reason)
    if not found.prices:
        return Price.unknown(f"{product}/{resource_code}: Cloud Control returned no price")
    quote = found.prices[0]
    return Price(float(quote.trade_price), quote.currency, LIVE)


def ecs_instance_price(provider: alicloud.Provider, instance_type: str, disk_category: str) -> Price:
    # The docstring's ECS example passes InstanceType and SystemDisk.Category; the disk size is not a documented
    # attribute there, so the quote is for the API's default system disk size.
    price = live_price(
        provider,
        "ECS",
        "Instance",
        {"InstanceType": instance_type, "PaymentType": "PayAsYouGo", "SystemDisk": {"Category": disk_category}},
    )
    if price.hourly is None:
        return price
    return replace(price, reason="system disk quoted at the API's default size, not the configured one")


def ecs_estimate(settings: EcsSettings, provider: alicloud.Provider) -> dict:
    """Target `ecs`: the GPU host, its NAT egress or public bandwidth."""
    access = settings.access
    disk = settings.disk
    items = [
        Item(
            f"ECS {settings.instance.name} + {disk.category} system disk ({disk.size_gib} GiB configured)",
            1,
            ecs_instance_price(provider, settings.instance.name, disk.category),
            "gpu-host",
        )
    ]
    items += _public_bandwidth("GPU host") if access.public else _nat_egress(settings)
    weights = settings.ecs.weights
    if weights.imported:
        items += _bucket_and_import(weights.import_workers, weights.import_instance_type)
    if settings.ecs.prepared_image.build:
        # The image is its snapshots: ECS bills snapshot storage per GB-month of what they hold (about 45 GB
        # here: core.durations.PREPARED_IMAGE_GB). The rate was not looked up; set cost.prices.prepared-image.
        items.append(
            Item(
                "prepared image (ECS snapshots, about 45 GB; kept after destroy with ecs.preparedImage.retain)",
                1,
                Price.unknown("billed as snapshot storage per GB-month; the rate was not looked up"),
                "prepared-image",
            )
        )
    return estimate(items, settings.cost.prices, settings.cost.currency)


def acs_estimate(settings: AcsSettings, provider: alicloud.Provider) -> dict:
    """Target `acs`: GPU pods, NAT egress, load balancers, model bucket and the optional jump host."""
    placement, acs, workload = settings.placement, settings.acs, settings.workload
    gpus = workload.replicas * placement.pods * placement.gpus_per_pod
    items = [
        Item(
            f"ACS {acs.compute_class} pod GPUs ({acs.gpu_series}), {placement.gpus_per_pod} per pod, "
            f"{workload.cpu} vCPU / {workload.memory_gib} GiB per pod",
            gpus,
            Price.from_table(
                f"acs/{acs.compute_class}/{acs.gpu_series}",
                "the provider has no ACS price lookup and no public ACS GPU price could be cited",
            ),
            "acs-gpu",
        ),
        Item("ACS cluster", 1, Price.unknown("not verified whether ACS bills the cluster itself"), "acs-cluster"),
        *_nat_egress(settings),
        *_balancers_and_bucket(settings),
    ]
    jump = settings.jump_host
    if jump.enabled:
        items.append(
            Item(
                f"ECS {jump.instance_type} jump host + cloud_essd system disk",
                1,
                ecs_instance_price(provider, jump.instance_type, "cloud_essd"),
                "jump-host",
            )
        )
        if settings.access.ssh_cidrs:
            items += _public_bandwidth("jump host")
    return estimate(items, settings.cost.prices, settings.cost.currency)


def ack_estimate(settings: AckFamilySettings, provider: alicloud.Provider) -> dict:
    """Targets `ack` and `ack-edge`: cloud nodes at their minimum, the cluster fee, NAT, LBs and the bucket."""
    ack = settings.ack
    system = ack.system_instance_type
    items = [
        Item(
            f"ECS {system} system nodes + {SYSTEM_DISK_CATEGORY} system disk",
            SYSTEM_NODES,
            ecs_instance_price(provider, system, SYSTEM_DISK_CATEGORY),
            "system-node",
        ),
        Item(
            "ACK Pro cluster management",
            1,
            Price.unknown("no verified price code for the ACK cluster fee"),
            "ack-cluster",
        ),
    ]
    if isinstance(settings, AckTargetSettings):
        pool = settings.gpu_pool
        items.insert(
            0,
            Item(
                f"ECS {pool.instance_type} GPU nodes at the pool minimum ({pool.min_nodes}; up to "
                f"{pool.max_nodes}){', spot' if pool.spot else ''}",
                pool.min_nodes,
                Price.unknown("spot prices vary by the hour")
                if pool.spot
                else ecs_instance_price(provider, pool.instance_type, settings.disk.category),
                "gpu-node",
            ),
        )
    elif isinstance(settings, AckEdgeSettings):
        items.insert(
            0,
            Item(
                f"cloud serving pods on {settings.edge.unit} virtual nodes (0 until the IDC is full; "
                f"up to {settings.edge.cloud_max_pods})",
                0,
                Price.unknown("ECI/ACS GPU pod prices have no verified lookup"),
                "virtual-gpu-pod",
            ),
        )
    items += _nat_egress(settings) + _balancers_and_bucket(settings)
    return estimate(items, settings.cost.prices, settings.cost.currency)


def _balancers_and_bucket(settings: ClusterSettings) -> list[Item]:
    """What every Alibaba Kubernetes target has: the Services' load balancers and the model bucket."""
    chosen = Price.unknown("its spec and billing are chosen by the cluster's cloud controller, not by this program")
    items = [Item("private API load balancer (created by the cluster for the Service)", 1, chosen, "private-lb")]
    if settings.access.public:
        items.append(Item("public API load balancer (created by the cluster for the Service)", 1, chosen, "public-lb"))
    workers = durations.import_workers(settings.model, settings.model_store.import_workers)
    items += _bucket_and_import(workers, settings.model_store.import_instance_type)
    if getattr(settings, "image_mirror", None) is not None:
        from components.alibaba.image_mirror import DISK_GIB

        items.append(
            Item(
                f"image mirror worker (ECS {settings.model_store.import_instance_type}): stopped in economical mode "
                f"once the copy is done; its {DISK_GIB} GiB ESSD system disk stays billed until destroy. The ACR "
                "Enterprise Edition instance is yours (a subscription), and the copy's storage is in its quota",
                1,
                Price.unknown(
                    "0 per hour once stopped (StopCharging); disks are billed per GiB-month, no verified code"
                ),
                "mirror-worker",
            )
        )
    return items


def _bucket_and_import(workers: int, instance_type: str) -> list[Item]:
    """The model bucket and the import workers that fill it (components/alibaba/model_import_workers.py)."""
    from components.alibaba.model_import_workers import DISK_GIB

    return [
        Item("OSS model bucket", 1, Price.unknown("billed by stored GiB and requests, not per hour"), "model-bucket"),
        Item(
            f"model import workers (ECS {instance_type}): stopped in economical mode once the import is done; their "
            f"{DISK_GIB} GiB ESSD system disks stay billed until destroy",
            workers,
            Price.unknown("0 per hour once stopped (StopCharging); disks are billed per GiB-month, no verified code"),
            "import-worker",
        ),
    ]


def _nat_egress(settings) -> list[Item]:
    """The NAT gateway and its EIPs as components/alibaba/network.py bills them (core/nat_egress.py): one EIP per
    200 Mbit/s, pay-by-traffic, or pay-by-bandwidth and above 200 Mbit/s one shared bandwidth package."""
    from core.nat_egress import nat_eips

    network = settings.network
    plan = nat_eips(network.nat_bandwidth_mbps, network.nat_billing)
    if plan.billing == "traffic":
        billing = "PayByTraffic"
    elif plan.shared:
        billing = "in the shared bandwidth package"
    else:
        billing = f"PayByBandwidth, {plan.total_mbps} Mbit/s"
    each = f", {plan.bandwidths[0]} Mbit/s each" if plan.count > 1 and plan.billing == "traffic" else ""
    items = [
        Item("NAT gateway (Enhanced, PayByLcu)", 1, Price.unknown(NO_CODE), "nat-gateway"),
        Item(
            f"EIP{'s' if plan.count > 1 else ''} of the NAT gateway ({billing}{each})",
            plan.count,
            Price.unknown(NO_CODE),
            "nat-eip",
        ),
    ]
    if plan.shared:
        items.append(
            Item(
                f"shared bandwidth package of the NAT's EIPs (PayByBandwidth, {plan.total_mbps} Mbit/s)",
                1,
                Price.unknown(NO_CODE),
                "nat-bandwidth",
            )
        )
    return items


def _public_bandwidth(what: str) -> list[Item]:
    return [
        Item(
            f"public traffic of the {what} (PayByTraffic)",
            1,
            Price.unknown("billed per GB sent, not per hour"),
            "public-traffic",
        )
    ]


def _first_line(error: Exception) -> str:
    text = str(error).strip().splitlines()
    return text[0][:200] if text else type(error).__name__
