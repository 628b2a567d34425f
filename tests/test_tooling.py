"""The developer scripts: shellcheck-clean, and up.sh checks the CLI and credentials before it installs anything.

The scripts run in a scratch copy of the repository with a stand-in `pulumi` on PATH; what the real CLI then
does with the stack is not run here.
"""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from harness import ROOT

SHELLCHECK = str(Path(sys.executable).parent / "shellcheck")
SCRIPTS = sorted([*(ROOT / "scripts").glob("*.sh"), ROOT / ".ci" / "run"])


@pytest.mark.parametrize("script", SCRIPTS, ids=[p.name for p in SCRIPTS])
def test_scripts_pass_shellcheck(script):
    result = subprocess.run(
        [SHELLCHECK, "-x", "--severity=style", str(script)], capture_output=True, text=True, cwd=ROOT
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.fixture
def scratch(tmp_path):
    """A copy of the scripts and examples, a home without credentials, and a stand-in `pulumi` CLI."""
    shutil.copytree(ROOT / "scripts", tmp_path / "repo" / "scripts")
    shutil.copytree(ROOT / "examples", tmp_path / "repo" / "examples")
    shutil.copy(ROOT / "Pulumi.dev.yaml", tmp_path / "repo" / "Pulumi.dev.yaml")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    env = {"PATH": f"{bin_dir}:/usr/bin:/bin", "HOME": str(tmp_path / "home")}
    return tmp_path / "repo", bin_dir, env


def fake_pulumi(bin_dir: Path, version: str) -> None:
    """A `pulumi` that reports `version` and records any other call."""
    script = bin_dir / "pulumi"
    script.write_text(
        "\n".join(
            ["#!/bin/sh", f'[ "$1" = version ] && echo v{version} && exit 0', 'echo "pulumi $*" >> "$HOME/calls"', ""]
        )
    )
    script.chmod(0o755)


def up(repo: Path, env: dict, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["bash", str(repo / "scripts" / "up.sh"), *args], capture_output=True, text=True, env=env, cwd=repo
    )


def test_up_refuses_without_the_pulumi_cli(scratch):
    repo, _, env = scratch
    result = up(repo, env, "dev")
    assert result.returncode == 1 and "the Pulumi CLI is not installed" in result.stderr


def test_up_refuses_an_old_cli_before_installing_anything(scratch):
    repo, bin_dir, env = scratch
    fake_pulumi(bin_dir, "3.100.0")
    result = up(repo, env, "dev")
    assert result.returncode == 1 and "older than 3.272.0" in result.stderr
    assert not (repo / ".tools").exists() and not (repo / ".venv").exists()


def test_up_names_the_alibaba_credentials_and_refuses_without_any(scratch):
    repo, bin_dir, env = scratch
    fake_pulumi(bin_dir, "3.272.0")
    result = up(repo, env, "dev")
    assert "needs Alibaba Cloud credentials: ALICLOUD_ACCESS_KEY" in result.stdout
    assert result.returncode == 1 and "no Alibaba Cloud credentials found" in result.stderr


def test_up_starts_a_stack_from_an_example_and_names_gke_credentials(scratch):
    repo, bin_dir, env = scratch
    fake_pulumi(bin_dir, "3.300.1")
    result = up(repo, env, "--example", "gke", "mine")
    assert (repo / "Pulumi.mine.yaml").read_text() == (ROOT / "examples" / "gke.yaml").read_text()
    assert "Target gke needs Google Cloud credentials" in result.stdout
    assert result.returncode == 1 and "gcloud auth application-default login" in result.stderr


def test_stack_file_never_overwrites_a_users_stack_file(scratch):
    repo, _, env = scratch
    (repo / "Pulumi.mine.yaml").write_text("config: {}\n")
    subprocess.run(["bash", str(repo / "scripts" / "stack-file.sh"), "mine", "acs"], check=True, env=env)
    assert (repo / "Pulumi.mine.yaml").read_text() == "config: {}\n"
    missing = subprocess.run(
        ["bash", str(repo / "scripts" / "stack-file.sh"), "nope"], capture_output=True, text=True, env=env
    )
    listed = missing.stderr.rsplit("examples:", 1)[1].split()
    assert missing.returncode == 1 and sorted(listed) == [
        "ack",
        "ack-edge",
        "acs",
        "acs-r1",
        "gke",
        "gke-l4",
        "kubernetes",
    ]


def test_a_users_own_stack_file_in_the_root_does_not_change_what_the_tests_see():
    """Tests read the example stacks by name (harness.EXAMPLE_STACKS), never by globbing Pulumi.*.yaml."""
    pattern = "glob(" + '"Pulumi.'
    for path in (ROOT / "tests").glob("*.py"):
        assert pattern not in path.read_text(), path.name
    assert os.path.exists(ROOT / "Pulumi.dev.yaml") and os.path.exists(ROOT / "Pulumi.prod.yaml")
