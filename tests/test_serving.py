"""The Kubernetes serving workload: what a production cluster needs from one pod or one LWS group per copy."""

import hashlib
import math
import os
import re
import socket
import subprocess
from pathlib import Path

import kubernetes_validate
import pytest
from harness import (
    KUBERNETES_SCHEMA_VERSION,
    PRIVATE_LB_IP,
    PUBLIC_LB_IP,
    all_strings,
    is_secret,
    run_program,
    unwrap,
    validate_kubernetes,
)

from components.kubernetes.serving_workload import ENGINE_PROBE
from core.catalog import MODELS
from core.engine import EngineOptions, build_command
from core.gateway import GATEWAY_IMAGE, auth_map_entry

KEY = "serving-test-KEY-0123456789abcdefXYZ"
LWS = "kubernetes:leaderworkerset.x-k8s.io/v1:LeaderWorkerSet"
DEPLOYMENT = "kubernetes:apps/v1:Deployment"
SERVICE = "kubernetes:core/v1:Service"
PDB = "kubernetes:policy/v1:PodDisruptionBudget"
ACS_LABELS = {"alibabacloud.com/compute-class": "gpu", "alibabacloud.com/gpu-model-series": "H20"}
PVC = {"persistentVolumeClaim": {"claimName": "model", "readOnly": True}}


def engine(kind="vllm", pods=1):
    options = EngineOptions(kind, "img:1", "served", 32768, 0.9)
    behind = {"behind_gateway": True, "shutdown_timeout_seconds": 90 if kind == "vllm" else 0}
    if pods > 1:
        return build_command(options, MODELS["DeepSeek-R1"], "/models/DeepSeek-R1", 8, pods, multi_node=True, **behind)
    return build_command(options, MODELS["QwQ-32B"], "/models/QwQ-32B", 1, **behind)


def gateway(**overrides):
    from components.kubernetes.serving_workload import Gateway

    values = dict(image=GATEWAY_IMAGE, port=8000, read_timeout_seconds=3577, max_body_bytes=3 << 20)
    values.update(overrides)
    return Gateway(**values)


def build(private=None, public=None, with_dependency=False, **overrides):
    """Build one ServingWorkload under mocks; exposures as ServiceExposure keyword dicts."""

    def program():
        import pulumi
        import pulumi_kubernetes as k8s

        from components.kubernetes.serving_workload import ServiceExposure, ServingArgs, ServingWorkload

        values = dict(
            namespace="llm",
            app="llm",
            image="docker.io/vllm/vllm-openai:v0.11.0",
            engine=engine(),
            gateway=gateway(),
            api_key=pulumi.Output.secret(KEY),
            model_volume=PVC,
            model_mount_path="/models",
            gpus_per_pod=1,
            load_minutes=20,
            pod_labels=ACS_LABELS,
        )
        values.update(overrides)
        if with_dependency:
            values["depends_on"] = [k8s.core.v1.ConfigMap("model-import", metadata={"namespace": "llm"})]
        if private is not None:
            values["private_service"] = ServiceExposure(**private)
        if public is not None:
            values["public_service"] = ServiceExposure(**public)
        serving = ServingWorkload("serving", ServingArgs(**values))
        return {
            "private": serving.private_address,
            "public": serving.public_address,
            "service": serving.service_name,
            "secret": serving.secret_name,
            "secretKey": serving.secret_key,
        }

    return run_program(program)


def deployment_pod(run):
    return run.kubernetes_object("Deployment")["spec"]["template"]


def engine_container(run):
    return deployment_pod(run)["spec"]["containers"][0]


def env_of(container):
    return {e["name"]: e for e in container["env"]}


def kubelet_expand(text, env):
    """Kubernetes' expansion of container command/args: `$$` -> `$`, `$(NAME)` -> value when NAME is set."""
    out, i = [], 0
    while i < len(text):
        if text.startswith("$$", i):
            out.append("$")
            i += 2
        elif text.startswith("$(", i) and text.find(")", i) != -1:
            end = text.find(")", i)
            out.append(env.get(text[i + 2 : end], text[i : end + 1]))
            i = end + 1
        else:
            out.append(text[i])
            i += 1
    return "".join(out)


# --- One pod per copy: a Deployment -------------------------------------------------------------


def test_a_single_pod_copy_is_a_deployment_that_validates_against_the_kubernetes_schema():
    run = build()
    assert run.of_type(LWS) == []
    assert validate_kubernetes(run) == []
    deployment = run.kubernetes_object("Deployment", "llm")
    assert deployment["metadata"]["namespace"] == "llm"
    assert deployment["spec"]["replicas"] == 1
    assert engine_container(run)["image"] == "docker.io/vllm/vllm-openai:v0.11.0"
    assert engine_container(run)["command"] == list(engine().argv)


def test_selector_is_the_stable_app_label_and_pod_labels_only_label_the_pods():
    run = build()
    spec = run.kubernetes_object("Deployment")["spec"]
    assert spec["selector"] == {"matchLabels": {"app": "llm"}}
    labels = spec["template"]["metadata"]["labels"]
    assert labels["app"] == "llm" and ACS_LABELS.items() <= labels.items()
    for service in (o for o in run.kubernetes_objects() if o["kind"] == "Service"):
        assert not set(ACS_LABELS) & set(service["spec"]["selector"])


def test_resources_are_guaranteed_with_the_gpus_of_the_pod():
    run = build(gpus_per_pod=4, cpu=16, memory_gib=128, gpu_resource="alibabacloud.com/ppu")
    resources = engine_container(run)["resources"]
    assert resources["requests"] == resources["limits"] == {"cpu": "16", "memory": "128Gi", "alibabacloud.com/ppu": "4"}


def test_shared_memory_is_a_sized_memory_volume_and_the_model_is_mounted_read_only():
    run = build(shm_gib=16, memory_gib=128)
    pod = deployment_pod(run)["spec"]
    volumes = {v["name"]: v for v in pod["volumes"]}
    mounts = {m["mountPath"]: m for m in engine_container(run)["volumeMounts"]}
    assert volumes[mounts["/dev/shm"]["name"]]["emptyDir"] == {"medium": "Memory", "sizeLimit": "16Gi"}
    model = mounts["/models"]
    assert model["readOnly"] is True
    assert volumes[model["name"]]["persistentVolumeClaim"] == PVC["persistentVolumeClaim"]


@pytest.mark.parametrize("load_minutes", [2, 5, 20, 45])
def test_startup_probe_allows_one_and_a_half_times_the_expected_load_and_never_under_ten_minutes(load_minutes):
    container = engine_container(build(load_minutes=load_minutes))
    startup = container["startupProbe"]
    assert startup["exec"] == {"command": ["python3", "-c", ENGINE_PROBE]}
    assert startup["periodSeconds"] == 10
    window = max(load_minutes * 1.5, 10)  # a small model's 2-3 modelled minutes still get 10 (a cold first start)
    assert startup["failureThreshold"] == math.ceil(window * 60 / 10)
    assert startup["periodSeconds"] * startup["failureThreshold"] >= load_minutes * 60 * 1.5


def test_readiness_and_liveness_probes_leave_a_busy_engine_alone():
    container = engine_container(build())
    readiness, liveness = container["readinessProbe"], container["livenessProbe"]
    # The engine listens on loopback: its probes run inside it, against its own /health.
    assert readiness["exec"] == liveness["exec"] == {"command": ["python3", "-c", ENGINE_PROBE]}
    assert "http://127.0.0.1:8001/health" in ENGINE_PROBE
    assert readiness["periodSeconds"] == 10 and readiness["failureThreshold"] == 3
    assert liveness["periodSeconds"] >= 15 and liveness["timeoutSeconds"] >= 5
    assert liveness["periodSeconds"] * liveness["failureThreshold"] >= 120  # 2 min unresponsive before a restart
    assert "ports" not in container


def test_rollout_waits_are_sized_from_the_load_not_from_kubernetes_defaults():
    from components.kubernetes.serving_workload import ready_minutes

    run = build(load_minutes=45)
    minutes = ready_minutes(45)
    startup = engine_container(run)["startupProbe"]
    deployment = run.kubernetes_object("Deployment")["spec"]
    assert deployment["progressDeadlineSeconds"] == minutes * 60
    assert deployment["progressDeadlineSeconds"] > startup["periodSeconds"] * startup["failureThreshold"]
    assert run.one(DEPLOYMENT).custom_timeouts["create"] == f"{minutes}m"


def test_pods_drain_then_the_gateway_stops_accepting_then_the_engine_finishes_what_is_in_flight():
    run = build()
    pod = deployment_pod(run)["spec"]
    engine, gateway = containers(pod)
    # The gateway: the drain (load balancers stop sending), then nginx's graceful quit, waiting until it exits.
    script = gateway["lifecycle"]["preStop"]["exec"]["command"]
    assert script[:2] == ["/bin/sh", "-c"]
    drain = int(script[2].split(";")[0].removeprefix("sleep "))
    assert drain >= 15 and "nginx -c /etc/llm-gateway/nginx.conf -e stderr -s quit" in script[2]
    assert "while [ -e /run/llm-gateway/llm-gateway.pid ]" in script[2]
    # The engine waits a little longer, then while it has requests in flight, then gets SIGTERM (and vLLM drains
    # what may be left, --shutdown-timeout).
    command = engine["lifecycle"]["preStop"]["exec"]["command"]
    assert command[:2] == ["python3", "-c"]
    sleep = int(re.search(r"time\.sleep\((\d+)\)", command[2]).group(1))
    wait = int(re.search(r"deadline = time\.monotonic\(\) \+ (\d+)", command[2]).group(1))
    assert sleep > drain
    argv = engine["command"]
    shutdown = int(argv[argv.index("--shutdown-timeout") + 1])
    assert f"worker_shutdown_timeout {shutdown}s;" in gateway_conf(run)
    # The grace period covers the engine's sleep and its wait for what is in flight, with room for the exit.
    assert wait == shutdown and pod["terminationGracePeriodSeconds"] >= sleep + wait + 5


class _Metrics:
    """A stand-in for the engine's /metrics on loopback: the busy gauges from a list of values, then 0."""

    def __init__(self, busy):
        import http.server
        import threading

        values = list(busy)

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                running = values.pop(0) if values else 0
                body = (
                    f'vllm:num_requests_running{{model_name="m"}} {running}.0\n'
                    'vllm:num_requests_waiting{model_name="m"} 0.0\n'
                ).encode()
                self.send_response(200)
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


def run_drain_script(port, wait_seconds, engine="vllm"):
    import sys
    import time

    from components.kubernetes.serving_workload import engine_drain_script

    script = engine_drain_script(engine, 0, wait_seconds).replace("127.0.0.1:8001", f"127.0.0.1:{port}")
    start = time.monotonic()
    subprocess.run([sys.executable, "-c", script], check=True, timeout=30)
    return time.monotonic() - start


def test_the_engine_prestop_waits_while_requests_are_in_flight_then_returns():
    metrics = _Metrics([3, 2, 1])  # three polls with requests running, then none
    elapsed = run_drain_script(metrics.port, 20)
    assert 2.5 < elapsed < 8
    metrics.server.shutdown()


def test_the_engine_prestop_gives_up_at_its_deadline_and_when_the_engine_is_gone():
    busy = _Metrics([5] * 100)
    assert 1.5 < run_drain_script(busy.port, 2) < 6
    busy.server.shutdown()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed = s.getsockname()[1]
    assert run_drain_script(closed, 20) < 3


def test_pods_run_without_privileges_or_api_credentials():
    run = build()
    pod, container = deployment_pod(run)["spec"], engine_container(run)
    assert container["securityContext"]["privileged"] is False
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    assert pod["automountServiceAccountToken"] is False and pod["enableServiceLinks"] is False
    assert env_of(container)["HF_HUB_OFFLINE"]["value"] == "1"


def test_updates_start_the_new_pod_before_stopping_the_old_unless_there_is_no_spare_capacity():
    surge = build()
    assert surge.kubernetes_object("Deployment")["spec"]["strategy"] == {
        "type": "RollingUpdate",
        "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0},
    }
    fixed = build(replicas=3, surge_updates=False)
    assert fixed.kubernetes_object("Deployment")["spec"]["strategy"]["rollingUpdate"] == {
        "maxSurge": 0,
        "maxUnavailable": 1,
    }
    # A surge update replaces the copies one after another: the update wait grows with them.
    assert fixed.one(DEPLOYMENT).custom_timeouts["update"] != surge.one(DEPLOYMENT).custom_timeouts["update"]


# --- The API key ---------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["vllm", "sglang"])
def test_the_api_key_reaches_the_engine_only_through_a_secret_reference(kind):
    command = engine(kind)
    run = build(engine=command)
    container = engine_container(run)
    secret = run.kubernetes_object("Secret")
    reference = env_of(container)[command.api_key_env]["valueFrom"]["secretKeyRef"]
    assert reference == {"name": secret["metadata"]["name"], "key": command.api_key_env}
    assert run.outputs["secret"] == secret["metadata"]["name"] and run.outputs["secretKey"] == command.api_key_env
    if kind == "sglang":
        assert container["command"][container["command"].index("--api-key") + 1] == "$(SGLANG_API_KEY)"
    # The key is in the Secret, as a Pulumi secret, and nowhere else.
    recorded = run.one("kubernetes:core/v1:Secret").inputs
    assert is_secret(recorded["stringData"]) or is_secret(recorded["stringData"][command.api_key_env])
    assert secret["type"] == "Opaque"
    assert secret["stringData"] == {command.api_key_env: KEY, "gateway-auth.conf": auth_map_entry(KEY)}
    for resource in run.resources:
        if resource.type != "kubernetes:core/v1:Secret":
            assert not any(KEY in s for s in all_strings(unwrap(resource.inputs))), resource.name
    assert not any(KEY in s for s in all_strings(run.outputs))


def test_a_new_key_gets_a_new_immutable_secret_so_the_pods_roll():
    run = build()
    secret = run.kubernetes_object("Secret")
    assert secret["immutable"] is True
    version = run.one("random:index/randomId:RandomId")
    assert is_secret(version.inputs["keepers"]) or is_secret(version.inputs["keepers"]["apiKeySha256"])
    assert unwrap(version.inputs["keepers"]) == {
        "apiKeySha256": hashlib.sha256(KEY.encode()).hexdigest(),
        "secretKey": "VLLM_API_KEY",
    }
    assert secret["metadata"]["name"] == "llm-api-key-a1b2c3d4"  # the mocked RandomId hex


# --- Copies, disruption budget, Services -------------------------------------------------------


def test_one_copy_has_no_disruption_budget():
    assert build().of_type(PDB) == []


def test_several_copies_get_a_disruption_budget_and_spread_over_zones():
    run = build(replicas=3)
    budget = run.kubernetes_object("PodDisruptionBudget")["spec"]
    assert budget["maxUnavailable"] == 1 and budget["selector"] == {"matchLabels": {"app": "llm"}}
    spread = deployment_pod(run)["spec"]["topologySpreadConstraints"][0]
    assert spread["topologyKey"] == "topology.kubernetes.io/zone" and spread["whenUnsatisfiable"] == "ScheduleAnyway"
    assert validate_kubernetes(run) == []


def test_without_load_balancers_the_address_is_the_cluster_dns_name():
    run = build()
    services = run.of_type(SERVICE)
    assert len(services) == 1
    service = run.kubernetes_object("Service")
    assert service["spec"]["type"] == "ClusterIP"
    assert service["spec"]["ports"] == [{"name": "http", "port": 8000, "targetPort": "http", "protocol": "TCP"}]
    assert service["spec"]["selector"] == {"app": "llm"}
    assert run.outputs["service"] == service["metadata"]["name"] == "llm-api"
    assert run.outputs["private"] == "llm-api.llm.svc.cluster.local"
    assert "public" not in run.outputs


def test_a_private_load_balancer_carries_its_annotations_and_gives_the_private_address():
    intranet = {"service.beta.kubernetes.io/alibaba-cloud-loadbalancer-address-type": "intranet"}
    run = build(private={"annotations": intranet})
    lb = run.kubernetes_object("Service", "llm-private")
    assert lb["spec"]["type"] == "LoadBalancer" and intranet.items() <= lb["metadata"]["annotations"].items()
    assert "loadBalancerSourceRanges" not in lb["spec"]
    assert run.outputs["private"] == PRIVATE_LB_IP
    assert "public" not in run.outputs


def test_a_public_load_balancer_admits_only_the_source_ranges():
    internet = {"service.beta.kubernetes.io/alibaba-cloud-loadbalancer-address-type": "internet"}
    run = build(
        private={"annotations": {"x": "intranet"}},
        public={"annotations": internet, "source_ranges": ["203.0.113.0/24"], "external_traffic_policy": "Local"},
    )
    assert {s.name for s in run.of_type(SERVICE)} == {"serving-api", "serving-private", "serving-public"}
    public = run.kubernetes_object("Service", "llm-public")["spec"]
    assert public["loadBalancerSourceRanges"] == ["203.0.113.0/24"]
    assert public["externalTrafficPolicy"] == "Local"
    assert run.outputs["public"] == PUBLIC_LB_IP and run.outputs["private"] == PRIVATE_LB_IP
    assert validate_kubernetes(run) == []
    for service in run.of_type(SERVICE):
        assert service.custom_timeouts["create"]  # waits for the address and ready endpoints


def test_serving_starts_only_after_its_dependencies_and_every_child_is_parented():
    run = build(with_dependency=True, private={"annotations": {"x": "intranet"}})
    dependency = run.named("model-import").urn
    assert dependency in run.one(DEPLOYMENT).dependencies
    for service in run.of_type(SERVICE):
        # Created with the workload, so a load balancer provisions while the pods pull and load.
        assert dependency in service.dependencies and run.one(DEPLOYMENT).urn not in service.dependencies
        assert service.custom_timeouts == run.one(DEPLOYMENT).custom_timeouts
    component = run.one("llm:kubernetes:ServingWorkload")
    children = [r for r in run.resources if r.urn not in (component.urn, dependency)]
    assert children and all(r.parent == component.urn for r in children)


# --- Several pods per copy: a LeaderWorkerSet --------------------------------------------------


def lws_run(**overrides):
    values = dict(engine=engine(pods=2), gpus_per_pod=8, pods_per_replica=2, memory_gib=1024, shm_gib=64)
    values.update(overrides)
    return build(**values)


def lws_templates(run):
    template = run.kubernetes_object("LeaderWorkerSet", "llm")["spec"]["leaderWorkerTemplate"]
    return template["leaderTemplate"], template["workerTemplate"]


def test_a_multi_pod_copy_is_a_leader_worker_set_with_its_required_fields():
    run = lws_run(replicas=2, with_dependency=True)
    assert run.of_type(DEPLOYMENT) == []
    assert validate_kubernetes(run) == ["leaderworkerset.x-k8s.io/v1/LeaderWorkerSet"]
    lws = run.kubernetes_object("LeaderWorkerSet", "llm")
    assert lws["apiVersion"] == "leaderworkerset.x-k8s.io/v1" and lws["metadata"]["namespace"] == "llm"
    spec = lws["spec"]
    assert spec["replicas"] == 2
    template = spec["leaderWorkerTemplate"]
    assert template["size"] == 2 and template["restartPolicy"] == "RecreateGroupOnPodRestart"
    assert spec["rolloutStrategy"] == {
        "type": "RollingUpdate",
        "rollingUpdateConfiguration": {"maxSurge": 1, "maxUnavailable": 0},
    }
    assert lws["metadata"]["annotations"]["pulumi.com/waitFor"] == "condition=Available"
    resource = run.one(LWS)
    assert run.named("model-import").urn in resource.dependencies
    assert resource.custom_timeouts["create"]


def test_leader_and_worker_templates_are_valid_pod_templates():
    for template in lws_templates(lws_run()):
        kubernetes_validate.validate(
            {"apiVersion": "v1", "kind": "PodTemplate", "metadata": {"name": "t"}, "template": template},
            KUBERNETES_SCHEMA_VERSION,
            strict=True,
        )


def test_every_pod_of_the_group_has_its_gpus_the_model_and_shared_memory():
    for template in lws_templates(lws_run()):
        container = template["spec"]["containers"][0]
        assert container["resources"]["limits"]["nvidia.com/gpu"] == "8"
        assert container["resources"]["requests"] == container["resources"]["limits"]
        assert {m["mountPath"]: m.get("readOnly", False) for m in container["volumeMounts"]} == {
            "/models": True,
            "/dev/shm": False,
        }
        assert ACS_LABELS.items() <= template["metadata"]["labels"].items()


def test_the_leader_starts_ray_then_the_engine_with_the_ray_executor_and_serves_the_api():
    leader, worker = lws_templates(lws_run())
    container = leader["spec"]["containers"][0]
    assert container["command"][:2] == ["/bin/bash", "-c"]
    argv = container["args"]
    assert argv[:2] == ["vllm", "serve"]
    assert argv[argv.index("--distributed-executor-backend") + 1] == "ray"
    assert argv[argv.index("--pipeline-parallel-size") + 1] == "2"
    env = env_of(container)
    assert env["LLM_RAY_GROUP_GPUS"]["value"] == "16"
    assert env["VLLM_API_KEY"]["valueFrom"]["secretKeyRef"]["key"] == "VLLM_API_KEY"
    # The leader's startup window also covers waiting for the workers to join.
    assert container["startupProbe"]["failureThreshold"] > math.ceil(20 * 60 * 1.5 / 10)
    workers = worker["spec"]["containers"][0]
    assert "VLLM_API_KEY" not in env_of(workers)


def test_a_worker_is_ready_once_its_raylet_has_joined():
    worker = lws_templates(lws_run())[1]["spec"]["containers"][0]
    port = next(p for p in worker["ports"] if p["name"] == "ray-node")
    assert env_of(worker)["LLM_RAY_NODE_PORT"]["value"] == str(port["containerPort"])
    for probe in (worker["startupProbe"], worker["readinessProbe"]):
        assert probe["tcpSocket"] == {"port": "ray-node"}
    # It may wait for the leader's Ray head for the whole join timeout before its raylet starts.
    startup, join_timeout = worker["startupProbe"], env_of(worker)["LLM_RAY_JOIN_TIMEOUT_SECONDS"]["value"]
    assert startup["periodSeconds"] * startup["failureThreshold"] > int(join_timeout)


def test_services_send_api_traffic_only_to_group_leaders():
    run = lws_run(private={"annotations": {"x": "intranet"}})
    for service in (o for o in run.kubernetes_objects() if o["kind"] == "Service"):
        assert service["spec"]["selector"] == {"app": "llm", "leaderworkerset.sigs.k8s.io/worker-index": "0"}
        # The LWS controller creates a headless Service named after the set; ours must not take that name.
        assert service["metadata"]["name"] != "llm"


def test_multi_pod_needs_a_ray_command_and_single_pod_refuses_one():
    with pytest.raises(ValueError, match="multi_node=True"):
        build(pods_per_replica=2, gpus_per_pod=8)
    with pytest.raises(ValueError, match="multi_node=False"):
        build(engine=engine(pods=2))


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"shm_gib": 64, "memory_gib": 64}, "below memory_gib"),
        ({"pod_labels": {"app": "other"}}, "app label"),
        ({"env": {"VLLM_API_KEY": "literal"}}, "must not set"),
        ({"app": "LLM_Server"}, "DNS label"),
        ({"replicas": 0}, "replicas must be at least 1"),
        ({"secret_env": {"VLLM_API_KEY": ("other", "k")}}, "secret_env must not set"),
    ],
)
def test_mistakes_are_refused_before_anything_is_created(overrides, message):
    with pytest.raises(ValueError, match=message):
        build(**overrides)


def test_an_engine_that_downloads_at_start_writes_its_volume_online_with_secret_env():
    run = build(download_at_start=True, secret_env={"HF_TOKEN": ("hf-token", "HF_TOKEN")})
    container = engine_container(run)
    env = env_of(container)
    assert "HF_HUB_OFFLINE" not in env and env["DO_NOT_TRACK"]["value"] == "1"
    assert env["HF_TOKEN"]["valueFrom"]["secretKeyRef"] == {"name": "hf-token", "key": "HF_TOKEN"}
    assert next(m for m in container["volumeMounts"] if m["name"] == "model")["readOnly"] is False
    offline = engine_container(build())
    assert env_of(offline)["HF_HUB_OFFLINE"]["value"] == "1" and "HF_TOKEN" not in env_of(offline)


# --- The Ray launch scripts, run as the kubelet would run them -----------------------------------


def fake_tools(tmp_path, gpu_counts):
    """A PATH with stand-ins for ray, python3 (the GPU count query), vllm and sleep."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    tools = {
        "ray": 'echo "ray $*" >> "$STATE/log"',
        "vllm": 'echo "vllm $*" >> "$STATE/log"',
        "sleep": "exit 0",
        # Answers the leader's GPU query with the next of gpu_counts (the last one repeats).
        "python3": "\n".join(
            [
                "cat >/dev/null",
                'n=$(( $(cat "$STATE/calls" 2>/dev/null || echo 0) + 1 )); echo "$n" > "$STATE/calls"',
                f"counts=({' '.join(map(str, gpu_counts))})",
                'i=$(( n <= ${#counts[@]} ? n - 1 : ${#counts[@]} - 1 )); echo "${counts[$i]}"',
            ]
        ),
    }
    for name, body in tools.items():
        path = bin_dir / name
        path.write_text(f"#!/bin/bash\n{body}\n")
        path.chmod(0o755)
    return {"PATH": f"{bin_dir}:{os.environ['PATH']}", "STATE": str(tmp_path)}


def run_container(container, env, timeout=20):
    """The container's command and args after the kubelet's $(VAR) expansion, with the pod's env."""
    pod_env = {e["name"]: e["value"] for e in container["env"] if "value" in e}
    full_env = {**pod_env, **env}
    argv = [kubelet_expand(a, full_env) for a in container["command"] + container.get("args", [])]
    return subprocess.run(argv, env=full_env, capture_output=True, text=True, timeout=timeout)


def test_inline_scripts_are_escaped_against_kubelet_expansion():
    from components.kubernetes.serving_workload import kubernetes_literal

    text = 'echo "$$ $(HOME) $(date) ${X}" $((1 + 2))'
    assert kubelet_expand(text, {"HOME": "/root"}) != text  # what an unescaped script would suffer
    assert kubelet_expand(kubernetes_literal(text), {"HOME": "/root"}) == text


def test_scripts_reach_the_container_unchanged_by_kubelet_expansion():
    from components.shipped_scripts import SCRIPTS

    leader, worker = lws_templates(lws_run())
    for template, script in ((leader, "ray-leader.sh"), (worker, "ray-worker.sh")):
        container = template["spec"]["containers"][0]
        env = {e["name"]: "X" for e in container["env"]}
        assert kubelet_expand(container["command"][2], env) == (
            (SCRIPTS / "ray-network-env.sh").read_text() + "\n" + (SCRIPTS / script).read_text()
        )


def test_leader_waits_for_all_gpus_then_execs_the_engine_argv(tmp_path):
    leader = lws_templates(lws_run())[0]["spec"]["containers"][0]
    result = run_container(leader, fake_tools(tmp_path, [8, 8, 16]))
    assert result.returncode == 0, result.stderr
    log = (tmp_path / "log").read_text().splitlines()
    assert log[0] == "ray start --head --port=6379"
    assert log[1] == "vllm " + " ".join(leader["args"][1:])
    assert (tmp_path / "calls").read_text().strip() == "3"


def test_leader_gives_up_when_the_workers_never_join(tmp_path):
    leader = lws_templates(lws_run())[0]["spec"]["containers"][0]
    env = {**fake_tools(tmp_path, [8]), "LLM_RAY_JOIN_TIMEOUT_SECONDS": "0"}
    result = run_container(leader, env)
    assert result.returncode == 1 and "only 8 of 16 GPUs" in result.stderr
    assert "vllm" not in (tmp_path / "log").read_text()


def test_worker_joins_the_leaders_ray_head_once_it_listens(tmp_path):
    worker = lws_templates(lws_run())[1]["spec"]["containers"][0]
    with socket.socket() as head:
        head.bind(("127.0.0.1", 0))
        head.listen()
        port = head.getsockname()[1]
        env = {**fake_tools(tmp_path, []), "LWS_LEADER_ADDRESS": "127.0.0.1", "LLM_RAY_PORT": str(port)}
        result = run_container(worker, env)
    assert result.returncode == 0, result.stderr
    node_port = env_of(worker)["LLM_RAY_NODE_PORT"]["value"]
    assert (tmp_path / "log").read_text().strip() == (
        f"ray start --address=127.0.0.1:{port} --node-manager-port={node_port} --block"
    )


def test_worker_gives_up_when_the_leader_never_answers(tmp_path):
    worker = lws_templates(lws_run())[1]["spec"]["containers"][0]
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    env = {
        **fake_tools(tmp_path, []),
        "LWS_LEADER_ADDRESS": "127.0.0.1",
        "LLM_RAY_PORT": str(closed_port),
        "LLM_RAY_JOIN_TIMEOUT_SECONDS": "0",
    }
    result = run_container(worker, env)
    assert result.returncode == 1 and "did not answer" in result.stderr
    assert not (tmp_path / "log").exists()


def test_both_ray_scripts_first_source_the_networks_nccl_settings(tmp_path):
    # What GKE's gIB installer leaves on an RDMA node; it reads a variable nobody set (set -u must not trip).
    nccl = tmp_path / "set_nccl_env.sh"
    nccl.write_text(
        'export NCCL_NET=gIB\nexport LD_LIBRARY_PATH="$LD_LIBRARY_PATH:/gib/lib64"\n'
        ': "$UNSET_BY_ANYONE"\necho "sourced" >> "$STATE/log"\n'
    )
    leader, worker = (t["spec"]["containers"][0] for t in lws_templates(lws_run()))
    tools = fake_tools(tmp_path, [16])
    # The fake ray records the library path it was started with.
    (tmp_path / "bin" / "ray").write_text(
        '#!/bin/bash\necho "LD_LIBRARY_PATH=$LD_LIBRARY_PATH" >> "$STATE/env"\necho "ray $*" >> "$STATE/log"\n'
    )
    result = run_container(
        leader,
        {
            **tools,
            "LLM_NCCL_ENV_SCRIPT": str(nccl),
            "LLM_EXTRA_LIBRARY_PATH": "/usr/local/nvidia/lib64",
            "LD_LIBRARY_PATH": "/image/lib",
        },
    )
    assert result.returncode == 0, result.stderr
    assert "NCCL_NET=gIB" in result.stdout
    assert (tmp_path / "log").read_text().splitlines()[:2] == ["sourced", "ray start --head --port=6379"]
    # The extra path goes before the image's, and the plugin's script adds its own after them.
    assert (tmp_path / "env").read_text().strip() == "LD_LIBRARY_PATH=/usr/local/nvidia/lib64:/image/lib:/gib/lib64"
    assert "LLM_NCCL_ENV_SCRIPT" not in env_of(worker)  # only a platform with RDMA sets it


def test_after_the_nccl_script_the_loader_cache_is_refreshed_and_sockets_pinned_to_the_pods_interface(tmp_path):
    nccl = tmp_path / "set_nccl_env.sh"
    nccl.write_text('export NCCL_SOCKET_IFNAME=eth0,eth1\necho "sourced" >> "$STATE/log"\n')
    leader = lws_templates(lws_run())[0]["spec"]["containers"][0]
    tools = fake_tools(tmp_path, [16])
    (tmp_path / "bin" / "ldconfig").write_text('#!/bin/bash\necho "ldconfig" >> "$STATE/log"\n')
    (tmp_path / "bin" / "ldconfig").chmod(0o755)
    (tmp_path / "bin" / "ray").write_text(
        '#!/bin/bash\necho "GLOO=$GLOO_SOCKET_IFNAME NCCL=$NCCL_SOCKET_IFNAME" >> "$STATE/env"\n'
        'echo "ray $*" >> "$STATE/log"\n'
    )
    env = {**tools, "LLM_NCCL_ENV_SCRIPT": str(nccl), "LLM_RUN_LDCONFIG": "1", "LLM_SOCKET_IFNAME": "eth0"}
    result = run_container(leader, env)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "log").read_text().splitlines()[:3] == ["sourced", "ldconfig", "ray start --head --port=6379"]
    assert (tmp_path / "env").read_text().splitlines()[0] == "GLOO=eth0 NCCL=eth0"  # ours wins over the script's


def test_a_failing_ldconfig_does_not_stop_ray(tmp_path):
    leader = lws_templates(lws_run())[0]["spec"]["containers"][0]
    tools = fake_tools(tmp_path, [16])
    (tmp_path / "bin" / "ldconfig").write_text("#!/bin/bash\nexit 1\n")
    (tmp_path / "bin" / "ldconfig").chmod(0o755)
    result = run_container(leader, {**tools, "LLM_RUN_LDCONFIG": "1"})
    assert result.returncode == 0 and "ldconfig failed" in result.stderr
    assert (tmp_path / "log").read_text().splitlines()[0] == "ray start --head --port=6379"


def test_a_missing_nccl_settings_script_stops_the_pod_before_ray(tmp_path):
    worker = lws_templates(lws_run())[1]["spec"]["containers"][0]
    env = {
        **fake_tools(tmp_path, []),
        "LWS_LEADER_ADDRESS": "127.0.0.1",
        "LLM_RAY_PORT": "1",
        "LLM_NCCL_ENV_SCRIPT": str(tmp_path / "never.sh"),
        "LLM_RAY_JOIN_TIMEOUT_SECONDS": "0",
    }
    result = run_container(worker, env)
    assert result.returncode == 1 and "never.sh did not appear" in result.stderr
    assert not (tmp_path / "log").exists()


@pytest.mark.parametrize(
    "mount, message",
    [
        (("model", "/x", "/y"), "pod_mounts names"),
        (("x", "/x", "/dev/shm"), "must not mount over"),
        (("gateway-conf", "/x", "/y"), "not the component's own"),
    ],
)
def test_host_and_pod_mounts_over_the_workloads_own_volumes_are_refused(mount, message):
    from components.kubernetes.serving_workload import HostMount, PodMount

    with pytest.raises(ValueError, match=message):
        build(host_mounts=(HostMount(*mount),))
    name, _, path = mount
    with pytest.raises(ValueError, match=message):
        build(pod_mounts=(PodMount(name, {"emptyDir": {}}, path),))
    with pytest.raises(ValueError, match="must be unique"):
        build(host_mounts=(HostMount("a", "/h", "/p"),), pod_mounts=(PodMount("a", {"emptyDir": {}}, "/q"),))


def test_host_mounts_reach_every_gpu_container_read_only():
    from components.kubernetes.serving_workload import HostMount

    mounts = (HostMount("gib", "/home/kubernetes/bin/gib", "/usr/local/gib"),)
    for template in lws_templates(lws_run(host_mounts=mounts)):
        spec = template["spec"]
        assert {"name": "gib", "hostPath": {"path": "/home/kubernetes/bin/gib", "type": "Directory"}} in spec["volumes"]
        assert {"name": "gib", "mountPath": "/usr/local/gib", "readOnly": True} in spec["containers"][0]["volumeMounts"]


def test_scripts_are_in_the_shellchecked_directory():
    from components.shipped_scripts import SCRIPTS

    assert {"ray-leader.sh", "ray-worker.sh"} <= {p.name for p in Path(SCRIPTS).glob("*.sh")}


# --- The gateway: the only way into a serving pod -------------------------------------------------


def containers(pod_spec):
    by_name = {c["name"]: c for c in pod_spec["containers"]}
    assert list(by_name) == ["engine", "gateway"]
    return by_name["engine"], by_name["gateway"]


def gateway_conf(run):
    return run.kubernetes_object("ConfigMap")["data"]["nginx.conf"]


def test_the_engine_listens_on_loopback_and_the_gateway_publishes_the_api_and_metrics_ports():
    run = build()
    engine, gateway = containers(deployment_pod(run)["spec"])
    argv = engine["command"]
    assert argv[argv.index("--host") + 1] == "127.0.0.1" and argv[argv.index("--port") + 1] == "8001"
    assert "ports" not in engine
    assert gateway["ports"] == [
        {"name": "http", "containerPort": 8000, "protocol": "TCP"},
        {"name": "metrics", "containerPort": 8002, "protocol": "TCP"},
    ]
    assert gateway["image"] == GATEWAY_IMAGE
    assert gateway["command"] == ["nginx", "-c", "/etc/llm-gateway/nginx.conf", "-e", "stderr"]


def test_services_publish_the_api_port_and_send_it_to_the_gateway_never_to_the_engine_or_metrics():
    run = build(
        gateway=gateway(port=443),
        private={"annotations": {"x": "intranet"}},
        public={"source_ranges": ["203.0.113.0/24"]},
    )
    _, proxy = containers(deployment_pod(run)["spec"])
    gateway_ports = {p["name"]: p["containerPort"] for p in proxy["ports"]}
    for service in (o for o in run.kubernetes_objects() if o["kind"] == "Service"):
        assert [(p["port"], p["targetPort"]) for p in service["spec"]["ports"]] == [(443, "http")]
        assert gateway_ports["http"] == 8000  # 443 outside, no root inside
    assert "listen 0.0.0.0:8000 " in gateway_conf(run) and ":443" not in gateway_conf(run)


def build_port(port):
    return build(gateway=gateway(port=port))


def test_the_gateway_runs_unprivileged_on_a_read_only_root_with_only_its_key_file():
    run = build()
    pod = deployment_pod(run)["spec"]
    _, gateway = containers(pod)
    assert gateway["securityContext"] == {
        "privileged": False,
        "runAsNonRoot": True,
        "runAsUser": 101,
        "runAsGroup": 101,
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"},
    }
    volumes = {v["name"]: v for v in pod["volumes"]}
    mounts = {m["name"]: m for m in gateway["volumeMounts"]}
    assert mounts["gateway-conf"]["readOnly"] and mounts["gateway-key"]["readOnly"]
    assert "readOnly" not in mounts["gateway-run"] and volumes["gateway-run"]["emptyDir"]["medium"] == "Memory"
    secret = run.kubernetes_object("Secret")
    key_volume = volumes["gateway-key"]["secret"]
    # Only the map entry: the gateway never sees the engine's variable, the engine never mounts the file.
    assert key_volume["secretName"] == secret["metadata"]["name"]
    assert key_volume["items"] == [{"key": "gateway-auth.conf", "path": "gateway-auth.conf"}]
    # Readable by uid 101: Secret files belong to root and the pod sets no fsGroup (which would chown the model
    # volume too); 0440 would keep nginx from reading its key file (Permission denied at start).
    assert key_volume["defaultMode"] == 0o444 and "fsGroup" not in pod["securityContext"]
    assert "include /etc/llm-gateway-key/gateway-auth.conf;" in gateway_conf(run)
    engine, _ = containers(pod)
    assert not {m["name"] for m in engine["volumeMounts"]} & {"gateway-key", "gateway-conf", "gateway-run"}
    assert "env" not in gateway


def test_the_gateway_conf_is_rendered_for_the_model_holds_no_key_and_rolls_the_pods_when_it_changes():
    from core.gateway import GatewayConfig, render_nginx_conf

    run = build()
    config_map = run.kubernetes_object("ConfigMap")
    conf = gateway_conf(run)
    assert conf == render_nginx_conf(
        GatewayConfig(
            listen_port=8000,
            engine_port=8001,
            metrics_port=8002,
            key_file="/etc/llm-gateway-key/gateway-auth.conf",
            read_timeout_seconds=3577,
            max_body_bytes=3 << 20,
            runtime_dir="/run/llm-gateway",
            graceful_shutdown_seconds=90,
        )
    )
    assert KEY not in conf and config_map["immutable"] is True
    assert config_map["metadata"]["name"] == "llm-gateway-" + hashlib.sha256(conf.encode()).hexdigest()[:10]
    pod_volume = next(v for v in deployment_pod(run)["spec"]["volumes"] if v["name"] == "gateway-conf")
    assert pod_volume["configMap"]["name"] == config_map["metadata"]["name"]
    longer = build(gateway=gateway(read_timeout_seconds=7000))
    assert longer.kubernetes_object("ConfigMap")["metadata"]["name"] != config_map["metadata"]["name"]


def test_the_rendered_conf_passes_nginx_t(tmp_path):
    from test_gateway import nginx_test

    run = build(gateway=gateway(routes=(("/v1/models", "GET"), ("/v1/embeddings", "POST"))))
    conf = gateway_conf(run)
    assert "location = /v1/embeddings" in conf
    (tmp_path / "gateway-auth.conf").write_text(auth_map_entry(KEY))
    (tmp_path / "run").mkdir()
    local = conf.replace("/etc/llm-gateway-key", str(tmp_path)).replace("/run/llm-gateway", str(tmp_path / "run"))
    (tmp_path / "nginx.conf").write_text(local)
    result = nginx_test(tmp_path / "nginx.conf")
    assert result.returncode == 0, result.stderr


def test_the_gateway_is_ready_when_the_engine_answers_through_it_and_alive_while_nginx_listens():
    _, gateway = containers(deployment_pod(build())["spec"])
    assert gateway["readinessProbe"]["httpGet"] == {"path": "/health", "port": "http"}
    # A loading or busy engine must not restart nginx, nor nginx's restart the engine.
    assert gateway["livenessProbe"]["tcpSocket"] == {"port": "http"}
    assert "startupProbe" not in gateway


def test_only_the_leader_of_a_group_runs_a_gateway():
    run = build(engine=engine(pods=2), pods_per_replica=2, gpus_per_pod=8)
    template = run.kubernetes_object("LeaderWorkerSet")["spec"]["leaderWorkerTemplate"]
    leader, _ = containers(template["leaderTemplate"]["spec"])
    assert [p["name"] for p in leader["ports"]] == ["ray"]
    assert leader["args"][leader["args"].index("--host") + 1] == "127.0.0.1"
    workers = template["workerTemplate"]["spec"]
    assert [c["name"] for c in workers["containers"]] == ["ray-worker"]
    assert not any(v["name"].startswith("gateway") for v in workers["volumes"])


@pytest.mark.parametrize(
    ("overrides", "problem"),
    [
        (
            {"engine": build_command(EngineOptions("vllm", "img:1", "served", 32768, 0.9), MODELS["QwQ-32B"], "/m", 1)},
            "must listen on 127.0.0.1:8001 behind the gateway",
        ),
        ({"gateway": gateway(port=0)}, "gateway port 0 must be a TCP port"),
        ({"gateway": gateway(port=65536)}, "gateway port 65536 must be a TCP port"),
        ({"gateway": gateway(routes=(("/health", "GET"),))}, "served by the gateway itself"),
        ({"gateway": gateway(routes=())}, "allowed_paths must be non-empty"),
    ],
)
def test_an_engine_outside_the_gateway_or_a_broken_gateway_is_refused(overrides, problem):
    with pytest.raises(Exception, match=problem):
        build(**overrides)


@pytest.mark.parametrize("port", [1, 65535])
def test_any_tcp_port_can_be_the_published_api_port(port):
    service = build_port(port).kubernetes_object("Service")
    assert service["spec"]["ports"][0]["port"] == port
