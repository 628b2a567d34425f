"""The engine image near the GPUs: a copy in the user's ACR Enterprise Edition instance, made at t=0.

The EGS registry (the mainland default) has no VPC address for other accounts (alibaba-facts.md section 12), so
without a mirror every GPU pod pulls the ~12 GB engine image through the stack's NAT, after its node exists. ACS's
image-cache page gives the way out: push the image to your own ACR Enterprise Edition instance in the region and
pull it by its VPC address. ACR EE is bought by subscription only (pulumi_alicloud cr/registry_enterprise_instance.py
`payment_type`: Subscription), which `pulumi destroy` cannot end, so the program takes an instance you have
(engine.mirror) and adds to it only what it removes again:

- a repository of this stack in your namespace (cs.RegistryEnterpriseRepo), tags immutable, type PUBLIC: the pods
  pull it without a secret. It holds the public engine image only, and it is reachable only from networks the
  instance's access control admits (the VPCs linked to it, and its internet endpoint if you enabled that). That a
  PUBLIC repository of an Enterprise instance admits anonymous pulls is ACR's documented repository type; it was
  not tried here. Destroy deletes the repository and its images;
- the link of the stack's VPC to the instance's VPC endpoint (cr.VpcEndpointLinkedVpc, module Registry), with the
  PrivateZone record that resolves `<name>-registry-vpc.<region>.cr.aliyuncs.com` inside the VPC;
- one worker, like the model import's (components/alibaba/model_import_workers.py): a small pay-as-you-go ECS
  instance that starts with the network, beside the cluster, runs components/scripts/llm-image-mirror.py by Cloud
  Assistant (`skopeo copy` of the linux/amd64 image through the NAT, once per deploy), then stops itself
  (StopCharging). Its RAM role may get a registry token (cr:GetAuthorizationToken, whose resource is `*`:
  ACR "RAM authentication rules", doc-detail/144948), push and pull this repository only, and stop itself.

The serving workload waits for the invocation, so its pods pull a complete copy over the VPC.
"""

from __future__ import annotations

import hashlib
import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Optional

import pulumi
import pulumi_alicloud as alicloud

from components.alibaba.cloud_assistant_worker import STOP_AFTER_SECONDS, check_timeout, run_on_worker, worker_api_file
from components.alibaba.host_scripts import PIP_INDEX_URL, write_file
from components.shipped_scripts import body, script
from core import versions

WORKER_SCRIPT = "llm-image-mirror.py"
DISK_GIB = 40  # OS, packages, skopeo's blobs in flight (it streams layer by layer)
# Actions on the repository: push the copy, read it back for the check (ACR "RAM authentication rules").
REPOSITORY_ACTIONS = ("cr:PushRepository", "cr:PullRepository")


@dataclass(frozen=True)
class ImageMirrorArgs:
    region: str
    instance_id: str  # the ACR Enterprise Edition instance
    registry: str  # its VPC domain
    namespace: str
    repository: str  # created here
    tag: str
    source: str  # the engine image copied from
    vpc_id: pulumi.Input[str]
    vswitch_id: pulumi.Input[str]
    security_group_id: pulumi.Input[str]
    instance_type: str
    image_id: pulumi.Input[str]
    timeout_minutes: int  # the worker's command (and Pulumi's wait for it)
    depends_on: Sequence[pulumi.Resource] = ()  # the NAT's SNAT entries: the source registry is on the internet
    tags: Mapping[str, str] = field(default_factory=dict)

    @property
    def destination(self) -> str:
        return f"{self.registry}/{self.namespace}/{self.repository}:{self.tag}"


def render_setup(fingerprint: str) -> str:
    """User-data: skopeo, the pinned SDK core and the worker script; no secret."""
    header = "\n".join(
        [
            "#!/bin/bash",
            f"# mirror: {fingerprint}",  # replaces the worker when what it does changes
            f"PIP_INDEX_URL={shlex.quote(PIP_INDEX_URL)}",
            f"ACS_CORE_VERSION={shlex.quote(versions.ALIYUN_SDK_CORE.value)}",
            "",
        ]
    )
    return (
        header
        + worker_api_file()
        + write_file("/usr/local/bin/llm-image-mirror", script(WORKER_SCRIPT), "0755")
        + body("image-mirror-setup.sh")
    )


def render_command(args: ImageMirrorArgs, timeout_seconds: int) -> str:
    header = "\n".join(
        [
            "#!/bin/bash",
            f"SOURCE={shlex.quote(args.source)}",
            f"DESTINATION={shlex.quote(args.destination)}",
            f"INSTANCE_ID={shlex.quote(args.instance_id)}",
            f"REGION={shlex.quote(args.region)}",
            f"TIMEOUT_SECONDS={int(timeout_seconds)}",
            f"STOP_AFTER_SECONDS={STOP_AFTER_SECONDS}",
            "",
        ]
    )
    return header + body("image-mirror-worker.sh")


def worker_statements(args: ImageMirrorArgs, account: str, worker_id: str) -> list[dict]:
    """A registry token, this stack's repository only, and stopping this instance only."""
    return [
        {"Effect": "Allow", "Action": ["cr:GetAuthorizationToken"], "Resource": ["*"]},
        {
            "Effect": "Allow",
            "Action": list(REPOSITORY_ACTIONS),
            "Resource": [
                f"acs:cr:{args.region}:{account}:repository/{args.instance_id}/{args.namespace}/{args.repository}"
            ],
        },
        {
            "Effect": "Allow",
            "Action": ["ecs:StopInstance"],
            "Resource": [f"acs:ecs:{args.region}:{account}:instance/{worker_id}"],
        },
    ]


class ImageMirror(pulumi.ComponentResource):
    invocation: alicloud.ecs.EcsInvocation  # what the serving workload waits for
    image: str  # what the serving pods pull
    instance_id: pulumi.Output[str]  # the worker
    repository: alicloud.cs.RegistryEnterpriseRepo
    link: alicloud.cr.VpcEndpointLinkedVpc

    def __init__(self, name: str, args: ImageMirrorArgs, opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__("llm:alibaba:ImageMirror", name, None, opts)
        check_timeout(args.timeout_minutes)  # before anything is added to your registry
        tags = {**args.tags, "component": "image-mirror"}
        child = pulumi.ResourceOptions(parent=self)
        repository = alicloud.cs.RegistryEnterpriseRepo(
            f"{name}-repository",
            instance_id=args.instance_id,
            namespace=args.namespace,
            name=args.repository,
            repo_type="PUBLIC",
            summary=f"Engine image of stack {name}, copied from {args.source.split('/', 1)[0]}"[:100],
            detail=f"Copy of {args.source} (linux/amd64), made by the stack's image mirror worker.",
            tag_immutability=True,
            opts=child,
        )
        link = alicloud.cr.VpcEndpointLinkedVpc(
            f"{name}-vpc-link",
            instance_id=args.instance_id,
            vpc_id=args.vpc_id,
            vswitch_id=args.vswitch_id,
            module_name="Registry",
            enable_create_dns_record_in_pvzt=True,
            opts=child,
        )
        timeout_seconds = args.timeout_minutes * 60
        command_text = render_command(args, timeout_seconds)
        fingerprint = hashlib.sha256((command_text + render_setup("")).encode()).hexdigest()[:16]
        worker = run_on_worker(
            f"{name}-copy",
            parent=self,
            instance_type=args.instance_type,
            image_id=args.image_id,
            vswitch_id=args.vswitch_id,
            security_group_id=args.security_group_id,
            disk_gib=DISK_GIB,
            setup=render_setup(fingerprint),
            statements=lambda account, worker_id: pulumi.Output.all(account, worker_id).apply(
                lambda v: worker_statements(args, v[0], v[1])
            ),
            role_description="Image mirror worker: push one repository of the stack's ACR instance, stop itself",
            command=command_text,
            command_description=f"Copy {args.source} into the stack's ACR repository",
            timeout_minutes=args.timeout_minutes,
            tags=tags,
            depends_on=args.depends_on,
            # The repository to push into, and the link (the worker pushes to the VPC domain, which resolves once
            # the link's record exists).
            command_after=[repository, link],
        )
        self.invocation = worker.invocation
        self.image = args.destination
        self.instance_id = worker.instance.id
        self.repository, self.link = repository, link
        self.register_outputs({"image": self.image, "worker": worker.instance.id})
