#!/bin/bash
# Leader pod of a multi-pod vLLM replica (a LeaderWorkerSet group): starts the Ray head, waits until
# every GPU of the group has joined, then replaces itself with the engine, whose argv is this
# script's arguments. Holds no secret: vLLM reads its API key from VLLM_API_KEY (a secretKeyRef).
# Set by the pod spec: LLM_RAY_PORT, LLM_RAY_GROUP_GPUS (GPUs per pod x pods), LLM_RAY_JOIN_TIMEOUT_SECONDS.
set -euo pipefail

: "${LLM_RAY_PORT:?}" "${LLM_RAY_GROUP_GPUS:?}" "${LLM_RAY_JOIN_TIMEOUT_SECONDS:?}"
if [[ $# -eq 0 ]]; then
  echo "usage: ray-leader.sh <engine argv...>" >&2
  exit 2
fi

ray start --head --port="$LLM_RAY_PORT"

# GPUs the Ray cluster sees now; 0 while it cannot answer.
cluster_gpus() {
  local count
  count=$(python3 - 2>/dev/null <<'PY'
import ray
ray.init(address="auto", logging_level="ERROR")
gpus = int(ray.cluster_resources().get("GPU", 0))
ray.shutdown()
print(gpus)
PY
  ) || count=0
  if [[ $count =~ ^[0-9]+$ ]]; then
    echo "$count"
  else
    echo 0
  fi
}

deadline=$((SECONDS + LLM_RAY_JOIN_TIMEOUT_SECONDS))
while true; do
  gpus=$(cluster_gpus)
  if (( gpus >= LLM_RAY_GROUP_GPUS )); then
    break
  fi
  if (( SECONDS >= deadline )); then
    # Exiting restarts the container; the LeaderWorkerSet then recreates the whole group.
    echo "only ${gpus} of ${LLM_RAY_GROUP_GPUS} GPUs joined the Ray cluster within ${LLM_RAY_JOIN_TIMEOUT_SECONDS}s" >&2
    exit 1
  fi
  echo "waiting for the workers: ${gpus} of ${LLM_RAY_GROUP_GPUS} GPUs in the Ray cluster"
  sleep 10
done

echo "all ${LLM_RAY_GROUP_GPUS} GPUs joined; starting the engine"
exec "$@"
