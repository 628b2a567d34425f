"""What every Alibaba Cloud target needs: the provider, the stack's tags and the public OS image lookup."""

from __future__ import annotations

import pulumi
import pulumi_alicloud as alicloud

from core.config import Settings
from core.config.problems import ConfigError, Problem
from stacks.providers import provider_args


def alibaba_provider(settings: Settings) -> alicloud.Provider:
    """The Alibaba Cloud provider from the stack's alicloud:* config (region, profile, assumeRole, ...)."""
    return alicloud.Provider(
        "alicloud", **provider_args(settings.provider, alicloud.ProviderArgs, region=settings.region)
    )


def stack_tags(settings: Settings) -> dict[str, str]:
    return {"app": "llm-serving", "stack": settings.stack, **settings.tags}


def ubuntu_image(
    settings: Settings, provider: alicloud.Provider, instance_type: str, uefi: bool = False, key: str = "ecs.imageId"
) -> str:
    """Newest Ubuntu 22.04 public image the instance type supports (UEFI builds for ebmgn8v)."""
    pattern = r"^ubuntu_22_04_uefi_x64" if uefi else r"^ubuntu_22_04_x64"
    found = alicloud.ecs.get_images(
        name_regex=pattern,
        owners="system",
        most_recent=True,
        os_type="linux",
        instance_type=instance_type,
        opts=pulumi.InvokeOptions(provider=provider),
    )
    if not found.images:
        raise ConfigError(
            [
                Problem(
                    key,
                    None,
                    f"no public image matching {pattern} supports {instance_type} in {settings.region}",
                    f"pulumi config set --path '{settings.namespace}:{key}' "
                    "<an Ubuntu 22.04 image id from the ECS console>",
                    settings.namespace,
                )
            ]
        )
    return found.images[0].id


def announce_import(importer, region: str, modelled_minutes: float) -> None:
    """Each import worker's invocation row says what it waits for, for how long as modelled, and how to follow it."""
    from components.alibaba.model_import_workers import progress_hint
    from stacks.progress import announce

    workers = len(importer.invocations)
    for worker, (invocation, instance_id) in enumerate(zip(importer.invocations, importer.instance_ids, strict=True)):
        announce(
            invocation,
            f"the model import, worker {worker + 1}/{workers}",
            modelled_minutes,
            instance_id.apply(lambda i: progress_hint(region, [i])),
            [instance_id],
        )
