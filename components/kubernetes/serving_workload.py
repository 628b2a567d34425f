"""The model server on Kubernetes, shared by every Kubernetes target (acs now; ack, gke, kubernetes later).

One copy of the model runs in one pod (a Deployment) or, when it needs the GPUs of several pods,
in a LeaderWorkerSet group: the leader starts a Ray head and the vLLM API server, the workers join
with `ray start` (vLLM's documented LeaderWorkerSet layout, pipeline parallel across pods). The
LeaderWorkerSet controller is not installed here: the stack installs it and passes it in
`depends_on`, since a cluster has one controller for all its workloads.

Every serving pod (a leader, for a LeaderWorkerSet) runs two containers: the engine, listening on
127.0.0.1 only, and the authenticating gateway (nginx, core/gateway.py), the only listener: the API port
with its allowlist of paths, each behind the key, plus `/health` for probes, and a metrics port for the
cluster's Prometheus that no Service exposes. The engine's own key check does not guard every path
(vllm-project/vllm#58144; tests/engine), which is why nothing reaches it but through the gateway.

The API key lives only in a Kubernetes Secret created from the Pulumi secret: the engine reads it through
`secretKeyRef` (SGLang's `--api-key $(SGLANG_API_KEY)` is expanded by the kubelet) and the gateway mounts
its map entry as a file. The Secret is immutable and its name carries a random suffix that changes with
the key, so a new key rolls the pods instead of leaving them on the old one. The gateway's nginx.conf holds
no secret; its ConfigMap is named after its content, so a change rolls the pods too.

Shutdown: both containers sleep DRAIN_SECONDS in preStop while the load balancers stop sending, then the
gateway stops accepting and lets requests in flight finish (nginx -s quit) while the engine, on SIGTERM,
finishes them too (vLLM --shutdown-timeout); the grace period covers both.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Optional

import pulumi
import pulumi_kubernetes as k8s
import pulumi_random as random

from components.kubernetes.hardening import container_security, pod_security
from components.kubernetes.network_policies import LWS_WORKER_INDEX_LABEL  # "0": the leader
from components.kubernetes.objects import manifest
from components.shipped_scripts import script as shipped_script
from core.engine import MODEL_URI_ENV, MODEL_URI_REF, EngineCommand
from core.gateway import (
    DEFAULT_ROUTES,
    ENGINE_LOOPBACK_PORT,
    HEALTH_PATH,
    METRICS_PORT,
    REQUEST_MEMORY_MIB,
    REQUEST_MILLI_CPU,
    GatewayConfig,
    GatewayTls,
    auth_map_entry,
    nginx_argv,
    render_nginx_conf,
)

LWS_API_VERSION = "leaderworkerset.x-k8s.io/v1"
RAY_PORT = 6379
RAY_NODE_PORT = 6380  # a worker's raylet, fixed so the worker's probes can watch it
# How long the leader waits for all workers to join Ray (and a worker for the leader's Ray head):
# workers may be scheduled and pull the image after the leader. Past it the group is recreated.
RAY_JOIN_TIMEOUT_SECONDS = 20 * 60

PROBE_PERIOD_SECONDS = 10
# The startup probe allows 1.5x the expected load time before the kubelet restarts the engine:
# loads vary with storage throughput, and a restart starts the whole load again.
STARTUP_ALLOWANCE = 1.5
# ... and never less than this. The modelled load of a small model is 2-3 min (core/durations.py: engine start, the
# weights, a sourced warm-up of 50 s), but a first start on a real GPU runs with empty torch.compile, Triton and
# DeepGEMM caches, Python's imports and a mount that may read slower than assumed: vllm-project/vllm#20264 saw 59 s
# to the first answer with a warm compile cache, run-ai/runai-model-streamer#67 90 s of engine init alone, both on
# GPUs newer than ack-edge's V100 (not measured here). A window that ends mid-load restarts the engine, which loads
# again from the start: a crash loop instead of a slow start, while a longer window costs nothing when the engine
# is ready sooner (the probe passes at once). 10 min is about what the former flat estimate gave a 7B (1.5 x 6).
STARTUP_FLOOR_MINUTES = 10
READINESS_FAILURES = 3  # 30 s without /health: out of the Service, no restart
LIVENESS_PERIOD_SECONDS = 20
LIVENESS_FAILURES = 6  # 2 min without /health: restart (a busy engine answers /health late, not never)
LIVENESS_TIMEOUT_SECONDS = 10
# The load balancers keep sending new requests for a while after the pod starts terminating;
# the pod keeps serving during this sleep, then the engine gets SIGTERM.
DRAIN_SECONDS = 30
# After the drain: the gateway lets requests in flight finish for this long, and the engine keeps generating
# for them (vLLM --shutdown-timeout); a longer generation is cut when the grace period ends.
SHUTDOWN_SECONDS = 90
# The engine gets SIGTERM this long after the gateway stopped accepting: nothing new reaches it while it drains.
ENGINE_STOP_DELAY_SECONDS = 5
TERMINATION_GRACE_SECONDS = DRAIN_SECONDS + ENGINE_STOP_DELAY_SECONDS + SHUTDOWN_SECONDS + 10
WORKER_GRACE_SECONDS = 30  # workers serve no clients: nothing to drain
# Time before the engine starts: GPU capacity (ACS provisions it per pod) and a ~10 GB image pull.
SCHEDULE_AND_PULL_MINUTES = 20

# The gateway container's files: its conf (a ConfigMap), the key's map entry (from the Secret), runtime files.
GATEWAY_CONF_DIR = "/etc/llm-gateway"
GATEWAY_CONF = f"{GATEWAY_CONF_DIR}/nginx.conf"
GATEWAY_KEY_DIR = "/etc/llm-gateway-key"
GATEWAY_KEY_ITEM = "gateway-auth.conf"  # its key in the API key Secret
GATEWAY_RUN_DIR = "/run/llm-gateway"
GATEWAY_PID = f"{GATEWAY_RUN_DIR}/llm-gateway.pid"  # core.gateway writes the pid file there
# The official nginx image's unprivileged user (nginx/docker-nginx: `adduser -u 101 ... nginx`); nginx needs
# no root here (ports above 1024, no `user` directive), so any uid works, the image's own is the natural one.
GATEWAY_UID = 101
# The gateway container's port names: the API (the Services' target) and the metrics (Prometheus' scrape target).
API_PORT_NAME = "http"
METRICS_PORT_NAME = "metrics"
# The gateway's port inside the pod, whatever access.apiPort the Services publish (443 needs no root this way).
GATEWAY_POD_PORT = 8000
# With TLS at the gateway: the HTTPS port the public Service targets (GATEWAY_POD_PORT stays plain HTTP for the
# probes, the ClusterIP Service and the private load balancer: inside the cluster and VPC only).
GATEWAY_TLS_POD_PORT = 8443
TLS_PORT_NAME = "https"
GATEWAY_TLS_DIR = "/etc/llm-gateway-tls"
# A kubernetes.io/tls Secret's keys (Kubernetes "Secrets", TLS secrets; cert-manager writes the same two).
TLS_CERT_ITEM = "tls.crt"
TLS_KEY_ITEM = "tls.key"
GATEWAY_RESOURCES = {
    "requests": {"cpu": f"{REQUEST_MILLI_CPU}m", "memory": f"{REQUEST_MEMORY_MIB}Mi"},
    "limits": {"cpu": "2", "memory": "512Mi"},
}
# The engine's probes run inside its container (it listens on loopback, out of the kubelet's reach); every
# engine image has Python (the engines are Python), not always curl.
ENGINE_PROBE = (
    f"import urllib.request; urllib.request.urlopen('http://127.0.0.1:{ENGINE_LOOPBACK_PORT}{HEALTH_PATH}', timeout=8)"
)

# The engine's preStop: the drain, then wait (at most SHUTDOWN_SECONDS) while the engine still has requests running
# or queued, read from its own metrics on loopback. The gateway has stopped accepting by then but keeps proxying
# what is in flight, so the engine gets SIGTERM with nothing left to cut, whatever its version: vLLM before 0.18 has
# no --shutdown-timeout and aborts everything on SIGTERM (core.engine.drains_on_sigterm).
BUSY_METRICS = {
    "vllm": ("vllm:num_requests_running", "vllm:num_requests_waiting"),
    "sglang": ("sglang:num_running_reqs", "sglang:num_queue_reqs"),  # SGLang 0.4.6 --enable-metrics; not run here
}


def engine_drain_script(engine: str, sleep_seconds: int, wait_seconds: int) -> str:
    """Python for `python3 -c`: sleep, then poll the engine's busy gauges every second until they are all 0."""
    names = "|".join(re.escape(n) for n in BUSY_METRICS[engine])
    metrics = f"http://127.0.0.1:{ENGINE_LOOPBACK_PORT}/metrics"
    return "\n".join(
        [
            "import re, time, urllib.request",
            f"time.sleep({sleep_seconds})",
            f"deadline = time.monotonic() + {wait_seconds}",
            "while time.monotonic() < deadline:",
            "    try:",
            f"        text = urllib.request.urlopen('{metrics}', timeout=5).read().decode()",
            "    except OSError:",
            "        break",
            f"    busy = re.findall(r'^(?:{names})(?:{{[^}}]*}})? ([0-9.e+-]+)$', text, re.M)",
            "    if not busy or sum(float(v) for v in busy) == 0:",
            "        break",
            "    time.sleep(1)",
        ]
    )


_DNS_LABEL = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
_APP_MAX = 40  # room for the suffixes Kubernetes and the LeaderWorkerSet add to names


@dataclass(frozen=True)
class ServiceExposure:
    annotations: Mapping[str, str] = field(default_factory=dict)  # cloud-specific LB annotations
    source_ranges: Sequence[str] = ()  # loadBalancerSourceRanges; empty: no restriction by the LB
    external_traffic_policy: Optional[str] = None  # "Local" keeps client addresses (the ACS public LB)
    # Clients reach it over HTTPS: TLS ends at the load balancer (its annotations hold the certificate) or, with
    # ServingArgs.tls_secret, at the gateway (the Service then targets the gateway's TLS port).
    https: bool = False


@dataclass(frozen=True)
class HostMount:
    """A node directory mounted read-only into the GPU containers, e.g. GKE's NCCL gIB plugin."""

    name: str  # volume name (DNS label)
    host_path: str
    mount_path: str


@dataclass(frozen=True)
class PodMount:
    """A pod volume mounted read-only into the GPU containers, e.g. the streamer's credential process and the RRSA
    token on Alibaba Cloud (components/alibaba/oss_stream_access.py)."""

    name: str  # volume name (DNS label)
    source: Mapping[str, object]  # a volume source, e.g. {"configMap": {"name": "x"}}
    mount_path: str


@dataclass(frozen=True)
class Gateway:
    """The authenticating gateway in front of the engine (core/gateway.py renders its nginx.conf)."""

    image: str  # pinned (core.gateway.GATEWAY_IMAGE, or GATEWAY_IMAGE_CN in mainland China)
    port: int  # the API port clients use (access.apiPort): the Services' port, to GATEWAY_POD_PORT
    read_timeout_seconds: int  # core.gateway.generation_timeout_seconds(max_model_len)
    max_body_bytes: int  # core.gateway.max_body_bytes(max_model_len)
    routes: Sequence[tuple[str, str]] = DEFAULT_ROUTES  # (path, method), each behind the key
    tls: bool = False  # TLS on GATEWAY_TLS_POD_PORT from the Secret ServingArgs.tls_secret names

    def config(self) -> GatewayConfig:
        tls = (
            GatewayTls(f"{GATEWAY_TLS_DIR}/{TLS_CERT_ITEM}", f"{GATEWAY_TLS_DIR}/{TLS_KEY_ITEM}") if self.tls else None
        )
        return GatewayConfig(
            listen_port=GATEWAY_TLS_POD_PORT if self.tls else GATEWAY_POD_PORT,
            tls=tls,
            plain_port=GATEWAY_POD_PORT if self.tls else None,
            engine_port=ENGINE_LOOPBACK_PORT,
            metrics_port=METRICS_PORT,
            key_file=f"{GATEWAY_KEY_DIR}/{GATEWAY_KEY_ITEM}",
            read_timeout_seconds=self.read_timeout_seconds,
            max_body_bytes=self.max_body_bytes,
            allowed_paths=tuple(self.routes),
            runtime_dir=GATEWAY_RUN_DIR,
            graceful_shutdown_seconds=SHUTDOWN_SECONDS,
        )


@dataclass(frozen=True)
class ServingArgs:
    namespace: pulumi.Input[str]  # created by the stack (storage lives there too)
    app: str  # app label value and name prefix, e.g. "llm"
    image: str  # pinned tag or digest (core.config checks it)
    engine: EngineCommand  # core.engine.build_command(..., multi_node=pods > 1, behind_gateway=True)
    gateway: Gateway
    api_key: pulumi.Output[str]  # a Pulumi secret
    # A volume source, e.g. {"persistentVolumeClaim": {"claimName": "m"}}; None: the engine streams the weights from
    # the object store (model_uri), and the pods mount no model volume.
    model_volume: Optional[Mapping[str, object]]
    model_mount_path: str  # mounted read-only; the engine argv already points into it
    gpus_per_pod: int
    pods_per_replica: int = 1  # > 1: a LeaderWorkerSet (vLLM + Ray, pipeline parallel across pods)
    replicas: int = 1
    cpu: int = 8
    memory_gib: int = 64
    shm_gib: int = 8  # /dev/shm (memory-backed, counted in memory_gib)
    load_minutes: int = 30  # expected model load time: sizes the startup probe and the rollout wait
    gpu_resource: str = "nvidia.com/gpu"
    pod_labels: Mapping[str, str] = field(default_factory=dict)  # pod templates only, never selectors
    pod_annotations: Mapping[str, str] = field(default_factory=dict)
    node_selector: Mapping[str, str] = field(default_factory=dict)
    tolerations: Sequence[Mapping[str, object]] = ()
    # Extra plain (non-secret) environment; values may be outputs (e.g. a RAM role's ARN), never secrets.
    env: Mapping[str, pulumi.Input[str]] = field(default_factory=dict)
    # Extra environment from Secrets: variable -> (Secret name, key), e.g. HF_TOKEN for a download at start.
    secret_env: Mapping[str, tuple[pulumi.Input[str], str]] = field(default_factory=dict)
    # The engine downloads the model itself into the model volume at start (vLLM --download-dir):
    # the volume is mounted writable and the Hugging Face Hub is not forced offline.
    download_at_start: bool = False
    host_mounts: Sequence[HostMount] = ()  # node directories for the GPU containers (read-only)
    pod_mounts: Sequence[PodMount] = ()  # other volumes for the GPU containers (read-only)
    # A kubernetes.io/tls Secret (tls.crt, tls.key) in the namespace: the gateway serves HTTPS from it (needs
    # gateway.tls); from the stack's PEM (stacks/serving.py) or cert-manager's Certificate.
    tls_secret: Optional[pulumi.Input[str]] = None
    private_service: Optional[ServiceExposure] = None  # None: no private LoadBalancer
    public_service: Optional[ServiceExposure] = None  # None: no public LoadBalancer
    depends_on: Sequence[pulumi.Resource] = ()  # e.g. the model import Job and the LWS controller
    # Updates start the new pod (group) before stopping an old one, so the API never goes down; this
    # needs spare GPUs for one more pod (group) during the update. ACS provisions capacity per pod, so
    # it holds there even with one replica. On a fixed GPU node pool without that headroom, set False:
    # an old pod stops first (with one replica the API is down until the new one has loaded).
    surge_updates: bool = True
    # The object-store URI the engine streams from (core.engine.MODEL_URI_REF in its argv), into the environment as
    # MODEL_URI_ENV; None: the argv names the model's path on the volume.
    model_uri: Optional[pulumi.Input[str]] = None
    # The pods' Kubernetes service account (e.g. the one the bucket trusts through workload identity when the
    # engine streams from it); None: the namespace's default. Its API token is still not mounted.
    service_account: Optional[str] = None


def startup_failure_threshold(load_minutes: int, extra_seconds: int = 0) -> int:
    """Startup probe failures allowed: 1.5x the expected load, at least STARTUP_FLOOR_MINUTES (plus any wait before
    it), in 10 s periods."""
    window = max(load_minutes * 60 * STARTUP_ALLOWANCE, STARTUP_FLOOR_MINUTES * 60)
    return math.ceil((window + extra_seconds) / PROBE_PERIOD_SECONDS)


def ready_minutes(load_minutes: int, pods_per_replica: int = 1) -> int:
    """Longest expected time from creating one pod (group) to a ready API: capacity, pull, startup window."""
    startup = startup_failure_threshold(load_minutes, _ray_wait(pods_per_replica)) * PROBE_PERIOD_SECONDS
    return SCHEDULE_AND_PULL_MINUTES + math.ceil(startup / 60)


def kubernetes_literal(text: str) -> str:
    """`text` escaped for a container command: the kubelet turns `$$` into `$` and expands `$(VAR)`."""
    return text.replace("$", "$$")


class ServingWorkload(pulumi.ComponentResource):
    private_address: pulumi.Output[str]
    public_address: Optional[pulumi.Output[str]]
    service_name: pulumi.Output[str]
    secret_name: pulumi.Output[str]
    secret_key: str  # the key inside the Secret: the engine's api_key_env (VLLM_API_KEY, SGLANG_API_KEY)
    port: int

    def __init__(self, name: str, args: ServingArgs, opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__("llm:kubernetes:ServingWorkload", name, None, opts)
        _validate(args)
        self._args = args
        labels = _labels(args.app)
        secret = self._api_key_secret(name, labels)
        self._gateway_conf = self._gateway_config_map(name, labels)
        multi_pod = args.pods_per_replica > 1
        minutes = ready_minutes(args.load_minutes, args.pods_per_replica)
        # Pods start together on create; a surge update replaces one pod (group) at a time.
        waits = pulumi.CustomTimeouts(create=f"{minutes}m", update=f"{minutes * args.replicas + 10}m", delete="10m")
        after_inputs = list(args.depends_on)
        if multi_pod:
            self._leader_worker_set(name, labels, secret, waits, after_inputs)
            selector = {"app": args.app, LWS_WORKER_INDEX_LABEL: "0"}  # only leaders serve the API
        else:
            self._deployment(name, labels, secret, waits, after_inputs)
            selector = {"app": args.app}
        if args.replicas > 1:
            self._disruption_budget(name, labels)

        # The Services are created with the workload, not after it: a load balancer takes a minute or two to
        # provision, which then overlaps the pods' image pull and load instead of following them. Their own await
        # wants ready endpoints, so each waits as long as the workload does (`waits`).
        cluster_ip = self._service(f"{name}-api", f"{args.app}-api", labels, selector, None, waits, after_inputs)
        self.service_name = cluster_ip.metadata.name
        if args.private_service is not None:
            private = self._service(
                f"{name}-private", f"{args.app}-private", labels, selector, args.private_service, waits, after_inputs
            )
            self.private_address = _load_balancer_address(private)
        else:
            self.private_address = pulumi.Output.concat(
                cluster_ip.metadata.name, ".", args.namespace, ".svc.cluster.local"
            )
        self.public_address = None
        if args.public_service is not None:
            public = self._service(
                f"{name}-public", f"{args.app}-public", labels, selector, args.public_service, waits, after_inputs
            )
            self.public_address = _load_balancer_address(public)
        self.secret_name = secret.metadata.name
        self.secret_key = args.engine.api_key_env
        self.port = args.gateway.port
        self.register_outputs(
            {
                "private_address": self.private_address,
                "public_address": self.public_address,
                "service_name": self.service_name,
                "secret_name": self.secret_name,
            }
        )

    def _child(
        self, depends_on: Sequence[pulumi.Resource] = (), timeouts: Optional[pulumi.CustomTimeouts] = None
    ) -> pulumi.ResourceOptions:
        return pulumi.ResourceOptions(parent=self, depends_on=list(depends_on), custom_timeouts=timeouts)

    def _metadata(
        self, name: pulumi.Input[str], labels: Mapping[str, str], annotations: Optional[Mapping[str, str]] = None
    ) -> k8s.meta.v1.ObjectMetaArgsDict:
        metadata: k8s.meta.v1.ObjectMetaArgsDict = {
            "name": name,
            "namespace": self._args.namespace,
            "labels": dict(labels),
        }
        if annotations:
            metadata["annotations"] = dict(annotations)
        return metadata

    def _api_key_secret(self, name: str, labels: Mapping[str, str]) -> k8s.core.v1.Secret:
        """An immutable Secret, key name = the engine's api_key_env, whose name changes with its content.

        The name's suffix is random, renewed when the key (a hash of it, secret in the state) or the
        key name changes; the key itself never appears in the name.
        """
        args = self._args
        version = random.RandomId(
            f"{name}-api-key-version",
            byte_length=4,
            keepers={
                "apiKeySha256": args.api_key.apply(lambda key: hashlib.sha256(key.encode()).hexdigest()),
                "secretKey": args.engine.api_key_env,
            },
            opts=self._child(),
        )
        return k8s.core.v1.Secret(
            f"{name}-api-key",
            metadata=self._metadata(pulumi.Output.concat(args.app, "-api-key-", version.hex), labels),
            type="Opaque",
            immutable=True,
            string_data={
                args.engine.api_key_env: pulumi.Output.secret(args.api_key),
                GATEWAY_KEY_ITEM: pulumi.Output.secret(args.api_key.apply(auth_map_entry)),
            },
            opts=self._child(),
        )

    def _gateway_config_map(self, name: str, labels: Mapping[str, str]) -> k8s.core.v1.ConfigMap:
        """The gateway's nginx.conf (no secret in it), named after its content so a change rolls the pods."""
        conf = render_nginx_conf(self._args.gateway.config())
        digest = hashlib.sha256(conf.encode()).hexdigest()[:10]
        return k8s.core.v1.ConfigMap(
            f"{name}-gateway",
            metadata=self._metadata(f"{self._args.app}-gateway-{digest}", labels),
            data={"nginx.conf": conf},
            immutable=True,
            opts=self._child(),
        )

    def _gateway_container(self) -> dict:
        """nginx in front of the engine: the API port (allowlist behind the key, /health) and the metrics port."""
        args = self._args
        tls = args.gateway.tls
        health = {"httpGet": {"path": HEALTH_PATH, "port": "http"}}
        # The drain, then a graceful quit whatever the image's stop signal; the pid file goes when nginx exits.
        quit_gracefully = " ".join([*nginx_argv(GATEWAY_CONF), "-s", "quit"])
        drain = f"sleep {DRAIN_SECONDS}; {quit_gracefully}; while [ -e {GATEWAY_PID} ]; do sleep 1; done"
        return {
            "name": "gateway",
            "image": args.gateway.image,
            "imagePullPolicy": "IfNotPresent",
            "command": nginx_argv(GATEWAY_CONF),
            "ports": [
                {"name": API_PORT_NAME, "containerPort": GATEWAY_POD_PORT, "protocol": "TCP"},
                *([{"name": TLS_PORT_NAME, "containerPort": GATEWAY_TLS_POD_PORT, "protocol": "TCP"}] if tls else []),
                {"name": METRICS_PORT_NAME, "containerPort": METRICS_PORT, "protocol": "TCP"},
            ],
            "resources": {k: dict(v) for k, v in GATEWAY_RESOURCES.items()},
            "volumeMounts": [
                {"name": "gateway-conf", "mountPath": GATEWAY_CONF_DIR, "readOnly": True},
                {"name": "gateway-key", "mountPath": GATEWAY_KEY_DIR, "readOnly": True},
                {"name": "gateway-run", "mountPath": GATEWAY_RUN_DIR},
                *([{"name": "gateway-tls", "mountPath": GATEWAY_TLS_DIR, "readOnly": True}] if tls else []),
            ],
            # In the Service only while the engine answers /health through it.
            "readinessProbe": {
                **health,
                "periodSeconds": PROBE_PERIOD_SECONDS,
                "timeoutSeconds": 5,
                "failureThreshold": READINESS_FAILURES,
            },
            # nginx itself: a busy or loading engine must not restart the gateway.
            "livenessProbe": {
                "tcpSocket": {"port": "http"},
                "periodSeconds": LIVENESS_PERIOD_SECONDS,
                "timeoutSeconds": 5,
                "failureThreshold": 3,
            },
            "lifecycle": {"preStop": {"exec": {"command": ["/bin/sh", "-c", drain]}}},
            "securityContext": container_security(run_as_user=GATEWAY_UID, read_only_root=True),
        }

    def _gateway_volumes(self, secret: k8s.core.v1.Secret) -> list[dict]:
        # 0444: the gateway runs as GATEWAY_UID without an fsGroup (which would chown the model volume too), and
        # Secret files belong to root; the pod's only other container is the engine, which holds the key anyway.
        tls = []
        if self._args.tls_secret is not None:
            items = [{"key": k, "path": k} for k in (TLS_CERT_ITEM, TLS_KEY_ITEM)]
            tls = [
                {
                    "name": "gateway-tls",
                    "secret": {"secretName": self._args.tls_secret, "defaultMode": 0o444, "items": items},
                }
            ]
        return [
            {"name": "gateway-conf", "configMap": {"name": self._gateway_conf.metadata.name, "defaultMode": 0o444}},
            {
                "name": "gateway-key",
                "secret": {
                    "secretName": secret.metadata.name,
                    "defaultMode": 0o444,
                    "items": [{"key": GATEWAY_KEY_ITEM, "path": GATEWAY_KEY_ITEM}],
                },
            },
            {"name": "gateway-run", "emptyDir": {"medium": "Memory", "sizeLimit": "64Mi"}},
            *tls,
        ]

    def _deployment(
        self,
        name: str,
        labels: Mapping[str, str],
        secret: k8s.core.v1.Secret,
        waits: pulumi.CustomTimeouts,
        depends_on: Sequence[pulumi.Resource],
    ) -> k8s.apps.v1.Deployment:
        args = self._args
        engine = self._engine_container(secret, args.engine.kubernetes_args(), extra_startup_seconds=0)
        surge, unavailable = _update_budget(args.surge_updates)
        spec = {
            "replicas": args.replicas,
            "selector": {"matchLabels": {"app": args.app}},
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": surge, "maxUnavailable": unavailable}},
            # The default 600 s would mark a rollout failed while the model is still loading.
            "progressDeadlineSeconds": ready_minutes(args.load_minutes) * 60,
            "revisionHistoryLimit": 5,
            "template": self._pod_template(labels, self._serving_pod_spec(engine, secret)),
        }
        return k8s.apps.v1.Deployment(
            name, metadata=self._metadata(args.app, labels), spec=manifest(spec), opts=self._child(depends_on, waits)
        )

    def _leader_worker_set(
        self,
        name: str,
        labels: Mapping[str, str],
        secret: k8s.core.v1.Secret,
        waits: pulumi.CustomTimeouts,
        depends_on: Sequence[pulumi.Resource],
    ) -> k8s.apiextensions.CustomResource:
        args = self._args
        ray_env = _ray_env(args)
        leader = self._engine_container(
            secret,
            args.engine.kubernetes_args(),
            extra_startup_seconds=RAY_JOIN_TIMEOUT_SECONDS,
            command=_ray_script_command("ray-leader.sh"),
            extra_env=ray_env,
        )
        leader["ports"] = [{"name": "ray", "containerPort": RAY_PORT, "protocol": "TCP"}]
        raylet = {"tcpSocket": {"port": "ray-node"}, "periodSeconds": PROBE_PERIOD_SECONDS, "timeoutSeconds": 5}
        worker = {
            "name": "ray-worker",
            **self._gpu_container_basics(),
            "command": _ray_script_command("ray-worker.sh"),
            # Workers serve no API: they get no API key.
            "env": [*_env_list({**_default_env(args), **ray_env, **args.env}), *_model_uri_env(args)],
            "ports": [{"name": "ray-node", "containerPort": RAY_NODE_PORT, "protocol": "TCP"}],
            # Ready once its raylet is up, i.e. it has joined the leader (it waits for the leader's Ray
            # head up to the join timeout). A lost raylet ends `ray start --block`: no liveness probe needed.
            "startupProbe": {
                **raylet,
                "failureThreshold": math.ceil((RAY_JOIN_TIMEOUT_SECONDS + 300) / PROBE_PERIOD_SECONDS),
            },
            "readinessProbe": {**raylet, "failureThreshold": READINESS_FAILURES},
        }
        surge, unavailable = _update_budget(args.surge_updates)
        spec = {
            "replicas": args.replicas,
            "rolloutStrategy": {
                "type": "RollingUpdate",
                "rollingUpdateConfiguration": {"maxSurge": surge, "maxUnavailable": unavailable},
            },
            "leaderWorkerTemplate": {
                "size": args.pods_per_replica,
                # A lost pod breaks the Ray cluster of its group: restart the group as one.
                "restartPolicy": "RecreateGroupOnPodRestart",
                "leaderTemplate": self._pod_template(labels, self._serving_pod_spec(leader, secret)),
                "workerTemplate": self._pod_template(labels, self._pod_spec([worker], WORKER_GRACE_SECONDS)),
            },
        }
        # Custom resources are not awaited unless asked; "Available" is set by the LWS controller
        # once its groups are ready. Not verifiable offline: pulumi-kubernetes >= 4.18 reads this annotation.
        metadata = self._metadata(args.app, labels, {"pulumi.com/waitFor": "condition=Available"})
        return k8s.apiextensions.CustomResource(
            name,
            api_version=LWS_API_VERSION,
            kind="LeaderWorkerSet",
            metadata=metadata,
            spec=spec,
            opts=self._child(depends_on, waits),
        )

    def _gpu_container_basics(self) -> dict:
        """Image, resources (requests == limits: guaranteed QoS), model and /dev/shm mounts, security."""
        args = self._args
        resources = {"cpu": str(args.cpu), "memory": f"{args.memory_gib}Gi", args.gpu_resource: str(args.gpus_per_pod)}
        return {
            "image": args.image,
            "imagePullPolicy": "IfNotPresent",
            "resources": {"requests": dict(resources), "limits": dict(resources)},
            "volumeMounts": [
                *(
                    [{"name": "model", "mountPath": args.model_mount_path, "readOnly": not args.download_at_start}]
                    if args.model_volume is not None
                    else []
                ),
                {"name": "dshm", "mountPath": "/dev/shm"},
                *({"name": m.name, "mountPath": m.mount_path, "readOnly": True} for m in args.host_mounts),
                *({"name": m.name, "mountPath": m.mount_path, "readOnly": True} for m in args.pod_mounts),
            ],
            # Engine images run as root and write caches under $HOME; GPUs come from the device
            # plugin, so nothing here needs privileges or capabilities (components/kubernetes/hardening.py).
            "securityContext": container_security(),
        }

    def _engine_container(
        self,
        secret: k8s.core.v1.Secret,
        argv: Sequence[str],
        extra_startup_seconds: int,
        command: Optional[list[str]] = None,
        extra_env: Optional[Mapping[str, str]] = None,
    ) -> dict:
        """The API server container: the engine argv (as command, or as args of a launcher), key, probes.

        It listens on 127.0.0.1 only, so it publishes no port and its probes run inside it (the kubelet's
        HTTP probes would go to the pod address). They watch the engine itself, not the gateway: a gateway
        restart must not restart a loaded engine.
        """
        args = self._args
        engine = args.engine
        key_ref = secret_env_var(engine.api_key_env, secret.metadata.name, engine.api_key_env)
        health = {"exec": {"command": ["python3", "-c", ENGINE_PROBE]}}
        container = {
            "name": "engine",
            **self._gpu_container_basics(),
            "env": [
                key_ref,
                *_env_list({**_default_env(args), **(extra_env or {}), **args.env}),
                *_model_uri_env(args),
                *_secret_env_list(args.secret_env),
            ],
            "startupProbe": {
                **health,
                "periodSeconds": PROBE_PERIOD_SECONDS,
                "timeoutSeconds": 5,
                "failureThreshold": startup_failure_threshold(args.load_minutes, extra_startup_seconds),
            },
            "readinessProbe": {
                **health,
                "periodSeconds": PROBE_PERIOD_SECONDS,
                "timeoutSeconds": 5,
                "failureThreshold": READINESS_FAILURES,
            },
            "livenessProbe": {
                **health,
                "periodSeconds": LIVENESS_PERIOD_SECONDS,
                "timeoutSeconds": LIVENESS_TIMEOUT_SECONDS,
                "failureThreshold": LIVENESS_FAILURES,
            },
            # ENGINE_STOP_DELAY_SECONDS after the gateway stopped accepting (its preStop), wait until nothing is
            # in flight; SIGTERM then (vLLM >= 0.18 also finishes what is left, --shutdown-timeout).
            "lifecycle": {"preStop": {"exec": {"command": ["python3", "-c", self._drain_script()]}}},
        }
        if command is None:
            container["command"] = list(argv)
        else:
            container["command"] = command
            container["args"] = list(argv)
        return container

    def _serving_pod_spec(self, engine: dict, secret: k8s.core.v1.Secret) -> dict:
        """A pod that serves the API: the engine and its gateway, the only listener."""
        return self._pod_spec(
            [engine, self._gateway_container()], TERMINATION_GRACE_SECONDS, self._gateway_volumes(secret)
        )

    def _drain_script(self) -> str:
        return engine_drain_script(
            self._args.engine.engine, DRAIN_SECONDS + ENGINE_STOP_DELAY_SECONDS, SHUTDOWN_SECONDS
        )

    def _pod_spec(self, containers: list[dict], grace_seconds: int, extra_volumes: Sequence[dict] = ()) -> dict:
        args = self._args
        spec: dict = {
            "containers": containers,
            "volumes": [
                *([{"name": "model", **dict(args.model_volume)}] if args.model_volume is not None else []),
                {"name": "dshm", "emptyDir": {"medium": "Memory", "sizeLimit": f"{args.shm_gib}Gi"}},
                *({"name": m.name, "hostPath": {"path": m.host_path, "type": "Directory"}} for m in args.host_mounts),
                *({"name": m.name, **dict(m.source)} for m in args.pod_mounts),
                *extra_volumes,
            ],
            "terminationGracePeriodSeconds": grace_seconds,
            "securityContext": pod_security(),
            # The engine never calls the Kubernetes API; and Service env vars would be noise (a
            # Service named "vllm" even breaks vLLM through VLLM_PORT).
            "automountServiceAccountToken": False,
            "enableServiceLinks": False,
        }
        if args.service_account:
            spec["serviceAccountName"] = args.service_account
        if args.node_selector:
            spec["nodeSelector"] = dict(args.node_selector)
        if args.tolerations:
            spec["tolerations"] = [dict(t) for t in args.tolerations]
        if args.replicas > 1:
            # Spread copies over zones when the cluster can, never block scheduling for it.
            spec["topologySpreadConstraints"] = [
                {
                    "maxSkew": 1,
                    "topologyKey": "topology.kubernetes.io/zone",
                    "whenUnsatisfiable": "ScheduleAnyway",
                    "labelSelector": {"matchLabels": {"app": args.app}},
                }
            ]
        return spec

    def _pod_template(self, labels: Mapping[str, str], spec: dict) -> dict:
        args = self._args
        metadata: dict = {"labels": {**labels, **args.pod_labels}}
        if args.pod_annotations:
            metadata["annotations"] = dict(args.pod_annotations)
        return {"metadata": metadata, "spec": spec}

    def _disruption_budget(self, name: str, labels: Mapping[str, str]) -> None:
        """Voluntary evictions (node drains, upgrades) take one serving pod at a time."""
        args = self._args
        k8s.policy.v1.PodDisruptionBudget(
            f"{name}-pdb",
            metadata=self._metadata(args.app, labels),
            spec={
                "max_unavailable": 1,
                "selector": {"match_labels": {"app": args.app}},
                # A pod that is not ready serves nothing: evicting it must not block a drain.
                "unhealthy_pod_eviction_policy": "AlwaysAllow",
            },
            opts=self._child(),
        )

    def _service(
        self,
        resource_name: str,
        service_name: str,
        labels: Mapping[str, str],
        selector: Mapping[str, str],
        exposure: Optional[ServiceExposure],
        waits: pulumi.CustomTimeouts,
        depends_on: Sequence[pulumi.Resource],
    ) -> k8s.core.v1.Service:
        spec: k8s.core.v1.ServiceSpecArgsDict = {
            "type": "ClusterIP" if exposure is None else "LoadBalancer",
            "selector": dict(selector),
            # The gateway's port: the engine's own is on loopback, the metrics port is for Prometheus only.
            "ports": [
                {"name": "http", "port": self._args.gateway.port, "target_port": API_PORT_NAME, "protocol": "TCP"}
            ],
        }
        if exposure is not None and exposure.https:
            # TLS at the gateway: its HTTPS port; TLS at the load balancer: the LB sends plain HTTP to the pods.
            target = TLS_PORT_NAME if self._args.tls_secret is not None else API_PORT_NAME
            spec["ports"] = [
                {"name": "https", "port": self._args.gateway.port, "target_port": target, "protocol": "TCP"}
            ]
        annotations = None
        if exposure is not None:
            annotations = exposure.annotations
            if exposure.source_ranges:
                spec["load_balancer_source_ranges"] = list(exposure.source_ranges)
            if exposure.external_traffic_policy:
                spec["external_traffic_policy"] = exposure.external_traffic_policy
        return k8s.core.v1.Service(
            resource_name,
            metadata=self._metadata(service_name, labels, annotations),
            spec=spec,
            opts=self._child(depends_on, waits),
        )


# Model files come from the mounted volume only; no usage reports leave the cluster (vLLM and
# SGLang honour DO_NOT_TRACK).
_DEFAULT_ENV = {"HF_HUB_OFFLINE": "1", "DO_NOT_TRACK": "1"}


def _default_env(args: ServingArgs) -> dict[str, str]:
    """_DEFAULT_ENV, without HF_HUB_OFFLINE when the engine downloads the model itself."""
    if args.download_at_start:
        return {k: v for k, v in _DEFAULT_ENV.items() if k != "HF_HUB_OFFLINE"}
    return dict(_DEFAULT_ENV)


def _model_uri_env(args: ServingArgs) -> list[dict]:
    return [] if args.model_uri is None else [{"name": MODEL_URI_ENV, "value": args.model_uri}]


def secret_env_var(variable: str, secret: pulumi.Input[str], key: str) -> dict:
    """A container environment entry read from a Kubernetes Secret: the value never appears in the spec."""
    return {"name": variable, "valueFrom": {"secretKeyRef": {"name": secret, "key": key}}}


def _secret_env_list(secret_envs: Mapping[str, tuple[pulumi.Input[str], str]]) -> list[dict]:
    return [secret_env_var(variable, name, key) for variable, (name, key) in secret_envs.items()]


def _labels(app: str) -> dict[str, str]:
    return {
        "app": app,
        "app.kubernetes.io/name": app,
        "app.kubernetes.io/component": "inference",
        "app.kubernetes.io/managed-by": "pulumi",
    }


def _env_list(env: Mapping[str, pulumi.Input[str]]) -> list[dict]:
    return [{"name": k, "value": v} for k, v in env.items()]


def _update_budget(surge: bool) -> tuple[int, int]:
    """(maxSurge, maxUnavailable) of a rolling update; see ServingArgs.surge_updates."""
    return (1, 0) if surge else (0, 1)


_GATEWAY_VOLUMES = ("gateway-tls", "gateway-conf", "gateway-key", "gateway-run")


def _ray_env(args: ServingArgs) -> dict[str, str]:
    """What ray-leader.sh and ray-worker.sh read (LWS_LEADER_ADDRESS comes from the LWS controller)."""
    return {
        "LLM_RAY_PORT": str(RAY_PORT),
        "LLM_RAY_NODE_PORT": str(RAY_NODE_PORT),
        "LLM_RAY_JOIN_TIMEOUT_SECONDS": str(RAY_JOIN_TIMEOUT_SECONDS),
        "LLM_RAY_GROUP_GPUS": str(args.gpus_per_pod * args.pods_per_replica),
        "RAY_USAGE_STATS_ENABLED": "0",
    }


def _ray_wait(pods_per_replica: int) -> int:
    return RAY_JOIN_TIMEOUT_SECONDS if pods_per_replica > 1 else 0


RAY_PRELUDE = "ray-network-env.sh"  # runs before either Ray script: the network's NCCL environment


def _ray_script_command(script: str) -> list[str]:
    """Run a Ray script from components/scripts inline (no ConfigMap to keep in sync), after RAY_PRELUDE;
    argv follows as $@."""
    text = shipped_script(RAY_PRELUDE) + "\n" + shipped_script(script)
    return ["/bin/bash", "-c", kubernetes_literal(text), script]


def _load_balancer_address(service: k8s.core.v1.Service) -> pulumi.Output[str]:
    """The first ingress address; the provider waits for it before the Service counts as created."""

    def first(status) -> str:
        ingress = status.load_balancer.ingress if status is not None and status.load_balancer is not None else None
        if not ingress or not (ingress[0].ip or ingress[0].hostname):
            raise ValueError("the LoadBalancer Service has no ingress address yet")
        return ingress[0].ip or ingress[0].hostname

    return service.status.apply(first)


def _validate(args: ServingArgs) -> None:
    """Mistakes the cluster would only report after a long wait, refused before anything is created."""
    problems = []
    if not _DNS_LABEL.match(args.app) or len(args.app) > _APP_MAX:
        problems.append(f"app {args.app!r} must be a DNS label of at most {_APP_MAX} characters")
    for field_name in ("gpus_per_pod", "pods_per_replica", "replicas", "cpu", "memory_gib", "shm_gib", "load_minutes"):
        if getattr(args, field_name) < 1:
            problems.append(f"{field_name} must be at least 1")
    if args.shm_gib >= args.memory_gib:
        problems.append(
            f"shm_gib ({args.shm_gib}) counts against the pod memory and must be below memory_gib ({args.memory_gib})"
        )
    if args.pod_labels.get("app", args.app) != args.app:
        problems.append("pod_labels must not change the app label (it is the selector)")
    reserved = {args.engine.api_key_env, MODEL_URI_ENV, *_DEFAULT_ENV, *_ray_env(args)}
    if reserved & set(args.env):
        problems.append(f"env must not set {sorted(reserved & set(args.env))}: the component sets them")
    if (reserved | set(args.env)) & set(args.secret_env):
        problems.append(
            f"secret_env must not set {sorted((reserved | set(args.env)) & set(args.secret_env))}: already set"
        )
    mounts = [*args.host_mounts, *args.pod_mounts]
    mount_names = [m.name for m in mounts]
    if set(mount_names) & {"model", "dshm", *_GATEWAY_VOLUMES} or len(set(mount_names)) < len(mount_names):
        problems.append(f"host_mounts and pod_mounts names {mount_names} must be unique and not the component's own")
    if {m.mount_path for m in mounts} & {args.model_mount_path, "/dev/shm"}:
        problems.append("host_mounts and pod_mounts must not mount over the model or /dev/shm")
    if (args.engine.host, args.engine.port) != ("127.0.0.1", ENGINE_LOOPBACK_PORT):
        problems.append(
            f"the engine listens on {args.engine.host}:{args.engine.port}; it must listen on "
            f"127.0.0.1:{ENGINE_LOOPBACK_PORT} behind the gateway (build_command(..., behind_gateway=True))"
        )
    problems += [f"gateway: {p}" for p in args.gateway.config().problems()]
    if args.gateway.tls != (args.tls_secret is not None):
        problems.append("gateway.tls and tls_secret go together: the gateway serves HTTPS from that Secret")
    if args.gateway.tls and (args.public_service is None or not args.public_service.https):
        problems.append("a TLS gateway is for the public Service: give public_service with https=True")
    if not 0 < args.gateway.port < 65536:
        problems.append(f"gateway port {args.gateway.port} must be a TCP port (1-65535)")
    streams_uri = MODEL_URI_REF in args.engine.argv
    if streams_uri != (args.model_uri is not None):
        problems.append("model_uri is needed exactly when the engine argv streams from it (core.engine.MODEL_URI_REF)")
    if args.model_volume is None and not streams_uri:
        problems.append("without a model volume the engine must stream its weights from model_uri")
    uses_ray = _ray_backend(args.engine)
    if args.pods_per_replica > 1 and not uses_ray:
        problems.append(
            "pods_per_replica > 1 needs a vLLM command built with multi_node=True (--distributed-executor-backend ray)"
        )
    if args.pods_per_replica == 1 and uses_ray:
        problems.append("a single-pod replica needs no Ray: build the command with multi_node=False")
    if problems:
        raise ValueError("ServingWorkload: " + "; ".join(problems))


def _ray_backend(engine: EngineCommand) -> bool:
    argv = list(engine.argv)
    return any(a == "--distributed-executor-backend" and argv[i + 1 : i + 2] == ["ray"] for i, a in enumerate(argv))
