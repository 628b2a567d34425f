"""Each target loads only the cloud SDKs it uses, so evaluation stays fast."""

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

PROGRAM = """
import sys
sys.path[:0] = [{root!r}, {tests!r}]
from harness import run_stack
run_stack({stack!r})
print(sorted({{m.split(".")[0] for m in sys.modules if m.startswith("pulumi_")}}))
"""


@pytest.mark.parametrize(
    "stack,expected",
    [
        ("dev", "['pulumi_alicloud', 'pulumi_random']"),
        ("acs", "['pulumi_alicloud', 'pulumi_kubernetes', 'pulumi_random']"),
        ("kubernetes", "['pulumi_kubernetes', 'pulumi_random']"),
        ("gke", "['pulumi_gcp', 'pulumi_kubernetes', 'pulumi_random']"),
        ("ack", "['pulumi_alicloud', 'pulumi_kubernetes', 'pulumi_random']"),
        ("ack-edge", "['pulumi_alicloud', 'pulumi_kubernetes', 'pulumi_random']"),
    ],
)
def test_target_imports_only_its_cloud_sdks(stack, expected):
    code = PROGRAM.format(root=str(ROOT), tests=str(ROOT / "tests"), stack=stack)
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert result.stdout.strip().splitlines()[-1] == expected
