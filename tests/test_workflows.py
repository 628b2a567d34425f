"""GitHub Actions workflows: actionlint-clean, and wired as the delivery process promises.

preview.yml (pull requests): tests, then `pulumi preview` of every stack with the policy pack, commented
on the PR. deploy.yml (main): tests, `pulumi up` dev, then prod behind the `production` environment.
destroy.yml (manual): one confirmed stack. pulumi.yml holds the shared steps; test.yml the test suite.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from harness import EXAMPLE_STACKS, ROOT

WORKFLOWS = ROOT / ".github" / "workflows"
BIN = Path(sys.executable).parent
STACKS = sorted(
    EXAMPLE_STACKS
)  # dev and prod at the root, the rest in examples/ (never a glob: a user's own stack file is not an example)
REUSABLE = "./.github/workflows/pulumi.yml"
TESTS = "./.github/workflows/test.yml"
SECRETS = (
    "ALICLOUD_ACCESS_KEY",
    "ALICLOUD_SECRET_KEY",
    "GOOGLE_CREDENTIALS",
    "PULUMI_CONFIG_PASSPHRASE",
    "PULUMI_ACCESS_TOKEN",
)


def load(name: str) -> dict:
    return yaml.safe_load((WORKFLOWS / name).read_text())


def triggers(workflow: dict) -> dict:
    # YAML 1.1 reads the bare key `on` as the boolean True.
    return workflow.get("on", workflow.get(True)) or {}


def calls(workflow: dict, job: str, target: str = REUSABLE) -> dict:
    spec = workflow["jobs"][job]
    assert spec.get("uses") == target, f"{job} must call {target}"
    return spec


def pin(package: str) -> str:
    from pins import project_pins

    return project_pins()[package]


def test_actionlint_passes_on_every_workflow():
    """actionlint checks syntax, expressions, reusable-workflow inputs and (with shellcheck) run: scripts."""
    files = sorted(str(p) for p in WORKFLOWS.glob("*.yml"))
    assert len(files) == 5
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}  # its shellcheck, too
    result = subprocess.run(
        [str(BIN / "actionlint"), "-no-color", *files], capture_output=True, text=True, cwd=ROOT, env=env
    )
    assert result.returncode == 0, result.stdout + result.stderr


# ---------------------------------------------------------------------------------------------- shared steps


@pytest.fixture(scope="module")
def shared():
    workflow = load("pulumi.yml")
    return workflow, workflow["jobs"]["pulumi"]


def step_index(steps: list[dict], predicate) -> int:
    found = [i for i, s in enumerate(steps) if predicate(s)]
    assert len(found) == 1, found
    return found[0]


def test_shared_job_installs_python_dependencies_before_pulumi_runs(shared):
    _, job = shared
    steps = job["steps"]
    pulumi = step_index(steps, lambda s: str(s.get("uses", "")).startswith("pulumi/actions@"))
    program = step_index(steps, lambda s: "uv sync --locked" in s.get("run", ""))
    uv = step_index(steps, lambda s: str(s.get("uses", "")).startswith("astral-sh/setup-uv@"))
    stack_file = step_index(steps, lambda s: "scripts/stack-file.sh" in s.get("run", ""))
    policy = step_index(steps, lambda s: "-r policy/requirements.txt" in s.get("run", ""))
    setup = step_index(steps, lambda s: str(s.get("uses", "")).startswith("actions/setup-python@"))
    checkout = step_index(steps, lambda s: str(s.get("uses", "")).startswith("actions/checkout@"))
    assert checkout < setup < program < pulumi and setup < policy < pulumi
    # The venvs are where Pulumi.yaml and PulumiPolicy.yaml tell the CLI to look.
    program_venv = yaml.safe_load((ROOT / "Pulumi.yaml").read_text())["runtime"]["options"]["virtualenv"]
    policy_pack = yaml.safe_load((ROOT / "policy" / "PulumiPolicy.yaml").read_text())
    policy_venv = policy_pack["runtime"]["options"]["virtualenv"]
    runtime = yaml.safe_load((ROOT / "Pulumi.yaml").read_text())["runtime"]["options"]
    assert runtime["toolchain"] == "uv" and program_venv == ".venv"  # where `uv sync` puts it
    assert uv < program < pulumi and stack_file < pulumi
    assert (
        str(steps[uv]["with"]["version"]) == re.search(r"UV_VERSION=(\S+)", (ROOT / "scripts" / "uv.sh").read_text())[1]
    )
    assert f"python -m venv policy/{policy_venv}\n" in steps[policy]["run"]
    assert steps[setup]["with"]["python-version"] == "3.11"


def test_shared_job_runs_the_pinned_pulumi_action_with_policy_pack_and_pr_comment(shared):
    workflow, job = shared
    inputs = triggers(workflow)["workflow_call"]["inputs"]
    assert inputs["policy-packs"]["default"] == "policy"
    assert inputs["comment-on-pr"]["type"] == "boolean"
    step = next(s for s in job["steps"] if str(s.get("uses", "")).startswith("pulumi/actions@"))
    assert re.fullmatch(r"pulumi/actions@(v\d+|[0-9a-f]{40})", step["uses"])
    assert step["with"]["command"] == "${{ inputs.command }}"
    assert step["with"]["stack-name"] == "${{ inputs.stack }}"
    assert step["with"]["policyPacks"] == "${{ inputs.policy-packs }}"
    assert step["with"]["comment-on-pr"] == "${{ inputs.comment-on-pr }}"
    assert step["with"]["cloud-url"] == "${{ secrets.PULUMI_BACKEND_URL }}"
    assert str(step["with"]["pulumi-version"]) == pin("pulumi")
    assert job["environment"] == "${{ inputs.environment }}"


def test_credentials_come_from_repository_secrets_only(shared):
    workflow, job = shared
    declared = triggers(workflow)["workflow_call"]["secrets"]
    for name in SECRETS:
        assert job["env"][name] == f"${{{{ secrets.{name} }}}}" and name in declared
    for value in job["env"].values():
        assert re.fullmatch(r"\$\{\{ secrets\.[A-Z_]+ \}\}", value), value


# ---------------------------------------------------------------------------------------------- workflows


def test_pull_requests_run_tests_then_preview_every_stack_with_a_pr_comment():
    workflow = load("preview.yml")
    assert "pull_request" in triggers(workflow)
    assert workflow["permissions"]["pull-requests"] == "write"
    calls(workflow, "test", TESTS)
    preview = calls(workflow, "preview")
    assert preview["needs"] == "test"
    assert preview["with"]["command"] == "preview" and preview["with"]["comment-on-pr"] is True
    assert preview["with"]["stack"] == "${{ matrix.stack }}"
    assert "policy-packs" not in preview["with"]  # the default: the policy pack in policy/
    assert preview["secrets"] == "inherit"


def test_preview_matrix_covers_every_stack_file():
    matrix = load("preview.yml")["jobs"]["preview"]["strategy"]["matrix"]["stack"]
    assert sorted(matrix) == STACKS, "add each Pulumi.<stack>.yaml to preview.yml's matrix and destroy.yml's options"
    assert {"dev", "prod"} <= set(matrix)


def test_test_workflow_runs_the_repository_test_script():
    steps = load("test.yml")["jobs"]["test"]["steps"]
    assert any(s.get("run", "").startswith("./scripts/test.sh") for s in steps)
    assert "workflow_call" in triggers(load("test.yml"))


def test_main_deploys_dev_then_prod_behind_the_production_environment():
    workflow = load("deploy.yml")
    assert triggers(workflow)["push"]["branches"] == ["main"]
    calls(workflow, "test", TESTS)
    dev, prod = calls(workflow, "up-dev"), calls(workflow, "up-prod")
    assert dev["needs"] == "test" and dev["with"] == {"command": "up", "stack": "dev"}
    assert prod["needs"] == "up-dev"
    assert prod["with"] == {"command": "up", "stack": "prod", "environment": "production"}


def test_two_updates_of_one_stack_never_overlap():
    deploy, destroy = load("deploy.yml")["jobs"], load("destroy.yml")["jobs"]
    groups = {job: deploy[job]["concurrency"] for job in ("up-dev", "up-prod")}
    assert groups["up-dev"]["group"] == "pulumi-stack-dev" and groups["up-prod"]["group"] == "pulumi-stack-prod"
    assert destroy["destroy"]["concurrency"]["group"] == "pulumi-stack-${{ inputs.stack }}"
    for concurrency in [*groups.values(), destroy["destroy"]["concurrency"]]:
        assert concurrency["cancel-in-progress"] is False  # a running update is never cancelled halfway


def test_destroy_is_manual_per_stack_and_confirmed():
    workflow = load("destroy.yml")
    assert set(triggers(workflow)) == {"workflow_dispatch"}
    inputs = triggers(workflow)["workflow_dispatch"]["inputs"]
    assert inputs["stack"]["type"] == "choice" and sorted(inputs["stack"]["options"]) == STACKS
    assert inputs["confirm"]["required"] is True
    guard = workflow["jobs"]["confirm"]["steps"][0]
    assert guard["env"] == {"STACK": "${{ inputs.stack }}", "CONFIRM": "${{ inputs.confirm }}"}
    assert '[ "$STACK" != "$CONFIRM" ]' in guard["run"] and "exit 1" in guard["run"]
    destroy = calls(workflow, "destroy")
    assert destroy["needs"] == "confirm"
    assert destroy["with"]["command"] == "destroy" and destroy["with"]["stack"] == "${{ inputs.stack }}"
    assert destroy["with"]["environment"] == "${{ inputs.stack == 'prod' && 'production' || '' }}"


def test_every_action_is_pinned_to_a_version():
    for path in WORKFLOWS.glob("*.yml"):
        for job in yaml.safe_load(path.read_text())["jobs"].values():
            for step in job.get("steps", []):
                if "uses" in step:
                    assert re.fullmatch(r"[\w.-]+/[\w.-]+@(v\d+(\.\d+)*|[0-9a-f]{40})", step["uses"]), (path.name, step)
