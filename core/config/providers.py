"""The cloud providers' standard keys: alicloud:region (Alibaba targets), gcp:project / gcp:region / gcp:zone
(gke), kubernetes:kubeconfig / kubernetes:context (existing clusters).

The program builds its explicit providers from these, so profiles, assume-role, OIDC and impersonation work
as the providers document them; it only checks what it relies on itself (the region is the target's cloud's,
the project id is well formed, a kubeconfig's content is a secret).
"""

from __future__ import annotations

import re
from typing import Optional

from core.config.gke import DEFAULT_REGION, GCP_PROJECT, GCP_REGION, GCP_ZONE
from core.config.problems import Problems
from core.config.settings import ProviderConfig
from core.config.source import ConfigValues

# Alibaba Cloud regions: cn-hangzhou, ap-southeast-1, us-west-1, cn-beijing-finance-1 (no digit glued to a word,
# which is how Google's us-west1 differs from Alibaba's us-west-1).
ALIBABA_REGION = r"[a-z]{2}-[a-z]+(-[a-z0-9]+)*"


def provider_config(values: ConfigValues, namespace: str) -> ProviderConfig:
    secret = frozenset(k.split(":", 1)[1] for k in values.provider_secrets if k.startswith(f"{namespace}:"))
    return ProviderConfig(namespace, dict(values.provider(namespace)), secret)


def alibaba_region(values: ConfigValues, problems: Problems) -> Optional[str]:
    region = values.provider("alicloud").get("region")
    fix = "pulumi config set alicloud:region cn-hangzhou"
    if not region:
        problems.add(
            "alicloud:region", None, "is required for Alibaba Cloud targets (the provider's standard key)", fix
        )
        return None
    if not isinstance(region, str) or re.fullmatch(GCP_REGION, region):
        problems.add(
            "alicloud:region",
            region,
            "is a Google Cloud region; Alibaba Cloud regions look like cn-hangzhou or us-west-1",
            fix,
        )
        return None
    if not re.fullmatch(ALIBABA_REGION, region):
        problems.add("alicloud:region", region, "must be an Alibaba Cloud region id like cn-hangzhou", fix)
        return None
    return region


def gcp_location(values: ConfigValues, problems: Problems) -> tuple[str, str, str]:
    """gke: (project, region, zone) from gcp:project, gcp:region (default us-central1) and gcp:zone."""
    gcp = values.provider("gcp")
    project, region, zone = gcp.get("project") or "", gcp.get("region") or DEFAULT_REGION, gcp.get("zone") or ""
    if not project:
        problems.add("gcp:project", None, "is required for target gke", "pulumi config set gcp:project <project id>")
    elif not re.fullmatch(GCP_PROJECT, str(project)):
        problems.add(
            "gcp:project",
            project,
            "must be a project id: 6-30 lowercase letters, digits and '-'",
            "pulumi config set gcp:project my-project (gcloud projects list)",
        )
    if re.fullmatch(ALIBABA_REGION, str(region)) and not re.fullmatch(GCP_REGION, str(region)):
        problems.add(
            "gcp:region",
            region,
            "is an Alibaba Cloud region; Google Cloud regions look like us-central1",
            "pulumi config set gcp:region us-central1",
        )
    elif not re.fullmatch(GCP_REGION, str(region)):
        problems.add(
            "gcp:region",
            region,
            "must be a Google Cloud region like us-central1",
            "pulumi config set gcp:region us-central1",
        )
    if not re.fullmatch(GCP_ZONE, str(zone)) or not str(zone).startswith(f"{region}-"):
        problems.add(
            "gcp:zone",
            zone or None,
            f"gke needs the zone of the GPU nodes, inside gcp:region {region}",
            f"pulumi config set gcp:zone {region}-b (a zone with A4 capacity or your reservation)",
        )
    return str(project), str(region), str(zone)


def check_kubeconfig(values: ConfigValues, problems: Problems) -> None:
    """kubernetes:kubeconfig holding a kubeconfig's content (not a path) must be a secret."""
    kubeconfig = values.provider("kubernetes").get("kubeconfig")
    if (
        isinstance(kubeconfig, (str, dict))
        and "apiVersion" in str(kubeconfig)
        and "kubernetes:kubeconfig" not in values.provider_secrets
    ):
        problems.add(
            "kubernetes:kubeconfig",
            "****",
            "holds a kubeconfig in plaintext in the stack config",
            "pulumi config rm kubernetes:kubeconfig && pulumi config set --secret kubernetes:kubeconfig "
            '"$(cat kubeconfig)" (or give a file path instead)',
        )
