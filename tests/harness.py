"""The one test harness: run the real __main__.py for a stack under Pulumi mocks and record everything.

Config is assembled as the Pulumi CLI does it (Pulumi.yaml defaults, then Pulumi.<stack>.yaml, then
the test's overrides), so a test of `dev` is a test of the committed dev stack. Each registration is
recorded with its type, name, parent, dependencies, protect/retainOnDelete, timeouts, ignoreChanges
and inputs, secrets still wrapped in Pulumi's secret marker.
"""
from __future__ import annotations

import asyncio
import json
import runpy
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Optional

import pulumi
import yaml
from pulumi.runtime import mocks, rpc, settings as runtime_settings
from pulumi.runtime.stack import wait_for_rpcs
from pulumi.runtime.sync_await import _sync_await

ROOT = Path(__file__).resolve().parent.parent
PROJECT = "llm"
SECRET_SIG = rpc._special_secret_sig  # how Pulumi marks a secret value in serialized properties
GENERATED_API_KEY = "generated-key-FROM-RANDOM-0123456789abcdefghijklmn"  # what RandomPassword returns here

ZONES = ["cn-hangzhou-i", "cn-hangzhou-j"]


@dataclass
class Resource:
    type: str
    name: str
    urn: str
    parent: str
    inputs: dict
    protect: bool
    retain_on_delete: bool
    dependencies: list[str]
    custom_timeouts: dict
    ignore_changes: list[str]
    replace_on_changes: list[str]
    has_replacement_trigger: bool


@dataclass
class Run:
    resources: list[Resource] = field(default_factory=list)
    outputs: dict[str, Any] = field(default_factory=dict)
    secret_outputs: set[str] = field(default_factory=set)
    invokes: list[tuple[str, dict]] = field(default_factory=list)

    def of_type(self, type_: str) -> list[Resource]:
        return [r for r in self.resources if r.type == type_]

    def one(self, type_: str) -> Resource:
        found = self.of_type(type_)
        assert len(found) == 1, f"expected one {type_}, found {[r.name for r in found]}"
        return found[0]

    def types(self) -> set[str]:
        return {r.type for r in self.resources}


class CloudMocks(pulumi.runtime.Mocks):
    """Answers invokes like a region with GPU stock, and fills in the attributes the cloud computes."""

    def __init__(self, run: Run, zones: Iterable[str] = ZONES, images: Optional[list[str]] = None):
        self.run = run
        self.zones = list(zones)
        self.images = ["m-ubuntu2204-mock"] if images is None else images

    def new_resource(self, args: pulumi.runtime.MockResourceArgs):
        state = dict(args.inputs)
        extra = {
            "alicloud:ecs/instance:Instance": {"privateIp": "192.168.0.10", "publicIp": "47.96.0.10"},
            "alicloud:ecs/eipAddress:EipAddress": {"ipAddress": "47.96.0.20"},
            "alicloud:vpc/natGateway:NatGateway": {"snatTableIds": "stb-mock"},
            "alicloud:ecs/ecsInvocation:EcsInvocation": {"status": "Success"},
            "random:index/randomPassword:RandomPassword": {"result": GENERATED_API_KEY},
        }.get(args.typ, {})
        state.update(extra)
        return f"{args.name}-id", state

    def call(self, args: pulumi.runtime.MockCallArgs):
        self.run.invokes.append((args.token, dict(args.args)))
        if args.token == "alicloud:index/getZones:getZones":
            zones = [{"id": z, "localName": z, "availableDiskCategories": ["cloud_essd"],
                      "availableInstanceTypes": [args.args.get("availableInstanceType", "")],
                      "availableResourceCreations": ["VSwitch", "Instance"], "multiZoneIds": [],
                      "slbSlaveZoneIds": []} for z in self.zones]
            return {"id": "zones", "ids": self.zones, "zones": zones}
        if args.token == "alicloud:ecs/getImages:getImages":
            images = [_image(i) for i in self.images]
            return {"id": "images", "ids": self.images, "images": images, "nameRegex": args.args.get("nameRegex")}
        raise AssertionError(f"unexpected invoke {args.token}")


def _image(image_id: str) -> dict:
    text = ("architecture creationTime description imageOwnerAlias imageVersion osName osNameEn osType "
            "platform productCode progress state status usage").split()
    image = {k: "" for k in text}
    image.update({"id": image_id, "imageId": image_id, "name": "ubuntu_22_04_x64_20G_alibase_20251001.vhd",
                  "diskDeviceMappings": [], "isCopied": False, "isSelfShared": "", "isSubscribed": False,
                  "isSupportIoOptimized": True, "size": 20, "tags": {}})
    return image


class RecordingMonitor(mocks.MockMonitor):
    """The mock monitor, plus a record of each registration's options (which Mocks never sees)."""

    def __init__(self, cloud: CloudMocks, run: Run):
        super().__init__(cloud)
        self.run = run

    def RegisterResource(self, request):
        response = super().RegisterResource(request)
        if request.type != "pulumi:pulumi:Stack":
            timeouts = request.customTimeouts
            self.run.resources.append(Resource(
                type=request.type, name=request.name, urn=response.urn, parent=request.parent,
                inputs=rpc.deserialize_properties(request.object, keep_unknowns=True),
                protect=bool(request.protect), retain_on_delete=bool(request.retainOnDelete),
                dependencies=list(request.dependencies),
                custom_timeouts={"create": timeouts.create, "update": timeouts.update, "delete": timeouts.delete},
                ignore_changes=list(request.ignoreChanges),
                replace_on_changes=list(request.replaceOnChanges),
                has_replacement_trigger=request.HasField("replacement_trigger"),
            ))
        return response


def stack_config(stack: str, overrides: Optional[dict] = None) -> dict[str, str]:
    """Config as the CLI hands it to the program: project defaults, stack values, as strings."""
    project = yaml.safe_load((ROOT / "Pulumi.yaml").read_text())
    values: dict[str, Any] = {f"{PROJECT}:{k}": v["default"] for k, v in project["config"].items()}
    stack_file = ROOT / f"Pulumi.{stack}.yaml"
    if stack_file.exists():
        values.update((yaml.safe_load(stack_file.read_text()) or {}).get("config", {}))
    values.update({(k if ":" in k else f"{PROJECT}:{k}"): v for k, v in (overrides or {}).items()})
    return {k: _as_config_string(v) for k, v in values.items()}


def _as_config_string(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, dict)):
        return json.dumps(value)
    return str(value)


def run_stack(stack: str = "dev", overrides: Optional[dict] = None, secret_keys: Iterable[str] = (),
              preview: bool = False, zones: Iterable[str] = ZONES, images: Optional[list[str]] = None,
              record: Optional[Run] = None) -> Run:
    """Run __main__.py for `stack`; raises whatever the program raises (e.g. ConfigError).

    Pass `record` to inspect what was registered even when the program fails.
    """
    run = record if record is not None else Run()
    cloud = CloudMocks(run, zones=zones, images=images)
    runtime_settings.ROOT.set(None)
    pulumi.runtime.set_mocks(cloud, project=PROJECT, stack=stack, preview=preview,
                             monitor=RecordingMonitor(cloud, run))
    pulumi.runtime.set_all_config(stack_config(stack, overrides),
                                  [k if ":" in k else f"{PROJECT}:{k}" for k in secret_keys])
    runpy.run_path(str(ROOT / "__main__.py"), run_name="__main__")
    _sync_await(wait_for_rpcs())
    root = runtime_settings.get_root_resource()
    for name, value in root.outputs.items():
        output = pulumi.Output.from_input(value)
        run.outputs[name] = _sync_await(output.future())
        if _sync_await(output.is_secret()):
            run.secret_outputs.add(name)
    return run


def unwrap(value: Any) -> Any:
    """Inputs with Pulumi's secret markers removed (to read values, not to check secrecy)."""
    if isinstance(value, dict):
        if value.get(rpc._special_sig_key) == SECRET_SIG:
            return unwrap(value["value"])
        return {k: unwrap(v) for k, v in value.items()}
    if isinstance(value, list):
        return [unwrap(v) for v in value]
    return value


def is_secret(value: Any) -> bool:
    return isinstance(value, dict) and value.get(rpc._special_sig_key) == SECRET_SIG


def all_strings(value: Any) -> Iterable[str]:
    """Every string inside `value` (unwrap secrets first to include their contents)."""
    if isinstance(value, dict):
        for v in value.values():
            yield from all_strings(v)
    elif isinstance(value, list):
        for v in value:
            yield from all_strings(v)
    elif isinstance(value, str):
        yield value


def reset_runtime() -> None:
    """Leave no mock settings behind for the next test."""
    runtime_settings.ROOT.set(None)
    pulumi.runtime.settings.reset_options()
