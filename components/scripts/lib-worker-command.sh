# shellcheck shell=bash
# The steps of a short-lived worker's Cloud Assistant command (components/alibaba/cloud_assistant_worker.py), each
# within the command's TIMEOUT_SECONDS from here and, when it gives up, naming what failed. Needs TIMEOUT_SECONDS
# and STOP_AFTER_SECONDS from the command's header.
: "${TIMEOUT_SECONDS:?}" "${STOP_AFTER_SECONDS:?}"
deadline=$((SECONDS + TIMEOUT_SECONDS))

# wait_for_setup MARKER WHAT: until the first boot's set-up (user-data) has left MARKER.
wait_for_setup() {
  echo "waiting for the worker's set-up ($2)"
  until [ -f "$1" ]; do
    if ((SECONDS >= deadline)); then
      echo "set-up not done after ${TIMEOUT_SECONDS}s; see /var/log/cloud-init-output.log" >&2
      exit 1
    fi
    sleep 10
  done
}

# attempts FAILURE CMD...: CMD up to 3 times with growing pauses, since the worker role's policy can take a moment
# to apply after its attachment; FAILURE is what the command says when it gives up.
attempts() {
  local failure=$1 attempt=1
  shift
  until "$@"; do
    if [ "$attempt" -ge 3 ] || ((SECONDS >= deadline)); then
      echo "$failure" >&2
      exit 1
    fi
    sleep $((attempt * 30))
    attempt=$((attempt + 1))
  done
}

# stop_later UNIT TOOL REGION: the worker stops itself (TOOL stop-self, StopCharging) STOP_AFTER_SECONDS after the
# command has ended and Cloud Assistant has reported its success, not during it.
stop_later() {
  systemd-run --unit="$1" --on-active="$STOP_AFTER_SECONDS" "$2" stop-self "$3"
}
