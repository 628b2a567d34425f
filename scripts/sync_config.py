"""Rewrite the config block of Pulumi.yaml from core/settings.py KEYS (run after changing a key).

tests/test_config_sync.py fails until the two agree, so the CLI's defaults and the program's never drift.
"""
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from core.settings import KEYS  # noqa: E402


def config_block() -> dict:
    block = {}
    for key in KEYS:
        entry = {"type": key.type, "description": key.description, "default": key.default}
        if key.type == "array":
            entry["items"] = {"type": "string"}
        block[key.name] = entry
    return block


def main() -> None:
    path = ROOT / "Pulumi.yaml"
    text = path.read_text()
    head = text[:text.index("\nconfig:")]
    body = yaml.safe_dump({"config": config_block()}, sort_keys=False, width=120, allow_unicode=True)
    path.write_text(head + "\n" + body)


if __name__ == "__main__":
    main()
