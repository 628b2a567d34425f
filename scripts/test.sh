#!/usr/bin/env bash
# The test commands. CI (.ci/run) runs both.
#
#   ./scripts/test.sh [pytest args]            the main suite: syncs .venv/ from uv.lock (the environment
#       `pulumi up` uses too), checks lint, format and types, then runs every test offline under Pulumi mocks
#   ./scripts/test.sh --engine [pytest args]   the real-engine suite (tests/engine/README.md): the pinned vLLM
#       on CPU behind the real nginx gateway, in the engine venv of scripts/engine-env.sh
#
# Both need Debian's nginx (the gateway tests run `nginx -t`, the engine suite runs it), the main suite
# Graphviz's dot (the site's resource diagrams), and the engine suite skopeo and the distribution registry
# (docker-registry; the image mirror's copy against local registries); each is installed with apt-get when
# missing and this runs as root.
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

# skopeo and the CNCF distribution registry (/usr/bin/docker-registry) for tests/engine/test_image_mirror.py, which
# starts its own registries on loopback ports. The htpasswd file it needs is made in Python (bcrypt from the C
# library's crypt), so no apache2-utils.
ensure_registry_tools() {
  local missing=()
  command -v skopeo >/dev/null 2>&1 || missing+=(skopeo)
  command -v docker-registry >/dev/null 2>&1 || missing+=(docker-registry)
  if [ "${#missing[@]}" = 0 ]; then
    return 0
  fi
  if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
    echo "test.sh: ${missing[*]} missing and cannot be installed here (not root or no apt-get);" \
      "the image mirror tests skip" >&2
    return 0
  fi
  echo "test.sh: installing Debian's ${missing[*]} (apt-get install)" >&2
  # RUNLEVEL=1: the docker-registry package must not start its system registry on port 5000. (A failing apt-get
  # update inside an && list would not stop this script under set -e: say so and stop.)
  if ! { apt-get update -q && RUNLEVEL=1 DEBIAN_FRONTEND=noninteractive apt-get install -y -q \
    --no-install-recommends "${missing[@]}"; } >&2; then
    echo "test.sh: apt-get could not install ${missing[*]} (another apt running? see above)" >&2
    return 1
  fi
  # The package enables its service for the next boot (and under systemd may have started it): stop and disable
  # it, the suite starts its own registries.
  if [ -x /etc/init.d/docker-registry ]; then
    if [ -d /run/systemd/system ]; then
      systemctl disable --now docker-registry.service >&2 || true
    else
      /etc/init.d/docker-registry stop >&2 || true
      update-rc.d docker-registry disable >&2 || true
    fi
  fi
  if (exec 3<>/dev/tcp/127.0.0.1/5000) 2>/dev/null; then
    echo "test.sh: something listens on 127.0.0.1:5000 after installing docker-registry; stop it" >&2
    return 1
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
  ensure_registry_tools
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
