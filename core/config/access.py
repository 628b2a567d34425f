"""`access`: who may reach the API (private by default; public only from listed CIDRs), the API port, and SSH."""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from typing import Annotated, Literal, Optional

from core.config.problems import Problems
from core.config.schema import DNS_SUBDOMAIN, Cidr, Flag, Group, Int, matches, option, within
from core.config.secret import SecretStr
from core.gateway import ENGINE_LOOPBACK_PORT, METRICS_PORT
from core.targets import ACS, ECS, KUBERNETES, MANAGED_ALIBABA

# ECS key pair names: 2-128 characters, starting with a letter (ECS CreateKeyPair API).
KEY_PAIR = r"[A-Za-z][A-Za-z0-9._:-]{1,127}"


# TLS sources, by where the certificate comes from and where TLS ends:
# - pem: the stack's own certificate (tlsCertificate) and private key (tlsKey, a Pulumi secret), terminated at the
#   gateway on every target; the key reaches it like the API key (a Kubernetes Secret volume, an OOS encrypted
#   parameter on ecs), never in a ConfigMap, user-data or command text.
# - alibaba-cas: a certificate already in Alibaba Cloud (Certificate Management Service, as the CLB lists it),
#   terminated by the public CLB's HTTPS listener (CCM annotations protocol-port "https:<port>" and cert-id;
#   kubernetes/cloud-provider-alibaba-cloud, its usage guide: "HTTPS requests are decrypted at the SLB and sent to the
#   pods as HTTP"; ACK help "Configure a CLB instance by using annotations", doc 86531). acs, ack, ack-edge.
# - cert-manager: a Certificate (cert-manager.io/v1) from an issuer the user names, on an existing cluster where
#   cert-manager runs; its Secret (tls.crt, tls.key) is mounted into the gateway.
# Google-managed certificates are not offered on gke: they attach to Google's proxy load balancers (Certificate
# Manager maps, Gateway API gke-l7-*), while the stack's Service is a passthrough network load balancer that
# cannot hold a certificate (GKE "LoadBalancer Service concepts"); use pem there. See docs/security.md.
TLS_SOURCES = ("none", "pem", "alibaba-cas", "cert-manager")
# The CLB's certificate id: letters, digits, '-', '_' and '.' (the CCM passes it through; its exact format is not
# documented here, ids seen in Alibaba's examples look like 1234567890_18b2e7c0a1f_-1227033245).
CLB_CERT_ID = r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}"
PEM_CERTIFICATE = re.compile(r"\s*(-----BEGIN CERTIFICATE-----\r?\n[A-Za-z0-9+/=\r\n]+-----END CERTIFICATE-----\s*)+")
PEM_KEY = re.compile(
    r"\s*-----BEGIN (?P<kind>(?:EC |RSA |ENCRYPTED )?PRIVATE KEY)-----\r?\n[A-Za-z0-9+/=\r\n]+"
    r"-----END (?P=kind)-----\s*"
)
# OOS encrypted parameters hold at most 4096 characters (pulumi_alicloud oos/secret_parameter.py: value "1 to 4096
# characters"): an EC or RSA-2048 key fits, an RSA-4096 key (about 3.2 KB) too.
OOS_SECRET_MAX_CHARS = 4096
ISSUER_NAME = DNS_SUBDOMAIN


class TlsConfig(Group):
    """HTTPS on the public endpoint: where the certificate comes from (docs/security.md)."""

    source: Literal["none", "pem", "alibaba-cas", "cert-manager"] = option(
        "none",
        "none: no TLS (a public endpoint then needs allowPlainHttp); pem: llm:tlsCertificate and llm:tlsKey "
        "(secret), served by the gateway; alibaba-cas: a certificate id on the public CLB (acs, ack, ack-edge); "
        "cert-manager: a Certificate from an issuer (kubernetes).",
    )
    certificate_id: Optional[Annotated[str, matches(CLB_CERT_ID, "a CLB certificate id (letters, digits, _ . -)")]] = (
        option(
            None,
            "source alibaba-cas: the certificate's id as the CLB console lists it.",
            targets=MANAGED_ALIBABA,
            example="1234567890_18b2e7c0a1f_-1227033245",
        )
    )
    issuer: Optional[Annotated[str, matches(ISSUER_NAME, "a cert-manager issuer name (a DNS subdomain)")]] = option(
        None, "source cert-manager: the issuer's name.", targets=(KUBERNETES,), example="letsencrypt"
    )
    issuer_kind: Literal["ClusterIssuer", "Issuer"] = option(
        "ClusterIssuer",
        "source cert-manager: ClusterIssuer, or an Issuer in the serving namespace.",
        targets=(KUBERNETES,),
    )
    hostname: Optional[Annotated[str, matches(DNS_SUBDOMAIN, "a lowercase DNS name like api.example.com")]] = option(
        None,
        "The DNS name clients use, which the certificate names (point it at the public address); the client "
        "outputs use it. Required with source cert-manager; empty: the outputs use the address.",
        example="llm.example.com",
    )


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
    tls: TlsConfig = option(TlsConfig(), "HTTPS on the public endpoint.")
    allow_plain_http: Flag = option(
        False,
        "Serve the public endpoint over plain HTTP (the bearer key and every prompt cross the internet in clear); "
        "a warning is logged on every update.",
    )
    ssh_cidrs: tuple[Cidr, ...] = option(
        (),
        "CIDRs allowed to SSH to the host (ecs) or jump host (acs); empty: SSH closed.",
        targets=(ECS, ACS),
        example=["198.51.100.0/24"],
    )
    ssh_key_pair: Optional[Annotated[str, matches(KEY_PAIR, "an ECS key pair name (2-128 characters)")]] = option(
        None, "Existing ECS key pair for SSH; required when sshCidrs is set.", targets=(ECS, ACS), example="my-key"
    )


@dataclass(frozen=True)
class Tls:
    """HTTPS on the public endpoint, as resolved: the source and what it needs."""

    source: str  # one of TLS_SOURCES other than "none"
    certificate: Optional[SecretStr] = None  # pem: the chain (PEM)
    key: Optional[SecretStr] = None  # pem: the private key (PEM), a Pulumi secret
    certificate_id: Optional[str] = None  # alibaba-cas
    issuer: Optional[str] = None  # cert-manager
    issuer_kind: str = "ClusterIssuer"
    hostname: Optional[str] = None  # cert-manager

    @property
    def at_gateway(self) -> bool:
        """The gateway itself speaks TLS (pem, cert-manager); alibaba-cas ends TLS at the load balancer."""
        return self.source in ("pem", "cert-manager")


def resolve_tls(
    config: AccessConfig,
    target: str,
    certificate: Optional[str],
    key: Optional[str],
    problems: Problems,
) -> Optional[Tls]:
    """access.tls with llm:tlsCertificate / llm:tlsKey: None without TLS. A public endpoint needs TLS unless
    access.allowPlainHttp says otherwise; private endpoints stay HTTP inside the VPC or cluster."""
    tls = config.tls
    given = [name for name, value in (("tlsCertificate", certificate), ("tlsKey", key)) if value]
    if tls.source != "pem":
        for name in given:
            problems.add(
                name,
                "****",
                "is only read with access.tls.source pem",
                problems.set_command("access.tls.source", "pem"),
            )
    if tls.source == "none":
        if config.public and not config.allow_plain_http:
            problems.add(
                "access.tls.source",
                "none",
                "a public endpoint serves HTTPS only (the API key travels in every request); name a certificate, "
                "or allow plain HTTP explicitly",
                f"{problems.set_command('access.tls.source', 'pem')} with {problems.qualified('tlsCertificate')} and "
                f"{problems.qualified('tlsKey')} (secret)"
                + (
                    f", or {problems.set_command('access.tls.source', 'alibaba-cas')}"
                    if target in MANAGED_ALIBABA
                    else ""
                )
                + (f", or {problems.set_command('access.tls.source', 'cert-manager')}" if target == KUBERNETES else "")
                + f"; or {problems.set_command('access.allowPlainHttp', True)} (not recommended)",
            )
        return None
    if not config.public:
        problems.add(
            "access.tls.source",
            tls.source,
            "applies to the public endpoint (access.public true); private endpoints serve plain HTTP inside the VPC "
            "or cluster (docs/security.md)",
            problems.set_command("access.tls.source", "none"),
        )
        return None
    if config.allow_plain_http:
        problems.add(
            "access.allowPlainHttp",
            True,
            f"contradicts access.tls.source {tls.source}: the public endpoint serves HTTPS only",
            problems.rm_command("access.allowPlainHttp"),
        )
    if tls.source == "alibaba-cas":
        if target not in MANAGED_ALIBABA:
            problems.add(
                "access.tls.source",
                tls.source,
                f"needs a load balancer that holds the certificate: acs, ack or ack-edge, not {target}",
                problems.set_command("access.tls.source", "pem"),
            )
        elif not tls.certificate_id:
            problems.add(
                "access.tls.certificateId",
                None,
                "is required with source alibaba-cas",
                problems.set_command("access.tls.certificateId", "<CLB certificate id>"),
            )
        return Tls(source=tls.source, certificate_id=tls.certificate_id, hostname=tls.hostname)
    if tls.source == "cert-manager":
        if target != KUBERNETES:
            problems.add(
                "access.tls.source",
                tls.source,
                f"is for an existing cluster running cert-manager (target kubernetes), not {target}",
                problems.set_command("access.tls.source", "pem"),
            )
        for name, value, example in (
            ("issuer", tls.issuer, "letsencrypt"),
            ("hostname", tls.hostname, "llm.example.com"),
        ):
            if not value:
                problems.add(
                    f"access.tls.{name}",
                    None,
                    "is required with source cert-manager",
                    problems.set_command(f"access.tls.{name}", example),
                )
        return Tls(source=tls.source, issuer=tls.issuer, issuer_kind=tls.issuer_kind, hostname=tls.hostname)
    # pem
    if not certificate or not PEM_CERTIFICATE.fullmatch(certificate):
        problems.add(
            "tlsCertificate",
            None if not certificate else "****",
            "must be the server certificate then its intermediates, PEM (-----BEGIN CERTIFICATE----- ...)",
            f'pulumi config set --secret {problems.qualified("tlsCertificate")} -- "$(cat fullchain.pem)"',
        )
    if not key or not PEM_KEY.fullmatch(key):
        problems.add(
            "tlsKey",
            None if not key else "****",
            "must be the certificate's private key, PEM (-----BEGIN PRIVATE KEY----- ...)",
            f'pulumi config set --secret {problems.qualified("tlsKey")} -- "$(cat privkey.pem)"',
        )
    elif "ENCRYPTED" in key:
        problems.add(
            "tlsKey",
            "****",
            "must not be encrypted (nginx has no passphrase to open it)",
            "openssl pkey -in key.pem -out plain.pem",
        )
    elif target == ECS and len(key) > OOS_SECRET_MAX_CHARS:
        problems.add(
            "tlsKey",
            "****",
            f"is {len(key)} characters; ecs delivers it as an OOS encrypted parameter of at most "
            f"{OOS_SECRET_MAX_CHARS}",
            "use an EC (P-256) or RSA-2048/3072 key",
        )
    return Tls(
        source="pem",
        certificate=SecretStr(certificate) if certificate else None,
        key=SecretStr(key) if key else None,
        hostname=tls.hostname,
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
