"""engine.mirror on acs and ack: the engine image copied into your ACR Enterprise Edition instance at t=0.

What the config takes and refuses, what the stack adds to your instance (a repository of its own, the VPC link) and
removes again, the worker that makes the copy and what its role may do, what waits for the copy (the serving pods,
which pull it over the VPC), how long it is modelled to take, and the cloud rules that refuse a broken mirror.
"""

from __future__ import annotations

import base64
import dataclasses
import functools
import json

import cloud_rules
import pytest
from harness import ACCOUNT_ID, run_stack, settings_for, unwrap

from core import durations, ready_time
from core.config.engine import ACR_REPOSITORY_MAX, mirror_repository, mirror_tag
from core.config.problems import ConfigError

REGISTRY = "myacr-registry-vpc.cn-hangzhou.cr.aliyuncs.com"
MIRROR = {
    "engine.mirror.instanceId": "cri-abc123",
    "engine.mirror.registry": REGISTRY,
    "engine.mirror.namespace": "llm",
}
REPO = "alicloud:cs/registryEnterpriseRepo:RegistryEnterpriseRepo"
LINK = "alicloud:cr/vpcEndpointLinkedVpc:VpcEndpointLinkedVpc"
INVOCATION = "alicloud:ecs/ecsInvocation:EcsInvocation"
SERVING = ("kubernetes:apps/v1:Deployment", "kubernetes:leaderworkerset.x-k8s.io/v1:LeaderWorkerSet")


@functools.cache
def mirrored(stack: str):
    return run_stack(stack, MIRROR)


def problems_of(stack: str, overrides: dict) -> dict:
    with pytest.raises(ConfigError) as error:
        settings_for(stack, overrides)
    return {p.key: p for p in error.value.problems}


def serving_images(run) -> set[str]:
    images = set()
    for resource in run.resources:
        if resource.type not in SERVING:
            continue
        spec = unwrap(resource.inputs)["spec"]
        templates = (
            [spec["template"]]
            if "template" in spec
            else [t for k, t in spec["leaderWorkerTemplate"].items() if k.endswith("Template")]
        )
        for template in templates:
            images |= {c["image"] for c in template["spec"]["containers"] if c["name"] == "engine"}
    return images


# ------------------------------------------------------------------------------------------------ config


def test_the_pods_pull_the_copy_of_the_configured_image_with_its_tag():
    plain, settings = settings_for("ack"), settings_for("ack", MIRROR)
    source = plain.engine.image
    assert settings.image_mirror.source == source
    assert settings.engine.image == f"{REGISTRY}/llm/llm-ack-{source.rsplit('/', 1)[1]}"
    assert settings.engine.version == plain.engine.version  # read from the same tag
    assert durations.pulled_in_region(settings.engine.image, settings.region)


def test_the_three_keys_come_together_and_every_missing_one_is_named():
    found = problems_of("ack", {"engine.mirror.instanceId": "cri-abc123"})
    assert set(found) == {"engine.mirror.registry", "engine.mirror.namespace"}
    assert "pulumi config set --path 'llm:engine.mirror.registry'" in found["engine.mirror.registry"].fix


def test_a_registry_of_another_region_is_refused_with_this_regions_domain():
    found = problems_of("ack", {**MIRROR, "engine.mirror.registry": "myacr-registry-vpc.cn-beijing.cr.aliyuncs.com"})
    problem = found["engine.mirror.registry"]
    assert "not the stack's region cn-hangzhou" in problem.allowed
    assert "myacr-registry-vpc.cn-hangzhou.cr.aliyuncs.com" in problem.fix


@pytest.mark.parametrize(
    "key,value",
    [
        ("engine.mirror.instanceId", "acr-abc123"),
        ("engine.mirror.registry", "myacr.cn-hangzhou.cr.aliyuncs.com"),  # the public domain
        ("engine.mirror.registry", "registry-vpc.cn-hangzhou.aliyuncs.com"),  # Personal Edition
        ("engine.mirror.namespace", "Llm"),
        ("engine.mirror.namespace", "llm-"),
    ],
)
def test_malformed_mirror_values_are_refused(key, value):
    assert key in problems_of("ack", {**MIRROR, key: value})


def test_a_namespace_is_two_to_120_characters():
    for good in ("ab", "a" * 120):
        assert settings_for("ack", {**MIRROR, "engine.mirror.namespace": good}).image_mirror.namespace == good
    for bad in ("a", "a" * 121):
        assert "engine.mirror.namespace" in problems_of("ack", {**MIRROR, "engine.mirror.namespace": bad})


@pytest.mark.parametrize("stack", ["dev", "ack-edge", "gke"])
def test_the_mirror_applies_to_acs_and_ack_only(stack):
    found = problems_of(stack, MIRROR)
    assert any(p.allowed.startswith("applies to target acs, ack only") for p in found.values()), found


def test_repository_names_carry_the_stack_and_stay_within_the_bound():
    assert mirror_repository("llm-ack", "egs-registry.cn-hangzhou.cr.aliyuncs.com/egs/vllm:0.11.0") == "llm-ack-vllm"
    long = mirror_repository("llm-" + "s" * 40, "docker.io/vllm/" + "v" * 40 + ":v1")
    assert len(long) == ACR_REPOSITORY_MAX and long[-9] == "-"
    assert mirror_repository("llm-x", "docker.io/a/" + "b" * (ACR_REPOSITORY_MAX - 6)) == "llm-x-" + "b" * 58


def test_a_digest_pinned_source_is_tagged_by_its_digest():
    digest = "ab" * 32
    assert mirror_tag(f"docker.io/vllm/vllm-openai@sha256:{digest}") == f"sha256-{digest[:16]}"
    assert mirror_tag(f"docker.io/vllm/vllm-openai:v0.32.0@sha256:{digest}") == "v0.32.0"


# ----------------------------------------------------------------------------------------- what is created


@pytest.mark.parametrize("stack", ["ack", "acs", "acs-r1"])
def test_the_stack_adds_its_own_public_immutable_repository_and_links_its_vpc(stack):
    run = mirrored(stack)
    repo = unwrap(run.one(REPO).inputs)
    assert repo["instanceId"] == "cri-abc123" and repo["namespace"] == "llm"
    assert repo["name"].startswith(f"llm-{stack}-") and repo["repoType"] == "PUBLIC" and repo["tagImmutability"]
    link = unwrap(run.one(LINK).inputs)
    vpc = run.one("alicloud:vpc/network:Network")
    assert link["vpcId"] == f"{vpc.name}-id" and link["moduleName"] == "Registry"
    assert link["enableCreateDnsRecordInPvzt"] is True
    assert not run.one(REPO).retain_on_delete and not run.one(LINK).retain_on_delete  # destroy removes both


@pytest.mark.parametrize("stack", ["ack", "acs", "acs-r1"])
def test_every_serving_pod_pulls_the_copy_and_waits_for_it(stack):
    run = mirrored(stack)
    settings = settings_for(stack, MIRROR)
    assert serving_images(run) == {settings.engine.image}
    copy = next(i for i in run.of_type(INVOCATION) if i.name.endswith("-mirror-copy"))
    for workload in (r for r in run.resources if r.type in SERVING):
        assert copy.urn in workload.dependencies
    assert run.outputs["engineImageMirror"] == settings.engine.image


def test_without_a_mirror_nothing_is_added_to_any_registry():
    run = run_stack("ack")
    assert not run.of_type(REPO) and not run.of_type(LINK)
    assert "engineImageMirror" not in run.outputs
    assert not any("mirror" in r.name for r in run.resources)


def _worker(run):
    instance = next(
        r for r in run.of_type("alicloud:ecs/instance:Instance") if r.name.endswith("-mirror-copy-instance")
    )
    command = next(r for r in run.of_type("alicloud:ecs/command:Command") if r.name.endswith("-mirror-copy"))
    return instance, base64.b64decode(unwrap(command.inputs)["commandContent"]).decode()


def test_the_worker_has_no_public_address_and_its_command_no_secret():
    run = mirrored("ack")
    instance, text = _worker(run)
    inputs = unwrap(instance.inputs)
    assert inputs["internetMaxBandwidthOut"] == 0 and inputs["instanceChargeType"] == "PostPaid"
    settings = settings_for("ack", MIRROR)
    assert f"SOURCE={settings.image_mirror.source}" in text
    assert f"DESTINATION={settings.engine.image}" in text and "INSTANCE_ID=cri-abc123" in text
    user_data = base64.b64decode(inputs["userData"]).decode()
    assert "skopeo" in user_data and "/usr/local/bin/llm-image-mirror" in user_data
    for secret in ("AccessKey", "password=", "AuthorizationToken="):
        assert secret not in text


def test_the_workers_role_gets_a_token_pushes_this_repository_only_and_stops_itself_only():
    run = mirrored("ack")
    instance, _ = _worker(run)
    policy = next(p for p in run.of_type("alicloud:ram/policy:Policy") if "mirror" in p.name)
    statements = json.loads(unwrap(policy.inputs)["policyDocument"])["Statement"]
    repo = unwrap(run.one(REPO).inputs)["name"]
    assert statements == [
        {"Effect": "Allow", "Action": ["cr:GetAuthorizationToken"], "Resource": ["*"]},
        {
            "Effect": "Allow",
            "Action": ["cr:PushRepository", "cr:PullRepository"],
            "Resource": [f"acs:cr:cn-hangzhou:{ACCOUNT_ID}:repository/cri-abc123/llm/{repo}"],
        },
        {
            "Effect": "Allow",
            "Action": ["ecs:StopInstance"],
            "Resource": [f"acs:ecs:cn-hangzhou:{ACCOUNT_ID}:instance/{instance.name}-id"],
        },
    ]


def test_the_copy_waits_for_the_role_the_repository_and_the_link_and_not_for_the_cluster():
    run = mirrored("ack")
    copy = next(i for i in run.of_type(INVOCATION) if i.name.endswith("-mirror-copy"))
    attachment = next(r for r in run.of_type("alicloud:ecs/ramRoleAttachment:RamRoleAttachment") if "mirror" in r.name)
    for needed in (attachment, run.one(REPO), run.one(LINK)):
        assert needed.urn in copy.dependencies
    cluster = run.one("alicloud:cs/managedKubernetes:ManagedKubernetes")
    worker, _ = _worker(run)
    assert cluster.urn not in copy.dependencies and cluster.urn not in worker.dependencies


def test_the_copys_deadline_covers_its_modelled_duration_twice_and_at_least_30_minutes():
    run = mirrored("ack")
    settings = settings_for("ack", MIRROR)
    copy = next(i for i in run.of_type(INVOCATION) if i.name.endswith("-mirror-copy"))
    command = next(r for r in run.of_type("alicloud:ecs/command:Command") if r.name.endswith("-mirror-copy"))
    modelled = durations.image_mirror(settings.network.nat_bandwidth_mbps, ready_time.mirror_sharing(settings))
    timeout_minutes = unwrap(command.inputs)["timeout"] / 60
    assert timeout_minutes == max(30, -(-modelled.minutes * 2 // 1))
    assert int(copy.custom_timeouts["create"].rstrip("m")) > timeout_minutes


# ------------------------------------------------------------------------------------------- time to ready


def test_ack_with_the_mirror_meets_its_goal_and_is_faster_than_through_the_nat():
    plain = ready_time.timeline(settings_for("ack")).total
    with_mirror = ready_time.timeline(settings_for("ack", MIRROR))
    assert with_mirror.total <= ready_time.GOALS["ack"] < plain
    starts = next(t for t in with_mirror.tasks if t.name == ready_time.SERVING_START)
    assert ready_time.MIRROR_DONE in starts.after and ready_time.IMPORT_DONE in starts.after


def test_outside_modelscopes_internal_regions_the_copy_shares_the_nat_with_the_import():
    inside = settings_for("ack", MIRROR)
    outside = settings_for(
        "ack",
        {**MIRROR, "alicloud:region": "cn-beijing", "engine.mirror.registry": REGISTRY.replace("hangzhou", "beijing")},
    )
    assert ready_time.mirror_sharing(inside) == 1
    assert ready_time.mirror_sharing(outside) == 1 + durations.import_workers(outside.model, 0)
    slower = durations.image_mirror(200, ready_time.mirror_sharing(outside))
    assert slower.minutes > durations.image_mirror(200, 1).minutes


# --------------------------------------------------------------------------------------------- cloud rules


def _broken(monkeypatch, how: str) -> None:
    from components.alibaba import image_mirror as module

    original = module.ImageMirror.__init__

    def init(self, name, args, opts=None):
        if how == "unlinked":
            args = dataclasses.replace(args, vpc_id="vpc-elsewhere")
        original(self, name, args, opts)
        if how == "not-awaited":
            self.invocation = self.link  # the workload waits for the link, not the copy

    monkeypatch.setattr(module.ImageMirror, "__init__", init)
    if how == "no-push":
        statements = module.worker_statements
        monkeypatch.setattr(module, "worker_statements", lambda *a: [statements(*a)[0], statements(*a)[2]])


@pytest.mark.parametrize(
    "how,message",
    [
        ("unlinked", "the stack's VPC is not linked to cri-abc123"),
        ("not-awaited", "before anything has pushed it"),
        ("no-push", "its role may not push"),
    ],
)
def test_the_cloud_rules_refuse_a_mirror_the_pods_could_not_pull(monkeypatch, how, message):
    _broken(monkeypatch, how)
    with pytest.raises(cloud_rules.CloudRefusal, match=message):
        run_stack("ack", MIRROR)


# ------------------------------------------------------------------------------------------------ deadlines

BEIJING = {**MIRROR, "alicloud:region": "cn-beijing", "engine.mirror.registry": REGISTRY.replace("hangzhou", "beijing")}


@pytest.mark.parametrize("stack", ["ack", "acs", "acs-r1"])
@pytest.mark.parametrize("where", [MIRROR, BEIJING], ids=["internal-hub", "shared-nat"])
def test_every_deadline_covers_the_modelled_duration_of_what_it_waits_for(stack, where):
    """With the mirror, and where its copy shares the NAT with the import: the copy's command and Pulumi's wait
    for it, each import worker's, and the serving workload's cover what the timeline models for them."""
    from test_timeline import _import_invocations, _serving, minutes

    settings = settings_for(stack, where)
    expected = ready_time.timeline(settings)
    run = run_stack(stack, where)
    copy = next(i for i in run.of_type(INVOCATION) if i.name.endswith("-mirror-copy"))
    command = next(r for r in run.of_type("alicloud:ecs/command:Command") if r.name.endswith("-mirror-copy"))
    mirror = expected.span("network", ready_time.MIRROR_DONE) - expected.by_name["network"].minutes
    assert unwrap(command.inputs)["timeout"] / 60 >= mirror and minutes(copy.custom_timeouts["create"]) >= mirror
    imported = expected.span(ready_time.IMPORT_START, ready_time.IMPORT_DONE)
    for worker, invocation in _import_invocations(run):
        assert unwrap(worker.inputs)["timeout"] / 60 >= imported
        assert minutes(invocation.custom_timeouts["create"]) >= imported
    workload = _serving(run)
    assert minutes(workload.custom_timeouts["create"]) >= expected.span(
        ready_time.SERVING_START, ready_time.SERVING_READY
    )


def test_the_cost_estimate_lists_the_mirror_worker_only_with_a_mirror():
    def items(run):
        return [i["resource"] for i in unwrap(run.outputs["costEstimate"])["items"]]

    assert any(i.startswith("image mirror worker") for i in items(mirrored("ack")))
    assert not any("mirror" in i for i in items(run_stack("ack")))


def test_mirroring_a_docker_hub_image_in_mainland_china_is_warned_about():
    from core.versions import VLLM_IMAGE

    run = run_stack("ack", {**MIRROR, "engine.image": VLLM_IMAGE.value})
    assert any("often not reachable from mainland China" in m for m, _ in run.warnings)
    assert not any("engine.mirror" in m for m, _ in mirrored("ack").warnings)  # the EGS default is reachable


def test_a_new_source_replaces_the_stopped_worker_so_the_new_copy_runs_on_a_running_one():
    def worker_inputs(overrides):
        run = run_stack("ack", {**MIRROR, **overrides})
        instance, _ = _worker(run)
        return unwrap(instance.inputs)["userData"], instance.replace_on_changes

    before, replaced_on = worker_inputs({})
    after, _ = worker_inputs({"engine.image": "egs-registry.cn-hangzhou.cr.aliyuncs.com/egs/vllm:0.11.1-test"})
    assert before != after and "userData" in replaced_on
    assert worker_inputs({})[0] == before  # the same config, the same worker


@pytest.mark.parametrize("stack", ["ack", "acs"])
def test_a_preview_with_the_mirror_shows_the_mirrored_estimate_before_anything_exists(stack):
    run = run_stack(stack, MIRROR, preview=True)  # ids unknown: the cloud rules wait for them
    assert run.of_type(REPO) and run.of_type(LINK)
    expected = ready_time.timeline(settings_for(stack, MIRROR)).total
    assert any(f"{expected:.1f} min" in m or f"{expected:.0f} min" in m for m, _ in run.logs), run.logs[:5]


def test_the_workers_image_is_looked_up_once_for_the_import_and_the_mirror():
    run = mirrored("ack")
    lookups = [a for token, a in run.invokes if token == "alicloud:ecs/getImages:getImages"]
    assert len(lookups) == 1 and lookups[0]["instanceType"] == settings_for("ack").model_store.import_instance_type
    mirror_worker, _ = _worker(run)
    import_worker = next(r for r in run.of_type("alicloud:ecs/instance:Instance") if "-import-" in r.name)
    assert unwrap(mirror_worker.inputs)["imageId"] == unwrap(import_worker.inputs)["imageId"]


def test_on_ack_the_gpu_nodes_prepull_the_copy_once_it_is_complete():
    from cloud_rules.gcp import transitive_dependencies

    run = mirrored("ack")
    prepull = run.kubernetes_object("DaemonSet", "llm-engine-prepull")
    assert prepull["spec"]["template"]["spec"]["containers"][0]["image"].startswith(f"{REGISTRY}/llm/")
    daemon_set = next(r for r in run.of_type("kubernetes:apps/v1:DaemonSet") if "prepull" in r.name)
    copies = [r for r in run.of_type(INVOCATION) if "mirror" in r.name]
    assert copies and {c.urn for c in copies} <= transitive_dependencies(run, daemon_set.urn)
