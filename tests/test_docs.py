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


def _documents():
    return [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]


def test_every_config_key_the_docs_name_exists():
    """A key renamed or removed in the schema must not live on in the prose (`llm:<path>` anywhere in the docs)."""
    import re

    from core.config.validation import key_paths

    known = set(key_paths())
    prefixes = {p.rsplit(".", i)[0] for p in known for i in range(p.count(".") + 1)}
    stale = {
        f"{doc.relative_to(ROOT)}: llm:{key}"
        for doc in _documents()
        for key in re.findall(r"(?<![\w/])llm:([a-zA-Z][\w.]*[\w])", doc.read_text())
        if re.sub(r"\[\d+\]", "", key) not in prefixes
    }
    assert not stale, sorted(stale)


def test_every_repository_path_the_docs_name_exists():
    """Repository paths the docs name (`components/...`, `core/...`) exist: layouts change, prose must follow."""
    import re

    missing = {
        f"{doc.relative_to(ROOT)}: {path}"
        for doc in _documents()
        for path in re.findall(
            r"`((?:components|stacks|core|tests|scripts|policy|examples|docs)/[\w./-]+)`", doc.read_text()
        )
        if not (ROOT / path.rstrip("/")).exists() and not path.endswith("/venv")  # a venv the docs have you make
    }
    assert not missing, sorted(missing)
