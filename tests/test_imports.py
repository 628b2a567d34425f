"""The ecs target loads only what it uses: no GCP or Kubernetes SDK."""
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

PROGRAM = """
import sys
sys.path[:0] = [{root!r}, {tests!r}]
from harness import run_stack
run_stack("dev")
print(sorted({{m.split(".")[0] for m in sys.modules if m.startswith("pulumi_")}}))
"""


def test_ecs_target_imports_neither_gcp_nor_kubernetes_sdk():
    code = PROGRAM.format(root=str(ROOT), tests=str(ROOT / "tests"))
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    loaded = result.stdout.strip().splitlines()[-1]
    assert loaded == "['pulumi_alicloud', 'pulumi_random']"
