"""The cost estimate: arithmetic, unknown prices kept unknown, live Cloud Control prices with a safe fallback."""

import json

import harness
import pytest
from harness import PEM_TLS, run_stack

from core.cost import HOURS_PER_MONTH, Item, Price, TablePrice, estimate

GET_PRICES = "alicloud:cloudcontrol/getPrices:getPrices"
LIVE = "live: cloudcontrol GetPrice"


def cny(hourly: float) -> Price:
    return Price(hourly, "CNY", LIVE)


def price_lookups(run):
    return [args for token, args in run.invokes if token == GET_PRICES]


# Arithmetic ------------------------------------------------------------------------------------------------


def test_hourly_is_unit_price_times_quantity_and_monthly_is_730_hours():
    result = estimate([Item("gpu host", 2, cny(10.25)), Item("jump host", 1, cny(0.5))])
    assert HOURS_PER_MONTH == 730
    assert result["currency"] == "CNY"
    assert result["hourly"] == 21.0
    assert result["monthly"] == 21.0 * 730
    assert result["hourlyKnownPart"] == 21.0
    assert result["unknown"] == []
    assert [(i["resource"], i["quantity"], i["unitHourly"], i["hourly"]) for i in result["items"]] == [
        ("gpu host", 2, 10.25, 20.5),
        ("jump host", 1, 0.5, 0.5),
    ]


def test_an_unknown_price_makes_the_totals_unknown_not_zero():
    result = estimate([Item("gpu host", 1, cny(8.0)), Item("nat", 1, Price.unknown("no code"))])
    assert result["hourly"] is None and result["monthly"] is None
    assert result["hourlyKnownPart"] == 8.0
    assert result["unknown"] == ["nat"]
    nat = result["items"][1]
    assert nat["hourly"] is None and nat["unitHourly"] is None
    assert nat["source"] == "unknown" and nat["note"] == "no code"


def test_when_nothing_is_known_there_is_no_currency_and_no_number():
    result = estimate([Item("pods", 4, Price.unknown("no price"))])
    assert result == {
        **result,
        "currency": None,
        "hourly": None,
        "monthly": None,
        "hourlyKnownPart": None,
        "unknown": ["pods"],
    }


def test_a_price_in_another_currency_is_not_added_but_reported_unknown():
    result = estimate([Item("gpu host", 1, cny(8.0)), Item("pods", 1, Price(2.0, "USD", "table: x"))])
    assert result["currency"] == "CNY" and result["hourly"] is None and result["unknown"] == ["pods"]
    assert "USD" in result["items"][1]["note"]


def test_a_table_price_names_its_source_and_date_and_a_missing_one_is_unknown():
    table = {"acs/gpu/H20": TablePrice(7.5, "CNY", "GPU", "ACS pricing page", "2025-01-01", "https://example.test/p")}
    found = Price.from_table("acs/gpu/H20", "none", table)
    assert (found.hourly, found.currency) == (7.5, "CNY")
    assert found.source == "table: ACS pricing page, 2025-01-01, https://example.test/p"
    assert estimate([Item("pod GPUs", 2, found)])["hourly"] == 15.0
    missing = Price.from_table("acs/gpu/L20", "not in the table", table)
    assert (missing.hourly, missing.source, missing.reason) == (None, "unknown", "not in the table")


# Stacks ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("preview", [False, True])
def test_dev_reports_the_live_gpu_host_price_at_preview_and_the_nat_as_unknown(preview):
    run = run_stack("dev", preview=preview)
    cost = run.outputs["costEstimate"]
    host = cost["items"][0]
    assert host["resource"].startswith("ECS ecs.gn7i-c16g1.4xlarge")
    assert (host["unitHourly"], host["hourly"], host["source"]) == (9.5, 9.5, LIVE)
    assert cost["currency"] == "CNY" and cost["hourlyKnownPart"] == 9.5
    assert cost["hourly"] is None and cost["monthly"] is None  # NAT and EIP prices are not looked up
    assert cost["unknown"] == [  # dev's 1000 Mbit/s: five EIPs
        "NAT gateway (Enhanced, PayByLcu)",
        "EIPs of the NAT gateway (PayByTraffic, 200 Mbit/s each)",
    ]

    (lookup,) = price_lookups(run)
    assert (lookup["product"], lookup["resourceCode"]) == ("ECS", "Instance")
    assert json.loads(lookup["desireAttributesJson"]) == {
        "InstanceType": "ecs.gn7i-c16g1.4xlarge",
        "PaymentType": "PayAsYouGo",
        "SystemDisk": {"Category": "cloud_essd"},
    }
    assert "desireAttributes" not in lookup  # conflicts with the JSON form


def test_a_failed_price_lookup_becomes_unknown_and_the_deployment_goes_on(monkeypatch):
    monkeypatch.setattr(harness.CloudMocks, "prices", {})
    run = run_stack("dev", preview=True)
    cost = run.outputs["costEstimate"]
    host = cost["items"][0]
    assert host["hourly"] is None and host["source"] == "unknown"
    assert "ECS/Instance price lookup failed" in host["note"] and "not supported" in host["note"]
    assert cost["hourly"] is None and cost["hourlyKnownPart"] is None and host["resource"] in cost["unknown"]
    assert run.of_type("alicloud:ecs/instance:Instance")  # the host is still created


def test_a_public_host_lists_its_traffic_instead_of_nat():
    run = run_stack("dev", {**PEM_TLS, "access.public": True, "access.allowedCidrs": ["203.0.113.0/24"]})
    assert run.outputs["costEstimate"]["unknown"] == ["public traffic of the GPU host (PayByTraffic)"]


@pytest.mark.parametrize("preview", [False, True])
def test_acs_reports_gpu_pods_unknown_and_the_jump_host_live(preview):
    run = run_stack("acs", preview=preview)
    cost = run.outputs["costEstimate"]
    by_name = {i["resource"]: i for i in cost["items"]}
    pods = next(i for name, i in by_name.items() if name.startswith("ACS gpu pod GPUs (H20)"))
    assert pods["quantity"] == 1 and pods["hourly"] is None and "no public ACS GPU price" in pods["note"]
    jump = next(i for name, i in by_name.items() if "jump host" in name)
    assert (jump["hourly"], jump["source"]) == (9.5, LIVE)
    assert cost["hourly"] is None and cost["hourlyKnownPart"] == 9.5
    assert set(cost["unknown"]) == {n for n, i in by_name.items() if i["hourly"] is None}
    assert [json.loads(a["desireAttributesJson"])["InstanceType"] for a in price_lookups(run)] == ["ecs.g7.large"]


def test_acs_counts_every_gpu_of_every_replica():
    run = run_stack("acs", {"scaling.replicas": 3})
    pods = run.outputs["costEstimate"]["items"][0]
    assert pods["resource"].startswith("ACS gpu pod GPUs") and pods["quantity"] == 3


def test_config_prices_replace_live_and_unknown_ones_and_fill_the_totals():
    run = run_stack("dev", {"cost.prices": {"gpu-host": 12.5, "nat-gateway": 0.3, "nat-eip": 0.02}})
    result = run.outputs["costEstimate"]
    assert result["unknown"] == [] and result["currency"] == "CNY"
    assert result["hourly"] == 12.9 and result["monthly"] == round(12.9 * 730, 2)  # 12.5 + 0.3 + 5 EIPs x 0.02
    assert {i["source"] for i in result["items"]} == {"config: cost.prices"}


def test_acs_gpu_override_is_per_gpu_hour():
    result = run_stack("acs-r1", {"cost.prices": {"acs-gpu": 10}}).outputs["costEstimate"]
    gpus = next(i for i in result["items"] if i["resource"].startswith("ACS "))
    assert gpus["quantity"] == 16 and gpus["hourly"] == 160.0
    assert result["hourly"] is None and result["hourlyKnownPart"] >= 160.0  # the rest is still unknown


def test_ack_prices_the_gpu_pool_minimum_and_system_nodes_live():
    result = run_stack("ack").outputs["costEstimate"]
    gpu = next(i for i in result["items"] if "GPU nodes" in i["resource"])
    system = next(i for i in result["items"] if "system nodes" in i["resource"])
    assert gpu["source"] == system["source"] == "live: cloudcontrol GetPrice"
    assert gpu["quantity"] == 1 and system["quantity"] == 2
    assert result["hourly"] is None and result["hourlyKnownPart"] == 9.5 * 3


def test_ack_edge_cloud_pods_start_at_zero_and_stay_unknown_until_priced():
    result = run_stack("ack-edge", {"cost.prices": {"virtual-gpu-pod": 20}}).outputs["costEstimate"]
    cloud = next(i for i in result["items"] if "virtual nodes" in i["resource"])
    assert cloud["quantity"] == 0 and cloud["source"] == "config: cost.prices"


# gke -------------------------------------------------------------------------------------------------------

GKE_FEE = (
    "table: GKE pricing, cluster management fee of $0.10 per cluster per hour, 2026-11-21, "
    "https://cloud.google.com/kubernetes-engine/pricing"
)
USD_PRICES = {
    "gke.a4-highgpu-8g": 80,
    "gke.system-node": 0.3,
    "gke.cluster": 0.1,
    "gcp.lb": 0.025,
    "gcs.gib-month": 0.02,
    "gcp.nat": 0.05,
}


def gke_cost(overrides=None):
    return run_stack("gke", overrides or {}).outputs["costEstimate"]


def item(cost, start):
    (found,) = [i for i in cost["items"] if i["resource"].startswith(start)]
    return found


def weights_gib():
    from core.catalog import MODELS

    return round(MODELS["DeepSeek-R1"].weights_gib, 1)


def test_a_monthly_key_override_is_spread_over_730_hours():
    result = estimate([Item("bucket", 730, Price.unknown("none"), "gcs.gib-month")], {"gcs.gib-month": 0.02}, "USD")
    assert result["hourly"] == 0.02 and result["items"][0]["unitHourly"] == round(0.02 / 730, 8)


def test_a_fixed_currency_turns_prices_in_another_into_unknowns():
    items = [Item("node", 1, Price.unknown("none"), "gke.a4-highgpu-8g"), Item("fee", 1, Price(0.1, "USD", "t"))]
    result = estimate(items, {"gke.a4-highgpu-8g": 500}, "CNY", currency="USD")
    assert result["currency"] == "USD" and result["unknown"] == ["node"] and result["hourlyKnownPart"] == 0.1
    assert "500 CNY/h" in result["items"][0]["note"]


def test_gke_lists_one_a4_node_per_gpu_node_and_cites_the_cluster_fee():
    from components.gcp.gke_cluster import SYSTEM_MACHINE_TYPE, SYSTEM_NODES

    cost = gke_cost({"gpuNodes.min": 3})
    a4 = item(cost, "GKE A4 GPU nodes (a4-highgpu-8g")
    assert a4["quantity"] == 3 and a4["hourly"] is None and "could be cited" in a4["note"]
    system = item(cost, f"GKE system nodes ({SYSTEM_MACHINE_TYPE})")
    assert system["quantity"] == SYSTEM_NODES and system["hourly"] is None
    fee = item(cost, "GKE Standard cluster management")
    assert (fee["quantity"], fee["unitHourly"], fee["source"]) == (1, 0.1, GKE_FEE)
    bucket = item(cost, "GCS bucket in us-central1: the weights")
    assert bucket["quantity"] == weights_gib() and bucket["source"].endswith("https://cloud.google.com/storage/pricing")
    assert bucket["hourly"] == round(weights_gib() * 0.02 / 730, 4)
    assert cost["currency"] == "USD" and cost["hourly"] is None and cost["monthly"] is None
    assert cost["hourlyKnownPart"] == round(0.1 + weights_gib() * 0.02 / 730, 4)
    assert cost["unknown"] == [
        a4["resource"],
        system["resource"],
        "internal passthrough Network Load Balancer (API Service)",
        "Cloud NAT for the nodes' egress (PyPI, images, the download mode's weights)",
    ]


def test_gke_prices_from_config_in_usd_fill_the_totals():
    cost = gke_cost({"gpuNodes.min": 2, "cost.prices": USD_PRICES})  # cost.currency unset: USD on gke
    hourly = 2 * 80 + 0.3 + 0.1 + 0.025 + 0.05 + weights_gib() * 0.02 / 730
    assert cost["unknown"] == [] and cost["currency"] == "USD"
    assert cost["hourly"] == round(hourly, 4) and cost["monthly"] == round(hourly * 730, 2)
    assert {i["source"] for i in cost["items"]} == {"config: cost.prices"}
    assert item(cost, "GKE A4 GPU nodes")["hourly"] == 160.0


def test_gke_overrides_in_another_currency_are_not_mixed_into_usd(monkeypatch):
    import pulumi

    warnings = []
    monkeypatch.setattr(pulumi.log, "warn", lambda message, *args, **kwargs: warnings.append(message))
    cost = gke_cost({"cost.prices": {"gke.a4-highgpu-8g": 500}, "cost.currency": "CNY"})
    a4 = item(cost, "GKE A4 GPU nodes")
    assert cost["currency"] == "USD" and a4["hourly"] is None and "500.0 CNY/h" in a4["note"]
    assert cost["hourlyKnownPart"] < 1  # the fee and the bucket only, not 500
    assert any("gke.a4-highgpu-8g" in w and "cost.currency USD" in w for w in warnings)


def test_gke_has_a_public_load_balancer_only_with_public_access():
    private = [i["resource"] for i in gke_cost()["items"] if "Load Balancer" in i["resource"]]
    public = [
        i["resource"]
        for i in gke_cost({**PEM_TLS, "access.public": True, "access.allowedCidrs": ["198.51.100.0/24"]})["items"]
        if "Load Balancer" in i["resource"]
    ]
    assert private == ["internal passthrough Network Load Balancer (API Service)"]
    assert public == [*private, "external passthrough Network Load Balancer (public API Service)"]


def test_gke_download_mode_stores_no_weights_in_the_bucket():
    bucket = item(gke_cost({"gke.modelSource": "download"}), "GCS bucket in us-central1")
    assert bucket["quantity"] == 0 and bucket["hourly"] == 0.0


def test_gke_reserved_nodes_say_how_they_are_billed():
    a4 = item(gke_cost({"gke.capacity.mode": "reservation", "gke.capacity.reservation": "a4-res"}), "GKE A4 GPU nodes")
    assert a4["hourly"] is None and "reservation's terms" in a4["note"]


def test_gke_cost_module_does_not_import_alicloud():
    import ast
    from pathlib import Path

    tree = ast.parse((Path(__file__).resolve().parent.parent / "stacks" / "gcp" / "cost.py").read_text())
    imported = {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    imported |= {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    assert not any("alicloud" in name or name == "stacks.alibaba.cost" for name in imported)


@pytest.mark.parametrize(
    "billing, mbps, eip, eips, package",
    [
        ("bandwidth", 200, "EIP of the NAT gateway (PayByBandwidth, 200 Mbit/s)", 1, None),
        (
            "bandwidth",
            201,
            "EIPs of the NAT gateway (in the shared bandwidth package)",
            2,
            "(PayByBandwidth, 201 Mbit/s)",
        ),
        (
            "bandwidth",
            1000,
            "EIPs of the NAT gateway (in the shared bandwidth package)",
            5,
            "(PayByBandwidth, 1000 Mbit/s)",
        ),
        ("traffic", 200, "EIP of the NAT gateway (PayByTraffic)", 1, None),
        ("traffic", 1000, "EIPs of the NAT gateway (PayByTraffic, 200 Mbit/s each)", 5, None),
    ],
)
def test_the_nats_eips_and_shared_package_are_itemised_as_created(billing, mbps, eip, eips, package):
    run = run_stack("dev", {"network.natBandwidthMbps": mbps, "network.natBilling": billing})
    estimate = run.outputs["costEstimate"]
    assert estimate["unknown"][:2] == ["NAT gateway (Enhanced, PayByLcu)", eip]
    (line,) = [i for i in estimate["items"] if i["resource"] == eip]
    assert line["quantity"] == eips == len(run.of_type("alicloud:ecs/eipAddress:EipAddress"))
    packages = [u for u in estimate["unknown"] if u.startswith("shared bandwidth package")]
    assert packages == ([f"shared bandwidth package of the NAT's EIPs {package}"] if package else [])
    assert len(run.of_type("alicloud:vpc/commonBandwithPackage:CommonBandwithPackage")) == len(packages)


# Which price keys each target's estimate has (core.cost.PRICE_KEY_TARGETS) -----------------------------------

PUBLIC = {**PEM_TLS, "access.public": True, "access.allowedCidrs": ["203.0.113.0/24"]}
# Stacks whose estimates between them have every item a target can have (the conditional ones too).
COVERING = [
    ("dev", {"ecs.preparedImage.build": True, "network.natBilling": "bandwidth", "network.natBandwidthMbps": 400}),
    ("dev", PUBLIC),
    ("dev", {"ecs.weights.source": "import"}),  # the stack's own bucket
    (
        "acs",
        {
            **PUBLIC,
            "access.sshCidrs": ["203.0.113.0/24"],
            "access.sshKeyPair": "my-key",
            "network.natBilling": "bandwidth",
            "network.natBandwidthMbps": 400,
        },
    ),
    ("ack", {**PUBLIC, "network.natBilling": "bandwidth", "network.natBandwidthMbps": 400}),
    ("ack-edge", {**PUBLIC, "network.natBilling": "bandwidth", "network.natBandwidthMbps": 400}),
    ("gke", PUBLIC),
]


def test_every_price_key_a_target_accepts_prices_an_item_of_its_estimate():
    """The table cost.prices is checked against is neither too narrow (an item of the estimate that no price can
    set) nor too wide (a key accepted that prices nothing): each accepted key, given a price of its own, shows up."""
    from harness import settings_for

    from core.catalog import GKE_MACHINES
    from core.cost import MONTHLY_KEYS, PRICE_KEY_TARGETS

    machine_keys = {f"gke.{name}" for name in GKE_MACHINES}

    wanted: dict[str, set[str]] = {}
    priced: dict[str, set[str]] = {}
    for stack, overrides in COVERING:
        settings = settings_for(stack, overrides)
        target = settings.target
        machine = f"gke.{settings.gke.machine.name}" if target == "gke" else None
        keys = [
            k
            for k, targets in PRICE_KEY_TARGETS.items()
            if target in targets and (k not in machine_keys or k == machine)  # one GPU machine per stack
        ]
        prices = {key: round(1 + index / 1000, 3) for index, key in enumerate(keys)}  # a price of its own
        items = run_stack(stack, {**overrides, "cost.prices": prices}).outputs["costEstimate"]["items"]
        unit = {round(i["unitHourly"], 6) for i in items if i["source"] == "config: cost.prices"}
        wanted.setdefault(target, set()).update(keys)
        priced.setdefault(target, set()).update(
            k for k, p in prices.items() if round(p / HOURS_PER_MONTH if k in MONTHLY_KEYS else p, 6) in unit
        )
    assert priced == wanted


@pytest.mark.parametrize(
    ("stack", "key"),
    [("acs", "gpu-node"), ("gke-l4", "gpu-node"), ("dev", "acs-gpu"), ("ack", "acs-gpu"), ("ack", "gke.cluster")],
)
def test_a_price_for_an_item_the_target_does_not_have_is_refused(stack, key):
    from test_config import problem

    found = problem(stack, {"cost.prices": {key: 5}}, f"cost.prices.{key}")
    assert "costEstimate does not have" in found.allowed
    assert found.fix == f"pulumi config rm --path 'llm:cost.prices.{key}'"


def test_kubernetes_has_no_estimate_so_no_cost_keys():
    from test_config import problem

    found = problem("kubernetes", {"cost.prices": {"gpu-node": 3}}, "cost")
    assert "not to kubernetes" in found.allowed
