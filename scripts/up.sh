#!/usr/bin/env bash
# Deploy a stack: ./scripts/up.sh dev (or prod). State goes to the backend you are logged in to
# (Pulumi Cloud, an OSS/S3 bucket, or PULUMI_BACKEND_URL); if none, to a local one in .pulumi-state/.
# Needs: the Pulumi CLI, ALICLOUD_ACCESS_KEY / ALICLOUD_SECRET_KEY, and PULUMI_CONFIG_PASSPHRASE
# (or answer the passphrase prompt, the only prompt). `pulumi up` prints the plan, then applies it
# without asking; run `pulumi preview` first to review. Extra arguments go to `pulumi up`.
set -euo pipefail
cd "$(dirname "$0")/.."
stack="${1:-dev}"
shift || true
# shellcheck source=scripts/venv.sh
source scripts/venv.sh requirements.txt
# Keep whatever backend you are logged in to; otherwise log in to a local one (remembered, so
# later `pulumi preview` / `pulumi destroy` run by hand use the same state).
if [ -z "${PULUMI_BACKEND_URL:-}" ] && ! pulumi whoami >/dev/null 2>&1; then
  mkdir -p .pulumi-state
  pulumi login "file://$PWD/.pulumi-state"
fi
pulumi stack select --create "$stack"
pulumi up --yes "$@"
