"""The one test harness: run the real __main__.py for a stack under Pulumi mocks and record everything.

Config is assembled as the Pulumi CLI does it (the stack file, then the test's overrides as `--path` keys),
so a test of `dev` is a test of the committed dev stack and a test of `acs` one of examples/acs.yaml.
Each registration is recorded with its type, name, parent, dependencies, protect/retainOnDelete, timeouts, ignoreChanges
and inputs, secrets still wrapped in Pulumi's secret marker.
"""

from __future__ import annotations

import base64
import copy
import json
import os
import pickle
import re
import runpy
import subprocess
import sys
import zlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Optional

import cloud_rules
import pulumi
import yaml
from alibaba_fakes import serve_on_loopback  # noqa: F401 (the tests import it from here too)
from pulumi.runtime import mocks, rpc
from pulumi.runtime import settings as runtime_settings
from pulumi.runtime.stack import wait_for_rpcs
from pulumi.runtime.sync_await import _sync_await

# What the docs tell users to set with --secret.
SECRET_CONFIG = ("apiKey", "hfToken", "tlsCertificate", "tlsKey")
# PEM-shaped text for access.tls.source pem: config checks the shape only; no real key is committed here (the
# real-engine suite generates a real certificate and serves it, tests/engine/test_gateway_tls.py).
TEST_CERTIFICATE = "-----BEGIN CERTIFICATE-----\nTUlJQnRlc3RjZXJ0aWZpY2F0ZQ==\n-----END CERTIFICATE-----\n"
TEST_KEY = "-----BEGIN PRIVATE KEY-----\nTUlJQnRlc3RrZXlub3RyZWFs\n-----END PRIVATE KEY-----\n"
PEM_TLS = {"access.tls.source": "pem", "tlsCertificate": TEST_CERTIFICATE, "tlsKey": TEST_KEY}

ROOT = Path(__file__).resolve().parent.parent
PROJECT = yaml.safe_load((ROOT / "Pulumi.yaml").read_text())["name"]  # the config namespace
PROVIDER_NAMESPACES = ("alicloud", "gcp", "kubernetes")
ROOT_STACKS = ("dev", "prod")  # Pulumi.<stack>.yaml at the root; other examples in examples/<name>.yaml
EXAMPLE_STACKS = ("dev", "prod", "acs", "acs-r1", "ack", "ack-edge", "gke", "gke-l4", "kubernetes")
SECRET_SIG = rpc._special_secret_sig  # how Pulumi marks a secret value in serialized properties
GENERATED_API_KEY = "generated-key-FROM-RANDOM-0123456789abcdefghijklmn"  # what RandomPassword returns here

ZONES = ["cn-hangzhou-i", "cn-hangzhou-j"]


def _fake_base64(label: str, chars: int) -> str:
    """Test-only filler with the length of a real base64 field (no key material: a fixed, repeated text)."""
    seed = f"FAKE-TEST-ONLY-{label}-NOT-A-KEY-"
    return (seed * (chars // len(seed) + 1))[:chars]


# As big as a kubeconfig ACK issues (about 6 KB: an RSA-2048 CA certificate, client certificate and client
# key, base64-encoded PEM; one measured 6,038 characters), so size limits (an OOS
# parameter's 4,096 characters) bite here as they would in the cloud. KUBE-TOKEN-SECRET marks the
# credential part for the tests that look for leaks.
KUBECONFIG = (
    "apiVersion: v1\nclusters:\n- cluster:\n    server: https://47.96.0.30:6443\n"
    f"    certificate-authority-data: {_fake_base64('CA', 1780)}\n"
    '  name: kubernetes\ncontexts:\n- context:\n    cluster: kubernetes\n    user: "2001234567890"\n'
    "  name: 2001234567890-c1mock\ncurrent-context: 2001234567890-c1mock\nkind: Config\npreferences: {}\n"
    'users:\n- name: "2001234567890"\n  user:\n'
    f"    client-certificate-data: {_fake_base64('CERT', 1780)}\n"
    f"    client-key-data: KUBE-TOKEN-SECRET{_fake_base64('KEY', 2080)}\n"
)
# Kubernetes objects are validated against this schema version: the oldest minor version ACK and ACS
# still offered when this was written, so what validates here also validates on newer clusters.
KUBERNETES_SCHEMA_VERSION = "1.33.0"
PRIVATE_LB_IP = "192.168.0.100"
ACCOUNT_ID = "1234567890123456"  # the account getCallerIdentity answers with
PUBLIC_LB_IP = "47.96.0.100"
PREPARED_IMAGE_ID = "m-bp1preparedmock01"  # the image a prepared image build ends with here


def mock_eip_address(name: str) -> str:
    """The address the mock cloud gives the EIP `name`: each its own (an SNAT entry lists them all)."""
    return f"47.96.{zlib.crc32(name.encode()) % 250}.20"


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
    provider: str = ""  # "<provider urn>::<provider id>" when set explicitly or inherited
    delete_before_replace: bool = False
    id: str = ""  # what the mock cloud answered (an input naming this resource by id holds it)
    deleted_with: str = ""  # URN: destroy skips this resource's delete when that one is deleted too


@dataclass
class Run:
    resources: list[Resource] = field(default_factory=list)
    outputs: dict[str, Any] = field(default_factory=dict)
    secret_outputs: set[str] = field(default_factory=set)
    invokes: list[tuple[str, dict]] = field(default_factory=list)
    refusals: list[str] = field(default_factory=list)  # what the clouds' rules refused (tests/cloud_rules)
    reads: list[tuple[str, str, str]] = field(default_factory=list)  # Resource.get: (type, id, urn)
    logs: list[tuple[str, str]] = field(default_factory=list)  # pulumi.log.info: (message, the resource's name)
    warnings: list[tuple[str, str]] = field(default_factory=list)  # pulumi.log.warn, likewise

    def logged(self, fragment: str) -> list[tuple[str, str]]:
        return [(message, name) for message, name in self.logs if fragment in message]

    def of_type(self, type_: str) -> list[Resource]:
        return [r for r in self.resources if r.type == type_]

    def one(self, type_: str) -> Resource:
        found = self.of_type(type_)
        assert len(found) == 1, f"expected one {type_}, found {[r.name for r in found]}"
        return found[0]

    def types(self) -> set[str]:
        return {r.type for r in self.resources}

    def named(self, name: str) -> Resource:
        found = [r for r in self.resources if r.name == name]
        assert len(found) == 1, f"expected one resource named {name}, found {len(found)}"
        return found[0]

    def by_urn(self, urn: str) -> Resource:
        return next(r for r in self.resources if r.urn == urn)

    def kubernetes_objects(self) -> list[dict]:
        """Every Kubernetes object as a manifest (secrets unwrapped, whole numbers as ints)."""
        return [
            manifest(r)
            for r in self.resources
            if r.type.startswith("kubernetes:") and not r.type.startswith(("kubernetes:helm", "kubernetes:index"))
        ]

    def kubernetes_object(self, kind: str, name: Optional[str] = None) -> dict:
        found = [
            o
            for o in self.kubernetes_objects()
            if o["kind"] == kind and (name is None or o["metadata"]["name"] == name)
        ]
        assert len(found) == 1, f"expected one {kind} {name or ''}, found {[o['metadata']['name'] for o in found]}"
        return found[0]


class CloudMocks(pulumi.runtime.Mocks):
    """Answers invokes like a region with GPU stock, and fills in the attributes the cloud computes."""

    # Cloud Control quotes by "<product>/<resourceCode>"; a code not listed fails as an unsupported one would.
    # A test changes the answers with monkeypatch.setattr(CloudMocks, "prices", {...}).
    prices: ClassVar[dict[str, float]] = {"ECS/Instance": 9.5}
    # GKE's default version per release channel (monkeypatch to test an older channel).
    gke_channel_versions: ClassVar[dict[str, str]] = {
        "RAPID": "1.34.1-gke.1431000",
        "REGULAR": "1.33.5-gke.1308000",
        "STABLE": "1.32.2-gke.1297002",
    }
    price_currency = "CNY"
    # APIs that are normally on before a gke run (tests/cloud_rules/gcp.py PREREQUISITE_APIS) but off in this test.
    disabled_prerequisites: ClassVar[frozenset[str]] = frozenset()

    def __init__(self, run: Run, zones: Iterable[str] = ZONES, images: Optional[list[str]] = None):
        self.run = run
        self.zones = list(zones)
        self.images = ["m-ubuntu2204-mock"] if images is None else images

    def new_resource(self, args: pulumi.runtime.MockResourceArgs):
        state = dict(args.inputs)
        if args.typ == "kubernetes:core/v1:Service" and state.get("spec", {}).get("type") == "LoadBalancer":
            annotations = state.get("metadata", {}).get("annotations", {})
            internet = any(v == "internet" for v in annotations.values()) or "loadBalancerSourceRanges" in state["spec"]
            state["status"] = {"loadBalancer": {"ingress": [{"ip": PUBLIC_LB_IP if internet else PRIVATE_LB_IP}]}}
        if args.typ == "kubernetes:core/v1:Service":
            state.setdefault("spec", {}).setdefault("clusterIP", "172.16.0.10")
        extra = {
            "alicloud:ecs/instance:Instance": {"privateIp": "192.168.0.10", "publicIp": "47.96.0.10"},
            "alicloud:ecs/eipAddress:EipAddress": {"ipAddress": mock_eip_address(args.name)},
            "alicloud:vpc/natGateway:NatGateway": {"snatTableIds": "stb-mock"},
            "alicloud:ecs/ecsInvocation:EcsInvocation": {"status": "Success"},
            "random:index/randomPassword:RandomPassword": {"result": GENERATED_API_KEY},
            "random:index/randomId:RandomId": {"hex": "a1b2c3d4"},
            "alicloud:cs/managedKubernetes:ManagedKubernetes": {
                "slbId": f"lb-{args.name}",  # the API server's CLB
                "connections": [{"apiServerIntranet": "https://192.168.0.200:6443", "apiServerInternet": ""}],
                # The OIDC provider exists only with RRSA enabled (SDK cs/managed_kubernetes.py rrsa_metadata).
                "rrsaMetadata": {
                    "enabled": True,
                    "ramOidcProviderArn": "acs:ram::1234:oidc-provider/ack-rrsa-c1",
                    "ramOidcProviderName": "ack-rrsa-c1",
                    "rrsaOidcIssuerUrl": "https://oidc-ack",
                }
                if args.inputs.get("enableRrsa")
                else {"enabled": False},
            },
            "alicloud:ram/role:Role": {
                "arn": f"acs:ram::{ACCOUNT_ID}:role/{args.inputs.get('roleName', args.name)}",
                # zlib.crc32, not hash(): the same id in every process (PYTHONHASHSEED), as a real role keeps its own
                "roleId": f"3{zlib.crc32(args.name.encode()) % 10**15:015d}",
            },
            "alicloud:ram/accessKey:AccessKey": {"secret": "RAM-ACCESS-KEY-SECRET"},
            "alicloud:cs/nodePool:NodePool": {"nodePoolId": f"np{args.name.replace('-', '')[-12:]}"},
        }.get(args.typ, {})
        if args.typ == "alicloud:oss/bucket:Bucket":
            state.setdefault("bucket", f"{args.name}-id")
        if args.typ == "pulumi-python:dynamic:Resource" and "execution_id" in state:
            state["image_id"] = PREPARED_IMAGE_ID  # what the prepared image build's wait returns
        if args.typ == "gcp:projects/service:Service" and pulumi.runtime.is_dry_run():
            # A preview creates nothing: an API the stack enables has no id yet (and is not on).
            return "", {**state, **_gcp_state(args)}
        state.update(_gcp_state(args))
        state.update(extra)
        if pulumi.runtime.is_dry_run():
            return "", state  # as in a real preview, a resource to be created has no id yet
        return f"{args.name}-id", state

    def call(self, args: pulumi.runtime.MockCallArgs):
        self.run.invokes.append((args.token, dict(args.args)))
        # The cloud's rules (tests/cloud_rules): a refused call fails as the provider's would.
        refusal = cloud_rules.check_invoke(
            cloud_rules.InvokeCandidate(
                args.token, dict(args.args), pulumi.runtime.is_dry_run(), self.disabled_prerequisites
            ),
            self.run,
        )
        if refusal:
            self.run.refusals.append(refusal)
            return {}, [("", refusal)]
        if args.token == "alicloud:index/getZones:getZones":
            zones = [
                {
                    "id": z,
                    "localName": z,
                    "availableDiskCategories": ["cloud_essd"],
                    "availableInstanceTypes": [args.args.get("availableInstanceType", "")],
                    "availableResourceCreations": ["VSwitch", "Instance"],
                    "multiZoneIds": [],
                    "slbSlaveZoneIds": [],
                }
                for z in self.zones
            ]
            return {"id": "zones", "ids": self.zones, "zones": zones}
        if args.token == "alicloud:index/getCallerIdentity:getCallerIdentity":
            return {
                "id": ACCOUNT_ID,
                "accountId": ACCOUNT_ID,
                "arn": f"acs:ram::{ACCOUNT_ID}:root",
                "identityType": "Account",
            }
        if args.token == "alicloud:cs/getClusterCredential:getClusterCredential":
            return {
                "id": args.args["clusterId"],
                "clusterId": args.args["clusterId"],
                "kubeConfig": KUBECONFIG,
                "certificateAuthority": {},
                "clusterName": "mock",
            }
        if args.token == "alicloud:ecs/getImages:getImages":
            wanted = args.args.get("imageId")
            ids = [i for i in self.images if wanted in (None, i)]
            images = [_image(i) for i in ids]
            return {"id": "images", "ids": ids, "images": images, "nameRegex": args.args.get("nameRegex")}
        if args.token == "alicloud:arms/getPrometheus:getPrometheus":
            # Another cluster's instance, then one for each cluster this run created (as arms-prometheus does).
            clusters = [f"{r.name}-id" for r in self.run.of_type("alicloud:cs/managedKubernetes:ManagedKubernetes")]
            found = [_prometheus("prom-other", "c-other")] + [
                _prometheus(f"prom-{i + 1}", c) for i, c in enumerate(clusters)
            ]
            return {"id": "prometheus", "ids": [p["id"] for p in found], "prometheis": found}
        if args.token == "alicloud:cloudcontrol/getPrices:getPrices":
            return self._price(args.args)
        if args.token == "gcp:organizations/getProject:getProject":
            return {
                "id": f"projects/{args.args.get('projectId')}",
                "projectId": args.args.get("projectId"),
                "number": GCP_PROJECT_NUMBER,
                "name": "mock",
            }
        if args.token == "gcp:container/getEngineVersions:getEngineVersions":
            return {
                "id": "versions",
                "location": args.args.get("location"),
                "releaseChannelDefaultVersion": dict(self.gke_channel_versions),
                "validMasterVersions": list(self.gke_channel_versions.values()),
            }
        raise AssertionError(f"unexpected invoke {args.token}")

    def _price(self, args: dict):
        code = f"{args.get('product')}/{args.get('resourceCode')}"
        if code not in self.prices:  # an invoke that fails the way a provider error does (the program may catch it)
            return {}, [("resourceCode", f"{code} is not supported by Cloud Control GetPrice")]
        price = self.prices[code]
        quote = {
            "currency": self.price_currency,
            "tradePrice": price,
            "originalPrice": price,
            "discountPrice": 0.0,
            "moduleDetails": [],
            "promotionDetails": [],
        }
        return {
            "id": code,
            "product": args.get("product"),
            "resourceCode": args.get("resourceCode"),
            "desireAttributesJson": args.get("desireAttributesJson"),
            "prices": [quote],
        }


def _prometheus(instance_id: str, cluster_id: str) -> dict:
    """An ARMS Prometheus instance as GetPrometheus returns it with enableDetails."""
    text = (
        "authToken clusterName clusterType grafanaInstanceId pushGateWayInterUrl pushGateWayIntraUrl "
        "remoteReadInterUrl remoteReadIntraUrl remoteWriteInterUrl remoteWriteIntraUrl resourceGroupId "
        "securityGroupId subClustersJson vpcId vswitchId httpApiInterUrl"
    ).split()
    instance = {k: "" for k in text}
    instance.update(
        {
            "id": instance_id,
            "clusterId": cluster_id,
            "tags": {},
            "httpApiIntraUrl": f"http://{instance_id}.arms-internal/api/v1/prometheus",
        }
    )
    return instance


GCP_PROJECT_NUMBER = "123456789012"
GKE_ENDPOINT = "34.56.78.90"
GKE_CA = "TU9DSy1DQQ=="


def _gcp_state(args: pulumi.runtime.MockResourceArgs) -> dict:
    """What Google Cloud computes for the gcp resources the gke target creates."""
    if args.typ == "gcp:container/cluster:Cluster":
        return {
            "endpoint": GKE_ENDPOINT,
            "masterAuth": {"clusterCaCertificate": GKE_CA},
            "name": args.inputs.get("name", args.name),
        }
    if args.typ == "gcp:serviceaccount/account:Account":
        return {"email": f"{args.inputs['accountId']}@{args.inputs.get('project', 'p')}.iam.gserviceaccount.com"}
    if args.typ in ("gcp:storage/bucket:Bucket", "gcp:artifactregistry/repository:Repository"):
        return {"name": args.inputs.get("name") or args.inputs.get("repositoryId") or f"{args.name}-a1b2c3"}
    return {}


def _image(image_id: str) -> dict:
    text = (
        "architecture creationTime description imageOwnerAlias imageVersion osName osNameEn osType "
        "platform productCode progress state status usage"
    ).split()
    image = {k: "" for k in text}
    image.update(
        {
            "id": image_id,
            "imageId": image_id,
            "name": "ubuntu_22_04_x64_20G_alibase_20251001.vhd",
            "diskDeviceMappings": [],
            "isCopied": False,
            "isSelfShared": "",
            "isSubscribed": False,
            "isSupportIoOptimized": True,
            # A prepared image's disk (core.config.host), one too big for a host's disk, a public image's.
            "size": 500 if "big" in image_id else 80 if image_id.startswith("m-bp1") else 20,
            "tags": {},
        }
    )
    return image


class RecordingMonitor(mocks.MockMonitor):
    """The mock monitor, plus a record of each registration's options (which Mocks never sees)."""

    def __init__(self, cloud: CloudMocks, run: Run):
        super().__init__(cloud)
        self.run = run

    def RegisterResource(self, request):
        if request.type != "pulumi:pulumi:Stack":
            # The cloud's rules (tests/cloud_rules): a refusal fails the run at its end, as the update would.
            candidate = cloud_rules.Candidate(
                type=request.type,
                name=request.name,
                parent=request.parent,
                inputs=rpc.deserialize_properties(request.object, keep_unknowns=True),
                dependencies=tuple(request.dependencies),
            )
            try:
                cloud_rules.check_registration(candidate, self.run)
            except cloud_rules.CloudRefusal as refusal:
                self.run.refusals.append(str(refusal))
        response = super().RegisterResource(request)
        if request.type != "pulumi:pulumi:Stack":
            timeouts = request.customTimeouts
            self.run.resources.append(
                Resource(
                    type=request.type,
                    name=request.name,
                    urn=response.urn,
                    parent=request.parent,
                    inputs=rpc.deserialize_properties(request.object, keep_unknowns=True),
                    protect=bool(request.protect),
                    retain_on_delete=bool(request.retainOnDelete),
                    dependencies=list(request.dependencies),
                    custom_timeouts={"create": timeouts.create, "update": timeouts.update, "delete": timeouts.delete},
                    ignore_changes=list(request.ignoreChanges),
                    replace_on_changes=list(request.replaceOnChanges),
                    has_replacement_trigger=request.HasField("replacement_trigger"),
                    provider=request.provider,
                    delete_before_replace=bool(request.deleteBeforeReplace),
                    id=response.id,
                    deleted_with=request.deletedWith,
                )
            )
        return response

    def ReadResource(self, request):
        """A `Resource.get` (e.g. a CRD the stack needs): recorded, answered by the mocks as a registration is."""
        response = super().ReadResource(request)
        self.run.reads.append((request.type, request.id, response.urn))
        return response


def stack_file(stack: str) -> Path:
    """dev and prod live at the root, as the design has them; every other example in examples/."""
    return ROOT / f"Pulumi.{stack}.yaml" if stack in ROOT_STACKS else ROOT / "examples" / f"{stack}.yaml"


def _set_path(config: dict[str, Any], key: str, value: Any, project: str) -> None:
    """`pulumi config set --path` on a dict: `engine.maxModelLen` or `alicloud:region`; None removes the key."""
    qualified = key if key.split(":", 1)[0] in PROVIDER_NAMESPACES and ":" in key else f"{project}:{key}"
    top, _, rest = qualified.partition(".")
    if not rest:
        if value is None:
            config.pop(top, None)
        else:
            config[top] = value
        return
    node = config.setdefault(top, {})
    parts = rest.split(".")
    for part in parts[:-1]:
        node = node.setdefault(part, {})
    if value is None:
        node.pop(parts[-1], None)
    else:
        node[parts[-1]] = value


def stack_config(stack: str, overrides: Optional[dict] = None, project: str = PROJECT) -> dict[str, str]:
    """Config as the CLI hands it to the program: the stack file, then `overrides` (key paths), as strings.

    The stack files are written for the `llm` namespace; with another `project`, their keys move to it
    (as in a fork renamed in Pulumi.yaml).
    """
    file_config = (yaml.safe_load(stack_file(stack).read_text()) or {}).get("config", {})
    config: dict[str, Any] = {}
    for key, value in file_config.items():
        namespace, _, name = key.partition(":")
        config[f"{project}:{name}" if namespace == PROJECT else key] = copy.deepcopy(value)
    for key, value in (overrides or {}).items():
        _set_path(config, key, value, project)
    return {k: _as_config_string(v) for k, v in config.items()}


def _as_config_string(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, dict)):
        return json.dumps(value)
    return str(value)


def run_stack(
    stack: str = "dev",
    overrides: Optional[dict] = None,
    secret_keys: Iterable[str] = SECRET_CONFIG,
    preview: bool = False,
    zones: Iterable[str] = ZONES,
    images: Optional[list[str]] = None,
    record: Optional[Run] = None,
    project: str = PROJECT,
    enforce_cloud_rules: bool = True,
) -> Run:
    """Run __main__.py for `stack`; raises whatever the program raises (e.g. ConfigError), and CloudRefusal
    when a resource breaks a rule the cloud enforces (tests/cloud_rules).

    `overrides` are key paths as `pulumi config set --path` takes them ({"engine.maxModelLen": 8192},
    {"alicloud:region": "cn-beijing"}); `secret_keys` are stored as secrets (by default the API key and HF token,
    as the docs tell users to set them). Pass `record` to inspect what was registered even when the program fails.
    """
    return _run(
        lambda: runpy.run_path(str(ROOT / "__main__.py"), run_name="__main__"),
        stack,
        overrides,
        secret_keys,
        preview,
        zones,
        images,
        record,
        project,
        enforce_cloud_rules,
    )


def run_program(program: Callable[[], Optional[dict]], stack: str = "dev", preview: bool = False) -> Run:
    """Run `program` (which builds components and may return outputs to export) under the same mocks.

    For tests of one component: import the component inside `program`, after the mocks are set.
    """

    def body():
        for name, value in (program() or {}).items():
            if value is not None:
                pulumi.export(name, value)

    return _run(body, stack, {}, (), preview, ZONES, None, None, PROJECT)


# pulumi.dynamic.serialize_provider (pulumi 3.x dynamic/dynamic.py) wraps pickle._Pickler._batch_setitems and
# save_dict for a deterministic pickle and restores only pickle.Pickler afterwards: every dynamic resource adds one
# more wrapper, and after a few hundred of them in one process (this suite builds over a thousand stacks) pickling
# hits the recursion limit (the symptom of pulumi/pulumi#17803). A real `pulumi up` builds a few per stack. Each run
# here puts the originals back.
_PICKLER_ORIGINALS = {name: getattr(pickle._Pickler, name) for name in ("_batch_setitems", "save_dict")}


def _restore_pickler() -> None:
    for name, original in _PICKLER_ORIGINALS.items():
        setattr(pickle._Pickler, name, original)


def run_provider_isolated(
    provider: object, body: str, cwd: Path, *, without_alibaba_credentials: bool = False, home: Optional[Path] = None
) -> tuple[subprocess.CompletedProcess, str]:
    """A dynamic provider as its own process gets it: pickled by pulumi's serialize_provider, loaded with dill in
    `python -I` (no current directory or PYTHONPATH on sys.path) from `cwd`, then `body` (Python; the provider is
    `p`; base64, json, os and sys are imported). The process fails if anything imported a `components` module.
    `without_alibaba_credentials`: no ALIBABA_CLOUD_*/ALICLOUD_* variables and no ECS metadata lookup, so only what
    the body passes, or `home`'s ~/.aliyun/config.json (HOME), can be found by Alibaba's credential chain.
    Returns the finished process and the blob."""
    from pulumi.dynamic.dynamic import serialize_provider

    blob = serialize_provider(provider)
    _restore_pickler()
    script = (
        "import base64, json, os, sys, dill\n"
        f"p = dill.loads(base64.b64decode({blob!r}))\n"
        + body
        + "assert 'components' not in sys.modules, sorted(m for m in sys.modules if m.startswith('components'))\n"
    )
    env = dict(os.environ)
    if without_alibaba_credentials:
        env = {k: v for k, v in env.items() if not k.startswith(("ALIBABA_CLOUD_", "ALICLOUD_"))}
        env["ALIBABA_CLOUD_ECS_METADATA_DISABLED"] = "true"
    if home is not None:
        env["HOME"] = str(home)
    done = subprocess.run(
        [sys.executable, "-I", "-c", script], cwd=cwd, env=env, capture_output=True, text=True, check=False
    )
    return done, blob


def _run(
    body: Callable[[], object],
    stack: str,
    overrides: Optional[dict],
    secret_keys: Iterable[str],
    preview: bool,
    zones: Iterable[str],
    images: Optional[list[str]],
    record: Optional[Run],
    project: str,
    enforce_cloud_rules: bool = True,
) -> Run:
    run = record if record is not None else Run()
    cloud = CloudMocks(run, zones=zones, images=images)
    runtime_settings.ROOT.set(None)
    pulumi.runtime.set_mocks(cloud, project=project, stack=stack, preview=preview, monitor=RecordingMonitor(cloud, run))
    pulumi.runtime.set_all_config(
        stack_config(stack, overrides, project), [k if ":" in k else f"{project}:{k}" for k in secret_keys]
    )
    original_info = pulumi.log.info

    def record_info(msg: str, resource: Optional[pulumi.Resource] = None, *_args: object, **_kwargs: object) -> None:
        run.logs.append((msg, resource.pulumi_resource_name if resource is not None else ""))

    original_warn = pulumi.log.warn

    def record_warn(msg: str, resource: Optional[pulumi.Resource] = None, *args: object, **kwargs: object) -> None:
        run.warnings.append((msg, resource.pulumi_resource_name if resource is not None else ""))
        original_warn(msg, resource, *args, **kwargs)  # type: ignore[arg-type]

    pulumi.log.info = record_info
    pulumi.log.warn = record_warn
    try:
        body()
        _sync_await(wait_for_rpcs())
    finally:
        pulumi.log.info = original_info
        pulumi.log.warn = original_warn
        _restore_pickler()
    try:
        cloud_rules.check_run(run)
    except cloud_rules.CloudRefusal as refusal:
        run.refusals.append(str(refusal))
    if run.refusals and enforce_cloud_rules:
        raise cloud_rules.CloudRefusal("\n".join(run.refusals))
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


def manifest(resource: Resource) -> dict:
    """A recorded Kubernetes resource as the manifest the provider would send."""

    def whole(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: whole(v) for k, v in value.items()}
        if isinstance(value, list):
            return [whole(v) for v in value]
        if isinstance(value, float) and value.is_integer():
            return int(value)
        return value

    return whole(unwrap(resource.inputs))


def validate_kubernetes(run: Run) -> list[str]:
    """Validate every plain Kubernetes object against the real schemas (strict: no unknown fields).

    Custom resources (no schema in kubernetes-validate) are returned by name for their own assertions.
    """
    import kubernetes_validate

    custom = []
    for obj in run.kubernetes_objects():
        try:
            kubernetes_validate.validate(obj, KUBERNETES_SCHEMA_VERSION, strict=True)
        except kubernetes_validate.SchemaNotFoundError:
            custom.append(f"{obj['apiVersion']}/{obj['kind']}")
    return custom


def is_secret(value: Any) -> bool:
    return isinstance(value, dict) and value.get(rpc._special_sig_key) == SECRET_SIG


def _waits_for(resource) -> list[str]:
    """Its dependencies and its provider (a Kubernetes provider waits for the cluster's kubeconfig)."""
    provider = resource.provider.rsplit("::", 1)[0] if resource.provider else ""
    return [*resource.dependencies, *([provider] if provider else [])]


def closure(run, resource) -> set[str]:
    """Every URN `resource` waits for, directly or through what it waits for (providers included)."""
    by_urn = {r.urn: r for r in run.resources}
    seen, todo = set(), _waits_for(resource)
    while todo:
        urn = todo.pop()
        if urn not in seen:
            seen.add(urn)
            todo.extend(_waits_for(by_urn[urn]) if urn in by_urn else [])
    return seen


def header(text: str, name: str) -> str:
    """The value of a `NAME=value` line of a rendered script or conf (shell quotes stripped)."""
    return re.search(rf"^{name}=(.*)$", text, re.M).group(1).strip("'")


def user_data_files(user_data: str) -> dict[str, str]:
    """{path: content} of the files an ecs host's user-data writes, as the host decodes them: the plain heredocs
    (`cat > PATH <<'END'`) and the gzip+base64 ones (`base64 -d <<'END' | gunzip > PATH`,
    components/alibaba/host_scripts.py write_compressed_file)."""
    import gzip
    import re

    from components.alibaba.host_scripts import HEREDOC_END

    plain = re.compile(rf"cat > (\S+) <<'{HEREDOC_END}'\n(.*?){HEREDOC_END}\n", re.S)
    packed = re.compile(rf"base64 -d <<'{HEREDOC_END}' \| gunzip > (\S+)\n(.*?){HEREDOC_END}\n", re.S)
    files = dict(plain.findall(user_data))
    files.update({path: gzip.decompress(base64.b64decode(body)).decode() for path, body in packed.findall(user_data)})
    return files


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


def settings_for(
    stack: str = "dev",
    overrides: Optional[dict] = None,
    secret_keys: Iterable[str] = SECRET_CONFIG,
    project: str = PROJECT,
):
    """The Settings a stack's config parses into (no Pulumi run): the stack file plus `overrides` key paths."""
    from core.config.parse import parse
    from core.config.source import from_mapping

    values: dict[str, str] = {}
    providers: dict[str, dict[str, str]] = {}
    for key, text in stack_config(stack, overrides, project).items():
        namespace, _, name = key.partition(":")
        if namespace == project:
            values[name] = text
        else:
            providers.setdefault(namespace, {})[name] = text
    secrets = [k for k in secret_keys if ":" not in k]
    provider_secrets = [k for k in secret_keys if ":" in k]
    return parse(from_mapping(values, project, secrets, providers, provider_secrets), stack)
