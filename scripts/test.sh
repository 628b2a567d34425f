#!/usr/bin/env bash
# The one test command: builds venv/ from the pinned requirements (again only when they change)
# and runs the whole suite offline under Pulumi mocks. CI runs exactly this.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/venv.sh
source scripts/venv.sh requirements-dev.txt
exec venv/bin/python -m pytest -q "$@"
