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
