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


# gcp ---------------------------------------------------------------------------------------------------------


def test_a_gcp_resource_that_does_not_wait_for_its_api_is_refused():
    def program():
        import pulumi_gcp as gcp

        gcp.projects.Service("storage", service="storage.googleapis.com")
        gcp.storage.Bucket("models", location="US")

    with pytest.raises(cloud_rules.CloudRefusal, match=r"without waiting for the projects\.Service of storage"):
        run_program(program)


def test_a_gcp_resource_waiting_for_its_api_through_another_resource_is_accepted():
    def program():
        import pulumi
        import pulumi_gcp as gcp

        api = gcp.projects.Service("compute", service="compute.googleapis.com")
        network = gcp.compute.Network("net", opts=pulumi.ResourceOptions(depends_on=[api]))
        gcp.compute.Subnetwork("sub", network=network.id, ip_cidr_range="10.0.0.0/24")  # waits via network.id

    assert run_program(program).refusals == []


def test_a_gcp_resource_type_without_a_known_api_is_refused_until_the_rule_knows_it():
    def program():
        import pulumi_gcp as gcp

        gcp.pubsub.Topic("topic")

    with pytest.raises(cloud_rules.CloudRefusal, match="no API is known for this resource type"):
        run_program(program)


def test_a_gke_data_source_called_before_its_api_is_enabled_fails_as_on_a_new_project():
    def program():
        import pulumi_gcp as gcp

        gcp.projects.Service("container", service="container.googleapis.com")
        gcp.container.get_engine_versions(location="us-central1", project="p-123456")

    for preview in (True, False):
        with pytest.raises(Exception, match=r"container\.googleapis\.com has not been used .* \(SERVICE_DISABLED\)"):
            run_program(program, preview=preview)


def test_a_gke_data_source_that_waits_for_its_api_runs_at_up_and_is_skipped_at_the_first_preview():
    def program():
        import pulumi
        import pulumi_gcp as gcp

        api = gcp.projects.Service("container", service="container.googleapis.com")
        versions = gcp.container.get_engine_versions_output(
            location="us-central1", project="p-123456", opts=pulumi.InvokeOutputOptions(depends_on=[api])
        )
        return {"regular": versions.release_channel_default_version.apply(lambda d: (d or {}).get("REGULAR"))}

    up = run_program(program)
    assert up.refusals == [] and up.outputs["regular"]
    preview = run_program(program, preview=True)
    assert preview.refusals == [] and not any("getEngineVersions" in token for token, _ in preview.invokes)
