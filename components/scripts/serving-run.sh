#!/bin/bash
# Runs the engine container in the foreground for llm-serving.service (which restarts it).
# The API key reaches the engine only through the root-only env file, never the command line.
set -euo pipefail

# shellcheck source=/dev/null
source /etc/llm-serving/serving.conf

docker rm --force "$CONTAINER_NAME" >/dev/null 2>&1 || true
exec docker run --rm --name "$CONTAINER_NAME" \
  --gpus all --ipc=host --network host \
  --ulimit memlock=-1 --ulimit stack=67108864 \
  --env-file /etc/llm-serving/secret.env \
  --volume "$MODEL_ROOT:$MODEL_ROOT:ro" \
  --entrypoint /bin/sh \
  "$ENGINE_IMAGE" -c "exec $ENGINE_CMD"
