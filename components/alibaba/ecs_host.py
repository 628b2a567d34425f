"""The ECS instance shape every host of this program shares (GPU server, jump host, short-lived workers)."""

from __future__ import annotations

import base64
from collections.abc import Mapping, Sequence
from typing import Optional

import pulumi
import pulumi_alicloud as alicloud


def linux_host(
    name: str,
    parent: pulumi.Resource,
    *,
    instance_type: str,
    image_id: pulumi.Input[str],
    vswitch_id: pulumi.Input[str],
    security_group_id: pulumi.Input[str],
    user_data: pulumi.Input[str],
    disk_category: str,
    disk_gib: int,
    public_bandwidth_mbps: int,
    key_pair: Optional[str],
    tags: Mapping[str, str],
    deletion_protection: bool = False,
    timeouts: Optional[pulumi.CustomTimeouts] = None,
    depends_on: Sequence[pulumi.Resource] = (),
    stops_itself: bool = False,
) -> alicloud.ecs.Instance:
    """Pay-as-you-go, public address only with bandwidth, replaced when its user-data changes. `stops_itself`: a
    worker that stops itself when done (its status is then not drift)."""
    return alicloud.ecs.Instance(
        f"{name}-instance",
        instance_name=name,
        host_name=name,
        instance_type=instance_type,
        image_id=image_id,
        vswitch_id=vswitch_id,
        security_groups=[security_group_id],
        instance_charge_type="PostPaid",
        system_disk_category=disk_category,
        system_disk_size=disk_gib,
        internet_charge_type="PayByTraffic",
        internet_max_bandwidth_out=public_bandwidth_mbps,
        key_name=key_pair,
        user_data=pulumi.Output.from_input(user_data).apply(lambda text: base64.b64encode(text.encode()).decode()),
        # IMDSv2 stays optional: Cloud Assistant reads the instance role's credentials (for {{oos-secret:...}})
        # with a tokenless GET in every public agent version (aliyun_assist_client agent/util/paramstore.go at
        # 028f1de), and whether the agents on current images send the token is not known
        # (docs/limitations.md). Enforcing it would fail every readiness command.
        http_tokens="optional",
        deletion_protection=deletion_protection,
        tags=dict(tags),
        opts=pulumi.ResourceOptions(
            parent=parent,
            protect=deletion_protection,
            depends_on=list(depends_on),
            # The image lookup moves to newer builds over time; that must not replace a host.
            ignore_changes=["image_id", *(["status"] if stops_itself else [])],
            # cloud-init runs user-data once per instance, so new settings need a new host; Pulumi creates
            # it before deleting the old one, which serves until then. A protected host must be
            # unprotected first.
            replace_on_changes=["user_data"],
            custom_timeouts=timeouts,
        ),
    )
