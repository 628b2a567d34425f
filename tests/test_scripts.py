"""Host scripts: shellcheck-clean as written and as rendered, within ECS limits, config round-trips."""

import base64
import dataclasses
import subprocess
import sys
from pathlib import Path

import pytest
from harness import run_stack, settings_for, unwrap

from components.alibaba.host_scripts import (
    SCRIPTS,
    USER_DATA_LIMIT_BYTES,
    HostConfig,
    model_dir,
    render_conf,
    render_ready_command,
    render_user_data,
)
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
}


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
        "/usr/local/lib/llm-serving/bootstrap.sh",
        "/usr/local/bin/llm-serving-run",
    ):
        assert f"cat > {path} <<'LLM_SERVING_EOF'" in text
    assert text.rstrip().endswith("systemctl start --no-block llm-bootstrap.service")
    assert "MODEL_ID=deepseek-ai/DeepSeek-R1-Distill-Qwen-7B" in text and "docker pull" in text


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
