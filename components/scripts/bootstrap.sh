#!/bin/bash
# Prepares a GPU host: starts the model download at once, and beside it installs Docker, then pulls the engine and
# gateway images while the NVIDIA container toolkit and driver install. Every step first checks whether its
# result is already there and skips itself, so a host started from a prepared image (ecs.preparedImage: all of
# them installed) goes straight to the download. Runs from llm-bootstrap.service on every boot until it has
# finished once, so a reboot (needed when a driver cannot load in place) resumes it. Holds no secret.
#
# `bootstrap.sh --prepare-image` is what ECS Image Builder runs to make the prepared image
# (components/alibaba/prepared_image.py): the same installs on a machine without a GPU, no driver load, no
# download, and the packages, images and logs of the build cleaned so that the image starts like a fresh host.
#
# Progress: each step prints "bootstrap: <step>" with the time to /var/log/llm-serving-bootstrap.log
# (docs/targets/ecs-prepared-image.md "Following a host's progress").
set -euo pipefail

CONF=${LLM_SERVING_CONF:-/etc/llm-serving/serving.conf}
STATE_DIR=${LLM_SERVING_STATE:-/var/lib/llm-serving}
LIB=${LLM_SERVING_LIB:-/usr/local/lib/llm-serving}
DOCKER_DAEMON_JSON=${LLM_DOCKER_DAEMON_JSON:-/etc/docker/daemon.json}
prepare_image=false
[ "${1:-}" = --prepare-image ] && prepare_image=true

# shellcheck source=/dev/null
source "$CONF"

mkdir -p "$STATE_DIR"
[ -f "$STATE_DIR/bootstrap.done" ] && exit 0
rm -f "$STATE_DIR/bootstrap.failed"

fail() {
  echo "bootstrap failed: $*" | tee "$STATE_DIR/bootstrap.failed" >&2
  exit 1
}
trap 'fail "line $LINENO: $BASH_COMMAND"' ERR
step() { echo "bootstrap: $(date -u +%H:%M:%S) $*"; }

# shellcheck source=/dev/null
source "$(dirname "${BASH_SOURCE[0]}")/lib-retry.sh"  # inlined when shipped (components/shipped_scripts.py)

export DEBIAN_FRONTEND=noninteractive
apt_install() { retry apt-get install -y --no-install-recommends "$@"; }
apt_updated=false
apt_update() {
  [ "$apt_updated" = true ] && return 0
  retry apt-get update
  apt_updated=true
}

# install_missing PACKAGE...: only what dpkg does not have (nothing at all on a prepared image, and no apt update).
install_missing() {
  local missing=() package
  for package in "$@"; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q 'install ok installed' || missing+=("$package")
  done
  if [ "${#missing[@]}" -eq 0 ]; then
    step "packages $*: installed already"
    return 0
  fi
  step "installing ${missing[*]}"
  apt_update
  apt_install "${missing[@]}"
}

# fetch-model.sh (shared with the Kubernetes import Job) skips a finished download and resumes a partial one;
# fetch-oss.py does the same from a bucket in the region, with the instance's RAM role, and copies only a finished
# import of the stack's model and revision. Streamed (ecs.weights.load stream), nothing is copied: fetch-oss.py only
# checks the import, and the engine reads the bucket itself when it starts. Either way it waits until
# WEIGHTS_WAIT_SECONDS from here for the stack's own import into the bucket to finish (0: the bucket is filled
# already); a retry waits only for what is left of that.
fetch_from_bucket() {
  local left=$((WAIT_UNTIL - $(date +%s)))
  python3 "$LIB/fetch-oss.py" --bucket "${WEIGHTS_BUCKET:-}" --prefix "$WEIGHTS_PREFIX/$MODEL_ID" \
    --endpoint "${OSS_ENDPOINT:-}" --parallel "$WEIGHTS_PARALLEL" --marker "$MODEL_ID@$MODEL_REVISION" \
    --wait-seconds "$((left > 0 ? left : 0))" "$@"
}

download_model() {
  WAIT_UNTIL=$(($(date +%s) + ${WEIGHTS_WAIT_SECONDS:-0}))
  local from_bucket=(fetch_from_bucket)
  if [ "${WEIGHTS_LOAD:-copy}" = stream ]; then
    step "weights: checking the import in oss://$WEIGHTS_BUCKET/$WEIGHTS_PREFIX/$MODEL_ID/"
    retry "${from_bucket[@]}" --check-only "$MODEL_DIR"
    step "weights: streamed by the engine from oss://$WEIGHTS_BUCKET/$WEIGHTS_PREFIX/$MODEL_ID/ (no copy)"
    return 0
  elif [ "$WEIGHTS_SOURCE" = oss ]; then
    step "weights: copying oss://$WEIGHTS_BUCKET/$WEIGHTS_PREFIX/$MODEL_ID/ from $OSS_ENDPOINT"
    retry "${from_bucket[@]}" "$MODEL_DIR"
  else
    step "weights: downloading $MODEL_ID@$MODEL_REVISION from ModelScope"
    export PIP_INDEX_URL MODELSCOPE_VERSION MODELSCOPE_HUB_VERSION
    retry "$LIB/fetch-model.sh" "$MODEL_ID" "$MODEL_REVISION" "$MODEL_DIR"
  fi
  step "weights: complete"
}

driver_installed() {
  dpkg-query -W -f='${Status}' "nvidia-utils-${DRIVER_BRANCH}-server" 2>/dev/null | grep -q 'install ok installed'
}

install_driver() {
  if nvidia-smi >/dev/null 2>&1; then
    step "driver: loaded already"
    return 0
  fi
  if driver_installed; then
    step "driver: installed already"
  else
    step "driver: installing branch $DRIVER_BRANCH ($DRIVER_FLAVOUR)"
    # Prebuilt modules for the running kernel, or DKMS with its headers; Fabric Manager of the same version.
    retry "$LIB/install-driver.sh" "$DRIVER_BRANCH" "$DRIVER_FLAVOUR" "$FABRIC_MANAGER"
  fi
  if [ "$FABRIC_MANAGER" = true ]; then systemctl enable nvidia-fabricmanager; fi
  [ "$prepare_image" = true ] && return 0  # no GPU on Image Builder's machine: the host loads it
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
  step "driver: loaded"
}

# Layers a pull fetches at once (Docker's default is 3). Above 200 Mbit/s the NAT's bandwidth is spread over several
# EIPs, each connection on one of them (core/nat_egress.py), so more layers at once use more of it. core/durations.py
# models the pulls with this figure (HOST_PULL_CONNECTIONS).
DOCKER_CONCURRENT_DOWNLOADS=8

install_docker() {
  if command -v docker >/dev/null 2>&1; then
    step "docker: installed already"
    return 0
  fi
  # Written before the package, so that Docker starts with it; the pulls run before nvidia-ctk adds its runtime.
  if [ ! -e "$DOCKER_DAEMON_JSON" ]; then
    mkdir -p "$(dirname "$DOCKER_DAEMON_JSON")"
    printf '{"max-concurrent-downloads": %d}\n' "$DOCKER_CONCURRENT_DOWNLOADS" >"$DOCKER_DAEMON_JSON"
  fi
  install_missing docker.io
}

# The toolkit's packages only install (their postinst scripts write the toolkit's own config and refresh CDI; none
# restarts Docker: NVIDIA/nvidia-container-toolkit packaging/debian/*.postinst). Making it Docker's runtime restarts
# Docker (configure_runtime), which would cut off a running pull, so that waits for the pulls and the install runs
# beside them.
install_toolkit() {
  if command -v nvidia-ctk >/dev/null 2>&1; then
    step "container toolkit: installed already"
  else
    step "container toolkit: installing"
    retry curl -fsSL "$NVIDIA_TOOLKIT_REPO/gpgkey" -o /tmp/nvidia-toolkit.key
    gpg --batch --yes --dearmor -o /usr/share/keyrings/nvidia-container-toolkit.gpg /tmp/nvidia-toolkit.key
    echo "deb [signed-by=/usr/share/keyrings/nvidia-container-toolkit.gpg] $NVIDIA_TOOLKIT_REPO/stable/deb/\$(ARCH) /" \
      > /etc/apt/sources.list.d/nvidia-container-toolkit.list
    retry apt-get update
    apt_install nvidia-container-toolkit
  fi
}

configure_runtime() {
  if docker info --format '{{json .Runtimes}}' | grep -q '"nvidia"'; then
    step "container runtime: nvidia configured already"
  else
    step "container runtime: configuring nvidia (restarts Docker)"
    nvidia-ctk runtime configure --runtime=docker
    systemctl restart docker
  fi
}

pull() {
  if docker image inspect "$1" >/dev/null 2>&1; then
    step "image $1: present already"
  else
    step "image $1: pulling"
    retry docker pull "$1"
    step "image $1: pulled"
  fi
}

step "start (conf $CONF)"
if [ "$prepare_image" = true ]; then
  install_missing python3-pip curl ca-certificates gnupg
  install_driver
  install_docker
  install_toolkit
  configure_runtime
  pull "$ENGINE_IMAGE"
  pull "$GATEWAY_IMAGE"
  # What would make every host from this image look half-started, or carry the build's traces.
  apt-get clean
  rm -rf "$STATE_DIR" /var/lib/apt/lists/* /tmp/nvidia-toolkit.key
  cloud-init clean --logs || true
  step "prepared image ready"
  exit 0
fi

if [ "$WEIGHTS_SOURCE" = oss ]; then
  install_missing curl ca-certificates gnupg  # fetch-oss.py needs only python3, which Ubuntu ships
else
  install_missing python3-pip curl ca-certificates gnupg
fi
mkdir -p "$MODEL_DIR"

download_model >"$STATE_DIR/download.log" 2>&1 &
download_pid=$!

# Docker first, then the pulls beside the toolkit's and the driver's installs (one after the other: both use apt):
# a pull needs neither the toolkit, nor the driver, nor the GPU. Docker takes the toolkit as its runtime after the
# pulls, since that restarts it.
install_docker
pull_images() { pull "$ENGINE_IMAGE" && pull "$GATEWAY_IMAGE"; }
pull_images >"$STATE_DIR/pull.log" 2>&1 &
pull_pid=$!
install_toolkit
install_driver

wait "$pull_pid" || fail "image pull failed; see $STATE_DIR/pull.log"
cat "$STATE_DIR/pull.log"
configure_runtime
wait "$download_pid" || fail "model download failed; see $STATE_DIR/download.log"
cat "$STATE_DIR/download.log"
systemctl enable llm-serving.service llm-gateway.service
touch "$STATE_DIR/bootstrap.done"
step "complete"
