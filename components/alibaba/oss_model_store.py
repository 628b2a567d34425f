"""Where the weights live on Kubernetes targets: an OSS bucket behind static CSI volumes, or a plain PVC.

OssModelStore (acs, ack, ack-edge): a private, encrypted bucket and two static OSS volumes on the internal
endpoint (or, ack-edge, the one chosen):
- serving_claim: read-only (ReadOnlyMany, ossfs `-o ro`), rooted at `model_prefix`, for the engine pods;
- results_claim: read-write, rooted at `benchmarks/`, for benchmark results, apart from the weights.
The weights are written by the import workers (components.alibaba.model_import_workers) with their own RAM
roles, never through a volume: no pod can write under `model_prefix`. The volumes
authenticate with an AccessKey of a RAM user allowed only this bucket (kept only in a Kubernetes
Secret), or with RRSA: a RAM role the ossfs service account assumes, no long-lived key.

PvcModelStore (`kubernetes`, an existing cluster): one PVC of the cluster's storage; serving,
import and results share it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Optional, cast

import pulumi
import pulumi_alicloud as alicloud
import pulumi_kubernetes as k8s
import pulumi_random as random

from components.alibaba.multipart_cleanup import MultipartCleanup
from core.naming import dns_name

CSI_DRIVER = "ossplugin.csi.alibabacloud.com"
# umask=022 makes the files readable by the engine's user; no stat cache, so a fresh import is seen.
OSSFS_OPTIONS = "-o umask=022 -o max_stat_cache_size=0 -o allow_other"
READ_ONLY_OPTION = "-o ro"
PV_LABEL = "alicloud-pvname"  # the label ACK's static OSS volume examples bind PVCs by
RESULTS_PREFIX = "benchmarks"
RESULTS_GIB = 10
AUTH_MODES = ("access-key", "rrsa")
# ACK runs ossfs in pods of this service account (CSI >= 1.30.4); the namespace is fixed, per
# "Mount a statically provisioned OSS volume" (RRSA method) in the ACK documentation.
OSSFS_SUBJECT = "system:serviceaccount:ack-csi-fuse:csi-fuse-ossfs"
STS_AUDIENCE = "sts.aliyuncs.com"
# What ossfs needs to list and read the bucket (the serving volume, Fluid), and to write benchmark results
# (multipart uploads; a rename is a copy plus a delete) under RESULTS_PREFIX only: the weights are written by the
# import workers with roles of their own (components.alibaba.model_import_workers), never through a volume.
# Nothing that changes bucket settings, ACLs or policies.
OSS_READ_ACTIONS = ("oss:ListObjects", "oss:GetBucketInfo", "oss:ListMultipartUploads", "oss:GetObject")
OSS_WRITE_ACTIONS = ("oss:PutObject", "oss:DeleteObject", "oss:AbortMultipartUpload", "oss:ListParts")
# An interrupted upload leaves billed parts. Lifecycle runs about daily, so this is hygiene only; destroy aborts
# them itself (components.alibaba.multipart_cleanup). 1 is the smallest `days` (OSS lifecycle rules).
ABORT_MULTIPART_DAYS = 1
SUFFIX_BYTES = 4  # 8 hex characters: bucket and RAM names are unique per account (bucket: per OSS)


@dataclass(frozen=True)
class OssModelStoreArgs:
    region: str  # e.g. cn-hangzhou -> oss-cn-hangzhou-internal.aliyuncs.com
    # For the PVCs and the credentials Secret (ACS: same namespace as the PVCs). None: the bucket only (its ACL,
    # encryption, cleanup and policy), no credentials and no volumes: ack-edge's first run imports the model
    # before the cluster can take volumes; the second run adds them to the same component (same bucket URN).
    namespace: Optional[pulumi.Input[str]]
    model_prefix: str  # object prefix the serving and import volumes are rooted at, e.g. "models"
    bucket_name: Optional[str] = None  # None: "<name>-<8 hex>"
    retain: bool = False  # True: the bucket survives `pulumi destroy` (retain_on_delete; destroy still completes)
    auth: str = "access-key"  # or "rrsa"
    oidc_provider_arn: Optional[pulumi.Input[str]] = None  # required for "rrsa"
    volume_gib: int = 1000  # nominal PV capacity (OSS has no quota)
    tags: Mapping[str, str] = field(default_factory=dict)
    oidc_issuer_url: Optional[pulumi.Input[str]] = None  # rrsa: also pin the token issuer (recommended)
    endpoint: Optional[str] = None  # None: the region's internal endpoint (ack-edge may choose the public one)
    # True: bucket_name is an existing bucket (e.g. kept by an earlier stack with retain): use it as it is,
    # without creating or managing the bucket, its ACL or its encryption; the import then finds the weights.
    adopt: bool = False
    # The deployer's identity for the multipart cleanup on destroy (components/alibaba/deployer_credentials.py).
    credentials: Mapping[str, pulumi.Input[str]] = field(default_factory=dict)


class OssModelStore(pulumi.ComponentResource):
    bucket: pulumi.Output[str]
    endpoint: str  # internal endpoint, for Fluid too
    # The claims exist only with a namespace (not on ack-edge's first run).
    serving_claim: pulumi.Output[str]
    results_claim: pulumi.Output[str]
    credentials_secret: Optional[pulumi.Output[str]]  # akId/akSecret, access-key mode only
    role_name: Optional[pulumi.Output[str]]  # rrsa mode only
    cleanup: list[pulumi.Resource]  # the multipart abort (none for a retained or adopted bucket)

    def __init__(self, name: str, args: OssModelStoreArgs, opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__("llm:alibaba:OssModelStore", name, None, opts)
        _check(args)
        child = pulumi.ResourceOptions(parent=self)
        suffix = random.RandomId(f"{name}-suffix", byte_length=SUFFIX_BYTES, opts=child).hex
        self.endpoint = args.endpoint or internal_endpoint(args.region)
        cleanup: list[pulumi.Resource] = []
        self.cleanup = cleanup  # what writers into the bucket depend on, so destroy removes them first
        self.bucket_resource: Optional[alicloud.oss.Bucket] = None  # None for an adopted bucket
        if args.adopt and args.bucket_name:
            self.bucket = pulumi.Output.from_input(args.bucket_name)
        else:
            bucket = self._bucket(name, args, suffix)
            self.bucket_resource = bucket
            # The provider types `bucket` as optional; it is always set once the bucket exists.
            self.bucket = cast(pulumi.Output[str], bucket.bucket)
            if not args.retain:
                # Destroyed after the volumes that write into the bucket and before the bucket (audit D9).
                cleanup.append(
                    MultipartCleanup(
                        f"{name}-abort-uploads",
                        self.bucket,
                        args.region,
                        args.credentials,
                        pulumi.ResourceOptions(parent=self, depends_on=[bucket]),
                    )
                )
        self.credentials_secret = None
        self.role_name = None
        if args.namespace is None:  # no volumes, so nothing that the volumes' policy would be attached to
            self.register_outputs({"bucket": self.bucket})
            return
        policy = alicloud.ram.Policy(
            f"{name}-oss",
            policy_name=pulumi.Output.concat(ram_name(name, 110), "-oss-", suffix),
            policy_document=self.bucket.apply(bucket_policy_document),
            description="Read the model bucket, write its benchmark results (OSS CSI volumes, Fluid)",
            force=True,
            opts=child,
        )
        if args.auth == "access-key":
            secret = self._access_key(name, args, suffix, policy)
            self.credentials_secret = secret.metadata["name"]
            auth = VolumeAuth(secret_name=self.credentials_secret, secret_namespace=args.namespace)
            credentials: list[pulumi.Resource] = [secret]
        else:
            role, attachment = self._role(name, args, suffix, policy)
            self.role_name = role.role_name
            auth = VolumeAuth(role_name=self.role_name)
            credentials = [attachment]

        volumes = {
            "serving": ("/" + args.model_prefix, True, args.volume_gib),
            "results": ("/" + RESULTS_PREFIX, False, RESULTS_GIB),
        }
        claims = {}
        for role_of, (path, read_only, gib) in volumes.items():
            claims[role_of] = self._static_volume(
                name,
                role_of,
                args.namespace,
                OssVolume(
                    bucket=self.bucket,
                    endpoint=self.endpoint,
                    region=args.region,
                    path=path,
                    read_only=read_only,
                    gib=gib,
                ),
                auth,
                [*credentials, *cleanup],
            )
        self.serving_claim = claims["serving"]
        self.results_claim = claims["results"]
        self.register_outputs(
            {
                "bucket": self.bucket,
                "serving_claim": self.serving_claim,
                "results_claim": self.results_claim,
            }
        )

    def _bucket(self, name: str, args: OssModelStoreArgs, suffix: pulumi.Output[str]) -> alicloud.oss.Bucket:
        """Private, encrypted, Standard LRS (the weights can be downloaded again); public access blocked."""
        bucket_name = args.bucket_name or pulumi.Output.concat(_bucket_prefix(name), "-", suffix)
        keep = pulumi.ResourceOptions(parent=self, retain_on_delete=args.retain)
        bucket = alicloud.oss.Bucket(
            f"{name}-bucket",
            bucket=bucket_name,
            storage_class="Standard",
            redundancy_type="LRS",
            server_side_encryption_rule={"sse_algorithm": "AES256"},
            lifecycle_rules=[
                {
                    "id": "abort-incomplete-uploads",
                    "enabled": True,
                    "abort_multipart_uploads": [{"days": ABORT_MULTIPART_DAYS}],
                }
            ],
            # retain: the bucket outlives the stack. Otherwise destroy empties it first, so it never hangs.
            force_destroy=None if args.retain else True,
            tags=dict(args.tags),
            opts=pulumi.ResourceOptions(
                parent=self,
                retain_on_delete=args.retain,
                # BucketAcl manages the ACL (the provider's note on standalone sub-resources)
                ignore_changes=["acl"],
            ),
        )
        alicloud.oss.BucketAcl(f"{name}-acl", bucket=bucket.bucket, acl="private", opts=keep)
        alicloud.oss.BucketPublicAccessBlock(
            f"{name}-public-access-block", bucket=bucket.bucket, block_public_access=True, opts=keep
        )
        return bucket

    def _access_key(
        self, name: str, args: OssModelStoreArgs, suffix: pulumi.Output[str], policy: alicloud.ram.Policy
    ) -> k8s.core.v1.Secret:
        """A RAM user allowed only this bucket; its AccessKey exists only in state (secret) and the Secret."""
        child = pulumi.ResourceOptions(parent=self)
        user = alicloud.ram.User(
            f"{name}-oss-user",
            name=pulumi.Output.concat(ram_name(name, 50), "-oss-", suffix),
            display_name=ram_name(name, 100) + "-oss",
            comments="OSS CSI volumes of the model bucket",
            force=True,
            opts=child,
        )
        attachment = alicloud.ram.UserPolicyAttachment(
            f"{name}-oss-user", policy_name=policy.policy_name, policy_type="Custom", user_name=user.name, opts=child
        )
        # The provider marks `secret` as a Pulumi secret (additional_secret_outputs); kept secret below too.
        key = alicloud.ram.AccessKey(
            f"{name}-oss-key",
            user_name=user.name,
            status="Active",
            opts=pulumi.ResourceOptions(parent=self, depends_on=[attachment]),
        )
        return k8s.core.v1.Secret(
            f"{name}-oss-credentials",
            metadata={"name": dns_name(name, suffix="oss-credentials"), "namespace": args.namespace},
            type="Opaque",
            string_data=pulumi.Output.secret({"akId": key.id, "akSecret": key.secret}),
            opts=child,
        )

    def _role(
        self, name: str, args: OssModelStoreArgs, suffix: pulumi.Output[str], policy: alicloud.ram.Policy
    ) -> tuple[alicloud.ram.Role, alicloud.ram.RolePolicyAttachment]:
        """A RAM role only the cluster's ossfs service account can assume, through the cluster's OIDC provider."""
        assert args.oidc_provider_arn is not None  # _check: auth rrsa needs it
        return rrsa_role(
            (f"{name}-oss-role", f"{name}-oss-role"),
            role_name=pulumi.Output.concat(ram_name(name, 50), "-oss-", suffix),
            description="OSS CSI volumes of the model bucket (RRSA)",
            policy=policy,
            oidc_provider_arn=args.oidc_provider_arn,
            oidc_issuer_url=args.oidc_issuer_url,
            subject=OSSFS_SUBJECT,
            tags=args.tags,
            opts=pulumi.ResourceOptions(parent=self),
        )

    def _static_volume(
        self,
        name: str,
        role_of: str,
        namespace: pulumi.Input[str],
        volume: OssVolume,
        auth: VolumeAuth,
        credentials: list[pulumi.Resource],
    ) -> pulumi.Output[str]:
        """A static PV on the bucket and the PVC bound to exactly it; returns the claim name."""
        pv_name = dns_name(name, suffix=role_of)  # also a label value: at most 63 characters
        name = f"{name}-{role_of}"
        access = ["ReadOnlyMany"] if volume.read_only else ["ReadWriteMany"]
        storage = f"{volume.gib}Gi"
        pv = k8s.core.v1.PersistentVolume(
            name,
            metadata={"name": pv_name, "labels": {PV_LABEL: pv_name}},
            spec={
                "access_modes": access,
                "capacity": {"storage": storage},
                "persistent_volume_reclaim_policy": "Retain",  # deleting the volume never touches the bucket
                "storage_class_name": "",
                "csi": volume.csi(pv_name, auth),
            },
            opts=pulumi.ResourceOptions(parent=self, depends_on=credentials),
        )
        claim = k8s.core.v1.PersistentVolumeClaim(
            name,
            metadata={"name": pv_name, "namespace": namespace},
            spec={
                "access_modes": access,
                "resources": {"requests": {"storage": storage}},
                "storage_class_name": "",
                "volume_name": pv.metadata["name"],
                "selector": {"match_labels": {PV_LABEL: pv_name}},
            },
            opts=pulumi.ResourceOptions(parent=self),
        )
        return claim.metadata["name"]


@dataclass(frozen=True)
class VolumeAuth:
    """access-key: the Secret the CSI node plugin reads; rrsa: the RAM role ossfs assumes."""

    secret_name: Optional[pulumi.Input[str]] = None
    secret_namespace: Optional[pulumi.Input[str]] = None
    role_name: Optional[pulumi.Input[str]] = None


@dataclass(frozen=True)
class OssVolume:
    bucket: pulumi.Input[str]
    endpoint: str
    region: str
    path: str
    read_only: bool
    gib: int

    def csi(self, handle: str, auth: VolumeAuth) -> k8s.core.v1.CSIPersistentVolumeSourceArgsDict:
        options = OSSFS_OPTIONS + (f" {READ_ONLY_OPTION}" if self.read_only else "")
        # volume_attributes is a string map the OSS CSI driver reads: its keys are the driver's own (camelCase).
        attributes: dict[str, pulumi.Input[str]] = {
            "bucket": self.bucket,
            "url": self.endpoint,
            "path": self.path,
            "otherOpts": options,
            # OSS's V4 signature: ossfs 1.0 signs with V1 unless told (ossfs 1.91.4 release notes: -o sigv4 with
            # -o region), and OSS refuses V1 for buckets created since 2025-09-01. The CSI driver adds both
            # options for sigVersion v4 (since 2024-09) and takes the region from this key (since 2026-06; older
            # versions ignore it and read the node's region): kubernetes-sigs/alibaba-cloud-csi-driver
            # pkg/oss/utils.go, pkg/mounter/fuse_pod_manager/oss/ossfs/manager.go.
            "sigVersion": "v4",
            "region": self.region,
        }
        source: k8s.core.v1.CSIPersistentVolumeSourceArgsDict = {
            "driver": CSI_DRIVER,
            "volume_handle": handle,
            "read_only": self.read_only,
        }
        if auth.role_name is not None:
            attributes.update({"authType": "rrsa", "roleName": auth.role_name})
        else:
            source["node_publish_secret_ref"] = {"name": auth.secret_name, "namespace": auth.secret_namespace}
        source["volume_attributes"] = attributes
        return source


def internal_endpoint(region: str) -> str:
    """OSS from inside the region's VPCs: no Internet traffic, no traffic charge."""
    return f"oss-{region}-internal.aliyuncs.com"


def bucket_policy_document(bucket: str) -> str:
    """RAM policy: read this bucket; write only its benchmark results; nothing else."""
    return json.dumps(
        {
            "Version": "1",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Action": list(OSS_READ_ACTIONS),
                    "Resource": [f"acs:oss:*:*:{bucket}", f"acs:oss:*:*:{bucket}/*"],
                },
                {
                    "Effect": "Allow",
                    "Action": list(OSS_WRITE_ACTIONS),
                    "Resource": [f"acs:oss:*:*:{bucket}/{RESULTS_PREFIX}/*"],
                },
            ],
        }
    )


def rrsa_role(
    resource_names: tuple[str, str],
    *,
    role_name: pulumi.Input[str],
    description: str,
    policy: alicloud.ram.Policy,
    oidc_provider_arn: pulumi.Input[str],
    oidc_issuer_url: Optional[pulumi.Input[str]],
    subject: str,
    tags: Mapping[str, str],
    opts: pulumi.ResourceOptions,
) -> tuple[alicloud.ram.Role, alicloud.ram.RolePolicyAttachment]:
    """A RAM role that one service account's RRSA tokens may assume (trust_policy_document), with `policy` attached;
    `resource_names`: the role's and the attachment's Pulumi names."""
    trust = pulumi.Output.all(oidc_provider_arn, oidc_issuer_url).apply(
        lambda v: trust_policy_document(v[0], v[1], subject)
    )
    role = alicloud.ram.Role(
        resource_names[0],
        role_name=role_name,
        assume_role_policy_document=trust,
        description=description,
        force=True,
        tags=dict(tags),
        opts=opts,
    )
    attachment = alicloud.ram.RolePolicyAttachment(
        resource_names[1], policy_name=policy.policy_name, policy_type="Custom", role_name=role.role_name, opts=opts
    )
    return role, attachment


def trust_policy_document(
    oidc_provider_arn: str, oidc_issuer_url: Optional[str] = None, subject: str = OSSFS_SUBJECT
) -> str:
    """Who may assume the RRSA role: tokens of one service account (by default ossfs'), from this cluster's OIDC
    provider."""
    condition = {"oidc:aud": STS_AUDIENCE, "oidc:sub": subject}
    if oidc_issuer_url:
        condition["oidc:iss"] = oidc_issuer_url
    return json.dumps(
        {
            "Version": "1",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Action": "sts:AssumeRole",
                    "Principal": {"Federated": [oidc_provider_arn]},
                    "Condition": {"StringEquals": condition},
                }
            ],
        }
    )


def _check(args: OssModelStoreArgs) -> None:
    if args.auth not in AUTH_MODES:
        raise ValueError(f"auth must be one of {AUTH_MODES}, got {args.auth!r}")
    if args.auth == "rrsa" and args.oidc_provider_arn is None:
        raise ValueError("auth 'rrsa' needs oidc_provider_arn (the cluster's RRSA OIDC provider)")
    prefix = args.model_prefix
    if not prefix or prefix.startswith("/") or prefix.endswith("/") or ".." in prefix.split("/"):
        raise ValueError(f"model_prefix must be a relative object prefix like 'models', got {prefix!r}")
    if prefix.split("/")[0] == RESULTS_PREFIX:
        raise ValueError(f"model_prefix must not be under {RESULTS_PREFIX}/, where benchmark results go")
    if args.bucket_name is not None and not re.fullmatch(r"[a-z0-9][a-z0-9-]{1,61}[a-z0-9]", args.bucket_name):
        raise ValueError(f"bucket_name must be 3-63 lowercase letters, digits and '-', got {args.bucket_name!r}")
    if args.volume_gib <= 0:
        raise ValueError(f"volume_gib must be positive, got {args.volume_gib}")
    if args.adopt and args.bucket_name is None:
        raise ValueError("adopt needs bucket_name: the existing bucket to use")


def _bucket_prefix(name: str) -> str:
    """Leaves room for "-<8 hex>" within OSS's 63 characters."""
    return dns_name(name)[: 63 - 1 - 2 * SUFFIX_BYTES].rstrip("-")


def ram_name(name: str, limit: int) -> str:
    """`name` as a RAM name: letters, digits and hyphens, at most `limit` characters."""
    return re.sub(r"[^A-Za-z0-9-]+", "-", name)[:limit].rstrip("-")
