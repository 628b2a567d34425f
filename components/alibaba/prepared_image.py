"""A prepared ECS image for the GPU hosts: the NVIDIA driver, Docker, the container toolkit and the engine and
gateway images already installed, built once with ECS Image Builder (docs/targets/ecs-prepared-image.md).

ECS Image Builder takes an image component (the commands), an image template (`EcsImagePipeline`: the base
image, the intermediate instance's network and disk, the component), and a build task started on the template.
What the provider does with each (aliyun/terraform-provider-alicloud at 81c43b67):
- `ecs.EcsImagePipeline` only creates the template (CreateImagePipeline): it never starts a build.
- `ecs.ImagePipelineExecution` starts one (StartImagePipelineExecution), but its create returns as soon as the
  task is PREPARING, BUILDING or SUCCESS (resource_alicloud_ecs_image_pipeline_execution.go: the state
  waiter's targets), it exposes no image id, and its delete does nothing ("Cannot destroy resource ...
  resources may remain").
So the image would be built after `pulumi up` ends, be unknown to the program, and bill after `pulumi destroy`.
`PreparedImageBuild` (a dynamic resource) closes both gaps: its create polls DescribeImagePipelineExecutions
for the task until SUCCESS and returns the task's ImageId (the API's ImagePipelineExecutionSet has ImageId,
Status, Message: Alibaba Cloud SDK models of DescribeImagePipelineExecutions), and its delete calls DeleteImage
(Force) and DeleteSnapshot for the image's snapshots unless the image is retained (`retain_on_delete`). It calls
the ECS API where Pulumi runs, as the alicloud provider's identity (the stack's credentials as a secret input, or
the provider's environment, or Alibaba's default chain: components/alibaba/deployer_credentials.py); without any
its create fails with the one command that shows the build (no image id, no cleanup otherwise).
The ECS calls go through Alibaba's OpenAPI SDK (alibabacloud-tea-openapi's generic RPC call, which signs them and
refreshes an expiring role's credentials during a long wait), so no signing code of our own.
The provider's class is defined inside `_provider()` and carries everything it runs (the ECS calls, the wait,
the deletion, and deployer_credentials' functions, themselves made inside a function) as its own static methods,
so dill pickles all of it by value: the dynamic provider's process imports pulumi, the standard library and
Alibaba's SDK, not this project (a module-level helper would be pickled by reference to this module). The
module's `follow_command`, `call`, `wait_for_image` and `delete_image` are those static methods;
tests/test_ecs_stack.py loads the pickled provider in an isolated interpreter.

The component runs one YAML task (`RunShellCommand`: ECS "Commands supported by Image Builder",
alibabacloud.com/help/en/ecs/user-guide/commands-supported-by-image-builder): the script of
components.alibaba.host_scripts.render_prepare_image. The intermediate instance has no GPU (Image Builder picks
the smallest type when none is given: ecs.EcsImagePipeline docstring); the driver is installed, not loaded.
Not run against a live account: the YAML task's time limit, whether the template's tags reach the image, and
the image's boot mode for UEFI-only types (ebmgn8v) are unverified.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Optional

import pulumi
import pulumi.dynamic as dynamic
import pulumi_alicloud as alicloud

from components.alibaba.deployer_credentials import access_key, credential_client

# CreateImageComponent / CreateImagePipeline: content at most 16 KB and 127 commands; the template's image name
# prefix 2-64 characters starting with a letter; system disk 20-500 GiB; public bandwidth 0-100 Mbit/s
# (pulumi_alicloud ecs/ecs_image_component.py and ecs/ecs_image_pipeline.py docstrings).
CONTENT_LIMIT_BYTES = 16 * 1024
MAX_BUILDER_BANDWIDTH_MBPS = 100
DONE = ("SUCCESS", "PARTITION_SUCCESS")  # PARTITION_SUCCESS: the image exists, copying/sharing/cleanup failed
FAILED = ("FAILED", "TEST_FAILED", "CANCELLING", "CANCELLED")
POLL_SECONDS = 30


@dataclass(frozen=True)
class PreparedImageArgs:
    region: str
    base_image_id: str  # the public Ubuntu image the hosts start from otherwise
    build_script: str  # host_scripts.render_prepare_image
    vswitch_id: pulumi.Input[str]
    internet_bandwidth_mbps: int  # 0 behind the NAT; the intermediate instance's own bandwidth otherwise
    disk_gib: int
    wait_minutes: int  # how long the build may take (core.durations.prepared_image_build x margin)
    retain: bool = False  # keep the image on destroy
    tags: Mapping[str, str] = field(default_factory=dict)
    # The deployer's identity for the build's wait and the image's deletion (alibaba/deployer_credentials.py).
    credentials: Mapping[str, pulumi.Input[str]] = field(default_factory=dict)


def component_content(script: str) -> str:
    """The image component: one RunShellCommand task running the script (JSON is YAML, so no quoting surprises)."""
    content = json.dumps(
        {"Tasks": [{"Name": "PrepareGpuHost", "Action": "RunShellCommand", "Properties": {"commandContent": script}}]},
        indent=1,
    )
    size = len(content.encode())
    if size > CONTENT_LIMIT_BYTES:
        raise ValueError(f"the image component is {size} bytes; Image Builder accepts at most {CONTENT_LIMIT_BYTES}")
    return content


class PreparedImage(pulumi.ComponentResource):
    image_id: pulumi.Output[str]
    execution_id: pulumi.Output[str]

    def __init__(self, name: str, args: PreparedImageArgs, opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__("llm:alibaba:PreparedImage", name, None, opts)
        if not 0 <= args.internet_bandwidth_mbps <= MAX_BUILDER_BANDWIDTH_MBPS:
            raise ValueError(
                f"the intermediate instance's bandwidth must be 0-100 Mbit/s: {args.internet_bandwidth_mbps}"
            )
        child = pulumi.ResourceOptions(parent=self)
        tags = dict(args.tags)
        component = alicloud.ecs.EcsImageComponent(
            f"{name}-component",
            image_component_name=_title(f"{name}-gpu-host"),
            component_type="Build",
            system_type="Linux",
            content=component_content(args.build_script),
            description="NVIDIA driver, Docker, container toolkit, engine and gateway images",
            tags=tags,
            opts=child,
        )
        pipeline = alicloud.ecs.EcsImagePipeline(
            f"{name}-pipeline",
            name=_title(f"{name}-gpu-host"),
            base_image_type="IMAGE",
            base_image=args.base_image_id,
            build_content=pulumi.Output.concat("COMPONENT ", component.id),
            image_name=_title(name)[:64],  # "the name prefix of the image" (docstring)
            system_disk_size=args.disk_gib,
            vswitch_id=args.vswitch_id,
            internet_max_bandwidth_out=args.internet_bandwidth_mbps,
            delete_instance_on_failure=True,
            description="The llm program's prepared GPU host image",
            tags=tags,
            opts=child,
        )
        execution = alicloud.ecs.ImagePipelineExecution(f"{name}-build", image_pipeline_id=pipeline.id, opts=child)
        image = PreparedImageBuild(
            f"{name}-image",
            execution_id=execution.id,
            region=args.region,
            wait_minutes=args.wait_minutes,
            credentials=args.credentials,
            opts=pulumi.ResourceOptions(
                parent=self,
                retain_on_delete=args.retain,
                custom_timeouts=pulumi.CustomTimeouts(create=f"{args.wait_minutes + 5}m"),
            ),
        )
        self.image_id = image.image_id
        self.execution_id = execution.id
        self.register_outputs({"image_id": image.image_id, "execution_id": execution.id})


def _title(text: str) -> str:
    """Component names start with an uppercase letter (CreateImageComponent), template names with a letter."""
    return text[:1].upper() + text[1:]


# --- The dynamic resource: wait for the build, delete the image --------------------------------------------------


def _provider():
    """The provider; nothing it runs may live at module level (the module docstring says why)."""
    done, failed, poll_seconds = DONE, FAILED, POLL_SECONDS

    class WaitForImage(dynamic.ResourceProvider):
        def create(self, props: dict[str, Any]) -> dynamic.CreateResult:
            credentials = self.credentials(props.get("credentials"))
            if credentials is None:
                raise RuntimeError(
                    "no Alibaba Cloud credentials (the stack's alicloud keys, ALICLOUD_* or the default chain) to "
                    "follow the prepared image build; "
                    f"see it with: {self.follow_command(props['region'], props['execution_id'])}, then set "
                    "ecs.preparedImage.id to its ImageId and ecs.preparedImage.build to false"
                )
            image_id = self.wait_for_image(
                props["region"], props["execution_id"], props.get("credentials") or {}, props["wait_minutes"] * 60
            )
            return dynamic.CreateResult(id_=image_id, outs={**props, "image_id": image_id})

        def diff(self, id: str, old: dict[str, Any], new: dict[str, Any]) -> dynamic.DiffResult:
            # A new identity (rotated keys, another profile) is taken in place, so that destroy uses it.
            replaces = [k for k in ("execution_id", "region") if old.get(k) != new.get(k)]
            changes = bool(replaces) or old.get("credentials") != new.get("credentials")
            return dynamic.DiffResult(changes=changes, replaces=replaces, delete_before_replace=False)

        def update(self, id: str, old: dict[str, Any], new: dict[str, Any]) -> dynamic.UpdateResult:
            return dynamic.UpdateResult(outs={**new, "image_id": old["image_id"]})

        def delete(self, id: str, props: dict[str, Any]) -> None:
            credentials = self.credentials(props.get("credentials"))  # none in the state of an older stack
            if credentials is None:
                pulumi.log.warn(
                    f"no Alibaba Cloud credentials (the stack's alicloud keys, ALICLOUD_* or the default chain): "
                    f"the prepared image {id} was not "
                    f"deleted; delete it with: aliyun ecs DeleteImage --RegionId {props['region']} --ImageId {id} "
                    "--Force true"
                )
                return
            self.delete_image(props["region"], id, props.get("credentials") or {})

        # What it runs, here rather than at module level (the module's names below are these). access_key and
        # credential_client are made inside a function (deployer_credentials), so they are pickled by value too.
        credentials = staticmethod(access_key)
        client_credentials = staticmethod(credential_client)

        @staticmethod
        def follow_command(region: str, execution_id: str) -> str:
            """The one command that shows a build's state (the aliyun CLI, with the deployer's profile)."""
            return f"aliyun ecs DescribeImagePipelineExecutions --RegionId {region} --ExecutionId {execution_id}"

        @staticmethod
        def sender(region: str, credentials: Any, endpoint: str = "") -> Any:
            """`send(action, params)` -> the decoded answer of one ECS API action (version 2014-05-26), through one
            client of the SDK's generic RPC call, as `credentials` (deployer_credentials' keys); made once per wait
            or deletion, so a role's credentials are resolved once and refreshed by the SDK. `endpoint`
            ("http://host:port") replaces the region's endpoint."""
            from alibabacloud_tea_openapi import utils_models as api
            from alibabacloud_tea_openapi.client import Client
            from alibabacloud_tea_openapi.utils import Utils
            from darabonba.runtime import RuntimeOptions

            protocol, _, host = endpoint.rpartition("://") if endpoint else ("https", "", f"ecs.{region}.aliyuncs.com")
            client = Client(
                api.Config(
                    credential=WaitForImage.client_credentials(credentials),
                    endpoint=host,
                    protocol=protocol,
                    region_id=region,
                )
            )
            runtime = RuntimeOptions(read_timeout=60000, connect_timeout=10000)

            def send(action: str, params: dict[str, str]) -> dict:
                request = api.Params(
                    action=action,
                    version="2014-05-26",
                    protocol=protocol.upper(),
                    pathname="/",
                    method="POST",
                    auth_type="AK",
                    style="RPC",
                    req_body_type="formData",
                    body_type="json",
                )
                query = api.OpenApiRequest(query=Utils.query({"RegionId": region, **params}))
                return client.call_api(request, query, runtime)["body"]

            return send

        @staticmethod
        def call(
            region: str, action: str, params: dict[str, str], credentials: Any, send: Any = None, endpoint: str = ""
        ) -> dict:
            """One ECS API action through `send`, or a sender made for it (sender)."""
            return (send or WaitForImage.sender(region, credentials, endpoint))(action, params)

        @staticmethod
        def wait_for_image(
            region: str, execution_id: str, credentials, timeout_seconds: float, send: Any = None, sleep: Any = None
        ) -> str:
            """Polls the build task until it ends; its image id, or an error naming its state and message.
            `send(action, params)` -> the decoded answer, and `sleep(seconds)`, replace the HTTP call and the pause
            in tests."""
            import time

            pause = sleep or time.sleep
            send = send or WaitForImage.sender(region, credentials)  # one client for every poll
            waited = 0.0
            while True:
                answer = WaitForImage.call(
                    region, "DescribeImagePipelineExecutions", {"ExecutionId": execution_id}, credentials, send
                )
                found = answer.get("ImagePipelineExecution", {}).get("ImagePipelineExecutionSet", [])
                task = found[0] if found else {}
                status = task.get("Status", "")
                if status in done and task.get("ImageId"):
                    return task["ImageId"]
                if status in failed:
                    raise RuntimeError(
                        f"the prepared image build {execution_id} ended {status}: {task.get('Message', '')}"
                    )
                if waited >= timeout_seconds:
                    raise RuntimeError(
                        f"the prepared image build {execution_id} is still {status or 'unknown'} after "
                        f"{timeout_seconds / 60:.0f} min; see: {WaitForImage.follow_command(region, execution_id)}"
                    )
                pause(poll_seconds)
                waited += poll_seconds

        @staticmethod
        def delete_image(region: str, image_id: str, credentials, send: Any = None) -> list[str]:
            """DeleteImage (Force), then DeleteSnapshot (Force) for each snapshot behind it: deleting an image keeps
            its snapshots, which bill on (the provider's `ecs.Image` does the same only with `delete_auto_snapshot`,
            resource_alicloud_image.go: DescribeImages' DiskDeviceMappings.DiskDeviceMapping[].SnapshotId). Returns
            the snapshots deleted."""
            send = send or WaitForImage.sender(region, credentials)  # one client for the four calls
            answer = WaitForImage.call(
                region, "DescribeImages", {"ImageId": image_id, "ImageOwnerAlias": "self"}, credentials, send
            )
            images = answer.get("Images", {}).get("Image", [])
            if not images:
                return []  # gone already
            mappings = images[0].get("DiskDeviceMappings", {}).get("DiskDeviceMapping", [])
            snapshots = [m["SnapshotId"] for m in mappings if m.get("SnapshotId")]
            WaitForImage.call(region, "DeleteImage", {"ImageId": image_id, "Force": "true"}, credentials, send)
            for snapshot in snapshots:
                WaitForImage.call(
                    region, "DeleteSnapshot", {"SnapshotId": snapshot, "Force": "true"}, credentials, send
                )
            return snapshots

    return WaitForImage()


class PreparedImageBuild(dynamic.Resource):
    image_id: pulumi.Output[str]

    def __init__(
        self,
        name: str,
        execution_id: pulumi.Input[str],
        region: str,
        wait_minutes: int,
        credentials: Mapping[str, pulumi.Input[str]],
        opts: pulumi.ResourceOptions,
    ):
        props = {
            "execution_id": execution_id,
            "region": region,
            "wait_minutes": wait_minutes,
            "image_id": None,
            "credentials": pulumi.Output.secret(dict(credentials)),
        }
        opts = pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(additional_secret_outputs=["credentials"]))
        super().__init__(_provider(), name, props, opts)


# The provider's own helpers under the module's names (the tests call them).
_helpers = _provider()
follow_command = _helpers.follow_command
call = _helpers.call
wait_for_image = _helpers.wait_for_image
delete_image = _helpers.delete_image
