"""One duration model for every Alibaba deadline: its arithmetic, its config bounds, and that each example
stack's modelled readiness fits inside the deadlines the stack actually registers, at the bandwidth it
actually configures (read from the recorded EIP, not from the settings)."""

import base64
import dataclasses
import math
import re

import pytest
from harness import mock_eip_address, run_stack, settings_for, unwrap

from components.shipped_scripts import SCRIPTS
from core import durations, sizing
from core.config.problems import ConfigError
from core.nat_egress import NatEips, download_mbps, expected_eips_in_use, nat_eips

ALIBABA_K8S = ("acs", "acs-r1", "ack", "ack-edge")


def minutes(timeout: str) -> float:
    match = re.fullmatch(r"(\d+)m", timeout)
    assert match, timeout
    return int(match.group(1))


def nat_mbps(run) -> int:
    """What the stack deploys: its NAT EIPs' bandwidth together, or with a shared package the package's."""
    packages = run.of_type("alicloud:vpc/commonBandwithPackage:CommonBandwithPackage")
    if packages:
        return int(unwrap(packages[0].inputs)["bandwidth"])
    return sum(int(unwrap(e.inputs)["bandwidth"]) for e in run.of_type("alicloud:ecs/eipAddress:EipAddress"))


def test_transfer_minutes_is_size_over_rate_with_a_cap():
    assert durations.transfer_minutes(12, 200) == pytest.approx(8.0)  # 12 GB at 25 MB/s
    assert durations.transfer_minutes(12, 8000, cap_mb_per_s=100) == pytest.approx(2.0)
    with pytest.raises(ValueError):
        durations.transfer_minutes(1, 0)


def test_a_plans_deadline_is_its_total_times_the_margin_never_below_the_floor():
    plan = durations.Plan((durations.Step("a", 10.2, "x"), durations.Step("b", 5, "y")))
    assert plan.minutes == pytest.approx(15.2) and plan.deadline(1.5) == 23 and plan.deadline(1.5, 30) == 30


def test_every_figure_names_its_kind_and_source():
    figures = [v for v in vars(durations).values() if isinstance(v, durations.Figure)]
    assert figures and all(f.kind in ("S", "D", "A") and f.source for f in figures)


def test_more_bandwidth_means_a_shorter_wait():
    model = settings_for("prod").model
    assert durations.ecs_readiness(model, 500).minutes < durations.ecs_readiness(model, 100).minutes


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_ecs_modelled_readiness_fits_its_own_deadlines(stack):
    run = run_stack(stack)
    settings = settings_for(stack)
    plan = durations.ecs_readiness(settings.model, nat_mbps(run), settings.ecs.start)
    command = next(unwrap(c.inputs) for c in run.of_type("alicloud:ecs/command:Command") if c.name.endswith("-ready"))
    script = base64.b64decode(command["commandContent"]).decode()
    waited = int(re.search(r"TIMEOUT_SECONDS=(\d+)", script).group(1)) / 60
    invocation = next(r for r in run.of_type("alicloud:ecs/ecsInvocation:EcsInvocation") if "ready" in r.name)
    assert plan.minutes <= waited <= command["timeout"] / 60 <= minutes(invocation.custom_timeouts["create"]), (
        plan.describe()
    )


def _import_commands(run):
    """(command, invocation) of every model import worker."""
    commands = {f"{c.name}-id": c for c in run.of_type("alicloud:ecs/command:Command")}
    return [
        (commands[unwrap(i.inputs)["commandId"]], i)
        for i in run.of_type("alicloud:ecs/ecsInvocation:EcsInvocation")
        if "-import-" in i.name
    ]


@pytest.mark.parametrize("stack", ALIBABA_K8S)
def test_kubernetes_modelled_import_and_start_fit_their_own_deadlines(stack):
    run = run_stack(stack)
    settings = settings_for(stack)
    mbps = nat_mbps(run)
    workers = durations.import_workers(settings.model, settings.model_store.import_workers)
    importing = durations.worker_import(settings.model, mbps, workers, settings.region)
    nat_bound = durations.worker_import(settings.model, mbps, workers, region="")  # the internal path not taken
    pairs = _import_commands(run)
    assert len(pairs) == workers
    for command, invocation in pairs:
        timeout = unwrap(command.inputs)["timeout"] / 60
        assert importing.minutes <= nat_bound.minutes <= timeout < minutes(invocation.custom_timeouts["create"]), (
            nat_bound.describe()
        )
    workload = next(
        r
        for r in run.resources
        if r.type in ("kubernetes:apps/v1:Deployment", "kubernetes:leaderworkerset.x-k8s.io/v1:LeaderWorkerSet")
    )
    capacity = durations.GPU_CAPACITY_MIN.value if settings.target == "acs" else 0
    pods = settings.placement.pods * settings.workload.replicas
    starting = durations.pod_start(mbps, pods, capacity).minutes + sizing.load_minutes(settings.model)
    assert starting <= minutes(workload.custom_timeouts["create"]), (stack, starting)


def test_a_lower_bandwidth_lengthens_the_deadlines_so_they_still_fit():
    slow = {"network.natBandwidthMbps": 20}
    run = run_stack("acs", slow)
    settings = settings_for("acs", slow)
    workers = durations.import_workers(settings.model)
    plan = durations.worker_import(settings.model, 20, workers, region="")  # the NAT-bound worst case
    assert plan.minutes > durations.worker_import(settings.model, 200, workers, region="").minutes
    for command, _ in _import_commands(run):
        assert plan.minutes <= unwrap(command.inputs)["timeout"] / 60
    r1 = run_stack("acs-r1", slow)
    lws = r1.one("kubernetes:leaderworkerset.x-k8s.io/v1:LeaderWorkerSet")
    starting = durations.pod_start(20, 2, durations.GPU_CAPACITY_MIN.value).minutes
    assert starting + sizing.load_minutes(settings_for("acs-r1").model) <= minutes(lws.custom_timeouts["create"])


def test_the_import_bypasses_the_nat_only_where_modelscope_serves_on_the_internal_network():
    model = settings_for("acs").model
    inside = durations.worker_import(model, 20, 2, "cn-hangzhou")
    outside = durations.worker_import(model, 20, 2, "ap-southeast-1")
    assert inside.minutes == durations.worker_import(model, 1000, 2, "cn-hangzhou").minutes  # NAT-independent
    assert outside.minutes > inside.minutes  # two workers share 2.5 MB/s of NAT
    present = durations.worker_import(model, 20, 2, "cn-hangzhou", present=True)
    assert present.minutes < inside.minutes and "check" in present.steps[-1].name


@pytest.mark.parametrize("billing", ["traffic", "bandwidth"])
def test_nat_bandwidth_is_1_to_1000_mbits_billed_either_way(billing):
    for mbps in (1, 200, 201, 1000):
        keys = {"network.natBandwidthMbps": mbps, "network.natBilling": billing}
        assert settings_for("acs", keys).network.nat_bandwidth_mbps == mbps
    for mbps in (0, 1001):
        with pytest.raises(ConfigError, match=r"network\.natBandwidthMbps.*1-1000"):
            settings_for("acs", {"network.natBandwidthMbps": mbps, "network.natBilling": billing})


def test_the_nat_gets_one_eip_per_200_mbits_split_evenly():
    assert nat_eips(200, "traffic") == NatEips((200,), "traffic", shared=False)
    assert nat_eips(201, "traffic").bandwidths == (101, 100)
    assert nat_eips(1000, "traffic").bandwidths == (200,) * 5
    assert nat_eips(200, "bandwidth").shared is False and nat_eips(201, "bandwidth").shared is True
    for mbps in (0, 1001):
        with pytest.raises(ValueError):
            nat_eips(mbps, "traffic")


def _eips(run):
    return {e.name: unwrap(e.inputs) for e in run.of_type("alicloud:ecs/eipAddress:EipAddress")}


def test_above_200_mbits_every_snat_entry_lists_every_eip_of_the_nat():
    one = run_stack("acs", {"network.natBandwidthMbps": 200})
    assert [e["bandwidth"] for e in _eips(one).values()] == ["200"]
    assert {unwrap(s.inputs)["snatIp"] for s in one.of_type("alicloud:vpc/snatEntry:SnatEntry")} == {
        mock_eip_address("llm-acs-nat-eip")
    }
    pool = run_stack("acs", {"network.natBandwidthMbps": 201})
    eips = {name: (e["bandwidth"], e["internetChargeType"]) for name, e in _eips(pool).items()}
    assert eips == {  # the first keeps its name
        "llm-acs-nat-eip": ("101", "PayByTraffic"),
        "llm-acs-nat-eip-2": ("100", "PayByTraffic"),
    }
    listed = ",".join(mock_eip_address(name) for name in ("llm-acs-nat-eip", "llm-acs-nat-eip-2"))
    entries = pool.of_type("alicloud:vpc/snatEntry:SnatEntry")
    assert len(entries) == 4 and all(unwrap(s.inputs)["snatIp"] == listed for s in entries)
    assert all(unwrap(s.inputs)["eipAffinity"] == 0 for s in entries)  # a connection picks an EIP
    bindings = pool.of_type("alicloud:ecs/eipAssociation:EipAssociation")
    assert all({b.urn for b in bindings} <= set(s.dependencies) for s in entries)
    assert not pool.of_type("alicloud:vpc/commonBandwithPackage:CommonBandwithPackage")
    assert nat_mbps(pool) == 201


def test_billed_by_bandwidth_above_200_mbits_the_eips_share_one_package_of_the_whole():
    run = run_stack("acs", {"network.natBilling": "bandwidth", "network.natBandwidthMbps": 1000})
    assert [e["bandwidth"] for e in _eips(run).values()] == ["200"] * 5
    package = unwrap(run.one("alicloud:vpc/commonBandwithPackage:CommonBandwithPackage").inputs)
    attachments = run.of_type("alicloud:vpc/commonBandwithPackageAttachment:CommonBandwithPackageAttachment")
    assert package["bandwidth"] == "1000" and nat_mbps(run) == 1000
    assert sorted(unwrap(a.inputs)["bandwidthPackageBandwidth"] for a in attachments) == ["200"] * 5
    for entry in run.of_type("alicloud:vpc/snatEntry:SnatEntry"):
        assert {a.urn for a in attachments} <= set(entry.dependencies)
    single = run_stack("acs", {"network.natBilling": "bandwidth", "network.natBandwidthMbps": 200})
    assert not single.of_type("alicloud:vpc/commonBandwithPackage:CommonBandwithPackage")


def test_a_transfer_gets_what_its_connections_eips_carry():
    assert download_mbps(200, 1) == 200 and download_mbps(100, 8) == 100  # one EIP: all of it
    assert download_mbps(1000, 1) == pytest.approx(200)  # one connection, one EIP
    assert download_mbps(1000, 3) == pytest.approx(200 * 5 * (1 - 0.8**3))  # 488: two may share one
    assert download_mbps(1000, 500) == pytest.approx(1000)
    assert expected_eips_in_use(5, 1) == pytest.approx(1) and expected_eips_in_use(1, 7) == pytest.approx(1)
    # The figures the model counts connections by are the scripts' own.
    assert f"max_workers={durations.HUB_CONNECTIONS.value:.0f}" in (SCRIPTS / "fetch-model.sh").read_text()
    assert (
        f"PARALLEL_FILES = {durations.WORKER_CONNECTIONS.value:.0f} " in (SCRIPTS / "llm-model-import.py").read_text()
    )
    assert (
        f"DOCKER_CONCURRENT_DOWNLOADS={durations.HOST_PULL_CONNECTIONS.value:.0f}\n"
        in (SCRIPTS / "bootstrap.sh").read_text()
    )
    # Through a pool the pull is quicker, never quicker than the pool's whole bandwidth.
    one_eip, pool = durations.image_pull(200), durations.image_pull(1000)
    assert pool.minutes < one_eip.minutes and "488 expected over 3 connections" in pool.name


def test_a_readiness_timeout_shorter_than_the_modelled_start_is_refused():
    prod = settings_for("prod")
    modelled = int(durations.ecs_readiness(prod.model, prod.ecs.egress_mbps, prod.ecs.start).minutes) + 1  # ceil
    assert settings_for("prod", {"ecs.readinessTimeoutMinutes": modelled}).ecs.readiness_timeout_minutes == modelled
    with pytest.raises(ConfigError, match=r"ecs\.readinessTimeoutMinutes.*shorter than"):
        settings_for("prod", {"ecs.readinessTimeoutMinutes": modelled - 1})


def test_a_bandwidth_too_low_for_cloud_assistants_day_is_refused():
    with pytest.raises(ConfigError, match=r"network\.natBandwidthMbps.*Cloud Assistant waits at most 1380"):
        settings_for("prod", {"network.natBandwidthMbps": 1})  # the 12 GB image alone: 27 hours
    with pytest.raises(ConfigError, match=r"access\.publicBandwidthMbps"):
        settings_for(
            "prod",
            {"access.public": True, "access.allowedCidrs": ["203.0.113.0/24"], "access.publicBandwidthMbps": 1},
        )


@pytest.mark.parametrize(
    "image, near",
    [
        ("registry-vpc.cn-hangzhou.aliyuncs.com/me/vllm:0.11.0", True),  # ACR Personal Edition over the VPC
        ("llm-registry-vpc.cn-hangzhou.cr.aliyuncs.com/egs/vllm:0.11.0", True),  # an ACR Enterprise instance
        ("registry-cn-hangzhou-vpc.ack.aliyuncs.com/acs/lws:v0.5.0", True),  # ACK's regional VPC registry
        ("llm-registry-vpc.cn-beijing.cr.aliyuncs.com/egs/vllm:0.11.0", False),  # another region's
        ("egs-registry.cn-hangzhou.cr.aliyuncs.com/egs/vllm:0.11.0", False),  # public: through the NAT
        ("docker.io/vllm/vllm-openai:v0.32.0", False),
        ("vllm/vllm-openai", False),
    ],
)
def test_an_image_is_near_only_from_a_vpc_endpoint_in_the_region(image, near):
    assert durations.pulled_in_region(image, "cn-hangzhou") is near


def test_pulls_per_deploy_share_the_nat_but_not_a_vpc_registry():
    public = "egs-registry.cn-hangzhou.cr.aliyuncs.com/egs/vllm:x"
    vpc = "x-registry-vpc.cn-hangzhou.cr.aliyuncs.com/v:x"
    one, two = (durations.engine_image_pull(public, "cn-hangzhou", 200, n).minutes for n in (1, 2))
    assert two - one == pytest.approx(durations.transfer_minutes(durations.ENGINE_IMAGE_GB.value, 200))
    near = [durations.engine_image_pull(vpc, "cn-hangzhou", 200, n).minutes for n in (1, 2)]
    assert near[0] == near[1] < one


def test_the_engine_image_step_of_the_alibaba_clusters_follows_the_registry():
    from core.ready_time import ack_edge, timeline

    vpc = {"engine.image": "llm-registry-vpc.cn-hangzhou.cr.aliyuncs.com/egs/vllm:0.11.0-pytorch2.8-cu128-20251015"}
    for stack in ALIBABA_K8S:
        # ack-edge: the whole pull (its IDC nodes joined just before the second run; by default it is pre-pulled).
        model = (lambda s: ack_edge(s, 0)) if stack == "ack-edge" else timeline
        now, near = (model(settings_for(stack, o)).by_name["engine image"].minutes for o in ({}, vpc))
        assert near < now, stack


# --- Warm-up by model class ------------------------------------------------------------------------------------


def test_the_warm_up_is_sourced_per_model_class_r1_for_deepseek_r1_small_for_a_7b():
    from core.catalog import MODELS

    r1, small = durations.warmup(MODELS["DeepSeek-R1"]), durations.warmup(MODELS["DeepSeek-R1-Distill-Qwen-7B"])
    assert (r1.name, r1.minutes * 60) == ("warm-up (r1)", pytest.approx(260))
    assert "vllm-project/vllm#22215" in r1.source and r1.source.startswith("D:")  # DeepGEMM 83 + 48 s
    assert (small.name, small.minutes * 60) == ("warm-up (small)", pytest.approx(50))
    assert "vllm-project/vllm#11005" in small.source and small.source.startswith("S:")
    assert durations.warmup_class(MODELS["QwQ-32B"]) == "mid"  # 32B: more to compile
    assert durations.warmup_class(MODELS["DeepSeek-R1-Distill-Qwen-7B"], tensor_parallel=2) == "mid"  # every rank
    assert durations.warmup_class(MODELS["Qwen3-235B-A22B"], tensor_parallel=8) == "mid"  # bf16: no DeepGEMM


def test_a_custom_model_gets_its_warm_up_class_by_the_same_rule():
    fp8 = settings_for(
        "ack",
        {
            "model": {
                "name": "custom",
                "custom": {
                    "name": "Tiny-FP8",
                    "modelscopeId": "org/tiny-fp8",
                    "hfId": "org/tiny-fp8",
                    "paramsBillion": 1.5,
                    "weightDtype": "fp8",
                    "layers": 28,
                    "attentionHeads": 12,
                    "kvHeads": 2,
                    "headDim": 128,
                    "contextLength": 32768,
                },
            }
        },
    ).model
    assert durations.warmup_class(fp8) == "r1"  # FP8: DeepGEMM's kernels, the conservative class
    assert durations.warmup_class(dataclasses.replace(fp8, weight_dtype="bf16")) == "small"
    assert durations.warmup_class(dataclasses.replace(fp8, weight_dtype="bf16", params_billion=14.1)) == "mid"


def test_the_load_estimate_is_engine_start_the_mount_read_and_the_class_warm_up():
    from core.catalog import MODELS

    for name, warm_s in (("DeepSeek-R1-Distill-Qwen-7B", 50), ("QwQ-32B", 90), ("DeepSeek-R1", 260)):
        model = MODELS[name]
        expected = 0.5 + model.weights_gib / 20 + warm_s / 60
        assert durations.engine_load(model).minutes == pytest.approx(expected), name
        assert sizing.load_minutes(model) == math.ceil(expected)  # what the startup windows are sized from
    # The stacks' timelines take the class from the stack's model and placement.
    from core.ready_time import SERVING_READY, timeline

    loads = {s: timeline(settings_for(s)).by_name[SERVING_READY] for s in ("ack", "acs", "acs-r1")}
    assert "warm-up (small)" in loads["ack"].why and "warm-up (mid)" in loads["acs"].why
    assert "warm-up (r1)" in loads["acs-r1"].why
