"""The mock provider refuses what the clouds refuse: each rule of tests/cloud_rules, shown refusing.

What the mocks cannot prove: that the cited limits are still the clouds' limits on the day of a deployment.
"""

import cloud_rules
import pytest
from harness import EXAMPLE_STACKS, run_program, run_stack


def test_every_rule_names_its_source():
    assert cloud_rules.RULES and all(r.source for r in [*cloud_rules.RULES, *cloud_rules.RUN_RULES])


@pytest.mark.parametrize("stack", EXAMPLE_STACKS)
def test_every_example_stack_keeps_every_cloud_rule(stack):
    assert run_stack(stack, enforce_cloud_rules=False).refusals == []


def test_an_encrypted_parameter_longer_than_oos_allows_is_refused():
    def program():
        import pulumi
        import pulumi_alicloud as alicloud

        alicloud.oos.SecretParameter(
            "too-long", secret_parameter_name="too-long", type="Secret", value=pulumi.Output.secret("x" * 4097)
        )

    with pytest.raises(cloud_rules.CloudRefusal, match="must be 1-4096 characters; this one is 4097"):
        run_program(program)


def test_a_kubernetes_name_the_api_server_refuses_is_refused():
    def program():
        import pulumi_kubernetes as k8s

        k8s.core.v1.Service("bad", metadata={"name": "Not_A_Label"}, spec={"ports": [{"port": 80}]})

    with pytest.raises(cloud_rules.CloudRefusal, match="must be a DNS-1123 label"):
        run_program(program)


def _secret_command_program(role: bool, wait: bool = True, http_tokens: str = "optional", parameter: str = "p1"):
    """An instance whose Cloud Assistant command reads the OOS parameter p1, with or without a role for it."""

    def program():
        import base64

        import pulumi
        import pulumi_alicloud as alicloud

        from components.alibaba.instance_role import InstanceRole, InstanceRoleArgs, secret_read_statements

        instance = alicloud.ecs.Instance("host", instance_type="ecs.g7.large", image_id="m-1", http_tokens=http_tokens)
        needs = []
        if role:
            needs = InstanceRole(
                "host",
                InstanceRoleArgs(
                    instance_id=instance.id,
                    statements=secret_read_statements("cn-hangzhou", "1", parameter),
                    description="test",
                ),
            ).attached
        command = alicloud.ecs.Command(
            "cmd", command_content=base64.b64encode(b"echo '{{oos-secret:p1}}'").decode(), type="RunShellScript"
        )
        alicloud.ecs.EcsInvocation(
            "run",
            command_id=command.id,
            instance_ids=[instance.id],
            opts=pulumi.ResourceOptions(depends_on=needs if wait else []),
        )

    return program


def test_a_command_reading_an_oos_secret_on_an_instance_without_a_role_is_refused():
    with pytest.raises(cloud_rules.CloudRefusal, match="has no RAM role, but its command reads"):
        run_program(_secret_command_program(role=False))


def test_a_command_that_does_not_wait_for_the_role_or_whose_role_may_not_read_it_is_refused():
    with pytest.raises(cloud_rules.CloudRefusal, match="runs without waiting for"):
        run_program(_secret_command_program(role=True, wait=False))
    with pytest.raises(cloud_rules.CloudRefusal, match="may not oos:GetSecretParameter p1"):
        run_program(_secret_command_program(role=True, parameter="other"))
    run_program(_secret_command_program(role=True))  # the role, allowed and waited for: accepted


def test_imdsv2_enforced_on_an_instance_whose_agent_must_read_the_role_is_refused():
    with pytest.raises(cloud_rules.CloudRefusal, match="enforces IMDSv2"):
        run_program(_secret_command_program(role=True, http_tokens="required"))


def test_a_ram_policy_over_6144_bytes_and_a_bad_role_name_are_refused():
    def program(document_bytes: int, role_name: str):
        def body():
            import pulumi_alicloud as alicloud

            padding = "x" * (document_bytes - len('{"Version":"1","Statement":[],"Pad":""}'))
            alicloud.ram.Policy(
                "p", policy_name="p", policy_document=f'{{"Version":"1","Statement":[],"Pad":"{padding}"}}'
            )
            alicloud.ram.Role("r", role_name=role_name, assume_role_policy_document="{}")

        return body

    run_program(program(6144, "a" * 64))  # the limits themselves pass
    with pytest.raises(cloud_rules.CloudRefusal, match="at most 6144 bytes; this one has 6145"):
        run_program(program(6145, "ok"))
    with pytest.raises(cloud_rules.CloudRefusal, match="RAM role name is 1-64"):
        run_program(program(100, "a" * 65))
