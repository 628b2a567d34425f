#!/bin/bash
# Runs the engine container in the foreground for llm-serving.service (which restarts it).
# The API key reaches the engine only through the root-only env file, never the command line.
# ecs.weights.load stream: no model directory; the streamer's AWS config and credential process (read-only) and its
# environment instead. The host network lets the credential process reach the metadata server 100.100.100.200.
set -euo pipefail

# shellcheck source=/dev/null
source "${LLM_SERVING_CONF:-/etc/llm-serving/serving.conf}"

if [ "${WEIGHTS_LOAD:-copy}" = stream ]; then
  weights=(--env-file "$STREAM_ENV_FILE" --volume "$STREAM_DIR:$STREAM_MOUNT:ro")
else
  weights=(--volume "$MODEL_ROOT:$MODEL_ROOT:ro")
fi

docker rm --force "$CONTAINER_NAME" >/dev/null 2>&1 || true
exec docker run --rm --name "$CONTAINER_NAME" \
  --gpus all --ipc=host --network host \
  --ulimit memlock=-1 --ulimit stack=67108864 \
  --env-file /etc/llm-serving/secret.env \
  "${weights[@]}" \
  --entrypoint /bin/sh \
  "$ENGINE_IMAGE" -c "exec $ENGINE_CMD"
