"""What the guardrails look for, as plain functions over resource inputs (camelCase, as the engine sends them).

Inputs arrive wrapped in pulumi_policy's unknown-checking proxies (Mappings and Sequences, not dicts
and lists). Reading a value that is unknown during preview raises UnknownValueError, which the policy
SDK reports as "can't run during preview"; only the walk that *finds* pod specs skips unknown parts.

This module stands alone (the policy pack runs in its own virtualenv without the program's code),
so the few names it shares with core/engine.py (VLLM_API_KEY) are repeated here on purpose.
"""

from __future__ import annotations

import base64
import binascii
import gzip
import ipaddress
import itertools
import re
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, Optional

from pulumi_policy.proxy import UnknownValueError

# ---------------------------------------------------------------------------------------------- helpers


def is_list(value: Any) -> bool:
    return isinstance(value, Sequence) and not isinstance(value, (str, bytes))


def known_items(node: Any) -> Iterator[tuple[Any, Any]]:
    """(key, value) pairs of a mapping or sequence, leaving out values unknown during preview."""
    keys = list(node) if isinstance(node, Mapping) else range(len(node))
    for key in keys:
        try:
            yield key, node[key]
        except UnknownValueError:
            continue


def has_key(node: Any, key: Any) -> bool:
    """`key in node` without reading the value (Mapping's `in` reads it, and an unknown value raises)."""
    return isinstance(node, Mapping) and any(k == key for k in node)


def get(node: Any, *path: Any, default: Any = None) -> Any:
    """node[path[0]][path[1]]..., or default when a step is missing (unknown values still raise)."""
    for key in path:
        if isinstance(node, Mapping):
            if not has_key(node, key):
                return default
        elif is_list(node):
            if not isinstance(key, int) or not -len(node) <= key < len(node):
                return default
        else:
            return default
        node = node[key]
    return node


def stack_of(urn: str) -> str:
    """The stack name in a URN: urn:pulumi:<stack>::<project>::<type>::<name>."""
    head = urn.split("::", 1)[0]
    return head.removeprefix("urn:pulumi:") if head.startswith("urn:pulumi:") else ""


def is_production(stack: str) -> bool:
    """`prod`, `production`, or a stack with one of those as a dash/underscore/dot-separated part (gke-prod)."""
    return bool({"prod", "production"} & set(re.split(r"[-_.]", stack.lower())))


# ---------------------------------------------------------------------------------------------- networks


def is_open_cidr(cidr: Any) -> bool:
    """True for a source that is the whole internet (0.0.0.0/0, ::/0)."""
    if not isinstance(cidr, str) or not cidr:
        return False
    try:
        return ipaddress.ip_network(cidr.strip(), strict=False).prefixlen == 0
    except ValueError:
        return False


def alicloud_port_range_covers(port_range: Any, port: int) -> bool:
    """ECS port ranges are "from/to"; "-1/-1" (also the default) means every port."""
    if port_range is None or port_range == "-1/-1":
        return True
    try:
        low, high = (int(p) for p in str(port_range).split("/"))
    except ValueError:
        return False
    return low <= port <= high


def gcp_ports_cover(ports: Any, port: int) -> bool:
    """GCP firewall `ports`: empty means every port; items are "22" or "20-30"."""
    if not ports:
        return True
    for item in ports:
        low, _, high = str(item).partition("-")
        try:
            if int(low) <= port <= int(high or low):
                return True
        except ValueError:
            continue
    return False


# Annotations that make a LoadBalancer Service internal, per cloud. Without one, the cloud controllers of
# these clouds give a LoadBalancer Service a public address (the Alibaba default address type is
# "internet"; GKE creates an external load balancer unless told otherwise).
INTERNAL_LB_ANNOTATIONS = {
    "service.beta.kubernetes.io/alibaba-cloud-loadbalancer-address-type": {"intranet"},
    "networking.gke.io/load-balancer-type": {"internal"},
    "cloud.google.com/load-balancer-type": {"internal"},
    "service.beta.kubernetes.io/azure-load-balancer-internal": {"true"},
    "service.beta.kubernetes.io/aws-load-balancer-internal": {"true", "0.0.0.0/0"},
    "service.beta.kubernetes.io/aws-load-balancer-scheme": {"internal"},
}


def is_internet_facing_service(props: Mapping) -> bool:
    if get(props, "spec", "type") != "LoadBalancer":
        return False
    annotations = get(props, "metadata", "annotations", default={}) or {}
    for key, internal_values in INTERNAL_LB_ANNOTATIONS.items():
        if has_key(annotations, key) and str(annotations[key]).lower() in internal_values:
            return False
    return True


# Alibaba Cloud CCM annotations for an HTTPS listener on the CLB (ACK help doc 86531; cloud-provider-alibaba-cloud
# usage guide): TLS ends at the load balancer, which holds the certificate.
CLB_PROTOCOL_PORT = "service.beta.kubernetes.io/alibaba-cloud-loadbalancer-protocol-port"
CLB_CERT_ID = "service.beta.kubernetes.io/alibaba-cloud-loadbalancer-cert-id"


def plain_service_ports(props: Mapping) -> list[Any]:
    """The ports of a LoadBalancer Service that do not serve TLS: neither on an HTTPS listener of the load balancer
    (CLB protocol-port "https:<port>" with a cert-id) nor forwarded, named https, to a container port named https."""
    annotations = get(props, "metadata", "annotations", default={}) or {}
    clb_https: set[str] = set()
    if has_key(annotations, CLB_CERT_ID) and annotations[CLB_CERT_ID] and has_key(annotations, CLB_PROTOCOL_PORT):
        for entry in str(annotations[CLB_PROTOCOL_PORT]).split(","):
            protocol, _, port = entry.strip().partition(":")
            if protocol.lower() == "https":
                clb_https.add(port.strip())
    plain = []
    for _, port in known_items(get(props, "spec", "ports", default=[]) or []):
        number = get(port, "port")
        if str(number) in clb_https:
            continue
        if get(port, "name") == "https" and get(port, "targetPort") == "https":
            continue
        plain.append(number)
    return plain


def gateway_plain_listeners(conf: str) -> list[str]:
    """`listen` lines of an nginx conf rendered by core/gateway.py that serve the API without TLS (the metrics
    server, which only answers GET /metrics, is left out)."""
    found = []
    for block in re.split(r"\n\s*server \{", conf)[1:]:
        listens = re.findall(r"^\s*listen ([^;]*);", block, re.M)
        proxied = set(re.findall(r"proxy_pass http://llm_engine(\S*);", block))
        if proxied <= {"/metrics"}:
            continue
        found += [listen for listen in listens if " ssl" not in f" {listen} "]
    return found


def seccomp_confined(pod: Mapping, container: Mapping) -> bool:
    """The container runs under a seccomp profile (RuntimeDefault or Localhost), its own or the pod's."""
    own = get(container, "securityContext", "seccompProfile", "type")
    profile = own if own is not None else get(pod, "securityContext", "seccompProfile", "type")
    return profile in ("RuntimeDefault", "Localhost")


# ---------------------------------------------------------------------------------------------- pods

GPU_RESOURCES = ("nvidia.com/gpu", "alibabacloud.com/ppu")
SHM_PATH = "/dev/shm"


def pod_specs(props: Mapping) -> list[Mapping]:
    """Every pod spec inside a Kubernetes object: Pod, Deployment, Job, CronJob, LeaderWorkerSet, ...

    A pod spec is the mapping that holds `containers`; it is found wherever it sits under `spec`
    (spec, spec.template.spec, spec.jobTemplate.spec.template.spec, spec.leaderWorkerTemplate.*.spec).
    """
    found: list[Mapping] = []

    def walk(node: Any, depth: int) -> None:
        if depth > 10:
            return
        if isinstance(node, Mapping):
            if has_key(node, "containers"):
                found.append(node)
                return
            for _, child in known_items(node):
                walk(child, depth + 1)
        elif is_list(node):
            for _, child in known_items(node):
                walk(child, depth + 1)

    try:
        walk(get(props, "spec"), 0)
    except UnknownValueError:  # the whole spec is unknown: nothing to find yet
        pass
    return found


def containers(pod: Mapping, *, init: bool = True) -> list[Mapping]:
    kinds = ("containers", "initContainers", "ephemeralContainers") if init else ("containers",)
    return [c for kind in kinds for _, c in known_items(get(pod, kind, default=[]) or [])]


def command_line(container: Mapping) -> str:
    """command + args joined with spaces: what the text heuristics and engine detection read."""
    words = [*(get(container, "command", default=[]) or []), *(get(container, "args", default=[]) or [])]
    return " ".join(str(w) for w in words)


def image_pin_problem(image: Any) -> Optional[str]:
    """Why an image reference is not pinned, or None: it needs a digest or a tag other than `latest`."""
    if not isinstance(image, str) or not image.strip():
        return "has no image"
    if "@" in image:
        return None if re.search(r"@sha256:[0-9a-f]{64}$", image) else f"{image!r} has a malformed digest"
    last = image.rsplit("/", 1)[-1]
    if ":" not in last:
        return f"{image!r} has no tag (it means :latest)"
    tag = last.rsplit(":", 1)[1]
    if not tag or tag.lower() == "latest":
        return f"{image!r} uses the moving tag 'latest'"
    return None


def requests_gpu(container: Mapping) -> bool:
    resources = get(container, "resources", default={}) or {}
    for section in ("limits", "requests"):
        amounts = get(resources, section, default={}) or {}
        for name in GPU_RESOURCES:
            if has_key(amounts, name) and str(amounts[name]).strip() not in ("0", "0.0", ""):
                return True
    return False


def has_memory_shm(pod: Mapping, container: Mapping) -> bool:
    """The container mounts a memory-backed emptyDir at /dev/shm (the default 64 MiB is too small for NCCL)."""
    memory_volumes = {
        get(v, "name")
        for _, v in known_items(get(pod, "volumes", default=[]) or [])
        if str(get(v, "emptyDir", "medium", default="")).lower() == "memory"
    }
    return any(
        get(m, "mountPath") == SHM_PATH and get(m, "name") in memory_volumes
        for _, m in known_items(get(container, "volumeMounts", default=[]) or [])
    )


# The OpenAI-compatible servers this project runs. `vllm bench serve` (a client) does not match.
INFERENCE_SERVER = re.compile(r"\bvllm\s+serve\b|vllm\.entrypoints\.openai\.api_server|sglang\.launch_server")
KUBERNETES_VAR_REF = re.compile(r"^\$\(([A-Za-z_][A-Za-z0-9_]*)\)$")
VLLM_KEY_ENV = "VLLM_API_KEY"


def is_inference_server(container: Mapping) -> bool:
    return bool(INFERENCE_SERVER.search(command_line(container)))


def secret_env_names(container: Mapping) -> set[str]:
    """Environment variables whose value comes from a Kubernetes Secret (valueFrom.secretKeyRef)."""
    return {
        get(e, "name")
        for _, e in known_items(get(container, "env", default=[]) or [])
        if get(e, "valueFrom", "secretKeyRef") is not None
    }


def api_key_source(container: Mapping) -> Optional[str]:
    """How the server gets its API key from a Secret, or None when it serves without one.

    Either `--api-key $(VAR)` with VAR from a secretKeyRef (both engines), or VLLM_API_KEY from a
    secretKeyRef (vLLM reads it from the environment).
    """
    from_secrets = secret_env_names(container)
    words = command_line(container).split()
    for i, word in enumerate(words):
        value = (
            word.split("=", 1)[1]
            if word.startswith("--api-key=")
            else (words[i + 1] if word == "--api-key" and i + 1 < len(words) else None)
        )
        if value is None:
            continue
        ref = KUBERNETES_VAR_REF.match(value.strip("'\""))
        if ref and ref.group(1) in from_secrets:
            return f"--api-key from Secret via ${ref.group(1)}"
    if VLLM_KEY_ENV in from_secrets and "vllm" in command_line(container):
        return f"{VLLM_KEY_ENV} from a Secret"
    return None


LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")
_HOST_FLAG = re.compile(r"(?<![\w-])--host(?:=|\s+)(?P<host>\S+)")
_SERVER_LINE = re.compile(f"(?:{INFERENCE_SERVER.pattern}).*")


def listen_hosts(text: str) -> list[str]:
    """The --host of each inference server started in `text` (a command line, or a script: one per line), the last
    one given as argparse reads it; "0.0.0.0" when unset, the engines' default."""
    hosts = []
    for line in _SERVER_LINE.findall(text):
        found = _HOST_FLAG.findall(line)
        hosts.append(found[-1].strip("'\"") if found else "0.0.0.0")
    return hosts


def published_ports(container: Mapping) -> list[Any]:
    return [get(p, "containerPort") for _, p in known_items(get(container, "ports", default=[]) or [])]


# ---------------------------------------------------------------------------------------------- secrets

# A name "looks secret" when one of its words is one of these, or two adjacent words form a pair below
# (names are split on _, -, . and camelCase: HF_TOKEN, apiKey, ALICLOUD_SECRET_KEY, akSecret).
SECRET_WORDS = {"token", "password", "passwd", "passphrase", "secret", "credential", "credentials", "apikey"}
SECRET_PAIRS = {("api", "key"), ("access", "key"), ("private", "key"), ("auth", "key"), ("secret", "key")}

# Well-known credential formats, found anywhere in text whatever they are assigned to.
KEY_FORMATS = {
    "OpenAI-style key (sk-...)": re.compile(r"\bsk-[A-Za-z0-9_-]{20,}"),
    "Alibaba Cloud AccessKey ID (LTAI...)": re.compile(r"\bLTAI[A-Za-z0-9]{12,30}\b"),
    "Hugging Face token (hf_...)": re.compile(r"\bhf_[A-Za-z0-9]{30,}\b"),
    "AWS access key id (AKIA...)": re.compile(r"\bAKIA[0-9A-Z]{16}\b"),
    "GitHub token (ghp_...)": re.compile(r"\bgh[pousr]_[A-Za-z0-9]{36,}\b"),
    "private key block": re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----"),
}

_VALUE = r"(?P<value>\"[^\"]*\"|'[^']*'|[^\s;&|)]+)"
# NAME=value (shell, env files, systemd) and `name: value` at the start of a line (cloud-config, YAML).
ASSIGNMENT = re.compile(
    r"(?<![\w.-])(?P<name>[A-Za-z_][A-Za-z0-9_.-]*)="
    + _VALUE
    + r"|^[ \t-]*(?P<yname>[A-Za-z_][A-Za-z0-9_.-]*):[ \t]+"
    + _VALUE.replace("value", "yvalue"),
    re.MULTILINE,
)
# --api-key value / --hf-token=value
FLAG = re.compile(r"(?<![\w-])--(?P<name>[A-Za-z][A-Za-z0-9-]*)(?:=|\s+)" + _VALUE)
BEARER = re.compile(r"Authorization:\s*Bearer\s+" + _VALUE, re.IGNORECASE)
# What a secret value is made of; shorter values, format strings and prose do not count.
TOKEN_ALPHABET = re.compile(r"[A-Za-z0-9+/=_.~:@-]{8,}")


def name_looks_secret(name: str) -> bool:
    words = [w for w in re.split(r"[^a-z0-9]+", re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", name).lower()) if w]
    return bool(SECRET_WORDS & set(words)) or any(pair in SECRET_PAIRS for pair in itertools.pairwise(words))


def is_literal(value: str) -> bool:
    """A value written out, as opposed to a reference that is resolved elsewhere.

    References: $(VAR) (Kubernetes), $VAR / ${VAR} (shell), {{...}} (Cloud Assistant / OOS parameters),
    <placeholder>, file paths, and an environment-variable NAME (ALL_CAPS) such as API_KEY_ENV=VLLM_API_KEY.
    """
    v = value.strip().strip("'\"").strip()
    if not v or v.startswith(("$", "/", "~", "./", "<")) or "{{" in v:
        return False
    return not re.fullmatch(r"[A-Z][A-Z0-9_]*", v)


def secrets_in_text(text: str) -> list[str]:
    """What in a script or command line looks like a written-out credential (descriptions, never the value)."""
    found = [kind for kind, pattern in KEY_FORMATS.items() if pattern.search(text)]

    def literal_token(value: str) -> bool:
        v = value.strip("'\"")
        return is_literal(v) and bool(TOKEN_ALPHABET.fullmatch(v))

    for m in ASSIGNMENT.finditer(text):
        name, value = (m.group("name"), m.group("value")) if m.group("name") else (m.group("yname"), m.group("yvalue"))
        if name_looks_secret(name) and literal_token(value):
            found.append(f"{name}=<literal>")
    for m in FLAG.finditer(text):
        if name_looks_secret(m.group("name")) and literal_token(m.group("value")):
            found.append(f"--{m.group('name')} <literal>")
    for m in BEARER.finditer(text):
        if literal_token(m.group("value")):
            found.append("Authorization: Bearer <literal>")
    return found


# A file a script writes gzip-compressed and base64-encoded (components/alibaba/host_scripts.py
# write_compressed_file, for ECS's 32 KB of user-data): `base64 -d <<'END' | gunzip > PATH`, the text, END.
PACKED_FILE = re.compile(r"base64 -d <<'(\w+)' \| gunzip > \S+\n(.*?)\n\1\n", re.S)


def decoded_text(value: Any) -> str:
    """User-data and command content, base64-decoded when they are base64 (as ECS expects them), with the text of
    every compressed file it writes appended, so that every check reads what the host will have."""
    if not isinstance(value, str):
        return ""
    text = value
    compact = "".join(value.split())
    if compact and re.fullmatch(r"[A-Za-z0-9+/]+={0,2}", compact) and len(compact) % 4 == 0:
        try:
            text = base64.b64decode(compact, validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            pass
    unpacked = []
    for _, body in PACKED_FILE.findall(text):
        try:
            unpacked.append(gzip.decompress(base64.b64decode("".join(body.split()), validate=True)).decode("utf-8"))
        except (binascii.Error, OSError, EOFError, UnicodeDecodeError):
            unpacked.append(body)  # not what write_compressed_file writes: checked as it is
    return "\n".join([text, *unpacked])


def plaintext_env_secrets(container: Mapping) -> list[str]:
    """Env entries with a literal value that is, or is named like, a credential."""
    found = []
    for _, entry in known_items(get(container, "env", default=[]) or []):
        name, value = str(get(entry, "name") or ""), get(entry, "value")
        if not isinstance(value, str) or not value:
            continue
        if (name_looks_secret(name) and is_literal(value)) or any(p.search(value) for p in KEY_FORMATS.values()):
            found.append(f"env {name} has a literal value")
    return found
