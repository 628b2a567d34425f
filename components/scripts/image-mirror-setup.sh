#!/bin/bash
# Image mirror worker, first boot (user-data): skopeo and Python's pip from the image's apt mirror, then the pinned
# Alibaba Cloud SDK core from the internal PyPI mirror, both reachable from the region's internal network.
# Holds no secret and no credential: the worker's RAM role gives it temporary credentials at run time.
# Set by the header: PIP_INDEX_URL, ACS_CORE_VERSION.
set -euo pipefail
: "${PIP_INDEX_URL:?}" "${ACS_CORE_VERSION:?}"
LIB=/opt/llm-mirror/lib

# shellcheck source=/dev/null
source "$(dirname "${BASH_SOURCE[0]}")/lib-retry.sh"  # inlined when shipped (components/shipped_scripts.py)

export DEBIAN_FRONTEND=noninteractive
retry apt-get update
retry apt-get install -y --no-install-recommends ca-certificates python3-pip skopeo
# --target keeps the package out of the system Python; llm-image-mirror puts LIB on its own path.
retry python3 -m pip install --quiet --disable-pip-version-check --upgrade --target "$LIB" \
  --index-url "$PIP_INDEX_URL" "aliyun-python-sdk-core==$ACS_CORE_VERSION"
install -d -m 0700 /var/lib/llm-mirror
touch /var/lib/llm-mirror/setup.done
echo "image mirror worker set-up complete"
