#!/bin/bash
# Downloads one revision of a ModelScope (or Hugging Face) model into a directory, once. The only copy
# of the download logic: the GPU host's bootstrap and the Kubernetes import Jobs all run this file.
#
# Usage: fetch-model.sh MODEL_ID REVISION DIR
# Environment: MODEL_SOURCE (modelscope, the default, or huggingface); PIP_INDEX_URL (required);
#   modelscope: MODELSCOPE_VERSION, MODELSCOPE_HUB_VERSION (required);
#   huggingface: HF_HUB_VERSION (required), HF_TOKEN (optional, read by huggingface_hub itself; gated models);
#   MODELSCOPE_LIB (where the downloader is installed, default /opt/modelscope-lib);
#   PYTHON (default python3).
#
# Idempotent: DIR/.download-complete names the model and revision of a finished download and is
# checked first, so a rerun for the same revision exits at once. Resumable: snapshot_download skips
# files already complete (SHA-256 checked) and resumes partial ones, so a rerun after a failure
# continues where it stopped (huggingface_hub does the same). Holds no secret: a token only arrives
# in the environment.
set -euo pipefail

if [ "$#" -ne 3 ]; then
  echo "usage: $0 MODEL_ID REVISION DIR" >&2
  exit 2
fi
model_id=$1
revision=$2
target=$3
source=${MODEL_SOURCE:-modelscope}
: "${PIP_INDEX_URL:?}"
case "$source" in
  modelscope) : "${MODELSCOPE_VERSION:?}" "${MODELSCOPE_HUB_VERSION:?}" ;;
  huggingface) : "${HF_HUB_VERSION:?}" ;;
  *) echo "MODEL_SOURCE must be modelscope or huggingface, not $source" >&2; exit 2 ;;
esac
lib=${MODELSCOPE_LIB:-/opt/modelscope-lib}
python=${PYTHON:-python3}
marker="$target/.download-complete"
wanted="$model_id@$revision"

if [ -f "$marker" ] && [ "$(cat "$marker")" = "$wanted" ]; then
  echo "$wanted is already complete in $target"
  exit 0
fi
mkdir -p "$target" "$lib"
rm -f "$marker"  # another revision's marker must not survive a partial download of this one

if [ "$source" = huggingface ]; then
  "$python" -m pip install --quiet --disable-pip-version-check --upgrade --target "$lib" \
    --index-url "$PIP_INDEX_URL" "huggingface_hub==$HF_HUB_VERSION"
  PYTHONPATH="$lib" "$python" - "$model_id" "$revision" "$target" <<'PY'
import sys
from huggingface_hub import snapshot_download
snapshot_download(repo_id=sys.argv[1], revision=sys.argv[2], local_dir=sys.argv[3], max_workers=8)
PY
  printf '%s\n' "$wanted" > "$marker"
  echo "$wanted downloaded to $target"
  exit 0
fi

# --target keeps the downloader out of the system Python (and works where pip refuses to touch it).
"$python" -m pip install --quiet --disable-pip-version-check --upgrade --target "$lib" \
  --index-url "$PIP_INDEX_URL" "modelscope==$MODELSCOPE_VERSION" "modelscope-hub==$MODELSCOPE_HUB_VERSION"
PYTHONPATH="$lib" "$python" - "$model_id" "$revision" "$target" <<'PY'
import sys
from modelscope import snapshot_download
snapshot_download(model_id=sys.argv[1], revision=sys.argv[2], local_dir=sys.argv[3], max_workers=8)
PY
printf '%s\n' "$wanted" > "$marker"
echo "$wanted downloaded to $target"
