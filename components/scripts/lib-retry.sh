# shellcheck shell=bash
# retry CMD...: up to 5 attempts with growing pauses (mirrors and registries have bad minutes).
retry() {
  local attempt=1
  until "$@"; do
    [ "$attempt" -ge 5 ] && return 1
    sleep $((attempt * 20))
    attempt=$((attempt + 1))
  done
}
