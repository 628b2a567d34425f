"""The `costEstimate` output of target `gke`: cited table prices where there are some, else unknown.

Nothing is looked up live: pulumi-gcp 10.2.0 has no invoke that returns SKU prices (no Cloud Billing
Catalog data source; its `billing` module has accounts, budgets and IAM only). Prices come from the dated
table in core.cost or from cost.prices. The estimate is in USD, the currency of Google's price
pages: overrides in another cost.currency are not converted and count as unknown, with a warning.
No alicloud import here: a gke run loads only the gcp and kubernetes SDKs.
"""

from __future__ import annotations

import pulumi

from components.gcp.gke_cluster import SYSTEM_MACHINE_TYPE, SYSTEM_NODES
from core.catalog import FLEX_START, RESERVATION, SPOT
from core.config.settings import GkeTargetSettings
from core.cost import Item, Price, estimate

CURRENCY = "USD"
NOT_CITED = "pulumi-gcp has no price lookup and no official on-demand price of {} could be cited"
# Not counted: boot disks, network traffic, Artifact Registry storage, Cloud Logging and Monitoring.


def gke_estimate(settings: GkeTargetSettings) -> dict:
    """Target `gke`: GPU nodes, system nodes, the cluster fee, the Services' load balancers and the bucket."""
    gke = settings.gke
    machine = gke.machine
    ssd = "bundled" if machine.local_ssd_bundled else f"{machine.local_ssds} x"
    items = [
        Item(
            f"GKE {machine.family} GPU nodes ({machine.name}, {machine.gpu_count} x {machine.gpu}, {ssd} local SSD)",
            gke.node_count,
            _gpu_node_price(machine.name, gke.capacity.mode),
            f"gke.{machine.name}",
        ),
        Item(
            f"GKE system nodes ({SYSTEM_MACHINE_TYPE})",
            SYSTEM_NODES,
            Price.unknown(NOT_CITED.format(SYSTEM_MACHINE_TYPE)),
            "gke.system-node",
        ),
        Item(
            "GKE Standard cluster management (regional cluster)",
            1,
            Price.from_table("gke/cluster", "no cited price of the GKE cluster fee"),
            "gke.cluster",
        ),
        *_load_balancers(settings.access.public),
        Item(
            "Cloud NAT for the nodes' egress (PyPI, images, the download mode's weights)",
            1,
            Price.unknown(
                "billed per node-hour and per GiB processed: depends on traffic (the download mode fetches the "
                "weights at every pod start; the bucket import runs on Cloud Run, not through the NAT)"
            ),
            "gcp.nat",
        ),
        _bucket(settings),
    ]
    _warn_on_currency(settings, items)
    return estimate(items, settings.cost.prices, settings.cost.currency, currency=CURRENCY)


def _gpu_node_price(machine: str, capacity: str) -> Price:
    reason = NOT_CITED.format(machine)
    reason += {
        RESERVATION: "; nodes in a reservation are billed on the reservation's terms (it bills whether used or not)",
        SPOT: "; Spot VMs are billed at the (variable) Spot price",
        FLEX_START: "; Flex-start VMs are billed at the Flex-start price while they run",
    }.get(capacity, "")
    return Price.unknown(reason)


def _load_balancers(public: bool) -> list[Item]:
    """GKE makes one passthrough Network Load Balancer per LoadBalancer Service: internal, and external if public."""
    tiered = Price.unknown(
        "forwarding rules are billed per project in tiers (the first five together) "
        "plus processed data, so one load balancer's share is not fixed"
    )
    items = [Item("internal passthrough Network Load Balancer (API Service)", 1, tiered, "gcp.lb")]
    if public:
        items.append(Item("external passthrough Network Load Balancer (public API Service)", 1, tiered, "gcp.lb"))
    return items


def _bucket(settings: GkeTargetSettings) -> Item:
    """The weights at rest in the regional bucket, priced per GiB-hour (a GiB-month spread over 730 hours).

    Assumed: the bucket's class is Standard (components.gcp.gcs_model_store sets none; Standard is GCS's default).
    """
    region = settings.gke.region
    price = Price.from_table(f"gcs/standard/{region}", f"no cited Standard storage price for {region}")
    if settings.gke.model_source == "download":
        # Serving downloads from Hugging Face: the bucket only holds benchmark results (not counted).
        return Item(
            f"GCS bucket in {region}: no weights with gke.modelSource download (GiB)", 0, price, "gcs.gib-month"
        )
    return Item(
        f"GCS bucket in {region}: the weights in Standard storage (GiB)",
        round(settings.model.weights_gib, 1),
        price,
        "gcs.gib-month",
    )


def _warn_on_currency(settings: GkeTargetSettings, items: list[Item]) -> None:
    overridden = sorted({i.key for i in items} & set(settings.cost.prices))
    if overridden and settings.cost.currency != CURRENCY:
        pulumi.log.warn(
            f"costEstimate: the gke estimate is in {CURRENCY}; cost.prices {', '.join(overridden)} "
            f"are in {settings.cost.currency} (cost.currency) and count as unknown. "
            f"Set cost.currency {CURRENCY} to use them."
        )
