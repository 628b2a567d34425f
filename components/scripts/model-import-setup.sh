#!/bin/bash
# Model import worker, first boot (user-data): Python's pip from the image's apt mirror, then the pinned
# downloader and OSS SDK from the internal PyPI mirror, both reachable from the region's internal network.
# Holds no secret and no credential: the worker's RAM role gives it temporary credentials at run time.
# Set by the header: PIP_INDEX_URL, MODELSCOPE_HUB_VERSION, OSS2_VERSION, ACS_CORE_VERSION.
set -euo pipefail
: "${PIP_INDEX_URL:?}" "${MODELSCOPE_HUB_VERSION:?}" "${OSS2_VERSION:?}" "${ACS_CORE_VERSION:?}"
LIB=/opt/llm-import/lib

# shellcheck source=/dev/null
source "$(dirname "${BASH_SOURCE[0]}")/lib-retry.sh"  # inlined when shipped (components/shipped_scripts.py)

export DEBIAN_FRONTEND=noninteractive
retry apt-get update
retry apt-get install -y --no-install-recommends ca-certificates python3-pip
# --target keeps the packages out of the system Python; llm-model-import puts LIB on its own path.
retry python3 -m pip install --quiet --disable-pip-version-check --upgrade --target "$LIB" \
  --index-url "$PIP_INDEX_URL" "modelscope-hub==$MODELSCOPE_HUB_VERSION" "oss2==$OSS2_VERSION" \
  "aliyun-python-sdk-core==$ACS_CORE_VERSION"
install -d -m 0700 /var/lib/llm-import
touch /var/lib/llm-import/setup.done
echo "model import worker set-up complete"
