#!/usr/bin/env bash
# The one test command: builds venv/ from the pinned requirements (again only when they change)
# and runs the whole suite offline under Pulumi mocks. CI runs exactly this.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -x venv/bin/python ] || ! cmp -s requirements-dev.txt venv/.installed-requirements; then
  python3 -m venv venv
  venv/bin/python -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
  cp requirements-dev.txt venv/.installed-requirements
fi
exec venv/bin/python -m pytest -q "$@"
