"""Renders the GPU host's user-data and readiness command from the scripts in components/scripts.

The scripts are plain files (shellcheck reads them as they are); what varies per stack is a
config file of shell assignments, each value quoted with shlex. Nothing rendered here holds a
secret: the API key reaches the host only through an OOS encrypted-parameter reference that
Cloud Assistant resolves on the instance.

The engine listens on 127.0.0.1 only (core.gateway.ENGINE_LOOPBACK_PORT); the authenticating gateway
(nginx, core/gateway.py, in Docker with the host network) is the only listener on the API port. Its
nginx.conf is rendered here (no secret in it); its key file is written by the readiness command.
"""

from __future__ import annotations

import base64
import gzip
import re
import shlex
import textwrap
from dataclasses import dataclass
from typing import Optional

from components.alibaba.oss_s3_api import CONFIG_ITEM, CREDENTIAL_SCRIPT, SCRIPT_ITEM, aws_config, stream_env
from components.shipped_scripts import body, script
from core.catalog import ModelSpec
from core.engine import STREAMER_LOG_ENV, EngineCommand
from core.gateway import (
    DEFAULT_ROUTES,
    METRICS_PORT,
    GatewayConfig,
    GatewayTls,
    generation_timeout_seconds,
    max_body_bytes,
    render_nginx_conf,
)

MODEL_ROOT = "/root/llm-model"
CONTAINER_NAME = "llm-serving"  # also named in scripts/llm-serving.service (ExecStop)
MODELSCOPE_VERSION = "1.40.2"
MODELSCOPE_HUB_VERSION = "0.5.1"
# Alibaba Cloud's PyPI mirror on the internal network of every region.
PIP_INDEX_URL = "https://mirrors.cloud.aliyuncs.com/pypi/simple/"
NVIDIA_TOOLKIT_REPO = "https://nvidia.github.io/libnvidia-container"
# ECS RunInstances UserData: "the raw data can be up to 32 KB" before Base64 (the program kept 16 KiB before;
# audit m7: stricter than the API, harmless, but the gateway's conf needs the room).
USER_DATA_LIMIT_BYTES = 32 * 1024
# The gateway: host directory only root can enter (ready.sh makes it 0700), bind-mounted read-only.
GATEWAY_CONTAINER = "llm-gateway"  # also named in scripts/llm-gateway.service (ExecStop)
GATEWAY_DIR = "/etc/llm-serving/gateway"
GATEWAY_CONF = "/etc/llm-gateway/nginx.conf"  # inside the container
GATEWAY_KEY_FILE = "/etc/llm-gateway/api-key.map"  # inside the container
# TLS (access.tls.source pem): the certificate and key, written by the readiness command into a root-only host
# directory (the key from an OOS encrypted parameter), bind-mounted read-only at GATEWAY_TLS_MOUNT.
GATEWAY_TLS_DIR = f"{GATEWAY_DIR}/tls"
GATEWAY_TLS_MOUNT = "/etc/llm-gateway/tls"
GATEWAY_UID = 65534  # nobody: not root, and the same uid in any image (the CN image's own user is unknown)
# vLLM finishes requests in flight on SIGTERM for this long (--shutdown-timeout; without it they are cut,
# measured in tests/engine); below `docker stop --time 120` of llm-serving.service.
ENGINE_SHUTDOWN_SECONDS = 100
ENGINE_STOP_SECONDS = 120
HEREDOC_END = "LLM_SERVING_EOF"
FETCH_MODEL_SCRIPT = "fetch-model.sh"
LIB_DIR = "/usr/local/lib/llm-serving"
CONF_PATH = "/etc/llm-serving/serving.conf"
# ecs.weights.load stream: the AWS config file and the credential process (source ecs-ram-role) on the host, bind-
# mounted read-only into the engine container at STREAM_MOUNT; the streamer's environment in a Docker env file. No
# secret in either: the credentials come from the metadata server at each call. The engine container runs with the
# host's network (serving-run.sh `--network host`), so it reaches the metadata server 100.100.100.200 as the host's
# own scripts do (fetch-oss.py), with no bridge or NAT in between.
STREAM_DIR = "/etc/llm-serving/oss-stream"
STREAM_MOUNT = "/etc/llm-oss-stream"
STREAM_ENV_FILE = "/etc/llm-serving/oss-stream.env"
CREDENTIAL_SOURCE = "ecs-ram-role"


@dataclass(frozen=True)
class HostConfig:
    model: ModelSpec
    model_revision: str
    engine_image: str
    engine: EngineCommand
    driver_branch: str
    fabric_manager: bool  # NVSwitch machines (8-GPU HGX boards) need NVIDIA Fabric Manager
    api_port: int  # the gateway's port (access.apiPort); the engine listens on engine.port, loopback only
    gateway_image: str  # settings.gateway.image: pinned
    max_model_len: int  # sizes the gateway's timeouts and body limit
    open_kernel_modules: bool = True  # NVIDIA's open modules (Turing and newer); False: proprietary (Volta)
    # ecs.weights: "modelscope" through the NAT, or "oss": oss://<bucket>/<prefix>/<ModelScope id>/ over the
    # region's internal endpoint (oss_endpoint) with the instance's RAM role, `weights_parallel` ranged GETs at once.
    weights_source: str = "modelscope"
    weights_bucket: str = ""
    weights_prefix: str = "models"
    weights_parallel: int = 16
    oss_endpoint: str = ""
    # "stream": the engine reads s3://<bucket>/<prefix>/<id> itself (engine.argv carries the URI and the streamer's
    # flags) with the instance's RAM role; nothing is copied. "copy": fetch-oss.py first. `region`: the S3 endpoint's.
    weights_load: str = "copy"
    # How long the host waits for the stack's own import into the bucket to finish; 0: the bucket is filled already.
    weights_wait_seconds: int = 0
    region: str = ""
    gateway_routes: tuple[tuple[str, str], ...] = DEFAULT_ROUTES  # (path, method) behind the key: settings.gateway
    tls: bool = False  # the API port speaks TLS only (the readiness command installs the certificate and key)


def oss_internal_endpoint(region: str) -> str:
    """OSS from inside the region's VPCs, no Internet traffic (the same as oss_model_store.internal_endpoint, which
    imports the Kubernetes SDK that ecs does not install)."""
    return f"oss-{region}-internal.aliyuncs.com"


def model_dir(model: ModelSpec) -> str:
    return f"{MODEL_ROOT}/{model.modelscope_id}"


def streamed(host: HostConfig) -> bool:
    return host.weights_source == "oss" and host.weights_load == "stream"


def model_uri(bucket: str, prefix: str, model: ModelSpec) -> str:
    """The streamer's model argument: the objects the Kubernetes targets' import writes (oss://<bucket>/<prefix>/<id>/)."""
    return f"s3://{bucket}/{prefix}/{model.modelscope_id}"


def render_stream_env(host: HostConfig) -> str:
    """The Docker env file (KEY=VALUE lines, no quoting) of the streaming engine; nothing secret."""
    if not host.region:
        raise ValueError("a streaming host needs its region (the S3 endpoint and the signing region)")
    lines = [f"{k}={v}" for k, v in {**stream_env(host.region, STREAM_MOUNT), **STREAMER_LOG_ENV}.items()]
    if any("\n" in line for line in lines):
        raise ValueError("a Docker env file value cannot hold a newline")
    return "\n".join(lines) + "\n"


def render_conf(host: HostConfig) -> str:
    values = {
        "MODEL_ID": host.model.modelscope_id,
        "MODEL_REVISION": host.model_revision,
        "MODEL_ROOT": MODEL_ROOT,
        "MODEL_DIR": model_dir(host.model),
        "ENGINE_IMAGE": host.engine_image,
        "ENGINE_CMD": host.engine.shell(),
        "CONTAINER_NAME": CONTAINER_NAME,
        "API_PORT": str(host.api_port),
        "ENGINE_PORT": str(host.engine.port),
        "GATEWAY_IMAGE": host.gateway_image,
        "GATEWAY_CONTAINER": GATEWAY_CONTAINER,
        "GATEWAY_DIR": GATEWAY_DIR,
        "GATEWAY_CONF": GATEWAY_CONF,
        "GATEWAY_KEY_FILE": GATEWAY_KEY_FILE,
        "GATEWAY_USER": f"{GATEWAY_UID}:{GATEWAY_UID}",
        "GATEWAY_TLS_DIR": GATEWAY_TLS_DIR if host.tls else "",
        "GATEWAY_TLS_MOUNT": GATEWAY_TLS_MOUNT,
        "DRIVER_BRANCH": host.driver_branch,
        "DRIVER_FLAVOUR": "open" if host.open_kernel_modules else "proprietary",
        "FABRIC_MANAGER": "true" if host.fabric_manager else "false",
        **fetch_model_env(),
        "NVIDIA_TOOLKIT_REPO": NVIDIA_TOOLKIT_REPO,
        "WEIGHTS_SOURCE": host.weights_source,
        "WEIGHTS_BUCKET": host.weights_bucket,
        "WEIGHTS_PREFIX": host.weights_prefix,
        "WEIGHTS_PARALLEL": str(host.weights_parallel),
        "OSS_ENDPOINT": host.oss_endpoint,
        "WEIGHTS_WAIT_SECONDS": str(host.weights_wait_seconds),
        "WEIGHTS_LOAD": "stream" if streamed(host) else "copy",
        "STREAM_DIR": STREAM_DIR,
        "STREAM_MOUNT": STREAM_MOUNT,
        "STREAM_ENV_FILE": STREAM_ENV_FILE,
    }
    lines = [f"{name}={shlex.quote(value)}" for name, value in values.items()]
    return "# Written by the llm Pulumi program; no secrets here.\n" + "\n".join(lines) + "\n"


def fetch_model_script() -> str:
    """The one model download script (MODEL_ID REVISION DIR), run by the GPU host and the import Job."""
    return script(FETCH_MODEL_SCRIPT)


def fetch_model_env(pip_index_url: str = PIP_INDEX_URL) -> dict[str, str]:
    """The environment fetch-model.sh requires: pinned downloader versions and the PyPI mirror."""
    return {
        "PIP_INDEX_URL": pip_index_url,
        "MODELSCOPE_VERSION": MODELSCOPE_VERSION,
        "MODELSCOPE_HUB_VERSION": MODELSCOPE_HUB_VERSION,
    }


def write_file(path: str, content: str, mode: str) -> str:
    if HEREDOC_END in content:
        raise ValueError(f"{path} contains the heredoc terminator {HEREDOC_END}")
    return f"cat > {path} <<'{HEREDOC_END}'\n{content}{HEREDOC_END}\nchmod {mode} {path}\n"


def write_compressed_file(path: str, content: str, mode: str) -> str:
    """write_file for a large file: gzip (no timestamp, so the user-data is stable) then base64, decoded on the host
    with coreutils' base64 and gzip (both in Ubuntu's base system), to keep the user-data under ECS's 32 KB."""
    packed = base64.b64encode(gzip.compress(content.encode(), mtime=0)).decode()
    body = "\n".join(textwrap.wrap(packed, 76)) + "\n"
    return f"base64 -d <<'{HEREDOC_END}' | gunzip > {path}\n{body}{HEREDOC_END}\nchmod {mode} {path}\n"


def gateway_config(host: HostConfig) -> GatewayConfig:
    """The gateway in front of the engine: the API port on 0.0.0.0, the engine on loopback, metrics apart."""
    return GatewayConfig(
        listen_port=host.api_port,
        engine_port=host.engine.port,
        metrics_port=METRICS_PORT,
        key_file=GATEWAY_KEY_FILE,
        read_timeout_seconds=generation_timeout_seconds(host.max_model_len),
        max_body_bytes=max_body_bytes(host.max_model_len),
        allowed_paths=tuple(host.gateway_routes),
        tls=GatewayTls(f"{GATEWAY_TLS_MOUNT}/cert.pem", f"{GATEWAY_TLS_MOUNT}/key.pem") if host.tls else None,
    )


def render_user_data(host: HostConfig) -> str:
    """First-boot script: installs the files and units, then starts the bootstrap without waiting."""
    parts = [
        "#!/bin/bash\n# LLM serving host set-up, written by the llm Pulumi program. Holds no secret.\n",
        "set -euo pipefail\n",
        f"install -d -m 0755 /usr/local/lib/llm-serving\ninstall -d -m 0700 /etc/llm-serving {GATEWAY_DIR}\n",
        write_file("/etc/llm-serving/serving.conf", render_conf(host), "0644"),
        write_compressed_file(f"{GATEWAY_DIR}/nginx.conf", render_nginx_conf(gateway_config(host)), "0644"),
        write_compressed_file("/usr/local/lib/llm-serving/bootstrap.sh", script("bootstrap.sh"), "0755"),
        write_compressed_file("/usr/local/lib/llm-serving/install-driver.sh", script("install-driver.sh"), "0755"),
        # Only the fetch the host runs. fetch-oss.py runs when streamed too: it checks the import first.
        (
            write_compressed_file(f"{LIB_DIR}/fetch-oss.py", script("fetch-oss.py"), "0755")
            if host.weights_source == "oss"
            else write_file(f"{LIB_DIR}/fetch-model.sh", fetch_model_script(), "0755")
        ),
        *(
            [
                f"install -d -m 0755 {STREAM_DIR}\n",
                write_file(
                    f"{STREAM_DIR}/{CONFIG_ITEM}", aws_config(host.region, STREAM_MOUNT, CREDENTIAL_SOURCE), "0644"
                ),
                write_compressed_file(f"{STREAM_DIR}/{SCRIPT_ITEM}", CREDENTIAL_SCRIPT.read_text(), "0644"),
                write_file(STREAM_ENV_FILE, render_stream_env(host), "0644"),
            ]
            if streamed(host)
            else []
        ),
        write_file("/usr/local/bin/llm-serving-run", script("serving-run.sh"), "0755"),
        write_file("/usr/local/bin/llm-gateway-run", script("gateway-run.sh"), "0755"),
        write_file("/etc/systemd/system/llm-bootstrap.service", script("llm-bootstrap.service"), "0644"),
        write_file("/etc/systemd/system/llm-serving.service", script("llm-serving.service"), "0644"),
        write_file("/etc/systemd/system/llm-gateway.service", script("llm-gateway.service"), "0644"),
        "systemctl daemon-reload\n",
        "systemctl enable llm-bootstrap.service\n",
        "systemctl start --no-block llm-bootstrap.service\n",
    ]
    user_data = "".join(parts)
    size = len(user_data.encode())
    if size > USER_DATA_LIMIT_BYTES:
        raise ValueError(f"user-data is {size} bytes; ECS accepts at most {USER_DATA_LIMIT_BYTES}")
    return user_data


PREPARE_DIR = "/var/tmp/llm-serving-image"  # the build's own files, removed when it is done


def render_prepare_image(host: HostConfig) -> str:
    """What ECS Image Builder runs on its intermediate instance (components/alibaba/prepared_image.py): the conf,
    bootstrap.sh and install-driver.sh, then `bootstrap.sh --prepare-image` (the driver, Docker, toolkit and
    both images; no download, no engine). The same scripts as a host's, so a host from the image finds every step
    done."""
    parts = [
        "#!/bin/bash\n# LLM serving prepared image, written by the llm Pulumi program. Holds no secret.\n",
        "set -euo pipefail\n",
        f"install -d -m 0700 {PREPARE_DIR}\ninstall -d -m 0755 {LIB_DIR}\n",
        write_file(f"{PREPARE_DIR}/serving.conf", render_conf(host), "0644"),
        write_file(f"{PREPARE_DIR}/bootstrap.sh", script("bootstrap.sh"), "0755"),
        write_file(f"{LIB_DIR}/install-driver.sh", script("install-driver.sh"), "0755"),
        f"LLM_SERVING_CONF={PREPARE_DIR}/serving.conf LLM_SERVING_STATE={PREPARE_DIR}/state \\\n"
        f"  {PREPARE_DIR}/bootstrap.sh --prepare-image\n",
        f"rm -rf {PREPARE_DIR}\n",
    ]
    return "".join(parts)


def secret_reference(parameter_name: str) -> str:
    """Cloud Assistant's reference to an OOS encrypted parameter, resolved on the instance."""
    return "{{oos-secret:" + parameter_name + "}}"


PEM_TEXT = re.compile(r"[A-Za-z0-9+/=\r\n -]+")


def render_ready_command(
    *,
    api_port: int,
    api_key_env: str,
    secret_parameter: str,
    timeout_seconds: int,
    tls_certificate: Optional[str] = None,
    tls_key_parameter: Optional[str] = None,
) -> str:
    """The readiness command: installs the key from OOS for the engine and the gateway, (re)starts both, and
    checks through the gateway (api_port) that /health answers and the key guards every path.

    With TLS, it also installs the certificate (public: in the command text) and its private key (an OOS
    encrypted-parameter reference, like the API key), and checks over HTTPS."""
    if (tls_certificate is None) != (tls_key_parameter is None):
        raise ValueError("tls_certificate and tls_key_parameter go together")
    if tls_certificate is not None and not PEM_TEXT.fullmatch(tls_certificate):
        raise ValueError("the certificate must be PEM text (it is quoted in the command)")
    tls = [
        f"TLS_DIR={GATEWAY_TLS_DIR if tls_certificate else ''}",
        f"TLS_CERT_VALUE='{tls_certificate or ''}'",
        f"TLS_KEY_VALUE='{secret_reference(tls_key_parameter) if tls_key_parameter else ''}'",
    ]
    header = "\n".join(
        [
            "#!/bin/bash",
            f"TIMEOUT_SECONDS={int(timeout_seconds)}",
            f"API_PORT={int(api_port)}",
            f"API_KEY_ENV={shlex.quote(api_key_env)}",
            f"API_KEY_VALUE='{secret_reference(secret_parameter)}'",
            f"GATEWAY_KEY_PATH={GATEWAY_DIR}/api-key.map",
            f"GATEWAY_UID={GATEWAY_UID}",
            *tls,
            "",
        ]
    )
    return header + body("ready.sh")
