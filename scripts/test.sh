#!/usr/bin/env bash
# The test commands. CI (.ci/run) runs both.
#
#   ./scripts/test.sh [pytest args]            the main suite: syncs .venv/ from uv.lock (the environment
#       `pulumi up` uses too), checks lint, format and types, then runs every test offline under Pulumi mocks
#   ./scripts/test.sh --engine [pytest args]   the real-engine suite (tests/engine/README.md): the pinned vLLM
#       on CPU behind the real nginx gateway, in the engine venv of scripts/engine-env.sh
#
# Both need Debian's nginx (the gateway tests run `nginx -t`, the engine suite runs it), and the main suite
# Graphviz's dot (the site's resource diagrams); each is installed with apt-get when missing and this runs
# as root.
set -euo pipefail
cd "$(dirname "$0")/.."

ensure_nginx() {
  if command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ]; then
    return 0
  fi
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "test.sh: installing Debian's nginx (apt-get install nginx-light)" >&2
    # RUNLEVEL=1: the package must not start a system nginx on port 80.
    { apt-get update -q && RUNLEVEL=1 DEBIAN_FRONTEND=noninteractive apt-get install -y -q nginx-light; } >&2
  else
    echo "test.sh: nginx is missing and cannot be installed here (not root or no apt-get)" >&2
  fi
}

ensure_graphviz() {
  if command -v dot >/dev/null 2>&1; then
    return 0
  fi
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "test.sh: installing Debian's graphviz (apt-get install graphviz)" >&2
    { apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends graphviz; } >&2
  else
    echo "test.sh: Graphviz's dot is missing and cannot be installed here (not root or no apt-get)" >&2
  fi
}

# The documentation site, built strictly (a broken link, a missing page or a diagram dot cannot draw fails) into
# a temporary directory; its log is shown only when it fails.
build_site() {
  local out log
  out=$(mktemp -d)
  if ! log=$(NO_MKDOCS_2_WARNING=1 .venv/bin/mkdocs build --strict --site-dir "$out" 2>&1); then
    printf '%s\n' "$log" >&2
    echo "test.sh: mkdocs build --strict failed (mkdocs.yml, docs/)" >&2
    rm -rf "$out"
    return 1
  fi
  rm -rf "$out"
}

# shellcheck source=scripts/uv.sh
source scripts/uv.sh
"$UV" sync --locked --quiet
ensure_nginx

if [ "${1:-}" = --engine ]; then
  shift
  engine_venv=$(scripts/engine-env.sh)
  # What the suite runs comes from the program: every Kubernetes example stack, built under the mocks.
  LLM_STACKS_JSON="$(mktemp -d)/stacks.json"
  export LLM_STACKS_JSON
  .venv/bin/python tests/engine/export_stacks.py "$LLM_STACKS_JSON" >&2
  exec "$engine_venv/bin/python" -m pytest -c tests/engine/pytest.ini --rootdir=tests/engine \
    --confcutdir=tests/engine tests/engine "$@"
fi

.venv/bin/ruff check --quiet .
.venv/bin/ruff format --check --quiet .
.venv/bin/pyright >/dev/null || .venv/bin/pyright # quiet when clean; the findings when not
ensure_graphviz
build_site
exec .venv/bin/python -m pytest -q "$@"
