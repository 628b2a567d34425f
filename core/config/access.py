"""`access`: who may reach the API (private by default; public only from listed CIDRs), the API port, and SSH."""

from __future__ import annotations

import ipaddress
from typing import Annotated, Optional

from core.config.problems import Problems
from core.config.schema import Cidr, Flag, Group, Int, matches, option, within
from core.gateway import ENGINE_LOOPBACK_PORT, METRICS_PORT
from core.targets import ACS, ECS

# ECS key pair names: 2-128 characters, starting with a letter (ECS CreateKeyPair API).
KEY_PAIR = r"[A-Za-z][A-Za-z0-9._:-]{1,127}"


class AccessConfig(Group):
    """The API's reach, its port, and SSH to the hosts."""

    public: Flag = option(False, "Expose the API on a public address (the API port only, from allowedCidrs only).")
    allowed_cidrs: tuple[Cidr, ...] = option(
        (), "CIDRs allowed to reach the public API; required when public is true.", example=["203.0.113.0/24"]
    )
    # ECS instance internet_max_bandwidth_out: [0, 100] Mbit/s (pulumi_alicloud ecs/instance.py docstring).
    public_bandwidth_mbps: Annotated[Int, within(1, 100, "Mbit/s")] = option(
        100, "Public bandwidth of the GPU host when public is true (pay-by-traffic).", targets=(ECS,)
    )
    api_port: Annotated[Int, within(1, 65535, "(a TCP port)")] = option(8000, "Port of the OpenAI-compatible API.")
    ssh_cidrs: tuple[Cidr, ...] = option(
        (),
        "CIDRs allowed to SSH to the host (ecs) or jump host (acs); empty: SSH closed.",
        targets=(ECS, ACS),
        example=["198.51.100.0/24"],
    )
    ssh_key_pair: Optional[Annotated[str, matches(KEY_PAIR, "an ECS key pair name (2-128 characters)")]] = option(
        None, "Existing ECS key pair for SSH; required when sshCidrs is set.", targets=(ECS, ACS), example="my-key"
    )


def check_access(config: AccessConfig, problems: Problems) -> None:
    """Rules that span the access keys."""
    if config.public and not config.allowed_cidrs:
        problems.add(
            "access.allowedCidrs",
            [],
            "must list the CIDRs allowed to reach the public API when public is true",
            problems.set_command("access.allowedCidrs[0]", "203.0.113.0/24"),
        )
    for index, cidr in enumerate(config.ssh_cidrs):
        if ipaddress.ip_network(cidr).prefixlen == 0:
            problems.add(
                f"access.sshCidrs[{index}]",
                cidr,
                "SSH may not be opened to the whole internet",
                "list your office or VPN range instead, or use Cloud Assistant / Workbench without SSH",
            )
    if config.ssh_cidrs and not config.ssh_key_pair:
        problems.add(
            "access.sshKeyPair",
            None,
            "is required when sshCidrs opens SSH (password login is disabled)",
            problems.set_command("access.sshKeyPair", "<existing ECS key pair name>"),
        )
    if config.api_port == 22:
        problems.add("access.apiPort", 22, "is SSH's port", problems.set_command("access.apiPort", 8000))
    if config.api_port in (ENGINE_LOOPBACK_PORT, METRICS_PORT):
        problems.add(
            "access.apiPort",
            config.api_port,
            f"is taken: the engine listens on {ENGINE_LOOPBACK_PORT} "
            f"(loopback, behind the gateway) and the metrics on {METRICS_PORT}",
            problems.set_command("access.apiPort", 8000),
        )
