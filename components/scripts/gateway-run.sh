#!/bin/bash
# Runs the authenticating gateway (nginx, core/gateway.py) in the foreground for llm-gateway.service: the
# only listener on the API port. The engine listens on 127.0.0.1 only, so every request passes the
# gateway's key check and path allowlist. Read-only root, no capabilities, a non-root user; the key file
# is bind-mounted read-only from a directory only root can enter. Holds no secret.
set -euo pipefail

# shellcheck source=/dev/null
source /etc/llm-serving/serving.conf

docker rm --force "$GATEWAY_CONTAINER" >/dev/null 2>&1 || true
tls_mount=()
if [ -n "$GATEWAY_TLS_DIR" ]; then
  tls_mount=(--volume "$GATEWAY_TLS_DIR:$GATEWAY_TLS_MOUNT:ro")
fi
# SIGQUIT: nginx stops accepting and lets requests in flight finish (worker_shutdown_timeout).
exec docker run --rm --name "$GATEWAY_CONTAINER" \
  --network host --read-only --tmpfs /tmp:rw,nosuid,nodev,size=64m \
  --user "$GATEWAY_USER" --cap-drop ALL --security-opt no-new-privileges --stop-signal SIGQUIT \
  --volume "$GATEWAY_DIR/nginx.conf:$GATEWAY_CONF:ro" \
  --volume "$GATEWAY_DIR/api-key.map:$GATEWAY_KEY_FILE:ro" "${tls_mount[@]}" \
  --entrypoint nginx \
  "$GATEWAY_IMAGE" -c "$GATEWAY_CONF" -e stderr
