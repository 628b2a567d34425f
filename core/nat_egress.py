"""The NAT gateway's way out on Alibaba Cloud: how many EIPs carry `network.natBandwidthMbps`, how they are billed,
and what a download of several connections gets from them.

One EIP of an Internet NAT gateway's SNAT pool carries at most 200 Mbit/s, so above 200 Mbit/s the bandwidth is
spread over several EIPs that every SNAT entry lists, one EIP per 200 Mbit/s. Alibaba's "FAQ about SNAT"
(alibabacloud.com/help/doc-detail/187954.htm, 2023-08-23): "The maximum bandwidth of each EIP associated with a
standard NAT gateway cannot exceed 200 Mbit/s"; for 1,024 Mbit/s of shared bandwidth it asks for at least five EIPs
per SNAT entry, and for at most 64 EIPs per entry. That page says "standard"; whether that names the Enhanced type
this program creates could not be checked here, so the program follows the rule either way: it costs no
bandwidth, and with pay-by-traffic EIPs it is what makes more than 200 Mbit/s possible at all.

Without EIP affinity (the SNAT entry's default, CreateSnatEntry `EipAffinity` 0) "the client uses an EIP selected
from the associated EIPs" per connection, so one connection never gets more than one EIP's share, and a download
of a few connections over many EIPs may land two on the same one. `download_mbps` is the expected throughput.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

# Each EIP's bandwidth stays within its billing's range (pulumi_alicloud ecs/eip_address.py docstring: pay-by-traffic
# 1-200, pay-by-bandwidth 1-500), and five EIPs are far below the 64 an SNAT entry lists; tests/cloud_rules/alibaba.py
# holds the mock cloud to both.
PER_EIP_MAX_MBPS = 200  # an EIP of a NAT gateway's SNAT pool (FAQ about SNAT, above)
MAX_SHARED_BANDWIDTH_MBPS = 1000  # an Internet Shared Bandwidth package (vpc/common_bandwith_package.py: 1-1000)
MAX_NAT_MBPS = MAX_SHARED_BANDWIDTH_MBPS  # network.natBandwidthMbps: five EIPs at most


@dataclass(frozen=True)
class NatEips:
    """The NAT's EIPs: each one's Mbit/s (at most PER_EIP_MAX_MBPS, together the configured bandwidth), how they are
    billed, and whether an Internet Shared Bandwidth package of the whole bandwidth carries them."""

    bandwidths: tuple[int, ...]
    billing: str  # "traffic" or "bandwidth" (network.natBilling)
    shared: bool

    @property
    def count(self) -> int:
        return len(self.bandwidths)

    @property
    def total_mbps(self) -> int:
        return sum(self.bandwidths)

    @property
    def charge_type(self) -> str:
        return "PayByTraffic" if self.billing == "traffic" else "PayByBandwidth"


def nat_eips(mbps: int, billing: str) -> NatEips:
    """The EIPs for `mbps`: one per PER_EIP_MAX_MBPS, the bandwidth split evenly. Billed by traffic each EIP is billed
    per GB sent (inbound is free); billed by bandwidth, more than one EIP share one package of `mbps`, as the FAQ
    recommends, so the bill is for `mbps` once."""
    if not 1 <= mbps <= MAX_NAT_MBPS:
        raise ValueError(f"the NAT carries 1-{MAX_NAT_MBPS} Mbit/s, not {mbps}")
    if billing not in ("traffic", "bandwidth"):
        raise ValueError(f"network.natBilling is traffic or bandwidth, not {billing!r}")
    count = math.ceil(mbps / PER_EIP_MAX_MBPS)
    base, extra = divmod(mbps, count)
    bandwidths = tuple(base + 1 if i < extra else base for i in range(count))
    return NatEips(bandwidths, billing, shared=billing == "bandwidth" and count > 1)


def expected_eips_in_use(eips: int, connections: int) -> float:
    """How many of `eips` EIPs `connections` connections use, each picking one at random: eips * (1 - (1-1/eips)^c)."""
    if eips < 1 or connections < 1:
        raise ValueError(f"need at least one EIP and one connection, got {eips} and {connections}")
    return eips * (1 - (1 - 1 / eips) ** connections)


def download_mbps(mbps: float, connections: int) -> float:
    """What `connections` connections at once get through a NAT of `mbps` (expected): all of it from one EIP, else
    the EIPs they land on, each at its share. A link that is not a NAT pool (a host's own public bandwidth, at most
    100 Mbit/s) is one EIP's worth and gets `mbps`. Assumes the bytes spread over the connections; an image whose
    bytes sit in one layer pulls that layer at one EIP's share."""
    eips = max(1, math.ceil(mbps / PER_EIP_MAX_MBPS))
    if eips == 1:
        return mbps
    return min(mbps, mbps / eips * expected_eips_in_use(eips, connections))
