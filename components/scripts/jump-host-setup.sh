#!/bin/bash
# Jump host first boot: installs kubectl (pinned minor version) from Alibaba Cloud's mirror of
# pkgs.k8s.io and the ACK API SDK from the internal PyPI mirror, both reachable from every region's
# internal network. Holds no secret and no credential: the kubeconfig is fetched later, with the jump
# host's own RAM role, by llm-kubeconfig (a Cloud Assistant command runs it once; a timer renews it).
# Set by the header: KUBECTL_MINOR, PIP_INDEX_URL, CS_SDK_VERSION, CREDENTIALS_SDK_VERSION.
set -euo pipefail
: "${KUBECTL_MINOR:?}" "${PIP_INDEX_URL:?}" "${CS_SDK_VERSION:?}" "${CREDENTIALS_SDK_VERSION:?}"
MIRROR="https://mirrors.cloud.aliyuncs.com/kubernetes-new/core/stable/v${KUBECTL_MINOR}/deb"
LIB=/opt/llm-jump/lib

# shellcheck source=/dev/null
source "$(dirname "${BASH_SOURCE[0]}")/lib-retry.sh"  # inlined when shipped (components/shipped_scripts.py)

export DEBIAN_FRONTEND=noninteractive
retry apt-get update
retry apt-get install -y --no-install-recommends curl ca-certificates gnupg python3-pip
install -d -m 0755 /etc/apt/keyrings
retry curl -fsSL "$MIRROR/Release.key" -o /tmp/kubernetes-release.key
gpg --batch --yes --dearmor -o /etc/apt/keyrings/kubernetes.gpg /tmp/kubernetes-release.key
echo "deb [signed-by=/etc/apt/keyrings/kubernetes.gpg] $MIRROR/ /" >/etc/apt/sources.list.d/kubernetes.list
retry apt-get update
retry apt-get install -y --no-install-recommends kubectl
kubectl version --client
# --target keeps the SDK out of the system Python; llm-kubeconfig puts it on its own path.
retry python3 -m pip install --quiet --disable-pip-version-check --upgrade --target "$LIB" \
  --index-url "$PIP_INDEX_URL" "alibabacloud_cs20151215==$CS_SDK_VERSION" \
  "alibabacloud_credentials==$CREDENTIALS_SDK_VERSION"
install -d -m 0755 /var/lib/llm-jump
touch /var/lib/llm-jump/setup.done
echo "jump host set-up complete"
