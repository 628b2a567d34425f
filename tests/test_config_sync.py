"""Pulumi.yaml, the stack files and the README describe exactly the keys the program reads."""
import re
from pathlib import Path

import yaml

from core.settings import KEYS, PROJECT

ROOT = Path(__file__).resolve().parent.parent


def test_pulumi_yaml_declares_every_key_with_type_description_and_default():
    declared = yaml.safe_load((ROOT / "Pulumi.yaml").read_text())["config"]
    assert list(declared) == [k.name for k in KEYS]
    for key in KEYS:
        entry = declared[key.name]
        assert (entry["type"], entry["default"], entry["description"]) == (key.type, key.default, key.description)
        if key.type == "array":
            assert entry["items"] == {"type": "string"}


def test_project_name_is_the_config_namespace():
    assert yaml.safe_load((ROOT / "Pulumi.yaml").read_text())["name"] == PROJECT


def test_stack_files_only_set_declared_keys():
    names = {f"{PROJECT}:{k.name}" for k in KEYS}
    for stack in ("dev", "prod"):
        config = yaml.safe_load((ROOT / f"Pulumi.{stack}.yaml").read_text())["config"]
        assert set(config) <= names, set(config) - names


def test_readme_documents_every_key():
    readme = (ROOT / "README.md").read_text()
    documented = re.findall(r"^\| `llm:(\w+)`", readme, flags=re.MULTILINE)
    assert documented == [k.name for k in KEYS]
