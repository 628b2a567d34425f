#!/usr/bin/env bash
# The one test command: syncs .venv/ from uv.lock (the environment `pulumi up` uses too), checks lint, format
# and types, then runs the whole suite offline under Pulumi mocks. CI runs exactly this.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/uv.sh
source scripts/uv.sh
"$UV" sync --locked --quiet
.venv/bin/ruff check --quiet .
.venv/bin/ruff format --check --quiet .
.venv/bin/pyright >/dev/null || .venv/bin/pyright  # quiet when clean; the findings when not
exec .venv/bin/python -m pytest -q "$@"
