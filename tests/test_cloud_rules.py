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


def _cluster(profile: str):
    import pulumi_alicloud as alicloud

    return alicloud.cs.ManagedKubernetes("c", profile=profile, vswitch_ids=["vsw-1"])


def _job(node_selector=None):
    import pulumi_kubernetes as k8s

    pod = {"restartPolicy": "Never", "containers": [{"name": "x", "image": "python:3.12-slim-bookworm"}]}
    if node_selector:
        pod["nodeSelector"] = node_selector
    k8s.batch.v1.Job("import", metadata={"name": "import"}, spec={"template": {"spec": pod}})


def test_an_unknown_addon_name_is_refused():
    def program():
        import pulumi_alicloud as alicloud

        alicloud.cs.KubernetesAddon("adapter", cluster_id="c", name="ack-alibaba-cloud-metrics-adapter")

    with pytest.raises(cloud_rules.CloudRefusal, match=r"no source installs .*through the add-on API"):
        run_program(program)


def test_an_autoscaled_pool_without_cluster_autoscaling_is_refused():
    def program(enabled: bool):
        def body():
            import pulumi_alicloud as alicloud

            alicloud.cs.NodePool("gpu", cluster_id="c1", scaling_config={"enable": True, "min_size": 1, "max_size": 3})
            if enabled:
                alicloud.cs.AutoscalingConfig("on", cluster_id="c1", scaler_type="cluster-autoscaler")

        return body

    with pytest.raises(cloud_rules.CloudRefusal, match=r"no cs\.AutoscalingConfig"):
        run_program(program(False))
    run_program(program(True))


def test_a_registry_k8s_io_chart_in_a_mainland_region_is_refused():
    def program(region: str):
        def body():
            import pulumi_alicloud as alicloud
            import pulumi_kubernetes as k8s

            alicloud.Provider("alicloud", region=region)
            k8s.helm.v3.Release("lws", chart="oci://registry.k8s.io/lws/charts/lws", version="0.9.0")

        return body

    with pytest.raises(cloud_rules.CloudRefusal, match=r"registry\.k8s\.io, which mainland China regions"):
        run_program(program("cn-hangzhou"))
    run_program(program("ap-southeast-1"))


def test_a_job_on_ack_edge_that_may_land_on_an_idc_node_is_refused():
    def program(pinned: bool):
        def body():
            import pulumi_alicloud as alicloud

            _cluster("Edge")
            alicloud.cs.NodePool("system", cluster_id="c", labels=[{"key": "llm-serving/pool", "value": "system"}])
            _job({"llm-serving/pool": "system"} if pinned else None)

        return body

    with pytest.raises(cloud_rules.CloudRefusal, match="may be scheduled on an IDC node"):
        run_program(program(False))
    run_program(program(True))


def test_an_acs_pod_whose_engine_image_outgrows_its_ephemeral_storage_is_refused():
    def program(annotation):
        def body():
            import pulumi_kubernetes as k8s

            _cluster("Acs")
            metadata = (
                {"labels": {"app": "llm"}, "annotations": annotation} if annotation else {"labels": {"app": "llm"}}
            )
            k8s.apps.v1.Deployment(
                "llm",
                metadata={"name": "llm"},
                spec={
                    "selector": {"matchLabels": {"app": "llm"}},
                    "template": {
                        "metadata": metadata,
                        "spec": {"containers": [{"name": "engine", "image": "docker.io/vllm/vllm-openai:v0.32.0"}]},
                    },
                },
            )

        return body

    with pytest.raises(cloud_rules.CloudRefusal, match="needs 53 GiB of ephemeral storage"):
        run_program(program(None))
    with pytest.raises(cloud_rules.CloudRefusal, match="plus 22 declared"):
        run_program(program({"alibabacloud.com/extra-ephemeral-storage": "22Gi"}))
    run_program(program({"alibabacloud.com/extra-ephemeral-storage": "24Gi"}))
