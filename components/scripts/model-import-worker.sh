#!/bin/bash
# Cloud Assistant command of a model import worker: waits for the first boot's set-up, imports this worker's
# share of the model into the bucket (llm-model-import run; a share already present is only checked), then
# has the worker stop itself in economical mode a minute after the command reported success.
# Holds no secret. Set by the header: MODEL_ID, REVISION, BUCKET, PREFIX, ENDPOINT, REGION, WORKER, WORKERS,
# TIMEOUT_SECONDS, STOP_AFTER_SECONDS.
set -euo pipefail
: "${MODEL_ID:?}" "${REVISION:?}" "${BUCKET:?}" "${PREFIX:?}" "${ENDPOINT:?}" "${REGION:?}" "${WORKER:?}"
: "${WORKERS:?}" "${TIMEOUT_SECONDS:?}" "${STOP_AFTER_SECONDS:?}"
# shellcheck source=/dev/null
source "$(dirname "${BASH_SOURCE[0]}")/lib-worker-command.sh"  # inlined when shipped (components/shipped_scripts.py)

wait_for_setup /var/lib/llm-import/setup.done "pip packages"
attempts "import of worker $WORKER/$WORKERS failed; the next pulumi up resumes it (complete files are kept)" \
  /usr/local/bin/llm-model-import run "$MODEL_ID" "$REVISION" "$BUCKET" "$PREFIX" "$ENDPOINT" "$REGION" "$WORKER" \
  "$WORKERS"
stop_later llm-import-stop /usr/local/bin/llm-model-import "$REGION"
echo "worker $WORKER/$WORKERS done; it stops itself (StopCharging) in ${STOP_AFTER_SECONDS}s"
