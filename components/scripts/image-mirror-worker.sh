#!/bin/bash
# Cloud Assistant command of the image mirror worker: waits for the first boot's set-up, copies the engine image
# into the stack's ACR Enterprise Edition repository (llm-image-mirror run; a copy already there is only checked),
# then has the worker stop itself in economical mode a minute after the command reported success.
# Holds no secret. Set by the header: SOURCE, DESTINATION, INSTANCE_ID, REGION, TIMEOUT_SECONDS, STOP_AFTER_SECONDS.
set -euo pipefail
: "${SOURCE:?}" "${DESTINATION:?}" "${INSTANCE_ID:?}" "${REGION:?}" "${TIMEOUT_SECONDS:?}" "${STOP_AFTER_SECONDS:?}"
deadline=$((SECONDS + TIMEOUT_SECONDS))

echo "waiting for the worker's set-up (skopeo, the SDK)"
until [ -f /var/lib/llm-mirror/setup.done ]; do
  if ((SECONDS >= deadline)); then
    echo "set-up not done after ${TIMEOUT_SECONDS}s; see /var/log/cloud-init-output.log" >&2
    exit 1
  fi
  sleep 10
done

# The role's policy can take a moment to apply after its attachment: retry the token and copy a few times.
attempt=1
until /usr/local/bin/llm-image-mirror run "$SOURCE" "$DESTINATION" "$INSTANCE_ID" "$REGION"; do
  if [ "$attempt" -ge 3 ] || ((SECONDS >= deadline)); then
    echo "mirror of $SOURCE failed; the next pulumi up tries again (layers already copied are kept)" >&2
    exit 1
  fi
  sleep $((attempt * 30))
  attempt=$((attempt + 1))
done

# After the command has ended (and Cloud Assistant has reported Success), not during it.
systemd-run --unit=llm-mirror-stop --on-active="$STOP_AFTER_SECONDS" /usr/local/bin/llm-image-mirror stop-self "$REGION"
echo "mirror done; the worker stops itself (StopCharging) in ${STOP_AFTER_SECONDS}s"
