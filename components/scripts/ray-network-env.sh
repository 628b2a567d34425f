#!/bin/bash
# Prepended to ray-leader.sh and ray-worker.sh: the network's NCCL settings (GKE's gIB plugin on RDMA
# nodes) must be in the environment of `ray start`, so that the Ray workers, and NCCL inside them,
# inherit them. Set by the pod spec (all optional but the timeout): LLM_EXTRA_LIBRARY_PATH, LLM_NCCL_ENV_SCRIPT,
# LLM_RUN_LDCONFIG (1: refresh the loader cache after the script, as Google's serving launcher does),
# LLM_SOCKET_IFNAME (the interface for Gloo's and NCCL's sockets, set after the script so that it wins),
# LLM_RAY_JOIN_TIMEOUT_SECONDS. The node's installer DaemonSet may still be copying the plugin when the
# pod starts: wait for it.
set -euo pipefail

# Prepended, not replaced: the image's own LD_LIBRARY_PATH stays in effect.
if [[ -n "${LLM_EXTRA_LIBRARY_PATH:-}" ]]; then
  export LD_LIBRARY_PATH="${LLM_EXTRA_LIBRARY_PATH}${LD_LIBRARY_PATH:+:${LD_LIBRARY_PATH}}"
fi

if [[ -n "${LLM_NCCL_ENV_SCRIPT:-}" ]]; then
  nccl_deadline=$((SECONDS + ${LLM_RAY_JOIN_TIMEOUT_SECONDS:?}))
  until [[ -r "$LLM_NCCL_ENV_SCRIPT" ]]; do
    if (( SECONDS >= nccl_deadline )); then
      echo "${LLM_NCCL_ENV_SCRIPT} did not appear within ${LLM_RAY_JOIN_TIMEOUT_SECONDS}s: is the node's NCCL plugin installer running?" >&2
      exit 1
    fi
    echo "waiting for ${LLM_NCCL_ENV_SCRIPT}"
    sleep 10
  done
  # Not our script: it may read unset variables.
  set +u
  # shellcheck source=/dev/null
  source "$LLM_NCCL_ENV_SCRIPT"
  set -u
  echo "NCCL settings from ${LLM_NCCL_ENV_SCRIPT}: NCCL_NET=${NCCL_NET:-}"
fi

if [[ "${LLM_RUN_LDCONFIG:-}" == 1 ]]; then
  # Needs a writable /etc/ld.so.cache; without it the library path above still applies.
  ldconfig || echo "ldconfig failed: continuing with LD_LIBRARY_PATH=${LD_LIBRARY_PATH:-}" >&2
fi

if [[ -n "${LLM_SOCKET_IFNAME:-}" ]]; then
  export GLOO_SOCKET_IFNAME="$LLM_SOCKET_IFNAME" NCCL_SOCKET_IFNAME="$LLM_SOCKET_IFNAME"
  echo "sockets on ${LLM_SOCKET_IFNAME}"
fi
