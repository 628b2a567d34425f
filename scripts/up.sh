#!/usr/bin/env bash
# Deploy a stack:  ./scripts/up.sh [--yes] [--example NAME] STACK [pulumi up options]
#
#   ./scripts/up.sh dev                      Pulumi.dev.yaml
#   ./scripts/up.sh --example acs mine       copies examples/acs.yaml to Pulumi.mine.yaml first (if missing)
#
# Before it installs anything it checks that the Pulumi CLI is there and new enough, and names the
# credentials the stack's target needs. State goes to PULUMI_BACKEND_URL when set (Pulumi Cloud, an OSS or
# GCS bucket: docs/state-backend.md); otherwise to .pulumi-state/ in this directory, for this run only: your
# global `pulumi login` is not changed. `pulumi up` shows the plan and asks before it changes anything,
# unless --yes is given.
set -euo pipefail
cd "$(dirname "$0")/.."

MIN_PULUMI=3.272.0 # the CLI release of the pinned SDK (pyproject.toml): older engines lack replacement_trigger
yes=false
example=""
while [ $# -gt 0 ]; do
  case "$1" in
  --yes | -y) yes=true; shift ;;
  --example) example=$2; shift 2 ;;
  -h | --help) sed -n '2,11p' "$0"; exit 0 ;;
  *) break ;;
  esac
done
[ $# -ge 1 ] || { echo "usage: $0 [--yes] [--example NAME] STACK [pulumi up options]" >&2; exit 2; }
stack=$1
shift

fail() { echo "up.sh: $*" >&2; exit 1; }

# 1. The CLI, before anything is installed.
command -v pulumi >/dev/null 2>&1 || fail "the Pulumi CLI is not installed: https://www.pulumi.com/docs/install/"
version=$(pulumi version | sed 's/^v//')
if [ "$(printf '%s\n%s\n' "$MIN_PULUMI" "$version" | sort -V | head -n1)" != "$MIN_PULUMI" ]; then
  fail "Pulumi CLI $version is older than $MIN_PULUMI; upgrade it (https://www.pulumi.com/docs/install/)"
fi

# 2. The stack file and its target.
scripts/stack-file.sh "$stack" "${example:-$stack}"
target=$(sed -n 's/^ *[A-Za-z0-9_.-]*:target: *\([a-z-]*\).*/\1/p' "Pulumi.$stack.yaml" | head -n1)
target=${target:-ecs}

# 3. The credentials that target needs.
has_key() { grep -q "^ *$1:" "Pulumi.$stack.yaml"; }
case "$target" in
ecs | acs | ack | ack-edge)
  echo "Target $target needs Alibaba Cloud credentials: ALICLOUD_ACCESS_KEY and ALICLOUD_SECRET_KEY, or"
  echo "alicloud:profile (an aliyun CLI profile), or alicloud:assumeRole / alicloud:assumeRoleWithOidc."
  if [ -z "${ALICLOUD_ACCESS_KEY:-}" ] && ! has_key alicloud:profile && ! has_key alicloud:assumeRoleWithOidc \
    && [ ! -f "$HOME/.aliyun/config.json" ]; then
    fail "no Alibaba Cloud credentials found (none of ALICLOUD_ACCESS_KEY, alicloud:profile, ~/.aliyun/config.json)"
  fi
  ;;
gke)
  echo "Target gke needs Google Cloud credentials (GOOGLE_APPLICATION_CREDENTIALS, GOOGLE_CREDENTIALS, or"
  echo "\`gcloud auth application-default login\`) and gke-gcloud-auth-plugin for the cluster's kubeconfig."
  if [ -z "${GOOGLE_APPLICATION_CREDENTIALS:-}${GOOGLE_CREDENTIALS:-}" ] \
    && [ ! -f "$HOME/.config/gcloud/application_default_credentials.json" ]; then
    fail "no Google Cloud credentials found (run: gcloud auth application-default login)"
  fi
  command -v gke-gcloud-auth-plugin >/dev/null 2>&1 \
    || fail "gke-gcloud-auth-plugin is missing (gcloud components install gke-gcloud-auth-plugin)"
  ;;
kubernetes)
  echo "Target kubernetes uses kubernetes:kubeconfig / kubernetes:context, else your current kubeconfig."
  if ! has_key kubernetes:kubeconfig && [ -z "${KUBECONFIG:-}" ] && [ ! -f "$HOME/.kube/config" ]; then
    fail "no kubeconfig found (set kubernetes:kubeconfig --secret, KUBECONFIG, or ~/.kube/config)"
  fi
  ;;
*) fail "Pulumi.$stack.yaml: unknown target '$target'" ;;
esac

# 4. State: the backend for this run only.
if [ -z "${PULUMI_BACKEND_URL:-}" ]; then
  mkdir -p .pulumi-state
  export PULUMI_BACKEND_URL="file://$PWD/.pulumi-state"
  echo "State: $PULUMI_BACKEND_URL (set PULUMI_BACKEND_URL for Pulumi Cloud or a bucket)."
  [ -n "${PULUMI_CONFIG_PASSPHRASE:-}${PULUMI_CONFIG_PASSPHRASE_FILE:-}" ] \
    || echo "Pulumi will ask for the passphrase that encrypts this stack's secrets (or set PULUMI_CONFIG_PASSPHRASE)."
fi

# 5. The Python environment (the same uv.lock the tests use), then the update.
# shellcheck source=scripts/uv.sh
source scripts/uv.sh
"$UV" sync --locked --quiet
pulumi stack select --create "$stack"
if [ "$yes" = true ]; then
  exec pulumi up --yes "$@"
fi
exec pulumi up "$@"
