"""The serving namespace's NetworkPolicies, evaluated (tests/netpol.py) over the pods each stack creates: the documented
flows pass, everything else is denied. The evaluator itself is checked first on the semantics that are easy to
get wrong."""

from __future__ import annotations

import functools

import pytest
from harness import PEM_TLS, run_stack
from netpol import Cluster, External, Pod, Policy

from components.kubernetes.network_policies import LWS_GROUP_INDEX_LABEL, LWS_NAME_LABEL
from components.kubernetes.serving_workload import LWS_WORKER_INDEX_LABEL, RAY_NODE_PORT, RAY_PORT
from core.gateway import METRICS_PORT

API, TLS_API = 8000, 8443
OTHER_NAMESPACE = "team-a"
DNS = Pod("kube-dns", "kube-system", {"k8s-app": "kube-dns"}, {"dns": 53}, ip="10.201.0.10")
INTERNET = External("a client elsewhere", "198.18.7.7")
ALLOWED_CLIENT = External("a client in access.allowedCidrs", "203.0.113.9")
HUB = External("the model hub", "47.0.0.1")
METADATA = External("the metadata server", "169.254.169.254")


# ---------------------------------------------------------------------------------------------- the evaluator


def cluster(*policies: dict, namespaces=None) -> Cluster:
    names = namespaces or {"app": {"team": "app"}, "other": {"team": "other"}}
    return Cluster(names, [Policy("app", f"p{i}", spec) for i, spec in enumerate(policies)])


WEB = Pod("web", "app", {"role": "web"}, {"http": 8080})
DB = Pod("db", "app", {"role": "db"}, {"sql": 5432})
FOREIGN_WEB = Pod("web", "other", {"role": "web"})


def test_without_policies_everything_flows_and_default_deny_stops_it_both_ways():
    assert cluster().allowed(WEB, DB, 5432)
    deny = cluster({"podSelector": {}, "policyTypes": ["Ingress", "Egress"]})
    assert not deny.allowed(WEB, DB, 5432)
    assert not deny.allowed(FOREIGN_WEB, DB, 5432)  # ingress isolation
    assert not deny.allowed(WEB, FOREIGN_WEB, 80)  # egress isolation
    assert deny.allowed(FOREIGN_WEB, Pod("x", "other", {}), 80)  # the other namespace has no policy


def test_policy_types_default_to_ingress_plus_egress_when_egress_rules_exist():
    ingress_only = cluster({"podSelector": {}})
    assert not ingress_only.allowed(FOREIGN_WEB, DB, 5432) and ingress_only.allowed(DB, INTERNET, 443)
    with_egress = cluster({"podSelector": {}, "egress": [{"ports": [{"port": 53, "protocol": "UDP"}]}]})
    assert with_egress.allowed(DB, DNS, 53, "UDP") and not with_egress.allowed(DB, INTERNET, 443)


def test_pod_and_namespace_selectors_in_one_peer_are_anded_and_in_two_peers_ored():
    deny = {"podSelector": {}, "policyTypes": ["Ingress"]}
    both = {"namespaceSelector": {"matchLabels": {"team": "other"}}, "podSelector": {"matchLabels": {"role": "web"}}}
    anded = cluster(deny, {"podSelector": {"matchLabels": {"role": "db"}}, "ingress": [{"from": [both]}]})
    assert anded.allowed(FOREIGN_WEB, DB, 5432)
    assert not anded.allowed(WEB, DB, 5432)  # right pod, wrong namespace
    assert not anded.allowed(Pod("batch", "other", {"role": "batch"}), DB, 5432)  # right namespace, wrong pod
    split = [{"namespaceSelector": both["namespaceSelector"]}, {"podSelector": both["podSelector"]}]
    ored = cluster(deny, {"podSelector": {"matchLabels": {"role": "db"}}, "ingress": [{"from": split}]})
    assert ored.allowed(WEB, DB, 5432) and ored.allowed(Pod("batch", "other", {"role": "batch"}), DB, 5432)
    alone = cluster(deny, {"podSelector": {}, "ingress": [{"from": [{"podSelector": {}}]}]})
    assert alone.allowed(WEB, DB, 1) and not alone.allowed(FOREIGN_WEB, DB, 1)  # podSelector alone: own namespace


def test_ip_blocks_except_and_ports_by_number_range_name_and_protocol():
    rule = {
        "from": [{"ipBlock": {"cidr": "203.0.113.0/24", "except": ["203.0.113.128/25"]}}],
        "ports": [{"port": "http"}, {"port": 9000, "endPort": 9009}, {"port": 53, "protocol": "UDP"}],
    }
    c = cluster({"podSelector": {}, "ingress": [rule]})
    assert c.allowed(ALLOWED_CLIENT, WEB, 8080) and c.allowed(ALLOWED_CLIENT, WEB, 9009)
    assert not c.allowed(ALLOWED_CLIENT, WEB, 9010) and not c.allowed(
        ALLOWED_CLIENT, DB, 8080
    )  # db's 8080 is no "http"
    assert c.allowed(ALLOWED_CLIENT, WEB, 53, "UDP") and not c.allowed(ALLOWED_CLIENT, WEB, 53)
    assert not c.allowed(External("excepted", "203.0.113.200"), WEB, 8080)
    assert not c.allowed(Pod("p", "other", {}, ip="203.0.113.9"), WEB, 8080)  # ipBlocks do not match pods here


def test_match_expressions():
    helpers = {"matchExpressions": [{"key": "role", "operator": "In", "values": ["db", "cache"]}]}
    unlabelled = {"matchExpressions": [{"key": "role", "operator": "DoesNotExist"}]}
    c = cluster({"podSelector": helpers, "policyTypes": ["Ingress"]})
    assert not c.allowed(WEB, DB, 1) and c.allowed(DB, WEB, 1)
    c = cluster({"podSelector": unlabelled, "policyTypes": ["Ingress"]})
    assert c.allowed(WEB, DB, 1) and not c.allowed(WEB, Pod("fluid", "app", {}), 1)


# ---------------------------------------------------------------------------------------------- the stacks


@functools.cache
def deployed(stack: str, overrides: tuple = ()) -> tuple[Cluster, dict[str, list[Pod]], str]:
    """The stack's policies and its pods as the controllers make them: each Deployment replica, each
    LeaderWorkerSet group (with the labels the LWS controller adds), each Job's pod; a workload an HPA scales, up to
    the HPA's maximum."""
    run = run_stack(stack, dict(overrides))
    objects = run.kubernetes_objects()
    scaled_to = {
        (o["spec"]["scaleTargetRef"]["kind"], o["spec"]["scaleTargetRef"]["name"]): o["spec"]["maxReplicas"]
        for o in objects
        if o["kind"] == "HorizontalPodAutoscaler"
    }

    def replicas(o: dict) -> int:
        return max(o["spec"].get("replicas", 1), scaled_to.get((o["kind"], o["metadata"]["name"]), 0))

    policies = [o for o in objects if o["kind"] == "NetworkPolicy"]
    assert policies, "no NetworkPolicy in the stack"
    namespace = policies[0]["metadata"]["namespace"]
    pods: dict[str, list[Pod]] = {"serving": [], "workers": [], "import": [], "benchmark": []}

    def pod(name: str, template: dict, extra: dict) -> Pod:
        ports = {p["name"]: p["containerPort"] for c in template["spec"]["containers"] for p in c.get("ports", [])}
        ip = f"10.100.{len(pods['serving']) + len(pods['workers'])}.{len(pods['import']) + 10}"
        return Pod(name, namespace, {**template["metadata"]["labels"], **extra}, ports, ip=ip)

    for o in objects:
        if o["kind"] == "Deployment":
            pods["serving"] += [pod(f"llm-{i}", o["spec"]["template"], {}) for i in range(replicas(o))]
        elif o["kind"] == "LeaderWorkerSet":
            spec = o["spec"]["leaderWorkerTemplate"]
            for group in range(replicas(o)):
                lws = {LWS_NAME_LABEL: o["metadata"]["name"], LWS_GROUP_INDEX_LABEL: str(group)}
                pods["serving"].append(
                    pod(f"llm-{group}", spec["leaderTemplate"], {**lws, LWS_WORKER_INDEX_LABEL: "0"})
                )
                for worker in range(1, spec["size"]):
                    extra = {**lws, LWS_WORKER_INDEX_LABEL: str(worker)}
                    pods["workers"].append(pod(f"llm-{group}-{worker}", spec["workerTemplate"], extra))
        elif o["kind"] == "Job":
            kind = "benchmark" if "benchmark" in o["metadata"]["name"] else "import"
            pods[kind].append(pod(o["metadata"]["name"], o["spec"]["template"], {}))
    namespaces = {namespace: {}, "kube-system": {}, OTHER_NAMESPACE: {}, "gmp-system": {}}
    rules = [Policy(namespace, p["metadata"]["name"], p["spec"]) for p in policies]
    return Cluster(namespaces, rules), pods, namespace


def other_pod() -> Pod:
    return Pod("client", OTHER_NAMESPACE, {"app": "client"}, ip="10.101.0.5")


@pytest.mark.parametrize(
    "stack,overrides,vpc_host",
    [
        ("acs", (), "192.168.3.4"),
        ("ack", (), "192.168.3.4"),
        ("ack-edge", (), "192.168.3.4"),
        ("gke", (), "10.0.0.7"),
        ("kubernetes", (), None),
    ],
)
def test_private_flows_pass_and_nothing_else(stack, overrides, vpc_host):
    c, pods, _ = deployed(stack, overrides)
    # Only `kubernetes` imports with a Job in the namespace: gke with a Cloud Run job, Alibaba on ECS workers.
    assert pods["serving"] and bool(pods["import"]) == (stack == "kubernetes")
    for server in pods["serving"]:
        assert c.allowed(other_pod(), server, API)  # the private endpoint: any pod of the cluster, with the key
        for helper in pods["benchmark"]:
            assert c.allowed(helper, server, API)  # the benchmark's requests
        if vpc_host:
            assert c.allowed(External("a VPC host or node", vpc_host), server, API)
        for outsider in (INTERNET, ALLOWED_CLIENT):  # no public endpoint here
            for port in (API, TLS_API, METRICS_PORT, RAY_PORT):
                assert not c.allowed(outsider, server, port), (outsider, port)
        for port in (METRICS_PORT + 100, 22, RAY_PORT, 8001):
            assert not c.allowed(other_pod(), server, port), port
        assert c.allowed(server, DNS, 53, "UDP") and c.allowed(server, DNS, 53, "TCP")
        assert not c.allowed(server, other_pod(), 80)
    for helper in pods["import"] + pods["benchmark"]:
        assert c.allowed(helper, HUB, 443) and c.allowed(helper, DNS, 53, "UDP")
        assert not c.allowed(helper, HUB, 22) and not c.allowed(helper, other_pod(), 80)
        for server in pods["serving"]:
            assert not c.allowed(helper, server, METRICS_PORT)
        for port in (80, 443, 8000):
            assert not c.allowed(other_pod(), helper, port) and not c.allowed(INTERNET, helper, port)
    for importer in pods["import"]:
        for server in pods["serving"]:
            assert not c.allowed(importer, server, API)


def test_alibaba_clb_health_checks_and_https_listeners_reach_the_plain_api_port_only():
    c, pods, _ = deployed("acs")
    clb = External("CLB health check", "100.100.1.2")
    for server in pods["serving"]:
        assert c.allowed(clb, server, API) and not c.allowed(clb, server, RAY_PORT)


@pytest.mark.parametrize(
    "stack,scraper,denied",
    [
        ("gke", Pod("collector-x", "gmp-system", {"app.kubernetes.io/name": "collector"}), other_pod()),
        ("acs", other_pod(), INTERNET),
        ("kubernetes", other_pod(), INTERNET),
    ],
)
def test_the_scraper_reads_the_metrics_port_and_no_one_else_does(stack, scraper, denied):
    c, pods, _ = deployed(stack)
    for server in pods["serving"]:
        assert c.allowed(scraper, server, METRICS_PORT)
        assert not c.allowed(denied, server, METRICS_PORT)
        assert not c.allowed(scraper, server, RAY_PORT)


def test_serving_pods_send_nowhere_but_dns_on_alibaba_and_to_google_apis_and_metadata_on_gke():
    alibaba, alibaba_pods, _ = deployed("acs")
    gke, gke_pods, _ = deployed("gke")
    for server in alibaba_pods["serving"]:
        assert not alibaba.allowed(server, HUB, 443) and not alibaba.allowed(server, METADATA, 80)
    for server in gke_pods["serving"]:
        assert gke.allowed(server, External("storage.googleapis.com", "142.250.1.1"), 443)
        assert gke.allowed(server, METADATA, 80) and gke.allowed(
            server, External("gke-metadata", "169.254.169.252"), 988
        )
        assert not gke.allowed(server, METADATA, 8080) and not gke.allowed(server, HUB, 80)


# An OSS internal endpoint's address and the STS VPC endpoint's: Alibaba Cloud service addresses in 100.64.0.0/10.
OSS_INTERNAL = External("s3.oss-cn-hangzhou-internal.aliyuncs.com", "100.118.28.50")
STS_VPC = External("sts-vpc.cn-hangzhou.aliyuncs.com", "100.100.80.5")
STREAM_OSS = (("modelStore.load", "stream"), ("engine.image", "docker.io/vllm/vllm-openai:v0.32.0"))


@pytest.mark.parametrize("stack", ["acs", "ack"])
def test_streaming_pods_reach_oss_and_sts_over_https_and_nothing_else(stack):
    c, pods, _ = deployed(stack, STREAM_OSS)
    mounted, mounted_pods, _ = deployed(stack)
    assert pods["serving"] and mounted_pods["serving"]
    for server in pods["serving"]:
        assert c.allowed(server, OSS_INTERNAL, 443) and c.allowed(server, STS_VPC, 443)
        assert not c.allowed(server, OSS_INTERNAL, 80) and not c.allowed(server, HUB, 443)
        assert not c.allowed(server, METADATA, 80) and not c.allowed(server, other_pod(), 443)
    for server in mounted_pods["serving"]:  # reading the volume, the pods need no cloud service themselves
        assert not mounted.allowed(server, OSS_INTERNAL, 443)


PUBLIC = (("access.public", True), ("access.allowedCidrs", ("203.0.113.0/24",)))


def public(stack: str, *extra: tuple) -> tuple:
    return (*PUBLIC, *extra)


@pytest.mark.parametrize("stack", ["acs", "gke", "kubernetes"])
def test_public_clients_reach_only_the_tls_port_when_tls_ends_at_the_gateway(stack):
    pem = tuple((k, v) for k, v in PEM_TLS.items())
    c, pods, _ = deployed(stack, (*PUBLIC, *pem))
    for server in pods["serving"]:
        assert c.allowed(ALLOWED_CLIENT, server, TLS_API)
        assert not c.allowed(ALLOWED_CLIENT, server, API)  # plain HTTP never from the internet
        assert not c.allowed(ALLOWED_CLIENT, server, METRICS_PORT)
        assert not c.allowed(INTERNET, server, TLS_API) and not c.allowed(INTERNET, server, API)


def test_public_clients_reach_the_plain_port_when_the_clb_ends_tls():
    cas = (("access.tls.source", "alibaba-cas"), ("access.tls.certificateId", "1234_abc"))
    c, pods, _ = deployed("acs", (*PUBLIC, *cas))
    for server in pods["serving"]:
        assert c.allowed(ALLOWED_CLIENT, server, API) and not c.allowed(ALLOWED_CLIENT, server, TLS_API)
        assert not c.allowed(INTERNET, server, API)


@pytest.mark.parametrize(
    "stack,overrides,copies",
    [
        ("acs-r1", (), 1),
        (
            "gke",
            (("gke.rdma", True), ("placement.podsPerReplica", 2), ("gpuNodes.min", 4), ("scaling.replicas", 2)),
            2,
        ),
        ("acs-r1", (("scaling.maxReplicas", 3),), 3),  # groups 1 and 2 exist only once the HPA has added them
    ],
    ids=["acs-lws", "gke-two-nodes-two-copies", "acs-lws-autoscaled"],
)
def test_a_multi_pod_copy_talks_within_its_group_only(stack, overrides, copies):
    c, pods, _ = deployed(stack, overrides)
    assert pods["workers"], "expected a LeaderWorkerSet"
    groups: dict[str, list[Pod]] = {}
    for p in pods["serving"] + pods["workers"]:
        groups.setdefault(p.labels[LWS_GROUP_INDEX_LABEL], []).append(p)
    for index, members in groups.items():
        for a in members:
            for b in members:
                if a is not b:
                    for port in (RAY_PORT, RAY_NODE_PORT, 12345, 40000):
                        assert c.allowed(a, b, port), (a.name, b.name, port)
            for other_index, others in groups.items():
                if other_index != index:
                    for b in others:
                        assert not c.allowed(a, b, RAY_PORT) and not c.allowed(a, b, 40000)
            for outsider in (other_pod(), *pods["import"], *pods["benchmark"]):
                assert not c.allowed(outsider, a, RAY_PORT) and not c.allowed(outsider, a, RAY_NODE_PORT)
        for worker in (w for w in members if w in pods["workers"]):
            assert not c.allowed(other_pod(), worker, API) and not c.allowed(other_pod(), worker, METRICS_PORT)
            assert c.allowed(worker, DNS, 53, "UDP")
        leaders = [p for p in members if p in pods["serving"]]
        assert len(leaders) == 1 and c.allowed(other_pod(), leaders[0], API)
    assert len(groups) == copies


def test_acs_fluid_cache_pods_serve_the_namespace_only():
    c, pods, namespace = deployed("acs", (("acs.fluid", True),))
    caches = [
        Pod("jindo-worker-0", namespace, {"release": "llm-models"}, {"rpc": 8101}),
        Pod("jindo-master-0", namespace, {"app.kubernetes.io/component": "master"}, {"rpc": 8101}),
    ]
    for cache in caches:
        for server in pods["serving"]:
            assert c.allowed(server, cache, 8101)
        assert not c.allowed(other_pod(), cache, 8101) and not c.allowed(INTERNET, cache, 8101)
        assert c.allowed(cache, External("oss internal endpoint", "100.118.1.1"), 80)
        assert c.allowed(caches[0], cache, 8101)
    for server in pods["serving"]:
        assert not c.allowed(server, HUB, 443)
        assert not c.allowed(caches[1], server, RAY_PORT) and c.allowed(caches[1], server, API)
