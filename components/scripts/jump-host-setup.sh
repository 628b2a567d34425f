#!/bin/bash
# Jump host first boot: installs kubectl (pinned minor version) from Alibaba Cloud's mirror of
# pkgs.k8s.io, reachable from every region's internal network. Holds no secret; the kubeconfig
# arrives later through a Cloud Assistant command (see kubeconfig-install.sh).
set -euo pipefail
KUBECTL_MINOR="${KUBECTL_MINOR:?}"
MIRROR="https://mirrors.cloud.aliyuncs.com/kubernetes-new/core/stable/v${KUBECTL_MINOR}/deb"

export DEBIAN_FRONTEND=noninteractive
for attempt in 1 2 3 4 5; do
  apt-get update && apt-get install -y --no-install-recommends curl ca-certificates gnupg && break
  [ "$attempt" -eq 5 ] && exit 1
  sleep $((attempt * 20))
done
install -d -m 0755 /etc/apt/keyrings
curl -fsSL "$MIRROR/Release.key" | gpg --batch --yes --dearmor -o /etc/apt/keyrings/kubernetes.gpg
echo "deb [signed-by=/etc/apt/keyrings/kubernetes.gpg] $MIRROR/ /" >/etc/apt/sources.list.d/kubernetes.list
apt-get update
apt-get install -y --no-install-recommends kubectl
kubectl version --client
