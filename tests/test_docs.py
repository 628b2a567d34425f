"""The generated reference pages are the ones the code prints: they cannot drift from the schema."""

import subprocess
import sys

from harness import ROOT


def test_generated_pages_are_current():
    result = subprocess.run([sys.executable, "scripts/docs.py", "--check"], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, f"{result.stdout}{result.stderr}run: .venv/bin/python scripts/docs.py"


def test_the_config_reference_lists_every_key_with_its_targets():
    from core.config.reference import rows
    from core.config.validation import key_paths

    text = (ROOT / "docs" / "reference" / "config.md").read_text()
    documented = [path for path, *_ in rows()]
    assert documented == key_paths()
    assert all(f"| `{path}` |" in text for path in documented)
    assert "| `placement.instanceType` | string | empty | ecs, ack |" in text
