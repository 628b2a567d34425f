"""A RAM role for one ECS instance, allowed exactly what that instance's own commands need.

Cloud Assistant resolves `{{oos-secret:NAME}}` with the *instance's* RAM role, not the deployer's
(aliyun/aliyun_assist_client agent/util/paramstore.go at 028f1de: GetSecretParam reads the role name
from the metadata service, then calls oos:GetSecretParameter with that role's credentials; help "Use
OOS Parameter Store in Cloud Assistant commands", step 2). So every host whose commands read a secret
gets a role of its own, trusted by ECS only, with one policy scoped to the resources it reads.

The role is attached with `ecs.RamRoleAttachment` (AttachInstanceRamRole; `ecs.Instance.role_name` is
deprecated since provider 1.275.0). It arrives after the instance exists, so anything that uses it must
depend on `attached` (the policy attachment and the role attachment). Any process on the instance can
read the role's credentials from the metadata service: keep the policy to the one parameter (audit m5).
The deployer needs `ram:PassRole` on the role to attach it (docs/getting-started.md).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Optional

import pulumi
import pulumi_alicloud as alicloud
import pulumi_random as random

# help "Access KMS from an ECS instance in a secure manner": the trust policy of an instance role.
ECS_TRUST_POLICY = json.dumps(
    {
        "Statement": [{"Action": "sts:AssumeRole", "Effect": "Allow", "Principal": {"Service": ["ecs.aliyuncs.com"]}}],
        "Version": "1",
    }
)
ROLE_NAME_MAX = 64  # RAM CreateRole: 1-64 characters
SUFFIX_BYTES = 4  # RAM names are unique per account: stacks of the same name in two regions must not collide


@dataclass(frozen=True)
class InstanceRoleArgs:
    instance_id: pulumi.Input[str]
    # The policy's statements (see secret_read_statements); an Output when ARNs name the account.
    statements: pulumi.Input[Sequence[Mapping[str, object]]]
    description: str
    tags: Mapping[str, str] = field(default_factory=dict)


class InstanceRole(pulumi.ComponentResource):
    role_name: pulumi.Output[str]
    role_id: pulumi.Output[str]
    attached: list[pulumi.Resource]  # what a command using the role must wait for

    def __init__(self, name: str, args: InstanceRoleArgs, opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__("llm:alibaba:InstanceRole", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        suffix = random.RandomId(f"{name}-suffix", byte_length=SUFFIX_BYTES, opts=child).hex
        base = name[: ROLE_NAME_MAX - 2 * SUFFIX_BYTES - 1].rstrip("-.")
        role = alicloud.ram.Role(
            f"{name}-role",
            role_name=pulumi.Output.concat(base, "-", suffix),
            assume_role_policy_document=ECS_TRUST_POLICY,
            description=args.description,
            force=True,
            tags=dict(args.tags),
            opts=child,
        )
        policy = alicloud.ram.Policy(
            f"{name}-policy",
            policy_name=pulumi.Output.concat(base, "-", suffix),
            policy_document=pulumi.Output.from_input(args.statements).apply(
                lambda statements: json.dumps({"Version": "1", "Statement": list(statements)})
            ),
            description=args.description,
            force=True,
            opts=child,
        )
        granted = alicloud.ram.RolePolicyAttachment(
            f"{name}-policy",
            policy_name=policy.policy_name,
            policy_type="Custom",
            role_name=role.role_name,
            opts=child,
        )
        attachment = alicloud.ecs.RamRoleAttachment(
            f"{name}-attachment",
            instance_id=args.instance_id,
            ram_role_name=role.role_name,
            opts=pulumi.ResourceOptions(parent=self, depends_on=[granted]),
        )
        self.role_name = role.role_name
        self.role_id = role.role_id
        self.attached = [granted, attachment]
        self.register_outputs({"role_name": role.role_name})


def account_id(parent: pulumi.Resource) -> pulumi.Output[str]:
    """The account the stack deploys into (for resource ARNs), from the provider's credentials."""
    return alicloud.get_caller_identity_output(opts=pulumi.InvokeOutputOptions(parent=parent)).account_id


def secret_read_statements(region: str, account: str, parameter_name: str) -> list[dict]:
    """Read one OOS encrypted parameter: oos:GetSecretParameter on it, kms:GetSecretValue on the KMS secret
    OOS keeps it in (`oos/<name>`).

    Sources: GetSecretParameter API "Authorization information" (resource
    acs:oos:{#regionId}:{#accountId}:secretparameter/{#secretparameterName}); help doc-detail/200116 (KMS
    permissions must be granted too). The `secret/oos/<name>` ARN is what two public policies grant (notes:
    alibaba-facts.md section 1, "likely"); if GetSecretValue is refused on a live account, widen it to
    acs:kms:<region>:<account>:secret/*.
    """
    return [
        {
            "Effect": "Allow",
            "Action": ["oos:GetSecretParameter"],
            "Resource": [f"acs:oos:{region}:{account}:secretparameter/{parameter_name}"],
        },
        {
            "Effect": "Allow",
            "Action": ["kms:GetSecretValue"],
            "Resource": [f"acs:kms:{region}:{account}:secret/oos/{parameter_name}"],
        },
    ]


def bucket_read_statements(bucket: str, prefix: str) -> list[dict]:
    """Read the objects under one prefix of one bucket (the weights), nothing else: oss:GetObject on
    `<bucket>/<prefix>/*`, oss:ListObjects on the bucket limited to that prefix by the `oss:Prefix` condition.

    Sources: OSS "RAM policies" (alibabacloud.com/help/en/oss/user-guide/ram-policy-overview): resources
    `acs:oss:*:*:<bucket>` and `acs:oss:*:*:<bucket>/<object>`, the `oss:Prefix` condition key of ListObjects
    (as components.alibaba.oss_model_store.bucket_policy_document names the bucket). Not tried on a live account.
    """
    return [
        {"Effect": "Allow", "Action": ["oss:GetObject"], "Resource": [f"acs:oss:*:*:{bucket}/{prefix}/*"]},
        {
            "Effect": "Allow",
            "Action": ["oss:ListObjects"],
            "Resource": [f"acs:oss:*:*:{bucket}"],
            "Condition": {"StringLike": {"oss:Prefix": [f"{prefix}/*"]}},
        },
    ]
