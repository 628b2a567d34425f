#!/bin/bash
# Prepares a fresh GPU host: starts the model download at once, and in parallel installs the
# NVIDIA driver, Docker and the NVIDIA container toolkit and pulls the engine image.
# Runs from llm-bootstrap.service on every boot until it has finished once, so a reboot
# (needed when a driver cannot load in place) resumes it. Holds no secret.
set -euo pipefail

# shellcheck source=/dev/null
source /etc/llm-serving/serving.conf

STATE_DIR=/var/lib/llm-serving
mkdir -p "$STATE_DIR" "$MODEL_DIR"
[ -f "$STATE_DIR/bootstrap.done" ] && exit 0
rm -f "$STATE_DIR/bootstrap.failed"

fail() {
  echo "bootstrap failed: $*" | tee "$STATE_DIR/bootstrap.failed" >&2
  exit 1
}
trap 'fail "line $LINENO: $BASH_COMMAND"' ERR

# retry CMD...: up to 5 attempts with growing pauses (mirrors and registries have bad minutes).
retry() {
  local attempt=1
  until "$@"; do
    [ "$attempt" -ge 5 ] && return 1
    sleep $((attempt * 20))
    attempt=$((attempt + 1))
  done
}

export DEBIAN_FRONTEND=noninteractive
apt_install() { retry apt-get install -y --no-install-recommends "$@"; }

# fetch-model.sh (shared with the Kubernetes import Job) skips a finished download and resumes a partial one.
download_model() {
  export PIP_INDEX_URL MODELSCOPE_VERSION MODELSCOPE_HUB_VERSION
  retry /usr/local/lib/llm-serving/fetch-model.sh "$MODEL_ID" "$MODEL_REVISION" "$MODEL_DIR"
}

install_driver() {
  nvidia-smi >/dev/null 2>&1 && return 0
  # Prebuilt modules for the running kernel, or DKMS with its headers; Fabric Manager of the same version.
  retry /usr/local/lib/llm-serving/install-driver.sh "$DRIVER_BRANCH" "$DRIVER_FLAVOUR" "$FABRIC_MANAGER"
  if [ "$FABRIC_MANAGER" = true ]; then systemctl enable nvidia-fabricmanager; fi
  # nouveau claims the GPU on some images; unloading it avoids the reboot when nothing uses it.
  modprobe --remove nouveau 2>/dev/null || true
  modprobe nvidia || true
  if ! nvidia-smi >/dev/null 2>&1; then
    [ -f "$STATE_DIR/rebooted-for-driver" ] && fail "NVIDIA driver does not load after a reboot"
    touch "$STATE_DIR/rebooted-for-driver"
    echo "driver installed; rebooting once to load it"
    systemctl reboot
    exit 0
  fi
  if [ "$FABRIC_MANAGER" = true ]; then systemctl restart nvidia-fabricmanager; fi
}

install_container_runtime() {
  command -v docker >/dev/null 2>&1 || apt_install docker.io
  if ! command -v nvidia-ctk >/dev/null 2>&1; then
    retry curl -fsSL "$NVIDIA_TOOLKIT_REPO/gpgkey" -o /tmp/nvidia-toolkit.key
    gpg --batch --yes --dearmor -o /usr/share/keyrings/nvidia-container-toolkit.gpg /tmp/nvidia-toolkit.key
    echo "deb [signed-by=/usr/share/keyrings/nvidia-container-toolkit.gpg] $NVIDIA_TOOLKIT_REPO/stable/deb/\$(ARCH) /" \
      > /etc/apt/sources.list.d/nvidia-container-toolkit.list
    retry apt-get update
    apt_install nvidia-container-toolkit
  fi
  nvidia-ctk runtime configure --runtime=docker
  systemctl restart docker
}

retry apt-get update
apt_install python3-pip curl ca-certificates gnupg

download_model >"$STATE_DIR/download.log" 2>&1 &
download_pid=$!

install_driver
install_container_runtime
retry docker pull "$ENGINE_IMAGE"
retry docker pull "$GATEWAY_IMAGE"

wait "$download_pid" || fail "model download failed; see $STATE_DIR/download.log"
systemctl enable llm-serving.service llm-gateway.service
touch "$STATE_DIR/bootstrap.done"
echo "bootstrap complete"
