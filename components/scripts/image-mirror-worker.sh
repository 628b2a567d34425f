#!/bin/bash
# Cloud Assistant command of the image mirror worker: waits for the first boot's set-up, copies the engine image
# into the stack's ACR Enterprise Edition repository (llm-image-mirror run; a copy already there is only checked),
# then has the worker stop itself in economical mode a minute after the command reported success.
# Holds no secret. Set by the header: SOURCE, DESTINATION, INSTANCE_ID, REGION, TIMEOUT_SECONDS, STOP_AFTER_SECONDS.
set -euo pipefail
: "${SOURCE:?}" "${DESTINATION:?}" "${INSTANCE_ID:?}" "${REGION:?}" "${TIMEOUT_SECONDS:?}" "${STOP_AFTER_SECONDS:?}"
# shellcheck source=/dev/null
source "$(dirname "${BASH_SOURCE[0]}")/lib-worker-command.sh"  # inlined when shipped (components/shipped_scripts.py)

wait_for_setup /var/lib/llm-mirror/setup.done "skopeo, the SDK"
attempts "mirror of $SOURCE failed; the next pulumi up tries again (layers already copied are kept)" \
  /usr/local/bin/llm-image-mirror run "$SOURCE" "$DESTINATION" "$INSTANCE_ID" "$REGION"
stop_later llm-mirror-stop /usr/local/bin/llm-image-mirror "$REGION"
echo "mirror done; the worker stops itself (StopCharging) in ${STOP_AFTER_SECONDS}s"
