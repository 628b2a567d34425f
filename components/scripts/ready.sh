#!/bin/bash
# Cloud Assistant command run by `pulumi up`: installs the API key for the engine and the gateway, starts
# both and waits until the API answers through the gateway and refuses what it must. `pulumi up`
# finishes when this succeeds. API_KEY_VALUE is an OOS encrypted-parameter reference that Cloud
# Assistant resolves on the instance at run time (with the instance's RAM role); the command text stored
# in the cloud only holds the placeholder. Set by the header: TIMEOUT_SECONDS, API_PORT (the gateway's),
# API_KEY_ENV, API_KEY_VALUE, GATEWAY_KEY_PATH, GATEWAY_UID; with TLS (else empty) TLS_DIR,
# TLS_CERT_VALUE (public) and TLS_KEY_VALUE (an OOS encrypted-parameter placeholder too).
set -euo pipefail
umask 077

STATE_DIR=/var/lib/llm-serving
deadline=$(($(date +%s) + TIMEOUT_SECONDS))

fail() {
  echo "not ready: $*" >&2
  exit 1
}
past_deadline() { [ "$(date +%s)" -ge "$deadline" ]; }

# The gateway's key file format (core.gateway.auth_map_entry) allows only these characters.
[[ $API_KEY_VALUE =~ ^[A-Za-z0-9._~+/=-]{16,256}$ ]] || fail "the API key has characters the gateway cannot take"

# install_secret PATH CONTENT OWNER: writes PATH (mode 0400) only when CONTENT differs; prints whether it changed.
install_secret() {
  local path=$1 content=$2 owner=$3 staged
  staged=$(mktemp "$path.XXXXXX")
  printf '%s' "$content" >"$staged"
  if cmp -s "$staged" "$path"; then
    rm -f "$staged"
    echo false
  else
    chown "$owner" "$staged"
    chmod 0400 "$staged"
    mv "$staged" "$path"
    echo true
  fi
}

install -d -m 0700 /etc/llm-serving "$(dirname "$GATEWAY_KEY_PATH")"
engine_changed=$(install_secret /etc/llm-serving/secret.env "$(printf '%s=%s\n' "$API_KEY_ENV" "$API_KEY_VALUE")" root:root)
# Readable by the gateway's user through its read-only bind mount; the directory stays root's alone.
gateway_changed=$(install_secret "$GATEWAY_KEY_PATH" "$(printf '"Bearer %s" 1;\n' "$API_KEY_VALUE")" "$GATEWAY_UID:$GATEWAY_UID")
scheme=http
tls_check=()
if [ -n "$TLS_DIR" ]; then
  install -d -m 0700 "$TLS_DIR"
  chown "$GATEWAY_UID:$GATEWAY_UID" "$TLS_DIR"
  cert_changed=$(install_secret "$TLS_DIR/cert.pem" "$TLS_CERT_VALUE"$'\n' "$GATEWAY_UID:$GATEWAY_UID")
  key_changed=$(install_secret "$TLS_DIR/key.pem" "$TLS_KEY_VALUE"$'\n' "$GATEWAY_UID:$GATEWAY_UID")
  if [ "$cert_changed" = true ] || [ "$key_changed" = true ]; then gateway_changed=true; fi
  scheme=https
  # The checks below are about the gateway's key check on this host, over loopback: the certificate names the
  # public host name, not 127.0.0.1, so its name is not verified here (clients verify it).
  tls_check=(--insecure)
fi

echo "waiting for the host bootstrap (driver, runtime, images, model download)"
until [ -f "$STATE_DIR/bootstrap.done" ]; do
  if [ -f "$STATE_DIR/bootstrap.failed" ]; then
    tail -n 20 /var/log/llm-serving-bootstrap.log >&2 || true
    fail "$(cat "$STATE_DIR/bootstrap.failed")"
  fi
  past_deadline && fail "bootstrap still running after ${TIMEOUT_SECONDS}s"
  sleep 2 # a file test: checking often costs nothing, and the API is ready that much sooner
done

if [ "$engine_changed" = true ] || ! systemctl is-active --quiet llm-serving.service; then
  systemctl restart llm-serving.service
fi
if [ "$gateway_changed" = true ] || ! systemctl is-active --quiet llm-gateway.service; then
  systemctl restart llm-gateway.service
fi

base="$scheme://127.0.0.1:$API_PORT"
echo "waiting for $base/health"
until curl "${tls_check[@]}" -fsS -o /dev/null "$base/health"; do
  past_deadline && fail "engine not healthy after ${TIMEOUT_SECONDS}s; see: journalctl -u llm-serving -u llm-gateway"
  sleep 2 # one loopback request
done

status=$(curl "${tls_check[@]}" -s -o /dev/null -w '%{http_code}' "$base/v1/models")
[ "$status" = 401 ] || fail "/v1/models answered $status without an API key; expected 401"
# vLLM's own key check skips /invocations (vllm-project/vllm#58144): only the gateway refuses it, with 404 (not
# forwarded) or, when gateway.extraRoutes forwards it, 401 (behind the key, like every route).
status=$(curl "${tls_check[@]}" -s -o /dev/null -w '%{http_code}' -X POST -H 'Content-Type: application/json' \
  -d '{}' "$base/invocations")
case "$status" in
  401 | 404) ;;
  *) fail "POST /invocations answered $status without an API key; expected the gateway's 404 (or 401 if forwarded)" ;;
esac

header_file=$(mktemp)
trap 'rm -f "$header_file"' EXIT
printf 'Authorization: Bearer %s\n' "$API_KEY_VALUE" >"$header_file"
curl "${tls_check[@]}" -fsS -o /dev/null -H "@$header_file" "$base/v1/models" \
  || fail "/v1/models refused the configured API key"
echo "ready: the API is healthy and requires the API key"
