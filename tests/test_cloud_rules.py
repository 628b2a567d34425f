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

    # A private API server: the whitelist rules have their own tests (test_api_server_acl.py).
    return alicloud.cs.ManagedKubernetes("c", profile=profile, vswitch_ids=["vsw-1"], slb_internet_enabled=False)


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


@pytest.mark.parametrize(
    "eip_mbps, package_share, foreign, refused",
    [
        (200, None, False, None),
        (201, None, False, r"carries 201 Mbit/s; one EIP of an SNAT pool carries at most 200"),
        (500, 200, False, None),  # in a package, its share counts
        (500, 201, False, r"carries 201 Mbit/s"),
        (200, None, True, r"47\.96\.9\.9 is not an EIP associated with the NAT gateway"),
    ],
)
def test_an_snat_pool_eip_over_200_mbits_or_not_on_the_nat_is_refused(eip_mbps, package_share, foreign, refused):
    def program():
        import pulumi
        import pulumi_alicloud as alicloud

        nat = alicloud.vpc.NatGateway("nat", vpc_id="vpc", vswitch_id="vsw", nat_type="Enhanced")
        eip = alicloud.ecs.EipAddress("eip", bandwidth=str(eip_mbps), internet_charge_type="PayByBandwidth")
        alicloud.ecs.EipAssociation("eip", allocation_id=eip.id, instance_id=nat.id, instance_type="Nat")
        if package_share:
            package = alicloud.vpc.CommonBandwithPackage("bw", bandwidth="1000", internet_charge_type="PayByBandwidth")
            alicloud.vpc.CommonBandwithPackageAttachment(
                "bw",
                bandwidth_package_id=package.id,
                instance_id=eip.id,
                bandwidth_package_bandwidth=str(package_share),
            )
        ips = pulumi.Output.all(eip.ip_address, *(["47.96.9.9"] if foreign else [])).apply(",".join)
        alicloud.vpc.SnatEntry("snat", snat_table_id=nat.snat_table_ids, source_vswitch_id="vsw", snat_ip=ips)

    if refused:
        with pytest.raises(cloud_rules.CloudRefusal, match=refused):
            run_program(program)
    else:
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


def gpu_pool(machine: str, **extra):
    """A program registering one GPU node pool with `extra` top-level and nodeConfig inputs."""
    node_config = {k: v for k, v in extra.items() if k in ("spot", "flex_start", "max_run_duration", "reservation")}
    pool_args = {k: v for k, v in extra.items() if k not in node_config}

    def program():
        import pulumi
        import pulumi_gcp as gcp

        api = gcp.projects.Service("container", service="container.googleapis.com")
        config = {"machine_type": machine, **{k: v for k, v in node_config.items() if k != "reservation"}}
        if "reservation" in node_config:
            config["reservation_affinity"] = node_config["reservation"]
        gcp.container.NodePool(
            "gpu", cluster="c", node_config=config, opts=pulumi.ResourceOptions(depends_on=[api]), **pool_args
        )

    return program


@pytest.mark.parametrize(
    "machine, extra, refused",
    [
        ("a4-highgpu-8g", {"node_count": 1}, "a4-highgpu-8g is not sold on demand"),
        (
            "a3-ultragpu-8g",
            {"node_count": 1, "reservation": {"consume_reservation_type": "ANY_RESERVATION"}},
            "a3-ultragpu-8g is not sold on demand",
        ),
        ("a3-highgpu-2g", {"node_count": 1}, "can only be had as Spot or Flex-start VMs"),
        ("a4-highgpu-8g", {"node_count": 1, "spot": True}, None),
        ("g2-standard-8", {"node_count": 1}, None),
    ],
)
def test_gpu_machines_google_does_not_sell_on_demand_are_refused_without_spot_flex_or_a_reservation(
    machine, extra, refused
):
    if refused is None:
        assert run_program(gpu_pool(machine, **extra)).refusals == []
    else:
        with pytest.raises(cloud_rules.CloudRefusal, match=refused):
            run_program(gpu_pool(machine, **extra))


@pytest.mark.parametrize(
    "extra, refused",
    [
        ({"node_count": 1}, "a node_count"),
        ({"autoscaling": {"total_min_node_count": 1, "total_max_node_count": 2}}, "no autoscaling from a minimum of 0"),
        ({"autoscaling": {"total_min_node_count": 0, "total_max_node_count": 2}}, "auto-repair on"),
        (
            {
                "autoscaling": {"total_min_node_count": 0, "total_max_node_count": 2, "location_policy": "BALANCED"},
                "management": {"auto_repair": False},
            },
            "a location policy other than ANY",
        ),
        (
            {
                "autoscaling": {"total_min_node_count": 0, "total_max_node_count": 2},
                "management": {"auto_repair": False},
                "max_run_duration": "604801s",
            },
            "max_run_duration 604801s",
        ),
    ],
)
def test_a_flex_start_pool_must_autoscale_from_zero_without_auto_repair(extra, refused):
    with pytest.raises(cloud_rules.CloudRefusal, match=refused):
        run_program(gpu_pool("a4-highgpu-8g", flex_start=True, **extra))
    fine = {
        "autoscaling": {"total_min_node_count": 0, "total_max_node_count": 2, "location_policy": "ANY"},
        "management": {"auto_repair": False},
        "max_run_duration": "604800s",
    }
    assert run_program(gpu_pool("a4-highgpu-8g", flex_start=True, **fine)).refusals == []


def test_a_spot_pool_consuming_a_reservation_is_refused():
    specific = {"consume_reservation_type": "SPECIFIC_RESERVATION", "key": "compute.googleapis.com/reservation-name"}
    with pytest.raises(cloud_rules.CloudRefusal, match="a Spot node pool has reservation affinity SPECIFIC"):
        run_program(gpu_pool("a4-highgpu-8g", node_count=1, spot=True, reservation={**specific, "values": ["r"]}))


def test_a_specific_reservation_needs_its_key_and_name_and_a_block_its_zone():
    named = {"consume_reservation_type": "SPECIFIC_RESERVATION", "key": "compute.googleapis.com/reservation-name"}
    with pytest.raises(cloud_rules.CloudRefusal, match=r"needs key compute\.googleapis\.com/reservation-name"):
        run_program(
            gpu_pool("a4-highgpu-8g", node_count=1, reservation={"consume_reservation_type": "SPECIFIC_RESERVATION"})
        )
    block = {**named, "values": ["projects/p/reservations/r/reservationBlocks/b"]}
    with pytest.raises(cloud_rules.CloudRefusal, match="a reservation block needs the pool's zone"):
        run_program(gpu_pool("a4-highgpu-8g", node_count=1, reservation=block))
    assert (
        run_program(gpu_pool("a4-highgpu-8g", node_count=1, node_locations=["z-a"], reservation=block)).refusals == []
    )


@pytest.mark.parametrize(
    "exclusion, refused",
    [
        (
            {
                "end_time": "2027-01-01T00:00:00Z",
                "exclusion_options": {
                    "scope": "NO_MINOR_OR_NODE_UPGRADES",
                    "end_time_behavior": "UNTIL_END_OF_SUPPORT",
                },
            },
            "exactly one of end_time and end_time_behavior",
        ),
        (
            {"exclusion_options": {"scope": "NO_MINOR_OR_NODE_UPGRADES"}},
            "exactly one of end_time and end_time_behavior",
        ),
        (
            {"exclusion_options": {"scope": "NO_NODE_UPGRADES", "end_time_behavior": "UNTIL_END_OF_SUPPORT"}},
            "scope NO_NODE_UPGRADES is not one of",
        ),
    ],
)
def test_a_maintenance_exclusion_gke_would_refuse_is_refused(exclusion, refused):
    def program():
        import pulumi
        import pulumi_gcp as gcp

        api = gcp.projects.Service("container", service="container.googleapis.com")
        gcp.container.Cluster(
            "c",
            location="us-central1",
            maintenance_policy={
                "daily_maintenance_window": {"start_time": "09:00"},
                "maintenance_exclusions": [{"exclusion_name": "x", "start_time": "2025-12-01T00:00:00Z", **exclusion}],
            },
            opts=pulumi.ResourceOptions(depends_on=[api]),
        )

    with pytest.raises(cloud_rules.CloudRefusal, match=refused):
        run_program(program)


def test_the_lws_webhook_on_a_private_cluster_needs_a_firewall_rule_from_the_control_plane():
    def program(with_rule: bool):
        def body():
            import pulumi
            import pulumi_gcp as gcp
            import pulumi_kubernetes as k8s

            apis = [gcp.projects.Service(a, service=f"{a}.googleapis.com") for a in ("compute", "container")]
            after = pulumi.ResourceOptions(depends_on=apis)
            net = gcp.compute.Network("net", opts=after)
            sub = gcp.compute.Subnetwork("sub", network=net.id, ip_cidr_range="10.0.0.0/20", opts=after)
            gcp.container.Cluster(
                "c",
                network=net.id,
                subnetwork=sub.id,
                private_cluster_config={"enable_private_nodes": True},
                opts=after,
            )
            if with_rule:
                gcp.compute.Firewall(
                    "webhooks",
                    network=net.id,
                    source_ranges=["10.0.0.0/20"],
                    allows=[{"protocol": "tcp", "ports": ["9443"]}],
                    opts=after,
                )
            k8s.helm.v3.Release("lws", chart="oci://registry.k8s.io/lws/charts/lws")

        return body

    with pytest.raises(cloud_rules.CloudRefusal, match=r"no firewall rule lets its control plane \(10\.0\.0\.0/20\)"):
        run_program(program(with_rule=False))
    assert run_program(program(with_rule=True)).refusals == []


def test_a_node_pool_created_before_its_service_account_holds_the_node_role_is_refused():
    def program(wait: bool):
        def body():
            import pulumi
            import pulumi_gcp as gcp

            apis = [gcp.projects.Service(a, service=f"{a}.googleapis.com") for a in ("iam", "container")]
            after = pulumi.ResourceOptions(depends_on=apis)
            account = gcp.serviceaccount.Account("nodes", account_id="nodes", project="p-123456", opts=after)
            role = gcp.projects.IAMMember(
                "role",
                project="p-123456",
                role="roles/container.defaultNodeServiceAccount",
                member=pulumi.Output.concat("serviceAccount:", account.email),
            )
            gcp.container.NodePool(
                "gpu",
                cluster="c",
                node_count=1,
                node_config={"machine_type": "g2-standard-8", "service_account": account.email},
                opts=pulumi.ResourceOptions(depends_on=[*apis, *([role] if wait else [])]),
            )

        return body

    with pytest.raises(cloud_rules.CloudRefusal, match=r"before it holds roles/container\.defaultNodeServiceAccount"):
        run_program(program(wait=False))
    assert run_program(program(wait=True)).refusals == []


def test_a_pod_pulling_through_the_stacks_registry_before_the_nodes_may_read_it_is_refused():
    def program(wait: bool):
        def body():
            import pulumi
            import pulumi_gcp as gcp
            import pulumi_kubernetes as k8s

            api = gcp.projects.Service("ar", service="artifactregistry.googleapis.com")
            repo = gcp.artifactregistry.Repository(
                "repo",
                repository_id="mirror",
                location="us-central1",
                format="DOCKER",
                opts=pulumi.ResourceOptions(depends_on=[api]),
            )
            reader = gcp.artifactregistry.RepositoryIamMember(
                "reader", repository=repo.name, role="roles/artifactregistry.reader", member="serviceAccount:n@p"
            )
            k8s.batch.v1.Job(
                "job",
                spec={
                    "template": {
                        "spec": {
                            "restartPolicy": "Never",
                            "containers": [{"name": "c", "image": "us-central1-docker.pkg.dev/p/mirror/vllm/x:1"}],
                        }
                    }
                },
                opts=pulumi.ResourceOptions(depends_on=[reader] if wait else [repo]),
            )

        return body

    with pytest.raises(cloud_rules.CloudRefusal, match="before the nodes may read repository mirror"):
        run_program(program(wait=False))
    assert run_program(program(wait=True)).refusals == []


@pytest.mark.parametrize(
    "timeout, content, refused",
    [
        (86400, "x" * 100, None),
        (86401, "x" * 100, "timeout is 10-86400 s"),
        (5, "x" * 100, "timeout is 10-86400 s"),
        (600, "x" * (18 * 1024 + 1), "at most 18432 bytes"),
    ],
)
def test_a_cloud_assistant_command_beyond_its_timeout_or_size_is_refused(timeout, content, refused):
    def program():
        import pulumi_alicloud as alicloud

        alicloud.ecs.Command("c", name="c", type="RunShellScript", command_content=content, timeout=timeout)

    if refused is None:
        run_program(program)
    else:
        with pytest.raises(cloud_rules.CloudRefusal, match=refused):
            run_program(program)


def _role_command_program(wait: bool):
    def program():
        import pulumi
        import pulumi_alicloud as alicloud

        from components.alibaba.instance_role import InstanceRole, InstanceRoleArgs

        instance = alicloud.ecs.Instance("worker", instance_type="ecs.g7.xlarge", image_id="m-1")
        role = InstanceRole(
            "worker",
            InstanceRoleArgs(
                instance_id=instance.id,
                statements=[{"Effect": "Allow", "Action": ["ecs:StopInstance"], "Resource": ["*"]}],
                description="d",
            ),
        )
        command = alicloud.ecs.Command("c", name="c", type="RunShellScript", command_content="ZWNobwo=", timeout=60)
        alicloud.ecs.EcsInvocation(
            "c",
            command_id=command.id,
            instance_ids=[instance.id],
            opts=pulumi.ResourceOptions(depends_on=role.attached if wait else []),
        )

    return program


def test_a_command_that_runs_before_its_instance_role_is_attached_is_refused():
    run_program(_role_command_program(wait=True))
    with pytest.raises(cloud_rules.CloudRefusal, match="without waiting for its role"):
        run_program(_role_command_program(wait=False))


def _cloud_run_job(**task):
    """A program registering one Cloud Run job whose task template takes `task` (container: cpu, memory, env)."""
    limits = {k: task.pop(k) for k in ("cpu", "memory") if k in task}
    envs = task.pop("envs", [])
    name, token = task.pop("name", "import"), task.pop("token", "abc123")

    def program():
        import pulumi
        import pulumi_gcp as gcp

        api = gcp.projects.Service("run", service="run.googleapis.com")
        gcp.cloudrunv2.Job(
            "job",
            name=name,
            location="us-central1",
            run_execution_token=token,
            template={
                "template": {
                    "containers": [{"image": "python", "resources": {"limits": limits}, "envs": envs}],
                    **task,
                }
            },
            opts=pulumi.ResourceOptions(depends_on=[api]),
        )

    return program


@pytest.mark.parametrize(
    "task, refused",
    [
        ({"timeout": f"{168 * 3600}s", "cpu": "8", "memory": "32Gi"}, None),
        ({"timeout": f"{168 * 3600 + 1}s"}, "task timeout .* is over Cloud Run's 168 h"),
        ({"cpu": "16", "memory": "32Gi"}, "cpu 16 is not one of"),
        ({"cpu": "8", "memory": "64Gi"}, "memory 64Gi is over 32 GiB"),
        ({"cpu": "4", "memory": "32Gi"}, "needs at least 8 CPUs, not 4"),
        ({"envs": [{"name": "SCRIPT", "value": "x" * 32769}]}, "over 32768"),
        ({"name": "n" * 50, "token": "t" * 13}, "63 or more"),
    ],
)
def test_a_cloud_run_job_task_over_cloud_runs_limits_is_refused(task, refused):
    if refused is None:
        assert run_program(_cloud_run_job(**task)).refusals == []
    else:
        with pytest.raises(cloud_rules.CloudRefusal, match=refused):
            run_program(_cloud_run_job(**task))


def test_image_streaming_needs_cos_containerd_the_file_system_api_and_the_nodes_usage_role():
    def program(image_type="COS_CONTAINERD", api=True, role=True):
        def body():
            import pulumi
            import pulumi_gcp as gcp

            names = ("iam", "container", *(("containerfilesystem",) if api else ()))
            apis = [gcp.projects.Service(a, service=f"{a}.googleapis.com") for a in names]
            after = pulumi.ResourceOptions(depends_on=apis)
            account = gcp.serviceaccount.Account("nodes", account_id="nodes", project="p-123456", opts=after)
            member = pulumi.Output.concat("serviceAccount:", account.email)
            roles = [
                gcp.projects.IAMMember(
                    "node", project="p-123456", role="roles/container.defaultNodeServiceAccount", member=member
                )
            ]
            if role:
                roles.append(
                    gcp.projects.IAMMember(
                        "usage", project="p-123456", role="roles/serviceusage.serviceUsageConsumer", member=member
                    )
                )
            gcp.container.NodePool(
                "gpu",
                cluster="c",
                node_count=1,
                node_config={
                    "machine_type": "g2-standard-8",
                    "service_account": account.email,
                    "image_type": image_type,
                    "gcfs_config": {"enabled": True},
                },
                opts=pulumi.ResourceOptions(depends_on=[*apis, *roles]),
            )

        return body

    assert run_program(program()).refusals == []
    with pytest.raises(cloud_rules.CloudRefusal, match="needs the COS_CONTAINERD node image, not UBUNTU_CONTAINERD"):
        run_program(program(image_type="UBUNTU_CONTAINERD"))
    with pytest.raises(cloud_rules.CloudRefusal, match=r"streams images before containerfilesystem\.googleapis\.com"):
        run_program(program(api=False))
    with pytest.raises(cloud_rules.CloudRefusal, match=r"before it holds roles/serviceusage\.serviceUsageConsumer"):
        run_program(program(role=False))


def _rrsa_program(subject: str = "system:serviceaccount:llm:reader", audience: str = "sts.aliyuncs.com", read=True):
    def program():
        import json

        import pulumi_alicloud as alicloud
        import pulumi_kubernetes as k8s

        provider = "acs:ram::1:oidc-provider/p"
        trust = {
            "Version": "1",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Action": "sts:AssumeRole",
                    "Principal": {"Federated": [provider]},
                    "Condition": {"StringEquals": {"oidc:aud": "sts.aliyuncs.com", "oidc:sub": subject}},
                }
            ],
        }
        alicloud.ram.Role("r", role_name="reader", assume_role_policy_document=json.dumps(trust))
        actions = ["oss:GetObject", "oss:ListObjects"] if read else ["oss:ListObjects"]
        document = {
            "Version": "1",
            "Statement": [
                {"Effect": "Allow", "Action": actions, "Resource": ["acs:oss:*:*:b", "acs:oss:*:*:b/models/m/*"]}
            ],
        }
        alicloud.ram.Policy("p", policy_name="p", policy_document=json.dumps(document))
        alicloud.ram.RolePolicyAttachment("a", policy_name="p", policy_type="Custom", role_name="reader")
        env = {
            "ALIBABA_CLOUD_ROLE_ARN": "acs:ram::1:role/reader",
            "ALIBABA_CLOUD_OIDC_PROVIDER_ARN": provider,
            "ALIBABA_CLOUD_OIDC_TOKEN_FILE": "/var/run/rrsa/token",
            "LLM_MODEL_URI": "s3://b/models/m",
            "AWS_ENDPOINT_URL": "https://s3.oss-cn-hangzhou-internal.aliyuncs.com",
        }
        token = {"serviceAccountToken": {"audience": audience, "expirationSeconds": 3600, "path": "token"}}
        pod = {
            "serviceAccountName": "reader",
            "containers": [
                {
                    "name": "engine",
                    "image": "vllm/vllm-openai:v0.32.0",
                    "env": [{"name": k, "value": v} for k, v in env.items()],
                    "volumeMounts": [{"name": "t", "mountPath": "/var/run/rrsa", "readOnly": True}],
                }
            ],
            "volumes": [{"name": "t", "projected": {"sources": [token]}}],
        }
        k8s.apps.v1.Deployment(
            "llm",
            metadata={"name": "llm", "namespace": "llm"},
            spec={
                "selector": {"matchLabels": {"app": "llm"}},
                "template": {"metadata": {"labels": {"app": "llm"}}, "spec": pod},
            },
        )

    return program


def test_an_rrsa_pod_whose_role_does_not_trust_its_account_or_cannot_read_the_model_is_refused():
    run_program(_rrsa_program())  # trusted, allowed: accepted
    with pytest.raises(cloud_rules.CloudRefusal, match="does not trust system:serviceaccount:llm:reader"):
        run_program(_rrsa_program(subject="system:serviceaccount:llm:default"))
    with pytest.raises(cloud_rules.CloudRefusal, match="with audience other"):
        run_program(_rrsa_program(audience="other"))
    with pytest.raises(cloud_rules.CloudRefusal, match="may not oss:GetObject s3://b/models/m/"):
        run_program(_rrsa_program(read=False))
