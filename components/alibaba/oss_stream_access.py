"""What a serving pod needs to stream its weights from OSS (acs, ack; modelStore.load stream, docs/loading.md).

vLLM's Run:ai Model Streamer reads s3:// URIs. OSS speaks S3 on its own endpoints: `https://s3.oss-<region>-internal
.aliyuncs.com` from the region's VPCs, virtual-hosted style only, path style refused (alibabacloud.com/help/en/oss/
developer-reference/use-aws-sdks-to-access-oss; .../compatibility-with-amazon-s3, "Request style"); its AWS SDK
examples sign for the region id, e.g. cn-hangzhou (the Node.js v3 and Java 1.x examples there). It takes STS temporary
credentials as x-amz-security-token in S3-compatible mode (OSS error 0002-00000009: "specify the security token by
configuring the x-amz-security-token header", alibabacloud.com/help/en/oss/support/0002-00000009). That the
combination (SigV4 with an STS token, from the AWS SDK for C++) is accepted was not run against OSS here.

The streamer's two S3 clients (boto3, and the AWS SDK for C++ in libstreamers3.so of runai-model-streamer-s3 0.17.1,
whose default chain includes Aws::Auth::ProcessCredentialsProvider: read in the engine venv) take credentials from the
AWS config file's `credential_process`. Here that is components/scripts/rrsa-credential-process.py, which exchanges the
pod's RRSA token with Alibaba STS AssumeRoleWithOIDC. No AccessKey exists anywhere.

This component makes:
- a RAM policy: oss:GetObject under the model's prefix and oss:ListObjects on the bucket, nothing else (read-only);
- a RAM role only the serving pods' service account can assume through the cluster's OIDC provider (RRSA trust
  policy: oidc:aud sts.aliyuncs.com, oidc:sub system:serviceaccount:<namespace>:<account>, oidc:iss the issuer);
- that ServiceAccount (no API token mounted), and a ConfigMap with the AWS config file and the credential process.
The pod side (`env`, `mounts`, `egress`) is the RRSA doc's manual way, not the ack-pod-identity-webhook add-on: a
projected service account token with audience sts.aliyuncs.com at /var/run/secrets/ack.alibabacloud.com/rrsa-tokens/
token and ALIBABA_CLOUD_ROLE_ARN, ALIBABA_CLOUD_OIDC_PROVIDER_ARN, ALIBABA_CLOUD_OIDC_TOKEN_FILE ("Use RRSA to
authorize different pods to access different cloud services", ACK; "Use RRSA to configure RAM permissions for a
ServiceAccount", ACS: the application is deployed "with the required environment variables and volume mount").
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Optional

import pulumi
import pulumi_alicloud as alicloud
import pulumi_kubernetes as k8s
import pulumi_random as random

from components.alibaba.oss_model_store import STS_AUDIENCE, ram_name, rrsa_role
from components.alibaba.oss_s3_api import CONFIG_ITEM, CREDENTIAL_SCRIPT, SCRIPT_ITEM, aws_config, stream_env
from components.kubernetes.network_policies import Egress, Peer
from components.kubernetes.serving_workload import PodMount
from core.naming import dns_name

SCRIPT = CREDENTIAL_SCRIPT
CONFIG_DIR = "/etc/llm-oss-stream"
# Where RRSA puts the token (the ACK/ACS RRSA docs and ack-pod-identity-webhook use this path).
TOKEN_DIR = "/var/run/secrets/ack.alibabacloud.com/rrsa-tokens"
TOKEN_ITEM = "token"
# The kubelet renews a projected token at 80% of its lifetime; one hour as in the RRSA docs' manual example.
TOKEN_SECONDS = 3600
SERVICE_ACCOUNT = "llm-streamer"
# Read the model, list the bucket: GetObject also covers HeadObject, ListObjects covers ListObjectsV2 (OSS RAM
# actions, "RAM policies: OSS actions"; the same actions ossfs reads with: components/alibaba/oss_model_store.py).
STREAM_ACTIONS = ("oss:GetObject",)
LIST_ACTIONS = ("oss:ListObjects",)
# OSS's internal endpoints and the STS VPC endpoint are Alibaba Cloud service addresses in 100.64.0.0/10, reached
# from the VPC directly (notes/alibaba-facts.md section 10: "OSS and other cloud services live in the service CIDR
# 100.64.0.0/10"); the streamer and the credential process speak HTTPS to them.
CLOUD_SERVICES = "100.64.0.0/10"
EGRESS = Egress(to=(Peer(cidr=CLOUD_SERVICES),), tcp_ports=(443,))


def sts_endpoint(region: str) -> str:
    """STS from the VPC: sts-vpc.<region>.aliyuncs.com, the host Alibaba's credential SDKs use with
    ALIBABA_CLOUD_VPC_ENDPOINT_ENABLED (aliyun/credentials-python alibabacloud_credentials/provider/oidc.py); that
    STS answers there in every region was not checked here."""
    return f"sts-vpc.{region}.aliyuncs.com"


def read_policy_document(bucket: str, prefix: str) -> str:
    """RAM policy: read objects under the model's prefix, list the bucket; no write, no bucket settings."""
    return json.dumps(
        {
            "Version": "1",
            "Statement": [
                {"Effect": "Allow", "Action": list(STREAM_ACTIONS), "Resource": [f"acs:oss:*:*:{bucket}/{prefix}/*"]},
                {"Effect": "Allow", "Action": list(LIST_ACTIONS), "Resource": [f"acs:oss:*:*:{bucket}"]},
            ],
        }
    )


@dataclass(frozen=True)
class OssStreamAccessArgs:
    namespace: pulumi.Input[str]  # the serving namespace (its name is in the trust policy's subject)
    namespace_name: str
    bucket: pulumi.Input[str]
    region: str
    model_prefix: str  # the objects the import workers wrote, e.g. models/Qwen/QwQ-32B
    oidc_provider_arn: pulumi.Input[str]  # the cluster's RRSA provider (cs.ManagedKubernetes rrsa_metadata)
    oidc_issuer_url: pulumi.Input[str]
    service_account: str = SERVICE_ACCOUNT
    tags: Mapping[str, str] = field(default_factory=dict)


class OssStreamAccess(pulumi.ComponentResource):
    uri: pulumi.Output[str]  # s3://<bucket>/<model prefix>: the engine's model argument
    service_account: str
    role_arn: pulumi.Output[str]
    env: dict[str, pulumi.Input[str]]  # for the GPU containers
    mounts: tuple[PodMount, ...]
    egress: tuple[Egress, ...]

    def __init__(self, name: str, args: OssStreamAccessArgs, opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__("llm:alibaba:OssStreamAccess", name, None, opts)
        _check(args)
        child = pulumi.ResourceOptions(parent=self)
        bucket = pulumi.Output.from_input(args.bucket)
        # RAM names are unique per account: 8 hex characters, as the model store's (oss_model_store.SUFFIX_BYTES).
        suffix = random.RandomId(f"{name}-suffix", byte_length=4, opts=child).hex
        policy = alicloud.ram.Policy(
            f"{name}-read",
            policy_name=pulumi.Output.concat(ram_name(name, 100), "-read-", suffix),
            policy_document=bucket.apply(lambda b: read_policy_document(b, args.model_prefix)),
            description="Stream the model from the bucket (read-only, the model's prefix)",
            force=True,
            opts=child,
        )
        role, attachment = rrsa_role(
            (f"{name}-role", f"{name}-read"),
            role_name=pulumi.Output.concat(ram_name(name, 50), "-", suffix),  # RAM: at most 64 characters
            description="The serving pods stream the model from OSS (RRSA)",
            policy=policy,
            oidc_provider_arn=pulumi.Output.from_input(args.oidc_provider_arn).apply(_provider),
            oidc_issuer_url=args.oidc_issuer_url,
            subject=f"system:serviceaccount:{args.namespace_name}:{args.service_account}",
            tags=args.tags,
            opts=child,
        )
        in_cluster = pulumi.ResourceOptions(parent=self)
        account = k8s.core.v1.ServiceAccount(
            f"{name}-account",
            metadata={"name": args.service_account, "namespace": args.namespace},
            automount_service_account_token=False,
            opts=in_cluster,
        )
        config = k8s.core.v1.ConfigMap(
            f"{name}-config",
            metadata={"name": dns_name(name, suffix="oss-stream"), "namespace": args.namespace},
            data={CONFIG_ITEM: aws_config(args.region, CONFIG_DIR), SCRIPT_ITEM: SCRIPT.read_text()},
            opts=in_cluster,
        )
        self.uri = pulumi.Output.concat("s3://", bucket, f"/{args.model_prefix}")
        self.service_account = args.service_account
        # The pods start once the role can be assumed (the ARN is known only after the attachment exists).
        self.role_arn = pulumi.Output.all(role.arn, attachment.id, account.metadata["name"]).apply(lambda v: v[0])
        self.env = {
            # Only the credential process: no fallback to the node's instance role through the metadata service.
            **stream_env(args.region, CONFIG_DIR),
            "ALIBABA_CLOUD_ROLE_ARN": self.role_arn,
            "ALIBABA_CLOUD_OIDC_PROVIDER_ARN": args.oidc_provider_arn,
            "ALIBABA_CLOUD_OIDC_TOKEN_FILE": f"{TOKEN_DIR}/{TOKEN_ITEM}",
            "ALIBABA_CLOUD_STS_ENDPOINT": sts_endpoint(args.region),
        }
        self.mounts = (
            PodMount(
                "oss-stream-config",
                {"configMap": {"name": config.metadata["name"], "defaultMode": 0o444}},
                CONFIG_DIR,
            ),
            PodMount(
                "rrsa-token",
                {
                    "projected": {
                        "defaultMode": 0o444,
                        "sources": [
                            {
                                "serviceAccountToken": {
                                    "audience": STS_AUDIENCE,
                                    "expirationSeconds": TOKEN_SECONDS,
                                    "path": TOKEN_ITEM,
                                }
                            }
                        ],
                    }
                },
                TOKEN_DIR,
            ),
        )
        self.egress = (EGRESS,)
        self.register_outputs({"uri": self.uri, "role_arn": self.role_arn})


def _provider(arn: str) -> str:
    if not arn:
        raise ValueError("the cluster has no RRSA OIDC provider: create it with enable_rrsa (ManagedClusterArgs)")
    return arn


def _check(args: OssStreamAccessArgs) -> None:
    parts = args.model_prefix.split("/")
    if not args.model_prefix or args.model_prefix.startswith("/") or "" in parts or ".." in parts:
        raise ValueError(f"model_prefix must be a relative object prefix like models/<id>, got {args.model_prefix!r}")
