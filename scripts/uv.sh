#!/usr/bin/env bash
# Sourced by test.sh and up.sh: sets UV to a uv binary, the one on PATH or a pinned one installed once into
# .tools/ (from PyPI), so a fresh clone needs nothing but python3.
UV_VERSION=0.13.9
if command -v uv >/dev/null 2>&1; then
  UV=$(command -v uv)
else
  if [ ! -x .tools/bin/uv ] || [ "$(.tools/bin/uv --version 2>/dev/null | cut -d' ' -f2)" != "$UV_VERSION" ]; then
    python3 -m venv .tools
    .tools/bin/python -m pip install --quiet --disable-pip-version-check "uv==$UV_VERSION"
  fi
  UV=$PWD/.tools/bin/uv
fi
export UV
