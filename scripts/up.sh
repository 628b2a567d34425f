#!/usr/bin/env bash
# Deploy a stack: ./scripts/up.sh dev (or prod). State goes to a local backend in .pulumi-state/
# unless PULUMI_BACKEND_URL points elsewhere (an OSS/S3 bucket, or Pulumi Cloud after `pulumi login`).
# Needs: the Pulumi CLI, ALICLOUD_ACCESS_KEY / ALICLOUD_SECRET_KEY, and PULUMI_CONFIG_PASSPHRASE
# (or answer the passphrase prompt). Extra arguments go to `pulumi up` (e.g. --yes).
set -euo pipefail
cd "$(dirname "$0")/.."
stack="${1:-dev}"
shift || true
if [ ! -x venv/bin/python ] || ! cmp -s requirements.txt venv/.installed-runtime; then
  python3 -m venv venv
  venv/bin/python -m pip install --quiet --disable-pip-version-check -r requirements.txt
  cp requirements.txt venv/.installed-runtime
fi
if [ -z "${PULUMI_BACKEND_URL:-}" ]; then
  mkdir -p .pulumi-state
  export PULUMI_BACKEND_URL="file://$PWD/.pulumi-state"
fi
pulumi stack select --create "$stack"
pulumi up "$@"
