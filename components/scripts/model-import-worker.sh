#!/bin/bash
# Cloud Assistant command of a model import worker: waits for the first boot's set-up, imports this worker's
# share of the model into the bucket (llm-model-import run; a share already present is only checked), then
# has the worker stop itself in economical mode a minute after the command reported success.
# Holds no secret. Set by the header: MODEL_ID, REVISION, BUCKET, PREFIX, ENDPOINT, REGION, WORKER, WORKERS,
# TIMEOUT_SECONDS, STOP_AFTER_SECONDS.
set -euo pipefail
: "${MODEL_ID:?}" "${REVISION:?}" "${BUCKET:?}" "${PREFIX:?}" "${ENDPOINT:?}" "${REGION:?}" "${WORKER:?}"
: "${WORKERS:?}" "${TIMEOUT_SECONDS:?}" "${STOP_AFTER_SECONDS:?}"
deadline=$((SECONDS + TIMEOUT_SECONDS))

echo "waiting for the worker's set-up (pip packages)"
until [ -f /var/lib/llm-import/setup.done ]; do
  if ((SECONDS >= deadline)); then
    echo "set-up not done after ${TIMEOUT_SECONDS}s; see /var/log/cloud-init-output.log" >&2
    exit 1
  fi
  sleep 10
done

# The role's policy can take a moment to apply after its attachment: retry the first calls a few times.
attempt=1
until /usr/local/bin/llm-model-import run "$MODEL_ID" "$REVISION" "$BUCKET" "$PREFIX" "$ENDPOINT" "$WORKER" "$WORKERS"; do
  if [ "$attempt" -ge 3 ] || ((SECONDS >= deadline)); then
    echo "import of worker $WORKER/$WORKERS failed; the next pulumi up resumes it (complete files are kept)" >&2
    exit 1
  fi
  sleep $((attempt * 30))
  attempt=$((attempt + 1))
done

# After the command has ended (and Cloud Assistant has reported Success), not during it.
systemd-run --unit=llm-import-stop --on-active="$STOP_AFTER_SECONDS" \
  /usr/local/bin/llm-model-import stop-self "$REGION"
echo "worker $WORKER/$WORKERS done; it stops itself (StopCharging) in ${STOP_AFTER_SECONDS}s"
