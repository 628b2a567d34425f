#!/bin/bash
# Cloud Assistant command run by `pulumi up`: installs the API key, starts the engine and waits
# until the API is healthy and refuses requests without the key. `pulumi up` finishes when this
# succeeds. API_KEY_VALUE is an OOS encrypted-parameter reference that Cloud Assistant resolves on
# the instance at run time; the command text stored in the cloud only holds the reference.
set -euo pipefail
umask 077

STATE_DIR=/var/lib/llm-serving
deadline=$(($(date +%s) + TIMEOUT_SECONDS))

fail() {
  echo "not ready: $*" >&2
  exit 1
}
past_deadline() { [ "$(date +%s)" -ge "$deadline" ]; }

install -d -m 0700 /etc/llm-serving
new_env=$(mktemp /etc/llm-serving/secret.env.XXXXXX)
printf '%s=%s\n' "$API_KEY_ENV" "$API_KEY_VALUE" >"$new_env"
changed=false
if cmp -s "$new_env" /etc/llm-serving/secret.env; then
  rm -f "$new_env"
else
  mv "$new_env" /etc/llm-serving/secret.env
  changed=true
fi

echo "waiting for the host bootstrap (driver, runtime, image, model download)"
until [ -f "$STATE_DIR/bootstrap.done" ]; do
  if [ -f "$STATE_DIR/bootstrap.failed" ]; then
    tail -n 20 /var/log/llm-serving-bootstrap.log >&2 || true
    fail "$(cat "$STATE_DIR/bootstrap.failed")"
  fi
  past_deadline && fail "bootstrap still running after ${TIMEOUT_SECONDS}s"
  sleep 20
done

if [ "$changed" = true ] || ! systemctl is-active --quiet llm-serving.service; then
  systemctl restart llm-serving.service
fi

echo "waiting for http://127.0.0.1:$API_PORT/health"
until curl -fsS -o /dev/null "http://127.0.0.1:$API_PORT/health"; do
  past_deadline && fail "engine not healthy after ${TIMEOUT_SECONDS}s; see: journalctl -u llm-serving"
  sleep 15
done

status=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$API_PORT/v1/models")
[ "$status" = 401 ] || fail "/v1/models answered $status without an API key; expected 401"

header_file=$(mktemp)
trap 'rm -f "$header_file"' EXIT
printf 'Authorization: Bearer %s\n' "$API_KEY_VALUE" >"$header_file"
curl -fsS -o /dev/null -H "@$header_file" "http://127.0.0.1:$API_PORT/v1/models" \
  || fail "/v1/models refused the configured API key"
echo "ready: the API is healthy and requires the API key"
