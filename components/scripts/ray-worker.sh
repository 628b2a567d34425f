#!/bin/bash
# Worker pod of a multi-pod vLLM replica (a LeaderWorkerSet group): joins the leader's Ray cluster
# and stays in the foreground. When the leader goes away, `ray start --block` returns, the container
# restarts, and the LeaderWorkerSet (RecreateGroupOnPodRestart) recreates the whole group.
# Set by the pod spec: LLM_RAY_PORT, LLM_RAY_NODE_PORT (this raylet's port, which the pod's probes
# watch), LLM_RAY_JOIN_TIMEOUT_SECONDS; by the LeaderWorkerSet: LWS_LEADER_ADDRESS.
set -euo pipefail

: "${LWS_LEADER_ADDRESS:?set by the LeaderWorkerSet controller}" "${LLM_RAY_PORT:?}" "${LLM_RAY_NODE_PORT:?}"
: "${LLM_RAY_JOIN_TIMEOUT_SECONDS:?}"

# The leader may still be starting (image pull, Ray head): wait until its Ray port accepts connections.
deadline=$((SECONDS + LLM_RAY_JOIN_TIMEOUT_SECONDS))
until (exec 3<>"/dev/tcp/${LWS_LEADER_ADDRESS}/${LLM_RAY_PORT}") 2>/dev/null; do
  if (( SECONDS >= deadline )); then
    echo "the Ray head at ${LWS_LEADER_ADDRESS}:${LLM_RAY_PORT} did not answer within ${LLM_RAY_JOIN_TIMEOUT_SECONDS}s" >&2
    exit 1
  fi
  sleep 5
done

exec ray start --address="${LWS_LEADER_ADDRESS}:${LLM_RAY_PORT}" --node-manager-port="$LLM_RAY_NODE_PORT" --block
