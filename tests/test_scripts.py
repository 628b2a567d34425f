"""Host scripts: shellcheck-clean as written and as rendered, within ECS limits, config round-trips."""

import base64
import dataclasses
import importlib.util
import json
import re
import subprocess
import sys
import urllib.parse
from pathlib import Path

import pytest
from harness import run_stack, settings_for, unwrap

from components.alibaba.host_scripts import (
    MODEL_ROOT,
    STREAM_DIR,
    STREAM_ENV_FILE,
    STREAM_MOUNT,
    USER_DATA_LIMIT_BYTES,
    HostConfig,
    model_dir,
    render_conf,
    render_ready_command,
    render_user_data,
    write_compressed_file,
)
from components.shipped_scripts import SCRIPTS, script
from core import durations
from core.versions import VLLM_IMAGE
from stacks.alibaba.ecs import host_config

SHELLCHECK = str(Path(sys.executable).parent / "shellcheck")


def shellcheck(path: Path) -> None:
    result = subprocess.run([SHELLCHECK, "--shell=bash", "--severity=style", str(path)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("script", sorted(p.name for p in SCRIPTS.glob("*.sh")))
def test_scripts_as_written_pass_shellcheck(script):
    shellcheck(SCRIPTS / script)


def host_for(overrides: dict) -> HostConfig:
    return host_config(settings_for("dev", overrides))


VARIANTS = {
    "vllm-7b": {},
    "sglang-7b": {"engine.name": "sglang"},
    "vllm-qwq-tp4": {"model": "QwQ-32B", "placement.instanceType": "ecs.gn7i-4x.8xlarge"},
    "vllm-r1-h20": {
        "model": "DeepSeek-R1",
        "placement.instanceType": "ecs.ebmgn8v.48xlarge",
        "engine.extraArgs": ["--enable-expert-parallel"],
    },
    "vllm-r1-h20-weights-from-oss": {  # the biggest user-data: fetch-oss.py too
        "model": "DeepSeek-R1",
        "placement.instanceType": "ecs.ebmgn8v.48xlarge",
        "ecs.weights.source": "oss",
        "ecs.weights.bucket": "my-models",
    },
    "vllm-r1-h20-weights-streamed": {  # the AWS config, the credential process and the env file instead
        "model": "DeepSeek-R1",
        "placement.instanceType": "ecs.ebmgn8v.48xlarge",
        "ecs.weights.source": "oss",
        "ecs.weights.bucket": "my-models",
        "ecs.weights.load": "stream",
        "engine.image": VLLM_IMAGE.value,
    },
    # The stack's own import, streamed, with the longest bucket name OSS allows (63): the wait's setting too.
    "vllm-r1-h20-imported-streamed": {
        "model": "DeepSeek-R1",
        "placement.instanceType": "ecs.ebmgn8v.48xlarge",
        "ecs.weights.source": "import",
        "ecs.weights.bucket": "b" * 63,
        "ecs.weights.load": "stream",
        "engine.image": VLLM_IMAGE.value,
    },
}


def test_a_compressed_file_in_the_user_data_unpacks_to_the_scripts_own_text(tmp_path):
    script = (SCRIPTS / "rrsa-credential-process.py").read_text()
    target = tmp_path / "out.py"
    snippet = write_compressed_file(str(target), script, "0644")
    assert snippet == write_compressed_file(str(target), script, "0644")  # no timestamp: a stable user-data
    done = subprocess.run(["bash", "-euo", "pipefail", "-c", snippet], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert target.read_text() == script and oct(target.stat().st_mode & 0o777) == "0o644"


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_rendered_user_data_passes_shellcheck_and_fits_the_ecs_limit(variant, tmp_path):
    user_data = render_user_data(host_for(VARIANTS[variant]))
    assert len(user_data.encode()) <= USER_DATA_LIMIT_BYTES
    path = tmp_path / "user-data.sh"
    path.write_text(user_data)
    shellcheck(path)


def test_rendered_readiness_command_passes_shellcheck(tmp_path):
    path = tmp_path / "ready.sh"
    path.write_text(
        render_ready_command(
            api_port=8000, api_key_env="VLLM_API_KEY", secret_parameter="llm-dev-api-key", timeout_seconds=2820
        )
    )
    shellcheck(path)


def test_rendered_readiness_command_with_tls_passes_shellcheck_and_quotes_only_pem(tmp_path):
    from harness import TEST_CERTIFICATE

    kwargs = dict(api_port=8000, api_key_env="VLLM_API_KEY", secret_parameter="k", timeout_seconds=60)
    text = render_ready_command(**kwargs, tls_certificate=TEST_CERTIFICATE, tls_key_parameter="llm-dev-tls-key")
    assert "TLS_KEY_VALUE='{{oos-secret:llm-dev-tls-key}}'" in text and "TLS_DIR=/etc/llm-serving/gateway/tls" in text
    path = tmp_path / "ready-tls.sh"
    path.write_text(text)
    shellcheck(path)
    # The certificate sits in single quotes: anything but PEM's alphabet could end them.
    with pytest.raises(ValueError, match="PEM"):
        render_ready_command(**kwargs, tls_certificate=TEST_CERTIFICATE + "'; rm -rf /", tls_key_parameter="x")
    with pytest.raises(ValueError, match="together"):
        render_ready_command(**kwargs, tls_certificate=TEST_CERTIFICATE)


def test_the_tls_section_installs_certificate_and_key_for_the_gateway_user(tmp_path):
    """ready.sh's TLS branch, run for real with its helper: both files land 0400 in the TLS directory."""
    script = (SCRIPTS / "ready.sh").read_text()
    helper = script[script.index("install_secret() {") : script.index("install -d -m 0700 /etc/llm-serving")]
    branch = script[script.index("scheme=http") : script.index('echo "waiting for the host bootstrap')]
    tls_dir = tmp_path / "tls"
    program = "\n".join(
        [
            "set -euo pipefail",
            "chown() { :; }",  # not root here
            helper,
            f"TLS_DIR={tls_dir}",
            "TLS_CERT_VALUE=$'-----BEGIN CERTIFICATE-----\\nQUJD\\n-----END CERTIFICATE-----'",
            "TLS_KEY_VALUE=$'-----BEGIN PRIVATE KEY-----\\nREVG\\n-----END PRIVATE KEY-----'",
            "GATEWAY_UID=65534",
            "gateway_changed=false",
            branch,
            'echo "$scheme $gateway_changed ${tls_check[*]}"',
        ]
    )
    out = subprocess.run(["bash", "-c", program], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["https", "true", "--insecure"]
    assert (tls_dir / "key.pem").read_text() == "-----BEGIN PRIVATE KEY-----\nREVG\n-----END PRIVATE KEY-----\n"
    assert (tls_dir / "cert.pem").read_text().startswith("-----BEGIN CERTIFICATE-----\nQUJD")
    assert oct((tls_dir / "key.pem").stat().st_mode & 0o777) == "0o400"


def test_config_values_survive_shell_quoting(tmp_path):
    """bash reads back exactly the values Python wrote, including an engine argument config would refuse."""
    host = host_for({"engine.name": "sglang"})
    hostile = dataclasses.replace(host.engine, argv=(*host.engine.argv, "--served-model-name", 'it\'s "quoted" $HOME'))
    host = dataclasses.replace(host, engine=hostile)
    conf = tmp_path / "serving.conf"
    conf.write_text(render_conf(host))
    printed = subprocess.run(
        ["bash", "-c", f'source {conf}; printf "%s\\n" "$ENGINE_CMD" "$MODEL_DIR"'],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.splitlines()
    assert printed == [host.engine.shell(), model_dir(host.model)]


def test_user_data_installs_both_units_and_starts_the_bootstrap_without_waiting():
    run = run_stack("dev")
    text = base64.b64decode(unwrap(run.one("alicloud:ecs/instance:Instance").inputs)["userData"]).decode()
    for path in (
        "/etc/systemd/system/llm-bootstrap.service",
        "/etc/systemd/system/llm-serving.service",
        "/usr/local/bin/llm-serving-run",
    ):
        assert f"cat > {path} <<'LLM_SERVING_EOF'" in text
    # The largest static scripts go compressed (ECS's 32 KB of user-data); they unpack to the shipped text.
    for name in ("bootstrap.sh", "install-driver.sh"):
        assert write_compressed_file(f"/usr/local/lib/llm-serving/{name}", script(name), "0755") in text
    assert text.rstrip().endswith("systemctl start --no-block llm-bootstrap.service")
    assert "MODEL_ID=deepseek-ai/DeepSeek-R1-Distill-Qwen-7B" in text and "docker pull" in script("bootstrap.sh")


def test_engine_unit_restarts_and_stops_gracefully():
    unit = (SCRIPTS / "llm-serving.service").read_text()
    assert "Restart=always" in unit and "docker stop --time 120" in unit
    runner = (SCRIPTS / "serving-run.sh").read_text()
    assert "--ipc=host" in runner and "--env-file /etc/llm-serving/secret.env" in runner
    assert ':ro"' in runner  # the model is mounted read-only


def test_bootstrap_downloads_in_parallel_with_host_setup():
    script = (SCRIPTS / "bootstrap.sh").read_text()
    start = script.index("download_model >")
    assert start < script.index("\ninstall_driver\n") < script.index('wait "$download_pid"')


def test_rendered_jump_host_scripts_pass_shellcheck_and_fit_the_ecs_limit(tmp_path):
    from components.alibaba.jump_host import render_kubeconfig_install, render_setup

    setup = render_setup("1.33")
    assert len(setup.encode()) <= USER_DATA_LIMIT_BYTES
    for name, text in (("setup.sh", setup), ("install.sh", render_kubeconfig_install("c-1", "cn-hangzhou", "r-1"))):
        path = tmp_path / name
        path.write_text(text)
        shellcheck(path)


def test_the_kubeconfig_fetcher_asks_for_the_private_endpoint_with_the_instance_role():
    text = (SCRIPTS / "llm-kubeconfig.py").read_text()
    assert "private_ip_address=True" in text and 'type="ecs_ram_role"' in text
    compile(text, "llm-kubeconfig.py", "exec")


@pytest.mark.parametrize(("status", "passes"), [("404", True), ("401", True), ("200", False), ("000", False)])
def test_the_readiness_check_of_invocations_takes_a_refusal_by_the_gateway_only(status, passes):
    """Keyless POST /invocations: 404 where the gateway does not forward it, 401 where gateway.extraRoutes does
    (behind the key); anything else means a keyless completion or no gateway, and fails the readiness."""
    script = (SCRIPTS / "ready.sh").read_text()
    start = script.index("status=$(curl", script.index("# vLLM's own key check skips /invocations"))
    check = script[start : script.index("header_file=$(mktemp)")]
    program = "\n".join(
        [
            "set -euo pipefail",
            'fail() { echo "FAIL: $*"; exit 1; }',
            f"curl() {{ printf {status}; }}",
            "tls_check=()",
            "base=http://127.0.0.1:8000",
            check,
            "echo passed",
        ]
    )
    result = subprocess.run(["bash", "-c", program], capture_output=True, text=True)
    assert (result.returncode == 0 and result.stdout.strip() == "passed") is passes, result.stdout


def test_an_invocations_route_is_behind_the_key_so_the_host_still_gets_ready():
    from components.alibaba.host_scripts import gateway_config
    from core.gateway import render_nginx_conf

    route = {"path": "/invocations", "method": "POST", "reason": "a SageMaker-style client"}
    host = host_for({"gateway.extraRoutes": [route], "engine.image": VLLM_IMAGE.value})  # 0.14.1 or newer only
    conf = render_nginx_conf(gateway_config(host))
    block = conf[conf.index("location = /invocations {") :]
    assert block.index("return 401") < block.index("proxy_pass")  # keyless: 401, which ready.sh takes


def test_the_readiness_command_writes_the_gateways_key_file_as_core_gateway_renders_it():
    from core.gateway import auth_map_entry

    script = (SCRIPTS / "ready.sh").read_text()
    line = 'printf \'"Bearer %s" 1;\\n\' "$API_KEY_VALUE"'
    assert line in script
    key = "k3y-Of.48_characters~abcdefghijklmnopqrstuvwxyz+/="
    printed = subprocess.run(
        ["bash", "-c", line], env={"API_KEY_VALUE": key}, capture_output=True, text=True, check=True
    ).stdout
    assert printed == auth_map_entry(key)


def test_the_gateway_runs_read_only_without_root_as_core_gateway_starts_it():
    from components.alibaba.host_scripts import GATEWAY_CONF
    from core.gateway import nginx_argv

    runner = (SCRIPTS / "gateway-run.sh").read_text()
    assert '--entrypoint nginx \\\n  "$GATEWAY_IMAGE" -c "$GATEWAY_CONF" -e stderr' in runner
    assert nginx_argv(GATEWAY_CONF)[1:] == ["-c", GATEWAY_CONF, "-e", "stderr"]
    for flag in ("--read-only", '--user "$GATEWAY_USER"', "--cap-drop ALL", "--network host", "--stop-signal SIGQUIT"):
        assert flag in runner
    assert ':ro"' in runner.split("api-key.map")[1][:40]


def test_shutdown_drains_the_gateway_first_and_lets_the_engine_finish_before_docker_kills_it():
    from components.alibaba.host_scripts import ENGINE_SHUTDOWN_SECONDS, ENGINE_STOP_SECONDS
    from core.gateway import GatewayConfig

    serving = (SCRIPTS / "llm-serving.service").read_text()
    gateway = (SCRIPTS / "llm-gateway.service").read_text()
    assert f"docker stop --time {ENGINE_STOP_SECONDS} " in serving and ENGINE_SHUTDOWN_SECONDS < ENGINE_STOP_SECONDS
    assert "After=docker.service llm-serving.service" in gateway  # stopped before the engine
    drain = GatewayConfig.__dataclass_fields__["graceful_shutdown_seconds"].default
    assert f"docker stop --time {drain + 10} " in gateway


@pytest.mark.skipif(not Path("/usr/sbin/nginx").exists(), reason="Debian nginx is not installed")
def test_the_hosts_rendered_gateway_conf_passes_nginx_t(tmp_path):
    from test_gateway import nginx_test

    from components.alibaba.host_scripts import GATEWAY_KEY_FILE, gateway_config
    from core.gateway import auth_map_entry, render_nginx_conf

    conf = render_nginx_conf(gateway_config(host_for({})))
    key_file = tmp_path / "api-key.map"
    key_file.write_text(auth_map_entry("k3y-Of.48_characters~abcdefghijklmnopqrstuvwxyz+/="))
    path = tmp_path / "nginx.conf"
    path.write_text(conf.replace(GATEWAY_KEY_FILE, str(key_file)))
    result = nginx_test(path)
    assert result.returncode == 0, result.stderr


def _driver_run(tmp_path, prebuilt: bool, manager_versions: list[str], fabric: str = "true", flavour: str = "open"):
    """install-driver.sh against stub apt tools; returns (exit code, output, the apt calls made)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    log = tmp_path / "calls.log"
    stubs = {
        "uname": "echo 5.15.0-105-generic",
        "apt-cache": (
            'echo "apt-cache $*" >>"$LOG"\n'
            'case "$1" in\n'
            f'  show) [ "{str(prebuilt).lower()}" = true ] ;;\n'
            "  madison) for v in $MANAGER_VERSIONS; do\n"
            '    echo "$2 | $v | http://mirrors.cloud.aliyuncs.com jammy"; done ;;\n'
            "esac"
        ),
        "apt-get": 'echo "apt-get $*" >>"$LOG"',
        "apt-mark": 'echo "apt-mark $*" >>"$LOG"',
        "dpkg-query": 'echo "570.172.08-0ubuntu0.22.04.1"',
    }
    for name, body in stubs.items():
        stub = bin_dir / name
        stub.write_text(f"#!/bin/bash\n{body}\n")
        stub.chmod(0o755)
    result = subprocess.run(
        ["bash", str(SCRIPTS / "install-driver.sh"), "570", flavour, fabric],
        env={"PATH": f"{bin_dir}:/usr/bin:/bin", "LOG": str(log), "MANAGER_VERSIONS": " ".join(manager_versions)},
        capture_output=True,
        text=True,
    )
    calls = log.read_text().splitlines() if log.exists() else []
    return result.returncode, result.stdout + result.stderr, calls


def test_the_driver_uses_prebuilt_modules_for_the_running_kernel_and_fabric_manager_of_its_version(tmp_path):
    code, output, calls = _driver_run(tmp_path, prebuilt=True, manager_versions=["575.1-1", "570.172.08-0ubuntu1"])
    assert code == 0, output
    assert (
        "apt-get install -y --no-install-recommends linux-modules-nvidia-570-server-open-5.15.0-105-generic "
        "nvidia-headless-no-dkms-570-server-open nvidia-utils-570-server"
    ) in calls
    assert "apt-get install -y --no-install-recommends nvidia-fabricmanager-570=570.172.08-0ubuntu1" in calls
    assert (
        "apt-mark hold nvidia-headless-no-dkms-570-server-open nvidia-utils-570-server nvidia-fabricmanager-570"
        in calls
    )


def test_without_prebuilt_modules_the_driver_builds_with_the_kernels_headers(tmp_path):
    code, output, calls = _driver_run(
        tmp_path, prebuilt=False, manager_versions=[], fabric="false", flavour="proprietary"
    )
    assert code == 0, output
    assert (
        "apt-get install -y --no-install-recommends linux-headers-5.15.0-105-generic nvidia-dkms-570-server "
        "nvidia-headless-570-server nvidia-utils-570-server"
    ) in calls
    assert not any("fabricmanager" in c for c in calls)


def test_a_fabric_manager_of_another_version_is_never_installed(tmp_path):
    code, output, calls = _driver_run(tmp_path, prebuilt=True, manager_versions=["575.51.03-0ubuntu1"])
    assert code == 1 and "Fabric Manager would refuse a mismatch" in output
    assert not any("fabricmanager-570=" in c for c in calls)


def test_v100_hosts_get_the_proprietary_driver_and_others_the_open_one():
    assert "DRIVER_FLAVOUR=open" in render_conf(host_for({}))
    assert "DRIVER_FLAVOUR=proprietary" in render_conf(host_for({"placement.instanceType": "ecs.gn6e-c12g1.3xlarge"}))


# --- bootstrap.sh: every step skips itself when its result is there (a prepared image) ---------------------------


def _bootstrap_run(
    tmp_path,
    *,
    prepared: bool,
    mode: str = "",
    weights: str = "modelscope",
    load: str = "copy",
    toolkit_waits_for_pull: bool = False,
    conf_extra: str = "",
    fetch_oss: str = "exit 0",
):
    """bootstrap.sh against stub system tools. `prepared`: the driver, Docker, toolkit, packages and images are
    already installed (a host from ecs.preparedImage); otherwise apt "installs" them (the stubs then appear).
    `toolkit_waits_for_pull`: the toolkit's install finishes only once the engine image's pull has begun (at most
    10 s), and leaves `toolkit-beside-pull` in the installed directory if it had. `conf_extra`: more conf lines;
    `fetch_oss`: the body of the fetch-oss.py stub.
    Returns (exit code, output, calls made, the state directory)."""
    bin_dir, lib, state = tmp_path / "bin", tmp_path / "lib", tmp_path / "state"
    for d in (bin_dir, lib):
        d.mkdir(exist_ok=True)
    log = tmp_path / "calls.log"
    installed = tmp_path / "installed"
    installed.mkdir(exist_ok=True)

    def stub(directory, name, body):
        path = directory / name
        path.write_text(f'#!/bin/bash\necho "{name} $*" >>"$LOG"\n{body}\n')
        path.chmod(0o755)

    present_tools = {
        "docker": "ref=${*: -1}; ref=${ref//\\//_}\n"
        'if [ "$1 $2" = "image inspect" ]; then [ -e "$INSTALLED/image-$ref" ]; exit; fi\n'
        'if [ "$1" = info ]; then [ -e "$INSTALLED/runtime" ] && echo \'{"nvidia":{}}\' || echo \'{"runc":{}}\'\n'
        "  exit 0\nfi\n"
        '[ "$1" = pull ] && touch "$INSTALLED/image-$ref"; exit 0',
        "nvidia-ctk": '[ "$1 $2" = "runtime configure" ] && touch "$INSTALLED/runtime"; exit 0',
    }
    waits = (
        'for _ in $(seq 100); do grep -q "^docker pull engine/image:1" "$LOG" && '
        'touch "$INSTALLED/toolkit-beside-pull" && break; /bin/sleep 0.1; done; '
        if toolkit_waits_for_pull
        else ""
    )
    # apt-get install makes the packages (and their commands) appear; dpkg-query reports what is there.
    stub(
        bin_dir,
        "apt-get",
        'if [ "$1" = install ]; then for p in "$@"; do touch "$INSTALLED/pkg-$p"; '
        f"case $p in docker.io) cp {tmp_path}/tools/docker $BIN/docker ;; "
        f"nvidia-container-toolkit) {waits}cp {tmp_path}/tools/nvidia-ctk $BIN/nvidia-ctk ;; esac; done; fi",
    )
    stub(bin_dir, "dpkg-query", 'for p in "$@"; do :; done; [ -e "$INSTALLED/pkg-$p" ] && echo "install ok installed"')
    stub(bin_dir, "nvidia-smi", '[ -e "$INSTALLED/driver" ]')
    for name in ("systemctl", "modprobe", "curl", "gpg", "cloud-init", "sleep"):
        stub(bin_dir, name, "exit 0")
    stub(lib, "install-driver.sh", 'touch "$INSTALLED/driver" "$INSTALLED/pkg-nvidia-utils-570-server"')
    stub(lib, "fetch-model.sh", "exit 0")
    stub(lib, "fetch-oss.py", fetch_oss)
    stub(bin_dir, "python3", 'exec "$@"')
    tools = tmp_path / "tools"
    tools.mkdir(exist_ok=True)
    for name, body in present_tools.items():
        stub(tools, name, body)
    if prepared:
        for name in present_tools:
            (bin_dir / name).write_bytes((tools / name).read_bytes())
            (bin_dir / name).chmod(0o755)
        for p in ("python3-pip", "curl", "ca-certificates", "gnupg", "docker.io", "nvidia-utils-570-server"):
            (installed / f"pkg-{p}").touch()
        (installed / "driver").touch()
        (installed / "runtime").touch()
        (installed / "image-engine_image:1").touch()
        (installed / "image-gateway_image:1").touch()
    conf = tmp_path / "serving.conf"
    conf.write_text(
        f"MODEL_ID=org/model\nMODEL_REVISION=master\nMODEL_DIR={tmp_path}/model\nENGINE_IMAGE=engine/image:1\n"
        "GATEWAY_IMAGE=gateway/image:1\nDRIVER_BRANCH=570\nDRIVER_FLAVOUR=open\nFABRIC_MANAGER=false\n"
        "NVIDIA_TOOLKIT_REPO=https://example.invalid\nPIP_INDEX_URL=x\nMODELSCOPE_VERSION=1\n"
        f"MODELSCOPE_HUB_VERSION=1\nWEIGHTS_SOURCE={weights}\nWEIGHTS_BUCKET=b\nWEIGHTS_PREFIX=models\n"
        f"WEIGHTS_PARALLEL=16\nOSS_ENDPOINT=oss-cn-hangzhou-internal.aliyuncs.com\nWEIGHTS_LOAD={load}\n{conf_extra}"
    )
    # The docker stub names an image's file after its reference with '/' as '_'.
    env = {
        "PATH": f"{bin_dir}:/usr/bin:/bin",
        "LOG": str(log),
        "BIN": str(bin_dir),
        "INSTALLED": str(installed),
        "LLM_SERVING_CONF": str(conf),
        "LLM_SERVING_STATE": str(state),
        "LLM_SERVING_LIB": str(lib),
        "LLM_DOCKER_DAEMON_JSON": str(tmp_path / "docker" / "daemon.json"),
    }
    args = ["bash", str(SCRIPTS / "bootstrap.sh"), *([mode] if mode else [])]
    result = subprocess.run(args, env=env, capture_output=True, text=True)
    calls = log.read_text().splitlines() if log.exists() else []
    return result.returncode, result.stdout + result.stderr, calls, state


def test_a_host_from_the_prepared_image_installs_nothing_and_pulls_nothing(tmp_path):
    code, output, calls, state = _bootstrap_run(tmp_path, prepared=True)
    assert code == 0, output
    assert not [c for c in calls if c.startswith(("apt-get", "docker pull"))], calls
    assert not any(c.startswith("install-driver.sh") for c in calls)
    assert "systemctl restart docker" not in calls  # the runtime is configured in the image
    assert "driver: loaded already" in output and "image engine/image:1: present already" in output
    assert any(c.startswith("fetch-model.sh org/model master") for c in calls)  # the weights still come
    assert (state / "bootstrap.done").exists()


def test_a_fresh_host_installs_everything_once_and_a_rerun_skips_it(tmp_path):
    code, output, calls, _ = _bootstrap_run(tmp_path, prepared=False)
    assert code == 0, output
    assert calls.count("apt-get update") == 2  # the base packages, then the toolkit's repository
    for wanted in ("install-driver.sh 570 open false", "docker pull engine/image:1", "docker pull gateway/image:1"):
        assert wanted in calls, calls
    assert any(c.startswith("apt-get install") and "docker.io" in c for c in calls)
    assert any(c.startswith("apt-get install") and "nvidia-container-toolkit" in c for c in calls)


def test_docker_starts_pulling_more_layers_at_once_than_its_default_and_keeps_an_existing_config(tmp_path):
    daemon = tmp_path / "docker" / "daemon.json"
    (tmp_path / "fresh").mkdir()
    code, output, _, _ = _bootstrap_run(tmp_path / "fresh", prepared=False)
    assert code == 0, output
    written = json.loads((tmp_path / "fresh" / "docker" / "daemon.json").read_text())
    assert written == {"max-concurrent-downloads": durations.HOST_PULL_CONNECTIONS.value}  # what the model uses
    daemon.parent.mkdir(parents=True)
    daemon.write_text('{"data-root": "/data"}')
    code, output, _, _ = _bootstrap_run(tmp_path, prepared=False)
    assert code == 0, output
    assert json.loads(daemon.read_text()) == {"data-root": "/data"}


def test_the_pulls_run_beside_the_toolkit_install_and_docker_restarts_for_its_runtime_only_after_them(tmp_path):
    code, output, calls, state = _bootstrap_run(tmp_path, prepared=False, toolkit_waits_for_pull=True)
    assert code == 0, output
    assert (tmp_path / "installed" / "toolkit-beside-pull").exists(), calls  # the pull had begun
    last_pull = max(i for i, c in enumerate(calls) if c.startswith("docker pull"))
    configure = calls.index("nvidia-ctk runtime configure --runtime=docker")
    assert last_pull < configure < calls.index("systemctl restart docker")
    assert calls.count("systemctl restart docker") == 1
    # Run again unfinished (as after the driver's reboot): Docker has its runtime, and is not restarted again.
    (state / "bootstrap.done").unlink()
    (tmp_path / "calls.log").unlink()
    code, output, calls, _ = _bootstrap_run(tmp_path, prepared=False)
    assert code == 0, output
    assert "container runtime: nvidia configured already" in output
    assert "nvidia-ctk runtime configure --runtime=docker" not in calls, calls


def test_weights_from_oss_skip_the_downloaders_packages(tmp_path):
    code, output, calls, _ = _bootstrap_run(tmp_path, prepared=True, weights="oss")
    assert code == 0, output
    copy = next(c for c in calls if c.startswith("fetch-oss.py"))
    assert "--bucket b --prefix models/org/model --endpoint oss-cn-hangzhou-internal.aliyuncs.com" in copy
    assert "--parallel 16 --marker org/model@master" in copy
    assert not any(c.startswith("fetch-model.sh") for c in calls)


def test_streamed_weights_are_not_copied_the_engine_reads_the_bucket_once_its_import_is_checked(tmp_path):
    code, output, calls, state = _bootstrap_run(tmp_path, prepared=True, weights="oss", load="stream")
    assert code == 0, output
    [check] = [c for c in calls if c.startswith("fetch-oss.py")]  # the only call: a check, no copy
    assert "--marker org/model@master --wait-seconds 0 --check-only" in check, check
    assert not any(c.startswith("fetch-model.sh") for c in calls), calls
    assert "weights: streamed by the engine from oss://b/models/org/model/ (no copy)" in output
    assert (state / "bootstrap.done").exists()


@pytest.mark.parametrize("load", ["copy", "stream"])
def test_the_host_waits_as_long_as_its_config_says_for_the_stacks_own_import(tmp_path, load):
    """HostConfig.weights_wait_seconds reaches fetch-oss.py, for the copy and for the stream's check; an older conf
    without it waits for nothing."""
    host = dataclasses.replace(host_for({}), weights_wait_seconds=1800)
    [line] = [line for line in render_conf(host).splitlines() if line.startswith("WEIGHTS_WAIT_SECONDS=")]
    assert line == "WEIGHTS_WAIT_SECONDS=1800" and "WEIGHTS_WAIT_SECONDS=0\n" in render_conf(host_for({}))
    code, output, calls, _ = _bootstrap_run(tmp_path, prepared=True, weights="oss", load=load, conf_extra=line + "\n")
    assert code == 0, output
    [fetch] = [c for c in calls if c.startswith("fetch-oss.py")]
    waited = int(fetch.split("--wait-seconds ")[1].split()[0])
    assert "--marker org/model@master --wait-seconds" in fetch and 1795 <= waited <= 1800, fetch
    assert ("--check-only" in fetch) == (load == "stream")
    (tmp_path / "calls.log").unlink()
    (tmp_path / "state" / "bootstrap.done").unlink()
    code, output, calls, _ = _bootstrap_run(tmp_path, prepared=True, weights="oss", load=load)
    assert code == 0, output
    assert "--wait-seconds 0" in next(c for c in calls if c.startswith("fetch-oss.py"))


def test_a_retried_fetch_waits_only_for_what_is_left_of_the_hosts_wait(tmp_path):
    """bootstrap.sh retries fetch-oss.py on failure: each attempt waits for the import only until the deadline set
    when the weights step began, so retries never stretch the wait past WEIGHTS_WAIT_SECONDS."""
    clock = tmp_path / "clock"
    clock.write_text("1000")
    # `date +%s` advances 700 s per call; other formats (the step log) are the real date's.
    date = tmp_path / "bin" / "date"
    date.parent.mkdir(parents=True, exist_ok=True)
    date.write_text(
        f'#!/bin/bash\nif [ "$1" = +%s ]; then t=$(cat {clock}); echo "$t"; echo $((t + 700)) >{clock}; '
        'else exec /bin/date "$@"; fi\n'
    )
    date.chmod(0o755)
    fails_twice = '[ -e "$INSTALLED/tried-2" ] && exit 0; [ -e "$INSTALLED/tried-1" ] && touch "$INSTALLED/tried-2"; '
    fails_twice += 'touch "$INSTALLED/tried-1"; exit 1'
    code, output, calls, _ = _bootstrap_run(
        tmp_path, prepared=True, weights="oss", conf_extra="WEIGHTS_WAIT_SECONDS=1800\n", fetch_oss=fails_twice
    )
    assert code == 0, output
    waits = [int(c.split("--wait-seconds ")[1].split()[0]) for c in calls if c.startswith("fetch-oss.py")]
    assert waits == [1100, 400, 0], calls  # deadline 1000 + 1800; attempts at 1700, 2400 and 3100


def _serving_run(tmp_path, conf: str) -> list[str]:
    """serving-run.sh against a docker stub that records its arguments, one per line."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(parents=True)
    args = tmp_path / "docker-args"
    docker = bin_dir / "docker"
    docker.write_text(f'#!/bin/bash\n[ "$1" = rm ] && exit 0\nprintf "%s\\n" "$@" >{args}\n')
    docker.chmod(0o755)
    (tmp_path / "serving.conf").write_text(conf)
    env = {"PATH": f"{bin_dir}:/usr/bin:/bin", "LLM_SERVING_CONF": str(tmp_path / "serving.conf")}
    done = subprocess.run(["bash", str(SCRIPTS / "serving-run.sh")], env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    return args.read_text().splitlines()


def test_the_streaming_engine_gets_the_streamers_env_and_config_read_only_and_no_model_directory(tmp_path):
    stream = host_for(
        {
            "ecs.weights.source": "oss",
            "ecs.weights.bucket": "my-models",
            "ecs.weights.load": "stream",
            "engine.image": VLLM_IMAGE.value,
        }
    )
    argv = _serving_run(tmp_path / "stream", render_conf(stream))
    assert argv[argv.index("--env-file", argv.index("/etc/llm-serving/secret.env")) + 1] == STREAM_ENV_FILE
    assert f"{STREAM_DIR}:{STREAM_MOUNT}:ro" in argv
    assert not any(a.startswith(MODEL_ROOT) for a in argv)
    assert argv[argv.index("--network") + 1] == "host"  # the metadata server 100.100.100.200, as from the host
    command = argv[-1]
    assert "--load-format runai_streamer" in command and " s3://my-models/models/" in command
    copy = host_for({"ecs.weights.source": "oss", "ecs.weights.bucket": "my-models"})  # the default: a copy
    argv = _serving_run(tmp_path / "copy", render_conf(copy))
    assert f"{MODEL_ROOT}:{MODEL_ROOT}:ro" in argv and STREAM_ENV_FILE not in argv
    assert "runai_streamer" not in argv[-1]


def test_the_image_builder_mode_installs_without_a_gpu_and_downloads_nothing(tmp_path):
    code, output, calls, state = _bootstrap_run(tmp_path, prepared=False, mode="--prepare-image")
    assert code == 0, output
    assert "install-driver.sh 570 open false" in calls and "docker pull engine/image:1" in calls
    assert not any(c.startswith(("modprobe", "fetch-model.sh", "fetch-oss.py", "systemctl reboot")) for c in calls)
    assert "cloud-init clean --logs" in calls and not state.exists()  # the image starts like a fresh host


# --- fetch-oss.py: the weights from a bucket in the region, with the instance role, in parallel ranges ------------


def _sdk_v4_authorization(url: str, key: str, stamp: str, credentials: tuple, region: str) -> str:
    """The Authorization header Alibaba's OSS SDK (alibabacloud-oss-v2) gives a GET of `url` at `stamp`."""
    import datetime

    from alibabacloud_oss_v2.signer.v4 import SignerV4
    from alibabacloud_oss_v2.types import Credentials, HttpRequest, SigningContext

    bucket = urllib.parse.urlparse(url).netloc.split(".", 1)[0]
    request = HttpRequest("GET", url, headers={})
    when = datetime.datetime.strptime(stamp, "%Y%m%dT%H%M%SZ").replace(tzinfo=datetime.UTC)
    context = SigningContext(
        product="oss",
        region=region,
        bucket=bucket,
        key=key,
        request=request,
        credentials=Credentials(*credentials),
        signing_time=when,
    )
    SignerV4().sign(context)
    return request.headers["Authorization"]


def test_the_oss_v4_signature_is_the_one_alibabas_sdk_computes():
    import datetime

    spec = importlib.util.spec_from_file_location("fetch_oss_sign", SCRIPTS / "fetch-oss.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    creds = {"AccessKeyId": "STS.id", "AccessKeySecret": "secret/+=", "SecurityToken": "tok"}
    now = datetime.datetime(2026, 12, 2, 1, 2, 3, tzinfo=datetime.UTC)
    host = "https://bkt.oss-cn-hangzhou-internal.aliyuncs.com"
    cases = [
        ("", {"prefix": "models/org/m/", "marker": "models/org/m/a b+c.bin", "max-keys": "1000"}),
        ("", {"prefix": "models/org/m/", "marker": "", "max-keys": "1000"}),  # the first page: no marker
        ("models/org/m/model-00001-of-00002.safetensors", {}),
        ("models/org/m/sub dir/配置 (1).json", {}),
    ]
    for key, params in cases:
        query = module.encoded_query(params)
        url = f"{host}/{urllib.parse.quote(key)}" + (f"?{query}" if query else "")
        ours = module.v4_headers(creds, "cn-hangzhou", "bkt", key, query, now)
        assert ours["x-oss-date"] == "20261202T010203Z"
        sdk = _sdk_v4_authorization(url, key, ours["x-oss-date"], ("STS.id", "secret/+=", "tok"), "cn-hangzhou")
        assert ours["Authorization"] == sdk, (key, params)
    assert module.endpoint_region("oss-cn-hangzhou-internal.aliyuncs.com") == "cn-hangzhou"
    assert module.endpoint_region("oss-ap-southeast-1.aliyuncs.com") == "ap-southeast-1"
    with pytest.raises(SystemExit, match="not an OSS endpoint"):
        module.endpoint_region("bkt.s3.amazonaws.com")


class _FakeOss:
    """The metadata service and one bucket, answering urllib requests as OSS and ECS would."""

    def __init__(self, objects: dict[str, bytes], marker: str | None = None, arrivals: dict | None = None):
        """`arrivals`: {n: objects} put in the bucket just before the n-th ListObjects (an import going on)."""
        legacy = {"models/org/m/.download-complete": marker.encode()} if marker else {}  # fetch-model.sh's marker
        self.objects = {**objects, **legacy}
        self.requests = []
        self.arrivals, self.lists = arrivals or {}, 0

    def urlopen(self, request, timeout=None):
        import io
        import urllib.parse

        url = request if isinstance(request, str) else request.full_url
        headers = {} if isinstance(request, str) else dict(request.header_items())
        self.requests.append((url, headers))
        if url == "http://100.100.100.200/latest/meta-data/ram/security-credentials/":
            return io.BytesIO(b"llm-dev-host-a1b2c3d4")
        if url.startswith("http://100.100.100.200/"):
            body = {
                "AccessKeyId": "STS.id",
                "AccessKeySecret": "s",
                "SecurityToken": "tok",
                "Expiration": "2099-01-01T00:00:00Z",
            }
            return io.BytesIO(json.dumps(body).encode())
        parsed = urllib.parse.urlparse(url)
        assert parsed.netloc == "bkt.oss-cn-hangzhou-internal.aliyuncs.com"
        key = urllib.parse.unquote(parsed.path[1:])
        # Signed as Alibaba's OSS SDK signs it (V4), at the time the request says, with the role's credentials.
        assert headers["X-oss-security-token"] == "tok"
        assert headers["Authorization"] == _sdk_v4_authorization(
            url, key, headers["X-oss-date"], ("STS.id", "s", "tok"), "cn-hangzhou"
        )
        if not key:
            self.lists += 1
            self.objects.update(self.arrivals.get(self.lists, {}))
            prefix = urllib.parse.parse_qs(parsed.query)["prefix"][0]
            items = "".join(
                f"<Contents><Key>{k}</Key><Size>{len(v)}</Size></Contents>"
                for k, v in sorted(self.objects.items())
                if k.startswith(prefix)
            )
            return io.BytesIO(f"<ListBucketResult><IsTruncated>false</IsTruncated>{items}</ListBucketResult>".encode())
        data = self.objects[key]
        if "Range" in headers:
            start, end = (int(x) for x in headers["Range"].removeprefix("bytes=").split("-"))
            data = data[start : end + 1]
        return io.BytesIO(data)


def _fetch_oss(tmp_path, monkeypatch, fake, chunk=None, check_only=False, extra=()):
    import importlib.util

    spec = importlib.util.spec_from_file_location("fetch_oss", SCRIPTS / "fetch-oss.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    monkeypatch.setattr(module.urllib.request, "urlopen", fake.urlopen)
    if chunk:
        monkeypatch.setattr(module, "CHUNK", chunk)
    argv = [
        "fetch-oss.py",
        "--bucket",
        "bkt",
        "--prefix",
        "models/org/m",
        "--endpoint",
        "oss-cn-hangzhou-internal.aliyuncs.com",
        "--parallel",
        "4",
        "--marker",
        "org/m@master",
        *(["--check-only"] if check_only else []),
        *extra,
        str(tmp_path / "m"),
    ]
    monkeypatch.setattr(sys, "argv", argv)
    return module.main()


def test_the_weights_come_from_the_bucket_in_ranges_with_the_roles_credentials(tmp_path, monkeypatch):
    shard = bytes(range(256)) * 41  # 10,496 bytes: several ranges of 1,000
    fake = _FakeOss(
        {"models/org/m/model-00001.safetensors": shard, "models/org/m/sub/config.json": b"{}"}, "org/m@master"
    )
    assert _fetch_oss(tmp_path, monkeypatch, fake, chunk=1000) == 0
    assert (tmp_path / "m/model-00001.safetensors").read_bytes() == shard
    assert (tmp_path / "m/sub/config.json").read_bytes() == b"{}"
    assert (tmp_path / "m/.download-complete").read_text() == "org/m@master\n"
    ranges = [h.get("Range") for u, h in fake.requests if "model-00001" in u]
    assert len(ranges) == 11 and "bytes=10000-10495" in ranges
    fake.requests.clear()
    assert _fetch_oss(tmp_path, monkeypatch, fake) == 0  # a rerun: the local marker, no request
    assert fake.requests == []


def test_a_bucket_holding_another_revision_is_not_copied(tmp_path, monkeypatch):
    fake = _FakeOss({"models/org/m/a.bin": b"x"}, "org/m@v0")
    with pytest.raises(SystemExit, match=r"no finished import of 'org/m@master' .*naming 'org/m@v0'"):
        _fetch_oss(tmp_path, monkeypatch, fake)
    assert not (tmp_path / "m/a.bin").exists()


def _imported(files: dict[str, bytes], workers: int, revision: str = "master") -> dict[str, bytes]:
    from alibaba_fakes import imported_objects

    return imported_objects("models/org/m", files, "org/m", revision, workers)


SHARDS = {"model-00001.safetensors": b"a" * 3000, "model-00002.safetensors": b"b" * 2000, "config.json": b"{}"}


def test_an_import_by_the_alibaba_workers_is_copied_by_its_manifests(tmp_path, monkeypatch):
    """A bucket that acs or ack imported into serves an ecs host: the workers' manifests mark the import finished
    and list its files; an object outside them (an older revision's file) is not copied."""
    fake = _FakeOss({**_imported(SHARDS, workers=2), "models/org/m/stale.bin": b"old"})
    assert _fetch_oss(tmp_path, monkeypatch, fake, chunk=1000) == 0
    copied = sorted(str(p.relative_to(tmp_path / "m")) for p in (tmp_path / "m").rglob("*") if p.is_file())
    assert copied == [".download-complete", *sorted(SHARDS)]
    assert (tmp_path / "m/model-00001.safetensors").read_bytes() == SHARDS["model-00001.safetensors"]
    assert (tmp_path / "m/.download-complete").read_text() == "org/m@master\n"


@pytest.mark.parametrize(
    ("objects", "why"),
    [
        ({}, r"no import manifests and no \.download-complete"),
        (
            {k: v for k, v in _imported(SHARDS, 2).items() if not k.endswith("worker-1-of-2.json")},
            "1 of 2 import manifests",
        ),
        (_imported(SHARDS, 2, revision="v0"), "an import of org/m@v0"),
    ],
    ids=["empty", "a share unfinished", "another revision"],
)
def test_a_bucket_without_a_finished_import_of_the_revision_is_not_copied(tmp_path, monkeypatch, objects, why):
    with pytest.raises(SystemExit, match=f"holds no finished import of 'org/m@master' .*{why}"):
        _fetch_oss(tmp_path, monkeypatch, _FakeOss(objects))
    assert not (tmp_path / "m").exists() or not any((tmp_path / "m").iterdir())


def test_an_import_whose_files_are_missing_or_cut_short_is_not_copied(tmp_path, monkeypatch):
    objects = _imported(SHARDS, 1)
    del objects["models/org/m/config.json"]
    objects["models/org/m/model-00002.safetensors"] = b"b" * 1999
    with pytest.raises(SystemExit, match=r"misses files of its import: .*config.json \(missing bytes, 2 recorded\)"):
        _fetch_oss(tmp_path, monkeypatch, _FakeOss(objects))
    with pytest.raises(SystemExit, match=r"model-00002.safetensors \(1999 bytes, 2000 recorded\)"):
        _fetch_oss(tmp_path, monkeypatch, _FakeOss(objects))


def test_a_manifest_naming_a_path_outside_the_model_is_refused(tmp_path, monkeypatch):
    objects = _imported({"../../etc/cron.d/x": b"x"}, 1)
    with pytest.raises(SystemExit, match="manifest paths outside the model"):
        _fetch_oss(tmp_path, monkeypatch, _FakeOss(objects))
    assert not (tmp_path / "etc").exists()


def test_check_only_confirms_the_import_and_reads_no_weights(tmp_path, monkeypatch):
    """ecs.weights.load stream: the bootstrap checks the import before the engine streams it."""
    fake = _FakeOss(_imported(SHARDS, 2))
    assert _fetch_oss(tmp_path, monkeypatch, fake, check_only=True) == 0
    assert not any("safetensors" in url or "Range" in headers for url, headers in fake.requests)
    assert not (tmp_path / "m").exists()
    with pytest.raises(SystemExit, match="no finished import"):
        _fetch_oss(tmp_path, monkeypatch, _FakeOss(_imported(SHARDS, 2, revision="v0")), check_only=True)


def _one_share_of_two() -> dict[str, bytes]:
    """An import under way: worker 0 finished (its files and manifest), worker 1 not."""
    shares = _imported(SHARDS, 2)
    [manifest] = [k for k in shares if k.endswith("worker-0-of-2.json")]
    files = {f"models/org/m/{f['path']}" for f in json.loads(shares[manifest])["files"]}
    return {k: v for k, v in shares.items() if k == manifest or k in files}


@pytest.mark.parametrize("check_only", [False, True], ids=["copy", "check-only"])
def test_with_a_wait_the_host_lists_the_bucket_again_until_the_stacks_own_import_is_finished(
    tmp_path, monkeypatch, capsys, check_only
):
    """ecs fills the bucket with its own import workers while the host boots: nothing at first, then one share's
    manifest, then both; each listing in between prints a line of progress."""
    fake = _FakeOss({}, arrivals={2: _one_share_of_two(), 3: _imported(SHARDS, 2)})
    wait = ("--wait-seconds", "60", "--poll-seconds", "0")
    assert _fetch_oss(tmp_path, monkeypatch, fake, chunk=1000, check_only=check_only, extra=wait) == 0
    assert fake.lists == 3
    progress = [line for line in capsys.readouterr().out.splitlines() if line.startswith("waiting")]
    where = "waiting for the model import into oss://bkt/models/org/m/"
    assert progress[0].startswith(f"{where}: no import manifests and no .download-complete, 0.0 GB of objects")
    assert re.fullmatch(rf"{where}: 1 of 2 import manifests, 0\.0 GB of objects so far \(\d+ s of 60\)", progress[1])
    assert len(progress) == 2
    if not check_only:
        assert (tmp_path / "m/model-00002.safetensors").read_bytes() == SHARDS["model-00002.safetensors"]
        assert (tmp_path / "m/.download-complete").read_text() == "org/m@master\n"


def test_the_host_notices_the_finished_import_within_a_minute(tmp_path, monkeypatch):
    """The issue's "loading within a minute of the import finishing", on ecs: bootstrap.sh passes no --poll-seconds,
    so the host lists the bucket again every default interval, well under a minute, and copies at once."""
    import time

    assert "--poll-seconds" not in (SCRIPTS / "bootstrap.sh").read_text()
    slept = []
    monkeypatch.setattr(time, "sleep", slept.append)
    fake = _FakeOss({}, arrivals={2: _imported(SHARDS, 2)})
    assert _fetch_oss(tmp_path, monkeypatch, fake, extra=("--wait-seconds", "600")) == 0
    assert fake.lists == 2 and len(slept) == 1 and 0 < slept[0] <= 60
    assert (tmp_path / "m/.download-complete").exists()


def test_a_wait_that_ends_before_the_import_does_fails_naming_what_the_bucket_holds_and_the_wait(
    tmp_path, monkeypatch, capsys
):
    fake = _FakeOss(_one_share_of_two())
    with pytest.raises(SystemExit) as failed:
        _fetch_oss(tmp_path, monkeypatch, fake, extra=("--wait-seconds", "0.2", "--poll-seconds", "0.05"))
    assert re.fullmatch(
        r"oss://bkt/models/org/m/ holds no finished import of 'org/m@master' \(1 of 2 import manifests\): run the "
        r"model import \(the stack that imports into this bucket\) and start again \(waited \d+ s for it\)",
        str(failed.value.code),
    )
    assert fake.lists >= 3 and capsys.readouterr().out.count("waiting for the model import") == fake.lists - 1
    assert not (tmp_path / "m").exists()


@pytest.mark.parametrize("wait", [(), ("--wait-seconds", "0")], ids=["default", "zero"])
def test_without_a_wait_an_unfinished_import_is_refused_after_one_listing(tmp_path, monkeypatch, capsys, wait):
    fake = _FakeOss({}, arrivals={2: _imported(SHARDS, 2)})
    with pytest.raises(SystemExit, match=r"\(no import manifests and no \.download-complete\): .* start again$"):
        _fetch_oss(tmp_path, monkeypatch, fake, extra=("--poll-seconds", "0", *wait))
    assert fake.lists == 1 and "waiting" not in capsys.readouterr().out


def test_while_waiting_a_bad_manifest_or_a_finished_import_missing_files_fails_at_once(tmp_path, monkeypatch):
    """Only an unfinished import is waited for: once its manifests are all there the workers are done."""
    wait = ("--wait-seconds", "60", "--poll-seconds", "0")
    outside = _FakeOss(_imported({"../../etc/cron.d/x": b"x"}, 1))
    with pytest.raises(SystemExit, match="manifest paths outside the model"):
        _fetch_oss(tmp_path, monkeypatch, outside, extra=wait)
    short = _imported(SHARDS, 1)
    short["models/org/m/config.json"] = b"{"
    cut = _FakeOss(short, arrivals={2: _imported(SHARDS, 1)})
    with pytest.raises(SystemExit, match=r"misses files of its import: config.json \(1 bytes, 2 recorded\)"):
        _fetch_oss(tmp_path, monkeypatch, cut, extra=wait)
    assert outside.lists == cut.lists == 1


# --- The shared shell libraries (components/scripts/lib-*.sh), inlined where the scripts ship -------------------


def test_every_script_ships_with_its_libraries_inlined_and_nothing_left_to_source():
    users = [p.name for p in SCRIPTS.glob("*") if p.is_file() and "/lib-" in p.read_text()]
    assert sorted(users) == [
        "bootstrap.sh",
        "image-mirror-setup.sh",
        "image-mirror-worker.sh",
        "jump-host-setup.sh",
        "model-import-setup.sh",
        "model-import-worker.sh",
    ]
    for name in users:
        shipped = script(name)
        assert "lib-" not in shipped and "BASH_SOURCE" not in shipped, name
        assert shipped.count("retry() {") + shipped.count("attempts() {") == 1, name
    rendered = render_user_data(host_for({}))  # bootstrap.sh goes compressed: its shipped text, inlined
    assert write_compressed_file("/usr/local/lib/llm-serving/bootstrap.sh", script("bootstrap.sh"), "0755") in rendered


def _worker_steps(tmp_path, steps: str, timeout: int = 600) -> subprocess.CompletedProcess:
    """lib-worker-command.sh's functions in bash, with sleep and systemd-run recorded instead of run."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    for name in ("sleep", "systemd-run"):
        (bin_dir / name).write_text(f'#!/bin/bash\necho "{name} $*" >>"{tmp_path}/calls"\n')
        (bin_dir / name).chmod(0o755)
    program = f"set -euo pipefail\nsource {SCRIPTS / 'lib-worker-command.sh'}\n{steps}\n"
    env = {"PATH": f"{bin_dir}:/usr/bin:/bin", "TIMEOUT_SECONDS": str(timeout), "STOP_AFTER_SECONDS": "60"}
    return subprocess.run(["bash", "-c", program], env=env, capture_output=True, text=True, cwd=tmp_path)


def _calls(tmp_path) -> list[str]:
    path = tmp_path / "calls"
    return path.read_text().splitlines() if path.exists() else []


def test_a_worker_command_waits_for_its_set_up_and_gives_up_at_its_deadline_saying_where_to_look(tmp_path):
    (tmp_path / "setup.done").touch()
    assert _worker_steps(tmp_path, "wait_for_setup setup.done pip && echo ready").stdout.splitlines()[-1] == "ready"
    late = _worker_steps(tmp_path, "wait_for_setup missing pip; echo unreachable", timeout=0)
    assert late.returncode == 1 and "unreachable" not in late.stdout
    assert "set-up not done after 0s; see /var/log/cloud-init-output.log" in late.stderr


def test_a_worker_command_tries_its_run_three_times_with_growing_pauses_then_names_the_failure(tmp_path):
    failed = _worker_steps(tmp_path, 'attempts "import failed" false; echo unreachable')
    assert failed.returncode == 1 and failed.stderr.strip() == "import failed" and "unreachable" not in failed.stdout
    assert _calls(tmp_path) == ["sleep 30", "sleep 60"]
    (tmp_path / "calls").unlink()
    # Succeeds on the second try (a policy that applied late): no failure, one pause.
    flaky = _worker_steps(tmp_path, "attempts nope bash -c '[ -e once ] || { touch once; exit 1; }' && echo done")
    assert flaky.returncode == 0 and flaky.stdout.strip() == "done" and _calls(tmp_path) == ["sleep 30"]
    (tmp_path / "calls").unlink()
    # Past the deadline the first failure is the last.
    assert _worker_steps(tmp_path, "attempts late false", timeout=0).returncode == 1 and _calls(tmp_path) == []


def test_a_worker_stops_itself_only_through_a_timer_after_its_command(tmp_path):
    done = _worker_steps(tmp_path, "stop_later llm-import-stop /usr/local/bin/llm-model-import cn-hangzhou")
    assert done.returncode == 0
    assert _calls(tmp_path) == [
        "systemd-run --unit=llm-import-stop --on-active=60 /usr/local/bin/llm-model-import stop-self cn-hangzhou"
    ]
