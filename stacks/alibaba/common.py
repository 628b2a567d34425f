"""What every Alibaba Cloud target needs: the stack's tags and the public OS image lookup."""
from __future__ import annotations

import pulumi
import pulumi_alicloud as alicloud

from core.errors import ConfigError, Problem
from core.settings import Settings


def stack_tags(settings: Settings) -> dict[str, str]:
    return {"app": "llm-serving", "stack": settings.stack, **settings.tags}


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
