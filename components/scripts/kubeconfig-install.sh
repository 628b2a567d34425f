#!/bin/bash
# Cloud Assistant command: points llm-kubeconfig at the cluster, fetches root's kubeconfig with the jump
# host's own RAM role (private endpoint), turns on its daily renewal and checks that kubectl gets in.
# Holds no secret: the kubeconfig never passes through Pulumi or the command text.
# Set by the header: CLUSTER_ID, REGION, ROLE_NAME, VALID_MINUTES, TIMEOUT_SECONDS.
set -euo pipefail
: "${CLUSTER_ID:?}" "${REGION:?}" "${ROLE_NAME:?}" "${VALID_MINUTES:?}" "${TIMEOUT_SECONDS:?}"
umask 077
deadline=$((SECONDS + TIMEOUT_SECONDS))

fail() {
  echo "kubeconfig not installed: $*" >&2
  exit 1
}

echo "waiting for the jump host set-up (kubectl, the ACK SDK)"
until [ -f /var/lib/llm-jump/setup.done ]; do
  ((SECONDS < deadline)) || fail "set-up not done after ${TIMEOUT_SECONDS}s; see /var/log/cloud-init-output.log"
  sleep 10
done

install -d -m 0755 /etc/llm-jump
{
  printf 'CLUSTER_ID=%s\n' "$CLUSTER_ID"
  printf 'REGION=%s\n' "$REGION"
  printf 'ROLE_NAME=%s\n' "$ROLE_NAME"
  printf 'VALID_MINUTES=%s\n' "$VALID_MINUTES"
} >/etc/llm-jump/cluster.env
chmod 0644 /etc/llm-jump/cluster.env

# The role's policy and its cluster permission (cs.KubernetesPermission) can take a moment to apply.
until /usr/local/bin/llm-kubeconfig; do
  ((SECONDS < deadline)) || fail "DescribeClusterUserKubeconfig kept failing with the jump host's role"
  sleep 15
done
systemctl daemon-reload
systemctl enable --now llm-kubeconfig.timer

until [ "$(kubectl --request-timeout=20s auth can-i list pods --all-namespaces 2>/dev/null)" = yes ]; do
  ((SECONDS < deadline)) || fail "kubectl cannot list pods with the fetched kubeconfig"
  sleep 15
done
echo "kubeconfig installed for root (private endpoint, renewed daily)"
