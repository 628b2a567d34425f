"""Cost estimate arithmetic: unit prices x quantities, summed per hour and per month, unknowns kept unknown.

Pure: no Pulumi, no cloud. Where a price comes from (a live lookup, the dated table below, nothing) is decided
by the caller; this module only records it and refuses to turn a missing price into zero. When any item's
price is unknown, the totals are null and `hourlyKnownPart` gives the sum of what is known, so a reader
sees a lower bound and the list of what is missing, never a number that looks complete but is not.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Optional

from core.catalog import GKE_MACHINES
from core.targets import ACK, ACK_EDGE, ACK_FAMILY, ACS, ECS, GKE

HOURS_PER_MONTH = 730  # 365 x 24 / 12, the convention cloud price pages use for "per month"


@dataclass(frozen=True)
class TablePrice:
    """A published price for one unit-hour, with where and when it was read."""

    hourly: float
    currency: str
    unit: str  # what one unit is, e.g. "GPU" (read with the source: CPU and memory may be billed apart)
    source: str
    date: str  # ISO date the source was read
    url: str

    def label(self) -> str:
        return f"table: {self.source}, {self.date}, {self.url}"


# Prices for resources no provider lookup covers. Add an entry only with its source, date and URL; a price
# that cannot be cited is not added. No ACS GPU pod price could be found and cited (2025, the ACS help
# center and public pages), nor (2026-11-21) an official on-demand price of a4-highgpu-8g or e2-standard-8.
PRICE_TABLE: Mapping[str, TablePrice] = {
    # Standard edition: a regional cluster pays it in full (the free tier credit covers zonal and Autopilot
    # clusters only, per the same page).
    "gke/cluster": TablePrice(
        0.10,
        "USD",
        "cluster",
        "GKE pricing, cluster management fee of $0.10 per cluster per hour",
        "2026-11-21",
        "https://cloud.google.com/kubernetes-engine/pricing",
    ),
    # $0.020 per GB-month spread over HOURS_PER_MONTH. Read from stored copies of the page, not live; a public
    # transcription of the current page quotes $0.000027397 per GiB-hour (= 0.020 / 730), so GB means GiB.
    "gcs/standard/us-central1": TablePrice(
        0.020 / HOURS_PER_MONTH,
        "USD",
        "GiB",
        "Cloud Storage pricing, Standard storage in Iowa (us-central1), $0.020 per GiB-month",
        "2026-11-21",
        "https://cloud.google.com/storage/pricing",
    ),
}


@dataclass(frozen=True)
class Price:
    """The hourly price of one unit, or None with the reason it is unknown."""

    hourly: Optional[float]
    currency: Optional[str]
    source: str  # "live: ...", "table: <name, date, url>" or "unknown"
    reason: str = ""

    @staticmethod
    def unknown(reason: str) -> Price:
        return Price(None, None, "unknown", reason)

    @staticmethod
    def from_table(key: str, missing: str, table: Mapping[str, TablePrice] = PRICE_TABLE) -> Price:
        """The table's price for `key`, or unknown with `missing` as the reason."""
        found = table.get(key)
        if found is None:
            return Price.unknown(missing)
        return Price(found.hourly, found.currency, found.label(), f"per {found.unit}-hour")


# Items a user can price in config (cost.prices: a map of key to price per unit-hour, in cost.currency).
# An override replaces the live or table price: it is what the account actually pays (discounts, contracts).
PRICE_KEYS: Mapping[str, str] = {
    "gpu-host": "the ecs target's GPU instance with its system disk, per instance-hour",
    "gpu-node": "an ack GPU node, per node-hour (the estimate counts the pool's minimum)",
    "system-node": "an ack/ack-edge system node, per node-hour",
    "ack-cluster": "the ACK Pro / ACK Edge Pro cluster management fee, per hour",
    "virtual-gpu-pod": "an ack-edge cloud (ECI/ACS) serving pod, per pod-hour",
    "acs-gpu": "ACS GPU pod capacity, per GPU-hour (CPU and memory included)",
    "acs-cluster": "the ACS cluster itself, per hour",
    "nat-gateway": "the NAT gateway, per hour",
    "nat-eip": "one of the NAT gateway's EIPs, per hour (one per 200 Mbit/s of network.natBandwidthMbps)",
    "nat-bandwidth": "the shared bandwidth package of the NAT's EIPs (natBilling bandwidth above 200 Mbit/s), per hour",
    "private-lb": "the private API load balancer, per hour",
    "public-lb": "the public API load balancer, per hour",
    "model-bucket": "the OSS model bucket, per hour (storage spread over the month)",
    "jump-host": "the jump host with its system disk, per hour",
    "prepared-image": "the ecs prepared image's snapshots (about 45 GB), per hour (storage spread over the month)",
    "public-traffic": "public traffic, per hour (your expected volume)",
    **{
        f"gke.{m.name}": f"a gke GPU node ({m.name}, {m.gpu_count} x {m.gpu}), per node-hour"
        for m in GKE_MACHINES.values()
    },
    "gke.system-node": "a gke system node (components.gcp.gke_cluster's machine type), per node-hour",
    "gke.cluster": "the GKE cluster management fee, per cluster-hour",
    "gcp.nat": "the gke Cloud NAT gateway with its processed data, per hour (your expected volume)",
    "gcp.lb": "a gke Service's passthrough Network Load Balancer (internal or external), per load balancer-hour",
    "gcs.gib-month": "GCS storage of the gke model bucket, per GiB-month (spread over 730 hours)",
}
# The targets whose costEstimate has an item of each key (stacks/alibaba/cost.py, stacks/gcp/cost.py), some only in
# some configurations (public-lb with access.public, prepared-image with ecs.preparedImage.build, ...). A price for a
# key its target never has would change nothing: core.config refuses it. kubernetes has no estimate.
_ALIBABA_NAT = (ECS, ACS, ACK, ACK_EDGE)
_CLUSTER_EXTRAS = (ACS, ACK, ACK_EDGE)
PRICE_KEY_TARGETS: Mapping[str, tuple[str, ...]] = {
    "gpu-host": (ECS,),
    "prepared-image": (ECS,),
    "gpu-node": (ACK,),
    "system-node": ACK_FAMILY,
    "ack-cluster": ACK_FAMILY,
    "virtual-gpu-pod": (ACK_EDGE,),
    "acs-gpu": (ACS,),
    "acs-cluster": (ACS,),
    "jump-host": (ACS,),
    "nat-gateway": _ALIBABA_NAT,
    "nat-eip": _ALIBABA_NAT,
    "nat-bandwidth": _ALIBABA_NAT,
    "private-lb": _CLUSTER_EXTRAS,
    "public-lb": _CLUSTER_EXTRAS,
    "model-bucket": (ECS, *_CLUSTER_EXTRAS),  # ecs: with ecs.weights.source import
    "public-traffic": (ECS, ACS),  # a public ecs host; the acs jump host with SSH
    **{key: (GKE,) for key in PRICE_KEYS if key.startswith(("gke.", "gcp.", "gcs."))},
}
# Keys priced per month rather than per hour: an override is divided by HOURS_PER_MONTH.
MONTHLY_KEYS = frozenset({"gcs.gib-month"})


@dataclass(frozen=True)
class Item:
    resource: str
    quantity: float
    price: Price
    key: str = ""  # one of PRICE_KEYS: lets cost.prices set its price

    @property
    def hourly(self) -> Optional[float]:
        return None if self.price.hourly is None else self.quantity * self.price.hourly


def monthly(hourly: Optional[float]) -> Optional[float]:
    return None if hourly is None else hourly * HOURS_PER_MONTH


def estimate(
    items: Sequence[Item],
    overrides: Optional[Mapping[str, float]] = None,
    override_currency: str = "CNY",
    currency: Optional[str] = None,
) -> dict:
    """The `costEstimate` stack output for `items` (JSON-ready: numbers, strings, lists, nulls).

    `currency` fixes the estimate's currency (prices in any other become unknown); None: the first known price's.
    """
    items = [_overridden(i, overrides or {}, override_currency) for i in items]
    currency = currency or next((i.price.currency for i in items if i.price.hourly is not None), None)
    items = [_in_currency(i, currency) for i in items]
    known = [i.hourly for i in items if i.hourly is not None]
    unknown = [i.resource for i in items if i.hourly is None]
    known_part = sum(known) if known else None
    hourly = None if unknown else (known_part or 0.0)  # no items at all costs nothing
    return {
        "currency": currency,
        "hourly": _round(hourly, 4),
        "monthly": _round(monthly(hourly), 2),
        "hoursPerMonth": HOURS_PER_MONTH,
        "hourlyKnownPart": _round(known_part, 4),
        "items": [_item_output(i) for i in items],
        "unknown": unknown,
    }


def _overridden(item: Item, overrides: Mapping[str, float], currency: str) -> Item:
    if item.key not in overrides:
        return item
    if item.key in MONTHLY_KEYS:
        price = Price(
            overrides[item.key] / HOURS_PER_MONTH,
            currency,
            "config: cost.prices",
            f"{overrides[item.key]} per month / {HOURS_PER_MONTH} hours",
        )
    else:
        price = Price(overrides[item.key], currency, "config: cost.prices")
    return Item(item.resource, item.quantity, price, item.key)


def _in_currency(item: Item, currency: Optional[str]) -> Item:
    """Prices in another currency are not converted (no rate is known here): they become unknown."""
    price = item.price
    if price.hourly is None or price.currency == currency:
        return item
    return Item(
        item.resource,
        item.quantity,
        Price.unknown(f"priced {price.hourly} {price.currency}/h ({price.source}); the estimate is in {currency}"),
        item.key,
    )


def _item_output(item: Item) -> dict:
    # 8 digits: a per-GiB storage price is a few millionths per hour.
    out = {
        "resource": item.resource,
        "quantity": item.quantity,
        "unitHourly": _round(item.price.hourly, 8),
        "hourly": _round(item.hourly, 4),
        "source": item.price.source,
    }
    if item.price.reason:
        out["note"] = item.price.reason
    return out


def _round(value: Optional[float], digits: int) -> Optional[float]:
    return None if value is None else round(value, digits)
