"""Times how long the program takes to evaluate, per example stack, under Pulumi mocks.

Each run is a fresh Python process (imports included, as `pulumi preview` pays them), timed from
process start to the last stack output. Not a test: it prints figures for the docs (docs/testing.md).
Usage: venv/bin/python scripts/benchmark.py [runs]
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]
from harness import EXAMPLE_STACKS  # noqa: E402  (tests/ is on sys.path above)

STACKS = sorted(EXAMPLE_STACKS)
PROGRAM = """
import sys, time
start = time.perf_counter()
sys.path[:0] = [{root!r}, {tests!r}]
from harness import run_stack
run = run_stack({stack!r})
print(f"{{time.perf_counter() - start:.3f}} {{len(run.resources)}}")
"""


def measure(stack: str) -> tuple[float, float, int]:
    code = PROGRAM.format(root=str(ROOT), tests=str(ROOT / "tests"), stack=stack)
    started = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT).stdout
    wall = time.perf_counter() - started
    in_process, resources = out.split()[-2:]
    return wall, float(in_process), int(resources)


def main() -> None:
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 5
    print(f"{'stack':<8} {'resources':>9} {'median s (process)':>19} {'max s':>7} {'median s (program)':>19}")
    for stack in STACKS:
        samples = [measure(stack) for _ in range(runs)]
        walls = [s[0] for s in samples]
        programs = [s[1] for s in samples]
        print(
            f"{stack:<8} {samples[0][2]:>9} {statistics.median(walls):>19.2f} {max(walls):>7.2f} "
            f"{statistics.median(programs):>19.2f}"
        )


if __name__ == "__main__":
    main()
